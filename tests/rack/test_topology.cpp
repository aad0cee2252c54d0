// Topology generators: invariants (symmetric wiring, no self links, link counts, degree),
// the documented numbering, and errors.
#include <doctest/doctest.h>

#include <map>
#include <set>

#include "lpu/common/errors.hpp"
#include "lpu/rack/topology.hpp"

using namespace lpu::rack;

namespace {

// Every wired link is wired back to itself from the peer, with the same class; no chip is
// wired to itself; no chip uses more than `links` link numbers.
void check_invariants(const Topology& t) {
  REQUIRE(t.ports.size() == std::size_t(t.chips) * std::size_t(t.links));
  for (int c = 0; c < t.chips; ++c) {
    CHECK(t.degree(c) <= t.links);
    for (int l = 0; l < t.links; ++l) {
      const auto& p = t.port(c, l);
      if (p.peer < 0) continue;
      REQUIRE(p.peer < t.chips);
      REQUIRE(p.peer_link >= 0);
      REQUIRE(p.peer_link < t.links);
      CHECK(p.peer != c);
      const auto& back = t.port(p.peer, p.peer_link);
      CHECK(back.peer == c);
      CHECK(back.peer_link == l);
      CHECK(back.cls == p.cls);
    }
  }
}

}  // namespace

TEST_CASE("lpx: 256 chips, trays of 8 all-to-all, dragonfly between trays") {
  auto t = make_topology("lpx", {{"tray", 8}, {"local_links_per_peer", 4}}, 256, 96);
  check_invariants(t);
  CHECK(t.params.at("global_links") == 62);  // largest g <= 96 - 28 with 8 g divisible by 31
  CHECK(t.params.at("trays") == 32);
  CHECK(t.wired_links() == 256 * 90 / 2);
  for (int c = 0; c < 256; ++c) {
    CHECK(t.degree(c) == 90);
    // Local links 0..27: link 4 s + j goes to the chip s + 1 places on in the tray.
    for (int l = 0; l < 28; ++l) {
      CHECK(t.port(c, l).peer == (c / 8) * 8 + (c % 8 + 1 + l / 4) % 8);
      CHECK(t.port(c, l).cls == 0);
    }
    for (int l = 28; l < 90; ++l) {
      CHECK(t.port(c, l).cls == 1);
      CHECK(t.port(c, l).peer / 8 != c / 8);
    }
    for (int l = 90; l < 96; ++l) CHECK(t.port(c, l).peer == -1);
  }
  // Every pair of trays is joined by 8 * 62 / 31 = 16 links.
  std::map<std::pair<int, int>, int> pairs;
  for (int c = 0; c < 256; ++c)
    for (int l = 28; l < 90; ++l) pairs[{c / 8, t.port(c, l).peer / 8}]++;
  CHECK(pairs.size() == 32u * 31u);
  for (const auto& [k, n] : pairs) CHECK(n == 16);
  // Chip order is a ring: the last chip of a tray has a global link to the first of the next.
  for (int c = 0; c < 256; ++c) CHECK(t.link_to(c, (c + 1) % 256) >= 0);
  CHECK(t.link_to(7, 8) == 28);  // first global link of chip 7 goes to tray 1, chip 0
  CHECK(t.bisection_links() == 16 * 16 * 16);
  // Deterministic.
  auto t2 = make_topology("lpx", {{"tray", 8}, {"local_links_per_peer", 4}}, 256, 96);
  for (std::size_t i = 0; i < t.ports.size(); ++i) CHECK(t.ports[i].peer == t2.ports[i].peer);
}

TEST_CASE("lpx: one tray has no global links") {
  auto t = make_topology("lpx", {}, 8, 96);
  check_invariants(t);
  CHECK(t.params.at("global_links") == 0);
  for (int c = 0; c < 8; ++c) {
    CHECK(t.degree(c) == 28);
    CHECK(t.neighbours(c) == 7);
  }
  CHECK(t.classes.size() == 1u);
}

TEST_CASE("torus2d, torus3d, ring, full") {
  auto t2 = make_topology("torus2d", {}, 256, 96);
  check_invariants(t2);
  CHECK(t2.params.at("x") == 16);
  CHECK(t2.params.at("y") == 16);
  for (int c = 0; c < 256; ++c) {
    CHECK(t2.degree(c) == 4);
    CHECK(t2.neighbours(c) == 4);
  }
  CHECK(t2.port(0, 0).peer == 1);   // +x
  CHECK(t2.port(0, 1).peer == 15);  // -x wraps
  CHECK(t2.port(0, 2).peer == 16);  // +y
  CHECK(t2.port(0, 3).peer == 240);
  CHECK(t2.bisection_links() == 2 * 16);

  auto t3 = make_topology("torus3d", {{"links_per_direction", 2}}, 256, 96);
  check_invariants(t3);
  CHECK(t3.params.at("x") * t3.params.at("y") * t3.params.at("z") == 256);
  CHECK(t3.params.at("z") >= t3.params.at("x"));
  for (int c = 0; c < 256; ++c) {
    CHECK(t3.degree(c) == 12);
    CHECK(t3.neighbours(c) == 6);
  }

  auto r = make_topology("ring", {}, 16, 4);
  check_invariants(r);
  for (int c = 0; c < 16; ++c) {
    CHECK(r.degree(c) == 2);
    CHECK(r.port(c, 0).peer == (c + 1) % 16);
    CHECK(r.port(c, 1).peer == (c + 15) % 16);
  }
  CHECK(r.bisection_links() == 2);

  auto f = make_topology("full", {{"links_per_peer", 2}}, 8, 16);
  check_invariants(f);
  for (int c = 0; c < 8; ++c) CHECK(f.neighbours(c) == 7);
  CHECK(f.bisection_links() == 4 * 4 * 2);

  auto pair = make_topology("full", {}, 2, 96);
  check_invariants(pair);
  CHECK(pair.port(0, 0).peer == 1);
  CHECK(pair.port(0, 0).peer_link == 0);
  CHECK(pair.wired_links() == 1);

  // A torus dimension of 2: both directions reach the same chip over distinct links.
  auto t22 = make_topology("torus2d", {{"x", 2}, {"y", 4}}, 8, 8);
  check_invariants(t22);
  CHECK(t22.port(0, 0).peer == 1);
  CHECK(t22.port(0, 1).peer == 1);
}

TEST_CASE("topology errors name the parameter") {
  auto key_of = [](auto&& f) {
    try {
      f();
    } catch (const lpu::ConfigError& e) {
      return e.key();
    }
    return std::string("(no error)");
  };
  CHECK(key_of([] { make_topology("mesh", {}, 8, 8); }) == "topology.name");
  CHECK(key_of([] { make_topology("ring", {{"width", 2}}, 8, 8); }) == "topology.width");
  CHECK(key_of([] { make_topology("lpx", {{"tray", 8}}, 12, 96); }) == "topology.tray");
  CHECK(key_of([] { make_topology("lpx", {{"local_links_per_peer", 20}}, 8, 96); }) == "topology.local_links_per_peer");
  CHECK(key_of([] { make_topology("lpx", {{"global_links", 60}}, 256, 96); }) == "topology.global_links");
  CHECK(key_of([] { make_topology("full", {}, 256, 96); }) == "topology.links_per_peer");
  CHECK(key_of([] { make_topology("torus2d", {{"x", 3}, {"y", 5}}, 16, 8); }) == "topology.y");
}
