// An object checked against the chip it is loaded on (obj::check_program in object.hpp).
//
// read_object checks an object's own consistency (sizes, checksums, encodings); only the chip
// knows its slices, rows, streams and tables. Every loader - the chip model (lpu run, racks,
// the runtime and its server), the RTL harness - calls this before anything indexes memory
// with a value from the object, so that a hostile or corrupt object is an error, never memory
// corruption. Operands a REPEAT steps are checked where they are stepped (the runtime's
// timing-only run; the model at issue).
#include <fmt/format.h>

#include <algorithm>

#include "lpu/arch/layout.hpp"
#include "lpu/arch/params.hpp"
#include "lpu/asm/object.hpp"
#include "lpu/common/errors.hpp"
#include "lpu/isa/isa.hpp"

namespace lpu::obj {

namespace {

// Limits that keep every size below in int64 without overflow: 2^40 elements per dimension,
// 2^44 bytes per symbol (far beyond any SRAM: 4096 x 2 slices x 2^20 rows x 4096 bytes = 2^45
// is the largest chip a preset describes, and a symbol lives in one slice list of it).
constexpr std::int64_t kMaxDim = std::int64_t(1) << 40;
constexpr std::int64_t kMaxSymbolBytes = std::int64_t(1) << 44;

}  // namespace

std::int64_t symbol_bytes(const Symbol& s) {
  std::int64_t n = isa::dtype_bytes(s.dtype);
  for (auto d : s.shape) {
    if (d < 0 || d > kMaxDim || (d > 0 && n > kMaxSymbolBytes / d))
      throw FormatError(fmt::format("symbol '{}': shape too large ({} bytes at most)", s.name, kMaxSymbolBytes));
    n *= d;
  }
  return n;
}

void check_program(const Program& prog, const ChipParams& p, const Layout& lay, const std::string& origin) {
  const std::int64_t V = p.vector_bytes();
  auto bad = [&origin](const std::string& where, const std::string& what) {
    throw FormatError(fmt::format("{}: {}: {}", origin, where, what));
  };
  auto mem_slice = [&](const std::string& name) -> bool {
    auto id = lay.find_slice(name);
    return id && lay.slice(*id).kind == SliceKind::Mem;
  };
  for (const auto& d : prog.data) {
    const std::string w = fmt::format("data for '{}' at row {}", d.slice, d.row);
    if (!mem_slice(d.slice)) bad(w, fmt::format("'{}' is not a MEM slice of preset '{}'", d.slice, p.name));
    if (std::int64_t(d.bytes.size()) % V != 0) bad(w, fmt::format("{} bytes is not a whole number of {}-byte rows", d.bytes.size(), V));
    const std::int64_t rows = std::int64_t(d.bytes.size()) / V;
    if (std::int64_t(d.row) + rows > p.mem.rows)  // d.row < 2^32, rows < 2^61: no overflow
      bad(w, fmt::format("rows {}..{} beyond the {} rows of a slice", d.row, std::int64_t(d.row) + rows - 1, p.mem.rows));
  }
  for (const auto& sym : prog.symbols) {
    const std::string w = fmt::format("symbol '{}'", sym.name);
    if (sym.slices.empty()) bad(w, "no slices");
    std::int64_t n = 0;
    try {
      n = symbol_bytes(sym);
    } catch (const FormatError&) {
      bad(w, fmt::format("shape too large ({} bytes at most)", kMaxSymbolBytes));
    }
    for (const auto& sl : sym.slices)
      if (!mem_slice(sl)) bad(w, fmt::format("'{}' is not a MEM slice of preset '{}'", sl, p.name));
    // Row k of the symbol lives in slices[k % S] at start_row + k / S: the last row used is
    // start_row + ceil(rows / S) - 1. start_row < 2^32 and rows < 2^44: no overflow in int64.
    const auto S = std::int64_t(sym.slices.size());
    const std::int64_t rows = (n + V - 1) / V;
    const std::int64_t per_slice = (rows + S - 1) / S;
    if (std::int64_t(sym.start_row) + std::max<std::int64_t>(per_slice, 1) > p.mem.rows)
      bad(w, fmt::format("rows {}..{} beyond the {} rows of a slice ({} bytes in {} slices)", sym.start_row,
                         std::int64_t(sym.start_row) + std::max<std::int64_t>(per_slice, 1) - 1, p.mem.rows, n, S));
  }
  for (const auto& t : prog.perms) {
    const std::string w = fmt::format("permutation table {} of {}", t.index, t.sxm);
    auto id = lay.find_slice(t.sxm);
    if (!id || lay.slice(*id).kind != SliceKind::Sxm) bad(w, fmt::format("'{}' is not an SXM of preset '{}'", t.sxm, p.name));
    if (std::int64_t(t.index) >= p.sxm.perm_tables) bad(w, fmt::format("index beyond the {} tables", p.sxm.perm_tables));
    if (std::int64_t(t.map.size()) != V) bad(w, fmt::format("{} entries, a vector has {} bytes", t.map.size(), V));
    for (auto m : t.map)
      if (std::int64_t(m) >= V) bad(w, fmt::format("entry {} beyond the vector's {} bytes", m, V));
  }
  for (const auto& q : prog.queues) {
    const auto qid = lay.find_queue(q.name);
    if (!qid) bad(fmt::format("queue '{}'", q.name), fmt::format("preset '{}' has no such queue", p.name));
    for (std::size_t i = 0; i < q.words.size(); ++i) {
      auto in = isa::decode(q.words[i]);
      const auto& ii = isa::info(in.op);
      // Where, for a message (formatted only then: a program has a word per instruction).
      const auto w = [&] { return fmt::format("queue {} word {} ({})", q.name, i, ii.mnemonic); };
      const std::int64_t tb = ii.types ? isa::dtype_bytes(in.t) : 1;
      for (int m = 0; m < ii.num_operands; ++m) {
        const auto v = in.v[std::size_t(m)];
        switch (ii.operands[std::size_t(m)].kind) {
          case isa::Kind::Stream:
            if (StreamRef::unpack(std::uint64_t(v)).id >= p.stream.per_direction)
              bad(w(), fmt::format("stream s{} beyond the {} streams per direction", StreamRef::unpack(std::uint64_t(v)).id,
                                 p.stream.per_direction));
            break;
          case isa::Kind::Acc:
            if (v >= p.mxm.accumulators) bad(w(), fmt::format("accumulator {} beyond the {} of a plane", v, p.mxm.accumulators));
            break;
          case isa::Kind::Row:
            if (v >= V / tb) bad(w(), fmt::format("weight row {} beyond the {} rows of .{} weights", v, V / tb, isa::dtype_info(in.t).name));
            break;
          case isa::Kind::Part:
            if (in.op == isa::Op::Cvt) {
              // The slice of a widening or the place of a narrowing (the assembler's rule).
              const std::int64_t a = isa::dtype_bytes(in.t), b = isa::dtype_bytes(in.t2);
              const std::int64_t parts = std::max(a, b) / std::min(a, b);
              if (v >= parts)
                bad(w(), fmt::format("part {}: a .{}.{} conversion has parts 0..{}", v, isa::dtype_info(in.t).name,
                                   isa::dtype_info(in.t2).name, parts - 1));
            } else if (v >= tb) {
              bad(w(), fmt::format("part {}: a .{} read has parts 0..{}", v, isa::dtype_info(in.t).name, tb - 1));
            }
            break;
          case isa::Kind::Lane:
            if (v >= V / tb) bad(w(), fmt::format("lane {} beyond the {} lanes of .{}", v, V / tb, isa::dtype_info(in.t).name));
            break;
          case isa::Kind::Shamt:
            if (v >= 8 * tb) bad(w(), fmt::format("shift {} beyond the {} bits of .{}", v, 8 * tb, isa::dtype_info(in.t).name));
            break;
          case isa::Kind::Table:
            if (v >= p.sxm.perm_tables) bad(w(), fmt::format("table {} beyond the {} tables", v, p.sxm.perm_tables));
            break;
          case isa::Kind::Link:
            if (v >= p.c2c.links) bad(w(), fmt::format("link {} beyond the chip's {} links", v, p.c2c.links));
            break;
          case isa::Kind::Chan:
            if (v >= p.dma.channels) bad(w(), fmt::format("DMA channel {} beyond the chip's {} channels", v, p.dma.channels));
            break;
          // LWM (docs/timing.md rule 15a): the plane of the queue's hemisphere, the staging rows.
          case isa::Kind::Srow:
            if (v >= p.mem.rows) bad(w(), fmt::format("row {} beyond the {} rows of a slice", v, p.mem.rows));
            break;
          case isa::Kind::Plane: {
            const auto& sl = lay.slice(lay.queue(*qid).slice);
            int planes = 0;
            for (const auto& s : lay.slices()) planes += s.kind == SliceKind::Mxm && s.hemi == sl.hemi;
            if (v >= planes) bad(w(), fmt::format("plane {} beyond the {} MXM plane(s) of {}'s hemisphere", v, planes, sl.name));
            break;
          }
          case isa::Kind::Wrow:
            if (v >= V / tb) bad(w(), fmt::format("weight row {} beyond the {} rows of .{} weights", v, V / tb, isa::dtype_info(in.t).name));
            break;
          case isa::Kind::Wrap:
            if (v < 1 || v > V / tb || in.v[2] >= v || in.v[3] > v)
              bad(w(), fmt::format("wrap {} (row {}, step {}): needs row < wrap, step <= wrap, wrap in 1..{}", v, in.v[2], in.v[3],
                                 V / tb));
            break;
          default: break;
        }
      }
    }
  }
}

}  // namespace lpu::obj
