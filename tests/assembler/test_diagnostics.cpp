// The assembler reports every independent error of a run, each located, like a compiler; an
// error that only follows from an earlier one is not reported; and it stops at 20.
#include <doctest/doctest.h>

#include <fmt/format.h>

#include <string>
#include <vector>

#include "helpers.hpp"

using namespace lpu;
using namespace lpu::test;

namespace {

// The diagnostics of `src` as "line:col: message" ("" when it assembles).
std::vector<std::string> diagnostics(const std::string& src, bool* truncated = nullptr) {
  try {
    asm_mini(src);
  } catch (const AsmError& e) {
    std::vector<std::string> out;
    for (const auto& d : e.diagnostics()) {
      CHECK(d.loc.file == "t.lpa");
      out.push_back(fmt::format("{}:{}: {}", d.loc.line, d.loc.col, d.message));
    }
    if (truncated) *truncated = e.truncated();
    // what(): one line per diagnostic, as a compiler prints them.
    std::string lines;
    for (const auto& d : e.diagnostics()) lines += (lines.empty() ? "" : "\n") + AsmError::line(d);
    if (e.truncated()) lines += "\nt.lpa: error: too many errors (20 reported), stopping";
    CHECK(std::string(e.what()) == lines);
    return out;
  }
  return {};
}

bool starts(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace

TEST_CASE("several independent parse errors are all reported, in source order, each located") {
  const std::string src =
      ".queue vxm.0\n"
      "  FROB s0e\n"                 // 2: unknown mnemonic
      "  ADD.i8 s0e\n"               // 3: too few operands
      ".const X = 1 / 0\n"           // 4: division by zero
      ".const Y = X + 1\n"           // 5: follows from 4: not reported
      ".queue mem.w.9\n"             // 6: no such queue
      "  READ 0, s0e\n"              // 7: in the queue that failed: not reported
      ".queue mem.w.0\n"
      "  READ 999, s0e\n"            // 9: address out of range
      "  READ 0, s0e $\n"            // 10: a character the lexer refuses
      ".stream A = s99e\n"           // 11: no such stream
      "  READ 0, A\n"                // 12: uses the alias that failed: not reported
      "  READ 1, s0e\n";             // 13: fine
  const auto d = diagnostics(src);
  REQUIRE(d.size() == 7);
  CHECK(starts(d[0], "2:3: unknown mnemonic 'FROB'"));
  CHECK(starts(d[1], "3:"));
  CHECK(d[1].find("ADD expects operands (a, b, dst), got 1") != std::string::npos);
  CHECK(starts(d[2], "4:14: division by zero: 1 / 0"));
  CHECK(starts(d[3], "6:8: no queue 'mem.w.9'"));
  CHECK(starts(d[4], "9:8: address 999 out of range"));
  CHECK(starts(d[5], "10:15: unexpected character '$'"));
  CHECK(starts(d[6], "11:13: stream s99e does not exist"));
}

TEST_CASE("the checker reports every independent error, once per instruction") {
  // Two reads of an empty stream on different queues, a REPEATed READ whose instances 6..9 are
  // out of range (reported once), and an SRAM port conflict; the program is otherwise fine.
  const std::string src =
      ".queue vxm.0\n"
      "  @5 ADD.i8 s0e, s0e, s1e\n"   // 2: nothing on s0e
      ".queue mem.w.0\n"
      "  READ 250, s2e, 1\n"          // 4: instances 6..9 past row 255
      "  REPEAT 9, 1\n"
      ".queue mem.e.1\n"
      "  @3 WRITE s3w, 0\n"           // 7: nothing on s3w
      ".queue mem.e.2\n"
      "  @20 READ 0, s4e\n"
      ".queue mem.e.2.1\n"            // the slice's second queue: two reads, one read port
      "  @20 READ 1, s5e\n";
  const auto d = diagnostics(src);
  REQUIRE(d.size() == 4);
  CHECK(starts(d[0], "2:6: vxm.0: cycle 5: read of an empty stream: s0e"));
  CHECK(starts(d[1], "4:3: mem.w.0: cycle 6 (instance 6 of its REPEAT): address out of range: row 256"));
  CHECK(starts(d[2], "7:6: mem.e.1: cycle 3: read of an empty stream: s3w"));
  CHECK(starts(d[3], "11:7: mem.e.2.1: cycle 20: SRAM port conflict: 2 read accesses to mem.e.2 in cycle 20"));
}

TEST_CASE("scheduling errors: each queue that fails stops, the others go on") {
  const std::string src =
      ".queue vxm.0\n"
      "  CONST.i8 s0e, 1\n"
      "  @0 CONST.i8 s1e, 1\n"        // 3: the queue is busy until 1
      "  y: CONST.i8 s2e, 1\n"        // never scheduled: queue vxm.0 stopped at line 3
      ".queue vxm.1\n"
      "  @issue(nope) CONST.i8 s3e, 1\n"  // 6: unknown label
      ".queue vxm.2\n"
      "  @issue(y) CONST.i8 s4e, 1\n";    // waits on y forever: follows from line 3, not reported
  const auto d = diagnostics(src);
  REQUIRE(d.size() == 2);
  CHECK(starts(d[0], "3:6: queue 'vxm.0' is busy until cycle 1"));
  CHECK(starts(d[1], "6:4: unknown label 'nope'"));
}

TEST_CASE("an error repeated by a .rept body is reported once, and at 20 errors the assembler stops") {
  CHECK(diagnostics(".rept 50\n.const A = 1 / 0\n.endr\n") == std::vector<std::string>{"2:14: division by zero: 1 / 0"});
  // A .rept line the lexer refuses skips its block: neither its body nor its .endr is reported.
  CHECK(diagnostics(".rept 3 $\n.frob\n.endr\n.queue vxm.9\n") ==
        std::vector<std::string>{"1:9: unexpected character '$'", "4:8: no queue 'vxm.9' on preset 'mini' (queues: "
                                 "mem.{w,e}.0..3, vxm.0..3, sxm.{w,e}.0..1, mxm.{w,e}.<plane>.0..2)"});
  std::string src = ".queue vxm.0\n";
  for (int i = 0; i < 30; ++i) src += fmt::format("  FROB{} s0e\n", i);
  bool truncated = false;
  const auto d = diagnostics(src, &truncated);
  CHECK(d.size() == 20);
  CHECK(truncated);
  CHECK(starts(d.back(), "21:3: unknown mnemonic 'FROB19'"));
}

TEST_CASE("fatal errors stop at once: a program for another preset") {
  const auto d = diagnostics(".queue mxm.e.7.0\n.preset lp30\n.queue mxm.e.9.0\n");
  REQUIRE(d.size() == 2);  // the first queue error, then the preset: nothing after it is checked
  CHECK(starts(d[0], "1:8: no queue 'mxm.e.7.0'"));
  CHECK(starts(d[1], "2:9: program is written for preset 'lp30'"));
}

// ---- accumulator readiness (docs/timing.md rule 17) -----------------------------------------

namespace {
// mini: mxm_iw = 4, mxm_mm = 4, vxm_alu = 1, hop_cycles = 1; vxm at position 5, mxm.e.0 at 11.
// IW in 0: weights active from 4. CONST in 0 writes s0e at the VXM in 0 + 1 = 1, at the plane
// (6 hops east) in 7. MM in t_mm = 7 into accumulator 0: readable from 7 + mxm_mm = 11.
std::string accrd_program(const std::string& accrd) {
  return ".queue mxm.e.0.0\n"
         "  IW.i8\n"
         ".queue vxm.0\n"
         "  CONST.i8 s0e, 1\n"
         ".queue mxm.e.0.1\n"
         "mm: @7 MM.i8 s0e, 0\n"
         ".queue mxm.e.0.2\n" +
         accrd;
}
}  // namespace

TEST_CASE("ACCRD boundary: at t_mm + mxm_mm - 1 = 10 rejected, at t_mm + mxm_mm = 11 accepted") {
  const auto e = asm_error(accrd_program("  @10 ACCRD.i32 0, s1w, 0\n"));
  CHECK(e == "t.lpa:8:7: error: mxm.e.0.2: cycle 10: accumulator 0 of mxm.e.0 read before its MM completes: the MM in "
             "cycle 7 (t.lpa:6:8) makes it readable from cycle 11 (7 + mxm_mm 4), 1 cycle later");
  auto r = asm_mini(accrd_program("  @11 ACCRD.i32 0, s1w, 0\n"));
  CHECK(cycle_of(r, "mxm.e.0.2", "ACCRD") == 11);
  CHECK(asm_error(accrd_program("  @ready(mm) ACCRD.i32 0, s1w, 0\n")).empty());
  // Before the MM is issued at all, the accumulator has never been written.
  CHECK(asm_error(accrd_program("  @6 ACCRD.i32 0, s1w, 0\n")) ==
        "t.lpa:8:6: error: mxm.e.0.2: cycle 6: accumulator 0 of mxm.e.0 read before any MM/MMA wrote it");
}

TEST_CASE("ACCRD of an accumulator never written, in the MM's cycle, and after a second MM") {
  CHECK(asm_error(accrd_program("  @20 ACCRD.i32 1, s1w, 0\n")) ==
        "t.lpa:8:7: error: mxm.e.0.2: cycle 20: accumulator 1 of mxm.e.0 read before any MM/MMA wrote it");
  // In the MM's own cycle: which comes first would depend on the queues' numbering.
  CHECK(asm_error(accrd_program("  @7 ACCRD.i32 0, s1w, 0\n")).find(
            "cycle 7: accumulator 0 of mxm.e.0 read in the cycle the MM in cycle 7 (t.lpa:6:8) writes it") !=
        std::string::npos);
  // A second MM into the accumulator in 20 (x from a CONST in 13) makes it unreadable until 24,
  // although the first product was readable from 11.
  const std::string two = ".queue vxm.1\n  @13 CONST.i8 s0e, 2\n.queue mxm.e.0.1\n  @20 MM.i8 s0e, 0\n.queue mxm.e.0.2\n";
  CHECK(asm_error(accrd_program("  @19 ACCRD.i32 0, s1w, 0\n" + two)).empty());
  CHECK(asm_error(accrd_program("  @23 ACCRD.i32 0, s1w, 0\n" + two))
            .find("cycle 23: accumulator 0 of mxm.e.0 read before its MM completes: the MM in cycle 20") != std::string::npos);
  CHECK(asm_error(accrd_program("  @24 ACCRD.i32 0, s1w, 0\n" + two)).empty());
  // A REPEATed ACCRD steps its accumulator: instance 1 reads accumulator 1, never written;
  // reported once for the instruction, at its first failing instance.
  CHECK(asm_error(accrd_program("  @11 ACCRD.i32 0, s1w, 0\n  REPEAT 3, 1\n")) ==
        "t.lpa:8:7: error: mxm.e.0.2: cycle 12 (instance 1 of its REPEAT): accumulator 1 of mxm.e.0 read before "
        "any MM/MMA wrote it");
}
