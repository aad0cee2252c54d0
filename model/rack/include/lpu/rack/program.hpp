#pragma once
// Multi-chip programs: which object each chip runs, with its registers and host I/O; the
// manifest format (TOML) that says so; and generators for programs too long to write by hand.
// Formats in docs/rack.md ("Programs").
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lpu/asm/assembler.hpp"
#include "lpu/asm/object.hpp"
#include "lpu/rack/config.hpp"

namespace lpu::rack {

// The assembler's schedule of one program: maps (queue, cycle) back to a source line.
struct SourceMap {
  std::vector<assembler::ScheduledInstr> schedule;
  // The instruction (or REPEAT instance) of `queue` issued in `cycle` (program cycles, before
  // any start skew), or null.
  const assembler::ScheduledInstr* find(const std::string& queue, std::int64_t cycle) const;
};

struct ChipProgram {
  std::shared_ptr<const obj::Program> object;  // null: the chip runs nothing
  std::shared_ptr<const SourceMap> source;     // null for objects loaded from .lpo
  // The program starts this many cycles after the chip's counter 0 (a leading NOP on every
  // queue): generators and the manifest key `start_delay` use it so that stages differing only
  // in time share one object.
  std::int64_t start_delay = 0;
  std::string label;                           // file name or generator
  std::vector<std::pair<int, std::uint32_t>> regs;                  // set after load
  std::vector<std::pair<std::string, std::string>> inputs, outputs;  // symbol -> .npy file
  std::vector<std::pair<int, std::string>> dma_in, dma_out;         // channel -> .npy file
};

struct RackProgram {
  std::string origin;
  std::vector<ChipProgram> chips;  // one per chip of the rack
  int distinct_objects() const;
};

// Contract: throws lpu::ConfigError naming the manifest key ("program[1].chips", ...) for a
// malformed manifest, lpu::AsmError for an error in a source, lpu::FormatError for a bad
// object; files are relative to the manifest's folder.
RackProgram load_manifest(const std::string& path, const RackConfig& cfg, const assembler::Options& opt = {});
RackProgram parse_manifest(const std::string& text, const std::string& origin, const std::string& base_dir,
                           const RackConfig& cfg, const assembler::Options& opt = {});

// A manifest (.toml), or one object (.lpo) or source (.lpa) that every chip runs.
RackProgram load_program(const std::string& path, const RackConfig& cfg, const assembler::Options& opt = {});

// Assembles one source text per chip (empty: no program) for that chip's parameters; chips
// with identical text and parameters share one object.
RackProgram assemble_sources(const RackConfig& cfg, const std::vector<std::string>& sources, const std::string& name,
                             const assembler::Options& opt = {});

// Per-chip integer expressions of manifests: + - * / % ( ), integers, `chip`, `nchips`, and the
// functions peer(l), peer_link(l), link_to(c), hop(l), ser(l), lat(l) (docs/rack.md).
std::int64_t eval_chip_expr(const std::string& expr, const RackConfig& cfg, int chip, const std::string& key);

// ---- Generators: .lpa text per chip ------------------------------------------------------

struct Generated {
  std::vector<std::string> sources;  // per chip of the rack; empty: no program
  std::vector<std::int64_t> delays;  // per chip: ChipProgram::start_delay (empty: all 0)
  std::vector<int> order;            // the chips in stage / ring order
  std::string description;
};

// assemble_sources plus the generator's start delays.
RackProgram assemble_generated(const RackConfig& cfg, const Generated& g, const std::string& name,
                               const assembler::Options& opt = {});

// A pipeline: stage k runs on order[k]; a stream of `vectors` int8 activation vectors enters
// the first stage by host DMA channel 0; each stage computes y = sat_i8(W x) on MXM plane
// mxm.e.0 with its own weights (symbol `W`, i8[n, n], n = vector bytes) and SENDs y to the next
// stage over the lowest link joining them; the last stage returns y by DMA channel 0.
// Consecutive chips of `order` must be linked. One vector every `period` cycles (0: the
// slowest link's serialisation).
struct PipelineSpec {
  std::vector<int> order;  // empty: 0, 1, ..., chips-1
  int vectors = 16;
  int period = 0;
};
struct PipelineTiming {
  std::int64_t period = 0;
  std::int64_t first_in = 0;           // DMAIN of vector 0 on the first stage
  std::int64_t last_out = 0;           // DMAOUT of the last vector on the last stage
  std::int64_t latency = 0;            // DMAIN to DMAOUT of one vector
  std::vector<std::int64_t> recv;      // per stage: first RECV (stage 0: DMAIN)
};
Generated gen_pipeline(const RackConfig& cfg, const PipelineSpec& spec, PipelineTiming* timing = nullptr);

// Ring all-reduce (reduce-scatter then all-gather, one vector per chunk) of symbol `X`
// (N vectors of `dtype`, N = ring size, in mem.w.0) into symbol `Y` (mem.e.0) on every chip of
// the ring. Chunk c is summed in ring order starting at ring position c (f32: that order of
// additions). Consecutive chips of `order` (and last to first) must be linked.
struct AllReduceSpec {
  std::vector<int> order;  // empty: 0, 1, ..., chips-1
  std::string dtype = "i32";  // i32 or f32
};
struct AllReduceTiming {
  std::int64_t first_send = 0;  // READ to SEND of the first chunk
  std::int64_t rs_step = 0;     // RECV to SEND through the VXM adder
  std::int64_t ag_step = 0;     // RECV to SEND when forwarding
  std::int64_t write = 0;       // RECV to the last result row written (WRITE issue + mem_write)
  std::vector<std::int64_t> end;  // per ring position: cycle the last WRITE lands
};
Generated gen_allreduce(const RackConfig& cfg, const AllReduceSpec& spec, AllReduceTiming* timing = nullptr);

}  // namespace lpu::rack
