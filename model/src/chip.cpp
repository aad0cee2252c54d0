// The chip engine: queue walkers, the event heap, and the execution of every instruction.
#include "lpu/model/chip.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <queue>
#include <string_view>
#include <tuple>
#include <unordered_map>

#include "lpu/common/errors.hpp"
#include "lpu/isa/isa.hpp"
#include "lpu/isa/numerics.hpp"
#include "acc_ready.hpp"
#include "mxm.hpp"
#include "sram.hpp"
#include "streams.hpp"

namespace lpu::model {

using isa::Op;

namespace {

UnitKind unit_kind(isa::Unit u) {
  switch (u) {
    case isa::Unit::Mem: return UnitKind::Mem;
    case isa::Unit::Vxm: return UnitKind::Vxm;
    case isa::Unit::Mxm: return UnitKind::Mxm;
    case isa::Unit::Sxm: return UnitKind::Sxm;
    case isa::Unit::C2c: return UnitKind::C2c;
    case isa::Unit::Dma: return UnitKind::Dma;
    case isa::Unit::Icu: return UnitKind::Icu;
  }
  return UnitKind::Icu;
}

constexpr std::int64_t kNone = INT64_MAX;

// Queue code as encoded words, decoded as the queue reaches them, and shared by the chips that
// load the same words: a rack of 256 chips runs a few dozen distinct programs, and a decoded
// word would take 48 bytes instead of 8 (a 70B decode at batch 8 held 7 GB of decoded copies).
// The cache keeps each distinct word sequence once while a chip holds it.
struct Code {
  std::vector<std::uint64_t> words;  // NOP and REPEAT included
};
std::shared_ptr<const Code> shared_code(const std::vector<std::uint64_t>& words) {
  static std::mutex mu;
  static std::unordered_map<std::size_t, std::vector<std::weak_ptr<const Code>>> cache;
  const std::size_t h = std::hash<std::string_view>{}(
      std::string_view(reinterpret_cast<const char*>(words.data()), words.size() * sizeof(std::uint64_t)));
  std::lock_guard<std::mutex> lk(mu);
  auto& bucket = cache[h];
  std::erase_if(bucket, [](const std::weak_ptr<const Code>& w) { return w.expired(); });
  for (const auto& w : bucket)
    if (auto c = w.lock(); c && c->words == words) return c;
  for (auto w : words) (void)isa::decode(w);  // a bad word fails at load, as before
  auto c = std::make_shared<Code>();
  c->words = words;
  bucket.push_back(c);
  return c;
}
const std::shared_ptr<const Code>& no_code() {
  static const auto none = std::make_shared<const Code>();
  return none;
}

}  // namespace

struct Chip::Impl {
  ChipParams p;
  Layout layout;
  Mode mode;
  int id;
  int V;
  std::vector<obj::Symbol> symbols;  // the loaded program's
  bool loaded = false;

  // Per-queue walker state.
  struct Q {
    std::shared_ptr<const Code> code = no_code();  // its words (shared_code)
    isa::Instr next;  // the word at pc, decoded by advance(): what the queue issues next
    std::size_t size() const { return code->words.size(); }
    isa::Instr at(std::size_t i) const { return isa::decode(code->words[i]); }
    std::size_t pc = 0;            // next instruction to start
    std::int64_t free = 0;         // cycle the queue may issue again
    // The group being issued (an instruction plus its REPEAT).
    bool in_group = false;
    isa::Instr cur;
    std::size_t cur_pc = 0;
    std::int64_t base = 0, n = 0, d = 0, k = 0;
    int trans_step = 0;  // TRANS: vectors taken so far in the current instance
    bool parked = false, finished = false;
    int position = 0;
    std::string name;
    UnitKind kind = UnitKind::Icu;
  };
  std::vector<Q> qs;
  struct Ev {
    std::int64_t cycle;
    int q;
    bool operator>(const Ev& o) const { return cycle != o.cycle ? cycle > o.cycle : q > o.q; }
  };
  std::priority_queue<Ev, std::vector<Ev>, std::greater<Ev>> heap;
  std::vector<int> parked;
  std::int64_t last_notify = -1;
  std::int64_t now = 0;
  std::int64_t last_activity = -1;

  std::array<std::uint32_t, 16> regs{};
  struct PendingCfg { std::int64_t cycle; int r; std::uint32_t v; };
  std::vector<PendingCfg> pending_cfg;
  // An SRAM write waiting for its commit: `data` goes to bytes offset.. of the row (a whole row
  // for WRITE, one superlane for SCATTER), applied to the row as it is then.
  struct PendingWrite { std::int64_t cycle; int slice; int row; int offset; std::vector<std::uint8_t> data; };
  std::deque<PendingWrite> pending_writes;
  // An LWM row on the weight bus: lands in staging row `row` of the plane at `pos` in `cycle`
  // (every LWM has the same latency, so issue order is landing order).
  struct PendingLwm { std::int64_t cycle; int pos; int row; isa::Dtype t; std::vector<std::uint8_t> data; };
  std::deque<PendingLwm> pending_lwm;
  // MXM plane positions by hemisphere (0 west, 1 east) and plane index: LWM's `plane` operand.
  std::array<std::vector<int>, 2> plane_pos;

  // Units (functional state).
  std::unique_ptr<StreamFile> streams;
  std::vector<std::unique_ptr<Sram>> sram;      // by slice position (null for non-MEM)
  std::vector<std::unique_ptr<MxmPlane>> mxm;   // by slice position (null for non-MXM)
  std::unique_ptr<AccReadiness> acc_ready;      // timing-only mode: rule 17 without data
  std::map<std::pair<int, int>, std::vector<std::uint16_t>> perms;  // (position, index)
  std::vector<std::deque<std::vector<std::uint8_t>>> dma_in, dma_out;
  struct Arrival { std::int64_t cycle; std::vector<std::uint8_t> bytes; };
  std::vector<std::deque<Arrival>> inbox;
  LinkSink* sink = nullptr;
  std::vector<std::vector<std::uint8_t>> trans_buf;  // per queue: 16 vectors
  std::function<void(const IssueEvent&)> hook;
  Observer* obs = nullptr;
  // Stream values written in functional mode, kept until the event that produced them is done
  // (observers see each value once it is final).
  std::vector<std::tuple<int, int, std::int64_t, std::uint8_t*>> stream_log;

