// Rack files: parsing, validation, derived figures.
#include "lpu/rack/config.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <numeric>
#include <set>
#include <sstream>
#include <toml++/toml.h>

#include "lpu/common/errors.hpp"
#include "lpu/common/parse.hpp"
#include "lpu/isa/isa.hpp"

namespace lpu::rack {

namespace {

std::string strip_config_prefix(const std::string& s) { return s.rfind("config: ", 0) == 0 ? s.substr(8) : s; }

std::int64_t get_int(const toml::node& n, const std::string& key) {
  if (!n.is_integer()) throw ConfigError(key, "expected an integer");
  return *n.value<std::int64_t>();
}
double get_num(const toml::node& n, const std::string& key) {
  if (!n.is_number()) throw ConfigError(key, "expected a number");
  return *n.value<double>();
}
std::string get_str(const toml::node& n, const std::string& key) {
  if (!n.is_string()) throw ConfigError(key, "expected a string");
  return *n.value<std::string>();
}
std::vector<std::string> get_str_array(const toml::node& n, const std::string& key) {
  const auto* a = n.as_array();
  if (!a) throw ConfigError(key, "expected an array of strings (\"section.key=value\")");
  std::vector<std::string> out;
  for (std::size_t i = 0; i < a->size(); ++i) out.push_back(get_str(*a->get(i), fmt::format("{}[{}]", key, i)));
  return out;
}

// A chip number (or a step) in a chip list: digits only (a '-' is the range's), checked.
std::int64_t chip_number(const std::string& s, const std::string& key) {
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos)
    throw ConfigError(key, fmt::format("'{}' is not a chip number", s));
  return parse_int(s, key, IntRange{0, 999'999'999});
}

std::string trim(const std::string& s) {
  auto a = s.find_first_not_of(" \t");
  if (a == std::string::npos) return "";
  auto b = s.find_last_not_of(" \t");
  return s.substr(a, b - a + 1);
}

}  // namespace

std::vector<int> parse_chip_list(const std::string& text, int chips, const std::string& key) {
  std::vector<int> out;
  const std::string t = trim(text);
  if (t == "all") {
    for (int c = 0; c < chips; ++c) out.push_back(c);
    return out;
  }
  if (t.empty()) throw ConfigError(key, "empty chip list");
  std::stringstream ss(t);
  std::string item;
  std::set<int> seen;
  while (std::getline(ss, item, ',')) {
    item = trim(item);
    std::int64_t a, b, step = 1;
    auto colon = item.find(':');
    std::string range = item.substr(0, colon);
    if (colon != std::string::npos) {
      step = chip_number(trim(item.substr(colon + 1)), key);
      if (step < 1) throw ConfigError(key, "a step must be at least 1");
    }
    auto dash = range.find('-');
    if (dash == std::string::npos) {
      a = b = chip_number(trim(range), key);
    } else {
      a = chip_number(trim(range.substr(0, dash)), key);
      b = chip_number(trim(range.substr(dash + 1)), key);
    }
    if (a > b) throw ConfigError(key, fmt::format("range '{}' runs backwards", item));
    if (b >= chips) throw ConfigError(key, fmt::format("chip {} is out of range 0..{}", b, chips - 1));
    for (std::int64_t c = a; c <= b; c += step)
      if (seen.insert(int(c)).second) out.push_back(int(c));
  }
  std::sort(out.begin(), out.end());
  return out;
}

RackConfig load_rack(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw ConfigError("rack", fmt::format("cannot open rack file '{}'", path));
  std::stringstream ss;
  ss << f.rdbuf();
  auto dir = std::filesystem::path(path).parent_path().string();
  return parse_rack(ss.str(), path, dir.empty() ? "." : dir);
}

