#pragma once
// The scheduling pass of the compiler layer (docs/compiler.md): a static list scheduler for one
// chip that places instruction groups at explicit cycles so that no resource is used twice -
// instruction queues (one issue per cycle, a REPEAT group holds its queue for its whole span),
// SRAM read and write ports, stream registers (a value occupies its diagonal between producer
// and consumer), MXM staging buffers and accumulators, C2C link serialisation - and emits `.lpa`
// text with `@T0+cycle` times. The assembler re-checks everything it emits. Design in
// docs/decode.md ("The schedule"); tests in tests/compiler/test_sched.cpp.
//
// Discipline: every vector value lives in SRAM. An operation READs its operands from MEM
// slices, they travel on streams to the unit, the result travels back and is WRITTEN to a MEM
// slice. Operations are scheduled in the order they are given, each at its earliest feasible
// cycle (gaps left by earlier operations are filled).
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lpu/arch/layout.hpp"
#include "lpu/arch/params.hpp"
#include "lpu/isa/isa.hpp"

namespace lpu::compiler::sched {

using Cycle = std::int64_t;
inline constexpr Cycle kNever = std::numeric_limits<Cycle>::max() / 4;

// Busy intervals [a, b), disjoint and merged.
class IntervalSet {
 public:
  bool free(Cycle a, Cycle b) const;
  // The earliest t >= a with [t, t + len) free.
  Cycle next_free(Cycle a, Cycle len) const;
  // The end of the free gap starting at a (a itself when a is busy).
  Cycle gap_end(Cycle a) const;
  void add(Cycle a, Cycle b);
  bool empty() const { return m_.empty(); }

 private:
  std::map<Cycle, Cycle> m_;
};

// A stream (one id, one direction): values occupy diagonals over position ranges.
class StreamTrack {
 public:
  bool free(Cycle d0, Cycle d1, int lo, int hi) const;
  void add(Cycle d0, Cycle d1, int lo, int hi);

