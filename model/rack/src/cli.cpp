#include "lpu/rack/cli.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <memory>

#include "lpu/model/trace.hpp"
#include "lpu/rack/engine.hpp"
#include "lpu/rack/mpi.hpp"

namespace lpu::rack {

namespace {

// Waveform and timeline of the selected chips: observers set before the run (one per chip,
// touched only by the thread running that chip), files written after it in chip order.
class RackTracing {
 public:
  RackTracing(Rack& rack, const RackConfig& cfg, const RackCliOptions& o) : o_(o) {
    if (o.wave.empty() && o.trace.empty()) return;
    model::TraceSelection sel;
    if (!o.streams.empty()) sel.streams = model::TraceSelection::parse_ranges(o.streams, "--streams");
    if (!o.positions.empty()) sel.positions = model::TraceSelection::parse_ranges(o.positions, "--positions");
    if (!o.units.empty()) sel.units = model::TraceSelection::parse_units(o.units);
    sel.from = o.from;
    sel.to = o.to;
    if (sel.from > sel.to) throw Error("--from is after --to");
    for (int c : traced_chips(o, cfg.chips)) {
      model::Chip* chip = rack.chip(c);
      if (!chip) continue;  // no program: nothing happens there
      auto fan = std::make_unique<model::ObserverFanout>();
      if (!o.wave.empty()) {
        vcd_.push_back(std::make_unique<model::VcdTracer>(*chip, sel, fmt::format("TOP.chip{}", c)));
        vcd_.back()->set_ticks_per_cycle(cfg.ticks_per_cycle[std::size_t(c)]);
        fan->obs.push_back(vcd_.back().get());
      }
      if (!o.trace.empty()) fan->obs.push_back(timeline_.attach(*chip, &sel));
      chip->set_observer(fan->target());
      fans_.push_back(std::move(fan));
    }
    timeline_.set_peers([&cfg](int c, int l) {
      const auto& p = cfg.topology.port(c, l);
      return std::pair<int, int>(p.peer, p.peer_link);
    });
    comment_ = fmt::format("lpu emulator waveform: rack {} ({} chips), chips traced: {}", cfg.name, cfg.chips, vcd_.size());
  }

  void write() const {
    if (!o_.wave.empty()) {
      std::ofstream f(o_.wave);
      if (!f) throw Error(fmt::format("cannot write {}", o_.wave));
      std::vector<const model::VcdTracer*> v;
      for (const auto& x : vcd_) v.push_back(x.get());
      model::VcdTracer::write_all(f, v, comment_);
    }
    if (!o_.trace.empty()) {
      std::ofstream f(o_.trace);
      if (!f) throw Error(fmt::format("cannot write {}", o_.trace));
      timeline_.write(f);
    }
  }

 private:
  const RackCliOptions& o_;
  std::vector<std::unique_ptr<model::VcdTracer>> vcd_;
  model::Timeline timeline_;
  std::vector<std::unique_ptr<model::ObserverFanout>> fans_;
  std::string comment_;
};

}  // namespace

std::vector<int> traced_chips(const RackCliOptions& o, int n) {
  std::vector<int> chips;
  if (o.chips.empty()) {
    for (int c = 0; c < n; ++c) chips.push_back(c);
  } else {
    chips = parse_chip_list(o.chips, n, "--chips");
    std::sort(chips.begin(), chips.end());
    chips.erase(std::unique(chips.begin(), chips.end()), chips.end());
  }
  return chips;
}

int run_cli(const RackCliOptions& o) {
  const bool speak = mpi::rank() == 0;  // under MPI only rank 0 prints and writes files
  RunOptions ro;
  const auto cfg = mpi::replicated([&] { return load_rack(o.rack); });
  const auto prog = mpi::replicated([&] {
    auto p = load_program(o.program, cfg);
    if (o.check && (!o.wave.empty() || !o.trace.empty())) throw Error("--check runs no program: it takes no --wave or --trace");
    if (!o.mpi_partition.empty() && !mpi::active()) throw Error("--mpi-partition needs --mpi");
    if (mpi::active()) {
      if (!o.wave.empty() || !o.trace.empty()) ro.rank0_chips = traced_chips(o, cfg.chips);
      ro.partition = partition_chips(cfg.chips, mpi::size(), o.mpi_partition, ro.rank0_chips);
    }
    return p;
  });
  if (o.check) {
    RunOptions co = ro;
    co.mode = model::Mode::TimingOnly;
    co.collect = true;
    co.threads = o.threads;
    Rack r(cfg, prog, co);
    r.run();
    const auto& diags = r.diagnostics();
    int errors = 0;
    for (const auto& d : diags) {
      errors += !d.warning;
      if (speak) std::cerr << (d.warning ? "warning: " : "error: ") << d.text() << "\n";
    }
    if (!o.quiet && speak)
      std::cout << fmt::format("{}: {} error(s), {} warning(s) in the cross-chip schedule of {} chips\n", o.program, errors,
                               diags.size() - std::size_t(errors), cfg.chips);
    return errors ? 1 : 0;
  }
  ro.mode = o.timing_only ? model::Mode::TimingOnly : model::Mode::Functional;
  ro.threads = o.threads;
  if (o.min_parallel_work >= 0) ro.min_parallel_work = o.min_parallel_work;
  Rack rack(cfg, prog, ro);
  RackTracing tracing(rack, cfg, o);  // under MPI the traced chips run on rank 0
  try {
    rack.run();
  } catch (const Error&) {
    if (speak) tracing.write();  // what happened up to the error is what one wants to look at
    throw;
  }
  rack.save_outputs();
  const auto st = rack.stats();
  if (!speak) return 0;
  tracing.write();
  if (!o.quiet) std::cout << format_rack_stats(st, cfg);
  if (!o.stats.empty()) {
    std::ofstream f(o.stats);
    if (!f) throw Error(fmt::format("cannot write {}", o.stats));
    auto j = rack_stats_json(st, cfg);
    j["status"] = "ok";  // a failed run writes "error" (tools/lpu, docs/debugging.md)
    f << j.dump(2) << "\n";
  }
  return 0;
}

}  // namespace lpu::rack
