// Lockstep of the RTL against the model: every example that assembles for mini, 200
// constrained-random programs (fixed seeds), and mutation checks proving the comparison is not
// blind.
#include <doctest/doctest.h>

#include <filesystem>
#include <fmt/format.h>
#include <map>
#include <set>
#include <span>

#include "lpu/arch/params.hpp"
#include "lpu/asm/assembler.hpp"
#include "lpu/common/errors.hpp"
#include "lpu/isa/isa.hpp"
#include "lpu/model/chip.hpp"
#include "lpu/rtl/lockstep.hpp"
#include "lpu/rtl/randprog.hpp"

using namespace lpu;
namespace fs = std::filesystem;

namespace {

// Programs and cycles compared by this process (printed at the end of each random batch).
struct Totals {
  int programs = 0;
  std::int64_t cycles = 0, checks = 0;
};
Totals totals;

rtl::LockstepResult lockstep(rtl::RtlChip& rtl, const obj::Program& p, const ChipParams& model_params,
                             const rtl::LockstepOptions& o = {}) {
  auto r = rtl::run_lockstep(rtl, p, model_params, o);
  ++totals.programs;
  totals.cycles += r.stats.cycles;
  totals.checks += r.stats.stream_checks;
  return r;
}

void random_batch(std::uint64_t first, int count) {
  const auto mini = load_preset("mini");
  rtl::RtlChip rtl;
  std::int64_t cycles = 0, issues = 0, writes = 0;
  for (std::uint64_t s = first; s < first + std::uint64_t(count); ++s) {
    CAPTURE(s);
    const auto text = rtl::random_program(s);
    obj::Program prog;
    REQUIRE_NOTHROW(prog = assembler::assemble_string(text, fmt::format("random_{}.lpa", s), mini).program);
    auto r = lockstep(rtl, prog, mini);
    if (!r.ok()) MESSAGE(r.report() << "\nprogram:\n" << text);
    REQUIRE(r.ok());
    CHECK(r.error.empty());  // a random program runs without error on both
    CHECK(r.stats.model_cycles == r.stats.rtl_cycles);
    CHECK(r.stats.issues > 0);
    cycles += r.stats.cycles;
    issues += r.stats.issues;
    writes += r.stats.sram_writes;
  }
  MESSAGE(count << " random programs (seeds " << first << ".." << first + std::uint64_t(count) - 1 << "): " << cycles
                << " cycles, " << issues << " issues, " << writes << " SRAM writes compared, zero mismatches");
}

bool has_transposed_iw(const obj::Program& p) {
  for (const auto& q : p.queues)
    for (auto w : q.words) {
      const auto in = isa::decode(w);
      if (in.op == isa::Op::Iw && in.v[0] != 0) return true;
    }
  return false;
}

}  // namespace

TEST_CASE("lockstep: every example that assembles for mini, zero mismatches") {
  const auto mini = load_preset("mini");
  rtl::RtlChip rtl;
  int n = 0;
  for (const auto& e : fs::recursive_directory_iterator(fs::path(LPU_SOURCE_DIR) / "examples")) {
    if (e.path().extension() != ".lpa") continue;
    obj::Program prog;
    try {
      prog = assembler::assemble_file(e.path().string(), mini).program;
    } catch (const Error&) {
      continue;  // another preset
    }
    CAPTURE(e.path().string());
    auto r = lockstep(rtl, prog, mini);
    if (!r.ok()) MESSAGE(r.report());
    CHECK(r.ok());
    CHECK(r.stats.model_cycles == r.stats.rtl_cycles);
    MESSAGE(e.path().filename().string() << ": " << r.report());
    ++n;
  }
  CHECK(n >= 3);  // vector_add, matvec_i8, stream_axpb_i8 at least
}

// 200 random programs in four batches (ctest runs them in parallel).
TEST_CASE("lockstep: random programs, seeds 1..50") { random_batch(1, 50); }
TEST_CASE("lockstep: random programs, seeds 51..100") { random_batch(51, 50); }
TEST_CASE("lockstep: random programs, seeds 101..150") { random_batch(101, 50); }
TEST_CASE("lockstep: random programs, seeds 151..200") { random_batch(151, 50); }

