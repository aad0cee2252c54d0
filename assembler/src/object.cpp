// The .lpo object file: writer and defensive reader. Byte layout in docs/object-format.md.
//
// The reader trusts nothing: every length and count is compared with the bytes that remain
// before anything is allocated from it, every failure throws lpu::FormatError
// "<origin>: offset <n>: <what>", and the writer refuses (lpu::Error) any Program the reader
// would refuse, so a written object always loads.
#include "lpu/asm/object.hpp"

#include <fmt/format.h>

#include <boost/crc.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <string_view>
#include <utility>

#include "lpu/common/errors.hpp"
#include "lpu/isa/isa.hpp"

namespace lpu::obj {
namespace {

// ---- layout constants (docs/object-format.md) ----
constexpr std::array<std::uint8_t, 8> kMagic = {0x89, 'L', 'P', 'O', '\r', '\n', 0x1a, '\n'};
constexpr std::size_t kOffVersion = 8;
constexpr std::size_t kOffFlags = 12;
constexpr std::size_t kOffLength = 16;
constexpr std::size_t kOffCount = 24;
constexpr std::size_t kHeaderBytes = 28;
constexpr std::size_t kTrailerBytes = 4;  // CRC-32
constexpr std::size_t kSectionHeaderBytes = 12;  // u32 type, u64 payload length

enum SectionType : std::uint32_t {
  kGeometry = 1,
  kRegisters = 2,
  kQueue = 3,
  kData = 4,
  kSymbols = 5,
  kPerm = 6,
};

const char* section_name(std::uint32_t t) {
  switch (t) {
    case kGeometry: return "geometry";
    case kRegisters: return "registers";
    case kQueue: return "queue";
    case kData: return "data";
    case kSymbols: return "symbols";
    case kPerm: return "perm";
    default: return "unknown";
  }
}

std::uint32_t crc32(std::span<const std::uint8_t> b) {
  boost::crc_32_type c;
  c.process_bytes(b.data(), b.size());
  return c.checksum();
}

// Geometry fields in file order, for the writer, the reader and the checks.
struct GeomField {
  const char* name;
  std::int32_t Geometry::*field;
};
constexpr std::array<GeomField, 9> kGeomFields = {{
    {"vector_bytes", &Geometry::vector_bytes},
    {"streams_per_direction", &Geometry::streams_per_direction},
    {"mem_slices_per_hemisphere", &Geometry::mem_slices_per_hemisphere},
    {"mem_rows", &Geometry::mem_rows},
    {"vxm_queues", &Geometry::vxm_queues},
    {"sxm_queues_per_hemisphere", &Geometry::sxm_queues_per_hemisphere},
    {"mxm_planes", &Geometry::mxm_planes},
    {"mxm_queues_per_plane", &Geometry::mxm_queues_per_plane},
    {"mxm_accumulators", &Geometry::mxm_accumulators},
}};

// ---------------------------------------------------------------------------------------------
// Writer

class Writer {
 public:
  std::vector<std::uint8_t> out;

