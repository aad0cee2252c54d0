// Seeded weights and the plain C++ reference decoder (docs/decode.md, "Numerics").
//
// The reference follows the model definition line by line; the decoder's numerics contract
// only fixes where values are rounded and in which order f32 sums are taken:
//   - f32 arithmetic, each operation rounded (RNE, no fused multiply-add);
//   - every matrix-unit input is rounded to the weight type t (RMSNorm outputs, RoPE'd q and
//     k, v, attention probabilities, attention outputs, SwiGLU outputs);
//   - a matrix-vector product is a sequential f32 sum over the input index, from +0;
//   - RMSNorm's sum of squares and softmax's denominator: sequential sums over blocks of
//     `reduce_block` elements, the block sums added as a pairwise tree;
//   - exp, rsqrt, recip and silu are the ISA's f32 functions (lpu/isa/numerics.hpp).
#include "lpu/workload/reference.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "lpu/common/errors.hpp"
#include "lpu/isa/numerics.hpp"

namespace lpu::workload {

isa::Dtype parse_weight_dtype(const std::string& s) {
  if (s == "fp8" || s == "e4m3") return isa::Dtype::E4m3;
  if (s == "bf16") return isa::Dtype::Bf16;
  if (s == "int8" || s == "i8") return isa::Dtype::I8;
  throw Error(fmt::format("unknown weight type '{}' (fp8, bf16, int8)", s));
}

std::string weight_dtype_name(isa::Dtype t) {
  switch (t) {
    case isa::Dtype::E4m3: return "fp8";
    case isa::Dtype::Bf16: return "bf16";
    case isa::Dtype::I8: return "int8";
    default: return std::string(isa::dtype_info(t).name);
  }
}

namespace {

io::ElemType elem_of(isa::Dtype t) {
  switch (t) {
    case isa::Dtype::E4m3: return io::ElemType::E4m3;
    case isa::Dtype::Bf16: return io::ElemType::Bf16;
    case isa::Dtype::I8: return io::ElemType::I8;
    case isa::Dtype::F32: return io::ElemType::F32;
    default: throw Error(fmt::format("weights of type {} are not supported", isa::dtype_info(t).name));
  }
}

// splitmix64: a counter-based stream, so each tensor's values depend only on (seed, name).
struct Rng {
  std::uint64_t s;
  std::uint64_t next() {
    std::uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return (double(next() >> 11) + 0.5) * (1.0 / 9007199254740992.0); }  // (0, 1)
  double normal() {  // Box-Muller, one value per call
    const double u1 = uniform(), u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
};

std::uint64_t hash_name(const std::string& s, std::uint64_t seed) {
  std::uint64_t h = 1469598103934665603ull ^ seed;
  for (char c : s) h = (h ^ std::uint8_t(c)) * 1099511628211ull;
  return h;
}

void store(isa::Dtype t, std::vector<std::uint8_t>& out, std::size_t i, float v) {
  num::store_f32(t, num::MutBytes(out.data(), out.size()), i, v);
}

io::Tensor make(const std::string& name, std::uint64_t seed, isa::Dtype t, std::vector<std::int64_t> shape, double mean,
                double stddev) {
  io::Tensor x;
  x.type = elem_of(t);
  x.shape = std::move(shape);
  const auto n = std::size_t(x.numel());
  x.data.assign(n * std::size_t(isa::dtype_bytes(t)), 0);
  Rng r{hash_name(name, seed)};
  for (std::size_t i = 0; i < n; ++i) {
    double v = mean + stddev * r.normal();
    if (t == isa::Dtype::I8) v = std::clamp(std::nearbyint(v), -127.0, 127.0);
    store(t, x.data, i, float(v));
  }
  return x;
}

std::vector<float> decode(const io::Tensor& t) {
  isa::Dtype d;
  switch (t.type) {
    case io::ElemType::E4m3: d = isa::Dtype::E4m3; break;
    case io::ElemType::Bf16: d = isa::Dtype::Bf16; break;
    case io::ElemType::I8: d = isa::Dtype::I8; break;
    case io::ElemType::F32: d = isa::Dtype::F32; break;
    default: throw FormatError(fmt::format("tensor of type {} cannot be used", io::elem_name(t.type)));
  }
  const auto n = std::size_t(t.numel());
  std::vector<float> v(n);
  num::Bytes b(t.data.data(), t.data.size());
  for (std::size_t i = 0; i < n; ++i) v[i] = num::load_f32(d, b, i);
  return v;
}

struct Spec {
  std::string name;
  bool matrix;
  std::vector<std::int64_t> shape;
};

std::vector<Spec> specs(const ModelShape& m) {
  if (m.kv_lora_rank > 0)
    throw Error(fmt::format("model '{}': the decoder handles grouped-query attention only (multi-head latent attention, "
                            "kv_lora_rank, is not implemented)",
                            m.name));
  if (m.experts > 0 && (m.shared_experts > 0 || m.dense_layers > 0))
    throw Error(fmt::format("model '{}': mixture-of-experts layers with shared experts or leading dense layers are not "
                            "implemented (Mixtral-style routed experts are)",
                            m.name));
  if (m.heads % m.kv_heads != 0) throw Error(fmt::format("model '{}': heads must be a multiple of kv_heads", m.name));
  if (m.head_dim % 2 != 0) throw Error(fmt::format("model '{}': head_dim must be even (RoPE)", m.name));
  const std::int64_t d = m.d_model, q = std::int64_t(m.heads) * m.head_dim, kv = std::int64_t(m.kv_heads) * m.head_dim;
  std::vector<Spec> s;
  s.push_back({"tok_embeddings.weight", true, {m.vocab, d}});
  for (int l = 0; l < m.layers; ++l) {
    const std::string p = fmt::format("layers.{}.", l);
    s.push_back({p + "attention_norm.weight", false, {d}});
    s.push_back({p + "attention.wq.weight", true, {q, d}});
    s.push_back({p + "attention.wk.weight", true, {kv, d}});
    s.push_back({p + "attention.wv.weight", true, {kv, d}});
    s.push_back({p + "attention.wo.weight", true, {d, q}});
    s.push_back({p + "ffn_norm.weight", false, {d}});
    if (m.experts > 0) {
      s.push_back({p + "feed_forward.gate.weight", true, {m.experts, d}});
      for (int e = 0; e < m.experts; ++e) {
        const std::string x = fmt::format("{}feed_forward.experts.{}.", p, e);
        s.push_back({x + "w1.weight", true, {m.ffn, d}});
        s.push_back({x + "w3.weight", true, {m.ffn, d}});
        s.push_back({x + "w2.weight", true, {d, m.ffn}});
      }
      continue;
    }
    s.push_back({p + "feed_forward.w1.weight", true, {m.ffn, d}});
    s.push_back({p + "feed_forward.w3.weight", true, {m.ffn, d}});
    s.push_back({p + "feed_forward.w2.weight", true, {d, m.ffn}});
  }
  s.push_back({"norm.weight", false, {d}});
  s.push_back({"output.weight", true, {m.vocab, d}});
  return s;
}

}  // namespace

std::vector<std::string> weight_names(const ModelShape& m) {
  std::vector<std::string> r;
  for (const auto& s : specs(m)) r.push_back(s.name);
  return r;
}

std::map<std::string, io::Tensor> gen_weights(const ModelShape& m, std::uint64_t seed, isa::Dtype wtype) {
  std::map<std::string, io::Tensor> w;
  for (const auto& s : specs(m)) {
    if (!s.matrix) {
      w[s.name] = make(s.name, seed, isa::Dtype::F32, s.shape, 1.0, 0.1);
    } else if (s.name == "tok_embeddings.weight") {
      w[s.name] = make(s.name, seed, wtype, s.shape, 0.0, wtype == isa::Dtype::I8 ? 32.0 : 1.0);
    } else {
      const double sd = wtype == isa::Dtype::I8 ? 32.0 : 1.0 / std::sqrt(double(s.shape[1]));
      w[s.name] = make(s.name, seed, wtype, s.shape, 0.0, sd);
    }
  }
  return w;
}

void check_weights(const ModelShape& m, const std::map<std::string, io::Tensor>& w, isa::Dtype wtype,
                   const std::string& origin) {
  for (const auto& s : specs(m)) {
    auto it = w.find(s.name);
    if (it == w.end()) throw FormatError(fmt::format("{}: no tensor '{}' (model {})", origin, s.name, m.name));
    const auto want = s.matrix ? elem_of(wtype) : io::ElemType::F32;
    if (it->second.type != want)
      throw FormatError(fmt::format("{}: tensor '{}' is {}, expected {} (--dtype {})", origin, s.name,
                                    io::elem_name(it->second.type), io::elem_name(want), weight_dtype_name(wtype)));
    if (it->second.shape != s.shape)
      throw FormatError(fmt::format("{}: tensor '{}' has shape [{}], expected [{}]", origin, s.name,
                                    fmt::join(it->second.shape, ", "), fmt::join(s.shape, ", ")));
  }
}

float rope_cos(const ModelShape& m, int pos, int i) {
  return float(std::cos(double(pos) * std::pow(m.rope_theta, -2.0 * double(i) / double(m.head_dim))));
}
float rope_sin(const ModelShape& m, int pos, int i) {
  return float(std::sin(double(pos) * std::pow(m.rope_theta, -2.0 * double(i) / double(m.head_dim))));
}

std::vector<float> moe_gates(const std::vector<float>& logits, int k) {
  const std::size_t E = logits.size();
  std::vector<char> chosen(E, 0);
  std::vector<float> l = logits;
  for (int j = 0; j < k; ++j) {
    std::size_t best = E;
    for (std::size_t e = 0; e < E; ++e)
      if (!chosen[e] && (best == E || l[e] > l[best])) best = e;
    if (best == E) break;
    chosen[best] = 1;
  }
  float mx = -std::numeric_limits<float>::infinity();
  for (float v : logits) mx = std::max(mx, v);
  std::vector<float> ex(E, 0.0f), g(E, 0.0f);
  float s = 0.0f;
  for (std::size_t e = 0; e < E; ++e) {
    if (chosen[e]) ex[e] = num::exp_f32(logits[e] - mx);
    s = s + ex[e];
  }
  const float r = num::recip_f32(s);
  for (std::size_t e = 0; e < E; ++e) g[e] = ex[e] * r;
  return g;
}

int argmax(const std::vector<float>& v) {
  int best = 0;
  for (std::size_t i = 1; i < v.size(); ++i)
    if (v[i] > v[std::size_t(best)]) best = int(i);
  return best;
}

ReferenceDecoder::ReferenceDecoder(const ModelShape& m, const std::map<std::string, io::Tensor>& w, DecoderNumerics num)
    : m_(m), num_(num) {
  if (num_.wtype == isa::Dtype::I8)
    throw Error("the reference decoder (and functional decode) supports fp8 and bf16 weights; int8 is timing-only");
  if (num_.reduce_block < 1) throw Error("reduce_block must be positive");
  check_weights(m, w, num_.wtype, "weights");
  emb_ = decode(w.at("tok_embeddings.weight"));
  norm_ = decode(w.at("norm.weight"));
  out_ = decode(w.at("output.weight"));
  for (int l = 0; l < m.layers; ++l) {
    const std::string p = fmt::format("layers.{}.", l);
    Layer L;
    L.attn_norm = decode(w.at(p + "attention_norm.weight"));
    L.ffn_norm = decode(w.at(p + "ffn_norm.weight"));
    L.wq = decode(w.at(p + "attention.wq.weight"));
    L.wk = decode(w.at(p + "attention.wk.weight"));
    L.wv = decode(w.at(p + "attention.wv.weight"));
    L.wo = decode(w.at(p + "attention.wo.weight"));
    if (m.experts > 0) {
      L.router = decode(w.at(p + "feed_forward.gate.weight"));
      for (int e = 0; e < m.experts; ++e) {
        const std::string x = fmt::format("{}feed_forward.experts.{}.", p, e);
        L.experts.push_back({decode(w.at(x + "w1.weight")), decode(w.at(x + "w3.weight")), decode(w.at(x + "w2.weight"))});
      }
    } else {
      L.w1 = decode(w.at(p + "feed_forward.w1.weight"));
      L.w3 = decode(w.at(p + "feed_forward.w3.weight"));
      L.w2 = decode(w.at(p + "feed_forward.w2.weight"));
    }
    layers_.push_back(std::move(L));
  }
  reset();
}

void ReferenceDecoder::reset() {
  kcache_.assign(std::size_t(m_.layers), {});
  vcache_.assign(std::size_t(m_.layers), {});
}

float ReferenceDecoder::rnd(float x) const {
  std::uint8_t b[4] = {0, 0, 0, 0};
  num::store_f32(num_.wtype, num::MutBytes(b, 4), 0, x);
  return num::load_f32(num_.wtype, num::Bytes(b, 4), 0);
}

namespace {

// y[o] = sum_i W[o][i] x[i], sequentially over i from +0, in f32.
std::vector<float> matvec(const std::vector<float>& W, const std::vector<float>& x, std::size_t out) {
  const std::size_t in = x.size();
  std::vector<float> y(out);
  for (std::size_t o = 0; o < out; ++o) {
    float acc = 0.0f;
    const float* w = W.data() + o * in;
    for (std::size_t i = 0; i < in; ++i) {
      const float prod = w[i] * x[i];
      acc = acc + prod;
    }
    y[o] = acc;
  }
  return y;
}

// Sequential sums over blocks of `blk` elements, then a pairwise tree over the block sums:
// level by level, (0+1), (2+3), ...; an odd last element moves up unchanged.
float blocked_sum(const std::vector<float>& v, int blk) {
  std::vector<float> s;
  for (std::size_t b = 0; b < v.size(); b += std::size_t(blk)) {
    float acc = v[b];
    for (std::size_t i = b + 1; i < std::min(v.size(), b + std::size_t(blk)); ++i) acc = acc + v[i];
    s.push_back(acc);
  }
  while (s.size() > 1) {
    std::vector<float> t;
    for (std::size_t i = 0; i + 1 < s.size(); i += 2) t.push_back(s[i] + s[i + 1]);
    if (s.size() % 2) t.push_back(s.back());
    s.swap(t);
  }
  return s.empty() ? 0.0f : s[0];
}

}  // namespace

std::vector<float> ReferenceDecoder::rmsnorm(const std::vector<float>& x, const std::vector<float>& g) const {
  std::vector<float> sq(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) sq[i] = x[i] * x[i];
  const float ss = blocked_sum(sq, num_.reduce_block);
  const float inv_d = float(1.0 / double(m_.d_model));
  const float eps = float(m_.norm_eps);
  const float r = num::rsqrt_f32((ss * inv_d) + eps);
  std::vector<float> h(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    const float y = x[i] * r;
    h[i] = rnd(y * g[i]);
  }
  return h;
}

std::vector<float> ReferenceDecoder::step(int token, int pos) {
  if (token < 0 || token >= m_.vocab) throw Error(fmt::format("token {} out of range 0..{}", token, m_.vocab - 1));
  const std::size_t d = std::size_t(m_.d_model), hd = std::size_t(m_.head_dim), H = std::size_t(m_.heads),
                    KV = std::size_t(m_.kv_heads), G = H / KV, half = hd / 2;
  std::vector<float> x(emb_.begin() + std::ptrdiff_t(std::size_t(token) * d), emb_.begin() + std::ptrdiff_t(std::size_t(token + 1) * d));
  const float scale = float(1.0 / std::sqrt(double(hd)));
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    const auto& L = layers_[l];
    // Attention.
    auto h = rmsnorm(x, L.attn_norm);
    auto q = matvec(L.wq, h, H * hd);
    auto k = matvec(L.wk, h, KV * hd);
    auto v = matvec(L.wv, h, KV * hd);
    auto rope = [&](std::vector<float>& t, std::size_t heads) {
      for (std::size_t hh = 0; hh < heads; ++hh)
        for (std::size_t i = 0; i < half; ++i) {
          const float a = t[hh * hd + i], b = t[hh * hd + half + i];
          const float c = rope_cos(m_, pos, int(i)), s = rope_sin(m_, pos, int(i));
          t[hh * hd + i] = rnd((a * c) - (b * s));
          t[hh * hd + half + i] = rnd((b * c) + (a * s));
        }
    };
    rope(q, H);
    rope(k, KV);
    for (auto& e : v) e = rnd(e);
    auto& kc = kcache_[l];
    auto& vc = vcache_[l];
    if (kc.size() != std::size_t(pos))
      throw Error(fmt::format("reference decoder: step at position {} but {} positions are cached", pos, kc.size()));
    kc.push_back(k);
    vc.push_back(v);
    std::vector<float> attn(H * hd);
    for (std::size_t hh = 0; hh < H; ++hh) {
      const std::size_t g = hh / G;
      const std::size_t P = std::size_t(pos) + 1;
      std::vector<float> s(P);
      float mx = -std::numeric_limits<float>::infinity();
      for (std::size_t p = 0; p < P; ++p) {
        float acc = 0.0f;
        for (std::size_t i = 0; i < hd; ++i) {
          const float prod = kc[p][g * hd + i] * q[hh * hd + i];
          acc = acc + prod;
        }
        s[p] = acc * scale;
        mx = std::max(mx, s[p]);
      }
      std::vector<float> e(P);
      for (std::size_t p = 0; p < P; ++p) e[p] = num::exp_f32(s[p] - mx);
      const float rs = num::recip_f32(blocked_sum(e, num_.reduce_block));
      std::vector<float> pr(P);
      for (std::size_t p = 0; p < P; ++p) pr[p] = rnd(e[p] * rs);
      for (std::size_t j = 0; j < hd; ++j) {
        float acc = 0.0f;
        for (std::size_t p = 0; p < P; ++p) {
          const float prod = vc[p][g * hd + j] * pr[p];
          acc = acc + prod;
        }
        attn[hh * hd + j] = rnd(acc);
      }
    }
    auto o = matvec(L.wo, attn, d);
    for (std::size_t i = 0; i < d; ++i) x[i] = x[i] + o[i];
    // SwiGLU feed-forward (of every expert, weighted by its gate, in a mixture of experts).
    auto h2 = rmsnorm(x, L.ffn_norm);
    auto swiglu = [&](const std::vector<float>& w1, const std::vector<float>& w3, const std::vector<float>& w2) {
      auto gate = matvec(w1, h2, std::size_t(m_.ffn));
      auto up = matvec(w3, h2, std::size_t(m_.ffn));
      std::vector<float> a(gate.size());
      for (std::size_t i = 0; i < a.size(); ++i) a[i] = rnd(num::silu_f32(gate[i]) * up[i]);
      return matvec(w2, a, d);
    };
    if (m_.experts == 0) {
      auto dn = swiglu(L.w1, L.w3, L.w2);
      for (std::size_t i = 0; i < d; ++i) x[i] = x[i] + dn[i];
      continue;
    }
    const auto g = moe_gates(matvec(L.router, h2, std::size_t(m_.experts)), m_.experts_per_token);
    for (std::size_t e = 0; e < L.experts.size(); ++e) {
      // Every expert, in order; an expert not chosen has gate 0 and adds (y * 0) = a zero.
      const auto& X = L.experts[e];
      auto dn = swiglu(X.w1, X.w3, X.w2);
      for (std::size_t i = 0; i < d; ++i) x[i] = x[i] + (dn[i] * g[e]);
    }
  }
  auto hf = rmsnorm(x, norm_);
  return matvec(out_, hf, std::size_t(m_.vocab));
}

std::vector<int> ReferenceDecoder::greedy(const std::vector<int>& prompt, int max_new, std::vector<std::vector<float>>* logits) {
  if (prompt.empty()) throw Error("greedy decode needs a prompt of at least one token");
  reset();
  std::vector<int> out;
  int pos = 0;
  std::vector<float> lg;
  for (int t : prompt) lg = step(t, pos++);
  for (int k = 0; k < max_new; ++k) {
    const int t = argmax(lg);
    out.push_back(t);
    if (logits) logits->push_back(lg);
    if (k + 1 < max_new) lg = step(t, pos++);
  }
  return out;
}

}  // namespace lpu::workload
