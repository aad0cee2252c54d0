// Every example program against an independent plain-C++ reference, in functional mode; and
// the same cycle counts and statistics in timing-only mode and from run to run.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>

#include "helpers.hpp"
#include "lpu/common/tensor_file.hpp"
#include "lpu/isa/isa.hpp"
#include "lpu/isa/tensor_convert.hpp"

using namespace lpu;
using namespace lpu::test;

namespace {

// Tensor from an example's .npy converted to `d` then decoded to f32 (the values on the chip).
std::vector<float> as_f32(const std::string& npy, isa::Dtype d) {
  auto bytes = num::tensor_to_dtype(io::load_npy(example(npy)), d, npy);
  std::vector<float> v(bytes.size() / std::size_t(isa::dtype_bytes(d)));
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = num::load_f32(d, num::Bytes(bytes.data(), bytes.size()), i);
  return v;
}

// Y[b][i] = sum_j W[i][j] X[b][j], in f32, each product and sum rounded, j in order from 0.
std::vector<float> matmul_f32(const std::vector<float>& W, const std::vector<float>& X, int n, int B) {
  std::vector<float> Y(std::size_t(B * n));
  for (int b = 0; b < B; ++b)
    for (int i = 0; i < n; ++i) {
      float acc = 0.0f;
      for (int j = 0; j < n; ++j) {
        const float prod = W[std::size_t(i * n + j)] * X[std::size_t(b * n + j)];
        acc = acc + prod;
      }
      Y[std::size_t(b * n + i)] = acc;
    }
  return Y;
}

std::uint16_t bf16(float f) {
  std::uint8_t b[2];
  num::store_f32(isa::Dtype::Bf16, num::MutBytes(b, 2), 0, f);
  return std::uint16_t(b[0] | b[1] << 8);
}
float from_bf16(std::uint16_t h) { return num::bf16_to_f32(h); }

}  // namespace

TEST_CASE("matvec_i8 (mini): y = W x in int32") {
  auto r = run_file(example("matvec_i8.lpa"), model::Mode::Functional, {"W", "x", "y"});
  auto W = as<std::int8_t>(r.out["W"]), x = as<std::int8_t>(r.out["x"]);
  auto y = as<std::int32_t>(r.out["y"]);
  for (int i = 0; i < 32; ++i) {
    std::int32_t ref = 0;
    for (int j = 0; j < 32; ++j) ref += std::int32_t(W[std::size_t(i * 32 + j)]) * x[std::size_t(j)];
    CHECK(y[std::size_t(i)] == ref);
  }
  CHECK(r.stats.cycles == 57);  // last WRITE in 54 lands in 55; + 1 + stagger 1 (docs/timing.md)
}

TEST_CASE("matmul_i8 (lp30): 320 x 320 int8 plane, 64 vectors, bit-exact") {
  auto r = run_file(example("matmul_i8.lpa"), model::Mode::Functional, {"W", "X", "Y"});
  auto W = as<std::int8_t>(r.out["W"]), X = as<std::int8_t>(r.out["X"]);
  auto Y = as<std::int32_t>(r.out["Y"]);
  int bad = 0;
  for (int b = 0; b < 64; ++b)
    for (int i = 0; i < 320; ++i) {
      std::int32_t ref = 0;
      for (int j = 0; j < 320; ++j) ref += std::int32_t(W[std::size_t(i * 320 + j)]) * X[std::size_t(b * 320 + j)];
      bad += Y[std::size_t(b * 320 + i)] != ref;
    }
  CHECK(bad == 0);
  CHECK(r.stats.mxm_macs.at("i8") == 64LL * 320 * 320);
  CHECK(r.stats.mxm_passes == 64);
}

TEST_CASE("matmul_e4m3 and matmul_f16 (lp30): fp8 and fp16 planes at full width, bit-exact") {
  struct Case { const char* file; const char* w; const char* x; isa::Dtype t; int n; };
  for (auto c : {Case{"matmul_e4m3.lpa", "matmul_w_e4m3.npy", "matmul_x_e4m3.npy", isa::Dtype::E4m3, 320},
                 Case{"matmul_f16.lpa", "matmul_w_f16.npy", "matmul_x_f16.npy", isa::Dtype::F16, 160}}) {
    CAPTURE(c.file);
    auto r = run_file(example(c.file), model::Mode::Functional, {"Y"});
    auto ref = matmul_f32(as_f32(c.w, c.t), as_f32(c.x, c.t), c.n, 64);
    auto Y = as<float>(r.out["Y"]);
    REQUIRE(Y.size() == ref.size());
    int bad = 0;
    for (std::size_t i = 0; i < Y.size(); ++i) bad += std::memcmp(&Y[i], &ref[i], 4) != 0;
    CHECK(bad == 0);
    CHECK(r.stats.mxm_utilisation() > 0);
  }
}

