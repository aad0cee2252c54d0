// Topology generators. Link numbering is documented in docs/rack.md ("Topologies").
#include "lpu/rack/topology.hpp"

#include <fmt/format.h>

#include <cmath>
#include <set>

#include "lpu/common/errors.hpp"

namespace lpu::rack {

namespace {

using Params = std::map<std::string, std::int64_t>;

// Reads the generator's parameters: every given key must be known; defaults fill the rest.
class ParamReader {
 public:
  ParamReader(const std::string& topo, const Params& given) : topo_(topo), given_(given) {}
  std::int64_t get(const std::string& key, std::int64_t def, std::int64_t min, std::int64_t max) {
    known_.insert(key);
    auto it = given_.find(key);
    std::int64_t v = it == given_.end() ? def : it->second;
    if (v < min || v > max)
      throw ConfigError("topology." + key, fmt::format("{} is out of range {}..{} for topology '{}'", v, min, max, topo_));
    resolved_[key] = v;
    return v;
  }
  bool given(const std::string& key) const { return given_.count(key) != 0; }
  void set(const std::string& key, std::int64_t v) {
    known_.insert(key);
    resolved_[key] = v;
  }
  void finish() const {
    for (const auto& [k, v] : given_) {
      if (!known_.count(k)) {
        std::string names;
        for (const auto& n : known_) names += (names.empty() ? "" : ", ") + n;
        throw ConfigError("topology." + k, fmt::format("unknown parameter of topology '{}' (it takes: {})", topo_, names));
      }
    }
  }
  const Params& resolved() const { return resolved_; }

