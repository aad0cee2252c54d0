// The units pass (units.hpp): units of work, stages, a tensor group's shares.
#include "lpu/compiler/units.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "lpu/common/errors.hpp"

namespace lpu::compiler::units {

std::string unit_name(const Unit& u) {
  switch (u.k) {
    case Unit::Qkv: return fmt::format("L{}.qkv[{}]", u.layer, u.idx);
    case Unit::Core: return fmt::format("L{}.attn", u.layer);
    case Unit::Wo: return fmt::format("L{}.wo[{}]", u.layer, u.idx);
    case Unit::Chunk:
      if (u.slot >= 0) return fmt::format("L{}.k{}.ffn_up[{}]", u.layer, u.slot, u.idx);
      return u.expert >= 0 ? fmt::format("L{}.x{}.ffn_up[{}]", u.layer, u.expert, u.idx) : fmt::format("L{}.ffn_up[{}]", u.layer, u.idx);
    case Unit::Down:
      if (u.slot >= 0) return fmt::format("L{}.k{}.ffn_down[{}]", u.layer, u.slot, u.idx);
      return u.expert >= 0 ? fmt::format("L{}.x{}.ffn_down[{}]", u.layer, u.expert, u.idx) : fmt::format("L{}.ffn_down[{}]", u.layer, u.idx);
    case Unit::Router: return fmt::format("L{}.router", u.layer);
    case Unit::Head: return fmt::format("head[{}]", u.idx);
    case Unit::Xchg: return fmt::format("L{}.xchg{}", u.layer, u.idx);
  }
  return "?";
}

std::string describe_units(const std::vector<Unit>& us) {
  std::string s;
  std::size_t i = 0;
  while (i < us.size()) {
    if (us[i].k == Unit::Xchg) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j + 1 < us.size() && us[j + 1].k == us[i].k && us[j + 1].layer == us[i].layer && us[j + 1].expert == us[i].expert &&
           us[j + 1].slot == us[i].slot && us[j + 1].idx == us[j].idx + 1)
      ++j;
    if (!s.empty()) s += " ";
    if (us[i].k == Unit::Core) s += fmt::format("L{}.attn", us[i].layer);
    else if (us[i].k == Unit::Router) s += fmt::format("L{}.router", us[i].layer);
    else if (us[i].expert >= 0 || us[i].slot >= 0) {
      s += fmt::format("L{}.{}{}.{}[{},{})", us[i].layer, us[i].slot >= 0 ? "k" : "x", us[i].slot >= 0 ? us[i].slot : us[i].expert,
                       us[i].k == Unit::Chunk ? "ffn_up" : "ffn_down", us[i].idx, us[j].idx + 1);
    } else {
      const char* nm = us[i].k == Unit::Qkv ? "qkv" : us[i].k == Unit::Wo ? "wo" : us[i].k == Unit::Chunk ? "ffn_up"
                       : us[i].k == Unit::Down ? "ffn_down" : "head";
      if (us[i].k == Unit::Head) s += fmt::format("{}[{},{})", nm, us[i].idx, us[j].idx + 1);
      else s += fmt::format("L{}.{}[{},{})", us[i].layer, nm, us[i].idx, us[j].idx + 1);
    }
    i = j + 1;
  }
  return s;
}

std::string role_key(const std::vector<Unit>& us) {
  std::string s;
  const int l0 = us.empty() ? 0 : us[0].layer;
  for (const auto& u : us)
    s += fmt::format("{}:{}:{}:{}:{}:{}:{};", int(u.k), u.k == Unit::Head ? 0 : u.layer - l0, u.idx, u.first, u.count, u.expert,
                     u.slot);
  return s;
}

std::string Live::key() const { return fmt::format("{}{}{}{}{}:{}:{}", sc, x, h, h2, o, qkv, a); }

Live live_before(const Unit& next, const Geo& g) {
  Live l;
  switch (next.k) {
    case Unit::Qkv:
      l.sc = l.x = true;
      l.h = next.idx > 0;
      l.qkv = next.idx;
      break;
    case Unit::Core: l.sc = l.x = true; l.qkv = g.RQ + g.RK + g.NVT; break;
    case Unit::Wo: l.sc = l.x = l.o = true; break;
    case Unit::Chunk:
      l.sc = l.x = true;
      l.h2 = next.idx > 0;
      l.a = next.idx;
      break;
    case Unit::Down: l.sc = l.x = true; l.a = g.RF; break;
    case Unit::Head: l.x = true; break;
    case Unit::Xchg: throw Error("generator: internal error: a stage begins with an exchange");
    // (a layer of the FFN only, --attention none, begins with its router: x, like its first chunk)
    case Unit::Router: l.sc = l.x = true; break;
  }
  return l;
}

std::pair<int, int> own_range(int first, int count, int T, int m) {
  return {first + int(std::int64_t(count) * m / T), first + int(std::int64_t(count) * (m + 1) / T)};
}

