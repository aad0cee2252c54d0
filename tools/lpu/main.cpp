// lpu: assemble, disassemble, inspect and run programs on the emulated LPU.
#include <fmt/format.h>

#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "lpu/common/errors.hpp"

namespace lpu::tools {
void ChipOpts::add(CLI::App* app) {
  app->add_option("--preset", preset, "chip preset: a name in configs/ (lp30, tsp1, mini) or a .toml path (default: the program's .preset, else lp30)")
      ->capture_default_str();
  app->add_option("--set", set, "override a preset parameter, e.g. --set mem.rows=4096 (repeatable)");
}

int exit_code_of(const std::exception& e) { return dynamic_cast<const lpu::Error*>(&e) ? 1 : 3; }

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

int main(int argc, char** argv) {
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
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    for (auto& [sub, act] : cmds)
      if (sub->parsed()) return act();
  } catch (const lpu::AsmError& e) {
    std::cerr << e.what() << "\n";
    return exit_code_of(e);
  } catch (const lpu::Error& e) {
    std::cerr << "lpu: error: " << e.what() << "\n";
    return exit_code_of(e);
  } catch (const std::exception& e) {
    std::cerr << "lpu: internal error: " << e.what() << "\n";
    return exit_code_of(e);
  }
  return 0;
}
