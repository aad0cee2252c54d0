#include "lpu/arch/params.hpp"

#include <fmt/format.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <toml++/toml.h>

#include "lpu/common/errors.hpp"

namespace lpu {
namespace {

// Reads typed values out of a TOML table by dotted key, remembering which keys were used so
// that an unknown (misspelt) key is an error instead of being silently ignored.
class Reader {
 public:
  Reader(const toml::table& t, std::string origin) : t_(t), origin_(std::move(origin)) {}

  template <class T>
  void get(const std::string& key, T& out, bool required = false) {
    used_.insert(key);
    auto node = t_.at_path(key);
    if (!node) {
      if (required) throw ConfigError(key, fmt::format("missing in {}", origin_));
      return;
    }
    if constexpr (std::is_same_v<T, std::string>) {
      auto v = node.value<std::string>();
      if (!v) throw ConfigError(key, "expected a string");
      out = *v;
    } else if constexpr (std::is_integral_v<T>) {
      auto v = node.value<std::int64_t>();
      if (!v || !node.is_integer()) throw ConfigError(key, "expected an integer");
      out = static_cast<T>(*v);
    } else {
      auto v = node.value<double>();
      if (!v) throw ConfigError(key, "expected a number");
      out = *v;
    }
  }

  void check_unknown() const {
    std::vector<std::string> all;
    collect(t_, "", all);
    for (const auto& k : all) {
      if (!used_.count(k)) throw ConfigError(k, fmt::format("unknown key in {}", origin_));
    }
  }

 private:
  static void collect(const toml::table& t, const std::string& prefix,
                      std::vector<std::string>& out) {
    for (const auto& [k, v] : t) {
      std::string key = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
      if (const auto* sub = v.as_table()) {
        collect(*sub, key, out);
      } else {
        out.push_back(key);
      }
    }
  }

  const toml::table& t_;
  std::string origin_;
  std::set<std::string> used_;
};

void apply_override(toml::table& t, const std::string& ov) {
  auto eq = ov.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw ConfigError(ov, "override must look like section.key=value");
  }
  std::string key = ov.substr(0, eq);
  std::string val = ov.substr(eq + 1);
  toml::table* cur = &t;
  std::size_t start = 0;
  for (;;) {
    auto dot = key.find('.', start);
    std::string part = key.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (part.empty()) throw ConfigError(key, "empty component in key");
    if (dot == std::string::npos) {
      // Parse the value the way TOML would, falling back to a string.
      try {
        auto tmp = toml::parse("v = " + val);
        cur->insert_or_assign(part, *tmp.get("v"));
      } catch (const toml::parse_error&) {
        cur->insert_or_assign(part, val);
      }
      return;
    }
    auto* node = cur->get(part);
    if (!node) {
      cur->insert(part, toml::table{});
      node = cur->get(part);
    }
    cur = node->as_table();
    if (!cur) throw ConfigError(key, fmt::format("'{}' is not a section", part));
    start = dot + 1;
  }
}

void require(bool ok, const std::string& key, const std::string& what) {
  if (!ok) throw ConfigError(key, what);
}

}  // namespace

std::string config_dir() {
  if (const char* e = std::getenv("LPU_CONFIG_DIR")) return e;
  return LPU_DEFAULT_CONFIG_DIR;
}

