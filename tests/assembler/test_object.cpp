// The .lpo object format: round trip, determinism, and the loader's refusal of every kind of
// damaged or inconsistent file (docs/object-format.md).
#include <doctest/doctest.h>

#include <boost/crc.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

#include "lpu/asm/object.hpp"
#include "lpu/common/errors.hpp"
#include "lpu/isa/isa.hpp"

using namespace lpu;
using namespace lpu::obj;

namespace {

using Bytes = std::vector<std::uint8_t>;

isa::Instr mk(isa::Op op, std::initializer_list<std::int64_t> v, isa::Dtype t = isa::Dtype::I8,
              isa::Dtype t2 = isa::Dtype::I8) {
  isa::Instr in;
  in.op = op;
  in.t = t;
  in.t2 = t2;
  std::size_t k = 0;
  for (auto x : v) in.v[k++] = x;
  return in;
}

Geometry mini_geometry() {
  Geometry g;
  g.preset = "mini";
  g.vector_bytes = 32;
  g.streams_per_direction = 8;
  g.mem_slices_per_hemisphere = 4;
  g.mem_rows = 256;
  g.vxm_queues = 4;
  g.sxm_queues_per_hemisphere = 2;
  g.mxm_planes = 1;
  g.mxm_queues_per_plane = 3;
  g.mxm_accumulators = 8;
  return g;
}

// Every section kind, several queues with real instructions, every dtype.
Program rich_program() {
  using isa::Op;
  Program p;
  p.geometry = mini_geometry();
  for (std::size_t i = 1; i < 16; ++i) p.regs[i] = static_cast<std::uint32_t>(i * 0x01010101u);
  p.regs[15] = 0xffffffffu;

  QueueCode q0{"mem.w.0", {}};
  q0.words.push_back(isa::encode(mk(Op::Read, {isa::make_addr(0, 5), 3, 1})));
  q0.words.push_back(isa::encode(mk(Op::Repeat, {7, 1})));
  q0.words.push_back(isa::encode(mk(Op::Nop, {10})));
  q0.words.push_back(isa::encode(mk(Op::Write, {4, isa::make_addr(2, 100), -1})));
  q0.words.push_back(isa::encode(mk(Op::Halt, {})));
  QueueCode q1{"vxm.0", {}};
  q1.words.push_back(isa::encode(mk(Op::Add, {1, 2, 3}, isa::Dtype::Bf16)));
  q1.words.push_back(isa::encode(mk(Op::Config, {3, 0xdeadbeef})));
  q1.words.push_back(isa::encode(mk(Op::Sync, {})));
  q1.words.push_back(isa::encode(mk(Op::Halt, {})));
  QueueCode q2{"sxm.e.1", {isa::encode(mk(Op::Notify, {})), isa::encode(mk(Op::Halt, {}))}};
  QueueCode q3{"mxm.0.2", {}};  // an empty queue is legal
  p.queues = {q0, q1, q2, q3};

  DataSection d0{"mem.e.0", 3, Bytes(64)};
  for (std::size_t i = 0; i < d0.bytes.size(); ++i) d0.bytes[i] = static_cast<std::uint8_t>(i * 7 + 1);
  DataSection d1{"mem.w.3", 255, Bytes(32, 0xab)};
  DataSection d2{"mem.w.1", 0, {}};
  p.data = {d0, d1, d2};

  for (int dt = 0; dt < isa::kNumDtypes; ++dt) {
    Symbol s;
    s.name = "t" + std::to_string(dt);
    s.dtype = static_cast<isa::Dtype>(dt);
    s.shape = {dt + 1, 32, std::int64_t(1) << 40};
    s.slices = {"mem.e.0", "mem.e.1"};
    s.start_row = static_cast<std::uint32_t>(dt * 10);
    p.symbols.push_back(s);
  }
  p.symbols.push_back(Symbol{"scalar", isa::Dtype::F32, {}, {"mem.w.2"}, 7});

  PermTable t0{"sxm.w", 0, {}};
  PermTable t1{"sxm.e", 15, {}};
  for (std::uint16_t i = 0; i < 32; ++i) {
    t0.map.push_back(static_cast<std::uint16_t>(31 - i));
    t1.map.push_back(static_cast<std::uint16_t>((i * 5) % 32));
  }
  p.perms = {t0, t1};
  return p;
}

Program small_program() {
  Program p;
  p.geometry = mini_geometry();
  p.geometry.vector_bytes = 2;
  p.regs[1] = 9;
  p.queues = {{"q", {isa::encode(mk(isa::Op::Halt, {}))}}};
  p.data = {{"s", 1, {1, 2}}};
  p.symbols = {{"x", isa::Dtype::I16, {1}, {"s"}, 1}};
  p.perms = {{"p", 0, {1, 0}}};
  return p;
}

std::string message_of(const Bytes& b, const std::string& origin = "t.lpo") {
  try {
    (void)read_object(b, origin);
  } catch (const FormatError& e) {
    return e.what();
  }
  return "<no error>";
}

// ---- a test-side builder for hand-made (possibly malformed) objects ----
struct Builder {
  Bytes b;
  Builder& u8(std::uint8_t v) { b.push_back(v); return *this; }
  Builder& u16(std::uint16_t v) { for (int i = 0; i < 2; ++i) b.push_back(std::uint8_t(v >> (8 * i))); return *this; }
  Builder& u32(std::uint32_t v) { for (int i = 0; i < 4; ++i) b.push_back(std::uint8_t(v >> (8 * i))); return *this; }
  Builder& u64(std::uint64_t v) { for (int i = 0; i < 8; ++i) b.push_back(std::uint8_t(v >> (8 * i))); return *this; }
  Builder& str(const std::string& s) { u32(static_cast<std::uint32_t>(s.size())); b.insert(b.end(), s.begin(), s.end()); return *this; }
};

void put_u32(Bytes& b, std::size_t at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + std::size_t(i)] = std::uint8_t(v >> (8 * i));
}
void put_u64(Bytes& b, std::size_t at, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) b[at + std::size_t(i)] = std::uint8_t(v >> (8 * i));
}
std::uint32_t get_u32(const Bytes& b, std::size_t at) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= std::uint32_t(b[at + std::size_t(i)]) << (8 * i);
  return v;
}

