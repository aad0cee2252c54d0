// bench_decode: host time to emulate one decode token of a model on a whole rack in timing-only
// mode (default Llama-3-70B fp8 on configs/lpx-rack.toml), on 1 and 2 host threads. The program
// generation (planning and scheduling every distinct stage) and the assembly are timed apart
// from the emulation. Prints, never asserts.
// Usage: bench_decode [model (llama-3-70b)] [rack file (configs/lpx-rack.toml)] [context (8192)]
//                     [partition (pipeline | tensor | hybrid)]
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>

#include "host_stats.hpp"
#include "lpu/common/parse.hpp"
#include "lpu/rack/engine.hpp"
#include "lpu/workload/decoder.hpp"

using namespace lpu;

using bench::now;

int main(int argc, char** argv) {
  workload::DecoderSpec spec;
  spec.model = argc > 1 ? argv[1] : "llama-3-70b";
  spec.rack = argc > 2 ? argv[2] : std::string(LPU_SOURCE_DIR) + "/configs/lpx-rack.toml";
  spec.context = argc > 3 ? int(lpu::parse_int(argv[3], "context", lpu::IntRange{1, 1 << 30})) : 8192;
  spec.partition = argc > 4 ? argv[4] : "pipeline";
  fmt::print("bench_decode: {} fp8 on {}, context {}, {} partition, timing-only, one decode token (one run of every chip's "
             "program)\n",
             spec.model, spec.rack, spec.context, spec.partition);
  double t0 = now();
  auto plan = workload::plan_decoder(spec);
  const double plan_s = now() - t0;
  std::size_t schedules = 0;
  for (int s : plan.program_schedule) schedules = std::max(schedules, std::size_t(s) + 1);
  fmt::print("generate:  {:.2f} s ({} chips, {} distinct programs, {} schedules)\n", plan_s, plan.chips.size(),
             plan.programs.size(), schedules);
  std::fflush(stdout);
  for (int threads : {1, 2}) {
    t0 = now();
    auto objs = workload::decoder_objects(plan, threads);
    const double asm_s = now() - t0;
    rack::RackProgram rp;
    rp.chips.resize(std::size_t(plan.rack.chips));
    for (const auto& c : plan.chips) {
      rp.chips[std::size_t(c.chip)].object = objs[std::size_t(c.program)];
      rp.chips[std::size_t(c.chip)].start_delay = c.start_delay;
    }
    rack::RunOptions ro;
    ro.mode = model::Mode::TimingOnly;
    ro.threads = threads;
    t0 = now();
    rack::Rack rk(plan.rack, rp, ro);
    const double load_s = now() - t0;
    const std::clock_t c0 = std::clock();
    t0 = now();
    rk.run();
    const double run_s = now() - t0;
    const double cpu_s = double(std::clock() - c0) / CLOCKS_PER_SEC;
    const auto st = rk.stats();
    const double token_ms = double(st.cycles) / st.reference_clock_hz * 1e3;
    fmt::print("threads {}: assemble {:.2f} s, load {:.2f} s, emulate {:.2f} s (cpu {:.2f} s) for one token = {:.3f} emulated ms "
               "({} rack cycles, {:.3g} chip-cycles/s, {} windows)\n",
               threads, asm_s, load_s, run_s, cpu_s, token_ms, st.cycles, double(st.chip_cycles()) / run_s, st.windows);
    std::fflush(stdout);
  }
  fmt::print("peak host memory (VmHWM): {}\n", bench::proc_status("VmHWM:"));
  return 0;
}
