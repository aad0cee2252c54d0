// lpu sweep: run a command over a grid of parameters, in parallel, and collect statistics into
// a CSV and plots. The grid, the commands and the CSV are in sweep.cpp; docs/sweep.md.
#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "commands.hpp"
#include "lpu/common/errors.hpp"
#include "sweep.hpp"

extern char** environ;

#ifndef LPU_SWEEP_PLOT_SCRIPT
#define LPU_SWEEP_PLOT_SCRIPT "tools/scripts/sweep_plot.py"
#endif

namespace lpu::tools {

namespace {

using Clock = std::chrono::steady_clock;

std::string self_exe() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) throw Error("cannot find the lpu executable (/proc/self/exe)");
  return p.string();
}

std::string read_text(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string last_line(const std::string& path) {
  std::string text = read_text(path), line, last;
  std::stringstream ss(text);
  while (std::getline(ss, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    // A progress line ends in "\r"; keep what follows the last carriage return.
    if (auto cr = line.rfind('\r'); cr != std::string::npos) line = line.substr(cr + 1);
    if (line.find_first_not_of(" \t") != std::string::npos) last = line;
  }
  return last;
}

// Starts argv with stdin from /dev/null and stdout/stderr to files (empty: inherited).
pid_t spawn(const std::vector<std::string>& argv, const std::string& out, const std::string& err) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  if (!out.empty()) posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (!err.empty()) posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int rc = argv[0].find('/') != std::string::npos
                     ? posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ)
                     : posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw Error(fmt::format("cannot start '{}': {}", argv[0], std::strerror(rc)));
  return pid;
}

std::string command_line(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) s += (s.empty() ? "" : " ") + sweep::shell_quote(a);
  return s;
}

std::string file_safe(const std::string& s) {
  std::string o;
  for (char c : s) o += std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' ? c : '_';
  return o;
}

}  // namespace

