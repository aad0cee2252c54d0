#include "lpu/arch/params.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <toml++/toml.h>
#include <utility>
#include <variant>

#include "lpu/common/errors.hpp"
#include "lpu/common/parse.hpp"

namespace lpu {
namespace {

// One parameter: its key, the field it fills, and its documented range. The reader, the range
// checks and docs/presets.md all come from this one list.
using IntField = int& (*)(ChipParams&);
using RealField = double& (*)(ChipParams&);
using TextField = std::string& (*)(ChipParams&);
struct Binding {
  PresetKey info;
  std::variant<IntField, RealField, TextField> field;
};

constexpr double kMaxLatency = 1 << 20;  // cycles: far beyond any unit, far below overflow
constexpr double kMaxEnergy = 1e6;        // pJ per event (or W): a typo guard, not physics

std::vector<Binding> make_bindings() {
  using T = PresetKey::Type;
  std::vector<Binding> b;
  auto text = [&](std::string key, TextField f, std::string meaning) {
    b.push_back({PresetKey{std::move(key), T::String, false, 0, 0, false, "", std::move(meaning)}, f});
  };
  auto integer = [&](std::string key, IntField f, bool req, double lo, double hi, std::string unit, std::string meaning) {
    b.push_back({PresetKey{std::move(key), T::Integer, req, lo, hi, false, std::move(unit), std::move(meaning)}, f});
  };
  auto real = [&](std::string key, RealField f, bool req, double lo, double hi, bool lo_open, std::string unit,
                  std::string meaning) {
    b.push_back({PresetKey{std::move(key), T::Number, req, lo, hi, lo_open, std::move(unit), std::move(meaning)}, f});
  };
  text("name", [](ChipParams& p) -> std::string& { return p.name; }, "the preset's name (objects record it as `.preset`)");
  text("description", [](ChipParams& p) -> std::string& { return p.description; }, "one line for `lpu info`");
  real("clock_hz", [](ChipParams& p) -> double& { return p.clock_hz; }, true, 0, 1e12, true, "Hz",
       "core clock; in a rack, a whole number of Hz");
  integer("vector.superlanes", [](ChipParams& p) -> int& { return p.superlanes; }, true, 1, 256, "superlanes",
          "superlanes of 16 lanes: a vector is 16 x superlanes bytes");
  integer("stream.per_direction", [](ChipParams& p) -> int& { return p.stream.per_direction; }, true, 1, 64, "streams",
          "stream registers per direction (east and west each; 6-bit stream id)");
  integer("stream.hop_cycles", [](ChipParams& p) -> int& { return p.stream.hop_cycles; }, false, 1, 1024, "cycles",
          "cycles a stream value takes to move one slice position");
  integer("mem.slices_per_hemisphere", [](ChipParams& p) -> int& { return p.mem.slices_per_hemisphere; }, true, 1, 4096,
          "slices", "MEM slices on each side of the VXM");
  integer("mem.rows", [](ChipParams& p) -> int& { return p.mem.rows; }, true, 1, 1 << 20, "rows",
          "SRAM rows (vectors) per MEM slice (20-bit address offset)");
  integer("mem.read_ports", [](ChipParams& p) -> int& { return p.mem.read_ports; }, false, 1, 16, "ports",
          "SRAM reads a MEM slice can start per cycle");
  integer("mem.write_ports", [](ChipParams& p) -> int& { return p.mem.write_ports; }, false, 1, 16, "ports",
          "SRAM writes a MEM slice can start per cycle");
  integer("mem.queues_per_slice", [](ChipParams& p) -> int& { return p.mem.queues_per_slice; }, false, 1, 8, "queues",
          "instruction queues driving one MEM slice (they share its ports)");
  integer("vxm.queues", [](ChipParams& p) -> int& { return p.vxm.queues; }, true, 1, 256, "queues",
          "VXM instruction queues (one ALU per lane per queue)");
  integer("mxm.planes", [](ChipParams& p) -> int& { return p.mxm.planes; }, true, 0, 64, "planes",
          "MXM planes (vector_bytes x vector_bytes MACs each), split between the hemispheres");
  integer("mxm.queues_per_plane", [](ChipParams& p) -> int& { return p.mxm.queues_per_plane; }, false, 1, 16, "queues",
          "instruction queues per MXM plane");
  integer("mxm.accumulators", [](ChipParams& p) -> int& { return p.mxm.accumulators; }, false, 1, 256, "accumulators",
          "accumulators per MXM plane (8-bit field)");
  integer("mxm.install_rows_per_cycle", [](ChipParams& p) -> int& { return p.mxm.install_rows_per_cycle; }, false, 1, 1024,
          "rows", "staging rows an MXM plane takes per cycle over the weight bus (LWM; its 10-bit row field)");
  integer("sxm.queues_per_hemisphere", [](ChipParams& p) -> int& { return p.sxm.queues_per_hemisphere; }, true, 1, 256,
          "queues", "SXM (and C2C, DMA) instruction queues per hemisphere");
  integer("sxm.perm_tables", [](ChipParams& p) -> int& { return p.sxm.perm_tables; }, false, 1, 256, "tables",
          "permutation tables per SXM (8-bit field)");
  integer("c2c.links", [](ChipParams& p) -> int& { return p.c2c.links; }, true, 0, 256, "links",
          "chip-to-chip link ports (8-bit link number)");
  integer("c2c.lanes_per_link", [](ChipParams& p) -> int& { return p.c2c.lanes_per_link; }, false, 1, 64, "lanes",
          "SerDes lanes per link");
  real("c2c.lane_gbps", [](ChipParams& p) -> double& { return p.c2c.lane_gbps; }, false, 0, 10000, true, "Gb/s",
       "line rate of one lane");
  real("c2c.efficiency", [](ChipParams& p) -> double& { return p.c2c.efficiency; }, false, 0, 1, true, "",
       "payload / line rate (encoding, FEC)");
  integer("c2c.deskew_period", [](ChipParams& p) -> int& { return p.c2c.deskew_period; }, false, 1, 1 << 30, "cycles",
          "DESKEW waits for the next multiple of this on the aligned counter");
  real("dma.bandwidth_bytes_per_s", [](ChipParams& p) -> double& { return p.dma.bandwidth_bytes_per_s; }, false, 0, 1e15,
       true, "bytes/s", "host link bandwidth, one direction");
  integer("dma.latency_cycles", [](ChipParams& p) -> int& { return p.dma.latency_cycles; }, false, 0, 1 << 30, "cycles",
          "host link latency");
  integer("dma.channels", [](ChipParams& p) -> int& { return p.dma.channels; }, false, 1, 256, "channels",
          "host DMA channels (8-bit field)");
  auto energy = [&](std::string key, RealField f, std::string unit, std::string meaning) {
    real("energy." + key, f, false, 0, kMaxEnergy, false, std::move(unit), std::move(meaning));
  };
  energy("sram_read_pj_per_byte", [](ChipParams& p) -> double& { return p.energy.sram_read_pj_per_byte; }, "pJ/byte",
         "SRAM read");
  energy("sram_write_pj_per_byte", [](ChipParams& p) -> double& { return p.energy.sram_write_pj_per_byte; }, "pJ/byte",
         "SRAM write");
  energy("mac_pj_i8", [](ChipParams& p) -> double& { return p.energy.mac_pj_i8; }, "pJ/MAC", "int8 multiply-accumulate");
  energy("mac_pj_fp8", [](ChipParams& p) -> double& { return p.energy.mac_pj_fp8; }, "pJ/MAC",
         "fp8 (e4m3, e5m2) multiply-accumulate");
  energy("mac_pj_fp16", [](ChipParams& p) -> double& { return p.energy.mac_pj_fp16; }, "pJ/MAC",
         "f16 and bf16 multiply-accumulate");
  energy("vxm_pj_per_op", [](ChipParams& p) -> double& { return p.energy.vxm_pj_per_op; }, "pJ/op",
         "one VXM element operation");
  energy("stream_pj_per_byte", [](ChipParams& p) -> double& { return p.energy.stream_pj_per_byte; }, "pJ/byte",
         "SXM, C2C and DMA endpoints moving a vector");
  energy("weight_bus_pj_per_byte", [](ChipParams& p) -> double& { return p.energy.weight_bus_pj_per_byte; }, "pJ/byte",
         "an LWM row over the weight bus into a staging buffer");
  energy("link_pj_per_bit", [](ChipParams& p) -> double& { return p.energy.link_pj_per_bit; }, "pJ/bit", "link transfer");
  energy("dma_pj_per_byte", [](ChipParams& p) -> double& { return p.energy.dma_pj_per_byte; }, "pJ/byte",
         "host DMA transfer");
  energy("static_w", [](ChipParams& p) -> double& { return p.energy.static_w; }, "W",
         "static power: leakage, clocks, always-on logic");
  integer("icu.notify_latency", [](ChipParams& p) -> int& { return p.icu.notify_latency; }, false, 1, kMaxLatency,
          "cycles", "NOTIFY to the release of a parked SYNC");
  integer("icu.superlane_stagger", [](ChipParams& p) -> int& { return p.icu.superlane_stagger; }, false, 0, 1024,
          "cycles", "delay of an instruction from one superlane to the next");
  // One key per latency class of the ISA (isa/isa.toml); every class but `none` is required.
  static std::array<IntField, isa::kNumLatClasses> lat_fields = [] {
    std::array<IntField, isa::kNumLatClasses> f{};
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      ((f[I] = [](ChipParams& p) -> int& { return p.latency[I]; }), ...);
    }(std::make_index_sequence<isa::kNumLatClasses>{});
    return f;
  }();
  for (int c = 0; c < isa::kNumLatClasses; ++c) {
    const auto i = std::size_t(c);
    const bool none = c == static_cast<int>(isa::LatClass::None);
    integer("latency." + std::string(isa::kLatClassNames[i]), lat_fields[i], !none, none ? 0 : 1, kMaxLatency, "cycles",
            std::string(isa::kLatClassDocs[i]) + (c == static_cast<int>(isa::LatClass::SxmTrans) ? "; at least 16" : ""));
  }
  return b;
}

const std::vector<Binding>& bindings() {
  static const std::vector<Binding> b = make_bindings();
  return b;
}

std::string range_text(const PresetKey& k) {
  if (k.type == PresetKey::Type::String) return "";
  const std::string unit = k.unit.empty() ? "" : " " + k.unit;
  if (k.type == PresetKey::Type::Integer) return fmt::format("{}..{}{}", std::int64_t(k.lo), std::int64_t(k.hi), unit);
  return fmt::format("{}{:g}, {:g}]{}", k.lo_open ? "(" : "[", k.lo, k.hi, unit);
}

// Reads typed values out of a TOML table by dotted key, remembering which keys were used so
// that an unknown (misspelt) key is an error instead of being silently ignored.
class Reader {
 public:
  Reader(const toml::table& t, std::string origin) : t_(t), origin_(std::move(origin)) {}

