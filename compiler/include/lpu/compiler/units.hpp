#pragma once
// The units pass of the compiler layer (docs/compiler.md): a decode step cut into units of work -
// a layer's row tiles of q/k/v, the attention core, the output projection, gate/up chunks, the
// down projection (every expert's, or every chosen slot's, for a mixture of experts), the LM
// head's row tiles - then into pipeline stages (split) and into the shares of a tensor group's
// members with the exchanges between them (shard_units). Pure bookkeeping on the tiling's Geo,
// tested alone (tests/compiler/test_units.cpp); the program generator
// (workload/src/decoder_gen.cpp) lowers each chip's units to instructions.
#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "lpu/compiler/tiling.hpp"

namespace lpu::compiler::units {

using tiling::Geo;

struct Unit {
  // Qkv: a row tile of the q, k, v projections (q row tiles, then k, then v); Core: RoPE, the
  // KV cache and attention (needs every q, k, v; holds the layer's KV cache); Wo: a row tile of
  // the output projection and its residual; Chunk: row tile c of gate and up and its SwiGLU
  // output; Down: a row tile of the down projection and its residual; Head: an LM-head row tile.
  // Xchg (tensor groups only): the members of a group exchange what they computed of the run
  // of units [first, first + count) of kind `idx` (or, idx = kXchgIn, the stage's inputs that
  // one member received); docs/decode.md, "Partitions".
  // Router (mixture of experts): the router's row tile; Chunk and Down then belong to an expert.
  enum K : std::uint8_t { Qkv, Core, Wo, Chunk, Down, Head, Xchg, Router } k;
  int layer = 0;
  int idx = 0;
  std::int64_t tiles = 0;
  int first = 0, count = 0;  // Xchg: the run exchanged
  int expert = -1;           // Chunk, Down (and their Xchg) of a mixture of experts, every expert
  int slot = -1;             // ... or of the slot-th expert chosen (sparse routing)
};
constexpr int kXchgIn = 100;

// "L3.qkv[2]", "L3.attn", "head[5]", ...
std::string unit_name(const Unit& u);
// A stage's units for people: runs of row tiles as ranges, "L0.qkv[0,4) L0.attn ...".
std::string describe_units(const std::vector<Unit>& us);
// Relative description (layer numbers removed) for sharing schedules between layers.
std::string role_key(const std::vector<Unit>& us);

// What travels from one stage to the next, in order (docs/decode.md, "Pipeline").
struct Live {
  bool sc = false, x = false, h = false, h2 = false, o = false;
  int qkv = 0;  // q, k, v row tiles done
  int a = 0;    // chunks of the SwiGLU output a[0 .. a)
  int nq(const Geo& g) const { return std::min(qkv, g.RQ) * g.ppv; }
  int nk(const Geo& g) const { return std::clamp(qkv - g.RQ, 0, g.RK) * g.ppv; }
  int nv(const Geo& g) const { return std::clamp(qkv - g.RQ - g.RK, 0, g.NVT); }
  int vectors(const Geo& g) const {
    return (sc ? g.NSC : 0) + g.B * ((x ? g.NX : 0) + (h ? g.NK : 0) + nq(g) + nk(g) + nv(g) + (h2 ? g.NK : 0) + a + (o ? g.NO : 0));
  }
  std::string key() const;
};

// What a stage beginning with `next` receives.
Live live_before(const Unit& next, const Geo& g);

// The units [lo, hi) of a run [first, first + count) that member m of T computes (contiguous,
// about equal shares; the same rule on every member, so each knows what the others send).
std::pair<int, int> own_range(int first, int count, int T, int m);

// The units member `me` of a T-chip group computes, with the group's exchanges: the stage's
// inputs (one member receives them) first, then after every run of row tiles (q/k/v, output
// projection, gate/up, down) the rows each member computed. The attention core is shared by the
// first members by kv heads (core_units units of core_gran heads), each holding its heads' KV
// cache, and followed by an exchange of the attention output. LM-head row tiles are shared
// unless `head_owner` >= 0 (then that member computes them all).
std::vector<Unit> shard_units(const std::vector<Unit>& full, int T, int me, int head_owner, int core_units, int core_gran,
                              int kv_heads, const Geo* local_qkv = nullptr);

// A layer's units in order (kv_tiles: the attention core's tiles, for the split's balance).
std::vector<Unit> layer_units(const Geo& g, int l, std::int64_t kv_tiles);

// Splits units into `k` contiguous pieces of about equal tiles, each within its capacity
// (piece 0 has cap0, the others cap). Empty when impossible.
std::vector<std::vector<Unit>> split(const std::vector<Unit>& us, int k, std::int64_t cap0, std::int64_t cap);

}  // namespace lpu::compiler::units
