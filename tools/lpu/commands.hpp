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

// The exit code main gives an error: 1 for the typed errors of lpu (a bad input), 3 for any
// other exception (a bug: "internal error").
int exit_code_of(const std::exception& e);

// Runs `body`. When it throws and `stats` is not empty, first writes the --stats file of the
// failed run - {"status": "error", "command", "error", "error_kind", "exit_code", and the
// error's location: "key", "chip"/"cycle", "file"/"line"/"column" when it has one} - then
// rethrows for main to report. Sweeps and scripts read why a run failed (docs/debugging.md).
int with_failure_stats(const std::string& stats, const char* command, const std::function<int()>& body);

// While alive: the libraries' progress reports as one line on stderr ("command: phase done/total"),
// when stderr is a terminal and `on`; the line is cleared at the end, error or not.
class ProgressLine {
 public:
  ProgressLine(const char* command, bool on);
  ~ProgressLine();
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

 private:
  bool on_;
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
void add_gpu(CLI::App& app, std::vector<std::pair<CLI::App*, Action>>& out);
void add_serve_sim(CLI::App& app, std::vector<std::pair<CLI::App*, Action>>& out);

}  // namespace lpu::tools
