// `lpu gen decoder`: statically scheduled decode programs for every chip of a pipeline, their
// placement, and the host-side data (weights in tile layout, tables, step inputs).
// Design in docs/decode.md.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <cmath>
#include <numeric>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <atomic>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>

#include "lpu/arch/layout.hpp"
#include "lpu/common/errors.hpp"
#include "lpu/common/parse.hpp"
#include "lpu/common/progress.hpp"
#include "lpu/isa/numerics.hpp"
#include "lpu/workload/decoder.hpp"
#include "lpu/compiler/sched.hpp"
#include "lpu/compiler/tiling.hpp"
#include "lpu/compiler/units.hpp"

namespace lpu::workload {

namespace sched = compiler::sched;
using sched::ChipSched;
using sched::Cycle;
using sched::LwPart;
using sched::MmGroup;
using sched::OpSpec;
using sched::Operand;
using sched::Out;
using sched::Rd;
using sched::UnitKind;
using sched::ValueP;

namespace gen {

// The tiling pass (lpu/compiler/tiling.hpp): Geo, CoreRange, the KV-cache parts, the weight bus's lanes.
using namespace compiler::tiling;
// The units pass (lpu/compiler/units.hpp): a layer's units of work, a stage's, a member's share.
using namespace compiler::units;

// ---- placement bookkeeping ---------------------------------------------------------------------

// Host data of a symbol: where each row comes from.
struct SymRows {
  std::string name;
  int slice = 0;
  std::string slice_name;
  std::int64_t row = 0, rows = 0;
  isa::Dtype dtype = isa::Dtype::I8;
  int elems = 0;  // per row
  std::string kind;  // weights, gain, const, iota, kcache, vcache
  // Weights: entries of tile rows.
  struct Entry {
    int mat;  // 0 q 1 k 2 v 3 o 4 gate 5 up 6 down 7 lm 8 router
    int layer, r, c, first, count;
    int expert = -1;  // gate, up, down of a mixture of experts
    int step = 1;     // rows first, first + step, ... (weight-bus lanes: every lanes-th row)
  };
  std::vector<Entry> entries;
  int layer = -1;   // gains
  int which = 0;    // gains: 0 attention, 1 ffn, 2 final
};

enum Mat : int { MQ = 0, MK, MV, MO, MG, MU, MD, MLM, MR };
const char* mat_name(int m) {
  static const char* n[] = {"wq", "wk", "wv", "wo", "w1", "w3", "w2", "output", "gate"};
  return n[m];
}

// Constants table rows.
enum ConstRow : int { C_INVD = 0, C_EPS, C_SCALE, C_NEGINF, C_ZERO, C_SLOT0 };
// A V writes each head's result in its place in the output projection's input vectors
// (docs/decode.md, "Heads in place"): one kv head per V^T tile, and whole vectors of query heads
// per kv head.
static bool direct_o(const Geo& g) { return g.kvpt == 1 && g.hpv >= 2 && g.G % g.hpv == 0; }
// Slot masks in the constants (C_SLOT0 + s: lanes s hd .. (s + 1) hd): a V^T tile's slots, and
// the heads' places in a Wo input vector.
static int slot_masks(const Geo& g) { return std::max(g.kvpt, direct_o(g) ? g.hpv : 1); }

// ---- tensor groups ---------------------------------------------------------------------------

// A chip's place in a tensor group (docs/decode.md, "Partitions"); T = 1: the pipeline.
struct Shard {
  int T = 1, me = 0;
  int in_leader = 0;        // the member that receives the stage's inputs (RECV or DMAIN)
  int peer_links = 0;       // links to each other member
  std::int64_t peer_ser = 1;    // their serialisation
};

// One vector of a group exchange: SEND (peer = destination) or RECV (peer = source); e: the
// exchange's number in the stage, i: the vector's number in the sender's list; t: issue cycle.
struct XVec {
  int peer = 0, e = 0, i = 0;
  std::int64_t t = 0;
};

// ---- the per-chip builder -------------------------------------------------------------------

struct ChipOut {
  std::string text;                 // program with @T0 times and @LOk@ / @LIk@ link slots
  std::vector<Cycle> send;          // SEND issue per output vector
  std::int64_t cycles = 0;
  std::int64_t tiles = 0;
  std::vector<SymRows> syms;
  int dma_in = 0, dma_out = 0;
  int logits_first = 0;
  // Per received vector: the latest cycle its RECV could issue without delaying its first use.
  std::vector<Cycle> slack;
};

class Builder {
 public:
  Builder(const Geo& g, const ChipParams& p, const ModelShape& m, std::vector<Unit> units, bool first, bool dma_in,
          std::vector<Cycle> arrivals, int in_links, Live in_live, Live out_live, int out_links, Cycle link_ser, Shard shard = {})
      : g_(g), p_(p), m_(m), units_(std::move(units)), layer0_(units_.empty() ? 0 : units_[0].layer), first_(first), dma_in_(dma_in),
        arr_(std::move(arrivals)),
        in_links_(in_links), in_live_(in_live), out_live_(out_live), out_links_(out_links), S_(p, has_slots(units_)), sh_(std::move(shard)) {
    for (int l = 0; l < out_links_; ++l) S_.set_link_ser(l, link_ser);
    for (int l = 0; l < (sh_.T - 1) * sh_.peer_links; ++l) S_.set_link_ser(out_links_ + l, sh_.peer_ser);
  }

  static bool has_slots(const std::vector<Unit>& us) {
    for (const auto& u : us)
      if (u.slot >= 0) return true;
    return false;
  }

  ChipOut build() {
    begin();
    while (step()) recv({});  // (tensor groups alone, for a first estimate: exchanges take no time)
    return finish();
  }

  // Stepwise (the members of a tensor group in step): begin(); step() schedules up to and
  // including the SENDs of the next exchange and returns true, or runs to the end and returns
  // false; after true, pending() lists what the member receives in that exchange and recv()
  // schedules its RECVs with their arrival cycles; finish() makes the program.
  void begin() {
    plan_memory();
    inputs();
  }
  bool step() {
    while (ui_ < units_.size()) {
      const Unit& u = units_[ui_++];
      if (u.k == Unit::Xchg) {
        xchg_send(u);
        pending_ = u;
        return true;
      }
      unit(u);
    }
    return false;
  }
  // The vectors of the pending exchange it receives: (source member, exchange, vector).
  std::vector<XVec> pending() {
    std::vector<XVec> r;
    for (int d = 1; d < sh_.T; ++d) {
      const int src = (sh_.me + d) % sh_.T;
      const auto n = xvecs(pending_, src).size() * (a_xchg(pending_) && dual_a(sh_.me) ? 2 : 1);
      for (std::size_t i = 0; i < n; ++i) r.push_back({src, xe_ - 1, int(i), 0});
    }
    return r;
  }
  // Arrivals: per vector of pending(), in its order (missing: 0).
  void recv(const std::vector<Cycle>& arrivals) { xchg_recv(pending_, arrivals); }
  const std::vector<XVec>& sent() const { return xsend_; }

  ChipOut finish() {
    outputs();
    ChipOut o;
    o.text = S_.emit(header() + S_.debug_symbols());
    o.send = sends_;
    o.cycles = S_.last_cycle() + 1 + (p_.superlanes - 1) * p_.icu.superlane_stagger;
    o.tiles = 0;
    for (const auto& t : tiles_) o.tiles += std::int64_t(t.size());  // weight tiles (attention's K, V^T tiles not counted)
    for (auto& sr : syms_) sr.slice_name = S_.slices_const()[std::size_t(sr.slice)].name;
    o.syms = syms_;
    o.dma_in = dma_in_count_;
    o.dma_out = dma_out_count_;
    o.logits_first = logits_first_;
    for (const auto& rv : recvd_) {
      const auto& fr = rv.v->first_read;
      const Cycle first = fr.empty() || fr[std::size_t(rv.idx)] >= sched::kNever ? S_.last_cycle() : fr[std::size_t(rv.idx)];
      o.slack.push_back(rv.recv + first - rv.ready);
    }
    return o;
  }

 private:
  // ---- memory plan: weight lanes, fixed tables, KV cache, scratch ----
  struct TilePart {
    ValueP src;
    int first = 0, count = 0, srow = 0, queue = 0;
    bool lwm = false;  // over the weight bus: staging rows srow, srow + rstep, ... (docs/timing.md rule 15a)
    int rstep = 1, wrap = 0;
  };
  struct TileRef {
    int mat, layer, r, c;
    std::vector<TilePart> parts;
    int expert = -1;
    int slot = -1;        // sparse routing: the slot whose expert it loads (GATHER)
    bool gather = false;  // its rows are stored for every expert, expert e at e XS rows further
  };

  void enumerate_tiles(std::vector<std::vector<TileRef>>& per_plane) {
    const int P = int(S_.planes().size());
    int rt = 0;
    std::map<std::tuple<int, int, int>, int> gather_plane;  // sparse: a row tile's plane, the same for every slot
    // The weight bus (LWM lanes): a row tile to the plane that finishes it first (planes install a
    // tile in ceil(n / lanes) cycles, not all alike); else round robin.
    std::vector<std::int64_t> load(std::size_t(P), 0);
    // The down projection of a tensor group's member reads vectors that arrive over links (a):
    // its row tiles go to the planes of the side where a is kept (xside), as many as that side
    // has planes, the rest on the other side.
    const bool sided = !edge_candidates().empty();
    std::map<std::pair<int, int>, int> sided_count;  // (matrix, layer): row tiles placed
    auto pick_plane = [&](int K, int mat, int layer) {
      if (lwm_lanes_.empty()) return rt % P;
      int side = -1;
      if (sided && mat == MD) {
        const int s = xside();
        int n = 0;
        for (int q = 0; q < P; ++q) n += plane_side(q) == s;
        side = sided_count[{mat, layer}]++ < n ? s : 1 - s;  // (more: the other side, on planes of their own)
      }
      int best = -1;
      for (int q = 0; q < P; ++q) {
        if (side >= 0 && plane_side(q) != side) continue;
        if (best < 0 || (load[std::size_t(q)] + K) * lwm_cycles(q) < (load[std::size_t(best)] + K) * lwm_cycles(best)) best = q;
      }
      load[std::size_t(best)] += K;
      return best;
    };
    auto rowtile = [&](int mat, int layer, int r, int K, int expert = -1, int slot = -1) {
      int pl = slot >= 0 ? rt % P : pick_plane(K, mat, layer);
      if (slot >= 0) {
        auto [it, fresh] = gather_plane.emplace(std::make_tuple(mat, layer, r), pl);
        pl = it->second;
        if (fresh) ++rt;
      } else {
        ++rt;
      }
      auto& v = per_plane[std::size_t(pl)];
      for (int c = 0; c < K; ++c) v.push_back({mat, layer, r, c, {}, expert, slot, slot >= 0});
      rt_plane_.push_back(pl);
    };
    for (const auto& u : units_) {
      switch (u.k) {
        case Unit::Qkv:
          if (u.idx < g_.RQ) rowtile(MQ, u.layer, u.idx, g_.NK);
          else if (u.idx < g_.RQ + g_.RK) rowtile(MK, u.layer, u.idx - g_.RQ, g_.NK);
          else rowtile(MV, u.layer, u.idx - g_.RQ - g_.RK, g_.NK);
          break;
        case Unit::Core:
        case Unit::Xchg: break;
        case Unit::Wo: rowtile(MO, u.layer, u.idx, g_.NO); break;
        case Unit::Chunk:
          rowtile(MG, u.layer, u.idx, g_.NK, u.expert, u.slot);
          rowtile(MU, u.layer, u.idx, g_.NK, u.expert, u.slot);
          break;
        case Unit::Down: rowtile(MD, u.layer, u.idx, g_.RF, u.expert, u.slot); break;
        case Unit::Head: rowtile(MLM, 0, u.idx, g_.NK); break;
        case Unit::Router: rowtile(MR, u.layer, 0, g_.NK); break;
      }
    }
  }

  int fixed_rows(int slice, std::int64_t rows, const std::string& what) {
    // First fit in slice `slice` (or anywhere when -1) of the non-weight slices.
    auto& sl = S_.slices();
    for (int pass = 0; pass < 2; ++pass)
      for (int s : inner_) {
        if (slice >= 0 && s != slice) continue;
        if (pass == 0 && avoid_.count(s)) continue;
        auto& top = top_[s];
        if (top + rows <= p_.mem.rows) {
          const int r = int(top);
          top += rows;
          S_.reserve_rows(s, r, rows);
          (void)sl;
          inner_slice_of_last_ = s;
          return r;
        }
      }
    throw Error(fmt::format("does not fit: no room for {} ({} rows) in the SRAM left after the weights", what, rows));
  }
  // side: -1 any, 0 west, 1 east.
  int fixed_slice_for(std::int64_t rows, const std::set<int>& avoid, int side = -1) {
    auto on = [&](int s) { return side < 0 || (S_.slices()[std::size_t(s)].name[4] == 'e') == bool(side); };
    for (int s : inner_)
      if (on(s) && !avoid.count(s) && top_[s] + rows <= p_.mem.rows) return s;
    for (int s : inner_)
      if (on(s) && top_[s] + rows <= p_.mem.rows) return s;
    throw Error(fmt::format("does not fit: no room for a KV-cache part of {} rows ({} user(s) at context {}) in the SRAM left "
                            "after the weights: use fewer --users, a shorter --context or more chips",
                            rows, g_.U, g_.C));
  }

  // Weight-bus lanes (docs/decode.md, "The weight path"): plane p reads its tiles from lanes
  // lwm_lanes_[p] slices of its own hemisphere, row r of every tile in lane r mod lanes, so that a
  // tile installs in ceil(n / lanes) cycles, one LWM per lane. Lanes per plane: at most the bus
  // width (mxm.install_rows_per_cycle) and the hemisphere's slices (a twentieth kept for tables,
  // the KV cache and scratch), shared by its planes; then, while slices remain, the plane with the
  // slowest install gains lanes until it saves a cycle per tile (e.g. lp30: 80, 80 and 64 lanes
  // per hemisphere, 4, 4 and 5 cycles per 320-row tile).
  void choose_lwm_lanes() {
    auto& planes = S_.planes();
    const int P = int(planes.size());
    lwm_lanes_.assign(std::size_t(P), 0);
    const auto budget = lwm_budgets(p_, other_slices());
    for (int east = 0; east < 2; ++east) {
      std::vector<int> pls;
      for (int pl = 0; pl < P; ++pl)
        if ((planes[std::size_t(pl)].position > S_.vxm_position()) == bool(east)) pls.push_back(pl);
      if (pls.empty()) continue;
      const auto lanes = lwm_side_lanes(g_.n, p_.mxm.install_rows_per_cycle, budget[std::size_t(east)], int(pls.size()));
      for (std::size_t i = 0; i < pls.size(); ++i) lwm_lanes_[std::size_t(pls[i])] = lanes[i];
    }
  }
  // Slices the KV cache needs (its parts packed, a part never straddling two slices), plus two for
  // the tables: kept out of the weight lanes.
  int other_slices() const {
    const std::int64_t rows = p_.mem.rows;
    const std::int64_t rows_k = g_.kt ? g_.prk + std::int64_t(g_.bpsk) * g_.prk : 1 + std::int64_t(g_.bps) * g_.kaj(0),
                       rows_v = g_.prt + std::int64_t(g_.bpsv) * g_.prt;
    std::int64_t kp = 0, vp = 0;
    for (const auto& u : units_) {
      if (u.k != Unit::Core) continue;
      const CoreRange cr(g_, u.first, u.count);
      if (g_.kt) {
        for (int gm = cr.gm0; gm < cr.gm1; ++gm) kp += std::int64_t(g_.U) * cdiv(g_.rkt(gm), g_.prk) * g_.mkt;
      } else {
        kp += std::int64_t(g_.U) * (cr.gm1 - cr.gm0) * 3 * g_.mk;
      }
      for (int T = cr.t0; T < cr.t1; ++T)
        for (int j = 0; j < g_.JV; ++j)
          if (std::min(g_.prt, g_.rvt(T) - j * g_.prt) > 0) vp += std::int64_t(g_.U) * g_.mv;
    }
    auto slices = [&](std::int64_t parts, std::int64_t r) {
      const std::int64_t per = std::max<std::int64_t>(1, rows / r);
      return (parts + per - 1) / per;
    };
    // (the parts of a tile take distinct slices, spilling into the scratch slices)
    return int(slices(kp, rows_k) + slices(vp, rows_v)) + 2;
  }
  int lwm_cycles(int pl) const { return cdiv(g_.n, lwm_lanes_[std::size_t(pl)]); }

  // ---- exchanges of products ----
  // A member of a tensor group sends the output projection's and the FFN down projection's
  // products (y) rather than the residual sums (x + y): y leaves the plane for a slice beside the
  // SXM and goes out at once, where x + y would first cross the chip to the VXM and back (two
  // hemisphere crossings, about 2 x 235 cycles on lp30); every member adds every y to its x.
  // Same arithmetic (one f32 ADD per element, the same operands), so the same bits.
  static constexpr int kEdgeSlices = 2;       // per hemisphere
  static constexpr int kEdgeMinSlices = 16;   // chips with at least this many slices per hemisphere
  bool product_xchg(int kind) const {
    return sh_.T > 1 && g_.X == 0 && (kind == int(Unit::Wo) || kind == int(Unit::Down));
  }
  const std::set<int>& edge_candidates() {
    if (!edge_cand_) edge_cand_ = find_edge_candidates();
    return *edge_cand_;
  }
  std::set<int> find_edge_candidates() {
    std::set<int> r;
    if (!product_xchg(Unit::Down) || p_.mem.slices_per_hemisphere < kEdgeMinSlices) return r;  // (dense, T >= 2)
    const auto& sl = S_.slices();
    for (char side : {'w', 'e'}) {
      std::vector<int> v;
      for (std::size_t s = 0; s < sl.size(); ++s)
        if (sl[s].name[4] == side) v.push_back(int(s));
      std::stable_sort(v.begin(), v.end(), [&](int a, int b) {
        return std::abs(sl[std::size_t(a)].position - S_.vxm_position()) > std::abs(sl[std::size_t(b)].position - S_.vxm_position());
      });
      for (std::size_t k = 0; k < v.size() && k < std::size_t(kEdgeSlices); ++k) r.insert(v[k]);
    }
    return r;
  }
  int plane_side(int pl) { return S_.planes()[std::size_t(pl)].position > S_.vxm_position() ? 1 : 0; }
  // The side whose edge slices keep the vectors the down projection reads (a), which arrive over
  // links. (The output projection's o stays by the VXM: the attention's heads are put together
  // there, and measured, o at the edge costs more there than it saves.)
  static int xside() { return 1; }
  // The value of those vectors: in the edge slices of its side when there are some.
  ValueP xbuf(const std::string& name, int count, Cycle t_lb) {
    const auto& side = edge_[std::size_t(xside())];
    return side.empty() ? S_.alloc(name, count, t_lb) : S_.alloc_in(name, count, t_lb, side);
  }
  // A member with more down-projection row tiles than the east side has planes runs the rest on
  // the west planes: they read a second copy of a, kept at the west edge, which its peers send it
  // too (after the first) and which it receives on the west SXM, rather than a crossing the chip.
  // (Stages of tensor groups hold whole layers, so a member computes a's own share itself before
  // its down projection; a stage that began inside the FFN would need a_west among its inputs.)
  bool dual_a(int m) {
    if (!product_xchg(Unit::Down) || edge_candidates().empty()) return false;
    int east = 0;
    for (int q = 0; q < int(S_.planes().size()); ++q) east += plane_side(q) == xside();
    const auto [lo, hi] = own_range(0, g_.RD, sh_.T, m);
    return hi - lo > east;
  }
  ValueP a_west() {
    if (!a_w_) a_w_ = edge_[0].empty() ? S_.alloc("aw", g_.B * g_.RF, 0) : S_.alloc_in("aw", g_.B * g_.RF, 0, edge_[0]);
    return a_w_;
  }
  // The exchange of a (the SwiGLU output) of a dense layer.
  static bool a_xchg(const Unit& u) { return u.idx == Unit::Chunk && u.expert < 0 && u.slot < 0; }
  // A value for the products of the row tile about to be scheduled: beside its plane.
  ValueP product_buf(const std::string& name, int count, Cycle t_lb) {
    const int pl = rt_plane_[std::size_t(rt_next_)];
    // (the inner edge slices first: the outermost hold a, which the planes read meanwhile; row
    // tiles in turn start from the next one, so that their SENDs read from several ports)
    const auto& side = edge_[std::size_t(plane_side(pl))];
    if (side.empty()) return S_.alloc(name, count, t_lb);
    std::vector<int> pool(side.rbegin(), side.rend());
    std::rotate(pool.begin(), pool.begin() + std::ptrdiff_t(xturn_++ % pool.size()), pool.end());
    return S_.alloc_in(name, count, t_lb, pool);
  }

