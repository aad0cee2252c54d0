// lpu gen: generators. `gen weights`: seeded random weights for a model shape (.safetensors).
// `gen decoder`: statically scheduled decode programs for every chip of a rack, their placement
// and a rack manifest (docs/decode.md).
#include <fmt/format.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "lpu/arch/params.hpp"
#include "lpu/common/errors.hpp"
#include "lpu/common/tensor_file.hpp"
#include "lpu/workload/decoder.hpp"
#include "lpu/workload/reference.hpp"

namespace lpu::tools {

// The options of a decoder plan (`lpu gen decoder`, `lpu decode`).
void add_decoder_spec(CLI::App* sub, workload::DecoderSpec& s) {
  sub->add_option("--model", s.model, "model shape: a name in configs/models or a .toml path")->capture_default_str();
  sub->add_option("--rack", s.rack, "rack file (default: configs/lpx-rack.toml)");
  sub->add_option("--chips", s.chips, "chips of the rack to use (0: as many as help)")->capture_default_str();
  sub->add_option("--partition", s.partition,
                  "pipeline (layers across chips), tensor (every layer's row tiles shared by one group of linked chips) or "
                  "hybrid (tensor groups in a pipeline); docs/decode.md")
      ->capture_default_str()
      ->check(CLI::IsMember({"pipeline", "tensor", "hybrid"}));
  sub->add_option("--tensor", s.tensor, "chips per tensor group (tensor, hybrid; 0: the largest all-to-all linked block, e.g. a tray)")
      ->capture_default_str();
  sub->add_option("--dtype", s.dtype, "weight and matrix-input type: fp8, bf16, int8 (int8: timing only)")->capture_default_str();
  sub->add_option("--context", s.context, "KV-cache positions per user (0: the model's, at most 8192)")->capture_default_str();
  sub->add_option("--kv-len", s.kv_len,
                  "tokens in the KV cache a step attends (0: the whole context); the programs read whole blocks of it "
                  "(functional decodes pick the length bucket of each step themselves)")
      ->capture_default_str();
  sub->add_option("--users", s.users, "users whose KV cache is held (in flight through the pipeline)")->capture_default_str();
  sub->add_option("--batch", s.batch, "users per micro-batch: tokens one run of the programs decodes")->capture_default_str();
  sub->add_option("--chips-per-layer", s.chips_per_layer, "pipeline: stages per layer (0: automatic)")->capture_default_str();
  sub->add_option("--head-chips", s.head_chips,
                  "chips for the LM head (0: automatic; with tensor groups 1 puts it on one member, else the group shares it)")
      ->capture_default_str();
  sub->add_option("--links", s.max_links, "parallel C2C links between consecutive stages and between group members")
      ->capture_default_str();
  sub->add_option("--moe", s.moe,
                  "mixture of experts: sparse (the chosen experts' weights, GATHERed by an index computed on chip) or dense "
                  "(every expert, weighted by its gate)")
      ->capture_default_str()
      ->check(CLI::IsMember({"sparse", "dense"}));
  sub->add_option("--weight-path", s.weight_path,
                  "how weights reach the MXM planes: lwm (the weight bus, LWM), lw (stream registers, LW) or auto (lwm "
                  "unless sparse experts, which are GATHERed over streams)")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "lwm", "lw"}));
  sub->add_option("--k-cache", s.k_cache,
                  "K-cache layout over the weight bus: rows (a K row per position, three slices a block), transposed (K^T "
                  "over up to 64 slices, installed with IW tr=1) or auto (transposed when the loads it saves outweigh its "
                  "column writes, or rows need too many registers); docs/decode.md")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "rows", "transposed"}));
  sub->add_option("--softmax", s.softmax,
                  "each head's softmax: halves (two half-length passes by parity), whole (one pass) or auto (halves from 32 "
                  "score vectors, a 2.5k context on lp30); the same numerics (docs/decode.md)")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "halves", "whole"}));
  sub->add_option("--attention", s.attention,
                  "full (every layer's attention and FFN) or none (the layers' FFN or experts only, with their RMSNorm and "
                  "residual: the LPX side of attention-FFN disaggregation, docs/serving.md; timing-only)")
      ->capture_default_str()
      ->check(CLI::IsMember({"full", "none"}));
}

void resolve_rack(workload::DecoderSpec& s) {
  if (s.rack.empty()) s.rack = config_dir() + "/lpx-rack.toml";
}