// The six places where the model departed from docs/timing.md (docs/rtl.md, "Model and
// specification: found and fixed"), each as its repro program: RTL and model now agree on every
// cycle, including the accumulator writes, the SCATTER's SRAM write and the TRANS issue.
TEST_CASE("lockstep: the repro programs of the six model fixes agree") {
  const auto mini = load_preset("mini");
  rtl::RtlChip rtl;
  const char* progs[] = {
      // 1: a second float MM into an accumulator with a product pending in the model's batch
      R"(.queue vxm.0
    @0 CONST.f16 s0e, 1.0
    @10 CONST.f16 s1e, 1.0
    @11 CONST.f16 s2e, 0.0
.queue mxm.e.0.0
    @7 LW.f16 s0e, 0
    @8 IW.f16
.queue mxm.e.0.1
    @17 MM.f16 s1e, 0
    @18 MM.f16 s2e, 0
.queue mxm.e.0.2
    @22 ACCRD.f32 0, s3w, 0
.queue mem.e.3
    @25 WRITE s3w, 0
)",
      // 2 and 6: IWs one and two cycles apart, an LW in the cycle of an IW
      R"(.queue vxm.0
    @0 CONST.i8 s0e, 1
    @1 CONST.i8 s1e, 2
    @2 CONST.i8 s4e, 3
    @5 CONST.i8 s2e, 1
    REPEAT 3, 1
.queue mxm.e.0.2
    @7 LW.i8 s0e, 0
    @8 LW.i8 s1e, 0
    @9 LW.i8 s4e, 1
.queue mxm.e.0.1
    @8 IW.i8
    @9 IW.i8
    @11 IW.i8
.queue mxm.e.0.0
    @12 MM.i8 s2e, 0
    REPEAT 3, 1
    @19 ACCRD.i32 0, s3w, 0
    REPEAT 3, 1
.queue mem.e.3
    @22 WRITE s3w, 0, 1
    REPEAT 3, 1
)",
      // 3: SCATTER with both superlanes on one row
      R"(.data src i8[32] mem.w.3 @ 0 = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32]
.data idx i16[16] mem.w.2 @ 0 = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
.queue mem.w.3
    @1 READ 0, s0e
.queue mem.w.2
    @2 READ 0, s1e
.queue mem.w.0
    @6 SCATTER s0e, s1e, 10
)",
      // 4 and 5: TRANS issues; word indices after NOPs and REPEATs
      R"(.queue mem.e.3
     READ 0, s0e, 1
     REPEAT 15, 1
     @30 READ 0, s2e
.queue sxm.e.0
     @3 TRANS s0e, s1w
.queue vxm.0
     CONFIG r1, 3
     CONST.i8 s3e, 1
)",
  };
  int k = 0;
  for (const char* src : progs) {
    CAPTURE(++k);
    auto prog = assembler::assemble_string(std::string(".preset mini\n") + src, "repro.lpa", mini).program;
    auto r = lockstep(rtl, prog, mini);
    if (!r.ok()) MESSAGE(r.report());
    CHECK(r.ok());
    CHECK(r.error.empty());
    MESSAGE(r.report());
    if (k <= 2) CHECK(r.stats.acc_writes >= 2);
    if (k == 3) CHECK(r.stats.sram_writes == 1);
  }
}

// REPEATed GATHER/SCATTER step their base row (isa.toml `step`; the RTL's generated step_word):
// the program of tests/model/test_chip.cpp (an index computed by the VXM, written to SRAM and
// READ once per GATHER instance), a REPEATed SCATTER, and the GATHER with base 245 whose
// instance 3 reaches row 256 (both stop in cycle 14).
TEST_CASE("lockstep: REPEATed GATHER and SCATTER, with an index computed on chip") {
  const auto mini = load_preset("mini");
  rtl::RtlChip rtl;
  std::string rows = "[";
  for (int i = 0; i < 512; ++i) rows += fmt::format("{}{}", i ? ", " : "", (5 * (i / 32) + i % 32) % 128);
  rows += "]";
  const std::string gather = ".preset mini\n.data w i8[512] mem.w.1 @ 0 = " + rows + R"(
.data lane i16[16] mem.w.0 @ 0 = [0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0]
.queue mem.w.0
    @0 READ 0, s0e
.queue vxm.1
    @2 CONST.i16 s1e, 5
.queue vxm.0
    @3 ADD.i16 s0e, s1e, s2w
.queue mem.w.2
    @7 WRITE s2w, 20
    @8 READ 20, s3e, 0
    REPEAT 3, 1
.queue mem.w.1
    @11 GATHER BASE, s3e, s4e
    REPEAT 3, 1
.queue mem.w.0
    @14 WRITE s4e, 4, 1
    REPEAT 3, 1
)";
  const std::string scatter = R"(.preset mini