// Fix the total length and checksum so the damage under test is the only one.
Bytes reseal(Bytes b) {
  put_u64(b, 16, b.size());
  boost::crc_32_type c;
  c.process_bytes(b.data(), b.size() - 4);
  put_u32(b, b.size() - 4, c.checksum());
  return b;
}

struct Section {
  std::uint32_t type;
  Bytes payload;
};

Bytes geometry_payload(std::int32_t vector_bytes = 4) {
  Builder g;
  g.str("mini").u32(std::uint32_t(vector_bytes));
  for (int i = 0; i < 8; ++i) g.u32(1);
  return g.b;
}
Bytes registers_payload() { return Bytes(64, 0); }

// Header, sections, trailer: a well-sealed object holding exactly these sections.
Bytes object_of(const std::vector<Section>& secs, std::uint32_t count_override = 0xffffffffu) {
  Builder o;
  for (int c : {0x89, 0x4c, 0x50, 0x4f, 0x0d, 0x0a, 0x1a, 0x0a}) o.u8(static_cast<std::uint8_t>(c));  // \x89 L P O \r \n \x1a \n
  o.u32(kVersion).u32(0).u64(0).u32(count_override != 0xffffffffu ? count_override
                                                                  : std::uint32_t(secs.size()));
  for (const auto& s : secs) {
    o.u32(s.type).u64(s.payload.size());
    o.b.insert(o.b.end(), s.payload.begin(), s.payload.end());
  }
  o.u32(0);
  return reseal(o.b);
}

// The smallest legal object, plus one extra section.
Bytes with_section(std::uint32_t type, const Bytes& payload, std::int32_t vector_bytes = 4) {
  return object_of({{1, geometry_payload(vector_bytes)}, {2, registers_payload()}, {type, payload}});
}

