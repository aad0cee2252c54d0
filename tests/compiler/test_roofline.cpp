// The roofline (compiler/src/roofline.cpp): each term derived from the preset's figures.
// lp30: 1 GHz; SRAM 470 slices x 320 B = 150,400 B per cycle; weight install the same (weight
// bus min(3 x 80, 235) rows per hemisphere); 6 planes of 320 x 320 fp8; VXM 16 queues of 80 f32
// elements; latencies mxm_mm 24, mxm_rd 3, mem_write 2, c2c_send 4, c2c_recv 4, dma 8.
// tray8: 8 lp30 chips, 4 links per pair, 112 Gb/s x 0.93 / 8 = 13.02 B per cycle per link, latency
// 160; a vector serialises in ceil(320 / 13.02) = 25 cycles.
#include <doctest/doctest.h>

#include <string>

#include "lpu/compiler/frontend.hpp"
#include "lpu/compiler/roofline.hpp"

using namespace lpu;
using namespace lpu::compiler;

namespace {
rack::RackConfig tray(const std::vector<std::string>& set = {}) {
  return rack::load_rack(std::string(LPU_SOURCE_DIR) + "/configs/tray8.toml", set);
}
Partitioned one_op(Op op, std::vector<int> chips, int batch = 1) {
  Partitioned p;
  p.graph.batch = batch;
  op.chips = std::move(chips);
  p.graph.ops.push_back(std::move(op));
  return p;
}
Op matvec(std::int64_t rows, std::int64_t cols) {
  Op op;
  op.kind = OpKind::MatVec;
  op.name = "mv";
  op.rows = rows;
  op.cols = cols;
  return op;
}
}  // namespace

TEST_CASE("roofline: a matrix product on one chip streams its weights at the SRAM rate, then drains") {
  // 8192 x 8192 fp8 = 67,108,864 B / 150,400 B per cycle = 446.20 cycles; drain mxm_mm 24 +
  // mxm_rd 3 + mem_write 2 = 29. MXM: 8192^2 MACs / (6 x 320^2) = 109.2 cycles (not the limit).
  auto r = roofline(one_op(matvec(8192, 8192), {0}), tray());
  CHECK(r.cycles == doctest::Approx(67108864.0 / 150400 + 29));
  CHECK(r.limiter == Limiter::Sram);
  CHECK(r.ops[0].terms[std::size_t(Limiter::Mxm)] == doctest::Approx(8192.0 * 8192 / (6 * 320 * 320)));
  // On 8 chips each streams an eighth: 55.78 + 29.
  auto r8 = roofline(one_op(matvec(8192, 8192), {0, 1, 2, 3, 4, 5, 6, 7}), tray());
  CHECK(r8.cycles == doctest::Approx(67108864.0 / 150400 / 8 + 29));
}

TEST_CASE("roofline: a narrower weight bus becomes the limiter") {
  // 20 rows per plane per cycle: per hemisphere min(3 x 20, 235) = 60 rows, 120 x 320 B = 38,400 B
  // per cycle < the SRAM's 150,400: 67,108,864 / 38,400 = 1747.6 + 29.
  auto r = roofline(one_op(matvec(8192, 8192), {0}), tray({"chip.set+=mxm.install_rows_per_cycle=20"}));
  CHECK(r.cycles == doctest::Approx(67108864.0 / 38400 + 29));
  CHECK(r.limiter == Limiter::WeightInstall);
}

TEST_CASE("roofline: batch 64 makes the same product MXM-bound") {
  // 64 vectors through every tile: 8192^2 x 64 MACs / (6 x 320^2) per cycle = 6990.5 > 446.2.
  auto r = roofline(one_op(matvec(8192, 8192), {0}, 64), tray());
  CHECK(r.limiter == Limiter::Mxm);
  CHECK(r.cycles == doctest::Approx(8192.0 * 8192 * 64 / (6 * 320 * 320) + 29));
}

