// The weight bus: LWM (docs/timing.md rule 15a) through the assembler's checks, the functional
// model and the timing-only model. Preset mini unless said otherwise:
//   positions 0 sxm.w | 1 mem.w.3 | 2 mem.w.2 | 3 mem.w.1 | 4 mem.w.0 | 5 vxm | 6 mem.e.0 |
//   7 mem.e.1 | 8 mem.e.2 | 9 mem.e.3 | 10 sxm.e | 11 mxm.e.0 (the only plane); hop 1;
//   latencies: mem_lwm 3, vxm_alu 1, mxm_iw 4, mxm_mm 4, mxm_rd 1, mem_write 1;
//   mxm.install_rows_per_cycle 4; V = 32 bytes, so an i8 plane has n = 32 rows.
#include <doctest/doctest.h>

#include <fmt/format.h>

#include "helpers.hpp"
#include "lpu/common/errors.hpp"
#include "lpu/isa/isa.hpp"

using namespace lpu;
using namespace lpu::test;

namespace {

// W[r][c] = (r mod 11) - 5 + (1 if c mod 3 = 0), an i8 32 x 32 matrix, so that y = W x with x =
// ones is 32 ((r mod 11) - 5) + 11, never 0; row r is stored in mem.e.(r mod 4) at row r / 4 (the
// `.data` layout over a slice range), the layout LWM streams with rstep 4.
int w_at(int r, int c) { return r % 11 - 5 + (c % 3 == 0 ? 1 : 0); }
std::string w_values() {
  std::string s = "[";
  for (int r = 0; r < 32; ++r)
    for (int c = 0; c < 32; ++c) s += fmt::format("{}{}", r || c ? ", " : "", w_at(r, c));
  return s + "]";
}

// y = W x with x = ones: the four east slices stream W with one LWM each (REPEAT 7, 1): slice j
// reads rows 0..7 in cycles 0..7 into staging rows j, j + 4, ..., j + 28 (instance k: row
// (j + 4k) mod 32), landing in 3..10 (mem_lwm 3), four rows per cycle = the plane's
// install_rows_per_cycle. IW in `iw` (11: every row has landed before it). The weights are active
// from iw + 4; x = CONST 1 from vxm.0 (position 5) in iw - 2 is on s0e at 5 in iw - 1 and at the
// plane (11) in iw + 5 = the MM's cycle (>= iw + mxm_iw). ACCRD parts 0..3 in MM + 4 .. + 7, on
// s1w at the plane one cycle later, at mem.e.3 (9) two hops after: WRITE rows 16..19.
std::string matvec(int iw, bool transpose = false) {
  std::string src = fmt::format(".preset mini\n.data W i8[32, 32] mem.e.0..3 @ 0 = {}\n.symbol y i32[32] mem.e.3 @ 16\n",
                                w_values());
  for (int j = 0; j < 4; ++j) src += fmt::format(".queue mem.e.{}\n    @0 LWM.i8 0, 0, {}, 4, 32\n    REPEAT 7, 1\n", j, j);
  const int mm = iw + 5;
  src += fmt::format(".queue mxm.e.0.0\n    @{} IW.i8{}\n", iw, transpose ? " 1" : "");
  src += fmt::format(".queue vxm.0\n    @{} CONST.i8 s0e, 1\n", iw - 2);
  src += fmt::format(".queue mxm.e.0.1\n    @{} MM.i8 s0e, 0\n", mm);
  src += ".queue mxm.e.0.2\n";  // ACCRD steps its accumulator under REPEAT: one per part
  for (int part = 0; part < 4; ++part) src += fmt::format("    @{} ACCRD.i32 0, s1w, {}\n", mm + 4 + part, part);
  src += fmt::format(".queue mem.e.3.1\n    @{} WRITE s1w, 16, 1\n    REPEAT 3, 1\n", mm + 4 + 1 + 2);
  return src;
}

std::string asm_error(const std::string& src, const std::string& preset = "mini", const std::vector<std::string>& set = {}) {
  auto p = load_preset(preset, set);
  try {
    assembler::assemble_string(src, "t.lpa", p);
  } catch (const AsmError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("LWM: four slices fill a plane at four rows per cycle and y = W x is exact") {
  auto r = run_text(matvec(11), "mini", model::Mode::Functional, {"y"});
  auto y = as<std::int32_t>(r.out["y"]);
  for (int i = 0; i < 32; ++i) {
    int want = 0;
    for (int c = 0; c < 32; ++c) want += w_at(i, c);
    CHECK(y[std::size_t(i)] == want);
  }
  // 32 rows of 32 bytes over the weight bus, counted as SRAM reads too.
  CHECK(r.stats.weight_bytes_installed == 32 * 32);
  CHECK(r.stats.sram_bytes_read == 32 * 32);
  // The last WRITE issues in 11 + 5 + 4 + 3 + 3 = 26 and lands in 27: cycles = 27 + 1 + (2 - 1) x 1.
  CHECK(r.stats.cycles == 29);
}

TEST_CASE("LWM: an IW in the landing cycle of the last rows does not install them (rule 16 boundary)") {
  // IW in 10: rows 28..31 land in 10 (instance 7 issued in 7, + mem_lwm 3) and belong to the next
  // install, so the active weights have zero rows 28..31 (staging starts at zero): y[28..31] = 0.
  // Everything else as in the previous test; IW in 11 includes them.
  auto y10 = as<std::int32_t>(run_text(matvec(10), "mini", model::Mode::Functional, {"y"}).out["y"]);
  auto y11 = as<std::int32_t>(run_text(matvec(11), "mini", model::Mode::Functional, {"y"}).out["y"]);
  for (int i = 0; i < 28; ++i) CHECK(y10[std::size_t(i)] == y11[std::size_t(i)]);
  for (int i = 28; i < 32; ++i) {
    CHECK(y10[std::size_t(i)] == 0);
    CHECK(y11[std::size_t(i)] != 0);
  }
}

TEST_CASE("IW with tr = 1 installs the staging buffer transposed") {
  // W^T x with x = ones: y[r] = sum over c of W[c][r] = sum of ((c mod 11) - 5) over c = 0..31
  // (155 - 160 = -5) + 32 when r mod 3 = 0. Same timing as IW without the flag.
  auto r = run_text(matvec(11, true), "mini", model::Mode::Functional, {"y"});
  auto y = as<std::int32_t>(r.out["y"]);
  for (int i = 0; i < 32; ++i) CHECK(y[std::size_t(i)] == -5 + (i % 3 == 0 ? 32 : 0));
  CHECK(r.stats.cycles == 29);
  // The disassembler leaves a zero flag out and prints a one.
  auto p = load_preset("mini");
  auto a = assembler::assemble_string(matvec(11, true), "t.lpa", p);
  CHECK(assembler::disassemble(a.program, p).find("IW.i8 1") != std::string::npos);
  auto b = assembler::assemble_string(matvec(11, false), "t.lpa", p);
  const auto text = assembler::disassemble(b.program, p);
  CHECK(text.find("IW.i8\n") != std::string::npos);
}

TEST_CASE("LWM: timing-only mode gives the functional run's cycles and statistics") {
  auto f = run_text(matvec(11), "mini", model::Mode::Functional);
  auto t = run_text(matvec(11), "mini", model::Mode::TimingOnly);
  CHECK(t.stats.cycles == f.stats.cycles);
  CHECK(t.stats.weight_bytes_installed == f.stats.weight_bytes_installed);
  CHECK(t.stats.sram_bytes_read == f.stats.sram_bytes_read);
  CHECK(t.stats.units[std::size_t(model::UnitKind::Mem)].instructions ==
        f.stats.units[std::size_t(model::UnitKind::Mem)].instructions);
}

TEST_CASE("LWM: the assembler checks the weight bus, the plane, the rows and the read port") {
  const std::string hdr = ".preset mini\n";
  // Four slices land four rows per cycle: one more than a plane with install_rows_per_cycle = 3 takes.
  CHECK(asm_error(matvec(11), "mini", {"mxm.install_rows_per_cycle=3"})
            .find("weight bus conflict: 4 LWM rows land in mxm.e.0 in cycle 3, a plane takes 3 per cycle") !=
        std::string::npos);
  // Two slices land in staging row 5 in the same cycle (both issue in 0, land in 3).
  CHECK(asm_error(hdr + ".queue mem.e.0\n @0 LWM.i8 0, 0, 5, 1, 32\n.queue mem.e.1\n @0 LWM.i8 0, 0, 5, 1, 32\n")
            .find("staging row 5 of mxm.e.0 receives two rows in cycle 3") != std::string::npos);
  // ... nor an LWM and an LW: CONST 7 (vxm.0, position 5) in 2 is at the plane (11) in 9, the LW
  // of row 2 issues in 9; the LWM from mem.e.0 issued in 6 lands in 6 + 3 = 9 on row 2 too.
  CHECK(asm_error(hdr + ".queue vxm.0\n @2 CONST.i8 s0e, 7\n.queue mxm.e.0.0\n @9 LW.i8 s0e, 2\n.queue mem.e.0\n"
                        " @6 LWM.i8 0, 0, 2, 1, 32\n")
            .find("staging row 2 of mxm.e.0 receives two rows in cycle 9") != std::string::npos);
  // The west hemisphere of mini has no plane.
  CHECK(asm_error(hdr + ".queue mem.w.0\n @0 LWM.i8 0, 0, 0, 1, 32\n")
            .find("LWM to plane 0: the west hemisphere has 0 MXM planes") != std::string::npos);
  // Staging rows of an i8 plane: 0..31; of a bf16 plane: 0..15; the row step at most the wrap,
  // the wrap at most the plane's rows.
  CHECK(asm_error(hdr + ".queue mem.e.0\n @0 LWM.i8 0, 0, 32, 1, 32\n").find("weight row 32 out of range") !=
        std::string::npos);
  CHECK(asm_error(hdr + ".queue mem.e.0\n @0 LWM.bf16 0, 0, 16, 1, 16\n").find("weight row 16 out of range") !=
        std::string::npos);
  CHECK(asm_error(hdr + ".queue mem.e.0\n @0 LWM.i8 0, 0, 0, 33, 32\n").find("weight row step 33 larger than the wrap 32") !=
        std::string::npos);
  CHECK(asm_error(hdr + ".queue mem.e.0\n @0 LWM.bf16 0, 0, 0, 1, 32\n").find("wrap 32 out of range 1..16") !=
        std::string::npos);
  // SRAM rows of mini: 0..255, also for REPEAT instances (row + k).
  CHECK(asm_error(hdr + ".queue mem.e.0\n @0 LWM.i8 250, 0, 0, 1, 32\n REPEAT 6, 1\n").find("address out of range: row 256") !=
        std::string::npos);
  // LWM takes the slice's read port: a READ of the same slice in the same cycle conflicts.
  CHECK(asm_error(hdr + ".queue mem.e.0\n @0 LWM.i8 0, 0, 0, 1, 32\n.queue mem.e.0.1\n @0 READ 1, s0e\n")
            .find("SRAM port conflict") != std::string::npos);
  // An LWM row of another type than the staging buffer holds.
  CHECK(asm_error(hdr + ".queue mem.e.0\n @0 LWM.i8 0, 0, 0, 1, 32\n.queue mem.e.1\n @0 LWM.bf16 0, 0, 1, 1, 16\n")
            .find("type mismatch") != std::string::npos);
  // The valid program assembles.
  CHECK(asm_error(matvec(11)).empty());
}

TEST_CASE("LWM: REPEAT instance k loads staging row (row + k x rstep) mod wrap") {
  // mem.e.2 loads rows 0..63 into staging rows (2 + 24k) mod 32 = 2, 26, 18, 10, 2, ...: instance
  // 4 returns to row 2. Through the assembler's expansion and REPEAT compression the object
  // holds one LWM and one REPEAT word.
  auto p = load_preset("mini");
  auto r = assembler::assemble_string(".preset mini\n.queue mem.e.2\n @0 LWM.i8 0, 0, 2, 24, 32\n REPEAT 63, 1\n", "t.lpa", p);
  REQUIRE(r.program.queues.size() == 1);
  CHECK(r.program.queues[0].words.size() == 2);
  auto base = isa::decode(r.program.queues[0].words[0]);
  CHECK(isa::stepped(base, 1).v[2] == 26);
  CHECK(isa::stepped(base, 3).v[2] == 10);
  CHECK(isa::stepped(base, 4).v[2] == 2);
  CHECK(isa::stepped(base, 4).v[0] == 4);  // the SRAM row steps by one
  // A wrap of 16 (e.g. a slab of 16 rows): (2 + 24k) mod 16.
  base.v[4] = 16;
  CHECK(isa::stepped(base, 1).v[2] == (2 + 24) % 16);
}

TEST_CASE("tsp1: the weight bus installs all four planes (409,600 int8 weights) in 20 cycles") {
  // TSP v1 as published installs 409,600 weights in fewer than 40 cycles (docs/design.md, "The
  // weight path"). tsp1: 4 planes of 320 x 320 (2 per hemisphere), install_rows_per_cycle 16,
  // 44 MEM slices per hemisphere, mem_lwm 12, mxm_iw 20. Plane p of hemisphere h is fed by the
  // 16 slices mem.h.(16p) .. mem.h.(16p + 15), slice j holding rows j, j + 16, ... (20 rows): each
  // issues LWM with REPEAT 19, 1 in cycles 0..19, so each plane takes 16 rows in every cycle
  // from 12 to 31: 4 x 320 rows x 320 B = 409,600 weights land in the 20 cycles 12..31. The IWs
  // in 32 install them; they are usable from 32 + 20 = 52.
  std::string src = ".preset tsp1\n";
  for (char h : {'w', 'e'})
    for (int pl = 0; pl < 2; ++pl) {
      for (int j = 0; j < 16; ++j)
        src += fmt::format(".queue mem.{}.{}\n @0 LWM.i8 0, {}, {}, 16, 320\n REPEAT 19, 1\n", h, 16 * pl + j, pl, j);
      src += fmt::format(".queue mxm.{}.{}.0\n @32 IW.i8\n", h, pl);
    }
  auto t = run_text(src, "tsp1", model::Mode::TimingOnly);
  CHECK(t.stats.weight_bytes_installed == 409'600);
  // The last rows land in 19 + 12 = 31; the last event is the IWs' installs becoming active
  // (32 + 20 = 52): cycles = 52 + 1 + (20 superlanes - 1) x 1 stagger = 72.
  CHECK(t.stats.cycles == 72);
  // One cycle fewer between the first LWM and the IW (IW in 31) is refused by nothing: the
  // assembler accepts it, but those IWs would install 15/16 of the rows; the 20 landing cycles
  // are the install time: 20 < 40.
  const int landing_cycles = 409'600 / (4 * 16 * 320);
  CHECK(landing_cycles == 20);
}

TEST_CASE("a staging row past the plane in an object that bypassed the assembler is refused at load, not written") {
  // The assembler refuses rows >= n (32 for i8 on mini); an object edited afterwards reaches the
  // model with row 1000 (found by the RTL helper under ASan: a write past the staging buffer).
  // The object check both loaders use (obj::check_program) refuses it, located.
  auto p = load_preset("mini");
  for (const char* src : {".preset mini\n.queue mem.e.0\n @2 LWM.i8 0, 0, 0, 1, 32\n",
                          ".preset mini\n.queue vxm.0\n @2 CONST.i8 s0e, 7\n.queue mxm.e.0.0\n @9 LW.i8 s0e, 0\n"}) {
    auto prog = assembler::assemble_string(src, "t.lpa", p).program;
    bool edited = false;
    for (auto& q : prog.queues)
      for (auto& w : q.words) {
        auto in = isa::decode(w);
        if (in.op == isa::Op::Lwm) in.v[2] = 1000, edited = true;
        if (in.op == isa::Op::Lw) in.v[1] = 1000, edited = true;
        w = isa::encode(in);
      }
    REQUIRE(edited);
    model::Chip chip(p, model::Mode::Functional);
    CHECK_THROWS_WITH(chip.load(prog), doctest::Contains("weight row 1000 beyond the 32 rows of .i8 weights"));
  }
}
