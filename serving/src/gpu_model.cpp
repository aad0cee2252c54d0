#include "lpu/serving/gpu_model.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "lpu/common/errors.hpp"
#include "toml_reader.hpp"

namespace lpu::serving {

// --- Formats ------------------------------------------------------------------------------

Dtype parse_dtype(const std::string& s) {
  if (s == "fp4" || s == "nvfp4") return Dtype::Fp4;
  if (s == "fp8") return Dtype::Fp8;
  if (s == "bf16") return Dtype::Bf16;
  throw ConfigError("dtype", fmt::format("unknown format '{}' (fp4, fp8, bf16)", s));
}

const char* name(Dtype d) {
  switch (d) {
    case Dtype::Fp4: return "fp4";
    case Dtype::Fp8: return "fp8";
    case Dtype::Bf16: return "bf16";
  }
  return "?";
}

// NVFP4: 4-bit values plus one 8-bit (E4M3) scale per block of 16 -> 4.5 bits per weight.
double weight_bytes(Dtype d) {
  switch (d) {
    case Dtype::Fp4: return 4.5 / 8;
    case Dtype::Fp8: return 1;
    case Dtype::Bf16: return 2;
  }
  return 2;
}

const char* name(Bound b) {
  switch (b) {
    case Bound::Compute: return "compute";
    case Bound::Memory: return "memory";
    case Bound::Link: return "link";
    case Bound::Latency: return "latency";
  }
  return "?";
}

double GpuSystem::flops(Dtype d) const {
  const double f = d == Dtype::Fp4 ? flops_fp4 : d == Dtype::Fp8 ? flops_fp8 : flops_bf16;
  if (f <= 0) throw ConfigError(fmt::format("gpu.flops_{}", serving::name(d)), fmt::format("{}: this GPU has no {} tensor throughput", file, serving::name(d)));
  return f;
}

// --- Loading ------------------------------------------------------------------------------

GpuSystem parse_gpu_system(const std::string& text, const std::string& origin) {
  const auto t = detail::parse_toml(text, origin);
  detail::Reader r(t, origin);
  constexpr double kBig = 1e30;
  GpuSystem g;
  g.file = origin;
  g.name = r.text("name", origin);
  g.hbm_bytes = r.real("gpu.hbm_bytes", 0, kBig, true);
  g.hbm_bandwidth = r.real("gpu.hbm_bandwidth", 0, kBig, true);
  g.flops_fp4 = r.real("gpu.flops_fp4", 0, kBig);
  g.flops_fp8 = r.real("gpu.flops_fp8", 0, kBig);
  g.flops_bf16 = r.real("gpu.flops_bf16", 0, kBig, true);
  g.gpu_watts = r.real("gpu.watts", 0, kBig, true);
  g.scale_up_gpus = r.integer("scale_up.gpus", 1, 1 << 20);
  g.scale_up_bandwidth = r.real("scale_up.bandwidth", 0, kBig, true);
  g.scale_up_latency = r.real("scale_up.latency", 0, 1);
  g.scale_out_bandwidth = r.real("scale_out.bandwidth", 0, kBig, true);
  g.scale_out_latency = r.real("scale_out.latency", 0, 1);
  g.system_watts = r.real("power.system_watts", 0, kBig, true);
  g.system_gpus = r.integer("power.system_gpus", 1, 1 << 20);
  g.eff_hbm = r.real("efficiency.hbm", 0, 1, true);
  g.eff_tensor = r.real("efficiency.tensor", 0, 1, true);
  g.eff_link = r.real("efficiency.link", 0, 1, true);
  g.kernel_overhead = r.real("efficiency.kernel_overhead", 0, 1);
  g.moe_slowdown = r.real("efficiency.moe_slowdown", 1, 64);
  r.check_unknown();
  return g;
}

GpuSystem load_gpu_system(const std::string& name_or_path) {
  const auto f = detail::read_system_file(name_or_path, "gpu", "GPU systems", "; set LPU_CONFIG_DIR to use another folder");
  return parse_gpu_system(f.text, f.path);
}

AttnParallel parse_attn_parallel(const std::string& s) {
  if (s == "auto") return AttnParallel::Auto;
  if (s == "tp") return AttnParallel::Tensor;
  if (s == "dp") return AttnParallel::Data;
  throw ConfigError("attn", fmt::format("unknown attention parallelism '{}' (auto, tp, dp)", s));
}

// --- Operations ---------------------------------------------------------------------------

OpTime roofline(const GpuSystem& g, double flops, double bytes, Dtype d) {
  OpTime o;
  o.flops = flops;
  o.bytes = bytes;
  const double tc = flops / (g.flops(d) * g.eff_tensor);
  const double tm = bytes / (g.hbm_bandwidth * g.eff_hbm);
  o.bound = tc > tm ? Bound::Compute : Bound::Memory;
  o.time = std::max(tc, tm) + g.kernel_overhead;
  if (g.kernel_overhead > std::max(tc, tm)) o.bound = Bound::Latency;
  return o;
}

OpTime matmul(const GpuSystem& g, double m, double n, double k, Dtype w) {
  return roofline(g, 2 * m * n * k, k * n * weight_bytes(w) + 2 * (m * k + m * n), w);
}

namespace {

// The link a collective over n GPUs uses: the scale-up domain when it holds them all.
struct Link {
  double bw, lat;
};
Link link_for(const GpuSystem& g, int n) {
  if (n <= g.scale_up_gpus) return {g.scale_up_bandwidth * g.eff_link, g.scale_up_latency};
  return {g.scale_out_bandwidth * g.eff_link, g.scale_out_latency};
}

OpTime collective(const GpuSystem& g, double wire_bytes, double transfer_time, double latency_time) {
  OpTime o;
  o.link_bytes = wire_bytes;
  o.time = transfer_time + latency_time + g.kernel_overhead;
  o.bound = transfer_time >= latency_time + g.kernel_overhead ? Bound::Link : Bound::Latency;
  return o;
}

}  // namespace

OpTime all_reduce_ring(const GpuSystem& g, int n, double bytes) {
  if (n <= 1) return {};
  const auto l = link_for(g, n);
  const double wire = 2.0 * (n - 1) / n * bytes;
  return collective(g, wire, wire / l.bw, 2.0 * (n - 1) * l.lat);
}

OpTime all_reduce_one_shot(const GpuSystem& g, int n, double bytes) {
  if (n <= 1) return {};
  const auto l = link_for(g, n);
  const double wire = double(n - 1) * bytes;
  return collective(g, wire, wire / l.bw, l.lat);
}

OpTime all_reduce(const GpuSystem& g, int n, double bytes) {
  const auto a = all_reduce_ring(g, n, bytes), b = all_reduce_one_shot(g, n, bytes);
  return a.time <= b.time ? a : b;
}

OpTime all_gather(const GpuSystem& g, int n, double bytes) {
  if (n <= 1) return {};
  const auto l = link_for(g, n);
  const double wire = double(n - 1) * bytes;
  return collective(g, wire, wire / l.bw, double(n - 1) * l.lat);
}

OpTime all_to_all(const GpuSystem& g, int n, double bytes) {
  if (n <= 1) return {};
  const auto l = link_for(g, n);
  const double wire = double(n - 1) / n * bytes;
  return collective(g, wire, wire / l.bw, l.lat);
}

// --- Transformer steps ----------------------------------------------------------------------

namespace {

struct Breakdown {
  std::vector<StepOp> ops;
  std::vector<double> biggest;  // time of the largest single contribution per row (its bound wins)