  ChipStats st;
  std::vector<std::uint8_t> scratch;

  Impl(const ChipParams& params, Mode m, int chip)
      : p(params), layout(params), mode(m), id(chip), V(params.vector_bytes()) {
    st.clock_hz = p.clock_hz;
    st.mxm_planes = p.mxm.planes;
    int maxlat = 0;
    for (int l : p.latency) maxlat = std::max(maxlat, l);
    if (mode == Mode::Functional) {
      streams = std::make_unique<StreamFile>(p.stream.per_direction, layout.num_positions(), p.stream.hop_cycles,
                                             maxlat + kLanesPerSuperlane, V);
    }
    sram.resize(layout.slices().size());
    mxm.resize(layout.slices().size());
    for (const auto& s : layout.slices()) {
      if (s.kind == SliceKind::Mem && mode == Mode::Functional) sram[std::size_t(s.position)] = std::make_unique<Sram>(p.mem.rows, V);
      if (s.kind == SliceKind::Mxm && mode == Mode::Functional)
        mxm[std::size_t(s.position)] = std::make_unique<MxmPlane>(V, p.mxm.accumulators);
      if (s.kind == SliceKind::Mxm) {
        auto& v = plane_pos[s.hemi == Hemi::East ? 1 : 0];
        if (int(v.size()) <= s.index) v.resize(std::size_t(s.index) + 1, -1);
        v[std::size_t(s.index)] = s.position;
      }
    }
    if (mode == Mode::TimingOnly && p.mxm.planes > 0) {
      std::vector<int> plane_of(layout.slices().size(), -1);
      int planes = 0;
      for (const auto& s : layout.slices())
        if (s.kind == SliceKind::Mxm) plane_of[std::size_t(s.position)] = planes++;
      acc_ready = std::make_unique<AccReadiness>(std::move(plane_of), p.mxm.accumulators);
    }
    dma_in.resize(std::size_t(p.dma.channels));
    dma_out.resize(std::size_t(p.dma.channels));
    inbox.resize(std::size_t(p.c2c.links));
    qs.resize(layout.queues().size());
    trans_buf.resize(layout.queues().size());
    for (std::size_t i = 0; i < qs.size(); ++i) {
      const auto& lq = layout.queue(QueueId{int(i)});
      qs[i].position = lq.position;
      qs[i].name = lq.name;
    }
    for (const auto& lq : layout.queues()) {
      UnitKind k = lq.kind == isa::QueueKind::Mem ? UnitKind::Mem
                   : lq.kind == isa::QueueKind::Vxm ? UnitKind::Vxm
                   : lq.kind == isa::QueueKind::Mxm ? UnitKind::Mxm : UnitKind::Sxm;
      st.units[std::size_t(k)].queues++;
    }
    scratch.resize(std::size_t(V));
  }

  [[noreturn]] void fail(int q, std::int64_t cycle, const std::string& msg) const {
    const auto& lq = layout.queue(QueueId{q});
    throw SimError(id, layout.slice(lq.slice).name, lq.name, cycle, msg);
  }

  // ---- loading -------------------------------------------------------------------------
  void load(const obj::Program& pr, const std::string& origin) {
    const auto& g = pr.geometry;
    auto mism = [&](const char* what, long long a, long long b) {
      if (a != b)
        throw FormatError(fmt::format("object was assembled for preset '{}' with {} = {}, this chip ('{}') has {}",
                                      g.preset, what, a, p.name, b));
    };
    mism("vector_bytes", g.vector_bytes, V);
    mism("streams_per_direction", g.streams_per_direction, p.stream.per_direction);
    mism("mem_slices_per_hemisphere", g.mem_slices_per_hemisphere, p.mem.slices_per_hemisphere);
    mism("mem_rows", g.mem_rows, p.mem.rows);
    mism("vxm_queues", g.vxm_queues, p.vxm.queues);
    mism("sxm_queues_per_hemisphere", g.sxm_queues_per_hemisphere, p.sxm.queues_per_hemisphere);
    mism("mxm_planes", g.mxm_planes, p.mxm.planes);
    mism("mxm_queues_per_plane", g.mxm_queues_per_plane, p.mxm.queues_per_plane);
    mism("mxm_accumulators", g.mxm_accumulators, p.mxm.accumulators);
    // Everything below (and write_symbol, read_symbol) indexes SRAM, queues and tables with
    // values from the object: check them against this chip first.
    obj::check_program(pr, p, layout, origin);
    symbols = pr.symbols;
    regs = pr.regs;
    regs[0] = 0;
    for (const auto& qc : pr.queues) {
      auto qid = layout.find_queue(qc.name);
      if (!qid) throw FormatError(fmt::format("object names queue '{}', which preset '{}' does not have", qc.name, p.name));
      auto& q = qs[std::size_t(qid->v)];
      q.code = shared_code(qc.words);
    }
    for (const auto& pt : pr.perms) {
      auto s = layout.find_slice(pt.sxm);
      if (!s) throw FormatError(fmt::format("object names SXM '{}', unknown on this chip", pt.sxm));
      perms[{s->v, int(pt.index)}] = pt.map;
    }
    if (mode == Mode::Functional) {
      for (const auto& d : pr.data) {
        auto s = layout.find_slice(d.slice);  // a MEM slice, rows in range: check_program
        auto rows = d.bytes.size() / std::size_t(V);
        for (std::size_t r = 0; r < rows; ++r)
          std::memcpy(sram[std::size_t(s->v)]->write(int(d.row + r)), d.bytes.data() + r * std::size_t(V), std::size_t(V));
      }
    }
    loaded = true;
    restart();
  }

