// bench_mpi: the rack engine over MPI ranks (docs/distributed.md) against one process, on this
// host. Two workloads: a 2,048-chip timing-only pipeline (8 racks' worth of lp30 chips on a
// ring; the lpx topology stops at one rack) and one timing-only decode step of the largest
// mixture-of-experts model the generator runs (Mixtral-8x7B, hybrid partition, lpx-rack). For
// each: one process (the baseline), then mpirun -np 1 and -np 2 (one thread per rank); per
// rank the host seconds of the run, the peak memory (VmHWM) and what it sent to the other ranks
// (messages, bytes, collectives), and per emulated microsecond. Prints ratios to the baseline;
// never asserts.
// Usage: bench_mpi [pipeline vectors (default 20000)] [--no-decode]
// (It starts the runs itself, as `bench_mpi --worker ...` under mpirun; as root it sets
// OMPI_ALLOW_RUN_AS_ROOT for them.)
#include <fmt/format.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "host_stats.hpp"
#include "lpu/common/parse.hpp"
#include "lpu/rack/config.hpp"
#include "lpu/rack/engine.hpp"
#include "lpu/rack/mpi.hpp"
#include "lpu/rack/program.hpp"
#include "lpu/workload/decoder.hpp"

namespace fs = std::filesystem;
using lpu::bench::now;
namespace mpi = lpu::rack::mpi;

