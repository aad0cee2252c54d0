#include "lpu/serving/serve_sim.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <queue>

#include "lpu/common/errors.hpp"

namespace lpu::serving {

namespace {

enum class Ev { Arrival, PrefillDone, KvReady, StepDone };

struct Event {
  double t;
  long seq;  // scheduling order: breaks ties, so equal times resolve the same way every run
  Ev kind;
  int who;   // request (Arrival, KvReady) or instance (PrefillDone, StepDone)
  bool operator>(const Event& o) const { return t != o.t ? t > o.t : seq > o.seq; }
};

struct PrefillInstance {
  bool busy = false;
  std::vector<int> own;                        // prompts it started and has not finished, in order
  std::vector<std::pair<int, int>> pieces;     // this iteration: (request, tokens)
};

struct DecodeInstance {
  bool stepping = false;
  std::deque<int> waiting;  // KV cache arrived, not admitted
  std::vector<int> active;
  double used_bytes = 0;
  int last_batch = 0;
};

class Sim {
 public:
  Sim(const std::vector<Request>& reqs, const SimConfig& c, PrefillModel& p, StepModel& s, const SimProgress& progress)
      : reqs_(reqs), c_(c), prefill_(p), step_(s), progress_(progress), pre_(std::size_t(c.prefill_instances)),
        dec_(std::size_t(c.decode_instances)), done_tokens_(reqs.size(), 0), generated_(reqs.size(), 0) {
    res_.requests.resize(reqs.size());
    for (std::size_t i = 0; i < reqs.size(); ++i) res_.requests[i].req = reqs[i];
  }

  SimResult run() {
    for (std::size_t i = 0; i < reqs_.size(); ++i) push(reqs_[i].arrival_s, Ev::Arrival, int(i));
    res_.stats.start = reqs_.empty() ? 0 : reqs_.front().arrival_s;
    for (const auto& r : reqs_) res_.stats.start = std::min(res_.stats.start, r.arrival_s);
    while (!q_.empty()) {
      const Event e = q_.top();
      q_.pop();
      now_ = e.t;
      switch (e.kind) {
        case Ev::Arrival:
          waiting_prefill_.push_back(e.who);
          for (std::size_t i = 0; i < pre_.size(); ++i)
            if (!pre_[i].busy) start_prefill(int(i));
          break;
        case Ev::PrefillDone: prefill_done(e.who); break;
        case Ev::KvReady: kv_ready(e.who); break;
        case Ev::StepDone: step_done(e.who); break;
      }
    }
    if (finished_ != int(reqs_.size()))
      throw Error(fmt::format("serving simulation: internal error: {} of {} requests finished", finished_, reqs_.size()));
    return std::move(res_);
  }

 private:
  void push(double t, Ev k, int who) { q_.push({t, seq_++, k, who}); }

  void start_prefill(int i) {
    auto& p = pre_[std::size_t(i)];
    p.pieces.clear();
    int budget = c_.chunk_tokens;
    double t = 0;
    auto take = [&](int r) {
      const int left = reqs_[std::size_t(r)].prompt_tokens - done_tokens_[std::size_t(r)];
      const int n = std::min(left, budget);
      if (done_tokens_[std::size_t(r)] == 0 && n > 0) res_.requests[std::size_t(r)].prefill_start = now_;
      t += prefill_.chunk(done_tokens_[std::size_t(r)], n);
      p.pieces.emplace_back(r, n);
      budget -= n;
    };
    for (int r : p.own) {
      if (budget == 0) break;
      take(r);
    }
    while (budget > 0 && !waiting_prefill_.empty()) {
      const int r = waiting_prefill_.front();
      waiting_prefill_.pop_front();
      p.own.push_back(r);
      take(r);
    }
    p.busy = !p.pieces.empty();
    if (p.busy) push(now_ + t, Ev::PrefillDone, i);
  }

  void prefill_done(int i) {
    auto& p = pre_[std::size_t(i)];
    for (const auto& [r, n] : p.pieces) {
      auto& d = done_tokens_[std::size_t(r)];
      d += n;
      if (d < reqs_[std::size_t(r)].prompt_tokens) continue;
      auto& rr = res_.requests[std::size_t(r)];
      rr.first_token = now_;
      p.own.erase(std::find(p.own.begin(), p.own.end(), r));
      if (rr.req.output_tokens == 1) {
        rr.kv_ready = rr.decode_admit = rr.finish = now_;
        finish_one(0);
        continue;
      }
      double tx = 0;
      if (c_.kv_transfer_bandwidth > 0)
        tx = c_.kv_transfer_latency + rr.req.prompt_tokens * c_.kv_transfer_bytes_per_token / c_.kv_transfer_bandwidth;
      push(now_ + tx, Ev::KvReady, r);
    }
    p.busy = false;
    start_prefill(i);
  }