  void restart() {
    heap = {};
    parked.clear();
    last_notify = -1;
    now = 0;
    last_activity = -1;
    pending_cfg.clear();
    if (acc_ready) acc_ready->restart();
    for (std::size_t i = 0; i < qs.size(); ++i) {
      auto& q = qs[i];
      q.pc = 0;
      q.free = 0;
      q.in_group = false;
      q.parked = false;
      q.finished = false;
      q.trans_step = 0;
      const auto& lq = layout.queue(QueueId{int(i)});
      q.kind = lq.kind == isa::QueueKind::Mem ? UnitKind::Mem
               : lq.kind == isa::QueueKind::Vxm ? UnitKind::Vxm
               : lq.kind == isa::QueueKind::Mxm ? UnitKind::Mxm : UnitKind::Sxm;
      advance(int(i));
    }
  }

  // Skips NOPs from q.pc and schedules the next instruction at q.free.
  void advance(int qi) {
    auto& q = qs[std::size_t(qi)];
    for (; q.pc < q.size(); ++q.pc) {
      q.next = q.at(q.pc);
      if (q.next.op != Op::Nop) break;
      q.free += q.next.v[0];
    }
    if (q.pc >= q.size()) {
      q.finished = true;
      return;
    }
    heap.push(Ev{q.free, qi});
  }

  void activity(std::int64_t c) { last_activity = std::max(last_activity, c); }

  // ---- addresses and streams ---------------------------------------------------------------
  // Row of address operand `operand` of instance k of `in` (the unstepped instruction): register
  // + offset + k x its step (isa::step_of: the stride for READ/WRITE, 1 for GATHER/SCATTER).
  int row_of(int qi, const isa::Instr& in, int operand, std::int64_t k, std::int64_t cycle) {
    std::int64_t a = in.v[std::size_t(operand)];
    const std::int64_t step = isa::step_of(in, operand);
    std::int64_t row = std::int64_t(regs[std::size_t(isa::addr_reg(a))]) + isa::addr_offset(a) + k * step;
    if (row < 0 || row >= p.mem.rows)
      fail(qi, cycle, fmt::format("address out of range: row {} (r{} = {}, offset {}{}); the slice has rows 0..{}", row,
                                  isa::addr_reg(a), regs[std::size_t(isa::addr_reg(a))], isa::addr_offset(a),
                                  k ? fmt::format(", REPEAT instance {} x step {}", k, step) : "", p.mem.rows - 1));
    return int(row);
  }

  const std::uint8_t* sread(int qi, std::int64_t packed, std::int64_t cycle) {
    const int pos = qs[std::size_t(qi)].position;
    const auto* v = streams->read(int(packed), pos, cycle);
    if (!v) {
      auto sr = StreamRef::unpack(std::uint64_t(packed));
      fail(qi, cycle, fmt::format("read of an empty stream: s{}{} at position {} holds no value", sr.id,
                                  sr.dir == Dir::East ? 'e' : 'w', pos));
    }
    return v;
  }
  std::uint8_t* swrite(int qi, std::int64_t packed, std::int64_t cycle) {
    const int pos = qs[std::size_t(qi)].position;
    auto* v = streams->write(int(packed), pos, cycle, now);
    if (obs && v) stream_log.emplace_back(int(packed), pos, cycle, v);
    if (!v) {
      auto sr = StreamRef::unpack(std::uint64_t(packed));
      fail(qi, cycle, fmt::format("stream conflict: s{}{} at position {} is written twice in this cycle", sr.id,
                                  sr.dir == Dir::East ? 'e' : 'w', pos));
    }
    return v;
  }

  // ---- statistics (shared by both modes: one call per group) -------------------------------
  void account(const Q& q, const isa::Instr& in, std::int64_t count, std::int64_t last_issue) {
    const auto& ii = isa::info(in.op);
    auto& u = st.units[std::size_t(ii.unit == isa::Unit::Icu ? UnitKind::Icu : unit_kind(ii.unit))];
    u.instructions += count;
    u.busy_cycles += count * ii.occupancy;
    const int lat = p.lat(ii.latency);
    activity(last_issue + std::max(lat + (in.op == Op::Trans ? kLanesPerSuperlane - 1 : 0), ii.occupancy - 1));
    const std::int64_t vb = V;
    switch (in.op) {
      case Op::Read:
      case Op::Gather: st.sram_bytes_read += count * vb; break;
      case Op::Lwm:
        st.sram_bytes_read += count * vb;
        st.weight_bytes_installed += count * vb;
        break;
      case Op::Write:
      case Op::Scatter: st.sram_bytes_written += count * vb; break;
      case Op::Mm:
      case Op::Mma: {
        const std::int64_t n = V / isa::dtype_bytes(in.t);
        st.mxm_macs[std::string(isa::dtype_info(in.t).name)] += count * n * n;
        st.mxm_passes += count;
        break;
      }
      case Op::Send: st.link_bytes_sent += count * vb; break;
      case Op::Recv: st.link_bytes_received += count * vb; break;
      case Op::Dmain: st.dma_bytes_in += count * vb; break;
      case Op::Dmaout: st.dma_bytes_out += count * vb; break;
      default:
        if (ii.unit == isa::Unit::Vxm) st.vxm_element_ops += count * (V / (ii.types ? isa::dtype_bytes(in.t) : 1));
        break;
    }
    (void)q;
  }


