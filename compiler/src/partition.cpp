// Partition passes (partition.hpp): pipeline, tensor and hybrid.
#include "lpu/compiler/partition.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "lpu/common/errors.hpp"

namespace lpu::compiler {

PartitionKind parse_partition(const std::string& s) {
  if (s == "pipeline") return PartitionKind::Pipeline;
  if (s == "tensor") return PartitionKind::Tensor;
  if (s == "hybrid") return PartitionKind::Hybrid;
  throw Error(fmt::format("--partition {}: unknown (pipeline, tensor or hybrid)", s));
}

const char* partition_name(PartitionKind k) {
  switch (k) {
    case PartitionKind::Pipeline: return "pipeline";
    case PartitionKind::Tensor: return "tensor";
    case PartitionKind::Hybrid: return "hybrid";
  }
  return "?";
}

double op_weight_bytes(const Graph& g, const Op& op) {
  if (op.kind != OpKind::MatVec) return 0;
  return double(op.rows) * double(op.cols) * op.copies * isa::dtype_bytes(g.wtype);
}

double op_kv_bytes(const Graph& g, const Op& op) {
  if (op.kind != OpKind::Attention) return 0;
  return 2.0 * double(op.context) * op.kv_heads * op.head_dim * isa::dtype_bytes(g.wtype);
}

namespace {

// SRAM bytes an operation keeps on the chips that run it: weights (every stored expert) and,
// for attention, the KV cache of every user of the micro-batch.
double stored_bytes(const Graph& g, const Op& op) {
  if (op.kind == OpKind::MatVec)
    return double(op.rows) * double(op.cols) * std::max(op.copies, op.stored_copies) * isa::dtype_bytes(g.wtype);
  return op_kv_bytes(g, op) * g.batch;
}

struct Links {
  int count = 0;                 // parallel links between the pair (at most max_links)
  std::int64_t latency = 0;      // one way, after serialisation
};

Links links_between(const rack::RackConfig& cfg, int a, int b, int max_links) {
  Links r;
  int cls = -1;
  for (int l = 0; l < cfg.topology.links; ++l) {
    const auto& pt = cfg.topology.port(a, l);
    if (pt.peer != b) continue;
    if (cls < 0) {
      cls = pt.cls;
      r.latency = rack::link_timing(cfg, a, l).latency;
    }
    if (pt.cls == cls && r.count < max_links) ++r.count;
  }
  return r;
}

Op exchange_send(const std::string& name, int layer, std::int64_t bytes, int from, int to, const Links& ls) {
  Op x;
  x.kind = OpKind::Exchange;
  x.xkind = ExchangeKind::Send;
  x.name = name;
  x.layer = layer;
  x.bytes = bytes;
  x.from = from;
  x.to = to;
  x.links = ls.count;
  x.link_latency = ls.latency;
  x.chips = {to};
  return x;
}

// The largest block of chips from `first`, at most `cap`, linked pairwise.
int all_to_all_block(const rack::RackConfig& cfg, int first, int cap, int avail) {
  int t = 1;
  while (t < cap && first + t < avail) {
    bool ok = true;
    for (int a = first; a < first + t + 1 && ok; ++a)
      for (int b = a + 1; b < first + t + 1 && ok; ++b) ok = cfg.topology.link_to(a, b) >= 0;
    if (!ok) break;
    ++t;
  }
  return t;
}

// Bytes the live residual stream and step constants take at a cut between layers: what a
// pipeline stage or a tensor group passes on (the input op's payload: x in f32 + constants).
std::int64_t live_bytes(const Graph& g) {
  for (const auto& op : g.ops)
    if (op.kind == OpKind::Input) return op.bytes;
  return 0;
}

}  // namespace

std::string Partitioned::describe() const {
  switch (kind) {
    case PartitionKind::Pipeline: return fmt::format("a pipeline of {} chips", chips_used);
    case PartitionKind::Tensor: return fmt::format("one tensor group of {} chips", tensor);
    case PartitionKind::Hybrid:
      return fmt::format("{} tensor groups of {} chips (the last for the LM head), {} chips", groups, tensor, chips_used);
  }
  return "?";
}

Partitioned partition(const Graph& g, const rack::RackConfig& cfg, const PartitionOptions& o) {
  const int N = o.chips > 0 ? std::min(o.chips, cfg.chips) : cfg.chips;
  const ChipParams& p = cfg.chip(0);
  const double chip_bytes = peaks(p).sram_bytes * o.usable_sram;
  Partitioned out;
  out.kind = o.kind;
  const std::int64_t live = live_bytes(g);
  int layers = 0;
  for (const auto& op : g.ops) layers = std::max(layers, op.layer + 1);

  if (o.kind == PartitionKind::Pipeline) {
    double total = 0;
    for (const auto& op : g.ops) total += stored_bytes(g, op);
    int S = o.stages > 0 ? o.stages : std::max(1, int(std::ceil(total / chip_bytes)));
    if (S > N)
      throw Error(fmt::format("{} ({:.2f} GB of weights and KV cache) needs {} chips in a pipeline ({:.2f} racks of {}), {} "
                              "available",
                              g.model, total / 1e9, S, double(S) / cfg.chips, cfg.chips, N));
    std::vector<int> chain = o.chain;
    if (chain.empty())
      for (int c = 0; c < S; ++c) chain.push_back(c);
    if (int(chain.size()) < S) throw Error("partition: the chain is shorter than the stages");
    // Consecutive runs of operations, cut where the running total of stored bytes passes a
    // multiple of total / S (a cut falls between operations).
    out.graph = g;
    out.graph.ops.clear();
    double acc = 0;
    int stage = 0;
    for (const auto& op0 : g.ops) {
      Op op = op0;
      const double b = stored_bytes(g, op);
      if (stage + 1 < S && acc + b / 2 > total * (stage + 1) / S) {
        const int from = chain[std::size_t(stage)], to = chain[std::size_t(stage + 1)];
        const auto ls = links_between(cfg, from, to, o.max_links);
        if (ls.count == 0)
          throw Error(fmt::format("the pipeline needs a link from chip {} to chip {}; topology {} has none", from, to,
                                  cfg.topology.describe()));
        out.graph.ops.push_back(exchange_send(fmt::format("{}>{}", op.name, to), op.layer, live, from, to, ls));
        ++stage;
      }
      acc += b;
      op.chips = {chain[std::size_t(stage)]};
      out.graph.ops.push_back(std::move(op));
    }
    out.tensor = 1;
    out.groups = S;
    out.chips_used = S;
    return out;
  }

  // Tensor groups.
  const int cap = o.kind == PartitionKind::Hybrid ? 8 : N;
  const int T = o.tensor > 0 ? o.tensor : all_to_all_block(cfg, 0, cap, N);
  if (T < 1 || T > N) throw Error(fmt::format("--tensor {}: 1..{} chips", T, N));
  auto group_links = [&](int first) {
    Links worst;
    worst.count = 1 << 30;
    for (int a = first; a < first + T; ++a)
      for (int b = first; b < first + T; ++b) {
        if (a == b) continue;
        const auto ls = links_between(cfg, a, b, o.max_links);
        if (ls.count == 0)
          throw Error(fmt::format("chips {} and {} of a tensor group are not linked: a group must be linked all-to-all (topology "
                                  "{}; use --tensor or --partition hybrid)",
                                  a, b, cfg.topology.describe()));
        worst.count = std::min(worst.count, ls.count);
        worst.latency = std::max(worst.latency, ls.latency);
      }
    if (T == 1) worst.count = 0;
    return worst;
  };
  // Layers per group: as given, else the fewest that fit (hybrid), else all (tensor).
  double layer_bytes = 0, head_bytes = 0;
  for (const auto& op : g.ops) (op.layer >= 0 ? layer_bytes : head_bytes) += stored_bytes(g, op);
  layer_bytes /= std::max(1, layers);
  int per_group = layers;
  if (o.kind == PartitionKind::Hybrid) {
    per_group = o.layers_per_group > 0 ? o.layers_per_group
                                       : std::max(1, int(std::floor(T * chip_bytes / std::max(layer_bytes, 1.0))));
    per_group = std::min(per_group, layers);
  }
  const int layer_groups = (layers + per_group - 1) / per_group;
  const int G = o.kind == PartitionKind::Hybrid ? layer_groups + 1 : 1;
  if (o.kind == PartitionKind::Tensor && layer_bytes * layers + head_bytes > T * chip_bytes)
    throw Error(fmt::format("{} ({:.2f} GB of weights and KV cache) does not fit one tensor group of {} chips",
                            g.model, (layer_bytes * layers + head_bytes) / 1e9, T));
  if (G * T > N)
    throw Error(fmt::format("{} needs {} tensor groups of {} chips ({} layer{} each, plus a head group): {} chips ({:.2f} "
                            "racks of {}), {} available",
                            g.model, G, T, per_group, per_group == 1 ? "" : "s", G * T, double(G * T) / cfg.chips, cfg.chips,
                            N));
  auto members = [&](int grp) {
    std::vector<int> v;
    for (int c = grp * T; c < grp * T + T; ++c) v.push_back(c);
    return v;
  };
  auto group_of = [&](const Op& op) {
    if (o.kind == PartitionKind::Tensor || op.kind == OpKind::Input) return 0;
    return op.layer >= 0 ? op.layer / per_group : G - 1;
  };
  out.graph = g;
  out.graph.ops.clear();
  int cur = 0;
  std::vector<Links> glinks;
  for (int grp = 0; grp < G; ++grp) glinks.push_back(group_links(grp * T));
  auto all_gather = [&](const Op& after, std::int64_t bytes, const std::vector<int>& chips) {
    if (T == 1) return;
    const auto& ls = glinks[std::size_t(group_of(after))];
    Op x;
    x.kind = OpKind::Exchange;
    x.xkind = ExchangeKind::AllGather;
    x.name = after.name + ".x";
    x.layer = after.layer;
    x.bytes = bytes;
    x.links = ls.count;
    x.link_latency = ls.latency;
    x.chips = chips;
    out.graph.ops.push_back(std::move(x));
  };
  const int E = 4;  // bytes of an f32 element
  int kv_heads = 0;
  for (const auto& op : g.ops)
    if (op.kind == OpKind::Attention) kv_heads = op.kv_heads;
  const int wb = isa::dtype_bytes(g.wtype);
  for (const auto& op0 : g.ops) {
    Op op = op0;
    const int grp = group_of(op);
    if (grp != cur) {
      // Group to group: over the pair of their chips with the most links (the out and in leaders).
      int from = cur * T, to = grp * T;
      Links ls;
      for (int a = cur * T; a < cur * T + T; ++a)
        for (int b = grp * T; b < grp * T + T; ++b) {
          const auto x = links_between(cfg, a, b, o.max_links);
          if (x.count > ls.count) {
            ls = x;
            from = a;
            to = b;
          }
        }
      if (ls.count == 0)
        throw Error(fmt::format("tensor groups {} and {} need a link between chips {} and {}; topology {} has none", cur, grp,
                                from, to, cfg.topology.describe()));
      out.graph.ops.push_back(exchange_send(fmt::format("{}>{}", op.name, to), op.layer, live, from, to, ls));
      cur = grp;
    }
    op.chips = members(grp);
    if (op.kind == OpKind::Attention) op.chips.resize(std::size_t(std::min(T, op.kv_heads)));  // kv heads shared out
    if (op.kind == OpKind::Input || op.kind == OpKind::Output) op.chips.resize(1);
    out.graph.ops.push_back(op);
    // What the next operation needs whole, gathered from the members' shares.
    switch (op.kind) {
      case OpKind::MatVec:
        if (op.name.ends_with("gate_up")) break;  // its SwiGLU works on each member's own rows
        if (op.name == "head") break;              // logits stream out from each member
        // Every member runs the attention of an equal share of the kv heads: it computes the q,
        // k and v rows of its own heads, nothing to gather.
        if (op.name.ends_with("qkv") && kv_heads > 0 && kv_heads % T == 0) break;
        all_gather(op, op.rows * E, members(grp));  // q/k/v, x, router logits: f32
        break;
      case OpKind::Attention: all_gather(op, std::int64_t(op.heads) * op.head_dim * wb, members(grp)); break;
      case OpKind::SwiGlu: all_gather(op, op.cols * op.copies * wb, members(grp)); break;
      default: break;
    }
  }
  out.tensor = T;
  out.groups = G;
  out.chips_used = G * T;
  return out;
}

}  // namespace lpu::compiler