  // The weight tiles in lanes over the weight bus (LWM; see choose_lwm_lanes). A lane is one
  // slice, or several when its rows exceed one (a tile's rows of a lane never straddle two); the
  // rows above the weights in lane slices are left to the KV cache and tables when the other
  // slices are full.
  void place_lwm(std::vector<std::vector<TileRef>>& per_plane) {
    auto& planes = S_.planes();
    auto& sl = S_.slices();
    const int P = int(planes.size());
    const std::int64_t rows = p_.mem.rows;
    std::vector<int> order(sl.size());
    for (std::size_t i = 0; i < sl.size(); ++i) order[i] = int(sl.size() - 1 - i);  // outer first
    // The outermost slices of each hemisphere, beside the SXM and the planes, hold the products a
    // tensor group exchanges (product_xchg): the weights take them last (the weight bus does
    // not care where a lane sits; streams do).
    const std::set<int>& edge = edge_candidates();
    std::stable_partition(order.begin(), order.end(), [&](int s) { return !edge.count(s); });
    std::set<int> used;
    std::vector<std::int64_t> fill_of(sl.size(), 0);
    for (int pl = 0; pl < P; ++pl) {
      const int S = lwm_lanes_[std::size_t(pl)];
      const int rmax = cdiv(g_.n, S);  // lane 0's rows of a tile
      const auto nt = std::int64_t(per_plane[std::size_t(pl)].size());
      if (nt == 0) continue;
      const std::int64_t per_slice = rows / rmax;
      if (per_slice < 1) throw Error("does not fit: a MEM slice holds no tile part of a weight lane");
      const int k = int((nt + per_slice - 1) / per_slice);  // slices per lane
      const bool east = planes[std::size_t(pl)].position > S_.vxm_position();
      std::vector<std::vector<int>> lane(static_cast<std::size_t>(S));
      for (int j = 0; j < S; ++j)
        for (int i = 0; i < k; ++i) {
          int pick = -1;
          for (int s : order)
            if (!used.count(s) && (sl[std::size_t(s)].name[4] == 'e') == east) {
              pick = s;
              break;
            }
          if (pick < 0)
            throw Error(fmt::format("does not fit: plane {} needs {} weight-bus lanes of {} slices in its hemisphere", pl, S, k));
          used.insert(pick);
          lane[std::size_t(j)].push_back(pick);
        }
      const auto nS = static_cast<std::size_t>(S);
      std::vector<std::int64_t> f(nS, 0);
      std::vector<std::size_t> cur(nS, 0), sym(nS, SIZE_MAX);
      std::vector<ValueP> val(nS);
      for (auto& t : per_plane[std::size_t(pl)]) {
        for (int j = 0; j < S && j < g_.n; ++j) {
          const int cnt = cdiv(g_.n - j, S);
          const auto J = std::size_t(j);
          if (f[J] + cnt > rows) {
            ++cur[J];
            f[J] = 0;
            sym[J] = SIZE_MAX;
          }
          if (cur[J] >= lane[J].size()) throw Error("does not fit: weight lanes overflow");
          const int s = lane[J][cur[J]];
          if (sym[J] == SIZE_MAX) {
            SymRows sr;
            sr.name = fmt::format("W{}{}l{}_{}", sl[std::size_t(s)].name[4], pl, j, cur[J]);
            sr.slice = s;
            sr.row = 0;
            sr.dtype = g_.t;
            sr.elems = g_.n;
            sr.kind = "weights";
            sym[J] = syms_.size();
            val[J] = S_.fixed(sr.name, s, 0, int(rows), 0);
            syms_.push_back(sr);
          }
          auto& sr = syms_[sym[J]];
          sr.entries.push_back({t.mat, t.layer - layer0_, t.r, t.c, j, cnt, t.expert, S});
          TilePart tp;
          tp.src = val[J];
          tp.first = int(f[J]);
          tp.count = cnt;
          tp.srow = j;
          tp.queue = -1;
          tp.lwm = true;
          tp.rstep = S;
          tp.wrap = g_.n;
          t.parts.push_back(tp);
          f[J] += cnt;
          sr.rows = f[J];
          fill_of[std::size_t(s)] = f[J];
        }
      }
    }
    for (int s : order)  // (outermost first)
      if (edge.count(s) && !used.count(s)) edge_[sl[std::size_t(s)].name[4] == 'e' ? 1 : 0].push_back(s);
    // Tables, KV cache and scratch: the other slices first, then the rows above lane weights.
    for (std::size_t s = 0; s < sl.size(); ++s)
      if (!used.count(int(s)) && !edge.count(int(s))) inner_.push_back(int(s));
    std::sort(inner_.begin(), inner_.end());
    scratch_slices_ = inner_;
    for (int s : inner_) top_[s] = 0;
    for (std::size_t s = 0; s < sl.size(); ++s)
      if (used.count(int(s)) && fill_of[s] < rows) {
        inner_.push_back(int(s));
        top_[int(s)] = fill_of[s];
      }
    // Last of all, the edge slices (never scratch): tables and the KV cache that fit nowhere else.
    for (const auto& side : edge_)
      for (int s : side) {
        inner_.push_back(s);
        top_[s] = 0;
      }
  }

  void plan_memory() {
    const int P = int(S_.planes().size());
    std::vector<std::vector<TileRef>> per_plane(static_cast<std::size_t>(P));
    if (g_.lwm) choose_lwm_lanes();
    enumerate_tiles(per_plane);
    if (g_.lwm) {
      place_lwm(per_plane);
      for (auto& sr : syms_) S_.reserve_rows(sr.slice, sr.row, sr.rows);
      for (int pl = 0; pl < P; ++pl) {
        tiles_.push_back(std::move(per_plane[std::size_t(pl)]));
        tile_cursor_.push_back(0);
      }
    } else {
      place_lw(per_plane);
    }
    plan_tables();
  }

  // The weight tiles in lanes of the plane queues (LW over streams, docs/decode.md).
  void place_lw(std::vector<std::vector<TileRef>>& per_plane) {
    const int P = int(S_.planes().size());
    // Lanes: every plane queue streams one part of each of its plane's tiles.
    auto& planes = S_.planes();
    const int nq = int(planes[0].qids.size());
    const int a = cdiv(g_.n, nq);
    // Slices each lane needs: its parts (at most `a` rows each) never straddle two slices.
    const int rows = p_.mem.rows;
    // Sparse routing: tiles stored for every expert (GATHERed) take slices of their own, cut into
    // `experts` regions of XS rows (a multiple of a part), expert e's parts in region e at the same
    // offsets; the rows above the regions (the slice's tail) take dense parts.
    std::vector<std::int64_t> lane_need(std::size_t(P * nq), 0), lane_dense(std::size_t(P * nq), 0);
    const std::int64_t tail_row = std::int64_t(g_.X) * g_.XS;
    for (int pl = 0; pl < P; ++pl)
      for (int j = 0; j < nq; ++j) {
        const int cnt = std::max(0, std::min(a, g_.n - j * a));
        if (cnt == 0) continue;
        std::int64_t dense = 0, stored = 0;
        for (const auto& t : per_plane[std::size_t(pl)]) {
          if (!t.gather) ++dense;
          else if (t.slot == 0) ++stored;
        }
        const auto L = std::size_t(pl * nq + j);
        std::int64_t gs = 0;
        if (stored) {
          gs = (stored * cnt + g_.XS - 1) / g_.XS;
          dense = std::max<std::int64_t>(0, dense - gs * ((rows - tail_row) / cnt));
        }
        lane_dense[L] = (dense + rows / cnt - 1) / (rows / cnt);
        lane_need[L] = lane_dense[L] + gs;
      }
    // Slices for the lanes: outermost first, on the plane's side first.
    auto& sl = S_.slices();
    std::vector<int> order(sl.size());
    for (std::size_t i = 0; i < sl.size(); ++i) order[i] = int(sl.size() - 1 - i);  // outer first
    std::set<int> used;
    std::vector<std::vector<int>> lane_slices(std::size_t(P * nq)), gather_slices(std::size_t(P * nq));
    // Expert-region slices first (outermost), so that the slices upstream of them, where the
    // GATHER indexes are read, are dense weights or tables.
    for (int phase = 0; phase < 2; ++phase) {
      bool progress = true;
      while (progress) {
        progress = false;
        for (int pl = 0; pl < P; ++pl)
          for (int j = 0; j < nq; ++j) {
            const auto L = std::size_t(pl * nq + j);
            const std::int64_t want = phase == 0 ? lane_need[L] - lane_dense[L] : lane_dense[L];
            auto& got = phase == 0 ? gather_slices[L] : lane_slices[L];
            if (std::int64_t(got.size()) >= want) continue;
            const bool east = planes[std::size_t(pl)].position > S_.vxm_position();
            int pick = -1;
            for (int pass = 0; pass < 2 && pick < 0; ++pass)
              for (int s : order) {
                if (used.count(s)) continue;
                const bool s_east = sl[std::size_t(s)].name[4] == 'e';
                if (pass == 0 && s_east != east) continue;
                pick = s;
                break;
              }
            if (pick < 0) throw Error("does not fit: the weights need more MEM slices than the chip has");
            used.insert(pick);
            got.push_back(pick);
            if (phase == 0) gather_slices_.insert(pick);
            progress = true;
          }
      }
    }
    for (std::size_t L = 0; L < lane_slices.size(); ++L)
      lane_slices[L].insert(lane_slices[L].end(), gather_slices[L].begin(), gather_slices[L].end());
    for (std::size_t s = 0; s < sl.size(); ++s)
      if (!used.count(int(s))) inner_.push_back(int(s));
    // inner_ is in VXM-outward order already (slices() order).
    std::sort(inner_.begin(), inner_.end());
    for (int s : inner_) top_[s] = 0;
    // Assign tile parts to lane slices; one symbol per used part of a lane slice. Dense parts fill
    // the lane's dense slices, then the tails of its expert-region slices; stored expert parts
    // fill region 0 of the expert-region slices (sparse routing).
    struct Bin {
      std::size_t k;  // the lane's slice
      std::int64_t row, end;
    };
    std::vector<std::vector<Bin>> dbins(std::size_t(P * nq));
    for (std::size_t L = 0; L < lane_slices.size(); ++L)
      for (std::size_t k = 0; k < lane_slices[L].size(); ++k)
        if (std::int64_t(k) < lane_dense[L]) dbins[L].push_back({k, 0, rows});
    for (std::size_t L = 0; L < lane_slices.size(); ++L)
      for (std::size_t k = std::size_t(lane_dense[L]); k < lane_slices[L].size(); ++k)
        if (tail_row < rows) dbins[L].push_back({k, tail_row, rows});
    std::vector<std::size_t> cur(std::size_t(P * nq), 0), gcur(std::size_t(P * nq), 0);
    std::vector<std::int64_t> fill(std::size_t(P * nq), 0), gfill(std::size_t(P * nq), 0);
    for (std::size_t L = 0; L < gcur.size(); ++L) gcur[L] = std::size_t(lane_dense[L]);
    std::map<std::tuple<std::size_t, std::size_t, bool>, std::pair<std::size_t, ValueP>> symidx;  // (lane, slice k, gather)
    std::map<std::tuple<int, int, int, int>, std::vector<TilePart>> stored;  // (mat, layer, r, c) -> parts
    auto lane_sym = [&](std::size_t L, std::size_t k, std::int64_t row, int pl, int j, bool gather) -> auto& {
      auto key = std::make_tuple(L, k, gather);
      if (!symidx.count(key)) {
        if (k >= lane_slices[L].size()) throw Error("does not fit: weight lanes overflow");
        const int s = lane_slices[L][k];
        SymRows sr;
        sr.name = fmt::format("{}{}{}q{}_{}", gather ? 'X' : 'W', sl[std::size_t(s)].name[4], pl, j, k);
        sr.slice = s;
        sr.row = row;
        sr.dtype = g_.t;
        sr.elems = g_.n;
        sr.kind = "weights";
        symidx[key] = {syms_.size(), S_.fixed(sr.name, s, row, int(rows - row), 0)};
        syms_.push_back(sr);
      }
      return symidx[key];
    };
    for (int pl = 0; pl < P; ++pl) {
      for (auto& t : per_plane[std::size_t(pl)]) {
        if (t.gather && t.slot > 0) {  // the same stored rows as slot 0's use of the tile
          t.parts = stored.at(std::make_tuple(t.mat, t.layer, t.r, t.c));
          continue;
        }
        for (int j = 0; j < nq; ++j) {
          const int cnt = std::max(0, std::min(a, g_.n - j * a));
          if (cnt == 0) continue;
          const auto L = std::size_t(pl * nq + j);
          std::size_t k = 0;
          std::int64_t row0 = 0;
          auto& f = t.gather ? gfill[L] : fill[L];
          if (t.gather) {
            // Region 0 of the lane's expert-region slices, continued in the next slice when full.
            int done = 0;
            while (done < cnt) {
              if (f >= g_.XS) {
                gcur[L]++;
                f = 0;
              }
              const int take = int(std::min<std::int64_t>(cnt - done, g_.XS - f));
              auto& [gi, gval] = lane_sym(L, gcur[L], 0, pl, j, true);
              auto& gsr = syms_[gi];
              gsr.entries.push_back({t.mat, t.layer - layer0_, t.r, t.c, j * a + done, take, t.expert});
              TilePart tp;
              tp.src = gval;
              tp.first = int(f);
              tp.count = take;
              tp.srow = j * a + done;
              tp.queue = j;
              t.parts.push_back(tp);
              f += take;
              done += take;
              gsr.rows = f;
            }
            continue;
          } else {
            while (cur[L] < dbins[L].size() && dbins[L][cur[L]].row + f + cnt > dbins[L][cur[L]].end) {
              cur[L]++;
              f = 0;
            }
            if (cur[L] >= dbins[L].size()) throw Error("does not fit: weight lanes overflow");
            k = dbins[L][cur[L]].k;
            row0 = dbins[L][cur[L]].row;
          }
          auto& [si, val] = lane_sym(L, k, row0, pl, j, t.gather);
          auto& sr = syms_[si];
          sr.entries.push_back({t.mat, t.layer - layer0_, t.r, t.c, j * a, cnt, t.expert});
          TilePart tp;
          tp.src = val;
          tp.first = int(f);
          tp.count = cnt;
          tp.srow = j * a;
          tp.queue = j;
          t.parts.push_back(tp);
          f += cnt;
          sr.rows = f;
        }
        if (t.gather) stored[std::make_tuple(t.mat, t.layer, t.r, t.c)] = t.parts;
      }
    }
    // Expert regions: region e holds expert e's rows of the same tile parts, zero rows between.
    for (auto& sr : syms_) {
      if (sr.kind != "weights" || sr.name[0] != 'X') continue;
      std::vector<SymRows::Entry> all;
      for (int e = 0; e < g_.X; ++e) {
        for (auto en : sr.entries) {
          en.expert = e;
          all.push_back(en);
        }
        if (e + 1 < g_.X && g_.XS > sr.rows) all.push_back({-1, 0, 0, 0, 0, int(g_.XS - sr.rows), -1});
      }
      sr.rows = std::int64_t(g_.X - 1) * g_.XS + sr.rows;
      sr.entries = std::move(all);
    }
    for (auto& sr : syms_) S_.reserve_rows(sr.slice, sr.row, sr.rows);
    for (int pl = 0; pl < P; ++pl) {
      tiles_.push_back(std::move(per_plane[std::size_t(pl)]));
      tile_cursor_.push_back(0);
    }
    scratch_slices_ = inner_;
  }

  // Fixed tables: constants, iota (replicated per head of a group), gains; the KV cache; scratch.
  void plan_tables() {
    bool attn = false, ffn = false, head = false, moe = false;
    std::set<int> gain_layers_a, gain_layers_f;
    std::map<int, CoreRange> core_layers;
    for (const auto& u : units_) {
      if (u.k == Unit::Core) {
        attn = true;
        core_layers.emplace(u.layer, CoreRange(g_, u.first, u.count));
      }
      if (u.k == Unit::Qkv && (u.idx == 0 || !in_live_.h)) gain_layers_a.insert(u.layer);
      if (u.k == Unit::Chunk && u.idx == 0) gain_layers_f.insert(u.layer);
      if (u.k == Unit::Chunk && u.idx > 0 && !in_live_.h2) gain_layers_f.insert(u.layer);
      if (u.k == Unit::Chunk || u.k == Unit::Down) ffn = true;
      if (u.k == Unit::Head) head = true;
      if (u.k == Unit::Router) gain_layers_f.insert(u.layer);
      if (u.k == Unit::Router || (u.k == Unit::Xchg && u.idx == Unit::Router)) moe = true;
    }
    (void)ffn;
    const int nconst = C_SLOT0 + slot_masks(g_);
    {
      const int r = fixed_rows(-1, nconst, "constants");
      add_table("CONSTS", inner_slice_of_last_, r, nconst, isa::Dtype::I8, g_.V, "const");
      const_ = S_.fixed("CONSTS", inner_slice_of_last_, r, nconst);
    }
    if (moe) {
      // Mixture of experts: the lane numbers (f32) and the mask of lanes that are experts (i32).
      const int r = fixed_rows(-1, 2, "the experts table");
      add_table("MOE", inner_slice_of_last_, r, 2, isa::Dtype::I32, g_.E, "moe");
      moe_ = S_.fixed("MOE", inner_slice_of_last_, r, 2);
    }
    if (attn) {
      // A copy per head of a kv head, each in a slice of its own: the heads' masks (and so their
      // softmax chains) are computed side by side, not one after another on one read port.
      std::set<int> used;
      for (int hh = 0; hh < g_.G; ++hh) {
        const int sl = fixed_slice_for(g_.NS, used);
        const int r = fixed_rows(sl, g_.NS, "iota");
        used.insert(sl);
        const std::string nm = g_.G == 1 ? "IOTA" : fmt::format("IOTA{}", hh);
        add_table(nm, sl, r, g_.NS, isa::Dtype::I32, g_.E, "iota");
        iota_.push_back(S_.fixed(nm, sl, r, g_.NS));
      }
    }
    auto gain = [&](int layer, int which) {
      const int r = fixed_rows(-1, g_.NX, "norm gains");
      const std::string nm = which == 2 ? "G_FINAL" : fmt::format("G_{}{}", which == 0 ? "ATTN" : "FFN", layer - layer0_);
      add_table(nm, inner_slice_of_last_, r, g_.NX, isa::Dtype::F32, g_.E, "gain");
      syms_.back().layer = layer - layer0_;
      syms_.back().which = which;
      return S_.fixed(nm, inner_slice_of_last_, r, g_.NX);
    };
    for (int l : gain_layers_a) gain_attn_[l] = gain(l, 0);
    for (int l : gain_layers_f) gain_ffn_[l] = gain(l, 1);
    if (head) gain_final_ = gain(0, 2);
    // KV cache per attention layer on this chip, per user.
    for (const auto& [l, cr] : core_layers) {
      auto& kv = kv_[l];
      for (int u = 0; u < g_.U; ++u) {
        std::vector<std::vector<KPart>> kg(static_cast<std::size_t>(cr.gm0));  // (groups of other members: none)
        for (int gm = cr.gm0; gm < cr.gm1 && g_.kt; ++gm) {
          // K^T: the parts of a group on one side (groups alternating), [j * mkt + k].
          std::vector<KPart> parts;
          std::set<int> sib;
          const int R = g_.rkt(gm);
          for (int j = 0; j * g_.prk < R; ++j)
            for (int k = 0; k < g_.mkt; ++k) {
              parts.push_back(cache_part(fmt::format("K{}u{}g{}j{}p{}", l - layer0_, u, gm, j, k), g_.prk + g_.bpsk * g_.prk,
                                         sib, (gm - cr.gm0 + 1) % 2, g_.prk, 2 + k, "kcache"));
              sib.insert(parts.back().read->slice);
            }
          for (int x : sib) kslices_.insert(x);
          kg.push_back(std::move(parts));
        }
        for (int gm = cr.gm0; gm < cr.gm1 && !g_.kt; ++gm) {
          std::vector<KPart> parts;
          // Three slices per slice part (a third of every block's positions each), so that a
          // K tile loads on three queues at once.
          for (int j = 0; j < 3; ++j)
            for (int k = 0; k < g_.mk; ++k) {
              // Over the weight bus a group's parts sit on one side, groups alternating.
              parts.push_back(cache_part(fmt::format("K{}u{}g{}j{}p{}", l - layer0_, u, gm, j, k), 1 + g_.bps * g_.kaj(j),
                                         kslices_, g_.kv_lwm ? (gm - cr.gm0 + 1) % 2 : -1, 1, 2 + j * g_.mk + k, "kcache"));
              kslices_.insert(parts.back().read->slice);
            }
          kg.push_back(std::move(parts));
        }
        kv.k.push_back(std::move(kg));
        std::vector<std::vector<std::vector<KPart>>> vt(static_cast<std::size_t>(cr.t0));  // [T][j][k]
        for (int T = cr.t0; T < cr.t1; ++T) {
          std::vector<std::vector<KPart>> js;
          std::set<int> sib;
          // Over the weight bus every part of a V^T tile sits on one side (its plane's): sides
          // alternate by tile.
          const int side = g_.kv_lwm ? (T - cr.t0) % 2 : -1;
          for (int j = 0; j < g_.JV; ++j) {
            std::vector<KPart> parts;
            if (std::min(g_.prt, g_.rvt(T) - j * g_.prt) <= 0) {
              js.push_back(parts);
              continue;
            }
            for (int k = 0; k < g_.mv; ++k) {
              std::set<int> avoid = sib;
              for (int x : kslices_) avoid.insert(x);
              parts.push_back(cache_part(fmt::format("V{}u{}t{}j{}p{}", l - layer0_, u, T, j, k), g_.prt + g_.bpsv * g_.prt, avoid,
                                         side, g_.prt, 2 + g_.kregs() + k, "vcache"));
              sib.insert(parts.back().read->slice);
            }
            js.push_back(std::move(parts));
          }
          vt.push_back(std::move(js));
        }
        kv.vt.push_back(std::move(vt));
      }
    }
    // Scratch: every non-weight slice (rows above the fixed data).
    S_.set_scratch(scratch_slices_.empty() ? inner_ : scratch_slices_);
  }

  // One slice part of the KV cache: `rows` rows in a slice not in `avoid` (on `side`: -1 any, 0
  // west, 1 east), its symbol (kind kcache or vcache), and its write window of `wrows` rows
  // addressed by register `reg`.
  struct KPart {
    ValueP read, write;
  };
  KPart cache_part(const std::string& nm, int rows, const std::set<int>& avoid, int side, int wrows, int reg, const char* kind) {
    const int s = fixed_slice_for(rows, avoid, side);
    const int r = fixed_rows(s, rows, kind[0] == 'k' ? "the K cache" : "the V cache");
    add_table(nm, s, r, rows, g_.t, g_.n, kind);
    return {S_.fixed(nm, s, r, rows), S_.fixed(nm + ".w", s, r, wrows, 0, reg)};
  }

  void add_table(const std::string& name, int slice, int row, std::int64_t rows, isa::Dtype t, int elems, const char* kind) {
    SymRows sr;
    sr.name = name;
    sr.slice = slice;
    sr.row = row;
    sr.rows = rows;
    sr.dtype = t;
    sr.elems = elems;
    sr.kind = kind;
    syms_.push_back(std::move(sr));
  }

  // fixed_rows records the slice it used here (set before returning).
  int inner_slice_of_last_ = 0;

  // ---- op helpers ----
  ValueP vop(const std::string& mnem, std::vector<Rd> in, int count, isa::LatClass lat, const std::string& name,
             std::optional<Out> out = std::nullopt, std::vector<Operand> ops = {}, UnitKind unit = UnitKind::Vxm,
             Cycle earliest = 0) {
    return issue(mnem, std::move(in), count, lat, name, std::move(out), std::move(ops), unit, earliest).out;
  }
  // vop() with the scheduler's whole result (a split output's two values).
  sched::OpResult issue(const std::string& mnem, std::vector<Rd> in, int count, isa::LatClass lat, const std::string& name,
                        std::optional<Out> out = std::nullopt, std::vector<Operand> ops = {}, UnitKind unit = UnitKind::Vxm,
                        Cycle earliest = 0) {
    OpSpec s;
    s.unit = unit;
    s.mnem = mnem;
    if (ops.empty()) {
      for (std::size_t i = 0; i < in.size(); ++i) ops.push_back(Operand::in(int(i)));
      ops.push_back(Operand::out());
    }
    s.ops = std::move(ops);
    s.lat = lat;
    s.in = std::move(in);
    s.count = count;
    s.earliest = earliest;
    Out o;
    if (out) o = *out;
    if (o.name.empty()) o.name = name;
    s.out = o;
    return S_.op(s);
  }
  ValueP bin(const std::string& mnem, Rd a, Rd b, int count, const std::string& name, std::optional<Out> out = std::nullopt) {
    const bool mul = mnem.rfind("MUL", 0) == 0;
    return vop(mnem, {a, b}, count, mul ? isa::LatClass::VxmMul : isa::LatClass::VxmAlu, name, out);
  }
  ValueP un(const std::string& mnem, Rd a, int count, isa::LatClass lat, const std::string& name,
            std::optional<Out> out = std::nullopt) {
    return vop(mnem, {a}, count, lat, name, out);
  }
  static Rd all(const ValueP& v, int idx = 0, int stride = 1) { return Rd{v, idx, stride}; }
  Rd cst(int row) const { return Rd{const_, row, 0}; }
  // A constant broadcast by a CONST instruction (f32 bits, or zero of any type).
  static Rd kf32(float x) {
    std::uint32_t b;
    std::memcpy(&b, &x, 4);
    return Rd::constant("CONST.f32", b);
  }
  Rd kzero() const { return Rd::constant("CONST." + g_.tn, 0); }
  std::string f32op(const char* m) const { return std::string(m) + ".f32"; }
  std::string top(const char* m) const { return std::string(m) + "." + g_.tn; }