  // ---- functional execution of one instance -------------------------------------------------
  void exec(int qi, const isa::Instr& base, std::int64_t k, std::int64_t t) {
    auto& q = qs[std::size_t(qi)];
    const isa::Instr in = isa::stepped(base, k);
    const auto& ii = isa::info(in.op);
    const int lat = p.lat(ii.latency);
    const int pos = q.position;
    const auto vb = std::size_t(V);
    auto out = [&](int operand) { return swrite(qi, in.v[std::size_t(operand)], t + lat); };
    auto arg = [&](int operand) { return sread(qi, in.v[std::size_t(operand)], t); };
    auto bytes = [&](const std::uint8_t* ptr) { return num::Bytes(ptr, vb); };
    auto mbytes = [&](std::uint8_t* ptr) { return num::MutBytes(ptr, vb); };
    switch (ii.unit) {
      case isa::Unit::Mem: {
        Sram& s = *sram[std::size_t(pos)];
        if (in.op == Op::Read) {
          int row = row_of(qi, base, 0, k, t);
          if (obs) obs->on_sram(pos, row, false, t);
          check_ecc(qi, s, row, t);
          std::memcpy(out(1), s.read(row), vb);
        } else if (in.op == Op::Write) {
          int row = row_of(qi, base, 1, k, t);
          if (obs) obs->on_sram(pos, row, true, t);
          const auto* v = arg(0);
          const std::int64_t lw = p.lat(isa::LatClass::MemWrite);
          if (obs) obs->on_sram_write(pos, row, 0, v, V, t, t + lw - 1);
          pending_writes.push_back({t + lw, pos, row, 0, std::vector<std::uint8_t>(v, v + vb)});
        } else if (in.op == Op::Lwm) {
          // Rule 15a: the row as it is at issue, over the weight bus into a plane of this
          // hemisphere, landing `lat` cycles later.
          const std::int64_t row = in.v[0];
          if (row >= p.mem.rows)
            fail(qi, t, fmt::format("address out of range: row {}{}; the slice has rows 0..{}", row,
                                    k ? fmt::format(" (REPEAT instance {})", k) : "", p.mem.rows - 1));
          const auto& sl = layout.slice(layout.queue(QueueId{qi}).slice);
          const auto& planes = plane_pos[sl.hemi == Hemi::East ? 1 : 0];
          const auto pl = std::size_t(in.v[1]);
          if (pl >= planes.size() || planes[pl] < 0)
            fail(qi, t, fmt::format("LWM to plane {}: the {} hemisphere has {} MXM plane{}", pl,
                                    sl.hemi == Hemi::East ? "east" : "west", planes.size(), planes.size() == 1 ? "" : "s"));
          const std::int64_t n = V / isa::dtype_bytes(in.t);
          if (in.v[2] >= n)
            fail(qi, t, fmt::format("weight row {} out of range: a .{} plane has {} rows", in.v[2], isa::dtype_info(in.t).name, n));
          if (obs) obs->on_sram(pos, int(row), false, t);
          check_ecc(qi, s, int(row), t);
          const auto* src = s.read(int(row));
          pending_lwm.push_back({t + lat, planes[pl], int(in.v[2]), in.t, std::vector<std::uint8_t>(src, src + vb)});
        } else if (in.op == Op::Gather) {
          int base_row = row_of(qi, base, 0, k, t);
          const auto* idx = arg(1);
          auto* o = out(2);
          int prev_row = -1;
          for (int sl = 0; sl < p.superlanes; ++sl) {
            std::int16_t off;
            std::memcpy(&off, idx + sl * kLanesPerSuperlane, 2);
            int row = base_row + off;
            if (row < 0 || row >= p.mem.rows)
              fail(qi, t, fmt::format("GATHER row {} of superlane {} out of range (base row {}{} + index {}); "
                                      "the slice has rows 0..{}", row, sl, base_row,
                                      k ? fmt::format(" of REPEAT instance {}", k) : "", off, p.mem.rows - 1));
            if (obs && (sl == 0 || row != prev_row)) obs->on_sram(pos, row, false, t);
            prev_row = row;
            check_ecc(qi, s, row, t);
            std::memcpy(o + sl * kLanesPerSuperlane, s.read(row) + sl * kLanesPerSuperlane, kLanesPerSuperlane);
          }
        } else if (in.op == Op::Scatter) {
          int base_row = row_of(qi, base, 2, k, t);
          const auto* src = arg(0);
          const auto* idx = arg(1);
          const std::int64_t lw = p.lat(isa::LatClass::MemWrite);
          int prev_row = -1;
          for (int sl = 0; sl < p.superlanes; ++sl) {
            std::int16_t off;
            std::memcpy(&off, idx + sl * kLanesPerSuperlane, 2);
            int row = base_row + off;
            if (row < 0 || row >= p.mem.rows)
              fail(qi, t, fmt::format("SCATTER row {} of superlane {} out of range (base row {}{} + index {}); "
                                      "the slice has rows 0..{}", row, sl, base_row,
                                      k ? fmt::format(" of REPEAT instance {}", k) : "", off, p.mem.rows - 1));
            // Superlane sl's 16 bytes only (rule 14), merged into the row when committed: two
            // superlanes on one row both land, and so does a write committed in between.
            if (obs && (sl == 0 || row != prev_row)) obs->on_sram(pos, row, true, t);
            prev_row = row;
            const auto* part = src + sl * kLanesPerSuperlane;
            if (obs) obs->on_sram_write(pos, row, sl * kLanesPerSuperlane, part, kLanesPerSuperlane, t, t + lw - 1);
            pending_writes.push_back({t + lw, pos, row, sl * kLanesPerSuperlane,
                                      std::vector<std::uint8_t>(part, part + kLanesPerSuperlane)});
          }
        }
        break;
      }
      case isa::Unit::Vxm: {
        switch (in.op) {
          case Op::Add: case Op::Sub: case Op::Mul: case Op::Min: case Op::Max: case Op::And: case Op::Or:
          case Op::Xor: case Op::Cmpeq: case Op::Cmplt: case Op::Cmple: {
            const auto* a = arg(0);
            const auto* b = arg(1);
            num::vxm_binary(in.op, in.t, bytes(a), bytes(b), mbytes(out(2)));
            break;
          }
          case Op::Sel: {
            const auto* m = arg(0);
            const auto* a = arg(1);
            const auto* b = arg(2);
            num::vxm_select(in.t, bytes(m), bytes(a), bytes(b), mbytes(out(3)));
            break;
          }
          case Op::Shl: case Op::Shra: case Op::Shrl:
            num::vxm_unary(in.op, in.t, bytes(arg(0)), mbytes(out(1)), int(in.v[2]));
            break;
          case Op::Const: num::vxm_const(in.t, std::uint32_t(in.v[1]), mbytes(out(0))); break;
          case Op::Mov: std::memcpy(out(1), arg(0), vb); break;
          case Op::Cvt: num::vxm_convert(in.t, in.t2, int(in.v[2]), bytes(arg(0)), mbytes(out(1))); break;
          default: num::vxm_unary(in.op, in.t, bytes(arg(0)), mbytes(out(1)), 0); break;
        }
        break;
      }
      case isa::Unit::Mxm: {
        MxmPlane& pl = *mxm[std::size_t(pos)];
        const char* err = nullptr;
        check_acc_range(qi, in, t);
        if (in.op == Op::Lw) {
          const std::int64_t n = V / isa::dtype_bytes(in.t);
          if (in.v[1] >= n)
            fail(qi, t, fmt::format("weight row {} out of range: a .{} plane has {} rows", in.v[1], isa::dtype_info(in.t).name, n));
          pl.load_row(in.t, int(in.v[1]), arg(0), t);
        } else if (in.op == Op::Iw) {
          pl.install(in.t, t, t + p.lat(isa::LatClass::MxmIw), in.v[0] != 0);
        } else if (in.op == Op::Mm || in.op == Op::Mma) {
          err = pl.multiply(in.t, int(in.v[1]), in.op == Op::Mma, arg(0), t, t + lat);
          if (obs) obs->on_mxm(pos, int(in.v[1]), t);
        } else if (in.op == Op::Accrd) {
          err = pl.read(int(in.v[0]), in.t, int(in.v[2]), scratch.data(), t);
          if (!err) std::memcpy(out(1), scratch.data(), vb);
        }
        if (err) fail(qi, t, err);
        break;
      }
      case isa::Unit::Sxm: {
        const int tb = isa::info(in.op).types ? isa::dtype_bytes(in.t) : 1;
        const int n = V / tb;
        if (in.op == Op::Trans) break;  // handled in steps by the walker
        const auto* a = arg(0);
        auto* o = out(1);
        if (in.op == Op::Shift || in.op == Op::Rot) {
          const std::int64_t sh = in.v[2];
          for (int i = 0; i < n; ++i) {
            std::int64_t src = i - sh;
            if (in.op == Op::Rot) src = ((src % n) + n) % n;
            if (src < 0 || src >= n) std::memset(o + i * tb, 0, std::size_t(tb));
            else std::memcpy(o + i * tb, a + src * tb, std::size_t(tb));
          }
        } else if (in.op == Op::Dist) {
          for (int i = 0; i < n; ++i) std::memcpy(o + i * tb, a + in.v[2] * tb, std::size_t(tb));
        } else if (in.op == Op::Perm) {
          auto it = perms.find({pos, int(in.v[2])});
          if (it == perms.end()) fail(qi, t, fmt::format("permutation table {} is not defined", in.v[2]));
          for (int i = 0; i < V; ++i) o[i] = a[it->second[std::size_t(i)]];
        }
        break;
      }
      case isa::Unit::C2c: {
        if (in.op == Op::Send) {
          const auto* v = arg(1);
          if (!sink) fail(qi, t, fmt::format("SEND on link {}: the link is not connected (a lone chip has no links)", in.v[0]));
          sink->send(id, int(in.v[0]), t + lat, std::span<const std::uint8_t>(v, vb));
          if (obs) obs->on_link_send(qi, int(in.v[0]), t, t + lat, v);
        } else if (in.op == Op::Recv) {
          auto& box = inbox[std::size_t(in.v[0])];
          if (box.empty() || box.front().cycle > t)
            fail(qi, t, fmt::format("RECV on link {}: nothing has arrived by this cycle{}", in.v[0],
                                    box.empty() ? "" : fmt::format(" (next arrival in cycle {})", box.front().cycle)));
          std::memcpy(out(1), box.front().bytes.data(), vb);
          if (obs) obs->on_link_recv(qi, int(in.v[0]), t, box.front().bytes.data());
          box.pop_front();
        }
        break;
      }
      case isa::Unit::Dma: {
        auto ch = std::size_t(in.op == Op::Dmain ? in.v[0] : in.v[1]);
        if (in.op == Op::Dmain) {
          if (dma_in[ch].empty()) fail(qi, t, fmt::format("DMAIN on channel {}: the host has provided no more vectors", ch));
          std::memcpy(out(1), dma_in[ch].front().data(), vb);
          dma_in[ch].pop_front();
        } else {
          const auto* v = arg(0);
          dma_out[ch].emplace_back(v, v + vb);
        }
        break;
      }
      case isa::Unit::Icu: break;
    }
  }