  void u8(std::uint8_t v) { out.push_back(v); }
  void u16(std::uint16_t v) {
    for (int i = 0; i < 2; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  }
  void u32(std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  }
  void u64(std::uint64_t v) {
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  }
  void i32(std::int32_t v) { u32(static_cast<std::uint32_t>(v)); }
  void i64(std::int64_t v) { u64(static_cast<std::uint64_t>(v)); }
  void count(std::size_t n, std::string_view what) {
    if (n > 0xffffffffu)
      throw Error(fmt::format("write_object: {} has {} entries, more than a u32 count holds", what, n));
    u32(static_cast<std::uint32_t>(n));
  }
  void str(const std::string& s, std::string_view what) {
    count(s.size(), what);
    out.insert(out.end(), s.begin(), s.end());
  }
  void put_u64_at(std::size_t at, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) out[at + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(v >> (8 * i));
  }
  void put_u32_at(std::size_t at, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out[at + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(v >> (8 * i));
  }

  std::size_t begin_section(SectionType t) {
    u32(t);
    std::size_t at = out.size();
    u64(0);  // patched by end_section
    ++sections;
    return at;
  }
  void end_section(std::size_t at) { put_u64_at(at, out.size() - (at + 8)); }

  std::uint32_t sections = 0;
};

[[noreturn]] void wfail(const std::string& msg) { throw Error("write_object: " + msg); }

// The same consistency rules the reader enforces, checked before anything is written.
void validate_for_write(const Program& p) {
  for (const auto& f : kGeomFields)
    if (p.geometry.*f.field < 0) wfail(fmt::format("geometry {} is negative ({})", f.name, p.geometry.*f.field));
  if (p.regs[0] != 0) wfail(fmt::format("register r0 must be 0, is {}", p.regs[0]));
  const auto vb = static_cast<std::size_t>(p.geometry.vector_bytes);
  std::set<std::string_view> names;
  for (const auto& q : p.queues) {
    if (!names.insert(q.name).second) wfail(fmt::format("duplicate queue \"{}\"", q.name));
    for (std::size_t i = 0; i < q.words.size(); ++i) {
      try {
        (void)isa::decode(q.words[i]);
      } catch (const FormatError& e) {
        wfail(fmt::format("queue \"{}\" word {} does not decode: {}", q.name, i, e.what()));
      }
    }
  }
  for (const auto& d : p.data)
    if (vb == 0 ? !d.bytes.empty() : d.bytes.size() % vb != 0)
      wfail(fmt::format("data for {} row {}: {} bytes is not a multiple of vector_bytes {}", d.slice,
                        d.row, d.bytes.size(), vb));
  names.clear();
  for (const auto& s : p.symbols) {
    if (!names.insert(s.name).second) wfail(fmt::format("duplicate symbol \"{}\"", s.name));
    if (static_cast<unsigned>(s.dtype) >= static_cast<unsigned>(isa::kNumDtypes))
      wfail(fmt::format("symbol \"{}\": dtype code {} out of range", s.name, static_cast<unsigned>(s.dtype)));
    if (s.slices.empty()) wfail(fmt::format("symbol \"{}\" has no slices", s.name));
    for (auto d : s.shape)
      if (d < 0) wfail(fmt::format("symbol \"{}\" has negative dimension {}", s.name, d));
  }
  std::set<std::pair<std::string_view, std::uint32_t>> tables;
  for (const auto& t : p.perms) {
    if (!tables.insert({t.sxm, t.index}).second)
      wfail(fmt::format("duplicate perm table {} {}", t.sxm, t.index));
    if (t.map.size() != vb)
      wfail(fmt::format("perm table {} {}: map has {} entries, vector_bytes is {}", t.sxm, t.index,
                        t.map.size(), vb));
    for (std::size_t i = 0; i < t.map.size(); ++i)
      if (t.map[i] >= vb)
        wfail(fmt::format("perm table {} {}: map[{}] = {} is not below vector_bytes {}", t.sxm,
                          t.index, i, t.map[i], vb));
  }
}

// ---------------------------------------------------------------------------------------------
// Reader

class Reader {
 public:
  Reader(std::span<const std::uint8_t> b, const std::string& origin) : b_(b), origin_(origin) {}

  [[noreturn]] void fail(std::size_t off, const std::string& msg) const {
    throw FormatError(fmt::format("{}: offset {}: {}", origin_, off, msg));
  }

  std::size_t pos() const { return pos_; }
  std::size_t left() const { return end_ - pos_; }
  void set_window(std::size_t pos, std::size_t end) {
    pos_ = pos;
    end_ = end;
  }

  // Every read goes through here: `n` bytes for `what`, inside the current window.
  void need(std::size_t n, std::string_view what) const {
    if (n > left())
      fail(pos_, fmt::format("{} needs {} bytes but only {} remain in the {}", what, n, left(),
                             window_name_));
  }
  void set_window_name(std::string name) { window_name_ = std::move(name); }

  std::uint64_t uint(int nbytes, std::string_view what) {
    need(static_cast<std::size_t>(nbytes), what);
    std::uint64_t v = 0;
    for (int i = 0; i < nbytes; ++i) v |= std::uint64_t(b_[pos_ + static_cast<std::size_t>(i)]) << (8 * i);
    pos_ += static_cast<std::size_t>(nbytes);
    return v;
  }
  std::uint8_t u8(std::string_view what) { return static_cast<std::uint8_t>(uint(1, what)); }
  std::uint16_t u16(std::string_view what) { return static_cast<std::uint16_t>(uint(2, what)); }
  std::uint32_t u32(std::string_view what) { return static_cast<std::uint32_t>(uint(4, what)); }
  std::uint64_t u64(std::string_view what) { return uint(8, what); }
  std::int32_t i32(std::string_view what) { return static_cast<std::int32_t>(u32(what)); }
  std::int64_t i64(std::string_view what) { return static_cast<std::int64_t>(u64(what)); }

  // A u32 element count, checked against the bytes left: each element takes at least
  // `min_elem_bytes`, so the count can never make us allocate more than the input holds.
  std::size_t count(std::size_t min_elem_bytes, std::string_view what) {
    const std::size_t at = pos_;
    const std::uint64_t n = u32(what);
    if (n * min_elem_bytes > left())
      fail(at, fmt::format("{} {} exceeds the remaining bytes ({} left in the {}, at least {} needed)",
                           what, n, left(), window_name_, n * min_elem_bytes));
    return static_cast<std::size_t>(n);
  }

  std::string str(std::string_view what) {
    const std::size_t n = count(1, fmt::format("{} length", what));
    std::string s(reinterpret_cast<const char*>(b_.data() + pos_), n);
    pos_ += n;
    return s;
  }

  void bytes(std::vector<std::uint8_t>& out, std::size_t n) {
    out.assign(b_.begin() + static_cast<std::ptrdiff_t>(pos_),
               b_.begin() + static_cast<std::ptrdiff_t>(pos_ + n));
    pos_ += n;
  }

 private:
  std::span<const std::uint8_t> b_;
  const std::string& origin_;
  std::size_t pos_ = 0;
  std::size_t end_ = 0;
  std::string window_name_ = "file";
};

std::string plural(std::uint64_t n, std::string_view unit) {
  return fmt::format("{} {}{}", n, unit, n == 1 ? "" : "s");
}

std::string hex_bytes(std::span<const std::uint8_t> b) {
  std::string s;
  for (auto x : b) s += fmt::format("{}{:02x}", s.empty() ? "" : " ", x);
  return s;
}

void read_geometry(Reader& r, Geometry& g) {
  g.preset = r.str("geometry preset name");
  for (const auto& f : kGeomFields) {
    const std::size_t at = r.pos();
    g.*f.field = r.i32(f.name);
    if (g.*f.field < 0) r.fail(at, fmt::format("geometry {} is negative ({})", f.name, g.*f.field));
  }
}

void read_registers(Reader& r, std::array<std::uint32_t, 16>& regs) {
  for (std::size_t i = 0; i < regs.size(); ++i) {
    const std::size_t at = r.pos();
    regs[i] = r.u32(fmt::format("register r{}", i));
    if (i == 0 && regs[0] != 0) r.fail(at, fmt::format("register r0 must be 0, is {}", regs[0]));
  }
}

QueueCode read_queue(Reader& r) {
  QueueCode q;
  q.name = r.str("queue name");
  const std::size_t n = r.count(8, "queue word count");
  q.words.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t at = r.pos();
    const std::uint64_t w = r.u64("instruction word");
    try {
      (void)isa::decode(w);
    } catch (const FormatError& e) {
      r.fail(at, fmt::format("queue \"{}\" word {} does not decode: {}", q.name, i, e.what()));
    }
    q.words.push_back(w);
  }
  return q;
}

DataSection read_data(Reader& r, std::int32_t vector_bytes) {
  DataSection d;
  d.slice = r.str("data slice name");
  d.row = r.u32("data row");
  const std::size_t at = r.pos();
  const std::size_t n = r.count(1, "data byte count");
  const auto vb = static_cast<std::size_t>(vector_bytes);
  if (vb == 0 ? n != 0 : n % vb != 0)
    r.fail(at, fmt::format("data section for {} row {}: size {} is not a multiple of vector_bytes {}",
                           d.slice, d.row, n, vb));
  r.bytes(d.bytes, n);
  return d;
}

std::vector<Symbol> read_symbols(Reader& r) {
  std::vector<Symbol> out;
  // Smallest symbol: name length 4, dtype 1, start_row 4, rank 4, slice count 4, one slice 4.
  const std::size_t n = r.count(21, "symbol count");
  out.reserve(n);
  std::set<std::string> names;
  for (std::size_t k = 0; k < n; ++k) {
    Symbol s;
    const std::size_t at = r.pos();
    s.name = r.str("symbol name");
    if (!names.insert(s.name).second) r.fail(at, fmt::format("duplicate symbol \"{}\"", s.name));
    const std::size_t dt_at = r.pos();
    const std::uint8_t dt = r.u8("symbol dtype");
    if (dt >= isa::kNumDtypes)
      r.fail(dt_at, fmt::format("symbol \"{}\": dtype code {} out of range (0..{})", s.name, dt,
                                isa::kNumDtypes - 1));
    s.dtype = static_cast<isa::Dtype>(dt);
    s.start_row = r.u32("symbol start row");
    const std::size_t rank = r.count(8, "symbol rank");
    s.shape.reserve(rank);
    for (std::size_t i = 0; i < rank; ++i) {
      const std::size_t d_at = r.pos();
      const std::int64_t d = r.i64("symbol dimension");
      if (d < 0) r.fail(d_at, fmt::format("symbol \"{}\" has negative dimension {}", s.name, d));
      s.shape.push_back(d);
    }
    const std::size_t ns_at = r.pos();
    const std::size_t ns = r.count(4, "symbol slice count");
    if (ns == 0) r.fail(ns_at, fmt::format("symbol \"{}\" has an empty slice list", s.name));
    s.slices.reserve(ns);
    for (std::size_t i = 0; i < ns; ++i) s.slices.push_back(r.str("symbol slice name"));
    out.push_back(std::move(s));
  }
  return out;
}

PermTable read_perm(Reader& r, std::int32_t vector_bytes) {
  PermTable t;
  t.sxm = r.str("perm table sxm name");
  t.index = r.u32("perm table index");
  const std::size_t at = r.pos();
  const std::size_t n = r.count(2, "perm map size");
  const auto vb = static_cast<std::size_t>(vector_bytes);
  if (n != vb)
    r.fail(at, fmt::format("perm table {} {}: map size {} != vector_bytes {}", t.sxm, t.index, n, vb));
  t.map.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t e_at = r.pos();
    const std::uint16_t v = r.u16("perm map entry");
    if (v >= vb)
      r.fail(e_at, fmt::format("perm table {} {}: map[{}] = {} is not below vector_bytes {}", t.sxm,
                               t.index, i, v, vb));
    t.map.push_back(v);
  }
  return t;
}

}  // namespace

std::vector<std::uint8_t> write_object(const Program& p) {
  validate_for_write(p);
  Writer w;
  w.out.insert(w.out.end(), kMagic.begin(), kMagic.end());
  w.u32(kVersion);
  w.u32(0);  // flags
  w.u64(0);  // total length, patched below
  w.u32(0);  // section count, patched below

  auto s = w.begin_section(kGeometry);
  w.str(p.geometry.preset, "geometry preset name");
  for (const auto& f : kGeomFields) w.i32(p.geometry.*f.field);
  w.end_section(s);

  s = w.begin_section(kRegisters);
  for (auto r : p.regs) w.u32(r);
  w.end_section(s);

  for (const auto& q : p.queues) {
    s = w.begin_section(kQueue);
    w.str(q.name, "queue name");
    w.count(q.words.size(), "queue " + q.name);
    for (auto word : q.words) w.u64(word);
    w.end_section(s);
  }
  for (const auto& d : p.data) {
    s = w.begin_section(kData);
    w.str(d.slice, "data slice name");
    w.u32(d.row);
    w.count(d.bytes.size(), "data section " + d.slice);
    w.out.insert(w.out.end(), d.bytes.begin(), d.bytes.end());
    w.end_section(s);
  }
  if (!p.symbols.empty()) {
    s = w.begin_section(kSymbols);
    w.count(p.symbols.size(), "symbol table");
    for (const auto& sym : p.symbols) {
      w.str(sym.name, "symbol name");
      w.u8(static_cast<std::uint8_t>(sym.dtype));
      w.u32(sym.start_row);
      w.count(sym.shape.size(), "symbol shape");
      for (auto d : sym.shape) w.i64(d);
      w.count(sym.slices.size(), "symbol slices");
      for (const auto& sl : sym.slices) w.str(sl, "symbol slice name");
    }
    w.end_section(s);
  }
  for (const auto& t : p.perms) {
    s = w.begin_section(kPerm);
    w.str(t.sxm, "perm table sxm name");
    w.u32(t.index);
    w.count(t.map.size(), "perm map");
    for (auto v : t.map) w.u16(v);
    w.end_section(s);
  }

  w.put_u64_at(kOffLength, w.out.size() + kTrailerBytes);
  w.put_u32_at(kOffCount, w.sections);
  w.u32(crc32(w.out));
  return std::move(w.out);
}

Program read_object(std::span<const std::uint8_t> bytes, const std::string& origin) {
  Reader r(bytes, origin);
  const std::size_t size = bytes.size();

  // Magic first (on whatever is there), so a wrong file type is named as such even when short.
  const std::size_t have = std::min(size, kMagic.size());
  if (!std::equal(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(have), kMagic.begin()))
    r.fail(0, fmt::format("bad magic: not an LPU object file (starts {}, expected {})",
                          hex_bytes(bytes.first(have)), hex_bytes(kMagic)));
  if (size < kOffVersion + 4)
    r.fail(size, fmt::format("truncated: file is {} bytes, the header alone is {}", size, kHeaderBytes));
  r.set_window(kOffVersion, size);
  const std::uint32_t version = r.u32("version");
  if (version != kVersion)
    r.fail(kOffVersion, fmt::format("unsupported object version {} (this build reads version {})",
                                    version, kVersion));
  if (size < kHeaderBytes)
    r.fail(size, fmt::format("truncated: file is {} bytes, the header alone is {}", size, kHeaderBytes));
  const std::uint32_t flags = r.u32("flags");
  if (flags != 0) r.fail(kOffFlags, fmt::format("unknown header flags {:#x} (none are defined)", flags));
  const std::uint64_t total = r.u64("total length");
  const std::uint32_t nsections = r.u32("section count");
  if (total < kHeaderBytes + kTrailerBytes)
    r.fail(kOffLength, fmt::format("total length {} is smaller than header plus trailer ({})", total,
                                   kHeaderBytes + kTrailerBytes));
  if (total > size)
    r.fail(size, fmt::format("truncated: header says the object is {} bytes, only {} present", total, size));
  if (total < size)
    r.fail(static_cast<std::size_t>(total),
           fmt::format("trailing garbage: {} after the end of the object ({} bytes)",
                       plural(size - total, "byte"), total));

  const std::size_t body_end = size - kTrailerBytes;
  r.set_window(body_end, size);
  const std::uint32_t stored = r.u32("checksum");
  const std::uint32_t computed = crc32(bytes.first(body_end));
  if (stored != computed)
    r.fail(body_end, fmt::format("checksum mismatch: stored {:#010x}, computed {:#010x} (file is corrupt)",
                                 stored, computed));

  if (std::uint64_t(nsections) * kSectionHeaderBytes > body_end - kHeaderBytes)
    r.fail(kOffCount, fmt::format("section count {} exceeds what the remaining {} bytes can hold",
                                  nsections, body_end - kHeaderBytes));

  Program p;
  bool have_geometry = false, have_registers = false, have_symbols = false;
  std::set<std::string> queue_names;
  std::set<std::pair<std::string, std::uint32_t>> perm_keys;
  std::size_t pos = kHeaderBytes;
  for (std::uint32_t k = 0; k < nsections; ++k) {
    const std::size_t sec_at = pos;
    r.set_window(pos, body_end);
    r.set_window_name("file");
    const std::uint32_t type = r.u32("section type");
    const std::uint64_t len = r.u64("section length");
    const std::size_t payload = r.pos();
    if (len > r.left())
      r.fail(sec_at + 4, fmt::format("{} section {} length {} exceeds the {} bytes left before the trailer",
                                     section_name(type), k, len, r.left()));
    const std::size_t sec_end = payload + static_cast<std::size_t>(len);
    r.set_window(payload, sec_end);
    r.set_window_name(fmt::format("{} section", section_name(type)));
    if (k == 0 && type != kGeometry)
      r.fail(sec_at, fmt::format("the first section must be geometry, found type {} ({})", type,
                                 section_name(type)));
    switch (type) {
      case kGeometry:
        if (have_geometry) r.fail(sec_at, "duplicate geometry section");
        have_geometry = true;
        read_geometry(r, p.geometry);
        break;
      case kRegisters:
        if (have_registers) r.fail(sec_at, "duplicate registers section");
        have_registers = true;
        read_registers(r, p.regs);
        break;
      case kQueue: {
        auto q = read_queue(r);
        if (!queue_names.insert(q.name).second)
          r.fail(sec_at, fmt::format("duplicate queue section for \"{}\"", q.name));
        p.queues.push_back(std::move(q));
        break;
      }
      case kData:
        p.data.push_back(read_data(r, p.geometry.vector_bytes));
        break;
      case kSymbols:
        if (have_symbols) r.fail(sec_at, "duplicate symbols section");
        have_symbols = true;
        p.symbols = read_symbols(r);
        break;
      case kPerm: {
        auto t = read_perm(r, p.geometry.vector_bytes);
        if (!perm_keys.insert({t.sxm, t.index}).second)
          r.fail(sec_at, fmt::format("duplicate perm table {} {}", t.sxm, t.index));
        p.perms.push_back(std::move(t));
        break;
      }
      default:
        r.fail(sec_at, fmt::format("unknown section type {}", type));
    }
    if (r.pos() != sec_end)
      r.fail(r.pos(), fmt::format("{} section {} has {} unused at its end (length {})",
                                  section_name(type), k, plural(sec_end - r.pos(), "byte"), len));
    pos = sec_end;
  }
  if (pos != body_end)
    r.fail(pos, fmt::format("trailing garbage: {} after the last of {} sections",
                            plural(body_end - pos, "byte"), nsections));
  if (!have_geometry) r.fail(kHeaderBytes, "no geometry section");
  if (!have_registers) r.fail(kHeaderBytes, "no registers section");
  return p;
}

void save_object(const Program& p, const std::string& path) {
  const auto bytes = write_object(p);
  // Write a sibling temporary and rename it, so a reader never sees a half-written object.
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw Error(fmt::format("{}: cannot write: {}", path, std::strerror(errno)));
    f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    f.flush();
    if (!f) {
      std::error_code ec;
      std::filesystem::remove(tmp, ec);
      throw Error(fmt::format("{}: write failed: {}", path, std::strerror(errno)));
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::error_code ignore;
    std::filesystem::remove(tmp, ignore);
    throw Error(fmt::format("{}: cannot write: {}", path, ec.message()));
  }
}

Program load_object(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw Error(fmt::format("{}: cannot open: is a directory", path));
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) throw Error(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
  const std::streamoff size = f.tellg();
  if (size < 0) throw Error(fmt::format("{}: cannot determine the file size", path));
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(size));
  f.seekg(0);
  f.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!f) throw Error(fmt::format("{}: read failed: {}", path, std::strerror(errno)));
  return read_object(bytes, path);
}

}  // namespace lpu::obj
