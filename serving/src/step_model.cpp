#include "lpu/serving/step_model.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "lpu/common/errors.hpp"

namespace lpu::serving {

int pow2_at_least(int n) {
  int p = 1;
  while (p < n) p *= 2;
  return p;
}

double GpuPrefillModel::full(int tokens) {
  if (tokens <= 0) return 0;
  if (auto it = memo_.find(tokens); it != memo_.end()) return it->second;
  const double t = prefill(g_, m_, tokens, 1, o_).step_time;
  memo_[tokens] = t;
  return t;
}

StepTime GpuStepModel::step(int batch, int context) { return {decode_step(g_, m_, batch, context, o_).step_time, 1, 0}; }

double ping_pong_step(const PingPong& p) {
  const double r = p.t_attn + p.t_ffn + 2 * p.t_comm;
  const double t = std::max(p.t_attn, p.t_ffn);
  const int m = p.micro_batches;
  return (p.layers - 1) * std::max(r, m * t) + r + (m - 1) * t;
}

double ping_pong_step_simulated(const PingPong& p) {
  std::vector<double> ready(std::size_t(p.micro_batches), 0.0);  // when each micro-batch's activations are back on the GPUs
  double gpu_free = 0, lpx_free = 0;
  for (int l = 0; l < p.layers; ++l)
    for (auto& r : ready) {
      const double a_end = std::max(r, gpu_free) + p.t_attn;
      gpu_free = a_end;
      const double f_end = std::max(a_end + p.t_comm, lpx_free) + p.t_ffn;
      lpx_free = f_end;
      r = f_end + p.t_comm;
    }
  return *std::max_element(ready.begin(), ready.end());
}

AfdStepModel::AfdStepModel(GpuSystem g, compiler::ModelShape m, std::string model_name, StepOptions o, AfdOptions a,
                           LpxFfnCache& lpx)
    : g_(std::move(g)), m_(std::move(m)), model_name_(std::move(model_name)), o_(o), a_(std::move(a)), lpx_(lpx) {
  if (o_.draft_tokens != 0) throw ConfigError("draft_tokens", "attention-FFN disaggregation is modelled without speculative decoding");
  if (!(a_.link.bandwidth > 0)) throw ConfigError("link.bandwidth", "must be positive");
  if (a_.micro_batches < 0) throw ConfigError("lpx.micro_batches", "must be 0 (the best of 1..4) or more");
  files_hash_ = hash_files(model_name_, a_.lpx_rack);
}

std::pair<double, double> AfdStepModel::gpu_parts(int batch, int context) const {
  const auto e = decode_step(g_, m_, batch, context, o_);
  double attn = 0, other = 0;
  for (const auto& op : e.ops) {
    if (op.name == "attn.proj" || op.name == "attention") {
      attn += op.total.time;
    } else if (op.name == "all_reduce") {
      // Tensor-parallel attention reduces once per layer, and so does the FFN or MoE layer after
      // it (same bytes): attention's share is layers / count of the row.
      if (!e.data_parallel_attention && op.count > 0) attn += op.total.time * m_.layers / op.count;
    } else if (op.name == "lm_head" || op.name == "all_gather") {
      other += op.total.time;
    }
    // ffn, router, experts, shared, dispatch, combine: the LPX's part.
  }
  return {attn / m_.layers, other};
}

LpxKey AfdStepModel::key(int lpx_batch) const {
  LpxKey k;
  k.model = model_name_;
  k.rack = a_.lpx_rack;
  k.dtype = a_.lpx_dtype;
  k.partition = a_.lpx_partition;
  k.batch = lpx_batch;
  k.files_hash = files_hash_;
  return k;
}

AfdBreakdown AfdStepModel::with_m(int batch, int context, int m) {
  AfdBreakdown b;
  b.micro_batch = (batch + m - 1) / m;
  b.micro_batches = (batch + b.micro_batch - 1) / b.micro_batch;  // no empty micro-batch
  b.lpx_batch = pow2_at_least(b.micro_batch);
  b.t_attn = gpu_parts(b.micro_batch, context).first;
  b.t_other = gpu_parts(batch, context).second;
  b.t_comm = a_.link.transfer(double(b.micro_batch) * m_.d_model * 2);
  b.t_ffn = lpx_.get(key(b.lpx_batch)).seconds_per_layer;
  b.step = ping_pong_step({b.t_attn, b.t_ffn, b.t_comm, m_.layers, b.micro_batches}) + b.t_other;
  return b;
}

AfdBreakdown AfdStepModel::breakdown(int batch, int context) {
  if (batch < 1) throw ConfigError("batch", "must be at least 1");
  if (a_.micro_batches > 0) return with_m(batch, context, std::min(a_.micro_batches, batch));
  AfdBreakdown best;
  for (int m = 1; m <= std::min(4, batch); ++m) {
    const auto b = with_m(batch, context, m);
    if (m == 1 || b.step < best.step) best = b;
  }
  return best;
}

StepTime AfdStepModel::step(int batch, int context) {
  const auto b = breakdown(batch, context);
  return {b.step, b.micro_batches, b.micro_batches * lpx_.get(key(b.lpx_batch)).dynamic_j_per_run};
}

}  // namespace lpu::serving
