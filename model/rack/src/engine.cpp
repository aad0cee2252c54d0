// The rack engine: conservative-lookahead windows over chips on a pool of host threads.
//
// Exactness (docs/rack.md, "Engine"): let S be the earliest pending event of any chip and L the
// smallest SEND-issue-to-arrival time over all links (in ticks of the common time base). A SEND
// issued at or after S arrives at or after S + L = E, so every chip can process all its events
// before E without seeing anything another chip does in the same window. Transfers produced in a
// window are delivered at the barrier, in a fixed order, before the next window starts: each
// chip sees exactly what a cycle-by-cycle lockstep run would show it, whatever the thread count.
#include "lpu/rack/engine.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "lpu/common/tensor_file.hpp"
#include "lpu/isa/isa.hpp"
#include "lpu/isa/tensor_convert.hpp"
#include "lpu/rack/link.hpp"

namespace lpu::rack {

namespace {

constexpr std::int64_t kInf = std::numeric_limits<std::int64_t>::max() / 4;

std::int64_t ceil_div(std::int64_t a, std::int64_t b) {
  if (a >= kInf) return kInf;
  return a >= 0 ? (a + b - 1) / b : -((-a) / b);
}
std::int64_t sat_mul(std::int64_t a, std::int64_t b) { return a >= kInf / b ? kInf : a * b; }

// A pool of host threads running fn(i) for i in [0, n); the caller works too.
class Pool {
 public:
  explicit Pool(int threads) {
    for (int i = 1; i < threads; ++i) th_.emplace_back([this] { worker(); });
  }
  ~Pool() {
    stop_.store(true);
    gen_.fetch_add(1);
    gen_.notify_all();
    for (auto& t : th_) t.join();
  }
  int size() const { return int(th_.size()) + 1; }

  void run(int n, const std::function<void(int)>& fn) {
    fn_ = &fn;
    n_ = n;
    next_.store(0, std::memory_order_relaxed);
    busy_.store(int(th_.size()), std::memory_order_relaxed);
    gen_.fetch_add(1, std::memory_order_release);
    gen_.notify_all();
    work();
    // Wait for the workers: spin briefly (windows are short), then sleep.
    for (int spin = 0; busy_.load(std::memory_order_acquire) != 0; ++spin) {
      if (spin < 4096) continue;
      int b = busy_.load(std::memory_order_acquire);
      if (b == 0) break;
      busy_.wait(b, std::memory_order_acquire);
    }
  }

