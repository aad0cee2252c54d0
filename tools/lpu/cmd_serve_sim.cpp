// lpu serve-sim: the request-level serving simulator (lpu_serving, docs/serving.md) on a serving
// system file: GPU prefill, KV transfer, continuous-batching decode on GPUs alone or with the FFN
// on an emulated LPX rack (attention-FFN disaggregation); latency percentiles, throughput,
// goodput, tokens/s per user and per MW, $ per million tokens; --sweep-batch for the Pareto curve.
#include <fmt/format.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "commands.hpp"
#include "lpu/common/errors.hpp"
#include "lpu/common/parse.hpp"
#include "lpu/compiler/model_shape.hpp"
#include "lpu/serving/requests.hpp"
#include "lpu/serving/serve_sim.hpp"
#include "lpu/serving/serving_system.hpp"

#ifndef LPU_SWEEP_PLOT_SCRIPT
#define LPU_SWEEP_PLOT_SCRIPT "tools/scripts/sweep_plot.py"
#endif

extern char** environ;

namespace lpu::tools {

namespace {

struct Opts {
  std::string system, model, workload, csv, cache, sweep, prompt = "1024", output = "256";
  int requests = 200, threads = 1, max_batch = 0, prefill_instances = 0;
  std::uint64_t seed = 1;
  bool json = false, quiet = false;
};

// Runs argv; true when it exits with 0. Its output goes to ours.
bool run_program(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (posix_spawnp(&pid, argv[0], nullptr, nullptr, argv.data(), environ) != 0) return false;
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

std::vector<serving::Request> make_requests(const Opts& o) {
  if (o.workload.rfind("poisson:", 0) == 0) {
    serving::PoissonWorkload w;
    w.rate = parse_double(o.workload.substr(8), "--workload poisson:RATE", 0, 1e9);
    if (!(w.rate > 0)) throw ConfigError("--workload", "poisson:RATE needs a positive rate (requests per second)");
    w.requests = o.requests;
    w.seed = o.seed;
    w.prompt = serving::parse_length(o.prompt, "--prompt-tokens");
    w.output = serving::parse_length(o.output, "--output-tokens");
    return serving::poisson_requests(w);
  }
  if (o.workload.ends_with(".csv")) return serving::load_trace(o.workload);
  throw ConfigError("--workload", fmt::format("'{}': expected poisson:RATE or a trace FILE.csv", o.workload));
}

std::string workload_text(const Opts& o, const std::vector<serving::Request>& reqs) {
  if (o.workload.rfind("poisson:", 0) == 0)
    return fmt::format("{} requests, Poisson at {}/s, prompt {} tokens, output {} tokens, seed {}", reqs.size(), o.workload.substr(8),
                       o.prompt, o.output, o.seed);
  return fmt::format("{} requests from {}", reqs.size(), o.workload);
}

nlohmann::json pct_json(const serving::Percentiles& p) {
  return {{"p50", p.p50}, {"p90", p.p90}, {"p99", p.p99}, {"mean", p.mean}};
}

nlohmann::json metrics_json(const serving::Metrics& m, const serving::SimStats& s) {
  return {{"requests", m.requests},
          {"ttft_s", pct_json(m.ttft)},
          {"tpot_s", pct_json(m.tpot)},
          {"e2e_s", pct_json(m.e2e)},
          {"output_tokens", m.output_tokens},
          {"prompt_tokens", m.prompt_tokens},
          {"makespan_s", m.makespan},
          {"throughput_tokens_per_s", m.throughput},
          {"goodput_tokens_per_s", m.goodput},
          {"slo_met_fraction", m.slo_met_fraction},
          {"tokens_per_s_per_user", m.tokens_per_s_per_user},
          {"gpu_watts", m.gpu_watts},
          {"lpx_watts", m.lpx_watts},
          {"watts", m.watts},
          {"tokens_per_s_per_mw", m.tokens_per_s_per_mw},
          {"decode_watts", m.decode_watts},
          {"decode_tokens_per_s_per_mw", m.decode_tokens_per_s_per_mw},
          {"capex_usd_per_hour", m.capex_usd_per_s * 3600},
          {"energy_usd_per_hour", m.energy_usd_per_s * 3600},
          {"usd_per_million_tokens", m.usd_per_million_tokens},
          {"decode_steps", s.steps},
          {"mean_batch", s.mean_batch()},
          {"max_batch_seen", s.max_batch_seen},
          {"max_micro_batches", s.max_micro_batches},
          {"lpx_dynamic_j", s.lpx_dynamic_j}};
}

// Progress on stderr, at most twice a second, for runs long enough to need it.
class Progress {
 public:
  explicit Progress(bool on) : on_(on), t0_(std::chrono::steady_clock::now()), last_(t0_) {}
  ~Progress() {
    if (shown_) std::cerr << "\n";
  }
  void operator()(int done, int total, double now, int batch) {
    if (!on_) return;
    const auto t = std::chrono::steady_clock::now();
    if (done != total && t - last_ < std::chrono::milliseconds(500)) return;
    if (!shown_ && t - t0_ < std::chrono::seconds(1)) return;
    last_ = t;
    shown_ = true;
    std::cerr << fmt::format("\rserve-sim: {}/{} requests done, {:.2f} s simulated, batch {}   ", done, total, now, batch) << std::flush;
  }
  void line(const std::string& s) {
    if (!on_) return;
    if (shown_) std::cerr << "\n";
    shown_ = false;
    std::cerr << "serve-sim: " << s << "\n";
  }

 private:
  bool on_;
  bool shown_ = false;
  std::chrono::steady_clock::time_point t0_, last_;
};

struct RunOut {
  serving::SimResult result;
  serving::Metrics metrics;
  serving::Deployment dep;
};

RunOut run_once(const serving::ServingSystem& sys, const compiler::ModelShape& m, const Opts& o,
                const std::vector<serving::Request>& reqs, serving::LpxFfnCache* cache, Progress& prog) {
  serving::DeployOptions d;
  d.cache = o.cache;
  d.threads = o.threads;
  d.lpx_cache = cache;
  d.log = [&prog](const std::string& s) { prog.line(s); };
  RunOut r{{}, {}, serving::deploy(sys, m, o.model, d)};
  r.result = serving::simulate(reqs, r.dep.sim, *r.dep.prefill, *r.dep.step,
                               [&prog](int done, int total, double now, int batch) { prog(done, total, now, batch); });
  r.metrics = serving::summarize(r.result, r.dep.cost);
  return r;
}

std::string mode_text(const serving::ServingSystem& s) {
  if (s.mode == serving::ServingMode::Gpu) return fmt::format("GPU only, {}", s.gpu.name);
  return fmt::format("AFD: attention on {} GPUs, FFN on the emulated LPX rack {} ({}, {}), link {:.0f} GB/s + {:.1f} us",
                     s.gpu.name, s.lpx_rack, s.lpx_partition, s.lpx_dtype, s.link_bandwidth / 1e9, s.link_latency * 1e6);
}

void print_run(const serving::ServingSystem& s, const compiler::ModelShape& m, const Opts& o,
               const std::vector<serving::Request>& reqs, const RunOut& r) {
  const auto& x = r.metrics;
  const auto& d = r.dep;
  fmt::print("{} on {} ({}); {}\n", m.name, s.name, mode_text(s), workload_text(o, reqs));
  fmt::print("  prefill: {} instance(s) of {} GPUs, chunks of {} tokens; KV transfer {:.0f} GB/s + {:.0f} us\n", s.prefill_instances,
             s.prefill_gpus, s.chunk_tokens, s.kv_bandwidth / 1e9, s.kv_latency * 1e6);
  fmt::print("  decode: {} instance(s) of {} GPUs, max batch {}; weights {:.1f} GB per GPU, KV cache {:.0f} GB per instance "
             "({:.1f} KB per position{})\n",
             s.decode_instances, s.decode_gpus, d.sim.max_batch, d.weight_bytes_per_decode_gpu / 1e9, d.sim.kv_capacity_bytes / 1e9,
             d.sim.kv_bytes_per_token / 1e3, d.kv_replication > 1 ? fmt::format(", {:g} copies", d.kv_replication) : "");
  auto row = [](const char* what, const serving::Percentiles& p) {
    fmt::print("  {:<5} p50 {:>9.2f} ms  p90 {:>9.2f} ms  p99 {:>9.2f} ms  (mean {:.2f} ms)\n", what, p.p50 * 1e3, p.p90 * 1e3,
               p.p99 * 1e3, p.mean * 1e3);
  };
  row("TTFT", x.ttft);
  row("TPOT", x.tpot);
  row("E2E", x.e2e);
  fmt::print("  throughput {:.1f} output tokens/s over {:.2f} s; goodput {:.1f} tokens/s ({:.1f}% of requests within TTFT {:g} ms and "
             "TPOT {:g} ms)\n",
             x.throughput, x.makespan, x.goodput, 100 * x.slo_met_fraction, s.slo_ttft * 1e3, s.slo_tpot * 1e3);
  fmt::print("  {:.1f} tokens/s per user while decoding; mean batch {:.1f} (max {}), {} decode steps\n", x.tokens_per_s_per_user,
             x.mean_batch, r.result.stats.max_batch_seen, r.result.stats.steps);
  fmt::print("  power {:.1f} kW (GPUs {:.1f} kW{}); {:.0f} tokens/s per MW; decode side alone {:.1f} kW, {:.0f} tokens/s per MW\n",
             x.watts / 1e3, x.gpu_watts / 1e3,
             s.mode == serving::ServingMode::Afd ? fmt::format(" + LPX {:.1f} kW{}", x.lpx_watts / 1e3,
                                                               s.lpx_rack_watts > 0 ? " stated" : " emulated, chips only")
                                                 : "",
             x.tokens_per_s_per_mw, x.decode_watts / 1e3, x.decode_tokens_per_s_per_mw);
  fmt::print("  ${:.2f} per million output tokens (capex ${:.0f}/h over {:g} years, energy ${:.2f}/h at ${:g}/kWh, PUE {:g})\n",
             x.usd_per_million_tokens, x.capex_usd_per_s * 3600, s.depreciation_years, x.energy_usd_per_s * 3600, s.power_price_per_kwh,
             s.pue);
  if (d.afd) {
    const int b = std::max(1, int(x.mean_batch + 0.5));
    const int ctx = int(x.prompt_tokens / std::max(1, x.requests) + x.output_tokens / std::max(1, x.requests) / 2);
    const auto k = d.afd->breakdown(b, ctx);
    fmt::print("  AFD step at batch {} (context {}): {} micro-batch(es) of {} (LPX programs for {}); per layer attention {:.1f} us, "
               "FFN {:.1f} us, link {:.1f} us each way; once per step {:.1f} us; step {:.3f} ms\n",
               b, ctx, k.micro_batches, k.micro_batch, k.lpx_batch, k.t_attn * 1e6, k.t_ffn * 1e6, k.t_comm * 1e6, k.t_other * 1e6,
               k.step * 1e3);
  }
}

void write_requests_csv(const std::string& path, const serving::SimResult& r) {
  std::ofstream f(path);
  if (!f) throw Error(fmt::format("cannot write {}", path));
  f << "id,arrival_s,prompt_tokens,output_tokens,prefill_start_s,first_token_s,kv_ready_s,decode_admit_s,finish_s,ttft_s,tpot_s,e2e_s,"
       "decode_instance\n";
  for (const auto& q : r.requests)
    f << fmt::format("{},{:.9g},{},{},{:.9g},{:.9g},{:.9g},{:.9g},{:.9g},{:.9g},{:.9g},{:.9g},{}\n", q.req.id, q.req.arrival_s,
                     q.req.prompt_tokens, q.req.output_tokens, q.prefill_start, q.first_token, q.kv_ready, q.decode_admit, q.finish,
                     q.ttft(), q.tpot(), q.e2e(), q.decode_instance);
}

int sweep(serving::ServingSystem sys, const compiler::ModelShape& m, const Opts& o, const std::vector<serving::Request>& reqs,
          Progress& prog) {
  std::vector<int> batches;
  {
    std::stringstream ss(o.sweep);
    std::string item;
    while (std::getline(ss, item, ','))
      batches.push_back(int(parse_int(item, "--sweep-batch", IntRange{1, 1 << 20})));
  }
  if (batches.empty()) throw ConfigError("--sweep-batch", "a comma-separated list of maximum batches");
  // One cache for every point (the file's, or --cache).
  std::unique_ptr<serving::LpxTimingSource> src;
  std::unique_ptr<serving::LpxFfnCache> cache;
  if (sys.mode == serving::ServingMode::Afd) {
    src = serving::emulator_lpx_source(o.threads, [&prog](const std::string& s) { prog.line(s); });
    cache = std::make_unique<serving::LpxFfnCache>(o.cache.empty() ? sys.lpx_cache : o.cache, *src);
  }
  struct Point {
    int batch;
    bool ok;
    std::string error;
    serving::Metrics m;
  };
  std::vector<Point> pts;
  for (int b : batches) {
    sys.max_batch = b;
    prog.line(fmt::format("max batch {}", b));
    try {
      auto r = run_once(sys, m, o, reqs, cache.get(), prog);
      pts.push_back({b, true, "", r.metrics});
    } catch (const Error& e) {
      pts.push_back({b, false, e.what(), {}});
      prog.line(fmt::format("max batch {}: {}", b, e.what()));
    }
  }
  // Pareto: a point is on the front when no other has both more tokens/s per user and more per MW.
  auto on_front = [&](const Point& p) {
    if (!p.ok) return false;
    for (const auto& q : pts)
      if (q.ok && &q != &p && q.m.tokens_per_s_per_user >= p.m.tokens_per_s_per_user && q.m.tokens_per_s_per_mw >= p.m.tokens_per_s_per_mw &&
          (q.m.tokens_per_s_per_user > p.m.tokens_per_s_per_user || q.m.tokens_per_s_per_mw > p.m.tokens_per_s_per_mw))
        return false;
    return true;
  };
  std::ostringstream csv;
  csv << "system,model,max_batch,status,tokens_per_s_per_user,tokens_per_s_per_mw,decode_tokens_per_s_per_mw,throughput_tokens_per_s,"
         "mean_batch,ttft_p50_s,tpot_p50_s,tpot_p99_s,goodput_tokens_per_s,watts,decode_watts,usd_per_million_tokens,pareto,error\n";
  for (const auto& p : pts) {
    if (p.ok)
      csv << fmt::format("{},{},{},ok,{:.6g},{:.6g},{:.6g},{:.6g},{:.4g},{:.6g},{:.6g},{:.6g},{:.6g},{:.6g},{:.6g},{:.6g},{},\n", sys.name,
                         m.name, p.batch, p.m.tokens_per_s_per_user, p.m.tokens_per_s_per_mw, p.m.decode_tokens_per_s_per_mw,
                         p.m.throughput, p.m.mean_batch, p.m.ttft.p50, p.m.tpot.p50, p.m.tpot.p99, p.m.goodput, p.m.watts, p.m.decode_watts,
                         p.m.usd_per_million_tokens, on_front(p) ? 1 : 0);
    else {
      std::string err = p.error;
      for (auto& c : err)
        if (c == ',' || c == '\n' || c == '"') c = ';';
      csv << fmt::format("{},{},{},error,,,,,,,,,,,,,0,{}\n", sys.name, m.name, p.batch, err);
    }
  }
  if (o.json) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& p : pts) {
      nlohmann::json e{{"max_batch", p.batch}, {"status", p.ok ? "ok" : "error"}, {"pareto", on_front(p)}};
      if (p.ok) e["metrics"] = metrics_json(p.m, {});
      else e["error"] = p.error;
      j.push_back(e);
    }
    std::cout << nlohmann::json{{"system", sys.name}, {"model", m.name}, {"points", j}}.dump(2) << "\n";
  } else {
    fmt::print("{} on {} ({}); {}\n", m.name, sys.name, mode_text(sys), workload_text(o, reqs));
    fmt::print("  {:>9} {:>11} {:>10} {:>15} {:>9} {:>10} {:>10} {:>10} {:>9}  {}\n", "max batch", "tok/s/user", "tok/s/MW",
               "decode tok/s/MW", "tok/s", "mean batch", "TPOT p50", "TTFT p50", "$/M tok", "Pareto");
    for (const auto& p : pts) {
      if (!p.ok) {
        fmt::print("  {:>9} error: {}\n", p.batch, p.error);
        continue;
      }
      fmt::print("  {:>9} {:>11.1f} {:>10.0f} {:>15.0f} {:>9.0f} {:>10.1f} {:>8.1f}ms {:>8.0f}ms {:>9.3f}  {}\n", p.batch,
                 p.m.tokens_per_s_per_user, p.m.tokens_per_s_per_mw, p.m.decode_tokens_per_s_per_mw, p.m.throughput, p.m.mean_batch,
                 p.m.tpot.p50 * 1e3, p.m.ttft.p50 * 1e3, p.m.usd_per_million_tokens, on_front(p) ? "*" : "");
    }
  }
  if (!o.csv.empty()) {
    {
      std::ofstream f(o.csv);
      if (!f) throw Error(fmt::format("cannot write {}", o.csv));
      f << csv.str();
    }
    if (!o.json) fmt::print("CSV: {}\n", o.csv);
    // The plot (tokens/s per MW against tokens/s per user) when python3 has matplotlib; else the CSV alone.
    if (run_program({"python3", "-c", "import importlib.util, sys; sys.exit(importlib.util.find_spec('matplotlib') is None)"})) {
      const auto png = (o.csv.ends_with(".csv") ? o.csv.substr(0, o.csv.size() - 4) : o.csv) + ".png";
      const bool ok = run_program({"python3", LPU_SWEEP_PLOT_SCRIPT, "--csv", o.csv, "--x", "tokens_per_s_per_user", "--y",
                                   "tokens_per_s_per_mw", "--series", "system", "--logx", "--logy", "--title",
                                   fmt::format("{} on {}: tokens/s per MW vs tokens/s per user", m.name, sys.name), "--out", png});
      if (!o.json) fmt::print("{}: {}\n", ok ? "plot" : "plot failed", png);
    } else if (!o.json) {
      fmt::print("no plot: python3 with matplotlib not found (the CSV has the points; tools/scripts/sweep_plot.py plots them)\n");
    }
  } else if (!o.json) {
    fmt::print("(--csv FILE writes the points)\n");
  }
  for (const auto& p : pts)
    if (!p.ok) return 1;
  return 0;
}

}  // namespace

