#include "lpu/rack/stats.hpp"

#include <fmt/format.h>

#include "lpu/model/report.hpp"

namespace lpu::rack {

namespace {
nlohmann::json mam(const MinAvgMax& m) {
  if (m.n == 0) return {{"n", 0}};
  return {{"n", m.n}, {"min", m.min}, {"avg", m.avg()}, {"max", m.max}};
}
}  // namespace

std::int64_t RackStats::chip_cycles() const {
  std::int64_t n = 0;
  for (const auto& c : chip) n += c.cycles;
  return n;
}

nlohmann::json rack_stats_json(const RackStats& s, const RackConfig& cfg, bool include_host) {
  nlohmann::json j;
  const double secs = s.reference_clock_hz > 0 ? double(s.cycles) / s.reference_clock_hz : 0;
  j["rack"] = {{"chips", s.chips},
               {"topology", cfg.topology.describe()},
               {"reference_clock_hz", s.reference_clock_hz},
               {"cycles", s.cycles},
               {"seconds", secs},
               {"chip_cycles", s.chip_cycles()},
               {"transfers", s.transfers},
               {"link_bytes", s.link_bytes},
               {"link_bandwidth_bytes_per_s", secs > 0 ? double(s.link_bytes) / secs : 0.0},
               {"corrupted", s.corrupted},
               {"unreceived", s.unreceived},
               {"latency_cycles", mam(s.latency_cycles)},
               {"send_to_recv_cycles", mam(s.send_to_recv_cycles)},
               {"lookahead_reference_cycles", double(s.lookahead_ticks) / cfg.ticks_per_reference_cycle}};
  // The engine's windows: deterministic for a mode, but timing-only runs need fewer.
  j["engine"] = {{"windows", s.windows}, {"timing_only", s.timing_only}};
  nlohmann::json chips = nlohmann::json::array();
  for (int c = 0; c < s.chips; ++c) {
    auto cj = model::stats_json(s.chip[std::size_t(c)], cfg.chip(c), nullptr);
    cj["chip"] = c;
    chips.push_back(std::move(cj));
  }
  j["chips"] = std::move(chips);
  nlohmann::json links = nlohmann::json::array();
  for (const auto& l : s.links) {
    links.push_back({{"chip", l.chip},
                     {"link", l.link},
                     {"peer", l.peer},
                     {"peer_link", l.peer_link},
                     {"class", l.cls},
                     {"serialisation_cycles", l.serialisation},
                     {"latency_param_cycles", l.latency},
                     {"configured_bytes_per_cycle", l.bytes_per_cycle},
                     {"transfers", l.transfers},
                     {"bytes", l.bytes},
                     {"busy_cycles", l.busy_cycles},
                     {"utilisation", l.utilisation(s.chip[std::size_t(l.chip)].cycles)},
                     {"first_depart", l.first_depart},
                     {"last_free", l.last_free},
                     {"active_bandwidth_fraction", l.active_fraction()},
                     {"corrupted", l.corrupted},
                     {"unreceived", l.unreceived},
                     {"latency_cycles", mam(l.latency_cycles)},
                     {"wait_cycles", mam(l.wait_cycles)},
                     {"send_to_recv_cycles", mam(l.send_to_recv_cycles)}});
  }
  j["links"] = std::move(links);
  if (include_host)
    j["host"] = {{"threads", s.threads},
                 {"wall_seconds", s.wall_seconds},
                 {"chip_cycles_per_second", s.wall_seconds > 0 ? double(s.chip_cycles()) / s.wall_seconds : 0.0}};
  return j;
}

std::string format_rack_stats(const RackStats& s, const RackConfig& cfg) {
  std::string o;
  const double secs = s.reference_clock_hz > 0 ? double(s.cycles) / s.reference_clock_hz : 0;
  int running = 0;
  for (const auto& c : s.chip) running += c.cycles > 0;
  o += fmt::format("rack        {} chips ({} ran), {}\n", s.chips, running, cfg.topology.describe());
  o += fmt::format("cycles      {} ({:.3f} us at {:.3g} GHz); {} chip-cycles\n", s.cycles, secs * 1e6,
                   s.reference_clock_hz / 1e9, s.chip_cycles());
  o += fmt::format("links       {} transfers, {} bytes on {} directed links; {} corrupted, {} never received\n", s.transfers,
                   s.link_bytes, s.links.size(), s.corrupted, s.unreceived);
  if (s.latency_cycles.n)
    o += fmt::format("latency     departure to arrival: min {} avg {:.1f} max {} cycles\n", s.latency_cycles.min,
                     s.latency_cycles.avg(), s.latency_cycles.max);
  if (s.send_to_recv_cycles.n)
    o += fmt::format("SEND->RECV  min {} avg {:.1f} max {} cycles\n", s.send_to_recv_cycles.min,
                     s.send_to_recv_cycles.avg(), s.send_to_recv_cycles.max);
  double best = 0;
  const LinkStats* busiest = nullptr;
  for (const auto& l : s.links) {
    const double u = l.utilisation(s.chip[std::size_t(l.chip)].cycles);
    if (u > best) {
      best = u;
      busiest = &l;
    }
  }
  if (busiest)
    o += fmt::format("busiest     chip {} link {} -> chip {}: utilisation {:.1f}%, {:.1f}% of its bandwidth while active\n",
                     busiest->chip, busiest->link, busiest->peer, 100 * best, 100 * busiest->active_fraction());
  if (s.wall_seconds > 0)
    o += fmt::format("host        {:.3f} s on {} thread(s), {} windows of {:g} cycles; {:.3g} chip-cycles/s{}\n",
                     s.wall_seconds, s.threads, s.windows, double(s.lookahead_ticks) / cfg.ticks_per_reference_cycle,
                     double(s.chip_cycles()) / s.wall_seconds, s.timing_only ? " (timing-only)" : "");
  return o;
}

}  // namespace lpu::rack
