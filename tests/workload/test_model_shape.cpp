// Parameter counts from the model shapes against the totals their authors publish, and the
// capacity arithmetic.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "lpu/common/errors.hpp"
#include "lpu/workload/model_shape.hpp"

using namespace lpu;
using namespace lpu::workload;

TEST_CASE("parameter counts match the published sizes within 1.5%") {
  struct Ref { const char* name; double total, active; };
  // Published: Llama 3 8B: 8.03B; Llama 3 70B: 70.6B; Llama 2 70B: 69.0B; Mixtral 8x7B: 46.7B
  // total, 12.9B active; Kimi K2: 1.04T total, 32.6B active; Llama 3.1 405B: 405B.
  for (auto r : {Ref{"llama-3-8b", 8.03e9, 8.03e9}, Ref{"llama-3-70b", 70.6e9, 70.6e9}, Ref{"llama-2-70b", 69.0e9, 69.0e9},
                 Ref{"mixtral-8x7b", 46.7e9, 12.9e9}, Ref{"kimi-k2", 1.04e12, 32.6e9},
                 Ref{"llama-3.1-405b", 405e9, 405e9}}) {
    CAPTURE(r.name);
    auto c = cost(load_model(r.name), 1, 1);
    CHECK(c.params_total == doctest::Approx(r.total).epsilon(0.015));
    CHECK(c.params_active == doctest::Approx(r.active).epsilon(0.015));
  }
}

TEST_CASE("KV cache per token: 2 x layers x kv_heads x head_dim elements, or the MLA latent") {
  CHECK(cost(load_model("llama-3-70b"), 1, 1).kv_bytes_per_token == 2.0 * 80 * 8 * 128);
  CHECK(cost(load_model("llama-3-8b"), 1, 2).kv_bytes_per_token == 2.0 * 32 * 8 * 128 * 2);
  CHECK(cost(load_model("kimi-k2"), 1, 1).kv_bytes_per_token == 61.0 * (512 + 64));
}

TEST_CASE("capacity: chips = ceil(weights + KV for users x context / SRAM per chip)") {
  auto m = load_model("llama-3-70b");
  auto chip = load_preset("lp30");
  auto cap = capacity(m, chip, 1, 1, 8192, 1);
  const double sram = 2.0 * 235 * 3325 * 320;  // 500.08 MB per lp30
  CHECK(cap.chip_sram_bytes == sram);
  const double need = cost(m, 1, 1).weight_bytes + 2.0 * 80 * 8 * 128 * 8192;
  CHECK(cap.chips == long(std::ceil(need / sram)));
  CHECK(cap.racks == doctest::Approx(double(cap.chips) / 256));
}

TEST_CASE("bad model files are refused with the key named") {
  CHECK_THROWS_AS(load_model("no-such-model"), ConfigError);
}

TEST_CASE("a model dimension beyond an int is refused, not wrapped") {
  // layers = 2^32 + 2 would have become 2.
  const auto dir = std::filesystem::path(LPU_BINARY_DIR) / "test-out";
  std::filesystem::create_directories(dir);
  const auto file = dir / "huge_model.toml";
  std::ofstream(file) << "name = \"huge\"\nlayers = 4294967298\nd_model = 64\nheads = 4\nkv_heads = 4\nhead_dim = 16\n"
                         "ffn = 128\nvocab = 256\n";
  CHECK_THROWS_WITH_AS(load_model(file.string()), "config: layers: 4294967298 is out of range 0..2147483647",
                       ConfigError);
  std::filesystem::remove(file);
}
