// lpu: assemble, disassemble, inspect and run programs on the emulated LPU.
#include <fmt/format.h>

#include <fstream>
#include <iostream>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "lpu/common/errors.hpp"
#include "lpu/common/progress.hpp"
#include "lpu/rack/mpi.hpp"

namespace lpu::tools {
void ChipOpts::add(CLI::App* app) {
  app->add_option("--preset", preset, "chip preset: a name in configs/ (lp30, tsp1, mini) or a .toml path (default: the program's .preset, else lp30)")
      ->capture_default_str();
  app->add_option("--set", set, "override a preset parameter, e.g. --set mem.rows=4096 (repeatable)");
}

int exit_code_of(const std::exception& e) { return dynamic_cast<const lpu::Error*>(&e) ? 1 : 3; }

ProgressLine::ProgressLine(const char* command, bool on) : on_(on && isatty(2) && rack::mpi::rank() == 0) {
  if (on_) progress::set_sink(progress::terminal_line(command));
}
ProgressLine::~ProgressLine() {
  if (!on_) return;
  progress::done();
  progress::set_sink({});
}

int with_failure_stats(const std::string& stats, const char* command, const std::function<int()>& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    if (stats.empty()) throw;
    nlohmann::json j;
    j["status"] = "error";
    j["command"] = command;
    j["error"] = e.what();
    j["exit_code"] = exit_code_of(e);
    if (const auto* a = dynamic_cast<const AsmError*>(&e)) {
      j["error_kind"] = "assembly";
      j["file"] = a->loc().file;
      j["line"] = a->loc().line;
      j["column"] = a->loc().col;
    } else if (const auto* c = dynamic_cast<const ConfigError*>(&e)) {
      j["error_kind"] = "config";
      j["key"] = c->key();
    } else if (const auto* s = dynamic_cast<const SimError*>(&e)) {
      j["error_kind"] = "simulation";
      j["chip"] = s->chip();
      j["cycle"] = s->cycle();
    } else if (dynamic_cast<const FormatError*>(&e)) {
      j["error_kind"] = "format";
    } else {
      j["error_kind"] = dynamic_cast<const Error*>(&e) ? "error" : "internal";
    }
    // Best effort: the run's own error is what the user must see, not a second one about
    // this file.
    std::ofstream f(stats);
    if (f) f << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    throw;
  }
}
}  // namespace lpu::tools

namespace {
// Under --mpi (docs/distributed.md) every rank runs this program. An error all ranks agreed on
// (the rack engine's, or one every rank met in the same replicated step) is printed once, by
// rank 0, and every rank finalises; an error only this rank saw is printed with its rank and
// ends the job (MPI_Abort), so that no rank waits for it.
int report(const std::exception& e, const std::string& text) {
  namespace mpi = lpu::rack::mpi;
  const int code = lpu::tools::exit_code_of(e);
  if (!mpi::active() || mpi::size() == 1) {
    std::cerr << text << "\n";
    return code;
  }
  if (mpi::agreed()) {
    if (mpi::rank() == 0) std::cerr << text << "\n";
    return code;
  }
  std::cerr << fmt::format("[MPI rank {} of {}] {}\n", mpi::rank(), mpi::size(), text) << std::flush;
  mpi::abort(code);
}

int run_lpu(int argc, char** argv) {
  using namespace lpu::tools;
  CLI::App app{"lpu: cycle-accurate emulator of a Groq-style LPU and of racks of them"};
  app.require_subcommand(1);
  std::vector<std::pair<CLI::App*, Action>> cmds;
  add_asm(app, cmds);
  add_disasm(app, cmds);
  add_info(app, cmds);
  add_run(app, cmds);
  add_serve(app, cmds);
  add_capacity(app, cmds);
  add_sweep(app, cmds);
  add_gen(app, cmds);
  add_decode(app, cmds);
  add_roofline(app, cmds);
  add_gpu(app, cmds);
  add_serve_sim(app, cmds);
  try {
    // Under MPI every rank parses the same line, and the ranks agree on the outcome: a file an
    // option checks may be missing on one machine only (then every rank ends with that rank's
    // message, instead of the others waiting for it).
    lpu::rack::mpi::agree_on_errors([&] { app.parse(argc, argv); });
  } catch (const CLI::ParseError& e) {
    // (the same on every rank: rank 0 speaks for them)
    if (lpu::rack::mpi::rank() != 0) return e.get_exit_code();
    return app.exit(e);
  } catch (const std::exception& e) {
    if (lpu::rack::mpi::rank() == 0) std::cerr << "lpu: error: " << e.what() << "\n";
    return 1;
  }
  try {
    for (auto& [sub, act] : cmds)
      if (sub->parsed()) return act();
  } catch (const lpu::AsmError& e) {
    return report(e, e.what());
  } catch (const lpu::Error& e) {
    return report(e, std::string("lpu: error: ") + e.what());
  } catch (const std::exception& e) {
    return report(e, std::string("lpu: internal error: ") + e.what());
  }
  return 0;
}
}  // namespace

int main(int argc, char** argv) {
  namespace mpi = lpu::rack::mpi;
  // --mpi: MPI starts before the options are parsed (it may take its own from argv) and ends
  // after the command, on every rank.
  bool want_mpi = false;
  for (int i = 1; i < argc; ++i) want_mpi |= std::string(argv[i]) == "--mpi";
  if (want_mpi) {
    try {
      mpi::init(&argc, &argv);
    } catch (const lpu::Error& e) {
      std::cerr << "lpu: error: " << e.what() << "\n";
      return 1;
    }
  }
  const int rc = run_lpu(argc, argv);
  mpi::finalize();
  return rc;
}