  void add(const std::string& op_name, const OpTime& t, double count = 1) {
    if (count <= 0 || t.time <= 0) return;
    auto it = std::find_if(ops.begin(), ops.end(), [&](const StepOp& s) { return s.name == op_name; });
    if (it == ops.end()) {
      ops.push_back({op_name, 0, {}});
      biggest.push_back(0);
      it = ops.end() - 1;
    }
    auto& row = it->total;
    const auto i = std::size_t(it - ops.begin());
    it->count += int(count);
    row.time += t.time * count;
    row.flops += t.flops * count;
    row.bytes += t.bytes * count;
    row.link_bytes += t.link_bytes * count;
    if (t.time > biggest[i]) {
      biggest[i] = t.time;
      row.bound = t.bound;
    }
  }
  double total() const {
    double s = 0;
    for (const auto& o : ops) s += o.total.time;
    return s;
  }
};

// One forward pass of `seqs` sequences of `q` new tokens each, after `ctx` cached positions.
// `decode`: attention in MLA's absorbed form (decode), else the plain form (prefill).
struct Pass {
  const GpuSystem& g;
  const compiler::ModelShape& m;
  const StepOptions& o;
  bool dp;        // data-parallel attention
  double s;       // sequences per GPU (dp: ceil(seqs / gpus); tp: all of them)
  double q;       // new tokens per sequence
  double ctx;     // cached positions per sequence
  bool decode;
  int n;          // GPUs