#define CHECK_REJECTS(bytes, ...)                                        \
  do {                                                                   \
    const std::string msg_ = message_of(bytes);                          \
    CAPTURE(msg_);                                                       \
    CHECK(msg_.rfind("t.lpo: offset ", 0) == 0);                         \
    for (const std::string& key_ : std::initializer_list<std::string>{__VA_ARGS__}) CHECK(msg_.find(key_) != std::string::npos); \
  } while (0)

}  // namespace

TEST_CASE("a rich program round-trips exactly") {
  const Program p = rich_program();
  const Bytes b = write_object(p);
  const Program q = read_object(b, "rich.lpo");
  CHECK(q.geometry == p.geometry);
  CHECK(q.regs == p.regs);
  CHECK(q.queues == p.queues);
  CHECK(q.data == p.data);
  CHECK(q.symbols == p.symbols);
  CHECK(q.perms == p.perms);
  CHECK(q == p);
  // Re-writing what was read gives the same bytes.
  CHECK(write_object(q) == b);
  // The words decode to the instructions that made them.
  CHECK(isa::decode(q.queues[1].words[0]) == mk(isa::Op::Add, {1, 2, 3}, isa::Dtype::Bf16));
}

TEST_CASE("minimal programs round-trip") {
  Program p;  // all defaults: empty geometry, no sections beyond geometry and registers
  CHECK(read_object(write_object(p), "empty") == p);
  const Program s = small_program();
  CHECK(read_object(write_object(s), "small") == s);
}

TEST_CASE("writing is deterministic") {
  const Bytes a = write_object(rich_program());
  const Bytes b = write_object(rich_program());
  CHECK(a == b);
  Program p = rich_program();
  Program copy = p;
  CHECK(write_object(copy) == write_object(p));
  // And it depends on the contents.
  copy.regs[3] ^= 1;
  CHECK(write_object(copy) != a);
}

TEST_CASE("the header layout is what docs/object-format.md says") {
  const Bytes b = write_object(small_program());
  REQUIRE(b.size() > 32);
  CHECK(b[0] == 0x89);
  CHECK(b[1] == 'L');
  CHECK(b[2] == 'P');
  CHECK(b[3] == 'O');
  CHECK(get_u32(b, 8) == kVersion);
  CHECK(get_u32(b, 12) == 0);
  CHECK(get_u32(b, 16) == b.size());
  CHECK(get_u32(b, 20) == 0);
  CHECK(get_u32(b, 24) == 6);  // geometry, registers, queue, data, symbols, perm
  CHECK(get_u32(b, 28) == 1);  // first section: geometry
  boost::crc_32_type c;
  c.process_bytes(b.data(), b.size() - 4);
  CHECK(get_u32(b, b.size() - 4) == c.checksum());
  // The builder here makes the same bytes as the writer.
  CHECK(object_of({{1, geometry_payload()}, {2, registers_payload()}}) == [] {
    Program p;
    p.geometry.preset = "mini";
    p.geometry.vector_bytes = 4;
    p.geometry.streams_per_direction = p.geometry.mem_slices_per_hemisphere = p.geometry.mem_rows =
        p.geometry.vxm_queues = p.geometry.sxm_queues_per_hemisphere = p.geometry.mxm_planes =
            p.geometry.mxm_queues_per_plane = p.geometry.mxm_accumulators = 1;
    return write_object(p);
  }());
}

TEST_CASE("every truncation is rejected") {
  const Bytes b = write_object(rich_program());
  for (std::size_t n = 0; n < b.size(); ++n) {
    CAPTURE(n);
    const Bytes t(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(n));
    const std::string msg = message_of(t);
    CHECK(msg.find("truncated") != std::string::npos);
    CHECK(msg.rfind("t.lpo: offset " + std::to_string(n) + ": ", 0) == 0);
  }
}

TEST_CASE("every single-bit flip is rejected") {
  const Bytes b = write_object(small_program());
  REQUIRE(b.size() < 400);
  for (std::size_t i = 0; i < b.size() * 8; ++i) {
    Bytes f = b;
    f[i / 8] ^= static_cast<std::uint8_t>(1u << (i % 8));
    CAPTURE(i);
    CHECK_THROWS_AS((void)read_object(f, "flip.lpo"), FormatError);
  }
}

