#include "lpu/compiler/tiling.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <numeric>
#include <string>

#include "lpu/common/errors.hpp"

namespace lpu::compiler::tiling {

// One kv head per K row and per V^T tile (tensor groups with a member per kv head).
void narrow_core(Geo& g) {
  g.kpr = 1;
  g.kvpt = 1;
  g.NKG = cdiv(g.KV, g.kpr);
  g.NVT = cdiv(g.KV, g.kvpt);
  g.Rkt = g.kpr * 2 * g.HV * g.E;
  g.Rvt = g.kvpt * g.hd;
}

Geo make_geo(const ModelShape& m, const ChipParams& p, isa::Dtype t, int context, int users, int batch) {
  Geo g;
  g.t = t;
  g.tn = std::string(isa::dtype_info(t).name);
  g.V = p.vector_bytes();
  g.E = g.V / 4;
  g.wb = isa::dtype_bytes(t);
  g.n = g.V / g.wb;
  g.ppv = g.n / g.E;
  g.d = m.d_model;
  g.H = m.heads;
  g.KV = m.kv_heads;
  g.hd = m.head_dim;
  g.G = m.heads / m.kv_heads;
  g.ffn = m.ffn;
  g.vocab = m.vocab;
  g.layers = m.layers;
  g.X = m.experts;
  g.XK = m.experts_per_token;
  if (g.X > g.E)
    throw Error(fmt::format("{} experts: the router's logits must fit one vector of {} f32 elements on this chip", g.X, g.E));
  g.NK = cdiv(g.d, g.n);
  g.NX = g.NK * g.ppv;
  g.HV = cdiv(g.hd / 2, g.E);
  const int foot = 2 * g.HV * g.E;  // one head's q/k footprint in the MXM input layout
  if (foot > g.n || g.hd > g.n)
    throw Error(fmt::format("head_dim {} is too large for {}-byte vectors of {} (a head must fit one vector)", g.hd, g.V, g.tn));
  g.kpr = std::min(g.KV, g.n / foot);
  g.NKG = cdiv(g.KV, g.kpr);
  g.kvpt = std::max(1, std::min(g.KV, g.n / g.hd));
  g.NVT = cdiv(g.KV, g.kvpt);
  g.hpv = std::max(1, g.n / g.hd);
  g.NO = cdiv(g.H, g.hpv);
  g.RQ = cdiv(std::int64_t(2) * g.H * g.HV * g.E, g.n);
  g.RK = cdiv(std::int64_t(2) * g.KV * g.HV * g.E, g.n);
  g.NQ = g.RQ * g.ppv;
  g.NKR = g.RK * g.ppv;
  g.RD = g.NK;
  g.RF = cdiv(g.ffn, g.n);
  g.RV = cdiv(g.vocab, g.n);
  g.NL = cdiv(g.vocab, g.E);
  g.C = context;
  g.nblk = cdiv(context, g.n);
  g.NS = g.nblk * g.ppv;
  g.nab = g.nblk;
  g.Rvt = g.kvpt * g.hd;
  g.Rkt = g.kpr * 2 * g.HV * g.E;
  g.NSC = 2 * g.HV + 2;
  g.U = users;
  g.B = batch;
  return g;
}

// KV cache in slice parts (docs/decode.md, "KV cache"): K: a dump row, then bps blocks of n rows,
// a block's rows in thirds over three slices; V^T: rows split over `jv` slices (prt each), each
// part prt dump rows, then bpsv blocks of prt rows. The V^T parts of a block share one register.
void set_kv_parts(Geo& g, int rows, int jv, bool kt) {
  g.JV = jv;
  g.prt = cdiv(g.Rvt, jv);
  g.kt = kt;
  if (kt) {
    g.JK = std::min(jv, g.Rkt);
    g.prk = cdiv(g.Rkt, g.JK);
    const int bpsk_max = (rows - g.prk) / g.prk;
    if (bpsk_max < 1) throw Error(fmt::format("a MEM slice of {} rows cannot hold one block of the KV cache", rows));
    g.mkt = cdiv(g.nblk, bpsk_max);
    g.bpsk = cdiv(g.nblk, g.mkt);
  }
  g.ka = cdiv(g.n, 3);
  const int bps_max = (rows - 1) / g.ka;
  const int bpsv_max = (rows - g.prt) / g.prt;
  if (bps_max < 1 || bpsv_max < 1) throw Error(fmt::format("a MEM slice of {} rows cannot hold one block of the KV cache", rows));
  g.mk = cdiv(g.nblk, bps_max);
  g.bps = cdiv(g.nblk, g.mk);
  g.mv = cdiv(g.nblk, bpsv_max);
  g.bpsv = cdiv(g.nblk, g.mv);
}

bool kv_registers_fit(const Geo& g) { return 1 + g.kregs() + g.mv <= 14; }
void check_kv_registers(const Geo& g) {
  if (!kv_registers_fit(g))
    throw Error(fmt::format("context {} needs {} KV-cache registers (the cache spans {} + {} slice parts); at most 13 are "
                            "available: use a shorter --context",
                            g.C, g.kregs() + g.mv, g.kregs(), g.mv));
}

// ---- the weight bus ------------------------------------------------------------------------

// Weight-bus lanes of each of `planes` planes sharing a hemisphere of `budget` MEM slices
// (docs/decode.md, "The weight path"): a plane reads row r of every tile from lane r mod lanes,
// one slice each, so a tile of n rows installs in ceil(n / lanes) cycles. At most `bus` lanes
// (mxm.install_rows_per_cycle) and the budget, shared alike; then, while slices remain, the
// slowest plane gains the lanes that save it a cycle per tile. lp30 (n 320, bus 80, 3 planes, a
// budget of 224 of 235 slices): 80, 80, 64 lanes, 4, 4 and 5 cycles per tile.
std::vector<int> lwm_side_lanes(int n, int bus, int budget, int planes) {
  const int per = std::min(bus, budget / planes);
  if (per < 1)
    throw Error(fmt::format("does not fit: the weight bus needs a MEM slice per lane; {} slices are left for {} planes", budget,
                            planes));
  auto lanes_for = [&](int c) { return cdiv(n, c); };
  std::vector<int> c(std::size_t(planes), cdiv(n, per));
  int used = planes * lanes_for(c[0]);
  for (;;) {
    std::size_t slow = 0;
    for (std::size_t i = 1; i < c.size(); ++i)
      if (c[i] > c[slow]) slow = i;
    if (c[slow] <= 1) break;
    const int extra = lanes_for(c[slow] - 1) - lanes_for(c[slow]);
    if (lanes_for(c[slow] - 1) > bus || used + extra > budget) break;
    used += extra;
    --c[slow];
  }
  std::vector<int> out;
  for (int k : c) out.push_back(lanes_for(k));
  return out;
}

// The MEM slices of each hemisphere left to the weight lanes when `other` slices (the KV cache
// and tables) and scratch are kept out of them. Scratch: a thirty-second of the chip's slices
// (14 on lp30), where the VXM's chains (the softmax of every head) read and write side by side:
// with too few they queue for the same write ports, with more the lanes lose a cycle per tile
// (a sixteenth cost Llama-3-8B at 1k context 5%). Half on each side when both sides have planes,
// else on the side without.
std::array<int, 2> lwm_budgets(const ChipParams& p, int other) {
  const int side = p.mem.slices_per_hemisphere;
  const int west = p.mxm.planes / 2, east = p.mxm.planes - west;
  other += 2 * side / 32;
  std::array<int, 2> b{0, 0};  // west, east
  if (west > 0 && east > 0) {
    b[0] = side - (other + 1) / 2;
    b[1] = side - other / 2;
  } else {
    b[west > 0 ? 0 : 1] = side - std::max(0, other - side);
  }
  return b;
}

// Weight tiles a chip's lanes hold, `other` slices kept out: a lane is one slice, or as many as
// the side's budget gives every lane alike when the bus is narrow (few lanes, each longer).
std::int64_t lwm_capacity_tiles(const ChipParams& p, int n, int other) {
  std::int64_t t = 0;
  const int west = p.mxm.planes / 2, east = p.mxm.planes - west;
  const auto b = lwm_budgets(p, other);
  for (int side = 0; side < 2; ++side) {
    const int k = side == 0 ? west : east;
    const int budget = b[std::size_t(side)];
    if (k <= 0 || budget < k) continue;
    const auto lanes = lwm_side_lanes(n, p.mxm.install_rows_per_cycle, budget, k);
    const int all = std::accumulate(lanes.begin(), lanes.end(), 0);
    const int per_lane = std::max(1, budget / all);
    for (int l : lanes) t += std::int64_t(per_lane) * (p.mem.rows / cdiv(n, l));
  }
  return t;
}

}  // namespace lpu::compiler::tiling
