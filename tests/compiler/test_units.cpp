// The units pass alone (lpu/compiler/units.hpp): a layer's units of work, a tensor group
// member's share of them with the exchanges, what a stage receives, and the split into stages,
// derived by hand for Llama-3-70B on lp30 (the tiling's figures: tests/compiler/test_tiling.cpp).
#include <doctest/doctest.h>

#include <string>

#include "lpu/arch/params.hpp"
#include "lpu/compiler/model_shape.hpp"
#include "lpu/compiler/tiling.hpp"
#include "lpu/compiler/units.hpp"

using namespace lpu;
using namespace lpu::compiler;
using namespace lpu::compiler::units;

namespace {
// Llama-3-70B fp8 on lp30 at 8k, one kv head a core unit (a tray's group of 8: narrow_core).
tiling::Geo geo70() {
  const auto g0 = tiling::make_geo(load_model("llama-3-70b"), load_preset(std::string(LPU_SOURCE_DIR) + "/configs/lp30.toml"),
                                   isa::Dtype::E4m3, 8192, 1, 1);
  auto g = g0;
  tiling::narrow_core(g);
  return g;
}
}  // namespace

TEST_CASE("units: member m of T takes count m / T up to count (m + 1) / T of a run") {
  // 26 row tiles (8192 / 320) over 8 members: 3.25 each, rounded down at both ends.
  const int want[9] = {0, 3, 6, 9, 13, 16, 19, 22, 26};
  for (int m = 0; m < 8; ++m) {
    const auto [lo, hi] = own_range(0, 26, 8, m);
    CHECK(lo == want[m]);
    CHECK(hi == want[m + 1]);
  }
  // A run that starts elsewhere keeps its offset: 90 chunks after 10.
  CHECK(own_range(10, 90, 8, 0) == std::pair<int, int>{10, 21});  // 90 / 8 = 11.25
}

TEST_CASE("units: a Llama-3-70B layer in order, with the tiles each streams") {
  const auto g = geo70();
  const auto us = layer_units(g, 5, 1234);
  // q/k/v row tiles: 32 q + 4 k + 8 v (one V^T tile a kv head) = 44; the core; 26 output
  // projection row tiles; 90 gate/up chunks; 26 down row tiles.
  REQUIRE(us.size() == 44 + 1 + 26 + 90 + 26);
  CHECK(us[0].k == Unit::Qkv);
  CHECK(us[0].tiles == 26);  // k-tiles of x
  CHECK(us[43].k == Unit::Qkv);
  CHECK(us[44].k == Unit::Core);
  CHECK(us[44].tiles == 1234);
  CHECK(us[45].k == Unit::Wo);
  CHECK(us[45].tiles == 32);  // its input o: 64 heads of 128 in vectors of 2 heads (256 of 320 lanes): 32 k-tiles
  CHECK(us[71].k == Unit::Chunk);
  CHECK(us[71].tiles == 52);  // gate and up: 2 x 26
  CHECK(us[161].k == Unit::Down);
  CHECK(us[161].tiles == 90);  // k-tiles of the SwiGLU output
  for (const auto& u : us) CHECK(u.layer == 5);
  CHECK(unit_name(us[3]) == "L5.qkv[3]");
  CHECK(unit_name(us[44]) == "L5.attn");
  CHECK(unit_name(us[186]) == "L5.ffn_down[25]");
}

TEST_CASE("units: without attention a layer is its FFN only") {
  auto g = geo70();
  g.ffn_only = true;
  const auto us = layer_units(g, 3, 0);
  // Llama-3-70B on lp30: 28672 / 320 = 90 gate/up chunks, then 8192 / 320 = 26 down row tiles.
  REQUIRE(us.size() == 90 + 26);
  CHECK(unit_name(us.front()) == "L3.ffn_up[0]");
  CHECK(unit_name(us.back()) == "L3.ffn_down[25]");
}

TEST_CASE("units: member 0 of a tray's group computes its kv head's q/k/v and its shares, then exchanges") {
  const auto g = geo70();
  const auto us = layer_units(g, 0, 0);
  const auto mine = shard_units(us, 8, 0, -1, g.core_units(), g.core_gran(), g.KV, &g);
  // Its kv head 0: k tile 32 and v tile 36 first (RoPE and the KV cache's new column wait for
  // them), then q row tiles [0, 4) (8 heads x 160 rows / 320); no q/k/v exchange. Then the core of head 0 and the attention output's exchange among 8; output
  // projection [0, 3) and its exchange; chunks [0, 11) and theirs; down [0, 3) and theirs.
  CHECK(describe_units(mine) == "L0.qkv[32,33) L0.qkv[36,37) L0.qkv[0,4) L0.attn L0.wo[0,3) L0.ffn_up[0,11) L0.ffn_down[0,3)");
  std::vector<int> xchg;
  for (const auto& u : mine)
    if (u.k == Unit::Xchg) xchg.push_back(u.idx);
  CHECK(xchg == std::vector<int>{kXchgIn, int(Unit::Core), int(Unit::Wo), int(Unit::Chunk), int(Unit::Down)});
  for (const auto& u : mine)
    if (u.k == Unit::Core) {
      CHECK(u.first == 0);
      CHECK(u.count == 1);
    }
  // Member 7: the last shares, four down row tiles.
  const auto last = shard_units(us, 8, 7, -1, g.core_units(), g.core_gran(), g.KV, &g);
  CHECK(describe_units(last) == "L0.qkv[35,36) L0.qkv[43,44) L0.qkv[28,32) L0.attn L0.wo[22,26) L0.ffn_up[78,90) L0.ffn_down[22,26)");
}

TEST_CASE("units: what a stage receives, and the split into stages") {
  const auto g = geo70();
  // A stage that begins with a down projection receives the step constants, x and all of a.
  const auto l = live_before(Unit{Unit::Down, 3, 0, 90}, g);
  CHECK(l.sc);
  CHECK(l.x);
  CHECK(l.a == g.RF);
  CHECK(l.vectors(g) == g.NSC + g.NX + g.RF);  // B = 1: 104 f32 vectors of x, 90 of a
  // Four units of 10 tiles into two stages of at most 25: two each; at most 15: impossible.
  std::vector<Unit> four(4, Unit{Unit::Chunk, 0, 0, 10});
  for (int i = 0; i < 4; ++i) four[std::size_t(i)].idx = i;
  const auto two = split(four, 2, 25, 25);
  REQUIRE(two.size() == 2);
  CHECK(two[0].size() == 2);
  CHECK(two[1].size() == 2);
  CHECK(split(four, 2, 15, 15).empty());
}
