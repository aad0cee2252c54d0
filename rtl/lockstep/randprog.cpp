// Constrained-random `mini` programs (rtl/include/lpu/rtl/randprog.hpp).
//
// The generator schedules every instruction itself (explicit @cycle) and keeps the state the
// assembler and the chip check: per queue the cycles it is busy, per stream register the
// cycles a value lands there or must pass undisturbed from its producer to its reader (a
// "path"), SRAM ports, the MXM's single plane and its staging rows (LW and the weight bus),
// DMA channels and link FIFO order. A pattern
// (a dataflow chain, an MXM session, ...) is proposed in a transaction and committed only if
// every check passes; otherwise another placement is tried.
#include "lpu/rtl/randprog.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <map>
#include <random>
#include <set>
#include <tuple>
#include <vector>

#include "lpu/arch/layout.hpp"
#include "lpu/arch/params.hpp"
#include "lpu/isa/isa.hpp"

namespace lpu::rtl {

namespace {

using isa::LatClass;

constexpr int kRowLimit = 200;  // plain random rows are 0..kRowLimit
constexpr int kRegMax = 16;     // r1..r3 hold 0..kRegMax (initial values and CONFIGs)
constexpr int kIdxRow = 240;    // rows 240..247 of every slice: GATHER/SCATTER index vectors
constexpr int kDataRows = 48;   // rows 0..47 of every slice start with random bytes
constexpr int kRepeatReg = 9;   // REPEATR count register (never CONFIGured)
constexpr std::int64_t kForever = std::int64_t(1) << 40;

const char* kTypes[] = {"i8", "i16", "i32", "f32", "f16", "bf16", "e4m3", "e5m2"};
int type_bytes(int t) { return isa::dtype_bytes(static_cast<isa::Dtype>(t)); }
bool type_float(int t) { return t >= 3; }

struct Cell {
  int sid;
  int pos;
  std::int64_t c;
  auto operator<=>(const Cell&) const = default;
};

struct Item {
  std::int64_t t;
  std::int64_t len;
  std::string text;
};

struct Gen;

// Proposed additions; checked against the committed state and each other.
struct Txn {
  Gen& g;
  bool ok = true;
  std::vector<std::pair<int, Item>> items;
  std::vector<Cell> cells;  // landed or reserved by this transaction
  std::vector<Cell> lands;
  std::vector<std::pair<int, std::int64_t>> rports, wports, dmain, dmaout;
  std::vector<std::int64_t> mm;
  std::vector<std::pair<std::int64_t, int>> staged;  // (cycle, staging row) written by an LW or an LWM landing
  std::vector<std::int64_t> wb;                      // landing cycles of LWM rows
  std::array<int, 8> dma_used{};
  explicit Txn(Gen& gen) : g(gen) {}

  bool queue_free(int q, std::int64_t t, std::int64_t len) const;
  void issue(int q, std::int64_t t, std::int64_t len, std::string text) {
    if (t < 0 || !queue_free(q, t, len)) ok = false;
    items.push_back({q, Item{t, len, std::move(text)}});
  }
  bool taken(const Cell& c) const;
  void take(const Cell& c) {
    if (taken(c)) ok = false;
    cells.push_back(c);
  }
  // A value landing on `sid` at `from` in cycle T, read at `to`: every register on the way.
  void path(int sid, int from, std::int64_t T, int to) {
    if (T < 0) ok = false;
    const bool west = sid & 64;
    if (west ? to > from : to < from) {
      ok = false;
      return;
    }
    lands.push_back({sid, from, T});
    for (int p = from;; p += west ? -1 : 1) {
      take({sid, p, T + std::abs(p - from)});
      if (p == to) break;
    }
  }
  void fly(int sid, int pos, std::int64_t T) {
    if (T < 0) ok = false;
    lands.push_back({sid, pos, T});
    take({sid, pos, T});
  }
  void port(bool write, int pos, std::int64_t t);
  // Staging row `row` written in cycle c: by an LW issued in c, or an LWM row landing in c (at
  // most install_rows_per_cycle of those per cycle). Never two writes of one row in one cycle:
  // the assembler rejects two LWM rows, and rule 16 does not order an LW and an LWM row.
  void stage(std::int64_t c, int row, bool lwm);
  bool final_check() const;  // one DMAIN/DMAOUT per channel and one MM per cycle
  void commit();
};

struct Gen {
  ChipParams p;
  Layout L;
  RandProgOptions o;
  std::mt19937_64 rng;
  std::vector<std::vector<Item>> items;
  std::set<Cell> cells;  // registers landed on or reserved by a path
  std::set<std::pair<int, std::int64_t>> rports, wports, dmain, dmaout;
  std::set<std::int64_t> mm_cycles;
  std::set<std::pair<std::int64_t, int>> staged;
  std::map<std::int64_t, int> wb_rows;  // landing cycle -> LWM rows
  std::array<int, 8> dma_used{};
  struct Link {
    std::int64_t last_send = -1, last_recv = -1;
  };
  std::vector<Link> links;
  std::int64_t mxm_free = 0;
  struct Acc {
    bool written = false;
    bool flt = false;
    int n = 0;
  };
  std::vector<Acc> accs;
  std::vector<int> mem_slices;            // slice positions
  std::vector<int> east_slices;           // ... of the hemisphere with the plane (LWM)
  std::map<int, std::vector<int>> queues_at;  // position -> queue indices
  std::array<std::vector<int>, 2> perms;  // defined permutation tables per SXM (0 w, 1 e)
  int lat(LatClass c) const { return p.lat(c); }

