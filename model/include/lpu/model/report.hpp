#pragma once
// Statistics as text and JSON (SI base units). Everything but "host" is deterministic.
#include <nlohmann/json.hpp>
#include <string>

#include "lpu/arch/params.hpp"
#include "lpu/model/stats.hpp"

namespace lpu::model {

struct HostStats {
  double wall_seconds = 0;
  bool timing_only = false;
};

// Energy from event counts and the preset's per-event energies (docs/energy.md).
struct Energy {
  double sram_j = 0, mxm_j = 0, vxm_j = 0, stream_j = 0, weight_bus_j = 0, link_j = 0, dma_j = 0, static_j = 0;
  double total_j() const { return sram_j + mxm_j + vxm_j + stream_j + weight_bus_j + link_j + dma_j + static_j; }
};
Energy energy(const ChipStats& s, const ChipParams& p);

// `tokens`: how many tokens the run produced (0: not a token-producing program); gives
// tokens/s and tokens/s per MW.
nlohmann::json stats_json(const ChipStats& s, const ChipParams& p, const HostStats* host, double tokens = 0);
// One row per unit kind: chip,unit,queues,instructions,busy_cycles,utilisation, then the chip
// totals as unit "chip".
std::string stats_csv(const ChipStats& s, const ChipParams& p, int chip = 0, bool header = true);
std::string format_stats(const ChipStats& s, const ChipParams& p, const HostStats& host, double tokens = 0);

}  // namespace lpu::model