  // Pairwise tree over groups: v holds ng groups of m vectors ([g][i]); returns ng vectors.
  ValueP tree(const std::string& mnem, ValueP v, int ng, int m, const std::string& name, bool free_input) {
    bool own = free_input;
    while (m > 1) {
      const int half = m / 2, odd = m % 2, nm = half + odd;
      ValueP out = S_.alloc(name, ng * nm, min_ready(v));
      if (!odd) {
        bin(mnem, all(v, 0, 2), all(v, 1, 2), ng * half, name, Out{out, 0, 1, {}, {}});
      } else {
        for (int gi = 0; gi < ng; ++gi)
          if (half > 0) bin(mnem, all(v, gi * m, 2), all(v, gi * m + 1, 2), half, name, Out{out, gi * nm, 1, {}, {}});
        un("MOV", all(v, m - 1, m), ng, isa::LatClass::VxmAlu, name, Out{out, half, nm, {}, {}});
      }
      if (own) S_.free(v);
      own = true;
      v = out;
      m = nm;
    }
    return v;
  }
  // un() with its results split by parity (Out::split): {even, odd}; `extra` rows more.
  std::pair<ValueP, ValueP> split_op(const std::string& mnem, std::vector<Rd> in, int count, isa::LatClass lat,
                                     const std::string& name, int extra = 0) {
    Out o;
    o.split = true;
    o.extra = extra;
    auto r = issue(mnem, std::move(in), count, lat, name, o);
    return {r.out, r.out2};
  }
  // A reduction of m vectors: `reduce` on each (SUM, RMAX), then tree() over the results, those
  // held split by parity so that each level reads its pairs from two slices as they stream in
  // (the same pairs, in the same order, as tree()).
  ValueP reduce_tree(const std::string& reduce, const std::string& mnem, const Rd& in, int m, const std::string& name) {
    if (m < 4) return tree(mnem, un(reduce, in, m, isa::LatClass::VxmReduce, name), 1, m, name, true);
    auto [a, b] = split_op(reduce, {in}, m, isa::LatClass::VxmReduce, name);
    return tree_split(mnem, a, b, m, name, true);
  }
  // tree() over m vectors held split by parity: vector 2k in a[k], 2k+1 in b[k] (two slices);
  // frees a and b when free_input.
  ValueP tree_split(const std::string& mnem, ValueP a, ValueP b, int m, const std::string& name, bool free_input) {
    bool own = free_input;
    while (m > 1) {
      const int half = m / 2, odd = m % 2;
      ValueP r;
      if (half == 1) {
        // m 2: a0 + b0; m 3: (a0 + b0) + a1.
        r = bin(mnem, Rd{a, 0, 1}, Rd{b, 0, 1}, 1, name);
        if (odd) {
          auto r2 = bin(mnem, all(r), Rd{a, 1, 1}, 1, name);
          S_.free(r);
          r = r2;
        }
        if (own) {
          S_.free(a);
          S_.free(b);
        }
        return r;
      }
      auto [na, nb] = split_op(mnem, {Rd{a, 0, 1}, Rd{b, 0, 1}}, half, isa::LatClass::VxmAlu, name, odd);
      if (odd) un("MOV", Rd{a, half, 0}, 1, isa::LatClass::VxmAlu, name, Out{half % 2 ? nb : na, half / 2, 1, {}, {}});
      if (own) {
        S_.free(a);
        S_.free(b);
      }
      own = true;
      a = na;
      b = nb;
      m = half + odd;
    }
    return a;
  }
  static Cycle min_ready(const ValueP& v) {
    Cycle m = sched::kNever;
    for (auto r : v->ready) m = std::min(m, r);
    return m >= sched::kNever ? 0 : m;
  }

  // f32 vectors z ([k][p], count * ppv) -> count vectors of the weight type (CVT parts, ADD).
  ValueP cvt_combine(const ValueP& z, int z0, int count, const std::string& name, std::optional<Out> final_out = std::nullopt) {
    return cvt_combine_parts([&](int p) { return all(z, z0 + p, g_.ppv); }, count, name, std::move(final_out));
  }
  // The same, part p's f32 vectors read as part(p) gives them.
  // odd (given, and ppv > 1): the result split by parity, the even vectors returned, the odd in *odd.
  ValueP cvt_combine_parts(const std::function<Rd(int)>& part, int count, const std::string& name,
                           std::optional<Out> final_out = std::nullopt, ValueP* odd = nullptr) {
    std::vector<ValueP> parts;
    const std::string cm = fmt::format("CVT.f32.{}", g_.tn);
    // Each part, and each sum of two, in a slice other than its partner's: the ADDs read their
    // operands side by side rather than through a copy.
    auto apart = [&](const std::string& nm, const std::vector<ValueP>& from) {
      Out o;
      o.name = nm;
      for (const auto& v : from) o.avoid.push_back(v->slice);
      return o;
    };
    for (int p = 0; p < g_.ppv; ++p)
      parts.push_back(vop(cm, {part(p)}, count, isa::LatClass::VxmCvt, name + ".cvt",
                          p % 2 ? std::optional<Out>(apart(name + ".cvt", {parts.back()})) : std::nullopt,
                          {Operand::in(0), Operand::out(), Operand::lit_(std::to_string(p))}));
    while (parts.size() > 1) {
      std::vector<ValueP> nx;
      for (std::size_t i = 0; i + 1 < parts.size(); i += 2) {
        const bool last = parts.size() == 2;
        std::optional<Out> o = last ? final_out : std::nullopt;
        if (!last && nx.size() % 2) o = apart(name, {nx.back()});
        if (last && odd && count >= 2) {
          auto [ev, od] = split_op(top("ADD"), {all(parts[i]), all(parts[i + 1])}, count, isa::LatClass::VxmAlu, name);
          *odd = od;
          nx.push_back(ev);
        } else {
          nx.push_back(bin(top("ADD"), all(parts[i]), all(parts[i + 1]), count, name, o));
        }
        S_.free(parts[i]);
        S_.free(parts[i + 1]);
      }
      if (parts.size() % 2) nx.push_back(parts.back());
      parts.swap(nx);
    }
    return parts[0];
  }

  // RMSNorm of x (B users x NX f32) with gain (NX f32) -> B x NK vectors of the weight type.
  // odd (given, one user, weight type narrower than f32): the result split by parity over two
  // slices, k-tile 2j in the returned value's row j, 2j + 1 in *odd's: the products that read it
  // read two k-tiles a cycle (gate/up's 22 row tiles of 26 k-tiles a member of a 70B tray's
  // group would otherwise read one port 572 times).
  ValueP norm(const ValueP& x, const ValueP& gain, const std::string& name, ValueP* odd = nullptr) {
    Phase ph(*this, name + ".norm");
    const int B = g_.B, NX = g_.NX;
    auto sq = bin(f32op("MUL"), all(x), all(x), B * NX, name + ".sq");
    ValueP ss;
    if (B == 1) {
      ss = reduce_tree(f32op("SUM"), f32op("ADD"), all(sq), NX, name + ".ss");
      S_.free(sq);
    } else {
      auto sv = un(f32op("SUM"), all(sq), B * NX, isa::LatClass::VxmReduce, name + ".sum");
      S_.free(sq);
      ss = tree(f32op("ADD"), sv, B, NX, name + ".ss", true);
    }
    auto t1 = bin(f32op("MUL"), all(ss), kf32(float(1.0 / double(g_.d))), B, name + ".ms");
    S_.free(ss);
    auto t2 = bin(f32op("ADD"), all(t1), kf32(float(m_.norm_eps)), B, name + ".mse");
    S_.free(t1);
    Out ro;
    ro.avoid = {x->slice, gain->slice};  // (read every cycle of the y pass, beside x; and the z pass reads gain meanwhile)
    auto r = un(f32op("RSQRT"), all(t2), B, isa::LatClass::VxmTrans, name + ".r", ro);
    S_.free(t2);
    // y and z each in a slice of its own: the two passes stream side by side (y's first vectors
    // are read while x's last are), not one after the other through one read port.
    ValueP y = S_.alloc(name + ".y", B * NX, min_ready(r), {x->slice, gain->slice});
    for (int u = 0; u < B; ++u) bin(f32op("MUL"), all(x, u * NX), Rd{r, u, 0}, NX, name + ".y", Out{y, u * NX, 1, {}, {}});
    S_.free(r);
    ValueP z = S_.alloc(name + ".z", B * NX, min_ready(y), {y->slice, gain->slice});
    for (int u = 0; u < B; ++u) bin(f32op("MUL"), all(y, u * NX), all(gain), NX, name + ".z", Out{z, u * NX, 1, {}, {}});
    S_.free(y);
    const bool split = odd && B == 1 && g_.ppv > 1 && g_.NK >= 4;
    auto h = cvt_combine_parts([&](int p) { return all(z, p, g_.ppv); }, B * g_.NK, name, std::nullopt, split ? odd : nullptr);
    S_.free(z);
    return h;
  }
  // k-tile i of a norm's result (split by parity when odd is set).
  static Rd ktile(const ValueP& even, const ValueP& odd, int i) {
    return odd ? Rd{i % 2 ? odd : even, i / 2, 1} : Rd{even, i, 1};
  }

  // ---- matrix-vector products ----
  struct RowTileOut {
    ValueP v;     // destination value
    int idx = 0;  // vector index of user 0's first output
    int stride = 0;  // between users
    bool f32 = true;  // f32 parts, else one vector of the weight type (part 0)
    int parts = 0;    // f32 parts to read (<= ppv)
  };
  // One row-tile: the next tiles of its plane, MM/MMA over the k-tiles of x ([u][c], stride per
  // user xs), ACCRDs into `out`.
  // xb: x split by parity (ktile(); one user, x0 0).
  void rowtile(const ValueP& x, int x0, int xs, int K, const RowTileOut& out, const ValueP& xb = nullptr) {
    const int pl = rt_plane_[std::size_t(rt_next_++)];
    auto& list = tiles_[std::size_t(pl)];
    int acc = -1;
    for (int c = 0; c < K; ++c) {
      const auto& t = list[std::size_t(tile_cursor_[std::size_t(pl)]++)];
      std::vector<LwPart> parts;
      for (const auto& tp : t.parts)
        parts.push_back({tp.src, tp.first, tp.count, tp.srow, tp.lwm ? -1 : tp.queue, t.gather ? slot_idx(pl, tp.queue) : nullptr,
                         tp.lwm, tp.rstep, tp.wrap});
      MmGroup mg;
      mg.x = xb ? ktile(x, xb, c) : Rd{x, x0 + c, xs};
      mg.count = g_.B;
      mg.acc = acc;
      mg.accumulate = c > 0;
      auto r = S_.tile(pl, g_.t, parts, 0, {mg});
      acc = r.acc[0];
    }
    accrd(pl, acc, out);
  }
  void accrd(int pl, int acc, const RowTileOut& out) {
    Cycle last = 0;
    const int np = out.f32 ? out.parts : 1;
    for (int p = 0; p < np; ++p) {
      OpSpec s;
      s.unit = UnitKind::Mxm;
      s.plane = pl;
      s.mnem = out.f32 ? "ACCRD.f32" : "ACCRD." + g_.tn;
      s.ops = {Operand::lit_(std::to_string(acc)), Operand::out(), Operand::lit_(std::to_string(p))};
      s.lat = isa::LatClass::MxmRd;
      s.count = g_.B;
      s.acc = acc;
      s.out = Out{out.v, out.idx + p, out.stride, {}, {}};
      auto r = S_.op(s);
      last = std::max(last, r.t + g_.B - 1);
    }
    S_.release_acc(pl, acc, g_.B, last);
  }

  // ---- inputs and outputs ----
  // The live values in transfer order (docs/decode.md, "Pipeline"): sc, x, h, q, k, v (the row
  // tiles done), h2, a, o; per user where per user.
  std::vector<std::pair<ValueP, int>> live_list(const Live& lv) {
    const int B = g_.B;
    std::vector<std::pair<ValueP, int>> r;
    if (lv.sc)
      for (int k = 0; k < g_.NSC; ++k) r.emplace_back(sc_, k);
    if (lv.x)
      for (int k = 0; k < B * g_.NX; ++k) r.emplace_back(x_, k);
    if (lv.h)
      for (int k = 0; k < B * g_.NK; ++k) {
        const Rd t = ktile(h_, h_b_, k);
        r.emplace_back(t.v, t.idx);
      }
    for (int u = 0; u < B; ++u) {
      for (int k = 0; k < lv.nq(g_); ++k) r.emplace_back(q_, u * g_.NQ + k);
      for (int k = 0; k < lv.nk(g_); ++k) r.emplace_back(k_, u * g_.NKR + k);
      for (int k = 0; k < lv.nv(g_); ++k) r.emplace_back(v_, u * g_.NVT + k);
    }
    if (lv.h2)
      for (int k = 0; k < B * g_.NK; ++k) {
        const Rd t = ktile(h2_, h2_b_, k);
        r.emplace_back(t.v, t.idx);
      }
    for (int c = 0; c < lv.a; ++c)
      for (int u = 0; u < B; ++u) r.emplace_back(a_, u * g_.RF + c);
    if (lv.o)
      for (int k = 0; k < B * g_.NO; ++k) r.emplace_back(o_, k);
    return r;
  }

  void alloc_qkv(Cycle t_lb) {
    const int B = g_.B;
    if (!q_) q_ = S_.alloc("q", B * g_.NQ, t_lb);
    if (!k_) k_ = S_.alloc("k", B * g_.NKR, t_lb);
    if (!v_) v_ = S_.alloc("v", B * g_.NVT, t_lb);
  }

  void inputs() {
    const int B = g_.B;
    // Values that arrive.
    if (in_live_.sc) sc_ = S_.alloc("sc", g_.NSC, 0);
    if (in_live_.x) x_ = S_.alloc("x", B * g_.NX, 0);
    if (in_live_.h) h_ = S_.alloc("h", B * g_.NK, 0);
    if (in_live_.qkv > 0) alloc_qkv(0);
    if (in_live_.h2) h2_ = S_.alloc("h2", B * g_.NK, 0);
    if (in_live_.a > 0 || needs_a()) a_ = xbuf("a", B * g_.RF, 0);
    if (in_live_.o) o_ = S_.alloc("o", B * g_.NO, 0);
    if (dma_in_) {
      // The first stage: embeddings then the step constants, by host DMA channel 0.
      // One channel: the groups must not interleave (the host's vectors are taken in issue order).
      OpSpec s;
      s.unit = UnitKind::SxmW;
      s.mnem = "DMAIN";
      s.ops = {Operand::lit_("0"), Operand::out()};
      s.lat = isa::LatClass::Dma;
      s.count = B * g_.NX;
      s.out = Out{x_, 0, 1, {}, {}};
      const auto r = S_.op(s);
      s.count = g_.NSC;
      s.out = Out{sc_, 0, 1, {}, {}};
      s.earliest = r.t + B * g_.NX;
      S_.op(s);
      dma_in_count_ = B * g_.NX + g_.NSC;
      return;
    }
    if (sh_.T > 1 && sh_.me != sh_.in_leader) return;  // its inputs come by the group's first exchange
    int i = 0;
    for (const auto& [v, idx] : live_list(in_live_)) {
      OpSpec s;
      s.unit = UnitKind::SxmE;
      const int l = i % in_links_;
      s.mnem = "RECV";
      s.ops = {Operand::lit_(fmt::format("@LI{}@", l)), Operand::out()};
      s.lat = isa::LatClass::C2cRecv;
      s.link = 1000 + l;
      s.recv_ready = std::max<Cycle>(0, arr_.at(std::size_t(i)));
      s.out = Out{v, idx, 1, {}, {}};
      const auto r = S_.op(s);
      recvd_.push_back({v, idx, r.t, v->ready[std::size_t(idx)]});
      ++i;
    }
  }
  bool needs_a() const {
    for (const auto& u : units_)
      if ((u.k == Unit::Chunk || u.k == Unit::Down || (u.k == Unit::Xchg && (u.idx == Unit::Chunk || u.idx == Unit::Down))) &&
          u.expert < 0)
        return true;
    return out_live_.a > 0;
  }

  void outputs() {
    if (out_links_ == 0) return;
    int i = 0;
    std::vector<Cycle> last(std::size_t(out_links_), -1);
    for (const auto& [v, idx] : live_list(out_live_)) {
      const int l = i % out_links_;
      OpSpec s;
      s.unit = UnitKind::SxmE;
      s.mnem = "SEND";
      s.ops = {Operand::lit_(fmt::format("@LO{}@", l)), Operand::in(0)};
      s.lat = isa::LatClass::C2cSend;
      s.in = {Rd{v, idx, 1}};
      s.link = l;
      s.forward = true;
      s.earliest = last[std::size_t(l)] + 1;
      auto r = S_.op(s);
      last[std::size_t(l)] = r.t;
      sends_.push_back(r.t);
      ++i;
    }
  }

  // LPU_GEN_PHASES=1: the cycles the instructions of each unit (and of the parts of attention)
  // span on member 0 of a group (LPU_GEN_PHASES_MEMBER=m: member m) or on a pipeline stage
  // (docs/decode.md, "Debugging a generated program"). next() ends one part and begins the next.
  struct Phase {
    const Builder& b;
    std::string name;
    std::int64_t from;
    Phase(const Builder& bb, std::string n) : b(bb), name(std::move(n)), from(bb.S_.instructions()) {}
    Phase(const Phase&) = delete;
    Phase& operator=(const Phase&) = delete;
    void next(std::string n) {
      print();
      name = std::move(n);
      from = b.S_.instructions();
    }
    void print() const {
      static const bool on = std::getenv("LPU_GEN_PHASES") != nullptr;
      static const char* mem = std::getenv("LPU_GEN_PHASES_MEMBER");
      if (!on || b.sh_.me != (mem ? std::atoi(mem) : 0)) return;
      const auto [a, z] = b.S_.span_since(from);
      if (z >= 0)
        fmt::print(stderr, "phase {:<18} {:>8} .. {:>8} ({} cycles, {} instructions)\n", name, a, z, z - a + 1,
                   b.S_.instructions() - from);
    }
    ~Phase() { print(); }
  };

  // ---- the units ----
  void unit(const Unit& u) {
    Phase phase(*this, unit_name(u));
    switch (u.k) {
      case Unit::Qkv: qkv(u.layer, u.idx); break;
      case Unit::Core: core(u.layer, CoreRange(g_, u.first, u.count)); break;
      case Unit::Wo: wo(u.idx); break;
      case Unit::Chunk: chunk(u.layer, u.idx, u.expert, u.slot); break;
      case Unit::Down: down(u.idx, u.expert, u.slot); break;
      case Unit::Router: router(u.layer); break;
      case Unit::Head: head(u.idx); break;
      case Unit::Xchg: throw Error("generator: internal error: an exchange outside step()");
    }
  }

  // ---- tensor groups: exchanges between the members ----
  // The vectors member m computed in the run of exchange u (its inputs for kXchgIn), in the
  // order it sends them.
  std::vector<std::pair<ValueP, int>> xvecs(const Unit& u, int m) {
    std::vector<std::pair<ValueP, int>> r;
    if (u.idx == kXchgIn) {
      if (m == sh_.in_leader) r = live_list(in_live_);
      return r;
    }
    if (u.idx == Unit::Core) {  // the attention output of member m's kv heads (u.count: members sharing the core)
      if (m >= u.count) return r;
      const auto [c0, c1] = own_range(0, g_.core_units(), u.count, m);
      const CoreRange cr(g_, c0 * g_.core_gran(), std::min(g_.KV, c1 * g_.core_gran()) - c0 * g_.core_gran());
      for (int us = 0; us < g_.B; ++us)
        for (int c = cr.o0; c < cr.o1; ++c) r.emplace_back(o_, us * g_.NO + c);
      return r;
    }
    const auto [lo, hi] = own_range(u.first, u.count, sh_.T, m);
    for (int k = lo; k < hi; ++k)
      for (int us = 0; us < g_.B; ++us) switch (u.idx) {
          case Unit::Qkv:
            if (k < g_.RQ)
              for (int p = 0; p < g_.ppv; ++p) r.emplace_back(q_, us * g_.NQ + k * g_.ppv + p);
            else if (k < g_.RQ + g_.RK)
              for (int p = 0; p < g_.ppv; ++p) r.emplace_back(k_, us * g_.NKR + (k - g_.RQ) * g_.ppv + p);
            else
              r.emplace_back(v_, us * g_.NVT + k - g_.RQ - g_.RK);
            break;
          case Unit::Wo:
          case Unit::Down:
            for (int p = 0; p < g_.ppv; ++p) r.emplace_back(x_, us * g_.NX + k * g_.ppv + p);
            break;
          case Unit::Chunk:
            r.emplace_back(u.slot >= 0 ? slot_a(u.slot) : u.expert >= 0 ? expert_a(u.expert) : a_, us * g_.RF + k);
            break;
          case Unit::Router: r.emplace_back(logits_, us); break;
          default: throw Error("generator: internal error: an exchange of an unknown run");
        }
    return r;
  }

  // The SXM on the side of a value's slice.
  UnitKind side_of(const ValueP& v) {
    return S_.slices()[std::size_t(v->slice)].position > S_.vxm_position() ? UnitKind::SxmE : UnitKind::SxmW;
  }