void add_sweep(CLI::App& app, std::vector<std::pair<CLI::App*, Action>>& out) {
  struct Opts {
    std::vector<std::string> sets, metrics, plots, command;
    std::string out_dir = "sweep", plot_format = "png";
    int jobs = 1;
    bool fail_fast = false, dry_run = false, stdout_json = false, quiet = false, logx = false, logy = false;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand(
      "sweep", "run an lpu command over a grid of parameters; collect its statistics into a CSV and plots");
  sub->footer(
      "Examples (docs/sweep.md):\n"
      "  lpu sweep --set latency.mem_read=5,7,9 -- run s.lpo --timing-only\n"
      "  lpu sweep --set rack.links.latency_cycles=100:400:100 --plot links.latency_cycles:rack.cycles \\\n"
      "      -- run --rack configs/pair.toml --program examples/rack/pingpong.toml --timing-only\n"
      "  lpu sweep --set @chips=64,128 --set latency.c2c_send=4,8 -- gen decoder --model llama-3-8b --chips {chips} ...\n"
      "KEY: a preset key (--set KEY=v; on a --rack command every chip's [chip] set), rack.KEY (a key of the\n"
      "rack file: a copy DIR/run_N.rack.toml replaces --rack FILE), or @NAME ({NAME} in the command's words;\n"
      "{run} and {out} are built in). Values: v1,v2,... and FIRST:LAST:STEP ranges; \\, is a comma.");
  sub->add_option("--set", o->sets, "KEY=v1,v2,...: a swept parameter (repeatable; the grid is every combination)")
      ->required();
  sub->add_option("--out", o->out_dir, "directory for run_N.json/.out/.err, sweep.csv, commands.sh and plots")
      ->capture_default_str();
  sub->add_option("--metric", o->metrics,
                  "a CSV column: a flattened statistics key (cycles, rack.link_bytes, energy.total_j) or "
                  "sum|min|max|avg|count(chips.*.KEY); +KEY adds to the defaults (repeatable)");
  sub->add_option("--plot", o->plots, "X:Y[:SERIES]: plot column Y against X, one line per SERIES value (repeatable)");
  sub->add_option("--plot-format", o->plot_format, "png or svg")->check(CLI::IsMember({"png", "svg"}))->capture_default_str();
  sub->add_flag("--plot-logx", o->logx, "logarithmic X axes");
  sub->add_flag("--plot-logy", o->logy, "logarithmic Y axes");
  sub->add_option("-j,--jobs", o->jobs, "runs at once (0: the host's cores)")->capture_default_str();
  sub->add_flag("--fail-fast", o->fail_fast, "stop at the first failed run (cancel the running ones)");
  sub->add_flag("--dry-run", o->dry_run, "print the runs' commands, run nothing");
  sub->add_flag("--stdout-json", o->stdout_json,
                "the command prints its statistics as JSON (lpu info --json, capacity --json): no --stats is added");
  sub->add_flag("-q,--quiet", o->quiet, "print only failures and the summary");
  // Everything after "--" is the command (--set takes several values, so the "--" is needed).
  sub->add_option("command", o->command, "after --: the command, an lpu subcommand (run ...) or a program")->required();
  sub->positionals_at_end();
  CLI::App* parent = &app;
  out.emplace_back(sub, [o, parent]() {
    std::vector<sweep::Param> params;
    for (const auto& s : o->sets) params.push_back(sweep::parse_param(s));
    std::vector<std::string> metrics;
    bool defaults = o->metrics.empty();
    for (const auto& m : o->metrics) {
      const std::string k = m.rfind('+', 0) == 0 ? m.substr(1) : m;
      defaults = defaults || k != m;
      sweep::check_metric(k);
      metrics.push_back(k);
    }
    std::vector<sweep::PlotSpec> plots;
    for (const auto& p : o->plots) plots.push_back(sweep::parse_plot(p));
    sweep::PlanOptions po;
    po.command = o->command;
    po.out_dir = o->out_dir;
    po.stdout_json = o->stdout_json;
    // An lpu subcommand (or "lpu ...") runs this executable.
    std::set<std::string> subs;
    for (auto* s : parent->get_subcommands([](CLI::App*) { return true; })) subs.insert(s->get_name());
    if (po.command[0] == "lpu") po.command.erase(po.command.begin());
    if (po.command.empty()) throw Error("no command after 'lpu'");
    if (po.command[0] == "sweep") throw Error("a sweep of a sweep: put every --set in one sweep");
    if (subs.count(po.command[0])) po.command.insert(po.command.begin(), self_exe());
    auto runs = sweep::plan(params, po);
    if (o->dry_run) {
      for (const auto& r : runs) {
        fmt::print("# run {}: {}\n", r.index, r.label);
        if (!r.rack_path.empty())
          fmt::print("#   {} = {} with {}\n", r.rack_path, r.rack_source, fmt::join(r.rack_sets, ", "));
        fmt::print("{}\n", command_line(r.argv));
      }
      return 0;
    }
    std::filesystem::create_directories(o->out_dir);
    {
      std::ofstream sh(std::filesystem::path(o->out_dir) / "commands.sh");
      sh << "#!/bin/sh\n# The runs of an lpu sweep (rack files derived for a run are in this directory).\n";
      for (const auto& r : runs)
        sh << fmt::format("# run {}: {}\n{} > {} 2> {}\n", r.index, r.label, command_line(r.argv),
                          sweep::shell_quote(r.out_path), sweep::shell_quote(r.err_path));
    }
    const int jobs = o->jobs > 0 ? o->jobs : int(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)));
    const std::size_t n = runs.size();
    std::vector<sweep::Result> results(n);
    std::map<pid_t, std::size_t> running;
    std::vector<Clock::time_point> started(n);
    std::set<pid_t> killed;
    std::size_t next = 0, finished = 0;
    bool stop = false;
    const auto width = std::to_string(n).size();
    // The figure printed per run: the first chosen metric, else tokens/s per user, tokens/s or
    // cycles, wherever they are in the statistics.
    auto headline = [&](std::size_t i) -> std::string {
      const auto& f = results[i].flat;
      for (const auto& m : metrics)
        if (auto v = sweep::evaluate(m, f)) return fmt::format("  {}={}", m, v->dump());
      for (const char* want : {"tokens_per_s_per_user", "tokens_per_s", "cycles"})
        for (const auto& [k, v] : f)
          if (v.is_number() && (k == want || k.ends_with(std::string(".") + want)) && k.find(".0.") == std::string::npos &&
              k.rfind("chips.", 0) != 0 && k.rfind("host.", 0) != 0)
            return fmt::format("  {}={}", k, v.dump());
      return "";
    };
    auto report = [&](std::size_t i) {
      ++finished;
      const auto& r = results[i];
      const std::string where = fmt::format("[{:>{}}/{}] run {}", finished, width, n, i);
      if (r.status == "ok") {
        if (!o->quiet) fmt::print("{} ok {:7.2f} s  {}{}\n", where, r.wall_s, runs[i].label, headline(i));
      } else {
        fmt::print(stderr, "{} {}: {}: {}{}\n", where, r.status, runs[i].label, r.message,
                   r.status == "failed" ? fmt::format(" ({})", runs[i].err_path) : "");
      }
      std::fflush(stdout);
    };
    auto cancel_all = [&]() {
      stop = true;
      for (const auto& [pid, i] : running) {
        kill(pid, SIGTERM);  // only the runs this sweep started, by their process id
        killed.insert(pid);
      }
    };
    while (next < n || !running.empty()) {
      while (!stop && next < n && int(running.size()) < jobs) {
        const std::size_t i = next++;
        auto& r = runs[i];
        started[i] = Clock::now();
        try {
          if (!r.rack_path.empty()) sweep::write_rack(r);
          std::filesystem::remove(r.stats_path);
          running[spawn(r.argv, r.out_path, r.err_path)] = i;
        } catch (const Error& e) {
          results[i].status = "error";
          results[i].message = e.what();
          report(i);
          if (o->fail_fast) cancel_all();
        }
      }
      if (running.empty()) break;
      int st = 0;
      const pid_t pid = waitpid(-1, &st, 0);
      if (pid < 0) {
        if (errno == EINTR) continue;
        throw Error(fmt::format("waitpid: {}", std::strerror(errno)));
      }
      auto it = running.find(pid);
      if (it == running.end()) continue;
      const std::size_t i = it->second;
      running.erase(it);
      auto& res = results[i];
      res.wall_s = std::chrono::duration<double>(Clock::now() - started[i]).count();
      if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        const std::string src = o->stdout_json ? runs[i].out_path : runs[i].stats_path;
        try {
          std::ifstream f(src);
          if (!f) throw Error(fmt::format("the command wrote no statistics to {}", src));
          res.flat = sweep::flatten(nlohmann::json::parse(f));
          res.status = "ok";
        } catch (const std::exception& e) {
          res.status = "error";
          res.message = fmt::format("{}: {}", src, e.what());
        }
      } else if (killed.count(pid)) {
        res.status = "cancelled";
        res.message = "cancelled (--fail-fast)";
      } else {
        res.status = "failed";
        res.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        const std::string why = last_line(runs[i].err_path);
        res.message = WIFEXITED(st) ? fmt::format("exit {}{}{}", res.exit_code, why.empty() ? "" : ": ", why)
                                    : fmt::format("killed by signal {}", WTERMSIG(st));
      }
      report(i);
      if (res.status != "ok" && res.status != "cancelled" && o->fail_fast && !stop) cancel_all();
    }
    std::vector<const sweep::Flat*> ok;
    std::map<std::string, int> counts;
    for (const auto& r : results) {
      ++counts[r.status];
      if (r.status == "ok") ok.push_back(&r.flat);
    }
    if (defaults) {
      auto d = sweep::default_metrics(ok);
      for (const auto& m : metrics)
        if (std::find(d.begin(), d.end(), m) == d.end()) d.push_back(m);
      metrics = d;
    }
    const auto csv_path = (std::filesystem::path(o->out_dir) / "sweep.csv").string();
    {
      std::ofstream f(csv_path);
      if (!f) throw Error(fmt::format("cannot write {}", csv_path));
      f << sweep::csv(params, runs, results, metrics);
    }
    std::string summary;
    for (const auto& [k, v] : counts) summary += fmt::format("{}{} {}", summary.empty() ? "" : ", ", v, k);
    fmt::print("{} runs: {}; {}\n", n, summary, csv_path);
    bool plot_failed = false;
    if (!plots.empty() && !ok.empty()) {
      const auto cols = sweep::csv_columns(params, metrics);
      const char* env = std::getenv("LPU_SWEEP_PLOT");
      const std::string script = env ? env : LPU_SWEEP_PLOT_SCRIPT;
      const std::string python = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
      for (const auto& p : plots) {
        std::string missing;
        for (const auto* c : {&p.x, &p.y, &p.series})
          if (!c->empty() && std::find(cols.begin(), cols.end(), *c) == cols.end() && missing.empty()) missing = *c;
        if (!missing.empty()) {
          fmt::print(stderr, "lpu sweep: --plot {}:{}: no column '{}' in {} (columns: {})\n", p.x, p.y, missing, csv_path,
                     fmt::join(cols, ", "));
          plot_failed = true;
          continue;
        }
        const auto file = (std::filesystem::path(o->out_dir) /
                           fmt::format("plot_{}_vs_{}{}.{}", file_safe(p.y), file_safe(p.x),
                                       p.series.empty() ? "" : "_by_" + file_safe(p.series), o->plot_format))
                              .string();
        std::vector<std::string> argv{python, script, "--csv", csv_path, "--x", p.x, "--y", p.y, "--out", file};
        if (!p.series.empty()) argv.insert(argv.end(), {"--series", p.series});
        for (const auto& q : params) argv.insert(argv.end(), {"--param", q.column});
        if (o->logx) argv.push_back("--logx");
        if (o->logy) argv.push_back("--logy");
        int st = 0;
        const pid_t pid = spawn(argv, "", "");
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
        }
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
          fmt::print("plot: {}\n", file);
        } else {
          plot_failed = true;
          fmt::print(stderr, "lpu sweep: the plot {}:{} failed ({} {})\n", p.x, p.y, python, script);
        }
      }
    }
    return counts["ok"] == int(n) && !plot_failed ? 0 : 1;
  });
}

}  // namespace lpu::tools
