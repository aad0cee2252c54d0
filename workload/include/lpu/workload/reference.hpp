#pragma once
// Transformer decode off the chip: seeded random weights for a model shape, and a plain C++
// reference decoder that applies the decoder's numerics contract (docs/decode.md, "Numerics"):
// the same roundings at the same points as the programs of `lpu gen decoder`, written from the
// model definition (RMSNorm, RoPE, grouped-query attention with a KV cache, SwiGLU, final norm,
// LM head, greedy argmax), not from the generator.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "lpu/common/tensor_file.hpp"
#include "lpu/isa/isa.hpp"
#include "lpu/workload/model_shape.hpp"

namespace lpu::workload {

// The decoder's numerics: the weight type (also the type of every matrix-unit input vector)
// and the reduction block (f32 elements per vector, V / 4), which fixes the order of the two
// long f32 sums (RMSNorm's sum of squares, softmax's denominator).
struct DecoderNumerics {
  isa::Dtype wtype = isa::Dtype::E4m3;
  int reduce_block = 8;
};

// "fp8" | "e4m3" -> E4m3, "bf16" -> Bf16, "int8" | "i8" -> I8. Throws lpu::Error otherwise.
isa::Dtype parse_weight_dtype(const std::string& s);
std::string weight_dtype_name(isa::Dtype t);  // "fp8", "bf16", "int8"

// Tensor names (Meta's Llama layout, matrices [out, in]):
//   tok_embeddings.weight [vocab, d]                      wtype
//   layers.L.attention_norm.weight, layers.L.ffn_norm.weight, norm.weight [d]   f32
//   layers.L.attention.wq.weight [heads*hd, d], .wk/.wv [kv_heads*hd, d], .wo [d, heads*hd]
//   layers.L.feed_forward.w1 (gate) / .w3 (up) [ffn, d], .w2 (down) [d, ffn]
//   mixture of experts instead: layers.L.feed_forward.gate.weight [experts, d] (the router),
//   layers.L.feed_forward.experts.E.w1 / .w3 [ffn, d], .w2 [d, ffn]
//   output.weight [vocab, d]                              wtype
std::vector<std::string> weight_names(const ModelShape& m);

// Seeded random weights: matrices ~ N(0, 1/in), embeddings ~ N(0, 1), norm gains ~ 1 + N(0, 0.1),
// each value rounded once (RNE) to its type. Grouped-query attention; dense or routed experts.
std::map<std::string, io::Tensor> gen_weights(const ModelShape& m, std::uint64_t seed, isa::Dtype wtype);

// Checks names, dtypes and shapes against the model; throws lpu::FormatError naming the tensor.
void check_weights(const ModelShape& m, const std::map<std::string, io::Tensor>& w, isa::Dtype wtype,
                   const std::string& origin);

class ReferenceDecoder {
 public:
  ReferenceDecoder(const ModelShape& m, const std::map<std::string, io::Tensor>& weights, DecoderNumerics num);
  // One decode step: the token at position `pos` (positions 0 .. pos-1 already decoded);
  // returns the logits (vocab f32 values).
  std::vector<float> step(int token, int pos);
  // Greedy decode: feeds the prompt, then max_new tokens chosen by argmax (first maximum).
  // Returns the new tokens; `logits` (optional) receives the logits of every generated token.
  std::vector<int> greedy(const std::vector<int>& prompt, int max_new, std::vector<std::vector<float>>* logits = nullptr);
  void reset();  // forget the KV cache
  // The cache of a layer: per position, kv_heads * head_dim values (rounded to the weight type).
  const std::vector<std::vector<float>>& kcache(int layer) const { return kcache_[std::size_t(layer)]; }
  const std::vector<std::vector<float>>& vcache(int layer) const { return vcache_[std::size_t(layer)]; }

 private:
  struct Expert {
    std::vector<float> w1, w3, w2;
  };
  struct Layer {
    std::vector<float> attn_norm, ffn_norm, wq, wk, wv, wo, w1, w3, w2;
    std::vector<float> router;     // mixture of experts: [experts, d]
    std::vector<Expert> experts;
  };
  float rnd(float x) const;  // round to the weight type
  std::vector<float> rmsnorm(const std::vector<float>& x, const std::vector<float>& g) const;
  ModelShape m_;
  DecoderNumerics num_;
  std::vector<float> emb_, norm_, out_;
  std::vector<Layer> layers_;
  std::vector<std::vector<std::vector<float>>> kcache_, vcache_;  // per layer: [pos][kv_heads * hd]
};

int argmax(const std::vector<float>& v);

// Mixture-of-experts gates from the router's logits: the k largest logits are chosen (equal
// logits: the lower expert first), gate = exp(logit - max) / sum over the chosen, 0 for the
// others; the sum runs over the experts in order (the ISA's SUM of a vector), exp and the
// reciprocal are the ISA's f32 functions. Every expert's output is then added to x in expert
// order, times its gate (docs/decode.md, "Mixture of experts").
std::vector<float> moe_gates(const std::vector<float>& logits, int k);

// The RoPE table of the model definition: cos and sin of pos * theta^(-2i/hd), computed in
// double and rounded to f32, i in [0, hd/2).
float rope_cos(const ModelShape& m, int pos, int i);
float rope_sin(const ModelShape& m, int pos, int i);

}  // namespace lpu::workload