  // Every member sends what it computed to every other member (vector i to a peer on its link
  // i mod L) and receives theirs into the same places; the links of peer offset d (1 .. T-1)
  // are the slots after the pipeline's.
  void xchg_send(const Unit& u) {
    const int T = sh_.T, L = sh_.peer_links, e = xe_++;
    if (u.idx == Unit::Qkv) alloc_qkv(0);
    if (u.idx == Unit::Core && !o_) o_ = S_.alloc("o", g_.B * g_.NO, 0);
    if (u.idx == Unit::Router && !logits_) logits_ = S_.alloc("router", g_.B, 0);
    if ((u.idx == Unit::Chunk || u.idx == Unit::Down) && u.expert < 0 && !a_) a_ = xbuf("a", g_.B * g_.RF, 0);
    auto mine = xvecs(u, sh_.me);
    if (product_xchg(u.idx))
      for (auto& [v, idx] : mine) {  // x row idx -> the product of its row tile
        const int us = idx / g_.NX, k = idx % g_.NX / g_.ppv, p = idx % g_.NX % g_.ppv;
        v = xy_.at(k);
        idx = us * g_.ppv + p;
      }
    // (a second copy of each vector to the members that keep one at the west edge: dual_a)
    const std::size_t n = mine.size();
    for (std::size_t i = 0; i < (a_xchg(u) ? 2 : 1) * n; ++i)
      for (int d = 1; d < T; ++d) {
        if (i >= n && !dual_a((sh_.me + d) % T)) continue;
        const auto& [src, sidx] = mine[i % n];
        const int slot = out_links_ + (d - 1) * L + int(i) % L;
        OpSpec s;
        s.unit = side_of(src);
        s.mnem = "SEND";
        s.ops = {Operand::lit_(fmt::format("@LO{}@", slot)), Operand::in(0)};
        s.lat = isa::LatClass::C2cSend;
        s.in = {Rd{src, sidx, 1}};
        s.link = slot;
        s.forward = true;
        s.earliest = xlast_send_.count(slot) ? xlast_send_[slot] + 1 : 0;
        const auto r = S_.op(s);
        xlast_send_[slot] = r.t;
        xsend_.push_back({(sh_.me + d) % T, e, int(i), r.t});
      }
  }
  // The RECVs of the exchange whose SENDs were scheduled last; arrivals[k]: the k-th vector's.
  void xchg_recv(const Unit& u, const std::vector<Cycle>& arrivals) {
    const int T = sh_.T, L = sh_.peer_links;
    const bool products = product_xchg(u.idx);
    std::vector<std::pair<int, ValueP>> sums;  // products: (x row of the first, the received products)
    std::map<int, ValueP> buf;                 // products: by x row of the row tile's first vector
    std::size_t k = 0;  // (pending()'s order)
    for (int d = 1; d < T; ++d) {
      const int src = (sh_.me + d) % T;
      const auto theirs = xvecs(u, src);
      const std::size_t n = theirs.size(), copies = a_xchg(u) && dual_a(sh_.me) ? 2 : 1;
      buf.clear();
      for (std::size_t i = 0; i < copies * n; ++i) {
        // The sender's slot for us is offset T - d; on our side the link is slot in_links + (d-1)L + i mod L.
        const int slot = in_links_ + (d - 1) * L + int(i) % L;
        auto [v, idx] = theirs[i % n];
        if (i >= n) v = a_west();
        const Cycle ready = k < arrivals.size() ? std::max<Cycle>(0, arrivals[k]) : 0;
        if (products) {  // into a buffer of the row tile's products, added to x below
          const int first = idx - idx % g_.NX % g_.ppv, p = idx % g_.NX % g_.ppv;
          auto [it, fresh] = buf.emplace(first, nullptr);
          if (fresh) {
            // (where alloc puts it: spreading them over more slices measured 1.4% slower on 70B)
            it->second = S_.alloc("xr", g_.ppv, ready);
            sums.emplace_back(first, it->second);
          }
          v = it->second;
          idx = p;
        }
        OpSpec s;
        s.unit = side_of(v);
        s.mnem = "RECV";
        s.ops = {Operand::lit_(fmt::format("@LI{}@", slot)), Operand::out()};
        s.lat = isa::LatClass::C2cRecv;
        s.link = 1000 + slot;
        s.recv_ready = ready;
        ++k;
        s.earliest = v->last_read + 1;  // the rows' previous value (x, a) is read by then
        s.out = Out{v, idx, 1, {}, {}};
        S_.op(s);
      }
    }
    for (const auto& [first, yr] : sums) {
      bin(f32op("ADD"), all(x_, first), all(yr, 0), g_.ppv, "x", Out{x_, first, 1, {}, {}});
      S_.free(yr);
    }
    if (products) {
      for (auto& kv : xy_) S_.free(kv.second);
      xy_.clear();
    }
    if (u.idx == Unit::Qkv && h_) {
      free_norm(h_, h_b_);
    }
    if (u.idx == Unit::Core && q_) {  // a member without a share of the core
      for (auto* v : {&q_, &k_, &v_}) {
        S_.free(*v);
        v->reset();
      }
    }
    if (u.idx == Unit::Wo && o_) {
      S_.free(o_);
      o_.reset();
    }
    if (u.idx == Unit::Chunk && h2_ && ((u.expert < 0 && u.slot < 0) || u.expert + 1 == g_.X || u.slot + 1 == g_.XK)) {
      // (the experts' chunks all read h2)
      free_norm(h2_, h2_b_);
    }
    if (u.idx == Unit::Router) gating();
    if (u.idx == Unit::Down && (u.expert >= 0 || u.slot >= 0)) {
      for (auto& kv : ae_) S_.free(kv.second);
      ae_.clear();
      for (auto& kv : sa_) S_.free(kv.second);
      sa_.clear();
      for (auto& v : sidx_)
        if (v) S_.free(v);
      sidx_.clear();
      S_.free(gates_);
      gates_.reset();
    }
  }

  void qkv(int l, int r) {
    const std::string L = fmt::format("L{}", l);
    h2_.reset();
    h2_b_.reset();
    if (!h_) h_ = norm(x_, gain_attn_.at(l), L + ".an", &h_b_);
    alloc_qkv(min_ready(h_));
    if (r < g_.RQ) rowtile(h_, 0, g_.NK, g_.NK, {q_, r * g_.ppv, g_.NQ, true, g_.ppv}, h_b_);
    else if (r < g_.RQ + g_.RK) rowtile(h_, 0, g_.NK, g_.NK, {k_, (r - g_.RQ) * g_.ppv, g_.NKR, true, g_.ppv}, h_b_);
    else rowtile(h_, 0, g_.NK, g_.NK, {v_, r - g_.RQ - g_.RK, g_.NVT, false, 1}, h_b_);
    // (the layer's last q/k/v row tile, or the member's last when a unit of another kind follows;
    // at the end of a stage h is passed on)
    if (r + 1 == g_.RQ + g_.RK + g_.NVT || (ui_ < units_.size() && (units_[ui_].k != Unit::Qkv || units_[ui_].layer != l))) {
      free_norm(h_, h_b_);
    }
  }
  void free_norm(ValueP& even, ValueP& odd) {
    S_.free(even);
    even.reset();
    if (odd) S_.free(odd);
    odd.reset();
  }

  // RoPE, KV cache and attention of the kv heads cr.gk0 .. gk1 (every head in the pipeline).
  void core(int l, const CoreRange& cr) {
    const int B = g_.B;
    const std::string L = fmt::format("L{}", l);
    Phase ph(*this, L + ".rope+kv");
    ValueP q = q_, k = k_, v = v_;
    q_.reset();
    k_.reset();
    v_.reset();
    // RoPE: per user and vector w of a half, over heads.
    auto rope = [&](const ValueP& t, int h0, int heads, int stride_user, int u, std::vector<ValueP>& Ap, std::vector<ValueP>& Bp) {
      for (int w = 0; w < g_.HV; ++w) {
        const int base = u * stride_user + h0 * 2 * g_.HV;
        Rd A{t, base + w, 2 * g_.HV}, Bv{t, base + g_.HV + w, 2 * g_.HV};
        auto m1 = bin(f32op("MUL"), A, Rd{sc_, w, 0}, heads, L + ".r1");
        auto m2 = bin(f32op("MUL"), Bv, Rd{sc_, g_.HV + w, 0}, heads, L + ".r2");
        Ap.push_back(bin(f32op("SUB"), all(m1), all(m2), heads, L + ".ra"));
        S_.free(m1);
        S_.free(m2);
        auto m3 = bin(f32op("MUL"), Bv, Rd{sc_, w, 0}, heads, L + ".r3");
        auto m4 = bin(f32op("MUL"), A, Rd{sc_, g_.HV + w, 0}, heads, L + ".r4");
        Bp.push_back(bin(f32op("ADD"), all(m3), all(m4), heads, L + ".rb"));
        S_.free(m3);
        S_.free(m4);
      }
    };
    const std::string cm = fmt::format("CVT.f32.{}", g_.tn);
    auto cvt = [&](const Rd& a, int count, int part, const std::string& nm) {
      return vop(cm, {a}, count, isa::LatClass::VxmCvt, nm, std::nullopt,
                 {Operand::in(0), Operand::out(), Operand::lit_(std::to_string(part))});
    };
    auto add_all = [&](std::vector<ValueP> parts, int count, const std::string& nm, std::optional<Out> final_out) {
      if (parts.size() == 1 && final_out) {
        auto r = un("MOV", all(parts[0]), count, isa::LatClass::VxmAlu, nm, final_out);
        S_.free(parts[0]);
        return r;
      }
      while (parts.size() > 1) {
        std::vector<ValueP> nx;
        for (std::size_t i = 0; i + 1 < parts.size(); i += 2) {
          nx.push_back(bin(top("ADD"), all(parts[i]), all(parts[i + 1]), count, nm, parts.size() == 2 ? final_out : std::nullopt));
          S_.free(parts[i]);
          S_.free(parts[i + 1]);
        }
        if (parts.size() % 2) nx.push_back(parts.back());
        parts.swap(nx);
      }
      return parts[0];
    };
    // A transposed cache (V^T, K^T): lane `pos` of its R rows takes element i of `src` (row i):
    // DIST broadcasts element i, SEL with the position's one-hot lane mask writes it into every
    // part of the rows (the register of a part not holding the position points at dump rows).
    auto column_write = [&](const Rd& src, int R, int prt, int J, const std::function<std::vector<KPart>&(int)>& parts_of,
                            const std::string& nm, Cycle& ready) {
      ValueP bc = S_.alloc(L + ".bc", R, min_ready(src.v));
      for (int i = 0; i < R; ++i)
        vop(top("DIST"), {src}, 1, isa::LatClass::SxmShift, L + ".bc", Out{bc, i, 1, {}, {}},
            {Operand::in(0), Operand::out(), Operand::lit_(std::to_string(i))}, i % 2 ? UnitKind::SxmW : UnitKind::SxmE);
      for (int j = 0; j < J; ++j) {
        const int cnt = std::min(prt, R - j * prt);
        if (cnt <= 0) continue;
        for (auto& kp : parts_of(j)) {
          vop(top("SEL"), {Rd{sc_, 2 * g_.HV + 1, 0}, Rd{bc, j * prt, 1}, Rd{kp.write, 0, 1}}, cnt, isa::LatClass::VxmAlu, nm,
              Out{kp.write, 0, 1, {}, {}});
          for (int i = 0; i < cnt; ++i) ready = std::max(ready, kp.write->ready[std::size_t(i)]);
        }
      }
      S_.free(bc);
    };
    auto& kv = kv_.at(l);
    Cycle k_ready = 0, v_ready = 0;
    std::vector<std::vector<ValueP>> xq(static_cast<std::size_t>(B));  // [u][g]: G vectors
    for (int u = 0; u < B; ++u) {
      std::vector<ValueP> qa, qb, ka, kb;
      rope(q, cr.gk0 * g_.G, (cr.gk1 - cr.gk0) * g_.G, g_.NQ, u, qa, qb);
      rope(k, cr.gk0, cr.gk1 - cr.gk0, g_.NKR, u, ka, kb);
      xq[std::size_t(u)].resize(std::size_t(g_.KV));
      // Score inputs per kv head: head h of kv head g at slot sigma of its K row.
      for (int gk = cr.gk0; gk < cr.gk1; ++gk) {
        const int sigma = gk % g_.kpr;
        std::vector<ValueP> parts;
        for (int s = 0; s < 2; ++s)
          for (int w = 0; w < g_.HV; ++w)
            parts.push_back(cvt(Rd{s ? qb[std::size_t(w)] : qa[std::size_t(w)], (gk - cr.gk0) * g_.G, 1}, g_.G,
                                (2 * sigma + s) * g_.HV + w, L + ".xq"));
        xq[std::size_t(u)][std::size_t(gk)] = add_all(parts, g_.G, L + ".xq", std::nullopt);
      }
      for (auto& x : qa) S_.free(x);
      for (auto& x : qb) S_.free(x);
      // K rows: the kv heads of each group at their slots, written into every slice part.
      for (int gm = cr.gm0; gm < cr.gm1; ++gm) {
        std::vector<ValueP> parts;
        for (int sigma = 0; sigma < g_.kpr; ++sigma) {
          const int gk = gm * g_.kpr + sigma;
          if (gk >= g_.KV) break;
          for (int s = 0; s < 2; ++s)
            for (int w = 0; w < g_.HV; ++w)
              parts.push_back(
                  cvt(Rd{s ? kb[std::size_t(w)] : ka[std::size_t(w)], gk - cr.gk0, 1}, 1, (2 * sigma + s) * g_.HV + w, L + ".kr"));
        }
        auto row = add_all(parts, 1, L + ".krow", std::nullopt);
        auto& kparts = kv.k[std::size_t(u)][std::size_t(gm)];
        if (g_.kt) {
          std::vector<KPart> pj;
          column_write(Rd{row, 0, 0}, g_.rkt(gm), g_.prk, g_.JK,
                       [&](int j) -> std::vector<KPart>& {
                         pj.assign(kparts.begin() + j * g_.mkt, kparts.begin() + (j + 1) * g_.mkt);
                         return pj;
                       },
                       L + ".kw", k_ready);
        } else {
          for (auto& kp : kparts) {
            un("MOV", all(row), 1, isa::LatClass::VxmAlu, L + ".kw", Out{kp.write, 0, 1, {}, {}});
            k_ready = std::max(k_ready, kp.write->ready[0]);
          }
        }
        S_.free(row);
      }
      for (auto& x : ka) S_.free(x);
      for (auto& x : kb) S_.free(x);
      // V^T: the new column (the position's lane) in every row of every slice part.
      for (int T = cr.t0; T < cr.t1; ++T)
        column_write(Rd{v, u * g_.NVT + T, 0}, g_.rvt(T), g_.prt, g_.JV,
                     [&](int j) -> std::vector<KPart>& { return kv.vt[std::size_t(u)][std::size_t(T)][std::size_t(j)]; },
                     L + ".vw", v_ready);
    }
    S_.free(q);
    S_.free(k);
    S_.free(v);
    // The mask of valid positions as an additive bias (0 where iota <= pos, -inf past it), one per
    // head of a kv head, head hh's in the scratch slices hh, hh + G, ... by distance from the VXM:
    // the heads' chains read their masks side by side, not one after another through one read
    // port. Masking is then an ADD of two values in SRAM (a score plus 0 is the score, plus -inf
    // is -inf: the SEL's values, up to the sign of a zero score, which the maximum and EXP do not
    // see), rather than a SEL whose -inf comes from a CONST holding a VXM queue for the pass.
    // (Made per layer: kept from the chip's first layer for the others, measured 1.3% slower for
    // Llama-3-70B hybrid at 8k, the rows it holds near the VXM crowding the softmax chains.)
    std::vector<ValueP> mask;
    const auto& near = S_.nearest_scratch(S_.vxm_position());
    for (int hh = 0; hh < g_.G; ++hh) {
      Out mo;
      mo.name = L + ".mask";
      for (std::size_t i = std::size_t(hh); i < near.size(); i += std::size_t(g_.G)) mo.pool.push_back(near[i]);
      if (mo.pool.empty()) mo.pool = near;
      // (pos < iota: all ones, shifted left by 23: 0xff800000, -inf; else 0, +0)
      auto past = bin("CMPLT.i32", Rd{sc_, 2 * g_.HV, 0}, all(iota_[std::size_t(hh)]), g_.NSA(), L + ".mask");
      mask.push_back(vop("SHL.i32", {all(past)}, g_.NSA(), isa::LatClass::VxmAlu, L + ".mask", mo,
                         {Operand::in(0), Operand::out(), Operand::lit_("23")}));
      S_.free(past);
    }
    const int P = int(S_.planes().size());
    ValueP o = S_.alloc(L + ".o", B * g_.NO, v_ready);
    for (int u = 0; u < B; ++u) {
      ph.next(L + ".scores");
      // Scores: K tiles (positions x slots) times each head's q. Per head a value of its own (NS
      // vectors) in a slice of its own, so that the heads' softmax chains begin side by side.
      std::vector<std::vector<ValueP>> S(std::size_t(g_.KV));
      std::vector<int> s_slices;
      for (int gk = cr.gk0; gk < cr.gk1; ++gk)
        for (int hh = 0; hh < g_.G; ++hh) {
          S[std::size_t(gk)].push_back(S_.alloc(L + ".S", g_.NSA(), k_ready, s_slices));
          s_slices.push_back(S[std::size_t(gk)].back()->slice);
        }
      for (int gm = cr.gm0; gm < cr.gm1; ++gm) {
        for (int b = 0; b < g_.nab; ++b) {
          // Each block's tile on the next plane (beside its slices over the weight bus): the
          // blocks' scores are independent, so their installs and read-outs run side by side.
          int pl = (attn_plane_++) % P;
          if (g_.kv_lwm) pl = plane_beside(pl, kv.k[std::size_t(u)][std::size_t(gm)][0].read->slice);
          std::vector<LwPart> parts;
          if (g_.kt) {
            // K^T: row f of the tile (the heads' footprint) in part f / prk, installed transposed.
            const int R = g_.rkt(gm);
            for (int j = 0; j * g_.prk < R; ++j) {
              const auto& kp = kv.k[std::size_t(u)][std::size_t(gm)][std::size_t(j * g_.mkt + b / g_.bpsk)];
              parts.push_back(kv_part({kp.read, g_.prk + (b % g_.bpsk) * g_.prk, std::min(g_.prk, R - j * g_.prk), j * g_.prk, j, nullptr}));
            }
          } else {
            for (int j = 0; j < 3; ++j) {
              const auto& kp = kv.k[std::size_t(u)][std::size_t(gm)][std::size_t(j * g_.mk + b / g_.bps)];
              parts.push_back(kv_part({kp.read, 1 + (b % g_.bps) * g_.kaj(j), g_.kaj(j), j * g_.ka, j, nullptr}));
            }
          }
          std::vector<MmGroup> mms;
          std::vector<int> gks;
          for (int sigma = 0; sigma < g_.kpr; ++sigma) {
            const int gk = gm * g_.kpr + sigma;
            if (gk >= g_.KV) break;
            MmGroup mg;
            mg.x = all(xq[std::size_t(u)][std::size_t(gk)]);
            mg.count = g_.G;
            mms.push_back(mg);
            gks.push_back(gk);
          }
          auto tr = S_.tile(pl, g_.t, parts, k_ready, mms, g_.kt);
          for (std::size_t i = 0; i < gks.size(); ++i) {
            Cycle last = 0;
            for (int hh = 0; hh < g_.G; ++hh)
              for (int p = 0; p < g_.ppv; ++p) {
                OpSpec s;
                s.unit = UnitKind::Mxm;
                s.plane = pl;
                s.mnem = "ACCRD.f32";
                s.ops = {Operand::lit_(std::to_string(tr.acc[i] + hh)), Operand::out(), Operand::lit_(std::to_string(p))};
                s.lat = isa::LatClass::MxmRd;
                s.count = 1;
                s.acc = tr.acc[i] + hh;
                s.out = Out{S[std::size_t(gks[i])][std::size_t(hh)], b * g_.ppv + p, 1, {}, {}};
                auto r = S_.op(s);
                last = std::max(last, r.t);
              }
            S_.release_acc(pl, tr.acc[i], g_.G, last);
          }
        }
      }
      for (auto& x : xq[std::size_t(u)])
        if (x) S_.free(x);
      ph.next(L + ".softmax");
      // The chains' passes in round robin over the scratch slices, whatever their length: side
      // by side chains would otherwise crowd the few slices nearest the VXM (short passes go
      // nearest first; 70B hybrid, 8k context, 16 blocks: 1.38M cycles).
      auto spread = [&](const char* nm) {
        Out rr;
        rr.name = L + nm;
        rr.pool = near;
        return rr;
      };
      // Softmax per head (G per kv head) over its NS vectors: G independent chains, the same
      // operations in the same order per element as over the G x NS block at once.
      std::vector<ValueP> xav(std::size_t(g_.KV));
      for (int gk = cr.gk0; gk < cr.gk1; ++gk) {
        const int NS = g_.NSA();
        xav[std::size_t(gk)] = S_.alloc(L + ".xav", g_.G * g_.nab, k_ready);
        for (int hh = 0; hh < g_.G; ++hh) {
          auto& Sh = S[std::size_t(gk)][std::size_t(hh)];
          auto s1 = bin(f32op("MUL"), all(Sh), kf32(float(1.0 / std::sqrt(double(g_.hd)))), NS, L + ".s1", spread(".s1"));
          S_.free(Sh);
          if (NS >= std::max(4, g_.sm_halves) && g_.ppv % 2 == 0) {
            softmax_halves(L, mask[std::size_t(hh)], s1, NS, Out{xav[std::size_t(gk)], hh * g_.nab, 1, {}, {}}, spread);
            continue;
          }
          auto s2 = bin(f32op("ADD"), all(s1), all(mask[std::size_t(hh)]), NS, L + ".s2", spread(".s2"));
          S_.free(s1);
          auto mx = reduce_tree(f32op("RMAX"), f32op("MAX"), all(s2), NS, L + ".mx");
          auto dv = bin(f32op("SUB"), all(s2), Rd{mx, 0, 0}, NS, L + ".d", spread(".d"));
          S_.free(s2);
          S_.free(mx);
          auto e = un(f32op("EXP"), all(dv), NS, isa::LatClass::VxmTrans, L + ".e", spread(".e"));
          S_.free(dv);
          auto se = reduce_tree(f32op("SUM"), f32op("ADD"), all(e), NS, L + ".se");
          auto rs = un(f32op("RECIP"), all(se), 1, isa::LatClass::VxmTrans, L + ".rs");
          S_.free(se);
          auto pr = bin(f32op("MUL"), all(e), Rd{rs, 0, 0}, NS, L + ".p", spread(".p"));
          S_.free(e);
          S_.free(rs);
          probs_to(pr, Out{xav[std::size_t(gk)], hh * g_.nab, 1, {}, {}}, L);
          S_.free(pr);
        }
      }
      ph.next(L + ".av");
      // A V: V^T tiles (rows: slots x dims, columns: positions) times the probabilities.
      // Straight into the Wo layout (direct_o: one kv head per tile, whole vectors of query
      // heads per kv head): head h's V^T rows are staged at rows (h mod hpv) hd.., its place in
      // its output-projection input vector, one install per place and block (each on a plane of
      // its own), so that the vector is one SEL of its heads' results by slot (docs/decode.md,
      // "Heads in place"); else the kv heads' slots in one install, moved to their places after.
      const bool direct = direct_o(g_);
      const int nw = direct ? g_.hpv : 1;
      std::vector<std::vector<ValueP>> oraw(std::size_t(nw), std::vector<ValueP>(std::size_t(g_.KV)));
      for (int T = cr.t0; T < cr.t1; ++T) {
        // Over the weight bus (JV parts): a plane on the parts' side, each part an LWM from its
        // slice, all in the same cycles (prt cycles a tile); else three LW lanes.
        const auto& vparts = kv.vt[std::size_t(u)][std::size_t(T)];
        std::vector<int> pls;
        for (int w = 0; w < nw; ++w) {
          int pl = (attn_plane_++) % P;
          if (g_.kv_lwm) pl = plane_beside(pl, vparts[0][0].read->slice);
          pls.push_back(pl);
        }
        auto accs = std::vector<std::vector<int>>(std::size_t(nw));
        const int R = g_.rvt(T);
        for (int b = 0; b < g_.nab; ++b) {
          for (int w = 0; w < nw; ++w) {
            std::vector<LwPart> parts;
            for (int j = 0; j < g_.JV; ++j) {
              const int cnt = std::min(g_.prt, R - j * g_.prt);
              if (cnt <= 0) continue;
              const auto& kp = vparts[std::size_t(j)][std::size_t(b / g_.bpsv)];
              parts.push_back(kv_part({kp.read, g_.prt + (b % g_.bpsv) * g_.prt, cnt, w * g_.hd + j * g_.prt, j, nullptr}));
            }
            std::vector<MmGroup> mms;
            for (int sigma = 0; sigma < g_.kvpt; ++sigma) {
              const int gk = T * g_.kvpt + sigma;
              if (gk >= g_.KV) break;
              MmGroup mg;
              // (direct: heads w, w + hpv, ..; their probabilities' block b)
              mg.x = direct ? Rd{xav[std::size_t(gk)], w * g_.nab + b, g_.hpv * g_.nab} : Rd{xav[std::size_t(gk)], b, g_.nab};
              mg.count = g_.G / nw;
              mg.acc = b == 0 ? -1 : accs[std::size_t(w)][std::size_t(sigma)];
              mg.accumulate = b > 0;
              mms.push_back(mg);
            }
            auto tr = S_.tile(pls[std::size_t(w)], g_.t, parts, v_ready, mms);
            if (b == 0) accs[std::size_t(w)] = tr.acc;
          }
        }
        for (int w = 0; w < nw; ++w)
          for (int sigma = 0; sigma < g_.kvpt; ++sigma) {
            const int gk = T * g_.kvpt + sigma;
            if (gk >= g_.KV) break;
            const int acc = accs[std::size_t(w)][std::size_t(sigma)], cnt = g_.G / nw;
            auto& dst = oraw[std::size_t(w)][std::size_t(gk)];
            dst = S_.alloc(L + ".oraw", cnt, v_ready);
            OpSpec s;
            s.unit = UnitKind::Mxm;
            s.plane = pls[std::size_t(w)];
            s.mnem = "ACCRD." + g_.tn;
            s.ops = {Operand::lit_(std::to_string(acc)), Operand::out(), Operand::lit_("0")};
            s.lat = isa::LatClass::MxmRd;
            s.count = cnt;
            s.acc = acc;
            s.out = Out{dst, 0, 1, {}, {}};
            auto r = S_.op(s);
            S_.release_acc(pls[std::size_t(w)], acc, cnt, r.t + cnt - 1);
          }
      }
      for (auto& x : xav)
        if (x) S_.free(x);
      ph.next(L + ".heads");
      if (direct) {
        // Head w + k hpv of a kv head is in place in its vector k of oraw[w]; lanes past the
        // heads (hpv hd ..) keep the last place's rows, which meet zero weights (tile_row).
        for (int gk = cr.gk0; gk < cr.gk1; ++gk) {
          const int cnt = g_.G / nw, c0 = gk * g_.G / g_.hpv;
          Rd acc_in = all(oraw[std::size_t(nw - 1)][std::size_t(gk)]);
          std::vector<ValueP> tmp;
          for (int w = nw - 2; w >= 0; --w) {
            auto r = vop(top("SEL"), {cst(C_SLOT0 + w), all(oraw[std::size_t(w)][std::size_t(gk)]), acc_in}, cnt,
                         isa::LatClass::VxmAlu, L + ".o", w == 0 ? std::optional<Out>(Out{o, u * g_.NO + c0, 1, {}, {}}) : std::nullopt);
            if (w > 0) tmp.push_back(r);
            acc_in = all(r);
          }
          for (auto& ow : oraw) S_.free(ow[std::size_t(gk)]);
          for (auto& t : tmp) S_.free(t);
        }
        continue;
      }
      // Heads into the Wo input vectors: mask the slot, shift to the head's place, add.
      std::vector<std::vector<Rd>> pieces(std::size_t(g_.NO));
      std::vector<ValueP> owned;
      for (int gk = cr.gk0; gk < cr.gk1; ++gk) {
        const int sv = gk % g_.kvpt;
        auto clean = vop(top("SEL"), {cst(C_SLOT0 + sv), all(oraw[0][std::size_t(gk)]), kzero()}, g_.G, isa::LatClass::VxmAlu,
                         L + ".oc");
        S_.free(oraw[0][std::size_t(gk)]);
        owned.push_back(clean);
        for (int r0 = 0; r0 < std::min(g_.hpv, g_.G); ++r0) {
          // heads hh = r0, r0 + hpv, ... of this kv head (the same place within their vectors
          // when hpv divides G).
          std::vector<int> hs;
          for (int hh = r0; hh < g_.G; hh += g_.hpv) hs.push_back(hh);
          const int h0 = gk * g_.G + r0;
          const int shift = (h0 % g_.hpv) * g_.hd - sv * g_.hd;
          bool uniform = true;
          for (int hh : hs) uniform &= ((gk * g_.G + hh) % g_.hpv) == (h0 % g_.hpv);
          if (!uniform) throw Error("generator: heads per vector must divide the query heads per kv head");
          ValueP src = clean;
          int idx0 = r0, stride = g_.hpv;
          if (shift != 0) {
            src = vop(top("SHIFT"), {Rd{clean, r0, g_.hpv}}, int(hs.size()), isa::LatClass::SxmShift, L + ".os", std::nullopt,
                      {Operand::in(0), Operand::out(), Operand::lit_(std::to_string(shift))},
                      (gk + r0) % 2 ? UnitKind::SxmW : UnitKind::SxmE);
            owned.push_back(src);
            idx0 = 0;
            stride = 1;
          }
          for (std::size_t i = 0; i < hs.size(); ++i) {
            const int hq = gk * g_.G + hs[i];
            pieces[std::size_t(hq / g_.hpv)].push_back(Rd{src, idx0 + int(i) * stride, 1});
          }
        }
      }
      for (int c = cr.o0; c < cr.o1; ++c) {
        auto ps = pieces[std::size_t(c)];
        std::vector<ValueP> tmp;
        while (ps.size() > 1) {
          std::vector<Rd> nx;
          for (std::size_t i = 0; i + 1 < ps.size(); i += 2) {
            const bool last = ps.size() == 2;
            auto r = bin(top("ADD"), ps[i], ps[i + 1], 1, L + ".oadd",
                         last ? std::optional<Out>(Out{o, u * g_.NO + c, 1, {}, {}}) : std::nullopt);
            if (!last) tmp.push_back(r);
            nx.push_back(Rd{r, 0, 1});
          }
          if (ps.size() % 2) nx.push_back(ps.back());
          ps.swap(nx);
        }
        if (pieces[std::size_t(c)].size() == 1)
          un("MOV", ps[0], 1, isa::LatClass::VxmAlu, L + ".o", Out{o, u * g_.NO + c, 1, {}, {}});
        for (auto& t : tmp) S_.free(t);
      }
      for (auto& x : owned) S_.free(x);
    }
    for (auto& m : mask) S_.free(m);
    o_ = o;
  }

