#pragma once
// Chip parameters: one struct, loaded from a preset file (configs/<name>.toml) plus
// `--set key=value` overrides. Every timing value is a named parameter; see docs/timing.md.
#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "lpu/isa/isa_table.hpp"

namespace lpu {

inline constexpr int kLanesPerSuperlane = 16;  // fixed by the ISA (TRANS, GATHER)

struct ChipParams {
  std::string name;
  std::string description;
  double clock_hz = 1e9;

  int superlanes = 20;  // vector bytes = 16 * superlanes
  int vector_bytes() const { return kLanesPerSuperlane * superlanes; }

  struct Stream {
    int per_direction = 32;
    int hop_cycles = 1;
  } stream;

  struct Mem {
    int slices_per_hemisphere = 44;
    int rows = 8192;  // vectors per slice
    int read_ports = 1;
    int write_ports = 1;
    int queues_per_slice = 1;  // instruction queues driving one slice (share its ports)
  } mem;

  struct Vxm {
    int queues = 16;  // one ALU per lane per queue
  } vxm;

  struct Mxm {
    int planes = 4;
    int queues_per_plane = 3;
    int accumulators = 64;  // per plane
    // The weight bus (LWM, docs/timing.md rule 15a): staging rows a plane takes per cycle
    // straight from the MEM slices of its hemisphere.
    int install_rows_per_cycle = 16;
  } mxm;

  struct Sxm {
    int queues_per_hemisphere = 14;
    int perm_tables = 16;
  } sxm;

  struct C2c {
    int links = 16;
    int lanes_per_link = 4;
    double lane_gbps = 30.0;  // line rate
    double efficiency = 1.0;  // payload / line rate (encoding, FEC)
    int deskew_period = 4096;
  } c2c;

  struct Dma {
    double bandwidth_bytes_per_s = 32e9;
    int latency_cycles = 500;
    int channels = 8;
  } dma;

  struct Icu {
    int notify_latency = 4;
    int superlane_stagger = 1;
  } icu;

  // Energy per event and static power (docs/energy.md gives each value's source or assumption).
  struct Energy {
    double sram_read_pj_per_byte = 0;
    double sram_write_pj_per_byte = 0;
    double mac_pj_i8 = 0;
    double mac_pj_fp8 = 0;   // e4m3 and e5m2
    double mac_pj_fp16 = 0;  // f16 and bf16
    double vxm_pj_per_op = 0;     // one element operation
    double stream_pj_per_byte = 0;  // SXM, C2C and DMA endpoints moving a vector, per byte
    double weight_bus_pj_per_byte = 0;  // LWM: a row over the weight bus into a staging buffer
    double link_pj_per_bit = 0;
    double dma_pj_per_byte = 0;
    double static_w = 0;  // leakage, clocks, always-on logic
  } energy;

  std::array<int, isa::kNumLatClasses> latency{};
  int lat(isa::LatClass c) const { return latency[static_cast<std::size_t>(c)]; }
};

// Derived peak figures (SI base units), what `lpu info` prints.
struct Peaks {
  double clock_hz;
  int vector_bytes;
  double sram_bytes;
  double sram_bandwidth_bytes_per_s;        // all read ports, every cycle
  double sram_write_bandwidth_bytes_per_s;  // all write ports
  double stream_bandwidth_bytes_per_s;      // into the units: every stream register, both directions
  // Weights into the MXM planes over the weight bus (LWM): planes x install_rows_per_cycle x V x
  // clock (the bus), and the same capped by the SRAM reads of the slices that can feed a plane
  // (a hemisphere's slices feed only its own planes; a hemisphere without planes feeds none).
  double weight_bus_bytes_per_s;
  double weight_install_bytes_per_s;
  std::map<std::string, double> mxm_peak_ops_per_s;  // by dtype; 2 ops per MAC
  std::int64_t mxm_macs_per_cycle_int8;
  std::int64_t vxm_alus;
  int instruction_queues;
  double c2c_bandwidth_bytes_per_s;  // both directions, payload
  int mem_slices;
};
Peaks peaks(const ChipParams& p);

// One preset parameter as the reader accepts it: docs/presets.md is generated from this list
// (preset_keys_markdown, `lpu info --preset-keys`), so the page and the checks cannot disagree.
struct PresetKey {
  enum class Type : std::uint8_t { Integer, Number, String };
  std::string key;  // dotted: "mem.rows"
  Type type = Type::Integer;
  bool required = false;
  double lo = 0, hi = 0;  // inclusive range (lo exclusive when lo_open); unused for strings
  bool lo_open = false;
  std::string unit;     // "cycles", "rows", "Hz"
  std::string meaning;  // one line
};
const std::vector<PresetKey>& preset_keys();
std::string preset_keys_markdown();

// Limits on `--set` keys (a preset key has two parts; hostile keys are refused early).
inline constexpr int kMaxKeyParts = 8;
inline constexpr std::size_t kMaxKeyLength = 256;

// Where presets live: $LPU_CONFIG_DIR, else the configs/ of the source tree this was built from.
std::string config_dir();

// Load a preset by name (configs/<name>.toml) or by path (contains '/' or ends in .toml), then
// apply overrides "section.key=value". Throws ConfigError naming the key on any problem:
// unknown key, wrong type, out-of-range value (naming the value and the range), missing
// latency class, a key with more than kMaxKeyParts parts.
ChipParams load_preset(const std::string& name_or_path,
                       const std::vector<std::string>& overrides = {});

// The same, from TOML text (tests, rack files with inline chip tables).
ChipParams parse_preset(const std::string& toml_text, const std::string& origin,
                        const std::vector<std::string>& overrides = {});

}  // namespace lpu
