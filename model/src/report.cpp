#include "lpu/model/report.hpp"

#include <fmt/format.h>

namespace lpu::model {

nlohmann::json stats_json(const ChipStats& s, const ChipParams& p, const HostStats* host) {
  auto k = peaks(p);
  nlohmann::json j;
  j["preset"] = p.name;
  j["cycles"] = s.cycles;
  j["clock_hz"] = s.clock_hz;
  j["seconds"] = s.seconds();
  j["sram_bytes_read"] = s.sram_bytes_read;
  j["sram_bytes_written"] = s.sram_bytes_written;
  j["sram_bandwidth_bytes_per_s"] = s.sram_read_bandwidth();
  j["sram_write_bandwidth_bytes_per_s"] = s.seconds() > 0 ? double(s.sram_bytes_written) / s.seconds() : 0.0;
  j["sram_peak_bandwidth_bytes_per_s"] = k.sram_bandwidth_bytes_per_s;
  j["sram_ecc_corrected"] = s.sram_ecc_corrected;
  j["mxm_macs"] = s.mxm_macs;
  j["mxm_passes"] = s.mxm_passes;
  j["mxm_utilisation"] = s.mxm_utilisation();
  j["vxm_element_ops"] = s.vxm_element_ops;
  j["link_bytes_sent"] = s.link_bytes_sent;
  j["link_bytes_received"] = s.link_bytes_received;
  j["dma_bytes_in"] = s.dma_bytes_in;
  j["dma_bytes_out"] = s.dma_bytes_out;
  nlohmann::json units;
  for (int u = 0; u < kNumUnitKinds; ++u) {
    const auto& x = s.units[std::size_t(u)];
    nlohmann::json ju;
    ju["instructions"] = x.instructions;
    ju["busy_cycles"] = x.busy_cycles;
    ju["queues"] = x.queues;
    ju["utilisation"] = x.queues > 0 && s.cycles > 0 ? double(x.busy_cycles) / (double(s.cycles) * x.queues) : 0.0;
    units[kUnitKindNames[std::size_t(u)]] = ju;
  }
  j["units"] = units;
  if (host) {
    j["host"]["wall_seconds"] = host->wall_seconds;
    j["host"]["cycles_per_second"] = host->wall_seconds > 0 ? double(s.cycles) / host->wall_seconds : 0.0;
    j["host"]["mode"] = host->timing_only ? "timing-only" : "functional";
  }
  return j;
}

std::string format_stats(const ChipStats& s, const ChipParams& p, const HostStats& host) {
  auto k = peaks(p);
  std::string o;
  o += fmt::format("cycles            {} ({:.3f} us at {:.3f} GHz)\n", s.cycles, s.seconds() * 1e6, s.clock_hz / 1e9);
  o += fmt::format("SRAM read         {} B, {:.2f} TB/s ({:.1f}% of {:.2f} TB/s peak)\n", s.sram_bytes_read,
                   s.sram_read_bandwidth() / 1e12, k.sram_bandwidth_bytes_per_s > 0 ? 100.0 * s.sram_read_bandwidth() / k.sram_bandwidth_bytes_per_s : 0.0,
                   k.sram_bandwidth_bytes_per_s / 1e12);
  o += fmt::format("SRAM written      {} B\n", s.sram_bytes_written);
  std::int64_t macs = 0;
  for (const auto& [t, m] : s.mxm_macs) macs += m;
  o += fmt::format("MXM               {} MACs, {} passes, utilisation {:.1f}%\n", macs, s.mxm_passes, 100.0 * s.mxm_utilisation());
  o += fmt::format("VXM               {} element ops\n", s.vxm_element_ops);
  for (int u = 0; u < kNumUnitKinds; ++u) {
    const auto& x = s.units[std::size_t(u)];
    if (!x.instructions) continue;
    o += fmt::format("  {:<4} {:>12} instructions {:>12} busy cycles\n", kUnitKindNames[std::size_t(u)], x.instructions,
                     x.busy_cycles);
  }
  if (s.link_bytes_sent || s.link_bytes_received)
    o += fmt::format("links             {} B sent, {} B received\n", s.link_bytes_sent, s.link_bytes_received);
  if (s.sram_ecc_corrected) o += fmt::format("ECC               {} corrected errors\n", s.sram_ecc_corrected);
  o += fmt::format("host              {:.3f} s ({}), {:.3g} emulated cycles/s\n", host.wall_seconds,
                   host.timing_only ? "timing-only" : "functional", host.wall_seconds > 0 ? double(s.cycles) / host.wall_seconds : 0.0);
  return o;
}

}  // namespace lpu::model