RackConfig parse_rack(const std::string& text, const std::string& origin, const std::string& base_dir) {
  check_toml_key_depth(text, origin);  // before toml++ recurses on a hostile dotted key
  toml::table t;
  try {
    t = toml::parse(text, origin);
  } catch (const toml::parse_error& e) {
    const auto& s = e.source();
    throw ConfigError(origin, fmt::format("{}:{}: {}", s.begin.line, s.begin.column, std::string(e.description())));
  }
  RackConfig cfg;
  cfg.origin = origin;
  auto unknown = [&](const std::string& key) { return ConfigError(key, fmt::format("unknown key in {}", origin)); };

  std::vector<std::string> global_set;
  const toml::table* topo_t = nullptr;
  const toml::table* links_t = nullptr;
  const toml::array* overrides_a = nullptr;
  cfg.preset = "lp30";
  bool have_chips = false;
  for (const auto& [k, v] : t) {
    const std::string key(k.str());
    if (key == "name") cfg.name = get_str(v, key);
    else if (key == "description") cfg.description = get_str(v, key);
    else if (key == "chips") {
      auto n = get_int(v, key);
      if (n < 1 || n > 65536) throw ConfigError(key, fmt::format("{} is out of range 1..65536", n));
      cfg.chips = int(n);
      have_chips = true;
    } else if (key == "chip") {
      const auto* ct = v.as_table();
      if (!ct) throw ConfigError(key, "expected a table [chip]");
      for (const auto& [ck, cv] : *ct) {
        const std::string ckey = "chip." + std::string(ck.str());
        if (ck.str() == "preset") cfg.preset = get_str(cv, ckey);
        else if (ck.str() == "set") global_set = get_str_array(cv, ckey);
        else throw unknown(ckey);
      }
    } else if (key == "topology") {
      topo_t = v.as_table();
      if (!topo_t) throw ConfigError(key, "expected a table [topology]");
    } else if (key == "links") {
      links_t = v.as_table();
      if (!links_t) throw ConfigError(key, "expected a table [links]");
    } else if (key == "override") {
      overrides_a = v.as_array();
      if (!overrides_a) throw ConfigError(key, "expected [[override]] tables");
    } else {
      throw unknown(key);
    }
  }
  if (!have_chips) throw ConfigError("chips", fmt::format("missing in {}", origin));
  const int N = cfg.chips;

  // Chips: the preset, the rack-wide overrides, then the sparse per-chip ones.
  std::string preset_path = cfg.preset;
  const bool is_path = preset_path.find('/') != std::string::npos || preset_path.ends_with(".toml");
  if (is_path && !std::filesystem::path(preset_path).is_absolute())
    preset_path = (std::filesystem::path(base_dir) / preset_path).string();
  try {
    cfg.params.push_back(load_preset(preset_path, global_set));
  } catch (const ConfigError& e) {
    throw ConfigError("chip", strip_config_prefix(e.what()));
  }
  cfg.chip_overrides.assign(std::size_t(N), {});
  cfg.start_skew.assign(std::size_t(N), 0);
  std::vector<int> override_of_chip_block(std::size_t(N), -1);
  if (overrides_a) {
    for (std::size_t i = 0; i < overrides_a->size(); ++i) {
      const std::string base = fmt::format("override[{}]", i);
      const auto* ot = overrides_a->get(i)->as_table();
      if (!ot) throw ConfigError(base, "expected a table");
      std::vector<int> list;
      std::vector<std::string> set;
      std::int64_t skew = -1;
      bool have_list = false;
      for (const auto& [ok, ov] : *ot) {
        const std::string okey = base + "." + std::string(ok.str());
        if (ok.str() == "chips") {
          if (ov.is_integer()) list = parse_chip_list(std::to_string(get_int(ov, okey)), N, okey);
          else list = parse_chip_list(get_str(ov, okey), N, okey);
          have_list = true;
        } else if (ok.str() == "set") {
          set = get_str_array(ov, okey);
        } else if (ok.str() == "start_skew") {
          skew = get_int(ov, okey);
          if (skew < 0 || skew > (std::int64_t(1) << 40)) throw ConfigError(okey, fmt::format("{} is out of range", skew));
        } else {
          throw unknown(okey);
        }
      }
      if (!have_list) throw ConfigError(base + ".chips", fmt::format("missing in {}", origin));
      // `start_skew=N` may also be written in `set` (it is a rack property, not a preset key).
      std::vector<std::string> chip_set;
      for (const auto& s : set) {
        if (s.rfind("start_skew=", 0) == 0) {
          skew = parse_int(std::string_view(s).substr(11), base + ".set start_skew", IntRange{0, std::int64_t(1) << 40, "cycles"});
        } else {
          chip_set.push_back(s);
        }
      }
      for (int c : list) {
        auto& o = cfg.chip_overrides[std::size_t(c)];
        o.insert(o.end(), chip_set.begin(), chip_set.end());
        if (!chip_set.empty()) override_of_chip_block[std::size_t(c)] = int(i);
        if (skew >= 0) cfg.start_skew[std::size_t(c)] = skew;
      }
    }
  }
  cfg.chip_params.assign(std::size_t(N), 0);
  std::map<std::vector<std::string>, int> distinct;
  distinct[{}] = 0;
  for (int c = 0; c < N; ++c) {
    const auto& o = cfg.chip_overrides[std::size_t(c)];
    auto it = distinct.find(o);
    if (it == distinct.end()) {
      auto all = global_set;
      all.insert(all.end(), o.begin(), o.end());
      const std::string key = fmt::format("override[{}].set", override_of_chip_block[std::size_t(c)]);
      try {
        cfg.params.push_back(load_preset(preset_path, all));
      } catch (const ConfigError& e) {
        throw ConfigError(key, fmt::format("chip {}: {}", c, strip_config_prefix(e.what())));
      }
      const auto& p = cfg.params.back();
      if (p.vector_bytes() != cfg.params[0].vector_bytes())
        throw ConfigError(key, fmt::format("chip {} has {}-byte vectors, the rack's links carry {}-byte vectors", c,
                                           p.vector_bytes(), cfg.params[0].vector_bytes()));
      it = distinct.emplace(o, int(cfg.params.size()) - 1).first;
    }
    cfg.chip_params[std::size_t(c)] = it->second;
  }

  // Topology.
  std::string topo_name = "lpx";
  std::map<std::string, std::int64_t> topo_params;
  if (topo_t) {
    for (const auto& [k, v] : *topo_t) {
      const std::string key = "topology." + std::string(k.str());
      if (k.str() == "name") topo_name = get_str(v, key);
      else topo_params[std::string(k.str())] = get_int(v, key);
    }
  }
  int min_links = std::numeric_limits<int>::max();
  for (int c = 0; c < N; ++c) min_links = std::min(min_links, cfg.chip(c).c2c.links);
  cfg.topology = make_topology(topo_name, topo_params, N, min_links);

  // Links.
  std::int64_t latency = 160;
  std::map<std::string, std::int64_t> class_latency;
  if (links_t) {
    for (const auto& [k, v] : *links_t) {
      const std::string key = "links." + std::string(k.str());
      if (k.str() == "latency_cycles") {
        latency = get_int(v, key);
        if (latency < 0) throw ConfigError(key, "must be >= 0");
      } else if (k.str() == "ber") {
        cfg.ber = get_num(v, key);
        // A probability per bit; every value in [0, 1] is drawn exactly (link.cpp).
        if (!(cfg.ber >= 0 && cfg.ber <= 1))
          throw ConfigError(key, fmt::format("{:g} is out of range [0, 1]: a bit error rate is a probability per bit", cfg.ber));
      } else if (k.str() == "seed") {
        auto s = get_int(v, key);
        cfg.seed = std::uint64_t(s);
      } else if (const auto* sub = v.as_table()) {
        const std::string cls(k.str());
        if (std::find(cfg.topology.classes.begin(), cfg.topology.classes.end(), cls) == cfg.topology.classes.end()) {
          std::string names;
          for (const auto& n : cfg.topology.classes) names += (names.empty() ? "" : ", ") + n;
          throw ConfigError(key, fmt::format("topology '{}' has no link class '{}' (classes: {})", topo_name, cls, names));
        }
        for (const auto& [sk, sv] : *sub) {
          const std::string skey = key + "." + std::string(sk.str());
          if (sk.str() != "latency_cycles") throw unknown(skey);
          auto l = get_int(sv, skey);
          if (l < 0) throw ConfigError(skey, "must be >= 0");
          class_latency[cls] = l;
        }
      } else {
        throw unknown(key);
      }
    }
  }
  for (const auto& cls : cfg.topology.classes) {
    auto it = class_latency.find(cls);
    cfg.link_classes.push_back({cls, it == class_latency.end() ? latency : it->second});
  }

  // Time base: clocks as whole numbers of Hz; ticks = 1 / lcm(clocks).
  std::set<std::int64_t> clocks;
  auto hz = [&](const ChipParams& p, const std::string& key) {
    const double r = std::round(p.clock_hz);
    if (r < 1 || std::fabs(p.clock_hz - r) > 1e-6 * r)
      throw ConfigError(key, fmt::format("clock_hz {} must be a whole number of Hz in a rack", p.clock_hz));
    return std::int64_t(r);
  };
  for (int c = 0; c < N; ++c) clocks.insert(hz(cfg.chip(c), fmt::format("override[{}].set", override_of_chip_block[std::size_t(c)])));
  std::int64_t lcm = 1;
  const std::int64_t fmin = *clocks.begin();
  for (auto f : clocks) {
    lcm = std::lcm(lcm, f);
    if (lcm / fmin > 1'000'000 || lcm <= 0)
      throw ConfigError("clock_hz", "the chips' clocks have no common time base finer than 1e-6 of a cycle; "
                                    "use clocks with a larger common divisor");
  }
  cfg.ticks_per_cycle.resize(std::size_t(N));
  for (int c = 0; c < N; ++c) cfg.ticks_per_cycle[std::size_t(c)] = lcm / hz(cfg.chip(c), "clock_hz");
  cfg.ticks_per_reference_cycle = double(lcm) / cfg.params[0].clock_hz;
  return cfg;
}

