// Scheduling (issue cycles from the latency table and stream hops), checking (stream
// conflicts, empty reads, ports, ranges, MXM weight types) and emission (NOP/REPEAT).
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <limits>
#include <set>
#include <utility>

#include "lpu/common/checked.hpp"
#include "lpu/isa/numerics.hpp"
#include "source.hpp"

namespace lpu::assembler {
namespace {

using isa::Op;
constexpr std::int64_t kNever = std::numeric_limits<std::int64_t>::max() / 4;

// ICU instructions and DESKEW control the queue itself: never repeated or folded.
bool is_icu(Op op) { return isa::info(op).unit == isa::Unit::Icu || op == Op::Deskew; }

// An instruction instance: instance k of source instruction `src` of a queue.
struct Inst {
  std::int32_t src;
  std::int32_t k;
  std::int64_t cycle;
};

// A stream access: value on (stream, position) at cycle.
struct SAcc {
  std::uint16_t stream;  // dir * 64 + id
  std::int32_t pos;
  std::int64_t cycle;
  std::int64_t diag;  // cycle - pos*hop (east) or cycle + pos*hop (west): constant along a value's path
  std::int32_t queue;
  std::int32_t inst;  // index into that queue's instance list
};

// Sorts v by key(e) = (a, b, c), ties in the order of v. The checks sort millions of events
// per program: sorting 24-byte keys and moving each event once is several times faster than
// sorting the events with a comparator over their fields.
struct SortKey {
  std::uint64_t a, b;
  std::uint32_t c, idx;
};
template <class T, class F>
void sort_by_key(std::vector<T>& v, F key) {
  if (v.size() > std::numeric_limits<std::uint32_t>::max())
    throw Error(fmt::format("program too large to check: {} events to sort", v.size()));
  std::vector<SortKey> ks(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    ks[i] = key(v[i]);
    ks[i].idx = std::uint32_t(i);
  }
  std::sort(ks.begin(), ks.end(), [](const SortKey& x, const SortKey& y) {
    return std::tie(x.a, x.b, x.c, x.idx) < std::tie(y.a, y.b, y.c, y.idx);
  });
  std::vector<T> out;
  out.reserve(v.size());
  for (const auto& k : ks) out.push_back(v[k.idx]);
  v = std::move(out);
}
// An issue cycle (below 2^42: issue <= 2^40, REPEAT count x delay < 2^40, plus a latency)
// beside a 16-bit position in one key; a signed cycle offset as an unsigned key in order.
std::uint64_t pos_cycle(std::int64_t pos, std::int64_t cycle) { return std::uint64_t(pos) << 48 | std::uint64_t(cycle); }
std::uint64_t ordered(std::int64_t v) { return std::uint64_t(v) ^ (std::uint64_t(1) << 63); }

std::string stream_name(std::uint16_t s) {
  return fmt::format("s{}{}", s & 63, s >= 64 ? 'w' : 'e');
}

class Scheduler {
 public:
  Scheduler(Parsed& pr, const ChipParams& p, const Layout& l, const Options& o, Diagnostics& d)
      : P_(pr), p_(p), L_(l), o_(o), D_(d) {}

  // Each phase records every independent error it finds and stops the run at its end if there
  // were any: a later phase would only report their consequences.
  Result run() {
    collect_labels();
    D_.raise_if_any();
    schedule();
    D_.raise_if_any();
    expand();
    const std::size_t first_check = D_.size();
    check();
    D_.sort_from(first_check);  // found check by check: report them in source order
    D_.raise_if_any();
    Result r;
    emit(r);
    r.program = std::move(P_.program);
    return r;
  }

 private:
  // ---- scheduling ----------------------------------------------------------------------
  void collect_labels() {
    for (std::size_t q = 0; q < P_.queues.size(); ++q) {
      const auto& v = P_.queues[q].instrs;
      for (std::size_t i = 0; i < v.size(); ++i) {
        if (v[i].in.op == Op::Notify) ++pending_notifies_;
        if (v[i].label.empty()) continue;
        auto [it, fresh] = labels_.emplace(v[i].label, std::make_pair(int(q), int(i)));
        if (!fresh) {
          const auto& first = P_.queues[size_t(it->second.first)].instrs[size_t(it->second.second)];
          D_.add(AsmError(v[i].loc, fmt::format("label '{}' is already defined at {}:{}:{}", v[i].label,
                                                first.loc.file, first.loc.line, first.loc.col)));
        }
      }
    }
  }

  int occupancy(const SrcInstr& s) const { return isa::info(s.in.op).occupancy; }

  std::optional<std::int64_t> label_value(Expr::K k, const std::string& label, const SourceLoc& loc,
                                          int cur_queue) {
    auto it = labels_.find(label);
    if (it == labels_.end()) throw AsmError(loc, fmt::format("unknown label '{}'", label));
    const auto& t = P_.queues[size_t(it->second.first)].instrs[size_t(it->second.second)];
    if (t.issue < 0) return std::nullopt;
    if (k == Expr::K::Issue) return t.issue;
    const auto& ii = isa::info(t.in.op);
    std::int64_t lat = p_.lat(ii.latency);
    for (int j = 0; j < ii.num_operands; ++j) {
      if (!ii.operands[size_t(j)].writes) continue;
      auto sr = StreamRef::unpack(std::uint64_t(t.in.v[size_t(j)]));
      int from = L_.queue(QueueId{it->second.first}).position;
      int to = L_.queue(QueueId{cur_queue}).position;
      int dist = sr.dir == Dir::East ? to - from : from - to;
      if (dist < 0) {
        throw AsmError(loc, fmt::format("ready({}): '{}' writes {} which flows {}, away from queue '{}' "
                                        "(position {}; the producer is at position {})",
                                        label, label, format_stream(t.in.v[size_t(j)]),
                                        sr.dir == Dir::East ? "east" : "west",
                                        L_.queue(QueueId{cur_queue}).name, to, from));
      }
      return t.issue + lat + std::int64_t(dist) * p_.stream.hop_cycles;
    }
    return t.issue + lat;
  }

