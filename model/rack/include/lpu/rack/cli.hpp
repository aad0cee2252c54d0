#pragma once
// What `lpu run --rack` and `lpu info --rack` do, as library calls (the CLI only parses options).
#include <cstdint>
#include <string>

#include "lpu/rack/config.hpp"

namespace lpu::rack {

struct RackCliOptions {
  std::string rack;          // --rack FILE (configs/lpx-rack.toml)
  std::string program;       // the positional program: a manifest (.toml), or one .lpo / .lpa for every chip
  int threads = 0;           // --threads N (0: the host's cores)
  bool timing_only = false;  // --timing-only
  bool check = false;        // --check: run the cross-chip schedule checker, list every problem
  std::string stats;         // --stats FILE: statistics as JSON
  bool quiet = false;        // -q: print nothing but errors
  // Tracing (docs/debugging.md, docs/waveforms.md): a chip outside the selection gets no
  // observer and pays nothing. Files are identical for any thread count.
  std::string wave;          // --wave FILE: one VCD, a scope TOP.chip<N> per traced chip
  std::string trace;         // --trace FILE: Chrome trace JSON, a process per chip, flows per C2C transfer
  std::string chips;         // --chips 0,3-5 (rack chip list syntax; default every chip with a program)
  std::string units;         // --units mem,vxm,mxm,sxm,c2c (default all)
  std::string streams;       // --streams 0-3 (default all, at --positions)
  std::string positions;     // --positions 5,11: stream registers to dump (default none)
  std::int64_t from = 0;     // --from CYCLE, --to CYCLE: window, in each chip's cycles
  std::int64_t to = INT64_MAX;
  double min_parallel_work = -1;  // RunOptions::min_parallel_work; negative: the engine's default
  // Under MPI (lpu run --mpi, docs/distributed.md) the chips are divided over the ranks: by
  // this partition (partition_chips syntax, one chip list per rank separated by '/') or in
  // contiguous ranges; traced chips run on rank 0. Only rank 0 prints and writes files.
  std::string mpi_partition;
};

// The chips --wave / --trace observe (--chips, else all), sorted.
std::vector<int> traced_chips(const RackCliOptions& o, int chips);

// Runs the manifest on the rack; prints the statistics (or, with check, the problems found).
// Returns 0, or 1 when the checker found errors. Throws lpu::Error subclasses (ConfigError,
// AsmError, FormatError, SimError) like every other command.
int run_cli(const RackCliOptions& o);

}  // namespace lpu::rack