.data idx i16[16] mem.w.2 @ 0 = [2, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0]
.queue mem.w.2
    @1 READ 0, s1e, 0
    REPEAT 3, 1
.queue mem.w.1
    @2 READ 0, s0e, 1
    REPEAT 3, 1
.queue mem.w.0
    @5 SCATTER s0e, s1e, 10
    REPEAT 3, 1
)";
  auto with_base = [&](int base) {
    std::string t = gather;
    t.replace(t.find("BASE"), 4, std::to_string(base));
    return t;
  };
  int k = 0;
  for (const auto& [src, fails] : {std::pair{with_base(2), false}, {scatter, false}, {with_base(245), true}}) {
    ++k;
    CAPTURE(k);
    auto prog = assembler::assemble_string(src, "g.lpa", mini).program;
    auto r = lockstep(rtl, prog, mini);
    if (!r.ok()) MESSAGE(r.report());
    CHECK(r.ok());
    CHECK(r.error.empty() != fails);
    if (fails) {
      MESSAGE(r.error);
      CHECK(r.error.find("cycle 14") != std::string::npos);
    }
    else CHECK(r.stats.sram_writes >= 4);
  }
}

// The random programs of the suite contain the cases the model once got wrong (the generator
// used to avoid them), counted from the model's issue events (functional mode, no RTL).
TEST_CASE("random programs contain the cases of the six model fixes") {
  const auto mini = load_preset("mini");
  const int iw_lat = mini.lat(isa::LatClass::MxmIw);
  int float_mm_again = 0, iw_close = 0, lw_iw_same = 0, scatter_one_row = 0, trans = 0, after_nop_or_repeat = 0;
  for (std::uint64_t s = 1; s <= 200; ++s) {
    auto prog = assembler::assemble_string(rtl::random_program(s), "r.lpa", mini).program;
    model::Chip chip(mini, model::Mode::Functional);
    chip.load(prog);
    for (int c = 0; c < mini.dma.channels; ++c)
      for (const auto& v : rtl::lockstep_dma_vectors({}, c)) chip.push_dma_in(c, v);
    struct Loop : model::LinkSink {
      model::Chip* c;
      void send(int, int link, std::int64_t depart, std::span<const std::uint8_t> b) override { c->receive(link, depart + 3, b); }
    } loop;
    loop.c = &chip;
    chip.set_link_sink(&loop);
    std::int64_t last_iw = -100;
    std::set<std::int64_t> lw_cycles, iw_cycles;
    std::set<int> pending;  // accumulators with a product since the last ACCRD
    chip.set_issue_hook([&](const model::Chip::IssueEvent& e) {
      const auto in = isa::decode(e.word);
      const int pos = chip.layout().queue(QueueId{e.queue}).position;
      if (e.pc > 0) ++after_nop_or_repeat;
      switch (in.op) {
        case isa::Op::Trans: ++trans; break;
        case isa::Op::Lw: lw_cycles.insert(e.cycle); break;
        case isa::Op::Iw:
          if (e.cycle - last_iw < iw_lat) ++iw_close;
          last_iw = e.cycle;
          iw_cycles.insert(e.cycle);
          break;
        case isa::Op::Mm:
        case isa::Op::Mma:
          if (in.op == isa::Op::Mm && in.t != isa::Dtype::I8 && pending.count(int(in.v[1]))) ++float_mm_again;
          pending.insert(int(in.v[1]));
          break;
        case isa::Op::Accrd: pending.clear(); break;
        case isa::Op::Scatter: {
          auto sr = StreamRef::unpack(std::uint64_t(in.v[1]));
          if (const auto* idx = chip.stream_value(sr.id, sr.dir, pos, e.cycle); idx && idx[0] == idx[16] && idx[1] == idx[17])
            ++scatter_one_row;
          break;
        }
        default: break;
      }
    });
    REQUIRE_NOTHROW(chip.run());
    for (auto c : iw_cycles) lw_iw_same += lw_cycles.count(c) ? 1 : 0;
  }
  MESSAGE("seeds 1..200: " << float_mm_again << " float MMs into an accumulator written since the last ACCRD, " << iw_close
                           << " IWs less than mxm_iw after another, " << lw_iw_same << " LW+IW cycles, " << scatter_one_row
                           << " SCATTERs with both superlanes on one row, " << trans << " TRANS");
  CHECK(float_mm_again >= 10);
  CHECK(iw_close >= 50);
  CHECK(lw_iw_same >= 50);
  CHECK(scatter_one_row >= 50);
  CHECK(trans >= 100);
  CHECK(after_nop_or_repeat > 0);
}

