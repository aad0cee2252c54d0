// lpu roofline: the fewest cycles the machine allows for a decode step, and what bounds it.
#include <fmt/format.h>

#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "lpu/common/errors.hpp"
#include "lpu/compiler/frontend.hpp"
#include "lpu/compiler/roofline.hpp"
#include "lpu/workload/reference.hpp"

namespace lpu::tools {

void add_roofline(CLI::App& app, std::vector<std::pair<CLI::App*, Action>>& out) {
  struct Opts {
    std::string model, rack, partition = "pipeline", dtype = "fp8", stats;
    std::vector<std::string> rack_set;
    int context = 0, batch = 1, tensor = 0, chips = 0, links = 4;
    bool json = false, per_op = false, print_ir = false;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand(
      "roofline", "the bound of a decode step: the fewest cycles the machine allows and which resource limits it "
                  "(docs/decode.md, \"The bound\")");
  sub->add_option("--model", o->model, "model shape (configs/models name or path)")->required();
  sub->add_option("--rack", o->rack, "rack file (default: configs/lpx-rack.toml)");
  sub->add_option("--rack-set", o->rack_set, "rack override KEY=VALUE (repeatable; e.g. chip.set+=mxm.install_rows_per_cycle=20)");
  sub->add_option("--partition", o->partition, "pipeline, tensor or hybrid")->capture_default_str();
  sub->add_option("--context", o->context, "KV-cache positions the step reads (0: min(model max_context, 8192))");
  sub->add_option("--batch", o->batch, "users per micro-batch")->capture_default_str();
  sub->add_option("--tensor", o->tensor, "chips per tensor group (0: automatic)");
  sub->add_option("--chips", o->chips, "chips to use (0: the rack)");
  sub->add_option("--links", o->links, "parallel links used between two chips")->capture_default_str();
  sub->add_option("--dtype", o->dtype, "weight type: fp8, bf16, int8")->capture_default_str();
  sub->add_flag("--json", o->json, "machine-readable output");
  sub->add_option("--stats", o->stats, "write the JSON to this file too (lpu sweep)");
  sub->add_flag("--per-op", o->per_op, "every operation's bound (with --json)");
  sub->add_flag("--print-ir", o->print_ir, "print the partitioned IR");
  out.emplace_back(sub, [o]() {
    const auto m = compiler::load_model(o->model);
    const auto cfg = rack::load_rack(o->rack.empty() ? config_dir() + "/lpx-rack.toml" : o->rack, o->rack_set);
    compiler::DecodeOptions d;
    d.wtype = workload::parse_weight_dtype(o->dtype);
    d.context = o->context > 0 ? o->context : std::min(m.max_context > 0 ? m.max_context : 8192, 8192);
    d.batch = o->batch;
    compiler::PartitionOptions po;
    po.kind = compiler::parse_partition(o->partition);
    po.tensor = o->tensor;
    po.chips = o->chips;
    po.max_links = o->links;
    const auto part = compiler::partition(compiler::decode_graph(m, d), cfg, po);
    const auto r = compiler::roofline(part, cfg);
    if (o->print_ir) std::cout << part.graph.print();
    auto j = r.json(o->per_op);
    j["model"] = m.name;
    j["rack"] = cfg.name;
    j["context"] = d.context;
    j["batch"] = d.batch;
    if (!o->stats.empty()) {
      std::ofstream f(o->stats);
      if (!f) throw Error(fmt::format("--stats: cannot write {}", o->stats));
      f << j.dump(2) << "\n";
    }
    if (o->json) {
      std::cout << j.dump(2) << "\n";
    } else {
      fmt::print("{} on {} ({}, context {}):\n{}", m.name, cfg.name, o->dtype, d.context, r.text());
    }
    return 0;
  });
}

}  // namespace lpu::tools