  // Schedules the next instruction of queue q; false if it waits on something unresolved.
  bool step(int q) {
    auto& v = P_.queues[size_t(q)].instrs;
    auto& s = v[cursor_[size_t(q)]];
    const auto& ii = isa::info(s.in.op);
    std::int64_t& free = free_[size_t(q)];
    if (free >= kNever) throw AsmError(s.loc, "instruction after HALT in this queue");
    if (s.in.op == Op::Repeat || s.in.op == Op::Repeatr) {
      if (s.at) throw AsmError(s.loc, fmt::format("{} takes no issue time: it follows the instruction it repeats", ii.mnemonic));
      std::size_t i = cursor_[size_t(q)];
      if (i == 0 || is_icu(v[i - 1].in.op))
        throw AsmError(s.loc, fmt::format("{} must follow the (non-ICU, non-DESKEW) instruction it repeats", ii.mnemonic));
      auto& prev = v[i - 1];
      std::int64_t n = s.in.op == Op::Repeat ? s.in.v[0] : P_.program.regs[size_t(s.in.v[0])];
      std::int64_t d = s.in.v[1];
      if (s.in.op == Op::Repeatr && s.in.v[0] == 0)
        throw AsmError(s.loc, "REPEATR r0 repeats 0 times; name a register set by .reg or the host");
      if (d < occupancy(prev))
        throw AsmError(s.loc, fmt::format("REPEAT delay {} is shorter than the {}-cycle occupancy of {}", d,
                                          occupancy(prev), isa::info(prev.in.op).mnemonic));
      prev.repeat_n = n;
      prev.repeat_d = d;
      prev.by_repeatr = s.in.op == Op::Repeatr;
      s.issue = prev.issue;
      free = prev.issue + n * d + occupancy(prev);
      return true;
    }
    if (s.in.op == Op::Nop) {
      if (s.at) throw AsmError(s.loc, "NOP takes no issue time (give the next instruction an @ instead)");
      if (s.in.v[0] < 1) throw AsmError(s.loc, "NOP needs a count of at least 1");
      s.issue = free;
      free += s.in.v[0];
      return true;
    }
    std::int64_t t = free;
    if (s.at) {
      auto val = eval(*s.at, [&](Expr::K k, const std::string& l, const SourceLoc& loc) {
        return label_value(k, l, loc, q);
      });
      if (!val) return false;
      t = *val;
      if (s.at_relative && !checked::add(free, *val).ok())
        throw AsmError(s.at->loc, checked::describe(checked::Fault::Overflow, "+", free, *val) +
                                      " (the cycle the queue is free + the @+ delay)");
      if (s.at_relative) t = free + *val;
      if (t < free) {
        const auto& qn = L_.queue(QueueId{q}).name;
        throw AsmError(s.loc, fmt::format("queue '{}' is busy until cycle {}: cannot issue {} at cycle {} "
                                          "(one instruction per queue per cycle)", qn, free, ii.mnemonic, t));
      }
    }
    if (t > (std::int64_t(1) << 40)) throw AsmError(s.loc, fmt::format("issue cycle {} is too large", t));
    if (s.in.op == Op::Sync) {
      if (pending_notifies_ > 0) return false;
      std::int64_t u = kNever;
      for (const auto& qq : P_.queues)
        for (const auto& x : qq.instrs)
          if (x.in.op == Op::Notify && x.issue >= t) u = std::min(u, x.issue);
      if (u == kNever)
        throw AsmError(s.loc, fmt::format("SYNC at cycle {} is never released: no NOTIFY issues at or after it", t));
      s.release = u + p_.icu.notify_latency;
      free = s.release;
    } else if (s.in.op == Op::Deskew) {
      s.release = (t / p_.c2c.deskew_period + 1) * p_.c2c.deskew_period;
      free = s.release;
    } else if (s.in.op == Op::Halt) {
      free = kNever;
    } else {
      if (s.in.op == Op::Notify) --pending_notifies_;
      free = t + occupancy(s);
    }
    s.issue = t;
    return true;
  }

  // A queue whose instruction fails to schedule stops there (the rest of it has no time); the
  // other queues go on, and instructions waiting on the failed one's labels are not reported.
  void schedule() {
    const std::size_t nq = P_.queues.size();
    cursor_.assign(nq, 0);
    free_.assign(nq, 0);
    std::vector<bool> failed(nq, false);
    for (;;) {
      bool progress = false, done = true;
      for (std::size_t q = 0; q < nq; ++q) {
        auto& v = P_.queues[q].instrs;
        while (!failed[q] && cursor_[q] < v.size()) {
          try {
            if (!step(int(q))) break;
          } catch (const AsmError& e) {
            D_.add(e);
            failed[q] = true;
            progress = true;
            break;
          }
          ++cursor_[q];
          progress = true;
        }
        if (!failed[q] && cursor_[q] < v.size()) done = false;
      }
      if (done) return;
      if (!progress) {
        if (!D_.empty()) return;  // blocked on a queue that failed: a consequence, not news
        // Report the first blocked instruction in source order.
        const SrcInstr* first = nullptr;
        for (std::size_t q = 0; q < nq; ++q) {
          if (cursor_[q] >= P_.queues[q].instrs.size()) continue;
          const auto& s = P_.queues[q].instrs[cursor_[q]];
          if (!first || std::tie(s.loc.file, s.loc.line) < std::tie(first->loc.file, first->loc.line)) first = &s;
        }
        if (first->in.op == Op::Sync)
          D_.fatal(AsmError(first->loc, "SYNC waits for a NOTIFY whose issue time depends on this queue (circular)"));
        D_.fatal(AsmError(first->loc, "cannot schedule: the issue time depends on labels that are only scheduled "
                                      "after this instruction (circular dependency)"));
      }
    }
  }