// REPEATed GATHER/SCATTER (base row stepping by one per instance) are in the random programs, so
// that the lockstep compares the RTL's stepping (lpu_isa_pkg::step_word) with the model's.
TEST_CASE("random programs contain REPEATed GATHER and SCATTER") {
  const auto mini = load_preset("mini");
  int gathers = 0, scatters = 0;
  for (std::uint64_t s = 1; s <= 100; ++s) {
    auto prog = assembler::assemble_string(rtl::random_program(s), "r.lpa", mini).program;
    for (const auto& q : prog.queues)
      for (std::size_t i = 0; i + 1 < q.words.size(); ++i) {
        const auto in = isa::decode(q.words[i]);
        if (isa::decode(q.words[i + 1]).op != isa::Op::Repeat) continue;
        gathers += in.op == isa::Op::Gather;
        scatters += in.op == isa::Op::Scatter;
      }
  }
  MESSAGE("seeds 1..100: " << gathers << " REPEATed GATHERs, " << scatters << " REPEATed SCATTERs");
  CHECK(gathers >= 20);
  CHECK(scatters >= 20);
}

namespace {

// i8 values for `rows` rows: ((r * 7 + c * 3) mod 17) - 8 with r counted from `first`.
std::string i8_rows(int first, int rows) {
  std::string s = "[";
  for (int r = first; r < first + rows; ++r)
    for (int c = 0; c < 32; ++c) s += fmt::format("{}{}", r > first || c ? ", " : "", (r * 7 + c * 3) % 17 - 8);
  return s + "]";
}

// The 4-slice LWM matvec of tests/model/test_weight_bus.cpp (and test_rtl.cpp), IW in `iw`
// (IW.i8 1 when `transpose`).
std::string lwm_matvec(int iw, bool transpose = false) {
  std::string src = ".preset mini\n.data W i8[32, 32] mem.e.0..3 @ 0 = " + i8_rows(0, 32) + "\n";
  for (int j = 0; j < 4; ++j) src += fmt::format(".queue mem.e.{}\n    @0 LWM.i8 0, 0, {}, 4, 32\n    REPEAT 7, 1\n", j, j);
  src += fmt::format(".queue mxm.e.0.0\n    @{} IW.i8{}\n.queue vxm.0\n    @{} CONST.i8 s0e, 1\n", iw, transpose ? " 1" : "", iw - 2);
  src += fmt::format(".queue mxm.e.0.1\n    @{} MM.i8 s0e, 0\n.queue mxm.e.0.2\n", iw + 5);
  for (int part = 0; part < 4; ++part) src += fmt::format("    @{} ACCRD.i32 0, s1w, {}\n", iw + 9 + part, part);
  src += fmt::format(".queue mem.e.3.1\n    @{} WRITE s1w, 16, 1\n    REPEAT 3, 1\n", iw + 12);
  return src;
}

}  // namespace

