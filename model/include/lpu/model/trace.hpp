#pragma once
// Waveforms (VCD) and timelines (Chrome trace-event JSON, opens in ui.perfetto.dev) of runs.
// Both are Chip::Observers: attach one to each chip to trace, and write after the run. A chip
// without an observer pays nothing for tracing. Several chips (a rack) write one file: a VCD
// scope or a trace process per chip (docs/waveforms.md, docs/debugging.md).
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <ostream>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lpu/model/chip.hpp"

namespace lpu::model {

// What to trace. Empty sets mean "all".
struct TraceSelection {
  std::set<int> chips;
  std::set<std::string> units;  // "mem", "vxm", "mxm", "sxm", "c2c" (links; also traced with sxm)
  std::set<int> streams;        // stream ids (both directions)
  std::set<int> positions;      // stream register positions to dump (default: none)
  std::int64_t from = 0;        // cycle window, in each chip's own cycles
  std::int64_t to = INT64_MAX;
  // Parses "0,3-5" into a set (throws lpu::Error on bad input).
  static std::set<int> parse_ranges(const std::string& text, const char* what);
  // Parses "mem,mxm" (throws lpu::Error naming the unknown unit).
  static std::set<std::string> parse_units(const std::string& text, const char* what = "--units");
  bool chip(int c) const { return chips.empty() || chips.count(c) != 0; }
  bool unit(std::string_view u) const { return units.empty() || units.count(std::string(u)) != 0; }
  bool links() const { return unit("c2c") || unit("sxm"); }
};

// Forwards every callback to several observers (a VCD and a timeline on one chip).
class ObserverFanout : public Chip::Observer {
 public:
  std::vector<Chip::Observer*> obs;
  // What to give Chip::set_observer: null, the only observer, or this.
  Chip::Observer* target() { return obs.empty() ? nullptr : obs.size() == 1 ? obs[0] : this; }
  void on_group(int q, std::int64_t c, std::uint64_t w, std::int64_t n, std::int64_t d, std::int64_t pc) override {
    for (auto* x : obs) x->on_group(q, c, w, n, d, pc);
  }
  void on_sram(int s, int r, bool w, std::int64_t c) override {
    for (auto* x : obs) x->on_sram(s, r, w, c);
  }
  void on_stream(int sid, int p, std::int64_t c, const std::uint8_t* v) override {
    for (auto* x : obs) x->on_stream(sid, p, c, v);
  }
  void on_mxm(int pl, int a, std::int64_t c) override {
    for (auto* x : obs) x->on_mxm(pl, a, c);
  }
  void on_sram_write(int s, int r, int off, const std::uint8_t* d, int n, std::int64_t c, std::int64_t commit) override {
    for (auto* x : obs) x->on_sram_write(s, r, off, d, n, c, commit);
  }
  void on_acc_write(int pl, int a, std::int64_t c, std::int64_t commit, bool f, const std::uint32_t* v, int n) override {
    for (auto* x : obs) x->on_acc_write(pl, a, c, commit, f, v, n);
  }
  void on_link_send(int q, int l, std::int64_t c, std::int64_t d, const std::uint8_t* b) override {
    for (auto* x : obs) x->on_link_send(q, l, c, d, b);
  }
  void on_link_recv(int q, int l, std::int64_t c, const std::uint8_t* b) override {
    for (auto* x : obs) x->on_link_recv(q, l, c, b);
  }
  void on_finish(std::int64_t c) override {
    for (auto* x : obs) x->on_finish(c);
  }
};

// A VCD waveform of one chip. Names follow the RTL of mini where they mean the same thing, so
// that rtl/lpu_mini.gtkw opens both (docs/waveforms.md has the full list):
//   <scope>.qv[h].q[k].g.pc, issue, issue_pc, opcode, word    queue 16h+k (lpu::Layout order)
//   <scope>.sv[p].dir[d].st[s].valid, value                   stream s, d = 0 east / 1 west, position p
//   <scope>.u_mem.rd_v, wr_v, <scope>.obs_sram_we              MEM ports (a bit per MEM slice)
//   <scope>.obs_sram_mask, obs_sram_row, obs_sram_d            the writes committed (small chips)
//   <scope>.u_mxm.mm_go, mm_idx, <scope>.obs_acc_we, obs_acc_idx, obs_acc_d   MXM (plane mxm.e.0)
//   <scope>.tx_v                                               a vector leaves on link k
// and the model's own: per MEM slice rd_v/rd_row/wr_v/wr_row, per MXM plane mm_go/mm_idx, per
// link used tx/tx_d/tx_n and rx/rx_d/rx_n (a RECV takes a vector), acc_we/acc_idx/acc_d of the
// other MXM planes.
class VcdTracer : public Chip::Observer {
 public:
  // `scope`: the chip's scope path, dot-separated; empty: "TOP.lpu_<preset>" (the RTL's top).
  VcdTracer(const Chip& chip, const TraceSelection& sel, std::string scope = "");
  ~VcdTracer() override;
  // File time of a cycle = cycle x ticks ns (a rack's common time base); 1 by default. The
  // file's unit is 1 ps: cycle c of a lone chip is at time 1000 c, as in the RTL's waveform.
  void set_ticks_per_cycle(std::int64_t ticks) { ticks_ = ticks; }
  void on_group(int queue, std::int64_t cycle, std::uint64_t word, std::int64_t count, std::int64_t delay,
                std::int64_t pc) override;
  void on_sram(int slice, int row, bool write, std::int64_t cycle) override;
  void on_stream(int sid, int position, std::int64_t cycle, const std::uint8_t* value) override;
  void on_mxm(int plane, int acc, std::int64_t cycle) override;
  void on_sram_write(int slice, int row, int offset, const std::uint8_t* data, int bytes, std::int64_t cycle,
                     std::int64_t commit) override;
  void on_acc_write(int plane, int acc, std::int64_t cycle, std::int64_t commit, bool is_float, const std::uint32_t* value,
                    int n) override;
  void on_link_send(int queue, int link, std::int64_t cycle, std::int64_t depart, const std::uint8_t* bytes) override;
  void on_link_recv(int queue, int link, std::int64_t cycle, const std::uint8_t* bytes) override;
  void on_finish(std::int64_t cycles) override;
  // Writes the whole file (header, then changes in time order), after the run: the chip must
  // not run on afterwards.
  void write(std::ostream& out) const;
  // One file for several chips (each under its own scope), merged in a fixed order: the same
  // bytes whatever order or thread the chips ran in.
  static void write_all(std::ostream& out, const std::vector<const VcdTracer*>& chips, const std::string& comment);
  std::size_t changes() const { return changes_.size(); }