void add_gen(CLI::App& app, std::vector<std::pair<CLI::App*, Action>>& out) {
  auto* gen = app.add_subcommand("gen", "generators: seeded weights, decode programs for a rack");
  gen->require_subcommand(1);

  struct W {
    std::string model = "tiny", dtype = "fp8", out;
    std::uint64_t seed = 1;
  };
  auto w = std::make_shared<W>();
  auto* sw = gen->add_subcommand("weights", "seeded random weights of a model shape, in the decoder's types (.safetensors)");
  sw->add_option("--model", w->model, "model shape: a name in configs/models or a .toml path")->capture_default_str();
  sw->add_option("--seed", w->seed, "random seed")->capture_default_str();
  sw->add_option("--dtype", w->dtype, "matrix type: fp8 (e4m3), bf16, int8; norm gains are f32")->capture_default_str();
  sw->add_option("-o,--output", w->out, "output .safetensors file")->required();
  out.emplace_back(sw, [w]() {
    auto m = workload::load_model(w->model);
    const auto t = workload::parse_weight_dtype(w->dtype);
    auto ws = workload::gen_weights(m, w->seed, t);
    std::int64_t bytes = 0;
    for (const auto& [n, x] : ws) bytes += std::int64_t(x.data.size());
    io::save_safetensors(ws, w->out,
                         {{"model", m.name}, {"seed", std::to_string(w->seed)}, {"dtype", workload::weight_dtype_name(t)},
                          {"generator", "lpu gen weights (docs/decode.md)"}});
    fmt::print("{}: {} tensors, {} bytes ({} matrices, f32 norm gains), seed {}\n", w->out, ws.size(), bytes,
               workload::weight_dtype_name(t), w->seed);
    return 0;
  });

  struct D {
    workload::DecoderSpec spec;
    std::string out, weights;
    bool json = false, quiet = false;
  };
  auto d = std::make_shared<D>();
  auto* sd = gen->add_subcommand("decoder", "decode programs for every chip of a rack, their placement and a rack manifest");
  add_decoder_spec(sd, d->spec);
  sd->add_option("-o,--output", d->out, "output folder: .lpa/.lpo per distinct program, placement.json, rack.toml");
  sd->add_option("--weights", d->weights, "model weights (.safetensors): also write every chip's symbols as .npy for the manifest");
  sd->add_flag("--json", d->json, "print the plan summary as JSON");
  sd->add_flag("-q,--quiet", d->quiet, "no progress line on stderr (shown only on a terminal, for work over a second)");
  out.emplace_back(sd, [d]() {
    resolve_rack(d->spec);
    auto plan = [&] {
      ProgressLine progress("gen decoder", !d->quiet);
      return workload::plan_decoder(d->spec);
    }();
    std::map<std::string, io::Tensor> ws;
    if (!d->weights.empty()) ws = io::load_safetensors(d->weights);
    if (!d->out.empty()) workload::write_decoder(plan, d->out, d->weights.empty() ? nullptr : &ws);
    if (d->json) {
      auto j = workload::plan_json(plan);
      for (auto& c : j["chips"]) c.erase("symbols");
      std::cout << j.dump(2) << "\n";
      return 0;
    }
    std::int64_t maxc = 0, end = 0;
    for (const auto& c : plan.chips) {
      maxc = std::max(maxc, c.cycles);
      end = std::max(end, c.start_delay + c.cycles);
    }
    if (plan.groups > 0)
      fmt::print("{} ({}) on {}: {} chips, {} partition: {} tensor group(s) of {} chips ({} layers per group), {} distinct programs\n",
                 plan.model.name, workload::weight_dtype_name(plan.wtype), plan.rack.origin, plan.chips.size(), plan.spec.partition,
                 plan.groups, plan.tensor, plan.layers_per_chip, plan.programs.size());
    else
      fmt::print("{} ({}) on {}: {} chips ({} per layer, {} layers per chip, {} for the LM head), {} distinct programs\n",
                 plan.model.name, workload::weight_dtype_name(plan.wtype), plan.rack.origin, plan.chips.size(),
                 plan.chips_per_layer, plan.layers_per_chip, plan.head_chips, plan.programs.size());
    fmt::print("context {} per user, {} user(s), batch {}; registers: r1 = pos and {} KV-cache part registers\n", plan.context,
               plan.spec.users, plan.spec.batch, plan.regs.size());
    fmt::print("one step: last stage ends at cycle {} ({:.3f} ms at {:.3g} GHz); slowest stage {} cycles\n", end,
               double(end) / plan.rack.chip(0).clock_hz * 1e3,
               plan.rack.chip(0).clock_hz / 1e9, maxc);
    const std::size_t show = plan.chips.size() <= 12 ? plan.chips.size() : 6;
    for (std::size_t i = 0; i < plan.chips.size(); ++i) {
      if (i == show && plan.chips.size() > 12) fmt::print("  ...\n");
      if (i >= show && i + 3 < plan.chips.size()) continue;
      const auto& c = plan.chips[i];
      fmt::print("  chip {:>3}: {:<40} {} delay {:>9} cycles {:>8} tiles {:>6}\n", c.chip, c.units,
                 plan.program_names[std::size_t(c.program)], c.start_delay, c.cycles, c.tiles);
    }
    if (!d->out.empty()) fmt::print("wrote {}/ (placement.json, rack.toml, {} programs)\n", d->out, plan.programs.size());
    return 0;
  });
}

}  // namespace lpu::tools