  Gen(std::uint64_t seed, const RandProgOptions& opt)
      : p(load_preset("mini")), L(p), o(opt), rng(seed * 0x9E3779B97F4A7C15ull + 12345) {
    items.resize(L.queues().size());
    links.resize(std::size_t(p.c2c.links));
    accs.resize(std::size_t(p.mxm.accumulators));
    for (const auto& s : L.slices())
      if (s.kind == SliceKind::Mem) mem_slices.push_back(s.position);
    for (const auto& s : L.slices())
      if (s.kind == SliceKind::Mem && s.hemi == Hemi::East) east_slices.push_back(s.position);
    for (std::size_t q = 0; q < L.queues().size(); ++q) queues_at[L.queue(QueueId{int(q)}).position].push_back(int(q));
  }

  std::int64_t rnd(std::int64_t lo, std::int64_t hi) {  // inclusive
    return lo + std::int64_t(rng() % std::uint64_t(hi - lo + 1));
  }
  bool chance(double x) { return std::uniform_real_distribution<double>(0, 1)(rng) < x; }
  template <class T>
  const T& pick(const std::vector<T>& v) {
    return v[std::size_t(rng() % v.size())];
  }
  int queue_at(int pos) { return pick(queues_at[pos]); }
  // A queue at `pos` free in t..t+len-1 (committed and proposed), else any (the proposal fails).
  int free_queue(const Txn& x, int pos, std::int64_t t, std::int64_t len) {
    auto qs = queues_at[pos];
    std::shuffle(qs.begin(), qs.end(), rng);
    for (int q : qs)
      if (x.queue_free(q, t, len)) return q;
    return qs.front();
  }
  int pos_vxm() const { return p.mem.slices_per_hemisphere + 1; }
  int pos_mxm() const { return L.num_positions() - 1; }
  int pos_sxm(int side) const { return side == 0 ? 0 : L.num_positions() - 2; }
  std::string sname(int sid) const { return fmt::format("s{}{}", sid & 63, (sid & 64) ? 'w' : 'e'); }
  int new_sid(bool west) { return int(rnd(0, p.stream.per_direction - 1)) | (west ? 64 : 0); }

  // An address operand for rows [lo, hi] (with REPEATs: first row, stepped within range).
  std::string addr(int row) {
    if (row <= kRowLimit - kRegMax && chance(0.3)) {
      int r = int(rnd(1, 3));
      return fmt::format("[r{} + {}]", r, row);
    }
    return fmt::format("{}", row);
  }
  // A REPEAT group: first row and stride so that every instance stays in 0..kRowLimit - kRegMax.
  std::pair<int, int> rows_for(int n) {
    int stride = int(rnd(-2, 3));
    int span = std::abs(stride) * n;
    int lo = stride < 0 ? span : 0;
    int hi = kRowLimit - kRegMax - (stride > 0 ? span : 0);
    return {int(rnd(lo, hi)), stride};
  }

  // ---- producers and consumers -----------------------------------------------------------
  // A value on some stream at position `to` in cycle T, for a reader there. Returns its sid.
  int produce(Txn& x, int to, std::int64_t T, bool allow_dma = true) {
    int kind = int(rnd(0, 99));
    if (kind < 70 || (!allow_dma && kind >= 85)) {  // a MEM READ
      int q = pick(mem_slices);
      bool west = to < q || (to == q && chance(0.5));
      int sid = new_sid(west);
      std::int64_t t = T - std::abs(to - q) - lat(LatClass::MemRead);
      x.port(false, q, t);
      x.issue(queue_at(q), t, 1, fmt::format("READ {}, {}", addr(int(rnd(0, kRowLimit - kRegMax))), sname(sid)));
      x.path(sid, q, t + lat(LatClass::MemRead), to);
      return sid;
    }
    if (kind < 85) {  // a VXM CONST
      const int v = pos_vxm();
      bool west = to < v || (to == v && chance(0.5));
      int sid = new_sid(west);
      int ty = int(rnd(0, 7));
      std::int64_t t = T - std::abs(to - v) - lat(LatClass::VxmAlu);
      x.issue(queue_at(v), t, 1, fmt::format("CONST.{} {}, {}", kTypes[ty], sname(sid), const_value(ty)));
      x.path(sid, v, t + lat(LatClass::VxmAlu), to);
      return sid;
    }
    // DMAIN at an SXM
    int side = int(rnd(0, 1));
    int sp = pos_sxm(side);
    bool west = to < sp || (to == sp && chance(0.5));
    int sid = new_sid(west);
    int ch = int(rnd(0, p.dma.channels - 1));
    std::int64_t t = T - std::abs(to - sp) - lat(LatClass::Dma);
    if (dma_used[std::size_t(ch)] + x.dma_used[std::size_t(ch)] >= o.dma_vectors) x.ok = false;
    x.dma_used[std::size_t(ch)]++;
    x.dmain.push_back({ch, t});
    x.issue(queue_at(sp), t, 1, fmt::format("DMAIN {}, {}", ch, sname(sid)));
    x.path(sid, sp, t + lat(LatClass::Dma), to);
    return sid;
  }

  std::string const_value(int ty) {
    const int b = type_bytes(ty);
    std::uint64_t v = rng() & (b == 4 ? 0x7FFFFFFFull : ((1ull << (8 * b)) - 1));
    if (type_float(ty)) return fmt::format("raw({:#x})", v);
    return fmt::format("{}", v);
  }

  // A result landing on sid at pos in cycle T: let it fly, write it to SRAM, or send it out.
  void consume(Txn& x, int sid, int pos, std::int64_t T) {
    const bool west = sid & 64;
    int kind = int(rnd(0, 99));
    if (kind < 40) {
      std::vector<int> down;
      for (int m : mem_slices)
        if (west ? m <= pos : m >= pos) down.push_back(m);
      if (!down.empty()) {
        int m = pick(down);
        std::int64_t t = T + std::abs(m - pos);
        x.port(true, m, t);
        x.issue(queue_at(m), t, 1, fmt::format("WRITE {}, {}", sname(sid), addr(int(rnd(0, kRowLimit - kRegMax)))));
        x.path(sid, pos, T, m);
        return;
      }
    } else if (kind < 50) {
      int side = west ? 0 : 1;
      int sp = pos_sxm(side);
      if (west ? sp <= pos : sp >= pos) {
        std::int64_t t = T + std::abs(sp - pos);
        int ch = int(rnd(0, p.dma.channels - 1));
        x.dmaout.push_back({ch, t});
        x.issue(queue_at(sp), t, 1, fmt::format("DMAOUT {}, {}", sname(sid), ch));
        x.path(sid, pos, T, sp);
        return;
      }
    }
    x.fly(sid, pos, T);
  }