  // One head's softmax over its NS >= 4 scaled scores s1, into `to` (the weight type): the same
  // operations on the same elements as one pass over all NS, in two halves by parity (even score
  // vectors and odd ones, each half in slices of its own) so that every pass streams half as
  // long, two queues side by side. The maximum: a MAX tree over the masked scores' elements, then
  // one RMAX (max is exact: the same value as RMAX per vector then the tree). The sum: SUM per
  // vector, then the adjacent-pair tree over them (pairs (2k, 2k+1) = (even k, odd k): the tree
  // of reduce_tree). The probabilities interleave back into one value for the conversion.
  // (From Geo::sm_halves score vectors on; auto 32, measured on lp30: at 16, a 1k context, the
  // halves' extra instructions cost more than the shorter passes save; at 104 and more they gain.)
  template <class Spread>
  void softmax_halves(const std::string& L, const ValueP& mask, const ValueP& s1, int NS, const Out& to, Spread&& spread) {
    const int na = (NS + 1) / 2, nb = NS / 2;
    auto [s2a, s2b] = split_op(f32op("ADD"), {all(s1), all(mask)}, NS, isa::LatClass::VxmAlu, L + ".s2");
    S_.free(s1);
    auto lanes = tree_split(f32op("MAX"), s2a, s2b, NS, L + ".mx", false);
    // (twice, into two slices: each half's pass reads its copy every cycle)
    auto [mxa, mxb] = split_op(f32op("RMAX"), {Rd{lanes, 0, 0}}, 2, isa::LatClass::VxmReduce, L + ".mx");
    S_.free(lanes);
    auto dva = bin(f32op("SUB"), all(s2a), Rd{mxa, 0, 0}, na, L + ".d", spread(".d"));
    auto dvb = bin(f32op("SUB"), all(s2b), Rd{mxb, 0, 0}, nb, L + ".d", spread(".d"));
    S_.free(s2a);
    S_.free(s2b);
    S_.free(mxa);
    S_.free(mxb);
    auto ea = un(f32op("EXP"), all(dva), na, isa::LatClass::VxmTrans, L + ".e", spread(".e"));
    auto eb = un(f32op("EXP"), all(dvb), nb, isa::LatClass::VxmTrans, L + ".e", spread(".e"));
    S_.free(dva);
    S_.free(dvb);
    auto sa = un(f32op("SUM"), all(ea), na, isa::LatClass::VxmReduce, L + ".se");
    Out ob;
    ob.avoid = {sa->slice};  // (the tree reads sa[k] and sb[k] in one cycle)
    auto sb = un(f32op("SUM"), all(eb), nb, isa::LatClass::VxmReduce, L + ".se", ob);
    auto se = tree_split(f32op("ADD"), sa, sb, NS, L + ".se", true);
    auto [rsa, rsb] = split_op(f32op("RECIP"), {Rd{se, 0, 0}}, 2, isa::LatClass::VxmTrans, L + ".rs");
    S_.free(se);
    // Probability 2k in pa[k], 2k+1 in pb[k]: part p of output j (f32 vector j ppv + p) is pa or
    // pb by p's parity, at j ppv / 2 + p / 2 (ppv is even: the caller's condition).
    auto pa = bin(f32op("MUL"), all(ea), Rd{rsa, 0, 0}, na, L + ".p", spread(".p"));
    Out op = spread(".p");
    op.avoid = {pa->slice};
    auto pb = bin(f32op("MUL"), all(eb), Rd{rsb, 0, 0}, nb, L + ".p", op);
    for (auto* v : {&ea, &eb, &rsa, &rsb}) S_.free(*v);
    const int h = g_.ppv / 2;
    cvt_combine_parts([&](int p) { return Rd{p % 2 ? pb : pa, p / 2, h}; }, g_.nab, L + ".xav", to);
    S_.free(pa);
    S_.free(pb);
  }
  // A head's probabilities pr (f32, NS vectors) into `to`, the weight type (nab vectors).
  void probs_to(const ValueP& pr, const Out& to, const std::string& L) {
    if (g_.ppv == 1) {
      auto c = cvt_combine(pr, 0, g_.nab, L + ".xav");
      un("MOV", all(c), g_.nab, isa::LatClass::VxmAlu, L + ".xav", to);
      S_.free(c);
    } else {
      cvt_combine(pr, 0, g_.nab, L + ".xav", to);
    }
  }

  // A K or V^T tile part as loaded: over the weight bus (its contiguous rows into staging rows
  // srow, srow + 1, ...; the plane's queues stay free for MM and ACCRD) when the KV cache is laid
  // out for it, else LW on its plane queue.
  LwPart kv_part(LwPart lp) const {
    if (!g_.kv_lwm) return lp;
    lp.queue = -1;
    lp.lwm = true;
    lp.rstep = 1;
    lp.wrap = g_.n;
    return lp;
  }

  // The first plane from `pl` on (round) in the hemisphere of MEM slice `slice` (LWM reaches
  // only the planes of its own side).
  int plane_beside(int pl, int slice) {
    const int P = int(S_.planes().size());
    const bool east = S_.slices()[std::size_t(slice)].name[4] == 'e';
    for (int d = 0; d < P; ++d) {
      const int c = (pl + d) % P;
      if ((S_.planes()[std::size_t(c)].position > S_.vxm_position()) == east) return c;
    }
    throw Error("generator: internal error: no MXM plane beside a KV-cache slice");
  }

  // Output projection row tile r and its residual.
  void wo(int r) {
    const int B = g_.B;
    const bool keep = product_xchg(Unit::Wo);
    ValueP y = keep ? product_buf("ao", B * g_.ppv, min_ready(o_)) : S_.alloc("ao", B * g_.ppv, min_ready(o_));
    rowtile(o_, 0, g_.NO, g_.NO, {y, 0, g_.ppv, true, g_.ppv});
    for (int u = 0; u < B; ++u)
      bin(f32op("ADD"), all(x_, u * g_.NX + r * g_.ppv), all(y, u * g_.ppv), g_.ppv, "x",
          Out{x_, u * g_.NX + r * g_.ppv, 1, {}, {}});
    if (keep) xy_[r] = y;
    else S_.free(y);
    if (r + 1 == g_.RD) {
      S_.free(o_);
      o_.reset();
    }
  }

  // ---- mixture of experts ----
  // The SwiGLU output of expert e (its chunks), allocated at first use.
  ValueP expert_a(int e) {
    auto& v = ae_[e];
    if (!v) v = S_.alloc(fmt::format("a{}", e), g_.B * g_.RF, 0);
    return v;
  }
  ValueP slot_a(int j) {
    auto& v = sa_[j];
    if (!v) v = S_.alloc(fmt::format("k{}", j), g_.B * g_.RF, 0);
    return v;
  }
  // The GATHER index of the current slot for lane (pl, queue): a copy per lane, each in its own
  // MEM slice upstream of the lane's weight slices (one index READ per cycle per slice).
  ValueP slot_idx(int pl, int queue) {
    const int nq = int(S_.planes()[0].qids.size());
    return sidx_.at(std::size_t((cur_slot_ * int(S_.planes().size()) + pl) * nq + queue));
  }
  // The slice of lane (pl, queue)'s GATHER index: one of the side's MEM slices upstream of the
  // expert-region slices (which are the outermost), one per lane of the side, round robin.
  int index_slice(int pl, int queue) const {
    const auto& planes = S_.planes_const();
    const bool east = planes[std::size_t(pl)].position > S_.vxm_position();
    int lane = 0;
    for (int p2 = 0; p2 < pl; ++p2)
      if ((planes[std::size_t(p2)].position > S_.vxm_position()) == east) lane += int(planes[std::size_t(p2)].qids.size());
    lane += queue;
    const auto& sl = S_.slices_const();
    std::vector<int> cand;
    for (std::size_t s = 0; s < sl.size(); ++s)  // (VXM outward)
      if ((sl[s].name[4] == 'e') == east) {
        if (gather_slices_.count(int(s))) break;
        cand.push_back(int(s));
      }
    if (cand.empty()) throw Error("does not fit: every MEM slice of a side holds expert weights; no room for the GATHER indexes");
    // The outermost of them (next to the expert regions, away from the VXM's scratch traffic).
    return cand[cand.size() - 1 - std::size_t(lane) % cand.size()];
  }

  // The router's row tile: logits of the experts in lanes 0 .. X-1 of one f32 vector per user.
  void router(int l) {
    const std::string L = fmt::format("L{}", l);
    if (!h2_) h2_ = norm(x_, gain_ffn_.at(l), L + ".fn", &h2_b_);
    if (!logits_) logits_ = S_.alloc("router", g_.B, min_ready(h2_));
    rowtile(h2_, 0, g_.NK, g_.NK, {logits_, 0, 1, true, 1}, h2_b_);
  }
  // The lowest lane set in a mask vector, as an f32 in every lane: min over the set lanes of the
  // lane numbers (SEL with a large value elsewhere), as -RMAX(-x).
  ValueP lowest_lane(const ValueP& mask, const std::string& name) {
    auto cand = vop(f32op("SEL"), {all(mask), Rd{moe_, 0, 0}, kf32(1e9f)}, 1, isa::LatClass::VxmAlu, name + ".c");
    auto nc = un(f32op("NEG"), all(cand), 1, isa::LatClass::VxmAlu, name + ".n");
    S_.free(cand);
    auto mn = un(f32op("RMAX"), all(nc), 1, isa::LatClass::VxmReduce, name + ".m");
    S_.free(nc);
    auto r = un(f32op("NEG"), all(mn), 1, isa::LatClass::VxmAlu, name);
    S_.free(mn);
    return r;
  }

  // Gates from the logits (every member, after the router's exchange): the top experts_per_token
  // lanes, the lowest of equal ones first; exp(logit - max) on them, 0 elsewhere, over their
  // sum (docs/decode.md, "Mixture of experts"). gates_[u X + e]: expert e's gate in every lane.
  void gating() {
    const int B = g_.B;
    const float ninf = -std::numeric_limits<float>::infinity();
    gates_ = S_.alloc("gates", B * g_.X, min_ready(logits_));
    const Rd lanef{moe_, 0, 0}, valid{moe_, 1, 0};
    for (int u = 0; u < B; ++u) {
      auto l0 = vop(f32op("SEL"), {valid, Rd{logits_, u, 0}, kf32(ninf)}, 1, isa::LatClass::VxmAlu, "moe.l0");
      auto mx = un(f32op("RMAX"), all(l0), 1, isa::LatClass::VxmReduce, "moe.mx");
      ValueP l = l0, sel;
      for (int k = 0; k < g_.XK; ++k) {
        ValueP m = k == 0 ? mx : un(f32op("RMAX"), all(l), 1, isa::LatClass::VxmReduce, "moe.m");
        auto eq = bin(f32op("CMPEQ"), all(l), all(m), 1, "moe.eq");
        if (k > 0) S_.free(m);
        auto first = lowest_lane(eq, "moe.first");
        S_.free(eq);
        auto oh = bin(f32op("CMPEQ"), lanef, all(first), 1, "moe.oh");
        S_.free(first);
        if (sel) {
          auto s2 = bin("OR.i32", all(sel), all(oh), 1, "moe.sel");
          S_.free(sel);
          sel = s2;
        } else {
          sel = oh;
        }
        if (k + 1 < g_.XK) {
          auto l2 = vop(f32op("SEL"), {all(oh), kf32(ninf), all(l)}, 1, isa::LatClass::VxmAlu, "moe.l");
          if (l != l0) S_.free(l);
          l = l2;
        }
        if (oh != sel) S_.free(oh);
      }
      if (l != l0) S_.free(l);
      auto d = bin(f32op("SUB"), all(l0), all(mx), 1, "moe.d");
      S_.free(l0);
      S_.free(mx);
      auto ex = un(f32op("EXP"), all(d), 1, isa::LatClass::VxmTrans, "moe.ex");
      S_.free(d);
      auto ex2 = vop(f32op("SEL"), {all(sel), all(ex), kf32(0.0f)}, 1, isa::LatClass::VxmAlu, "moe.ex2");
      S_.free(ex);
      auto sm = un(f32op("SUM"), all(ex2), 1, isa::LatClass::VxmReduce, "moe.sum");
      auto r = un(f32op("RECIP"), all(sm), 1, isa::LatClass::VxmTrans, "moe.r");
      S_.free(sm);
      auto gv = bin(f32op("MUL"), all(ex2), all(r), 1, "moe.g");
      S_.free(ex2);
      S_.free(r);
      if (g_.sparse) {
        // The chosen experts in increasing order (the order their outputs add into x, as the
        // dense evaluation's): slot j's expert, its gate (the sum of the one-hot's lane) and its
        // GATHER index e XS (i16 in every element), copied to the index slice of either side.
        ValueP rem = sel;
        for (int j = 0; j < g_.XK; ++j) {
          auto e = lowest_lane(rem, "moe.ke");
          auto oh = bin(f32op("CMPEQ"), lanef, all(e), 1, "moe.koh");
          auto gj = vop(f32op("SEL"), {all(oh), all(gv), kf32(0.0f)}, 1, isa::LatClass::VxmAlu, "moe.kg");
          un(f32op("SUM"), all(gj), 1, isa::LatClass::VxmReduce, "moe.gate", Out{gates_, u * g_.XK + j, 1, {}, {}});
          S_.free(gj);
          if (j + 1 < g_.XK) {
            auto r2 = vop("SEL.i32", {all(oh), Rd::constant("CONST.i32", 0), all(rem)}, 1, isa::LatClass::VxmAlu, "moe.rem");
            if (rem != sel) S_.free(rem);
            rem = r2;
          }
          S_.free(oh);
          auto off = bin(f32op("MUL"), all(e), kf32(float(g_.XS)), 1, "moe.off");
          S_.free(e);
          std::vector<ValueP> halves;
          for (int part = 0; part < 2; ++part)
            halves.push_back(vop("CVT.f32.i16", {all(off)}, 1, isa::LatClass::VxmCvt, "moe.ix", std::nullopt,
                                 {Operand::in(0), Operand::out(), Operand::lit_(std::to_string(part))}));
          S_.free(off);
          auto ix = bin("ADD.i16", all(halves[0]), all(halves[1]), 1, fmt::format("kidx{}", j));
          for (auto& h : halves) S_.free(h);
          for (int pl = 0; pl < int(S_.planes().size()); ++pl)
            for (int q = 0; q < int(S_.planes()[std::size_t(pl)].qids.size()); ++q) {
              Out o;
              o.name = fmt::format("kidx{}p{}q{}", j, pl, q);
              o.pool = {index_slice(pl, q)};
              sidx_.push_back(un("MOV", all(ix), 1, isa::LatClass::VxmAlu, o.name, o));
            }
          S_.free(ix);
        }
        if (rem != sel) S_.free(rem);
        S_.free(sel);
        S_.free(gv);
        continue;
      }
      S_.free(sel);
      for (int e = 0; e < g_.X; ++e)
        vop("DIST.f32", {Rd{gv, 0, 0}}, 1, isa::LatClass::SxmShift, "moe.gb", Out{gates_, u * g_.X + e, 1, {}, {}},
            {Operand::in(0), Operand::out(), Operand::lit_(std::to_string(e))}, e % 2 ? UnitKind::SxmW : UnitKind::SxmE);
      S_.free(gv);
    }
    S_.free(logits_);
    logits_.reset();
  }

