// The front end and the partition passes (compiler/src/frontend_decode.cpp, partition.cpp).
#include <doctest/doctest.h>

#include <string>

#include "lpu/common/errors.hpp"
#include "lpu/compiler/frontend.hpp"
#include "lpu/compiler/partition.hpp"

using namespace lpu;
using namespace lpu::compiler;

namespace {
rack::RackConfig rack_file(const std::string& name) { return rack::load_rack(std::string(LPU_SOURCE_DIR) + "/" + name); }
int count(const Graph& g, OpKind k) {
  int n = 0;
  for (const auto& op : g.ops) n += op.kind == k;
  return n;
}
}  // namespace

TEST_CASE("decode front end: a dense layer is norm, qkv, attention, wo, norm, gate_up, swiglu, down") {
  auto m = load_model("llama-3-70b");
  DecodeOptions o;
  o.context = 4096;
  auto g = decode_graph(m, o);
  // input + 80 layers x 8 ops + final norm, head, logits.
  REQUIRE(g.ops.size() == 1 + 80 * 8 + 3);
  const auto& qkv = g.ops[2];
  CHECK(qkv.name == "L0.qkv");
  CHECK(qkv.rows == (64 + 2 * 8) * 128);  // q heads + k and v heads, 128 each
  CHECK(qkv.cols == 8192);
  CHECK(g.ops[3].kind == OpKind::Attention);
  CHECK(g.ops[3].context == 4096);
  CHECK(g.ops.back().kind == OpKind::Output);
  CHECK(g.ops.back().bytes == 4 * 128256);  // f32 logits
  // 70.55 GB of fp8 weights streamed per step, the embedding table excluded (it stays on the host).
  double w = 0;
  for (const auto& op : g.ops) w += op_weight_bytes(g, op);
  CHECK(w == doctest::Approx(8.0 * (10240.0 * 8192 + 8192.0 * 8192 + 3 * 28672.0 * 8192) * 10 + 128256.0 * 8192));
}

TEST_CASE("decode front end: without attention a layer is norm, gate_up, swiglu, down") {
  auto m = load_model("llama-3-70b");
  DecodeOptions o;
  o.attention = false;
  auto g = decode_graph(m, o);
  // input + 80 layers x 4 ops + final norm, head, logits.
  REQUIRE(g.ops.size() == 1 + 80 * 4 + 3);
  CHECK(g.ops[1].name == "L0.ffn_norm");
  CHECK(g.ops[2].name == "L0.gate_up");
  for (const auto& op : g.ops) CHECK(op.kind != OpKind::Attention);
}

TEST_CASE("decode front end: experts evaluated per token (sparse) or all of them (dense), every one stored") {
  auto m = load_model("mixtral-8x7b");
  DecodeOptions o;
  auto sparse = decode_graph(m, o);
  o.moe_sparse = false;
  auto dense = decode_graph(m, o);
  auto find = [](const Graph& g, const std::string& n) -> const Op& {
    for (const auto& op : g.ops)
      if (op.name == n) return op;
    throw Error("no op " + n);
  };
  CHECK(find(sparse, "L0.gate_up").copies == 2);
  CHECK(find(dense, "L0.gate_up").copies == 8);
  CHECK(find(sparse, "L0.down").stored_copies == 8);
  CHECK(find(sparse, "L0.gating").top_k == 2);
  CHECK(find(sparse, "L0.router").rows == 8);
}

TEST_CASE("decode front end: latent attention is refused with the reason") {
  auto m = load_model("kimi-k2");
  CHECK_THROWS_WITH_AS(decode_graph(m, DecodeOptions{}), doctest::Contains("latent attention"), Error);
}

