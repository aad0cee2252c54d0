// Lockstep of the RTL against the model (rtl/include/lpu/rtl/lockstep.hpp).
#include "lpu/rtl/lockstep.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <random>

#include "lpu/common/errors.hpp"
#include "lpu/isa/isa.hpp"
#include "lpu/model/chip.hpp"

namespace lpu::rtl {

namespace {

using isa::Op;

std::string hex(const std::uint8_t* p, std::size_t n) {
  std::string s;
  for (std::size_t i = 0; i < n; ++i) s += fmt::format("{:02x}", p[i]);
  return s;
}
std::string hexv(const std::uint8_t* p) { return p ? hex(p, kVectorBytes) : "empty"; }

std::string stream_name(int s, Dir d) { return fmt::format("s{}{}", s, d == Dir::East ? 'e' : 'w'); }

// Each RTL SRAM write / model-derived write, for comparison.
struct SramEv {
  int slice;
  std::uint8_t mask;
  std::array<int, 2> rows;
  Vec data;
  std::string what;  // the instruction
};
struct OutEv {
  int index;  // link or channel
  Vec data;
};
// An LWM row written into the plane's staging buffer at the end of a cycle (docs/timing.md rule
// 15a): the model's derived from the LWM's issue (its slice's row as it is then, landing
// mem_lwm later), the RTL's from RtlChip::weight_rows().
struct WbEv {
  int slice;
  int row;
  Vec data;
  std::string what;
};
// An accumulator write (model: Observer::on_acc_write; RTL: RtlChip::acc_write()).
struct AccEv {
  int acc = 0;
  int n = 0;           // elements compared (the model's)
  bool flt = false;    // f32 elements (the model's)
  std::array<std::uint8_t, 4 * kVectorBytes> data{};
  std::string what;
};

// The model's SRAM and accumulator writes, by commit cycle (Chip::Observer).
class WriteObserver : public model::Chip::Observer {
 public:
  WriteObserver(const RtlChip& rtl, const Layout& L) : rtl_(rtl), L_(L) {}
  std::map<std::int64_t, std::vector<SramEv>> sram;  // commit cycle -> writes
  std::map<std::int64_t, std::vector<AccEv>> acc;    // commit cycle -> writes
  std::map<int, std::string> mem_what;               // slice position -> last WRITE/SCATTER issued
  std::map<std::int64_t, std::string> mm_what;       // issue cycle -> MM/MMA issued

  void on_sram_write(int pos, int row, int offset, const std::uint8_t* data, int bytes, std::int64_t,
                     std::int64_t commit) override {
    const int slice = rtl_.slice_index(L_.slice(SliceId{pos}).name);
    auto& v = sram[commit];
    // One write port per slice: the parts of one WRITE/SCATTER share an entry; a part that is
    // already there belongs to a second write in the cycle, which gets its own (a mismatch).
    const int s0 = offset / 16, s1 = (offset + bytes - 1) / 16;
    SramEv* e = nullptr;
    for (auto& x : v)
      if (x.slice == slice && !(x.mask & (((2 << s1) - 1) & ~((1 << s0) - 1)))) e = &x;
    if (!e) {
      v.push_back(SramEv{slice, 0, {0, 0}, {}, mem_what[pos]});
      e = &v.back();
    }
    for (int s = s0; s <= s1; ++s) {
      e->mask = std::uint8_t(e->mask | (1 << s));
      e->rows[std::size_t(s)] = row;
    }
    std::memcpy(e->data.data() + offset, data, std::size_t(bytes));
  }
  void on_acc_write(int, int a, std::int64_t cycle, std::int64_t commit, bool flt, const std::uint32_t* value,
                    int n) override {
    AccEv e;
    e.acc = a;
    e.flt = flt;
    e.n = std::min(n, kVectorBytes);
    std::memcpy(e.data.data(), value, std::size_t(e.n) * 4);
    if (auto it = mm_what.find(cycle); it != mm_what.end()) e.what = it->second;
    acc[commit].push_back(std::move(e));
  }

