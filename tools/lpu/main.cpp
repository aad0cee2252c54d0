// lpu: assemble, disassemble, inspect and run programs on the emulated LPU.
#include <fmt/format.h>

#include <iostream>

#include "commands.hpp"
#include "lpu/common/errors.hpp"

namespace lpu::tools {
void ChipOpts::add(CLI::App* app) {
  app->add_option("--preset", preset, "chip preset: a name in configs/ (lp30, tsp1, mini) or a .toml path (default: the program's .preset, else lp30)")
      ->capture_default_str();
  app->add_option("--set", set, "override a preset parameter, e.g. --set mem.rows=4096 (repeatable)");
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
    return 1;
  } catch (const lpu::Error& e) {
    std::cerr << "lpu: error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "lpu: internal error: " << e.what() << "\n";
    return 3;
  }
  return 0;
}