  // ---- patterns --------------------------------------------------------------------------
  std::int64_t when() { return rnd(16, 16 + o.horizon); }

  void vxm_op(Txn& x) {
    struct OpDef {
      const char* m;
      int reads;
      int types;  // 0 all, 1 int, 2 float, 3 none
      LatClass lat;
    };
    static const std::vector<OpDef> ops = {
        {"ADD", 2, 0, LatClass::VxmAlu},    {"SUB", 2, 0, LatClass::VxmAlu},    {"MUL", 2, 0, LatClass::VxmMul},
        {"MIN", 2, 0, LatClass::VxmAlu},    {"MAX", 2, 0, LatClass::VxmAlu},    {"AND", 2, 1, LatClass::VxmAlu},
        {"OR", 2, 1, LatClass::VxmAlu},     {"XOR", 2, 1, LatClass::VxmAlu},    {"CMPEQ", 2, 0, LatClass::VxmAlu},
        {"CMPLT", 2, 0, LatClass::VxmAlu},  {"CMPLE", 2, 0, LatClass::VxmAlu},  {"SEL", 3, 0, LatClass::VxmAlu},
        {"SHL", 1, 1, LatClass::VxmAlu},    {"SHRA", 1, 1, LatClass::VxmAlu},   {"SHRL", 1, 1, LatClass::VxmAlu},
        {"NOT", 1, 1, LatClass::VxmAlu},    {"NEG", 1, 0, LatClass::VxmAlu},    {"ABS", 1, 0, LatClass::VxmAlu},
        {"RELU", 1, 0, LatClass::VxmAlu},   {"EXP", 1, 2, LatClass::VxmTrans},  {"TANH", 1, 2, LatClass::VxmTrans},
        {"SIGMOID", 1, 2, LatClass::VxmTrans}, {"GELU", 1, 2, LatClass::VxmTrans}, {"SILU", 1, 2, LatClass::VxmTrans},
        {"RSQRT", 1, 2, LatClass::VxmTrans}, {"RECIP", 1, 2, LatClass::VxmTrans}, {"SUM", 1, 0, LatClass::VxmReduce},
        {"RMAX", 1, 0, LatClass::VxmReduce}, {"CONST", 0, 0, LatClass::VxmAlu}, {"MOV", 1, 3, LatClass::VxmAlu},
        {"CVT", 1, 0, LatClass::VxmCvt},
    };
    const auto& op = pick(ops);
    const int v = pos_vxm();
    std::int64_t t = when();
    int ty = op.types == 1 ? int(rnd(0, 2)) : op.types == 2 ? int(rnd(3, 7)) : int(rnd(0, 7));
    std::string m = op.m;
    if (op.types != 3) m += fmt::format(".{}", kTypes[ty]);
    int part = 0;
    if (m.rfind("CVT", 0) == 0) {
      int t2 = int(rnd(0, 7));
      m += fmt::format(".{}", kTypes[t2]);
      int a = type_bytes(ty), b = type_bytes(t2);
      part = int(rnd(0, std::max(a, b) / std::min(a, b) - 1));
    }
    std::vector<std::string> args;
    for (int k = 0; k < op.reads; ++k) args.push_back(sname(produce(x, v, t)));
    int dst = new_sid(chance(0.5));
    const std::string mm = op.m;
    std::string text;
    if (mm == "CONST") text = fmt::format("{} {}, {}", m, sname(dst), const_value(ty));
    else if (mm == "SHL" || mm == "SHRA" || mm == "SHRL")
      text = fmt::format("{} {}, {}, {}", m, args[0], sname(dst), rnd(0, 8 * type_bytes(ty) - 1));
    else if (mm == "CVT") text = fmt::format("{} {}, {}, {}", m, args[0], sname(dst), part);
    else {
      text = m;
      for (std::size_t k = 0; k < args.size(); ++k) text += (k ? ", " : " ") + args[k];
      text += (args.empty() ? " " : ", ") + sname(dst);
    }
    x.issue(queue_at(v), t, 1, text);
    consume(x, dst, v, t + lat(op.lat));
  }

  void sxm_op(Txn& x) {
    int side = int(rnd(0, 1));
    const int sp = pos_sxm(side);
    std::int64_t t = when();
    int a = produce(x, sp, t, false);
    int dst = new_sid(chance(0.5));
    int ty = int(rnd(0, 7));
    int n = p.vector_bytes() / type_bytes(ty);
    int which = int(rnd(0, 3));
    std::string text;
    LatClass lc = LatClass::SxmShift;
    if (which == 0) text = fmt::format("SHIFT.{} {}, {}, {}", kTypes[ty], sname(a), sname(dst), rnd(-(n - 1), n - 1));
    else if (which == 1) text = fmt::format("ROT.{} {}, {}, {}", kTypes[ty], sname(a), sname(dst), rnd(-(n - 1), n - 1));
    else if (which == 2) text = fmt::format("DIST.{} {}, {}, {}", kTypes[ty], sname(a), sname(dst), rnd(0, n - 1));
    else {
      text = fmt::format("PERM {}, {}, {}", sname(a), sname(dst), pick(perms[std::size_t(side)]));
      lc = LatClass::SxmPerm;
    }
    x.issue(queue_at(sp), t, 1, text);
    consume(x, dst, sp, t + lat(lc));
  }

