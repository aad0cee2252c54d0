// lpu info: derived peak figures of a preset.
#include <fmt/format.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "lpu/arch/layout.hpp"
#include "lpu/arch/params.hpp"
#include "lpu/common/errors.hpp"
#include "lpu/rack/config.hpp"

namespace lpu::tools {

void add_info(CLI::App& app, std::vector<std::pair<CLI::App*, Action>>& out) {
  struct Opts {
    ChipOpts chip;
    bool json = false, preset_keys = false;
    std::string rack;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("info", "print a preset's parameters and derived peak figures");
  o->chip.add(sub);
  sub->add_flag("--json", o->json, "machine-readable output, SI base units");
  sub->add_option("--rack", o->rack,
                  "a rack file (configs/lpx-rack.toml): chips, links, bisection bandwidth, total SRAM and peaks")
      ->check(CLI::ExistingFile);
  sub->add_flag("--preset-keys", o->preset_keys,
                "print every preset parameter with its type, range and meaning (Markdown: docs/presets.md)");
  out.emplace_back(sub, [o, sub]() {
    if (o->preset_keys) {
      std::cout << preset_keys_markdown();
      return 0;
    }
    if (!o->rack.empty()) {
      if (sub->count("--preset") || sub->count("--set"))
        throw Error("--preset and --set describe one chip; a rack file names its chip preset and overrides");
      std::cout << rack::info_text(rack::load_rack(o->rack), o->json);
      return 0;
    }
    auto p = load_preset(o->chip.preset, o->chip.set);
    auto k = peaks(p);
    Layout layout(p);
    if (o->json) {
      nlohmann::json j;
      j["preset"] = p.name;
      j["clock_hz"] = k.clock_hz;
      j["vector_bytes"] = k.vector_bytes;
      j["sram_bytes"] = k.sram_bytes;
      j["sram_bandwidth_bytes_per_s"] = k.sram_bandwidth_bytes_per_s;
      j["sram_write_bandwidth_bytes_per_s"] = k.sram_write_bandwidth_bytes_per_s;
      j["stream_bandwidth_bytes_per_s"] = k.stream_bandwidth_bytes_per_s;
      j["weight_bus_bytes_per_s"] = k.weight_bus_bytes_per_s;
      j["weight_install_bytes_per_s"] = k.weight_install_bytes_per_s;
      j["mxm_peak_ops_per_s"] = k.mxm_peak_ops_per_s;
      j["mxm_macs_per_cycle_int8"] = k.mxm_macs_per_cycle_int8;
      j["vxm_alus"] = k.vxm_alus;
      j["instruction_queues"] = k.instruction_queues;
      j["c2c_bandwidth_bytes_per_s"] = k.c2c_bandwidth_bytes_per_s;
      j["mem_slices"] = k.mem_slices;
      j["positions"] = layout.num_positions();
      std::cout << j.dump(2) << "\n";
      return 0;
    }
    fmt::print("preset {}: {}\n", p.name, p.description);
    fmt::print("  clock                {:.3f} GHz\n", k.clock_hz / 1e9);
    fmt::print("  vector               {} B ({} superlanes x 16 lanes)\n", k.vector_bytes, p.superlanes);
    fmt::print("  SRAM                 {:.2f} MB ({:.2f} MiB) in {} MEM slices x {} rows\n", k.sram_bytes / 1e6,
               k.sram_bytes / (1 << 20), k.mem_slices, p.mem.rows);
    fmt::print("  SRAM bandwidth       {:.2f} TB/s read, {:.2f} TB/s write\n", k.sram_bandwidth_bytes_per_s / 1e12,
               k.sram_write_bandwidth_bytes_per_s / 1e12);
    fmt::print("  weight install       {:.2f} TB/s = {:.0f}% of SRAM read (weight bus {:.2f} TB/s: {} planes x {} "
               "rows per cycle, LWM)\n",
               k.weight_install_bytes_per_s / 1e12,
               k.sram_bandwidth_bytes_per_s > 0 ? 100.0 * k.weight_install_bytes_per_s / k.sram_bandwidth_bytes_per_s : 0.0,
               k.weight_bus_bytes_per_s / 1e12, p.mxm.planes, p.mxm.install_rows_per_cycle);
    fmt::print("  stream bandwidth     {:.2f} TB/s into the units ({} streams per direction)\n",
               k.stream_bandwidth_bytes_per_s / 1e12, p.stream.per_direction);
    for (const auto& [t, v] : k.mxm_peak_ops_per_s)
      fmt::print("  MXM peak {:<5}       {:.1f} T{}/s ({} planes)\n", t, v / 1e12, t == "i8" ? "OP" : "FLOP",
                 p.mxm.planes);
    fmt::print("  VXM ALUs             {}\n", k.vxm_alus);
    fmt::print("  instruction queues   {}\n", k.instruction_queues);
    fmt::print("  C2C bandwidth        {:.3f} TB/s ({} links)\n", k.c2c_bandwidth_bytes_per_s / 1e12, p.c2c.links);
    fmt::print("  floorplan positions  {}\n", layout.num_positions());
    return 0;
  });
}

}  // namespace lpu::tools
