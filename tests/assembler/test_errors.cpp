// Every class of assembly error is rejected with file:line:column and a clear message.
#include <doctest/doctest.h>

#include <fmt/format.h>

#include "helpers.hpp"

using namespace lpu;
using namespace lpu::test;

namespace {
// Checks that `src` fails at line:col with a message containing `what`.
void expect_error(const std::string& src, int line, int col, const std::string& what) {
  auto e = asm_error(src);
  CAPTURE(src);
  CAPTURE(e);
  REQUIRE(!e.empty());
  CHECK(e.rfind(fmt::format("t.lpa:{}:{}: error: ", line, col), 0) == 0);
  CHECK(e.find(what) != std::string::npos);
}
}  // namespace

TEST_CASE("unknown mnemonics and directives") {
  expect_error(".queue vxm.0\n  FROB s0e\n", 2, 3, "unknown mnemonic 'FROB'");
  expect_error(".frob 3\n", 1, 1, "unknown directive '.frob'");
  expect_error("READ 0, s0e\n", 1, 1, "instruction outside a .queue section");
}

TEST_CASE("bad operands: kind, count, syntax") {
  expect_error(".queue mem.w.0\nREAD 0, 5\n", 2, 9, "must be a stream");
  expect_error(".queue vxm.0\nADD.i8 s0e\n", 2, 11, "ADD expects operands (a, b, dst), got 1");
  expect_error(".queue vxm.0\nMOV s0e, s1e, s2e\n", 2, 15, "MOV takes 2 operands");
  expect_error(".queue vxm.0\nSHL.i8 s0e, s1e, r2\n", 2, 18, "unknown name 'r2'");
  expect_error(".queue vxm.0\nCONST.i8 s0e, 1.5\n", 2, 15, "needs a float type");
  expect_error(".queue vxm.0\nADD.i8 s0e, s0e, s1e $\n", 2, 22, "unexpected character '$'");
  expect_error(".queue vxm.0\nNOP 12abc\n", 2, 5, "malformed number");
}

TEST_CASE("out-of-range addresses, slices, streams and fields") {
  expect_error(".queue mem.w.0\nREAD 256, s0e\n", 2, 6, "address 256 out of range");      // mini: 256 rows
  expect_error(".queue mem.w.4\n", 1, 8, "no queue 'mem.w.4'");                            // 4 slices per side
  expect_error(".queue mem.w.0\nREAD 0, s8e\n", 2, 9, "stream s8e does not exist");       // 8 per direction
  expect_error(".queue mem.w.0\nREAD 0, s0e, 5000\n", 2, 14, "out of range -2048..2047");
  expect_error(".reg r1 = 250\n.queue mem.w.0\nREAD [r1+10], s0e\n", 3, 1, "address out of range: row 260");
  expect_error(".queue mem.w.0\nREAD 250, s0e, 1\nREPEAT 9, 1\n", 2, 1, "instance 6 of its REPEAT");
  // GATHER/SCATTER: base + k of each REPEAT instance (the per-superlane index is only known at run
  // time). Instance 4 of GATHER 252 has base row 256; instance 3 of SCATTER [r1+3] (r1 = 250) 256.
  const std::string idx = ".queue mem.w.1\n@0 READ 0, s0e, 0\nREPEAT 4, 1\n";
  expect_error(idx + ".queue mem.w.0\n@3 GATHER 252, s0e, s1e\nREPEAT 4, 1\n", 5, 4,
               "mem.w.0: cycle 7 (instance 4 of its REPEAT): address out of range: row 256");
  CHECK(asm_error(idx + ".queue mem.w.0\n@3 GATHER 251, s0e, s1e\nREPEAT 4, 1\n").empty());
  expect_error(".reg r1 = 250\n" + idx + ".queue mem.w.0\n@3 SCATTER s0e, s0e, [r1+3]\nREPEAT 3, 1\n", 6, 4,
               "mem.w.0: cycle 6 (instance 3 of its REPEAT): address out of range: row 256");
  expect_error(".queue sxm.w.0\nSEND 4, s0e\n", 2, 1, "link 4 out of range 0..3");
  expect_error(".queue vxm.0\nCONST.i8 s0e, 1\nSHL.i8 s0e, s1e, 8\n", 3, 1, "shift 8 out of range 0..7");
}

TEST_CASE("two producers on one stream register in one cycle") {
  // Both CONSTs issue in cycle 0 at the VXM (position 5) and write s0e in cycle 1.
  expect_error(".queue vxm.0\nCONST.i8 s0e, 1\n.queue vxm.1\nCONST.i8 s0e, 2\n", 4, 1,
               "stream conflict: s0e at position 5 (vxm) in cycle 1 is also written by the instruction at t.lpa:2:1");
}

TEST_CASE("a read of a stream position that holds no value") {
  expect_error(".queue vxm.0\nMOV s0e, s1e\n", 2, 1, "read of an empty stream: s0e at position 5 (vxm) holds no value in cycle 0");
  // A westward value never reaches a slice east of its producer.
  expect_error(".queue mem.w.0\nREAD 0, s0w\n.queue vxm.0\n@5 MOV s0w, s1e\n", 4, 4, "nothing upstream ever writes s0w");
}