  void trans(Txn& x) {
    int side = int(rnd(0, 1));
    const int sp = pos_sxm(side);
    std::int64_t t = when();
    int q = pick(mem_slices);
    bool west = sp < q;
    int sid = new_sid(west);
    auto [row, stride] = rows_for(15);
    std::int64_t tr = t - std::abs(sp - q) - lat(LatClass::MemRead);
    for (int k = 0; k < 16; ++k) {
      x.port(false, q, tr + k);
      x.path(sid, q, tr + k + lat(LatClass::MemRead), sp);
    }
    x.issue(queue_at(q), tr, 16, fmt::format("READ {}, {}, {}\n    REPEAT 15, 1", addr(row), sname(sid), stride));
    int dst = new_sid(chance(0.5));
    x.issue(queue_at(sp), t, 16, fmt::format("TRANS {}, {}", sname(sid), sname(dst)));
    const std::int64_t t0 = t + lat(LatClass::SxmTrans);
    // outputs: written to SRAM in a burst, or left to fly
    std::vector<int> down;
    for (int m : mem_slices)
      if ((dst & 64) ? m <= sp : m >= sp) down.push_back(m);
    if (!down.empty() && chance(0.5)) {
      int m = pick(down);
      auto [wrow, wstride] = rows_for(15);
      std::int64_t tw = t0 + std::abs(m - sp);
      for (int r = 0; r < 16; ++r) {
        x.port(true, m, tw + r);
        x.path(dst, sp, t0 + r, m);
      }
      x.issue(queue_at(m), tw, 16, fmt::format("WRITE {}, {}, {}\n    REPEAT 15, 1", sname(dst), addr(wrow), wstride));
    } else {
      for (int r = 0; r < 16; ++r) x.fly(dst, sp, t0 + r);
    }
  }

  void mem_read(Txn& x) {
    int q = pick(mem_slices);
    std::int64_t t = when();
    int n = int(rnd(0, 7)), d = int(rnd(1, 3));
    bool byreg = chance(0.25);
    if (byreg) n = int(regs_init[kRepeatReg]);
    auto [row, stride] = rows_for(n);
    int sid = new_sid(chance(0.5));
    for (int k = 0; k <= n; ++k) {
      x.port(false, q, t + k * d);
      x.fly(sid, q, t + k * d + lat(LatClass::MemRead));
    }
    std::string rep = n == 0 && !byreg ? "" : byreg ? fmt::format("\n    REPEATR r{}, {}", kRepeatReg, d)
                                                    : fmt::format("\n    REPEAT {}, {}", n, d);
    x.issue(queue_at(q), t, std::int64_t(n) * d + 1, fmt::format("READ {}, {}, {}{}", addr(row), sname(sid), stride, rep));
  }

  void copy(Txn& x) {
    int a = pick(mem_slices), b = pick(mem_slices);
    if (a == b) return void(x.ok = false);
    bool west = b < a;
    int sid = new_sid(west);
    std::int64_t t = when();
    int n = int(rnd(1, 7)), d = int(rnd(1, 2));
    auto [row, stride] = rows_for(n);
    auto [wrow, wstride] = rows_for(n);
    std::int64_t tw = t + lat(LatClass::MemRead) + std::abs(b - a);
    for (int k = 0; k <= n; ++k) {
      x.port(false, a, t + k * d);
      x.port(true, b, tw + k * d);
      x.path(sid, a, t + k * d + lat(LatClass::MemRead), b);
    }
    x.issue(queue_at(a), t, std::int64_t(n) * d + 1, fmt::format("READ {}, {}, {}\n    REPEAT {}, {}", addr(row), sname(sid), stride, n, d));
    x.issue(queue_at(b), tw, std::int64_t(n) * d + 1, fmt::format("WRITE {}, {}, {}\n    REPEAT {}, {}", sname(sid), addr(wrow), wstride, n, d));
  }

  // GATHER/SCATTER: the index vector is one of the slice's own index rows, read just before.
  int index_vector(Txn& x, int q, std::int64_t t) {
    int sid = new_sid(chance(0.5));
    std::int64_t tr = t - lat(LatClass::MemRead);
    x.port(false, q, tr);
    x.issue(queue_at(q), tr, 1, fmt::format("READ {}, {}", kIdxRow + rnd(0, 7), sname(sid)));
    x.path(sid, q, t, q);
    return sid;
  }
  void gather(Txn& x) {
    int q = pick(mem_slices);
    std::int64_t t = when();
    if (chance(0.4)) return gather_repeated(x, q, t);
    int idx = index_vector(x, q, t);
    int dst = new_sid(chance(0.5));
    x.port(false, q, t);
    x.issue(queue_at(q), t, 1, fmt::format("GATHER {}, {}, {}", addr(int(rnd(0, kRowLimit - kRegMax - 16))), sname(idx), sname(dst)));
    consume(x, dst, q, t + lat(LatClass::MemRead));
  }
  void scatter(Txn& x) {
    int q = pick(mem_slices);
    std::int64_t t = when();
    if (chance(0.4)) return scatter_repeated(x, q, t);
    int idx = index_vector(x, q, t);
    int src = produce(x, q, t);
    x.port(true, q, t);
    x.issue(queue_at(q), t, 1, fmt::format("SCATTER {}, {}, {}", sname(src), sname(idx), addr(int(rnd(0, kRowLimit - kRegMax - 16)))));
  }