  void chunk(int l, int c, int e = -1, int slot = -1) {
    const int B = g_.B;
    const std::string L = fmt::format("L{}", l);
    if (!h2_) h2_ = norm(x_, gain_ffn_.at(l), L + ".fn", &h2_b_);
    ValueP gt = S_.alloc(L + ".gate", B * g_.ppv, min_ready(h2_));
    ValueP up = S_.alloc(L + ".up", B * g_.ppv, min_ready(h2_));
    cur_slot_ = slot;
    rowtile(h2_, 0, g_.NK, g_.NK, {gt, 0, g_.ppv, true, g_.ppv}, h2_b_);
    rowtile(h2_, 0, g_.NK, g_.NK, {up, 0, g_.ppv, true, g_.ppv}, h2_b_);
    auto sl = un(f32op("SILU"), all(gt), B * g_.ppv, isa::LatClass::VxmTrans, L + ".silu");
    S_.free(gt);
    auto af = bin(f32op("MUL"), all(sl), all(up), B * g_.ppv, L + ".af");
    S_.free(sl);
    S_.free(up);
    // a[u][c]: one vector of the weight type per user.
    const ValueP a = slot >= 0 ? slot_a(slot) : e >= 0 ? expert_a(e) : a_;
    if (e < 0 && slot < 0 && dual_a(sh_.me)) {
      // (by the VXM, then to the east and the west copy)
      for (int u = 0; u < B; ++u) {
        auto cv = cvt_combine(af, u * g_.ppv, 1, L + ".a");
        un("MOV", all(cv), 1, isa::LatClass::VxmAlu, L + ".a", Out{a, u * g_.RF + c, 1, {}, {}});
        un("MOV", all(cv), 1, isa::LatClass::VxmAlu, L + ".a", Out{a_west(), u * g_.RF + c, 1, {}, {}});
        S_.free(cv);
      }
    } else {
      for (int u = 0; u < B; ++u) cvt_combine(af, u * g_.ppv, 1, L + ".a", Out{a, u * g_.RF + c, 1, {}, {}});
    }
    S_.free(af);
  }

  // Down projection row tile r and its residual; of expert e: x += (y * gate_e).
  void down(int r, int e = -1, int slot = -1) {
    const int B = g_.B;
    ValueP a = slot >= 0 ? slot_a(slot) : e >= 0 ? expert_a(e) : a_;
    if (e < 0 && slot < 0 && dual_a(sh_.me) && plane_side(rt_plane_[std::size_t(rt_next_)]) != xside()) a = a_west();
    const bool keep = e < 0 && slot < 0 && product_xchg(Unit::Down);
    ValueP y = keep ? product_buf("dn", B * g_.ppv, min_ready(a)) : S_.alloc("dn", B * g_.ppv, min_ready(a));
    cur_slot_ = slot;
    rowtile(a, 0, g_.RF, g_.RF, {y, 0, g_.ppv, true, g_.ppv});
    if (e >= 0 || slot >= 0) {
      // (sparse: slot's gate; B is 1)
      const int gi = slot >= 0 ? slot : e, stride = slot >= 0 ? g_.XK : g_.X;
      ValueP yg = S_.alloc("dng", B * g_.ppv, min_ready(y));
      for (int u = 0; u < B; ++u)
        bin(f32op("MUL"), all(y, u * g_.ppv), Rd{gates_, u * stride + gi, 0}, g_.ppv, "dng", Out{yg, u * g_.ppv, 1, {}, {}});
      S_.free(y);
      y = yg;
    }
    for (int u = 0; u < B; ++u)
      bin(f32op("ADD"), all(x_, u * g_.NX + r * g_.ppv), all(y, u * g_.ppv), g_.ppv, "x",
          Out{x_, u * g_.NX + r * g_.ppv, 1, {}, {}});
    if (keep) xy_[r] = y;
    else S_.free(y);
  }

  void head(int r) {
    const int B = g_.B;
    if (!hf_) {
      hf_ = norm(x_, gain_final_, "fin");
      logits_first_ = r * g_.ppv;
    }
    const int np = std::min(g_.ppv, g_.NL - r * g_.ppv);
    ValueP y = S_.alloc("logits", B * g_.ppv, min_ready(hf_));
    rowtile(hf_, 0, g_.NK, g_.NK, {y, 0, g_.ppv, true, np});
    for (int u = 0; u < B; ++u)
      for (int p = 0; p < np; ++p) {
        OpSpec s;
        s.unit = UnitKind::SxmE;
        s.mnem = "DMAOUT";
        s.ops = {Operand::in(0), Operand::lit_("1")};
        s.lat = isa::LatClass::Dma;
        s.in = {Rd{y, u * g_.ppv + p, 1}};
        s.earliest = last_dmaout_ + 1;
        auto res = S_.op(s);
        last_dmaout_ = res.t;
        ++dma_out_count_;
      }
    S_.free(y);
  }

  std::string header() const {
    std::string s;
    s += fmt::format("; decode step: {} (generated by lpu gen decoder; docs/decode.md)\n", describe_units(units_));
    s += fmt::format("; model {}, weights {}, {} users per run, context {}\n", m_.name, weight_dtype_name(g_.t), g_.B, g_.C);
    s += fmt::format(".preset {}\n", p_.name);
    for (const auto& sr : syms_) {
      const auto& sl = S_.slices_const()[std::size_t(sr.slice)];
      s += fmt::format(".symbol {} {}[{}, {}] {} @ {}\n", sr.name, isa::dtype_info(sr.dtype).name, sr.rows, sr.elems, sl.name, sr.row);
    }
    s += ".reg r1 = 0\n";
    for (int k = 0; k < g_.kregs(); ++k) s += fmt::format(".reg r{} = {}\n", 2 + k, k == 0 ? (g_.kt ? g_.prk : 1) : 0);
    for (int k = 0; k < g_.mv; ++k) s += fmt::format(".reg r{} = {}\n", 2 + g_.kregs() + k, k == 0 ? g_.prt : 0);
    return s;
  }

 public:
  const std::vector<SymRows>& syms() const { return syms_; }

 private:
  struct KvLayer {
    std::vector<std::vector<std::vector<KPart>>> k;                // [u][group][part]
    std::vector<std::vector<std::vector<std::vector<KPart>>>> vt;  // [u][T][j][part]
  };

  const Geo& g_;
  const ChipParams& p_;
  const ModelShape& m_;
  std::vector<Unit> units_;
  int layer0_ = 0;  // symbols and placement name layers relative to the chip's first
  bool first_, dma_in_;
  std::vector<Cycle> arr_;
  int in_links_;
  Live in_live_, out_live_;
  int out_links_;
  ChipSched S_;
  std::vector<int> inner_;
  std::array<std::vector<int>, 2> edge_;  // product_xchg's slices, west and east, outermost first
  std::map<int, ValueP> xy_;              // product_xchg: the member's products by row tile
  std::size_t xturn_ = 0;                 // product_buf's turn among the edge slices
  std::optional<std::set<int>> edge_cand_;  // edge_candidates(), once
  std::vector<int> scratch_slices_;  // the slices without weights
  std::vector<int> lwm_lanes_;       // weight-bus lanes per plane (empty: LW lanes)
  std::map<int, std::int64_t> top_;
  std::set<int> avoid_, kslices_;
  std::set<int> gather_slices_;  // MEM slices holding expert regions (sparse routing)
  std::vector<std::vector<TileRef>> tiles_;
  std::vector<int> tile_cursor_;
  std::vector<int> rt_plane_;
  int rt_next_ = 0;
  int attn_plane_ = 0;
  std::vector<SymRows> syms_;
  ValueP const_, gain_final_;
  std::vector<ValueP> iota_;  // per head of a kv head
  std::map<int, ValueP> gain_attn_, gain_ffn_;
  std::map<int, KvLayer> kv_;
  ValueP x_, sc_, h_, q_, k_, v_, h2_, a_, o_, hf_;
  ValueP a_w_;  // dual_a: the west copy of a
  ValueP h_b_, h2_b_;  // the norms' results split by parity: the odd k-tiles (norm(..., odd))
  ValueP moe_, logits_, gates_;   // mixture of experts: table, router logits, gates (per expert or slot)
  std::map<int, ValueP> ae_;      // per expert: its SwiGLU output
  std::map<int, ValueP> sa_;      // sparse: per slot, the SwiGLU output of its expert
  std::vector<ValueP> sidx_;      // sparse: per slot and side (east, west), the GATHER index vector
  int cur_slot_ = -1;             // the slot whose tiles rowtile() loads
  std::vector<Cycle> sends_;
  struct Recvd {
    ValueP v;
    int idx;
    Cycle recv, ready;
  };
  std::vector<Recvd> recvd_;
  int dma_in_count_ = 0, dma_out_count_ = 0, logits_first_ = 0;
  Cycle last_dmaout_ = -1;
  Shard sh_;
  int xe_ = 0;
  std::size_t ui_ = 0;
  Unit pending_{Unit::Xchg, 0, 0, 0};
  std::map<int, Cycle> xlast_send_;
  std::vector<XVec> xsend_;
};

}  // namespace gen

// ---- the plan ------------------------------------------------------------------------------------

namespace gen {
nlohmann::json placement_json(const std::vector<SymRows>& syms) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& sr : syms) {
    nlohmann::json e = {{"symbol", sr.name},
                        {"slice", sr.slice_name},
                        {"row", sr.row},
                        {"rows", sr.rows},
                        {"dtype", std::string(isa::dtype_info(sr.dtype).name)},
                        {"kind", sr.kind}};
    if (!sr.entries.empty()) {
      // Runs of tile parts: "layers.3.wq tile rows 0-106: tiles (row 0, k 0) to (row 3, k 25)".
      std::vector<std::string> runs;
      std::size_t i0 = 0;
      while (i0 < sr.entries.size()) {
        std::size_t i1 = i0;
        const auto& ea = sr.entries[i0];
        if (ea.mat < 0) {
          runs.push_back(fmt::format("{} zero rows", ea.count));
          ++i0;
          continue;
        }
        while (i1 + 1 < sr.entries.size() && sr.entries[i1 + 1].mat == ea.mat && sr.entries[i1 + 1].layer == ea.layer &&
               sr.entries[i1 + 1].expert == ea.expert && sr.entries[i1 + 1].first == ea.first && sr.entries[i1 + 1].step == ea.step)
          ++i1;
        const auto& eb = sr.entries[i1];
        const std::string mn = ea.mat == MLM       ? "output"
                               : ea.expert >= 0    ? fmt::format("layers.{}.experts.{}.{}", ea.layer, ea.expert, mat_name(ea.mat))
                                                   : fmt::format("layers.{}.{}", ea.layer, mat_name(ea.mat));
        const std::string rws = ea.step == 1 ? fmt::format("{}-{}", ea.first, ea.first + ea.count - 1)
                                             : fmt::format("{}, {}, ... {}", ea.first, ea.first + ea.step,
                                                           ea.first + (ea.count - 1) * ea.step);
        runs.push_back(fmt::format("{} tile rows {}: tiles (row {}, k {}) to (row {}, k {})", mn, rws, ea.r, ea.c, eb.r, eb.c));
        i0 = i1 + 1;
      }
      e["tile_parts"] = sr.entries.size();
      e["contents"] = runs;
    }
    if (sr.kind == "gain")
      e["tensor"] = sr.which == 2 ? "norm.weight"
                                  : fmt::format("layers.{}.{}_norm.weight", sr.layer, sr.which == 0 ? "attention" : "ffn");
    j.push_back(e);
  }
  return j;
}
}  // namespace gen

struct PlanDetail {
  gen::Geo g;
  // Per stage: its schedule's symbols (shared by the stages of one schedule) and the layer they
  // start at (the schedule names layers relative to its stage's first). syms(stage) applies it.
  std::vector<std::shared_ptr<const std::vector<gen::SymRows>>> sched_syms;
  std::vector<int> layer0;
  std::vector<gen::SymRows> syms(std::size_t stage) const {
    auto s = *sched_syms.at(stage);
    const int l0 = layer0.at(stage);
    for (auto& sr : s) {
      for (auto& en : sr.entries)
        if (en.mat != gen::MLM) en.layer += l0;
      if (sr.kind == "gain" && sr.which != 2) sr.layer += l0;
    }
    return s;
  }
};

namespace {

using namespace gen;

std::string substitute_links(const std::string& s, const std::vector<int>& out, const std::vector<int>& in) {
  std::string r;
  r.reserve(s.size());
  std::size_t pos = 0;
  for (;;) {
    const std::size_t at = s.find("@L", pos);
    if (at == std::string::npos) break;
    r.append(s, pos, at - pos);
    const char kind = at + 2 < s.size() ? s[at + 2] : 0;
    const std::size_t end = s.find('@', at + 3);
    if ((kind != 'O' && kind != 'I') || end == std::string::npos) {
      r += "@L";
      pos = at + 2;
      continue;
    }
    const auto k = std::size_t(parse_int(std::string_view(s).substr(at + 3, end - at - 3), "generator link slot", IntRange{0, 1 << 30}));
    const auto& v = kind == 'O' ? out : in;
    if (k >= v.size()) throw Error("generator: internal error: a link slot without a link");
    r += std::to_string(v[k]);
    pos = end + 1;
  }
  r.append(s, pos, std::string::npos);
  return r;
}

double bytes_of(isa::Dtype t) { return double(isa::dtype_bytes(t)); }

}  // namespace

// The group size plan_groups() picks when --tensor is not given: the largest block of chips
// from chip 0 linked all-to-all (a tray of the LPX rack), at most 8 for hybrid.
int preliminary_group_size(const rack::RackConfig& cfg, bool one_group, int N) {
  auto linked = [&](int a, int b) {
    for (int l = 0; l < cfg.topology.links; ++l)
      if (cfg.topology.port(a, l).peer == b) return true;
    return false;
  };
  const int tmax = one_group ? N : std::min(N, 8);
  int T = 1;
  while (T < tmax) {
    bool ok = true;
    for (int a = 0; a < T && ok; ++a) ok = linked(a, T) && linked(T, a);
    if (!ok) break;
    ++T;
  }
  return T;
}