// The weight bus (docs/timing.md rule 15a) in lockstep, row by row: the matvec with the IW after
// the last rows and in their landing cycle (rule 16 boundary); LW and LWM rows in one install,
// with an IW in the landing cycle of four LWM rows and a second IW taking them (MMs of both
// installs); a REPEATed LWM whose staging rows wrap around (bf16, wrap 12 < the plane's 16).
TEST_CASE("lockstep: LWM programs agree, every staging row landed compared") {
  const auto mini = load_preset("mini");
  rtl::RtlChip rtl;
  // LW rows 0..3: mem.w.0 READs rows 0..3 in 0..3, on s0e at the plane (11) in 9..12, LW in
  // 9..12. LWM rows 4..31: mem.e.j reads rows 0..6 in 6..12 into staging rows 4 + j + 4k,
  // landing in 9..15. IW in 15 (rows 28..31 land then: not installed), IW in 16 (with them);
  // MMs in 19 (the first install's weights) and 20 (the second's), x = CONSTs from vxm.0.
  std::string mixed = ".preset mini\n.data A i8[4, 32] mem.w.0 @ 0 = " + i8_rows(0, 4) +
                      "\n.data W i8[28, 32] mem.e.0..3 @ 0 = " + i8_rows(4, 28) + R"(
.queue mem.w.0
    @0 READ 0, s0e, 1
    REPEAT 3, 1
.queue mxm.e.0.0
    @9 LW.i8 s0e, 0
    REPEAT 3, 1
    @15 IW.i8
    @16 IW.i8
.queue vxm.0
    @12 CONST.i8 s1e, 1
    @13 CONST.i8 s2e, 3
.queue mxm.e.0.1
    @19 MM.i8 s1e, 0
    @20 MM.i8 s2e, 1
.queue mxm.e.0.2
    @24 ACCRD.i32 0, s3w, 0
    @25 ACCRD.i32 1, s3w, 3
.queue mem.e.3.1
    @27 WRITE s3w, 100
    @28 WRITE s3w, 101
)";
  for (int j = 0; j < 4; ++j)
    mixed += fmt::format(".queue mem.e.{}\n    @6 LWM.i8 0, 0, {}, 4, 32\n    REPEAT 6, 1\n", j, 4 + j);
  const std::string wrap = ".preset mini\n.data D i8[10, 32] mem.e.2 @ 5 = " + i8_rows(0, 10) + R"(
.queue mem.e.2
    @1 LWM.bf16 5, 0, 3, 5, 12
    REPEAT 9, 2
)";
  struct Case {
    std::string src;
    int rows, acc_writes;
  };
  int k = 0;
  for (const auto& [src, rows, accs] : {Case{lwm_matvec(11), 32, 1}, Case{lwm_matvec(10), 32, 1}, Case{mixed, 28, 2},
                                        Case{wrap, 10, 0}}) {
    CAPTURE(++k);
    auto prog = assembler::assemble_string(src, "lwm.lpa", mini).program;
    auto r = lockstep(rtl, prog, mini);
    if (!r.ok()) MESSAGE(r.report());
    CHECK(r.ok());
    CHECK(r.error.empty());
    CHECK(r.stats.weight_rows == rows);
    CHECK(r.stats.acc_writes == accs);
    MESSAGE(r.report());
  }
}

TEST_CASE("mutation: LWM latency one cycle longer in the model only is reported at the weight bus") {
  const auto mini = load_preset("mini");
  const auto mutated = load_preset("mini", {"latency.mem_lwm=4"});
  rtl::RtlChip rtl;
  auto prog = assembler::assemble_string(lwm_matvec(11), "lwm.lpa", mini).program;
  auto bad = lockstep(rtl, prog, mutated);
  REQUIRE_FALSE(bad.ok());
  MESSAGE(bad.report());
  // the first LWMs issue in 0: their rows land in 3 on the RTL, in 4 on the model
  CHECK(bad.mismatch->cycle == 3);
  CHECK(bad.mismatch->unit == "weight bus");
  CHECK(bad.mismatch->expected == "no row");
  CHECK(bad.mismatch->got.find("staging row 0 = ") == 0);
}

