// The analytic GPU model (lpu_serving, docs/gpu-model.md): each formula on a case small enough
// to derive by hand (the derivation in the comment), the config loader's errors, and the
// calibration against published measurements with the error docs/gpu-model.md states.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>

#include "lpu/common/errors.hpp"
#include "lpu/compiler/model_shape.hpp"
#include "lpu/serving/gpu_model.hpp"

using namespace lpu;
using namespace lpu::serving;

namespace {

// A GPU with round numbers: 1 TB/s, 1 PFLOPS fp8 (2 fp4, 0.5 bf16), 100 GB/s links of 1 us,
// every efficiency 1 unless said otherwise, 1 us per kernel.
std::string toy_toml(double eff_hbm = 1, double eff_tensor = 1, double overhead = 1e-6) {
  return fmt::format(R"(name = "toy"
[gpu]
hbm_bytes = 100e9
hbm_bandwidth = 1e12
flops_fp4 = 2e15
flops_fp8 = 1e15
flops_bf16 = 0.5e15
watts = 1000
[scale_up]
gpus = 8
bandwidth = 100e9
latency = 1e-6
[scale_out]
bandwidth = 10e9
latency = 10e-6
[power]
system_watts = 10000
system_gpus = 8
[efficiency]
hbm = {}
tensor = {}
link = 1
kernel_overhead = {}
moe_slowdown = 1
)",
                     eff_hbm, eff_tensor, overhead);
}

GpuSystem toy(double eff_hbm = 1, double eff_tensor = 1, double overhead = 1e-6) {
  return parse_gpu_system(toy_toml(eff_hbm, eff_tensor, overhead), "toy.toml");
}

std::string config(const std::string& rel) { return std::string(LPU_SOURCE_DIR) + "/configs/" + rel; }

}  // namespace

TEST_CASE("serving gpu model: matmul is the larger of its compute and memory times plus one kernel") {
  // Memory bound: M=1, N=K=1000, fp8 weights. bytes = K N 1 + 2 (M K + M N) = 1,000,000 + 4,000
  // = 1,004,000 -> 1.004 us at 1 TB/s; flops = 2 M N K = 2e6 -> 2 ns at 1 PFLOPS.
  // time = 1.004 us + 1 us kernel = 2.004 us.
  const auto g = toy();
  auto m = matmul(g, 1, 1000, 1000, Dtype::Fp8);
  CHECK(m.flops == doctest::Approx(2e6));
  CHECK(m.bytes == doctest::Approx(1.004e6));
  CHECK(m.time == doctest::Approx(2.004e-6));
  CHECK(m.bound == Bound::Memory);
  // Compute bound: M=N=K=4096 in bf16. flops = 2 * 4096^3 = 137,438,953,472 -> 274.88 us at
  // 0.5 PFLOPS; bytes = 4096^2 * 2 + 2 * 2 * 4096^2 = 100,663,296 -> 100.7 us.
  m = matmul(g, 4096, 4096, 4096, Dtype::Bf16);
  CHECK(m.time == doctest::Approx(137438953472.0 / 0.5e15 + 1e-6));
  CHECK(m.bound == Bound::Compute);
  // Halving both efficiencies doubles the roofline part, not the kernel overhead.
  const auto h = toy(0.5, 0.5);
  CHECK(matmul(h, 4096, 4096, 4096, Dtype::Bf16).time == doctest::Approx(2 * 137438953472.0 / 0.5e15 + 1e-6));
  CHECK(matmul(h, 1, 1000, 1000, Dtype::Fp8).time == doctest::Approx(2 * 1.004e-6 + 1e-6));
  // fp4 weights take 4.5 bits: K N 0.5625 + 4,000 = 566,500 bytes -> 0.5665 us + 1 us.
  CHECK(matmul(g, 1, 1000, 1000, Dtype::Fp4).time == doctest::Approx(1.5665e-6));
}

