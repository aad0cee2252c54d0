#pragma once
// The tiling pass of the compiler layer (docs/compiler.md): how a transformer's decode step is cut
// into the chip's units - n x n weight tiles of the weight type, f32 vectors of a vector's
// width, the KV cache in blocks of n positions and slice parts, the weight bus's lanes per MXM
// plane - from a model shape and a chip preset. Pure arithmetic, tested alone
// (tests/compiler/test_tiling.cpp); the program generator (workload/src/decoder_gen.cpp) builds
// every schedule on it.
#include <array>
#include <cstdint>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "lpu/arch/params.hpp"
#include "lpu/compiler/model_shape.hpp"
#include "lpu/isa/isa.hpp"

namespace lpu::compiler::tiling {

inline int cdiv(std::int64_t a, std::int64_t b) { return int((a + b - 1) / b); }

// The tiling of one decode step on one chip preset (names as in docs/decode.md): vector bytes V,
// f32 elements per vector E, MXM size and weight elements per vector n, f32 parts per vector ppv;
// the model's sizes; k-tiles NK, f32 vectors of x NX, q/k half-vectors HV, kv heads per K row
// kpr and per V^T tile kvpt, heads per output-projection input vector hpv; row tiles RQ, RK, RD,
// RF, RV; KV-cache blocks nblk and score vectors NS; the weight path and the K-cache layout.
struct Geo {
  int V = 0, E = 0, n = 0, ppv = 0, wb = 0;
  int d = 0, H = 0, KV = 0, hd = 0, G = 0, ffn = 0, vocab = 0, layers = 0;
  int NK = 0, NX = 0, HV = 0, kpr = 0, NKG = 0, kvpt = 0, NVT = 0, hpv = 0, NO = 0;
  int RQ = 0, RK = 0, RD = 0, RF = 0, RV = 0, NL = 0, NQ = 0, NKR = 0;
  int C = 0, nblk = 0, NS = 0, prt = 0, Rvt = 0;
  // Blocks the attention reads: the tokens in the KV cache rounded up to whole blocks (a program
  // per length bucket, docs/decode.md "Attention over the tokens in the cache"); the cache's
  // placement follows the whole context (nblk), so every bucket's program shares it.
  int nab = 0;
  int NSA() const { return nab * ppv; }
  int JV = 3;  // V^T slice parts (rows of a tile split over JV slices): 3 over streams, more over the weight bus
  bool kv_lwm = false;  // K and V^T tiles over the weight bus (parts of a tile on one side, its plane beside them)
  int NSC = 0;  // step constants: cos (HV), sin (HV), posb, onehot
  int bps = 0, mk = 0, bpsv = 0, mv = 0;  // KV-cache blocks per slice part and parts
  int ka = 0;  // K cache: rows of a block in each of its three slices (the last: n - 2 ka)
  // K^T cache (over the weight bus): a K tile transposed, rows the kv heads' footprint (Rkt),
  // columns the block's positions, rows split over JK slices (prk each) like V^T, installed with
  // IW tr=1; every part of a block shares one register (mkt parts along the blocks).
  bool kt = false;
  int Rkt = 0, JK = 0, prk = 0, bpsk = 0, mkt = 0;
  int kregs() const { return kt ? mkt : 3 * mk; }  // K-cache registers (r2 ..), then V^T's
  int rkt(int gm) const { return (std::min(KV, (gm + 1) * kpr) - gm * kpr) * 2 * HV * E; }
  int kaj(int j) const { return std::min(ka, n - j * ka); }
  int B = 1, U = 1;
  // Each head's softmax in two halves by parity from this many score vectors on (the generator's
  // choice, DecoderSpec::softmax: auto 32, halves 4, whole never).
  int sm_halves = 32;
  int X = 0, XK = 0;  // mixture of experts: experts (0: dense) and experts per token
  bool ffn_only = false;  // the layers' FFN only: no attention units, no KV cache (DecoderSpec::attention none)
  bool sparse = false;  // the chosen experts' weights only, GATHERed by an index computed on chip
  bool lwm = false;     // weights over the weight bus (LWM lanes), else LW over streams
  int XS = 0;           // sparse: rows of an expert's region in a weight slice (expert e at e XS)
  isa::Dtype t = isa::Dtype::E4m3;
  std::string tn;  // "e4m3"
  std::int64_t tile_bytes() const { return std::int64_t(n) * V; }
  // Weight tiles per unit kind.
  std::int64_t attn_tiles() const { return ffn_only ? 0 : std::int64_t(RQ + RK + NVT) * NK + std::int64_t(RD) * NO; }
  int rvt(int T) const { return (std::min(KV, (T + 1) * kvpt) - T * kvpt) * hd; }
  // The attention core can be shared by kv heads in units of `core_gran()` (a K row's and a
  // V^T tile's kv heads, whose query heads fill whole output-projection input vectors).
  int core_gran() const {
    int gr = std::lcm(kpr, kvpt);
    while ((std::int64_t(gr) * G) % hpv != 0) gr += std::lcm(kpr, kvpt);
    return gr;
  }
  int core_units() const { return cdiv(KV, core_gran()); }
  // A tensor group whose members each run one core unit can skip the exchange of q, k and v: a
  // member computes the row tiles its kv heads [gk0, gk1) need, when its query heads' rows are
  // whole tiles. The q, k and v row tiles (Qkv unit numbers) of those heads:
  bool local_qkv_ok() const { return (std::int64_t(core_gran()) * G * 2 * HV * E) % n == 0; }
  std::array<std::pair<int, int>, 3> qkv_tiles(int gk0, int gk1) const {
    const std::int64_t foot = 2 * HV * E;
    return {{{int(gk0 * G * foot / n), int(gk1 * G * foot / n)},
             {RQ + int(gk0 * foot / n), RQ + cdiv(gk1 * foot, n)},
             {RQ + RK + gk0 / kvpt, RQ + RK + cdiv(gk1, kvpt)}}};
  }
};

// The kv heads [gk0, gk1) of a Core unit (first/count; count 0: every head) and what follows:
// K row groups, V^T tiles, output-projection input vectors.
struct CoreRange {
  int gk0 = 0, gk1 = 0, gm0 = 0, gm1 = 0, t0 = 0, t1 = 0, o0 = 0, o1 = 0;
  CoreRange(const Geo& g, int first, int count)
      : gk0(count ? first : 0), gk1(count ? first + count : g.KV), gm0(gk0 / g.kpr), gm1(cdiv(gk1, g.kpr)), t0(gk0 / g.kvpt),
        t1(cdiv(gk1, g.kvpt)), o0(gk0 * g.G / g.hpv), o1(cdiv(std::int64_t(gk1) * g.G, g.hpv)) {}
};

// One kv head per K row and per V^T tile (tensor groups with a member per kv head).
void narrow_core(Geo& g);
// The tiling of model m's decode on chip p with weights of type t: `context` positions per user
// (nab = nblk: every block attended), `users` whose caches are held, `batch` per run. Throws
// lpu::Error when a head or the router's logits do not fit one vector.
Geo make_geo(const ModelShape& m, const ChipParams& p, isa::Dtype t, int context, int users, int batch);
// KV cache in slice parts (docs/decode.md, "KV cache"): K: a dump row, then bps blocks of n rows,
// a block's rows in thirds over three slices; V^T: rows split over `jv` slices (prt each), each
// part prt dump rows, then bpsv blocks of prt rows. The V^T parts of a block share one register.
void set_kv_parts(Geo& g, int rows, int jv, bool kt = false);
// The KV-cache registers r2 .. fit the contract's 13 (docs/decode.md, "The KV cache"); the check
// throws lpu::Error naming the registers the context needs.
bool kv_registers_fit(const Geo& g);
void check_kv_registers(const Geo& g);
// Weight-bus lanes of each of `planes` planes sharing a hemisphere of `budget` MEM slices
// (docs/decode.md, "The weight path"): a plane reads row r of every tile from lane r mod lanes,
// one slice each, so a tile of n rows installs in ceil(n / lanes) cycles. At most `bus` lanes
// (mxm.install_rows_per_cycle) and the budget, shared alike; then, while slices remain, the
// slowest plane gains the lanes that save it a cycle per tile. lp30 (n 320, bus 80, 3 planes, a
// budget of 224 of 235 slices): 80, 80, 64 lanes, 4, 4 and 5 cycles per tile.
std::vector<int> lwm_side_lanes(int n, int bus, int budget, int planes);
// The MEM slices of each hemisphere left to the weight lanes when `other` slices (the KV cache
// and tables) and scratch are kept out of them. Scratch: a thirty-second of the chip's slices
// (14 on lp30), where the VXM's chains (the softmax of every head) read and write side by side:
// with too few they queue for the same write ports, with more the lanes lose a cycle per tile
// (a sixteenth cost Llama-3-8B at 1k context 5%). Half on each side when both sides have planes,
// else on the side without.
std::array<int, 2> lwm_budgets(const ChipParams& p, int other);
// Weight tiles a chip's lanes hold, `other` slices kept out: a lane is one slice, or as many as
// the side's budget gives every lane alike when the bus is narrow (few lanes, each longer).
std::int64_t lwm_capacity_tiles(const ChipParams& p, int n, int other);

}  // namespace lpu::compiler::tiling
