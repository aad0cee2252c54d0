// The request-level serving simulator (lpu_serving, docs/serving.md): latencies of a tiny trace
// derived by hand, continuous batching under a batch and a memory limit, determinism, the AFD
// ping-pong formula, the LPX timing cache, the system files and the metrics. No timing assertions.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "lpu/common/errors.hpp"
#include "lpu/compiler/model_shape.hpp"
#include "lpu/serving/lpx_ffn.hpp"
#include "lpu/serving/requests.hpp"
#include "lpu/serving/serve_sim.hpp"
#include "lpu/workload/decoder.hpp"
#include "lpu/serving/serving_system.hpp"
#include "lpu/serving/step_model.hpp"

using namespace lpu;
using namespace lpu::serving;

namespace {

std::string config(const std::string& rel) { return std::string(LPU_SOURCE_DIR) + "/configs/" + rel; }

Request req(int id, double t, int prompt, int output) { return {id, t, prompt, output}; }

// Counts its calls; the timing of batch b is b microseconds per layer over 2 layers.
class CountingSource final : public LpxTimingSource {
 public:
  int calls = 0;
  LpxFfnTiming measure(const LpxKey& k) override {
    ++calls;
    LpxFfnTiming t;
    t.layers = 2;
    t.rack_cycles = 2000 * k.batch;
    t.cycles_per_layer = 1000.0 * k.batch;
    t.seconds_per_layer = 1e-6 * k.batch;
    t.seconds_per_run = 2e-6 * k.batch;
    t.chips_used = 4;
    t.rack_chips = 8;
    t.static_w_per_chip = 80;
    t.dynamic_j_per_run = 0.5 * k.batch;
    return t;
  }
};

std::string temp_path(const std::string& name) { return std::string(LPU_BINARY_DIR) + "/" + name; }

}  // namespace