 private:
  void work() {
    for (;;) {
      const int i = next_.fetch_add(1, std::memory_order_relaxed);
      if (i >= n_) break;
      (*fn_)(i);
    }
  }
  void worker() {
    std::uint64_t seen = 0;
    for (;;) {
      std::uint64_t g;
      for (int spin = 0;; ++spin) {
        g = gen_.load(std::memory_order_acquire);
        if (g != seen) break;
        if (spin >= 4096) {
          gen_.wait(seen, std::memory_order_acquire);
          spin = 0;
        }
      }
      seen = g;
      if (stop_.load()) return;
      work();
      if (busy_.fetch_sub(1, std::memory_order_acq_rel) == 1) busy_.notify_all();
    }
  }
  std::vector<std::thread> th_;
  std::atomic<std::uint64_t> gen_{0};
  std::atomic<int> next_{0}, busy_{0};
  std::atomic<bool> stop_{false};
  const std::function<void(int)>* fn_ = nullptr;
  int n_ = 0;
};

// Splits a SimError's text "chip N, UNIT (queue Q), cycle C: MSG" back into its parts.
Diagnostic from_sim_error(const SimError& e) {
  Diagnostic d;
  d.chip = e.chip();
  d.cycle = e.cycle();
  std::string w = e.what();
  const std::string head = fmt::format("chip {}, ", e.chip());
  const std::string mid = fmt::format(", cycle {}: ", e.cycle());
  auto m = w.find(mid);
  if (w.rfind(head, 0) == 0 && m != std::string::npos) {
    std::string unit = w.substr(head.size(), m - head.size());
    auto q = unit.find(" (queue ");
    if (q != std::string::npos && unit.back() == ')') {
      d.queue = unit.substr(q + 8, unit.size() - q - 9);
      unit = unit.substr(0, q);
    }
    d.unit = unit;
    d.message = w.substr(m + mid.size());
  } else {
    d.message = w;
  }
  return d;
}

}  // namespace

std::string Diagnostic::text() const {
  std::string s = fmt::format("chip {}, {}{}, cycle {}: {}", chip, unit.empty() ? "rack" : unit,
                              queue.empty() ? "" : " (queue " + queue + ")", cycle, message);
  if (loc) s += fmt::format(" [{}:{}:{}]", loc->file, loc->line, loc->col);
  return s;
}

struct Rack::Impl {
  struct Transfer {
    std::int64_t arrival_ticks;
    std::int64_t arrival;  // receiver cycle
    int dst, dst_link, src, src_link;
    std::uint64_t seq;
    std::int64_t depart;       // sender cycle
    std::int64_t issue_ticks;  // SEND issue
    bool corrupt;
    std::uint32_t flips;
    std::vector<std::uint8_t> bytes;
  };
  struct RecvGroup {
    std::int64_t c0, n, d, k;  // instances c0 + k*d for k in [k, n)
    int queue;
    std::int64_t next() const { return c0 + k * d; }
  };
  struct NewRecv {
    int link;
    RecvGroup g;
  };
  struct Arrival {
    std::int64_t arrival, arrival_ticks, issue_ticks;
    int src, src_link;
  };
  struct InLink {
    std::vector<Arrival> arr;  // sorted by arrival; [head, end) pending
    std::size_t head = 0;
    std::vector<RecvGroup> groups;
  };
  struct OutLink {
    LinkTiming t;
    int peer = -1, peer_link = -1, cls = 0;
    std::int64_t peer_k = 1;
    std::vector<std::int64_t> recent;  // departures still able to conflict, sorted
    std::uint64_t seq = 0;
    LinkStats st;
  };
  struct Err {
    std::int64_t ticks;
    int chip;
    int kind;  // 0 link (CRC), 1 chip, 2 RECV check
    Diagnostic d;
  };

  struct Ctx final : model::LinkSink {
    Impl* R = nullptr;
    int id = 0;
    std::int64_t k = 1;
    model::Chip* chip = nullptr;
    std::vector<OutLink> out;
    std::vector<Transfer> outbox;
    std::vector<NewRecv> recvs;
    int cur_queue = -1;
    std::int64_t window_start = 0;  // chip cycles
    bool done = false, dead = false;
    std::optional<Err> err;
    std::vector<Diagnostic> diags;

    void send(int chip_id, int link, std::int64_t depart, std::span<const std::uint8_t> bytes) override {
      R->on_send(*this, chip_id, link, depart, bytes);
    }
  };

  RackConfig cfg;
  RackProgram prog;
  RunOptions opt;
  int N = 0;
  int links = 0;
  int V = 0;
  std::int64_t L = 1;
  int nthreads = 1;
  bool timing_only = false;
  std::uint8_t op_recv = 0;
  std::vector<std::unique_ptr<model::Chip>> chips;
  std::vector<std::unique_ptr<Ctx>> ctx;
  std::vector<InLink> in;  // chips x links
  std::set<std::pair<int, int>> pending_recv;  // (chip, link) with RECV groups to resolve
  std::vector<Err> pending_corrupt;
  std::vector<Diagnostic> diags;
  std::int64_t nwindows = 0;
  double wall = 0;
  bool ran = false;

