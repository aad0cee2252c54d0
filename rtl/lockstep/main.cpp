// lpu_lockstep: run objects, or constrained-random programs, on the RTL and the model in
// lockstep (docs/rtl.md). Exit status 0 when every run agrees, 1 on the first mismatch, 2 on a
// usage or input error.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <fstream>
#include <iostream>

#include "lpu/arch/params.hpp"
#include "lpu/asm/assembler.hpp"
#include "lpu/asm/object.hpp"
#include "lpu/common/errors.hpp"
#include "lpu/rtl/lockstep.hpp"
#include "lpu/rtl/randprog.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Run programs on the mini RTL and on the model in lockstep, comparing every cycle"};
  std::uint64_t seed = 1;
  int count = 10;
  std::vector<std::string> programs, model_set;
  std::string wave, save_dir = ".", print_seed;
  bool flip = false, ignore_tr = false, quiet = false, print = false;
  lpu::rtl::RandProgOptions ro;
  lpu::rtl::LockstepOptions lo;
  app.add_option("--seed", seed, "first random seed (program i uses seed + i)");
  app.add_option("--count", count, "number of random programs")->check(CLI::NonNegativeNumber);
  app.add_option("--program", programs, "run these objects (.lpo) instead of random programs")
      ->check(CLI::ExistingFile);
  app.add_option("--wave", wave, "write the RTL waveform of the first run to this file (.fst or .vcd)");
  app.add_option("--patterns", ro.patterns, "patterns per random program");
  app.add_option("--horizon", ro.horizon, "cycles over which a random program's instructions are spread");
  app.add_flag("--no-icu", [&](std::int64_t) { ro.icu = false; }, "random programs without SYNC/NOTIFY/CONFIG/DESKEW/HALT");
  app.add_option("--model-set", model_set,
                 "key=value override of the model's preset only (mutation check, e.g. latency.vxm_alu=2)");
  app.add_flag("--flip-alu", flip, "test-only RTL mutation: flip bit 0 of every VXM ALU result");
  app.add_flag("--ignore-tr", ignore_tr, "test-only RTL mutation: every IW installs untransposed, whatever its tr");
  app.add_option("--save", save_dir, "directory for the .lpa of a failing random program");
  app.add_flag("--print", print, "print each random program");
  app.add_flag("-q,--quiet", quiet, "print only mismatches and the summary");
  CLI11_PARSE(app, argc, argv);

  try {
    const auto params = lpu::load_preset("mini");
    const auto model_params = lpu::load_preset("mini", model_set);
    lo.flip_alu = flip;
    lo.ignore_tr = ignore_tr;
    lo.dma_vectors = ro.dma_vectors;
    lo.link_latency = ro.link_latency;
    lpu::rtl::RtlChip rtl;
    std::int64_t cycles = 0, checks = 0, values = 0, issues = 0, sram = 0, wrows = 0, acc = 0;
    int runs = 0;
    auto t0 = std::chrono::steady_clock::now();
    auto one = [&](const lpu::obj::Program& prog, const std::string& name, const std::string& source) -> bool {
      lo.wave = runs == 0 ? wave : "";
      auto r = lpu::rtl::run_lockstep(rtl, prog, model_params, lo);
      ++runs;
      cycles += r.stats.cycles;
      checks += r.stats.stream_checks;
      values += r.stats.stream_values;
      issues += r.stats.issues;
      sram += r.stats.sram_writes;
      wrows += r.stats.weight_rows;
      acc += r.stats.acc_writes;
      if (!r.ok()) {
        std::cout << name << ": " << r.report() << "\n";
        if (!source.empty()) {
          std::string path = fmt::format("{}/lockstep_fail_{}.lpa", save_dir, name);
          std::ofstream(path) << source;
          std::cout << "program saved to " << path << "\n";
        }
        return false;
      }
      if (!quiet) std::cout << name << ": " << r.report() << "\n";
      return true;
    };
    bool ok = true;
    if (!programs.empty()) {
      for (const auto& path : programs)
        if (!(ok = one(lpu::obj::load_object(path), path, ""))) break;
    } else {
      for (int i = 0; i < count && ok; ++i) {
        const std::uint64_t s = seed + std::uint64_t(i);
        std::string text = lpu::rtl::random_program(s, ro);
        if (print) std::cout << text << "\n";
        auto res = lpu::assembler::assemble_string(text, fmt::format("random_{}.lpa", s), params);
        ok = one(res.program, fmt::format("seed_{}", s), text);
      }
    }
    double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::cout << fmt::format("{} {} program{} in lockstep: {} cycles, {} stream register-cycles ({} with a value), "
                             "{} issues, {} SRAM writes, {} LWM rows, {} accumulator writes compared, {:.1f} s{}\n",
                             ok ? "OK" : "MISMATCH", runs, runs == 1 ? "" : "s", cycles, checks, values, issues, sram, wrows, acc,
                             wall,
                             wave.empty() ? "" : ", waveform " + wave);
    return ok ? 0 : 1;
  } catch (const lpu::AsmError& e) {
    std::cerr << "a random program did not assemble (generator bug): " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  }
}