TEST_CASE("bad magic") {
  Bytes b = write_object(small_program());
  b[1] = 'X';
  CHECK_REJECTS(b, "offset 0:", "bad magic", "not an LPU object file");
  CHECK_REJECTS((Bytes{'h', 'e', 'l', 'l', 'o'}), "offset 0:", "bad magic");
  CHECK_THROWS_WITH_AS((void)read_object(Bytes{'#', '!'}, "x.lpo"),
                       doctest::Contains("x.lpo: offset 0: bad magic"), FormatError);
}

TEST_CASE("wrong version names the found and the supported version") {
  Bytes b = write_object(small_program());
  put_u32(b, 8, kVersion + 1);
  CHECK_REJECTS(b, "offset 8:", "version 2", "reads version 1");
  // Version wins over the checksum: an object from a newer tool says so, not "corrupt".
  CHECK(message_of(b).find("checksum") == std::string::npos);
}

TEST_CASE("checksum mismatch") {
  Bytes b = write_object(rich_program());
  b[b.size() / 2] ^= 0x10;
  CHECK_REJECTS(b, "checksum mismatch", ("offset " + std::to_string(b.size() - 4)).c_str());
  Bytes c = write_object(rich_program());
  c.back() ^= 1;  // the stored checksum itself
  CHECK_REJECTS(c, "checksum mismatch");
}

TEST_CASE("trailing garbage") {
  Bytes b = write_object(small_program());
  const auto n = b.size();
  b.push_back(0);
  CHECK_REJECTS(b, "trailing garbage", ("offset " + std::to_string(n)).c_str());
  // Garbage inside the sealed body, after the declared sections.
  Bytes c = object_of({{1, geometry_payload()}, {2, registers_payload()}}, 1);
  CHECK_REJECTS(c, "trailing garbage", "offset 84:");
  // Unused bytes at the end of a section.
  Bytes g = geometry_payload();
  g.push_back(0);
  CHECK_REJECTS(object_of({{1, g}, {2, registers_payload()}}), "unused at its end", "geometry");
}

TEST_CASE("header fields are checked") {
  Bytes b = write_object(small_program());
  put_u32(b, 12, 4);
  CHECK_REJECTS(reseal(b), "offset 12:", "flags");
  Bytes c = write_object(small_program());
  put_u64(c, 16, 10);
  CHECK_REJECTS(c, "offset 16:", "total length");
  Bytes d = write_object(small_program());
  put_u64(d, 16, std::uint64_t(1) << 62);
  CHECK_REJECTS(d, "truncated");
}

TEST_CASE("lengths and counts beyond the remaining bytes are rejected before allocating") {
  // Section count.
  CHECK_REJECTS(object_of({{1, geometry_payload()}, {2, registers_payload()}}, 0xfffffff0u),
                "offset 24:", "section count", "exceeds");
  // Section length.
  {
    Bytes b = object_of({{1, geometry_payload()}, {2, registers_payload()}});
    put_u64(b, 32, 0xffffffffffffull);
    CHECK_REJECTS(reseal(b), "offset 32:", "length", "exceeds");
  }
  // String length.
  {
    Bytes g = geometry_payload();
    put_u32(g, 0, 0xfffffff0u);
    CHECK_REJECTS(object_of({{1, g}, {2, registers_payload()}}), "offset 40:", "preset name length",
                  "exceeds the remaining bytes");
  }
  // Word count.
  CHECK_REJECTS(with_section(3, Builder().str("q").u32(0x10000000).u64(0).b), "queue word count",
                "exceeds");
  // Data byte count.
  CHECK_REJECTS(with_section(4, Builder().str("s").u32(0).u32(0xffffffffu).b), "data byte count",
                "exceeds");
  // Symbol count, rank, slice count.
  CHECK_REJECTS(with_section(5, Builder().u32(0x7fffffff).b), "symbol count", "exceeds");
  CHECK_REJECTS(with_section(5, Builder().u32(1).str("x").u8(0).u32(0).u32(0xffffff).u32(1).str("s").b),
                "symbol rank", "exceeds");
  CHECK_REJECTS(with_section(5, Builder().u32(1).str("x").u8(0).u32(0).u32(0).u32(0xffffff).str("s").b),
                "symbol slice count", "exceeds");
  // Perm map size.
  CHECK_REJECTS(with_section(6, Builder().str("sxm.w").u32(0).u32(0x40000000).b), "perm map size",
                "exceeds");
  // A fixed-size field cut short by its section.
  CHECK_REJECTS(with_section(4, Builder().str("s").u16(0).b), "data row", "needs 4 bytes",
                "data section");
}