  Impl(const RackConfig& c, const RackProgram& p, const RunOptions& options) : cfg(c), prog(p), opt(options) {
    N = cfg.chips;
    links = cfg.topology.links;
    V = cfg.base().vector_bytes();
    timing_only = opt.mode == model::Mode::TimingOnly;
    if (opt.collect && !timing_only) throw Error("rack: checker mode (collect) runs in timing-only mode");
    if (int(prog.chips.size()) != N)
      throw Error(fmt::format("rack: the program has {} chips, the rack {}", prog.chips.size(), N));
    op_recv = isa::info(isa::Op::Recv).opcode;
    L = rack::lookahead_ticks(cfg);
    nthreads = opt.threads > 0 ? opt.threads : int(std::max(1u, std::thread::hardware_concurrency()));
    nthreads = std::max(1, std::min(nthreads, N));
    in.resize(std::size_t(N) * std::size_t(links));
    chips.resize(std::size_t(N));
    ctx.resize(std::size_t(N));
    for (int i = 0; i < N; ++i) {
      auto x = std::make_unique<Ctx>();
      x->R = this;
      x->id = i;
      x->k = cfg.ticks_per_cycle[std::size_t(i)];
      x->out.resize(std::size_t(links));
      for (int l = 0; l < links; ++l) {
        const auto& port = cfg.topology.port(i, l);
        auto& o = x->out[std::size_t(l)];
        o.peer = port.peer;
        o.peer_link = port.peer_link;
        o.cls = port.cls;
        if (port.peer < 0) continue;
        o.t = link_timing(cfg, i, l);
        o.peer_k = cfg.ticks_per_cycle[std::size_t(port.peer)];
        o.st.chip = i;
        o.st.link = l;
        o.st.peer = port.peer;
        o.st.peer_link = port.peer_link;
        o.st.cls = cfg.topology.classes[std::size_t(port.cls)];
        o.st.serialisation = o.t.serialisation;
        o.st.latency = o.t.latency;
        o.st.bytes_per_cycle = o.t.bytes_per_cycle;
      }
      ctx[std::size_t(i)] = std::move(x);
      load_chip(i);
    }
  }

  void load_chip(int i) {
    const auto& cp = prog.chips[std::size_t(i)];
    if (!cp.object) {
      ctx[std::size_t(i)]->done = true;
      return;
    }
    auto chip = std::make_unique<model::Chip>(cfg.chip(i), opt.mode, i);
    const std::int64_t skew = cfg.start_skew[std::size_t(i)];
    if (skew > 0) {
      // The start skew: the chip's queues start `skew` cycles after the rack-wide counter's 0.
      obj::Program p = *cp.object;
      std::vector<std::uint64_t> nops;
      for (std::int64_t left = skew; left > 0;) {
        const std::int64_t n = std::min<std::int64_t>(left, (std::int64_t(1) << 24) - 1);
        isa::Instr nop;
        nop.op = isa::Op::Nop;
        nop.v[0] = n;
        nops.push_back(isa::encode(nop));
        left -= n;
      }
      for (auto& q : p.queues)
        if (!q.words.empty()) q.words.insert(q.words.begin(), nops.begin(), nops.end());
      chip->load(p);
    } else {
      chip->load(*cp.object);
    }
    for (const auto& [r, v] : cp.regs) chip->set_reg(r, v);
    if (!timing_only && opt.load_inputs) {
      for (const auto& [sym, file] : cp.inputs) {
        const auto& s = chip->symbol(sym);
        auto t = io::load_npy(file);
        std::int64_t want = 1;
        for (auto d : s.shape) want *= d;
        if (t.numel() != want)
          throw FormatError(fmt::format("{}: {} elements, symbol '{}' of chip {} has {}", file, t.numel(), sym, i, want));
        chip->write_symbol(sym, num::tensor_to_dtype(t, s.dtype, file));
      }
      for (const auto& [ch, file] : cp.dma_in) {
        auto t = io::load_npy(file);
        if (t.data.size() % std::size_t(V) != 0)
          throw FormatError(fmt::format("{}: {} bytes is not a whole number of {}-byte vectors", file, t.data.size(), V));
        for (std::size_t b = 0; b < t.data.size(); b += std::size_t(V))
          chip->push_dma_in(ch, std::span<const std::uint8_t>(t.data.data() + b, std::size_t(V)));
      }
    }
    Ctx* x = ctx[std::size_t(i)].get();
    x->chip = chip.get();
    chip->set_link_sink(x);
    const bool to = timing_only;
    const std::uint8_t opr = op_recv;
    model::Chip* cptr = chip.get();
    chip->set_issue_hook([x, to, opr, cptr](const model::Chip::IssueEvent& e) {
      x->cur_queue = e.queue;
      if (std::uint8_t(e.word >> 56) != opr) return;
      const int link = int(e.word & 0xFF);
      x->recvs.push_back(NewRecv{link, RecvGroup{e.cycle, e.repeat_count, e.repeat_delay, 0, e.queue}});
      // Timing-only: the rack checks arrivals per instance (below); the chip gets a placeholder
      // for each instance so that its own group-level check passes.
      if (to)
        for (std::int64_t n = 0; n < e.repeat_count; ++n) cptr->receive(link, std::numeric_limits<std::int64_t>::min(), {});
    });
    chips[std::size_t(i)] = std::move(chip);
  }