LinkTiming link_timing(const RackConfig& cfg, int chip, int link) {
  const auto& p = cfg.chip(chip);
  LinkTiming t;
  t.bytes_per_cycle = p.c2c.lanes_per_link * p.c2c.lane_gbps * 1e9 * p.c2c.efficiency / 8.0 / p.clock_hz;
  t.serialisation = std::int64_t(std::ceil(double(p.vector_bytes()) / t.bytes_per_cycle - 1e-9));
  if (t.serialisation < 1) t.serialisation = 1;
  const auto& port = cfg.topology.port(chip, link);
  t.latency = cfg.link_classes[std::size_t(port.cls)].latency_cycles;
  t.c2c_send = p.lat(isa::LatClass::C2cSend);
  return t;
}

std::int64_t lookahead_ticks(const RackConfig& cfg) {
  std::int64_t L = std::numeric_limits<std::int64_t>::max() / 4;
  for (int c = 0; c < cfg.chips; ++c)
    for (int l = 0; l < cfg.topology.links; ++l)
      if (cfg.topology.port(c, l).peer >= 0)
        L = std::min(L, link_timing(cfg, c, l).hop() * cfg.ticks_per_cycle[std::size_t(c)]);
  return std::max<std::int64_t>(L, 1);
}

RackFigures rack_figures(const RackConfig& cfg) {
  RackFigures f;
  f.chips = cfg.chips;
  if (cfg.topology.name == "lpx") f.trays = int(cfg.topology.params.at("trays"));
  for (int c = 0; c < cfg.chips; ++c) {
    const auto& p = cfg.chip(c);
    auto k = peaks(p);
    f.link_ports += p.c2c.links;
    f.c2c_bandwidth += k.c2c_bandwidth_bytes_per_s;
    f.sram_bytes += k.sram_bytes;
    f.sram_bandwidth += k.sram_bandwidth_bytes_per_s;
    f.peak_flops_fp8 += k.mxm_peak_ops_per_s.at("e4m3");
    f.peak_ops_int8 += k.mxm_peak_ops_per_s.at("i8");
    for (int l = 0; l < cfg.topology.links; ++l) {
      const auto& port = cfg.topology.port(c, l);
      if (port.peer < 0) continue;
      const double bw = link_timing(cfg, c, l).bytes_per_cycle * p.clock_hz;
      f.wired_c2c_bandwidth += 2 * bw;  // out and in, as c2c_bandwidth counts every port
      if ((c < cfg.chips / 2) != (port.peer < cfg.chips / 2)) f.bisection_bandwidth += bw;
    }
  }
  f.wired_links = cfg.topology.wired_links();
  f.bisection_links = cfg.topology.bisection_links();
  const auto& p0 = cfg.chip(0);
  f.link_bandwidth = p0.c2c.lanes_per_link * p0.c2c.lane_gbps * 1e9 * p0.c2c.efficiency / 8.0;
  f.lookahead_ticks = lookahead_ticks(cfg);
  return f;
}