 private:
  struct Sig {
    std::string scope, name;  // scope relative to the chip's
    int width;
    std::uint8_t init;  // 0: x, 1: zero, 2: all ones
  };
  struct Change {
    std::int64_t cycle;
    std::uint64_t seq;
    std::uint64_t val;  // bits (width <= 64), or an offset into pool_
    std::uint32_t sig;
    std::uint8_t kind;  // 0 bits, 1 pool, 2 x
  };
  struct Strobes {  // a packed vector of strobes, one bit per unit: set in a cycle, clear after
    int sig = -1;
    std::vector<std::pair<std::int64_t, int>> ev;  // (cycle, bit)
  };
  struct QueueSigs {
    int pc = -1, issue = -1, issue_pc = -1, opcode = -1, word = -1;
    std::vector<std::uint64_t> code;
    std::int64_t next_pc = 0;   // the pc register after the last issue
    std::int64_t last_end = 0;  // cycle after which the queue looks at next_pc again (-1: unknown)
    bool halted = false;
  };
  struct SliceSigs {
    int rd_v = -1, rd_row = -1, wr_v = -1, wr_row = -1, mm_go = -1, mm_idx = -1, acc_we = -1, acc_idx = -1, acc_d = -1;
    int mem_index = -1;  // bit in the packed MEM signals
  };
  struct SramWrite {  // one committed write (or one superlane of a SCATTER)
    std::int64_t commit;
    int mem, row, offset, bytes;
    std::size_t data;  // offset in pool_
  };
  struct LinkSigs {
    int tx = -1, tx_d = -1, tx_n = -1, rx = -1, rx_d = -1, rx_n = -1;
    std::int64_t sent = 0, received = 0;
  };
  int sig(const std::string& scope, const std::string& name, int width, std::uint8_t init = 0);
  void set(std::int64_t cycle, int s, std::uint64_t v);
  void set_bytes(std::int64_t cycle, int s, const std::uint8_t* bytes, int nbytes);
  void set_x(std::int64_t cycle, int s);
  void push(std::int64_t cycle, std::uint64_t seq, int s, std::uint64_t val, std::uint8_t kind);
  bool in_window(std::int64_t c) const { return c >= sel_.from && c <= sel_.to; }
  void queue_pc(QueueSigs& q, std::int64_t cycle, std::int64_t pc, bool follow_issue_pc);
  LinkSigs& link(int l);
  // Once, before writing: strobes expanded into changes, sorted, one change per signal and time
  // step, none that repeats a value.
  void finalise() const;
  void pack_sram_writes() const;

  const Chip& chip_;
  TraceSelection sel_;
  std::string scope_;
  std::int64_t ticks_ = 1;
  std::vector<QueueSigs> queue_;
  std::vector<SliceSigs> slice_;  // by position
  std::map<std::pair<int, int>, int> stream_sig_;  // (sid, position) -> value signal (valid = +1)
  std::map<int, LinkSigs> links_;
  Strobes rd_v_, wr_v_, sram_we_, tx_v_;
  int sram_mask_ = -1, sram_row_ = -1, sram_d_ = -1;  // packed write data (chips small enough)
  std::vector<SramWrite> sram_writes_;
  int mem_write_lat_ = 1;
  int c2c_links_ = 0;
  std::vector<Sig> sigs_;
  mutable std::vector<Change> changes_;
  mutable std::vector<std::uint8_t> pool_;
  mutable bool final_ = false;
  mutable std::uint64_t seq_ = 0;
  std::int64_t end_ = 0;
};

// A timeline: one process per chip, one track per instruction queue, a span per instruction or
// REPEAT block, counters for SRAM bandwidth and MXM utilisation over time, and each C2C transfer
// as a flow arrow from the sender's SEND to the receiver's RECV (both chips traced).
class Timeline {
 public:
  Timeline();
  ~Timeline();
  // Attach to a chip: returns the observer to set on it (owned by the timeline). With a
  // selection, only its units and cycle window are drawn.
  Chip::Observer* attach(const Chip& chip, const TraceSelection* sel = nullptr);
  // Where each link leads: (chip, link) -> (peer chip, peer link), or (-1, -1). Needed for flows.
  void set_peers(std::function<std::pair<int, int>(int chip, int link)> peers);
  void write(std::ostream& out) const;
  std::size_t events() const;

 private:
  struct Track;
  std::vector<std::unique_ptr<Track>> tracks_;
  std::function<std::pair<int, int>(int, int)> peers_;
  friend struct Track;
};

}  // namespace lpu::model