namespace {

long vmhwm_kb() { return std::atol(lpu::bench::proc_status("VmHWM:").c_str()); }

// One rank's figures, gathered to rank 0, printed as one JSON line per rank.
void report(nlohmann::json j) {
  j["vmhwm_kb"] = vmhwm_kb();
  const auto t = mpi::traffic();
  j["messages"] = t.messages;
  j["bytes"] = t.bytes;
  j["collectives"] = t.collectives;
  if (!mpi::active()) {
    j["rank"] = 0;
    fmt::print("{}\n", j.dump());
    return;
  }
  j["rank"] = mpi::rank();
  const std::string s = j.dump();
  const auto all = mpi::gather(std::vector<std::uint8_t>(s.begin(), s.end()));
  for (const auto& b : all) fmt::print("{}\n", std::string(b.begin(), b.end()));
  std::fflush(stdout);
}

int worker(const std::vector<std::string>& a) {
  const std::string what = a.at(0), dir = a.at(1);
  const bool use_mpi = a.back() == "--mpi";
  if (use_mpi) {
    int argc = 0;
    char** argv = nullptr;
    mpi::init(&argc, &argv);
  }
  nlohmann::json j;
  if (what == "pipeline") {
    const auto cfg = lpu::rack::load_rack(dir + "/ring2048.toml");
    const auto prog = lpu::rack::load_program(dir + "/pipeline2048.toml", cfg);
    lpu::rack::RunOptions o;
    o.mode = lpu::model::Mode::TimingOnly;
    o.threads = 1;
    const double t0 = now();
    lpu::rack::Rack r(cfg, prog, o);
    const double t1 = now();
    r.run();
    const double t2 = now();
    const auto st = r.stats();
    j = {{"load_s", t1 - t0}, {"run_s", t2 - t1}, {"cycles", st.cycles}, {"clock_hz", st.reference_clock_hz},
         {"windows", st.windows}, {"transfers", st.transfers}};
  } else {
    lpu::workload::DecoderSpec spec;
    spec.model = "mixtral-8x7b";
    spec.rack = std::string(LPU_SOURCE_DIR) + "/configs/lpx-rack.toml";
    spec.partition = "hybrid";
    const double t0 = now();
    const auto plan = lpu::workload::plan_decoder(spec);
    lpu::workload::DecodeOptions opt;
    opt.threads = 1;
    const auto d = lpu::workload::decode_timing(plan, 1, opt);
    const double t1 = now();
    j = {{"load_s", t1 - t0 - d["decode"]["host"]["run_s"].get<double>()},
         {"run_s", d["decode"]["host"]["run_s"]},
         {"cycles", d["rack"]["rack"]["cycles"]},
         {"clock_hz", d["rack"]["rack"]["reference_clock_hz"]},
         {"windows", d["rack"]["engine"]["windows"]},
         {"transfers", d["rack"]["rack"]["transfers"]}};
  }
  report(j);
  mpi::finalize();
  return 0;
}

std::vector<nlohmann::json> launch(const std::string& cmd) {
  std::vector<nlohmann::json> out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[1 << 16];
  while (std::fgets(buf, sizeof buf, p)) {
    std::string line(buf);
    if (line.rfind("{", 0) == 0) out.push_back(nlohmann::json::parse(line));
  }
  pclose(p);
  return out;
}

void table(const std::string& self, const std::string& what, const std::string& dir) {
  const std::string mpirun = "env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun --oversubscribe";
  double base = 0;
  for (int np : {0, 1, 2}) {
    const std::string args = fmt::format("'{}' --worker {} '{}'", self, what, dir);
    const auto ranks = np == 0 ? launch(args) : launch(fmt::format("{} -np {} {} --mpi", mpirun, np, args));
    if (ranks.empty()) {
      fmt::print("  {}: the run failed\n", np == 0 ? "one process" : fmt::format("{} rank(s)", np));
      continue;
    }
    double run = 0;
    for (const auto& r : ranks) run = std::max(run, r["run_s"].get<double>());
    if (np == 0) base = run;
    const double us = ranks[0]["cycles"].get<double>() / ranks[0]["clock_hz"].get<double>() * 1e6;
    fmt::print("  {:<12} run {:8.3f} s ({:5.2f} x one process)  {} emulated cycles = {:.1f} us, {} windows\n",
               np == 0 ? "one process" : fmt::format("{} rank(s)", np), run, base > 0 ? base / run : 0.0,
               ranks[0]["cycles"].get<std::int64_t>(), us, ranks[0]["windows"].get<std::int64_t>());
    for (const auto& r : ranks) {
      const double msgs = r["messages"].get<double>(), bytes = r["bytes"].get<double>();
      fmt::print("    rank {}: set-up {:7.3f} s, run {:8.3f} s, peak memory {:7.1f} MB; sent {:.0f} messages "
                 "({:.0f} B avg) in {} collectives: {:.2f} messages and {:.0f} B per emulated us\n",
                 r["rank"].get<int>(), r["load_s"].get<double>(), r["run_s"].get<double>(),
                 r["vmhwm_kb"].get<double>() / 1024, msgs, msgs > 0 ? bytes / msgs : 0.0,
                 r["collectives"].get<std::int64_t>(), msgs / us, bytes / us);
    }
    std::fflush(stdout);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> a(argv + 1, argv + argc);
  if (!a.empty() && a[0] == "--worker") return worker({a.begin() + 1, a.end()});
  if (!mpi::available()) {
    fmt::print("bench_mpi: this build has no MPI (cmake -DLPU_MPI=ON with libopenmpi-dev)\n");
    return 0;
  }
  int vectors = 20000;
  bool decode = true;
  for (const auto& s : a) {
    if (s == "--no-decode") decode = false;
    else vectors = int(lpu::parse_int(s, "vectors", lpu::IntRange{1, 1 << 30}));
  }
  const fs::path dir = fs::temp_directory_path() / fmt::format("bench_mpi_{}", ::getpid());
  fs::create_directories(dir);
  {
    std::ofstream r(dir / "ring2048.toml");
    r << "# 2,048 lp30 chips (eight LPX racks' worth) on a ring: the lpx topology holds one rack.\n"
         "name = \"ring2048\"\nchips = 2048\n[chip]\npreset = \""
      << LPU_SOURCE_DIR << "/configs/lp30.toml\"\n[topology]\nname = \"ring\"\nlinks_per_direction = 4\n"
      << "[links]\nlatency_cycles = 160\n";
    std::ofstream m(dir / "pipeline2048.toml");
    m << "[generate]\nkind = \"pipeline\"\nchips = \"0-2047\"\nvectors = " << vectors << "\n";
  }
  const std::string self = fs::canonical("/proc/self/exe").string();
  fmt::print("bench_mpi: {} host cores; one thread per rank\n", std::thread::hardware_concurrency());
  fmt::print("2,048-stage int8 matmul pipeline on a ring of 2,048 lp30 chips, {} vectors, timing-only:\n", vectors);
  table(self, "pipeline", dir.string());
  if (decode) {
    fmt::print("one decode step of Mixtral-8x7B (fp8, hybrid partition) on lpx-rack (256 chips), timing-only "
               "(set-up: plan and assemble, on every rank):\n");
    table(self, "decode", dir.string());
  }
  fs::remove_all(dir);
  return 0;
}