  // ---- expansion -------------------------------------------------------------------------
  // Instance k of a source instruction: as isa::stepped (every operand the table steps: READ/WRITE
  // addresses by the stride, GATHER/SCATTER addresses, LW rows and accumulators by one), except
  // that an address offset stepped below 0 or past its 20-bit field is marked for check_ranges
  // (kBelowRow0, kPastOffsetField) instead of wrapping into the register field.
  static constexpr std::int64_t kBelowRow0 = -1, kPastOffsetField = -2;
  isa::Instr stepped(const SrcInstr& s, std::int64_t k) const {
    isa::Instr in = s.in;
    if (k == 0) return in;
    const auto& ii = isa::info(in.op);
    for (int j = 0; j < ii.num_operands; ++j) {
      const std::int64_t st = isa::step_of(s.in, j);
      if (st == 0) continue;
      auto& v = in.v[size_t(j)];
      if (ii.operands[size_t(j)].step == isa::Step::Wrap) {
        // LWM's staging row: modulo the wrap operand (check_ranges rejects row >= wrap).
        const std::int64_t n = isa::wrap_modulus(in);
        if (n > 0 && v < n) v = (v + (k % n) * (st % n)) % n;
        continue;
      }
      if (ii.operands[size_t(j)].kind != isa::Kind::Addr) {
        v += k * st;
        continue;
      }
      const std::int64_t off = isa::addr_offset(v) + k * st;
      if (off < 0) v = kBelowRow0;
      else if (off >= (1 << isa::kAddrOffsetBits)) v = kPastOffsetField;
      else v = isa::make_addr(isa::addr_reg(v), off);
    }
    return in;
  }

  void expand() {
    std::int64_t total = 0;
    insts_.resize(P_.queues.size());
    for (std::size_t q = 0; q < P_.queues.size(); ++q) {
      const auto& v = P_.queues[q].instrs;
      for (std::size_t i = 0; i < v.size(); ++i) {
        const auto& s = v[i];
        if (s.in.op == Op::Nop || s.in.op == Op::Repeat || s.in.op == Op::Repeatr) continue;
        total += 1 + s.repeat_n;
        if (total > o_.max_instances)
          D_.fatal(AsmError(s.loc, fmt::format("program too large to check: more than {} instruction instances "
                                               "after REPEAT expansion", o_.max_instances)));
        for (std::int64_t k = 0; k <= s.repeat_n; ++k)
          insts_[q].push_back(Inst{std::int32_t(i), std::int32_t(k), s.issue + k * s.repeat_d});
      }
    }
  }

  // ---- checks ----------------------------------------------------------------------------
  [[noreturn]] void fail_at(int q, const Inst& in, const std::string& msg) const {
    const auto& s = P_.queues[size_t(q)].instrs[size_t(in.src)];
    std::string inst = in.k ? fmt::format(" (instance {} of its REPEAT)", in.k) : "";
    throw AsmError(s.loc, fmt::format("{}: cycle {}{}: {}", L_.queue(QueueId{q}).name, in.cycle, inst, msg));
  }

