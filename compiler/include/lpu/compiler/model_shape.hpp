#pragma once
// Transformer shapes (configs/models/*.toml) and what they cost: parameters, KV cache, chips.
#include <cstdint>
#include <string>

#include "lpu/arch/params.hpp"

namespace lpu::compiler {

struct ModelShape {
  std::string name;
  int layers = 0, d_model = 0, heads = 0, kv_heads = 0, head_dim = 0, ffn = 0, vocab = 0;
  int max_context = 0;
  double rope_theta = 10000, norm_eps = 1e-5;
  // Mixture of experts (experts = 0: dense).
  int experts = 0, experts_per_token = 0, shared_experts = 0, dense_layers = 0, dense_ffn = 0;
  // Multi-head latent attention (kv_lora_rank = 0: ordinary grouped-query attention).
  int q_lora_rank = 0, kv_lora_rank = 0, qk_rope_dim = 0, qk_nope_dim = 0, v_head_dim = 0;
  bool tied_embeddings = false;
};

// Loads configs/models/<name>.toml (or a path). Throws ConfigError naming the key.
ModelShape load_model(const std::string& name_or_path);

struct ModelCost {
  double params_total = 0;     // every weight
  double params_active = 0;    // weights touched per token (MoE: active experts only)
  double kv_bytes_per_token = 0;  // all layers, at the given bytes per element
  double weight_bytes = 0;
};
ModelCost cost(const ModelShape& m, double bytes_per_weight, double bytes_per_kv);

struct Capacity {
  double weight_bytes = 0, kv_bytes = 0, total_bytes = 0;
  double chip_sram_bytes = 0;
  long chips = 0;
  double racks = 0;  // chips / 256
};
// SRAM needed for the weights plus the KV cache of `users` sequences of `context` tokens.
Capacity capacity(const ModelShape& m, const ChipParams& chip, double bytes_per_weight, double bytes_per_kv,
                  long context, long users, int chips_per_rack = 256);

}  // namespace lpu::compiler