TEST_CASE("serve-sim: three requests on a constant step model give the latencies derived by hand") {
  // Prefill 1/16 s per prompt token, one instance, chunks of 64 tokens; KV transfer 0.5 s + 1
  // byte per token at 16 B/s (0.5 + prompt / 16 s); decode steps of 1 s, batch at most 2. Every
  // number is a binary fraction, so the ties below are exact.
  //   r0 arrives 0, prompt 16, output 3; r1 arrives 0.5, prompt 32, output 2; r2 arrives 1, prompt 16, output 4.
  //   t=0    prefill r0 (16 tokens, 1 s).               r1 waits from 0.5.
  //   t=1    r2 arrives (scheduled before the prefill's end, so it is handled first), then r0's
  //          prefill ends: r0's first token at 1 (TTFT 1); its KV arrives 1 + 0.5 + 1 = 2.5.
  //          Next iteration: r1 (32) + r2 (16) = 48 tokens <= 64, 3 s, to t=4.
  //   t=2.5  r0 admitted: steps 2.5-3.5, 3.5-4.5 (output 3 = the prefill's token + 2 steps): finish 4.5.
  //   t=4    r1, r2 first tokens (TTFT 3.5 and 3); KV arrives r1 4 + 0.5 + 2 = 6.5, r2 4 + 0.5 + 1 = 5.5.
  //   t=5.5  r2 admitted alone: step 5.5-6.5.
  //   t=6.5  r1's KV arrives (scheduled at t=4, before the step's end at 5.5) and waits for the step
  //          boundary; the step ends, r2 has 1 of 3, r1 joins: step 6.5-7.5 with batch 2.
  //   t=7.5  r1 has its 1 decode token: finish 7.5. r2 has 2 of 3: step 7.5-8.5, finish 8.5.
  // TPOT = (finish - first token) / (output - 1): r0 3.5/2 = 1.75, r1 3.5/1 = 3.5, r2 4.5/3 = 1.5.
  // Steps: 2 + 1 + 1 (batch 2) + 1 = 5, batch sum 6; makespan 8.5; 9 output tokens.
  const std::vector<Request> trace{req(0, 0, 16, 3), req(1, 0.5, 32, 2), req(2, 1, 16, 4)};
  SimConfig c;
  c.chunk_tokens = 64;
  c.max_batch = 2;
  c.kv_transfer_bytes_per_token = 1;
  c.kv_transfer_bandwidth = 16;
  c.kv_transfer_latency = 0.5;
  LinearPrefillModel pre(1.0 / 16);
  ConstantStepModel step(1.0);
  const auto r = simulate(trace, c, pre, step);
  const auto& q = r.requests;
  REQUIRE(q.size() == 3);
  CHECK(q[0].first_token == 1.0);
  CHECK(q[0].kv_ready == 2.5);
  CHECK(q[0].decode_admit == 2.5);
  CHECK(q[0].finish == 4.5);
  CHECK(q[1].prefill_start == 1.0);
  CHECK(q[1].first_token == 4.0);
  CHECK(q[1].kv_ready == 6.5);
  CHECK(q[1].decode_admit == 6.5);
  CHECK(q[1].finish == 7.5);
  CHECK(q[2].first_token == 4.0);
  CHECK(q[2].decode_admit == 5.5);
  CHECK(q[2].finish == 8.5);
  CHECK(q[0].ttft() == 1.0);
  CHECK(q[1].ttft() == 3.5);
  CHECK(q[2].ttft() == 3.0);
  CHECK(q[0].tpot() == 1.75);
  CHECK(q[1].tpot() == 3.5);
  CHECK(q[2].tpot() == 1.5);
  CHECK(q[1].e2e() == 7.0);
  CHECK(r.stats.steps == 5);
  CHECK(r.stats.batch_sum == 6);
  CHECK(r.stats.max_batch_seen == 2);
  CHECK(r.stats.makespan() == 8.5);

  // Metrics: nearest-rank percentiles of 3 values are the 2nd (p50: ceil(1.5)) and the 3rd (p90,
  // p99). TTFT {1, 3, 3.5}: p50 3, p99 3.5. Throughput 9 / 8.5. With SLOs TTFT <= 3 and TPOT <= 2,
  // r0 (1, 1.75) and r2 (3, 1.5) meet them: goodput (3 + 4) / 8.5, 2/3 of the requests.
  CostModel k;
  k.slo_ttft = 3;
  k.slo_tpot = 2;
  const auto m = summarize(r, k);
  CHECK(m.ttft.p50 == 3.0);
  CHECK(m.ttft.p99 == 3.5);
  CHECK(m.tpot.p50 == 1.75);
  CHECK(m.throughput == doctest::Approx(9 / 8.5));
  CHECK(m.goodput == doctest::Approx(7 / 8.5));
  CHECK(m.slo_met_fraction == doctest::Approx(2.0 / 3));
  // tokens/s per user while decoding, (output - 1) / (finish - admission): r0 2 / 2, r1 1 / 1,
  // r2 3 / 3: one token per 1-s step once admitted (TPOT also counts the wait before admission).
  CHECK(m.tokens_per_s_per_user == 1.0);
  CHECK(m.mean_batch == doctest::Approx(6.0 / 5));

  // Chunks of 16 tokens: r1's 32 take two iterations (1-2, 2-3: first token at 3), its own
  // unfinished prompt before the next one; then r2 (3-4: first token at 4).
  c.chunk_tokens = 16;
  const auto r16 = simulate(trace, c, pre, step);
  CHECK(r16.requests[0].first_token == 1.0);
  CHECK(r16.requests[1].first_token == 3.0);
  CHECK(r16.requests[2].first_token == 4.0);
}