std::vector<Unit> shard_units(const std::vector<Unit>& full, int T, int me, int head_owner, int core_units, int core_gran,
                              int kv_heads, const Geo* local_qkv) {
  std::vector<Unit> out;
  if (T <= 1) return full;
  Unit in{Unit::Xchg, full.empty() ? 0 : full.front().layer, kXchgIn, 0};
  if (!full.empty() && full.front().k == Unit::Head) in.layer = 0;
  out.push_back(in);
  std::size_t i = 0;
  while (i < full.size()) {
    const Unit& u = full[i];
    if (u.k == Unit::Core) {
      // Shared by kv heads among the first S members (S: at most one core unit each); the
      // others receive the attention output.
      const int S = std::min(T, core_units);
      if (me < S) {
        const auto [lo, hi] = own_range(0, core_units, S, me);
        Unit c = u;
        c.first = lo * core_gran;
        c.count = std::min(kv_heads, hi * core_gran) - c.first;
        out.push_back(c);
      }
      Unit x{Unit::Xchg, u.layer, int(Unit::Core), 0};
      x.first = 0;
      x.count = S;
      out.push_back(x);
      ++i;
      continue;
    }
    if (u.k == Unit::Qkv && local_qkv) {
      // Each member one core unit: the q, k, v row tiles of its own kv heads, no exchange.
      const auto [lo, hi] = own_range(0, core_units, T, me);
      const auto rs = local_qkv->qkv_tiles(lo * core_gran, std::min(kv_heads, hi * core_gran));
      std::size_t end = i;
      while (end < full.size() && full[end].k == Unit::Qkv && full[end].layer == u.layer) ++end;
      for (int which : {1, 2, 0})  // k and v first: RoPE and the cache columns wait for k and v
        for (std::size_t k = i; k < end; ++k)
          if (full[k].idx >= rs[std::size_t(which)].first && full[k].idx < rs[std::size_t(which)].second) out.push_back(full[k]);
      i = end;
      continue;
    }
    std::size_t j = i;
    while (j + 1 < full.size() && full[j + 1].k == u.k && full[j + 1].layer == u.layer && full[j + 1].expert == u.expert &&
           full[j + 1].slot == u.slot)
      ++j;
    const int first = u.idx, count = int(j - i + 1);
    auto [lo, hi] = own_range(first, count, T, me);
    if (u.k == Unit::Head && head_owner >= 0) {
      lo = me == head_owner ? first : 0;
      hi = me == head_owner ? first + count : 0;
    }
    for (std::size_t k = i; k <= j; ++k)
      if (full[k].idx >= lo && full[k].idx < hi) out.push_back(full[k]);
    // The down projections of the experts all add into the member's rows of x: one exchange
    // after the last expert's.
    const bool more_downs = u.k == Unit::Down && (u.expert >= 0 || u.slot >= 0) && j + 1 < full.size() &&
                            full[j + 1].k == Unit::Down && full[j + 1].layer == u.layer;
    if (u.k != Unit::Head && !more_downs) {
      Unit x{Unit::Xchg, u.layer, int(u.k), 0};
      x.first = first;
      x.count = count;
      x.expert = u.expert;
      x.slot = u.slot;
      out.push_back(x);
    }
    i = j + 1;
  }
  return out;
}

std::vector<Unit> layer_units(const Geo& g, int l, std::int64_t kv_tiles) {
  std::vector<Unit> us;
  if (!g.ffn_only) {
    for (int r = 0; r < g.RQ + g.RK + g.NVT; ++r) us.push_back({Unit::Qkv, l, r, g.NK});
    us.push_back({Unit::Core, l, 0, kv_tiles});
    for (int r = 0; r < g.RD; ++r) us.push_back({Unit::Wo, l, r, g.NO});
  }
  if (g.X > 0) {
    // Mixture of experts: the router, every expert's gate/up chunks, then every expert's down
    // projection (each adds its gated rows into x).
    // (Sparse: the experts_per_token chosen ones, slot by slot; their tiles count once per slot.)
    us.push_back({Unit::Router, l, 0, g.NK});
    const int n = g.sparse ? g.XK : g.X;
    for (int e = 0; e < n; ++e)
      for (int c = 0; c < g.RF; ++c) {
        Unit u{Unit::Chunk, l, c, 2 * std::int64_t(g.NK)};
        (g.sparse ? u.slot : u.expert) = e;
        us.push_back(u);
      }
    for (int e = 0; e < n; ++e)
      for (int r = 0; r < g.RD; ++r) {
        Unit u{Unit::Down, l, r, g.RF};
        (g.sparse ? u.slot : u.expert) = e;
        us.push_back(u);
      }
    return us;
  }
  for (int c = 0; c < g.RF; ++c) us.push_back({Unit::Chunk, l, c, 2 * std::int64_t(g.NK)});
  for (int r = 0; r < g.RD; ++r) us.push_back({Unit::Down, l, r, g.RF});
  return us;
}

std::vector<std::vector<Unit>> split(const std::vector<Unit>& us, int k, std::int64_t cap0, std::int64_t cap) {
  std::int64_t total = 0;
  for (const auto& u : us) total += u.tiles;
  std::vector<std::vector<Unit>> out(static_cast<std::size_t>(k));
  std::int64_t acc = 0;
  std::size_t j = 0;
  for (std::size_t i = 0; i < us.size(); ++i) {
    const std::int64_t c = j == 0 ? cap0 : cap;
    const std::size_t left_units = us.size() - i;
    const std::size_t left_pieces = std::size_t(k) - j;
    const std::int64_t piece_tiles = [&] {
      std::int64_t s = 0;
      for (const auto& u : out[j]) s += u.tiles;
      return s;
    }();
    const bool over_target = j + 1 < std::size_t(k) && !out[j].empty() && acc + us[i].tiles > total * std::int64_t(j + 1) / k &&
                             acc + us[i].tiles - total * std::int64_t(j + 1) / k > total * std::int64_t(j + 1) / k - acc;
    const bool over_cap = piece_tiles + us[i].tiles > c;
    if ((over_target || over_cap || left_units < left_pieces) && !out[j].empty() && j + 1 < std::size_t(k)) ++j;
    const std::int64_t c2 = j == 0 ? cap0 : cap;
    std::int64_t pt = 0;
    for (const auto& u : out[j]) pt += u.tiles;
    if (pt + us[i].tiles > c2) return {};
    out[j].push_back(us[i]);
    acc += us[i].tiles;
  }
  for (const auto& p : out)
    if (p.empty()) return {};
  return out;
}

}  // namespace lpu::compiler::units
