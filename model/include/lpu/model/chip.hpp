#pragma once
// One LPU chip: runs an object cycle by cycle, skipping idle cycles.
//
// Contract:
//  - Timing is a function of the program (and its registers) only. Functional mode computes
//    every value (bit-exact per docs/isa.md); timing-only mode computes no data and allocates no
//    SRAM contents, and gives identical cycle counts and statistics.
//  - Events are processed in cycle order across the chip's queues (a heap of next-issue
//    cycles); a REPEAT group is one event in timing-only mode and one event per instance in
//    functional mode. See docs/timing.md.
//  - Errors stop the run with lpu::SimError naming chip, unit, queue and cycle.
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "lpu/arch/layout.hpp"
#include "lpu/arch/params.hpp"
#include "lpu/asm/object.hpp"
#include "lpu/model/stats.hpp"

namespace lpu::model {

enum class Mode : std::uint8_t { Functional, TimingOnly };

// Where a SEND goes: the rack connects links; a lone chip has none.
class LinkSink {
 public:
  virtual ~LinkSink() = default;
  // A vector leaves `chip` on `link` in cycle `depart` (issue + c2c_send latency).
  virtual void send(int chip, int link, std::int64_t depart, std::span<const std::uint8_t> bytes) = 0;
};

class Chip {
 public:
  Chip(const ChipParams& p, Mode mode, int chip_id = 0);
  ~Chip();
  Chip(const Chip&) = delete;
  Chip& operator=(const Chip&) = delete;

  // Loads the program: queues, initial SRAM data, registers, permutation tables. Throws
  // lpu::FormatError (starting with `origin`, e.g. the file name) if the object was assembled
  // for another geometry or does not fit this chip (obj::check_program: symbols, data,
  // operands), before anything is written.
  void load(const obj::Program& prog, const std::string& origin = "object");

  // Host access between runs (not timed here; the runtime models DMA cost).
  void set_reg(int r, std::uint32_t value);
  std::uint32_t reg(int r) const;
  void write_symbol(const std::string& name, std::span<const std::uint8_t> bytes);
  std::vector<std::uint8_t> read_symbol(const std::string& name) const;
  const obj::Symbol& symbol(const std::string& name) const;
  void push_dma_in(int chan, std::span<const std::uint8_t> vector);  // one vector
  std::vector<std::vector<std::uint8_t>> take_dma_out(int chan);
  // Flip `bits` bits of one SRAM row (fault injection: 1 is corrected, 2 is fatal when read).
  void inject_fault(const std::string& slice, int row, int bits);

  // Links: where sends go, and vectors arriving here (arrival cycle, in order per link).
  void set_link_sink(LinkSink* sink);
  void receive(int link, std::int64_t arrival, std::span<const std::uint8_t> bytes);

  // Runs until every queue has finished (or until `limit` cycles: for lockstep and lookahead,
  // events with cycle < limit are processed and the call returns). Returns true when done.
  bool run(std::int64_t limit = INT64_MAX);
  bool done() const;
  std::int64_t next_event_cycle() const;  // INT64_MAX when done

  const ChipStats& stats() const;
  const ChipParams& params() const;
  const Layout& layout() const;
  Mode mode() const;
  int id() const;

  // Observation hook for tracing and lockstep (null: no cost beyond a branch).
  struct IssueEvent {
    int queue;
    std::int64_t cycle;
    std::uint64_t word;  // the instruction as executed (operands stepped for REPEAT)
    std::int64_t repeat_count;  // timing-only: instances in this event (1 in functional mode)
    std::int64_t repeat_delay;
    std::int64_t pc = 0;  // index of the instruction's word in its queue (not of its REPEAT)
  };
  void set_issue_hook(std::function<void(const IssueEvent&)> hook);

  // Richer observation for waveforms and timelines. Every callback is optional; with no
  // observer set the engine pays one branch per event.
  class Observer {
   public:
    virtual ~Observer() = default;
    // An instruction and its REPEAT, once, in both modes: instances at cycle + k * delay.
    virtual void on_group(int /*queue*/, std::int64_t /*cycle*/, std::uint64_t /*word*/, std::int64_t /*count*/,
                          std::int64_t /*delay*/, std::int64_t /*pc*/) {}
    // An SRAM row accessed (functional mode; timing-only reports groups only): READ, WRITE,
    // and each row of a GATHER or SCATTER (once per row when both superlanes share it).
    virtual void on_sram(int /*slice_position*/, int /*row*/, bool /*write*/, std::int64_t /*cycle*/) {}
    // An SRAM write with its data (functional mode): `bytes` bytes from byte `offset` of `row`
    // (a WRITE: the whole row; a SCATTER: one call per superlane), issued in `cycle`, committed
    // at the end of `commit` = cycle + mem_write - 1 (READs from commit + 1 see it; rule 12).
    virtual void on_sram_write(int /*slice_position*/, int /*row*/, int /*offset*/, const std::uint8_t* /*data*/,
                               int /*bytes*/, std::int64_t /*cycle*/, std::int64_t /*commit*/) {}
    // A value put on a stream register (functional mode): sid = id | 64 for westward.
    virtual void on_stream(int /*sid*/, int /*position*/, std::int64_t /*cycle*/, const std::uint8_t* /*value*/) {}
    // An MXM pass (MM/MMA) into an accumulator.
    virtual void on_mxm(int /*plane_position*/, int /*acc*/, std::int64_t /*cycle*/) {}
    // The accumulator written by the MM/MMA issued in `cycle` (functional mode): its new value,
    // `n` int32 or f32 elements (32-bit patterns), committed at the end of `commit` =
    // cycle + mxm_mm - 1 (ACCRD from commit + 1; rule 17). Products are computed in batches, so
    // this comes when the product is computed (in issue order per plane, at the latest at the
    // next ACCRD of the plane, weight change or the end of the run), not in `cycle`.
    virtual void on_acc_write(int /*plane_position*/, int /*acc*/, std::int64_t /*cycle*/, std::int64_t /*commit*/,
                              bool /*is_float*/, const std::uint32_t* /*value*/, int /*n*/) {}
    // The end of the run, with the program length.
    virtual void on_finish(std::int64_t /*cycles*/) {}
    // A SEND instance (both modes): the vector leaves on `link` in `depart` (issue + c2c_send);
    // `bytes` is the vector (vector_bytes long), null in timing-only mode.
    virtual void on_link_send(int /*queue*/, int /*link*/, std::int64_t /*cycle*/, std::int64_t /*depart*/,
                              const std::uint8_t* /*bytes*/) {}
    // A RECV instance (both modes) takes the oldest vector that arrived on `link`; `bytes` as above.
    virtual void on_link_recv(int /*queue*/, int /*link*/, std::int64_t /*cycle*/, const std::uint8_t* /*bytes*/) {}
  };
  void set_observer(Observer* obs);

  // Read-only view of a stream register for lockstep and waveforms: the value on
  // (stream, dir) at `position` in `cycle`, or nullptr when empty or no longer held.
  const std::uint8_t* stream_value(int stream, Dir dir, int position, std::int64_t cycle) const;

  // The words of a queue as loaded (NOPs and REPEATs included), for waveforms that follow the
  // program counter through NOPs as the RTL does.
  std::vector<std::uint64_t> queue_words(int queue) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace lpu::model
