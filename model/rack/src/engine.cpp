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
#include "distributed.hpp"
#include "wire.hpp"

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
  // Transfers on one directed link, in departure order: departures depart0 + i * step for
  // i < count (timing-only REPEAT groups become one run; functional transfers are runs of one,
  // carrying their bytes).
  struct Run {
    std::int64_t depart0 = 0, step = 0, count = 1;
    std::uint64_t seq0 = 0;
    bool corrupt = false;
    std::uint32_t flips = 0;
    std::vector<std::uint8_t> bytes;
    std::int64_t last() const { return depart0 + (count - 1) * step; }
  };
  struct Recent {
    std::int64_t d0, step, count;
    std::int64_t last() const { return d0 + (count - 1) * step; }
  };
  struct OutLink {
    LinkTiming t;
    int peer = -1, peer_link = -1, cls = 0;
    std::int64_t peer_k = 1;
    std::vector<Recent> recent;  // departures that may still conflict with new ones
    std::vector<Run> pending;    // sent in this window, delivered at the barrier
    std::uint64_t seq = 0;
    LinkStats st;
  };
  // A run as seen by the receiving link; instances [i, count) still to be taken.
  struct InRun {
    std::int64_t depart0, step, count, i;
    std::uint64_t seq0;
    std::int64_t wire, ks, kr, send_lat;
    std::int64_t arrival_ticks(std::int64_t j) const { return (depart0 + j * step + wire) * ks; }
    std::int64_t arrival(std::int64_t j) const { return ceil_div(arrival_ticks(j), kr); }
    std::int64_t issue_ticks(std::int64_t j) const { return (depart0 + j * step - send_lat) * ks; }
  };
  struct RecvGroup {
    std::int64_t c0, n, d, k;  // RECV instances c0 + k*d for k in [k, n)
    int queue;
    std::int64_t next() const { return c0 + k * d; }
  };
  struct NewRecv {
    int link;
    RecvGroup g;
  };
  struct InLink {
    std::vector<InRun> runs;  // sorted by arrival; [head, end) pending
    std::size_t head = 0;
    std::vector<RecvGroup> groups;
    bool listed = false;  // in its chip's recv_links
  };
  struct Err {
    std::int64_t ticks;
    int chip;
    int kind;  // 0 link (CRC), 1 chip, 2 RECV check: the order among equal times
    Diagnostic d;
  };

  struct Ctx final : model::LinkSink {
    Impl* R = nullptr;
    int id = 0;
    std::int64_t k = 1;
    model::Chip* chip = nullptr;
    std::vector<OutLink> out;
    std::vector<std::pair<int, int>> touched;  // (peer, peer link) with new pending runs from this chip
    std::vector<int> in_touched;               // this chip's links with runs to deliver
    std::vector<NewRecv> recvs;
    std::vector<int> recv_links;  // links of this chip with RECV groups to check
    int cur_queue = -1;
    std::int64_t window_start = 0;  // chip cycles
    bool done = false, dead = false, in_phase2 = false;
    std::optional<Err> err;         // this chip's own error (phase 1)
    std::optional<Err> rx_err;      // first RECV mismatch on its links (phase 2, timing-only)
    std::vector<Err> corrupt;       // corrupted arrivals (phase 2, stop mode)
    std::vector<Diagnostic> diags;  // checker findings (collect mode)

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
  std::vector<Err> pending_corrupt;
  std::vector<Diagnostic> diags;
  std::int64_t nwindows = 0;
  double wall = 0;
  bool ran = false;
  // Distributed over MPI ranks (docs/distributed.md): this rank creates and runs the chips it
  // owns; the others' contexts keep only what their links to this rank's chips need.
  bool dist = false;
  int me = 0, nranks = 1;
  std::vector<int> owner;
  std::exception_ptr fatal;  // an unexpected error in this rank's share of a window
  struct Tagged {            // a finding with the place it has in one process's order
    std::int64_t window;
    int chip;
    Diagnostic d;
  };
  std::vector<Tagged> tagged;
  bool local(int i) const { return !dist || owner[std::size_t(i)] == me; }

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
    dist = opt.mpi;
    if (dist) {
      if (!mpi::active()) throw Error("rack: a distributed run needs MPI (lpu ... --mpi under mpirun)");
      me = mpi::rank();
      nranks = mpi::size();
      owner = opt.partition.empty() ? partition_chips(N, nranks, "", opt.rank0_chips) : opt.partition;
      if (int(owner.size()) != N) throw Error(fmt::format("rack: the MPI partition has {} chips, the rack {}", owner.size(), N));
      for (int o : owner)
        if (o < 0 || o >= nranks) throw Error(fmt::format("rack: the MPI partition names rank {} of {}", o, nranks));
    }
    int mine = 0;
    for (int i = 0; i < N; ++i) mine += local(i);
    nthreads = opt.threads > 0 ? opt.threads : int(std::max(1u, std::thread::hardware_concurrency()));
    nthreads = std::max(1, std::min(nthreads, std::max(1, mine)));
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
    }
    // Distributed: every rank loads its chips, then all agree on the first chip that failed
    // (the error one process would have raised) and throw it.
    std::exception_ptr failed;
    int failed_chip = N;
    for (int i = 0; i < N && !failed; ++i) {
      if (!local(i)) {
        ctx[std::size_t(i)]->done = true;
        continue;
      }
      if (!dist) {
        load_chip(i);
        continue;
      }
      try {
        load_chip(i);
      } catch (...) {
        failed = std::current_exception();
        failed_chip = i;
      }
    }
    if (dist) agree(failed, failed_chip);
  }

  // Collective: when some rank failed, every rank throws the failure of the lowest `key` (the
  // first chip in one process's order), with the rank that saw it.
  void agree(std::exception_ptr mine, std::int64_t key) const {
    wire::Writer w;
    w.put<std::uint8_t>(mine != nullptr);
    if (mine) {
      w.put(key);
      wire::put_error(w, mine);
    }
    const auto all = mpi::allgather(w.b);
    int best = -1;
    std::int64_t best_key = 0;
    for (int r = 0; r < nranks; ++r) {
      wire::Reader rd(all[std::size_t(r)]);
      if (!rd.get<std::uint8_t>()) continue;
      const auto k = rd.get<std::int64_t>();
      if (best < 0 || k < best_key) {
        best = r;
        best_key = k;
      }
    }
    if (best < 0) return;
    wire::Reader rd(all[std::size_t(best)]);
    rd.get<std::uint8_t>();
    rd.get<std::int64_t>();
    mpi::mark_agreed(true);
    wire::throw_error(rd, fmt::format(" (MPI rank {})", best));
  }

  std::int64_t prefix(int i) const { return cfg.start_skew[std::size_t(i)] + prog.chips[std::size_t(i)].start_delay; }

  void load_chip(int i) {
    const auto& cp = prog.chips[std::size_t(i)];
    if (!cp.object) {
      ctx[std::size_t(i)]->done = true;
      return;
    }
    auto chip = std::make_unique<model::Chip>(cfg.chip(i), opt.mode, i);
    const std::string origin = fmt::format("chip {}: {}", i, cp.label.empty() ? "object" : cp.label);  // errors of Chip::load
    const std::int64_t lead = prefix(i);
    if (lead > 0) {
      // Start skew and start delay: the queues start `lead` cycles after the counter's 0.
      obj::Program p = *cp.object;
      std::vector<std::uint64_t> nops;
      for (std::int64_t left = lead; left > 0;) {
        const std::int64_t n = std::min<std::int64_t>(left, (std::int64_t(1) << 24) - 1);
        isa::Instr nop;
        nop.op = isa::Op::Nop;
        nop.v[0] = n;
        nops.push_back(isa::encode(nop));
        left -= n;
      }
      for (auto& q : p.queues)
        if (!q.words.empty()) q.words.insert(q.words.begin(), nops.begin(), nops.end());
      chip->load(p, origin);
    } else {
      chip->load(*cp.object, origin);
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
      // Timing-only: the rack checks arrivals per instance (resolve); the chip gets a
      // placeholder for each instance so that its own group-level check passes.
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
    const auto& lay = chips[std::size_t(chip)]->layout();
    return lay.slice(lay.queue(QueueId{q}).slice).name;
  }
  void locate(Diagnostic& d) const {
    if (d.chip < 0 || d.queue.empty() || d.loc) return;
    const auto& cp = prog.chips[std::size_t(d.chip)];
    if (!cp.source) return;
    if (const auto* s = cp.source->find(d.queue, d.cycle - prefix(d.chip))) d.loc = s->loc;
  }

  // ---- sends (phase 1, the sending chip's thread) ------------------------------------------
  void on_send(Ctx& x, int /*chip_id*/, int link, std::int64_t depart, std::span<const std::uint8_t> bytes) {
    if (link < 0 || link >= links || x.out[std::size_t(link)].peer < 0) {
      throw SimError(x.id, unit_name(x.id, x.cur_queue), queue_name(x.id, x.cur_queue),
                     depart - cfg.chip(x.id).lat(isa::LatClass::C2cSend),
                     fmt::format("SEND on link {}: the link is not wired in topology {}", link, cfg.topology.describe()));
    }
    auto& o = x.out[std::size_t(link)];
    const std::int64_t ser = o.t.serialisation;
    // Room on the link: no back-pressure, so an overlapping departure is a schedule error.
    auto& rc = o.recent;
    if (rc.size() > 8 || (!rc.empty() && rc.back().last() + ser <= x.window_start))
      rc.erase(std::remove_if(rc.begin(), rc.end(), [&](const Recent& r) { return r.last() + ser <= x.window_start; }),
               rc.end());
    std::int64_t clash = kInf;
    const bool in_order = rc.empty() || depart > rc.back().last();
    if (in_order) {
      if (!rc.empty() && rc.back().last() + ser > depart) clash = rc.back().last();
    } else {
      for (const auto& r : rc) {
        if (depart < r.d0) {
          if (r.d0 - depart < ser) clash = std::min(clash, r.d0);
          continue;
        }
        const std::int64_t j = r.step > 0 ? std::min(r.count - 1, (depart - r.d0) / r.step) : 0;
        const std::int64_t dj = r.d0 + j * r.step;
        if (depart - dj < ser) clash = std::min(clash, dj);
        if (j + 1 < r.count && dj + r.step - depart < ser) clash = std::min(clash, dj + r.step);
      }
    }
    if (clash != kInf) {
      Diagnostic d;
      d.chip = x.id;
      d.unit = unit_name(x.id, x.cur_queue);
      d.queue = queue_name(x.id, x.cur_queue);
      d.cycle = depart - o.t.c2c_send;
      d.message = fmt::format(
          "SEND on link {} (to chip {} link {}) departs in cycle {}, but the link is serialising the vector that "
          "departs in cycle {} (busy until {}; {} cycles per {}-byte vector). Links apply no back-pressure: "
          "SENDs on one link must be at least {} cycles apart",
          link, o.peer, o.peer_link, depart, clash, clash + ser, ser, V, ser);
      if (!opt.collect) throw SimError(d.chip, d.unit, d.queue, d.cycle, d.message);
      if (x.diags.size() < opt.max_diagnostics) x.diags.push_back(std::move(d));
    }
    if (in_order && !rc.empty() && (rc.back().count == 1 || depart - rc.back().last() == rc.back().step)) {
      if (rc.back().count == 1) rc.back().step = depart - rc.back().d0;
      ++rc.back().count;
    } else {
      rc.push_back(Recent{depart, 0, 1});
    }

    const std::uint64_t seq = o.seq++;
    bool corrupt = false;
    std::uint32_t nflips = 0;
    if (cfg.ber > 0) {
      auto flips = bit_errors(cfg.seed, x.id, link, seq, std::uint32_t((V + 4) * 8), cfg.ber);
      nflips = std::uint32_t(flips.size());
      if (!flips.empty()) {
        if (timing_only) {
          corrupt = true;  // no payload: every error is taken as detected (docs/rack.md)
        } else {
          std::vector<std::uint8_t> frame(bytes.begin(), bytes.end());
          const std::uint32_t crc = crc32(bytes);
          for (int b = 0; b < 4; ++b) frame.push_back(std::uint8_t(crc >> (8 * b)));
          for (auto f : flips) frame[f / 8] ^= std::uint8_t(1u << (f % 8));
          std::uint32_t rx = 0;
          for (int b = 0; b < 4; ++b) rx |= std::uint32_t(frame[std::size_t(V) + std::size_t(b)]) << (8 * b);
          frame.resize(std::size_t(V));
          corrupt = crc32(frame) != rx;
        }
      }
    }
    auto& pend = o.pending;
    if (pend.empty()) x.touched.emplace_back(o.peer, o.peer_link);
    const bool extend = timing_only && !corrupt && !pend.empty() && !pend.back().corrupt &&
                        seq == pend.back().seq0 + std::uint64_t(pend.back().count) &&
                        (pend.back().count == 1 ? depart > pend.back().depart0 : depart - pend.back().last() == pend.back().step);
    if (extend) {
      auto& b = pend.back();
      if (b.count == 1) b.step = depart - b.depart0;
      ++b.count;
    } else {
      Run r;
      r.depart0 = depart;
      r.seq0 = seq;
      r.corrupt = corrupt;
      r.flips = nflips;
      if (!timing_only) r.bytes.assign(bytes.begin(), bytes.end());
      pend.push_back(std::move(r));
    }
    auto& st = o.st;
    st.first_depart = st.transfers == 0 ? depart : std::min(st.first_depart, depart);
    st.last_free = std::max(st.last_free, depart + ser);
    ++st.transfers;
    st.bytes += V;
    st.busy_cycles += ser;
    if (corrupt) ++st.corrupted;
  }

  // ---- phase 1: one chip's share of a window -------------------------------------------------
  void run_chip(int i, std::int64_t E) {
    Ctx& x = *ctx[std::size_t(i)];
    const std::int64_t limit = ceil_div(E, x.k);
    try {
      x.done = chips[std::size_t(i)]->run(limit);
    } catch (const SimError& e) {
      Diagnostic d = from_sim_error(e);
      x.err = Err{sat_mul(e.cycle(), x.k), i, 1, std::move(d)};
    } catch (const std::exception& e) {
      Diagnostic d;
      d.chip = i;
      d.cycle = chips[std::size_t(i)]->next_event_cycle();
      d.message = e.what();
      x.err = Err{sat_mul(std::min(d.cycle, limit), x.k), i, 1, std::move(d)};
    }
  }

  // ---- phase 2: deliveries to one chip and the check of its RECVs ---------------------------
  void phase2(int d, std::int64_t E) {
    Ctx& x = *ctx[std::size_t(d)];
    std::sort(x.in_touched.begin(), x.in_touched.end());
    for (int l : x.in_touched) {
      const auto& port = cfg.topology.port(d, l);
      auto& o = ctx[std::size_t(port.peer)]->out[std::size_t(port.peer_link)];
      for (auto& r : o.pending) deliver(x, d, l, port.peer, port.peer_link, o, r);
      o.pending.clear();
    }
    x.in_touched.clear();
    for (auto& r : x.recvs) {
      auto& il = in[std::size_t(d) * std::size_t(links) + std::size_t(r.link)];
      il.groups.push_back(r.g);
      if (!il.listed) {
        il.listed = true;
        x.recv_links.push_back(r.link);
      }
    }
    x.recvs.clear();
    // RECV checks may wait (an error found later keeps its cycle, and every error is ordered by
    // cycle before one is raised): resolve now only to bound the memory of what waits.
    bool big = false;
    for (int l : x.recv_links) {
      const auto& il = in[std::size_t(d) * std::size_t(links) + std::size_t(l)];
      big |= il.runs.size() - il.head > 256 || il.groups.size() > 256;
    }
    if (big) resolve(d, E);
  }

  void deliver(Ctx& x, int d, int l, int src, int src_link, OutLink& o, Run& r) {
    InRun ir{r.depart0, r.step, r.count, 0, r.seq0, o.t.wire(), ctx[std::size_t(src)]->k, x.k, o.t.c2c_send};
    if (r.corrupt) {
      Diagnostic g;
      g.chip = d;
      g.unit = fmt::format("c2c link {}", l);
      g.cycle = ir.arrival(0);
      g.message = fmt::format(
          "CRC-32 mismatch: the vector sent by chip {} on link {} (departed cycle {}, transfer {}) arrived with {} "
          "flipped bit(s) (ber {:g}, seed {}); it is not delivered",
          src, src_link, r.depart0, r.seq0, r.flips, cfg.ber, cfg.seed);
      if (!opt.collect) {
        x.corrupt.push_back(Err{ir.arrival_ticks(0), d, 0, std::move(g)});
        return;
      }
      if (x.diags.size() < opt.max_diagnostics) x.diags.push_back(std::move(g));
    }
    if (!timing_only && chips[std::size_t(d)]) chips[std::size_t(d)]->receive(l, ir.arrival(0), r.bytes);
    if (ir.ks == ir.kr) {
      o.st.latency_cycles.add_n(ir.wire * ir.ks, r.count);
    } else {
      for (std::int64_t j = 0; j < r.count; ++j)
        o.st.latency_cycles.add(ir.arrival(j) * ir.kr - (ir.depart0 + j * ir.step) * ir.ks);
    }
    auto& il = in[std::size_t(d) * std::size_t(links) + std::size_t(l)];
    if (il.head >= il.runs.size()) {
      il.runs.clear();
      il.head = 0;
    }
    if (il.runs.empty() || ir.arrival_ticks(0) >= il.runs.back().arrival_ticks(il.runs.back().count - 1)) {
      il.runs.push_back(ir);
      return;
    }
    // Interleaved with runs already here (timing-only REPEAT groups of two queues on one link):
    // split everything pending into single transfers and merge by arrival.
    std::vector<InRun> singles;
    auto split = [&](const InRun& a, std::int64_t from) {
      for (std::int64_t j = from; j < a.count; ++j) {
        InRun s1 = a;
        s1.depart0 = a.depart0 + j * a.step;
        s1.seq0 = a.seq0 + std::uint64_t(j);
        s1.step = 0;
        s1.count = 1;
        s1.i = 0;
        singles.push_back(s1);
      }
    };
    for (std::size_t j = il.head; j < il.runs.size(); ++j) split(il.runs[j], il.runs[j].i);
    split(ir, 0);
    std::stable_sort(singles.begin(), singles.end(),
                     [](const InRun& a, const InRun& b) { return a.arrival_ticks(0) < b.arrival_ticks(0); });
    il.runs = std::move(singles);
    il.head = 0;
  }

  // Matches the RECV instances of chip d before the window's end with arrivals, in order.
  void resolve(int d, std::int64_t E) {
    Ctx& x = *ctx[std::size_t(d)];
    const std::int64_t limit = E >= kInf ? kInf : ceil_div(E, x.k);
    for (std::size_t li = 0; li < x.recv_links.size();) {
      const int l = x.recv_links[li];
      auto& il = in[std::size_t(d) * std::size_t(links) + std::size_t(l)];
      while (!il.groups.empty()) {
        std::size_t gi = 0;
        for (std::size_t j = 1; j < il.groups.size(); ++j)
          if (il.groups[j].next() < il.groups[gi].next()) gi = j;
        auto& g = il.groups[gi];
        const std::int64_t cyc = g.next();
        if (cyc >= limit) break;
        while (il.head < il.runs.size() && il.runs[il.head].i >= il.runs[il.head].count) ++il.head;
        InRun* a = il.head < il.runs.size() ? &il.runs[il.head] : nullptr;
        if (!a || a->arrival(a->i) > cyc) {
          if (timing_only) {
            Diagnostic dg;
            dg.chip = d;
            dg.unit = unit_name(d, g.queue);
            dg.queue = queue_name(d, g.queue);
            dg.cycle = cyc;
            const auto& port = cfg.topology.port(d, l);
            if (port.peer < 0)
              dg.message = fmt::format("RECV on link {}: the link is not wired in topology {}", l, cfg.topology.describe());
            else if (a)
              dg.message = fmt::format(
                  "RECV on link {}: nothing has arrived by this cycle; the next vector from chip {} (link {}) arrives in "
                  "cycle {}, {} cycles later",
                  l, port.peer, port.peer_link, a->arrival(a->i), a->arrival(a->i) - cyc);
            else
              dg.message = fmt::format(
                  "RECV on link {}: nothing has arrived by this cycle and no vector from chip {} (link {}) is on its way",
                  l, port.peer, port.peer_link);
            if (!opt.collect) {
              const std::int64_t t = sat_mul(cyc, x.k);
              if (!x.rx_err || t < x.rx_err->ticks) x.rx_err = Err{t, d, 2, std::move(dg)};
              break;  // this link stops here; the run stops at the barrier
            }
            if (x.diags.size() < opt.max_diagnostics) x.diags.push_back(std::move(dg));
          }
        } else {
          const auto& port = cfg.topology.port(d, l);
          auto& st = ctx[std::size_t(port.peer)]->out[std::size_t(port.peer_link)].st;
          st.wait_cycles.add(cyc - a->arrival(a->i));
          st.send_to_recv_cycles.add(sat_mul(cyc, x.k) - a->issue_ticks(a->i));
          ++a->i;
        }
        if (++g.k >= g.n) il.groups.erase(il.groups.begin() + std::ptrdiff_t(gi));
      }
      if (il.head > 64 && il.head * 2 > il.runs.size()) {
        il.runs.erase(il.runs.begin(), il.runs.begin() + std::ptrdiff_t(il.head));
        il.head = 0;
      }
      if (il.groups.empty()) {
        il.listed = false;
        x.recv_links[li] = x.recv_links.back();
        x.recv_links.pop_back();
        continue;
      }
      ++li;
    }
  }

  SimError located(Err e) {
    locate(e.d);
    const auto& d = e.d;
    return SimError(d.chip, d.unit.empty() ? "rack" : d.unit, d.queue, d.cycle,
                    d.message + (d.loc ? fmt::format(" [{}:{}:{}]", d.loc->file, d.loc->line, d.loc->col) : ""));
  }
  [[noreturn]] void raise(Err e) { throw located(std::move(e)); }

  std::int64_t tag_window = 0;  // where findings go in one process's order (distributed)
  void add_diag(Diagnostic d) {
    if (dist) {
      // Tagged with (window, chip): merged across ranks in that order at the end of the run.
      if (tagged.size() >= opt.max_diagnostics) return;
      locate(d);
      const int c = d.chip;
      tagged.push_back(Tagged{tag_window, c, std::move(d)});
      return;
    }
    if (diags.size() >= opt.max_diagnostics) return;
    locate(d);
    diags.push_back(std::move(d));
  }

  // The earliest pending event of this process's chips (ticks). Chips with an error in checker
  // mode stop at this barrier.
  std::int64_t local_start() const {
    std::int64_t S = kInf;
    for (int i = 0; i < N; ++i) {
      const auto& x = *ctx[std::size_t(i)];
      if (x.done || x.dead || (opt.collect && x.err)) continue;
      S = std::min(S, sat_mul(chips[std::size_t(i)]->next_event_cycle(), x.k));
    }
    return S;
  }

  // ---- distributed: transfers between ranks at the barrier (docs/distributed.md) ---------------
  // Chip `src`'s pending runs on the link to chip p (link pl of p), appended to rank owner[p]'s
  // buffer: [src, link, runs, then per run depart0 step count seq0 corrupt flips bytes].
  void send_runs(std::vector<mpi::Bytes>& outgoing, int src, int p, int pl) {
    const int link = cfg.topology.port(p, pl).peer_link;
    auto& o = ctx[std::size_t(src)]->out[std::size_t(link)];
    wire::Writer w;
    w.b.swap(outgoing[std::size_t(owner[std::size_t(p)])]);
    w.put<std::int32_t>(src);
    w.put<std::int32_t>(link);
    w.put<std::uint64_t>(o.pending.size());
    for (const auto& r : o.pending) {
      w.put(r.depart0);
      w.put(r.step);
      w.put(r.count);
      w.put(r.seq0);
      w.put<std::uint8_t>(r.corrupt);
      w.put(r.flips);
      w.bytes(r.bytes);
    }
    o.pending.clear();
    w.b.swap(outgoing[std::size_t(owner[std::size_t(p)])]);
  }
  // The runs other ranks sent to this rank's chips go where a local sender would have left them
  // (the sender's OutLink here, a stand-in whose receiver-side statistics this rank keeps).
  void receive_runs(const std::vector<mpi::Bytes>& incoming, std::vector<char>& mark) {
    for (const auto& buf : incoming) {
      wire::Reader rd(buf);
      while (!rd.done()) {
        const int src = rd.get<std::int32_t>();
        const int link = rd.get<std::int32_t>();
        auto& o = ctx[std::size_t(src)]->out[std::size_t(link)];
        for (auto n = rd.get<std::uint64_t>(); n > 0; --n) {
          Run r;
          r.depart0 = rd.get<std::int64_t>();
          r.step = rd.get<std::int64_t>();
          r.count = rd.get<std::int64_t>();
          r.seq0 = rd.get<std::uint64_t>();
          r.corrupt = rd.get<std::uint8_t>() != 0;
          r.flips = rd.get<std::uint32_t>();
          r.bytes = rd.bytes();
          o.pending.push_back(std::move(r));
        }
        const auto& port = cfg.topology.port(src, link);
        mark[std::size_t(port.peer)] = 1;
        ctx[std::size_t(port.peer)]->in_touched.push_back(port.peer_link);
      }
    }
  }
  // Collective: the first error in rack time over all ranks (ties: kind, then chip, as in one
  // process); every rank throws it.
  void agree_first(std::optional<Err>& first) {
    wire::Writer w;
    w.put<std::uint8_t>(first.has_value());
    if (first) {
      w.put(first->ticks);
      w.put<std::int32_t>(first->kind);
      w.put<std::int32_t>(first->chip);
      wire::put_error(w, std::make_exception_ptr(located(std::move(*first))));
    }
    first.reset();
    const auto all = mpi::allgather(w.b);
    int best = -1;
    std::tuple<std::int64_t, int, int> key{};
    for (int r = 0; r < nranks; ++r) {
      wire::Reader rd(all[std::size_t(r)]);
      if (!rd.get<std::uint8_t>()) continue;
      const auto t = rd.get<std::int64_t>();
      const int kind = rd.get<std::int32_t>();
      const int chip = rd.get<std::int32_t>();
      if (best < 0 || std::tie(t, kind, chip) < key) {
        best = r;
        key = {t, kind, chip};
      }
    }
    if (best < 0) return;
    wire::Reader rd(all[std::size_t(best)]);
    rd.get<std::uint8_t>();
    rd.get<std::int64_t>();
    rd.get<std::int32_t>();
    rd.get<std::int32_t>();
    mpi::mark_agreed(true);
    wire::throw_error(rd, fmt::format(" (MPI rank {})", best));
  }
  // Collective, checker mode: every rank's findings in one process's order.
  void gather_findings() {
    wire::Writer w;
    for (const auto& t : tagged) {
      w.put(t.window);
      w.put<std::int32_t>(t.chip);
      wire::put_diag(w, t.d);
    }
    tagged.clear();
    std::vector<Tagged> all;
    for (const auto& b : mpi::allgather(w.b)) {
      wire::Reader rd(b);
      while (!rd.done()) {
        const auto win = rd.get<std::int64_t>();
        const int chip = rd.get<std::int32_t>();
        all.push_back(Tagged{win, chip, wire::get_diag(rd)});
      }
    }
    std::stable_sort(all.begin(), all.end(),
                     [](const Tagged& a, const Tagged& b) { return std::tie(a.window, a.chip) < std::tie(b.window, b.chip); });
    for (auto& t : all)
      if (diags.size() < opt.max_diagnostics) diags.push_back(std::move(t.d));
  }

  void run() {
    if (ran) throw Error("rack: run() may be called once");
    ran = true;
    const auto t0 = std::chrono::steady_clock::now();
    std::unique_ptr<Pool> pool;
    if (nthreads > 1) pool = std::make_unique<Pool>(nthreads);
    // A phase goes to the pool only when its expected work is well above the cost of waking the
    // workers (a few microseconds on an idle host, a scheduler time slice on a loaded one);
    // the estimate (seconds per item, per phase) follows what was measured. Who runs a chip
    // never changes what it computes.
    double per_item[2] = {1e-6, 1e-6};
    auto parallel = [&](int phase, const std::vector<int>& items, auto&& fn) {
      if (items.empty()) return;
      const bool par = pool && items.size() > 1 && double(items.size()) * per_item[phase] >= opt.min_parallel_work;
      std::atomic<std::int64_t> ns{0};
      const std::function<void(int)> f = [&](int j) {
        const auto a = std::chrono::steady_clock::now();
        fn(items[std::size_t(j)]);
        ns.fetch_add(std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - a).count(),
                     std::memory_order_relaxed);
      };
      if (par) {
        pool->run(int(items.size()), f);
      } else {
        for (int j = 0; j < int(items.size()); ++j) f(j);
      }
      per_item[phase] = 0.7 * per_item[phase] + 0.3 * double(ns.load()) * 1e-9 / double(items.size());
    };
    // Distributed: an unexpected error in this rank's share of a window is carried to the
    // barrier, where every rank learns of it (instead of leaving the others waiting).
    auto guarded = [&](auto&& fn) {
      if (!dist) return fn();
      if (fatal) return;
      try {
        fn();
      } catch (...) {
        fatal = std::current_exception();
      }
    };
    std::vector<int> active, deliver_to;
    std::vector<char> mark(std::size_t(N), 0);
    // Chips whose program is empty finish at once.
    for (int i = 0; i < N; ++i)
      if (chips[std::size_t(i)] && chips[std::size_t(i)]->done()) run_chip(i, 0);
    std::int64_t S = local_start();
    if (dist) {
      wire::Writer w;
      w.put(S);
      for (const auto& b : mpi::allgather(w.b)) S = std::min(S, wire::Reader(b).get<std::int64_t>());
    }
    for (;;) {
      const std::int64_t E = S >= kInf ? kInf : std::min(kInf, S + L);
      // Phase 1: every chip with events before E runs up to E.
      active.clear();
      if (S < kInf) {
        for (int i = 0; i < N; ++i) {
          auto& x = *ctx[std::size_t(i)];
          if (x.done || x.dead) continue;
          if (sat_mul(chips[std::size_t(i)]->next_event_cycle(), x.k) < E) {
            x.window_start = ceil_div(S, x.k);
            active.push_back(i);
          }
        }
        ++nwindows;
        parallel(0, active, [&](int i) { run_chip(i, E); });
      }
      // Phase 2: deliveries per receiving chip (each link has one receiver: no sharing), then
      // the RECV checks up to E. Distributed: transfers to chips of other ranks go there first
      // (one all-to-all per window).
      std::vector<mpi::Bytes> outgoing(std::size_t(dist ? nranks : 0));
      deliver_to.clear();
      for (int i : active) {
        auto& x = *ctx[std::size_t(i)];
        for (auto [p, pl] : x.touched) {
          if (!local(p)) {
            send_runs(outgoing, i, p, pl);
            continue;
          }
          mark[std::size_t(p)] = 1;
          ctx[std::size_t(p)]->in_touched.push_back(pl);
        }
        x.touched.clear();
        if (!x.recvs.empty()) mark[std::size_t(i)] = 1;
      }
      if (dist && S < kInf) receive_runs(mpi::alltoall(outgoing), mark);
      for (int i = 0; i < N; ++i) {
        if (mark[std::size_t(i)]) deliver_to.push_back(i);
        mark[std::size_t(i)] = 0;
      }
      guarded([&] { parallel(1, deliver_to, [&](int d) { phase2(d, E); }); });
      // Deferred RECV checks: at the end, and whenever an error is about to be raised (so that
      // an earlier RECV mismatch is not overtaken).
      bool errors = !pending_corrupt.empty();
      for (int i = 0; i < N && !errors; ++i) errors = ctx[std::size_t(i)]->err.has_value() || !ctx[std::size_t(i)]->corrupt.empty();
      bool rx = false;
      std::int64_t S_next = kInf;
      if (dist) {
        // The barrier's agreement (one all-gather per window): next window start, whether any
        // rank has an error to order, and unexpected failures.
        for (int i = 0; i < N && !rx; ++i) rx = ctx[std::size_t(i)]->rx_err.has_value();
        wire::Writer w;
        w.put(local_start());
        w.put<std::uint8_t>(errors);
        w.put<std::uint8_t>(rx);
        w.put<std::uint8_t>(fatal != nullptr);
        bool any_fatal = false;
        for (const auto& b : mpi::allgather(w.b)) {
          wire::Reader rd(b);
          S_next = std::min(S_next, rd.get<std::int64_t>());
          errors |= rd.get<std::uint8_t>() != 0;
          rx |= rd.get<std::uint8_t>() != 0;
          any_fatal |= rd.get<std::uint8_t>() != 0;
        }
        if (any_fatal) agree(fatal, me);
      }
      if (S >= kInf || errors) {
        deliver_to.clear();
        for (int i = 0; i < N; ++i)
          if (!ctx[std::size_t(i)]->recv_links.empty()) deliver_to.push_back(i);
        guarded([&] { parallel(1, deliver_to, [&](int d) { resolve(d, E); }); });
        if (dist) {
          bool any_fatal = false;
          wire::Writer w;
          w.put<std::uint8_t>(fatal != nullptr);
          for (const auto& b : mpi::allgather(w.b)) any_fatal |= b.at(0) != 0;
          if (any_fatal) agree(fatal, me);
        }
      }
      // Barrier: findings and errors in chip order; the first error in rack time wins.
      tag_window = nwindows;
      std::optional<Err> first;
      auto consider = [&](Err e) {
        if (!first || std::tie(e.ticks, e.kind, e.chip) < std::tie(first->ticks, first->kind, first->chip))
          first = std::move(e);
      };
      for (int i = 0; i < N; ++i) {
        auto& x = *ctx[std::size_t(i)];
        for (auto& dg : x.diags) add_diag(std::move(dg));
        x.diags.clear();
        for (auto& c : x.corrupt) pending_corrupt.push_back(std::move(c));
        x.corrupt.clear();
        if (x.rx_err) {
          consider(std::move(*x.rx_err));
          x.rx_err.reset();
        }
        if (!x.err) continue;
        if (opt.collect) {
          add_diag(std::move(x.err->d));
          x.dead = true;
        } else {
          consider(std::move(*x.err));
        }
        x.err.reset();
      }
      for (auto it = pending_corrupt.begin(); it != pending_corrupt.end();) {
        if (it->ticks < E) {
          consider(*it);
          it = pending_corrupt.erase(it);
        } else {
          ++it;
        }
      }
      if (dist && (errors || rx || S >= kInf)) agree_first(first);
      if (first) raise(std::move(*first));
      if (S >= kInf) break;
      S = dist ? S_next : local_start();
    }
    // Vectors that arrived but were never taken.
    tag_window = kInf;
    for (int c = 0; c < N; ++c)
      for (int l = 0; l < links; ++l) {
        auto& il = in[std::size_t(c) * std::size_t(links) + std::size_t(l)];
        const auto& port = cfg.topology.port(c, l);
        for (std::size_t j = il.head; j < il.runs.size(); ++j) {
          const auto& a = il.runs[j];
          if (a.i >= a.count) continue;
          ctx[std::size_t(port.peer)]->out[std::size_t(port.peer_link)].st.unreceived += a.count - a.i;
          if (opt.collect) {
            Diagnostic d;
            d.chip = c;
            d.unit = fmt::format("c2c link {}", l);
            d.cycle = a.arrival(a.i);
            d.warning = true;
            d.message = fmt::format("{} vector(s) from chip {} (link {}) arriving from this cycle on are never received "
                                    "(no RECV takes them)",
                                    a.count - a.i, port.peer, port.peer_link);
            add_diag(std::move(d));
          }
        }
      }
    if (dist && opt.collect) gather_findings();
    wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  // Distributed (collective): the statistics of every chip and link from the ranks that hold
  // them. A link's sender-side counts live on the sender's rank, its arrival, wait and
  // never-received figures on the receiver's: each is taken from where it was counted, in the
  // order one process counts it, so the merged figures are bit-identical.
  void gather_stats(std::vector<model::ChipStats>& chip_st, std::vector<LinkStats>& link_st) const {
    wire::Writer w;
    for (int i = 0; i < N; ++i) {
      if (!local(i)) continue;
      if (chips[std::size_t(i)]) {
        w.put<std::uint8_t>(0);
        w.put<std::int32_t>(i);
        wire::put_chip_stats(w, chips[std::size_t(i)]->stats());
      }
      for (int l = 0; l < links; ++l) {
        const auto& st = ctx[std::size_t(i)]->out[std::size_t(l)].st;
        if (st.transfers == 0) continue;
        w.put<std::uint8_t>(1);
        w.put<std::int32_t>(i);
        w.put<std::int32_t>(l);
        for (auto v : {st.transfers, st.bytes, st.busy_cycles, st.first_depart, st.last_free, st.corrupted}) w.put(v);
      }
    }
    for (int i = 0; i < N; ++i)
      for (int l = 0; l < links; ++l) {
        const auto& o = ctx[std::size_t(i)]->out[std::size_t(l)];
        if (o.peer < 0 || !local(o.peer)) continue;
        const auto& st = o.st;
        if (st.latency_cycles.n == 0 && st.wait_cycles.n == 0 && st.send_to_recv_cycles.n == 0 && st.unreceived == 0) continue;
        w.put<std::uint8_t>(2);
        w.put<std::int32_t>(i);
        w.put<std::int32_t>(l);
        wire::put_mam(w, st.latency_cycles);
        wire::put_mam(w, st.wait_cycles);
        wire::put_mam(w, st.send_to_recv_cycles);
        w.put(st.unreceived);
      }
    for (const auto& b : mpi::allgather(w.b)) {
      wire::Reader rd(b);
      while (!rd.done()) {
        const auto tag = rd.get<std::uint8_t>();
        const int i = rd.get<std::int32_t>();
        if (tag == 0) {
          chip_st[std::size_t(i)] = wire::get_chip_stats(rd);
          continue;
        }
        auto& st = link_st[std::size_t(i) * std::size_t(links) + std::size_t(rd.get<std::int32_t>())];
        if (tag == 1) {
          for (auto* v : {&st.transfers, &st.bytes, &st.busy_cycles, &st.first_depart, &st.last_free, &st.corrupted})
            *v = rd.get<std::int64_t>();
        } else {
          st.latency_cycles = wire::get_mam(rd);
          st.wait_cycles = wire::get_mam(rd);
          st.send_to_recv_cycles = wire::get_mam(rd);
          st.unreceived = rd.get<std::int64_t>();
        }
      }
    }
  }

  RackStats stats() const {
    RackStats s;
    s.chips = N;
    s.reference_clock_hz = cfg.base().clock_hz;
    s.chip.resize(std::size_t(N));
    std::vector<model::ChipStats> chip_st(static_cast<std::size_t>(N));
    std::vector<LinkStats> link_st;  // distributed: every link's counts, from their ranks
    for (int i = 0; i < N; ++i) {
      if (chips[std::size_t(i)]) chip_st[std::size_t(i)] = chips[std::size_t(i)]->stats();
      else chip_st[std::size_t(i)].clock_hz = cfg.chip(i).clock_hz;
    }
    if (dist) {
      link_st.resize(std::size_t(N) * std::size_t(links));
      for (int i = 0; i < N; ++i)
        for (int l = 0; l < links; ++l) {
          const auto& o = ctx[std::size_t(i)]->out[std::size_t(l)].st;
          auto& st = link_st[std::size_t(i) * std::size_t(links) + std::size_t(l)];
          st.chip = o.chip;
          st.link = o.link;
          st.peer = o.peer;
          st.peer_link = o.peer_link;
          st.cls = o.cls;
          st.serialisation = o.serialisation;
          st.latency = o.latency;
          st.bytes_per_cycle = o.bytes_per_cycle;
        }
      gather_stats(chip_st, link_st);
    }
    for (int i = 0; i < N; ++i) {
      s.chip[std::size_t(i)] = std::move(chip_st[std::size_t(i)]);
      const double ref = double(s.chip[std::size_t(i)].cycles * ctx[std::size_t(i)]->k) / cfg.ticks_per_reference_cycle;
      s.cycles = std::max(s.cycles, std::int64_t(std::ceil(ref - 1e-9)));
      for (int l = 0; l < links; ++l) {
        const auto& st = dist ? link_st[std::size_t(i) * std::size_t(links) + std::size_t(l)]
                              : ctx[std::size_t(i)]->out[std::size_t(l)].st;
        if (st.transfers == 0) continue;
        LinkStats ls = st;
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
        s.latency_cycles.merge(ls.latency_cycles);
        s.send_to_recv_cycles.merge(ls.send_to_recv_cycles);
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

bool Rack::has_program(int c) const { return impl_->prog.chips.at(std::size_t(c)).object != nullptr; }
bool Rack::distributed() const { return impl_->dist; }
int Rack::rank_of(int c) const { return impl_->dist ? impl_->owner.at(std::size_t(c)) : 0; }

namespace {
// Runs `fn` on the rank that owns chip c and gives its bytes to every rank; an error there is
// thrown on every rank.
std::vector<std::uint8_t> from_owner(const Rack& rack, int c, const std::function<std::vector<std::uint8_t>()>& fn,
                                     const std::function<void(std::exception_ptr)>& agree) {
  if (!rack.distributed()) return fn();
  const int root = rack.rank_of(c);
  std::exception_ptr err;
  std::vector<std::uint8_t> bytes;
  if (mpi::rank() == root) {
    try {
      bytes = fn();
    } catch (...) {
      err = std::current_exception();
    }
  }
  agree(err);
  return mpi::bcast(root, bytes);
}
}  // namespace

std::vector<std::uint8_t> Rack::read_symbol(int c, const std::string& symbol) {
  return from_owner(
      *this, c,
      [&] {
        auto* chip = impl_->chips.at(std::size_t(c)).get();
        if (!chip) throw Error(fmt::format("chip {} has no program: no symbol {}", c, symbol));
        return chip->read_symbol(symbol);
      },
      [&](std::exception_ptr e) { if (impl_->dist) impl_->agree(e, 0); });
}

std::vector<std::vector<std::uint8_t>> Rack::take_dma_out(int c, int channel) {
  const auto bytes = from_owner(
      *this, c,
      [&] {
        auto* chip = impl_->chips.at(std::size_t(c)).get();
        if (!chip) throw Error(fmt::format("chip {} has no program: nothing on DMA channel {}", c, channel));
        wire::Writer w;
        for (const auto& v : chip->take_dma_out(channel)) w.bytes(v);
        return w.b;
      },
      [&](std::exception_ptr e) { if (impl_->dist) impl_->agree(e, 0); });
  std::vector<std::vector<std::uint8_t>> out;
  wire::Reader rd(bytes);
  while (!rd.done()) out.push_back(rd.bytes());
  return out;
}

void Rack::save_outputs() const {
  const auto& I = *impl_;
  if (I.timing_only) return;
  // (file, tensor) in chip order; distributed, each rank reads its chips' and rank 0 writes.
  struct Item {
    int chip;
    std::string file;
    io::Tensor t;
  };
  std::vector<Item> items;
  std::exception_ptr err;
  int err_chip = I.N;
  for (int c = 0; c < I.N && !err; ++c) {
    auto* chip = I.chips[std::size_t(c)].get();
    if (!chip) continue;
    const auto& cp = I.prog.chips[std::size_t(c)];
    try {
      for (const auto& [sym, file] : cp.outputs) {
        const auto& s = chip->symbol(sym);
        items.push_back(Item{c, file, num::dtype_to_tensor(chip->read_symbol(sym), s.dtype, s.shape)});
      }
      for (const auto& [ch, file] : cp.dma_out) {
        auto vs = chip->take_dma_out(ch);
        io::Tensor t;
        t.type = io::ElemType::U8;
        t.shape = {std::int64_t(vs.size()), I.V};
        for (auto& v : vs) t.data.insert(t.data.end(), v.begin(), v.end());
        items.push_back(Item{c, file, std::move(t)});
      }
    } catch (...) {
      if (!I.dist) throw;
      err = std::current_exception();
      err_chip = c;
    }
  }
  if (I.dist) {
    I.agree(err, err_chip);
    wire::Writer w;
    for (const auto& it : items) {
      w.put<std::int32_t>(it.chip);
      w.str(it.file);
      w.put(it.t.type);
      w.put<std::uint64_t>(it.t.shape.size());
      for (auto d : it.t.shape) w.put<std::int64_t>(d);
      w.bytes(it.t.data);
    }
    items.clear();
    for (const auto& b : mpi::gather(w.b)) {
      wire::Reader rd(b);
      while (!rd.done()) {
        Item it;
        it.chip = rd.get<std::int32_t>();
        it.file = rd.str();
        it.t.type = rd.get<io::ElemType>();
        it.t.shape.resize(rd.count(sizeof(std::int64_t)));
        for (auto& d : it.t.shape) d = rd.get<std::int64_t>();
        it.t.data = rd.bytes();
        items.push_back(std::move(it));
      }
    }
    std::stable_sort(items.begin(), items.end(), [](const Item& a, const Item& b) { return a.chip < b.chip; });
  }
  // Only rank 0 writes (items is empty elsewhere); a failure to write is every rank's error.
  try {
    for (const auto& it : items) io::save_npy(it.t, it.file);
  } catch (...) {
    if (!I.dist) throw;
    err = std::current_exception();
  }
  if (I.dist) I.agree(err, 0);
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
