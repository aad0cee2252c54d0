#include "lpu/compiler/model_shape.hpp"

#include <fmt/format.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>
#include <toml++/toml.h>

#include "lpu/common/errors.hpp"
#include "lpu/common/parse.hpp"

namespace lpu::compiler {

ModelShape load_model(const std::string& name_or_path) {
  std::string path = name_or_path;
  if (name_or_path.find('/') == std::string::npos && !name_or_path.ends_with(".toml"))
    path = config_dir() + "/models/" + name_or_path + ".toml";
  std::ifstream f(path);
  if (!f) throw ConfigError("model", fmt::format("cannot open '{}'", path));
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string text = ss.str();
  check_toml_key_depth(text, path);  // before toml++ recurses on a hostile dotted key
  toml::table t;
  try {
    t = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    throw ConfigError("model", fmt::format("{}: {}", path, std::string(e.description())));
  }
  ModelShape m;
  auto geti = [&](const char* k, int& v, bool req) {
    auto n = t[k];
    if (!n) {
      if (req) throw ConfigError(k, fmt::format("missing in {}", path));
      return;
    }
    auto x = n.value<std::int64_t>();
    if (!x || !n.is_integer() || *x < 0) throw ConfigError(k, fmt::format("{}: expected a non-negative integer", path));
    v = int(check_int(*x, k, IntRange{0, std::numeric_limits<int>::max()}));  // 64-bit TOML: checked, not wrapped
  };
  auto getd = [&](const char* k, double& v) {
    if (auto n = t[k]) {
      auto x = n.value<double>();
      if (!x) throw ConfigError(k, fmt::format("{}: expected a number", path));
      v = *x;
    }
  };
  m.name = t["name"].value_or(std::string(name_or_path));
  geti("layers", m.layers, true);
  geti("d_model", m.d_model, true);
  geti("heads", m.heads, true);
  geti("kv_heads", m.kv_heads, true);
  geti("head_dim", m.head_dim, true);
  geti("ffn", m.ffn, true);
  geti("vocab", m.vocab, true);
  geti("max_context", m.max_context, false);
  getd("rope_theta", m.rope_theta);
  getd("norm_eps", m.norm_eps);
  geti("experts", m.experts, false);
  geti("experts_per_token", m.experts_per_token, false);
  geti("shared_experts", m.shared_experts, false);
  geti("dense_layers", m.dense_layers, false);
  geti("dense_ffn", m.dense_ffn, false);
  geti("q_lora_rank", m.q_lora_rank, false);
  geti("kv_lora_rank", m.kv_lora_rank, false);
  geti("qk_rope_dim", m.qk_rope_dim, false);
  geti("qk_nope_dim", m.qk_nope_dim, false);
  geti("v_head_dim", m.v_head_dim, false);
  m.tied_embeddings = t["tied_embeddings"].value_or(false);
  if (m.layers == 0 || m.d_model == 0 || m.heads == 0 || m.kv_heads == 0 || m.head_dim == 0)
    throw ConfigError("model", fmt::format("{}: layers, d_model, heads, kv_heads and head_dim must be positive", path));
  if (m.experts && (m.experts_per_token == 0 || m.experts_per_token > m.experts))
    throw ConfigError("experts_per_token", fmt::format("{}: must be in 1..experts", path));
  return m;
}

ModelCost cost(const ModelShape& m, double bw, double bkv) {
  const double d = m.d_model;
  double attn = 0, kv_dims = 0;
  if (m.kv_lora_rank > 0) {  // MLA
    const double qk = m.qk_nope_dim + m.qk_rope_dim;
    attn = d * m.q_lora_rank + double(m.q_lora_rank) * m.heads * qk + d * (m.kv_lora_rank + m.qk_rope_dim) +
           double(m.kv_lora_rank) * m.heads * (m.qk_nope_dim + m.v_head_dim) + double(m.heads) * m.v_head_dim * d;
    kv_dims = m.kv_lora_rank + m.qk_rope_dim;
  } else {
    attn = d * m.heads * m.head_dim + 2 * d * m.kv_heads * m.head_dim + double(m.heads) * m.head_dim * d;
    kv_dims = 2.0 * m.kv_heads * m.head_dim;
  }
  const double mlp_dense = 3 * d * (m.dense_ffn ? m.dense_ffn : m.ffn);
  double per_layer_total = 0, per_layer_active = 0, total = 0, active = 0;
  for (int l = 0; l < m.layers; ++l) {
    const bool dense = m.experts == 0 || l < m.dense_layers;
    if (dense) {
      per_layer_total = attn + (m.experts ? 3 * d * m.dense_ffn : 3 * d * m.ffn);
      per_layer_active = per_layer_total;
    } else {
      const double expert = 3 * d * m.ffn;
      per_layer_total = attn + m.experts * expert + m.shared_experts * expert + d * m.experts;
      per_layer_active = attn + (m.experts_per_token + m.shared_experts) * expert + d * m.experts;
    }
    total += per_layer_total + 2 * d;  // + the two norms
    active += per_layer_active + 2 * d;
  }
  (void)mlp_dense;
  const double emb = double(m.vocab) * d * (m.tied_embeddings ? 1 : 2);
  ModelCost c;
  c.params_total = total + emb + d;
  c.params_active = active + emb + d;
  c.kv_bytes_per_token = double(m.layers) * kv_dims * bkv;
  c.weight_bytes = c.params_total * bw;
  return c;
}

Capacity capacity(const ModelShape& m, const ChipParams& chip, double bw, double bkv, long context, long users,
                  int chips_per_rack) {
  const auto c = cost(m, bw, bkv);
  Capacity r;
  r.weight_bytes = c.weight_bytes;
  r.kv_bytes = c.kv_bytes_per_token * double(context) * double(users);
  r.total_bytes = r.weight_bytes + r.kv_bytes;
  r.chip_sram_bytes = peaks(chip).sram_bytes;
  r.chips = long(std::ceil(r.total_bytes / r.chip_sram_bytes));
  r.racks = double(r.chips) / chips_per_rack;
  return r;
}

}  // namespace lpu::compiler