TEST_CASE("mlp_bf16 (lp30): matmul, bias, GELU, matmul with weights from .npy") {
  auto r = run_file(example("mlp_bf16.lpa"), model::Mode::Functional, {"Y"});
  const int n = 160, B = 16;
  auto W1 = as_f32("mlp_w1.npy", isa::Dtype::Bf16), W2 = as_f32("mlp_w2.npy", isa::Dtype::Bf16);
  auto X = as_f32("mlp_x.npy", isa::Dtype::Bf16), b1 = as_f32("mlp_b1.npy", isa::Dtype::Bf16);
  auto H = matmul_f32(W1, X, n, B);
  std::vector<float> G(H.size());
  for (std::size_t k = 0; k < H.size(); ++k) {
    float h = from_bf16(bf16(H[k]));                       // ACCRD.bf16
    float hb = from_bf16(bf16(h + b1[k % std::size_t(n)]));  // ADD.bf16: f32 sum, rounded once
    G[k] = from_bf16(bf16(num::gelu_f32(hb)));             // GELU.bf16
  }
  auto Yr = matmul_f32(W2, G, n, B);
  auto Y = as<std::uint16_t>(r.out["Y"]);
  int bad = 0;
  for (std::size_t k = 0; k < Yr.size(); ++k) bad += Y[k] != bf16(Yr[k]);
  CHECK(bad == 0);
}

TEST_CASE("softmax and rmsnorm (lp30 VXM): step by step in f32") {
  {
    auto r = run_file(example("softmax.lpa"), model::Mode::Functional, {"v", "y"});
    auto v = as<float>(r.out["v"]);
    auto y = as<float>(r.out["y"]);
    float m = v[0];
    for (float x : v) m = std::max(m, x);
    std::vector<float> e(v.size());
    float s = 0;
    for (std::size_t i = 0; i < v.size(); ++i) e[i] = num::exp_f32(v[i] - m);
    for (float x : e) s = s + x;  // SUM: f32 in element order
    const float rs = num::recip_f32(s);
    for (std::size_t i = 0; i < v.size(); ++i) CHECK(y[i] == e[i] * rs);
    // And it is a softmax: sums to 1 within f32 rounding.
    double tot = 0;
    for (float x : y) tot += x;
    CHECK(tot == doctest::Approx(1.0).epsilon(1e-5));
  }
  {
    auto r = run_file(example("rmsnorm.lpa"), model::Mode::Functional, {"x", "g", "y"});
    auto x = as<float>(r.out["x"]), g = as<float>(r.out["g"]), y = as<float>(r.out["y"]);
    float s = 0;
    for (float a : x) s = s + a * a;
    const float rs = num::rsqrt_f32(s * 0.0125f + 1e-5f);
    for (std::size_t i = 0; i < x.size(); ++i) CHECK(y[i] == (x[i] * rs) * g[i]);
  }
}

TEST_CASE("sram_stream (lp30): at least 97% of the peak SRAM bandwidth") {
  auto r = run_file(example("sram_stream.lpa"), model::Mode::TimingOnly);
  auto k = peaks(load_preset("lp30"));
  // 470 slices x 3325 rows x 320 B read in 3325 + mem_read 5 ... = 3349 cycles (timing.md).
  CHECK(r.stats.sram_bytes_read == 470LL * 3325 * 320);
  CHECK(r.stats.cycles == 3324 + 5 + 1 + 19);
  CHECK(r.stats.sram_read_bandwidth() >= 0.97 * k.sram_bandwidth_bytes_per_s);
}

TEST_CASE("every example: timing-only and functional give the same cycles and statistics, runs repeat exactly") {
  namespace fs = std::filesystem;
  int n = 0;
  for (const auto& e : fs::directory_iterator(fs::path(LPU_SOURCE_DIR) / "examples")) {
    if (e.path().extension() != ".lpa") continue;
    CAPTURE(e.path().string());
    // The streaming examples (stream_*.lpa) read at most 64 items by DMAIN (their r1 + 1).
    auto f1 = run_file(e.path().string(), model::Mode::Functional, {}, 64);
    auto f2 = run_file(e.path().string(), model::Mode::Functional, {}, 64);
    auto t = run_file(e.path().string(), model::Mode::TimingOnly, {}, 64);
    for (const auto* x : {&f2, &t}) {
      CHECK(x->stats.cycles == f1.stats.cycles);
      CHECK(x->stats.sram_bytes_read == f1.stats.sram_bytes_read);
      CHECK(x->stats.sram_bytes_written == f1.stats.sram_bytes_written);
      CHECK(x->stats.mxm_macs == f1.stats.mxm_macs);
      CHECK(x->stats.vxm_element_ops == f1.stats.vxm_element_ops);
      for (int u = 0; u < model::kNumUnitKinds; ++u) {
        CHECK(x->stats.units[std::size_t(u)].instructions == f1.stats.units[std::size_t(u)].instructions);
        CHECK(x->stats.units[std::size_t(u)].busy_cycles == f1.stats.units[std::size_t(u)].busy_cycles);
      }
    }
    ++n;
  }
  CHECK(n >= 7);
}
