// lpu capacity: how many chips and racks a model needs (weights + KV cache in SRAM).
#include <fmt/format.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "lpu/common/errors.hpp"
#include "lpu/workload/model_shape.hpp"

namespace lpu::tools {

void add_capacity(CLI::App& app, std::vector<std::pair<CLI::App*, Action>>& out) {
  struct Opts {
    ChipOpts chip;
    std::vector<std::string> models;
    std::vector<long> contexts{8192};
    long users = 1;
    std::string dtype = "fp8", kv_dtype;
    int chips_per_rack = 256;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("capacity", "SRAM capacity: chips and racks a model needs for its weights and KV cache");
  sub->add_option("--model", o->models, "model shape(s): names in configs/models (repeatable)")->required();
  sub->add_option("--context", o->contexts, "context length(s) in tokens (repeatable)")->capture_default_str();
  sub->add_option("--users", o->users, "sequences whose KV cache is held at once")->capture_default_str();
  sub->add_option("--dtype", o->dtype, "weight type: fp8, int8, bf16, fp16")->capture_default_str();
  sub->add_option("--kv-dtype", o->kv_dtype, "KV-cache type (default: the weight type)");
  sub->add_option("--chips-per-rack", o->chips_per_rack, "chips in a rack")->capture_default_str();
  sub->add_flag("--json", o->json, "machine-readable output");
  o->chip.add(sub);
  out.emplace_back(sub, [o]() {
    auto bytes = [](const std::string& t) -> double {
      if (t == "fp8" || t == "int8" || t == "e4m3" || t == "e5m2" || t == "i8") return 1;
      if (t == "bf16" || t == "fp16" || t == "f16") return 2;
      if (t == "f32" || t == "fp32") return 4;
      throw Error(fmt::format("unknown type '{}' (fp8, int8, bf16, fp16, fp32)", t));
    };
    const double bw = bytes(o->dtype), bkv = bytes(o->kv_dtype.empty() ? o->dtype : o->kv_dtype);
    auto chip = load_preset(o->chip.preset, o->chip.set);
    nlohmann::json rows = nlohmann::json::array();
    if (!o->json)
      fmt::print("{:<14} {:>10} {:>9} {:>9} {:>12} {:>11} {:>8} {:>8}\n", "model", "params", "active", "context",
                 "weights GB", "KV GB", "chips", "racks");
    for (const auto& name : o->models) {
      auto m = workload::load_model(name);
      auto c = workload::cost(m, bw, bkv);
      for (long ctx : o->contexts) {
        auto cap = workload::capacity(m, chip, bw, bkv, ctx, o->users, o->chips_per_rack);
        if (o->json) {
          rows.push_back({{"model", m.name}, {"params", c.params_total}, {"active_params", c.params_active},
                          {"context", ctx}, {"users", o->users}, {"weight_bytes", cap.weight_bytes},
                          {"kv_bytes", cap.kv_bytes}, {"chip_sram_bytes", cap.chip_sram_bytes}, {"chips", cap.chips},
                          {"racks", cap.racks}});
        } else {
          fmt::print("{:<14} {:>9.1f}B {:>8.1f}B {:>9} {:>12.1f} {:>11.2f} {:>8} {:>8.2f}\n", m.name, c.params_total / 1e9,
                     c.params_active / 1e9, ctx, cap.weight_bytes / 1e9, cap.kv_bytes / 1e9, cap.chips, cap.racks);
        }
      }
    }
    if (o->json) std::cout << rows.dump(2) << "\n";
    return 0;
  });
}

}  // namespace lpu::tools
