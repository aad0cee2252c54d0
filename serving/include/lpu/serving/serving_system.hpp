#pragma once
// A serving system file (configs/serving/*.toml, docs/serving.md "System files"): the GPU system
// and how its GPUs are split into prefill and decode instances, the KV-cache transfer, for
// attention-FFN disaggregation the LPX rack and the GPU-LPX link, the latency targets and the cost
// parameters; and the deployment built from it for one model (the simulator's config, its step and
// prefill models, its power and cost).
#include <functional>
#include <memory>
#include <string>

#include "lpu/compiler/model_shape.hpp"
#include "lpu/serving/gpu_model.hpp"
#include "lpu/serving/serve_sim.hpp"
#include "lpu/serving/step_model.hpp"

namespace lpu::serving {

enum class ServingMode { Gpu, Afd };

struct ServingSystem {
  std::string name, file;
  ServingMode mode = ServingMode::Gpu;
  GpuSystem gpu;
  Dtype dtype = Dtype::Fp8, kv_dtype = Dtype::Fp8;
  double memory_fraction = 0.9;  // of HBM usable for weights + KV cache (the rest: activations, workspace)
  int prefill_gpus = 8, prefill_instances = 1, chunk_tokens = 8192;
  int decode_gpus = 8, decode_instances = 1, max_batch = 64;
  double kv_bandwidth = 0, kv_latency = 0;
  // AFD only.
  std::string lpx_rack;          // rack file path
  int lpx_racks = 1;             // per decode instance
  std::string lpx_partition = "hybrid", lpx_dtype = "fp8", lpx_cache;
  int micro_batches = 2;
  double lpx_rack_watts = 0;     // 0: the emulator's static + dynamic power
  double link_bandwidth = 0, link_latency = 0;
  // SLOs and cost.
  double slo_ttft = 1, slo_tpot = 0.05;
  double gpu_rack_capex = 0, lpx_rack_capex = 0, depreciation_years = 4, power_price_per_kwh = 0.1, pue = 1.2;
  int gpu_rack_gpus = 72;
};

// By path, or by name from configs/serving/<name>.toml. ConfigError naming the key, the file and
// the line:column on a missing, mistyped, out-of-range or unknown key.
ServingSystem load_serving_system(const std::string& name_or_path);
ServingSystem parse_serving_system(const std::string& toml_text, const std::string& origin);

// The system running one model: what the simulator needs, and the figures behind them.
struct Deployment {
  SimConfig sim;
  CostModel cost;
  std::unique_ptr<PrefillModel> prefill;
  std::unique_ptr<StepModel> step;
  AfdStepModel* afd = nullptr;          // step, when the mode is AFD
  std::unique_ptr<LpxTimingSource> lpx_source;
  std::unique_ptr<LpxFfnCache> lpx_cache;
  double weight_bytes_per_decode_gpu = 0;  // what the decode GPUs hold besides the KV cache
  double kv_replication = 1;               // copies of each position's KV across the decode instance
  StepOptions options;
};

struct DeployOptions {
  std::string cache;      // overrides lpx.cache ("" keeps the file's)
  int threads = 1;        // rack engine threads for LPX emulation
  std::function<void(const std::string&)> log;   // a line per LPX emulation
  LpxTimingSource* lpx_source = nullptr;         // tests: a stub instead of the emulator
  LpxFfnCache* lpx_cache = nullptr;              // a cache kept across deployments (a sweep); else one of its own
};

// Throws ConfigError when the model's weights do not fit the decode GPUs. The LPX racks' static
// power is the energy model's static power of every chip of the rack file.
Deployment deploy(const ServingSystem& s, const compiler::ModelShape& m, const std::string& model_name, const DeployOptions& o);

}  // namespace lpu::serving