 private:
  std::string topo_;
  const Params& given_;
  std::set<std::string> known_;
  Params resolved_;
};

int largest_divisor_at_most(int n, double bound) {
  int best = 1;
  for (int d = 1; d <= n; ++d)
    if (n % d == 0 && d <= bound + 1e-9) best = d;
  return best;
}

void need_links(int used, int links, const std::string& key, const std::string& what) {
  if (used > links)
    throw ConfigError(key, fmt::format("{} needs {} links per chip, the chips have {} (c2c.links)", what, used, links));
}

void wire(Topology& t, int chip, int link, int peer, int peer_link, int cls) {
  auto& p = t.ports[std::size_t(chip) * std::size_t(t.links) + std::size_t(link)];
  p.peer = peer;
  p.peer_link = peer_link;
  p.cls = cls;
}

// Torus of dims[0] x dims[1] (x dims[2]); chip = i0 + d0 * (i1 + d1 * i2). Direction 2k is
// +dimension k, 2k+1 is -dimension k; link = direction * m + j.
void torus(Topology& t, const std::vector<int>& dims, int m) {
  const int nd = int(dims.size());
  for (int c = 0; c < t.chips; ++c) {
    std::vector<int> idx(static_cast<std::size_t>(nd));
    int r = c;
    for (int k = 0; k < nd; ++k) {
      idx[std::size_t(k)] = r % dims[std::size_t(k)];
      r /= dims[std::size_t(k)];
    }
    for (int k = 0; k < nd; ++k) {
      const int dk = dims[std::size_t(k)];
      if (dk < 2) continue;  // a dimension of size 1 has no neighbours: its links stay unwired
      for (int sgn = 0; sgn < 2; ++sgn) {
        auto nidx = idx;
        nidx[std::size_t(k)] = (idx[std::size_t(k)] + (sgn == 0 ? 1 : dk - 1)) % dk;
        int peer = 0;
        for (int q = nd - 1; q >= 0; --q) peer = peer * dims[std::size_t(q)] + nidx[std::size_t(q)];
        const int dir = 2 * k + sgn, pdir = 2 * k + (1 - sgn);
        for (int j = 0; j < m; ++j) wire(t, c, dir * m + j, peer, pdir * m + j, 0);
      }
    }
  }
}

}  // namespace

const std::vector<std::string>& topology_names() {
  static const std::vector<std::string> n = {"lpx", "torus2d", "torus3d", "ring", "full"};
  return n;
}

Topology make_topology(const std::string& name, const Params& params, int chips, int links) {
  if (chips < 1) throw ConfigError("chips", "a rack needs at least one chip");
  if (links < 0) throw ConfigError("c2c.links", "negative link count");
  Topology t;
  t.name = name;
  t.chips = chips;
  t.links = links;
  t.classes = {"local"};
  t.ports.assign(std::size_t(chips) * std::size_t(links), Port{});
  ParamReader r(name, params);
  if (name == "lpx") {
    // Trays of S chips, all-to-all inside a tray (m links per chip pair), and a dragonfly of
    // trays: every pair of trays joined by h = S * g / (T - 1) global links.
    const int S = int(r.get("tray", 8, 1, 4096));
    if (chips % S != 0)
      throw ConfigError("topology.tray", fmt::format("{} chips are not a whole number of trays of {}", chips, S));
    const int T = chips / S;
    const int m = int(r.get("local_links_per_peer", 4, 1, 255));
    const int local = (S - 1) * m;
    need_links(local, links, "topology.local_links_per_peer", fmt::format("lpx with trays of {} and {} links per peer", S, m));
    const int avail = links - local;
    int g = 0;
    if (T > 1) {
      if (r.given("global_links") && params.at("global_links") > 0) {
        g = int(r.get("global_links", 0, 1, avail));
        if ((std::int64_t(S) * g) % (T - 1) != 0)
          throw ConfigError("topology.global_links",
                            fmt::format("{} trays of {} chips with {} global links per chip: {} tray ports do not split "
                                        "evenly over the {} other trays",
                                        T, S, g, S * g, T - 1));
      } else {
        for (int c = avail; c >= 1; --c)
          if ((std::int64_t(S) * c) % (T - 1) == 0) {
            g = c;
            break;
          }
        if (g == 0)
          throw ConfigError("topology.global_links",
                            fmt::format("no global link count up to {} splits evenly over {} other trays", avail, T - 1));
        r.set("global_links", g);
      }
      t.classes.push_back("global");
    } else {
      r.get("global_links", 0, 0, 0);
    }
    if (r.given("trays") && params.at("trays") != T)
      throw ConfigError("topology.trays", fmt::format("{} chips in trays of {} make {} trays, not {}", chips, S, T, params.at("trays")));
    r.set("trays", T);  // derived
    const int h = T > 1 ? S * g / (T - 1) : 0;
    for (int c = 0; c < chips; ++c) {
      const int A = c / S, ci = c % S;
      for (int l = 0; l < local; ++l) {
        const int s = l / m, j = l % m;
        const int pc = (ci + 1 + s) % S;
        wire(t, c, l, A * S + pc, (S - 2 - s) * m + j, 0);
      }
      for (int p = 0; p < g; ++p) {
        const int P = (S - 1 - ci) * g + p;
        const int k = P / h, j = P % h;
        const int B = (A + 1 + k) % T;
        const int P2 = (T - 2 - k) * h + j;
        const int c2 = S - 1 - P2 / g, p2 = P2 % g;
        wire(t, c, local + p, B * S + c2, local + p2, 1);
      }
    }
  } else if (name == "torus2d" || name == "torus3d") {
    const int nd = name == "torus2d" ? 2 : 3;
    std::vector<int> dims(static_cast<std::size_t>(nd));
    // Defaults: the most even factorisation with dims ascending (the last one largest, so the
    // halves of the numbering cut the largest dimension: the bisection).
    std::vector<int> def(static_cast<std::size_t>(nd));
    if (nd == 2) {
      def[0] = largest_divisor_at_most(chips, std::sqrt(double(chips)));
      def[1] = chips / def[0];
    } else {
      def[0] = largest_divisor_at_most(chips, std::cbrt(double(chips)));
      const int rest = chips / def[0];
      def[1] = largest_divisor_at_most(rest, std::sqrt(double(rest)));
      def[2] = rest / def[1];
    }
    const char* keys[] = {"x", "y", "z"};
    std::int64_t prod = 1;
    for (int k = 0; k < nd; ++k) {
      dims[std::size_t(k)] = int(r.get(keys[k], def[std::size_t(k)], 1, chips));
      prod *= dims[std::size_t(k)];
    }
    if (prod != chips)
      throw ConfigError(std::string("topology.") + keys[nd - 1],
                        fmt::format("{} dimensions multiply to {}, the rack has {} chips", name, prod, chips));
    const int m = int(r.get("links_per_direction", 1, 1, 255));
    need_links(2 * nd * m, links, "topology.links_per_direction", fmt::format("{} with {} links per direction", name, m));
    torus(t, dims, m);
  } else if (name == "ring") {
    const int m = int(r.get("links_per_direction", 1, 1, 255));
    need_links(2 * m, links, "topology.links_per_direction", fmt::format("ring with {} links per direction", m));
    if (chips >= 2)
      for (int c = 0; c < chips; ++c)
        for (int j = 0; j < m; ++j) {
          wire(t, c, j, (c + 1) % chips, m + j, 0);
          wire(t, c, m + j, (c + chips - 1) % chips, j, 0);
        }
  } else if (name == "full") {
    const int m = int(r.get("links_per_peer", 1, 1, 255));
    need_links((chips - 1) * m, links, "topology.links_per_peer",
               fmt::format("full with {} chips and {} links per peer", chips, m));
    for (int c = 0; c < chips; ++c)
      for (int l = 0; l < (chips - 1) * m; ++l) {
        const int s = l / m, j = l % m;
        wire(t, c, l, (c + 1 + s) % chips, (chips - 2 - s) * m + j, 0);
      }
  } else {
    std::string names;
    for (const auto& n : topology_names()) names += (names.empty() ? "" : ", ") + n;
    throw ConfigError("topology.name", fmt::format("unknown topology '{}' (known: {})", name, names));
  }
  r.finish();
  t.params = r.resolved();
  return t;
}

int Topology::wired_links() const {
  int n = 0;
  for (const auto& p : ports)
    if (p.peer >= 0) ++n;
  return n / 2;
}

int Topology::degree(int chip) const {
  int n = 0;
  for (int l = 0; l < links; ++l)
    if (port(chip, l).peer >= 0) ++n;
  return n;
}

int Topology::neighbours(int chip) const {
  std::set<int> s;
  for (int l = 0; l < links; ++l)
    if (port(chip, l).peer >= 0) s.insert(port(chip, l).peer);
  return int(s.size());
}

int Topology::bisection_links() const {
  const int half = chips / 2;
  int n = 0;
  for (int c = 0; c < half; ++c)
    for (int l = 0; l < links; ++l)
      if (port(c, l).peer >= half) ++n;
  return n;
}

int Topology::link_to(int chip, int peer) const {
  for (int l = 0; l < links; ++l)
    if (port(chip, l).peer == peer) return l;
  return -1;
}

std::string Topology::describe() const {
  std::string s;
  for (const auto& [k, v] : params) s += fmt::format("{}{}={}", s.empty() ? "" : ", ", k, v);
  return fmt::format("{} ({})", name, s);
}

}  // namespace lpu::rack