  double tokens() const { return s * q; }
  double tp() const { return dp ? 1.0 : double(n); }
  bool mla() const { return m.kv_lora_rank > 0; }
  bool moe() const { return m.experts > 0; }

  // Stored weights of one layer's attention on one GPU, in weights (not bytes).
  double attn_weights_per_gpu() const {
    const double d = m.d_model, h = m.heads / tp();
    if (mla()) {
      const double qk = m.qk_nope_dim + m.qk_rope_dim;
      const double qa = m.q_lora_rank > 0 ? d * m.q_lora_rank + m.q_lora_rank * h * qk : d * h * qk;
      return qa + d * (m.kv_lora_rank + m.qk_rope_dim) + double(m.kv_lora_rank) * h * (m.qk_nope_dim + m.v_head_dim) +
             h * m.v_head_dim * d;
    }
    const double kvh = std::max(1.0, m.kv_heads / tp());
    return d * (h + 2 * kvh) * m.head_dim + h * m.head_dim * d;
  }
  // KV-cache bytes of one position of one layer, as one GPU holds it.
  double kv_bytes_per_pos() const {
    const double b = weight_bytes(o.kv_dtype);
    if (mla()) return double(m.kv_lora_rank + m.qk_rope_dim) * b;  // the latent is not split by heads
    return 2.0 * std::max(1.0, m.kv_heads / tp()) * m.head_dim * b;
  }

  void attention(Breakdown& bd, double layers) const {
    const double t = tokens(), d = m.d_model, h = m.heads / tp();
    const Dtype w = o.dtype;
    if (mla()) {
      const double qk = m.qk_nope_dim + m.qk_rope_dim;
      if (m.q_lora_rank > 0) {
        bd.add("attn.proj", matmul(g, t, m.q_lora_rank, d, w), layers);
        bd.add("attn.proj", matmul(g, t, h * qk, m.q_lora_rank, w), layers);
      } else {
        bd.add("attn.proj", matmul(g, t, h * qk, d, w), layers);
      }
      bd.add("attn.proj", matmul(g, t, m.kv_lora_rank + m.qk_rope_dim, d, w), layers);
      // Decode absorbs W_UK into the query and W_UV into the output: the same weights and flops
      // as one matmul of the new tokens; prefill up-projects the new tokens' K and V likewise.
      bd.add("attn.proj", matmul(g, t, h * (m.qk_nope_dim + m.v_head_dim), m.kv_lora_rank, w), layers);
      bd.add("attn.proj", matmul(g, t, d, h * m.v_head_dim, w), layers);
    } else {
      const double kvh = std::max(1.0, m.kv_heads / tp());
      bd.add("attn.proj", matmul(g, t, (h + 2 * kvh) * m.head_dim, d, w), layers);
      bd.add("attn.proj", matmul(g, t, d, h * m.head_dim, w), layers);
    }
    // Each new token attends to the cached positions and, causally, to the new tokens up to it.
    const double pairs = s * q * (ctx + (q + 1) / 2);
    double dims;  // flops per (query, key) pair and head / 2: the QK^T and PV widths
    if (mla())
      dims = decode ? double(m.kv_lora_rank + m.qk_rope_dim) + m.kv_lora_rank
                    : double(m.qk_nope_dim + m.qk_rope_dim) + m.v_head_dim;
    else
      dims = 2.0 * m.head_dim;
    const double flops = 2 * pairs * h * dims;
    const double bytes = s * (ctx + q) * kv_bytes_per_pos();
    bd.add("attention", roofline(g, flops, bytes, o.kv_dtype), layers);
    if (!dp) bd.add("all_reduce", all_reduce(g, n, t * d * 2), layers);
  }

  void dense_ffn(Breakdown& bd, double ffn, double layers) const {
    const double t = tokens(), d = m.d_model;
    bd.add("ffn", matmul(g, t, 2 * ffn / tp(), d, o.dtype), layers);
    bd.add("ffn", matmul(g, t, d, ffn / tp(), o.dtype), layers);
    if (!dp) bd.add("all_reduce", all_reduce(g, n, t * d * 2), layers);
  }