// The random programs exercise the weight bus: LWMs single and REPEATed, REPEATed ones whose
// staging rows wrap around, cycles where as many rows land as a plane takes
// (mxm.install_rows_per_cycle), installs with LW and LWM rows, IWs in a landing cycle.
TEST_CASE("random programs contain the weight bus cases") {
  const auto mini = load_preset("mini");
  const int lwm_lat = mini.lat(isa::LatClass::MemLwm);
  int single = 0, repeated = 0, wrapped = 0, full_cycles = 0, mixed_installs = 0, iw_at_landing = 0;
  std::int64_t rows = 0;
  for (std::uint64_t s = 1; s <= 200; ++s) {
    auto prog = assembler::assemble_string(rtl::random_program(s), "r.lpa", mini).program;
    for (const auto& q : prog.queues)
      for (std::size_t i = 0; i < q.words.size(); ++i) {
        const auto in = isa::decode(q.words[i]);
        if (in.op != isa::Op::Lwm) continue;
        const bool rep = i + 1 < q.words.size() && isa::decode(q.words[i + 1]).op == isa::Op::Repeat;
        (rep ? repeated : single)++;
        if (rep && in.v[2] + isa::decode(q.words[i + 1]).v[0] * in.v[3] >= in.v[4]) ++wrapped;
      }
    model::Chip chip(mini, model::Mode::Functional);
    chip.load(prog);
    for (int c = 0; c < mini.dma.channels; ++c)
      for (const auto& v : rtl::lockstep_dma_vectors({}, c)) chip.push_dma_in(c, v);
    struct Loop : model::LinkSink {
      model::Chip* c;
      void send(int, int link, std::int64_t depart, std::span<const std::uint8_t> b) override { c->receive(link, depart + 3, b); }
    } loop;
    loop.c = &chip;
    chip.set_link_sink(&loop);
    std::map<std::int64_t, int> landing;        // cycle -> LWM rows
    std::set<std::int64_t> lw, iw;              // LW and IW cycles
    chip.set_issue_hook([&](const model::Chip::IssueEvent& e) {
      const auto op = isa::decode(e.word).op;
      if (op == isa::Op::Lwm) ++landing[e.cycle + lwm_lat];
      if (op == isa::Op::Lw) lw.insert(e.cycle);
      if (op == isa::Op::Iw) iw.insert(e.cycle);
    });
    REQUIRE_NOTHROW(chip.run());
    std::int64_t prev = -1;
    for (auto u : iw) {  // rows staged in [prev, u) go into the IW of u (rule 16)
      const bool has_lw = lw.lower_bound(prev) != lw.lower_bound(u);
      const bool has_lwm = landing.lower_bound(prev) != landing.lower_bound(u);
      mixed_installs += has_lw && has_lwm;
      iw_at_landing += landing.count(u) ? 1 : 0;
      prev = u;
    }
    for (auto [c, n] : landing) {
      full_cycles += n == mini.mxm.install_rows_per_cycle;
      rows += n;
    }
  }
  MESSAGE("seeds 1..200: " << single << " single and " << repeated << " REPEATed LWMs (" << wrapped
                           << " with staging rows wrapping around), " << rows << " LWM rows, " << full_cycles
                           << " cycles with " << mini.mxm.install_rows_per_cycle << " rows landing, " << mixed_installs
                           << " installs of LW and LWM rows, " << iw_at_landing << " IWs in a landing cycle");
  CHECK(single >= 20);
  CHECK(repeated >= 100);
  CHECK(wrapped >= 50);
  CHECK(full_cycles >= 50);
  CHECK(mixed_installs >= 20);
  CHECK(iw_at_landing >= 10);
}

