#pragma once
// What a device costs in host memory, computed from its chip parameters before anything is
// allocated. The engine refuses a device over its memory limit with it, and `lpu serve` an
// OPEN over the per-session limit (docs/protocol.md, "Limits"): a preset override such as
// `sxm.queues_per_hemisphere=2000000` is refused in microseconds instead of allocating
// gigabytes first.
//
// Contract: an upper bound of what the emulated chips allocate, whatever the program does:
//  - every chip the device holds, plus the chips it builds transiently (a run and a
//    load_program build a fresh chip beside the current one; the DMA schedule is a timing-only
//    chip; a rack keeps its last run's chips while it builds the next);
//  - SRAM at its configured size: pages are allocated as rows are written, and a run may write
//    every row, so what can be written is the whole SRAM;
//  - per-queue state and buffers (a TRANS buffer on every SXM queue), stream registers with a
//    value on every register of every diagonal in flight, MXM planes with double-buffered
//    weights, DMA channel and link queues.
// Not included, because they are charged as they arrive (EngineLimits::max_bytes): programs,
// weights and the host DMA data of runs. Pure arithmetic on the parameters, in double (no
// overflow for any int parameter), allocating nothing in proportion to them. The per-item byte
// costs are measured on this implementation (tests/runtime/test_memory.cpp checks that the
// estimate bounds what constructing chips really allocates).
#include <cstdint>
#include <string>
#include <vector>

#include "lpu/arch/params.hpp"
#include "lpu/common/errors.hpp"
#include "lpu/runtime/device.hpp"

namespace lpu::rt {

// A limit of the device or the server (memory) was exceeded; the message names the limit, the
// value and what to change. `lpu serve` replies with the protocol code LIMIT.
class LimitError : public lpu::Error {
 public:
  using lpu::Error::Error;
};

struct MemoryItem {
  std::string what;    // "SXM queues"
  std::string driver;  // the parameters it grows with: "sxm.queues_per_hemisphere = 2000000"
  double bytes = 0;
};

struct MemoryEstimate {
  double bytes = 0;
  std::vector<MemoryItem> items;  // largest first
  std::string copies;             // how many chips are counted: "1 chip + 1 built by a run"
  // "2.1 GiB for SXM queues (sxm.queues_per_hemisphere = 2000000), 1.0 GiB for SRAM (...)"
  std::string largest(std::size_t n = 2) const;
};

// One chip of `p`: functional (every unit's data) or timing-only (queues and bookkeeping).
MemoryEstimate chip_memory(const ChipParams& p, bool functional);

// A device of these chips (one per chip of a pipeline or rack), with its transient copies.
MemoryEstimate device_memory(const std::vector<ChipParams>& chips, bool timing_only, bool rack);

// The device `spec` describes (the preset with its overrides, `chips` times, or the rack
// file's chips): reads only the preset or rack file, whatever `chips` is. Throws ConfigError as
// load_preset does.
MemoryEstimate device_memory(const DeviceSpec& spec);

// Throws LimitError when `m` is over `limit` bytes, naming the largest items, their parameters,
// the limit and `how_to_raise` (e.g. "lpu serve --max-session-mib").
void require_memory(const MemoryEstimate& m, std::int64_t limit, const std::string& how_to_raise);

// "9.0 TiB", "1.5 GiB", "320.0 MiB", "12.0 KiB", "100 bytes".
std::string format_bytes(double bytes);

}  // namespace lpu::rt
