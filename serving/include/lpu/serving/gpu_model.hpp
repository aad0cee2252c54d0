#pragma once
// The GPU side of disaggregated serving, as a documented analytic model (not an emulator):
// a GPU system described by a TOML file (configs/gpu/*.toml), the time of one operation from a
// roofline with efficiency factors, and the time of a transformer decode step or prefill built
// from those operations. docs/gpu-model.md gives every formula, the source of every config
// number and the calibration against published measurements.
//
// Contract: every time is in seconds, every size in bytes, every rate per second (SI units).
// Nothing here overlaps operations: a step is the sum of its operations (docs/gpu-model.md,
// "Limits").
#include <string>
#include <vector>

#include "lpu/compiler/model_shape.hpp"

namespace lpu::serving {

// Number formats the tensor cores run. Weights are stored in the same format; NVFP4 carries
// one 8-bit scale per 16 values, so fp4 weights take 4.5 bits.
enum class Dtype { Fp4, Fp8, Bf16 };
Dtype parse_dtype(const std::string& s);  // "fp4", "fp8", "bf16"; ConfigError("dtype") otherwise
const char* name(Dtype d);
double weight_bytes(Dtype d);  // bytes per stored weight: 0.5625, 1, 2

struct GpuSystem {
  std::string name, file;
  // One GPU.
  double hbm_bytes = 0, hbm_bandwidth = 0;            // capacity; peak bytes/s
  double flops_fp4 = 0, flops_fp8 = 0, flops_bf16 = 0;  // dense peak, flop/s (0: not supported)
  // Scale-up domain (NVLink): GPUs in one domain; per-GPU bandwidth in one direction; latency
  // of one transfer between two GPUs of the domain.
  int scale_up_gpus = 0;
  double scale_up_bandwidth = 0, scale_up_latency = 0;
  // Scale-out (between domains): per-GPU bandwidth in one direction; latency.
  double scale_out_bandwidth = 0, scale_out_latency = 0;
  // Power: the whole system (rack or server) of `system_gpus` GPUs, all in (GPUs, CPUs,
  // switches, NICs, fans, power conversion); the GPU alone for reference.
  double system_watts = 0, gpu_watts = 0;
  int system_gpus = 0;
  // Efficiency factors (fitted once, docs/gpu-model.md "Calibration"): achieved fraction of the
  // peak HBM bandwidth, of the peak tensor throughput, of the link bandwidth; the fixed cost of
  // one kernel (launch, tail, synchronisation) added to every operation; moe_slowdown (>= 1)
  // multiplies the tokens the busiest GPU's routed experts and their all-to-alls handle under
  // expert parallelism: routing imbalance and everything else the roofline misses in wide-EP
  // MoE layers, fitted as one number (docs/gpu-model.md says how large it came out, and why).
  double eff_hbm = 1, eff_tensor = 1, eff_link = 1, kernel_overhead = 0, moe_slowdown = 1;