  // REPEATed GATHER/SCATTER (instance k: base row + k + idx_s, isa.toml `step`). Their index
  // vectors come from another slice's index rows, READ with a REPEAT of the same spacing so that
  // one arrives for every instance: stride 0 (one index row) or 1 (consecutive index rows).
  std::string repeat(int n, int d) const { return fmt::format("\n    REPEAT {}, {}", n, d); }
  int index_stream(Txn& x, int q, std::int64_t t, int n, int d) {
    int q2 = pick(mem_slices);
    if (q2 == q) q2 = pick(mem_slices);
    if (q2 == q) {
      x.ok = false;
      return 0;
    }
    int sid = new_sid(q2 > q);
    int stride = int(rnd(0, 1));
    int row = kIdxRow + int(rnd(0, 7 - stride * n));
    std::int64_t tr = t - std::abs(q - q2) - lat(LatClass::MemRead);
    for (int k = 0; k <= n; ++k) {
      x.port(false, q2, tr + k * d);
      x.path(sid, q2, tr + k * d + lat(LatClass::MemRead), q);
    }
    x.issue(queue_at(q2), tr, std::int64_t(n) * d + 1, fmt::format("READ {}, {}, {}{}", row, sname(sid), stride, repeat(n, d)));
    return sid;
  }
  void gather_repeated(Txn& x, int q, std::int64_t t) {
    int n = int(rnd(1, 5)), d = int(rnd(1, 2));
    int idx = index_stream(x, q, t, n, d);
    int dst = new_sid(chance(0.5));
    for (int k = 0; k <= n; ++k) x.port(false, q, t + k * d);
    x.issue(queue_at(q), t, std::int64_t(n) * d + 1,
            fmt::format("GATHER {}, {}, {}{}", addr(int(rnd(0, kRowLimit - kRegMax - 16 - n))), sname(idx), sname(dst),
                        repeat(n, d)));
    const std::int64_t t0 = t + lat(LatClass::MemRead);
    // the rows: written to SRAM with a REPEATed WRITE downstream, or left to fly
    std::vector<int> down;
    for (int m : mem_slices)
      if ((dst & 64) ? m <= q : m >= q) down.push_back(m);
    if (chance(0.6)) {
      int m = pick(down);
      auto [wrow, wstride] = rows_for(n);
      std::int64_t tw = t0 + std::abs(m - q);
      for (int k = 0; k <= n; ++k) {
        x.port(true, m, tw + k * d);
        x.path(dst, q, t0 + k * d, m);
      }
      x.issue(queue_at(m), tw, std::int64_t(n) * d + 1,
              fmt::format("WRITE {}, {}, {}{}", sname(dst), addr(wrow), wstride, repeat(n, d)));
    } else {
      for (int k = 0; k <= n; ++k) x.fly(dst, q, t0 + k * d);
    }
  }
  void scatter_repeated(Txn& x, int q, std::int64_t t) {
    int n = int(rnd(1, 5)), d = int(rnd(1, 2));
    int idx = index_stream(x, q, t, n, d);
    // the source vectors: a REPEATed READ of any slice (this one too: a SCATTER uses the write port)
    int a = pick(mem_slices);
    int src = new_sid(a > q || (a == q && chance(0.5)));
    auto [row, stride] = rows_for(n);
    std::int64_t tr = t - std::abs(q - a) - lat(LatClass::MemRead);
    for (int k = 0; k <= n; ++k) {
      x.port(false, a, tr + k * d);
      x.path(src, a, tr + k * d + lat(LatClass::MemRead), q);
      x.port(true, q, t + k * d);
    }
    x.issue(queue_at(a), tr, std::int64_t(n) * d + 1, fmt::format("READ {}, {}, {}{}", addr(row), sname(src), stride, repeat(n, d)));
    x.issue(queue_at(q), t, std::int64_t(n) * d + 1,
            fmt::format("SCATTER {}, {}, {}{}", sname(src), sname(idx), addr(int(rnd(0, kRowLimit - kRegMax - 16 - n))),
                        repeat(n, d)));
  }

  // LWM rows over the weight bus (rule 15a) from `ns` east slices, one LWM each (REPEATed or
  // not), the first rows landing in `tland` (`exact`) or up to 2 cycles later. Structured: the
  // slices stream one slab of h rows (a multiple of ns) together, slice j the rows of one
  // residue mod ns, rstep = ns and wrap = h, from a random row of the slab (so instances wrap
  // around), all in step (ns rows per cycle) or staggered; free: every slice its own row, rstep,
  // wrap and count (a conflict makes the transaction fail). Returns the last landing cycle.
  std::int64_t lwm_load(Txn& x, std::int64_t tland, int n, int ty, int ns, bool exact) {
    const int lwm = lat(LatClass::MemLwm);
    auto sl = east_slices;
    std::shuffle(sl.begin(), sl.end(), rng);
    const bool structured = chance(0.7);
    const int h = ns * int(rnd(1, n / ns));
    std::vector<int> residue;
    for (int j = 0; j < ns; ++j) residue.push_back(j);
    std::shuffle(residue.begin(), residue.end(), rng);
    const bool in_step = chance(0.6);
    const std::int64_t common = exact ? 0 : rnd(0, 2);  // the start of slices in step
    std::int64_t last = tland;
    for (int j = 0; j < ns; ++j) {
      int wrap, row, rstep, count, d;
      if (structured) {
        wrap = h;
        rstep = ns;
        row = residue[std::size_t(j)] + ns * int(rnd(0, h / ns - 1));
        count = chance(0.7) ? h / ns : int(rnd(1, h / ns + 2));
        d = in_step ? 1 : int(rnd(1, 2));
      } else {
        wrap = int(rnd(1, n));
        rstep = int(rnd(0, wrap));
        row = int(rnd(0, wrap - 1));
        count = int(rnd(1, 6));
        d = int(rnd(1, 2));
      }
      const std::int64_t t0 = tland + (in_step ? common : exact && j == 0 ? 0 : rnd(0, 2)) - lwm;
      const int q = sl[std::size_t(j)];
      const int addr0 = int(rnd(0, kRowLimit - count));
      for (int k = 0; k < count; ++k) {
        x.port(false, q, t0 + k * d);
        x.stage(t0 + k * d + lwm, (row + k * rstep) % wrap, true);
        last = std::max(last, t0 + k * d + lwm);
      }
      const std::int64_t len = std::int64_t(count - 1) * d + 1;
      x.issue(free_queue(x, q, t0, len), t0, len,
              fmt::format("LWM.{} {}, 0, {}, {}, {}{}", kTypes[ty], addr0, row, rstep, wrap,
                          count > 1 ? repeat(count - 1, d) : std::string()));
    }
    return last;
  }