 private:
  const RtlChip& rtl_;
  const Layout& L_;
};

class Loopback : public model::LinkSink {
 public:
  Loopback(model::Chip& c, int lat, std::map<std::int64_t, std::vector<OutEv>>& ev) : chip_(c), lat_(lat), ev_(ev) {}
  void send(int, int link, std::int64_t depart, std::span<const std::uint8_t> bytes) override {
    OutEv e{link, {}};
    std::memcpy(e.data.data(), bytes.data(), std::min(bytes.size(), e.data.size()));
    ev_[depart].push_back(e);
    chip_.receive(link, depart + lat_, bytes);
  }

 private:
  model::Chip& chip_;
  int lat_;
  std::map<std::int64_t, std::vector<OutEv>>& ev_;
};

// The model's accumulator value against the RTL's: int32 bit for bit; f32 bit for bit except
// that any NaN equals any NaN (an accumulator's NaN payload is not architectural: every
// readout canonicalises it, docs/isa.md, and host arithmetic propagates payloads by operand
// order, which the compiler may swap).
bool same_acc(const AccEv& e, const AccEv& g) {
  for (int i = 0; i < e.n; ++i) {
    std::uint32_t a, b;
    std::memcpy(&a, e.data.data() + 4 * i, 4);
    std::memcpy(&b, g.data.data() + 4 * i, 4);
    if (a == b) continue;
    const bool nan_a = (a & 0x7FFFFFFFu) > 0x7F800000u, nan_b = (b & 0x7FFFFFFFu) > 0x7F800000u;
    if (!(e.flt && nan_a && nan_b)) return false;
  }
  return true;
}

}  // namespace

std::string describe_word(std::uint64_t w) {
  try {
    auto in = isa::decode(w);
    const auto& ii = isa::info(in.op);
    std::string s(ii.mnemonic);
    if (ii.types) s += fmt::format(".{}", isa::dtype_info(in.t).name);
    if (ii.types2) s += fmt::format(".{}", isa::dtype_info(in.t2).name);
    for (int j = 0; j < ii.num_operands; ++j) {
      const auto& od = ii.operands[std::size_t(j)];
      const auto v = in.v[std::size_t(j)];
      s += j ? ", " : " ";
      if (od.kind == isa::Kind::Stream) s += stream_name(int(v & 63), (v & 64) ? Dir::West : Dir::East);
      else if (od.kind == isa::Kind::Addr) s += fmt::format("[r{} + {}]", isa::addr_reg(v), isa::addr_offset(v));
      else if (od.kind == isa::Kind::Reg) s += fmt::format("r{}", v);
      else s += fmt::format("{}", v);
    }
    return fmt::format("{} ({:#018x})", s, w);
  } catch (const std::exception&) {
    return fmt::format("{:#018x}", w);
  }
}

std::string Mismatch::str() const {
  return fmt::format("lockstep mismatch in cycle {}: {}: {}\n  expected (model): {}\n  got (RTL):        {}", cycle, unit,
                     where, expected, got);
}

std::string LockstepResult::report() const {
  if (mismatch) return mismatch->str();
  return fmt::format("lockstep ok: {} cycles, {} stream register-cycles ({} with a value), {} issues, {} SRAM writes, "
                     "{} LWM rows, {} accumulator writes, {} ACCRD, {} DMA out, {} C2C vectors; program length model {} / RTL {}{}",
                     stats.cycles, stats.stream_checks, stats.stream_values, stats.issues, stats.sram_writes,
                     stats.weight_rows, stats.acc_writes, stats.accrd, stats.dma_out, stats.c2c, stats.model_cycles, stats.rtl_cycles,
                     error.empty() ? "" : "; both stopped with: " + error);
}

std::vector<Vec> lockstep_dma_vectors(const LockstepOptions& opt, int chan) {
  std::mt19937_64 rng(opt.dma_seed * 1000003u + std::uint64_t(chan));
  std::vector<Vec> out(std::size_t(std::max(0, opt.dma_vectors)));
  for (auto& v : out)
    for (auto& b : v) b = std::uint8_t(rng());
  return out;
}

LockstepResult run_lockstep(const obj::Program& prog, const ChipParams& model_params, const LockstepOptions& opt) {
  RtlChip rtl;
  return run_lockstep(rtl, prog, model_params, opt);
}

LockstepResult run_lockstep(RtlChip& rtl, const obj::Program& prog, const ChipParams& mp, const LockstepOptions& opt) {
  LockstepResult res;
  auto& st = res.stats;
  const Layout& L = rtl.layout();
  const int npos = L.num_positions();
  const int S = mp.stream.per_direction;
  auto fail = [&](std::int64_t c, std::string unit, std::string where, std::string exp, std::string got) {
    res.mismatch = Mismatch{c, std::move(unit), std::move(where), std::move(exp), std::move(got)};
    res.stats.cycles = c + 1;
    return res;
  };

  // ---- the model ---------------------------------------------------------------------------
  model::Chip chip(mp, model::Mode::Functional);
  obj::Program mprog = prog;
  std::vector<std::string> sram_syms(std::size_t(RtlChip::num_mem_slices()));
  for (int m = 0; m < RtlChip::num_mem_slices(); ++m) {
    obj::Symbol s;
    s.name = fmt::format("__lockstep_sram_{}", m);
    s.dtype = isa::Dtype::I8;
    s.shape = {mp.mem.rows, mp.vector_bytes()};
    s.slices = {rtl.slice_name(m)};
    s.start_row = 0;
    sram_syms[std::size_t(m)] = s.name;
    mprog.symbols.push_back(std::move(s));
  }
  chip.load(mprog);
  std::map<std::int64_t, std::vector<OutEv>> model_sends, model_dma;
  Loopback loop(chip, opt.link_latency, model_sends);
  chip.set_link_sink(&loop);

  // Issue events and what they imply (SRAM writes, DMA out, ACCRD landings).
  std::map<std::int64_t, std::vector<std::tuple<int, std::uint64_t, int>>> issues;  // queue, word, word index
  // SRAM and accumulator writes: the model's observations (with data and commit cycle).
  WriteObserver wobs(rtl, L);
  chip.set_observer(&wobs);
  auto& sram_exp = wobs.sram;
  auto& acc_exp = wobs.acc;
  std::map<std::int64_t, AccEv> acc_got;  // the RTL's, by cycle, until the model's arrives
  std::map<std::tuple<std::int64_t, int, int>, std::string> accrd_at;  // (cycle, sid, pos) -> instr
  // LWM rows by landing cycle. The model keeps its staging buffer to itself: the expected row is
  // what its LWM reads, the SRAM row as it is in the issue cycle (the hook runs after the
  // writes committed by then, before any of the cycle's own).
  std::map<std::int64_t, std::vector<WbEv>> wb_exp;
  chip.set_issue_hook([&](const model::Chip::IssueEvent& e) {
    auto in = isa::decode(e.word);
    issues[e.cycle].emplace_back(e.queue, e.word, int(e.pc));
    const int pos = L.queue(QueueId{e.queue}).position;
    auto sval = [&](std::int64_t sid) {
      return chip.stream_value(int(sid & 63), (sid & 64) ? Dir::West : Dir::East, pos, e.cycle);
    };
    if (in.op == Op::Write || in.op == Op::Scatter) {
      wobs.mem_what[pos] = describe_word(e.word);  // the observation follows in this call
    } else if (in.op == Op::Mm || in.op == Op::Mma) {
      wobs.mm_what[e.cycle] = describe_word(e.word);
    } else if (in.op == Op::Dmaout) {
      const auto* v = sval(in.v[0]);
      if (!v) return;
      OutEv o{int(in.v[1]), {}};
      std::memcpy(o.data.data(), v, kVectorBytes);
      model_dma[e.cycle + mp.lat(isa::LatClass::Dma)].push_back(o);
    } else if (in.op == Op::Accrd) {
      accrd_at[{e.cycle + mp.lat(isa::LatClass::MxmRd), int(in.v[1]), pos}] = describe_word(e.word);
    } else if (in.op == Op::Lwm) {
      const int m = rtl.slice_index(L.slice(SliceId{pos}).name);
      if (m < 0 || in.v[0] < 0 || in.v[0] >= mp.mem.rows) return;  // the model stops with an error
      const auto rows = chip.read_symbol(sram_syms[std::size_t(m)]);
      WbEv w{m, int(in.v[2]), {}, describe_word(e.word)};
      std::memcpy(w.data.data(), rows.data() + std::size_t(in.v[0]) * kVectorBytes, kVectorBytes);
      wb_exp[e.cycle + mp.lat(isa::LatClass::MemLwm)].push_back(std::move(w));
    }
  });

  // ---- the RTL -------------------------------------------------------------------------------
  std::map<std::int64_t, std::vector<OutEv>> rtl_sends;
  rtl.set_link_sink([&](int link, std::int64_t depart, const Vec& v) {
    rtl_sends[depart].push_back(OutEv{link, v});
    rtl.receive(link, depart + opt.link_latency, v);
  });
  rtl.set_wave(opt.wave);
  rtl.set_test_flip_alu(opt.flip_alu);
  rtl.set_test_ignore_tr(opt.ignore_tr);
  rtl.load(prog);
  for (auto [r, v] : opt.regs) {
    chip.set_reg(r, v);
    rtl.set_reg(r, v);
  }
  for (int c = 0; c < mp.dma.channels; ++c)
    for (const auto& v : lockstep_dma_vectors(opt, c)) {
      chip.push_dma_in(c, v);
      rtl.push_dma_in(c, v);
    }

  // ---- cycle by cycle --------------------------------------------------------------------------
  std::string model_err;
  std::int64_t model_err_at = -1;
  bool model_done = false;
  std::int64_t c = 0;
  for (;; ++c) {
    if (c >= opt.max_cycles) return fail(c, "end", "cycle limit", "the program to end", "still running");
    if (model_err.empty()) {
      try {
        model_done = chip.run(c + 1);
      } catch (const SimError& e) {
        model_err = e.what();
        model_err_at = c;
      }
    }
    auto rerr = rtl.error();
    if (!model_err.empty() || rerr) {
      const bool deadlock = (rerr && rerr->code == 20) || model_err.find("never released") != std::string::npos;
      if (!model_err.empty() && rerr && (rerr->cycle == model_err_at || deadlock)) {
        res.error = model_err + " | " + rerr->message;
        st.cycles = c;
        return res;
      }
      // a deadlock is found by the two at different times: wait for the other
      if (!(deadlock && c - std::max<std::int64_t>(model_err_at, rerr ? rerr->cycle : -1) < 64))
        return fail(c, "error", "", model_err.empty() ? "no error" : model_err, rerr ? rerr->message : "no error");
    }

    // issue
    {
      std::vector<std::tuple<int, std::uint64_t, int>> exp, got;
      if (auto it = issues.find(c); it != issues.end()) {
        exp = std::move(it->second);
        issues.erase(it);
      }
      for (int q = 0; q < rtl.num_queues(); ++q)
        if (rtl.issued(q)) got.emplace_back(q, rtl.issued_word(q), rtl.issued_pc(q));
      std::sort(exp.begin(), exp.end());
      std::sort(got.begin(), got.end());
      for (std::size_t i = 0; i < std::max(exp.size(), got.size()); ++i) {
        if (i < exp.size() && i < got.size() && exp[i] == got[i]) continue;
        int q = i < exp.size() && (i >= got.size() || std::get<0>(exp[i]) <= std::get<0>(got[i])) ? std::get<0>(exp[i])
                                                                                                : std::get<0>(got[i]);
        auto find = [&](const auto& v) -> std::string {
          for (const auto& [qq, w, pc] : v)
            if (qq == q) return fmt::format("word {}: {}", pc, describe_word(w));
          return "nothing issued";
        };
        return fail(c, "issue", "queue " + L.queue(QueueId{q}).name, find(exp), find(got));
      }
      st.issues += std::int64_t(got.size());
    }

    // accumulator writes committed at the end of this cycle. The model computes products in
    // batches and reports each when computed (Observer::on_acc_write, in issue order, at the
    // latest by the ACCRD that reads it or the end of the run), so an RTL write waits here for
    // the model's; a model write for a cycle the RTL has passed without one is a mismatch.
    {
      if (auto a = rtl.acc_write()) {
        AccEv g;
        g.acc = a->acc;
        g.data = a->data;
        acc_got[c] = g;
      }
      auto desc = [](const AccEv& a, int n) { return fmt::format("accumulator {} = {}", a.acc, hex(a.data.data(), std::size_t(n) * 4)); };
      for (auto it = acc_exp.begin(); it != acc_exp.end() && it->first <= c;) {
        const std::int64_t k = it->first;
        auto g = acc_got.find(k);
        const AccEv& e = it->second.front();
        std::string where = e.what.empty() ? "accumulator write" : "accumulator write of " + e.what;
        if (it->second.size() > 1)
          return fail(k, "mxm", where, fmt::format("{} writes in one cycle", it->second.size()), g == acc_got.end() ? "none" : "one");
        if (g == acc_got.end()) return fail(k, "mxm", where, desc(e, e.n), "no write");
        if (g->second.acc != e.acc || !same_acc(e, g->second))
          return fail(k, "mxm", where, desc(e, e.n), desc(g->second, e.n));
        ++st.acc_writes;
        acc_got.erase(g);
        it = acc_exp.erase(it);
      }
    }

    // streams
    bool model_streams_empty = true;
    for (int p = 0; p < npos; ++p)
      for (Dir d : {Dir::East, Dir::West})
        for (int s = 0; s < S; ++s) {
          const auto* mv = chip.stream_value(s, d, p, c);
          const bool rv = rtl.stream_valid(s, d, p);
          ++st.stream_checks;
          if (mv) model_streams_empty = false;
          if (!mv && !rv) continue;
          Vec r{};
          if (rv) r = rtl.stream_value(s, d, p);
          if (mv && rv && std::memcmp(mv, r.data(), kVectorBytes) == 0) {
            ++st.stream_values;
            continue;
          }
          std::string unit = "streams";
          std::string where = fmt::format("{} at position {} ({})", stream_name(s, d), p, L.slice(SliceId{p}).name);
          if (auto it = accrd_at.find({c, s | (d == Dir::West ? 64 : 0), p}); it != accrd_at.end()) {
            unit = "mxm";
            where += ": result of " + it->second;
          }
          return fail(c, unit, where, hexv(mv), rv ? hexv(r.data()) : "empty");
        }
    for (auto it = accrd_at.begin(); it != accrd_at.end() && std::get<0>(it->first) <= c;) {
      ++st.accrd;
      it = accrd_at.erase(it);
    }

    // SRAM writes committed at the end of this cycle
    {
      std::vector<SramEv> exp;
      if (auto it = sram_exp.find(c); it != sram_exp.end()) {
        exp = std::move(it->second);
        sram_exp.erase(it);
      }
      auto got = rtl.sram_writes();
      for (int m = 0; m < RtlChip::num_mem_slices(); ++m) {
        const SramEv* e = nullptr;
        const RtlChip::SramWrite* g = nullptr;
        for (const auto& x : exp)
          if (x.slice == m) e = &x;
        for (const auto& x : got)
          if (x.slice == m) g = &x;
        if (!e && !g) continue;
        auto desc = [](std::uint8_t mask, const std::array<int, 2>& rows, const std::uint8_t* data) {
          return mask == 3 && rows[0] == rows[1] ? fmt::format("row {} = {}", rows[0], hex(data, kVectorBytes))
                                                 : fmt::format("rows {}/{} (superlanes {:02b}) = {}", rows[0], rows[1],
                                                               mask, hex(data, kVectorBytes));
        };
        std::string where = rtl.slice_name(m);
        if (e) where += " (" + e->what + ")";
        if (!e || !g) return fail(c, "sram", where, e ? desc(e->mask, e->rows, e->data.data()) : "no write",
                                  g ? desc(g->mask, g->rows, g->data.data()) : "no write");
        bool same = e->mask == g->mask;
        for (int s = 0; s < 2 && same; ++s)
          if ((e->mask >> s) & 1)
            same = e->rows[std::size_t(s)] == g->rows[std::size_t(s)] &&
                   std::memcmp(e->data.data() + s * 16, g->data.data() + s * 16, 16) == 0;
        if (!same) return fail(c, "sram", where, desc(e->mask, e->rows, e->data.data()), desc(g->mask, g->rows, g->data.data()));
        ++st.sram_writes;
      }
    }

    // LWM rows written into staging at the end of this cycle (the weight bus)
    {
      std::vector<WbEv> exp;
      if (auto it = wb_exp.find(c); it != wb_exp.end()) {
        exp = std::move(it->second);
        wb_exp.erase(it);
      }
      std::vector<WbEv> got;
      for (const auto& w : rtl.weight_rows()) got.push_back(WbEv{w.slice, w.row, w.data, {}});
      auto key = [](const WbEv& a, const WbEv& b) { return a.slice < b.slice; };
      std::sort(exp.begin(), exp.end(), key);
      std::sort(got.begin(), got.end(), key);
      auto desc = [](const WbEv& w) { return fmt::format("staging row {} = {}", w.row, hex(w.data.data(), kVectorBytes)); };
      for (std::size_t i = 0; i < std::max(exp.size(), got.size()); ++i) {
        const WbEv* e = i < exp.size() ? &exp[i] : nullptr;
        const WbEv* g = i < got.size() ? &got[i] : nullptr;
        if (e && g && e->slice == g->slice && e->row == g->row && e->data == g->data) {
          ++st.weight_rows;
          continue;
        }
        const int m = e && (!g || e->slice <= g->slice) ? e->slice : g->slice;
        if (g && g->slice != m) g = nullptr;
        if (e && e->slice != m) e = nullptr;
        std::string where = rtl.slice_name(m) + " to mxm.e.0";
        if (e) where += " (" + e->what + ")";
        return fail(c, "weight bus", where, e ? desc(*e) : "no row", g ? desc(*g) : "no row");
      }
    }

    // vectors leaving the chip in this cycle
    auto cmp_out = [&](const char* unit, std::map<std::int64_t, std::vector<OutEv>>& me,
                       std::map<std::int64_t, std::vector<OutEv>>& re, std::int64_t& count) -> bool {
      std::vector<OutEv> e, g;
      if (auto it = me.find(c); it != me.end()) {
        e = std::move(it->second);
        me.erase(it);
      }
      if (auto it = re.find(c); it != re.end()) {
        g = std::move(it->second);
        re.erase(it);
      }
      auto key = [](const OutEv& a, const OutEv& b) { return a.index < b.index; };
      std::sort(e.begin(), e.end(), key);
      std::sort(g.begin(), g.end(), key);
      for (std::size_t i = 0; i < std::max(e.size(), g.size()); ++i) {
        bool ok = i < e.size() && i < g.size() && e[i].index == g[i].index && e[i].data == g[i].data;
        if (ok) {
          ++count;
          continue;
        }
        fail(c, unit, fmt::format("{} {}", std::string(unit) == "c2c" ? "link" : "channel",
                                  i < e.size() ? e[i].index : g[i].index),
             i < e.size() ? hexv(e[i].data.data()) : "nothing", i < g.size() ? hexv(g[i].data.data()) : "nothing");
        return false;
      }
      return true;
    };
    std::map<std::int64_t, std::vector<OutEv>> rtl_dma;
    for (auto& [ch, v] : rtl.dma_out_now()) rtl_dma[c].push_back(OutEv{ch, v});
    if (!cmp_out("c2c", model_sends, rtl_sends, st.c2c)) return res;
    if (!cmp_out("dma", model_dma, rtl_dma, st.dma_out)) return res;

    const bool rtl_done = rtl.finished() && rtl.streams_empty();
    if (model_done && rtl_done && model_streams_empty) break;
    rtl.step();
  }
  st.cycles = c + 1;

  // ---- the end -------------------------------------------------------------------------------
  if (!issues.empty())
    return fail(issues.begin()->first, "issue", "queue " + L.queue(QueueId{std::get<0>(issues.begin()->second.front())}).name,
                describe_word(std::get<1>(issues.begin()->second.front())), "nothing issued (the RTL finished)");
  if (!sram_exp.empty())
    return fail(sram_exp.begin()->first, "sram", rtl.slice_name(sram_exp.begin()->second.front().slice),
                sram_exp.begin()->second.front().what, "no write (the RTL finished)");
  if (!wb_exp.empty())
    return fail(wb_exp.begin()->first, "weight bus", rtl.slice_name(wb_exp.begin()->second.front().slice) + " to mxm.e.0",
                wb_exp.begin()->second.front().what, "no row (the RTL finished)");
  if (!acc_exp.empty())
    return fail(acc_exp.begin()->first, "mxm", "accumulator write of " + acc_exp.begin()->second.front().what,
                fmt::format("accumulator {}", acc_exp.begin()->second.front().acc), "no write (the RTL finished)");
  if (!acc_got.empty())
    return fail(acc_got.begin()->first, "mxm", "accumulator write", "no write",
                fmt::format("accumulator {} = {}", acc_got.begin()->second.acc, hex(acc_got.begin()->second.data.data(), 16)) + "...");
  st.model_cycles = chip.stats().cycles;
  st.rtl_cycles = rtl.program_cycles();
  if (st.model_cycles != st.rtl_cycles)
    return fail(c, "end", "program length (docs/timing.md rule 23)", fmt::format("{} cycles", st.model_cycles),
                fmt::format("{} cycles", st.rtl_cycles));
  for (int m = 0; m < RtlChip::num_mem_slices(); ++m) {
    auto mv = chip.read_symbol(sram_syms[std::size_t(m)]);
    for (int r = 0; r < mp.mem.rows; ++r) {
      auto rv = rtl.read_row(m, r);
      if (std::memcmp(mv.data() + std::size_t(r) * kVectorBytes, rv.data(), kVectorBytes) != 0)
        return fail(c, "end", fmt::format("SRAM {} row {} after the run", rtl.slice_name(m), r),
                    hex(mv.data() + std::size_t(r) * kVectorBytes, kVectorBytes), hex(rv.data(), kVectorBytes));
    }
  }
  for (int ch = 0; ch < mp.dma.channels; ++ch) {
    auto me = chip.take_dma_out(ch);
    auto re = rtl.take_dma_out(ch);
    for (std::size_t i = 0; i < std::max(me.size(), re.size()); ++i) {
      bool same = i < me.size() && i < re.size() && std::memcmp(me[i].data(), re[i].data(), kVectorBytes) == 0;
      if (!same)
        return fail(c, "dma", fmt::format("host output channel {} vector {}", ch, i),
                    i < me.size() ? hexv(me[i].data()) : "nothing", i < re.size() ? hexv(re[i].data()) : "nothing");
    }
  }
  if (!model_dma.empty() || !model_sends.empty())
    return fail(c, "end", "vectors the model sent after the RTL finished", "more vectors", "none");
  return res;
}

}  // namespace lpu::rtl
