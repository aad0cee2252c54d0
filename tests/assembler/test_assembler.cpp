// Scheduling: issue cycles derived from the latency table and stream hops (preset mini).
//
// mini floorplan (positions): 0 sxm.w | 1 mem.w.3 | 2 mem.w.2 | 3 mem.w.1 | 4 mem.w.0 | 5 vxm |
//   6 mem.e.0 | 7 mem.e.1 | 8 mem.e.2 | 9 mem.e.3 | 10 sxm.e | 11 mxm.e.0.  hop = 1 cycle.
// mini latencies: mem_read 2, mem_write 1, vxm_alu 1, vxm_mul 2, mxm_iw 4, mxm_mm 4, mxm_rd 1.
#include <doctest/doctest.h>

#include "helpers.hpp"
#include "lpu/common/types.hpp"
#include "lpu/isa/isa.hpp"

using namespace lpu;
using namespace lpu::test;

TEST_CASE("ready() places a consumer when the producer's value reaches it") {
  auto r = asm_mini(R"(
.queue mem.w.0
rd:  READ 0, s0e            ; issue 0, value at position 4 in cycle 0 + 2 = 2
.queue vxm.0
add: @ready(rd) ADD.i8 s0e, s0e, s1e   ; position 5: 2 + 1 hop = 3
.queue mem.e.1
     @ready(add) WRITE s1e, 5          ; add result at position 5 in 3 + 1 = 4; position 7: 4 + 2 = 6
)");
  CHECK(cycle_of(r, "mem.w.0", "READ") == 0);
  CHECK(cycle_of(r, "vxm.0", "ADD") == 3);
  CHECK(cycle_of(r, "mem.e.1", "WRITE") == 6);
  CHECK(r.last_issue_cycle == 6);
}

TEST_CASE("boundary: a consumer one cycle early reads an empty stream, on time it does not") {
  // The READ value reaches the VXM (position 5) in cycle 3 (derivation above).
  std::string base = ".queue mem.w.0\nREAD 0, s0e\n.queue vxm.0\n@{} ADD.i8 s0e, s0e, s1e\n";
  auto at = [&](int c) {
    std::string s = base;
    s.replace(s.find("{}"), 2, std::to_string(c));
    return s;
  };
  CHECK(asm_error(at(2)).find("read of an empty stream") != std::string::npos);
  CHECK(asm_error(at(3)) == "");
  CHECK(asm_error(at(4)).find("read of an empty stream") != std::string::npos);
}

TEST_CASE("NOP gaps and REPEAT are emitted for the schedule, and instruction order is kept") {
  auto r = asm_mini(R"(
.queue mem.w.0
    READ 0, s0e, 1
    REPEAT 3, 1          ; 4 reads in cycles 0..3, rows 0..3
    @10 READ 7, s1e      ; gap: NOP 6 (the queue is free from cycle 4)
)");
  REQUIRE(r.program.queues.size() == 1);
  const auto& w = r.program.queues[0].words;
  REQUIRE(w.size() == 4);
  CHECK(isa::decode(w[0]).op == isa::Op::Read);
  CHECK(isa::decode(w[1]).op == isa::Op::Repeat);
  CHECK(isa::decode(w[1]).v[0] == 3);
  CHECK(isa::decode(w[2]).op == isa::Op::Nop);
  CHECK(isa::decode(w[2]).v[0] == 6);  // 10 - (0 + 3*1 + 1)
  CHECK(isa::decode(w[3]).op == isa::Op::Read);
}

TEST_CASE("equally spaced instances written out one by one fold into REPEAT") {
  auto r = asm_mini(R"(
.queue mem.w.0
.rept i = 0, 8
    @2*i READ i, s0e, 1    ; rows 0..7, every 2 cycles
.endr
)");
  const auto& w = r.program.queues[0].words;
  REQUIRE(w.size() == 2);
  auto rep = isa::decode(w[1]);
  CHECK(rep.op == isa::Op::Repeat);
  CHECK(rep.v[0] == 7);
  CHECK(rep.v[1] == 2);
}

TEST_CASE("GATHER instances step their base row: rows base..base+3 fold into REPEAT, one row does not") {
  // The idx row READ in 0..3 (stride 0) is on s0e at mem.w.0 (4) in 3..6.
  const std::string idx = ".queue mem.w.1\n    @0 READ 240, s0e, 0\n    REPEAT 3, 1\n";
  auto r = asm_mini(idx + R"(
.queue mem.w.0
.rept i = 0, 4
    @3+i GATHER 10+i, s0e, s1e   ; base rows 10..13: GATHER 10 + REPEAT 3, 1
.endr
)");
  auto words = [](const assembler::Result& res, const std::string& q) {
    for (const auto& c : res.program.queues)
      if (c.name == q) return c.words;
    FAIL("no queue " << q);
    return std::vector<std::uint64_t>{};
  };
  const auto w = words(r, "mem.w.0");
  REQUIRE(w.size() == 3);  // NOP 3, GATHER, REPEAT
  CHECK(isa::decode(w[1]).op == isa::Op::Gather);
  CHECK(isa::decode(w[1]).v[0] == 10);
  CHECK(isa::decode(w[2]).op == isa::Op::Repeat);
  CHECK(isa::decode(w[2]).v[0] == 3);
  CHECK(isa::decode(w[2]).v[1] == 1);
  // Four GATHERs of one base row are not instances of one REPEAT (it would step the row).
  auto same = asm_mini(idx + R"(
.queue mem.w.0
.rept i = 0, 4
    @3+i GATHER 10, s0e, s1e
.endr
)");
  const auto w2 = words(same, "mem.w.0");
  REQUIRE(w2.size() == 5);  // NOP 3 and four GATHER 10
  for (std::size_t k = 1; k < 5; ++k) CHECK(isa::decode(w2[k]) == isa::decode(w2[1]));
}

