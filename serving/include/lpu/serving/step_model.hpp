#pragma once
// What a decode step and a prefill chunk cost, for the request-level simulator (serve_sim.hpp,
// docs/serving.md): interfaces, a constant model for tests, the GPU-only step (the analytic GPU
// model, gpu_model.hpp) and the attention-FFN disaggregated (AFD) step: attention on the GPUs, the
// FFN on an emulated LPX rack (lpx_ffn.hpp), micro-batches ping-ponged between them after
// MegaScale-Infer (Zhu et al., ByteDance Seed, arXiv 2504.02263, 2025).
//
// Contract: seconds, bytes, joules; a model is deterministic (the same arguments give the same
// time), which is what makes the simulator deterministic.
#include <map>
#include <string>
#include <utility>

#include "lpu/compiler/model_shape.hpp"
#include "lpu/serving/gpu_model.hpp"
#include "lpu/serving/lpx_ffn.hpp"

namespace lpu::serving {

struct StepTime {
  double seconds = 0;
  int micro_batches = 1;
  double lpx_dynamic_j = 0;  // dynamic energy the LPX spent in this step (AFD)
};

// One decode step of `batch` users whose KV caches hold `context` positions on average.
class StepModel {
 public:
  virtual ~StepModel() = default;
  virtual StepTime step(int batch, int context) = 0;
};

// The prefill of `tokens` more tokens of one prompt of which `done` are already in the KV cache
// (one chunk of a chunked prefill).
class PrefillModel {
 public:
  virtual ~PrefillModel() = default;
  virtual double chunk(int done, int tokens) = 0;
};

class ConstantStepModel final : public StepModel {
 public:
  explicit ConstantStepModel(double seconds) : s_(seconds) {}
  StepTime step(int, int) override { return {s_, 1, 0}; }

 private:
  double s_;
};

// `per_token` seconds per prompt token, whatever the context.
class LinearPrefillModel final : public PrefillModel {
 public:
  explicit LinearPrefillModel(double per_token) : t_(per_token) {}
  double chunk(int, int tokens) override { return t_ * tokens; }

 private:
  double t_;
};

// The GPU model's prefill of a prompt alone, P(n) = prefill(g, m, n, 1).step_time; a chunk costs
// P(done + tokens) - P(done), so the chunks of a prompt add up to its unchunked prefill (the
// model has no per-chunk overhead). P is memoised.
class GpuPrefillModel final : public PrefillModel {
 public:
  GpuPrefillModel(GpuSystem g, compiler::ModelShape m, StepOptions o) : g_(std::move(g)), m_(std::move(m)), o_(o) {}
  double chunk(int done, int tokens) override { return full(done + tokens) - full(done); }
  double full(int tokens);

 private:
  GpuSystem g_;
  compiler::ModelShape m_;
  StepOptions o_;
  std::map<int, double> memo_;
};

// GPU only: decode_step(g, m, batch, context, o).step_time.
class GpuStepModel final : public StepModel {
 public:
  GpuStepModel(GpuSystem g, compiler::ModelShape m, StepOptions o) : g_(std::move(g)), m_(std::move(m)), o_(o) {}
  StepTime step(int batch, int context) override;

 private:
  GpuSystem g_;
  compiler::ModelShape m_;
  StepOptions o_;
};

// ---- The AFD ping-pong pipeline --------------------------------------------------------------
// A step of L layers for m micro-batches. Per layer and micro-batch: attention on the GPUs t_a,
// the activations to the LPX t_c, its FFN there t_f, the results back t_c. Each side serves one
// micro-batch at a time, in order; the link is a pure delay (full duplex, no contention). With
// R = t_a + t_f + 2 t_c (a micro-batch's round trip through one layer) and T = max(t_a, t_f) (the
// busier side's time per micro-batch), the step takes
//
//     step = (L - 1) max(R, m T) + R + (m - 1) T
//
// m T >= R (MegaScale-Infer's condition, m >= 2 (1 + t_c / T) when t_a = t_f = T): the busier
// side never waits and the step is L m T + R - T, MegaScale-Infer's (t_a + t_f + 2 t_c) + T (m L - 1).
// m T < R: each micro-batch runs its round trips back to back, L R, and the last one starts
// (m - 1) T after the first. docs/serving.md derives both; tests check the formula against an
// event-by-event schedule.
struct PingPong {
  double t_attn = 0, t_ffn = 0, t_comm = 0;
  int layers = 1, micro_batches = 1;
};
double ping_pong_step(const PingPong& p);
// The same schedule simulated event by event (micro-batches in order on each side, FIFO): the
// check of the formula.
double ping_pong_step_simulated(const PingPong& p);

// The GPU-LPX link: one transfer of `bytes` takes latency + bytes / bandwidth.
struct AfdLink {
  double bandwidth = 0, latency = 0;
  double transfer(double bytes) const { return latency + bytes / bandwidth; }
};

struct AfdOptions {
  AfdLink link;
  int micro_batches = 2;   // 0: the m in 1..4 (at most the batch) with the shortest step
  std::string lpx_rack;    // rack file
  std::string lpx_dtype = "fp8", lpx_partition = "hybrid";
};

// What one AFD step is made of (for --json and the docs).
struct AfdBreakdown {
  int micro_batches = 1, micro_batch = 1, lpx_batch = 1;
  double t_attn = 0, t_ffn = 0, t_comm = 0, t_other = 0, step = 0;
};

// AFD: attention (and the output projection) on the GPU instance, every layer's FFN on the LPX.
// t_a: the attention part of the GPU model's decode step of one micro-batch (attn.proj +
// attention + attention's all-reduce when tensor parallel) per layer; t_other: what the GPUs do
// once per step (lm_head, its all-gather) for the whole batch; t_c: the link with the micro-batch's
// activations in bf16 (micro_batch x d_model x 2 bytes); t_f: the LPX cache's seconds per layer for
// the micro-batch rounded up to a power of two (the batch the LPX programs are built for; a
// deployment would pad to it). step = ping_pong_step + t_other.
class AfdStepModel final : public StepModel {
 public:
  AfdStepModel(GpuSystem g, compiler::ModelShape m, std::string model_name, StepOptions o, AfdOptions a, LpxFfnCache& lpx);
  StepTime step(int batch, int context) override;
  AfdBreakdown breakdown(int batch, int context);
  // The attention part per layer and the once-per-step part of the GPU model for `batch` users.
  std::pair<double, double> gpu_parts(int batch, int context) const;

 private:
  AfdBreakdown with_m(int batch, int context, int m);
  LpxKey key(int lpx_batch) const;
  GpuSystem g_;
  compiler::ModelShape m_;
  std::string model_name_;
  StepOptions o_;
  AfdOptions a_;
  LpxFfnCache& lpx_;
  std::uint64_t files_hash_ = 0;
};

// The power of two >= n (n >= 1).
int pow2_at_least(int n);

}  // namespace lpu::serving
