#pragma once
// lpu sweep: the parameter grid, the command of each run, and the CSV of the results.
// The process handling is in cmd_sweep.cpp; everything here is pure and tested directly
// (tests/tools/test_sweep.cpp). Format and examples: docs/sweep.md.
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace lpu::tools::sweep {

// What a swept key is and how it reaches the command.
enum class ParamKind {
  Preset,       // "latency.mem_read": --set KEY=v (on a --rack command: the rack's [chip] set)
  Rack,         // "rack.links.latency_cycles": a derived rack file with links.latency_cycles = v
  Placeholder,  // "@chips": {chips} in the command's words becomes v
};

struct Param {
  std::string spec_key;  // as written: "latency.mem_read", "rack.links.latency_cycles", "@chips"
  std::string key;       // without the prefix: "latency.mem_read", "links.latency_cycles", "chips"
  std::string column;    // the CSV column: spec_key without a leading '@'
  ParamKind kind = ParamKind::Preset;
  std::vector<std::string> values;
};

// "KEY=v1,v2,..." -> Param. Values are split at commas ("\," is a literal comma); an item
// "FIRST:LAST:STEP" of three numbers is the range FIRST, FIRST+STEP, ... up to LAST.
// Throws lpu::Error with the offending text.
Param parse_param(const std::string& spec);
std::vector<std::string> split_values(const std::string& text, const std::string& key);

// Every combination, the first parameter varying slowest (nested loops in the order given).
std::vector<std::vector<std::string>> grid(const std::vector<Param>& params);

// Replaces {name} in a word by values.at(name); "{{" and "}}" are literal braces. Names used
// are added to *used. Throws lpu::Error for an unknown name or an unmatched brace.
std::string substitute(const std::string& word, const std::map<std::string, std::string>& values,
                       std::vector<std::string>* used = nullptr);

struct PlanOptions {
  std::vector<std::string> command;  // everything after "--"
  std::string out_dir = "sweep";
  bool stdout_json = false;          // the statistics are the command's standard output (no --stats)
};

struct Run {
  int index = 0;
  std::vector<std::string> values;     // one per parameter
  std::vector<std::string> argv;       // the command, substituted ({run}, {out}, {stats} built in), with
                                       // --set/--stats/--rack added (no --stats when {stats} is used)
  std::string stats_path;              // DIR/run_N.json
  std::string out_path, err_path;      // DIR/run_N.out, DIR/run_N.err
  std::string rack_source;             // the rack file the command named, when it gets a derived one
  std::string rack_path;               // DIR/run_N.rack.toml
  std::vector<std::string> rack_sets;  // overrides applied to rack_source (apply_rack_overrides)
  std::string label;                   // "latency.mem_read=5 @chips=64"
};

// The runs of the grid. Checks what can be checked before running (placeholders, a --rack
// option when rack parameters are swept, no --stats in the command); throws lpu::Error.
std::vector<Run> plan(const std::vector<Param>& params, const PlanOptions& o);

// Writes run.rack_path: run.rack_source with run.rack_sets applied, relative chip preset paths
// made absolute, and validated by the rack parser. Throws lpu::ConfigError.
void write_rack(const Run& run);

// JSON flattened to "a.b.0.c" -> scalar, in the order of the parsed JSON (nlohmann: keys sorted).
using Flat = std::vector<std::pair<std::string, nlohmann::json>>;
Flat flatten(const nlohmann::json& j);

// A metric: a flattened key ("cycles", "rack.link_bytes", "energy.total_j") or an aggregate
// over a pattern with "*" for one key component: "sum(chips.*.sram_bytes_read)"; also min,
// max, avg, count. Empty when the run has no such key.
std::optional<nlohmann::json> evaluate(const std::string& metric, const Flat& flat);
void check_metric(const std::string& metric);  // throws lpu::Error when malformed

// The default metrics present in at least one run (docs/sweep.md lists them).
std::vector<std::string> default_metrics(const std::vector<const Flat*>& runs);

struct Result {
  std::string status = "not run";  // ok | failed | error | cancelled | not run
  int exit_code = 0;
  std::string message;
  double wall_s = 0;
  Flat flat;
};

// The CSV: run, one column per parameter, status, one per metric, wall_s.
std::vector<std::string> csv_columns(const std::vector<Param>& params, const std::vector<std::string>& metrics);
std::string csv(const std::vector<Param>& params, const std::vector<Run>& runs, const std::vector<Result>& results,
                const std::vector<std::string>& metrics);
std::string csv_field(const std::string& s);  // quoted when it holds a comma, quote or newline

// A word as a POSIX shell would need it ('...' when it has anything but [A-Za-z0-9_./=:,+@%-]).
std::string shell_quote(const std::string& s);

// --plot X:Y[:SERIES] -> {X, Y, SERIES}; names may be given with or without a leading '@'.
struct PlotSpec {
  std::string x, y, series;
};
PlotSpec parse_plot(const std::string& text);

}  // namespace lpu::tools::sweep
