// Model speed (a benchmark: it measures and prints, it asserts nothing).
//   1. Functional MXM: emulated MACs per host second on a large matrix product on one lp30
//      plane, next to OpenBLAS sgemm (one thread) on the same shapes, as a ratio.
//   2. Timing-only: emulated chip-cycles per host second on the examples and on long programs.
// Usage: build/bin/bench_model [--batches N]
#include <cblas.h>
#include <fmt/format.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>

#include "lpu/asm/assembler.hpp"
#include "lpu/common/parse.hpp"
#include "lpu/isa/isa.hpp"
#include "lpu/model/chip.hpp"

using namespace lpu;
using Clock = std::chrono::steady_clock;

extern "C" void openblas_set_num_threads(int);

namespace {

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Y = X W^T on plane mxm.e.0 of lp30: weights installed once, then `groups` x 64 vectors, each
// group into accumulators 0..63 (the last group is read out).
std::string matmul_program(const std::string& t, int n, int groups) {
  std::string s = fmt::format(R"(.preset lp30
.const N = {n}
.queue mem.e.200
w:   READ 0, s0e, 1
     REPEAT N - 1, 1
.queue mxm.e.0.0
     @ready(w) LW.{t} s0e, 0
     REPEAT N - 1, 1
iw:  IW.{t}
.queue mem.e.201
x:   @ready(iw) - 40 READ 0, s1e, 1
     REPEAT 63, 1
)", fmt::arg("n", n), fmt::arg("t", t));
  for (int g = 1; g < groups; ++g) s += "     READ 0, s1e, 1\n     REPEAT 63, 1\n";
  s += fmt::format(".queue mxm.e.0.1\nmm: @max(ready(x), ready(iw)) MM.{} s1e, 0\n     REPEAT 63, 1\n", t);
  for (int g = 1; g < groups; ++g) s += fmt::format("     MM.{} s1e, 0\n     REPEAT 63, 1\n", t);
  s += fmt::format(".queue mxm.e.0.2\n     @ready(mm) + {} ACCRD.f32 0, s2w, 0\n     REPEAT 63, 1\n", (groups - 1) * 64);
  return s;
}

void bench_mxm(int groups) {
  auto p = load_preset("lp30");
  openblas_set_num_threads(1);
  fmt::print("1. functional MXM on lp30 (one plane; {} vectors)\n", groups * 64);
  fmt::print("   {:<6} {:>14} {:>14} {:>14} {:>8}\n", "type", "emulated MAC/s", "sgemm MAC/s", "host s", "ratio");
  for (auto [t, n] : {std::pair<std::string, int>{"i8", 320}, {"e4m3", 320}, {"f16", 160}, {"bf16", 160}}) {
    std::string src = matmul_program(t, n, groups);
    if (t == "i8") src.replace(src.find("ACCRD.f32"), 9, "ACCRD.i32");
    auto obj = assembler::assemble_string(src, "bench.lpa", p).program;
    // Random weights and activations (small values, so that no element is zero by accident and
    // floats stay finite): the rows READ finds in mem.e.200 and mem.e.201.
    std::mt19937 gen(7);
    for (const char* slice : {"mem.e.200", "mem.e.201"}) {
      obj::DataSection d{slice, 0, std::vector<std::uint8_t>(std::size_t(n) * 320)};
      for (auto& b : d.bytes) b = std::uint8_t(0x30 + gen() % 16);  // e4m3/i8 ~0.5..1; f16/bf16 tiny normals
      obj.data.push_back(std::move(d));
    }
    model::Chip chip(p, model::Mode::Functional);
    chip.load(obj);
    auto t0 = Clock::now();
    chip.run();
    double sec = seconds_since(t0);
    std::int64_t macs = 0;
    for (const auto& [k, m] : chip.stats().mxm_macs) macs += m;
    // The same product in f32 with OpenBLAS: M = vectors, N = K = n.
    const int M = groups * 64;
    std::vector<float> A(std::size_t(M) * std::size_t(n)), B(std::size_t(n) * std::size_t(n)), C(std::size_t(M) * std::size_t(n));
    std::mt19937 rng(1);
    for (auto& x : A) x = float(rng() % 200) / 100.0f - 1.0f;
    for (auto& x : B) x = float(rng() % 200) / 100.0f - 1.0f;
    int reps = 0;
    auto t1 = Clock::now();
    do {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, n, n, 1.0f, A.data(), n, B.data(), n, 0.0f, C.data(), n);
      ++reps;
    } while (seconds_since(t1) < 0.5);
    double blas = double(M) * n * n * reps / seconds_since(t1);
    double emu = double(macs) / sec;
    fmt::print("   {:<6} {:>14.3e} {:>14.3e} {:>14.3f} {:>8.3f}\n", t, emu, blas, sec, emu / blas);
  }
}

