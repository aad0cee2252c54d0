#pragma once
// Constrained-random programs for the `mini` chip: valid, scheduled .lpa text (every
// instruction at an explicit cycle) mixing every unit, which the assembler accepts and which
// run without error on the model and the RTL under the lockstep's conventions (DMA inputs and
// link loopback of LockstepOptions). The same seed gives the same program.
#include <cstdint>
#include <string>

namespace lpu::rtl {

struct RandProgOptions {
  int patterns = 40;      // attempts to place a pattern (dataflow chain, MXM session, ICU, ...)
  int horizon = 160;      // issue cycles are drawn from [0, horizon)
  int dma_vectors = 16;   // vectors available per DMA input channel (LockstepOptions::dma_vectors)
  int link_latency = 3;   // loopback latency (LockstepOptions::link_latency)
  bool icu = true;        // SYNC/NOTIFY, CONFIG, DESKEW, HALT
};

std::string random_program(std::uint64_t seed, const RandProgOptions& opt = {});

}  // namespace lpu::rtl