  std::string queue_name(int chip, int q) const {
    if (q < 0 || !chips[std::size_t(chip)]) return "";
    return chips[std::size_t(chip)]->layout().queue(QueueId{q}).name;
  }
  std::string unit_name(int chip, int q) const {
    if (q < 0 || !chips[std::size_t(chip)]) return "c2c";
    const auto& L2 = chips[std::size_t(chip)]->layout();
    return L2.slice(L2.queue(QueueId{q}).slice).name;
  }
  void locate(Diagnostic& d) const {
    if (d.chip < 0 || d.queue.empty()) return;
    const auto& cp = prog.chips[std::size_t(d.chip)];
    if (!cp.source) return;
    if (const auto* s = cp.source->find(d.queue, d.cycle - cfg.start_skew[std::size_t(d.chip)])) d.loc = s->loc;
  }

  // ---- sends (called from the chip's thread) ------------------------------------------------
  void on_send(Ctx& x, int chip_id, int link, std::int64_t depart, std::span<const std::uint8_t> bytes) {
    (void)chip_id;
    if (link < 0 || link >= links || x.out[std::size_t(link)].peer < 0) {
      throw SimError(x.id, unit_name(x.id, x.cur_queue), queue_name(x.id, x.cur_queue),
                     depart - cfg.chip(x.id).lat(isa::LatClass::C2cSend),
                     fmt::format("SEND on link {}: the link is not wired in topology {}", link, cfg.topology.describe()));
    }
    auto& o = x.out[std::size_t(link)];
    const std::int64_t ser = o.t.serialisation;
    const std::int64_t issue = depart - o.t.c2c_send;
    // Room on the link: no back-pressure, so an overlapping departure is a schedule error.
    auto& r = o.recent;
    std::size_t drop = 0;
    while (drop < r.size() && r[drop] + ser <= x.window_start) ++drop;
    if (drop > 64 || drop == r.size()) r.erase(r.begin(), r.begin() + std::ptrdiff_t(drop));
    auto pos = std::upper_bound(r.begin(), r.end(), depart);
    std::int64_t clash = kInf;
    if (pos != r.begin() && *(pos - 1) + ser > depart) clash = *(pos - 1);
    else if (pos != r.end() && depart + ser > *pos) clash = *pos;
    if (clash != kInf) {
      Diagnostic d;
      d.chip = x.id;
      d.unit = unit_name(x.id, x.cur_queue);
      d.queue = queue_name(x.id, x.cur_queue);
      d.cycle = issue;
      d.message = fmt::format(
          "SEND on link {} (to chip {} link {}) departs in cycle {}, but the link is serialising the vector that "
          "departs in cycle {} (busy until {}; {} cycles per {}-byte vector). Links apply no back-pressure: "
          "SENDs on one link must be at least {} cycles apart",
          link, o.peer, o.peer_link, depart, clash, clash + ser, ser, V, ser);
      if (!opt.collect) throw SimError(d.chip, d.unit, d.queue, d.cycle, d.message);
      if (x.diags.size() < opt.max_diagnostics) x.diags.push_back(std::move(d));
    }
    r.insert(std::upper_bound(r.begin(), r.end(), depart), depart);

    Transfer t;
    t.src = x.id;
    t.src_link = link;
    t.dst = o.peer;
    t.dst_link = o.peer_link;
    t.seq = o.seq++;
    t.depart = depart;
    t.issue_ticks = issue * x.k;
    t.arrival_ticks = (depart + ser + o.t.latency) * x.k;
    t.arrival = ceil_div(t.arrival_ticks, o.peer_k);
    t.corrupt = false;
    t.flips = 0;
    if (cfg.ber > 0) {
      const auto bits = std::uint32_t((V + 4) * 8);
      auto flips = bit_errors(cfg.seed, x.id, link, t.seq, bits, cfg.ber);
      t.flips = std::uint32_t(flips.size());
      if (!flips.empty()) {
        if (timing_only) {
          t.corrupt = true;  // no payload: every error is taken as detected (docs/rack.md)
        } else {
          std::vector<std::uint8_t> frame(bytes.begin(), bytes.end());
          const std::uint32_t crc = crc32(bytes);
          for (int b = 0; b < 4; ++b) frame.push_back(std::uint8_t(crc >> (8 * b)));
          for (auto f : flips) frame[f / 8] ^= std::uint8_t(1u << (f % 8));
          std::uint32_t rx = 0;
          for (int b = 0; b < 4; ++b) rx |= std::uint32_t(frame[std::size_t(V) + std::size_t(b)]) << (8 * b);
          frame.resize(std::size_t(V));
          t.corrupt = crc32(frame) != rx;
        }
      }
    }
    if (!timing_only) t.bytes.assign(bytes.begin(), bytes.end());
    auto& st = o.st;
    if (st.transfers == 0) st.first_depart = depart;
    st.first_depart = std::min(st.first_depart, depart);
    st.last_free = std::max(st.last_free, depart + ser);
    ++st.transfers;
    st.bytes += V;
    st.busy_cycles += ser;
    if (t.corrupt) ++st.corrupted;
    x.outbox.push_back(std::move(t));
  }

