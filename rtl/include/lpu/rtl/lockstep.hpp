#pragma once
// Lockstep: one object on the RTL (RtlChip) and on the model (lpu::model::Chip, functional
// mode), advanced one cycle at a time and compared at every cycle:
//   - every stream register at every position (value and emptiness),
//   - every queue's issued instruction word, its index and cycle (model: Chip::set_issue_hook),
//   - every SRAM write (slice, rows, data, commit cycle; model: Observer::on_sram_write),
//   - every LWM row written into the plane's staging buffer (slice, staging row, data, landing
//     cycle; model: derived from the LWM's issue and the SRAM row it reads),
//   - every accumulator write (accumulator, value, commit cycle; model: Observer::on_acc_write,
//     which comes when the model computes its batched products: compared when it arrives),
//   - every ACCRD result (on the stream at the MXM), every DMAOUT and SEND vector and cycle,
//   - errors (both must stop in the same cycle), and at the end every SRAM row, the host DMA
//     output and the program length (ChipStats::cycles against the RTL's rule-23 count).
// The first difference stops the run and is reported with cycle, unit, place, expected, got.
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "lpu/arch/params.hpp"
#include "lpu/asm/object.hpp"
#include "lpu/rtl/rtl_chip.hpp"

namespace lpu::rtl {

struct LockstepOptions {
  int link_latency = 3;           // loopback: every link returns to this chip this many cycles later
  int dma_vectors = 16;           // random vectors pushed into every DMA input channel
  std::uint64_t dma_seed = 1;
  std::int64_t max_cycles = 5'000'000;
  std::string wave;               // RTL waveform (.fst or .vcd); empty: none
  bool flip_alu = false;          // test-only RTL mutation: flip bit 0 of VXM ALU results
  bool ignore_tr = false;         // test-only RTL mutation: IW.t 1 installs untransposed
  std::vector<std::pair<int, std::uint32_t>> regs;  // host register settings before the run
};

struct Mismatch {
  std::int64_t cycle = 0;
  std::string unit;      // "streams", "issue", "sram", "weight bus", "mxm", "dma", "c2c", "error", "end"
  std::string where;     // queue, slice, stream and position, address ...
  std::string expected;  // the model
  std::string got;       // the RTL
  std::string str() const;
};

struct LockstepStats {
  std::int64_t cycles = 0;              // cycles compared
  std::int64_t stream_checks = 0;       // (register, cycle) pairs compared
  std::int64_t stream_values = 0;       // ... of them holding a value
  std::int64_t issues = 0;              // instruction issues compared
  std::int64_t sram_writes = 0;
  std::int64_t weight_rows = 0;         // LWM rows landed in staging
  std::int64_t acc_writes = 0;
  std::int64_t accrd = 0;
  std::int64_t dma_out = 0;
  std::int64_t c2c = 0;
  std::int64_t model_cycles = 0;        // ChipStats::cycles
  std::int64_t rtl_cycles = 0;          // the RTL's program length
};

struct LockstepResult {
  std::optional<Mismatch> mismatch;
  std::string error;  // both stopped with an error in the same cycle (a consistent, invalid program)
  LockstepStats stats;
  bool ok() const { return !mismatch; }
  std::string report() const;
};

LockstepResult run_lockstep(RtlChip& rtl, const obj::Program& prog, const ChipParams& model_params,
                            const LockstepOptions& opt = {});
LockstepResult run_lockstep(const obj::Program& prog, const ChipParams& model_params, const LockstepOptions& opt = {});

// The DMA input vectors the lockstep pushes (and a program generator may rely on).
std::vector<Vec> lockstep_dma_vectors(const LockstepOptions& opt, int chan);

// One instruction word as text (mnemonic and operand values).
std::string describe_word(std::uint64_t word);

}  // namespace lpu::rtl