 private:
  struct R {
    Cycle d1;
    int lo, hi;
  };
  std::multimap<Cycle, R> m_;
  Cycle maxlen_ = 0;
};

// A value: `count` vectors in consecutive rows of one MEM slice.
struct Value {
  std::string name;
  int slice = -1;           // index into ChipSched::slices()
  Cycle row = 0;
  int count = 0;
  std::vector<Cycle> ready;  // per vector: first cycle a READ sees it (kNever: not written yet)
  Cycle last_read = -1;      // latest READ issue of any vector
  Cycle last_write = -1;     // latest WRITE issue into it
  std::vector<Cycle> first_read;  // per vector: earliest READ issue (kNever: never read)
  bool fixed = false;        // placed by the caller (symbols, KV cache): never freed
  int reg = 0;               // address register of the rows (KV cache written at [rN + row])
  Cycle avail = 0;           // writes may land from this cycle (the rows' previous value is dead)
};
using ValueP = std::shared_ptr<Value>;

// An operand: vectors idx, idx + stride, ... of a value (stride 0: the same vector each time),
// or (v null) a constant made by a CONST instruction on another VXM queue (VXM operations only).
struct Rd {
  ValueP v;
  int idx = 0;
  int stride = 1;
  std::string konst;  // "CONST.f32" with `kbits` as its raw pattern
  std::uint32_t kbits = 0;
  Rd() = default;
  Rd(ValueP val, int i = 0, int s = 1) : v(std::move(val)), idx(i), stride(s) {}
  static Rd constant(std::string mnem, std::uint32_t bits) {
    Rd r;
    r.stride = 0;
    r.konst = std::move(mnem);
    r.kbits = bits;
    return r;
  }
};

enum class UnitKind : std::uint8_t { Vxm, SxmE, SxmW, Mxm };

// Where a result goes: into `v` at idx, idx + stride, ... (a fixed value), or into a new value
// allocated in one of the scratch slices.
struct Out {
  ValueP v;           // fixed destination (null: allocate)
  int idx = 0;
  int stride = 1;
  std::string name;   // of the allocated value
  std::vector<int> pool;  // candidate slices (empty: the scratch pool)
  // Allocated outputs only: two values, the even results in `out` and the odd in `out2`
  // (OpResult), in two slices on one side of the unit that both WRITE from the one result
  // stream, every other cycle (`REPEAT n, 2`): an operation on adjacent pairs of the results
  // (a tree level) then reads each pair from two slices at once. `extra` more rows at the end,
  // for results written later (a tree's odd last, moved up).
  bool split = false;
  int extra = 0;
  std::vector<int> avoid = {};  // allocated outputs: slices not to use (a later operation reads it beside values there)
};

// Operand text pattern of an instruction: streams of inputs, the output stream, literals.
struct Operand {
  enum K : std::uint8_t { In, OutS, Lit } k;
  int i = 0;
  std::string lit;
  static Operand in(int i) { return {In, i, {}}; }
  static Operand out() { return {OutS, 0, {}}; }
  static Operand lit_(std::string s) { return {Lit, 0, std::move(s)}; }
};

struct OpSpec {
  UnitKind unit = UnitKind::Vxm;
  int plane = -1;            // Mxm: the plane (ACCRD)
  std::string mnem;          // "ADD.f32"
  std::vector<Operand> ops;  // operand order
  isa::LatClass lat = isa::LatClass::VxmAlu;
  std::vector<Rd> in;
  std::optional<Out> out;
  int count = 1;             // instances, one per cycle (REPEAT count-1, 1)
  Cycle earliest = 0;
  int link = -1;             // SEND: the link (its serialisation is tracked); RECV: the link
  Cycle recv_ready = 0;      // RECV: first cycle the vector may be taken
  int acc = -1;              // ACCRD: its accumulator (busy until the read)
  bool forward = false;      // its reads do not count as uses (Value::first_read): forwarding
};

struct OpResult {
  Cycle t = 0;     // issue of instance 0 at the unit
  ValueP out;      // the result (allocated or given)
  ValueP out2;     // Out::split: the odd results
};

struct LwPart {
  ValueP src;  // rows src->row + first ..
  int first = 0;
  int count = 0;
  int srow = 0;  // staging row of the first
  int queue = -1;  // plane queue 0..2, -1: any
  // Set: the rows are GATHERed, row src->row + first + k + idx, idx the first i16 of each
  // superlane of this one-vector value (an expert chosen on chip); it must lie upstream of src
  // on the lane's direction, and the ChipSched must reserve gather streams.
  std::shared_ptr<struct Value> idx;
  // Set: the rows go over the weight bus (LWM, docs/timing.md rule 15a) straight from src's
  // slice into staging rows srow, srow + rstep, ... modulo wrap, one per cycle; every LWM part of
  // a tile issues in the same cycles (from different slices), no queue or stream of the plane.
  bool lwm = false;
  int rstep = 1, wrap = 0;
};
struct MmGroup {
  Rd x;           // count vectors
  int count = 1;  // instances (accumulators acc, acc + 1, ...)
  int acc = -1;   // first accumulator (-1: allocate `count` consecutive ones)
  bool accumulate = false;
};

struct Emitted {
  int queue;
  Cycle t;
  std::string text;
  std::int64_t repeat = 0;
  int delay = 1;  // cycles between instances
};

struct MemSlice {
  std::string name;
  int position = 0;
  std::vector<std::string> queues;  // mem.e.3, mem.e.3.1
  std::vector<int> qids;
  IntervalSet rport, wport;
  // Row allocation: free ranges (first row, count, free from cycle).
  struct Free {
    Cycle row, count, after;
  };
  std::vector<Free> free;
  Cycle fixed_top = 0;  // rows [0, fixed_top) hold fixed data
};

struct PlaneState {
  std::string name;  // mxm.e.0
  int position = 0;
  std::vector<int> qids;  // its queues
  std::vector<int> lane_stream;  // per queue: the stream its LWs read
  std::vector<int> idx_stream;   // per queue: the stream its GATHERs read their index from (if reserved)
  Cycle staging_free = 0;  // LWs for the next tile from here
  Cycle last_iw = -1;
  Cycle last_mm = -1;      // last MM/MMA issue on the active weights
  std::vector<Cycle> acc_free;  // per accumulator: a new MM may issue from this cycle
  std::vector<Cycle> acc_ready; // per accumulator: ACCRD may issue from this cycle
  isa::Dtype staged = isa::Dtype::I8;
  std::int64_t tiles = 0;
};

class ChipSched {
 public:
  // gather_lanes: reserve a second stream per MXM lane for GATHER indexes (LwPart::idx).
  ChipSched(const ChipParams& p, bool gather_lanes = false);