TEST_CASE("unknown section types") {
  CHECK_REJECTS(with_section(99, {}), "offset 160:", "unknown section type 99");
  CHECK_REJECTS(with_section(0, {1, 2, 3}), "unknown section type 0");
}

TEST_CASE("geometry: duplicate, missing, out of place, negative") {
  CHECK_REJECTS(object_of({{1, geometry_payload()}, {2, registers_payload()}, {1, geometry_payload()}}),
                "offset 160:", "duplicate geometry");
  CHECK_REJECTS(object_of({{2, registers_payload()}, {1, geometry_payload()}}), "offset 28:",
                "first section must be geometry");
  CHECK_REJECTS(object_of({}), "no geometry section");
  CHECK_REJECTS(object_of({{1, geometry_payload(-32)}, {2, registers_payload()}}), "vector_bytes",
                "negative");
}

TEST_CASE("registers: required once, r0 is zero") {
  CHECK_REJECTS(object_of({{1, geometry_payload()}}), "no registers section");
  CHECK_REJECTS(object_of({{1, geometry_payload()}, {2, registers_payload()}, {2, registers_payload()}}),
                "duplicate registers");
  Bytes r = registers_payload();
  r[0] = 1;
  CHECK_REJECTS(object_of({{1, geometry_payload()}, {2, r}}), "r0 must be 0");
}

TEST_CASE("instruction words that do not decode") {
  const std::uint64_t halt = isa::encode(mk(isa::Op::Halt, {}));
  // Unknown opcode.
  CHECK_REJECTS(with_section(3, Builder().str("mem.w.0").u32(2).u64(halt).u64(0xff00000000000000ull).b),
                "offset 195:", "queue \"mem.w.0\" word 1 does not decode", "opcode");
  // Stray bits.
  CHECK_REJECTS(with_section(3, Builder().str("q").u32(1).u64(halt | 1).b), "does not decode", "stray");
  // A type suffix the instruction does not allow.
  const std::uint64_t add = isa::encode(mk(isa::Op::And, {1, 2, 3}, isa::Dtype::I8));
  CHECK_REJECTS(with_section(3, Builder().str("q").u32(1).u64(add | (std::uint64_t(3) << isa::kDtypeLsb)).b),
                "does not decode", "type code");
}

TEST_CASE("queues: duplicate names") {
  const std::uint64_t halt = isa::encode(mk(isa::Op::Halt, {}));
  const Bytes q = Builder().str("vxm.0").u32(1).u64(halt).b;
  CHECK_REJECTS(object_of({{1, geometry_payload()}, {2, registers_payload()}, {3, q}, {3, q}}),
                "duplicate queue", "vxm.0");
}

TEST_CASE("symbols: dtype range, empty slice lists, negative dims, duplicates") {
  CHECK_REJECTS(with_section(5, Builder().u32(1).str("w").u8(8).u32(0).u32(0).u32(1).str("s").b),
                "offset 181:", "dtype code 8 out of range");
  CHECK_REJECTS(with_section(5, Builder().u32(1).str("w").u8(255).u32(0).u32(0).u32(1).str("s").b),
                "dtype code 255");
  CHECK_REJECTS(with_section(5, Builder().u32(1).str("w").u8(0).u32(0).u32(1).u64(4).u32(0).b),
                "symbol \"w\" has an empty slice list");
  CHECK_REJECTS(with_section(5, Builder().u32(1).str("w").u8(0).u32(0).u32(1).u64(~0ull).u32(1).str("s").b),
                "negative dimension");
  const Bytes one = Builder().str("w").u8(0).u32(0).u32(0).u32(1).str("s").b;
  Builder two;
  two.u32(2);
  two.b.insert(two.b.end(), one.begin(), one.end());
  two.b.insert(two.b.end(), one.begin(), one.end());
  CHECK_REJECTS(with_section(5, two.b), "duplicate symbol \"w\"");
  CHECK_REJECTS(object_of({{1, geometry_payload()}, {2, registers_payload()}, {5, Builder().u32(0).b},
                           {5, Builder().u32(0).b}}),
                "duplicate symbols section");
}