  void check_ecc(int qi, Sram& s, int row, std::int64_t t) {
    int bits = s.fault_bits(row);
    if (bits == 0) return;
    if (bits == 1) {
      ++st.sram_ecc_corrected;
      s.scrub(row);
      return;
    }
    fail(qi, t, fmt::format("uncorrectable ECC error: {} flipped bits in row {} (SECDED corrects one)", bits, row));
  }

  // One TRANS step: take vector `step` at t; after the 16th, write the 16 outputs.
  void trans_step(int qi, const isa::Instr& in, std::int64_t t) {
    auto& q = qs[std::size_t(qi)];
    auto& buf = trans_buf[std::size_t(qi)];
    buf.resize(std::size_t(kLanesPerSuperlane * V));
    std::memcpy(buf.data() + std::size_t(q.trans_step * V), sread(qi, in.v[0], t), std::size_t(V));
    if (q.trans_step == kLanesPerSuperlane - 1) {
      const std::int64_t t0 = t - (kLanesPerSuperlane - 1);
      const int lat = p.lat(isa::LatClass::SxmTrans);
      for (int r = 0; r < kLanesPerSuperlane; ++r) {
        auto* o = swrite(qi, in.v[1], t0 + lat + r);
        // Output vector r, superlane s, lane l = input vector l, superlane s, lane r.
        for (int s = 0; s < p.superlanes; ++s)
          for (int l = 0; l < kLanesPerSuperlane; ++l)
            o[s * kLanesPerSuperlane + l] = buf[std::size_t(l * V + s * kLanesPerSuperlane + r)];
      }
    }
  }