TEST_CASE("two instructions in one queue in one cycle") {
  expect_error(".queue vxm.0\n@4 CONST.i8 s0e, 1\n@4 CONST.i8 s1e, 1\n", 3, 4,
               "queue 'vxm.0' is busy until cycle 5: cannot issue CONST at cycle 4");
  // TRANS occupies its queue for 16 cycles: the next instruction may not issue in cycle 1.
  expect_error(".queue mem.w.0\nREAD 0, s0e\nREPEAT 15, 1\n.queue sxm.w.0\n@0 TRANS s0w, s1e\n@1 DMAIN 0, s2e\n",
               6, 4, "queue 'sxm.w.0' is busy until cycle 16");
}

TEST_CASE("more SRAM port accesses than a slice has in a cycle") {
  // mem.w.0 and mem.w.0.1 drive the same slice, which has one read port.
  expect_error(".queue mem.w.0\nREAD 0, s0e\n.queue mem.w.0.1\nREAD 1, s1e\n", 4, 1,
               "SRAM port conflict: 2 read accesses to mem.w.0 in cycle 0, the slice has 1 read port");
  // A read and a write in the same cycle use different ports: fine.
  CHECK(asm_error(".queue vxm.0\nCONST.i8 s0w, 1\n.queue mem.w.0\n@2 WRITE s0w, 3\n.queue mem.w.0.1\n@2 READ 1, s1e\n") == "");
}

TEST_CASE("type mismatches") {
  expect_error(".queue vxm.0\nEXP.i8 s0e, s1e\n", 2, 1, "type mismatch: EXP does not take type .i8");
  expect_error(".queue vxm.0\nADD s0e, s0e, s1e\n", 2, 1, "ADD needs one type suffix");
  expect_error(".queue vxm.0\nMOV.i8 s0e, s1e\n", 2, 1, "MOV takes no type suffix");
  expect_error(".queue vxm.0\nREAD 0, s0e\n", 2, 1, "READ is a mem instruction and cannot go in vxm queue 'vxm.0'");
  // Weights installed as int8, multiplied as fp16. IW in cycle 0 is ready in cycle 4 (mxm_iw).
  expect_error(".queue mxm.e.0.0\nIW.i8\n.queue vxm.0\nCONST.f16 s0e, 1.0\n.queue mxm.e.0.1\n@7 MM.f16 s0e, 0\n", 6, 4,
               "type mismatch: the installed weights are .i8, not .f16");
  // MM before the install completes: the CONST value (position 5, cycle 1) reaches the plane
  // (position 11) in cycle 7; an IW in cycle 5 completes in 5 + 4 = 9.
  expect_error(".queue mxm.e.0.0\n@5 IW.i8\n.queue vxm.0\nCONST.i8 s0e, 1\n.queue mxm.e.0.1\n@7 MM.i8 s0e, 0\n", 6, 4,
               "no weights installed in mxm.e.0 yet (the first IW completes in cycle 9)");
}

