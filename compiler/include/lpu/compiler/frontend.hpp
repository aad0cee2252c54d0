#pragma once
// Front ends: from a model description to the IR (ir.hpp).
#include <cstdint>

#include "lpu/compiler/ir.hpp"
#include "lpu/compiler/model_shape.hpp"

namespace lpu::compiler {

struct DecodeOptions {
  isa::Dtype wtype = isa::Dtype::E4m3;  // weights, KV cache, vectors into the MXM
  std::int64_t context = 8192;          // KV-cache positions each user's step reads
  int batch = 1;                        // users per micro-batch
  bool moe_sparse = true;               // MoE: evaluate the chosen experts only (else every one)
  bool attention = true;                // false: the layers' FFN only (attention elsewhere)
};

// One decode step of a Llama-style transformer (RMSNorm, RoPE, grouped-query attention with a KV
// cache, SwiGLU or routed experts, final norm, LM head) as IR. Throws lpu::Error for shapes the
// compiler does not support (latent attention, shared experts, leading dense layers).
Graph decode_graph(const ModelShape& m, const DecodeOptions& o);

}  // namespace lpu::compiler
