// The decode generator and its runs: placement and capacity, programs that assemble, the KV cache
// and the tokens of the emulated `tiny` decode against the plain C++ reference decoder, and a
// timing-only run on a small rack.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <set>
#include <string>

#include "lpu/common/errors.hpp"
#include "lpu/isa/numerics.hpp"
#include "lpu/workload/decoder.hpp"
#include "lpu/workload/reference.hpp"

using namespace lpu;
using namespace lpu::workload;

namespace {
const std::string kMini4 = std::string(LPU_SOURCE_DIR) + "/examples/decode/mini4.toml";
const std::string kTray8 = std::string(LPU_SOURCE_DIR) + "/configs/tray8.toml";
const std::string kLpx = std::string(LPU_SOURCE_DIR) + "/configs/lpx-rack.toml";

DecoderSpec tiny_spec() {
  DecoderSpec s;
  s.model = "tiny";
  s.rack = kMini4;
  s.context = 64;
  return s;
}

float load(const io::Tensor& t, std::size_t i) {
  if (t.type == io::ElemType::E4m3) return num::e4m3_to_f32(t.data[i]);
  float f;
  std::memcpy(&f, t.data.data() + 4 * i, 4);
  return f;
}
}  // namespace

TEST_CASE("KV cache after one step equals the reference decoder's k and v") {
  auto plan = plan_decoder(tiny_spec());
  auto w = gen_weights(plan.model, 7, plan.wtype);
  DecodeSession ses(plan, w);
  ReferenceDecoder ref(plan.model, w, {plan.wtype, plan.reduce_block});
  const int tok = 5;
  ses.step(tok, 0);
  ref.step(tok, 0);
  const auto& m = plan.model;
  const int hd = m.head_dim, E = plan.reduce_block;
  // K row of position 0 (row 1 of the K part; row 0 is the dump row): kv head g at slot g,
  // halves in vectors of E elements.
  auto K = ses.read_symbol(0, "K0u0g0j0p0");
  const auto& rk = ref.kcache(0)[0];
  int bad = 0;
  for (int g = 0; g < m.kv_heads; ++g)
    for (int s = 0; s < 2; ++s)
      for (int i = 0; i < hd / 2; ++i) {
        const std::size_t e = std::size_t(((2 * g + s) * E) + i);
        const float chip = load(K, std::size_t(plan.vector_bytes) + e);
        const float want = rk[std::size_t(g * hd + s * hd / 2 + i)];
        if (chip != want && bad++ < 5) MESSAGE("k g=", g, " s=", s, " i=", i, ": chip ", chip, " reference ", want);
      }
  CHECK(bad == 0);
  // V^T: rows slot * hd + j (split in three parts), column = position 0.
  const auto& rv = ref.vcache(0)[0];
  bad = 0;
  const int R = 2 * hd, prt = (R + 2) / 3;
  for (int r = 0; r < R; ++r) {
    auto V = ses.read_symbol(0, "V0u0t0j" + std::to_string(r / prt) + "p0");
    const std::size_t row = std::size_t(prt + r % prt);  // dump rows first
    const float chip = load(V, row * std::size_t(plan.vector_bytes));
    const float want = rv[std::size_t(r)];
    if (chip != want && bad++ < 5) MESSAGE("v row ", r, ": chip ", chip, " reference ", want);
  }
  CHECK(bad == 0);
}
