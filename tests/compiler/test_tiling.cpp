// The tiling pass alone (lpu/compiler/tiling.hpp): a model's decode step cut into the units of
// a chip preset, every figure derived by hand from the model shape and the preset.
#include <doctest/doctest.h>

#include <string>

#include "lpu/arch/params.hpp"
#include "lpu/common/errors.hpp"
#include "lpu/compiler/model_shape.hpp"
#include "lpu/compiler/tiling.hpp"

using namespace lpu;
using namespace lpu::compiler;
using namespace lpu::compiler::tiling;

namespace {
ChipParams preset(const std::string& name) { return load_preset(std::string(LPU_SOURCE_DIR) + "/configs/" + name + ".toml"); }
}  // namespace

TEST_CASE("tiling: Llama-3-70B fp8 on lp30 at 8k context") {
  const auto m = load_model("llama-3-70b");  // d 8192, 64 heads, 8 kv heads, head_dim 128, ffn 28672, vocab 128256
  const auto p = preset("lp30");             // 320-byte vectors, 3325-row slices
  const auto g = make_geo(m, p, isa::Dtype::E4m3, 8192, 1, 1);
  CHECK(g.V == 320);
  CHECK(g.E == 80);    // f32 elements per vector: 320 / 4
  CHECK(g.n == 320);   // fp8 elements per vector = the MXM's n
  CHECK(g.ppv == 4);   // f32 parts of a weight-type vector
  CHECK(g.NK == 26);   // k-tiles of x: ceil(8192 / 320)
  CHECK(g.NX == 104);  // f32 vectors of x: 26 x 4
  CHECK(g.HV == 1);    // a head's half (64) fits one f32 vector of 80
  CHECK(g.G == 8);     // query heads per kv head
  CHECK(g.kpr == 2);   // a head's q/k footprint is 2 x 80 = 160: two per 320-row K row
  CHECK(g.kvpt == 2);  // V^T rows per kv head 128: two per tile
  CHECK(g.hpv == 2);   // heads per output-projection input vector: 320 / 128
  CHECK(g.NO == 32);   // 64 heads / 2
  CHECK(g.RQ == 32);   // q rows 64 heads x 160 = 10240 = 32 tiles
  CHECK(g.RK == 4);    // k rows 8 x 160 = 1280 = 4 tiles
  CHECK(g.RF == 90);   // ceil(28672 / 320)
  CHECK(g.RV == 401);  // ceil(128256 / 320)
  CHECK(g.nblk == 26); // ceil(8192 / 320) blocks of the KV cache
  CHECK(g.NS == 104);  // score vectors: 26 blocks x 4 f32 parts
  CHECK(g.nab == g.nblk);
  CHECK(g.core_units() == 4);  // lcm(kpr, kvpt) = 2 kv heads a unit, 8 / 2
}

TEST_CASE("tiling: one kv head a member, and the K^T cache's parts on lp30") {
  const auto m = load_model("llama-3-70b");
  const auto p = preset("lp30");
  auto g = make_geo(m, p, isa::Dtype::E4m3, 8192, 1, 1);
  narrow_core(g);
  CHECK(g.kpr == 1);
  CHECK(g.kvpt == 1);
  CHECK(g.core_units() == 8);  // every member of a tray's group gets a kv head
  CHECK(g.Rkt == 160);         // K^T rows: one head's footprint
  CHECK(g.Rvt == 128);         // V^T rows: head_dim
  set_kv_parts(g, p.mem.rows, 16, true);
  CHECK(g.JK == 16);
  CHECK(g.prk == 10);  // 160 rows over 16 slices
  CHECK(g.prt == 8);   // 128 rows over 16 slices
  // A K^T part: 10 dump rows, then (3325 - 10) / 10 = 331 blocks; 26 blocks need one part.
  CHECK(g.mkt == 1);
  CHECK(g.bpsk == 26);
  CHECK(g.mv == 1);
  CHECK(kv_registers_fit(g));  // r1 + 1 K^T + 1 V^T register
}

TEST_CASE("tiling: the weight bus's lanes per plane") {
  // lp30: n 320, 80 rows a cycle a plane, 3 planes a side, 224 slices for lanes. 80 lanes each
  // (4 cycles a tile) would take 240 > 224; 3 x 107 lanes (3 cycles) even more; so 80, 80 and
  // the rest: 64 lanes (5 cycles) fit 224 (80 + 80 + 64).
  CHECK(lwm_side_lanes(320, 80, 224, 3) == std::vector<int>{80, 80, 64});
  // mini: n 32, 4 rows a cycle, one plane: 3 slices give 3 lanes (11 cycles a tile), 8 give the
  // bus's 4 (8 cycles).
  CHECK(lwm_side_lanes(32, 4, 3, 1) == std::vector<int>{3});
  CHECK(lwm_side_lanes(32, 4, 8, 1) == std::vector<int>{4});
  CHECK_THROWS_AS(lwm_side_lanes(320, 80, 2, 3), Error);  // fewer slices than planes
}

TEST_CASE("tiling: refusals") {
  auto m = load_model("llama-3-70b");
  m.head_dim = 1024;  // a head must fit one vector
  CHECK_THROWS_AS(make_geo(m, preset("lp30"), isa::Dtype::E4m3, 1024, 1, 1), Error);
  auto big = load_model("llama-3-70b");
  auto g = make_geo(big, preset("lp30"), isa::Dtype::E4m3, 32768, 1, 1);
  set_kv_parts(g, preset("lp30").mem.rows, 3, false);  // K rows over streams at 32k: 12 K + 2 V registers
  CHECK_FALSE(kv_registers_fit(g));
  CHECK_THROWS_AS(check_kv_registers(g), Error);
}