  // ---- the event loop ------------------------------------------------------------------------
  void apply_pending(std::int64_t c) {
    if (!pending_cfg.empty()) {
      auto it = std::stable_partition(pending_cfg.begin(), pending_cfg.end(), [&](const PendingCfg& x) { return x.cycle > c; });
      for (auto j = it; j != pending_cfg.end(); ++j) regs[std::size_t(j->r)] = j->v;
      pending_cfg.erase(it, pending_cfg.end());
    }
    // Rows landing by cycle c (an IW in c still excludes the rows landing in c: MxmPlane keeps
    // the rows of its latest load cycle apart, as for an LW in the IW's cycle).
    while (!pending_lwm.empty() && pending_lwm.front().cycle <= c) {
      auto& w = pending_lwm.front();
      mxm[std::size_t(w.pos)]->load_row(w.t, w.row, w.data.data(), w.cycle);
      pending_lwm.pop_front();
    }
    while (!pending_writes.empty() && pending_writes.front().cycle <= c) {
      auto& w = pending_writes.front();
      std::memcpy(sram[std::size_t(w.slice)]->write(w.row) + w.offset, w.data.data(), w.data.size());
      pending_writes.pop_front();
    }
  }

  // `pc`: the index of the instruction's own word (for a group, of the word before its REPEAT).
  void emit_hook(int qi, const isa::Instr& in, std::int64_t t, std::int64_t count, std::int64_t delay, std::size_t pc) {
    if (hook) hook(IssueEvent{qi, t, isa::encode(in), count, delay, std::int64_t(pc)});
  }
  void flush_stream_log() {
    for (auto& [sid, pos, c, v] : stream_log) obs->on_stream(sid, pos, c, v);
    stream_log.clear();
  }

  void finish_group(int qi) {
    auto& q = qs[std::size_t(qi)];
    q.in_group = false;
    q.free = q.base + q.n * q.d + isa::info(q.cur.op).occupancy;
    advance(qi);
  }

  void icu_event(int qi, const isa::Instr& in, std::int64_t t) {
    emit_hook(qi, in, t, 1, 0, qs[std::size_t(qi)].pc);
    if (obs) obs->on_group(qi, t, isa::encode(in), 1, 0, std::int64_t(qs[std::size_t(qi)].pc));
  }

  void step(int qi, std::int64_t t) {
    auto& q = qs[std::size_t(qi)];
    if (q.in_group) {  // functional mode: the next instance (or TRANS step) of a group
      if (q.cur.op == Op::Trans) {
        if (q.trans_step == 0) emit_hook(qi, isa::stepped(q.cur, q.k), t, 1, 0, q.cur_pc);  // the instance issues
        trans_step(qi, isa::stepped(q.cur, q.k), t);
        if (++q.trans_step < kLanesPerSuperlane) {
          heap.push(Ev{t + 1, qi});
          return;
        }
        q.trans_step = 0;
        ++q.k;
      } else {
        emit_hook(qi, isa::stepped(q.cur, q.k), t, 1, 0, q.cur_pc);
        exec(qi, q.cur, q.k, t);
        ++q.k;
      }
      if (q.k <= q.n) heap.push(Ev{q.base + q.k * q.d, qi});
      else finish_group(qi);
      return;
    }
    const isa::Instr in = q.next;  // (every issue but a group's next instance follows advance())
    const auto& ii = isa::info(in.op);
    switch (in.op) {
      case Op::Sync:
        icu_event(qi, in, t);
        account(q, in, 1, t);
        ++q.pc;
        if (last_notify == t) {
          q.free = t + p.icu.notify_latency;
          advance(qi);
        } else {
          q.parked = true;
          parked.push_back(qi);
        }
        return;
      case Op::Notify:
        icu_event(qi, in, t);
        account(q, in, 1, t);
        last_notify = t;
        for (int pq : parked) {
          auto& x = qs[std::size_t(pq)];
          x.parked = false;
          x.free = t + p.icu.notify_latency;
          advance(pq);
        }
        parked.clear();
        ++q.pc;
        q.free = t + 1;
        advance(qi);
        return;
      case Op::Config:
        icu_event(qi, in, t);
        account(q, in, 1, t);
        pending_cfg.push_back({t + 1, int(in.v[0]), std::uint32_t(in.v[1])});
        ++q.pc;
        q.free = t + 1;
        advance(qi);
        return;
      case Op::Halt:
        icu_event(qi, in, t);
        account(q, in, 1, t);
        q.finished = true;
        return;
      case Op::Deskew:
        icu_event(qi, in, t);
        account(q, in, 1, t);
        ++q.pc;
        q.free = (t / p.c2c.deskew_period + 1) * p.c2c.deskew_period;
        advance(qi);
        return;
      case Op::Repeat:
      case Op::Repeatr:
        fail(qi, t, "REPEAT without an instruction before it");
      default: break;
    }
    // An instruction and its REPEAT: one group.
    q.cur = in;
    q.cur_pc = q.pc;
    q.base = t;
    q.n = 0;
    q.d = 1;
    ++q.pc;
    const isa::Instr r = q.pc < q.size() ? q.at(q.pc) : isa::Instr{};
    if (r.op == Op::Repeat || r.op == Op::Repeatr) {
      q.n = r.op == Op::Repeat ? r.v[0] : std::int64_t(regs[std::size_t(r.v[0])]);
      q.d = r.v[1];
      if (q.d < ii.occupancy) fail(qi, t, "REPEAT delay shorter than the instruction's occupancy");
      ++q.pc;
    }
    account(q, in, q.n + 1, t + q.n * q.d);
    if (obs) obs->on_group(qi, t, isa::encode(in), q.n + 1, q.d, std::int64_t(q.cur_pc));
    if (mode == Mode::TimingOnly) {
      emit_hook(qi, in, t, q.n + 1, q.d, q.cur_pc);
      timing_only_effects(qi, in, t);
      finish_group(qi);
      return;
    }
    q.in_group = true;
    q.k = 0;
    q.trans_step = 0;
    step(qi, t);
  }