  double flops(Dtype d) const;    // dense peak in that format; ConfigError when 0
  double watts_per_gpu() const { return system_watts / system_gpus; }
};

// Loads a system by path, or by name from configs/gpu/<name>.toml. Throws ConfigError naming
// the key (and the file; line:column for a TOML syntax error) on a missing key, a wrong type,
// a value out of range or an unknown key.
GpuSystem load_gpu_system(const std::string& name_or_path);
GpuSystem parse_gpu_system(const std::string& toml_text, const std::string& origin);

// What bounds an operation.
enum class Bound { Compute, Memory, Link, Latency };
const char* name(Bound b);

struct OpTime {
  double time = 0;                         // seconds, overhead included
  double flops = 0, bytes = 0, link_bytes = 0;  // per GPU
  Bound bound = Bound::Memory;
};

// --- Operations on one GPU (roofline) -----------------------------------------------------
// Y[M,N] = X[M,K] W[K,N], W in `w` format, X and Y in bf16 (2 bytes):
//   flops = 2 M N K, bytes = K N weight_bytes(w) + 2 (M K + M N),
//   time  = max(flops / (peak(w) eff_tensor), bytes / (hbm_bandwidth eff_hbm)) + kernel_overhead.
OpTime matmul(const GpuSystem& g, double m, double n, double k, Dtype w);
// A kernel that moves `bytes` and computes `flops` in format `d` (attention, grouped GEMMs):
// the same roofline.
OpTime roofline(const GpuSystem& g, double flops, double bytes, Dtype d);

// --- Collectives over `n` GPUs (a scale-up domain when n <= scale_up_gpus, else scale-out) ---
// `bytes`: the message each GPU holds (all-reduce: the vector reduced; all-gather: each GPU's
// piece; all-to-all: what each GPU sends in total, to all peers). bw = link bandwidth * eff_link,
// L = link latency.
//   all-reduce, ring:     2 (n-1)/n bytes / bw + 2 (n-1) L
//   all-reduce, one-shot: (n-1) bytes / bw + L       (each GPU reads every peer's vector)
//   all_reduce() takes the faster of the two, as NCCL and TensorRT-LLM choose by size.
//   all-gather, ring:     (n-1) bytes / bw + (n-1) L
//   all-to-all, direct:   (n-1)/n bytes / bw + L    (switched fabric: all pairs at once)
// Each adds kernel_overhead; n <= 1 costs nothing.
OpTime all_reduce(const GpuSystem& g, int n, double bytes);
OpTime all_reduce_ring(const GpuSystem& g, int n, double bytes);
OpTime all_reduce_one_shot(const GpuSystem& g, int n, double bytes);
OpTime all_gather(const GpuSystem& g, int n, double bytes);
OpTime all_to_all(const GpuSystem& g, int n, double bytes);

// --- Transformer steps ------------------------------------------------------------------
// How attention is spread over the instance's GPUs: tensor parallel (heads split, an
// all-reduce after the output projection) or data parallel (each GPU holds whole attention
// weights and 1/N of the users). Auto: data parallel for mixture-of-experts models (the
// wide-expert-parallel deployments of DeepSeek-V3/R1), tensor parallel for dense ones.
enum class AttnParallel { Auto, Tensor, Data };
AttnParallel parse_attn_parallel(const std::string& s);  // "auto", "tp", "dp"

struct StepOptions {
  int gpus = 1;         // GPUs of one instance (tensor / expert parallel over all of them)
  Dtype dtype = Dtype::Fp8;     // weights and matmuls
  Dtype kv_dtype = Dtype::Fp8;  // KV cache and attention arithmetic (fp8 or bf16)
  AttnParallel attn = AttnParallel::Auto;
  // Speculative decoding (multi-token prediction): each step checks `draft_tokens` extra
  // tokens per user with one extra layer per draft token, and keeps `accepted_tokens` tokens
  // per user on average (1 + draft_tokens at most).
  int draft_tokens = 0;
  double accepted_tokens = 1;
};

struct StepOp {
  std::string name;  // "attn.proj", "attention", "ffn", "experts", "shared", "all_reduce", ...
  int count = 0;     // operations summed in this row
  OpTime total;      // their sum (bound: the bound of the largest)
};

struct StepEstimate {
  std::vector<StepOp> ops;  // per-op breakdown, in execution order of first appearance
  double step_time = 0;     // seconds per decode step (or the whole prefill)
  double tokens_per_step = 0;            // per user: accepted tokens (decode), prompt (prefill)
  double tokens_per_s_per_user = 0;
  double tokens_per_s_per_gpu = 0;
  double tokens_per_s_per_mw = 0;        // with the system's all-in power per GPU
  double weight_bytes_per_gpu = 0, kv_bytes_per_gpu = 0;
  bool fits = true;                      // weights + KV within one GPU's HBM
  int batch = 0, context = 0, gpus = 0;
  bool data_parallel_attention = false;
};

// One decode step of `batch` users, each with `context` positions in its KV cache, on one
// instance of opts.gpus GPUs. Throws ConfigError when the shape cannot be split that way
// (batch < gpus with data-parallel attention, more GPUs than experts).
StepEstimate decode_step(const GpuSystem& g, const compiler::ModelShape& m, int batch, int context,
                         const StepOptions& opts);

// The prefill of `prompts` prompts of `prompt_tokens` tokens each (causal attention within a
// prompt, no earlier context) on one instance: time to first token when they run alone.
StepEstimate prefill(const GpuSystem& g, const compiler::ModelShape& m, int prompt_tokens, int prompts,
                     const StepOptions& opts);

// The largest batch (1..max_batch) whose decode keeps tokens/s per user >= target, or 0 when even
// batch 1 is slower. Monotone search (step time grows with the batch).
int batch_for_interactivity(const GpuSystem& g, const compiler::ModelShape& m, int context, const StepOptions& opts,
                            double target_tokens_per_s_per_user, int max_batch = 1 << 16);

// Output tokens/s per GPU of a disaggregated deployment: decode as `decode` describes it,
// prefill as `prefill` does (its prompts of its prompt length), requests of `osl` output
// tokens. GPU-seconds per request = osl / accepted * step_time * gpus / batch (decode)
// + step_time * gpus / prompts (prefill); the result is osl over their sum.
double disaggregated_output_tokens_per_s_per_gpu(const StepEstimate& decode, const StepEstimate& prefill, double osl);

}  // namespace lpu::serving