  void kv_ready(int r) {
    auto& rr = res_.requests[std::size_t(r)];
    rr.kv_ready = now_;
    // Join the decode instance with the fewest requests (active + waiting); the first on a tie.
    std::size_t best = 0;
    for (std::size_t i = 1; i < dec_.size(); ++i)
      if (dec_[i].active.size() + dec_[i].waiting.size() < dec_[best].active.size() + dec_[best].waiting.size()) best = i;
    rr.decode_instance = int(best);
    dec_[best].waiting.push_back(r);
    if (!dec_[best].stepping) {
      admit(int(best));
      start_step(int(best));
    }
  }

  double kv_need(int r) const {
    const auto& q = reqs_[std::size_t(r)];
    return double(q.prompt_tokens + q.output_tokens) * c_.kv_bytes_per_token;
  }

  void admit(int i) {
    auto& d = dec_[std::size_t(i)];
    while (!d.waiting.empty() && int(d.active.size()) < c_.max_batch) {
      const int r = d.waiting.front();
      const double need = kv_need(r);
      if (c_.kv_capacity_bytes > 0 && d.used_bytes + need > c_.kv_capacity_bytes) {
        if (d.active.empty())
          throw Error(fmt::format("request {} ({} + {} tokens) needs {:.3g} GB of KV cache, more than a decode instance holds ({:.3g} GB)",
                                  reqs_[std::size_t(r)].id, reqs_[std::size_t(r)].prompt_tokens, reqs_[std::size_t(r)].output_tokens,
                                  need / 1e9, c_.kv_capacity_bytes / 1e9));
        break;  // first come, first served: no overtaking
      }
      d.waiting.pop_front();
      d.active.push_back(r);
      d.used_bytes += need;
      res_.requests[std::size_t(r)].decode_admit = now_;
    }
  }

  void start_step(int i) {
    auto& d = dec_[std::size_t(i)];
    if (d.active.empty()) {
      d.stepping = false;
      return;
    }
    // Positions in each KV cache before this step's token: the prompt and the tokens decoded so far.
    double ctx = 0;
    for (int r : d.active) ctx += reqs_[std::size_t(r)].prompt_tokens + generated_[std::size_t(r)];
    const int batch = int(d.active.size());
    const int context = int(std::ceil(ctx / batch));
    const auto st = step_.step(batch, context);
    auto& s = res_.stats;
    ++s.steps;
    s.batch_sum += batch;
    s.max_batch_seen = std::max(s.max_batch_seen, batch);
    s.decode_busy_s += st.seconds;
    s.lpx_dynamic_j += st.lpx_dynamic_j;
    s.max_micro_batches = std::max(s.max_micro_batches, st.micro_batches);
    d.stepping = true;
    d.last_batch = batch;
    push(now_ + st.seconds, Ev::StepDone, i);
  }

  void step_done(int i) {
    auto& d = dec_[std::size_t(i)];
    std::vector<int> keep;
    keep.reserve(d.active.size());
    for (int r : d.active) {
      auto& g = generated_[std::size_t(r)];
      ++g;
      if (g + 1 < reqs_[std::size_t(r)].output_tokens) {
        keep.push_back(r);
        continue;
      }
      res_.requests[std::size_t(r)].finish = now_;
      d.used_bytes -= kv_need(r);
      finish_one(d.last_batch);
    }
    d.active = std::move(keep);
    if (d.active.empty()) d.used_bytes = 0;  // no rounding drift
    admit(i);
    start_step(i);
  }

  void finish_one(int batch) {
    ++finished_;
    res_.stats.end = std::max(res_.stats.end, now_);
    if (progress_) progress_(finished_, int(reqs_.size()), now_, batch);
  }