  void moe_ffn(Breakdown& bd, double layers) const {
    const double t = tokens(), d = m.d_model, f = m.ffn, k = m.experts_per_token, e = m.experts;
    bd.add("router", matmul(g, t, e, d, Dtype::Bf16), layers);
    // Routed tokens are spread evenly over the experts; an expert's weights are read when at
    // least one of the instance's tokens picks it (each token picks k of e).
    const double instance_tokens = dp ? t * n : t;
    const double per_gpu_tokens = instance_tokens * k / n * g.moe_slowdown;  // the busiest GPU
    const double local_experts = e / n;
    const double active = local_experts * (1 - std::pow(1 - k / e, instance_tokens));
    const double wb = weight_bytes(o.dtype);
    bd.add("experts", roofline(g, 2 * per_gpu_tokens * 2 * f * d, active * 2 * f * d * wb + 2 * per_gpu_tokens * (d + 2 * f), o.dtype),
           layers);
    bd.add("experts", roofline(g, 2 * per_gpu_tokens * f * d, active * f * d * wb + 2 * per_gpu_tokens * (f + d), o.dtype), layers);
    if (m.shared_experts > 0) {
      const double fs = f * m.shared_experts;
      bd.add("shared", matmul(g, t, 2 * fs / tp(), d, o.dtype), layers);
      bd.add("shared", matmul(g, t, d, fs / tp(), o.dtype), layers);
    }
    if (dp) {
      // DeepEP-style: tokens leave in fp8 (1 byte) to each of their k experts, return in bf16.
      // The busiest GPU receives moe_slowdown times the mean.
      bd.add("dispatch", all_to_all(g, n, t * k * d * 1 * g.moe_slowdown), layers);
      bd.add("combine", all_to_all(g, n, t * k * d * 2 * g.moe_slowdown), layers);
    } else {
      // Every GPU holds every token after attention's all-reduce: experts and the shared
      // expert's slice add partial sums, reduced once.
      bd.add("all_reduce", all_reduce(g, n, t * d * 2), layers);
    }
  }

  void layer(Breakdown& bd, bool dense_layer, double count) const {
    attention(bd, count);
    if (!moe())
      dense_ffn(bd, m.ffn, count);
    else if (dense_layer)
      dense_ffn(bd, m.dense_ffn ? m.dense_ffn : m.ffn, count);
    else
      moe_ffn(bd, count);
  }

  void lm_head(Breakdown& bd, double tok) const {
    // Checkpoints quantized to fp8/fp4 keep the output projection in bf16.
    bd.add("lm_head", matmul(g, tok, m.vocab / tp(), m.d_model, Dtype::Bf16));
    if (!dp) bd.add("all_gather", all_gather(g, n, tok * m.vocab / tp() * 2));
  }