TEST_CASE("pipeline partition: every op on one chip, a Send at each of the S-1 cuts") {
  auto cfg = rack_file("configs/lpx-rack.toml");
  auto m = load_model("llama-3-70b");
  PartitionOptions po;
  po.stages = 10;  // a plan's own choice
  auto p = partition(decode_graph(m, DecodeOptions{}), cfg, po);
  CHECK(p.chips_used == 10);
  CHECK(count(p.graph, OpKind::Exchange) == 9);
  for (const auto& op : p.graph.ops) {
    REQUIRE(op.chips.size() == 1);
    if (op.kind == OpKind::Exchange) {
      CHECK(op.to == op.from + 1);
      const bool cross = op.from % 8 == 7;  // between trays: the global links
      CHECK(op.link_latency == (cross ? 240 : 160));
      if (!cross) CHECK(op.links == 4);  // lpx: 4 links to each chip of the tray, 4 used
      if (cross) CHECK(op.links >= 1);
    }
  }
  // Capacity decides when the plan does not: 69.50 GB of fp8 weights (80 layers x 855.6 MB + the
  // LM head's 1.05 GB; the embedding stays with the host) and an 8k KV cache of 80 x 16.8 MB =
  // 1.34 GB at 85% of 500.08 MB per chip: ceil(70.84e9 / 425.07e6) = 167 chips.
  po.stages = 0;
  auto q = partition(decode_graph(m, DecodeOptions{}), cfg, po);
  CHECK(q.chips_used == 167);
  // More than the rack: refused, naming the chips.
  po.chips = 64;
  CHECK_THROWS_WITH_AS(partition(decode_graph(m, DecodeOptions{}), cfg, po), doctest::Contains("needs 167 chips"), Error);
}

TEST_CASE("hybrid partition: tensor groups of a tray, all-gathers inside a layer, a send between groups") {
  auto cfg = rack_file("configs/lpx-rack.toml");
  auto m = load_model("llama-3-70b");
  PartitionOptions po;
  po.kind = PartitionKind::Hybrid;
  auto p = partition(decode_graph(m, DecodeOptions{}), cfg, po);
  // Groups of 8 (a tray: the largest all-to-all block), 3 layers per group (8 x 425 MB hold 3 layers
  // of 872 MB: weights 855.6 MB + an 8k KV cache of 16.8 MB), 27 groups of layers + the head group.
  CHECK(p.tensor == 8);
  CHECK(p.groups == 28);
  CHECK(p.chips_used == 224);
  // 4 all-gathers per layer (attention output, x after wo, the SwiGLU output, x after down; a
  // member computes the q/k/v rows of its own kv head: 8 kv heads over 8 members), 27 sends
  // between groups.
  int gathers = 0, sends = 0;
  for (const auto& op : p.graph.ops)
    if (op.kind == OpKind::Exchange) (op.xkind == ExchangeKind::AllGather ? gathers : sends)++;
  CHECK(gathers == 80 * 4);
  CHECK(sends == 27);
  // tiny's 2 kv heads do not share out over a group of 8: its q/k/v rows are gathered (5 a layer).
  auto full = rack_file("configs/tray8.toml");
  po.kind = PartitionKind::Tensor;
  auto small = load_model("tiny");
  po.tensor = 8;
  auto pt = partition(decode_graph(small, DecodeOptions{}), full, po);
  gathers = 0;
  for (const auto& op : pt.graph.ops) gathers += op.kind == OpKind::Exchange && op.xkind == ExchangeKind::AllGather;
  CHECK(gathers == small.layers * 5);
  // Attention is shared by kv heads: 8 kv heads over the 8 members.
  for (const auto& op : p.graph.ops)
    if (op.kind == OpKind::Attention) CHECK(op.chips.size() == 8);
}

TEST_CASE("tensor partition: a group must be linked all-to-all") {
  auto cfg = rack_file("configs/lpx-rack.toml");
  auto m = load_model("tiny");
  PartitionOptions po;
  po.kind = PartitionKind::Tensor;
  po.tensor = 16;  // two trays: chips of different trays are not all linked
  CHECK_THROWS_WITH_AS(partition(decode_graph(m, DecodeOptions{}), cfg, po), doctest::Contains("linked all-to-all"), Error);
}