TEST_CASE("serving gpu model: collectives use the ring and one-shot formulas with their latency terms") {
  const auto g = toy();
  // All-reduce of 8 MB over 8 GPUs, ring: 2 * 7/8 * 8e6 = 14e6 bytes on the wire -> 140 us at
  // 100 GB/s, + 2 * 7 * 1 us latency + 1 us kernel = 155 us.
  CHECK(all_reduce_ring(g, 8, 8e6).time == doctest::Approx(155e-6));
  CHECK(all_reduce_ring(g, 8, 8e6).link_bytes == doctest::Approx(14e6));
  // One-shot: 7 * 8e6 = 56e6 bytes -> 560 us + 1 us + 1 us = 562 us: the ring wins.
  CHECK(all_reduce_one_shot(g, 8, 8e6).time == doctest::Approx(562e-6));
  CHECK(all_reduce(g, 8, 8e6).time == doctest::Approx(155e-6));
  // 1 KB: ring 2 * 7/8 * 1000 / 1e11 = 17.5 ns + 14 us + 1 us = 15.0175 us; one-shot
  // 7000 / 1e11 = 70 ns + 1 us + 1 us = 2.07 us: one-shot wins, latency bound.
  CHECK(all_reduce(g, 8, 1000).time == doctest::Approx(2.07e-6));
  CHECK(all_reduce(g, 8, 1000).bound == Bound::Latency);
  // All-gather of 1 MB pieces over 4 GPUs: 3 MB in -> 30 us + 3 * 1 us + 1 us = 34 us.
  CHECK(all_gather(g, 4, 1e6).time == doctest::Approx(34e-6));
  // All-to-all, 8 MB sent per GPU over 8: 7/8 of it leaves -> 70 us + 1 us + 1 us = 72 us.
  CHECK(all_to_all(g, 8, 8e6).time == doctest::Approx(72e-6));
  CHECK(all_to_all(g, 8, 8e6).bound == Bound::Link);
  // 16 GPUs leave the 8-GPU domain: scale-out, 10 GB/s and 10 us:
  // 15/16 * 8e6 / 1e10 = 750 us + 10 us + 1 us = 761 us.
  CHECK(all_to_all(g, 16, 8e6).time == doctest::Approx(761e-6));
  // One GPU: nothing to do.
  CHECK(all_reduce(g, 1, 8e6).time == 0);
}

TEST_CASE("serving gpu model: a one-layer dense decode step adds up by hand") {
  // One layer, d 1024, 8 heads of 128 (8 KV heads), ffn 4096, vocab 1000; 1 GPU, 1 user,
  // context 1000, fp8 weights and KV; no kernel overhead. Every op is memory bound:
  //   qkv   matmul(1, 3072, 1024): 3,145,728 + 2 (1024 + 3072)  = 3,153,920 B -> 3.153920 us
  //   o     matmul(1, 1024, 1024): 1,048,576 + 2 (1024 + 1024)  = 1,052,672 B -> 1.052672 us
  //   attention: 1001 positions x 2 x 8 x 128 x 1 B              = 2,050,048 B -> 2.050048 us
  //   gate+up matmul(1, 8192, 1024): 8,388,608 + 2 (1024 + 8192) = 8,407,040 B -> 8.407040 us
  //   down  matmul(1, 1024, 4096): 4,194,304 + 2 (4096 + 1024)  = 4,204,544 B -> 4.204544 us
  //   lm_head matmul(1, 1000, 1024) in bf16: 2,048,000 + 2 (1024 + 1000) = 2,052,048 B -> 2.052048 us
  // step = 20.920272 us -> 47,800 tokens/s per user (and per GPU);
  // per MW: 47,800 / 1,250 W (10 kW / 8 GPUs) * 1e6.
  const std::string path = std::string(LPU_BINARY_DIR) + "/one_layer_model.toml";
  {
    std::ofstream f(path);
    f << "name = \"one-layer\"\nlayers = 1\nd_model = 1024\nheads = 8\nkv_heads = 8\nhead_dim = 128\n"
         "ffn = 4096\nvocab = 1000\n";
  }
  const auto m = compiler::load_model(path);
  const auto g = toy(1, 1, 0);
  StepOptions o;
  o.dtype = Dtype::Fp8;
  o.kv_dtype = Dtype::Fp8;
  const auto e = decode_step(g, m, 1, 1000, o);
  CHECK(e.step_time == doctest::Approx(20.920272e-6));
  CHECK(e.tokens_per_s_per_user == doctest::Approx(1 / 20.920272e-6));
  CHECK(e.tokens_per_s_per_mw == doctest::Approx(1 / 20.920272e-6 / 1250 * 1e6));
  double sum = 0;
  for (const auto& op : e.ops) sum += op.total.time;
  CHECK(sum == doctest::Approx(e.step_time));
  const auto att = std::find_if(e.ops.begin(), e.ops.end(), [](const StepOp& s) { return s.name == "attention"; });
  REQUIRE(att != e.ops.end());
  CHECK(att->total.bytes == doctest::Approx(2050048));
  // Two users on two GPUs, tensor parallel: each GPU reads half of every weight matrix and half
  // of the KV heads, and two all-reduces of 2 x 1024 x 2 B = 4 KB each join them (one-shot:
  // 4096 / 1e11 + 1 us latency, no kernel overhead = 1.04096 us).
  o.gpus = 2;
  const auto t = decode_step(g, m, 2, 1000, o);
  const auto ar = std::find_if(t.ops.begin(), t.ops.end(), [](const StepOp& s) { return s.name == "all_reduce"; });
  REQUIRE(ar != t.ops.end());
  CHECK(ar->count == 2);
  CHECK(ar->total.time == doctest::Approx(2 * 1.04096e-6));
  CHECK(t.tokens_per_s_per_gpu == doctest::Approx(2 / t.step_time / 2));
}