TEST_CASE("serve-sim: continuous batching admits at step boundaries and retires finished requests") {
  // Three requests at t=0 (prompt 16, output 3: two decode steps each), prefill and transfer
  // instant, steps of 1 s, at most 2 users a step. r0's prefill starts alone (the others arrive
  // in the same instant but after it), so its step 0-1 runs alone; r1 joins at 1 (step 1-2 with
  // batch 2), r0 leaves at 2 and r2 takes its place (step 2-3), r1 leaves at 3 and r2 finishes its
  // second step alone (3-4). Finishes 2, 3, 4; steps of batch 1, 2, 2, 1.
  const std::vector<Request> trace{req(0, 0, 16, 3), req(1, 0, 16, 3), req(2, 0, 16, 3)};
  SimConfig c;
  c.max_batch = 2;
  LinearPrefillModel pre(0);
  ConstantStepModel step(1.0);
  auto r = simulate(trace, c, pre, step);
  CHECK(r.requests[0].decode_admit == 0);
  CHECK(r.requests[1].decode_admit == 1);
  CHECK(r.requests[2].decode_admit == 2);
  CHECK(r.requests[0].finish == 2);
  CHECK(r.requests[1].finish == 3);
  CHECK(r.requests[2].finish == 4);
  CHECK(r.stats.steps == 4);
  CHECK(r.stats.batch_sum == 6);
  CHECK(r.stats.max_batch_seen == 2);

  // Memory instead of the batch: 1 byte per position, room for 19 = one request of 16 + 3. Each
  // waits for the one before it to leave: finishes 2, 4, 6, never two in a step.
  c.max_batch = 8;
  c.kv_bytes_per_token = 1;
  c.kv_capacity_bytes = 19;
  r = simulate(trace, c, pre, step);
  CHECK(r.requests[0].finish == 2);
  CHECK(r.requests[1].decode_admit == 2);
  CHECK(r.requests[1].finish == 4);
  CHECK(r.requests[2].finish == 6);
  CHECK(r.stats.max_batch_seen == 1);

  // A request larger than an empty instance can never run: an error, not a hang.
  c.kv_capacity_bytes = 18;
  CHECK_THROWS_AS(simulate(trace, c, pre, step), Error);

  // A single-token request ends with its prefill and never reaches decode.
  c.kv_capacity_bytes = 0;
  r = simulate({req(0, 0.25, 16, 1)}, c, pre, step);
  CHECK(r.requests[0].finish == 0.25);
  CHECK(r.stats.steps == 0);
}

TEST_CASE("serve-sim: Poisson workloads and simulations are deterministic for a seed") {
  PoissonWorkload w;
  w.rate = 4;
  w.requests = 2000;
  w.seed = 7;
  w.prompt = parse_length("100-300", "prompt");
  w.output = parse_length("50", "output");
  const auto a = poisson_requests(w), b = poisson_requests(w);
  REQUIRE(a.size() == 2000);
  bool same = true, in_range = true;
  for (std::size_t i = 0; i < a.size(); ++i) {
    same = same && a[i].arrival_s == b[i].arrival_s && a[i].prompt_tokens == b[i].prompt_tokens;
    in_range = in_range && a[i].prompt_tokens >= 100 && a[i].prompt_tokens <= 300 && a[i].output_tokens == 50;
    if (i) in_range = in_range && a[i].arrival_s >= a[i - 1].arrival_s;
  }
  CHECK(same);
  CHECK(in_range);
  // 2000 exponential gaps of mean 1/4 s: their mean is within 10% of 0.25 s (for this seed).
  CHECK(a.back().arrival_s / 2000 == doctest::Approx(0.25).epsilon(0.1));
  w.seed = 8;
  CHECK(poisson_requests(w)[0].arrival_s != a[0].arrival_s);

  w.requests = 200;
  w.seed = 7;
  const auto reqs = poisson_requests(w);
  SimConfig c;
  c.max_batch = 16;
  c.kv_transfer_bandwidth = 1e9;
  c.kv_transfer_bytes_per_token = 1e3;
  LinearPrefillModel pre(1e-4);
  ConstantStepModel step(0.02);
  const auto r1 = simulate(reqs, c, pre, step), r2 = simulate(reqs, c, pre, step);
  bool equal = true;
  for (std::size_t i = 0; i < reqs.size(); ++i)
    equal = equal && r1.requests[i].finish == r2.requests[i].finish && r1.requests[i].first_token == r2.requests[i].first_token;
  CHECK(equal);
  CHECK(r1.stats.steps == r2.stats.steps);

  CHECK_THROWS_AS(parse_length("0", "prompt"), ConfigError);
  CHECK_THROWS_AS(parse_length("300-100", "prompt"), ConfigError);
  CHECK_THROWS_AS(parse_length("12x", "prompt"), ConfigError);
}

