// Writes the seed corpus of fuzz_object: a few small valid objects, and damaged variants of
// them (truncated, bit-flipped, wrong magic or version, and "resealed" ones whose checksum is
// right but whose contents are inconsistent). Usage: lpu_gen_object_corpus <dir>
// The files have no .lpo suffix on purpose (.gitignore ignores *.lpo).
#include <boost/crc.hpp>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "lpu/asm/object.hpp"
#include "lpu/isa/isa.hpp"

using namespace lpu;
using Bytes = std::vector<std::uint8_t>;

namespace {

std::uint64_t enc(isa::Op op, std::initializer_list<std::int64_t> v, isa::Dtype t = isa::Dtype::I8) {
  isa::Instr in;
  in.op = op;
  in.t = t;
  std::size_t k = 0;
  for (auto x : v) in.v[k++] = x;
  return isa::encode(in);
}

obj::Geometry mini() {
  obj::Geometry g;
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

const std::uint64_t kBadWord = 0xff00000000000000ull;

Bytes reseal(Bytes b) {
  const std::size_t n = b.size();
  for (int i = 0; i < 8; ++i) b[16 + std::size_t(i)] = static_cast<std::uint8_t>(std::uint64_t(n) >> (8 * i));
  boost::crc_32_type c;
  c.process_bytes(b.data(), n - 4);
  for (int i = 0; i < 4; ++i) b[n - 4 + std::size_t(i)] = static_cast<std::uint8_t>(c.checksum() >> (8 * i));
  return b;
}

// Replace the first occurrence of `word` (8 bytes little-endian) with `by`.
Bytes replace_word(Bytes b, std::uint64_t word, std::uint64_t by) {
  for (std::size_t i = 0; i + 8 <= b.size(); ++i) {
    std::uint64_t v = 0;
    for (int k = 0; k < 8; ++k) v |= std::uint64_t(b[i + std::size_t(k)]) << (8 * k);
    if (v == word) {
      for (int k = 0; k < 8; ++k) b[i + std::size_t(k)] = static_cast<std::uint8_t>(by >> (8 * k));
      return b;
    }
  }
  return b;
}

bool save(const std::string& dir, const std::string& name, const Bytes& b) {
  std::ofstream f(dir + "/" + name, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  if (!f) std::fprintf(stderr, "cannot write %s/%s\n", dir.c_str(), name.c_str());
  return static_cast<bool>(f);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <output dir>\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  using isa::Op;

  obj::Program minimal;
  minimal.geometry = mini();

  obj::Program small = minimal;
  small.regs[1] = 64;
  small.queues = {{"mem.w.0", {enc(Op::Read, {isa::make_addr(1, 2), 3, 1}), enc(Op::Repeat, {3, 1}),
                               enc(Op::Halt, {})}},
                  {"vxm.0", {enc(Op::Nop, {4}), enc(Op::Add, {3, 3, 5}, isa::Dtype::I8),
                             enc(Op::Halt, {})}}};
  small.data = {{"mem.w.0", 2, Bytes(32, 7)}};
  small.symbols = {{"x", isa::Dtype::I8, {4, 32}, {"mem.w.0"}, 2}};
  std::vector<std::uint16_t> rev(32);
  for (std::uint16_t i = 0; i < 32; ++i) rev[i] = static_cast<std::uint16_t>(31 - i);
  small.perms = {{"sxm.w", 1, rev}};

  obj::Program queues = minimal;
  queues.queues = {{"mem.e.1", {enc(Op::Write, {9, isa::make_addr(0, 10), -1}), enc(Op::Halt, {})}},
                   {"sxm.e.0", {enc(Op::Sync, {}), enc(Op::Notify, {}), enc(Op::Halt, {})}},
                   {"mxm.0.0", {enc(Op::Config, {2, 123456}), enc(Op::Halt, {})}},
                   {"empty", {}}};
  queues.symbols = {{"y", isa::Dtype::Bf16, {2, 2, 8}, {"mem.e.0", "mem.e.1"}, 0},
                    {"z", isa::Dtype::F32, {}, {"mem.e.2"}, 9}};

  const Bytes v_min = obj::write_object(minimal);
  const Bytes v_small = obj::write_object(small);
  const Bytes v_queues = obj::write_object(queues);
  bool ok = true;
  ok &= save(dir, "valid_minimal", v_min);
  ok &= save(dir, "valid_small", v_small);
  ok &= save(dir, "valid_queues", v_queues);

  ok &= save(dir, "trunc_header", Bytes(v_small.begin(), v_small.begin() + 20));
  ok &= save(dir, "trunc_half", Bytes(v_small.begin(), v_small.begin() + std::ptrdiff_t(v_small.size() / 2)));
  ok &= save(dir, "trunc_last_byte", Bytes(v_queues.begin(), v_queues.end() - 1));
  Bytes flip = v_small;
  flip[flip.size() / 2] ^= 0x04;
  ok &= save(dir, "bad_checksum", flip);
  Bytes magic = v_min;
  magic[2] = 'Q';
  ok &= save(dir, "bad_magic", magic);
  Bytes version = v_min;
  version[8] = 9;
  ok &= save(dir, "bad_version", version);
  Bytes trailing = v_min;
  trailing.push_back(0);
  ok &= save(dir, "trailing_garbage", trailing);

  // Resealed: checksum right, contents wrong.
  ok &= save(dir, "resealed_bad_word", reseal(replace_word(v_small, enc(Op::Halt, {}), kBadWord)));
  Bytes vb = v_small;
  vb[48] = 33;  // geometry vector_bytes (docs/object-format.md): data and perm sizes no longer fit
  ok &= save(dir, "resealed_bad_vector_bytes", reseal(vb));
  Bytes count = v_queues;
  count[24] = 5;  // section count: the last two sections become trailing garbage
  ok &= save(dir, "resealed_bad_section_count", reseal(count));
  return ok ? 0 : 1;
}