TEST_CASE("data sections must be whole vectors") {
  CHECK_REJECTS(with_section(4, Builder().str("mem.e.0").u32(0).u32(6).u32(0).u16(0).b, 4),
                "offset 187:", "size 6 is not a multiple of vector_bytes 4");
  CHECK(read_object(with_section(4, Builder().str("mem.e.0").u32(0).u32(8).u64(0).b, 4), "ok")
            .data.at(0)
            .bytes.size() == 8);
  // vector_bytes 0: only empty data.
  CHECK_REJECTS(with_section(4, Builder().str("s").u32(0).u32(1).u8(0).b, 0), "not a multiple");
}

TEST_CASE("perm tables: size, entries, duplicates") {
  CHECK_REJECTS(with_section(6, Builder().str("sxm.w").u32(0).u32(3).u16(0).u16(1).u16(2).b, 4),
                "map size 3 != vector_bytes 4");
  CHECK_REJECTS(with_section(6, Builder().str("sxm.w").u32(0).u32(4).u16(0).u16(1).u16(2).u16(4).b, 4),
                "map[3] = 4 is not below vector_bytes 4");
  const Bytes t = Builder().str("sxm.e").u32(2).u32(4).u16(3).u16(2).u16(1).u16(0).b;
  CHECK(read_object(with_section(6, t, 4), "ok").perms.at(0).map == std::vector<std::uint16_t>{3, 2, 1, 0});
  CHECK_REJECTS(object_of({{1, geometry_payload()}, {2, registers_payload()}, {6, t}, {6, t}}),
                "duplicate perm table sxm.e 2");
}

TEST_CASE("the writer refuses what the reader would refuse") {
  auto refuses = [](const Program& p, const char* key) {
    try {
      (void)write_object(p);
      FAIL("write_object accepted an invalid program; expected: " << key);
    } catch (const FormatError&) {
      FAIL("write_object threw FormatError; expected a plain lpu::Error");
    } catch (const Error& e) {
      CHECK(std::string(e.what()).find(key) != std::string::npos);
    }
  };
  Program p = small_program();
  p.queues[0].words.push_back(0xff00000000000000ull);
  refuses(p, "does not decode");
  p = small_program();
  p.data[0].bytes.push_back(0);
  refuses(p, "not a multiple");
  p = small_program();
  p.symbols[0].slices.clear();
  refuses(p, "no slices");
  p = small_program();
  p.symbols[0].dtype = static_cast<isa::Dtype>(12);
  refuses(p, "dtype");
  p = small_program();
  p.perms[0].map.push_back(0);
  refuses(p, "perm table");
  p = small_program();
  p.regs[0] = 1;
  refuses(p, "r0");
  p = small_program();
  p.geometry.mem_rows = -1;
  refuses(p, "mem_rows");
  p = small_program();
  p.queues.push_back(p.queues[0]);
  refuses(p, "duplicate queue");
}

TEST_CASE("save and load through a file") {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("lpu_test_object_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "p.lpo").string();
  const Program p = rich_program();
  save_object(p, path);
  CHECK(std::filesystem::file_size(path) == write_object(p).size());
  CHECK(!std::filesystem::exists(path + ".tmp"));
  CHECK(load_object(path) == p);

  // A damaged file names itself as the origin.
  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << "garbage";
  }
  CHECK_THROWS_WITH_AS((void)load_object(path), doctest::Contains((path + ": offset 0: bad magic").c_str()),
                       FormatError);
  CHECK_THROWS_WITH_AS((void)load_object((dir / "missing.lpo").string()),
                       doctest::Contains("cannot open"), Error);
  CHECK_THROWS_AS((void)load_object(dir.string()), Error);
  CHECK_THROWS_AS(save_object(p, (dir / "no" / "such" / "dir.lpo").string()), Error);
  std::filesystem::remove_all(dir);
}