  // IW's operand: 35% of installs transposed (tr = 1, rule 16), each IW drawn on its own, so a
  // reload's second IW may install the other way than the first.
  const char* transposed() { return chance(0.35) ? " 1" : ""; }

  // An MXM session: a full weight load (an LW burst, LWMs over the weight bus from 1..4 slices,
  // or both into one install) and an IW after its last row (transposed or not), sometimes a
  // partial reload right after it (double buffering, rule 16: 1..3 LWs from the IW's own cycle
  // on, or LWM rows landing from the IW's own cycle on, then a second IW, often less than
  // mxm_iw after the first, so that MMs straddle the switch of weights), MMs and MMAs (also
  // several into one accumulator), and ACCRDs of several parts and types.
  void mxm_session(Txn& x, std::int64_t& end) {
    static const int mtypes[] = {0, 6, 7, 4, 5};  // i8 e4m3 e5m2 f16 bf16
    const int ty = mtypes[rnd(0, 4)];
    const int n = p.vector_bytes() / type_bytes(ty);
    const int mx = pos_mxm();
    std::int64_t tlw = std::max<std::int64_t>(mxm_free, 16) + rnd(0, 20);
    // weights: n rows streamed east to the plane
    std::vector<int> west_of;
    for (int m : mem_slices)
      if (m < mx) west_of.push_back(m);
    // `rows` rows from a slice west of the plane, on the plane in tl..tl+rows-1, LW from `row`.
    auto load = [&](std::int64_t tl, int rows, int row) {
      int q = pick(west_of);
      int sid = new_sid(false);
      int row0 = int(rnd(0, kRowLimit - kRegMax - rows));
      std::int64_t tr = tl - (mx - q) - lat(LatClass::MemRead);
      for (int k = 0; k < rows; ++k) {
        x.port(false, q, tr + k);
        x.path(sid, q, tr + k + lat(LatClass::MemRead), mx);
      }
      std::string rep = rows > 1 ? fmt::format("\n    REPEAT {}, 1", rows - 1) : "";
      for (int k = 0; k < rows; ++k) x.stage(tl + k, row + k, false);
      x.issue(queue_at(q), tr, rows, fmt::format("READ {}, {}, 1{}", addr(row0), sname(sid), rep));
      x.issue(free_queue(x, mx, tl, rows), tl, rows, fmt::format("LW.{} {}, {}{}", kTypes[ty], sname(sid), row, rep));
    };
    // the first install: LW burst (40%), LWMs (35%), or an LW burst of part of the rows with
    // LWMs landing in the same cycles (25%); the IW after the last row
    const int how = int(rnd(0, 99));
    const int ns = int(rnd(1, int(east_slices.size())));
    std::int64_t last;
    if (how < 40) {
      load(tlw, n, 0);
      last = tlw + n - 1;
    } else if (how < 75) {
      last = lwm_load(x, tlw, n, ty, ns, false);
    } else {
      const int k = int(rnd(1, n / 2));
      load(tlw, k, int(rnd(0, n - k)));
      last = std::max(tlw + k - 1, lwm_load(x, tlw, n, ty, ns, false));
    }
    std::int64_t tiw = last + 1 + rnd(0, 2);
    std::int64_t last_iw = tiw;  // the session's last IW (a long reload may end after the MMs)
    x.issue(free_queue(x, mx, tiw, 1), tiw, 1, fmt::format("IW.{}{}", kTypes[ty], transposed()));
    if (chance(0.4)) {
      // the reload: from the IW's cycle (rule 16: not part of that install) or the next
      std::int64_t last2;
      if (chance(0.6)) {
        const int k = int(rnd(1, 3));
        const std::int64_t tl2 = tiw + rnd(0, 1);
        load(tl2, k, int(rnd(0, n - k)));
        last2 = tl2 + k - 1;
      } else {
        last2 = lwm_load(x, tiw + rnd(0, 1), n, ty, int(rnd(1, int(east_slices.size()))), true);
      }
      // the second IW: after the last reloaded row, one IW per cycle (RTL). Not in the last
      // row's cycle: that row would be staged for a later install (rule 16), which the next
      // session, maybe of another type, would install with its own (an assembler error).
      const std::int64_t tiw2 = std::max(last2 + 1 + rnd(0, 2), tiw + 1);
      x.issue(free_queue(x, mx, tiw2, 1), tiw2, 1, fmt::format("IW.{}{}", kTypes[ty], transposed()));
      last_iw = tiw2;
    }
    // products
    std::int64_t tmm = tiw + lat(LatClass::MxmIw) + rnd(0, 3);
    std::map<int, std::int64_t> last_mm;
    std::vector<Acc> acc = accs;
    int nmm = int(rnd(1, 4));
    for (int k = 0; k < nmm; ++k) {
      int a = int(rnd(0, p.mxm.accumulators - 1));
      bool same = acc[std::size_t(a)].written && acc[std::size_t(a)].flt == type_float(ty) && acc[std::size_t(a)].n == n;
      bool mma = same && chance(0.6);
      int xs = produce(x, mx, tmm);
      x.mm.push_back(tmm);
      x.issue(free_queue(x, mx, tmm, 1), tmm, 1, fmt::format("{}.{} {}, {}", mma ? "MMA" : "MM", kTypes[ty], sname(xs), a));
      acc[std::size_t(a)] = Acc{true, type_float(ty), n};
      last_mm[a] = tmm;
      tmm += rnd(1, 3);
    }
    // readout
    std::int64_t trd = tmm + lat(LatClass::MxmMm) + rnd(0, 2);
    for (auto [a, tl] : last_mm) {
      int nrd = int(rnd(1, 2));
      for (int k = 0; k < nrd; ++k) {
        int t2 = int(rnd(0, 7));
        int part = int(rnd(0, type_bytes(t2) - 1));
        int dst = new_sid(chance(0.8));
        x.issue(free_queue(x, mx, trd, 1), trd, 1, fmt::format("ACCRD.{} {}, {}, {}", kTypes[t2], a, sname(dst), part));
        consume(x, dst, mx, trd + lat(LatClass::MxmRd));
        trd += rnd(1, 2);
      }
    }
    end = std::max(trd + 4, last_iw + 1);
    if (x.ok) accs = acc;  // committed with the transaction by the caller
  }

