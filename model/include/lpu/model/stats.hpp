#pragma once
// Run statistics of one chip. Everything here is a function of the program and its inputs,
// identical from run to run; host-side measurements live in HostStats.
#include <array>
#include <cstdint>
#include <map>
#include <string>

namespace lpu::model {

enum class UnitKind : std::uint8_t { Mem, Vxm, Mxm, Sxm, C2c, Dma, Icu };
inline constexpr int kNumUnitKinds = 7;
inline constexpr std::array<const char*, kNumUnitKinds> kUnitKindNames = {"mem", "vxm", "mxm", "sxm",
                                                                          "c2c", "dma", "icu"};

struct UnitStats {
  std::int64_t instructions = 0;  // instances issued (REPEAT counts each)
  std::int64_t busy_cycles = 0;   // queue-cycles occupied by those instances
  int queues = 0;
};

struct ChipStats {
  std::int64_t cycles = 0;  // program length: last issue or result landing, plus stagger, + 1
  double clock_hz = 0;
  std::array<UnitStats, kNumUnitKinds> units{};
  std::int64_t sram_bytes_read = 0;
  std::int64_t sram_bytes_written = 0;
  std::int64_t sram_ecc_corrected = 0;
  std::int64_t weight_bytes_installed = 0;  // LWM rows over the weight bus (also in sram_bytes_read)
  std::map<std::string, std::int64_t> mxm_macs;  // by weight type
  std::int64_t mxm_passes = 0;                   // MM/MMA instances: one plane busy one cycle each
  int mxm_planes = 0;
  std::int64_t vxm_element_ops = 0;
  std::int64_t link_bytes_sent = 0;
  std::int64_t link_bytes_received = 0;
  std::int64_t dma_bytes_in = 0;
  std::int64_t dma_bytes_out = 0;

  double seconds() const { return clock_hz > 0 ? double(cycles) / clock_hz : 0; }
  double sram_read_bandwidth() const { return seconds() > 0 ? double(sram_bytes_read) / seconds() : 0; }
  double mxm_utilisation() const {
    return cycles > 0 && mxm_planes > 0 ? double(mxm_passes) / (double(cycles) * mxm_planes) : 0;
  }
};

}  // namespace lpu::model