  double weight_bytes_per_gpu() const {
    const double d = m.d_model, wb = weight_bytes(o.dtype);
    const int dense_layers = moe() ? std::min(m.dense_layers, m.layers) : m.layers;
    const int moe_layers = m.layers - dense_layers;
    const double dense_f = moe() ? (m.dense_ffn ? m.dense_ffn : m.ffn) : m.ffn;
    double w = m.layers * attn_weights_per_gpu() * wb;
    w += dense_layers * 3 * d * dense_f / tp() * wb;
    if (moe_layers > 0)
      w += moe_layers * ((double(m.experts) / n + m.shared_experts / tp()) * 3 * d * m.ffn * wb + d * m.experts * 2);
    w += double(m.vocab) * d * 2;                                   // embedding, bf16, whole on every GPU
    if (!m.tied_embeddings) w += double(m.vocab) * d * 2 / tp();    // output projection, bf16
    return w;
  }
};

StepEstimate run(const GpuSystem& g, const compiler::ModelShape& m, int seqs, int q, int ctx, const StepOptions& o,
                 bool decode) {
  if (o.gpus < 1) throw ConfigError("gpus", "must be at least 1");
  if (seqs < 1) throw ConfigError(decode ? "batch" : "prompts", "must be at least 1");
  if (m.experts > 0 && o.gpus > m.experts)
    throw ConfigError("gpus", fmt::format("{} GPUs for {} experts: at most one GPU per expert", o.gpus, m.experts));
  if (o.kv_dtype == Dtype::Fp4) throw ConfigError("kv_dtype", "the KV cache is fp8 or bf16");
  if (o.draft_tokens < 0 || o.accepted_tokens < 1 || o.accepted_tokens > 1 + o.draft_tokens)
    throw ConfigError("accepted_tokens", fmt::format("{:g} must lie in 1..1+draft_tokens ({})", o.accepted_tokens, 1 + o.draft_tokens));
  bool dp;
  switch (o.attn) {
    case AttnParallel::Data:
      if (seqs < o.gpus)
        throw ConfigError("attn", fmt::format("data-parallel attention needs at least one sequence per GPU ({} < {})", seqs, o.gpus));
      dp = true;
      break;
    case AttnParallel::Tensor: dp = false; break;
    default: dp = m.experts > 0 && seqs >= o.gpus && o.gpus > 1;
  }
  const int n = o.gpus;
  const double s = dp ? std::ceil(double(seqs) / n) : double(seqs);
  Pass p{g, m, o, dp, s, double(q), double(ctx), decode, n};
  Breakdown bd;
  const int dense_layers = m.experts > 0 ? std::min(m.dense_layers, m.layers) : m.layers;
  if (dense_layers > 0) p.layer(bd, true, dense_layers);
  if (m.layers > dense_layers) p.layer(bd, false, m.layers - dense_layers);
  p.lm_head(bd, decode ? p.tokens() : s);  // prefill needs the logits of each prompt's last token
  if (decode) {
    // Multi-token prediction: one extra layer (and output projection) per draft token, each
    // run on one token per sequence.
    Pass mtp = p;
    mtp.q = 1;
    for (int i = 0; i < o.draft_tokens; ++i) {
      Breakdown x;
      mtp.layer(x, m.experts == 0, 1);
      mtp.lm_head(x, mtp.tokens());
      for (std::size_t j = 0; j < x.ops.size(); ++j) bd.add("mtp", x.ops[j].total);
    }
  }

  StepEstimate r;
  r.ops = std::move(bd.ops);
  for (const auto& op : r.ops) r.step_time += op.total.time;
  r.batch = seqs;
  r.context = decode ? ctx : q;
  r.gpus = n;
  r.data_parallel_attention = dp;
  r.tokens_per_step = decode ? o.accepted_tokens : q;
  r.tokens_per_s_per_user = r.tokens_per_step / r.step_time;
  r.tokens_per_s_per_gpu = double(seqs) * r.tokens_per_step / r.step_time / n;
  r.tokens_per_s_per_mw = r.tokens_per_s_per_gpu / g.watts_per_gpu() * 1e6;
  r.weight_bytes_per_gpu = p.weight_bytes_per_gpu();
  r.kv_bytes_per_gpu = s * (ctx + q) * m.layers * p.kv_bytes_per_pos();
  r.fits = r.weight_bytes_per_gpu + r.kv_bytes_per_gpu <= g.hbm_bytes;
  return r;
}

}  // namespace

StepEstimate decode_step(const GpuSystem& g, const compiler::ModelShape& m, int batch, int context, const StepOptions& o) {
  if (context < 0) throw ConfigError("context", "must not be negative");
  return run(g, m, batch, 1 + o.draft_tokens, context, o, true);
}

StepEstimate prefill(const GpuSystem& g, const compiler::ModelShape& m, int prompt_tokens, int prompts, const StepOptions& o) {
  if (prompt_tokens < 1) throw ConfigError("prefill_tokens", "must be at least 1");
  StepOptions p = o;
  p.draft_tokens = 0;
  p.accepted_tokens = 1;
  return run(g, m, prompts, prompt_tokens, 0, p, false);
}

int batch_for_interactivity(const GpuSystem& g, const compiler::ModelShape& m, int context, const StepOptions& o,
                            double target, int max_batch) {
  auto ok = [&](int b) {
    const auto e = decode_step(g, m, b, context, o);
    return e.fits && e.tokens_per_s_per_user >= target;
  };
  if (!ok(1)) return 0;
  int lo = 1, hi = max_batch;  // ok(lo); find the largest ok
  if (ok(hi)) return hi;
  while (hi - lo > 1) {
    const int mid = lo + (hi - lo) / 2;
    (ok(mid) ? lo : hi) = mid;
  }
  return lo;
}

double disaggregated_output_tokens_per_s_per_gpu(const StepEstimate& decode, const StepEstimate& pre, double osl) {
  const double decode_gpu_s = osl / decode.tokens_per_step * decode.step_time * decode.gpus / decode.batch;
  const double prefill_gpu_s = pre.step_time * pre.gpus / pre.batch;
  return osl / (decode_gpu_s + prefill_gpu_s);
}

}  // namespace lpu::serving
