#pragma once
// The rack engine: chips with their own cycle counters, joined only by links, run in windows
// of conservative lookahead on a pool of host threads. Exact: results, cycle counts and
// statistics are identical for any thread count and from run to run (docs/rack.md, "Engine").
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lpu/common/errors.hpp"
#include "lpu/model/chip.hpp"
#include "lpu/rack/config.hpp"
#include "lpu/rack/mpi.hpp"
#include "lpu/rack/program.hpp"
#include "lpu/rack/stats.hpp"

namespace lpu::rack {

struct RunOptions {
  model::Mode mode = model::Mode::Functional;
  int threads = 0;  // 0: std::thread::hardware_concurrency()
  // A window's phase runs on the pool only when its estimated work (measured as it goes) exceeds
  // this many seconds; smaller phases run on the calling thread (waking workers costs more).
  // 0: every phase with more than one chip goes to the pool. Results never depend on it.
  double min_parallel_work = 200e-6;
  // Checker mode (timing-only): record located errors and keep going instead of stopping at
  // the first one (RECV without a matching arrival, SEND without room, corrupted transfer,
  // a vector sent but never received).
  bool collect = false;
  std::size_t max_diagnostics = 1000;
  bool load_inputs = true;  // read the manifest's inputs / dma_in files (functional mode)
  // Distributed over MPI ranks (docs/distributed.md): the default in a process started with
  // --mpi. Each rank creates and runs only its chips (`threads` is then per rank); every rank
  // must construct the same Rack and make the same calls on it (run, stats, save_outputs,
  // read_symbol, take_dma_out are collective). Results are those of one process.
  bool mpi = mpi::active();
  std::vector<int> partition;    // owner rank per chip; empty: partition_chips(chips, ranks, "", rank0_chips)
  std::vector<int> rank0_chips;  // chips that must run on rank 0 (traced: their observers write there)
};

// Which MPI rank runs each chip: `spec` is one chip list per rank separated by '/'
// ("0-99/100-255"); empty, contiguous ranges of nearly equal size, with the `rank0` chips on
// rank 0 and the others over ranks 1.. (when there are two ranks or more). ConfigError
// (key --mpi-partition) for a chip given to no rank or two, or a pinned chip elsewhere.
std::vector<int> partition_chips(int chips, int ranks, const std::string& spec, const std::vector<int>& rank0 = {});

// One located problem: chip, queue, cycle (the chip's own counter), and the source line when
// the program came from assembly source.
struct Diagnostic {
  int chip = -1;
  std::string unit;   // "sxm.e", "c2c link 3", ...
  std::string queue;  // "sxm.e.0" or empty
  std::int64_t cycle = 0;
  std::string message;
  std::optional<SourceLoc> loc;
  bool warning = false;  // sent but never received
  std::string text() const;  // "chip 1, sxm.e (queue sxm.e.0), cycle 188: ... [ping.lpa:12:1]"
};

class Rack {
 public:
  // Creates and loads every chip (programs with start skew get it as a leading NOP on every
  // queue, docs/rack.md "DESKEW"), sets registers and, in functional mode, inputs.
  Rack(const RackConfig& cfg, const RackProgram& prog, const RunOptions& opt = {});
  ~Rack();
  Rack(const Rack&) = delete;
  Rack& operator=(const Rack&) = delete;

  // Runs to the end. Throws lpu::SimError for the first error in rack time (ties: lowest chip)
  // unless opt.collect. May be called once.
  void run();

  int chips() const;
  model::Chip* chip(int c);  // null when the chip has no program (or, distributed, runs on another rank)
  bool has_program(int c) const;
  bool distributed() const;
  int rank_of(int c) const;  // the MPI rank that runs chip c (0 when not distributed)
  // A symbol of chip c after the run, and what the chip streamed out on a DMA channel: on every
  // rank (collective when distributed: the chip's rank sends it to the others).
  std::vector<std::uint8_t> read_symbol(int c, const std::string& symbol);
  std::vector<std::vector<std::uint8_t>> take_dma_out(int c, int channel);
  const RackConfig& config() const;
  const std::vector<Diagnostic>& diagnostics() const;
  RackStats stats() const;  // after run()
  int threads() const;
  std::int64_t lookahead_ticks() const;
  std::int64_t windows() const;  // barrier rounds run

  // Writes the manifest's outputs and dma_out files (functional mode); distributed, rank 0 writes
  // them all.
  void save_outputs() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// The cross-chip schedule checker: runs the program in timing-only, checker mode and returns
// every located mismatch (empty: the schedule is consistent).
std::vector<Diagnostic> check_schedule(const RackConfig& cfg, const RackProgram& prog, int threads = 1);

}  // namespace lpu::rack
