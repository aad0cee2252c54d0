#include "lpu/compiler/sched.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <sstream>

#include "lpu/common/errors.hpp"

namespace lpu::compiler::sched {

// ---- IntervalSet ---------------------------------------------------------------------------

bool IntervalSet::free(Cycle a, Cycle b) const {
  if (a >= b) return true;
  auto it = m_.upper_bound(a);
  if (it != m_.begin()) {
    auto pv = std::prev(it);
    if (pv->second > a) return false;
  }
  return it == m_.end() || it->first >= b;
}

Cycle IntervalSet::next_free(Cycle a, Cycle len) const {
  Cycle t = a;
  for (;;) {
    auto it = m_.upper_bound(t);
    if (it != m_.begin()) {
      auto pv = std::prev(it);
      if (pv->second > t) {
        t = pv->second;
        continue;
      }
    }
    if (it == m_.end() || it->first >= t + len) return t;
    t = it->second;
  }
}

Cycle IntervalSet::gap_end(Cycle a) const {
  auto it = m_.upper_bound(a);
  if (it != m_.begin()) {
    auto pv = std::prev(it);
    if (pv->second > a) return a;
  }
  return it == m_.end() ? kNever : it->first;
}

void IntervalSet::add(Cycle a, Cycle b) {
  if (a >= b) return;
  auto it = m_.upper_bound(a);
  if (it != m_.begin()) {
    auto pv = std::prev(it);
    if (pv->second >= a) {
      a = pv->first;
      b = std::max(b, pv->second);
      it = m_.erase(pv);
    }
  }
  while (it != m_.end() && it->first <= b) {
    b = std::max(b, it->second);
    it = m_.erase(it);
  }
  m_.emplace(a, b);
}

// ---- StreamTrack ---------------------------------------------------------------------------

bool StreamTrack::free(Cycle d0, Cycle d1, int lo, int hi) const {
  auto it = m_.lower_bound(d0 - maxlen_);
  for (; it != m_.end() && it->first < d1; ++it) {
    const auto& r = it->second;
    if (r.d1 <= d0) continue;
    if (r.hi < lo || r.lo > hi) continue;
    return false;
  }
  return true;
}

void StreamTrack::add(Cycle d0, Cycle d1, int lo, int hi) {
  m_.emplace(d0, R{d1, lo, hi});
  maxlen_ = std::max(maxlen_, d1 - d0);
}

// ---- ChipSched -----------------------------------------------------------------------------

struct ChipSched::Tentative {
  struct Q {
    int q;
    Cycle a, b;
  };
  struct P {
    int slice;
    bool w;
    Cycle a, b;
  };
  struct S {
    int dir, id;
    Cycle d0, d1;
    int lo, hi;
  };
  struct Take {
    int slice;
    Cycle row;
    int count;
  };
  std::vector<Q> q;
  std::vector<P> ports;
  std::vector<S> s;
  std::vector<Take> rows;
  std::vector<Emitted> instr;
  std::vector<std::pair<ValueP, Cycle>> reads;
  struct FirstRead {
    ValueP v;
    int idx, stride, count;
    Cycle t;
  };
  std::vector<FirstRead> first;
  Cycle last = 0;
};

ChipSched::ChipSched(const ChipParams& p, bool gather_lanes) : p_(p), L_(p) {
  h_ = p_.stream.hop_cycles;
  debug_ = std::getenv("LPU_GEN_DEBUG_SYMS") != nullptr;
  for (const auto& q : L_.queues()) {
    qindex_[q.name] = int(qnames_.size());
    qnames_.push_back(q.name);
  }
  qbusy_.resize(qnames_.size());
  for (const auto& s : L_.slices()) {
    if (s.kind == SliceKind::Vxm) pv_ = s.position;
    if (s.kind == SliceKind::Sxm) (s.hemi == Hemi::East ? pxe_ : pxw_) = s.position;
  }
  // MEM slices, from the VXM outward, alternating sides (mem.w.0, mem.e.0, mem.w.1, ...).
  const int M = p_.mem.slices_per_hemisphere;
  for (int i = 0; i < M; ++i)
    for (const char* side : {"w", "e"}) {
      MemSlice ms;
      ms.name = fmt::format("mem.{}.{}", side, i);
      auto sid = L_.find_slice(ms.name);
      if (!sid) throw Error(fmt::format("generator: no slice {}", ms.name));
      ms.position = L_.slice(*sid).position;
      for (const auto& q : L_.queues())
        if (q.slice == *sid) {
          ms.queues.push_back(q.name);
          ms.qids.push_back(qindex_.at(q.name));
        }
      ms.free.push_back({0, p_.mem.rows, 0});
      slice_by_name_[ms.name] = int(slices_.size());
      slices_.push_back(std::move(ms));
    }
  for (const auto& q : L_.queues()) {
    if (q.kind == isa::QueueKind::Vxm) vxm_q_.push_back(qindex_.at(q.name));
    if (q.kind == isa::QueueKind::Sxm) {
      const auto& s = L_.slice(q.slice);
      (s.hemi == Hemi::East ? sxme_q_ : sxmw_q_).push_back(qindex_.at(q.name));
    }
  }
  // MXM planes and their lane streams: plane k of a side, queue j reads stream k * nq + j.
  int side_count[2] = {0, 0};
  for (const auto& s : L_.slices()) {
    if (s.kind != SliceKind::Mxm) continue;
    PlaneState ps;
    ps.name = s.name;
    ps.position = s.position;
    const int side = s.hemi == Hemi::East ? 0 : 1;
    for (const auto& q : L_.queues())
      if (q.slice == SliceId{int(&s - L_.slices().data())}) ps.qids.push_back(qindex_.at(q.name));
    for (std::size_t j = 0; j < ps.qids.size(); ++j) ps.lane_stream.push_back(side_count[side] * int(ps.qids.size()) + int(j));
    side_count[side]++;
    ps.acc_free.assign(std::size_t(p_.mxm.accumulators), 0);
    ps.acc_ready.assign(std::size_t(p_.mxm.accumulators), kNever);
    planes_.push_back(std::move(ps));
  }
  for (auto& pl : planes_) {
    const int side = pl.position > pv_ ? 0 : 1;
    for (int id : pl.lane_stream)
      if (gather_lanes) pl.idx_stream.push_back(side_count[side] * int(pl.qids.size()) + id);
  }
  for (int dir = 0; dir < 2; ++dir) {
    streams_[dir].resize(std::size_t(p_.stream.per_direction));
    int reserved = 0;
    for (const auto& pl : planes_) {
      const bool east = pl.position > pv_;
      if ((dir == 0) == east) reserved += int(pl.lane_stream.size() + pl.idx_stream.size());
    }
    if (reserved >= p_.stream.per_direction)
      throw Error(fmt::format("generator: {} streams per direction are too few for {} MXM lanes", p_.stream.per_direction, reserved));
    for (int id = reserved; id < p_.stream.per_direction; ++id) general_[dir].push_back(id);
  }
}

int ChipSched::slice_index(const std::string& name) const {
  auto it = slice_by_name_.find(name);
  if (it == slice_by_name_.end()) throw Error(fmt::format("generator: no MEM slice {}", name));
  return it->second;
}

std::string ChipSched::addr(int reg, Cycle row) const {
  return reg ? fmt::format("[r{}+{}]", reg, row) : fmt::format("{}", row);
}

void ChipSched::reserve_rows(int slice, Cycle row, Cycle count) {
  auto& fr = slices_[std::size_t(slice)].free;
  std::vector<MemSlice::Free> out;
  for (const auto& f : fr) {
    const Cycle a = f.row, b = f.row + f.count;
    if (b <= row || a >= row + count) {
      out.push_back(f);
      continue;
    }
    if (a < row) out.push_back({a, row - a, f.after});
    if (b > row + count) out.push_back({row + count, b - row - count, f.after});
  }
  fr = std::move(out);
}

ValueP ChipSched::make_value(const std::string& name, int slice, Cycle row, int count, Cycle ready) {
  auto v = std::make_shared<Value>();
  v->name = name;
  v->slice = slice;
  v->row = row;
  v->count = count;
  v->ready.assign(std::size_t(count), ready);
  return v;
}

ValueP ChipSched::fixed(const std::string& name, int slice, Cycle row, int count, Cycle ready, int reg) {
  auto v = make_value(name, slice, row, count, ready);  // (not a debug symbol: it has one)
  v->fixed = true;
  v->reg = reg;
  return v;
}

std::string ChipSched::debug_symbols() const {
  std::string s;
  std::map<std::string, int> seen;
  for (const auto& v : all_) {
    std::string n = "DBG_";
    for (char c : v->name) n += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
    n += "_" + std::to_string(seen[n]++);
    s += fmt::format(".symbol {} i8[{}, {}] {} @ {}\n", n, v->count, p_.vector_bytes(), slices_[std::size_t(v->slice)].name, v->row);
  }
  return s;
}

void ChipSched::free(const ValueP& v) {
  if (!v || v->fixed || debug_) return;
  auto& fr = slices_[std::size_t(v->slice)].free;
  fr.push_back({v->row, v->count, std::max(v->last_read, v->last_write) + 1});
  std::sort(fr.begin(), fr.end(), [](const auto& a, const auto& b) { return a.row < b.row; });
  std::vector<MemSlice::Free> m;
  for (const auto& f : fr) {
    if (!m.empty() && m.back().row + m.back().count == f.row) {
      m.back().count += f.count;
      m.back().after = std::max(m.back().after, f.after);
    } else {
      m.push_back(f);
    }
  }
  fr = std::move(m);
  v->count = 0;
}

const std::vector<int>& ChipSched::nearest_scratch(int position) {
  if (auto it = nearest_.find(position); it != nearest_.end()) return it->second;  // (set_scratch clears)
  std::vector<int> v = scratch_;
  std::stable_sort(v.begin(), v.end(), [&](int a, int b) {
    return std::abs(slices_[std::size_t(a)].position - position) < std::abs(slices_[std::size_t(b)].position - position);
  });
  return nearest_[position] = std::move(v);
}

// Values of at most this many vectors (reduction trees, scalars) go to the nearest slices.
constexpr int kNearMax = 64;

ValueP ChipSched::alloc(const std::string& name, int count, Cycle t_lb, const std::vector<int>& avoid) {
  auto avoided = [&](int sl) { return std::find(avoid.begin(), avoid.end(), sl) != avoid.end(); };
  if (scratch_.empty()) throw Error("generator: no scratch slices");
  // Rows free by t_lb in the slice nearest the VXM (the unit that writes and reads most scratch)
  // whose ports are idle for a pass over the value from t_lb; else rows free by t_lb (round robin
  // over the slices); else the rows free earliest.
  std::optional<RowsAt> at;
  for (int sl : nearest_scratch(pv_)) {
    if (count > kNearMax) break;
    if (avoided(sl)) continue;
    const auto& S = slices_[std::size_t(sl)];
    const Cycle span = 2 * std::abs(S.position - pv_) + count + 16;
    if (!S.wport.free(t_lb, t_lb + span) || !S.rport.free(t_lb, t_lb + span)) continue;
    for (const auto& f : S.free)
      if (f.count >= count && std::max<Cycle>(f.after, 0) <= t_lb) {
        at = RowsAt{sl, f.row, std::max<Cycle>(f.after, 0)};
        break;
      }
    if (at) break;
  }
  if (!at) {
    std::vector<int> pool;  // round robin from rr_
    for (std::size_t k = 0; k < scratch_.size(); ++k) {
      const int sl = scratch_[(std::size_t(rr_) + k) % scratch_.size()];
      if (!avoided(sl)) pool.push_back(sl);
    }
    at = rows_in(pool, count, t_lb);
  }
  if (!at && !avoid.empty()) return alloc(name, count, t_lb);  // every other slice is full: share one
  if (!at) throw Error(fmt::format("does not fit: no {} free scratch rows for '{}' (SRAM scratch exhausted)", count, name));
  rr_ = (rr_ + 1) % int(scratch_.size());
  return place(name, *at, count);
}

ValueP ChipSched::alloc_in(const std::string& name, int count, Cycle t_lb, const std::vector<int>& pool) {
  const auto at = rows_in(pool, count, t_lb);
  if (!at) throw Error(fmt::format("does not fit: no {} free rows for '{}' in its slices", count, name));
  return place(name, *at, count);
}

std::optional<ChipSched::RowsAt> ChipSched::rows_in(const std::vector<int>& pool, int count, Cycle t_lb) const {
  // The first rows free by t_lb in pool order, else the rows free earliest.
  std::optional<RowsAt> best;
  for (int sl : pool) {
    for (const auto& f : slices_[std::size_t(sl)].free) {
      if (f.count < count) continue;
      const Cycle a = std::max<Cycle>(f.after, 0);
      if (!best || a < best->after) best = RowsAt{sl, f.row, a};
      if (a <= t_lb) break;
    }
    if (best && best->after <= t_lb) break;
  }
  return best;
}

ValueP ChipSched::place(const std::string& name, const RowsAt& at, int count) {
  take_rows(at.slice, at.row, count);
  auto v = make_value(name, at.slice, at.row, count, kNever);
  if (debug_) all_.push_back(v);
  v->avail = at.after;
  return v;
}

std::optional<std::pair<int, Cycle>> ChipSched::find_rows(int slice, int count, Cycle write_t) {
  const auto& fr = slices_[std::size_t(slice)].free;
  for (const auto& f : fr)
    if (f.count >= count && f.after <= write_t) return std::make_pair(slice, f.row);
  return std::nullopt;
}

void ChipSched::take_rows(int slice, Cycle row, int count) {
  auto& fr = slices_[std::size_t(slice)].free;
  for (std::size_t i = 0; i < fr.size(); ++i) {
    auto& f = fr[i];
    if (row >= f.row && row + count <= f.row + f.count) {
      MemSlice::Free tail{row + count, f.row + f.count - row - count, f.after};
      const Cycle head = row - f.row;
      if (head > 0) {
        f.count = head;
        if (tail.count > 0) fr.insert(fr.begin() + std::ptrdiff_t(i) + 1, tail);
      } else if (tail.count > 0) {
        f = tail;
      } else {
        fr.erase(fr.begin() + std::ptrdiff_t(i));
      }
      return;
    }
  }
  throw Error("generator: internal error: rows taken twice");
}

bool ChipSched::try_queue(Tentative& tx, const std::vector<int>& qs, Cycle a, Cycle b, int* chosen) {
  for (int q : qs) {
    if (!qbusy_[std::size_t(q)].free(a, b)) continue;
    bool clash = false;
    for (const auto& x : tx.q)
      if (x.q == q && x.a < b && a < x.b) clash = true;
    if (clash) continue;
    tx.q.push_back({q, a, b});
    if (chosen) *chosen = q;
    return true;
  }
  return false;
}

std::optional<int> ChipSched::pick_stream(Tentative& tx, int dir, Cycle d0, Cycle d1, int lo, int hi) {
  for (int id : general_[dir]) {
    if (!streams_[dir][std::size_t(id)].free(d0, d1, lo, hi)) continue;
    bool clash = false;
    for (const auto& s : tx.s)
      if (s.dir == dir && s.id == id && s.d0 < d1 && d0 < s.d1 && !(s.hi < lo || s.lo > hi)) clash = true;
    if (clash) continue;
    tx.s.push_back({dir, id, d0, d1, lo, hi});
    return id;
  }
  return std::nullopt;
}

bool ChipSched::try_read(Tentative& tx, const Rd& r, int count, int u, Cycle t, std::string& st, Cycle* retry) {
  const Value& v = *r.v;
  const auto& sl = slices_[std::size_t(v.slice)];
  const int q = sl.position;
  const int hops = std::abs(u - q);
  const int dir = u > q ? 0 : 1;
  const Cycle R = t - p_.lat(isa::LatClass::MemRead) - Cycle(hops) * h_;
  // `retry`: the unit cycle before which this read cannot succeed (the port, the slice's queues
  // or the data are busy or not ready until then), for the caller to skip to.
  auto later = [&](Cycle r2) {
    if (retry) *retry = std::max(*retry, t + (r2 - R));
    return false;
  };
  if (R < 0) return later(0);
  for (int i = 0; i < count; ++i)
    if (R + i < v.ready[std::size_t(r.idx + i * r.stride)]) return later(v.ready[std::size_t(r.idx + i * r.stride)] - i);
  if (!sl.rport.free(R, R + count)) return later(sl.rport.next_free(R, count));
  for (const auto& x : tx.ports)
    if (x.slice == v.slice && !x.w && x.a < R + count && R < x.b) return false;
  int qq = -1;
  if (!try_queue(tx, sl.qids, R, R + count, &qq)) {
    Cycle best = kNever;
    for (int qi : sl.qids) best = std::min(best, qbusy_[std::size_t(qi)].next_free(R, count));
    return best >= kNever ? false : later(best);
  }
  const Cycle D = dir == 0 ? t - Cycle(u) * h_ : t + Cycle(u) * h_;
  auto id = pick_stream(tx, dir, D, D + count, std::min(u, q), std::max(u, q));
  if (!id) return false;
  tx.ports.push_back({v.slice, false, R, R + count});
  st = fmt::format("s{}{}", *id, dir == 0 ? 'e' : 'w');
  tx.instr.push_back({qq, R, fmt::format("READ {}, {}, {}", addr(v.reg, v.row + r.idx), st, r.stride), count - 1});
  tx.reads.emplace_back(r.v, R + count - 1);
  tx.first.push_back({r.v, r.idx, r.stride, count, R});
  return true;
}

bool ChipSched::try_write(Tentative& tx, int slice, Cycle row, int reg, int stride, int count, int u, Cycle tout,
                          std::string& st, Cycle min_w) {
  const auto& sl = slices_[std::size_t(slice)];
  const int q = sl.position;
  const int hops = std::abs(u - q);
  const int dir = q > u ? 0 : 1;
  const Cycle W = tout + Cycle(hops) * h_;
  if (W < min_w) return false;
  if (!sl.wport.free(W, W + count)) return false;
  for (const auto& x : tx.ports)
    if (x.slice == slice && x.w && x.a < W + count && W < x.b) return false;
  int qq = -1;
  if (!try_queue(tx, sl.qids, W, W + count, &qq)) return false;
  const Cycle D = dir == 0 ? tout - Cycle(u) * h_ : tout + Cycle(u) * h_;
  auto id = pick_stream(tx, dir, D, D + count, std::min(u, q), std::max(u, q));
  if (!id) return false;
  tx.ports.push_back({slice, true, W, W + count});
  st = fmt::format("s{}{}", *id, dir == 0 ? 'e' : 'w');
  tx.instr.push_back({qq, W, fmt::format("WRITE {}, {}, {}", st, addr(reg, row), stride), count - 1});
  tx.last = std::max(tx.last, W + count - 1 + p_.lat(isa::LatClass::MemWrite));
  return true;
}

bool ChipSched::try_write_split(Tentative& tx, int a, Cycle row_a, int b, Cycle row_b, int count, int u, Cycle tout,
                                std::string& st) {
  const auto& A = slices_[std::size_t(a)];
  const auto& Bs = slices_[std::size_t(b)];
  const int qa = A.position, qb = Bs.position;
  const int dir = qa > u ? 0 : 1;
  if ((qb > u ? 0 : 1) != dir || qa == u || qb == u) return false;
  const int ca = (count + 1) / 2, cb = count / 2;
  // Result k leaves the unit in tout + k: the even ones reach a in Wa + k, the odd b in Wb + k - 1.
  const Cycle Wa = tout + Cycle(std::abs(u - qa)) * h_, Wb = tout + 1 + Cycle(std::abs(u - qb)) * h_;
  const Cycle ea = Wa + 2 * Cycle(ca - 1) + 1, eb = Wb + 2 * Cycle(cb - 1) + 1;
  if (!A.wport.free(Wa, ea) || !Bs.wport.free(Wb, eb)) return false;
  for (const auto& x : tx.ports)
    if (x.w && ((x.slice == a && x.a < ea && Wa < x.b) || (x.slice == b && x.a < eb && Wb < x.b))) return false;
  int qqa = -1, qqb = -1;
  if (!try_queue(tx, A.qids, Wa, ea, &qqa)) return false;
  if (!try_queue(tx, Bs.qids, Wb, eb, &qqb)) return false;
  const Cycle D = dir == 0 ? tout - Cycle(u) * h_ : tout + Cycle(u) * h_;
  auto id = pick_stream(tx, dir, D, D + count, std::min({u, qa, qb}), std::max({u, qa, qb}));
  if (!id) return false;
  tx.ports.push_back({a, true, Wa, ea});
  tx.ports.push_back({b, true, Wb, eb});
  st = fmt::format("s{}{}", *id, dir == 0 ? 'e' : 'w');
  tx.instr.push_back({qqa, Wa, fmt::format("WRITE {}, {}, 1", st, addr(0, row_a)), ca - 1, 2});
  tx.instr.push_back({qqb, Wb, fmt::format("WRITE {}, {}, 1", st, addr(0, row_b)), cb - 1, 2});
  tx.last = std::max(tx.last, std::max(ea, eb) - 1 + p_.lat(isa::LatClass::MemWrite));
  return true;
}

void ChipSched::commit(Tentative& tx) {
  for (const auto& x : tx.q) qbusy_[std::size_t(x.q)].add(x.a, x.b);
  for (const auto& x : tx.ports) (x.w ? slices_[std::size_t(x.slice)].wport : slices_[std::size_t(x.slice)].rport).add(x.a, x.b);
  for (const auto& x : tx.s) streams_[x.dir][std::size_t(x.id)].add(x.d0, x.d1, x.lo, x.hi);
  for (const auto& x : tx.rows) take_rows(x.slice, x.row, x.count);
  for (auto& e : tx.instr) emit_instr(e.queue, e.t, std::move(e.text), e.repeat, e.delay);
  for (const auto& [v, c] : tx.reads) v->last_read = std::max(v->last_read, c);
  for (const auto& f : tx.first) {
    if (f.v->first_read.empty()) f.v->first_read.assign(std::size_t(f.v->count), kNever);
    for (int k = 0; k < f.count; ++k) {
      auto& x = f.v->first_read[std::size_t(f.idx + k * f.stride)];
      x = std::min(x, f.t + k);
    }
  }
  last_ = std::max(last_, tx.last);
}

void ChipSched::emit_instr(int q, Cycle t, std::string text, std::int64_t repeat, int delay) {
  last_ = std::max(last_, t + repeat * delay);
  out_.push_back({q, t, std::move(text), repeat, delay});
}

OpResult ChipSched::op(const OpSpec& s0) {
  // A group that reads and writes one slice with a single queue cannot overlap its READs and
  // WRITEs there: issue it instance by instance.
  if (s0.count > 1 && s0.out && s0.out->v) {
    const int os = s0.out->v->slice;
    bool clash = false;
    for (const auto& r : s0.in) clash |= r.v && r.v->slice == os;
    if (clash && slices_[std::size_t(os)].qids.size() < 2) {
      OpResult res;
      for (int k = 0; k < s0.count; ++k) {
        OpSpec one = s0;
        one.count = 1;
        for (auto& r : one.in)
          if (r.v) r.idx += k * r.stride;
        one.out->idx += k * s0.out->stride;
        auto r = op(one);
        if (k == 0) res = r;
      }
      return res;
    }
  }
  OpSpec s = s0;
  // Identical operands share one READ; distinct operands in one slice cannot be read in the
  // same cycle (one read port): copy all but the first through the VXM.
  std::vector<int> same(s.in.size(), -1);
  for (std::size_t i = 0; i < s.in.size(); ++i)
    for (std::size_t j = 0; j < i; ++j) {
      if (same[j] >= 0 || !s.in[i].v || !s.in[j].v) continue;
      const auto& a = s.in[i];
      const auto& b = s.in[j];
      if (a.v == b.v && a.idx == b.idx && a.stride == b.stride) {
        same[i] = int(j);
        break;
      }
    }
  for (std::size_t i = 0; i < s.in.size(); ++i) {
    if (same[i] >= 0 || !s.in[i].v) continue;
    for (std::size_t j = 0; j < i; ++j) {
      if (same[j] >= 0 || !s.in[j].v || s.in[j].v->slice != s.in[i].v->slice) continue;
      OpSpec mv;
      mv.mnem = "MOV";
      mv.ops = {Operand::in(0), Operand::out()};
      mv.in = {s.in[i]};
      mv.count = s.in[i].stride == 0 ? 1 : s.count;
      Out o;
      o.name = s.in[i].v->name + ".copy";
      for (int c : scratch_) {
        bool taken = false;
        for (std::size_t k = 0; k < s.in.size(); ++k) taken |= k != i && s.in[k].v && s.in[k].v->slice == c;
        taken |= s.out && s.out->v && s.out->v->slice == c;
        if (!taken) o.pool.push_back(c);
      }
      if (o.pool.empty())
        throw Error(fmt::format("does not fit: {} reads two vectors of MEM slice {} at once and no other scratch slice is free "
                                "for a copy ({} slice(s) left beside the weights): use more chips or a chip with more MEM slices",
                                s.mnem, slices_[std::size_t(s.in[i].v->slice)].name, scratch_.size()));
      mv.out = o;
      auto r = op(mv);
      s.in[i] = Rd{r.out, 0, s.in[i].stride == 0 ? 0 : 1};
      break;
    }
  }
  int u = 0;
  const std::vector<int>* qs = nullptr;
  switch (s.unit) {
    case UnitKind::Vxm: u = pv_; qs = &vxm_q_; break;
    case UnitKind::SxmE: u = pxe_; qs = &sxme_q_; break;
    case UnitKind::SxmW: u = pxw_; qs = &sxmw_q_; break;
    case UnitKind::Mxm: u = planes_[std::size_t(s.plane)].position; qs = &planes_[std::size_t(s.plane)].qids; break;
  }
  const Cycle lat = p_.lat(s.lat);
  const int hMr = p_.lat(isa::LatClass::MemRead);
  Cycle t = std::max<Cycle>(s.earliest, 0);
  for (std::size_t i = 0; i < s.in.size(); ++i) {
    if (same[i] >= 0 || !s.in[i].v) continue;
    const auto& r = s.in[i];
    const int q = slices_[std::size_t(r.v->slice)].position;
    Cycle need = 0;
    for (int k = 0; k < s.count; ++k) {
      const auto idx = std::size_t(r.idx + k * r.stride);
      if (idx >= r.v->ready.size())
        throw Error(fmt::format("generator: internal error: {} reads vector {} of '{}' ({} vectors)", s.mnem, idx, r.v->name,
                                r.v->ready.size()));
      if (r.v->ready[idx] >= kNever)
        throw Error(fmt::format("generator: internal error: {} reads '{}'[{}] before it is written", s.mnem, r.v->name, idx));
      need = std::max(need, r.v->ready[idx] - k);
    }
    t = std::max(t, need + hMr + Cycle(std::abs(u - q)) * h_);
  }
  if (s.mnem.rfind("RECV", 0) == 0) {
    t = std::max(t, s.recv_ready);
    auto it = link_last_recv_.find(s.link);
    if (it != link_last_recv_.end()) t = std::max(t, it->second + 1);
  }
  if (s.acc >= 0) {
    auto& pl = planes_[std::size_t(s.plane)];
    for (int k = 0; k < s.count; ++k) t = std::max(t, pl.acc_ready[std::size_t(s.acc + k)] - k);
  }
  const bool is_send = s.mnem.rfind("SEND", 0) == 0;
  const Cycle ser = is_send ? link_ser_.at(s.link) : 0;
  for (int iter = 0;; ++iter) {
    if (iter > 2'000'000)
      throw Error(fmt::format("does not fit: the schedule cannot place {} of '{}' (no free queue, SRAM port or scratch rows from "
                              "cycle {}): the chip's SRAM is too full for this layout; use more chips or a shorter --context",
                              s.mnem, s.out ? (s.out->v ? s.out->v->name : s.out->name) : std::string("-"), t));
    // The unit's queue.
    Cycle best = kNever;
    for (int q : *qs) best = std::min(best, qbusy_[std::size_t(q)].next_free(t, s.count));
    if (best > t) {
      t = best;
      continue;
    }
    if (is_send) {
      const Cycle dep = t + p_.lat(isa::LatClass::C2cSend);
      auto& lb = link_busy_[s.link];
      const Cycle f = lb.next_free(dep, ser);
      if (f > dep) {
        t = f - p_.lat(isa::LatClass::C2cSend);
        continue;
      }
    }
    Tentative tx;
    int uq = -1;
    if (!try_queue(tx, *qs, t, t + s.count, &uq)) {
      ++t;
      continue;
    }
    std::vector<std::string> ist(s.in.size());
    Cycle retry = 0;
    bool ok = true;
    for (std::size_t i = 0; i < s.in.size() && ok; ++i) {
      if (same[i] >= 0) {
        ist[i] = ist[std::size_t(same[i])];
        continue;
      }
      if (!s.in[i].v) {
        // A constant: CONST on another VXM queue, its result read here in the same cycle.
        if (s.unit != UnitKind::Vxm) throw Error("generator: internal error: a constant operand outside the VXM");
        const Cycle tc = t - p_.lat(isa::LatClass::VxmAlu);
        int cq = -1;
        if (tc < 0 || !try_queue(tx, vxm_q_, tc, tc + s.count, &cq)) {
          ok = false;
          continue;
        }
        std::optional<int> id;
        int dir = 0;
        for (dir = 0; dir < 2 && !id; ++dir) {
          const Cycle D = dir == 0 ? t - Cycle(u) * h_ : t + Cycle(u) * h_;
          id = pick_stream(tx, dir, D, D + s.count, u, u);
          if (id) break;
        }
        if (!id) {
          ok = false;
          continue;
        }
        ist[i] = fmt::format("s{}{}", *id, dir == 0 ? 'e' : 'w');
        tx.instr.push_back({cq, tc, fmt::format("{} {}, raw(0x{:x})", s.in[i].konst, ist[i], s.in[i].kbits), s.count - 1});
        continue;
      }
      ok = try_read(tx, s.in[i], s.count, u, t, ist[i], &retry);
    }
    if (!ok) {
      if (iter == 100000 && std::getenv("LPU_GEN_DEBUG")) {
        for (std::size_t i = 0; i < s.in.size(); ++i) {
          Tentative t2;
          std::string x;
          const auto& r = s.in[i];
          if (!r.v) continue;
          fmt::print(stderr, "debug {} t={} in{} {} slice {} idx {} stride {} count {} ready0 {} ok={}\n", s.mnem, t, i, r.v->name,
                     slices_[std::size_t(r.v->slice)].name, r.idx, r.stride, s.count, r.v->ready[std::size_t(r.idx)],
                     try_read(t2, r, s.count, u, t, x));
        }
      }
      t = std::max(t + 1, retry);
      continue;
    }
    std::string ost;
    ValueP outv, outv2;
    int out_idx = 0, out_stride = 1;
    if (s.out) {
      const Out& o = *s.out;
      const Cycle tout = t + lat;
      if (o.v) {
        outv = o.v;
        out_idx = o.idx;
        out_stride = o.stride;
        ok = try_write(tx, o.v->slice, o.v->row + o.idx, o.v->reg, o.stride, s.count, u, tout, ost, o.v->avail);
      } else if (o.split && s.count >= 2) {
        // Two slices on one side of the unit, nearest first (a few partners per slice: the
        // search is part of the generator's time).
        ok = false;
        const int ca = (s.count + o.extra + 1) / 2, cb = (s.count + o.extra) / 2;
        const auto& order = nearest_scratch(u);
        for (std::size_t ka = 0; ka < order.size() && !ok; ++ka) {
          const int sa = order[ka];
          const int qa = slices_[std::size_t(sa)].position;
          auto ra = find_rows(sa, ca, tout + Cycle(std::abs(u - qa)) * h_);
          if (!ra) continue;
          int tried = 0;
          for (std::size_t kb = 0; kb < order.size() && !ok && tried < 8; ++kb) {
            const int sb = order[kb];
            const int qb = slices_[std::size_t(sb)].position;
            if (sb == sa || (qa > u) != (qb > u)) continue;
            auto rb = find_rows(sb, cb, tout + 1 + Cycle(std::abs(u - qb)) * h_);
            if (!rb) continue;
            ++tried;
            const auto mark = tx;
            if (try_write_split(tx, sa, ra->second, sb, rb->second, s.count, u, tout, ost)) {
              tx.rows.push_back({sa, ra->second, ca});
              tx.rows.push_back({sb, rb->second, cb});
              outv = make_value(o.name, sa, ra->second, ca, kNever);
              outv2 = make_value(o.name, sb, rb->second, cb, kNever);
              if (debug_) all_.insert(all_.end(), {outv, outv2});
              ok = true;
            } else {
              tx = mark;
            }
          }
        }
      } else {
        ok = false;
        const auto& pool = o.pool.empty() ? scratch_ : o.pool;
        if (pool.empty()) throw Error("generator: no scratch slices");
        // Scratch outputs: the slice nearest the unit whose port takes the write (the value is
        // ready soonest, and its next reader, mostly the same unit, reads it soonest); a given pool
        // in round robin.
        const bool nearest = o.pool.empty() && s.count <= kNearMax;
        const auto& order = nearest ? nearest_scratch(u) : pool;
        for (std::size_t k = 0; k < order.size() && !ok; ++k) {
          const int sl = nearest ? order[k] : pool[(std::size_t(rr_) + k) % pool.size()];
          if (std::find(o.avoid.begin(), o.avoid.end(), sl) != o.avoid.end()) continue;
          const Cycle W = tout + Cycle(std::abs(u - slices_[std::size_t(sl)].position)) * h_;
          auto rows = find_rows(sl, s.count, W);
          if (!rows) continue;
          const auto mark = tx;
          if (try_write(tx, sl, rows->second, 0, 1, s.count, u, tout, ost)) {
            tx.rows.push_back({sl, rows->second, s.count});
            outv = make_value(o.name, sl, rows->second, s.count, kNever);
            if (debug_) all_.push_back(outv);
            ok = true;
          } else {
            tx = mark;
          }
        }
        if (!ok) {
          bool any_rows = false;
          for (int sl : pool)
            if (find_rows(sl, s.count, kNever)) any_rows = true;
          if (!any_rows)
            throw Error(fmt::format("does not fit: no {} free scratch rows for '{}' (SRAM scratch exhausted)", s.count, o.name));
        }
      }
      if (!ok) {
        if (iter == 100000 && std::getenv("LPU_GEN_DEBUG")) {
          fmt::print(stderr, "debug {} t={}: output to {} fails (count {}, fixed {})\n", s.mnem, t,
                     s.out->v ? slices_[std::size_t(s.out->v->slice)].name : std::string("a new value"), s.count, bool(s.out->v));
          for (std::size_t i = 0; i < s.in.size(); ++i)
            if (s.in[i].v)
              fmt::print(stderr, "   in{} {} slice {} idx {} stride {}\n", i, s.in[i].v->name, slices_[std::size_t(s.in[i].v->slice)].name,
                         s.in[i].idx, s.in[i].stride);
        }
        ++t;
        continue;
      }
    }
    if (is_send) link_busy_[s.link].add(t + p_.lat(isa::LatClass::C2cSend), t + p_.lat(isa::LatClass::C2cSend) + ser);
    if (s.mnem.rfind("RECV", 0) == 0) link_last_recv_[s.link] = t + s.count - 1;
    std::vector<std::string> parts;
    for (const auto& op : s.ops) {
      if (op.k == Operand::In) parts.push_back(ist[std::size_t(op.i)]);
      else if (op.k == Operand::OutS) parts.push_back(ost);
      else parts.push_back(op.lit);
    }
    std::string text = s.mnem;
    if (!parts.empty()) text += " " + fmt::format("{}", fmt::join(parts, ", "));
    tx.instr.push_back({uq, t, std::move(text), s.count - 1});
    tx.last = std::max(tx.last, t + s.count - 1 + lat);
    if (s.forward) tx.first.clear();
    commit(tx);
    if (static const char* only = std::getenv("LPU_GEN_OPS"); only && outv && outv->name.rfind(only, 0) == 0)
      fmt::print(stderr, "op {} {:<10} {:<14} t {:>7} count {:>4} -> {} (iterations {})\n", static_cast<const void*>(this), s.mnem, outv->name, t, s.count,
                 slices_[std::size_t(outv->slice)].name, iter);
    if (s.out && outv2) {
      // Result k in tout + k + hops: even ones in outv[k / 2], odd ones in outv2[k / 2].
      for (int k = 0; k < s.count; ++k) {
        auto& v = k % 2 ? *outv2 : *outv;
        const Cycle W = t + lat + k + Cycle(std::abs(u - slices_[std::size_t(v.slice)].position)) * h_;
        v.ready[std::size_t(k / 2)] = W + p_.lat(isa::LatClass::MemWrite);
        v.last_write = std::max(v.last_write, W);
      }
      rr_ = (rr_ + 1) % int(std::max<std::size_t>(1, scratch_.size()));
    } else if (s.out) {
      const Cycle W = t + lat + Cycle(std::abs(u - slices_[std::size_t(outv->slice)].position)) * h_;
      for (int k = 0; k < s.count; ++k)
        outv->ready[std::size_t(out_idx + k * out_stride)] = W + k + p_.lat(isa::LatClass::MemWrite);
      outv->last_write = std::max(outv->last_write, W + s.count - 1);
      if (!s.out->v) rr_ = (rr_ + 1) % int(std::max<std::size_t>(1, (s.out->pool.empty() ? scratch_ : s.out->pool).size()));
    }
    return {t, outv, outv2};
  }
}

ChipSched::TileResult ChipSched::tile(int plane, isa::Dtype ty, const std::vector<LwPart>& parts, Cycle parts_ready,
                                      const std::vector<MmGroup>& mms, bool transposed) {
  auto& P = planes_[std::size_t(plane)];
  const std::string tn(isa::dtype_info(ty).name);
  const int hMr = p_.lat(isa::LatClass::MemRead);
  const Cycle iw_lat = p_.lat(isa::LatClass::MxmIw);
  Cycle last_lw = P.staging_free;
  // LWM parts (the weight bus): all in the same cycles a .. a + count - 1, each on a queue and
  // the read port of its own slice; the rows land mem_lwm cycles later. Rows landing in the
  // previous IW's cycle already belong to this install (rule 16), so a + mem_lwm >= last IW.
  std::vector<const LwPart*> lwm_parts;
  for (const auto& part : parts)
    if (part.lwm) lwm_parts.push_back(&part);
  if (!lwm_parts.empty()) {
    const Cycle lat_w = p_.lat(isa::LatClass::MemLwm);
    int count = 0;
    Cycle a = std::max<Cycle>({parts_ready, P.last_iw >= 0 ? P.last_iw - lat_w : 0, 0});
    for (const auto* part : lwm_parts) {
      count = std::max(count, part->count);
      for (int i = 0; i < part->count; ++i) a = std::max(a, part->src->ready[std::size_t(part->first + i)] - i);
    }
    std::vector<int> qsel(lwm_parts.size(), -1);
    for (int guard = 0;; ++guard) {
      if (guard > 1'000'000) throw Error("generator: cannot place a weight load over the weight bus");
      Cycle next = a;
      bool ok = true;
      for (std::size_t k = 0; k < lwm_parts.size() && ok; ++k) {
        const auto& sl = slices_[std::size_t(lwm_parts[k]->src->slice)];
        const int c = lwm_parts[k]->count;
        if (!sl.rport.free(a, a + c)) {
          next = std::max(next, sl.rport.next_free(a, c));
          ok = false;
          break;
        }
        qsel[k] = -1;
        for (int q : sl.qids)
          if (qbusy_[std::size_t(q)].free(a, a + c)) {
            qsel[k] = q;
            break;
          }
        if (qsel[k] < 0) {
          Cycle best = kNever;
          for (int q : sl.qids) best = std::min(best, qbusy_[std::size_t(q)].next_free(a, c));
          next = std::max(next, best);
          ok = false;
        }
      }
      if (ok) break;
      a = std::max(next, a + 1);
    }
    int pidx = -1;
    for (const auto& s : L_.slices())
      if (s.kind == SliceKind::Mxm && s.position == P.position) pidx = s.index;
    for (std::size_t k = 0; k < lwm_parts.size(); ++k) {
      const auto& part = *lwm_parts[k];
      auto& sl = slices_[std::size_t(part.src->slice)];
      qbusy_[std::size_t(qsel[k])].add(a, a + part.count);
      sl.rport.add(a, a + part.count);
      if (part.src->reg != 0) throw Error("generator: internal error: LWM rows are not register-relative");
      const Cycle addr0 = part.src->row + part.first;
      auto& run = lwm_run_[qsel[k]];
      if (run.t_next == a && run.addr_next == addr0 && run.plane == pidx && run.srow_next == part.srow &&
          run.rstep == part.rstep && run.wrap == part.wrap && run.ty == ty) {
        out_[run.out].repeat += part.count;  // the same instruction, more instances
        last_ = std::max(last_, a + part.count - 1);
      } else {
        run.out = out_.size();
        run.plane = pidx;
        run.rstep = part.rstep;
        run.wrap = part.wrap;
        run.ty = ty;
        emit_instr(qsel[k], a, fmt::format("LWM.{} {}, {}, {}, {}, {}", tn, addr0, pidx, part.srow, part.rstep, part.wrap),
                   part.count - 1);
      }
      run.t_next = a + part.count;
      run.addr_next = addr0 + part.count;
      run.srow_next = part.wrap > 0 ? int((part.srow + std::int64_t(part.count) * part.rstep) % part.wrap)
                                    : int(part.srow + std::int64_t(part.count) * part.rstep);
      part.src->last_read = std::max(part.src->last_read, a + part.count - 1);
    }
    last_lw = std::max(last_lw, a + count - 1 + lat_w);
    last_ = std::max(last_, last_lw);
  }
  // LW parts: each on one plane queue, filled into the queue's free gaps; every piece is a
  // READ group on the source slice and an LW group on the queue, on the queue's lane stream.
  for (std::size_t pi = 0; pi < parts.size(); ++pi) {
    const auto& part = parts[pi];
    if (part.lwm) continue;
    const int qsel = part.queue >= 0 ? part.queue : int(pi % P.qids.size());
    const int q = P.qids[std::size_t(qsel)];
    const auto& sl = slices_[std::size_t(part.src->slice)];
    const int hops = std::abs(P.position - sl.position);
    const Cycle lead = hMr + Cycle(hops) * h_;
    const int stream = P.lane_stream[std::size_t(qsel)];
    const char dirc = P.position > sl.position ? 'e' : 'w';
    Cycle ready = parts_ready;
    for (int i = 0; i < part.count; ++i) ready = std::max(ready, part.src->ready[std::size_t(part.first + i)] - i);
    // A GATHER's index comes from the idx value's slice, upstream on the same stream direction.
    int qx = -1;
    Cycle lead_x = 0;
    if (part.idx) {
      if (P.idx_stream.empty()) throw Error("generator: internal error: a GATHERed weight load without gather streams");
      qx = part.idx->slice;
      const int xpos = slices_[std::size_t(qx)].position;
      if ((P.position > sl.position) != (sl.position > xpos))
        throw Error("generator: internal error: a GATHER index is not upstream of its weight slice");
      lead_x = hMr + Cycle(std::abs(sl.position - xpos)) * h_;
      ready = std::max(ready, part.idx->ready[0] + lead_x);
    }
    Cycle t = std::max(P.staging_free, ready + lead);
    int done = 0;
    int guard = 0;
    while (done < part.count) {
      if (++guard > 1'000'000) throw Error("generator: cannot place a weight load");
      t = qbusy_[std::size_t(q)].next_free(t, 1);
      const Cycle gend = qbusy_[std::size_t(q)].gap_end(t);
      int g = int(std::min<Cycle>(part.count - done, gend - t));
      // The READ side: port and a MEM queue of the source slice over the same span (g shrinks to
      // what is free).
      auto fit = [&](const MemSlice& m, Cycle a) {
        while (g > 0 && !m.rport.free(a, a + g)) --g;
        for (; g > 0; --g)
          for (int c : m.qids)
            if (qbusy_[std::size_t(c)].free(a, a + g)) return c;
        return -1;
      };
      const Cycle R = t - lead;
      auto& src = slices_[std::size_t(part.src->slice)];
      const int mq = fit(src, R);
      // GATHER: the index READ on its own slice, port and queue, lead_x earlier (the index must
      // stand at the weight slice when the GATHER issues).
      const Cycle X0 = R - lead_x;
      int xq = -1;
      if (qx >= 0) {
        xq = fit(slices_[std::size_t(qx)], X0);
        if (X0 < 0) g = 0;
      }
      if (g <= 0 || R < 0) {
        ++t;
        continue;
      }
      qbusy_[std::size_t(q)].add(t, t + g);
      qbusy_[std::size_t(mq)].add(R, R + g);
      src.rport.add(R, R + g);
      if (qx >= 0) {
        auto& xs = slices_[std::size_t(qx)];
        qbusy_[std::size_t(xq)].add(X0, X0 + g);
        xs.rport.add(X0, X0 + g);
        const int xsid = P.idx_stream[std::size_t(qsel)];
        emit_instr(xq, X0, fmt::format("READ {}, s{}{}, 0", addr(part.idx->reg, part.idx->row), xsid, dirc), g - 1);
        emit_instr(mq, R,
                   fmt::format("GATHER {}, s{}{}, s{}{}", addr(part.src->reg, part.src->row + part.first + done), xsid, dirc, stream,
                               dirc),
                   g - 1);
        part.idx->last_read = std::max(part.idx->last_read, X0 + g - 1);
      } else {
        emit_instr(mq, R, fmt::format("READ {}, s{}{}, 1", addr(part.src->reg, part.src->row + part.first + done), stream, dirc), g - 1);
      }
      emit_instr(q, t, fmt::format("LW.{} s{}{}, {}", tn, stream, dirc, part.srow + done), g - 1);
      part.src->last_read = std::max(part.src->last_read, R + g - 1);
      done += g;
      t += g;
      last_lw = std::max(last_lw, t - 1);
    }
  }
  // IW after the last LW, and late enough that the active weights serve their last MM.
  Cycle I = std::max({last_lw + 1, P.last_mm - iw_lat + 1, P.last_iw + 1});
  int iq = -1;
  for (;;) {
    for (int q : P.qids)
      if (qbusy_[std::size_t(q)].free(I, I + 1)) {
        iq = q;
        break;
      }
    if (iq >= 0) break;
    ++I;
  }
  qbusy_[std::size_t(iq)].add(I, I + 1);
  emit_instr(iq, I, transposed ? fmt::format("IW.{} 1", tn) : fmt::format("IW.{}", tn), 0);
  P.last_iw = I;
  P.staging_free = I + 1;
  P.last_mm = I;  // no MM on these weights yet
  P.tiles++;
  TileResult res;
  res.iw = I;
  const Cycle mm_lat = p_.lat(isa::LatClass::MxmMm);
  for (const auto& g : mms) {
    int acc = g.acc;
    Cycle earliest = I + iw_lat;
    if (acc < 0) {
      // `count` consecutive accumulators, the ones free earliest.
      Cycle best = kNever;
      for (int a = 0; a + g.count <= int(P.acc_free.size()); ++a) {
        Cycle m = 0;
        for (int k = 0; k < g.count; ++k) m = std::max(m, P.acc_free[std::size_t(a + k)]);
        if (m < best) {
          best = m;
          acc = a;
        }
      }
      if (acc < 0) throw Error("generator: more accumulators needed than a plane has");
      earliest = std::max(earliest, best);
      for (int k = 0; k < g.count; ++k) P.acc_free[std::size_t(acc + k)] = kNever;  // held until released
    }
    OpSpec s;
    s.unit = UnitKind::Mxm;
    s.plane = plane;
    s.mnem = fmt::format("{}.{}", g.accumulate ? "MMA" : "MM", tn);
    s.ops = {Operand::in(0), Operand::lit_(std::to_string(acc))};
    s.lat = isa::LatClass::MxmMm;
    s.in = {g.x};
    s.count = g.count;
    s.earliest = earliest;
    auto r = op(s);
    for (int k = 0; k < g.count; ++k) P.acc_ready[std::size_t(acc + k)] = r.t + k + mm_lat;
    P.last_mm = std::max(P.last_mm, r.t + g.count - 1);
    last_ = std::max(last_, r.t + g.count - 1 + mm_lat);
    res.mm.push_back(r.t);
    res.acc.push_back(acc);
  }
  return res;
}

void ChipSched::release_acc(int plane, int acc, int count, Cycle after) {
  auto& P = planes_[std::size_t(plane)];
  for (int k = 0; k < count; ++k) {
    auto& f = P.acc_free[std::size_t(acc + k)];
    f = (f >= kNever ? after + 1 : std::max(f, after + 1));
  }
}

std::int64_t ChipSched::tile_count() const {
  std::int64_t n = 0;
  for (const auto& p : planes_) n += p.tiles;
  return n;
}

std::pair<Cycle, Cycle> ChipSched::span_since(std::int64_t from) const {
  std::pair<Cycle, Cycle> r{kNever, -1};
  for (auto i = std::size_t(std::max<std::int64_t>(0, from)); i < out_.size(); ++i) {
    r.first = std::min(r.first, out_[i].t);
    r.second = std::max(r.second, out_[i].t + out_[i].repeat * out_[i].delay);
  }
  return r;
}

std::string ChipSched::emit(const std::string& header) const {
  std::vector<std::vector<const Emitted*>> per(qnames_.size());
  for (const auto& e : out_) per[std::size_t(e.queue)].push_back(&e);
  std::string s = header;
  s.reserve(out_.size() * 40 + header.size());
  for (std::size_t q = 0; q < per.size(); ++q) {
    auto& v = per[q];
    if (v.empty()) continue;
    std::stable_sort(v.begin(), v.end(), [](const Emitted* a, const Emitted* b) { return a->t < b->t; });
    s += ".queue ";
    s += qnames_[q];
    s += '\n';
    Cycle free = 0;
    for (const auto* e : v) {
      if (e->t < free)
        throw Error(fmt::format("generator: internal error: queue {} overlaps at cycle {} ({})", qnames_[q], e->t, e->text));
      s += fmt::format("@T0+{} {}\n", e->t, e->text);
      if (e->repeat > 0) s += fmt::format("     REPEAT {}, {}\n", e->repeat, e->delay);
      free = e->t + e->repeat * e->delay + 1;
    }
  }
  return s;
}

}  // namespace lpu::compiler::sched