TEST_CASE("serve-sim: the AFD ping-pong step matches its formula and the event-by-event schedule") {
  // t_a 3, t_f 2, t_c 1, 2 layers. R = 3 + 2 + 2 = 7, T = max(3, 2) = 3.
  // m = 1: each layer a round trip: 2 R = 14.
  CHECK(ping_pong_step({3, 2, 1, 2, 1}) == 14);
  // m = 2: m T = 6 < R: latency bound, (L - 1) R + R + (m - 1) T = 7 + 7 + 3 = 17. By hand:
  //   layer 0: mb0 attention 0-3, to the LPX 4, FFN 4-6, back 7; mb1 attention 3-6, FFN 7-9, back 10.
  //   layer 1: mb0 attention 7-10, FFN 11-13, back 14; mb1 attention 10-13, FFN 14-16, back 17.
  CHECK(ping_pong_step({3, 2, 1, 2, 2}) == 17);
  CHECK(ping_pong_step_simulated({3, 2, 1, 2, 2}) == 17);
  // m = 3: m T = 9 >= R: the GPUs never wait, (L - 1) m T + R + (m - 1) T = 9 + 7 + 6 = 22, which
  // is MegaScale-Infer's R + T (m L - 1) = 7 + 3 x 5.
  CHECK(ping_pong_step({3, 2, 1, 2, 3}) == 22);
  CHECK(ping_pong_step_simulated({3, 2, 1, 2, 3}) == 22);
  // The formula and the schedule agree on a grid, either side the busier one.
  for (double ta : {0.5, 1.0, 2.0, 3.0})
    for (double tf : {0.25, 1.0, 2.5})
      for (double tc : {0.0, 0.5, 2.0})
        for (int layers : {1, 2, 5})
          for (int m : {1, 2, 3, 4}) {
            const PingPong p{ta, tf, tc, layers, m};
            CHECK_MESSAGE(ping_pong_step(p) == doctest::Approx(ping_pong_step_simulated(p)),
                          fmt::format("t_a {} t_f {} t_c {} L {} m {}", ta, tf, tc, layers, m));
          }
}

TEST_CASE("serve-sim: the LPX timing cache measures each key once and keeps it in its file") {
  const auto path = temp_path("serve_sim_cache_test.json");
  std::remove(path.c_str());
  LpxKey k;
  k.model = "tiny";
  k.rack = "tray8.toml";
  k.batch = 4;
  CountingSource src;
  {
    LpxFfnCache c(path, src);
    CHECK(c.get(k).seconds_per_layer == doctest::Approx(4e-6));
    CHECK(src.calls == 1);
    CHECK(c.get(k).cycles_per_layer == 4000);
    CHECK(src.calls == 1);  // the second lookup is the cache's
    CHECK(c.hits() == 1);
    CHECK(c.misses() == 1);
    k.batch = 8;
    c.get(k);
    CHECK(src.calls == 2);
  }
  // A new cache on the same file answers both keys without the source.
  CountingSource fresh;
  LpxFfnCache c2(path, fresh);
  CHECK(c2.size() == 2);
  CHECK(c2.get(k).dynamic_j_per_run == doctest::Approx(4.0));
  k.batch = 4;
  CHECK(c2.get(k).static_w_per_chip == 80);
  CHECK(fresh.calls == 0);
  // Another dtype is another key.
  k.dtype = "bf16";
  c2.get(k);
  CHECK(fresh.calls == 1);
  std::remove(path.c_str());
}