std::string info_text(const RackConfig& cfg, bool json) {
  const auto f = rack_figures(cfg);
  const auto& p0 = cfg.base();
  int overridden = 0, skewed = 0;
  for (int c = 0; c < cfg.chips; ++c) {
    overridden += !cfg.chip_overrides[std::size_t(c)].empty();
    skewed += cfg.start_skew[std::size_t(c)] != 0;
  }
  LinkTiming t0;
  for (int l = 0; l < cfg.topology.links; ++l)
    if (cfg.topology.port(0, l).peer >= 0) {
      t0 = link_timing(cfg, 0, l);
      break;
    }
  if (json) {
    nlohmann::json j;
    j["rack"] = cfg.name;
    j["origin"] = cfg.origin;
    j["chips"] = f.chips;
    if (f.trays) j["trays"] = f.trays;
    j["preset"] = p0.name;
    j["chips_with_overrides"] = overridden;
    j["chips_with_start_skew"] = skewed;
    j["topology"] = {{"name", cfg.topology.name}, {"params", cfg.topology.params}, {"classes", cfg.topology.classes}};
    nlohmann::json cls = nlohmann::json::object();
    for (const auto& c : cfg.link_classes) cls[c.name] = {{"latency_cycles", c.latency_cycles}};
    j["links"] = {{"ports", f.link_ports},
                  {"wired", f.wired_links},
                  {"bandwidth_bytes_per_s", f.link_bandwidth},
                  {"serialisation_cycles", t0.serialisation},
                  {"classes", cls},
                  {"ber", cfg.ber},
                  {"seed", cfg.seed}};
    j["c2c_bandwidth_bytes_per_s"] = f.c2c_bandwidth;
    j["wired_c2c_bandwidth_bytes_per_s"] = f.wired_c2c_bandwidth;
    j["bisection_links"] = f.bisection_links;
    j["bisection_bandwidth_bytes_per_s"] = f.bisection_bandwidth;
    j["sram_bytes"] = f.sram_bytes;
    j["sram_bandwidth_bytes_per_s"] = f.sram_bandwidth;
    j["peak_flops_fp8"] = f.peak_flops_fp8;
    j["peak_ops_int8"] = f.peak_ops_int8;
    j["lookahead_reference_cycles"] = double(f.lookahead_ticks) / cfg.ticks_per_reference_cycle;
    return j.dump(2) + "\n";
  }
  std::string s;
  s += fmt::format("rack          {}{}\n", cfg.name.empty() ? cfg.origin : cfg.name,
                   cfg.description.empty() ? "" : " - " + cfg.description);
  s += fmt::format("chips         {}{} x {} ({} with overrides, {} with start skew)\n", f.chips,
                   f.trays ? fmt::format(" ({} trays of {})", f.trays, cfg.topology.params.at("tray")) : "", p0.name,
                   overridden, skewed);
  s += fmt::format("topology      {}\n", cfg.topology.describe());
  s += fmt::format("links         {} ports, {} wired; {:.2f} GB/s per link per direction; {}-byte vector: {} cycles\n",
                   f.link_ports, f.wired_links, f.link_bandwidth / 1e9, p0.vector_bytes(), t0.serialisation);
  std::string lat;
  for (const auto& c : cfg.link_classes) lat += fmt::format("{}{} {}", lat.empty() ? "" : ", ", c.name, c.latency_cycles);
  s += fmt::format("latency       {} cycles (+ serialisation); ber {:g}, seed {}\n", lat, cfg.ber, cfg.seed);
  s += fmt::format("lookahead     {:g} cycles (min over links of c2c_send + serialisation + latency)\n",
                   double(f.lookahead_ticks) / cfg.ticks_per_reference_cycle);
  s += fmt::format("C2C           {:.1f} TB/s (all ports, both directions); wired {:.1f} TB/s\n", f.c2c_bandwidth / 1e12,
                   f.wired_c2c_bandwidth / 1e12);
  s += fmt::format("bisection     {} links, {:.1f} TB/s (both directions)\n", f.bisection_links, f.bisection_bandwidth / 1e12);
  s += fmt::format("SRAM          {:.1f} GB, {:.1f} PB/s\n", f.sram_bytes / 1e9, f.sram_bandwidth / 1e15);
  s += fmt::format("peak          {:.1f} PFLOPS fp8, {:.1f} POPS int8\n", f.peak_flops_fp8 / 1e15, f.peak_ops_int8 / 1e15);
  return s;
}

}  // namespace lpu::rack