  void check_ranges(int q, const Inst& x, const isa::Instr& in) const {
    const auto& ii = isa::info(in.op);
    const int V = p_.vector_bytes();
    const int tb = isa::dtype_bytes(in.t);
    const int n = V / tb;
    for (int j = 0; j < ii.num_operands; ++j) {
      const auto& od = ii.operands[size_t(j)];
      const auto val = in.v[size_t(j)];
      switch (od.kind) {
        case isa::Kind::Addr: {
          // The row of this instance: register (its initial value) + offset, the offset stepped
          // by REPEAT (stride for READ/WRITE, one per instance for GATHER/SCATTER). For
          // GATHER/SCATTER this is the base row addr + k only: the per-superlane index added to it
          // comes from a stream at run time and cannot be checked here (the chip checks it).
          if (val == kBelowRow0) fail_at(q, x, "address out of range: stepped below row 0");
          if (val == kPastOffsetField)
            fail_at(q, x, fmt::format("address out of range: offset stepped past {}",
                                      (1 << isa::kAddrOffsetBits) - 1));
          auto off = isa::addr_offset(val);
          auto eff = off + std::int64_t(P_.program.regs[size_t(isa::addr_reg(val))]);
          if (eff >= p_.mem.rows)
            fail_at(q, x, fmt::format("address out of range: row {} (slice has rows 0..{})", eff, p_.mem.rows - 1));
          break;
        }
        case isa::Kind::Row:
        case isa::Kind::Wrow:
          if (val >= n) fail_at(q, x, fmt::format("weight row {} out of range: a .{} plane has {} rows",
                                                  val, isa::dtype_info(in.t).name, n));
          break;
        case isa::Kind::Wstep:
          if (val > isa::wrap_modulus(in))
            fail_at(q, x, fmt::format("weight row step {} larger than the wrap {}", val, isa::wrap_modulus(in)));
          break;
        case isa::Kind::Wrap:
          if (val < 1 || val > n)
            fail_at(q, x, fmt::format("wrap {} out of range 1..{}: a .{} plane has {} rows", val, n,
                                      isa::dtype_info(in.t).name, n));
          if (in.v[2] >= val)
            fail_at(q, x, fmt::format("weight row {} not below the wrap {}", in.v[2], val));
          break;
        case isa::Kind::Srow:
          if (val >= p_.mem.rows)
            fail_at(q, x, fmt::format("address out of range: row {} (slice has rows 0..{})", val, p_.mem.rows - 1));
          break;
        case isa::Kind::Plane: {
          const auto& sl = L_.slice(L_.queue(QueueId{q}).slice);
          if (plane_position(sl.hemi, int(val)) < 0)
            fail_at(q, x, fmt::format("LWM to plane {}: the {} hemisphere has {} MXM plane{} (mxm.{}.0 ..)", val,
                                      sl.hemi == Hemi::East ? "east" : "west", planes_in(sl.hemi),
                                      planes_in(sl.hemi) == 1 ? "" : "s", sl.hemi == Hemi::East ? 'e' : 'w'));
          break;
        }
        case isa::Kind::Acc:
          if (val >= p_.mxm.accumulators)
            fail_at(q, x, fmt::format("accumulator {} out of range 0..{}", val, p_.mxm.accumulators - 1));
          break;
        case isa::Kind::Part: {
          std::int64_t parts = tb;  // ACCRD: accumulators hold up to V elements
          if (in.op == Op::Cvt) {
            int a = isa::dtype_bytes(in.t), b = isa::dtype_bytes(in.t2);
            parts = std::max(a, b) / std::min(a, b);
          }
          if (val >= parts) fail_at(q, x, fmt::format("part {} out of range 0..{}", val, parts - 1));
          break;
        }
        case isa::Kind::Shamt:
          if (val >= 8 * tb) fail_at(q, x, fmt::format("shift {} out of range 0..{}", val, 8 * tb - 1));
          break;
        case isa::Kind::Offset:
          if (val <= -n || val >= n) fail_at(q, x, fmt::format("shift {} out of range: a vector has {} elements", val, n));
          break;
        case isa::Kind::Lane:
          if (val >= n) fail_at(q, x, fmt::format("element {} out of range: a vector has {} elements", val, n));
          break;
        case isa::Kind::Table: {
          if (val >= p_.sxm.perm_tables)
            fail_at(q, x, fmt::format("permutation table {} out of range 0..{}", val, p_.sxm.perm_tables - 1));
          const auto& slice = L_.slice(L_.queue(QueueId{q}).slice);
          bool found = false;
          for (const auto& pt : P_.program.perms) found |= pt.sxm == slice.name && pt.index == val;
          if (!found) fail_at(q, x, fmt::format("permutation table {} of {} is not defined (.perm)", val, slice.name));
          break;
        }
        case isa::Kind::Link:
          if (val >= p_.c2c.links) fail_at(q, x, fmt::format("link {} out of range 0..{}", val, p_.c2c.links - 1));
          break;
        case isa::Kind::Chan:
          if (val >= p_.dma.channels)
            fail_at(q, x, fmt::format("DMA channel {} out of range 0..{}", val, p_.dma.channels - 1));
          break;
        default: break;
      }
    }
  }

  // check_ranges at the first and the last instance of the source instruction whose first
  // instance is insts_[q][i]; when the last fails, the message names the first instance that
  // does (the one the chip would meet first).
  void check_ranges_ends(int q, std::size_t i, const SrcInstr& s) const {
    check_ranges(q, insts_[size_t(q)][i], s.in);
    if (s.repeat_n == 0) return;
    try {
      check_ranges(q, insts_[size_t(q)][i + std::size_t(s.repeat_n)], stepped(s, s.repeat_n));
    } catch (const AsmError&) {
      for (std::int64_t k = 1; k < s.repeat_n; ++k) check_ranges(q, insts_[size_t(q)][i + std::size_t(k)], stepped(s, k));
      throw;
    }
  }

  // Position of plane `index` of hemisphere h (-1: none), and the hemisphere's plane count.
  int plane_position(Hemi h, int index) const {
    for (const auto& s : L_.slices())
      if (s.kind == SliceKind::Mxm && s.hemi == h && s.index == index) return s.position;
    return -1;
  }
  // The same for an in-range LWM (per instance in check: a table instead of a scan).
  int plane_position_cached(Hemi h, int index) {
    auto& t = plane_pos_[h == Hemi::East ? 0 : 1];
    if (t.empty()) {
      t.assign(std::size_t(planes_in(h)), -1);
      for (std::size_t k = 0; k < t.size(); ++k) t[k] = plane_position(h, int(k));
    }
    return index >= 0 && std::size_t(index) < t.size() ? t[std::size_t(index)] : plane_position(h, index);
  }
  int planes_in(Hemi h) const {
    int n = 0;
    for (const auto& s : L_.slices()) n += s.kind == SliceKind::Mxm && s.hemi == h;
    return n;
  }

  // Runs one check of instance `inst` of queue q. Its error is recorded, and later checks of the
  // same source instruction are skipped: they would repeat it for every REPEAT instance.
  template <class F>
  void attempt(int q, std::int32_t inst, F&& f) {
    const auto src = size_t(insts_[size_t(q)][size_t(inst)].src);
    if (bad_[size_t(q)][src]) return;
    try {
      f();
    } catch (const AsmError& e) {
      bad_[size_t(q)][src] = true;
      D_.add(e);
    }
  }