TEST_CASE("serve-sim: the AFD step model puts attention on the GPUs and every layer's FFN on the LPX") {
  // The GPU side of tiny (2 layers) on gb200-nvl72, the LPX side a stub (b us per layer for the
  // micro-batch rounded up to a power of two); 1 GPU, so no all-reduce.
  const auto g = load_gpu_system("gb200-nvl72");
  const auto m = compiler::load_model("tiny");
  StepOptions o;
  o.gpus = 1;
  CountingSource src;
  LpxFfnCache cache("", src);
  AfdOptions a;
  a.link = {100e9, 2e-6};
  a.micro_batches = 2;
  a.lpx_rack = config("tray8.toml");
  AfdStepModel afd(g, m, "tiny", o, a, cache);
  // Batch 6 in 2 micro-batches of 3: the LPX programs for 4, t_f = 4 us; t_c = 2 us + 3 x 64 x 2 B
  // / 100 GB/s; t_a the attention of 3 users per layer; the step adds the output projection once.
  const auto b = afd.breakdown(6, 100);
  CHECK(b.micro_batches == 2);
  CHECK(b.micro_batch == 3);
  CHECK(b.lpx_batch == 4);
  CHECK(b.t_ffn == doctest::Approx(4e-6));
  CHECK(b.t_comm == doctest::Approx(2e-6 + 3 * 64 * 2 / 100e9));
  const auto [ta, other] = afd.gpu_parts(3, 100);
  CHECK(b.t_attn == doctest::Approx(ta));
  CHECK(other > 0);  // the output projection of 3 users; the step takes it for all 6
  CHECK(b.t_other == doctest::Approx(afd.gpu_parts(6, 100).second));
  CHECK(b.t_other > 0);
  CHECK(b.step == doctest::Approx(ping_pong_step({b.t_attn, b.t_ffn, b.t_comm, 2, 2}) + b.t_other));
  // The attention part is what the GPU model's step has beyond the FFN: attn.proj + attention.
  const auto e = decode_step(g, m, 3, 100, o);
  double attn = 0;
  for (const auto& op : e.ops)
    if (op.name == "attn.proj" || op.name == "attention") attn += op.total.time;
  CHECK(ta == doctest::Approx(attn / 2));
  // The step's LPX energy: two runs of the micro-batch's programs (0.5 J x 4 each).
  CHECK(afd.step(6, 100).lpx_dynamic_j == doctest::Approx(4.0));
  CHECK(src.calls == 1);  // one key (batch 4) for all of the above
}