  // The accumulator operand of MM/MMA/ACCRD must name one of the plane's accumulators (a
  // hand-made object may name any).
  void check_acc_range(int qi, const isa::Instr& in, std::int64_t t) const {
    if (in.op != Op::Mm && in.op != Op::Mma && in.op != Op::Accrd) return;
    const std::int64_t acc = in.v[in.op == Op::Accrd ? 0 : 1];
    if (acc < 0 || acc >= p.mxm.accumulators)
      fail(qi, t, fmt::format("accumulator {} out of range 0..{}", acc, p.mxm.accumulators - 1));
  }

  // Reads of accumulators ordered before (cycle, queue), checked now that every event before
  // them has run (timing-only mode; AccReadiness).
  void check_acc_reads(std::int64_t cycle, int queue) {
    if (!acc_ready) return;
    if (auto f = acc_ready->check_before(cycle, queue)) fail(f->queue, f->cycle, f->message);
  }

  // Timing-only mode keeps the data-independent effects: links (bytes and arrival checks) and
  // accumulator readiness (the same errors as the functional MXM).
  void timing_only_effects(int qi, const isa::Instr& in, std::int64_t t) {
    auto& q = qs[std::size_t(qi)];
    if (acc_ready && (in.op == Op::Mm || in.op == Op::Mma || in.op == Op::Accrd)) {
      const int lat = p.lat(isa::info(in.op).latency);
      for (std::int64_t k = 0; k <= q.n; ++k) {
        const auto x = isa::stepped(in, k);
        const std::int64_t c = t + k * q.d;
        check_acc_range(qi, x, c);
        const int acc = int(x.v[in.op == Op::Accrd ? 0 : 1]);
        if (in.op == Op::Accrd) acc_ready->read(q.position, acc, c, qi);
        else acc_ready->write(q.position, acc, c, qi, c + lat, now);
      }
    }
    if (in.op == Op::Send) {
      if (!sink) fail(qi, t, fmt::format("SEND on link {}: the link is not connected", in.v[0]));
      for (std::int64_t k = 0; k <= q.n; ++k) {
        sink->send(id, int(in.v[0]), t + k * q.d + p.lat(isa::LatClass::C2cSend), {});
        if (obs) obs->on_link_send(qi, int(in.v[0]), t + k * q.d, t + k * q.d + p.lat(isa::LatClass::C2cSend), nullptr);
      }
    } else if (in.op == Op::Recv) {
      auto& box = inbox[std::size_t(in.v[0])];
      for (std::int64_t k = 0; k <= q.n; ++k) {
        std::int64_t c = t + k * q.d;
        if (box.empty() || box.front().cycle > c)
          fail(qi, c, fmt::format("RECV on link {}: nothing has arrived by this cycle", in.v[0]));
        if (obs) obs->on_link_recv(qi, int(in.v[0]), c, nullptr);
        box.pop_front();
      }
    }
  }

