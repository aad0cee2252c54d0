// The decode front end: a transformer shape -> one decode step as IR.
#include <fmt/format.h>

#include "lpu/common/errors.hpp"
#include "lpu/compiler/frontend.hpp"

namespace lpu::compiler {

Graph decode_graph(const ModelShape& m, const DecodeOptions& o) {
  if (m.kv_lora_rank > 0)
    throw Error(fmt::format("{}: multi-head latent attention (kv_lora_rank {}) is not implemented by the compiler", m.name,
                            m.kv_lora_rank));
  if (m.shared_experts > 0 || m.dense_layers > 0)
    throw Error(fmt::format("{}: shared experts and leading dense layers are not implemented by the compiler", m.name));
  if (m.heads % m.kv_heads != 0)
    throw Error(fmt::format("{}: {} query heads are not a multiple of {} kv heads", m.name, m.heads, m.kv_heads));
  if (o.context < 1 || o.batch < 1) throw Error("decode: context and batch must be positive");
  Graph g;
  g.model = m.name;
  g.wtype = o.wtype;
  g.batch = o.batch;
  g.context = o.context;
  const std::int64_t d = m.d_model, hd = m.head_dim, H = m.heads, K = m.kv_heads;
  auto add = [&](OpKind k, std::string name, int layer) -> Op& {
    Op op;
    op.kind = k;
    op.name = std::move(name);
    op.layer = layer;
    g.ops.push_back(std::move(op));
    return g.ops.back();
  };
  // The embedding (f32) and the step constants: RoPE cos and sin (f32, head_dim / 2 each), the
  // position and its one-hot lane.
  add(OpKind::Input, "input", -1).bytes = 4 * d + 4 * hd + 16;
  for (int l = 0; l < m.layers; ++l) {
    const std::string L = fmt::format("L{}.", l);
    if (o.attention) {
      add(OpKind::Norm, L + "attn_norm", l).cols = d;
      auto& qkv = add(OpKind::MatVec, L + "qkv", l);
      qkv.rows = (H + 2 * K) * hd;
      qkv.cols = d;
      auto& at = add(OpKind::Attention, L + "attn", l);
      at.heads = m.heads;
      at.kv_heads = m.kv_heads;
      at.head_dim = m.head_dim;
      at.context = o.context;
      auto& wo = add(OpKind::MatVec, L + "wo", l);
      wo.rows = d;
      wo.cols = H * hd;
    }
    add(OpKind::Norm, L + "ffn_norm", l).cols = d;
    int copies = 1;
    if (m.experts > 0) {
      auto& r = add(OpKind::MatVec, L + "router", l);
      r.rows = m.experts;
      r.cols = d;
      auto& gt = add(OpKind::Gating, L + "gating", l);
      gt.rows = m.experts;
      gt.top_k = m.experts_per_token;
      copies = o.moe_sparse ? m.experts_per_token : m.experts;
    }
    auto& gu = add(OpKind::MatVec, L + "gate_up", l);
    gu.rows = 2 * std::int64_t(m.ffn);
    gu.cols = d;
    gu.copies = copies;
    gu.stored_copies = m.experts;
    auto& sw = add(OpKind::SwiGlu, L + "swiglu", l);
    sw.cols = m.ffn;
    sw.copies = copies;
    auto& dn = add(OpKind::MatVec, L + "down", l);
    dn.rows = d;
    dn.cols = m.ffn;
    dn.copies = copies;
    dn.stored_copies = m.experts;
  }
  add(OpKind::Norm, "final_norm", -1).cols = d;
  auto& head = add(OpKind::MatVec, "head", -1);
  head.rows = m.vocab;
  head.cols = d;
  add(OpKind::Output, "logits", -1).bytes = 4 * std::int64_t(m.vocab);
  return g;
}

}  // namespace lpu::compiler