ChipParams parse_preset(const std::string& text, const std::string& origin,
                        const std::vector<std::string>& overrides) {
  toml::table t;
  try {
    t = toml::parse(text, origin);
  } catch (const toml::parse_error& e) {
    const auto& s = e.source();
    throw ConfigError(origin, fmt::format("{}:{}: {}", s.begin.line, s.begin.column,
                                          std::string(e.description())));
  }
  for (const auto& ov : overrides) apply_override(t, ov);

  ChipParams p;
  Reader r(t, origin);
  r.get("name", p.name);
  r.get("description", p.description);
  r.get("clock_hz", p.clock_hz, true);
  r.get("vector.superlanes", p.superlanes, true);
  r.get("stream.per_direction", p.stream.per_direction, true);
  r.get("stream.hop_cycles", p.stream.hop_cycles);
  r.get("mem.slices_per_hemisphere", p.mem.slices_per_hemisphere, true);
  r.get("mem.rows", p.mem.rows, true);
  r.get("mem.read_ports", p.mem.read_ports);
  r.get("mem.write_ports", p.mem.write_ports);
  r.get("mem.queues_per_slice", p.mem.queues_per_slice);
  r.get("vxm.queues", p.vxm.queues, true);
  r.get("mxm.planes", p.mxm.planes, true);
  r.get("mxm.queues_per_plane", p.mxm.queues_per_plane);
  r.get("mxm.accumulators", p.mxm.accumulators);
  r.get("mxm.install_rows_per_cycle", p.mxm.install_rows_per_cycle);
  r.get("sxm.queues_per_hemisphere", p.sxm.queues_per_hemisphere, true);
  r.get("sxm.perm_tables", p.sxm.perm_tables);
  r.get("c2c.links", p.c2c.links, true);
  r.get("c2c.lanes_per_link", p.c2c.lanes_per_link);
  r.get("c2c.lane_gbps", p.c2c.lane_gbps);
  r.get("c2c.efficiency", p.c2c.efficiency);
  r.get("c2c.deskew_period", p.c2c.deskew_period);
  r.get("dma.bandwidth_bytes_per_s", p.dma.bandwidth_bytes_per_s);
  r.get("dma.latency_cycles", p.dma.latency_cycles);
  r.get("dma.channels", p.dma.channels);
  r.get("energy.sram_read_pj_per_byte", p.energy.sram_read_pj_per_byte);
  r.get("energy.sram_write_pj_per_byte", p.energy.sram_write_pj_per_byte);
  r.get("energy.mac_pj_i8", p.energy.mac_pj_i8);
  r.get("energy.mac_pj_fp8", p.energy.mac_pj_fp8);
  r.get("energy.mac_pj_fp16", p.energy.mac_pj_fp16);
  r.get("energy.vxm_pj_per_op", p.energy.vxm_pj_per_op);
  r.get("energy.stream_pj_per_byte", p.energy.stream_pj_per_byte);
  r.get("energy.weight_bus_pj_per_byte", p.energy.weight_bus_pj_per_byte);
  r.get("energy.link_pj_per_bit", p.energy.link_pj_per_bit);
  r.get("energy.dma_pj_per_byte", p.energy.dma_pj_per_byte);
  r.get("energy.static_w", p.energy.static_w);
  r.get("icu.notify_latency", p.icu.notify_latency);
  r.get("icu.superlane_stagger", p.icu.superlane_stagger);
  for (int c = 0; c < isa::kNumLatClasses; ++c) {
    std::string key = "latency." + std::string(isa::kLatClassNames[static_cast<std::size_t>(c)]);
    if (c == static_cast<int>(isa::LatClass::None)) {
      r.get(key, p.latency[static_cast<std::size_t>(c)]);
      continue;
    }
    r.get(key, p.latency[static_cast<std::size_t>(c)], true);
    require(p.latency[static_cast<std::size_t>(c)] >= 1, key, "a latency must be at least 1 cycle");
  }
  r.check_unknown();
  require(p.lat(isa::LatClass::SxmTrans) >= kLanesPerSuperlane, "latency.sxm_trans",
          "must be at least 16: a transpose needs all 16 input vectors before its first output");

  require(p.clock_hz > 0, "clock_hz", "must be positive");
  require(p.superlanes >= 1 && p.superlanes <= 256, "vector.superlanes", "must be in 1..256");
  require(p.stream.per_direction >= 1 && p.stream.per_direction <= 64, "stream.per_direction",
          "must be in 1..64 (6-bit stream id)");
  require(p.stream.hop_cycles >= 1, "stream.hop_cycles", "must be at least 1");
  require(p.mem.slices_per_hemisphere >= 1 && p.mem.slices_per_hemisphere <= 4096,
          "mem.slices_per_hemisphere", "must be in 1..4096");
  require(p.mem.rows >= 1 && p.mem.rows <= (1 << 20), "mem.rows",
          "must be in 1..1048576 (20-bit address offset)");
  require(p.mem.read_ports >= 1, "mem.read_ports", "must be at least 1");
  require(p.mem.write_ports >= 1, "mem.write_ports", "must be at least 1");
  require(p.mem.queues_per_slice >= 1 && p.mem.queues_per_slice <= 8, "mem.queues_per_slice",
          "must be in 1..8");
  require(p.vxm.queues >= 1 && p.vxm.queues <= 256, "vxm.queues", "must be in 1..256");
  require(p.mxm.planes >= 0 && p.mxm.planes <= 64, "mxm.planes", "must be in 0..64");
  require(p.mxm.queues_per_plane >= 1, "mxm.queues_per_plane", "must be at least 1");
  require(p.mxm.accumulators >= 1 && p.mxm.accumulators <= 256, "mxm.accumulators",
          "must be in 1..256 (8-bit field)");
  require(p.vector_bytes() <= 8192, "vector.superlanes", "MXM rows need vector_bytes <= 8192");
  require(p.mxm.install_rows_per_cycle >= 1 && p.mxm.install_rows_per_cycle <= 4096, "mxm.install_rows_per_cycle",
          "must be in 1..4096 (the LWM row field addresses at most 4096 staging rows)");
  require(p.sxm.queues_per_hemisphere >= 1, "sxm.queues_per_hemisphere", "must be at least 1");
  require(p.c2c.links >= 0 && p.c2c.links <= 256, "c2c.links", "must be in 0..256");
  require(p.c2c.efficiency > 0 && p.c2c.efficiency <= 1, "c2c.efficiency", "must be in (0, 1]");
  require(p.c2c.deskew_period >= 1, "c2c.deskew_period", "must be at least 1");
  require(p.dma.channels >= 1 && p.dma.channels <= 256, "dma.channels", "must be in 1..256");
  require(p.icu.notify_latency >= 1, "icu.notify_latency", "must be at least 1");
  for (double e : {p.energy.sram_read_pj_per_byte, p.energy.sram_write_pj_per_byte, p.energy.mac_pj_i8,
                   p.energy.mac_pj_fp8, p.energy.mac_pj_fp16, p.energy.vxm_pj_per_op, p.energy.stream_pj_per_byte,
                   p.energy.link_pj_per_bit, p.energy.dma_pj_per_byte, p.energy.static_w,
                   p.energy.weight_bus_pj_per_byte})
    require(e >= 0, "energy", "energies and static power must not be negative");
  return p;
}

