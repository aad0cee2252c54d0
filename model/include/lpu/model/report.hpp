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

nlohmann::json stats_json(const ChipStats& s, const ChipParams& p, const HostStats* host);
std::string format_stats(const ChipStats& s, const ChipParams& p, const HostStats& host);

}  // namespace lpu::model