DecoderPlan plan_decoder(const DecoderSpec& spec) {
  const auto t0 = std::chrono::steady_clock::now();
  DecoderPlan plan;
  plan.spec = spec;
  if (spec.partition != "pipeline" && spec.partition != "tensor" && spec.partition != "hybrid")
    throw Error(fmt::format("--partition {}: unknown (pipeline, tensor or hybrid)", spec.partition));
  if (spec.partition == "pipeline" && spec.tensor > 1)
    throw Error(fmt::format("--tensor {}: the pipeline partition has no tensor groups (use --partition hybrid)", spec.tensor));
  if (spec.partition != "pipeline" && (spec.chips_per_layer > 0))
    throw Error(fmt::format("--chips-per-layer: the {} partition keeps whole layers on a tensor group", spec.partition));
  plan.model = load_model(spec.model);
  const ModelShape& m = plan.model;
  weight_names(m);  // grouped-query attention, dense or routed experts: throws otherwise
  if (m.experts > 0 && spec.partition == "pipeline")
    throw Error(fmt::format("{} is a mixture of experts: its layers need tensor groups (--partition hybrid or tensor); the "
                            "pipeline partition does not cut a layer's experts across chips",
                            m.name));
  plan.wtype = parse_weight_dtype(spec.dtype);
  if (spec.rack.empty()) throw Error("a rack file is required (--rack FILE)");
  plan.rack = rack::load_rack(spec.rack);
  const auto& cfg = plan.rack;
  for (int c = 0; c < cfg.chips; ++c)
    if (cfg.chip_params[std::size_t(c)] != cfg.chip_params[0] || cfg.start_skew[std::size_t(c)] != 0)
      throw Error(fmt::format("rack {}: the decoder needs identical chips without start skew (chip {} differs)", cfg.origin, c));
  const ChipParams& p = cfg.chip(0);
  if (spec.users < 1 || spec.batch < 1 || spec.users % spec.batch != 0)
    throw Error(fmt::format("--users {} and --batch {}: users must be a positive multiple of the batch", spec.users, spec.batch));
  const int ctx = spec.context > 0 ? spec.context : std::min(m.max_context > 0 ? m.max_context : 8192, 8192);
  plan.context = ctx;
  Geo g = make_geo(m, p, plan.wtype, ctx, spec.users, spec.batch);
  if (spec.attention != "full" && spec.attention != "none")
    throw Error(fmt::format("--attention {}: full or none", spec.attention));
  g.ffn_only = spec.attention == "none";
  if (spec.kv_len < 0 || spec.kv_len > ctx)
    throw Error(fmt::format("--kv-len {}: the tokens in the KV cache are 1 .. the context ({}), or 0 for all of it", spec.kv_len, ctx));
  if (spec.kv_len > 0) g.nab = std::min(g.nblk, cdiv(spec.kv_len, g.n));
  plan.kv_block = g.n;
  plan.kv_len = spec.kv_len > 0 ? spec.kv_len : ctx;
  if (spec.moe != "sparse" && spec.moe != "dense") throw Error(fmt::format("--moe {}: sparse or dense", spec.moe));
  if (g.X > 0 && spec.moe == "sparse") {
    if (spec.batch != 1)
      throw Error(fmt::format("--moe sparse loads each user's chosen experts: it needs --batch 1 (or --moe dense), not {}",
                              spec.batch));
    g.sparse = true;
    // An expert's region of a weight slice (a lane's rows of a tile may continue in the next
    // slice); e XS must fit the GATHER's i16 index.
    g.XS = p.mem.rows / g.X;
    if (g.XS == 0) throw Error(fmt::format("--moe sparse: a MEM slice of {} rows is too small for {} experts", p.mem.rows, g.X));
    if (std::int64_t(g.X - 1) * g.XS > 32767)
      throw Error(fmt::format("--moe sparse: {} experts x {} rows exceed the GATHER index (i16)", g.X, g.XS));
  }
  if (spec.k_cache != "auto" && spec.k_cache != "rows" && spec.k_cache != "transposed")
    throw Error(fmt::format("--k-cache {}: auto, rows or transposed", spec.k_cache));
  if (spec.softmax != "auto" && spec.softmax != "halves" && spec.softmax != "whole")
    throw Error(fmt::format("--softmax {}: auto, halves or whole", spec.softmax));
  g.sm_halves = spec.softmax == "halves" ? 4 : spec.softmax == "whole" ? std::numeric_limits<int>::max() : 32;
  if (spec.weight_path != "auto" && spec.weight_path != "lwm" && spec.weight_path != "lw")
    throw Error(fmt::format("--weight-path {}: auto, lwm or lw", spec.weight_path));
  if (spec.weight_path == "lwm" && g.sparse)
    throw Error("--weight-path lwm: sparse experts are GATHERed over streams (LW); use --moe dense or --weight-path lw");
  g.lwm = spec.weight_path == "lwm" || (spec.weight_path == "auto" && !g.sparse);
  // Over the weight bus, V^T tiles too: their rows over up to 64 slices of a plane's side (a chip
  // with planes on both sides), a tile in ceil(rows / 64) cycles instead of a third of its rows.
  // (64 rather than 16, measured on lp30: a 128-row head's V^T tile and 160-row K^T tile install in
  // 2 and 3 cycles instead of 8 and 10; Llama-3-8B pipeline at 8k context 1,242 -> 1,324
  // tokens/s per user, Llama-3-70B hybrid at 32k 631 -> 691, at 8k 1,115 -> 1,133; the 8B hybrid at
  // 1k unchanged.)
  g.kv_lwm = g.lwm && p.mxm.planes >= 2;
  // Tensor groups: the attention core is shared by kv heads among the members. When K rows and
  // V^T tiles pack several kv heads, fewer members than kv heads get a share and the rest wait;
  // with the group at least as large as the core's units could be, a K row and a V^T tile hold
  // one kv head each (the same tiles, half used), so every member gets its heads' core.
  if (spec.partition != "pipeline") {
    const int T = spec.tensor > 0 ? spec.tensor : preliminary_group_size(cfg, spec.partition == "tensor", spec.chips > 0 ? std::min(spec.chips, cfg.chips) : cfg.chips);
    if (g.core_units() < std::min(T, g.KV)) narrow_core(g);
  }
  if (g.kv_lwm) {
    // K^T loads a K tile in prk cycles instead of a third of n, for a column write of Rkt DISTs
    // and SELs per token: taken when the load cycles saved over the context exceed four times
    // the write (measured on lp30: Llama-3-8B and -70B at 1k context are 3-11% faster with K rows,
    // at 8k 2-11% slower), or when K rows would need more registers than the contract has.
    const int jv = std::min(64, std::min(g.Rvt, p.mxm.install_rows_per_cycle));
    Geo rows_k = g;
    set_kv_parts(rows_k, p.mem.rows, jv, false);
    set_kv_parts(g, p.mem.rows, jv, true);
    const std::int64_t saved = std::int64_t(g.nblk) * (cdiv(g.n, 3) - g.prk);
    if (spec.k_cache == "rows" || (spec.k_cache == "auto" && saved <= 4 * std::int64_t(g.Rkt) && kv_registers_fit(rows_k)))
      g = rows_k;
  } else {
    if (spec.k_cache == "transposed")
      throw Error("--k-cache transposed: the K^T cache loads over the weight bus, which needs an MXM plane on each side and "
                  "--weight-path lwm or auto");
    set_kv_parts(g, p.mem.rows, 3);
  }
  check_kv_registers(g);
  plan.weight_path = g.lwm ? "lwm" : "lw";
  plan.reduce_block = g.E;
  plan.vector_bytes = g.V;
  plan.x_vectors = g.NX;
  plan.const_vectors = g.NSC;
  plan.logits_vectors = g.NL;

  // Capacity in weight tiles per chip (docs/decode.md, "Placement").
  const std::int64_t rows = p.mem.rows;
  const std::int64_t chip_rows = rows * 2 * p.mem.slices_per_hemisphere;
  const int nq = p.mxm.queues_per_plane;
  const int a = cdiv(g.n, nq);
  const std::int64_t lanes = std::int64_t(p.mxm.planes) * nq;
  // (--attention none: no KV cache, no attention weights)
  const std::int64_t kv_user =
      g.ffn_only ? 0
                 : (g.kt ? std::int64_t(g.NKG) * g.JK * g.mkt * (g.prk + std::int64_t(g.bpsk) * g.prk)
                         : std::int64_t(g.NKG) * 3 * g.mk * (1 + g.bps * g.ka)) +
                       std::int64_t(g.NVT) * g.JV * g.mv * (g.prt + std::int64_t(g.bpsv) * g.prt);
  const std::int64_t fixed = C_SLOT0 + slot_masks(g) + std::int64_t(g.G) * g.NS + 3 * std::int64_t(g.NX);
  const std::int64_t scratch = std::min(chip_rows / 8, 8 * rows);
  const double frag = double((rows / a) * a) / double(rows);
  auto cap_tiles = [&](std::int64_t kv_rows) {
    const double usable = double(chip_rows - scratch - fixed - kv_rows - lanes * rows / 2) * frag;
    const std::int64_t t = usable > 0 ? std::int64_t(usable / double(g.n)) : 0;
    if (!g.lwm) return t;
    // Weight-bus lanes: a lane per slice, the KV cache (its parts rounded up) and tables apart.
    const int other = int((kv_rows * 11 / 10 + rows - 1) / rows) + 2;
    return std::min(t, lwm_capacity_tiles(p, g.n, other));
  };
  const std::int64_t kv_rows = kv_user * spec.users;
  const std::int64_t cap = cap_tiles(0);
  // The KV cache of a layer counts as tiles of its attention core.
  const std::int64_t kv_tiles = std::int64_t(double(kv_rows) / frag / double(g.n)) + 1;
  const std::int64_t head_tiles = std::int64_t(g.RV) * g.NK;
  const std::int64_t ffn_copies = g.X > 0 ? g.X : 1;  // a mixture of experts: every expert (and the router)
  const std::int64_t layer_tiles =
      g.attn_tiles() + ffn_copies * (std::int64_t(g.RF) * 2 * g.NK + std::int64_t(g.RD) * g.RF) + (g.X > 0 ? g.NK : 0);
  const int N = spec.chips > 0 ? spec.chips : cfg.chips;
  if (N > cfg.chips) throw Error(fmt::format("--chips {}: the rack {} has {} chips", N, cfg.origin, cfg.chips));

  auto does_not_fit = [&](int need_chips, const std::string& why) {
    const double bw = bytes_of(plan.wtype);
    auto c = capacity(m, p, bw, bw, ctx, spec.users, cfg.chips);
    return Error(fmt::format(
        "{} ({}, context {}, {} user{}) does not fit on {} chips of {}: it needs at least {} chips ({:.2f} racks of {}) by "
        "`lpu capacity` (weights {:.2f} GB + KV cache {:.2f} GB in {:.1f} MB per chip){}{}",
        m.name, weight_dtype_name(plan.wtype), ctx, spec.users, spec.users == 1 ? "" : "s", N, cfg.name, c.chips,
        double(c.chips) / cfg.chips, cfg.chips, c.weight_bytes / 1e9, c.kv_bytes / 1e9, c.chip_sram_bytes / 1e6,
        need_chips > 0 ? fmt::format(", and {} chips ({:.2f} racks) with this generator's layout ({})", need_chips,
                                     double(need_chips) / cfg.chips,
                                     spec.partition == "pipeline"
                                         ? "padded tiles, a layer's attention core and KV cache on one chip"
                                         : "padded tiles, whole layers per tensor group")
                       : std::string(),
        why.empty() ? "" : "; " + why));
  };

  if (spec.partition == "pipeline" && kv_tiles > cap)
    throw does_not_fit(0, fmt::format("one layer's KV cache for {} user(s) at context {} ({:.1f} MB) does not fit one chip beside "
                                      "its tables and scratch; the KV cache of a layer is not split across chips",
                                      spec.users, ctx, double(kv_rows) * g.V / 1e6));
  // Links between consecutive stages (chips 0 .. S-1 of the rack, in order).
  auto links_between = [&](int c0, int c1) {
    std::vector<int> ls;
    int cls = -1;
    for (int l = 0; l < cfg.topology.links; ++l) {
      const auto& pt = cfg.topology.port(c0, l);
      if (pt.peer != c1) continue;
      if (cls < 0) cls = pt.cls;
      if (pt.cls != cls) continue;
      if (int(ls.size()) < spec.max_links) ls.push_back(l);
    }
    if (ls.empty())
      throw Error(fmt::format("the pipeline needs a link from chip {} to chip {}; topology {} has none", c0, c1,
                              cfg.topology.describe()));
    return ls;
  };

  auto detail = std::make_shared<PlanDetail>();
  detail->g = g;
  std::map<std::string, std::pair<ChipOut, int>> memo;  // key -> schedule, its first stage
  std::vector<std::pair<std::size_t, int>> prog_index;  // text hash, program
  std::vector<const ChipOut*> sched_keys;                // schedules, in order of first use
  std::map<const ChipOut*, std::shared_ptr<const std::vector<SymRows>>> syms_of;  // per schedule
  // A chip of the plan: its program (schedules that differ only in link numbers share one
  // assembly), start, links and placement.
  auto register_chip = [&](ChipPlan& cp, const ChipOut& co, std::int64_t delay, const std::vector<int>& out_links,
                           const std::vector<int>& in_links, int l0) {
    // The link numbers of this chip in place of the schedule's link slots (@LOk@, @LIk@).
    std::string text = substitute_links(co.text, out_links, in_links);
    const std::size_t hash = std::hash<std::string>{}(text);
    int found = -1;
    for (auto [h, idx] : prog_index)
      if (h == hash && plan.programs[std::size_t(idx)] == text) found = idx;
    if (found < 0) {
      found = int(plan.programs.size());
      prog_index.emplace_back(hash, found);
      plan.program_names.push_back(fmt::format("decode_p{:03d}", plan.programs.size()));
      plan.programs.push_back(std::move(text));
      int sid = -1;
      for (std::size_t si = 0; si < sched_keys.size(); ++si)
        if (sched_keys[si] == &co) sid = int(si);
      if (sid < 0) {
        sid = int(sched_keys.size());
        sched_keys.push_back(&co);
      }
      plan.program_schedule.push_back(sid);
      plan.program_out_links.push_back(out_links);
      plan.program_in_links.push_back(in_links);
    }
    cp.program = found;
    cp.start_delay = delay;
    cp.cycles = co.cycles;
    cp.first_send = co.send.empty() ? -1 : co.send.front();
    cp.tiles = co.tiles;
    cp.in_links = in_links;
    cp.out_links = out_links;
    cp.dma_in_vectors = co.dma_in;
    cp.dma_out_vectors = co.dma_out;
    cp.logits_first = co.logits_first;
    // The schedule may come from another layer's stage: its symbols name layers relative to
    // the stage's first layer (applied by PlanDetail::syms; one copy per schedule is kept).
    auto& shared = syms_of[&co];
    if (!shared) shared = std::make_shared<const std::vector<SymRows>>(co.syms);
    detail->sched_syms.push_back(shared);
    detail->layer0.push_back(l0);
  };


  // The chips in pipeline order: consecutive stages on linked chips. Chips 0, 1, ... when they
  // form a chain (lpx, ring, full); else a walk that always moves to the unvisited neighbour
  // with the fewest unvisited neighbours (Warnsdorff's rule: a snake through a torus).
  auto chain_order = [&](int S) {
    std::vector<int> order;
    bool chain = true;
    for (int c = 0; c + 1 < S && chain; ++c) chain = cfg.topology.link_to(c, c + 1) >= 0;
    if (chain) {
      for (int c = 0; c < S; ++c) order.push_back(c);
    } else {
      std::vector<char> used(std::size_t(cfg.chips), 0);
      auto nbrs = [&](int c) {
        std::vector<int> v;
        for (int l = 0; l < cfg.topology.links; ++l) {
          const int pc = cfg.topology.port(c, l).peer;
          if (pc >= 0 && pc < N && !used[std::size_t(pc)] && std::find(v.begin(), v.end(), pc) == v.end()) v.push_back(pc);
        }
        return v;
      };
      int c = 0;
      for (;;) {
        order.push_back(c);
        used[std::size_t(c)] = 1;
        if (int(order.size()) == S) break;
        int best = -1;
        std::size_t best_deg = 0;
        for (int pc : nbrs(c)) {
          const auto deg = nbrs(pc).size();
          if (best < 0 || deg < best_deg || (deg == best_deg && pc < best)) {
            best = pc;
            best_deg = deg;
          }
        }
        if (best < 0)
          throw Error(fmt::format("no chain of {} linked chips found in topology {} (the walk ended after {} chips)", S,
                                  cfg.topology.describe(), order.size()));
        c = best;
      }
    }
    return order;
  };

  // ---- tensor and hybrid partitions: groups of T directly linked chips ----
  auto plan_groups = [&]() {
    const bool one_group = spec.partition == "tensor";
    auto nlinks = [&](int c0, int c1) {
      int n = 0;
      for (int l = 0; l < cfg.topology.links; ++l) n += cfg.topology.port(c0, l).peer == c1;
      return n;
    };
    // Chips [c0, c0 + t) all linked pairwise? (the pair that is not, else {-1, -1})
    auto unlinked = [&](int c0, int t) {
      for (int a0 = c0; a0 < c0 + t; ++a0)
        for (int b0 = c0; b0 < c0 + t; ++b0)
          if (a0 != b0 && nlinks(a0, b0) == 0) return std::make_pair(a0, b0);
      return std::make_pair(-1, -1);
    };
    int T = spec.tensor;
    if (T <= 0) {
      // The largest block of chips from chip 0 that is linked all-to-all (a tray of the LPX
      // rack), at most 8 for hybrid.
      const int tmax = one_group ? N : std::min(N, 8);
      T = 1;
      while (T < tmax && unlinked(0, T + 1).first < 0) ++T;
      if (one_group && spec.chips > 0 && T < N) {
        const auto [a0, b0] = unlinked(0, N);
        throw Error(fmt::format("--partition tensor on {} chips: a tensor group must be linked all-to-all, and chips {} and {} of {} "
                                "are not linked (topology {}); use --partition hybrid or fewer --chips",
                                N, a0, b0, cfg.name, cfg.topology.describe()));
      }
    }
    if (T < 2) throw Error(fmt::format("--tensor {}: a tensor group needs at least 2 chips", T));
    if (T > N) throw Error(fmt::format("--tensor {}: only {} chips are used", T, N));
    int Lp = spec.max_links;
    {
      const auto [a0, b0] = unlinked(0, T);
      if (a0 >= 0)
        throw Error(fmt::format("--tensor {}: a tensor group must be linked all-to-all, and chips {} and {} of {} are not linked "
                                "(topology {})",
                                T, a0, b0, cfg.name, cfg.topology.describe()));
      for (int c0 = 0; c0 < T; ++c0)
        for (int c1 = 0; c1 < T; ++c1)
          if (c0 != c1) Lp = std::min(Lp, nlinks(c0, c1));
    }
    const int head_owner = spec.head_chips == 1 ? T - 1 : -1;
    if (spec.head_chips > 1 && spec.head_chips != T)
      throw Error(fmt::format("--head-chips {}: with tensor groups the LM head is shared by the {} chips of its group (default) or "
                              "computed by one of them (--head-chips 1)",
                              spec.head_chips, T));
    // Each member one core unit: q, k and v computed where the attention runs, no exchange
    // (docs/decode.md, "Partitions").
    const bool local_qkv = g.core_units() == T && g.local_qkv_ok();
    // Weight tiles of one member: its share of every run of row tiles.
    auto share = [&](std::int64_t n) { return (n + T - 1) / T; };
    std::int64_t qkv_rows = share(g.RQ + g.RK + g.NVT);
    if (local_qkv) {
      qkv_rows = 0;
      for (int mb = 0; mb < T; ++mb) {
        const auto [lo, hi] = own_range(0, g.core_units(), T, mb);
        std::int64_t c = 0;
        for (const auto& [ta, tb] : g.qkv_tiles(lo * g.core_gran(), std::min(g.KV, hi * g.core_gran()))) c += tb - ta;
        qkv_rows = std::max(qkv_rows, c);
      }
    }
    const std::int64_t member_layer = qkv_rows * g.NK + share(g.RD) * g.NO +
                                      ffn_copies * (share(g.RF) * 2 * g.NK + share(g.RD) * g.RF) + (g.X > 0 ? g.NK : 0);
    const std::int64_t member_head = head_owner >= 0 ? head_tiles : share(g.RV) * g.NK;
    // The KV cache of a member: its share of the kv heads of every layer of its group.
    const int core_s = std::min(T, g.core_units());
    auto member_kv = [&](int layers) {
      return kv_rows * layers * std::int64_t(cdiv(g.core_units(), core_s)) / g.core_units();
    };
    auto fits = [&](int layers, bool head) {
      return std::int64_t(layers) * member_layer + (head ? member_head : 0) <= cap_tiles(member_kv(layers));
    };
    auto group_error = [&](const std::string& why) {
      return does_not_fit(0, fmt::format("{} tensor groups of {} chips, each holding a share of its layers' weights and of "
                                         "their KV cache: {}",
                                         spec.partition, T, why));
    };
    std::vector<std::vector<Unit>> stages;
    const int GA = N / T;
    if (one_group) {
      if (!fits(m.layers, true))
        throw group_error(fmt::format("{} layers and the LM head need {} weight tiles per chip; a chip holds {} beside the KV cache",
                                      m.layers, std::int64_t(m.layers) * member_layer + member_head, cap_tiles(member_kv(m.layers))));
      std::vector<Unit> us;
      for (int l = 0; l < m.layers; ++l)
        for (auto& u : layer_units(g, l, 0)) us.push_back(u);
      for (int r = 0; r < g.RV; ++r) us.push_back({Unit::Head, 0, r, g.NK});
      stages.push_back(std::move(us));
      plan.layers_per_chip = m.layers;
    } else {
      if (!fits(0, true)) throw group_error("the LM head does not fit a group");
      if (!fits(1, false)) throw group_error("one layer does not fit a group; use a larger --tensor");
      int lpg = 0;
      for (int l = 1; l <= m.layers && !lpg; ++l)
        if (cdiv(m.layers, l) + 1 <= GA && fits(l, false)) lpg = l;
      if (!lpg) {
        int l = 1;
        while (l < m.layers && fits(l + 1, false)) ++l;
        const int need = (cdiv(m.layers, l) + 1) * T;
        throw does_not_fit(need, fmt::format("hybrid groups of {} chips hold at most {} layer(s) each: {} layer groups and a head "
                                             "group need {} chips",
                                             T, l, cdiv(m.layers, l), need));
      }
      for (int l0 = 0; l0 < m.layers; l0 += lpg) {
        std::vector<Unit> us;
        for (int l = l0; l < std::min(m.layers, l0 + lpg); ++l)
          for (auto& u : layer_units(g, l, 0)) us.push_back(u);
        stages.push_back(std::move(us));
      }
      std::vector<Unit> hs;
      for (int r = 0; r < g.RV; ++r) hs.push_back({Unit::Head, 0, r, g.NK});
      stages.push_back(std::move(hs));
      plan.layers_per_chip = lpg;
    }
    const int G = int(stages.size());
    plan.tensor = T;
    plan.groups = G;
    plan.chips_per_layer = T;
    plan.head_chips = head_owner >= 0 ? 1 : T;
    // Groups are blocks of T chips along the chain the pipeline partition uses (chips 0, 1, ...
    // on the LPX rack, whose blocks of 8 are its trays; a snake through a torus); each must be
    // linked all-to-all and to the next by at least one link (the leaders: the pair with the
    // most links).
    const std::vector<int> ord = chain_order(G * T);
    auto chip_of = [&](int gi, int mb) { return ord[std::size_t(gi * T + mb)]; };
    for (int gi = 0; gi < G; ++gi)
      for (int a0 = 0; a0 < T; ++a0)
        for (int b0 = 0; b0 < T; ++b0)
          if (a0 != b0 && nlinks(chip_of(gi, a0), chip_of(gi, b0)) == 0)
            throw Error(fmt::format("tensor group {} is not linked all-to-all: chips {} and {} are not linked in topology {}", gi,
                                    chip_of(gi, a0), chip_of(gi, b0), cfg.topology.describe()));
    std::vector<std::pair<int, int>> leaders(std::size_t(G), {0, 0});  // (out leader of gi, in leader of gi + 1)
    for (int gi = 0; gi + 1 < G; ++gi) {
      int best = 0;
      for (int a0 = 0; a0 < T; ++a0)
        for (int b0 = 0; b0 < T; ++b0) {
          const int n = nlinks(chip_of(gi, a0), chip_of(gi + 1, b0));
          if (n > best) {
            best = n;
            leaders[std::size_t(gi)] = {a0, b0};
          }
        }
      if (best == 0)
        throw Error(fmt::format("tensor groups {} and {} (chips {}.. and {}..) have no link between them in topology {}", gi, gi + 1,
                                chip_of(gi, 0), chip_of(gi + 1, 0), cfg.topology.describe()));
    }
    // Links of member mb of group gi to its peers (slot order: peer offset d = 1 .. T-1, then link).
    auto peer_out = [&](int gi, int mb) {
      std::vector<int> ls;
      for (int dd = 1; dd < T; ++dd) {
        const auto l = links_between(chip_of(gi, mb), chip_of(gi, (mb + dd) % T));
        ls.insert(ls.end(), l.begin(), l.begin() + Lp);
      }
      return ls;
    };
    auto peer_in = [&](int gi, int mb) {
      std::vector<int> ls;
      for (int dd = 1; dd < T; ++dd) {
        const int src = chip_of(gi, (mb + dd) % T);
        const auto l = links_between(src, chip_of(gi, mb));
        for (int li = 0; li < Lp; ++li) ls.push_back(cfg.topology.port(src, l[std::size_t(li)]).peer_link);
      }
      return ls;
    };
    const Cycle peer_ser = link_timing(cfg, chip_of(0, 0), links_between(chip_of(0, 0), chip_of(0, 1))[0]).serialisation;
    // SEND issue to arrival from each member (its first peer link; the group's links are alike).
    std::vector<Cycle> hop_from;
    for (int mb = 0; mb < T; ++mb)
      hop_from.push_back(link_timing(cfg, chip_of(0, mb), links_between(chip_of(0, mb), chip_of(0, (mb + 1) % T))[0]).hop());
    // Work on every member at once, on the host's cores (the members' schedules are independent
    // between exchanges).
    const int hw = std::max(1, int(std::thread::hardware_concurrency()));
    auto for_members = [&](int n, const std::function<void(int)>& f) {
      std::atomic<int> next{0};
      std::exception_ptr err;
      std::mutex mu;
      auto work = [&]() {
        for (int i = next++; i < n; i = next++) try {
            f(i);
          } catch (...) {
            std::lock_guard<std::mutex> lk(mu);
            if (!err) err = std::current_exception();
          }
      };
      std::vector<std::thread> pool;
      for (int t = 1; t < std::min(hw, n); ++t) pool.emplace_back(work);
      work();
      for (auto& t : pool) t.join();
      if (err) std::rethrow_exception(err);
    };
    // Group schedules: key -> one schedule per member.
    std::map<std::string, std::vector<ChipOut>> gmemo;
    std::map<std::string, std::vector<Cycle>> slack_memo;  // role -> the in leader's slack per input
    std::int64_t delay = 0;
    std::vector<Cycle> prev_arrival;
    std::vector<int> prev_in_links;  // the in leader's links from the previous group
    for (int gi = 0; gi < G; ++gi) {
      progress::report("planning tensor group", gi + 1, G);
      const auto& full = stages[std::size_t(gi)];
      const bool first = gi == 0, last = gi + 1 == G;
      const int in_leader = first ? 0 : leaders[std::size_t(gi) - 1].second;
      const int out_leader = last ? -1 : leaders[std::size_t(gi)].first;
      const Live in_live = first ? Live{true, true, false, 0} : live_before(full.front(), g);
      const Live out_live = last ? Live{} : live_before(stages[std::size_t(gi) + 1].front(), g);
      std::vector<int> next_links;
      if (!last) next_links = links_between(chip_of(gi, out_leader), chip_of(gi + 1, leaders[std::size_t(gi)].second));
      const Cycle ser = next_links.empty() ? 1 : link_timing(cfg, chip_of(gi, out_leader), next_links[0]).serialisation;
      std::vector<std::vector<Unit>> mus;
      for (int mb = 0; mb < T; ++mb)
        mus.push_back(shard_units(full, T, mb, head_owner, g.core_units(), g.core_gran(), g.KV, local_qkv ? &g : nullptr));
      auto builder = [&](int mb, const std::vector<Cycle>& arr) {
        Shard sh;
        sh.T = T;
        sh.me = mb;
        sh.in_leader = in_leader;
        sh.peer_links = Lp;
        sh.peer_ser = peer_ser;
        const bool lead = mb == in_leader;
        return std::make_unique<Builder>(g, p, m, mus[std::size_t(mb)], first && lead, first && lead,
                                         lead ? arr : std::vector<Cycle>{}, lead && !first ? int(prev_in_links.size()) : 0,
                                         in_live, out_live, mb == out_leader ? int(next_links.size()) : 0, ser, sh);
      };
      // The start: as late as the in leader's inputs allow (as a pipeline stage).
      std::vector<Cycle> arrivals;
      std::string gkey = role_key(full) + fmt::format("|{}|{}|{}|{}|{}|{}|{}|", first, last, in_leader, out_leader,
                                                      next_links.size(), in_live.key(), out_live.key());
      if (!first) {
        // The in leader's slack per input depends on its units, not on the layer numbers: one
        // build per role (a build of a member is a quarter of a second on 70B).
        auto sk = slack_memo.find(gkey + std::to_string(prev_arrival.size()));
        if (sk == slack_memo.end())
          sk = slack_memo.emplace(gkey + std::to_string(prev_arrival.size()),
                                  builder(in_leader, std::vector<Cycle>(prev_arrival.size(), 0))->build().slack).first;
        const auto& slack = sk->second;
        Cycle start = delay;
        for (std::size_t i = 0; i < prev_arrival.size(); ++i) start = std::max(start, prev_arrival[i] - slack[i]);
        delay = start;
        for (auto av : prev_arrival) arrivals.push_back(av - start);
      }
      for (auto a0 : arrivals) gkey += std::to_string(a0) + ",";
      auto it = gmemo.find(gkey);
      if (it == gmemo.end()) {
        // The members are scheduled in step, exchange by exchange: each up to the SENDs of the
        // next exchange, then its RECVs with the arrivals the senders' schedules give.
        std::vector<std::unique_ptr<Builder>> bs;
        for (int mb = 0; mb < T; ++mb) bs.push_back(builder(mb, arrivals));
        const auto tb = std::chrono::steady_clock::now();
        std::vector<int> going(static_cast<std::size_t>(T), 1);
        for_members(T, [&](int mb) { bs[std::size_t(mb)]->begin(); });
        int rounds = 0;
        for (;; ++rounds) {
          for_members(T, [&](int mb) { going[std::size_t(mb)] = bs[std::size_t(mb)]->step(); });
          const int n = int(std::count(going.begin(), going.end(), 1));
          if (n == 0) break;
          if (n != T) throw Error("generator: internal error: the members of a tensor group disagree on their exchanges");
          std::map<std::tuple<int, int, int, int>, Cycle> sent;  // (from, to, exchange, vector) -> SEND issue
          for (int mb = 0; mb < T; ++mb)
            for (const auto& x : bs[std::size_t(mb)]->sent()) sent[{mb, x.peer, x.e, x.i}] = x.t;
          for (int mb = 0; mb < T; ++mb) {
            std::vector<Cycle> arr;
            for (const auto& x : bs[std::size_t(mb)]->pending()) {
              const auto f = sent.find({x.peer, mb, x.e, x.i});
              if (f == sent.end()) throw Error("generator: internal error: a group exchange RECV without its SEND");
              arr.push_back(f->second + hop_from[std::size_t(x.peer)]);
            }
            bs[std::size_t(mb)]->recv(arr);
          }
        }
        std::vector<ChipOut> cos(static_cast<std::size_t>(T));
        for_members(T, [&](int mb) { cos[std::size_t(mb)] = bs[std::size_t(mb)]->finish(); });
        if (std::getenv("LPU_GEN_DEBUG"))
          fmt::print(stderr, "group {}: {} members scheduled in step through {} exchanges, {:.2f} s\n", gi, T, rounds,
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - tb).count());
        it = gmemo.emplace(gkey, std::move(cos)).first;
      }
      const auto& cos = it->second;
      for (int mb = 0; mb < T; ++mb) {
        const auto& co = cos[std::size_t(mb)];
        ChipPlan cp;
        cp.chip = chip_of(gi, mb);
        cp.stage = int(plan.chips.size());
        cp.group = gi;
        cp.member = mb;
        cp.prev = !first && mb == in_leader ? chip_of(gi - 1, leaders[std::size_t(gi) - 1].first) : -1;
        cp.next = mb == out_leader ? chip_of(gi + 1, leaders[std::size_t(gi)].second) : -1;
        cp.units = describe_units(mus[std::size_t(mb)]);
        cp.role = fmt::format("group {} member {}: {}", gi, mb, cp.units);
        std::vector<int> outs = mb == out_leader ? next_links : std::vector<int>{};
        std::vector<int> ins = mb == in_leader ? prev_in_links : std::vector<int>{};
        for (int l : peer_out(gi, mb)) outs.push_back(l);
        for (int l : peer_in(gi, mb)) ins.push_back(l);
        register_chip(cp, co, delay, outs, ins, full.front().k == Unit::Head ? 0 : full.front().layer);
        plan.chips.push_back(std::move(cp));
      }
      if (!last) {
        const auto& co = cos[std::size_t(out_leader)];
        const int oc = chip_of(gi, out_leader);
        const auto hop = link_timing(cfg, oc, next_links[0]).hop();
        prev_arrival.clear();
        for (auto t : co.send) prev_arrival.push_back(delay + t + hop);
        prev_in_links.clear();
        for (int l : next_links) prev_in_links.push_back(cfg.topology.port(oc, l).peer_link);
      }
    }
  };

  if (spec.partition == "pipeline") {
    // Chips per layer (k) or layers per chip (lpc), head chips (hc).
    int kmin = 0;
    for (int k = 1; k <= 64 && !kmin; ++k)
      if (!split(layer_units(g, 0, kv_tiles), k, cap, cap).empty()) kmin = k;
    const int hc_min = int(std::max<std::int64_t>(1, (head_tiles + cap - 1) / std::max<std::int64_t>(cap, 1)));
    if (!kmin || cap <= 0) throw does_not_fit(0, "one layer does not fit 64 chips");
    auto hc_for = [&](int k) {
      if (spec.head_chips > 0) return spec.head_chips;
      const std::int64_t per = std::max<std::int64_t>(1, layer_tiles / k);
      return int(std::max<std::int64_t>(hc_min, std::min<std::int64_t>(8, (head_tiles + per - 1) / per)));
    };
    int k = 0, lpc = 1;
    if (spec.chips_per_layer > 0) {
      k = spec.chips_per_layer;
      if (k < kmin) throw does_not_fit(m.layers * kmin + hc_for(kmin), fmt::format("--chips-per-layer {} is too few (needs {})", k, kmin));
    } else {
      for (int kk = std::max(kmin, 1); kk <= std::max(kmin, 8); ++kk)
        if (m.layers * kk + hc_for(kk) <= N) k = kk;
    }
    if (k == 0) {
      if (kmin > 1) throw does_not_fit(m.layers * kmin + hc_for(kmin), "");
      // Several layers per chip.
      for (int l = 2; l <= m.layers && k == 0; ++l) {
        const int chips = cdiv(m.layers, l) + hc_min;
        if (chips > N) continue;
        if (std::int64_t(l) * layer_tiles <= cap_tiles(kv_rows * l)) {
          lpc = l;
          k = 1;
        } else {
          break;
        }
      }
      if (k == 0) throw does_not_fit(m.layers + hc_min, "");
    }
    const int hc = lpc > 1 ? hc_min : hc_for(k);
    plan.chips_per_layer = k;
    plan.layers_per_chip = lpc;
    plan.head_chips = hc;

    // Stages.
    std::vector<std::vector<Unit>> stages;
    if (lpc > 1) {
      for (int l0 = 0; l0 < m.layers; l0 += lpc) {
        std::vector<Unit> us;
        for (int l = l0; l < std::min(m.layers, l0 + lpc); ++l)
          for (auto& u : layer_units(g, l, 0)) us.push_back(u);
        stages.push_back(std::move(us));
      }
    } else {
      auto pieces = split(layer_units(g, 0, kv_tiles), k, cap, cap);
      if (pieces.empty()) throw does_not_fit(m.layers * k + hc, fmt::format("no split of a layer into {} chips fits", k));
      for (int l = 0; l < m.layers; ++l)
        for (const auto& pc : pieces) {
          std::vector<Unit> us = pc;
          for (auto& u : us) u.layer = l;
          stages.push_back(std::move(us));
        }
    }
    for (int i = 0; i < hc; ++i) {
      std::vector<Unit> us;
      for (int r = g.RV * i / hc; r < g.RV * (i + 1) / hc; ++r) us.push_back({Unit::Head, 0, r, g.NK});
      if (us.empty()) throw Error(fmt::format("{} head chips for {} LM-head row tiles", hc, g.RV));
      stages.push_back(std::move(us));
    }
    const int S = int(stages.size());
    if (S > N) throw does_not_fit(S, "");
    const std::vector<int> order = chain_order(S);

    std::int64_t delay = 0;
    std::vector<Cycle> arrivals, prev_send, prev_arrival;
    std::vector<int> in_links;
    for (int s = 0; s < S; ++s) {
      progress::report("planning pipeline stage", s + 1, S);
      const int chip = order[std::size_t(s)];
      ChipPlan cp;
      cp.chip = chip;
      cp.stage = s;
      cp.prev = s > 0 ? order[std::size_t(s) - 1] : -1;
      cp.next = s + 1 < S ? order[std::size_t(s) + 1] : -1;
      cp.units = describe_units(stages[std::size_t(s)]);
      cp.role = cp.units;
      const bool first = s == 0;
      const Live in_live = first ? Live{true, true, false, 0} : live_before(stages[std::size_t(s)].front(), g);
      Live out_live;
      std::vector<int> out_links;
      if (s + 1 < S) {
        out_live = live_before(stages[std::size_t(s) + 1].front(), g);
        out_links = links_between(chip, order[std::size_t(s) + 1]);
      }
      const Cycle ser = out_links.empty() ? 1 : link_timing(cfg, chip, out_links[0]).serialisation;
      std::string key = role_key(stages[std::size_t(s)]) + fmt::format("|{}|{}|{}|{}|{}|", first, int(in_links.size()),
                                                                         in_live.key(), out_live.key(), out_links.size());
      auto schedule = [&](const std::string& mkey, const std::vector<Cycle>& arr) -> const ChipOut& {
        auto it = memo.find(mkey);
        if (it == memo.end()) {
          const auto tb = std::chrono::steady_clock::now();
          Builder b(g, p, m, stages[std::size_t(s)], first, first, arr, std::max<int>(1, int(in_links.size())), in_live, out_live,
                    int(out_links.size()), ser);
          it = memo.emplace(mkey, std::make_pair(b.build(), s)).first;
          if (std::getenv("LPU_GEN_DEBUG"))
            fmt::print(stderr, "stage {}: scheduled {} ({} lines) in {:.2f} s\n", s, cp.units,
                       std::count(it->second.first.text.begin(), it->second.first.text.end(), '\n'),
                       std::chrono::duration<double>(std::chrono::steady_clock::now() - tb).count());
        }
        return it->second.first;
      };
      if (!first) {
        // Pass 1: every input present at the start gives the latest cycle each vector is needed;
        // the stage starts as late as that allows (docs/decode.md, "Pipeline").
        const auto& p1 = schedule(key + "pass1", std::vector<Cycle>(prev_send.size(), 0));
        Cycle start = delay;
        std::size_t bind = 0;
        for (std::size_t i = 0; i < prev_send.size(); ++i)
          if (prev_arrival[i] - p1.slack[i] > start) {
            start = prev_arrival[i] - p1.slack[i];
            bind = i;
          }
        if (std::getenv("LPU_GEN_DEBUG") && s < 8)
          fmt::print(stderr, "stage {}: start {} bound by input vector {} of {} (arrives {}, needed by {})\n", s, start, bind,
                     prev_send.size(), prev_arrival[bind], p1.slack[bind]);
        arrivals.clear();
        for (auto av : prev_arrival) arrivals.push_back(av - start);
        delay = start;
        for (auto a0 : arrivals) key += std::to_string(a0) + ",";
      }
      const ChipOut& co = schedule(key, arrivals);
      register_chip(cp, co, delay, out_links, in_links,
                    stages[std::size_t(s)].front().k == Unit::Head ? 0 : stages[std::size_t(s)].front().layer);
      // The next stage: its start is the first vector's arrival; the others arrive as sent.
      if (s + 1 < S) {
        // The next stage starts when the first vector after the step constants arrives (the
        // constants, sent first, wait in the link's receive queue).
        const auto hop = link_timing(cfg, chip, out_links[0]).hop();
        prev_send = co.send;
        prev_arrival.clear();
        for (auto t : co.send) prev_arrival.push_back(delay + t + hop);
        in_links.clear();
        for (int l : out_links) in_links.push_back(cfg.topology.port(chip, l).peer_link);
      }
      plan.chips.push_back(std::move(cp));
    }
  } else {
    plan_groups();
  }

  // Registers: r1 = pos, then the K-cache parts, then the V-cache parts.
  if (g.kt) {
    for (int kk = 0; kk < g.mkt; ++kk)
      plan.regs.push_back({2 + kk, fmt::format("K^T cache, slice part {}", kk),
                           fmt::format("b = pos / {}: b / {} == {} ? {} + (b % {}) * {} : 0", g.n, g.bpsk, kk, g.prk, g.bpsk, g.prk)});
  } else {
    for (int j = 0; j < 3; ++j)
      for (int kk = 0; kk < g.mk; ++kk)
        plan.regs.push_back({2 + j * g.mk + kk, fmt::format("K cache, third {} of a block, slice part {}", j, kk),
                             fmt::format("b = pos / {0}, i = pos % {0}: i / {1} == {2} && b / {3} == {4} ? 1 + (b % {3}) * {5} + i - {6} : 0",
                                         g.n, g.ka, j, g.bps, kk, g.kaj(j), j * g.ka)});
  }
  for (int kk = 0; kk < g.mv; ++kk)
    plan.regs.push_back({2 + g.kregs() + kk, fmt::format("V cache, slice part {}", kk),
                         fmt::format("b = pos / {}: b / {} == {} ? {} + (b % {}) * {} : 0", g.n, g.bpsv, kk, g.prt, g.bpsv, g.prt)});
  plan.detail = detail;
  plan.plan_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return plan;
}

