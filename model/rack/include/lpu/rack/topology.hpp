#pragma once
// Rack topologies: named generators that wire (chip, link) to (peer chip, peer link).
//
// Contract: a generator is a pure function of its name, its parameters, the chip count and the
// number of links each chip has; it uses at most that many links per chip, wires links in
// pairs (peer of peer is self), never wires a link to its own chip, and throws
// lpu::ConfigError naming the parameter ("topology.<key>") on any problem. Link numbering per
// generator is documented in docs/rack.md.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace lpu::rack {

struct Port {
  int peer = -1;       // peer chip, -1: the link is not wired
  int peer_link = -1;  // link number at the peer
  int cls = 0;         // link class (index into Topology::classes), e.g. local / global
};

struct Topology {
  std::string name;
  int chips = 0;
  int links = 0;  // link numbers per chip (0 .. links-1), wired or not
  std::map<std::string, std::int64_t> params;  // as resolved (defaults filled in)
  std::vector<std::string> classes;            // link classes; [0] is always "local"
  std::vector<Port> ports;                     // chips x links

  const Port& port(int chip, int link) const { return ports[std::size_t(chip) * std::size_t(links) + std::size_t(link)]; }
  int wired_links() const;            // undirected links (each counted once)
  int degree(int chip) const;         // wired links of a chip
  int neighbours(int chip) const;     // distinct peer chips
  // Undirected links between chips [0, chips/2) and [chips/2, chips): the generators number
  // chips so that this cut is the bisection of the regular topology (docs/rack.md).
  int bisection_links() const;
  // Lowest link of `chip` wired to `peer`, or -1.
  int link_to(int chip, int peer) const;
  std::string describe() const;  // "lpx (tray=8, local_links_per_peer=4, global_links=62)"
};

// Names: lpx, torus2d, torus3d, ring, full. `links` is the number of link numbers per chip
// (the minimum of c2c.links over the rack's chips).
Topology make_topology(const std::string& name, const std::map<std::string, std::int64_t>& params, int chips,
                       int links);

// The generator names, for messages and `lpu info`.
const std::vector<std::string>& topology_names();

}  // namespace lpu::rack
