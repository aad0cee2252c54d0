// The scheduling pass alone (lpu/compiler/sched.hpp): the cycles it picks for a vector operation,
// derived from the mini preset's latencies and layout, its SRAM-port and queue discipline, and
// that what it emits assembles.
//
// mini (configs/mini.toml): hop_cycles 1; latencies mem_read 2, mem_write 1, vxm_alu 1; stream
// positions 0 sxm.w | 1 mem.w.3 | 2 mem.w.2 | 3 mem.w.1 | 4 mem.w.0 | 5 vxm | 6 mem.e.0 |
// 7 mem.e.1 | 8 mem.e.2 | 9 mem.e.3 | 10 sxm.e (docs/timing.md).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "lpu/arch/params.hpp"
#include "lpu/asm/assembler.hpp"
#include "lpu/common/errors.hpp"
#include "lpu/compiler/sched.hpp"

using namespace lpu;
using namespace lpu::compiler::sched;

namespace {

ChipParams mini() { return load_preset(std::string(LPU_SOURCE_DIR) + "/configs/mini.toml"); }

OpSpec add(const ValueP& a, const ValueP& b, int count, std::optional<Out> out = Out{}) {
  OpSpec s;
  s.mnem = "ADD.f32";
  s.ops = {Operand::in(0), Operand::in(1), Operand::out()};
  s.lat = isa::LatClass::VxmAlu;
  s.in = {Rd{a}, Rd{b}};
  s.count = count;
  s.out = std::move(out);
  return s;
}

bool has_line(const std::string& text, const std::string& line) { return text.find(line) != std::string::npos; }

// A scheduler for mini with the given scratch slices and two operands of `count` vectors ready
// in cycle 0: a in mem.w.0 (position 4) and b in mem.e.0 (position 6), one hop either side of
// the VXM.
struct Two {
  ChipParams p = mini();
  ChipSched S{p};
  ValueP a, b;
  Two(std::vector<std::string> scratch, int count) {
    std::vector<int> pool;
    for (const auto& n : scratch) pool.push_back(S.slice_index(n));
    S.set_scratch(pool);
    a = S.fixed("a", S.slice_index("mem.w.0"), 0, count);
    b = S.fixed("b", S.slice_index("mem.e.0"), 0, count);
  }
};

}  // namespace

TEST_CASE("sched: a VXM add at the cycle its operands' reads and the write-back allow") {
  Two x({"mem.e.1"}, 1);
  auto& S = x.S;
  auto r = S.op(add(x.a, x.b, 1));
  // READs at cycle 0 (both operands ready at 0); each row reaches the VXM after mem_read (2) and
  // one hop (1): the ADD issues in 3.
  CHECK(r.t == 3);
  // The sum leaves the VXM after vxm_alu (1), in 4, travels two hops east to mem.e.1 (position
  // 7): WRITE in 6; a READ sees it mem_write (1) later, in 7.
  REQUIRE(r.out);
  CHECK(r.out->slice == S.slice_index("mem.e.1"));
  CHECK(r.out->ready.at(0) == 7);
  const auto text = S.emit("");
  CHECK(has_line(text, "@T0+0 READ 0, "));
  CHECK(has_line(text, "@T0+3 ADD.f32 "));
  CHECK(has_line(text, "@T0+6 WRITE "));
  CHECK(S.last_cycle() == 7);  // the WRITE issued in 6 lands after mem_write
}

TEST_CASE("sched: a repeated operation streams a vector per cycle, one read port per slice") {
  Two x({"mem.e.3"}, 4);
  auto& S = x.S;
  auto r = S.op(add(x.a, x.b, 4));
  CHECK(r.t == 3);  // as one vector: READs from 0, at the VXM in 3
  // Vector k is written in 3 + 1 + 4 hops (to position 9) + k = 8 + k, readable a cycle later.
  for (int k = 0; k < 4; ++k) CHECK(r.out->ready.at(std::size_t(k)) == 9 + k);
  CHECK(has_line(S.emit(""), "REPEAT 3, 1"));
  // A second add reading another value of mem.w.0: that slice's read port is busy in cycles
  // 0..3, so its READ waits for cycle 4 and the add issues in 4 + 2 + 1 = 7.
  auto c = S.fixed("c", S.slice_index("mem.w.0"), 8, 1);
  auto d = S.fixed("d", S.slice_index("mem.e.2"), 0, 1);  // position 8: 3 hops, READ in 7 - 2 - 3 = 2
  auto r2 = S.op(add(c, d, 1));
  CHECK(r2.t == 7);
}