TEST_CASE("serving gpu model: prefill attention is causal and compute bound") {
  // 8 heads of 128, 4096-token prompt: pairs = 4096 x 4097 / 2 = 8,390,656;
  // flops = 2 x pairs x 8 heads x 256 = 34,368,126,976 per layer -> 34.37 us at 1 PFLOPS fp8.
  const std::string path = std::string(LPU_BINARY_DIR) + "/one_layer_model_prefill.toml";
  {
    std::ofstream f(path);
    f << "name = \"one-layer\"\nlayers = 1\nd_model = 1024\nheads = 8\nkv_heads = 8\nhead_dim = 128\n"
         "ffn = 4096\nvocab = 1000\n";
  }
  const auto m = compiler::load_model(path);
  StepOptions o;
  const auto p = prefill(toy(1, 1, 0), m, 4096, 1, o);
  const auto att = std::find_if(p.ops.begin(), p.ops.end(), [](const StepOp& s) { return s.name == "attention"; });
  REQUIRE(att != p.ops.end());
  CHECK(att->total.flops == doctest::Approx(34368126976.0));
  CHECK(att->total.bound == Bound::Compute);
  CHECK(att->total.time == doctest::Approx(34368126976.0 / 1e15));
}

TEST_CASE("serving gpu model: weights per GPU add up to the model's parameter count") {
  // DeepSeek-V3 over 8 GPUs with tensor-parallel attention: every GPU holds 1/8 of attention,
  // of the dense layers, of the shared expert and of the output projection, 32 of the 256
  // experts, and the whole embedding. 8 x that = the model (cost()) + 7 extra embeddings + the
  // MLA down-projections, which are not split.
  const auto m = compiler::load_model("deepseek-v3");
  const auto g = toy();
  StepOptions o;
  o.gpus = 8;
  o.dtype = Dtype::Fp8;
  o.attn = AttnParallel::Tensor;
  const auto e = decode_step(g, m, 8, 1024, o);
  const double total = compiler::cost(m, 1, 1).params_total;
  // The MLA down-projections (q_a, kv_a: d x (1536 + 576) per layer) and the routers
  // (kept in bf16: 2 bytes) are held whole; so are the embeddings (bf16).
  const double d = m.d_model;
  const double unsplit = m.layers * d * (1536 + 576) * 7 + (m.layers - 3) * d * 256 * (8 * 2 - 1) +
                         double(m.vocab) * d * (8 * 2 - 1) + double(m.vocab) * d * (2 - 1);
  CHECK(8 * e.weight_bytes_per_gpu == doctest::Approx(total + unsplit).epsilon(0.001));
  // With data-parallel attention each of 8 GPUs holds 1 of 8 users' KV: 61 layers x 576 x 1 B
  // x (1024 + 1) positions.
  o.attn = AttnParallel::Data;
  const auto dp = decode_step(g, m, 8, 1024, o);
  CHECK(dp.kv_bytes_per_gpu == doctest::Approx(61.0 * 576 * 1025));
}