TEST_CASE("roofline: an all-gather in a tray is link latency plus the shares over 28 links") {
  // x in f32 (8192 x 4 = 32,768 B): each member receives 7/8 of it, 28,672 B, over 7 peers x 4
  // links x 13.02 B/cycle = 78.65 cycles, less the first vector's 25 (in the hop) = 53.65; hop:
  // c2c_send 4 + 25 + 160 + c2c_recv 4 = 193.
  Op x;
  x.kind = OpKind::Exchange;
  x.xkind = ExchangeKind::AllGather;
  x.name = "x";
  x.bytes = 32768;
  x.links = 4;
  x.link_latency = 160;
  auto r = roofline(one_op(x, {0, 1, 2, 3, 4, 5, 6, 7}), tray());
  const double link = 112e9 * 0.93 / 8 / 1e9;
  CHECK(r.cycles == doctest::Approx(28672.0 / (28 * link) - 25 + 193));
  CHECK(r.limiter == Limiter::LinkLatency);
}

TEST_CASE("roofline: attention reads the KV cache and runs the softmax on the VXM") {
  // 64 heads / 8 kv heads x 128 over 8192 positions, fp8, on one chip: KV 2 x 8192 x 8 x 128 =
  // 16,777,216 B / 150,400 = 111.6 cycles; VXM: 7 x 64 x ceil(8192 / 80) = 7 x 6,592 score vectors
  // + 6 x ceil(72 x 128 / 80) = 6 x 116 RoPE vectors = 46,840 / 16 queues = 2,927.5 cycles: the limit.
  Op a;
  a.kind = OpKind::Attention;
  a.name = "attn";
  a.heads = 64;
  a.kv_heads = 8;
  a.head_dim = 128;
  a.context = 8192;
  auto r = roofline(one_op(a, {0}), tray());
  CHECK(r.ops[0].terms[std::size_t(Limiter::Sram)] == doctest::Approx(16777216.0 / 150400));
  CHECK(r.ops[0].terms[std::size_t(Limiter::Vxm)] == doctest::Approx((7.0 * 64 * 103 + 6.0 * 116) / 16));
  CHECK(r.ops[0].limiter == Limiter::Vxm);
  // Half the context, half the softmax: attention follows the tokens in the cache.
  a.context = 4096;
  auto h = roofline(one_op(a, {0}), tray());
  CHECK(h.ops[0].terms[std::size_t(Limiter::Vxm)] == doctest::Approx((7.0 * 64 * 52 + 6.0 * 116) / 16));
}

TEST_CASE("roofline: the whole Llama-3-70B step, hybrid on the LPX rack, and its layers") {
  auto cfg = rack::load_rack(std::string(LPU_SOURCE_DIR) + "/configs/lpx-rack.toml");
  auto m = load_model("llama-3-70b");
  PartitionOptions po;
  po.kind = PartitionKind::Hybrid;
  auto r = roofline(partition(decode_graph(m, DecodeOptions{}), cfg, po), cfg);
  // Every layer is alike except the group boundaries (a send every 3 layers): 80 layer entries
  // and one for the head and the host I/O; the step is their sum.
  REQUIRE(r.layers.size() == 81);
  double sum = 0;
  for (const auto& l : r.layers) sum += l.cycles;
  CHECK(sum == doctest::Approx(r.cycles));
  CHECK(r.layers[1].cycles == doctest::Approx(r.layers[4].cycles));
  // The bound is above the 1,500 tokens/s per user the seed names. The largest share is the
  // transit between the VXM and the edges (next test for the distances). A layer: down.x (SXM)
  // -> attn_norm (VXM) 236, -> qkv (plane) 237 less the 69.72 cycles its weights stream
  // meanwhile (10,240 x 8192 B over 8 chips at 150,400 B/cycle), -> attention (VXM in) 237 and
  // 3 x 237 inside, -> attn.x (SXM) 1, -> wo 1 (hidden by its weights), -> wo.x 1, -> ffn_norm
  // 236, -> gate_up 237 (hidden: its weights take 419), -> swiglu 237, -> swiglu.x 236, -> down 1
  // (hidden), -> down.x 1: 3 x 236 + 5 x 237 + (237 - 69.72) + 3 x 1 = 2,063.28 of its 4.3k.
  CHECK(r.tokens_per_s_per_user > 1500);
  CHECK(r.limiter == Limiter::Transit);
  const double qkv = 10240.0 * 8192 / 8 / 150400;
  CHECK(r.layers[1].by_limiter[std::size_t(Limiter::Transit)] == doctest::Approx(3 * 236 + 5 * 237 + (237 - qkv) + 3 * 1));
}