// IW.t 1 (rule 16: the staging buffer installed transposed) in the random programs: counted per
// element size, in switches between the two ways (an IW installing the other way than the IW
// before it: in a reload, or the next session), and in MMs multiplying transposed weights.
TEST_CASE("random programs contain transposed installs") {
  const auto mini = load_preset("mini");
  const int iw_lat = mini.lat(isa::LatClass::MxmIw);
  int by_bytes[3] = {0, 0, 0}, plain = 0, switches = 0, used = 0;
  for (std::uint64_t s = 1; s <= 200; ++s) {
    auto prog = assembler::assemble_string(rtl::random_program(s), "r.lpa", mini).program;
    model::Chip chip(mini, model::Mode::Functional);
    chip.load(prog);
    for (int c = 0; c < mini.dma.channels; ++c)
      for (const auto& v : rtl::lockstep_dma_vectors({}, c)) chip.push_dma_in(c, v);
    struct Loop : model::LinkSink {
      model::Chip* c;
      void send(int, int link, std::int64_t depart, std::span<const std::uint8_t> b) override { c->receive(link, depart + 3, b); }
    } loop;
    loop.c = &chip;
    chip.set_link_sink(&loop);
    std::map<std::int64_t, int> iw_tr;  // IW cycle -> tr (one IW per cycle: the RTL's rule)
    std::vector<std::int64_t> mm_at;
    chip.set_issue_hook([&](const model::Chip::IssueEvent& e) {
      const auto in = isa::decode(e.word);
      if (in.op == isa::Op::Iw) {
        iw_tr[e.cycle] = int(in.v[0]);
        if (in.v[0]) ++by_bytes[isa::dtype_bytes(in.t)];
        else ++plain;
      }
      if (in.op == isa::Op::Mm || in.op == isa::Op::Mma) mm_at.push_back(e.cycle);
    });
    REQUIRE_NOTHROW(chip.run());
    int prev = -1;
    for (auto [t, tr] : iw_tr) {
      switches += prev >= 0 && prev != tr;
      prev = tr;
    }
    for (auto t : mm_at) {  // an MM in t multiplies with the last IW issued by t - mxm_iw
      auto it = iw_tr.upper_bound(t - iw_lat);
      if (it != iw_tr.begin() && std::prev(it)->second) ++used;
    }
  }
  MESSAGE("seeds 1..200: " << by_bytes[1] << " transposed installs of 1-byte types (i8, e4m3, e5m2) and " << by_bytes[2]
                           << " of 2-byte types (f16, bf16), " << plain << " untransposed, " << switches
                           << " IWs installing the other way than the IW before, " << used
                           << " MMs with transposed weights");
  CHECK(by_bytes[1] >= 30);
  CHECK(by_bytes[2] >= 20);
  CHECK(plain >= 100);
  CHECK(switches >= 50);
  CHECK(used >= 100);
}

TEST_CASE("mutation: IW.t 1 installing untransposed in the RTL only is reported at the accumulator write") {
  const auto mini = load_preset("mini");
  rtl::RtlChip rtl;
  rtl::LockstepOptions o;
  o.ignore_tr = true;
  // untransposed, the mutation changes nothing
  auto same = lockstep(rtl, assembler::assemble_string(lwm_matvec(11), "lwm.lpa", mini).program, mini, o);
  CHECK(same.ok());
  auto bad = lockstep(rtl, assembler::assemble_string(lwm_matvec(11, true), "lwm.lpa", mini).program, mini, o);
  REQUIRE_FALSE(bad.ok());
  MESSAGE(bad.report());
  // the MM issues in 16 (IW 11 + 5): both commit the accumulator at the end of 16 + 4 - 1 = 19
  CHECK(bad.mismatch->cycle == 19);
  CHECK(bad.mismatch->unit == "mxm");
  CHECK(bad.mismatch->expected != bad.mismatch->got);
  // and on random programs: caught in most of those that multiply with transposed weights
  int caught = 0, candidates = 0;
  for (std::uint64_t s = 1; s <= 20; ++s) {
    auto p = assembler::assemble_string(rtl::random_program(s), "r.lpa", mini).program;
    if (!has_transposed_iw(p)) continue;
    ++candidates;
    caught += lockstep(rtl, p, mini, o).ok() ? 0 : 1;
  }
  MESSAGE(caught << " of " << candidates << " random programs with a transposed install caught");
  CHECK(caught >= candidates / 2);
  CHECK(candidates >= 5);
}