TEST_CASE("serving gpu model: deepseek-v3 shape has 671B parameters") {
  // DeepSeek-V3 technical report (arXiv 2412.19437): 671B total, 37B activated per token.
  const auto c = compiler::cost(compiler::load_model("deepseek-v3"), 1, 1);
  CHECK(c.params_total == doctest::Approx(671e9).epsilon(0.01));
  CHECK(c.params_active == doctest::Approx(37e9).epsilon(0.03));
}

TEST_CASE("serving gpu model: config errors name the key and where it is") {
  auto bad = [](const std::string& from, const std::string& to) {
    std::string t = toy_toml();
    const auto at = t.find(from);
    REQUIRE(at != std::string::npos);
    t.replace(at, from.size(), to);
    return t;
  };
  auto key_of = [](const std::string& text) {
    try {
      parse_gpu_system(text, "x.toml");
    } catch (const ConfigError& e) {
      return e.key() + " | " + e.what();
    }
    return std::string("no error");
  };
  CHECK(key_of(bad("hbm_bandwidth = 1e12", "hbm_bandwidth = -1")).starts_with("gpu.hbm_bandwidth | "));
  CHECK(key_of(bad("hbm_bandwidth = 1e12", "hbm_bandwidth = -1")).find("x.toml:4:") != std::string::npos);
  CHECK(key_of(bad("gpus = 8\n", "gpus = 8.5\n")).starts_with("scale_up.gpus | "));
  CHECK(key_of(bad("hbm = 1\n", "hbm = 1.5\n")).starts_with("efficiency.hbm | "));
  CHECK(key_of(bad("watts = 1000\n", "watts = 1000\nwat = 3\n")).starts_with("gpu.wat | "));
  CHECK(key_of(bad("[power]\nsystem_watts = 10000\n", "[power]\n")).starts_with("power.system_watts | "));
  CHECK(key_of(bad("name = \"toy\"", "name = ")).starts_with("x.toml | "));
  CHECK_THROWS_AS(load_gpu_system("no-such-system"), ConfigError);
  CHECK_THROWS_AS(parse_dtype("int3"), ConfigError);
  // The shipped systems load.
  for (const char* s : {"gb200-nvl72", "rubin-nvl72", "hgx-h100"}) CHECK_NOTHROW(load_gpu_system(config(std::string("gpu/") + s + ".toml")));
  // No fp4 on Hopper: an fp4 matmul there is a config error naming the key.
  CHECK_THROWS_AS(matmul(load_gpu_system(config("gpu/hgx-h100.toml")), 1, 1, 1, Dtype::Fp4), ConfigError);
}

TEST_CASE("serving gpu model: batch_for_interactivity finds the largest batch at a target") {
  const auto g = load_gpu_system(config("gpu/gb200-nvl72.toml"));
  const auto m = compiler::load_model("llama-3-70b");
  StepOptions o;
  o.gpus = 8;
  const int b = batch_for_interactivity(g, m, 4096, o, 50);
  REQUIRE(b > 1);
  CHECK(decode_step(g, m, b, 4096, o).tokens_per_s_per_user >= 50);
  const auto next = decode_step(g, m, b + 1, 4096, o);
  CHECK((next.tokens_per_s_per_user < 50 || !next.fits));
  CHECK(batch_for_interactivity(g, m, 4096, o, 1e6) == 0);
}