TEST_CASE("an LW in the cycle of an IW loads the staging buffer for the next install (rule 16)") {
  // mini: a CONST in t on vxm.0 (position 5) writes in t + 1 and reaches the plane mxm.e.0
  // (position 11) in t + 7. LW.i8 of ones in 7; in 8 the IW.i8 installs them (A, active from
  // 8 + mxm_iw = 12) while an LW.f16 of 3.0 in the same cycle stages the rows of the next
  // install, the IW.f16 in 9 (B, active from 13). MM.i8 in 12 uses A, MM.f16 in 13 uses B. The
  // assembler used to check the LW.f16 against the .i8 rows being installed and reject this.
  // The queue order of the LW and the IW in cycle 8 does not matter (both orders assemble).
  auto prog = [](const char* lwq, const char* mmq, const char* mm12) {
    return fmt::format(".queue vxm.0\n@0 CONST.i8 s0e, 1\n@1 CONST.f16 s1e, 3.0\n@5 CONST.i8 s2e, 1\n"
                       "@6 CONST.f16 s3e, 1.0\n.queue {}\n@7 LW.i8 s0e, 0\n@8 LW.f16 s1e, 0\n"
                       ".queue mxm.e.0.1\n@8 IW.i8\n@9 IW.f16\n.queue {}\n@12 {} s2e, 0\n@13 MM.f16 s3e, 1\n",
                       lwq, mmq, mm12);
  };
  CHECK(asm_error(prog("mxm.e.0.0", "mxm.e.0.2", "MM.i8")) == "");
  CHECK(asm_error(prog("mxm.e.0.2", "mxm.e.0.0", "MM.i8")) == "");
  // The MM in 12 still sees A (.i8), not the rows the LW.f16 staged.
  expect_error(prog("mxm.e.0.0", "mxm.e.0.2", "MM.f16"), 13, 5, "type mismatch: the installed weights are .i8, not .f16");

  // Still rejected: the LW in 8 staged .f16 rows for the next install, an LW.i8 in 9 adds to them.
  expect_error(".queue vxm.0\n@0 CONST.i8 s0e, 1\n@1 CONST.f16 s1e, 3.0\n@2 CONST.i8 s2e, 1\n"
               ".queue mxm.e.0.0\n@7 LW.i8 s0e, 0\n@8 LW.f16 s1e, 0\n@9 LW.i8 s2e, 1\n.queue mxm.e.0.1\n@8 IW.i8\n",
               8, 4, "type mismatch: LW.i8 into a staging buffer holding .f16 rows");
  // Two LWs of different types in the IW's cycle (two queues): both are for the next install.
  expect_error(".queue vxm.0\n@1 CONST.f16 s1e, 3.0\n.queue vxm.1\n@1 CONST.i8 s2e, 1\n"
               ".queue mxm.e.0.0\n@8 LW.f16 s1e, 0\n.queue mxm.e.0.1\n@8 IW.i8\n.queue mxm.e.0.2\n@8 LW.i8 s2e, 1\n",
               10, 4, "type mismatch: LW.i8 into a staging buffer holding .f16 rows");
  // The IW in 8 installs the .f16 rows staged in 7, whatever the LW.i8 of its own cycle loads.
  expect_error(".queue vxm.0\n@0 CONST.f16 s0e, 3.0\n@1 CONST.i8 s1e, 1\n"
               ".queue mxm.e.0.0\n@7 LW.f16 s0e, 0\n@8 LW.i8 s1e, 0\n.queue mxm.e.0.1\n@8 IW.i8\n",
               8, 4, "type mismatch: IW.i8 installs .f16 rows");
  // The IW in 9 installs what the LW.f16 of cycle 8 staged.
  expect_error(".queue vxm.0\n@0 CONST.i8 s0e, 1\n@1 CONST.f16 s1e, 3.0\n"
               ".queue mxm.e.0.0\n@7 LW.i8 s0e, 0\n@8 LW.f16 s1e, 0\n.queue mxm.e.0.1\n@8 IW.i8\n@9 IW.i8\n",
               9, 4, "type mismatch: IW.i8 installs .f16 rows");
  // Without an IW in between, an LW of another type into staged rows is rejected.
  expect_error(".queue vxm.0\n@0 CONST.i8 s0e, 1\n@1 CONST.f16 s1e, 3.0\n"
               ".queue mxm.e.0.0\n@7 LW.i8 s0e, 0\n@8 LW.f16 s1e, 0\n",
               6, 4, "type mismatch: LW.f16 into a staging buffer holding .i8 rows");
}

TEST_CASE("labels: unknown, duplicate, circular") {
  expect_error(".queue vxm.0\n@ready(nope) CONST.i8 s0e, 1\n", 2, 2, "unknown label 'nope'");
  expect_error(".queue vxm.0\na: CONST.i8 s0e, 1\n.queue vxm.1\na: CONST.i8 s1e, 1\n", 4, 4, "label 'a' is already defined at t.lpa:2:4");
  expect_error(".queue vxm.0\na: @issue(b) CONST.i8 s0e, 1\n.queue vxm.1\nb: @issue(a) CONST.i8 s1e, 1\n", 2, 14,
               "circular dependency");
}

TEST_CASE("data directives") {
  expect_error(".data x i8[2] mem.w.0 @ 0 = [1, 2, 3]\n", 1, 36, "more values than the 2 elements");
  expect_error(".data x i8[2] mem.w.0 @ 0 = [1, 300]\n", 1, 33, "value 300 does not fit i8");
  expect_error(".data x i8[2] mem.w.0 @ 0 = [1, 2]\n.data y i8[2] mem.w.0 @ 0 = [1, 2]\n", 2, 7, "overlaps x");
  expect_error(".data x i8[2] mem.w.9 @ 0 = [1, 2]\n", 1, 15, "'mem.w.9' is not a MEM slice");
  expect_error(".data x i8[2] mem.w.0 @ 0 = \"missing.npy\"\n", 1, 29, "cannot find file 'missing.npy'");
  expect_error(".preset tsp1\n", 1, 9, "written for preset 'tsp1'");
}

TEST_CASE("ICU instructions in context") {
  expect_error(".queue vxm.0\nREPEAT 3, 1\n", 2, 1, "REPEAT must follow the (non-ICU, non-DESKEW) instruction it repeats");
  expect_error(".queue vxm.0\nSYNC\n", 2, 1, "never released");
  expect_error(".queue vxm.0\nHALT\nCONST.i8 s0e, 1\n", 3, 1, "instruction after HALT");
  expect_error(".queue vxm.0\nCONFIG r0, 1\n", 2, 8, "CONFIG cannot write r0");
  expect_error(".queue sxm.w.0\nTRANS s0e, s1e\nREPEAT 2, 3\n", 3, 1, "REPEAT delay 3 is shorter than the 16-cycle occupancy");
}
