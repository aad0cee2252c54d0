#include "lpu/rack/cli.hpp"

#include <fmt/format.h>

#include <fstream>
#include <iostream>

#include "lpu/rack/engine.hpp"

namespace lpu::rack {

int run_cli(const RackCliOptions& o) {
  const auto cfg = load_rack(o.rack);
  const auto prog = load_program(o.program, cfg);
  if (o.check) {
    const auto diags = check_schedule(cfg, prog, o.threads);
    int errors = 0;
    for (const auto& d : diags) {
      errors += !d.warning;
      std::cerr << (d.warning ? "warning: " : "error: ") << d.text() << "\n";
    }
    if (!o.quiet)
      std::cout << fmt::format("{}: {} error(s), {} warning(s) in the cross-chip schedule of {} chips\n", o.program, errors,
                               diags.size() - std::size_t(errors), cfg.chips);
    return errors ? 1 : 0;
  }
  RunOptions ro;
  ro.mode = o.timing_only ? model::Mode::TimingOnly : model::Mode::Functional;
  ro.threads = o.threads;
  Rack rack(cfg, prog, ro);
  rack.run();
  rack.save_outputs();
  const auto st = rack.stats();
  if (!o.quiet) std::cout << format_rack_stats(st, cfg);
  if (!o.stats.empty()) {
    std::ofstream f(o.stats);
    if (!f) throw Error(fmt::format("cannot write {}", o.stats));
    f << rack_stats_json(st, cfg).dump(2) << "\n";
  }
  return 0;
}

}  // namespace lpu::rack