  void check() {
    const int hop = p_.stream.hop_cycles;
    // LWM rows on the weight bus: (plane position, landing cycle, staging row, queue, instance).
    struct Landing { std::int32_t plane; std::int64_t cycle; std::int32_t row, queue, inst; bool lw; };
    std::vector<Landing> landings;
    bad_.resize(P_.queues.size());
    for (std::size_t q = 0; q < P_.queues.size(); ++q) bad_[q].assign(P_.queues[q].instrs.size(), false);
    std::vector<SAcc> reads, writes;
    struct Port { std::int32_t pos; std::int64_t cycle; bool write; std::int32_t queue, inst; };
    std::vector<Port> ports;
    struct MxmEv { std::int64_t cycle; int kind; isa::Dtype t; std::int32_t queue, inst; };  // 0 LW 1 IW 2 MM
    std::map<int, std::vector<MxmEv>> mxm;
    std::vector<AccEv> accs;
    for (std::size_t q = 0; q < insts_.size(); ++q) {
      const auto& qu = L_.queue(QueueId{int(q)});
      const int pos = qu.position;
      const auto& src = P_.queues[q].instrs;
      for (std::size_t i = 0; i < insts_[q].size(); ++i) {
        const auto& x = insts_[q][i];
        const auto& s = src[size_t(x.src)];
        if (is_icu(s.in.op)) continue;
        // Every operand REPEAT steps moves linearly with the instance (a wrapped staging row stays
        // below its wrap), so an operand in range at the first and last instance is in range at
        // every one: ranges are checked there, and the first failing instance found by a scan.
        // Only the instructions whose stepped operands the checks below read are stepped.
        const auto& ii = isa::info(s.in.op);
        const bool stepped_operands =
            s.in.op == Op::Lw || s.in.op == Op::Lwm || s.in.op == Op::Mm || s.in.op == Op::Mma || s.in.op == Op::Accrd;
        const auto in = x.k != 0 && stepped_operands ? stepped(s, x.k) : s.in;
        if (x.k == 0) attempt(int(q), std::int32_t(i), [&] { check_ranges_ends(int(q), i, s); });
        // An instruction with an operand out of range still takes its streams and ports (its
        // readers are not reported again), but names no plane, row or accumulator to check.
        const bool in_range = !bad_[q][size_t(x.src)];
        const int lat = p_.lat(ii.latency);
        const int span = in.op == Op::Trans ? kLanesPerSuperlane : 1;
        for (int j = 0; j < ii.num_operands; ++j) {
          const auto& od = ii.operands[size_t(j)];
          if (!od.reads && !od.writes) continue;
          auto sr = StreamRef::unpack(std::uint64_t(in.v[size_t(j)]));
          std::uint16_t sid = std::uint16_t(sr.packed());
          for (int r = 0; r < span; ++r) {
            std::int64_t c = od.reads ? x.cycle + r : x.cycle + lat + r;
            std::int64_t diag = sr.dir == Dir::East ? c - std::int64_t(pos) * hop : c + std::int64_t(pos) * hop;
            (od.reads ? reads : writes).push_back(SAcc{sid, pos, c, diag, std::int32_t(q), std::int32_t(i)});
          }
        }
        if (ii.unit == isa::Unit::Mem) {
          bool w = in.op == Op::Write || in.op == Op::Scatter;
          ports.push_back(Port{pos, x.cycle, w, std::int32_t(q), std::int32_t(i)});
        }
        if (!in_range) continue;
        if (in.op == Op::Lw) {
          mxm[pos].push_back({x.cycle, 0, in.t, int(q), int(i)});
          landings.push_back({pos, x.cycle, std::int32_t(in.v[1]), std::int32_t(q), std::int32_t(i), true});
        }
        if (in.op == Op::Lwm) {  // rule 15a: lands like an LW issued `lat` cycles later
          const int pp = plane_position_cached(L_.slice(qu.slice).hemi, int(in.v[1]));
          landings.push_back({pp, x.cycle + lat, std::int32_t(in.v[2]), std::int32_t(q), std::int32_t(i), false});
          mxm[pp].push_back({x.cycle + lat, 0, in.t, int(q), int(i)});
        }
        if (in.op == Op::Iw) mxm[pos].push_back({x.cycle, 1, in.t, int(q), int(i)});
        if (in.op == Op::Mm || in.op == Op::Mma) mxm[pos].push_back({x.cycle, 2, in.t, int(q), int(i)});
        if (in.op == Op::Mm || in.op == Op::Mma || in.op == Op::Accrd)
          accs.push_back({pos, in.v[in.op == Op::Accrd ? 0 : 1], x.cycle, in.op == Op::Accrd, int(q), int(i)});
      }
    }
    // Two producers on one stream register in one cycle.
    // (Events are collected queue by queue, instance by instance: ties keep (queue, inst) order.)
    sort_by_key(writes, [](const SAcc& a) { return SortKey{std::uint64_t(a.stream) << 32 | std::uint32_t(a.pos), std::uint64_t(a.cycle), 0, 0}; });
    for (std::size_t i = 1; i < writes.size(); ++i) {
      const auto& a = writes[i - 1];
      const auto& b = writes[i];
      if (a.stream == b.stream && a.pos == b.pos && a.cycle == b.cycle) {
        attempt(b.queue, b.inst, [&] {
          const auto& sa = P_.queues[size_t(a.queue)].instrs[size_t(insts_[size_t(a.queue)][size_t(a.inst)].src)];
          fail_at(b.queue, insts_[size_t(b.queue)][size_t(b.inst)],
                  fmt::format("stream conflict: {} at position {} ({}) in cycle {} is also written by the "
                              "instruction at {}:{}:{} (queue {})", stream_name(b.stream), b.pos,
                              L_.slice(SliceId{b.pos}).name, b.cycle, sa.loc.file, sa.loc.line, sa.loc.col,
                              L_.queue(QueueId{a.queue}).name));
        });
      }
    }
    // Every read finds a value: a write on the same diagonal upstream of the reader.
    sort_by_key(writes, [](const SAcc& a) { return SortKey{a.stream, ordered(a.diag), std::uint32_t(a.pos), 0}; });
    for (const auto& r : reads) {
      auto lo = std::lower_bound(writes.begin(), writes.end(), r, [](const SAcc& a, const SAcc& b) {
        return std::tie(a.stream, a.diag) < std::tie(b.stream, b.diag);
      });
      auto hi = lo;
      while (hi != writes.end() && hi->stream == r.stream && hi->diag == r.diag) ++hi;
      bool east = r.stream < 64;
      bool ok = false;
      if (lo != hi) ok = east ? lo->pos <= r.pos : (hi - 1)->pos >= r.pos;
      if (!ok) attempt(r.queue, r.inst, [&] {
        // Hint: when does the nearest value on this stream pass the reader?
        std::string hint;
        std::int64_t best = kNever;
        for (const auto& w : writes) {
          if (w.stream != r.stream) continue;
          if (east ? w.pos > r.pos : w.pos < r.pos) continue;
          std::int64_t arrive = w.cycle + std::int64_t(std::abs(r.pos - w.pos)) * hop;
          if (std::llabs(arrive - r.cycle) < std::llabs(best - r.cycle)) best = arrive;
        }
        if (best != kNever)
          hint = fmt::format(" (the nearest value on {} passes this position in cycle {}, {} cycle{} {})",
                             stream_name(r.stream), best, std::llabs(best - r.cycle),
                             std::llabs(best - r.cycle) == 1 ? "" : "s", best > r.cycle ? "later" : "earlier");
        else
          hint = fmt::format(" (nothing upstream ever writes {})", stream_name(r.stream));
        fail_at(r.queue, insts_[size_t(r.queue)][size_t(r.inst)],
                fmt::format("read of an empty stream: {} at position {} ({}) holds no value in cycle {}{}",
                            stream_name(r.stream), r.pos, L_.slice(SliceId{r.pos}).name, r.cycle, hint));
      });
    }
    // SRAM ports per slice per cycle.
    sort_by_key(ports, [](const Port& a) { return SortKey{pos_cycle(a.pos, a.cycle), a.write, 0, 0}; });
    for (std::size_t i = 0; i < ports.size();) {
      std::size_t j = i;
      while (j < ports.size() && ports[j].pos == ports[i].pos && ports[j].cycle == ports[i].cycle &&
             ports[j].write == ports[i].write)
        ++j;
      int have = ports[i].write ? p_.mem.write_ports : p_.mem.read_ports;
      if (int(j - i) > have) {
        const auto& b = ports[i + size_t(have)];
        attempt(b.queue, b.inst, [&] {
          fail_at(b.queue, insts_[size_t(b.queue)][size_t(b.inst)],
                  fmt::format("SRAM port conflict: {} {} accesses to {} in cycle {}, the slice has {} {} port{}",
                              j - i, ports[i].write ? "write" : "read", L_.slice(SliceId{ports[i].pos}).name,
                              ports[i].cycle, have, ports[i].write ? "write" : "read", have == 1 ? "" : "s"));
        });
      }
      i = j;
    }
    // The weight bus: per plane and cycle at most install_rows_per_cycle LWM rows land, and an
    // LWM row never lands on a staging row that another LWM or an LW fills in the same cycle.
    sort_by_key(landings, [](const Landing& a) { return SortKey{pos_cycle(a.plane, a.cycle), ordered(a.row), 0, 0}; });
    for (std::size_t i = 0; i < landings.size();) {
      std::size_t j = i;
      int lwm_rows = 0;
      std::size_t nth_over = landings.size();
      while (j < landings.size() && landings[j].plane == landings[i].plane && landings[j].cycle == landings[i].cycle) {
        if (j > i && landings[j].row == landings[j - 1].row && !(landings[j].lw && landings[j - 1].lw)) {
          const auto& a = landings[j - 1];
          const auto& b = landings[j];
          attempt(b.queue, b.inst, [&] {
            const auto& sa = P_.queues[size_t(a.queue)].instrs[size_t(insts_[size_t(a.queue)][size_t(a.inst)].src)];
            fail_at(b.queue, insts_[size_t(b.queue)][size_t(b.inst)],
                    fmt::format("weight bus conflict: staging row {} of {} receives two rows in cycle {} ({} and the {} "
                                "at {}:{}:{}, queue {})", a.row, L_.slice(SliceId{a.plane}).name, a.cycle,
                                b.lw ? "this LW" : "this LWM", a.lw ? "LW" : "LWM", sa.loc.file, sa.loc.line, sa.loc.col,
                                L_.queue(QueueId{a.queue}).name));
          });
        }
        if (!landings[j].lw && ++lwm_rows == p_.mxm.install_rows_per_cycle + 1) nth_over = j;
        ++j;
      }
      const int have = p_.mxm.install_rows_per_cycle;
      if (lwm_rows > have) {
        const auto& b = landings[nth_over];
        attempt(b.queue, b.inst, [&] {
          fail_at(b.queue, insts_[size_t(b.queue)][size_t(b.inst)],
                  fmt::format("weight bus conflict: {} LWM rows land in {} in cycle {}, a plane takes {} per cycle "
                              "(mxm.install_rows_per_cycle)", lwm_rows, L_.slice(SliceId{b.plane}).name, b.cycle, have));
        });
      }
      i = j;
    }
    // MXM: weights installed before use, types consistent. Within a cycle the IW comes first:
    // it installs the staging rows as they were before the cycle, and an LW of the same cycle
    // loads the buffer for the next install (timing.md rule 16), so that LW is checked against
    // the rows staged after the IW, not against the ones being installed.
    for (auto& [pos, evs] : mxm) {
      try {
        auto order = [](int kind) { return kind == 1 ? 0 : kind == 0 ? 1 : 2; };  // IW, LW, MM
        sort_by_key(evs, [&](const MxmEv& a) { return SortKey{std::uint64_t(a.cycle), std::uint64_t(order(a.kind)), 0, 0}; });
        std::optional<isa::Dtype> staging;
        struct Inst_ { std::int64_t ready; isa::Dtype t; };
        // IWs in cycle order complete in cycle order (a fixed latency): the installs an MM may
        // use are a prefix, whose last is the current one.
        std::vector<Inst_> installs;
        std::size_t done = 0;
        for (const auto& e : evs) {
          const auto& x = insts_[size_t(e.queue)][size_t(e.inst)];
          if (e.kind == 0) {
            if (staging && *staging != e.t)
              fail_at(e.queue, x, fmt::format("type mismatch: LW.{} into a staging buffer holding .{} rows",
                                              isa::dtype_info(e.t).name, isa::dtype_info(*staging).name));
            staging = e.t;
          } else if (e.kind == 1) {
            if (staging && *staging != e.t)
              fail_at(e.queue, x, fmt::format("type mismatch: IW.{} installs .{} rows", isa::dtype_info(e.t).name,
                                              isa::dtype_info(*staging).name));
            installs.push_back({e.cycle + p_.lat(isa::LatClass::MxmIw), e.t});
            staging.reset();
          } else {
            while (done < installs.size() && installs[done].ready <= e.cycle) ++done;
            const Inst_* cur = done > 0 ? &installs[done - 1] : nullptr;
            if (!cur) {
              std::string when = installs.empty() ? "no IW precedes it"
                                                  : fmt::format("the first IW completes in cycle {}", installs.front().ready);
              fail_at(e.queue, x, fmt::format("no weights installed in {} yet ({})", L_.slice(SliceId{pos}).name, when));
            }
            if (cur->t != e.t)
              fail_at(e.queue, x, fmt::format("type mismatch: the installed weights are .{}, not .{}",
                                              isa::dtype_info(cur->t).name, isa::dtype_info(e.t).name));
          }
        }
      } catch (const AsmError& e) {
        D_.add(e);  // the plane's later events would only follow from it
      }
    }
    check_accumulators(accs);
  }