  const ChipParams& params() const { return p_; }
  const Layout& layout() const { return L_; }
  std::vector<MemSlice>& slices() { return slices_; }
  const std::vector<MemSlice>& slices_const() const { return slices_; }
  std::vector<PlaneState>& planes() { return planes_; }
  const std::vector<PlaneState>& planes_const() const { return planes_; }
  int slice_index(const std::string& name) const;
  int vxm_position() const { return pv_; }

  // Scratch pool (slice indices) for allocated values.
  void set_scratch(std::vector<int> pool) {
    scratch_ = std::move(pool);
    nearest_.clear();
  }
  // The scratch slices by distance from a stream position (nearest first).
  const std::vector<int>& nearest_scratch(int position);
  // A fixed value (symbol, KV cache): `count` rows at `row` of `slice`, readable from cycle
  // `ready` (0: initial data).
  ValueP fixed(const std::string& name, int slice, Cycle row, int count, Cycle ready = 0, int reg = 0);
  // Reserve rows [row, row + count) of a slice for fixed data (never allocated as scratch).
  void reserve_rows(int slice, Cycle row, Cycle count);
  void free(const ValueP& v);  // its rows become scratch again after its last read
  // A scratch value of `count` vectors, not yet written, whose first write comes at or after
  // cycle `t_lb` (rows freed by then may be reused).
  // Not in the slices of `avoid` (values read side by side with it) while another has room.
  ValueP alloc(const std::string& name, int count, Cycle t_lb, const std::vector<int>& avoid = {});
  // A value in one of the slices of `pool` (not necessarily scratch; rows reserved for fixed data
  // excluded): the first slice in pool order with rows free by t_lb, else the rows free earliest.
  ValueP alloc_in(const std::string& name, int count, Cycle t_lb, const std::vector<int>& pool);

  OpResult op(const OpSpec& s);
  // One weight tile: LW parts (staging rows), IW, then the MM groups on the new weights.
  // Returns the MM issue of each group (instance 0) and the accumulators used.
  struct TileResult {
    std::vector<Cycle> mm;
    std::vector<int> acc;
    Cycle iw = 0;
  };
  // transposed: IW tr=1 (weights W[i][j] = staging row j element i; the K^T cache).
  TileResult tile(int plane, isa::Dtype t, const std::vector<LwPart>& parts, Cycle parts_ready,
                  const std::vector<MmGroup>& mms, bool transposed = false);
  // Accumulators a .. a+count-1 of a plane may be reused after `after`.
  void release_acc(int plane, int acc, int count, Cycle after);

  // Link serialisation (SEND departures at least `ser` apart): set per link used.
  void set_link_ser(int link, Cycle ser) { link_ser_[link] = ser; }

  // Emits the program: per queue, instructions sorted by cycle, `@T0+cycle` times.
  std::string emit(const std::string& header) const;
  Cycle last_cycle() const { return last_; }  // last issue or result landing
  // Debugging (LPU_GEN_DEBUG_SYMS=1): values are never freed and each gets a symbol.
  std::string debug_symbols() const;
  std::int64_t instructions() const { return std::int64_t(out_.size()); }
  // The first issue and the last (instances included) of instructions [from, instructions()):
  // what a part of the program occupies (LPU_GEN_PHASES). {kNever, -1} when there are none.
  std::pair<Cycle, Cycle> span_since(std::int64_t from) const;