  void dma_out(Txn& x) {
    int side = int(rnd(0, 1));
    const int sp = pos_sxm(side);
    std::int64_t t = when();
    int a = produce(x, sp, t, false);
    int ch = int(rnd(0, p.dma.channels - 1));
    x.dmaout.push_back({ch, t});
    x.issue(queue_at(sp), t, 1, fmt::format("DMAOUT {}, {}", sname(a), ch));
  }

  void c2c(Txn& x, int& link_out, std::int64_t& send_at, std::int64_t& recv_at) {
    int side = int(rnd(0, 1));
    const int sp = pos_sxm(side);
    std::int64_t ts = when();
    int link = int(rnd(0, p.c2c.links - 1));
    const auto& ls = links[std::size_t(link)];
    if (ts <= ls.last_send) x.ok = false;
    int a = produce(x, sp, ts, false);
    x.issue(queue_at(sp), ts, 1, fmt::format("SEND {}, {}", link, sname(a)));
    std::int64_t tr = ts + lat(LatClass::C2cSend) + o.link_latency + rnd(0, 10);
    if (tr <= ls.last_recv) x.ok = false;
    int side2 = int(rnd(0, 1));
    const int sp2 = pos_sxm(side2);
    int dst = new_sid(chance(0.5));
    x.issue(queue_at(sp2), tr, 1, fmt::format("RECV {}, {}", link, sname(dst)));
    consume(x, dst, sp2, tr + lat(LatClass::C2cRecv));
    link_out = link;
    send_at = ts;
    recv_at = tr;
  }

  void config(Txn& x) {
    int q = int(rnd(0, int(L.queues().size()) - 1));
    x.issue(q, when(), 1, fmt::format("CONFIG r{}, {}", rnd(1, 3), rnd(0, kRegMax)));
  }

  std::int64_t queue_end(int q) const {
    std::int64_t e = 0;
    for (const auto& it : items[std::size_t(q)]) e = std::max(e, it.t + it.len);
    return e;
  }

  std::array<std::uint32_t, 16> regs_init{};

  std::string run() {
    for (int r = 1; r <= 3; ++r) regs_init[std::size_t(r)] = std::uint32_t(rnd(0, kRegMax));
    regs_init[kRepeatReg] = std::uint32_t(rnd(1, 4));
    for (int side = 0; side < 2; ++side)
      for (int k = 0; k < 2; ++k) perms[std::size_t(side)].push_back(int(rnd(0, p.sxm.perm_tables - 1)));
    for (auto& v : perms) {
      std::sort(v.begin(), v.end());
      v.erase(std::unique(v.begin(), v.end()), v.end());
    }
    for (int i = 0; i < o.patterns; ++i) {
      int kind = int(rnd(0, 99));
      for (int attempt = 0; attempt < 12; ++attempt) {
        Txn x(*this);
        std::int64_t mxm_end = -1;
        int link = -1;
        std::int64_t ts = 0, tr = 0;
        auto saved_accs = accs;
        if (kind < 30) vxm_op(x);
        else if (kind < 42) sxm_op(x);
        else if (kind < 47) trans(x);
        else if (kind < 55) mem_read(x);
        else if (kind < 63) copy(x);
        else if (kind < 68) gather(x);
        else if (kind < 73) scatter(x);
        else if (kind < 83) mxm_session(x, mxm_end);
        else if (kind < 87) dma_out(x);
        else if (kind < 93) c2c(x, link, ts, tr);
        else if (o.icu) config(x);
        else vxm_op(x);
        if (!x.final_check()) {
          accs = saved_accs;
          continue;
        }
        x.commit();
        if (mxm_end >= 0) mxm_free = mxm_end;
        if (link >= 0) {
          links[std::size_t(link)].last_send = ts;
          links[std::size_t(link)].last_recv = tr;
        }
        break;
      }
    }
    if (o.icu) icu();
    return emit();
  }

  void icu() {
    const int nq = int(L.queues().size());
    // SYNC / NOTIFY: one NOTIFY, a few SYNCs before it
    if (chance(0.35)) {
      for (int attempt = 0; attempt < 20; ++attempt) {
        Txn x(*this);
        std::int64_t u = rnd(8, 16 + o.horizon);
        x.issue(int(rnd(0, nq - 1)), u, 1, "NOTIFY");
        int ns = int(rnd(1, 3));
        for (int k = 0; k < ns; ++k) {
          std::int64_t t = u - rnd(0, 12);
          x.issue(int(rnd(0, nq - 1)), t, u + p.icu.notify_latency - t, "SYNC");
        }
        if (x.final_check()) {
          x.commit();
          break;
        }
      }
    }
    // DESKEW (an SXM queue: it is a C2C instruction), then a DMAIN at the aligned cycle
    if (chance(0.15)) {
      for (int attempt = 0; attempt < 20; ++attempt) {
        Txn x(*this);
        int side = int(rnd(0, 1));
        const int sp = pos_sxm(side);
        int q = queue_at(sp);
        std::int64_t t = rnd(4, 16 + o.horizon);
        const std::int64_t P = p.c2c.deskew_period;
        std::int64_t r = (t / P + 1) * P;
        x.issue(q, t, r - t, "DESKEW");
        if (chance(0.7)) {
          int ch = int(rnd(0, p.dma.channels - 1));
          int sid = new_sid(chance(0.5));
          if (dma_used[std::size_t(ch)] >= o.dma_vectors) x.ok = false;
          x.dma_used[std::size_t(ch)]++;
          x.dmain.push_back({ch, r});
          x.issue(q, r, 1, fmt::format("DMAIN {}, {}", ch, sname(sid)));
          x.fly(sid, sp, r + lat(LatClass::Dma));
        }
        if (x.final_check()) {
          x.commit();
          break;
        }
      }
    }
    // HALT at the end of a few queues
    int nh = int(rnd(0, 3));
    for (int k = 0; k < nh; ++k) {
      int q = int(rnd(0, nq - 1));
      std::int64_t t = queue_end(q) + rnd(0, 3);
      bool halted = false;
      for (const auto& it : items[std::size_t(q)]) halted |= it.text == "HALT";
      if (!halted) items[std::size_t(q)].push_back(Item{t, kForever, "HALT"});
    }
  }