namespace lpu::rack {

std::string apply_rack_overrides(const std::string& text, const std::vector<std::string>& sets, const std::string& origin) {
  check_toml_key_depth(text, origin);  // before toml++ recurses on a hostile dotted key
  toml::table t;
  try {
    t = toml::parse(text, origin);
  } catch (const toml::parse_error& e) {
    const auto& s = e.source();
    throw ConfigError(origin, fmt::format("{}:{}: {}", s.begin.line, s.begin.column, std::string(e.description())));
  }
  for (const auto& s : sets) {
    auto eq = s.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == s.size())
      throw ConfigError("rack-set", fmt::format("'{}' must look like KEY=VALUE (e.g. links.latency_cycles=200)", s));
    std::string key = trim(s.substr(0, eq));
    const std::string value = trim(s.substr(eq + 1));
    const bool append = key.ends_with("+");
    if (append) key = trim(key.substr(0, key.size() - 1));
    if (append && key != "chip.set")
      throw ConfigError("rack-set", fmt::format("'{}': only chip.set+=section.key=value appends", s));
    // The value as TOML; a bare word that is not TOML (torus2d, 0-3) is a string.
    toml::table v;
    try {
      check_toml_key_depth("v = " + value, "rack-set");
      v = toml::parse("v = " + value);
    } catch (const toml::parse_error&) {
      v.insert("v", value);
    }
    if (append) v.insert_or_assign("v", value);  // the whole "section.key=value" is one string
    // Walk the dotted key, creating tables.
    toml::table* cur = &t;
    std::string part, path;
    std::stringstream ks(key);
    std::vector<std::string> parts;
    while (std::getline(ks, part, '.')) {
      part = trim(part);
      if (part.empty()) throw ConfigError("rack-set", fmt::format("'{}': empty component in key '{}'", s, key));
      parts.push_back(part);
      // A rack key has a few parts (links.global.latency_cycles): refuse a hostile one before
      // it builds (and toml++ recursively frees) a table as deep.
      if (parts.size() > 8)
        throw ConfigError("rack-set", fmt::format("'{}...': a key has 1 to 8 dotted parts", s.substr(0, 64)));
    }
    // A rack key has at most three parts (links.global.latency_cycles); each part is a table
    // level, and TOML tables are printed and freed recursively.
    if (parts.empty()) throw ConfigError("rack-set", fmt::format("'{}': a key has 1 to 8 dotted parts", s));
    for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
      path += (path.empty() ? "" : ".") + parts[i];
      auto* node = cur->get(parts[i]);
      if (!node) {
        cur->insert(parts[i], toml::table{});
        node = cur->get(parts[i]);
      }
      cur = node->as_table();
      if (!cur) throw ConfigError("rack-set", fmt::format("'{}': '{}' in {} is not a table", s, path, origin));
    }
    const std::string& leaf = parts.back();
    if (append) {
      auto* node = cur->get(leaf);
      if (!node) {
        cur->insert(leaf, toml::array{});
        node = cur->get(leaf);
      }
      auto* arr = node->as_array();
      if (!arr) throw ConfigError("rack-set", fmt::format("'{}': {} in {} is not an array", s, key, origin));
      arr->push_back(value);
    } else {
      cur->insert_or_assign(leaf, std::move(*v.get("v")));
    }
  }
  std::stringstream out;
  out << t << "\n";
  return out.str();
}

RackConfig load_rack(const std::string& path, const std::vector<std::string>& sets) {
  if (sets.empty()) return load_rack(path);
  std::ifstream f(path);
  if (!f) throw ConfigError("rack", fmt::format("cannot open rack file '{}'", path));
  std::stringstream ss;
  ss << f.rdbuf();
  auto dir = std::filesystem::path(path).parent_path().string();
  return parse_rack(apply_rack_overrides(ss.str(), sets, path), path, dir.empty() ? "." : dir);
}

}  // namespace lpu::rack
