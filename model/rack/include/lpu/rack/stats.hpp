#pragma once
// Rack statistics: per chip (model::ChipStats), per directed link, and totals. Everything but
// `host` is a function of the program and its inputs: identical for any thread count.
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "lpu/model/stats.hpp"
#include "lpu/rack/config.hpp"

namespace lpu::rack {

struct MinAvgMax {
  std::int64_t n = 0;
  std::int64_t min = std::numeric_limits<std::int64_t>::max();
  std::int64_t max = std::numeric_limits<std::int64_t>::min();
  double sum = 0;
  void add(std::int64_t v) {
    ++n;
    min = v < min ? v : min;
    max = v > max ? v : max;
    sum += double(v);
  }
  void add_n(std::int64_t v, std::int64_t count) {
    if (count <= 0) return;
    n += count;
    min = v < min ? v : min;
    max = v > max ? v : max;
    sum += double(v) * double(count);
  }
  void merge(const MinAvgMax& o) {
    if (o.n == 0) return;
    n += o.n;
    sum += o.sum;
    min = o.min < min ? o.min : min;
    max = o.max > max ? o.max : max;
  }
  double avg() const { return n ? sum / double(n) : 0; }
};

// One direction of one link: chip -> peer.
struct LinkStats {
  int chip = 0, link = 0, peer = 0, peer_link = 0;
  std::string cls;
  std::int64_t serialisation = 0, latency = 0;  // the link's parameters (sender cycles)
  double bytes_per_cycle = 0;                   // configured payload bandwidth
  std::int64_t transfers = 0, bytes = 0;
  std::int64_t busy_cycles = 0;   // transfers x serialisation
  std::int64_t first_depart = 0;  // sender cycles
  std::int64_t last_free = 0;     // departure of the last transfer + serialisation
  std::int64_t corrupted = 0;     // transfers that failed the CRC
  MinAvgMax latency_cycles;       // departure to arrival (receiver's cycle domain, reference cycles)
  MinAvgMax wait_cycles;          // arrival to the RECV that took it (receiver cycles)
  MinAvgMax send_to_recv_cycles;  // SEND issue to RECV issue (reference cycles)
  std::int64_t unreceived = 0;    // arrived but never taken by a RECV
  double utilisation(std::int64_t cycles) const { return cycles > 0 ? double(busy_cycles) / double(cycles) : 0; }
  // Payload bandwidth while active (first departure to the end of the last serialisation) as
  // a fraction of the configured bandwidth.
  double active_fraction() const {
    const auto span = last_free - first_depart;
    return span > 0 && bytes_per_cycle > 0 ? double(bytes) / double(span) / bytes_per_cycle : 0;
  }
};

struct RackStats {
  int chips = 0;
  double reference_clock_hz = 0;
  std::int64_t cycles = 0;  // the rack's program length: max over chips (reference cycles)
  std::vector<model::ChipStats> chip;      // per chip (chips without a program: zeros)
  std::vector<LinkStats> links;            // directed links that carried traffic
  std::int64_t transfers = 0, link_bytes = 0, corrupted = 0, unreceived = 0;
  MinAvgMax latency_cycles, send_to_recv_cycles;
  std::int64_t lookahead_ticks = 0;
  std::int64_t windows = 0;
  // Host side (not deterministic).
  int threads = 0;
  double wall_seconds = 0;
  bool timing_only = false;
  std::int64_t chip_cycles() const;  // sum over chips of their cycles
};

nlohmann::json rack_stats_json(const RackStats& s, const RackConfig& cfg, bool include_host = true);
std::string format_rack_stats(const RackStats& s, const RackConfig& cfg);

}  // namespace lpu::rack