  std::string emit() {
    std::string s = ".preset mini\n; constrained-random program (lpu::rtl::random_program)\n";
    for (int r = 1; r < 16; ++r)
      if (regs_init[std::size_t(r)]) s += fmt::format(".reg r{} = {}\n", r, regs_init[std::size_t(r)]);
    for (int side = 0; side < 2; ++side)
      for (int tb : perms[std::size_t(side)]) {
        s += fmt::format(".perm {} {} = [", side == 0 ? "sxm.w" : "sxm.e", tb);
        for (int i = 0; i < p.vector_bytes(); ++i) s += fmt::format("{}{}", i ? ", " : "", rnd(0, p.vector_bytes() - 1));
        s += "]\n";
      }
    const int V = p.vector_bytes();
    for (const auto& sl : L.slices()) {
      if (sl.kind != SliceKind::Mem) continue;
      std::string h;
      for (int i = 0; i < kDataRows * V; ++i) h += fmt::format("{:02x}", rng() & 0xFF);
      s += fmt::format(".bytes {} @ 0 = \"{}\"\n", sl.name, h);
      h.clear();
      for (int r = 0; r < 8; ++r) {
        int off0 = 0;
        for (int i = 0; i < V; ++i) {
          int b = int(rng() & 0xFF);
          if (i == 0) b = off0 = int(rnd(0, 7));  // superlane 0 offset 0..7
          // superlane 1 offset 8..15, or the same row as superlane 0 (a SCATTER writes both)
          if (i == 16) b = chance(0.4) ? off0 : int(rnd(8, 15));
          if (i == 1 || i == 17) b = 0;
          h += fmt::format("{:02x}", b);
        }
      }
      s += fmt::format(".bytes {} @ {} = \"{}\"\n", sl.name, kIdxRow, h);
    }
    for (std::size_t q = 0; q < items.size(); ++q) {
      auto v = items[q];
      if (v.empty()) continue;
      std::sort(v.begin(), v.end(), [](const Item& a, const Item& b) { return a.t < b.t; });
      s += fmt::format(".queue {}\n", L.queue(QueueId{int(q)}).name);
      for (const auto& it : v) s += fmt::format("    @{} {}\n", it.t, it.text);
    }
    return s;
  }
};

bool Txn::queue_free(int q, std::int64_t t, std::int64_t len) const {
  auto overlap = [&](const Item& it) { return t < it.t + it.len && it.t < t + len; };
  for (const auto& it : g.items[std::size_t(q)])
    if (overlap(it)) return false;
  for (const auto& [qq, it] : items)
    if (qq == q && overlap(it)) return false;
  return true;
}
bool Txn::taken(const Cell& c) const {
  if (g.cells.count(c)) return true;
  return std::find(cells.begin(), cells.end(), c) != cells.end();
}
void Txn::port(bool write, int pos, std::int64_t t) {
  auto& mine = write ? wports : rports;
  const auto& theirs = write ? g.wports : g.rports;
  std::pair<int, std::int64_t> k{pos, t};
  if (t < 0 || theirs.count(k) || std::find(mine.begin(), mine.end(), k) != mine.end()) ok = false;
  mine.push_back(k);
}
void Txn::stage(std::int64_t c, int row, bool lwm) {
  const std::pair<std::int64_t, int> k{c, row};
  if (g.staged.count(k) || std::find(staged.begin(), staged.end(), k) != staged.end()) ok = false;
  staged.push_back(k);
  if (!lwm) return;
  auto it = g.wb_rows.find(c);
  const auto here = std::count(wb.begin(), wb.end(), c) + (it == g.wb_rows.end() ? 0 : it->second);
  if (here >= g.p.mxm.install_rows_per_cycle) ok = false;
  wb.push_back(c);
}
bool Txn::final_check() const {
  auto uniq = [](const auto& mine, const auto& theirs) {
    for (std::size_t i = 0; i < mine.size(); ++i) {
      if (theirs.count(mine[i])) return false;
      for (std::size_t j = 0; j < i; ++j)
        if (mine[j] == mine[i]) return false;
    }
    return true;
  };
  return ok && uniq(dmain, g.dmain) && uniq(dmaout, g.dmaout) && uniq(mm, g.mm_cycles);
}
void Txn::commit() {
  for (const auto& k : dmain) g.dmain.insert(k);
  for (const auto& k : dmaout) g.dmaout.insert(k);
  for (auto c : mm) g.mm_cycles.insert(c);
  for (auto& [q, it] : items) g.items[std::size_t(q)].push_back(std::move(it));
  for (const auto& c : cells) g.cells.insert(c);
  for (const auto& k : rports) g.rports.insert(k);
  for (const auto& k : wports) g.wports.insert(k);
  for (const auto& k : staged) g.staged.insert(k);
  for (auto c : wb) ++g.wb_rows[c];
  for (std::size_t c = 0; c < dma_used.size(); ++c) g.dma_used[c] += dma_used[c];
}

}  // namespace

std::string random_program(std::uint64_t seed, const RandProgOptions& opt) {
  Gen g(seed, opt);
  return g.run();
}

}  // namespace lpu::rtl
