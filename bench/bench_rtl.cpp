// RTL speed against the model (a benchmark: it measures and prints, it asserts nothing).
// For each program: emulated cycles per host second of the Verilated RTL (lpu_rtl, stepped one
// cycle at a time, no waveform) and of the model (lpu::model::Chip, functional mode, run to the
// end), on the same object, and their ratio RTL / model.
// Usage: build/bin/bench_rtl [--seconds S] [--only NAME-SUBSTRING]
#include <fmt/format.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <string>

#include "lpu/asm/assembler.hpp"
#include "lpu/common/parse.hpp"
#include "lpu/model/chip.hpp"
#include "lpu/rtl/lockstep.hpp"
#include "lpu/rtl/randprog.hpp"
#include "lpu/rtl/rtl_chip.hpp"

using namespace lpu;
using Clock = std::chrono::steady_clock;

namespace {

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Every MEM slice streams one vector per cycle through the VXM for `cycles` cycles: mem.w.q
// and mem.e.q meet at the VXM, vxm.q adds them and mem.w.q writes the sum back (4 ALUs, 8 read
// and 4 write ports busy every cycle): the densest steady load of the mini chip.
std::string dense_program(int cycles) {
  std::string s = fmt::format(".preset mini\n.const R = {}\n", cycles);
  for (int q = 0; q < 4; ++q) {
    s += fmt::format(".queue mem.w.{0}\nrw{0}: READ 0, s{0}e, 0\n      REPEAT R - 1, 1\n", q);
    s += fmt::format(".queue mem.e.{0}\nre{0}: READ 0, s{1}w, 0\n      REPEAT R - 1, 1\n", q, q + 4);
    s += fmt::format(".queue vxm.{0}\nadd{0}: @ready(rw{0}) ADD.i8 s{0}e, s{1}w, s{0}w\n      REPEAT R - 1, 1\n", q, q + 4);
    s += fmt::format(".queue mem.w.{0}.1\n      @ready(add{0}) WRITE s{0}w, 1, 0\n      REPEAT R - 1, 1\n", q);
  }
  return s;
}

struct Row {
  std::string name;
  obj::Program prog;
};

void bench(const Row& r, const ChipParams& p, double min_s) {
  std::vector<std::vector<rtl::Vec>> dma(std::size_t(p.dma.channels));
  for (int c = 0; c < p.dma.channels; ++c) dma[std::size_t(c)] = rtl::lockstep_dma_vectors({}, c);
  // RTL
  rtl::RtlChip chip;
  std::int64_t rtl_cycles = 0;
  double rtl_s = 0;
  int runs = 0;
  while (rtl_s < min_s || runs == 0) {
    chip.load(r.prog);
    for (int c = 0; c < p.dma.channels; ++c)
      for (const auto& v : dma[std::size_t(c)]) chip.push_dma_in(c, v);
    chip.set_link_sink([&](int link, std::int64_t depart, const rtl::Vec& v) { chip.receive(link, depart + 3, v); });
    auto t0 = Clock::now();
    while (!(chip.finished() && chip.streams_empty())) {
      chip.step();
      ++rtl_cycles;
    }
    rtl_s += since(t0);
    ++runs;
  }
  // model
  std::int64_t model_cycles = 0;
  double model_s = 0;
  runs = 0;
  struct Loop : model::LinkSink {
    model::Chip* c = nullptr;
    void send(int, int link, std::int64_t depart, std::span<const std::uint8_t> b) override { c->receive(link, depart + 3, b); }
  } loop;
  while (model_s < min_s || runs == 0) {
    model::Chip m(p, model::Mode::Functional);
    m.load(r.prog);
    loop.c = &m;
    m.set_link_sink(&loop);
    for (int c = 0; c < p.dma.channels; ++c)
      for (const auto& v : dma[std::size_t(c)]) m.push_dma_in(c, v);
    auto t0 = Clock::now();
    m.run();
    model_s += since(t0);
    model_cycles += m.stats().cycles;
    ++runs;
  }
  const double rtl_rate = double(rtl_cycles) / rtl_s, model_rate = double(model_cycles) / model_s;
  fmt::print("  {:<28} {:>14.0f} {:>16.0f} {:>10.4f}\n", r.name, rtl_rate, model_rate, rtl_rate / model_rate);
}

}  // namespace

int main(int argc, char** argv) {
  double min_s = 0.5;
  std::string only;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string(argv[i]) == "--seconds") min_s = lpu::parse_double(argv[i + 1], "--seconds", 0, 1e6);
    if (std::string(argv[i]) == "--only") only = argv[i + 1];
  }
  auto p = load_preset("mini");
  std::vector<Row> rows;
  for (const char* e : {"vector_add.lpa", "matvec_i8.lpa", "stream_axpb_i8.lpa"}) {
    auto path = (std::filesystem::path(LPU_SOURCE_DIR) / "examples" / e).string();
    rows.push_back({e, assembler::assemble_file(path, p).program});
  }
  rows.push_back({"dense streams (4000 cycles)", assembler::assemble_string(dense_program(4000), "dense.lpa", p).program});
  rtl::RandProgOptions ro;
  ro.patterns = 400;
  ro.horizon = 2000;
  rows.push_back({"random (seed 1, 400 patterns)", assembler::assemble_string(rtl::random_program(1, ro), "r.lpa", p).program});
  fmt::print("RTL (Verilated lpu_mini, cycle by cycle) against the model (functional) on mini\n");
  fmt::print("  {:<28} {:>14} {:>16} {:>10}\n", "program", "RTL cycles/s", "model cycles/s", "RTL/model");
  for (const auto& r : rows)
    if (only.empty() || r.name.find(only) != std::string::npos) bench(r, p, min_s);
  return 0;
}