  // Statistics of the plan (for the placement manifest).
  std::int64_t tile_count() const;

 private:
  int qid(const std::string& name);
  // A value's record (not yet a debug symbol: the caller adds scratch values to all_).
  ValueP make_value(const std::string& name, int slice, Cycle row, int count, Cycle ready);
  struct Tentative;
  bool try_read(Tentative& tx, const Rd& r, int count, int unit_pos, Cycle t_unit, std::string& stream_text,
                Cycle* retry = nullptr);
  bool try_write(Tentative& tx, int slice, Cycle row, int reg, int stride, int count, int unit_pos, Cycle t_out,
                 std::string& stream_text, Cycle min_w = 0);
  // Out::split: results 0, 2, .. into rows row_a.. of slice a, 1, 3, .. into rows row_b.. of b.
  bool try_write_split(Tentative& tx, int a, Cycle row_a, int b, Cycle row_b, int count, int unit_pos, Cycle t_out,
                       std::string& stream_text);
  std::optional<int> pick_stream(Tentative& tx, int dir, Cycle d0, Cycle d1, int lo, int hi);
  bool try_queue(Tentative& tx, const std::vector<int>& qs, Cycle a, Cycle b, int* chosen);
  void commit(Tentative& tx);
  std::optional<std::pair<int, Cycle>> find_rows(int slice, int count, Cycle write_t);
  // alloc and alloc_in: rows of `count` in a pool (the first free by t_lb in pool order, else the
  // ones free earliest), and a value made of them.
  struct RowsAt {
    int slice;
    Cycle row, after;
  };
  std::optional<RowsAt> rows_in(const std::vector<int>& pool, int count, Cycle t_lb) const;
  ValueP place(const std::string& name, const RowsAt& at, int count);
  void take_rows(int slice, Cycle row, int count);
  void emit_instr(int q, Cycle t, std::string text, std::int64_t repeat, int delay = 1);
  std::string addr(int reg, Cycle row) const;

  ChipParams p_;
  Layout L_;
  int h_ = 1;
  int pv_ = 0, pxe_ = 0, pxw_ = 0;
  std::vector<std::string> qnames_;
  std::map<std::string, int> qindex_;
  std::vector<IntervalSet> qbusy_;
  std::vector<MemSlice> slices_;
  std::map<std::string, int> slice_by_name_;
  std::vector<PlaneState> planes_;
  std::vector<int> vxm_q_, sxme_q_, sxmw_q_;
  std::vector<StreamTrack> streams_[2];  // [0] east, [1] west
  std::vector<int> general_[2];
  std::vector<int> scratch_;
  std::map<int, IntervalSet> link_busy_;
  std::map<int, Cycle> link_ser_;
  std::map<int, Cycle> link_last_recv_;
  std::vector<Emitted> out_;
  // The last LWM group of each queue, to extend when the next one continues it (same plane,
  // step and wrap; the next cycle, row and staging row): one REPEAT group per lane over a run of
  // tiles rather than one per tile (docs/decode.md, "The weight path").
  struct LwmRun {
    std::size_t out = 0;  // index into out_
    Cycle t_next = -1, addr_next = 0;
    int plane = 0, srow_next = 0, rstep = 0, wrap = 0;
    isa::Dtype ty{};
  };
  std::map<int, LwmRun> lwm_run_;
  Cycle last_ = 0;
  int rr_ = 0;  // round-robin start in the scratch pool
  std::map<int, std::vector<int>> nearest_;  // nearest_scratch() by position
  bool debug_ = false;
  std::vector<ValueP> all_;
};

}  // namespace lpu::compiler::sched