void add_serve_sim(CLI::App& app, std::vector<std::pair<CLI::App*, Action>>& out) {
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand(
      "serve-sim",
      "request-level serving simulation (docs/serving.md): GPU prefill, KV transfer, continuous-batching decode on GPUs alone or with "
      "every layer's FFN on an emulated LPX rack (attention-FFN disaggregation); TTFT, TPOT and end-to-end latency percentiles, "
      "throughput, goodput, tokens/s per user and per MW, $ per million tokens");
  sub->add_option("--system", o->system,
                  "serving system: a name in configs/serving (gb200-nvl72, rubin-nvl72, rubin-lpx-afd) or a .toml path")
      ->required();
  sub->add_option("--model", o->model, "model shape: a name in configs/models or a .toml path")->required();
  sub->add_option("--workload", o->workload,
                  "poisson:RATE (requests per second, with --requests, --seed, --prompt-tokens, --output-tokens) or a trace "
                  "FILE.csv (arrival_s,prompt_tokens,output_tokens; examples/serving/trace.csv)")
      ->required();
  sub->add_option("--requests", o->requests, "Poisson: requests to simulate")->capture_default_str();
  sub->add_option("--seed", o->seed, "Poisson: seed of arrivals and lengths")->capture_default_str();
  sub->add_option("--prompt-tokens", o->prompt, "Poisson: prompt tokens, N or uniform LO-HI")->capture_default_str();
  sub->add_option("--output-tokens", o->output, "Poisson: output tokens, N or uniform LO-HI")->capture_default_str();
  sub->add_option("--max-batch", o->max_batch, "override the system's decode.max_batch");
  sub->add_option("--prefill-instances", o->prefill_instances, "override the system's prefill.instances");
  sub->add_option("--cache", o->cache, "LPX timing cache (JSON; default: the system's lpx.cache)");
  sub->add_option("--threads", o->threads, "host threads of the rack engine when the LPX side is emulated")->capture_default_str();
  sub->add_option("--sweep-batch", o->sweep,
                  "maximum batches to run, e.g. 1,2,4,8: one simulation each, the Pareto points (tokens/s per MW against tokens/s "
                  "per user); with --csv a CSV and, when python3 has matplotlib, a plot next to it");
  sub->add_option("--csv", o->csv, "write a CSV: one row per request, or per point with --sweep-batch");
  sub->add_flag("--json", o->json, "machine-readable output (SI units)");
  sub->add_flag("--quiet", o->quiet, "no progress line on stderr");
  out.emplace_back(sub, [o]() {
    auto sys = serving::load_serving_system(o->system);
    if (o->max_batch < 0) throw ConfigError("--max-batch", "must be positive");
    if (o->max_batch > 0) sys.max_batch = o->max_batch;
    if (o->prefill_instances < 0) throw ConfigError("--prefill-instances", "must be positive");
    if (o->prefill_instances > 0) sys.prefill_instances = o->prefill_instances;
    if (o->threads < 1) throw ConfigError("--threads", "at least one");
    const auto m = compiler::load_model(o->model);
    const auto reqs = make_requests(*o);
    Progress prog(!o->quiet);
    if (!o->sweep.empty()) return sweep(sys, m, *o, reqs, prog);
    auto r = run_once(sys, m, *o, reqs, nullptr, prog);
    if (!o->csv.empty()) write_requests_csv(o->csv, r.result);
    if (o->json) {
      nlohmann::json j{{"system", sys.name},
                       {"mode", sys.mode == serving::ServingMode::Afd ? "afd" : "gpu"},
                       {"model", m.name},
                       {"workload", workload_text(*o, reqs)},
                       {"max_batch", sys.max_batch},
                       {"kv_capacity_bytes", r.dep.sim.kv_capacity_bytes},
                       {"kv_bytes_per_token", r.dep.sim.kv_bytes_per_token},
                       {"weight_bytes_per_decode_gpu", r.dep.weight_bytes_per_decode_gpu},
                       {"metrics", metrics_json(r.metrics, r.result.stats)}};
      if (r.dep.lpx_cache)
        j["lpx_cache"] = {{"path", r.dep.lpx_cache->path()},
                          {"entries", r.dep.lpx_cache->size()},
                          {"hits", r.dep.lpx_cache->hits()},
                          {"emulated", r.dep.lpx_cache->misses()}};
      std::cout << j.dump(2) << "\n";
    } else {
      print_run(sys, m, *o, reqs, r);
      if (r.dep.lpx_cache)
        fmt::print("  LPX timing cache {}: {} entries, {} lookups answered, {} emulated\n",
                   r.dep.lpx_cache->path().empty() ? "(in memory)" : r.dep.lpx_cache->path(), r.dep.lpx_cache->size(),
                   r.dep.lpx_cache->hits(), r.dep.lpx_cache->misses());
      if (!o->csv.empty()) fmt::print("  per-request CSV: {}\n", o->csv);
    }
    return 0;
  });
}

}  // namespace lpu::tools
