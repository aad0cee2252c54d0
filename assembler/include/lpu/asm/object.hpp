#pragma once
// The object file (.lpo): what the assembler produces and the model, RTL and runtime load.
// Byte layout in docs/object-format.md. In memory it is this plain struct.
#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "lpu/isa/isa_table.hpp"

namespace lpu {
struct ChipParams;
class Layout;
}  // namespace lpu

namespace lpu::obj {

inline constexpr std::uint32_t kVersion = 1;

// The chip geometry the program was assembled for. A loader compares it with the preset it
// runs on and refuses a mismatch (queue names and addresses would not mean the same).
struct Geometry {
  std::string preset;
  std::int32_t vector_bytes = 0;
  std::int32_t streams_per_direction = 0;
  std::int32_t mem_slices_per_hemisphere = 0;
  std::int32_t mem_rows = 0;
  std::int32_t vxm_queues = 0;
  std::int32_t sxm_queues_per_hemisphere = 0;
  std::int32_t mxm_planes = 0;
  std::int32_t mxm_queues_per_plane = 0;
  std::int32_t mxm_accumulators = 0;
  bool operator==(const Geometry&) const = default;
};

// One instruction queue's program, as the hardware sees it: words issued in order, with NOP
// and REPEAT standing for the schedule's gaps and repetitions.
struct QueueCode {
  std::string name;  // Layout queue name, e.g. "mem.w.3"
  std::vector<std::uint64_t> words;
  bool operator==(const QueueCode&) const = default;
};

// Initial SRAM contents: consecutive rows of one MEM slice from `row`; bytes is a whole
// number of vectors.
struct DataSection {
  std::string slice;  // "mem.e.0"
  std::uint32_t row = 0;
  std::vector<std::uint8_t> bytes;
  bool operator==(const DataSection&) const = default;
};

// A named tensor in SRAM (inputs, outputs, weights). Its bytes, row-major, are cut into
// vector-sized rows; row k lives in slices[k % slices.size()] at row start_row + k / slices.size().
struct Symbol {
  std::string name;
  isa::Dtype dtype = isa::Dtype::I8;
  std::vector<std::int64_t> shape;
  std::vector<std::string> slices;
  std::uint32_t start_row = 0;
  bool operator==(const Symbol&) const = default;
};

// An SXM permutation table: output byte i = input byte map[i]; map.size() == vector_bytes.
struct PermTable {
  std::string sxm;  // "sxm.w" or "sxm.e"
  std::uint32_t index = 0;
  std::vector<std::uint16_t> map;
  bool operator==(const PermTable&) const = default;
};

struct Program {
  Geometry geometry;
  std::array<std::uint32_t, 16> regs{};  // initial chip registers (r0 is always 0)
  std::vector<QueueCode> queues;
  std::vector<DataSection> data;
  std::vector<Symbol> symbols;
  std::vector<PermTable> perms;
  bool operator==(const Program&) const = default;
};

// Serialise deterministically (same Program, same bytes).
std::vector<std::uint8_t> write_object(const Program& p);

// Contract: never crashes and never allocates more than a small multiple of bytes.size() on any
// input; a truncated, corrupted (checksum), wrong-magic or wrong-version file, or one whose
// contents are inconsistent (sizes, counts, strings, instruction words that do not decode),
// throws lpu::FormatError whose message starts with `origin` and says what is wrong and at
// which byte offset.
Program read_object(std::span<const std::uint8_t> bytes, const std::string& origin);

// Checks a program against the chip it is about to be loaded on, before anything indexes
// memory with a value from it: data sections and symbols (every slice exists and is a MEM
// slice, every row lies inside the SRAM, sizes computed without overflow), permutation tables,
// queue names, and every operand that indexes something (streams, accumulators, weight rows,
// lanes, tables, links, DMA channels).
// Contract: every loader calls it (model::Chip::load, rtl::RtlChip::load, so `lpu run`, racks,
// the runtime and the server); it throws lpu::FormatError "ORIGIN: symbol 'x': rows ... beyond
// the N rows of a slice" and never reads out of bounds. The geometry is compared by the loader
// first (a program for another preset is reported as that, not as its symptoms).
void check_program(const Program& prog, const ChipParams& params, const Layout& layout, const std::string& origin);

// Bytes of a symbol (dtype size x every dimension); throws lpu::FormatError when the shape is
// beyond 2^44 bytes (it would not fit any chip, and the product could overflow).
std::int64_t symbol_bytes(const Symbol& s);

void save_object(const Program& p, const std::string& path);  // throws lpu::Error on I/O
Program load_object(const std::string& path);                 // throws lpu::FormatError / Error

}  // namespace lpu::obj