TEST_CASE("roofline: a result travels from the unit that made it to the next operation's") {
  // lp30 positions, west to east (lpu/arch/layout.hpp): planes 0-2 | sxm.w 3 | mem.w.234 .. w.0
  // 4-238 | vxm 239 | mem.e.0 .. e.234 240-474 | sxm.e 475 | planes 476-478; one cycle a hop.
  // VXM to the nearest plane 237, to an SXM 236; an SXM to the plane beside it 1.
  Partitioned p;
  auto add = [&](OpKind k) {
    Op op;
    op.kind = k;
    op.name = "op";
    op.rows = op.cols = 320;
    op.heads = op.kv_heads = 1;
    op.head_dim = 128;
    op.context = 320;
    op.bytes = 320;
    op.links = 4;
    op.link_latency = 160;
    op.chips = {0};
    if (k == OpKind::Exchange) op.chips = {0, 1};
    p.graph.ops.push_back(op);
  };
  for (auto k : {OpKind::Exchange, OpKind::Norm, OpKind::MatVec, OpKind::Attention, OpKind::MatVec, OpKind::Exchange})
    add(k);
  auto r = roofline(p, tray());
  auto transit = [&](int i) { return r.ops[std::size_t(i)].terms[std::size_t(Limiter::Transit)]; };
  CHECK(transit(0) == 0);                  // the first operation: nothing before it
  CHECK(transit(1) == 236);                // exchange (SXM) -> norm (VXM)
  // norm -> product (plane): 237, less what its weights stream meanwhile (320 x 320 B at
  // 150,400 B per cycle: the first tiles install while the input travels).
  CHECK(transit(2) == doctest::Approx(237 - 320.0 * 320 / 150400));
  CHECK(transit(3) == 237 + 3 * 237);      // product -> RoPE (VXM), then scores, softmax, A V (VXM-bound)
  CHECK(transit(4) == 0);                  // A V (plane) -> product (plane)
  CHECK(transit(5) == 1);                  // product -> exchange (the SXM beside the plane)
}

TEST_CASE("roofline: work after a weight-bound product overlaps its streaming, the transit does not") {
  // A norm of 8192 f32 elements (5 x ceil(8192 / 80) = 515 VXM vectors / 16 queues = 32.2
  // cycles, plus its chain of latencies) alone, and after an 8192 x 8192 product on the same chip
  // (446.2 cycles of weights): the norm's work fits under the streaming (its results arrive
  // while the weights still stream), so it counts its latency and the transit (plane -> VXM 237)
  // only: it ends no earlier than 237 after the product, nor than 237 + 32.2 after its start.
  Op n;
  n.kind = OpKind::Norm;
  n.name = "norm";
  n.cols = 8192;
  auto alone = roofline(one_op(n, {0}), tray());
  const double work = 5.0 * 103 / 16;
  CHECK(alone.ops[0].terms[std::size_t(Limiter::Vxm)] == doctest::Approx(work));
  Partitioned p = one_op(matvec(8192, 8192), {0});
  n.chips = {0};
  p.graph.ops.push_back(n);
  auto r = roofline(p, tray());
  CHECK(r.ops[1].cycles == doctest::Approx(alone.ops[0].cycles - work + 237));
  CHECK(r.ops[1].limiter == Limiter::Transit);
}
