#pragma once
// A rack file (configs/lpx-rack.toml): the chips (one preset plus sparse per-chip overrides),
// the topology (a named generator) and the link parameters. Format in docs/rack.md.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "lpu/arch/params.hpp"
#include "lpu/rack/topology.hpp"

namespace lpu::rack {

struct LinkClassParams {
  std::string name;                  // "local", "global"
  std::int64_t latency_cycles = 0;   // SerDes + FEC + wire, one way, in the sending chip's cycles
};

struct RackConfig {
  std::string origin;  // file name or "<string>"
  std::string name, description;
  int chips = 0;

  // Chip parameters: the distinct parameter sets and, per chip, which one it uses.
  std::string preset;                     // as written in the rack file
  std::vector<ChipParams> params;         // params[0]: the preset with the rack-wide `set`
  std::vector<int> chip_params;           // per chip: index into params
  std::vector<std::vector<std::string>> chip_overrides;  // per chip: its sparse overrides
  std::vector<std::int64_t> start_skew;   // per chip, cycles (docs/rack.md, "DESKEW")

  Topology topology;
  std::vector<LinkClassParams> link_classes;  // one per topology class
  double ber = 0.0;                           // bit error rate of every link
  std::uint64_t seed = 1;                     // of the deterministic bit-error generator

  // Common time base: every chip's cycle is ticks_per_cycle[chip] ticks (1 when all clocks are
  // equal); `reference` is the base preset's clock, in which rack-level cycles are reported.
  std::vector<std::int64_t> ticks_per_cycle;
  double ticks_per_reference_cycle = 1.0;

  const ChipParams& chip(int c) const { return params[std::size_t(chip_params[std::size_t(c)])]; }
  const ChipParams& base() const { return params[0]; }
};

// Contract: throws lpu::ConfigError naming the key ("topology.tray", "override[2].chips",
// "links.latency_cycles", ...) for a missing, unknown, mistyped or inconsistent entry;
// preset errors come from load_preset with their own key.
RackConfig load_rack(const std::string& path);
RackConfig parse_rack(const std::string& toml_text, const std::string& origin, const std::string& base_dir = ".");

// Overrides of a rack file, "key=value" with a dotted key ("links.latency_cycles=200",
// "links.global.latency_cycles=300", "topology.name=torus2d", "chips=64", "chip.preset=tsp1").
// The value is read as a TOML value (200, 0.5, "text", ["a", "b"]); anything else is a string.
// "chip.set+=section.key=value" appends one preset override for every chip to [chip] set.
// Returns the rack file's text with the overrides applied (tables are created as needed).
// Throws ConfigError("rack-set") for a malformed override or a key through a non-table.
std::string apply_rack_overrides(const std::string& toml_text, const std::vector<std::string>& sets,
                                 const std::string& origin);
// load_rack with overrides (lpu ... --rack FILE --rack-set KEY=VALUE; lpu sweep --set rack.KEY=...).
RackConfig load_rack(const std::string& path, const std::vector<std::string>& sets);

// A chip list: "3,7-9", "0-255:8" (every 8th), "all". Throws ConfigError(key) when malformed
// or out of 0..chips-1.
std::vector<int> parse_chip_list(const std::string& text, int chips, const std::string& key);

// Per directed link: what a SEND costs (docs/rack.md, "Link model").
struct LinkTiming {
  double bytes_per_cycle = 0;   // payload, per sending-chip cycle
  std::int64_t serialisation = 0;  // ceil(vector_bytes / bytes_per_cycle)
  std::int64_t latency = 0;        // the class's fixed latency
  std::int64_t c2c_send = 0;       // SEND issue to departure
  std::int64_t wire() const { return serialisation + latency; }         // departure to arrival
  std::int64_t hop() const { return c2c_send + serialisation + latency; }  // SEND issue to arrival
};
LinkTiming link_timing(const RackConfig& cfg, int chip, int link);

// Rack-level figures (what `lpu info --rack` prints).
struct RackFigures {
  int chips = 0;
  int trays = 0;                 // lpx only (0 otherwise)
  int link_ports = 0;            // sum of c2c.links
  int wired_links = 0;           // undirected
  double link_bandwidth = 0;     // bytes/s per link per direction (chip 0)
  double c2c_bandwidth = 0;      // bytes/s: every link port, both directions (the headline figure)
  double wired_c2c_bandwidth = 0;  // bytes/s: wired links, both directions (per chip, as c2c_bandwidth)
  double bisection_bandwidth = 0;  // bytes/s across the half cut, both directions
  int bisection_links = 0;
  double sram_bytes = 0;
  double sram_bandwidth = 0;
  double peak_flops_fp8 = 0;
  double peak_ops_int8 = 0;
  std::int64_t lookahead_ticks = 0;  // min over links of hop(), in ticks
};
RackFigures rack_figures(const RackConfig& cfg);

// Minimum over wired directed links of SEND issue to arrival, in ticks: the lookahead window.
std::int64_t lookahead_ticks(const RackConfig& cfg);

// Text or JSON summary (lpu info --rack FILE [--json]).
std::string info_text(const RackConfig& cfg, bool json);

}  // namespace lpu::rack
