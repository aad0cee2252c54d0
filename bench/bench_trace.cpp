// The cost of tracing (a benchmark: prints, asserts nothing), best of 3 wall times including
// writing the files (to a temporary directory):
//  1. one chip, functional: no tracing; a small selection (MXM only, a 100-cycle window); the
//     whole chip (every unit, stream registers at 8 positions) plus a timeline.
//  2. a rack (examples/rack/pipeline_tray8.toml on configs/tray8.toml, functional, and
//     examples/rack/pipeline256.toml on configs/lpx-rack.toml, timing-only): no tracing; a small
//     selection (one chip's SXM queues and links); one chip whole; every chip whole; all with a
//     timeline.
// Usage: build/bin/bench_trace [example.lpa] [--no-rack]   (default examples/sram_stream.lpa: every
// lp30 MEM slice reads every cycle for 3,349 cycles, the densest trace there is)
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "lpu/asm/assembler.hpp"
#include "lpu/model/chip.hpp"
#include "lpu/model/trace.hpp"
#include "lpu/rack/cli.hpp"

using namespace lpu;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

double chip_run(const ChipParams& p, const obj::Program& prog, int level, std::size_t& bytes) {
  double best = 1e9;
  for (int rep = 0; rep < 3; ++rep) {
    model::Chip chip(p, model::Mode::Functional);
    chip.load(prog);
    std::unique_ptr<model::VcdTracer> vcd;
    model::Timeline tl;
    model::ObserverFanout fan;
    if (level == 1) {
      model::TraceSelection sel;
      sel.units = {"mxm"};
      sel.from = 400;
      sel.to = 500;
      vcd = std::make_unique<model::VcdTracer>(chip, sel);
      fan.obs = {vcd.get()};
    } else if (level == 2) {
      model::TraceSelection sel;
      for (int k = 0; k < 8; ++k) sel.positions.insert(k * chip.layout().num_positions() / 8);
      vcd = std::make_unique<model::VcdTracer>(chip, sel);
      fan.obs = {vcd.get(), tl.attach(chip)};
    }
    chip.set_observer(fan.target());
    auto t0 = Clock::now();
    chip.run();
    std::ostringstream out;
    if (vcd) vcd->write(out);
    if (level == 2) tl.write(out);
    best = std::min(best, std::chrono::duration<double>(Clock::now() - t0).count());
    bytes = out.str().size();
  }
  return best;
}

double rack_run(rack::RackCliOptions o, const std::string& chips, const std::string& units, const fs::path& dir,
                std::size_t& bytes) {
  o.quiet = true;
  o.threads = 1;
  if (chips != "none") {
    o.chips = chips;
    o.units = units;
    o.wave = (dir / "bench.vcd").string();
    o.trace = (dir / "bench.json").string();
  }
  double best = 1e9;
  for (int rep = 0; rep < 3; ++rep) {
    auto t0 = Clock::now();
    rack::run_cli(o);
    best = std::min(best, std::chrono::duration<double>(Clock::now() - t0).count());
  }
  bytes = 0;
  if (!o.wave.empty()) bytes = fs::file_size(o.wave) + fs::file_size(o.trace);
  return best;
}

void rack_case(const std::string& rackfile, const std::string& manifest, bool timing_only, const std::string& one,
               const std::string& many, const fs::path& dir) {
  rack::RackCliOptions o;
  o.rack = std::string(LPU_SOURCE_DIR) + "/configs/" + rackfile;
  o.program = std::string(LPU_SOURCE_DIR) + "/examples/rack/" + manifest;
  o.timing_only = timing_only;
  fmt::print("\nrack: {} on {} ({}, 1 thread, best of 3, run + files)\n", manifest, rackfile,
             timing_only ? "timing-only" : "functional");
  std::size_t b = 0;
  const double t0 = rack_run(o, "none", "", dir, b);
  fmt::print("  no tracing                         {:9.4f} s   1.00x\n", t0);
  struct Case {
    std::string what, chips, units;
  };
  for (const Case& c : {Case{"small: chip 0, SXM queues + links", "0", "sxm"}, Case{"one chip whole", one, ""},
                        Case{fmt::format("chips {} whole", many), many, ""}}) {
    const double t = rack_run(o, c.chips, c.units, dir, b);
    fmt::print("  {:34} {:9.4f} s   {:.2f}x   ({:.1f} MB of VCD and JSON)\n", c.what, t, t / t0, double(b) / 1e6);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string file = std::string(LPU_SOURCE_DIR) + "/examples/sram_stream.lpa";
  bool racks = true;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      fmt::print("usage: bench_trace [program.lpa] [--no-rack]\n");
      return 0;
    }
    if (a == "--no-rack") racks = false;
    else file = a;
  }
  auto p = load_preset(assembler::preset_of_file(file, "lp30"));
  auto prog = assembler::assemble_file(file, p).program;
  std::size_t b0 = 0, b1 = 0, b2 = 0;
  const double t0 = chip_run(p, prog, 0, b0), t1 = chip_run(p, prog, 1, b1), t2 = chip_run(p, prog, 2, b2);
  fmt::print("one chip: {} (functional, best of 3, run + files)\n", file);
  fmt::print("  no tracing                         {:9.4f} s   1.00x\n", t0);
  fmt::print("  small selection (MXM, 100 cycles)  {:9.4f} s   {:.2f}x   ({} bytes of VCD)\n", t1, t1 / t0, b1);
  fmt::print("  whole chip + timeline              {:9.4f} s   {:.2f}x   ({:.1f} MB of VCD and JSON)\n", t2, t2 / t0,
             double(b2) / 1e6);
  if (!racks) return 0;
  const fs::path dir = fs::temp_directory_path() / fmt::format("lpu_bench_trace_{}", ::getpid());
  fs::create_directories(dir);
  fs::current_path(dir);  // the manifests' outputs go to the working directory
  rack_case("tray8.toml", "pipeline_tray8.toml", false, "3", "0-7", dir);
  rack_case("lpx-rack.toml", "pipeline256.toml", true, "128", "0-31", dir);
  fs::remove_all(dir);
  return 0;
}