  // ---- one chip's share of a window (worker threads) ---------------------------------------
  void run_chip(int i, std::int64_t E) {
    Ctx& x = *ctx[std::size_t(i)];
    const std::int64_t limit = ceil_div(E, x.k);
    try {
      x.done = chips[std::size_t(i)]->run(limit);
    } catch (const SimError& e) {
      Diagnostic d = from_sim_error(e);
      if (d.queue.empty() && x.cur_queue >= 0 && d.unit == "c2c") d.queue = queue_name(i, x.cur_queue);
      x.err = Err{sat_mul(e.cycle(), x.k), i, 1, std::move(d)};
    } catch (const std::exception& e) {
      Diagnostic d;
      d.chip = i;
      d.cycle = chips[std::size_t(i)]->next_event_cycle();
      d.message = e.what();
      x.err = Err{sat_mul(std::min(d.cycle, limit), x.k), i, 1, std::move(d)};
    }
  }

  // ---- barrier work (main thread) -------------------------------------------------------
  void deliver(std::vector<Transfer>& all) {
    std::sort(all.begin(), all.end(), [](const Transfer& a, const Transfer& b) {
      if (a.arrival_ticks != b.arrival_ticks) return a.arrival_ticks < b.arrival_ticks;
      if (a.dst != b.dst) return a.dst < b.dst;
      if (a.dst_link != b.dst_link) return a.dst_link < b.dst_link;
      return a.seq < b.seq;
    });
    for (auto& t : all) {
      if (t.corrupt) {
        Diagnostic d;
        d.chip = t.dst;
        d.unit = fmt::format("c2c link {}", t.dst_link);
        d.cycle = t.arrival;
        d.message = fmt::format(
            "CRC-32 mismatch: the vector sent by chip {} on link {} (departed cycle {}, transfer {}) arrived with {} "
            "flipped bit(s) (ber {:g}, seed {}); it is not delivered",
            t.src, t.src_link, t.depart, t.seq, t.flips, cfg.ber, cfg.seed);
        if (!opt.collect) {
          pending_corrupt.push_back(Err{t.arrival_ticks, t.dst, 0, std::move(d)});
          continue;
        }
        add_diag(std::move(d));
      }
      if (!timing_only && chips[std::size_t(t.dst)]) chips[std::size_t(t.dst)]->receive(t.dst_link, t.arrival, t.bytes);
      ctx[std::size_t(t.src)]->out[std::size_t(t.src_link)].st.latency_cycles.add(
          t.arrival * ctx[std::size_t(t.dst)]->k - t.depart * ctx[std::size_t(t.src)]->k);
      auto& il = in[std::size_t(t.dst) * std::size_t(links) + std::size_t(t.dst_link)];
      Arrival a{t.arrival, t.arrival_ticks, t.issue_ticks, t.src, t.src_link};
      if (il.arr.empty() || il.arr.back().arrival <= a.arrival) {
        il.arr.push_back(a);
      } else {  // out of departure order (timing-only REPEAT groups on one link from two queues)
        auto pos = std::upper_bound(il.arr.begin() + std::ptrdiff_t(il.head), il.arr.end(), a,
                                    [](const Arrival& p, const Arrival& q) { return p.arrival < q.arrival; });
        il.arr.insert(pos, a);
      }
    }
  }