ChipParams load_preset(const std::string& name_or_path, const std::vector<std::string>& overrides) {
  std::string path = name_or_path;
  bool is_path = name_or_path.find('/') != std::string::npos ||
                 (name_or_path.size() > 5 && name_or_path.ends_with(".toml"));
  if (!is_path) path = config_dir() + "/" + name_or_path + ".toml";
  std::ifstream f(path);
  if (!f) {
    throw ConfigError("preset", fmt::format("cannot open '{}' (presets live in {}; "
                                            "set LPU_CONFIG_DIR to use another folder)",
                                            path, config_dir()));
  }
  std::stringstream ss;
  ss << f.rdbuf();
  return parse_preset(ss.str(), path, overrides);
}

Peaks peaks(const ChipParams& p) {
  Peaks k{};
  const double f = p.clock_hz;
  const int v = p.vector_bytes();
  const int slices = 2 * p.mem.slices_per_hemisphere;
  k.clock_hz = f;
  k.vector_bytes = v;
  k.mem_slices = slices;
  k.sram_bytes = double(slices) * p.mem.rows * v;
  k.sram_bandwidth_bytes_per_s = double(slices) * p.mem.read_ports * v * f;
  k.sram_write_bandwidth_bytes_per_s = double(slices) * p.mem.write_ports * v * f;
  k.stream_bandwidth_bytes_per_s = 2.0 * p.stream.per_direction * v * f;
  // The weight bus: per hemisphere, its planes take install_rows_per_cycle rows each, and its
  // MEM slices read at most slices x read_ports rows per cycle (the extra plane of an odd count
  // is east, docs/timing.md / layout.hpp).
  const int planes_e = (p.mxm.planes + 1) / 2, planes_w = p.mxm.planes / 2;
  k.weight_bus_bytes_per_s = double(p.mxm.planes) * p.mxm.install_rows_per_cycle * v * f;
  double install = 0;
  for (int ph : {planes_e, planes_w}) {
    if (ph == 0) continue;
    const double bus = double(ph) * p.mxm.install_rows_per_cycle;
    const double sram = double(p.mem.slices_per_hemisphere) * p.mem.read_ports;
    install += std::min(bus, sram) * v * f;
  }
  k.weight_install_bytes_per_s = install;
  k.mxm_macs_per_cycle_int8 = std::int64_t(p.mxm.planes) * v * v;
  for (std::string_view t : {"i8", "e4m3", "e5m2", "f16", "bf16"}) {
    int b = 1;
    for (const auto& d : isa::kDtypes)
      if (d.name == t) b = d.bytes;
    double n = double(v) / b;
    k.mxm_peak_ops_per_s[std::string(t)] = 2.0 * p.mxm.planes * n * n * f;
  }
  k.vxm_alus = std::int64_t(p.vxm.queues) * v;
  k.instruction_queues = slices * p.mem.queues_per_slice + 2 * p.sxm.queues_per_hemisphere +
                         p.mxm.planes * p.mxm.queues_per_plane + p.vxm.queues;
  k.c2c_bandwidth_bytes_per_s =
      2.0 * p.c2c.links * p.c2c.lanes_per_link * p.c2c.lane_gbps * 1e9 * p.c2c.efficiency / 8.0;
  return k;
}

}  // namespace lpu