int kv_bucket(const DecoderPlan& plan, int tokens) {
  if (tokens < 1 || tokens > plan.context)
    throw Error(fmt::format("{} tokens in the KV cache: 1 .. the context of {}", tokens, plan.context));
  const int blocks = gen::cdiv(tokens, plan.kv_block);
  int b = 1;
  while (b < blocks) b *= 2;
  return int(std::min<std::int64_t>(plan.context, std::int64_t(b) * plan.kv_block));
}

std::vector<std::pair<int, std::uint32_t>> step_registers(const DecoderPlan& plan, int pos) {
  if (pos < 0 || pos >= plan.context)
    throw Error(fmt::format("position {} is outside the context of {} positions", pos, plan.context));
  const Geo& g = plan.detail->g;
  const int attended = std::min(plan.context, g.nab * g.n);
  if (pos >= attended)
    throw Error(fmt::format("position {}: these programs attend the first {} positions of the KV cache (--kv-len {}); the "
                            "step needs the programs of kv_len {}",
                            pos, attended, plan.kv_len, kv_bucket(plan, pos + 1)));
  std::vector<std::pair<int, std::uint32_t>> r{{1, std::uint32_t(pos)}};
  const int b = pos / g.n, i = pos % g.n;
  if (g.kt) {
    for (int k = 0; k < g.mkt; ++k) r.emplace_back(2 + k, std::uint32_t(b / g.bpsk == k ? g.prk + (b % g.bpsk) * g.prk : 0));
  } else {
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < g.mk; ++k) {
        const bool own = i / g.ka == j && b / g.bps == k;
        r.emplace_back(2 + j * g.mk + k, std::uint32_t(own ? 1 + (b % g.bps) * g.kaj(j) + i - j * g.ka : 0));
      }
  }
  for (int k = 0; k < g.mv; ++k)
    r.emplace_back(2 + g.kregs() + k, std::uint32_t(b / g.bpsv == k ? g.prt + (b % g.bpsv) * g.prt : 0));
  return r;
}

std::vector<std::vector<std::uint8_t>> step_inputs(const DecoderPlan& plan, const std::vector<std::vector<float>>& emb, int pos) {
  const Geo& g = plan.detail->g;
  if (int(emb.size()) != g.B) throw Error(fmt::format("step inputs: {} embeddings for a batch of {}", emb.size(), g.B));
  std::vector<std::vector<std::uint8_t>> out;
  auto f32vec = [&](auto&& fn) {
    std::vector<std::uint8_t> v(std::size_t(g.V), 0);
    for (int e = 0; e < g.E; ++e) {
      const float x = fn(e);
      std::memcpy(v.data() + 4 * e, &x, 4);
    }
    return v;
  };
  for (const auto& x : emb) {
    if (int(x.size()) != g.d) throw Error(fmt::format("step inputs: an embedding of {} values, d_model is {}", x.size(), g.d));
    for (int v = 0; v < g.NX; ++v) out.push_back(f32vec([&](int e) { return v * g.E + e < g.d ? x[std::size_t(v * g.E + e)] : 0.0f; }));
  }
  for (int w = 0; w < g.HV; ++w)
    out.push_back(f32vec([&](int e) { return w * g.E + e < g.hd / 2 ? rope_cos(plan.model, pos, w * g.E + e) : 0.0f; }));
  for (int w = 0; w < g.HV; ++w)
    out.push_back(f32vec([&](int e) { return w * g.E + e < g.hd / 2 ? rope_sin(plan.model, pos, w * g.E + e) : 0.0f; }));
  {
    std::vector<std::uint8_t> v(std::size_t(g.V), 0);
    for (int e = 0; e < g.E; ++e) {
      const std::int32_t x = pos;
      std::memcpy(v.data() + 4 * e, &x, 4);
    }
    out.push_back(v);
  }
  {
    std::vector<std::uint8_t> v(std::size_t(g.V), 0);
    const int lane = pos % g.n;
    for (int b = 0; b < g.wb; ++b) v[std::size_t(lane * g.wb + b)] = 0xFF;
    out.push_back(v);
  }
  return out;
}

namespace {

// Tile row i of (mat, layer, r, c): the n elements of the permuted, padded matrix (docs/decode.md).
void tile_row(const Geo& g, int mat, int layer, int r, int c, int i, int expert, const std::map<std::string, io::Tensor>& w,
              std::uint8_t* out) {
  const std::string pre = fmt::format("layers.{}.", layer);
  const std::string ffn = expert >= 0 ? fmt::format("{}feed_forward.experts.{}.", pre, expert) : pre + "feed_forward.";
  const io::Tensor* t = nullptr;
  int src_row = -1;
  const int rho = r * g.n + i;
  auto rope_row = [&](int heads) {
    const int vi = rho / g.E, e = rho % g.E;
    const int h = vi / (2 * g.HV), s = (vi / g.HV) % 2, wv = vi % g.HV, idx = wv * g.E + e;
    return (h < heads && idx < g.hd / 2) ? h * g.hd + s * (g.hd / 2) + idx : -1;
  };
  switch (mat) {
    case MQ: t = &w.at(pre + "attention.wq.weight"); src_row = rope_row(g.H); break;
    case MK: t = &w.at(pre + "attention.wk.weight"); src_row = rope_row(g.KV); break;
    case MV: {
      t = &w.at(pre + "attention.wv.weight");
      const int slot = i / g.hd, j = i % g.hd, gk = r * g.kvpt + slot;
      src_row = slot < g.kvpt && gk < g.KV ? gk * g.hd + j : -1;
      break;
    }
    case MO: t = &w.at(pre + "attention.wo.weight"); src_row = rho < g.d ? rho : -1; break;
    case MG: t = &w.at(ffn + "w1.weight"); src_row = rho < g.ffn ? rho : -1; break;
    case MU: t = &w.at(ffn + "w3.weight"); src_row = rho < g.ffn ? rho : -1; break;
    case MD: t = &w.at(ffn + "w2.weight"); src_row = rho < g.d ? rho : -1; break;
    case MR: t = &w.at(pre + "feed_forward.gate.weight"); src_row = rho < g.X ? rho : -1; break;
    case MLM: t = &w.at("output.weight"); src_row = rho < g.vocab ? rho : -1; break;
  }
  std::memset(out, 0, std::size_t(g.V));
  if (src_row < 0) return;
  const auto in = std::size_t(t->shape[1]);
  for (int e = 0; e < g.n; ++e) {
    int col = -1;
    if (mat == MO) {
      const int hh = c * g.hpv + e / g.hd;
      col = (e / g.hd < g.hpv && hh < g.H) ? hh * g.hd + e % g.hd : -1;
    } else {
      col = c * g.n + e;
      if (col >= int(in)) col = -1;
    }
    if (col < 0) continue;
    std::memcpy(out + std::size_t(e) * std::size_t(g.wb), t->data.data() + (std::size_t(src_row) * in + std::size_t(col)) * std::size_t(g.wb),
                std::size_t(g.wb));
  }
}

}  // namespace

std::map<std::string, std::vector<std::uint8_t>> chip_symbols(const DecoderPlan& plan, int stage,
                                                              const std::map<std::string, io::Tensor>& w) {
  const Geo& g = plan.detail->g;
  check_weights(plan.model, w, plan.wtype, "weights");
  std::map<std::string, std::vector<std::uint8_t>> out;
  auto f32 = [](std::vector<std::uint8_t>& v, std::size_t i, float x) { std::memcpy(v.data() + 4 * i, &x, 4); };
  for (const auto& sr : plan.detail->syms(std::size_t(stage))) {
    std::vector<std::uint8_t> b(std::size_t(sr.rows) * std::size_t(g.V), 0);
    if (sr.kind == "weights") {
      std::size_t row = 0;
      for (const auto& en : sr.entries)
        for (int i = 0; i < en.count; ++i, ++row)
          if (en.mat >= 0)
            tile_row(g, en.mat, en.layer, en.r, en.c, en.first + i * en.step, en.expert, w, b.data() + row * std::size_t(g.V));
    } else if (sr.kind == "gain") {
      const std::string nm = sr.which == 2 ? "norm.weight"
                                           : fmt::format("layers.{}.{}_norm.weight", sr.layer, sr.which == 0 ? "attention" : "ffn");
      const auto& t = w.at(nm);
      for (int i = 0; i < g.d; ++i) {
        float x;
        std::memcpy(&x, t.data.data() + 4 * std::size_t(i), 4);
        f32(b, std::size_t(i), x);
      }
    } else if (sr.kind == "const") {
      auto bcast = [&](int row, float x) {
        for (int e = 0; e < g.E; ++e) f32(b, std::size_t(row * g.E + e), x);
      };
      bcast(C_INVD, float(1.0 / double(g.d)));
      bcast(C_EPS, float(plan.model.norm_eps));
      bcast(C_SCALE, float(1.0 / std::sqrt(double(g.hd))));
      bcast(C_NEGINF, -std::numeric_limits<float>::infinity());
      for (int s = 0; s < slot_masks(g); ++s)
        for (int e = s * g.hd * g.wb; e < (s + 1) * g.hd * g.wb; ++e) b[std::size_t((C_SLOT0 + s) * g.V + e)] = 0xFF;
    } else if (sr.kind == "moe") {
      for (int e = 0; e < g.E; ++e) {
        f32(b, std::size_t(e), float(e));
        const std::int32_t valid = e < g.X ? -1 : 0;
        std::memcpy(b.data() + std::size_t(g.V) + 4 * std::size_t(e), &valid, 4);
      }
    } else if (sr.kind == "iota") {
      for (std::int64_t r = 0; r < sr.rows; ++r)
        for (int e = 0; e < g.E; ++e) {
          const std::int32_t x = std::int32_t((r % g.NS) * g.E + e);
          std::memcpy(b.data() + (std::size_t(r) * std::size_t(g.E) + std::size_t(e)) * 4, &x, 4);
        }
    }
    out[sr.name] = std::move(b);
  }
  return out;
}

nlohmann::json chip_placement(const DecoderPlan& plan, int stage) {
  return placement_json(plan.detail->syms(std::size_t(stage)));
}

nlohmann::json plan_json(const DecoderPlan& plan) {
  const Geo& g = plan.detail->g;
  nlohmann::json j;
  j["model"] = plan.model.name;
  j["rack"] = plan.rack.origin;
  j["preset"] = plan.rack.chip(0).name;
  j["partition"] = plan.spec.partition;
  j["dtype"] = weight_dtype_name(plan.wtype);
  j["weight_path"] = plan.weight_path;
  j["context"] = plan.context;
  j["kv_len"] = plan.kv_len;  // tokens in the KV cache the programs attend (whole blocks of them)
  j["users"] = plan.spec.users;
  j["batch"] = plan.spec.batch;
  j["chips_used"] = plan.chips.size();
  j["chips_per_layer"] = plan.chips_per_layer;
  j["layers_per_chip"] = plan.layers_per_chip;  // (tensor groups: layers per group)
  j["tensor"] = plan.tensor;
  j["groups"] = plan.groups;
  if (plan.model.experts > 0) j["experts"] = {{"experts", plan.model.experts}, {"per_token", plan.model.experts_per_token}};
  j["head_chips"] = plan.head_chips;
  j["programs"] = plan.program_names;
  j["numerics"] = {{"weight_type", std::string(isa::dtype_info(plan.wtype).name)}, {"reduce_block", plan.reduce_block}};
  j["geometry"] = {{"vector_bytes", g.V},      {"f32_per_vector", g.E},     {"mxm_n", g.n},        {"k_tiles", g.NK},
                   {"x_vectors", g.NX},        {"q_row_tiles", g.RQ},       {"k_row_tiles", g.RK}, {"v_tiles", g.NVT},
                   {"kv_heads_per_k_row", g.kpr}, {"kv_heads_per_v_tile", g.kvpt}, {"heads_per_o_vector", g.hpv},
                   {"ffn_row_tiles", g.RF},    {"lm_row_tiles", g.RV},      {"kv_blocks", g.nblk},  {"kv_blocks_attended", g.nab}, {"k_parts", g.mk},
                   {"v_parts", g.mv}};
  j["host_io"] = {{"dma_in_channel", 0},
                  {"dma_in_per_user", g.NX},
                  {"step_constants", g.NSC},
                  {"dma_out_channel", 1},
                  {"logits_vectors_per_user", g.NL}};
  nlohmann::json regs = nlohmann::json::array();
  regs.push_back({{"reg", 1}, {"value", "pos"}});
  for (const auto& r : plan.regs)
    regs.push_back({{"reg", r.reg}, {"what", r.what}, {"value", r.formula}});
  j["registers"] = regs;
  nlohmann::json chips = nlohmann::json::array();
  for (const auto& c : plan.chips) {
    chips.push_back({{"chip", c.chip},
                     {"stage", c.stage},
                     {"group", c.group},
                     {"member", c.member},
                     {"units", c.units},
                     {"program", plan.program_names[std::size_t(c.program)]},
                     {"start_delay", c.start_delay},
                     {"cycles", c.cycles},
                     {"weight_tiles", c.tiles},
                     {"in_links", c.in_links},
                     {"out_links", c.out_links},
                     {"dma_in_vectors", c.dma_in_vectors},
                     {"dma_out_vectors", c.dma_out_vectors},
                     {"logits_first_vector", c.logits_first},
                     {"symbols", chip_placement(plan, c.stage)}});
  }
  j["chips"] = chips;
  return j;
}

}  // namespace lpu::workload
