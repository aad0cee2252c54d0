#include "lpu/model/report.hpp"

#include <fmt/format.h>

namespace lpu::model {

Energy energy(const ChipStats& s, const ChipParams& p) {
  const auto& e = p.energy;
  Energy out;
  out.sram_j = (double(s.sram_bytes_read) * e.sram_read_pj_per_byte + double(s.sram_bytes_written) * e.sram_write_pj_per_byte) * 1e-12;
  for (const auto& [t, m] : s.mxm_macs) {
    const double pj = t == "i8" ? e.mac_pj_i8 : (t == "e4m3" || t == "e5m2") ? e.mac_pj_fp8 : e.mac_pj_fp16;
    out.mxm_j += double(m) * pj * 1e-12;
  }
  out.vxm_j = double(s.vxm_element_ops) * e.vxm_pj_per_op * 1e-12;
  const double vb = p.vector_bytes();
  out.stream_j = double(s.units[std::size_t(UnitKind::Sxm)].instructions) * vb * e.stream_pj_per_byte * 1e-12;
  out.weight_bus_j = double(s.weight_bytes_installed) * e.weight_bus_pj_per_byte * 1e-12;
  out.link_j = double(s.link_bytes_sent) * 8.0 * e.link_pj_per_bit * 1e-12;
  out.dma_j = double(s.dma_bytes_in + s.dma_bytes_out) * e.dma_pj_per_byte * 1e-12;
  out.static_j = e.static_w * s.seconds();
  return out;
}

nlohmann::json stats_json(const ChipStats& s, const ChipParams& p, const HostStats* host, double tokens) {
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
  j["weight_bytes_installed"] = s.weight_bytes_installed;
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
  const auto en = energy(s, p);
  nlohmann::json je;
  je["total_j"] = en.total_j();
  je["sram_j"] = en.sram_j;
  je["mxm_j"] = en.mxm_j;
  je["vxm_j"] = en.vxm_j;
  je["stream_j"] = en.stream_j;
  je["weight_bus_j"] = en.weight_bus_j;
  je["link_j"] = en.link_j;
  je["dma_j"] = en.dma_j;
  je["static_j"] = en.static_j;
  je["average_power_w"] = s.seconds() > 0 ? en.total_j() / s.seconds() : 0.0;
  j["energy"] = je;
  if (tokens > 0 && s.seconds() > 0) {
    const double tps = tokens / s.seconds();
    j["tokens"] = tokens;
    j["tokens_per_s"] = tps;
    j["tokens_per_s_per_mw"] = en.total_j() > 0 ? tps / (en.total_j() / s.seconds() / 1e6) : 0.0;
  }
  if (host) {
    j["host"]["wall_seconds"] = host->wall_seconds;
    j["host"]["cycles_per_second"] = host->wall_seconds > 0 ? double(s.cycles) / host->wall_seconds : 0.0;
    j["host"]["mode"] = host->timing_only ? "timing-only" : "functional";
  }
  return j;
}

std::string stats_csv(const ChipStats& s, const ChipParams& p, int chip, bool header) {
  std::string o;
  if (header)
    o += "chip,unit,queues,instructions,busy_cycles,utilisation,cycles,sram_bytes_read,sram_bytes_written,"
         "sram_bandwidth_bytes_per_s,mxm_macs,mxm_utilisation,vxm_element_ops,link_bytes_sent,dma_bytes,energy_j\n";
  for (int u = 0; u < kNumUnitKinds; ++u) {
    const auto& x = s.units[std::size_t(u)];
    o += fmt::format("{},{},{},{},{},{:.6f},,,,,,,,,,\n", chip, kUnitKindNames[std::size_t(u)], x.queues, x.instructions,
                     x.busy_cycles, x.queues && s.cycles ? double(x.busy_cycles) / (double(s.cycles) * x.queues) : 0.0);
  }
  std::int64_t macs = 0;
  for (const auto& [t, m] : s.mxm_macs) macs += m;
  o += fmt::format("{},chip,,,,,{},{},{},{:.6e},{},{:.6f},{},{},{},{:.6e}\n", chip, s.cycles, s.sram_bytes_read,
                   s.sram_bytes_written, s.sram_read_bandwidth(), macs, s.mxm_utilisation(), s.vxm_element_ops,
                   s.link_bytes_sent, s.dma_bytes_in + s.dma_bytes_out, energy(s, p).total_j());
  return o;
}

std::string format_stats(const ChipStats& s, const ChipParams& p, const HostStats& host, double tokens) {
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
  const auto en = energy(s, p);
  const double watts = s.seconds() > 0 ? en.total_j() / s.seconds() : 0.0;
  o += fmt::format("energy            {:.3f} uJ, {:.1f} W average (SRAM {:.1f}%, MXM {:.1f}%, static {:.1f}%)\n",
                   en.total_j() * 1e6, watts, en.total_j() > 0 ? 100 * en.sram_j / en.total_j() : 0.0,
                   en.total_j() > 0 ? 100 * en.mxm_j / en.total_j() : 0.0, en.total_j() > 0 ? 100 * en.static_j / en.total_j() : 0.0);
  if (tokens > 0 && s.seconds() > 0)
    o += fmt::format("tokens            {:.0f}: {:.1f} tokens/s, {:.3g} tokens/s per MW\n", tokens, tokens / s.seconds(),
                     watts > 0 ? tokens / s.seconds() / (watts / 1e6) : 0.0);
  o += fmt::format("host              {:.3f} s ({}), {:.3g} emulated cycles/s\n", host.wall_seconds,
                   host.timing_only ? "timing-only" : "functional", host.wall_seconds > 0 ? double(s.cycles) / host.wall_seconds : 0.0);
  return o;
}

}  // namespace lpu::model