  void add_diag(Diagnostic d) {
    if (diags.size() >= opt.max_diagnostics) return;
    locate(d);
    diags.push_back(std::move(d));
  }

  // Matches RECV instances before `limit` (per chip, chip cycles) with arrivals, in order.
  // Returns the first mismatch (timing-only, stop mode) or nothing.
  std::optional<Err> resolve(std::int64_t E) {
    std::optional<Err> first;
    for (auto it = pending_recv.begin(); it != pending_recv.end();) {
      const int c = it->first, l = it->second;
      const std::int64_t kc = ctx[std::size_t(c)]->k;
      const std::int64_t limit = E >= kInf ? kInf : ceil_div(E, kc);
      auto& il = in[std::size_t(c) * std::size_t(links) + std::size_t(l)];
      bool stop = false;
      while (!il.groups.empty() && !stop) {
        std::size_t gi = 0;
        for (std::size_t j = 1; j < il.groups.size(); ++j)
          if (il.groups[j].next() < il.groups[gi].next()) gi = j;
        auto& g = il.groups[gi];
        const std::int64_t cyc = g.next();
        if (cyc >= limit) break;
        if (il.head >= il.arr.size() || il.arr[il.head].arrival > cyc) {
          if (timing_only) {
            Diagnostic d;
            d.chip = c;
            d.unit = unit_name(c, g.queue);
            d.queue = queue_name(c, g.queue);
            d.cycle = cyc;
            const auto& port = cfg.topology.port(c, l);
            if (port.peer < 0)
              d.message = fmt::format("RECV on link {}: the link is not wired in topology {}", l, cfg.topology.describe());
            else if (il.head < il.arr.size())
              d.message = fmt::format(
                  "RECV on link {}: nothing has arrived by this cycle; the next vector from chip {} (link {}) arrives in "
                  "cycle {}, {} cycles later",
                  l, port.peer, port.peer_link, il.arr[il.head].arrival, il.arr[il.head].arrival - cyc);
            else
              d.message = fmt::format(
                  "RECV on link {}: nothing has arrived by this cycle and no vector from chip {} (link {}) is on its way",
                  l, port.peer, port.peer_link);
            if (!opt.collect) {
              if (!first || sat_mul(cyc, kc) < first->ticks) first = Err{sat_mul(cyc, kc), c, 2, std::move(d)};
              stop = true;
              break;
            }
            add_diag(std::move(d));
          }
        } else {
          const auto& a = il.arr[il.head++];
          auto& st = ctx[std::size_t(a.src)]->out[std::size_t(a.src_link)].st;
          st.wait_cycles.add(cyc - a.arrival);
          st.send_to_recv_cycles.add(sat_mul(cyc, kc) - a.issue_ticks);
        }
        if (++g.k >= g.n) il.groups.erase(il.groups.begin() + std::ptrdiff_t(gi));
      }
      if (il.head > 1024 && il.head * 2 > il.arr.size()) {
        il.arr.erase(il.arr.begin(), il.arr.begin() + std::ptrdiff_t(il.head));
        il.head = 0;
      }
      if (il.groups.empty()) it = pending_recv.erase(it);
      else ++it;
    }
    return first;
  }

  [[noreturn]] void raise(Err e) {
    locate(e.d);
    const auto& d = e.d;
    throw SimError(d.chip, d.unit.empty() ? "rack" : d.unit, d.queue, d.cycle,
                   d.message + (d.loc ? fmt::format(" [{}:{}:{}]", d.loc->file, d.loc->line, d.loc->col) : ""));
  }