// A long timing-only program built word by word (the assembler's checker expands every
// instance; this one has 470 queues x 16M reads): every MEM slice of lp30 reads every cycle.
void bench_timing_long() {
  auto p = load_preset("lp30");
  Layout layout(p);
  obj::Program prog = assembler::assemble_string(".preset lp30\n", "empty.lpa", p).program;
  for (const auto& q : layout.queues()) {
    if (q.kind != isa::QueueKind::Mem || q.index_in_slice != 0) continue;
    isa::Instr rd;
    rd.op = isa::Op::Read;
    rd.v[1] = StreamRef{0, Dir::East}.packed();
    isa::Instr rep;
    rep.op = isa::Op::Repeat;
    rep.v[0] = 16'000'000;
    rep.v[1] = 1;
    prog.queues.push_back({q.name, {isa::encode(rd), isa::encode(rep)}});
  }
  model::Chip chip(p, model::Mode::TimingOnly);
  chip.load(prog);
  auto t0 = Clock::now();
  chip.run();
  double sec = seconds_since(t0);
  const auto& st = chip.stats();
  (void)layout;
  fmt::print("   {:<28} {:>12} cycles {:>10.6f} s {:>12.3e} cycles/s {:>10.3e} ns/cycle\n", "lp30 all-slice stream, 16M",
             st.cycles, sec, double(st.cycles) / sec, sec * 1e9 / double(st.cycles));
}

void bench_timing_examples() {
  namespace fs = std::filesystem;
  fmt::print("2. timing-only mode\n");
  for (const auto& e : fs::directory_iterator(fs::path(LPU_SOURCE_DIR) / "examples")) {
    if (e.path().extension() != ".lpa") continue;
    auto p = load_preset(assembler::preset_of_file(e.path().string(), "lp30"));
    auto obj = assembler::assemble_file(e.path().string(), p).program;
    int reps = 0;
    std::int64_t cycles = 0;
    double sec = 0;
    do {  // run() only: chip construction and loading are not emulation
      model::Chip chip(p, model::Mode::TimingOnly);
      chip.load(obj);
      auto t0 = Clock::now();
      chip.run();
      sec += seconds_since(t0);
      cycles = chip.stats().cycles;
      ++reps;
    } while (sec < 0.1 && reps < 100000);
    sec /= reps;
    fmt::print("   {:<28} {:>12} cycles {:>10.6f} s {:>12.3e} cycles/s {:>10.3f} ns/cycle\n",
               e.path().filename().string(), cycles, sec, double(cycles) / sec, sec * 1e9 / double(cycles));
  }
  bench_timing_long();
}

}  // namespace

int main(int argc, char** argv) {
  int groups = 16;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--batches" && i + 1 < argc) groups = std::max(1, int(lpu::parse_int(argv[++i], "--batches", lpu::IntRange{1, 1 << 30})) / 64);
    else if (a == "-h" || a == "--help") {
      fmt::print("usage: bench_model [--batches N]   (N activation vectors per matrix product, default 1024)\n");
      return 0;
    }
  }
  bench_mxm(groups);
  bench_timing_examples();
  return 0;
}
