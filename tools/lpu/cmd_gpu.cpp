// lpu gpu: a decode step (and optionally a prefill) of a model on a GPU system, from the
// analytic GPU model of lpu_serving (docs/gpu-model.md): per-op breakdown, step time, tokens/s
// per user, per GPU and per MW.
#include <fmt/format.h>

#include <iostream>
#include <optional>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "lpu/common/errors.hpp"
#include "lpu/compiler/model_shape.hpp"
#include "lpu/serving/gpu_model.hpp"

namespace lpu::tools {

namespace {

nlohmann::json to_json(const serving::StepEstimate& e) {
  nlohmann::json ops = nlohmann::json::array();
  for (const auto& o : e.ops)
    ops.push_back({{"op", o.name}, {"count", o.count}, {"time_s", o.total.time}, {"flops", o.total.flops},
                   {"bytes", o.total.bytes}, {"link_bytes", o.total.link_bytes}, {"bound", serving::name(o.total.bound)}});
  return {{"ops", ops},
          {"step_time_s", e.step_time},
          {"tokens_per_step", e.tokens_per_step},
          {"tokens_per_s_per_user", e.tokens_per_s_per_user},
          {"tokens_per_s_per_gpu", e.tokens_per_s_per_gpu},
          {"tokens_per_s_per_mw", e.tokens_per_s_per_mw},
          {"weight_bytes_per_gpu", e.weight_bytes_per_gpu},
          {"kv_bytes_per_gpu", e.kv_bytes_per_gpu},
          {"fits", e.fits},
          {"batch", e.batch},
          {"gpus", e.gpus},
          {"attention", e.data_parallel_attention ? "dp" : "tp"}};
}

void print_ops(const serving::StepEstimate& e) {
  fmt::print("  {:<11} {:>6} {:>11} {:>6} {:>11} {:>11} {:>11}  {}\n", "op", "count", "time us", "share", "GFLOP/GPU",
             "MB/GPU", "link MB", "bound");
  for (const auto& o : e.ops)
    fmt::print("  {:<11} {:>6} {:>11.1f} {:>5.1f}% {:>11.2f} {:>11.2f} {:>11.2f}  {}\n", o.name, o.count, o.total.time * 1e6,
               100 * o.total.time / e.step_time, o.total.flops / 1e9, o.total.bytes / 1e6, o.total.link_bytes / 1e6,
               serving::name(o.total.bound));
}

}  // namespace

void add_gpu(CLI::App& app, std::vector<std::pair<CLI::App*, Action>>& out) {
  struct Opts {
    std::string system = "gb200-nvl72", model, dtype = "fp8", kv_dtype, attn = "auto";
    int batch = 64, context = 8192, gpus = 0, draft = 0, prefill_tokens = 0, prefill_prompts = 1;
    double accepted = 0;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand(
      "gpu",
      "a decode step (and a prefill) of a model on a GPU system, from the analytic GPU model (docs/gpu-model.md): "
      "per-op breakdown, step time, tokens/s per user, per GPU and per MW");
  sub->add_option("--system", o->system, "GPU system: a name in configs/gpu (gb200-nvl72, rubin-nvl72, hgx-h100) or a .toml path")
      ->capture_default_str();
  sub->add_option("--model", o->model, "model shape (configs/models name or path)")->required();
  sub->add_option("--batch", o->batch, "concurrent users of the decode instance")->capture_default_str();
  sub->add_option("--context", o->context, "KV-cache positions per user")->capture_default_str();
  sub->add_option("--gpus", o->gpus,
                  "GPUs of the instance, tensor / expert parallel (0: the fewest, a power of two up to the scale-up domain, "
                  "whose weights and KV cache fit)")
      ->capture_default_str();
  sub->add_option("--dtype", o->dtype, "weights and matmuls: fp4, fp8, bf16")->capture_default_str();
  sub->add_option("--kv-dtype", o->kv_dtype, "KV cache and attention: fp8 or bf16 (default: bf16 for bf16 weights, else fp8)");
  sub->add_option("--attn", o->attn, "attention parallelism: auto (dp for MoE when batch >= gpus, else tp), tp, dp")
      ->capture_default_str();
  sub->add_option("--draft-tokens", o->draft, "multi-token prediction: draft tokens checked per step")->capture_default_str();
  sub->add_option("--accepted-tokens", o->accepted, "tokens kept per step and user on average (default: 1 + draft tokens)");
  sub->add_option("--prefill-tokens", o->prefill_tokens, "also estimate the prefill of prompts of this many tokens");
  sub->add_option("--prefill-prompts", o->prefill_prompts, "prompts prefilled together")->capture_default_str();
  sub->add_flag("--json", o->json, "machine-readable output (SI units)");
  out.emplace_back(sub, [o]() {
    const auto g = serving::load_gpu_system(o->system);
    const auto m = compiler::load_model(o->model);
    serving::StepOptions so;
    so.dtype = serving::parse_dtype(o->dtype);
    so.kv_dtype = o->kv_dtype.empty() ? (so.dtype == serving::Dtype::Bf16 ? serving::Dtype::Bf16 : serving::Dtype::Fp8)
                                      : serving::parse_dtype(o->kv_dtype);
    so.attn = serving::parse_attn_parallel(o->attn);
    so.draft_tokens = o->draft;
    so.accepted_tokens = o->accepted > 0 ? o->accepted : 1.0 + o->draft;
    if (o->gpus < 0) throw ConfigError("gpus", "must not be negative");
    if (o->gpus > 0) {
      so.gpus = o->gpus;
    } else {
      const int cap = m.experts > 0 ? std::min(g.scale_up_gpus, m.experts) : g.scale_up_gpus;
      so.gpus = cap;
      for (int n = 1; n <= cap; n *= 2) {
        so.gpus = n;
        if (serving::decode_step(g, m, o->batch, o->context, so).fits) break;
        so.gpus = cap;
      }
    }
    const auto e = serving::decode_step(g, m, o->batch, o->context, so);
    std::optional<serving::StepEstimate> p;
    if (o->prefill_tokens > 0) p = serving::prefill(g, m, o->prefill_tokens, o->prefill_prompts, so);

    if (o->json) {
      nlohmann::json j{{"system", g.name},
                       {"model", m.name},
                       {"dtype", serving::name(so.dtype)},
                       {"kv_dtype", serving::name(so.kv_dtype)},
                       {"context", o->context},
                       {"draft_tokens", so.draft_tokens},
                       {"accepted_tokens", so.accepted_tokens},
                       {"watts_per_gpu", g.watts_per_gpu()},
                       {"hbm_bytes", g.hbm_bytes},
                       {"decode", to_json(e)}};
      if (p) {
        j["prefill"] = to_json(*p);
        j["prefill"]["prompt_tokens"] = o->prefill_tokens;
      }
      std::cout << j.dump(2) << "\n";
      return 0;
    }
    fmt::print("{} on {}: {} GPU{}, {} weights, {} KV cache, batch {}, context {}, attention {}{}\n", m.name, g.name, e.gpus,
               e.gpus == 1 ? "" : "s", serving::name(so.dtype), serving::name(so.kv_dtype), e.batch, o->context,
               e.data_parallel_attention ? "data parallel" : "tensor parallel",
               so.draft_tokens ? fmt::format(", {} draft tokens ({:g} accepted)", so.draft_tokens, so.accepted_tokens) : "");
    fmt::print("decode step:\n");
    print_ops(e);
    fmt::print("step {:.3f} ms; {:.1f} tokens/s per user; {:.1f} tokens/s per GPU; {:.0f} tokens/s per MW ({:.0f} W per GPU, all in)\n",
               e.step_time * 1e3, e.tokens_per_s_per_user, e.tokens_per_s_per_gpu, e.tokens_per_s_per_mw, g.watts_per_gpu());
    fmt::print("memory per GPU: weights {:.1f} GB + KV cache {:.1f} GB of {:.0f} GB{}\n", e.weight_bytes_per_gpu / 1e9,
               e.kv_bytes_per_gpu / 1e9, g.hbm_bytes / 1e9, e.fits ? "" : "  (does NOT fit: use more GPUs or a smaller batch)");
    if (p) {
      fmt::print("prefill of {} prompt{} of {} tokens (attention {}):\n", p->batch, p->batch == 1 ? "" : "s", o->prefill_tokens,
                 p->data_parallel_attention ? "data parallel" : "tensor parallel");
      print_ops(*p);
      fmt::print("prefill {:.3f} ms (time to first token when alone); {:.0f} prompt tokens/s per GPU\n", p->step_time * 1e3,
                 p->tokens_per_s_per_gpu);
    }
    return 0;
  });
}

}  // namespace lpu::tools