TEST_CASE("sched: an operand written by an earlier operation is read once it has landed") {
  Two x({"mem.e.1"}, 1);
  auto& S = x.S;
  auto s1 = S.op(add(x.a, x.b, 1));  // ready in 7 at mem.e.1 (first test)
  auto s2 = S.op(add(s1.out, x.b, 1));
  // mem.e.1 is two hops from the VXM: its READ in 7 reaches the VXM in 7 + 2 + 2 = 11.
  CHECK(s2.t == 11);
}

TEST_CASE("sched: what it emits assembles for the chip it was scheduled for") {
  Two x({"mem.e.1", "mem.e.2"}, 3);
  auto& S = x.S;
  auto s1 = S.op(add(x.a, x.b, 3));
  S.op(add(s1.out, x.a, 3));
  const auto text = ".const T0 = 0\n" + S.emit("");
  auto res = assembler::assemble_string(text, "sched.lpa", x.p);
  CHECK(res.schedule.size() >= 6);
  CHECK(S.instructions() >= 6);  // 2 READs + ADD + WRITE per operation, REPEAT groups counted once
}

TEST_CASE("sched: results split by parity into two slices from one stream, for a tree level") {
  Two x({"mem.e.1", "mem.e.2"}, 4);
  auto& S = x.S;
  Out o;
  o.name = "ab";
  o.split = true;
  auto r = S.op(add(x.a, x.b, 4, o));
  CHECK(r.t == 3);
  REQUIRE(r.out);
  REQUIRE(r.out2);
  // Result k leaves the VXM in 3 + 1 + k. Even ones go to the nearest slice, mem.e.1 (two hops):
  // written in 6 + k, readable a cycle later; odd ones to mem.e.2 (three hops) in 7 + k.
  CHECK(r.out->slice == S.slice_index("mem.e.1"));
  CHECK(r.out2->slice == S.slice_index("mem.e.2"));
  CHECK(r.out->ready == std::vector<Cycle>{7, 9});
  CHECK(r.out2->ready == std::vector<Cycle>{9, 11});
  const auto text = S.emit("");
  CHECK(has_line(text, "@T0+6 WRITE "));
  CHECK(has_line(text, "@T0+8 WRITE "));
  CHECK(has_line(text, "REPEAT 1, 2"));
  // A level of pairs (0 + 1, 2 + 3) reads them from the two slices at once: mem.e.2's second
  // vector lands in 11, its READ there reaches the VXM 2 + 3 = 5 cycles later, so the pair
  // operation (instance 1 a cycle after instance 0) issues in 11 + 5 - 1 = 15.
  auto lvl = S.op(add(r.out, r.out2, 2));
  CHECK(lvl.t == 15);
  auto res = assembler::assemble_string(".const T0 = 0\n" + S.emit(""), "split.lpa", x.p);
  CHECK(res.schedule.size() >= 8);
}

TEST_CASE("sched: alloc_in places a value in the given slices, first the first with free rows") {
  Two x({"mem.e.1"}, 1);
  auto& S = x.S;
  const int e3 = S.slice_index("mem.e.3"), e2 = S.slice_index("mem.e.2");
  // Rows [0, 256) of mem.e.3 are reserved (fixed data): the value goes to mem.e.2, the next in
  // the pool's order, not to the scratch pool's mem.e.1.
  S.reserve_rows(e3, 0, S.params().mem.rows);
  auto v = S.alloc_in("y", 4, 0, {e3, e2});
  CHECK(v->slice == e2);
  CHECK(v->row == 0);
  auto w = S.alloc_in("y2", 4, 0, {e2});
  CHECK(w->slice == e2);
  CHECK(w->row == 4);  // after y's rows
  // A result written into it: an add's sum travels three hops east of the VXM (position 5) to
  // mem.e.2 (position 8).
  auto r = S.op(add(x.a, x.b, 1, Out{v, 0, 1, {}, {}}));
  CHECK(r.t == 3);
  CHECK(v->ready.at(0) == 3 + 1 + 3 + 1);  // issue, vxm_alu, hops, mem_write
  // No room anywhere in the pool: a located "does not fit".
  CHECK_THROWS_WITH_AS(S.alloc_in("big", int(S.params().mem.rows), 0, {e2, e3}),
                       doctest::Contains("does not fit"), lpu::Error);
}