TEST_CASE("serve-sim: system files load, and bad keys are located errors") {
  for (const char* f : {"gb200-nvl72", "rubin-nvl72", "rubin-lpx-afd"}) {
    const auto s = load_serving_system(f);
    CHECK(s.name == f);
    CHECK(s.max_batch > 0);
  }
  const auto afd = load_serving_system("rubin-lpx-afd");
  CHECK(afd.mode == ServingMode::Afd);
  CHECK(afd.lpx_rack.ends_with("configs/lpx-rack.toml"));
  const std::string base = R"(name = "t"
[gpu]
system = "gb200-nvl72"
[prefill]
gpus = 8
[decode]
gpus = 8
max_batch = 16
[kv_transfer]
bandwidth = 1e11
latency = 1e-5
[slo]
ttft = 1
tpot = 0.05
[cost]
gpu_rack_capex = 3e6
depreciation_years = 4
power_price_per_kwh = 0.1
pue = 1.2
)";
  CHECK(parse_serving_system(base, "t.toml").mode == ServingMode::Gpu);
  auto error_of = [](const std::string& text) {
    try {
      parse_serving_system(text, "t.toml");
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(error_of(base + "[decode2]\nx = 1\n").find("decode2.x: t.toml:21:5: unknown key") != std::string::npos);
  CHECK(error_of(base + "[lpx]\nrack = \"lpx-rack\"\n").find("mode = \"afd\"") != std::string::npos);
  std::string bad = base;
  bad.replace(bad.find("max_batch = 16"), 14, "max_batch = 0");
  CHECK(error_of(bad).find("decode.max_batch: t.toml:8:13: 0 is out of range") != std::string::npos);
  bad = base;
  bad.replace(bad.find("name = \"t\""), 10, "name = \"t\"\nmode = \"both\"");
  CHECK(error_of(bad).find("mode") != std::string::npos);
  CHECK(error_of("name = ").find("t.toml") != std::string::npos);
  // An AFD file needs its LPX rack.
  bad = base;
  bad.replace(bad.find("name = \"t\""), 10, "name = \"t\"\nmode = \"afd\"");
  CHECK(error_of(bad).find("lpx.rack: missing in t.toml") != std::string::npos);
}

TEST_CASE("serve-sim: a deployment's KV capacity and power follow from the GPU model and the system file") {
  // llama-3-70b on GB200, 8 GPUs tensor parallel, fp8: 8 KV heads over 8 GPUs (no copies),
  // 80 layers x 2 x 8 x 128 x 1 B = 163,840 B per position; capacity 8 x (0.9 HBM - weights per GPU).
  const auto s = load_serving_system("gb200-nvl72");
  const auto m = compiler::load_model("llama-3-70b");
  const auto d = deploy(s, m, "llama-3-70b", {});
  CHECK(d.kv_replication == 1);
  CHECK(d.sim.kv_bytes_per_token == doctest::Approx(163840));
  CHECK(d.sim.kv_capacity_bytes == doctest::Approx(8 * (0.9 * s.gpu.hbm_bytes - d.weight_bytes_per_decode_gpu)));
  CHECK(d.cost.gpus == 16);
  CHECK(d.cost.decode_gpus == 8);
  CHECK(d.cost.gpu_watts_each == doctest::Approx(132e3 / 72));
  CHECK(d.afd == nullptr);
  // $ per million tokens by hand: 16 GPUs of a $3.75 M 72-GPU rack over 4 years, 16 x 1,833 W at
  // PUE 1.2 and $0.10/kWh, at 1,000 tokens/s.
  SimResult r;
  r.requests.push_back({req(0, 0, 10, 1001), 0, 0, 0, 0, 1, 0});
  r.stats.start = 0;
  r.stats.end = 1;
  const auto x = summarize(r, d.cost);
  const double capex = 16.0 / 72 * 3.75e6 / (4 * 365.25 * 86400), energy = 16 * 132e3 / 72 * 1.2 / 3.6e6 * 0.10;
  CHECK(x.throughput == doctest::Approx(1001));
  CHECK(x.usd_per_million_tokens == doctest::Approx((capex + energy) / 1001 * 1e6));
  CHECK(x.tokens_per_s_per_mw == doctest::Approx(1001 / (16 * 132e3 / 72 / 1e6)));
  CHECK(x.decode_tokens_per_s_per_mw == doctest::Approx(1001 / (8 * 132e3 / 72 / 1e6)));
}

TEST_CASE("serve-sim: the real LPX provider times the tiny model's FFN-only programs on a chip pair") {
  // The emulator, timing-only, on configs/models/tiny.toml and configs/pair.toml (pipeline
  // partition: a chip per layer, the LM head on the second): a run of well under a second. Its
  // figures are consistent with one another.
  auto src = emulator_lpx_source(1);
  LpxKey k;
  k.model = "tiny";
  k.rack = config("pair.toml");
  k.partition = "pipeline";
  k.batch = 2;
  const auto t = src->measure(k);
  CHECK(t.layers == 2);
  CHECK(t.rack_cycles > 0);
  CHECK(t.cycles_per_layer == doctest::Approx(double(t.rack_cycles) / 2));
  CHECK(t.seconds_per_layer == doctest::Approx(t.seconds_per_run / 2));
  CHECK(t.chips_used >= 1);
  CHECK(t.rack_chips == 2);
  CHECK(t.static_w_per_chip > 0);
  CHECK(t.dynamic_j_per_run > 0);
  // The FFN-only programs: fewer cycles than the same decode with attention.
  workload::DecoderSpec full;
  full.model = k.model;
  full.rack = k.rack;
  full.partition = k.partition;
  full.batch = full.users = k.batch;
  const auto jf = workload::decode_timing(workload::plan_decoder(full), 1, {});
  CHECK(t.rack_cycles < jf["decode"]["rack_cycles_per_step"].get<std::int64_t>());
  // Deterministic: the same key, the same cycles (what makes the cache exact).
  CHECK(src->measure(k).rack_cycles == t.rack_cycles);
}
