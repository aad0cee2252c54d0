#pragma once
// What `lpu run --rack` and `lpu info --rack` do, as library calls (the CLI only parses options).
#include <string>

#include "lpu/rack/config.hpp"

namespace lpu::rack {

struct RackCliOptions {
  std::string rack;          // --rack FILE (configs/lpx-rack.toml)
  std::string program;       // --program MANIFEST (.toml), or one .lpo / .lpa for every chip
  int threads = 0;           // --threads N (0: the host's cores)
  bool timing_only = false;  // --timing-only
  bool check = false;        // --check: run the cross-chip schedule checker, list every problem
  std::string stats;         // --stats FILE: statistics as JSON
  bool quiet = false;        // -q: print nothing but errors
};

// Runs the manifest on the rack; prints the statistics (or, with check, the problems found).
// Returns 0, or 1 when the checker found errors. Throws lpu::Error subclasses (ConfigError,
// AsmError, FormatError, SimError) like every other command.
int run_cli(const RackCliOptions& o);

}  // namespace lpu::rack