  // Fills the field of `b` when the key is present; checks its type and range.
  void read(const Binding& b, ChipParams& p) {
    const auto& k = b.info;
    used_.insert(k.key);
    auto node = t_.at_path(k.key);
    if (!node) {
      if (k.required) throw ConfigError(k.key, fmt::format("missing in {}", origin_));
      return;
    }
    if (const auto* f = std::get_if<TextField>(&b.field)) {
      auto v = node.value<std::string>();
      if (!v || !node.is_string()) throw ConfigError(k.key, "expected a string");
      (*f)(p) = *v;
    } else if (const auto* fi = std::get_if<IntField>(&b.field)) {
      if (!node.is_integer()) throw ConfigError(k.key, "expected an integer");
      // A TOML integer is 64-bit: check before narrowing (4294967552 must not become 256).
      (*fi)(p) = int(check_int(*node.value<std::int64_t>(), k.key, IntRange{std::int64_t(k.lo), std::int64_t(k.hi), k.unit}));
    } else {
      auto v = node.value<double>();
      if (!v || !node.is_number()) throw ConfigError(k.key, "expected a number");
      const bool ok = std::isfinite(*v) && (k.lo_open ? *v > k.lo : *v >= k.lo) && *v <= k.hi;
      if (!ok) throw ConfigError(k.key, fmt::format("{:g} is out of range {}", *v, range_text(k)));
      (*std::get<RealField>(b.field))(p) = *v;
    }
  }