TEST_CASE("mutation: one latency one cycle longer in the model only (latency.vxm_alu=2) is reported") {
  const auto mini = load_preset("mini");
  const auto mutated = load_preset("mini", {"latency.vxm_alu=2"});
  rtl::RtlChip rtl;
  auto prog = assembler::assemble_file((fs::path(LPU_SOURCE_DIR) / "examples" / "vector_add.lpa").string(), mini).program;
  auto good = lockstep(rtl, prog, mini);
  CHECK(good.ok());
  auto bad = lockstep(rtl, prog, mutated);
  REQUIRE_FALSE(bad.ok());
  MESSAGE(bad.report());
  // the ADD issues in 4; its result stands at the VXM (5) in 5 on the RTL, in 6 on the model
  CHECK(bad.mismatch->cycle == 5);
  CHECK(bad.mismatch->unit == "streams");
  CHECK(bad.mismatch->where.find("s2e at position 5") != std::string::npos);
  CHECK(bad.mismatch->expected == "empty");
  // and on random programs: every one with an ALU-class VXM result is caught
  int caught = 0;
  for (std::uint64_t s = 1; s <= 10; ++s) {
    auto p = assembler::assemble_string(rtl::random_program(s), "r.lpa", mini).program;
    caught += lockstep(rtl, p, mutated).ok() ? 0 : 1;
  }
  CHECK(caught >= 8);
}

TEST_CASE("mutation: SRAM write latency one cycle longer in the model only is reported") {
  const auto mini = load_preset("mini");
  const auto mutated = load_preset("mini", {"latency.mem_write=2"});
  rtl::RtlChip rtl;
  auto prog = assembler::assemble_file((fs::path(LPU_SOURCE_DIR) / "examples" / "vector_add.lpa").string(), mini).program;
  auto bad = lockstep(rtl, prog, mutated);
  REQUIRE_FALSE(bad.ok());
  MESSAGE(bad.report());
  CHECK(bad.mismatch->unit == "sram");
  CHECK(bad.mismatch->cycle == 6);  // the WRITE of cycle 6 commits at its end on the RTL
}

TEST_CASE("mutation: MM latency one cycle shorter in the model only is reported at the accumulator write") {
  const auto mini = load_preset("mini");
  const auto mutated = load_preset("mini", {"latency.mxm_mm=3"});
  rtl::RtlChip rtl;
  auto prog = assembler::assemble_file((fs::path(LPU_SOURCE_DIR) / "examples" / "matvec_i8.lpa").string(), mini).program;
  auto bad = lockstep(rtl, prog, mutated);
  REQUIRE_FALSE(bad.ok());
  MESSAGE(bad.report());
  // the MM issues in 41: the model commits the accumulator at the end of 41 + 3 - 1 = 43, the
  // RTL at the end of 44; the model reports it when its ACCRD (45) computes the product
  CHECK(bad.mismatch->unit == "mxm");
  CHECK(bad.mismatch->cycle == 43);
  CHECK(bad.mismatch->got == "no write");
}

TEST_CASE("mutation: one bit of every VXM ALU result flipped in the RTL only is reported") {
  const auto mini = load_preset("mini");
  rtl::RtlChip rtl;
  auto prog = assembler::assemble_file((fs::path(LPU_SOURCE_DIR) / "examples" / "vector_add.lpa").string(), mini).program;
  rtl::LockstepOptions o;
  o.flip_alu = true;
  auto bad = lockstep(rtl, prog, mini, o);
  REQUIRE_FALSE(bad.ok());
  MESSAGE(bad.report());
  CHECK(bad.mismatch->cycle == 5);
  CHECK(bad.mismatch->unit == "streams");
  REQUIRE(bad.mismatch->expected.size() == 64);
  REQUIRE(bad.mismatch->got.size() == 64);
  CHECK(bad.mismatch->expected.substr(2) == bad.mismatch->got.substr(2));  // only byte 0 differs
  CHECK(bad.mismatch->expected.substr(0, 2) != bad.mismatch->got.substr(0, 2));
}

TEST_CASE("lockstep: an invalid program fails the same way on both") {
  const auto mini = load_preset("mini");
  rtl::RtlChip rtl;
  // DMAIN with no vector provided: the model and the RTL both stop in cycle 3
  auto prog = assembler::assemble_string(R"(.preset mini
.queue sxm.e.0
    @3 DMAIN 0, s0w
)", "e.lpa", mini).program;
  rtl::LockstepOptions o;
  o.dma_vectors = 0;
  auto r = lockstep(rtl, prog, mini, o);
  CHECK(r.ok());
  CHECK(r.error.find("DMAIN") != std::string::npos);
  MESSAGE(r.report());
  MESSAGE("this process compared " << totals.programs << " programs, " << totals.cycles << " cycles");
}