TEST_CASE("SYNC waits for NOTIFY plus the notify latency") {
  // NOTIFY in cycle 5; mini icu.notify_latency = 2: the parked queue issues again in cycle 7.
  auto r = asm_mini(R"(
.queue vxm.1
    @5 NOTIFY
.queue vxm.0
    SYNC
    CONST.i8 s0e, 1
)");
  CHECK(cycle_of(r, "vxm.0", "SYNC") == 0);
  CHECK(cycle_of(r, "vxm.0", "CONST") == 7);
}

TEST_CASE("DESKEW parks until the next multiple of the deskew period") {
  // mini c2c.deskew_period = 256: DESKEW in cycle 3 releases in cycle 256.
  auto r = asm_mini(".queue sxm.w.0\n@3 DESKEW\nDMAIN 0, s0e\n");
  CHECK(cycle_of(r, "sxm.w.0", "DMAIN") == 256);
}

TEST_CASE("MXM: weights load, install, multiply and read out in order") {
  // LW 32 rows from cycle 0 (REPEAT 31,1: cycles 0..31), IW at 32 ready at 32 + 4 = 36.
  auto r = asm_mini(R"(
.queue mem.e.3
w:   READ 0, s0e, 1
     REPEAT 31, 1
x:   @40 READ 40, s1e
.queue mxm.e.0.0
lw:  @ready(w) LW.i8 s0e, 0      ; w's value at position 9 in cycle 2, position 11 in cycle 4
     REPEAT 31, 1
iw:  IW.i8                        ; cycle 4 + 32 = 36
.queue mxm.e.0.1
mm:  @ready(x) MM.i8 s1e, 0       ; x at position 11 in 40 + 2 + 2 = 44 >= 36 + 4
.queue mxm.e.0.2
     @ready(mm) ACCRD.i32 0, s2w, 0   ; 44 + 4 = 48
)");
  CHECK(cycle_of(r, "mxm.e.0.0", "LW") == 4);
  CHECK(cycle_of(r, "mxm.e.0.0", "IW") == 36);
  CHECK(cycle_of(r, "mxm.e.0.1", "MM") == 44);
  CHECK(cycle_of(r, "mxm.e.0.2", "ACCRD") == 48);
}

TEST_CASE("data directives place symbols and rows, registers and streams aliases work") {
  auto r = asm_mini(R"(
.const BASE = 4
.stream x = s3e
.reg r1 = 2
.data v i8[40] mem.w.0..1 @ BASE = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40]
.symbol out i32[8] mem.e.0 @ 0
.queue mem.w.0
    READ [r1+BASE], x
)");
  // 40 bytes = 2 rows of 32: row 0 -> mem.w.0 @ 4, row 1 -> mem.w.1 @ 4.
  REQUIRE(r.program.data.size() == 2);
  CHECK(r.program.data[0].slice == "mem.w.0");
  CHECK(r.program.data[0].row == 4);
  CHECK(r.program.data[0].bytes[0] == 1);
  CHECK(r.program.data[1].slice == "mem.w.1");
  CHECK(r.program.data[1].bytes[0] == 33);
  CHECK(r.program.data[1].bytes[8] == 0);  // padding
  REQUIRE(r.program.symbols.size() == 2);
  CHECK(r.program.symbols[0].slices.size() == 2);
  CHECK(r.program.regs[1] == 2);
  auto in = isa::decode(r.program.queues[0].words[0]);
  CHECK(isa::addr_reg(in.v[0]) == 1);
  CHECK(isa::addr_offset(in.v[0]) == 4);
  CHECK(StreamRef::unpack(std::uint64_t(in.v[1])).id == 3);
}

TEST_CASE("float immediates are encoded in the instruction's type") {
  auto r = asm_mini(".queue vxm.0\nCONST.f16 s0e, 1.5\nCONST.bf16 s1e, -2.0\nCONST.e4m3 s2e, 448.0\n");
  const auto& w = r.program.queues[0].words;
  CHECK(isa::decode(w[0]).v[1] == 0x3E00);  // f16 1.5: sign 0, exp 15 (01111), mantissa .1 -> 0x3E00
  CHECK(isa::decode(w[1]).v[1] == 0xC000);  // bf16 -2.0: top half of f32 0xC0000000
  CHECK(isa::decode(w[2]).v[1] == 0x7E);    // e4m3 max 448 = 1.75 * 2^8: 0 1111 110
}