  void check_unknown() const {
    std::vector<std::string> all;
    collect(t_, "", 0, all);
    for (const auto& k : all) {
      if (!used_.count(k)) throw ConfigError(k, fmt::format("unknown key in {}", origin_));
    }
  }

 private:
  static void collect(const toml::table& t, const std::string& prefix, int depth, std::vector<std::string>& out) {
    for (const auto& [k, v] : t) {
      std::string key = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
      if (const auto* sub = v.as_table()) {
        // No preset key is nested deeper than kMaxKeyParts: stop at the first table below
        // that (an unknown key) instead of recursing as deep as a hostile file goes.
        if (depth + 1 >= kMaxKeyParts) {
          out.push_back(key);
          continue;
        }
        collect(*sub, key, depth + 1, out);
      } else {
        out.push_back(key);
      }
    }
  }

  const toml::table& t_;
  std::string origin_;
  std::set<std::string> used_;
};

// A key for messages: a hostile 90 kB key is cut.
std::string shown_key(const std::string& key) {
  constexpr std::size_t kShow = 64;
  return key.size() <= kShow ? key : key.substr(0, kShow) + fmt::format("... ({} characters)", key.size());
}

void apply_override(toml::table& t, const std::string& ov) {
  auto eq = ov.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw ConfigError(shown_key(ov), "override must look like section.key=value");
  }
  std::string key = ov.substr(0, eq);
  std::string val = ov.substr(eq + 1);
  // Preset keys have at most kMaxKeyParts dotted parts (docs/presets.md). A longer key is an
  // error here, before it builds a table nested as deep as the key is long: freeing (or
  // walking) such a table recursively overflowed the stack at about 45,000 parts.
  const auto parts = std::count(key.begin(), key.end(), '.') + 1;
  if (parts > kMaxKeyParts || key.size() > kMaxKeyLength)
    throw ConfigError(shown_key(key), fmt::format("a preset key has at most {} dotted parts and {} characters; this one has {} and {} "
                                                  "(keys: docs/presets.md)",
                                                  kMaxKeyParts, kMaxKeyLength, parts, key.size()));
  toml::table* cur = &t;
  std::size_t start = 0;
  for (;;) {
    auto dot = key.find('.', start);
    std::string part = key.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (part.empty()) throw ConfigError(key, "empty component in key");
    if (dot == std::string::npos) {
      // Parse the value the way TOML would, falling back to a string.
      check_toml_key_depth("v = " + val, key);  // a value may open tables too ("1\n[a.a. ...]")
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

const std::vector<PresetKey>& preset_keys() {
  static const std::vector<PresetKey> keys = [] {
    std::vector<PresetKey> k;
    for (const auto& b : bindings()) k.push_back(b.info);
    return k;
  }();
  return keys;
}

std::string preset_keys_markdown() {
  std::string s;
  s += "<!-- Generated from arch/src/params.cpp (make_bindings) by `lpu info --preset-keys`; do not edit.\n"
       "     Regenerate: build/bin/lpu info --preset-keys > docs/presets.md (tests/arch checks it). -->\n";
  s += "# Preset parameters\n\n";
  s += "A preset (`configs/<name>.toml`, docs/design.md) describes one chip. Every parameter below can be\n"
       "overridden on the command line (`--set mem.rows=4096`), in a rack file's `set` lists (docs/rack.md)\n"
       "and in a sweep (docs/sweep.md). The reader refuses an unknown key, a value of the wrong type and a\n"
       "value outside its range, with an error naming the key, the value and the range:\n\n"
       "```\n"
       "lpu: error: config: mem.rows: 4294967552 is out of range 1..1048576 rows\n"
       "```\n\n";
  s += fmt::format("Keys have at most {} dotted parts and {} characters. Integers are 64-bit TOML integers checked\n"
                   "against the range before they are stored (nothing wraps); numbers may be written as integers or\n"
                   "floats. Required keys must be in the preset file itself (overrides may change them). Beyond the\n"
                   "ranges, `latency.sxm_trans` must be at least 16 (a transpose needs all 16 input vectors before\n"
                   "its first output).\n"
                   "Timing parameters are explained in docs/timing.md, energies in docs/energy.md.\n\n",
                   kMaxKeyParts, kMaxKeyLength);
  s += "## The presets\n\n"
       "| preset | what | basis |\n|---|---|---|\n"
       "| `lp30` (default) | the chip of the LPX rack (\"Groq 3 LPU\") | published: 500 MB SRAM, 150 TB/s, 1.23 PFLOPS fp8, "
       "96 x 112 Gb/s links. **Its microarchitecture is not public.** The preset assumes 1 GHz, 320-byte vectors, 2 x 235 "
       "MEM slices of 3,325 rows with one read and one write port, 6 planes of 320 x 320, and a weight bus that feeds the "
       "planes at the SRAM's rate (`mxm.install_rows_per_cycle = 80`: weight install 150.4 TB/s = 100% of SRAM read; "
       "docs/design.md, \"The weight path\"): the assumption behind the seed's ~1,500 tokens/s from 150 TB/s. Every "
       "figure is derived in `configs/lp30.toml` |\n"
       "| `tsp1` | GroqChip 1 / TSP v1 | the ISCA 2020 paper and product sheets (220 MiB, 737 TOPS int8 at 900 MHz, 144 "
       "queues, 409,600 weights installed in fewer than 40 cycles: 16 rows per plane per cycle over the weight bus) |\n"
       "| `mini` | a small chip the RTL implements in full | 32-byte vectors, 8 MEM slices, one 32 x 32 plane |\n\n"
       "## Parameters\n\n";
  s += "| key | type | required | range | meaning |\n|---|---|---|---|---|\n";
  for (const auto& k : preset_keys()) {
    const char* type = k.type == PresetKey::Type::Integer ? "integer" : k.type == PresetKey::Type::Number ? "number" : "string";
    const std::string range = range_text(k);
    s += fmt::format("| `{}` | {} | {} | {} | {} |\n", k.key, type, k.required ? "yes" : "no", range.empty() ? "-" : range,
                     k.meaning);
  }
  return s;
}

std::string config_dir() {
  if (const char* e = std::getenv("LPU_CONFIG_DIR")) return e;
  return LPU_DEFAULT_CONFIG_DIR;
}

ChipParams parse_preset(const std::string& text, const std::string& origin,
                        const std::vector<std::string>& overrides) {
  check_toml_key_depth(text, origin);  // before toml++ recurses on a hostile dotted key
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
  for (const auto& b : bindings()) r.read(b, p);
  r.check_unknown();
  // Constraints between parameters (each parameter's own range is checked as it is read).
  require(p.lat(isa::LatClass::SxmTrans) >= kLanesPerSuperlane, "latency.sxm_trans",
          "must be at least 16: a transpose needs all 16 input vectors before its first output");
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
