#pragma once
// Each subcommand registers its options on the app and returns the action to run if chosen.
#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace lpu::tools {

using Action = std::function<int()>;

// Options every chip-level command shares: --preset and --set.
struct ChipOpts {
  std::string preset = "lp30";
  std::vector<std::string> set;
  void add(CLI::App* app);
};

void add_asm(CLI::App& app, std::vector<std::pair<CLI::App*, Action>>& out);
void add_disasm(CLI::App& app, std::vector<std::pair<CLI::App*, Action>>& out);
void add_info(CLI::App& app, std::vector<std::pair<CLI::App*, Action>>& out);
void add_run(CLI::App& app, std::vector<std::pair<CLI::App*, Action>>& out);
void add_serve(CLI::App& app, std::vector<std::pair<CLI::App*, Action>>& out);
void add_capacity(CLI::App& app, std::vector<std::pair<CLI::App*, Action>>& out);
void add_sweep(CLI::App& app, std::vector<std::pair<CLI::App*, Action>>& out);
void add_gen(CLI::App& app, std::vector<std::pair<CLI::App*, Action>>& out);
void add_decode(CLI::App& app, std::vector<std::pair<CLI::App*, Action>>& out);
void add_roofline(CLI::App& app, std::vector<std::pair<CLI::App*, Action>>& out);

}  // namespace lpu::tools