  void run() {
    if (ran) throw Error("rack: run() may be called once");
    ran = true;
    const auto t0 = std::chrono::steady_clock::now();
    std::unique_ptr<Pool> pool;
    if (nthreads > 1) pool = std::make_unique<Pool>(nthreads);
    std::vector<int> active;
    std::vector<Transfer> all;
    // Chips whose program is empty finish at once.
    for (int i = 0; i < N; ++i)
      if (chips[std::size_t(i)] && chips[std::size_t(i)]->done()) run_chip(i, 0);
    for (;;) {
      std::int64_t S = kInf;
      for (int i = 0; i < N; ++i) {
        auto& x = *ctx[std::size_t(i)];
        if (x.done || x.dead) continue;
        S = std::min(S, sat_mul(chips[std::size_t(i)]->next_event_cycle(), x.k));
      }
      const std::int64_t E = S >= kInf ? kInf : std::min(kInf, S + L);
      if (S < kInf) {
        active.clear();
        for (int i = 0; i < N; ++i) {
          auto& x = *ctx[std::size_t(i)];
          if (x.done || x.dead) continue;
          if (sat_mul(chips[std::size_t(i)]->next_event_cycle(), x.k) < E) {
            x.window_start = ceil_div(S, x.k);
            active.push_back(i);
          }
        }
        ++nwindows;
        if (pool && active.size() > 1) {
          const std::function<void(int)> fn = [&](int j) { run_chip(active[std::size_t(j)], E); };
          pool->run(int(active.size()), fn);
        } else {
          for (int i : active) run_chip(i, E);
        }
        // Barrier: deliveries in a fixed order, then the RECV checks up to E.
        all.clear();
        for (int i : active) {
          auto& x = *ctx[std::size_t(i)];
          for (auto& t : x.outbox) all.push_back(std::move(t));
          x.outbox.clear();
          for (auto& r : x.recvs) {
            in[std::size_t(i) * std::size_t(links) + std::size_t(r.link)].groups.push_back(r.g);
            pending_recv.insert({i, r.link});
          }
          x.recvs.clear();
          for (auto& d : x.diags) add_diag(std::move(d));
          x.diags.clear();
        }
        deliver(all);
      }
      // The first error in rack time (ties: link, chip, RECV check; then the lowest chip).
      std::optional<Err> first;
      auto consider = [&](Err e) {
        if (!first || std::tie(e.ticks, e.kind, e.chip) < std::tie(first->ticks, first->kind, first->chip))
          first = std::move(e);
      };
      for (int i = 0; i < N; ++i) {
        auto& x = *ctx[std::size_t(i)];
        if (!x.err) continue;
        if (opt.collect) {
          add_diag(std::move(x.err->d));
          x.dead = true;
        } else {
          consider(std::move(*x.err));
        }
        x.err.reset();
      }
      if (auto e = resolve(E)) consider(std::move(*e));
      for (auto it = pending_corrupt.begin(); it != pending_corrupt.end();) {
        if (it->ticks < E) {
          consider(*it);
          it = pending_corrupt.erase(it);
        } else {
          ++it;
        }
      }
      if (first) raise(std::move(*first));
      if (S >= kInf) break;
    }
    // Vectors that arrived but were never taken.
    for (int c = 0; c < N; ++c)
      for (int l = 0; l < links; ++l) {
        auto& il = in[std::size_t(c) * std::size_t(links) + std::size_t(l)];
        for (std::size_t j = il.head; j < il.arr.size(); ++j) {
          const auto& a = il.arr[j];
          ++ctx[std::size_t(a.src)]->out[std::size_t(a.src_link)].st.unreceived;
          if (opt.collect) {
            Diagnostic d;
            d.chip = c;
            d.unit = fmt::format("c2c link {}", l);
            d.cycle = a.arrival;
            d.warning = true;
            d.message = fmt::format("the vector from chip {} (link {}) arriving in this cycle is never received (no RECV takes it)",
                                    a.src, a.src_link);
            add_diag(std::move(d));
          }
        }
      }
    wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }

  RackStats stats() const {
    RackStats s;
    s.chips = N;
    s.reference_clock_hz = cfg.base().clock_hz;
    s.chip.resize(std::size_t(N));
    for (int i = 0; i < N; ++i) {
      if (chips[std::size_t(i)]) s.chip[std::size_t(i)] = chips[std::size_t(i)]->stats();
      else s.chip[std::size_t(i)].clock_hz = cfg.chip(i).clock_hz;
      const double ref = double(s.chip[std::size_t(i)].cycles * ctx[std::size_t(i)]->k) / cfg.ticks_per_reference_cycle;
      s.cycles = std::max(s.cycles, std::int64_t(std::ceil(ref - 1e-9)));
      for (const auto& o : ctx[std::size_t(i)]->out) {
        if (o.st.transfers == 0) continue;
        LinkStats ls = o.st;
        // Latencies were accumulated in ticks: report reference cycles.
        auto conv = [&](MinAvgMax& m) {
          if (cfg.ticks_per_reference_cycle == 1.0 || m.n == 0) return;
          m.min = std::int64_t(std::llround(double(m.min) / cfg.ticks_per_reference_cycle));
          m.max = std::int64_t(std::llround(double(m.max) / cfg.ticks_per_reference_cycle));
          m.sum /= cfg.ticks_per_reference_cycle;
        };
        conv(ls.latency_cycles);
        conv(ls.send_to_recv_cycles);
        s.transfers += ls.transfers;
        s.link_bytes += ls.bytes;
        s.corrupted += ls.corrupted;
        s.unreceived += ls.unreceived;
        auto merge = [](MinAvgMax& a, const MinAvgMax& b) {
          if (b.n == 0) return;
          a.n += b.n;
          a.sum += b.sum;
          a.min = std::min(a.min, b.min);
          a.max = std::max(a.max, b.max);
        };
        merge(s.latency_cycles, ls.latency_cycles);
        merge(s.send_to_recv_cycles, ls.send_to_recv_cycles);
        s.links.push_back(std::move(ls));
      }
    }
    s.lookahead_ticks = L;
    s.windows = nwindows;
    s.threads = nthreads;
    s.wall_seconds = wall;
    s.timing_only = timing_only;
    return s;
  }
};

Rack::Rack(const RackConfig& cfg, const RackProgram& prog, const RunOptions& opt)
    : impl_(std::make_unique<Impl>(cfg, prog, opt)) {}
Rack::~Rack() = default;
void Rack::run() { impl_->run(); }
int Rack::chips() const { return impl_->N; }
model::Chip* Rack::chip(int c) { return impl_->chips.at(std::size_t(c)).get(); }
const RackConfig& Rack::config() const { return impl_->cfg; }
const std::vector<Diagnostic>& Rack::diagnostics() const { return impl_->diags; }
RackStats Rack::stats() const { return impl_->stats(); }
int Rack::threads() const { return impl_->nthreads; }
std::int64_t Rack::lookahead_ticks() const { return impl_->L; }
std::int64_t Rack::windows() const { return impl_->nwindows; }

void Rack::save_outputs() const {
  const auto& I = *impl_;
  if (I.timing_only) return;
  for (int c = 0; c < I.N; ++c) {
    auto* chip = I.chips[std::size_t(c)].get();
    if (!chip) continue;
    const auto& cp = I.prog.chips[std::size_t(c)];
    for (const auto& [sym, file] : cp.outputs) {
      const auto& s = chip->symbol(sym);
      io::save_npy(num::dtype_to_tensor(chip->read_symbol(sym), s.dtype, s.shape), file);
    }
    for (const auto& [ch, file] : cp.dma_out) {
      auto vs = chip->take_dma_out(ch);
      io::Tensor t;
      t.type = io::ElemType::U8;
      t.shape = {std::int64_t(vs.size()), I.V};
      for (auto& v : vs) t.data.insert(t.data.end(), v.begin(), v.end());
      io::save_npy(t, file);
    }
  }
}

std::vector<Diagnostic> check_schedule(const RackConfig& cfg, const RackProgram& prog, int threads) {
  RunOptions o;
  o.mode = model::Mode::TimingOnly;
  o.collect = true;
  o.threads = threads;
  Rack r(cfg, prog, o);
  r.run();
  return r.diagnostics();
}

}  // namespace lpu::rack