  // An MM/MMA writing (or an ACCRD reading) accumulator `acc` of the plane at position `pos`.
  struct AccEv {
    int pos;
    std::int64_t acc, cycle;
    bool read;
    std::int32_t queue, inst;
  };

  // Accumulator readiness (timing.md rule 17): an ACCRD in cycle t reads what the last MM/MMA
  // into its accumulator issued before t left, which is there from that MM's cycle + mxm_mm on;
  // an accumulator no MM/MMA has written cannot be read. An ACCRD in the very cycle of an MM into
  // its accumulator is refused as well: which of the two the chip takes first would depend on
  // the numbering of their queues. The model checks the same rule at run time, in both modes.
  void check_accumulators(std::vector<AccEv>& evs) {
    const std::int64_t lat = p_.lat(isa::LatClass::MxmMm);
    // Per plane and accumulator, by cycle; an MM before an ACCRD of its cycle.
    sort_by_key(evs, [](const AccEv& a) {
      return SortKey{std::uint64_t(a.pos) << 32 | std::uint32_t(a.acc), std::uint64_t(a.cycle), a.read, 0};
    });
    const AccEv* last = nullptr;  // the latest MM/MMA into the current accumulator
    for (std::size_t i = 0; i < evs.size(); ++i) {
      const auto& e = evs[i];
      if (i > 0 && (evs[i - 1].pos != e.pos || evs[i - 1].acc != e.acc)) last = nullptr;
      if (e.acc < 0 || e.acc >= p_.mxm.accumulators) continue;  // check_ranges reported it
      if (!e.read) {
        last = &e;
        continue;
      }
      attempt(e.queue, e.inst, [&] {
        const auto& x = insts_[size_t(e.queue)][size_t(e.inst)];
        const std::string plane = L_.slice(SliceId{e.pos}).name;
        if (!last)
          fail_at(e.queue, x, fmt::format("accumulator {} of {} read before any MM/MMA wrote it", e.acc, plane));
        const auto& w = P_.queues[size_t(last->queue)].instrs[size_t(insts_[size_t(last->queue)][size_t(last->inst)].src)];
        const std::string by = fmt::format("{} in cycle {} ({}:{}:{})", isa::info(w.in.op).mnemonic, last->cycle,
                                           w.loc.file, w.loc.line, w.loc.col);
        const std::int64_t ready = last->cycle + lat;
        if (last->cycle == e.cycle)
          fail_at(e.queue, x, fmt::format("accumulator {} of {} read in the cycle the {} writes it: read it before, "
                                          "or from cycle {} ({} + mxm_mm {}) on", e.acc, plane, by, ready,
                                          last->cycle, lat));
        if (e.cycle < ready)
          fail_at(e.queue, x, fmt::format("accumulator {} of {} read before its MM completes: the {} makes it "
                                          "readable from cycle {} ({} + mxm_mm {}), {} cycle{} later",
                                          e.acc, plane, by, ready, last->cycle, lat, ready - e.cycle,
                                          ready - e.cycle == 1 ? "" : "s"));
      });
    }
  }