  const std::vector<Request>& reqs_;
  const SimConfig& c_;
  PrefillModel& prefill_;
  StepModel& step_;
  const SimProgress& progress_;
  std::vector<PrefillInstance> pre_;
  std::vector<DecodeInstance> dec_;
  std::vector<int> done_tokens_;  // prompt tokens prefilled
  std::vector<int> generated_;    // tokens decoded (after the prefill's first)
  std::deque<int> waiting_prefill_;
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> q_;
  long seq_ = 0;
  double now_ = 0;
  int finished_ = 0;
  SimResult res_;
};

}  // namespace

SimResult simulate(const std::vector<Request>& requests, const SimConfig& cfg, PrefillModel& prefill, StepModel& step,
                   const SimProgress& progress) {
  if (cfg.prefill_instances < 1) throw ConfigError("prefill.instances", "at least one prefill instance");
  if (cfg.decode_instances < 1) throw ConfigError("decode.instances", "at least one decode instance");
  if (cfg.chunk_tokens < 1) throw ConfigError("prefill.chunk_tokens", "at least one token per chunk");
  if (cfg.max_batch < 1) throw ConfigError("decode.max_batch", "at least one user per step");
  for (const auto& r : requests)
    if (r.prompt_tokens < 1 || r.output_tokens < 1)
      throw ConfigError("requests", fmt::format("request {}: prompt and output need at least one token each", r.id));
  return Sim(requests, cfg, prefill, step, progress).run();
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto n = v.size();
  auto rank = std::size_t(std::ceil(p / 100.0 * double(n)));
  rank = std::clamp<std::size_t>(rank, 1, n);
  return v[rank - 1];
}

Percentiles percentiles(const std::vector<double>& v) {
  Percentiles p;
  if (v.empty()) return p;
  p.p50 = percentile(v, 50);
  p.p90 = percentile(v, 90);
  p.p99 = percentile(v, 99);
  double s = 0;
  for (double x : v) s += x;
  p.mean = s / double(v.size());
  return p;
}

Metrics summarize(const SimResult& r, const CostModel& c) {
  Metrics m;
  std::vector<double> ttft, tpot, e2e;
  double good = 0, rate_sum = 0;
  int met = 0, multi = 0;
  for (const auto& q : r.requests) {
    ttft.push_back(q.ttft());
    e2e.push_back(q.e2e());
    m.output_tokens += q.req.output_tokens;
    m.prompt_tokens += q.req.prompt_tokens;
    bool ok = q.ttft() <= c.slo_ttft;
    if (q.req.output_tokens > 1) {
      tpot.push_back(q.tpot());
      ok = ok && q.tpot() <= c.slo_tpot;
      if (q.finish > q.decode_admit) {
        rate_sum += (q.req.output_tokens - 1) / (q.finish - q.decode_admit);
        ++multi;
      }
    }
    if (ok) {
      ++met;
      good += q.req.output_tokens;
    }
  }
  m.requests = int(r.requests.size());
  m.ttft = percentiles(ttft);
  m.tpot = percentiles(tpot);
  m.e2e = percentiles(e2e);
  m.makespan = r.stats.makespan();
  m.mean_batch = r.stats.mean_batch();
  if (m.makespan > 0) {
    m.throughput = m.output_tokens / m.makespan;
    m.goodput = good / m.makespan;
  }
  m.slo_met_fraction = m.requests ? double(met) / m.requests : 0;
  m.tokens_per_s_per_user = multi ? rate_sum / multi : 0;
  m.gpu_watts = c.gpus * c.gpu_watts_each;
  if (c.lpx_rack_watts > 0) m.lpx_watts = c.lpx_racks * c.lpx_rack_watts;
  else m.lpx_watts = c.lpx_static_watts + (m.makespan > 0 ? r.stats.lpx_dynamic_j / m.makespan : 0);
  m.watts = m.gpu_watts + m.lpx_watts;
  if (m.watts > 0) m.tokens_per_s_per_mw = m.throughput / (m.watts / 1e6);
  m.decode_watts = c.decode_gpus * c.gpu_watts_each + m.lpx_watts;
  if (m.decode_watts > 0) m.decode_tokens_per_s_per_mw = m.throughput / (m.decode_watts / 1e6);
  const double seconds = c.depreciation_years * 365.25 * 86400;
  if (seconds > 0) m.capex_usd_per_s = (c.gpus / c.gpu_rack_gpus * c.gpu_rack_capex + c.lpx_racks * c.lpx_rack_capex) / seconds;
  m.energy_usd_per_s = m.watts * c.pue / 3.6e6 * c.power_price_per_kwh;
  if (m.throughput > 0) m.usd_per_million_tokens = (m.capex_usd_per_s + m.energy_usd_per_s) / m.throughput * 1e6;
  return m;
}

}  // namespace lpu::serving
