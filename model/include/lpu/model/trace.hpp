#pragma once
// Waveforms (VCD) and timelines (Chrome trace-event JSON, opens in ui.perfetto.dev) of runs.
// Both are Chip::Observers: attach one to the chips to trace, and write after the run. A run
// without observers pays nothing for tracing.
#include <cstdint>
#include <map>
#include <memory>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "lpu/model/chip.hpp"

namespace lpu::model {

// What to trace. Empty sets mean "all".
struct TraceSelection {
  std::set<int> chips;
  std::set<std::string> units;  // "mem", "vxm", "mxm", "sxm"
  std::set<int> streams;        // stream ids (both directions)
  std::set<int> positions;      // stream register positions to dump (default: none)
  std::int64_t from = 0;
  std::int64_t to = INT64_MAX;
  // Parses "0,3-5" into a set (throws lpu::Error on bad input).
  static std::set<int> parse_ranges(const std::string& text, const char* what);
};

// A VCD waveform. Signal names match the RTL's where they mean the same (docs/waveforms.md):
//   <chip>.<slice>.q<k>_pc, q<k>_insn      issued instruction word and its index, per queue
//   <chip>.<slice>.rd_en, rd_addr, wr_en, wr_addr   SRAM ports (MEM slices)
//   <chip>.<slice>.mm_en, mm_acc            MXM passes (MXM planes)
//   <chip>.streams.s<id><e|w>_p<pos>, ..._valid     stream registers at selected positions
class VcdTracer : public Chip::Observer {
 public:
  VcdTracer(const Chip& chip, const TraceSelection& sel);
  void on_group(int queue, std::int64_t cycle, std::uint64_t word, std::int64_t count, std::int64_t delay,
                std::int64_t pc) override;
  void on_sram(int slice, int row, bool write, std::int64_t cycle) override;
  void on_stream(int sid, int position, std::int64_t cycle, const std::uint8_t* value) override;
  void on_mxm(int plane, int acc, std::int64_t cycle) override;
  void on_finish(std::int64_t cycles) override;
  // Writes the whole file (header, then changes in time order).
  void write(std::ostream& out) const;
  std::size_t changes() const { return changes_.size(); }

 private:
  struct Sig {
    std::string scope, name, id;
    int width;
  };
  struct Change {
    std::int64_t cycle;
    std::uint64_t seq;
    int sig;
    std::string value;  // binary digits, or "x"
  };
  int sig(const std::string& scope, const std::string& name, int width);
  void change(std::int64_t cycle, int s, std::string v);
  bool in_window(std::int64_t c) const { return c >= sel_.from && c <= sel_.to; }
  const Chip& chip_;
  TraceSelection sel_;
  // Signal indices resolved once (-1: not traced), so that events cost no lookups.
  std::vector<std::pair<int, int>> queue_sig_;  // queue -> (insn, pc)
  struct SliceSigs {
    int rd_en = -1, rd_addr = -1, wr_en = -1, wr_addr = -1, mm_en = -1, mm_acc = -1;
  };
  std::vector<SliceSigs> slice_sig_;           // by position
  std::map<std::pair<int, int>, int> stream_sig_;  // (sid, position) -> value signal (valid = +1)
  std::vector<Sig> sigs_;
  std::map<std::string, int> by_name_;
  std::vector<Change> changes_;
  std::uint64_t seq_ = 0;
  std::int64_t end_ = 0;
  std::string prefix_;
};

// A timeline: one track per chip and queue, a span per instruction or REPEAT block, counters
// for SRAM bandwidth and MXM passes over time. Several chips may share one timeline (rack).
class Timeline {
 public:
  Timeline();
  ~Timeline();
  // Attach to a chip: returns the observer to set on it (owned by the timeline).
  Chip::Observer* attach(const Chip& chip);
  // A C2C transfer, drawn as a flow arrow from sender to receiver.
  void flow(int from_chip, std::int64_t send_cycle, int to_chip, std::int64_t recv_cycle, int link);
  void write(std::ostream& out) const;
  std::size_t events() const;

 private:
  struct Track;
  std::vector<std::unique_ptr<Track>> tracks_;
  struct Flow {
    int from_chip, to_chip, link;
    std::int64_t send, recv;
  };
  std::vector<Flow> flows_;
  friend struct Track;
};

}  // namespace lpu::model
