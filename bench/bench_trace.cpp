// The cost of tracing (a benchmark: prints, asserts nothing): the same functional run with no
// tracing, with a small selection (one unit kind, a 100-cycle window) and with the whole chip
// (every unit, stream registers at 8 positions) plus a timeline.
// Usage: build/bin/bench_trace [example.lpa]   (default examples/matmul_i8.lpa)
#include <fmt/format.h>

#include <chrono>
#include <sstream>

#include "lpu/asm/assembler.hpp"
#include "lpu/model/chip.hpp"
#include "lpu/model/trace.hpp"

using namespace lpu;
using Clock = std::chrono::steady_clock;

namespace {
struct Both : model::Chip::Observer {
  std::vector<model::Chip::Observer*> o;
  void on_group(int q, std::int64_t c, std::uint64_t w, std::int64_t n, std::int64_t d, std::int64_t pc) override {
    for (auto* x : o) x->on_group(q, c, w, n, d, pc);
  }
  void on_sram(int s, int r, bool w, std::int64_t c) override {
    for (auto* x : o) x->on_sram(s, r, w, c);
  }
  void on_stream(int sid, int p, std::int64_t c, const std::uint8_t* v) override {
    for (auto* x : o) x->on_stream(sid, p, c, v);
  }
  void on_mxm(int pl, int a, std::int64_t c) override {
    for (auto* x : o) x->on_mxm(pl, a, c);
  }
  void on_finish(std::int64_t c) override {
    for (auto* x : o) x->on_finish(c);
  }
};

double run(const ChipParams& p, const obj::Program& prog, int level, std::size_t& bytes) {
  double best = 1e9;
  for (int rep = 0; rep < 3; ++rep) {
    model::Chip chip(p, model::Mode::Functional);
    chip.load(prog);
    std::unique_ptr<model::VcdTracer> vcd;
    model::Timeline tl;
    Both both;
    if (level == 1) {
      model::TraceSelection sel;
      sel.units = {"mxm"};
      sel.from = 400;
      sel.to = 500;
      vcd = std::make_unique<model::VcdTracer>(chip, sel);
      chip.set_observer(vcd.get());
    } else if (level == 2) {
      model::TraceSelection sel;
      for (int k = 0; k < 8; ++k) sel.positions.insert(k * chip.layout().num_positions() / 8);
      vcd = std::make_unique<model::VcdTracer>(chip, sel);
      both.o = {vcd.get(), tl.attach(chip)};
      chip.set_observer(&both);
    }
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
}  // namespace

int main(int argc, char** argv) {
  std::string file = argc > 1 ? argv[1] : std::string(LPU_SOURCE_DIR) + "/examples/matmul_i8.lpa";
  if (file == "-h" || file == "--help") {
    fmt::print("usage: bench_trace [program.lpa]\n");
    return 0;
  }
  auto p = load_preset(assembler::preset_of_file(file, "lp30"));
  auto prog = assembler::assemble_file(file, p).program;
  std::size_t b0 = 0, b1 = 0, b2 = 0;
  const double t0 = run(p, prog, 0, b0), t1 = run(p, prog, 1, b1), t2 = run(p, prog, 2, b2);
  fmt::print("tracing cost on {} (functional, best of 3)\n", file);
  fmt::print("  no tracing            {:9.4f} s   1.00x\n", t0);
  fmt::print("  small selection       {:9.4f} s   {:.2f}x   ({} bytes of VCD)\n", t1, t1 / t0, b1);
  fmt::print("  whole chip + timeline {:9.4f} s   {:.2f}x   ({} bytes of VCD and JSON)\n", t2, t2 / t0, b2);
  return 0;
}
