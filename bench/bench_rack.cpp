// bench_rack: the 256-stage pipeline of configs/lpx-rack.toml in timing-only mode, on 1 and 2
// host threads: emulated chip-cycles per host second and host seconds per emulated rack
// millisecond (wall clock; the process CPU time beside it shows what host load took away);
// then a functional run for comparison, and the peak host memory. Prints, never asserts. Usage: bench_rack [vectors (default 40000)] [functional vectors (default 64)]
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <cstdlib>
#include <string>

#include "host_stats.hpp"
#include "lpu/common/parse.hpp"
#include "lpu/rack/config.hpp"
#include "lpu/rack/engine.hpp"
#include "lpu/rack/program.hpp"

using namespace lpu::rack;

namespace {

using lpu::bench::now;

void run(const RackConfig& cfg, const RackProgram& prog, lpu::model::Mode mode, int threads, const char* what,
         int dma_vectors = 0) {
  RunOptions o;
  o.mode = mode;
  o.threads = threads;
  const double t0 = now();
  Rack r(cfg, prog, o);
  if (mode == lpu::model::Mode::Functional) {
    const std::vector<std::uint8_t> zero(std::size_t(cfg.base().vector_bytes()), 1);
    for (int b = 0; b < dma_vectors; ++b) r.chip(0)->push_dma_in(0, zero);
  }
  const double t1 = now();
  const std::clock_t c1 = std::clock();
  r.run();
  const double t2 = now();
  const double cpu = double(std::clock() - c1) / CLOCKS_PER_SEC;
  const auto st = r.stats();
  const double run_s = t2 - t1;
  const double rack_ms = double(st.cycles) / st.reference_clock_hz * 1e3;
  fmt::print("{:<12} threads {}  load {:6.3f} s  run {:7.3f} s (cpu {:7.3f} s)  rack cycles {:>9}  chip-cycles {:>11}  "
             "{:9.3g} chip-cycles/s  {:7.3f} host s per rack-ms  {} transfers, {} windows\n",
             what, threads, t1 - t0, run_s, cpu, st.cycles, st.chip_cycles(), double(st.chip_cycles()) / run_s,
             run_s / rack_ms, st.transfers, st.windows);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  const int vectors = argc > 1 ? int(lpu::parse_int(argv[1], "vectors", lpu::IntRange{1, 1 << 30})) : 40000;
  const int fvectors = argc > 2 ? int(lpu::parse_int(argv[2], "functional vectors", lpu::IntRange{1, 1 << 30})) : 64;
  const auto cfg = load_rack(std::string(LPU_SOURCE_DIR) + "/configs/lpx-rack.toml");
  fmt::print("bench_rack: {} chips ({}), 256-stage int8 matmul pipeline, {} vectors (timing-only), {} (functional)\n",
             cfg.chips, cfg.topology.describe(), vectors, fvectors);
  double t0 = now();
  PipelineSpec spec;
  spec.vectors = vectors;
  PipelineTiming tm;
  auto gen = gen_pipeline(cfg, spec, &tm);
  auto prog = assemble_generated(cfg, gen, "pipeline256");
  fmt::print("generate + assemble 256 programs: {:.3f} s; pipeline latency {} cycles, one vector per {} cycles\n",
             now() - t0, tm.latency, tm.period);
  std::fflush(stdout);
  for (int threads : {1, 2, 1, 2}) run(cfg, prog, lpu::model::Mode::TimingOnly, threads, "timing-only");
  fmt::print("peak host memory after timing-only runs: VmHWM {}\n", lpu::bench::proc_status("VmHWM:"));
  spec.vectors = fvectors;
  auto fprog = assemble_generated(cfg, gen_pipeline(cfg, spec), "pipeline256");
  for (int threads : {1, 2}) run(cfg, fprog, lpu::model::Mode::Functional, threads, "functional", fvectors);
  fmt::print("peak host memory after functional runs: VmHWM {}\n", lpu::bench::proc_status("VmHWM:"));
  return 0;
}
