#pragma once
// The request-level serving simulator (docs/serving.md): a deterministic discrete-event
// simulation of requests through a GPU prefill pool (chunked prefill), a KV-cache transfer, and
// decode instances with continuous batching and admission under a KV-cache memory limit. What a
// prefill chunk and a decode step cost comes from the models of step_model.hpp (the GPU model,
// the AFD loop with the emulated LPX, or constants in tests); the metrics are latency
// percentiles, throughput, goodput, tokens/s per user and per MW, and $ per million tokens.
//
// Contract: times in seconds from the trace's clock, sizes in bytes. The same requests, config
// and models give the same result, event for event (ties are broken by the order events were
// scheduled in).
#include <functional>
#include <vector>

#include "lpu/serving/requests.hpp"
#include "lpu/serving/step_model.hpp"

namespace lpu::serving {

struct SimConfig {
  int prefill_instances = 1;
  int chunk_tokens = 8192;     // prompt tokens one prefill iteration of an instance takes (its own unfinished prompts first)
  int decode_instances = 1;
  int max_batch = 64;          // users one decode step serves at most
  // KV cache on a decode instance: bytes it holds per cached position of one request (replicas
  // included) and its capacity (0: unlimited). A request is admitted when its prompt + output
  // positions fit: the simulator knows the output length, so nothing is ever preempted.
  double kv_bytes_per_token = 0;
  double kv_capacity_bytes = 0;
  // Prefill -> decode transfer of a prompt's KV cache: latency + prompt x bytes_per_token /
  // bandwidth (bandwidth 0: instant). Transfers do not contend.
  double kv_transfer_bytes_per_token = 0;
  double kv_transfer_bandwidth = 0, kv_transfer_latency = 0;
};

struct RequestResult {
  Request req;
  double prefill_start = 0;  // its first chunk starts
  double first_token = 0;    // its prefill ends: the first output token
  double kv_ready = 0;       // its KV cache is on the decode side
  double decode_admit = 0;   // admitted to a decode batch (= first_token when output_tokens == 1)
  double finish = 0;         // its last token
  int decode_instance = -1;
  double ttft() const { return first_token - req.arrival_s; }
  double e2e() const { return finish - req.arrival_s; }
  // Time per output token after the first: (finish - first_token) / (output_tokens - 1); 0 for a
  // single-token request (which has none).
  double tpot() const { return req.output_tokens > 1 ? (finish - first_token) / (req.output_tokens - 1) : 0; }
};

struct SimStats {
  long steps = 0;              // decode steps, all instances
  double batch_sum = 0;        // sum over steps of their batch
  int max_batch_seen = 0;
  double decode_busy_s = 0;    // sum over instances of the time a step ran
  double lpx_dynamic_j = 0;    // AFD: the LPX's dynamic energy over the run
  int max_micro_batches = 0;
  double start = 0, end = 0;   // first arrival, last finish
  double makespan() const { return end - start; }
  double mean_batch() const { return steps ? batch_sum / double(steps) : 0; }
};

struct SimResult {
  std::vector<RequestResult> requests;  // in request order
  SimStats stats;
};

// Called after each request finishes: requests done, total, simulated time, batch of the last step.
using SimProgress = std::function<void(int done, int total, double now, int batch)>;

// Throws lpu::Error when a request can never be admitted (its KV cache exceeds an empty instance's
// capacity) and ConfigError for a config that cannot run (no instance, a chunk of 0 tokens).
SimResult simulate(const std::vector<Request>& requests, const SimConfig& cfg, PrefillModel& prefill, StepModel& step,
                   const SimProgress& progress = {});

// ---- Metrics ---------------------------------------------------------------------------------

// The p-th percentile (0 < p <= 100) by nearest rank: the ceil(p n / 100)-th smallest value; 0 for
// an empty set.
double percentile(std::vector<double> v, double p);

struct Percentiles {
  double p50 = 0, p90 = 0, p99 = 0, mean = 0;
};
Percentiles percentiles(const std::vector<double>& v);

// Power and cost of the deployment the simulation ran (docs/serving.md, "Cost").
struct CostModel {
  double gpus = 0;               // prefill + decode GPUs
  double decode_gpus = 0;        // of which decode
  double gpu_watts_each = 0;     // all in: the GPU system's power / its GPUs
  double gpu_rack_gpus = 72;
  double gpu_rack_capex = 0;     // $ per GPU rack (fractions of a rack pro rata)
  double lpx_racks = 0;
  double lpx_static_watts = 0;   // the LPX racks' static power (every chip of every rack)
  double lpx_rack_watts = 0;     // > 0: a stated power per rack instead of the emulator's static + dynamic
  double lpx_rack_capex = 0;
  double depreciation_years = 4;
  double power_price_per_kwh = 0.10;
  double pue = 1.2;              // facility power / IT power, for the energy bill only
  double slo_ttft = 1, slo_tpot = 0.05;
};

struct Metrics {
  int requests = 0;
  Percentiles ttft, tpot, e2e;                 // seconds; tpot over requests with more than one output token
  double output_tokens = 0, prompt_tokens = 0;
  double makespan = 0;
  double throughput = 0;                        // output tokens / s
  double goodput = 0;                           // output tokens / s of the requests that met both SLOs
  double slo_met_fraction = 0;
  // The rate a user sees while its request decodes: mean over requests of (output_tokens - 1) /
  // (finish - decode_admit). TPOT also counts the wait between the first token and admission.
  double tokens_per_s_per_user = 0;
  double gpu_watts = 0, lpx_watts = 0, watts = 0;  // IT power (no PUE)
  double tokens_per_s_per_mw = 0;               // throughput / (watts / 1e6)
  // The decode side alone (decode GPUs + LPX): what the seed's per-MW claim is about ("for the
  // decode phase"); prefill GPUs left out.
  double decode_watts = 0, decode_tokens_per_s_per_mw = 0;
  double capex_usd_per_s = 0, energy_usd_per_s = 0;
  double usd_per_million_tokens = 0;            // (capex + energy) / output tokens, at this throughput all the time
  double mean_batch = 0;
};

// capex per second = (gpus / gpu_rack_gpus x gpu_rack_capex + lpx_racks x lpx_rack_capex) /
// (depreciation_years x 365.25 x 86400); energy per second = watts x pue / 3.6e6 x price per kWh;
// $ per million tokens = (capex + energy) per second / throughput x 1e6.
Metrics summarize(const SimResult& r, const CostModel& c);

}  // namespace lpu::serving
