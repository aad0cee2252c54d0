// The roofline (roofline.hpp): per operation, the machine's peak rates and latencies.
#include "lpu/compiler/roofline.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <optional>

#include "lpu/arch/layout.hpp"

namespace lpu::compiler {

const char* limiter_name(Limiter l) {
  switch (l) {
    case Limiter::Sram: return "sram";
    case Limiter::WeightInstall: return "weight install";
    case Limiter::Mxm: return "mxm";
    case Limiter::Vxm: return "vxm";
    case Limiter::LinkBandwidth: return "link bandwidth";
    case Limiter::LinkLatency: return "link latency";
    case Limiter::UnitLatency: return "unit latency";
    case Limiter::Host: return "host";
    case Limiter::Transit: return "transit";
  }
  return "?";
}

namespace {

double cdiv(double a, double b) { return std::ceil(a / b); }

Limiter argmax(const std::array<double, kNumLimiters>& a) {
  int best = 0;
  for (int i = 1; i < kNumLimiters; ++i)
    if (a[std::size_t(i)] > a[std::size_t(best)]) best = i;
  return Limiter(best);
}

// The chip's rates, per cycle.
struct Rates {
  double sram = 0;       // SRAM read bytes
  double install = 0;    // bytes into the MXM planes (the weight bus)
  double link = 0;       // bytes per link per direction
  double dma = 0;        // host DMA bytes
  double n2_planes = 0;  // MACs of the weight type
  int vxm_queues = 1;
  int f32_per_vector = 1;
};

// Where an operation takes its input and leaves its result: the VXM, an MXM plane, the SXM.
enum class Unit : std::uint8_t { Vxm, Mxm, Sxm };
struct Ends {
  Unit in, out;
  int inner = 0;  // crossings between the VXM and a plane inside the operation
};
Ends ends(OpKind k) {
  switch (k) {
    case OpKind::MatVec: return {Unit::Mxm, Unit::Mxm};
    // RoPE (VXM), the scores (K as weights), the softmax (VXM), A V (V^T as weights).
    case OpKind::Attention: return {Unit::Vxm, Unit::Mxm, 3};
    case OpKind::Norm:
    case OpKind::SwiGlu:
    case OpKind::Gating: return {Unit::Vxm, Unit::Vxm};
    case OpKind::Exchange:
    case OpKind::Input:
    case OpKind::Output: return {Unit::Sxm, Unit::Sxm};
  }
  return {Unit::Vxm, Unit::Vxm};
}

// Stream cycles between the units: the fewest hops from the VXM to a plane and to an SXM, and
// from an SXM to a plane on its side, times hop_cycles (the floorplan, lpu/arch/layout.hpp).
struct Transit {
  double vm = 0, vs = 0, ms = 0;
  double between(Unit a, Unit b) const {
    if (a == b) return 0;
    if (a == Unit::Sxm || b == Unit::Sxm) return a == Unit::Vxm || b == Unit::Vxm ? vs : ms;
    return vm;
  }
};
Transit transit(const ChipParams& p) {
  const Layout L(p);
  int pv = 0;
  std::vector<const Slice*> planes, sxms;
  for (const auto& s : L.slices()) {
    if (s.kind == SliceKind::Vxm) pv = s.position;
    if (s.kind == SliceKind::Mxm) planes.push_back(&s);
    if (s.kind == SliceKind::Sxm) sxms.push_back(&s);
  }
  const double h = p.stream.hop_cycles;
  Transit t{1e18, 1e18, 1e18};
  for (const auto* m : planes) t.vm = std::min(t.vm, std::abs(m->position - pv) * h);
  for (const auto* x : sxms) {
    t.vs = std::min(t.vs, std::abs(x->position - pv) * h);
    for (const auto* m : planes)
      if (m->hemi == x->hemi) t.ms = std::min(t.ms, std::abs(m->position - x->position) * h);
  }
  if (planes.empty()) t.vm = t.ms = 0;
  if (sxms.empty()) t.vs = t.ms = 0;
  return t;
}

}  // namespace

Roofline roofline(const Partitioned& part, const rack::RackConfig& cfg) {
  const Graph& g = part.graph;
  const ChipParams& p = cfg.chip(0);
  const auto k = peaks(p);
  const double f = p.clock_hz;
  Rates r;
  r.sram = k.sram_bandwidth_bytes_per_s / f;
  r.install = k.weight_install_bytes_per_s / f;
  r.link = rack::rack_figures(cfg).link_bandwidth / f;
  r.dma = p.dma.bandwidth_bytes_per_s / f;
  const double n = double(p.vector_bytes()) / isa::dtype_bytes(g.wtype);
  r.n2_planes = n * n * p.mxm.planes;
  r.vxm_queues = p.vxm.queues;
  r.f32_per_vector = p.vector_bytes() / 4;
  const double E = r.f32_per_vector;
  const double B = g.batch;
  auto lat = [&](isa::LatClass c) { return double(p.lat(c)); };
  using L = isa::LatClass;
  // The data path into the MXM: the weight bus when it is narrower than the SRAM, else the SRAM.
  const bool install_bound = r.install < r.sram;
  const double into_mxm = std::min(r.install, r.sram);
  // One vector over a link: SEND issue to its arrival on the stream at the receiver.
  const double ser = std::ceil(p.vector_bytes() / std::max(r.link, 1e-9));
  auto link_hop = [&](const Op& op) {
    return lat(L::C2cSend) + ser + double(op.link_latency) + lat(L::C2cRecv);
  };

  const Transit tr = transit(p);
  std::optional<Unit> prev;  // where the previous operation left its result
  double prev_stream = 0;    // the previous operation's weight streaming, when that bounded it

  Roofline out;
  out.clock_hz = f;
  out.batch = g.batch;
  out.partition = part.describe();
  for (const auto& op : g.ops) {
    OpBound ob;
    ob.name = op.name;
    ob.kind = op.kind;
    ob.layer = op.layer;
    const double c = double(std::max<std::size_t>(op.chips.size(), 1));
    ob.chips = int(c);
    auto& t = ob.terms;
    double latency = 0;
    Limiter latency_kind = Limiter::UnitLatency;
    switch (op.kind) {
      case OpKind::MatVec: {
        // Weights once per micro-batch; every user's vector through every tile.
        const double bytes = op_weight_bytes(g, op);
        t[std::size_t(install_bound ? Limiter::WeightInstall : Limiter::Sram)] = bytes / (c * into_mxm);
        t[std::size_t(Limiter::Mxm)] = double(op.rows) * double(op.cols) * op.copies * B / (c * r.n2_planes);
        // At least one VXM operation per output vector (a conversion or the residual add).
        if (op.name != "head") t[std::size_t(Limiter::Vxm)] = cdiv(double(op.rows) * op.copies, E) * B / (c * r.vxm_queues);
        // The drain after the last weights: the product, the accumulator read, the write.
        latency = lat(L::MxmMm) + lat(L::MxmRd) + lat(L::MemWrite);
        break;
      }
      case OpKind::Attention: {
        // The KV cache of every user passes through the MXM (K as weights times q; V^T times
        // the probabilities): per user, its own cache.
        const double bytes = op_kv_bytes(g, op) * B;
        t[std::size_t(install_bound ? Limiter::WeightInstall : Limiter::Sram)] = bytes / (c * into_mxm);
        t[std::size_t(Limiter::Mxm)] = 2.0 * double(op.context) * op.heads * op.head_dim * B / (c * r.n2_planes);
        // Softmax over every head's scores (scale, max, subtract, exp, sum, times 1/sum, round to
        // the weight type: 7 vector operations per f32 score vector) and RoPE of q and k (6 per
        // vector: two products, a sum, a difference, and the halves' moves).
        const double score_vectors = double(op.heads) * cdiv(double(op.context), E);
        const double rope_vectors = cdiv(double(op.heads + op.kv_heads) * op.head_dim, E);
        t[std::size_t(Limiter::Vxm)] = (7 * score_vectors + 6 * rope_vectors) * B / (c * r.vxm_queues);
        // The chain of one head: K q through the plane, scale, max, exp, sum, 1/sum, scale,
        // round, V p through the plane.
        latency = 2 * (lat(L::MxmMm) + lat(L::MxmRd)) + lat(L::VxmMul) + 2 * lat(L::VxmReduce) + lat(L::VxmAlu) +
                  2 * lat(L::VxmTrans) + lat(L::VxmMul) + lat(L::VxmCvt);
        break;
      }
      case OpKind::Norm: {
        // Every chip that runs it normalises the whole vector: square, sum, scale, gain, round.
        const double nv = cdiv(double(op.cols), E);
        t[std::size_t(Limiter::Vxm)] = 5 * nv * B / r.vxm_queues;
        latency = lat(L::VxmMul) + lat(L::VxmReduce) + std::ceil(std::log2(std::max(nv, 1.0))) * lat(L::VxmAlu) +
                  lat(L::VxmTrans) + 2 * lat(L::VxmMul) + lat(L::VxmCvt);
        break;
      }
      case OpKind::SwiGlu: {
        const double nv = cdiv(double(op.cols) * op.copies, E);
        t[std::size_t(Limiter::Vxm)] = 3 * nv * B / (c * r.vxm_queues);
        latency = lat(L::VxmTrans) + lat(L::VxmMul) + lat(L::VxmCvt);
        break;
      }
      case OpKind::Gating: {
        // k rounds of max, compare, select over one vector of logits, then exp, sum, 1/sum.
        t[std::size_t(Limiter::Vxm)] = (4.0 * op.top_k + 4) * B / r.vxm_queues;
        latency = op.top_k * (lat(L::VxmReduce) + lat(L::VxmAlu)) + lat(L::VxmTrans) + lat(L::VxmReduce) +
                  lat(L::VxmTrans) + lat(L::VxmMul);
        break;
      }
      case OpKind::Exchange: {
        latency_kind = Limiter::LinkLatency;
        latency = link_hop(op);
        if (op.xkind == ExchangeKind::AllGather) {
          // Each member receives the others' shares over links from each of them.
          const double T = c;
          const double in_bytes = double(op.bytes) * B * (T - 1) / T;
          t[std::size_t(Limiter::LinkBandwidth)] = in_bytes / ((T - 1) * std::max(op.links, 1) * r.link);
        } else {
          t[std::size_t(Limiter::LinkBandwidth)] = double(op.bytes) * B / (std::max(op.links, 1) * r.link);
        }
        // The serialisation of the first vector is already in the hop.
        t[std::size_t(Limiter::LinkBandwidth)] = std::max(0.0, t[std::size_t(Limiter::LinkBandwidth)] - ser);
        break;
      }
      case OpKind::Input:
      case OpKind::Output: {
        latency_kind = Limiter::Host;
        t[std::size_t(Limiter::Host)] = double(op.bytes) * B / r.dma;
        latency = double(p.dma.latency_cycles) + lat(L::Dma);
        break;
      }
    }
    const Limiter tl = argmax(t);
    const double through = t[std::size_t(tl)];
    // Transit: from where the previous operation's result is to this one's unit, and inside it.
    const Ends e = ends(op.kind);
    const double cross = (prev ? tr.between(*prev, e.in) : 0) + e.inner * tr.vm;
    prev = e.out;
    // Weights (and the KV cache) stream into the planes whatever the input: when they bound the
    // operation, its input's transit can hide under them (the first tiles install while the input
    // travels), so only the transit beyond them counts. Every other throughput (VXM work, MACs,
    // link serialisation) needs the input first.
    // And an operation after one whose weights bound it can work on the first results while the
    // rest stream: it ends no earlier than the transit after its predecessor's end, or than its
    // own work after the transit of the first results (cross + max(T_prev, T) from the
    // predecessor's start), so only its work beyond the predecessor's counts.
    // (Attention needs only q at its start: its chain may run under the predecessor's streaming
    // as far as its last input, v, which then needs at least the hop beside its plane.)
    const bool streams = tl == Limiter::Sram || tl == Limiter::WeightInstall;
    double shown = 0, work = 0;
    if (streams) {
      shown = std::max(0.0, cross - through);
      work = through;
    } else {
      const double last = e.inner > 0 ? tr.ms : cross;  // the last input's transit
      const double after = std::max(last, cross + through - prev_stream);  // from the predecessor's end
      shown = std::min(cross, after);
      work = after - shown;
    }
    prev_stream = streams ? through : 0;
    ob.cycles = work + latency + shown;
    ob.limiter = shown > std::max(work, latency) ? Limiter::Transit : latency > work ? latency_kind : tl;
    // Attribution: the throughput part to its resource, the latency to its kind.
    std::array<double, kNumLimiters> attr{};
    attr[std::size_t(tl)] += work;
    attr[std::size_t(latency_kind)] += latency;
    attr[std::size_t(Limiter::Transit)] += shown;
    t[std::size_t(latency_kind)] += latency;  // the op's terms as reported: throughputs and its latency
    t[std::size_t(Limiter::Transit)] += shown;
    for (int i = 0; i < kNumLimiters; ++i) out.by_limiter[std::size_t(i)] += attr[std::size_t(i)];
    out.cycles += ob.cycles;
    // Per layer.
    auto it = std::find_if(out.layers.begin(), out.layers.end(), [&](const LayerBound& lb) { return lb.layer == op.layer; });
    if (it == out.layers.end()) {
      out.layers.push_back(LayerBound{op.layer, 0, Limiter::Sram, {}});
      it = out.layers.end() - 1;
    }
    it->cycles += ob.cycles;
    for (int i = 0; i < kNumLimiters; ++i) it->by_limiter[std::size_t(i)] += attr[std::size_t(i)];
    out.ops.push_back(std::move(ob));
  }
  for (auto& lb : out.layers) lb.limiter = argmax(lb.by_limiter);
  std::stable_sort(out.layers.begin(), out.layers.end(), [](const LayerBound& a, const LayerBound& b) {
    return (a.layer < 0 ? 1 << 30 : a.layer) < (b.layer < 0 ? 1 << 30 : b.layer);
  });
  out.limiter = argmax(out.by_limiter);
  out.seconds_per_token = out.cycles / f;
  out.tokens_per_s_per_user = out.seconds_per_token > 0 ? 1.0 / out.seconds_per_token : 0;
  return out;
}

nlohmann::json Roofline::json(bool per_op) const {
  nlohmann::json j;
  j["bound_cycles_per_step"] = cycles;
  j["bound_seconds_per_token"] = seconds_per_token;
  j["bound_tokens_per_s_per_user"] = tokens_per_s_per_user;
  j["bound_limiter"] = limiter_name(limiter);
  j["partition"] = partition;
  nlohmann::json lim;
  for (int i = 0; i < kNumLimiters; ++i) lim[limiter_name(Limiter(i))] = by_limiter[std::size_t(i)];
  j["bound_cycles_by_limiter"] = lim;
  nlohmann::json ls = nlohmann::json::array();
  for (const auto& lb : layers) {
    nlohmann::json x;
    x["layer"] = lb.layer < 0 ? nlohmann::json("head+io") : nlohmann::json(lb.layer);
    x["bound_cycles"] = lb.cycles;
    x["limiter"] = limiter_name(lb.limiter);
    nlohmann::json by;
    for (int i = 0; i < kNumLimiters; ++i)
      if (lb.by_limiter[std::size_t(i)] > 0) by[limiter_name(Limiter(i))] = lb.by_limiter[std::size_t(i)];
    x["cycles_by_limiter"] = by;
    ls.push_back(std::move(x));
  }
  j["bound_layers"] = ls;
  if (per_op) {
    nlohmann::json os = nlohmann::json::array();
    for (const auto& ob : ops) {
      nlohmann::json x;
      x["op"] = ob.name;
      x["kind"] = op_kind_name(ob.kind);
      x["chips"] = ob.chips;
      x["bound_cycles"] = ob.cycles;
      x["limiter"] = limiter_name(ob.limiter);
      os.push_back(std::move(x));
    }
    j["bound_ops"] = os;
  }
  return j;
}

std::string Roofline::text() const {
  std::string o = fmt::format("bound: {:.0f} cycles per step = {:.2f} us per token = {:.0f} tokens/s per user (batch {}), "
                              "limited by {}\n  partition: {}\n  cycles by resource:",
                              cycles, seconds_per_token * 1e6, tokens_per_s_per_user, batch, limiter_name(limiter),
                              partition);
  for (int i = 0; i < kNumLimiters; ++i)
    if (by_limiter[std::size_t(i)] > 0)
      o += fmt::format(" {} {:.0f} ({:.0f}%)", limiter_name(Limiter(i)), by_limiter[std::size_t(i)],
                       100.0 * by_limiter[std::size_t(i)] / cycles);
  o += "\n  per layer (cycles, limiter):";
  // Identical layers print as one range.
  for (std::size_t i = 0; i < layers.size();) {
    std::size_t j = i;
    while (j + 1 < layers.size() && layers[j + 1].layer >= 0 && layers[i].layer >= 0 &&
           std::abs(layers[j + 1].cycles - layers[i].cycles) < 0.5 && layers[j + 1].limiter == layers[i].limiter)
      ++j;
    const auto& lb = layers[i];
    std::string who = lb.layer < 0 ? "head+io" : j > i ? fmt::format("L{}-{}", lb.layer, layers[j].layer) : fmt::format("L{}", lb.layer);
    o += fmt::format("\n    {:<10} {:>9.0f}  {}", who, lb.cycles, limiter_name(lb.limiter));
    i = j + 1;
  }
  return o + "\n";
}

}  // namespace lpu::compiler