  // ---- emission --------------------------------------------------------------------------
  void emit(Result& r) {
    auto& prog = P_.program;
    prog.queues.clear();
    for (std::size_t q = 0; q < P_.queues.size(); ++q) {
      const auto& src = P_.queues[q].instrs;
      const auto& xs = insts_[q];
      if (xs.empty()) continue;
      obj::QueueCode code;
      code.name = L_.queue(QueueId{int(q)}).name;
      std::int64_t free = 0;
      auto nops = [&](std::int64_t upto) {
        while (free < upto) {
          std::int64_t n = std::min<std::int64_t>(upto - free, isa::kind_max(isa::Kind::Count));
          isa::Instr nop;
          nop.op = Op::Nop;
          nop.v[0] = n;
          code.words.push_back(isa::encode(nop));
          free += n;
        }
      };
      for (std::size_t i = 0; i < xs.size();) {
        const auto& x = xs[i];
        const auto& s = src[size_t(x.src)];
        nops(x.cycle);
        const auto in = stepped(s, x.k);
        const int occ = isa::info(in.op).occupancy;
        r.last_issue_cycle = std::max(r.last_issue_cycle, x.cycle);
        if (is_icu(in.op)) {
          code.words.push_back(isa::encode(in));
          r.schedule.push_back({code.name, x.cycle, 0, 0, format_instr(in, p_), s.loc});
          free = s.release >= 0 ? s.release : (in.op == Op::Halt ? kNever : x.cycle + occ);
          ++i;
          continue;
        }
        if (s.by_repeatr) {  // kept as written: its count is only known at run time
          code.words.push_back(isa::encode(in));
          isa::Instr rr;
          rr.op = Op::Repeatr;
          // The REPEATR word follows its base in the source.
          rr = src[size_t(x.src) + 1].in;
          code.words.push_back(isa::encode(rr));
          r.schedule.push_back({code.name, x.cycle, s.repeat_n, s.repeat_d, format_instr(in, p_), s.loc});
          r.last_issue_cycle = std::max(r.last_issue_cycle, x.cycle + s.repeat_n * s.repeat_d);
          free = x.cycle + s.repeat_n * s.repeat_d + occ;
          i += size_t(s.repeat_n) + 1;
          continue;
        }
        // Longest run of equally spaced instances, each the previous one stepped once.
        std::size_t run = 1;
        std::int64_t d = 0;
        if (i + 1 < xs.size() && !is_icu(src[size_t(xs[i + 1].src)].in.op) && !src[size_t(xs[i + 1].src)].by_repeatr) {
          d = xs[i + 1].cycle - x.cycle;
          if (d >= occ && d <= isa::kind_max(isa::Kind::Delay)) {
            while (i + run < xs.size() && run <= size_t(isa::kind_max(isa::Kind::Count))) {
              const auto& y = xs[i + run];
              const auto& sy = src[size_t(y.src)];
              if (is_icu(sy.in.op) || sy.by_repeatr) break;
              if (y.cycle != x.cycle + std::int64_t(run) * d) break;
              // The next instance of the same REPEAT is `in` stepped once more (stepping is
              // linear, and modular for a wrapped staging row): only other sources compare.
              const bool same = y.src == x.src && y.k == x.k + std::int32_t(run);
              if (!same && !(stepped(sy, y.k) == step_copy(in, std::int64_t(run)))) break;
              ++run;
            }
          }
        }
        code.words.push_back(isa::encode(in));
        if (run > 1) {
          isa::Instr rep;
          rep.op = Op::Repeat;
          rep.v[0] = std::int64_t(run - 1);
          rep.v[1] = d;
          code.words.push_back(isa::encode(rep));
        }
        r.schedule.push_back({code.name, x.cycle, std::int64_t(run - 1), run > 1 ? d : 0, format_instr(in, p_), s.loc});
        const std::int64_t last = x.cycle + std::int64_t(run - 1) * d;
        r.last_issue_cycle = std::max(r.last_issue_cycle, last);
        free = last + occ;
        i += run;
      }
      prog.queues.push_back(std::move(code));
    }
  }

  isa::Instr step_copy(const isa::Instr& base, std::int64_t k) const {
    SrcInstr tmp;
    tmp.in = base;
    return stepped(tmp, k);
  }

  Parsed& P_;
  const ChipParams& p_;
  const Layout& L_;
  const Options& o_;
  Diagnostics& D_;
  std::map<std::string, std::pair<int, int>> labels_;
  std::vector<std::size_t> cursor_;
  std::vector<std::int64_t> free_;
  std::int64_t pending_notifies_ = 0;
  std::vector<std::vector<Inst>> insts_;
  std::vector<std::vector<bool>> bad_;  // per queue and source instruction: a check failed
  std::array<std::vector<int>, 2> plane_pos_;  // plane_position_cached: east, west
};

}  // namespace

Result schedule_and_emit(Parsed& parsed, const ChipParams& p, const Layout& l, const Options& o, Diagnostics& d) {
  return Scheduler(parsed, p, l, o, d).run();
}

}  // namespace lpu::assembler
