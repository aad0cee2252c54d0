#include "lpu/serving/serving_system.hpp"

#include <fmt/format.h>

#include "lpu/arch/params.hpp"
#include "lpu/common/errors.hpp"
#include "lpu/rack/config.hpp"
#include "toml_reader.hpp"

namespace lpu::serving {

namespace {

// A rack file by name (configs/<name>.toml) or path.
std::string rack_path(const std::string& s) {
  if (s.find('/') != std::string::npos) return s;
  return config_dir() + "/" + (s.ends_with(".toml") ? s : s + ".toml");
}

}  // namespace

ServingSystem parse_serving_system(const std::string& text, const std::string& origin) {
  const auto t = detail::parse_toml(text, origin);
  detail::Reader r(t, origin);
  constexpr double kBig = 1e30;
  ServingSystem s;
  s.file = origin;
  s.name = r.text("name", origin);
  const auto mode = r.text("mode", "gpu");
  if (mode == "gpu") s.mode = ServingMode::Gpu;
  else if (mode == "afd") s.mode = ServingMode::Afd;
  else throw ConfigError("mode", fmt::format("{}: '{}' is not a mode (gpu, afd)", origin, mode));

  s.gpu = load_gpu_system(r.required_text("gpu.system"));
  try {
    s.dtype = parse_dtype(r.text("gpu.dtype", "fp8"));
    s.kv_dtype = parse_dtype(r.text("gpu.kv_dtype", s.dtype == Dtype::Bf16 ? "bf16" : "fp8"));
  } catch (const ConfigError& e) {
    throw ConfigError("gpu.dtype", fmt::format("{}: {}", origin, e.what()));
  }
  s.memory_fraction = r.real_or("gpu.memory_fraction", 0.9, 0, 1, true);

  s.prefill_gpus = r.integer("prefill.gpus", 1, 1 << 16);
  s.prefill_instances = r.integer_or("prefill.instances", 1, 1, 1 << 16);
  s.chunk_tokens = r.integer_or("prefill.chunk_tokens", 8192, 1, 1 << 24);
  s.decode_gpus = r.integer("decode.gpus", 1, 1 << 16);
  s.decode_instances = r.integer_or("decode.instances", 1, 1, 1 << 16);
  s.max_batch = r.integer("decode.max_batch", 1, 1 << 20);
  s.kv_bandwidth = r.real("kv_transfer.bandwidth", 0, kBig, true);
  s.kv_latency = r.real("kv_transfer.latency", 0, 10);

  if (s.mode == ServingMode::Afd) {
    s.lpx_rack = rack_path(r.required_text("lpx.rack"));
    s.lpx_racks = r.integer_or("lpx.racks", 1, 1, 1);  // the generator plans one rack (docs/serving.md, "Left out")
    s.lpx_partition = r.text("lpx.partition", "hybrid");
    if (s.lpx_partition != "hybrid" && s.lpx_partition != "pipeline" && s.lpx_partition != "tensor")
      throw ConfigError("lpx.partition", fmt::format("{}: '{}' (pipeline, tensor, hybrid)", origin, s.lpx_partition));
    s.lpx_dtype = r.text("lpx.dtype", "fp8");
    if (s.lpx_dtype != "fp8" && s.lpx_dtype != "bf16" && s.lpx_dtype != "int8")
      throw ConfigError("lpx.dtype", fmt::format("{}: '{}' (fp8, bf16, int8)", origin, s.lpx_dtype));
    s.lpx_cache = r.text("lpx.cache", "");
    s.micro_batches = r.integer_or("lpx.micro_batches", 2, 0, 64);
    s.lpx_rack_watts = r.real_or("lpx.rack_watts", 0, 0, kBig);
    s.lpx_rack_capex = r.real("cost.lpx_rack_capex", 0, kBig);
    s.link_bandwidth = r.real("link.bandwidth", 0, kBig, true);
    s.link_latency = r.real("link.latency", 0, 1);
  } else {
    for (const char* k : {"lpx", "link"})
      if (r.has(k)) throw ConfigError(k, fmt::format("{}: [{}] is for mode = \"afd\"", origin, k));
    s.lpx_rack_capex = r.real_or("cost.lpx_rack_capex", 0, 0, kBig);
  }
  s.slo_ttft = r.real("slo.ttft", 0, kBig, true);
  s.slo_tpot = r.real("slo.tpot", 0, kBig, true);
  s.gpu_rack_capex = r.real("cost.gpu_rack_capex", 0, kBig);
  s.gpu_rack_gpus = r.integer_or("cost.gpu_rack_gpus", s.gpu.system_gpus, 1, 1 << 20);
  s.depreciation_years = r.real("cost.depreciation_years", 0, 100, true);
  s.power_price_per_kwh = r.real("cost.power_price_per_kwh", 0, 100);
  s.pue = r.real("cost.pue", 1, 10);
  r.check_unknown();
  return s;
}

ServingSystem load_serving_system(const std::string& name_or_path) {
  const auto f = detail::read_system_file(name_or_path, "serving", "serving systems");
  return parse_serving_system(f.text, f.path);
}

Deployment deploy(const ServingSystem& s, const compiler::ModelShape& m, const std::string& model_name, const DeployOptions& o) {
  Deployment d;
  const bool afd = s.mode == ServingMode::Afd;
  StepOptions so;
  so.gpus = s.decode_gpus;
  so.dtype = s.dtype;
  so.kv_dtype = s.kv_dtype;
  d.options = so;

  // What the decode GPUs hold: the whole model, or for AFD attention, embeddings and output
  // projection only (the shape without its FFN), split as the full batch would split it.
  const auto full = decode_step(s.gpu, m, s.max_batch, 1, so);
  const bool dp = full.data_parallel_attention;
  if (afd) {
    auto a = m;
    a.ffn = a.experts = a.experts_per_token = a.shared_experts = a.dense_layers = a.dense_ffn = 0;
    StepOptions sa = so;
    sa.attn = dp ? AttnParallel::Data : AttnParallel::Tensor;
    d.weight_bytes_per_decode_gpu = decode_step(s.gpu, a, s.max_batch, 1, sa).weight_bytes_per_gpu;
  } else {
    d.weight_bytes_per_decode_gpu = full.weight_bytes_per_gpu;
  }
  if (dp) d.kv_replication = 1;
  else if (m.kv_lora_rank > 0) d.kv_replication = s.decode_gpus;  // the latent is not split by heads
  else d.kv_replication = std::max(1.0, double(s.decode_gpus) / m.kv_heads);
  const double kv_token = compiler::cost(m, weight_bytes(s.dtype), weight_bytes(s.kv_dtype)).kv_bytes_per_token;
  const double free_per_gpu = s.gpu.hbm_bytes * s.memory_fraction - d.weight_bytes_per_decode_gpu;
  if (free_per_gpu <= 0)
    throw ConfigError("decode.gpus", fmt::format("{}: {} needs {:.1f} GB of weights per GPU on {} GPU(s), more than {:.0f}% of {:.0f} GB",
                                                 s.file, m.name, d.weight_bytes_per_decode_gpu / 1e9, s.decode_gpus,
                                                 100 * s.memory_fraction, s.gpu.hbm_bytes / 1e9));

  auto& c = d.sim;
  c.prefill_instances = s.prefill_instances;
  c.chunk_tokens = s.chunk_tokens;
  c.decode_instances = s.decode_instances;
  c.max_batch = s.max_batch;
  c.kv_bytes_per_token = kv_token * d.kv_replication;
  c.kv_capacity_bytes = free_per_gpu * s.decode_gpus;
  c.kv_transfer_bytes_per_token = kv_token;
  c.kv_transfer_bandwidth = s.kv_bandwidth;
  c.kv_transfer_latency = s.kv_latency;

  StepOptions sp = so;
  sp.gpus = s.prefill_gpus;
  d.prefill = std::make_unique<GpuPrefillModel>(s.gpu, m, sp);

  auto& k = d.cost;
  k.gpus = double(s.prefill_gpus) * s.prefill_instances + double(s.decode_gpus) * s.decode_instances;
  k.decode_gpus = double(s.decode_gpus) * s.decode_instances;
  k.gpu_watts_each = s.gpu.watts_per_gpu();
  k.gpu_rack_gpus = s.gpu_rack_gpus;
  k.gpu_rack_capex = s.gpu_rack_capex;
  k.depreciation_years = s.depreciation_years;
  k.power_price_per_kwh = s.power_price_per_kwh;
  k.pue = s.pue;
  k.slo_ttft = s.slo_ttft;
  k.slo_tpot = s.slo_tpot;

  if (!afd) {
    d.step = std::make_unique<GpuStepModel>(s.gpu, m, so);
    return d;
  }
  k.lpx_racks = double(s.lpx_racks) * s.decode_instances;
  k.lpx_rack_capex = s.lpx_rack_capex;
  k.lpx_rack_watts = s.lpx_rack_watts;
  // Static power of every chip of the racks (the energy model's, docs/energy.md), used or not.
  const auto rack = rack::load_rack(s.lpx_rack);
  double rack_static = 0;
  for (int ch = 0; ch < rack.chips; ++ch) rack_static += rack.chip(ch).energy.static_w;
  k.lpx_static_watts = k.lpx_racks * rack_static;

  LpxFfnCache* cache = o.lpx_cache;
  if (!cache) {
    LpxTimingSource* src = o.lpx_source;
    if (!src) {
      d.lpx_source = emulator_lpx_source(o.threads, o.log);
      src = d.lpx_source.get();
    }
    d.lpx_cache = std::make_unique<LpxFfnCache>(o.cache.empty() ? s.lpx_cache : o.cache, *src);
    cache = d.lpx_cache.get();
  }
  AfdOptions a;
  a.link = {s.link_bandwidth, s.link_latency};
  a.micro_batches = s.micro_batches;
  a.lpx_rack = s.lpx_rack;
  a.lpx_dtype = s.lpx_dtype;
  a.lpx_partition = s.lpx_partition;
  auto step = std::make_unique<AfdStepModel>(s.gpu, m, model_name, so, a, *cache);
  d.afd = step.get();
  d.step = std::move(step);
  return d;
}

}  // namespace lpu::serving