  bool run(std::int64_t limit) {
    if (!loaded) throw Error("chip: run() before load()");
    while (!heap.empty() && heap.top().cycle < limit) {
      Ev e = heap.top();
      check_acc_reads(e.cycle, e.q);
      heap.pop();
      now = e.cycle;
      apply_pending(now);
      step(e.q, now);
      if (obs && !stream_log.empty()) flush_stream_log();
    }
    const bool fin = heap.empty();
    check_acc_reads(fin ? INT64_MAX : limit, fin ? INT32_MAX : 0);
    if (fin) {
      if (!parked.empty()) {
        const auto& q = qs[std::size_t(parked.front())];
        fail(parked.front(), q.free, "SYNC is never released: no NOTIFY issues after it");
      }
      for (auto& m : mxm)
        if (m) m->flush();
      apply_pending(INT64_MAX);
      st.cycles = last_activity < 0 ? 0 : last_activity + 1 + std::int64_t(p.superlanes - 1) * p.icu.superlane_stagger;
      if (obs) obs->on_finish(st.cycles);
    }
    return fin;
  }
};

Chip::Chip(const ChipParams& p, Mode mode, int chip_id) : impl_(std::make_unique<Impl>(p, mode, chip_id)) {}
Chip::~Chip() = default;
void Chip::load(const obj::Program& prog, const std::string& origin) { impl_->load(prog, origin); }
void Chip::set_reg(int r, std::uint32_t value) {
  if (r < 1 || r > 15) throw Error(fmt::format("register r{} cannot be set (r1..r15)", r));
  impl_->regs[std::size_t(r)] = value;
}
std::uint32_t Chip::reg(int r) const { return impl_->regs[std::size_t(r & 15)]; }

const obj::Symbol& Chip::symbol(const std::string& name) const {
  for (const auto& s : impl_->symbols)
    if (s.name == name) return s;
  std::string known;
  for (const auto& s : impl_->symbols) known += (known.empty() ? "" : ", ") + s.name;
  throw Error(fmt::format("no symbol '{}' in the program (symbols: {})", name, known.empty() ? "none" : known));
}

void Chip::write_symbol(const std::string& name, std::span<const std::uint8_t> bytes) {
  auto& I = *impl_;
  const auto& s = symbol(name);
  const auto nb = obj::symbol_bytes(s);  // in range: load checked every symbol
  if (std::int64_t(bytes.size()) != nb)
    throw Error(fmt::format("symbol '{}' holds {} bytes, {} given", name, nb, bytes.size()));
  if (I.mode == Mode::TimingOnly) return;
  const auto S = s.slices.size();
  const auto V = std::size_t(I.V);
  const std::size_t rows = (bytes.size() + V - 1) / V;
  for (std::size_t k = 0; k < rows; ++k) {
    auto sl = I.layout.find_slice(s.slices[k % S]);
    auto* dst = I.sram[std::size_t(sl->v)]->write(int(s.start_row + k / S));
    std::size_t len = std::min(V, bytes.size() - k * V);
    std::memset(dst, 0, V);
    std::memcpy(dst, bytes.data() + k * V, len);
  }
}

std::vector<std::uint8_t> Chip::read_symbol(const std::string& name) const {
  auto& I = *impl_;
  const auto& s = symbol(name);
  std::vector<std::uint8_t> out(std::size_t(obj::symbol_bytes(s)), 0);
  if (I.mode == Mode::TimingOnly) return out;
  const auto S = s.slices.size();
  const auto V = std::size_t(I.V);
  const std::size_t rows = (out.size() + V - 1) / V;
  for (std::size_t k = 0; k < rows; ++k) {
    auto sl = I.layout.find_slice(s.slices[k % S]);
    const auto* src = I.sram[std::size_t(sl->v)]->read(int(s.start_row + k / S));
    std::memcpy(out.data() + k * V, src, std::min(V, out.size() - k * V));
  }
  return out;
}

void Chip::push_dma_in(int chan, std::span<const std::uint8_t> v) {
  auto& I = *impl_;
  if (chan < 0 || chan >= I.p.dma.channels) throw Error(fmt::format("DMA channel {} out of range", chan));
  std::vector<std::uint8_t> x(std::size_t(I.V), 0);
  std::memcpy(x.data(), v.data(), std::min(v.size(), x.size()));
  I.dma_in[std::size_t(chan)].push_back(std::move(x));
}

std::vector<std::vector<std::uint8_t>> Chip::take_dma_out(int chan) {
  auto& I = *impl_;
  if (chan < 0 || chan >= I.p.dma.channels) throw Error(fmt::format("DMA channel {} out of range", chan));
  std::vector<std::vector<std::uint8_t>> out(I.dma_out[std::size_t(chan)].begin(), I.dma_out[std::size_t(chan)].end());
  I.dma_out[std::size_t(chan)].clear();
  return out;
}

void Chip::inject_fault(const std::string& slice, int row, int bits) {
  auto& I = *impl_;
  auto s = I.layout.find_slice(slice);
  // Three different conditions, three messages (a timing-only chip was once told that a MEM
  // slice "is not a MEM slice").
  if (!s || I.layout.slice(*s).kind != SliceKind::Mem)
    throw Error(fmt::format("fault injection: '{}' is not a MEM slice of preset '{}'", slice, I.p.name));
  if (I.mode == Mode::TimingOnly)
    throw Error(fmt::format("fault injection into {} needs a functional run: a timing-only chip keeps no SRAM contents to flip",
                            slice));
  if (row < 0 || row >= I.p.mem.rows)
    throw Error(fmt::format("fault injection: row {} of {} is out of range 0..{}", row, slice, I.p.mem.rows - 1));
  if (bits < 1) throw Error(fmt::format("fault injection: {} bits: flip at least 1", bits));
  I.sram[std::size_t(s->v)]->inject(row, bits);
}

void Chip::set_link_sink(LinkSink* sink) { impl_->sink = sink; }
void Chip::receive(int link, std::int64_t arrival, std::span<const std::uint8_t> bytes) {
  auto& I = *impl_;
  if (link < 0 || link >= I.p.c2c.links) throw Error(fmt::format("link {} out of range", link));
  I.inbox[std::size_t(link)].push_back({arrival, std::vector<std::uint8_t>(bytes.begin(), bytes.end())});
}
bool Chip::run(std::int64_t limit) { return impl_->run(limit); }
bool Chip::done() const { return impl_->heap.empty(); }
std::int64_t Chip::next_event_cycle() const { return impl_->heap.empty() ? INT64_MAX : impl_->heap.top().cycle; }
const ChipStats& Chip::stats() const { return impl_->st; }
const ChipParams& Chip::params() const { return impl_->p; }
const Layout& Chip::layout() const { return impl_->layout; }
Mode Chip::mode() const { return impl_->mode; }
int Chip::id() const { return impl_->id; }
void Chip::set_issue_hook(std::function<void(const IssueEvent&)> hook) { impl_->hook = std::move(hook); }
void Chip::set_observer(Observer* obs) {
  auto& I = *impl_;
  I.obs = obs;
  // Accumulator writes come from the planes as their products are computed.
  for (auto& m : I.mxm) {
    if (!m) continue;
    if (!obs) {
      m->set_acc_write({});
      continue;
    }
    const int pos = int(&m - I.mxm.data());
    m->set_acc_write([obs, pos](int acc, std::int64_t cycle, std::int64_t ready, bool flt, const std::uint32_t* v, int n) {
      obs->on_acc_write(pos, acc, cycle, ready - 1, flt, v, n);  // ready = cycle + mxm_mm
    });
  }
}
std::vector<std::uint64_t> Chip::queue_words(int queue) const {
  return impl_->qs.at(std::size_t(queue)).code->words;
}
const std::uint8_t* Chip::stream_value(int stream, Dir dir, int position, std::int64_t cycle) const {
  if (!impl_->streams) return nullptr;
  return impl_->streams->read(stream | (dir == Dir::West ? 64 : 0), position, cycle);
}

}  // namespace lpu::model
