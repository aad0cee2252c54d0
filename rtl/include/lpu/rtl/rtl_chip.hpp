#pragma once
// The RTL of the `mini` chip (rtl/sv/lpu_mini.sv, Verilated), driven cycle by cycle.
//
// Contract:
//  - One RtlChip runs one program at a time: load() builds a fresh Verilated model (SRAM and
//    state all zero) and loads the object through the chip's load port. The run starts (the
//    chip's go edge) at the first observation or step(): from then on every observation
//    describes the current cycle() (0 first) and step() advances one cycle.
//  - The RTL is built for the preset its configuration package was generated from
//    (configs/mini.toml); the constructor checks that this preset still has those numbers.
//  - Host access (set_reg, write_row, write_symbol) is allowed after load() until the run
//    starts; push_dma_in and receive() at any time (a DMA vector pushed during the run is
//    available from the next cycle; a link vector with arrival a is presented to the chip in
//    cycle a - 1 so that a RECV in a finds it: receive() it at least one cycle ahead).
//  - Errors found by the RTL (read of an empty stream, ...) do not throw: error() reports the
//    first one (the chip keeps running; its results are then meaningless).
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "lpu/arch/layout.hpp"
#include "lpu/arch/params.hpp"
#include "lpu/asm/object.hpp"

namespace lpu::rtl {

inline constexpr int kVectorBytes = 32;
using Vec = std::array<std::uint8_t, kVectorBytes>;

// Refuses (ConfigError naming the key) a chip whose parameters differ from those the RTL was
// built with (rtl/gen_cfg.py: every size, port and queue count, ICU parameter and latency
// class, generated into lpu_cfg_pkg.sv and rtl_config.hpp from the preset at build time). The
// RtlChip constructor calls it on the preset it loads.
void check_rtl_params(const ChipParams& p);

class RtlChip {
 public:
  RtlChip();
  ~RtlChip();
  RtlChip(const RtlChip&) = delete;
  RtlChip& operator=(const RtlChip&) = delete;

  const ChipParams& params() const;
  const Layout& layout() const;

  // Waveform: FST (path ends in .fst) or VCD (.vcd, converted from FST with fst2vcd at close).
  // Takes effect at the next load() (or immediately when called before the first step()).
  void set_wave(const std::string& path);
  void close_wave();  // flush and close (also done by the destructor and the next load)

  // Throws lpu::FormatError (starting with `origin`) for another geometry or an object that
  // does not fit the chip (obj::check_program), before the model is touched.
  void load(const obj::Program& prog, const std::string& origin = "object");
  bool loaded() const;

  // Host access.
  void set_reg(int r, std::uint32_t value);
  void write_row(int slice, int row, std::span<const std::uint8_t> bytes);
  void write_symbol(const std::string& name, std::span<const std::uint8_t> bytes);
  std::vector<std::uint8_t> read_row(int slice, int row);
  std::vector<std::uint8_t> read_symbol(const std::string& name);
  void push_dma_in(int chan, std::span<const std::uint8_t> vector);
  std::vector<Vec> take_dma_out(int chan);
  std::vector<std::pair<int, Vec>> dma_out_now() const;  // (channel, vector) delivered in this cycle
  void receive(int link, std::int64_t arrival, std::span<const std::uint8_t> bytes);
  using SendFn = std::function<void(int link, std::int64_t depart, const Vec& bytes)>;
  void set_link_sink(SendFn fn);
  void set_test_flip_alu(bool on);  // test only: flip bit 0 of every VXM ALU-class result
  void set_test_ignore_tr(bool on);  // test only: every IW installs untransposed, whatever its tr

  // Simulation.
  void step();
  std::int64_t cycle() const;
  bool finished() const;  // every queue done and every unit idle
  bool streams_empty() const;
  // The program's length by docs/timing.md rule 23 (valid once finished()).
  std::int64_t program_cycles() const;

  // Observation of the current cycle. MEM slices are indexed as in the RTL: west 0..3 (mem.w.i),
  // then east 0..3 (mem.e.i); slice_name()/slice_position() translate.
  int num_queues() const;
  bool issued(int queue) const;
  std::uint64_t issued_word(int queue) const;
  int issued_pc(int queue) const;  // index of the issued word in the queue's code
  int pc(int queue) const;
  bool stream_valid(int stream, Dir dir, int position) const;
  Vec stream_value(int stream, Dir dir, int position) const;
  struct SramWrite {
    int slice = 0;
    std::uint8_t mask = 0;      // bit s: superlane s written
    std::array<int, 2> rows{};  // row of superlane 0 and 1
    Vec data{};
  };
  std::vector<SramWrite> sram_writes() const;  // committed at the end of this cycle
  struct AccWrite {
    int acc = 0;
    std::array<std::uint8_t, 4 * kVectorBytes> data{};
  };
  std::optional<AccWrite> acc_write() const;  // committed at the end of this cycle
  // The weight bus (LWM, docs/timing.md rule 15a): rows written into the plane's staging buffer
  // at the end of this cycle, their landing cycle (an IW of this cycle does not install them).
  struct WeightRow {
    int slice = 0;  // the MEM slice that read it (RTL index: mem.e.i is num_mem_slices() / 2 + i)
    int row = 0;    // staging row
    Vec data{};
  };
  std::vector<WeightRow> weight_rows() const;
  struct Error {
    int code = 0;
    int source = 0;
    std::uint32_t info = 0;
    std::int64_t cycle = 0;
    std::string unit;     // where: the slice ("sxm.w", "mem.e.3"), "streams", "host interface", "chip"
    std::string queue;    // the queue when the error is one queue's ("sxm.w.0"), else empty
    std::string text;     // what, without the place ("DMAIN: the host has provided no more vectors")
    std::string message;  // located, standalone: "RTL, <place>, cycle <n>: <text>"
  };
  std::optional<Error> error() const;

  static int num_mem_slices();
  std::string slice_name(int slice) const;
  int slice_index(const std::string& name) const;  // -1 if not a MEM slice
  int slice_position(int slice) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace lpu::rtl
