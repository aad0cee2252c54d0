// The chip model: cycle counts (with derivations), boundaries, unit semantics through whole
// programs, and run-time errors. Preset mini unless said otherwise:
//   positions 0 sxm.w | 1 mem.w.3 | 2 mem.w.2 | 3 mem.w.1 | 4 mem.w.0 | 5 vxm | 6 mem.e.0 |
//   7 mem.e.1 | 8 mem.e.2 | 9 mem.e.3 | 10 sxm.e | 11 mxm.e.0; hop 1; 2 superlanes (stagger 1).
//   latencies: mem_read 2, mem_write 1, vxm_alu 1, vxm_mul 2, sxm_shift 1, sxm_perm 2,
//   sxm_trans 17, mxm_iw 4, mxm_mm 4, mxm_rd 1, dma 2; notify 2.
#include <doctest/doctest.h>

#include <fmt/format.h>

#include <functional>

#include "helpers.hpp"
#include "lpu/common/errors.hpp"
#include "lpu/isa/isa.hpp"

using namespace lpu;
using namespace lpu::test;

namespace {
std::string ramp(int n, int start = 0) {
  std::string s = "[";
  for (int i = 0; i < n; ++i) s += fmt::format("{}{}", i ? ", " : "", (start + i) % 128);
  return s + "]";
}
std::string sim_error(const std::string& src, const std::function<void(model::Chip&)>& setup = {}) {
  auto p = load_preset("mini");
  auto r = assembler::assemble_string(src, "t.lpa", p);
  model::Chip chip(p, model::Mode::Functional);
  chip.load(r.program);
  if (setup) setup(chip);
  try {
    chip.run();
  } catch (const SimError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("vector_add: result and cycle count") {
  auto r = run_file(example("vector_add.lpa"), model::Mode::Functional, {"a", "b", "c"});
  // WRITE issues in 6 and lands in 6 + mem_write 1 = 7; cycles = 7 + 1 + (2 - 1) stagger = 9.
  CHECK(r.stats.cycles == 9);
  auto a = as<std::int8_t>(r.out["a"]), b = as<std::int8_t>(r.out["b"]), c = as<std::int8_t>(r.out["c"]);
  for (std::size_t i = 0; i < 32; ++i) CHECK(c[i] == static_cast<std::int8_t>(std::uint8_t(a[i] + b[i])));
}

TEST_CASE("boundary: a READ sees a WRITE exactly mem_write cycles after it issues") {
  // CONST in 0 puts 7s on s0w at the VXM (5) in 1, at mem.w.0 (4) in 2: WRITE row 3 in 2.
  // READ row 3 in 2 (second queue of the slice) sees the old row, in 3 the new one
  // (mem_write = 1). Their values go east and are written to mem.e.0 rows 0 and 1.
  std::string src = ".data old i8[32] mem.w.0 @ 3 = " + ramp(32, 1) + R"(
.symbol out i8[64] mem.e.0 @ 0
.queue vxm.0
     CONST.i8 s0w, 7
.queue mem.w.0
     @2 WRITE s0w, 3
.queue mem.w.0.1
     @2 READ 3, s1e          ; on s1e at 4 in 4, at mem.e.0 (6) in 6
     @3 READ 3, s2e          ; at mem.e.0 in 7
.queue mem.e.0
     @6 WRITE s1e, 0
     @7 WRITE s2e, 1
)";
  auto r = run_text(src, "mini", model::Mode::Functional, {"out"});
  auto o = as<std::int8_t>(r.out["out"]);
  for (int i = 0; i < 32; ++i) {
    CHECK(o[std::size_t(i)] == i + 1);    // before: the old row
    CHECK(o[std::size_t(32 + i)] == 7);   // at t + mem_write: the new one
  }
}

TEST_CASE("CONFIG takes effect the next cycle, REPEATR counts come from registers") {
  // CONFIG r1 = 5 in cycle 0: a READ [r1+0] in cycle 0 reads row 0, in cycle 1 row 5.
  std::string src = ".data d i8[192] mem.w.0 @ 0 = " + ramp(192) + R"(
.symbol out i8[64] mem.e.0 @ 0
.queue vxm.0
     CONFIG r1, 5
.queue mem.w.0
     READ [r1+0], s0e        ; cycle 0 -> mem.e.0 in 0 + 2 + 2 = 4
     READ [r1+0], s1e        ; cycle 1 -> 5
.queue mem.e.0
     @4 WRITE s0e, 0
     @5 WRITE s1e, 1
)";
  auto r = run_text(src, "mini", model::Mode::Functional, {"out"});
  auto o = as<std::int8_t>(r.out["out"]);
  CHECK(o[0] == 0);          // row 0 starts with 0
  CHECK(o[32] == 5 * 32 % 128);  // row 5 starts with element 160 -> 160 % 128 = 32

  // READ; REPEATR r2, 1: n + 1 reads in cycles 0..n, the last lands in n + 2; cycles = n + 4.
  std::string rep = ".reg r2 = 3\n.queue mem.w.0\nREAD 0, s0e, 1\nREPEATR r2, 1\n";
  auto p = load_preset("mini");
  auto obj = assembler::assemble_string(rep, "t.lpa", p).program;
  for (std::uint32_t n : {3u, 10u}) {
    model::Chip chip(p, model::Mode::TimingOnly);
    chip.load(obj);
    chip.set_reg(2, n);
    chip.run();
    CHECK(chip.stats().cycles == n + 4);
    CHECK(chip.stats().sram_bytes_read == (n + 1) * 32);
  }
}

TEST_CASE("SYNC, NOTIFY and DESKEW timing") {
  // NOTIFY in 5 releases vxm.0 in 5 + 2 = 7; its CONST lands in 8; cycles = 8 + 1 + 1 = 10.
  auto r = run_text(".queue vxm.1\n@5 NOTIFY\n.queue vxm.0\nSYNC\nCONST.i8 s0e, 1\n", "mini", model::Mode::Functional);
  CHECK(r.stats.cycles == 10);
  // DESKEW in 3 releases in 256 (deskew_period); the DMAOUT... CONST in 256 lands in 257.
  auto d = run_text(".queue sxm.w.0\n@3 DESKEW\n.queue vxm.0\n@300 CONST.i8 s0e, 1\n", "mini", model::Mode::TimingOnly);
  CHECK(d.stats.cycles == 300 + 1 + 1 + 1);
}

TEST_CASE("SXM: shift, rotate, distribute, permute, transpose against plain loops") {
  // Row 0 of mem.e.3 holds 0..31; READ in 0 -> on s0e at 9 in 2 -> sxm.e (10) in 3.
  std::string perm = "[";
  for (int i = 0; i < 32; ++i) perm += fmt::format("{}{}", i ? ", " : "", (i * 7) % 32);
  perm += "]";
  std::string src = ".data d i8[32] mem.e.3 @ 0 = " + ramp(32) + "\n.perm sxm.e 0 = " + perm + R"(
.symbol out i8[128] mem.e.2 @ 0
.queue mem.e.3
     READ 0, s0e
     REPEAT 3, 1             ; the same row in cycles 0..3, at sxm.e in 3..6
.queue sxm.e.0
     @3 SHIFT.i8 s0e, s1w, 3     ; result at 10 in 4, at mem.e.2 (8) in 6
     ROT.i16 s0e, s2w, -1        ; 4 -> 5 -> 7
     DIST.i8 s0e, s3w, 9         ; 5 -> 6 -> 8
     PERM s0e, s4w, 0            ; 6 -> 8 -> 10
.queue mem.e.2
     @6 WRITE s1w, 0
     @7 WRITE s2w, 1
     @8 WRITE s3w, 2
     @10 WRITE s4w, 3
)";
  auto r = run_text(src, "mini", model::Mode::Functional, {"out"});
  auto o = as<std::uint8_t>(r.out["out"]);
  for (int i = 0; i < 32; ++i) {
    CHECK(o[std::size_t(i)] == (i >= 3 ? i - 3 : 0));                       // shift right by 3 elements
    const int e = i / 2, src_e = (e + 1) % 16;                              // i16 rotate by -1
    CHECK(o[std::size_t(32 + i)] == src_e * 2 + i % 2);
    CHECK(o[std::size_t(64 + i)] == 9);                                     // element 9 everywhere
    CHECK(o[std::size_t(96 + i)] == (i * 7) % 32);                          // byte i = byte perm[i]
  }
}

TEST_CASE("SXM transpose: 16 vectors in, each superlane's 16 x 16 block transposed") {
  // Rows 0..15 of mem.e.3: row r byte b = (16 r + b) % 128. READ rows in 0..15 reach sxm.e (10)
  // in 3..18; TRANS in 3 reads them and writes output r in 3 + 17 + r = 20 + r, which reaches
  // mem.e.2 (8) two hops later: WRITE rows 0..15 in 22..37.
  std::string src = ".data d i8[512] mem.e.3 @ 0 = " + ramp(512) + R"(
.symbol out i8[512] mem.e.2 @ 0
.queue mem.e.3
     READ 0, s0e, 1
     REPEAT 15, 1
.queue sxm.e.0
     @3 TRANS s0e, s1w
.queue mem.e.2
     @22 WRITE s1w, 0, 1
     REPEAT 15, 1
)";
  auto r = run_text(src, "mini", model::Mode::Functional, {"d", "out"});
  auto in = as<std::uint8_t>(r.out["d"]);
  auto o = as<std::uint8_t>(r.out["out"]);
  for (int v = 0; v < 16; ++v)
    for (int s = 0; s < 2; ++s)
      for (int l = 0; l < 16; ++l) CHECK(o[std::size_t(v * 32 + s * 16 + l)] == in[std::size_t(l * 32 + s * 16 + v)]);
}

TEST_CASE("GATHER and SCATTER address per superlane") {
  // idx vector: superlane 0 -> +2, superlane 1 -> +5 (first int16 of each superlane).
  std::string src = R"(.data rows i8[256] mem.w.1 @ 0 = )" + ramp(256) + R"(
.data idx i16[16] mem.w.0 @ 0 = [2, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0]
.symbol out i8[32] mem.e.0 @ 0
.queue mem.w.0
     @1 READ 0, s0w           ; idx at mem.w.0 (4) in 3, at mem.w.1 (3) in 4
.queue mem.w.1
     @4 GATHER 0, s0w, s1e    ; superlane s from row idx_s: at 3 in 6, mem.e.0 (6) in 9
.queue mem.e.0
     @9 WRITE s1e, 0
)";
  auto r = run_text(src, "mini", model::Mode::Functional, {"out"});
  auto o = as<std::uint8_t>(r.out["out"]);
  for (int l = 0; l < 16; ++l) {
    CHECK(o[std::size_t(l)] == (2 * 32 + l) % 128);        // row 2, superlane 0
    CHECK(o[std::size_t(16 + l)] == (5 * 32 + 16 + l) % 128);  // row 5, superlane 1
  }
}

// Mixture-of-experts weight selection: the index is computed on chip, written to SRAM and read
// back onto a stream once per GATHER instance; `GATHER base, idx, dst` + `REPEAT 3, 1` reads
// rows base + k + idx_s (isa.toml: GATHER steps addr by one per instance).
TEST_CASE("REPEATed GATHER reads consecutive rows from base + an index computed on chip") {
  // Row r of `w` (mem.w.1), byte i: (5r + i) % 128, distinct for rows 0..15 at every byte.
  std::string rows = "[";
  for (int r = 0; r < 16; ++r)
    for (int i = 0; i < 32; ++i) rows += fmt::format("{}{}", r + i ? ", " : "", (5 * r + i) % 128);
  rows += "]";
  const std::string src = ".data w i8[512] mem.w.1 @ 0 = " + rows + R"(
.data lane i16[16] mem.w.0 @ 0 = [0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0]
.symbol out i8[128] mem.w.0 @ 4
.queue mem.w.0
    @0 READ 0, s0e              ; lane offsets on s0e at 4 in 2, at the VXM (5) in 3
.queue vxm.1
    @2 CONST.i16 s1e, 5         ; 5 in every element, at 5 in 3
.queue vxm.0
    @3 ADD.i16 s0e, s1e, s2w    ; idx = [5 x8 | 8, 5 x7]: at 5 in 4, 4 in 5, 3 in 6, mem.w.2 (2) in 7
.queue mem.w.2
    @7 WRITE s2w, 20            ; committed at the end of 7: READs from 8 on see it
    @8 READ 20, s3e, 0
    REPEAT 3, 1                 ; the idx row in 8..11: on s3e at 2 in 10..13, at mem.w.1 (3) in 11..14
.queue mem.w.1
    @11 GATHER 2, s3e, s4e
    REPEAT 3, 1                 ; instance k in 11 + k: superlane 0 row 2+k+5, superlane 1 row 2+k+8
                                ; on s4e at 3 in 13..16, at mem.w.0 (4) in 14..17
.queue mem.w.0
    @14 WRITE s4e, 4, 1
    REPEAT 3, 1                 ; rows 4..7 in 14..17
)";
  auto value = [](int r, int i) { return (5 * r + i) % 128; };
  auto r = run_text(src, "mini", model::Mode::Functional, {"out"});
  const auto& o = r.out["out"];
  REQUIRE(o.size() == 128);
  for (int k = 0; k < 4; ++k) {
    CAPTURE(k);
    for (int l = 0; l < 16; ++l) {
      CHECK(int(o[std::size_t(k * 32 + l)]) == value(7 + k, l));             // rows 7..10, superlane 0
      CHECK(int(o[std::size_t(k * 32 + 16 + l)]) == value(10 + k, 16 + l));  // rows 10..13, superlane 1
    }
  }
  // The last WRITE issues in 17 and lands in 17 + mem_write 1 = 18; cycles = 18 + 1 + (2 - 1)
  // stagger = 20. Timing-only mode issues the same groups in the same cycles.
  CHECK(r.stats.cycles == 20);
  CHECK(r.stats.sram_bytes_read == (1 + 4 + 4) * 32);  // lane READ, 4 idx READs, 4 GATHERs
  auto t = run_text(src, "mini", model::Mode::TimingOnly);
  CHECK(t.stats.cycles == 20);
  CHECK(t.stats.sram_bytes_read == r.stats.sram_bytes_read);

  // The same program with base 245: instance 3 reads base row 248, superlane 1 row 248 + 8 = 256,
  // past the slice (the assembler checks base + k only; the index is known at run time).
  std::string bad = src;
  bad.replace(bad.find("GATHER 2,"), 9, "GATHER 245,");
  CHECK(sim_error(bad).find("cycle 14") != std::string::npos);
  CHECK(sim_error(bad).find("GATHER row 256 of superlane 1 out of range (base row 248 of REPEAT instance 3 + index 8)") !=
        std::string::npos);
}

TEST_CASE("REPEATed SCATTER writes consecutive rows from base + idx") {
  // Source rows 0..3 (mem.w.1) READ in 2..5: at mem.w.0 (4) in 5..8. The idx row (mem.w.2,
  // superlane 0 -> 2, superlane 1 -> 6) READ in 1..4 (stride 0): at 4 in 5..8. SCATTER instance k
  // in 5 + k writes superlane 0 of source row k into row 10+k+2, superlane 1 into row 10+k+6.
  const std::string src = ".data src i8[128] mem.w.1 @ 0 = " + ramp(128, 1) + R"(
.data idx i16[16] mem.w.2 @ 0 = [2, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0]
.symbol out i8[256] mem.w.0 @ 12
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
  auto r = run_text(src, "mini", model::Mode::Functional, {"out"});
  const auto& o = r.out["out"];
  REQUIRE(o.size() == 256);
  for (int k = 0; k < 4; ++k) {
    CAPTURE(k);
    for (int l = 0; l < 16; ++l) {
      CHECK(int(o[std::size_t(k * 32 + l)]) == (k * 32 + l + 1) % 128);                // row 12+k, superlane 0
      CHECK(int(o[std::size_t(k * 32 + 16 + l)]) == 0);                                // row 12+k, superlane 1: untouched
      CHECK(int(o[std::size_t((4 + k) * 32 + l)]) == 0);                               // row 16+k, superlane 0: untouched
      CHECK(int(o[std::size_t((4 + k) * 32 + 16 + l)]) == (k * 32 + 16 + l + 1) % 128);  // row 16+k, superlane 1
    }
  }
  // The last SCATTER issues in 8 and commits at 8 + mem_write 1 = 9; cycles = 9 + 1 + 1 = 11.
  CHECK(r.stats.cycles == 11);
  CHECK(run_text(src, "mini", model::Mode::TimingOnly).stats.cycles == 11);
}

TEST_CASE("host DMA channels in and out") {
  auto p = load_preset("mini");
  auto obj = assembler::assemble_string(".queue sxm.w.0\nDMAIN 1, s0e\nREPEAT 1, 1\n.queue sxm.w.1\n@2 DMAOUT s0e, 2\nREPEAT 1, 1\n", "t.lpa", p).program;
  model::Chip chip(p, model::Mode::Functional);
  chip.load(obj);
  std::vector<std::uint8_t> a(32, 11), b(32, 22);
  chip.push_dma_in(1, a);
  chip.push_dma_in(1, b);
  chip.run();
  auto out = chip.take_dma_out(2);
  REQUIRE(out.size() == 2);
  CHECK(out[0] == a);
  CHECK(out[1] == b);
}

TEST_CASE("run-time errors name chip, unit, queue and cycle") {
  // The assembler cannot see register values set by the host: row 250 + 10 is out of range.
  auto e = sim_error(".reg r1 = 250\n.queue mem.w.0\nREAD [r1+5], s0e\n", [](model::Chip& c) { c.set_reg(1, 251); });
  CHECK(e == "chip 0, mem.w.0 (queue mem.w.0), cycle 0: address out of range: row 256 (r1 = 251, offset 5); the slice has rows 0..255");
  // An accumulator read before its MM completes: "accumulator readiness" below (the assembler
  // refuses such a program).
  // DMAIN with nothing provided by the host.
  e = sim_error(".queue sxm.w.0\n@4 DMAIN 0, s0e\n");
  CHECK(e.find("cycle 4: DMAIN on channel 0: the host has provided no more vectors") != std::string::npos);
  // SEND on a lone chip.
  e = sim_error(".queue vxm.0\nCONST.i8 s0w, 1\n.queue sxm.w.0\n@6 SEND 0, s0w\n");
  CHECK(e.find("cycle 6: SEND on link 0: the link is not connected") != std::string::npos);
}

namespace {
// Accumulator readiness (timing.md rule 17) on hand-made objects: the assembler refuses these,
// so the program is assembled with the ACCRD where it is legal and its word is then edited.
// IW in 0 (weights from 4); CONST in 0 puts x at the plane (11) in 0 + 1 + 6 = 7; MM in 7 into
// accumulator 0 (mxm.e.0.1), readable from 7 + mxm_mm = 11; ACCRD of accumulator 0 in
// mxm.e.0.2, in 11 as assembled.
obj::Program accrd_object(const std::function<void(std::vector<isa::Instr>&)>& edit, const std::string& more = "") {
  auto p = load_preset("mini");
  auto prog = assembler::assemble_string(
                  ".queue mxm.e.0.0\nIW.i8\n.queue vxm.0\nCONST.i8 s0e, 1\n.queue mxm.e.0.1\n@7 MM.i8 s0e, 0\n"
                  ".queue mxm.e.0.2\n@11 ACCRD.i32 0, s1w, 0\n" + more,
                  "t.lpa", p)
                  .program;
  for (auto& q : prog.queues) {
    if (q.name != "mxm.e.0.2") continue;
    std::vector<isa::Instr> in;
    for (auto w : q.words) in.push_back(isa::decode(w));
    edit(in);
    q.words.clear();
    for (const auto& x : in) q.words.push_back(isa::encode(x));
  }
  return prog;
}

// The error of running `prog` on mini in `mode` ("" when it runs).
std::string run_error(const obj::Program& prog, model::Mode mode) {
  model::Chip chip(load_preset("mini"), mode);
  chip.load(prog);
  try {
    chip.run();
  } catch (const SimError& e) {
    return e.what();
  }
  return "";
}

void set_nop(std::vector<isa::Instr>& in, std::int64_t cycles) {
  REQUIRE(in.front().op == isa::Op::Nop);
  in.front().v[0] = cycles;
}
}  // namespace

TEST_CASE("accumulator readiness: functional and timing-only runs refuse the same ACCRDs, with the same message") {
  using model::Mode;
  const std::string not_ready = "accumulator read before its MM completes (mxm_mm latency)";
  const std::string unwritten = "accumulator read before any MM wrote it";
  for (auto mode : {Mode::Functional, Mode::TimingOnly}) {
    CAPTURE(int(mode));
    // The boundary: t_mm + mxm_mm - 1 = 10 refused, t_mm + mxm_mm = 11 accepted.
    CHECK(run_error(accrd_object([](auto& in) { set_nop(in, 10); }), mode) ==
          "chip 0, mxm.e.0 (queue mxm.e.0.2), cycle 10: " + not_ready);
    CHECK(run_error(accrd_object([](auto&) {}), mode).empty());
    // Before the MM issues: never written.
    CHECK(run_error(accrd_object([](auto& in) { set_nop(in, 6); }), mode) ==
          "chip 0, mxm.e.0 (queue mxm.e.0.2), cycle 6: " + unwritten);
    // Another accumulator, never written.
    CHECK(run_error(accrd_object([](auto& in) { in[1].v[0] = 3; }), mode) ==
          "chip 0, mxm.e.0 (queue mxm.e.0.2), cycle 11: " + unwritten);
    // A REPEATed ACCRD (accumulator stepped per instance): instance 1 reads accumulator 1.
    CHECK(run_error(accrd_object([](auto& in) {
            isa::Instr rep;
            rep.op = isa::Op::Repeat;
            rep.v[0] = 1;
            rep.v[1] = 10;
            in.push_back(rep);
          }),
                    mode) == "chip 0, mxm.e.0 (queue mxm.e.0.2), cycle 21: " + unwritten);
    // Instance 1 of the ACCRD group (cycle 21, accumulator 1) runs after an MM group that starts
    // later (in 20, into accumulator 1, readable from 24): timing-only mode must see that MM,
    // although it handles the ACCRD group as one event in 11. As assembled, the instance is in
    // 24 (REPEAT 1, 13); a delay of 10 moves it to 21.
    const std::string second = ".queue vxm.1\n@13 CONST.i8 s0e, 2\n.queue mxm.e.0.1\n@20 MM.i8 s0e, 1\n"
                               ".queue mxm.e.0.2\nREPEAT 1, 13\n";
    CHECK(run_error(accrd_object([](auto&) {}, second), mode).empty());
    CHECK(run_error(accrd_object([](auto& in) { in.back().v[1] = 10; }, second), mode) ==
          "chip 0, mxm.e.0 (queue mxm.e.0.2), cycle 21: " + not_ready);
    // The same when the chip runs in windows (Chip::run(limit), as the rack engine runs it):
    // each window checks the reads before its end.
    {
      model::Chip chip(load_preset("mini"), mode);
      chip.load(accrd_object([](auto& in) { in.back().v[1] = 10; }, second));
      std::string e;
      try {
        for (std::int64_t limit = 1; !chip.run(limit); ++limit) {
        }
      } catch (const SimError& x) {
        e = x.what();
      }
      CHECK(e == "chip 0, mxm.e.0 (queue mxm.e.0.2), cycle 21: " + not_ready);
    }
    // An accumulator number past the plane's (a hand-made object can name any): the object check
    // (obj::check_program, the one both loaders use) refuses it before the run, located.
    model::Chip chip(load_preset("mini"), mode);
    CHECK_THROWS_WITH(chip.load(accrd_object([](auto& in) { in[1].v[0] = 200; })),
                      "object: queue mxm.e.0.2 word 1 (ACCRD): accumulator 200 beyond the 16 of a plane");
  }
}

TEST_CASE("a hand-made object that reads an empty stream stops with its location") {
  // The assembler refuses this program; the model must catch it too.
  auto p = load_preset("mini");
  obj::Program prog = assembler::assemble_string(".queue vxm.0\nCONST.i8 s0e, 1\n", "t.lpa", p).program;
  isa::Instr mov;
  mov.op = isa::Op::Mov;
  mov.v[0] = StreamRef{3, Dir::East}.packed();
  mov.v[1] = StreamRef{4, Dir::East}.packed();
  prog.queues[0].words.push_back(isa::encode(mov));
  model::Chip chip(p, model::Mode::Functional);
  chip.load(prog);
  CHECK_THROWS_WITH_AS(chip.run(), "chip 0, vxm (queue vxm.0), cycle 1: read of an empty stream: s3e at position 5 holds no value",
                       SimError);
}

TEST_CASE("SECDED: one flipped bit is corrected and counted, two stop the run") {
  auto p = load_preset("mini");
  std::string src = ".data d i8[32] mem.w.0 @ 7 = " + ramp(32) + "\n.symbol out i8[32] mem.e.0 @ 0\n.queue mem.w.0\nREAD 7, s0e\n.queue mem.e.0\n@4 WRITE s0e, 0\n";
  auto obj = assembler::assemble_string(src, "t.lpa", p).program;
  {
    model::Chip chip(p, model::Mode::Functional);
    chip.load(obj);
    chip.inject_fault("mem.w.0", 7, 1);
    chip.run();
    CHECK(chip.stats().sram_ecc_corrected == 1);
    CHECK(as<std::int8_t>(chip.read_symbol("out"))[5] == 5);
  }
  {
    model::Chip chip(p, model::Mode::Functional);
    chip.load(obj);
    chip.inject_fault("mem.w.0", 7, 2);
    CHECK_THROWS_WITH_AS(chip.run(), "chip 0, mem.w.0 (queue mem.w.0), cycle 0: uncorrectable ECC error: 2 flipped bits in row 7 (SECDED corrects one)", SimError);
  }
}

TEST_CASE("an object for another geometry is refused") {
  auto obj = assembler::assemble_string(".queue vxm.0\nCONST.i8 s0e, 1\n", "t.lpa", load_preset("mini")).program;
  model::Chip chip(load_preset("tsp1"), model::Mode::Functional);
  CHECK_THROWS_AS(chip.load(obj), FormatError);
}

// ---- Departures from the specification found by the RTL lockstep (docs/rtl.md), fixed ------
// Each program is the lockstep's repro; the expected values follow from docs/timing.md.

namespace {
// Runs `src` on mini, functional, with an observer; returns the chip for inspection.
struct Recorder : model::Chip::Observer {
  struct SramW { int pos, row, offset; std::vector<std::uint8_t> data; std::int64_t cycle, commit; };
  struct AccW { int pos, acc; std::int64_t cycle, commit; bool flt; std::vector<std::uint32_t> v; };
  std::vector<SramW> sram;
  std::vector<AccW> acc;
  std::vector<std::tuple<int, int, bool, std::int64_t>> access;  // on_sram
  void on_sram(int pos, int row, bool write, std::int64_t cycle) override { access.emplace_back(pos, row, write, cycle); }
  void on_sram_write(int pos, int row, int offset, const std::uint8_t* data, int bytes, std::int64_t cycle,
                     std::int64_t commit) override {
    sram.push_back({pos, row, offset, std::vector<std::uint8_t>(data, data + bytes), cycle, commit});
  }
  void on_acc_write(int pos, int a, std::int64_t cycle, std::int64_t commit, bool flt, const std::uint32_t* v, int n) override {
    acc.push_back({pos, a, cycle, commit, flt, std::vector<std::uint32_t>(v, v + n)});
  }
};
}  // namespace

TEST_CASE("MXM float: a second MM into an accumulator in one batch overwrites it (rule 17)") {
  // CONST 1.0 in 0 lands at the VXM (5) in 1 and reaches the plane (11) in 7: LW row 0 = 16 x
  // 1.0 in 7; IW in 8 (active from 12). x = 1.0 (CONST in 10, at the plane in 17) for the MM in
  // 17, x = 0 (CONST in 11 -> 18) for the MM in 18: the second MM replaces the accumulator,
  // y[0] = sum_j W[0][j] * 0 = 0 (the model used to add 16 onto the first product, both being
  // in one batch). An MMA instead (second program) keeps 16 + 0 = 16.
  // ACCRD in 22 (= 18 + mxm_mm) lands at the plane in 23 and reaches mem.e.3 (9) in 25.
  auto prog = [](const char* second) {
    return fmt::format(R"(.symbol y f32[8] mem.e.3 @ 0
.queue vxm.0
    @0 CONST.f16 s0e, 1.0
    @10 CONST.f16 s1e, 1.0
    @11 CONST.f16 s2e, 0.0
.queue mxm.e.0.0
    @7 LW.f16 s0e, 0
    @8 IW.f16
.queue mxm.e.0.1
    @17 MM.f16 s1e, 0
    @18 {}.f16 s2e, 0
.queue mxm.e.0.2
    @22 ACCRD.f32 0, s3w, 0
.queue mem.e.3
    @25 WRITE s3w, 0
)", second);
  };
  auto mm = as<float>(run_text(prog("MM"), "mini", model::Mode::Functional, {"y"}).out["y"]);
  CHECK(mm[0] == 0.0f);
  auto mma = as<float>(run_text(prog("MMA"), "mini", model::Mode::Functional, {"y"}).out["y"]);
  CHECK(mma[0] == 16.0f);
  for (int i = 1; i < 8; ++i) CHECK(mm[std::size_t(i)] == 0.0f);  // W rows 1.. are zero
}

TEST_CASE("MXM: IWs less than mxm_iw apart each take effect at their own cycle (rule 16)") {
  // CONST 1 (in 0) reaches the plane in 7: LW row 0 = ones, IW in 8 -> weights A active from
  // 12. CONST 2 (in 2) reaches it in 9: LW row 0 = twos, IW in 10 -> weights B from 14. x = ones
  // (CONSTs in 5, 6, 7 -> plane in 12, 13, 14) for MMs in 12, 13, 14 into accumulators 0, 1, 2:
  // A, A, B, so y[0] = 32 x 1, 32 x 1, 32 x 2. (The model kept one pending install: the second
  // replaced the first and the MM in 12 stopped with "no weights installed".)
  // ACCRD of accumulators 0..2 in 16..18 (MM + mxm_mm), at the plane in 17..19, at mem.e.3 (9)
  // in 19..21.
  const std::string src = R"(.symbol y i32[24] mem.e.3 @ 0
.queue vxm.0
    @0 CONST.i8 s0e, 1
    @2 CONST.i8 s1e, 2
    @5 CONST.i8 s2e, 1
    REPEAT 2, 1
.queue mxm.e.0.0
    @7 LW.i8 s0e, 0
    @8 IW.i8
    @9 LW.i8 s1e, 0
    @10 IW.i8
.queue mxm.e.0.1
    @12 MM.i8 s2e, 0
    REPEAT 2, 1
.queue mxm.e.0.2
    @16 ACCRD.i32 0, s3w, 0
    REPEAT 2, 1
.queue mem.e.3
    @19 WRITE s3w, 0, 1
    REPEAT 2, 1
)";
  auto p = load_preset("mini");
  auto obj = assembler::assemble_string(src, "t.lpa", p).program;
  model::Chip chip(p, model::Mode::Functional);
  chip.load(obj);
  Recorder rec;
  chip.set_observer(&rec);
  chip.run();
  auto y = as<std::int32_t>(chip.read_symbol("y"));
  CHECK(y[0] == 32);
  CHECK(y[8] == 32);
  CHECK(y[16] == 64);
  for (int i = 1; i < 8; ++i) CHECK(y[std::size_t(i)] == 0);
  // The accumulator writes, observed: committed at the end of MM + mxm_mm - 1 = 15, 16, 17.
  REQUIRE(rec.acc.size() == 3);
  for (int k = 0; k < 3; ++k) {
    const auto& a = rec.acc[std::size_t(k)];
    CHECK(a.pos == 11);
    CHECK(a.acc == k);
    CHECK(a.cycle == 12 + k);
    CHECK(a.commit == 15 + k);
    CHECK_FALSE(a.flt);
    REQUIRE(a.v.size() == 32);
    CHECK(a.v[0] == (k < 2 ? 32u : 64u));
    CHECK(a.v[1] == 0u);
  }
}

TEST_CASE("MXM: an IW takes the staging rows as they were before its cycle, whatever the queue order (rule 16)") {
  // LW row 0 = ones in 7, then in 8 both LW row 0 = twos and IW (A: the ones), in 9 IW (B: the
  // twos). MMs of ones in 12 (A, active from 12) and 13 (B, active from 13): y[0] = 32 and 64.
  // Either queue order of the LW and the IW in cycle 8 gives the same (the model used to let
  // the IW see the new row when the LW's queue came first). Timing as in the test above.
  // One install only: the LW of cycle 8 (on the lower queue, so the model applies it first)
  // is not part of the IW of cycle 8; the MM in 12 uses the ones: y[0] = 32.
  const std::string one = R"(.symbol y i32[8] mem.e.3 @ 0
.queue vxm.0
    @0 CONST.i8 s0e, 1
    @1 CONST.i8 s1e, 2
    @5 CONST.i8 s2e, 1
.queue mxm.e.0.0
    @7 LW.i8 s0e, 0
    @8 LW.i8 s1e, 0
.queue mxm.e.0.1
    @8 IW.i8
.queue mxm.e.0.2
    @12 MM.i8 s2e, 0
    @16 ACCRD.i32 0, s3w, 0
.queue mem.e.3
    @19 WRITE s3w, 0
)";
  CHECK(as<std::int32_t>(run_text(one, "mini", model::Mode::Functional, {"y"}).out["y"])[0] == 32);
  for (const auto& [lwq, iwq, mmq] : {std::tuple{"mxm.e.0.0", "mxm.e.0.1", "mxm.e.0.2"},
                                      std::tuple{"mxm.e.0.2", "mxm.e.0.1", "mxm.e.0.0"}}) {
    CAPTURE(lwq);
    const std::string src = fmt::format(R"(.symbol y i32[16] mem.e.3 @ 0
.queue vxm.0
    @0 CONST.i8 s0e, 1
    @1 CONST.i8 s1e, 2
    @5 CONST.i8 s2e, 1
    REPEAT 1, 1
.queue {}
    @7 LW.i8 s0e, 0
    @8 LW.i8 s1e, 0
.queue {}
    @8 IW.i8
    @9 IW.i8
.queue {}
    @12 MM.i8 s2e, 0
    REPEAT 1, 1
    @16 ACCRD.i32 0, s3w, 0
    REPEAT 1, 1
.queue mem.e.3
    @19 WRITE s3w, 0, 1
    REPEAT 1, 1
)", lwq, iwq, mmq);
    auto y = as<std::int32_t>(run_text(src, "mini", model::Mode::Functional, {"y"}).out["y"]);
    CHECK(y[0] == 32);
    CHECK(y[8] == 64);
  }
}

TEST_CASE("MXM: an LW of another type in the cycle of an IW stages the next install (rule 16)") {
  // LW.i8 of ones in 7; in 8 the IW.i8 installs them (A, active from 8 + mxm_iw = 12) while an
  // LW.f16 of 3.0 (on a lower queue, so the model applies it first) stages the next install,
  // the IW.f16 in 9 (B, from 13). The assembler used to reject the LW.f16 (checked against the
  // .i8 rows being installed). A CONST in t on vxm.0 (position 5) reaches the plane (11) in
  // t + 7: x = ones (.i8, CONST in 5) for MM.i8 in 12 into accumulator 0, x = 1.0 (.f16, CONST
  // in 6) for MM.f16 in 13 into accumulator 1. y row 0 = A x: 32 x 1 = 32 (int32), row 1 =
  // B x: 16 x 3.0 = 48.0 (f32, a row holds 16 f16 weights). ACCRD in 16, 17 (MM + mxm_mm), at
  // the plane in 17, 18, at mem.e.3 (9) in 19, 20. Rows 1.. of the weights are zero.
  const std::string src = R"(.symbol y i32[16] mem.e.3 @ 0
.queue vxm.0
    @0 CONST.i8 s0e, 1
    @1 CONST.f16 s1e, 3.0
    @5 CONST.i8 s2e, 1
    @6 CONST.f16 s3e, 1.0
.queue mxm.e.0.0
    @7 LW.i8 s0e, 0
    @8 LW.f16 s1e, 0
.queue mxm.e.0.1
    @8 IW.i8
    @9 IW.f16
.queue mxm.e.0.2
    @12 MM.i8 s2e, 0
    @13 MM.f16 s3e, 1
    @16 ACCRD.i32 0, s3w, 0
    @17 ACCRD.f32 1, s3w, 0
.queue mem.e.3
    @19 WRITE s3w, 0, 1
    REPEAT 1, 1
)";
  auto r = run_text(src, "mini", model::Mode::Functional, {"y"});
  const auto& b = r.out["y"];
  REQUIRE(b.size() == 64);
  auto i = as<std::int32_t>(std::vector<std::uint8_t>(b.begin(), b.begin() + 32));
  auto f = as<float>(std::vector<std::uint8_t>(b.begin() + 32, b.end()));
  CHECK(i[0] == 32);
  CHECK(f[0] == 48.0f);
  for (std::size_t k = 1; k < 8; ++k) {
    CHECK(i[k] == 0);
    CHECK(f[k] == 0.0f);
  }
  // Timing-only mode runs it too, in the same number of cycles.
  CHECK(run_text(src, "mini", model::Mode::TimingOnly).stats.cycles == r.stats.cycles);
}

TEST_CASE("SCATTER writes both superlanes when they share a row, and only its superlanes (rule 14)") {
  // The source row (mem.w.3, position 1) READ in 1 is on s0e at 1 in 3 and at mem.w.0 (4) in
  // 6; the index row (mem.w.2, position 2) READ in 2 is at 2 in 4 and at 4 in 6. SCATTER in 6
  // with both offsets 0 writes superlane 0 and 1 of row 10, committed at the end of 6 (mem_write
  // 1). The model used to write each superlane as a read-modify-write of the whole row taken at
  // issue, so the second (superlane 1) put back superlane 0's old zeros.
  const std::string src = ".data src i8[32] mem.w.3 @ 0 = " + ramp(32, 1) + R"(
.data idx i16[16] mem.w.2 @ 0 = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
.symbol out i8[32] mem.w.0 @ 10
.queue mem.w.3
    @1 READ 0, s0e
.queue mem.w.2
    @2 READ 0, s1e
.queue mem.w.0
    @6 SCATTER s0e, s1e, 10
)";
  auto p = load_preset("mini");
  auto obj = assembler::assemble_string(src, "t.lpa", p).program;
  model::Chip chip(p, model::Mode::Functional);
  chip.load(obj);
  Recorder rec;
  chip.set_observer(&rec);
  chip.run();
  auto o = as<std::uint8_t>(chip.read_symbol("out"));
  for (int i = 0; i < 32; ++i) CHECK(o[std::size_t(i)] == i + 1);
  // Observed: one write per superlane (offset 0 and 16) of row 10 of mem.w.0 (position 4),
  // issued in 6 and committed at its end; one port access for the row.
  REQUIRE(rec.sram.size() == 2);
  for (int sl = 0; sl < 2; ++sl) {
    const auto& w = rec.sram[std::size_t(sl)];
    CHECK(w.pos == 4);
    CHECK(w.row == 10);
    CHECK(w.offset == 16 * sl);
    CHECK(w.cycle == 6);
    CHECK(w.commit == 6);
    REQUIRE(w.data.size() == 16);
    CHECK(w.data[0] == 16 * sl + 1);
  }
  int writes = 0;
  for (const auto& [pos, row, write, cycle] : rec.access) writes += write && pos == 4 && row == 10 && cycle == 6;
  CHECK(writes == 1);

  // With mem_write = 2: a WRITE of row 11 in 5 (committed at the end of 6) and a SCATTER in 6
  // of superlane 0 to row 11 (offsets 1 and 0, base 10; committed at the end of 7). Row 11 ends
  // with superlane 0 from the SCATTER and superlane 1 from the WRITE (the SCATTER's row taken at
  // its issue in 6 did not have the WRITE yet). The WRITE's value: a CONST 7 in 3 at the VXM
  // (5) in 4, at mem.w.0 (4) in 5. Index row: superlane 0 offset 1, superlane 1 offset 0.
  const std::string src2 = ".data src i8[32] mem.w.3 @ 0 = " + ramp(32, 1) + R"(
.data idx i16[16] mem.w.2 @ 0 = [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
.symbol out i8[64] mem.w.0 @ 10
.queue vxm.0
    @3 CONST.i8 s2w, 7
.queue mem.w.3
    @1 READ 0, s0e
.queue mem.w.2
    @2 READ 0, s1e
.queue mem.w.0
    @5 WRITE s2w, 11
    @6 SCATTER s0e, s1e, 10
)";
  auto r = run_text(src2, "mini", model::Mode::Functional, {"out"}, {"latency.mem_write=2"});
  auto o2 = as<std::uint8_t>(r.out["out"]);
  for (int i = 0; i < 16; ++i) {
    CHECK(o2[std::size_t(i)] == 0);                // row 10, superlane 0: untouched
    CHECK(o2[std::size_t(16 + i)] == 17 + i);      // row 10, superlane 1: the SCATTER
    CHECK(o2[std::size_t(32 + i)] == 1 + i);       // row 11, superlane 0: the SCATTER
    CHECK(o2[std::size_t(48 + i)] == 7);           // row 11, superlane 1: the WRITE
  }
}

TEST_CASE("issue hook: TRANS is reported in functional mode, pc is the instruction's own word index") {
  // sxm.e.0: TRANS in 3 (as in the transpose test above). mem.e.3: READ (word 0) with REPEAT 15
  // (word 1) in 0..15, then READ row 0 in 30 (after a NOP word). vxm.0: CONFIG (word 0) in 0,
  // CONST (word 1) in 1. Every event's pc points at a word with the event's opcode.
  std::string src = ".data d i8[512] mem.e.3 @ 0 = " + ramp(512) + R"(
.queue mem.e.3
     READ 0, s0e, 1
     REPEAT 15, 1
     @30 READ 0, s2e
.queue sxm.e.0
     @3 TRANS s0e, s1w
.queue vxm.0
     CONFIG r1, 3
     CONST.i8 s3e, 1
)";
  auto p = load_preset("mini");
  auto obj = assembler::assemble_string(src, "t.lpa", p).program;
  for (auto mode : {model::Mode::Functional, model::Mode::TimingOnly}) {
    CAPTURE(int(mode));
    model::Chip chip(p, mode);
    chip.load(obj);
    std::vector<model::Chip::IssueEvent> ev;
    chip.set_issue_hook([&](const model::Chip::IssueEvent& e) { ev.push_back(e); });
    chip.run();
    int trans = 0, reads = 0;
    for (const auto& e : ev) {
      const auto& qname = chip.layout().queue(QueueId{e.queue}).name;
      const auto* qc = [&]() -> const obj::QueueCode* {
        for (const auto& q : obj.queues)
          if (q.name == qname) return &q;
        return nullptr;
      }();
      REQUIRE(qc);
      REQUIRE(std::size_t(e.pc) < qc->words.size());
      CHECK(isa::decode(qc->words[std::size_t(e.pc)]).op == isa::decode(e.word).op);
      if (isa::decode(e.word).op == isa::Op::Trans) {
        ++trans;
        CHECK(e.cycle == 3);
        CHECK(e.pc == 1);  // words: NOP 3, TRANS
      }
      if (isa::decode(e.word).op == isa::Op::Read) {
        ++reads;
        CHECK(e.pc == (e.cycle == 30 ? 3 : 0));  // words: READ, REPEAT, NOP, READ
      }
      if (qname == "vxm.0") CHECK(e.pc == e.cycle);  // CONFIG word 0 in 0, CONST word 1 in 1
    }
    CHECK(trans == 1);
    CHECK(reads == (mode == model::Mode::Functional ? 17 : 2));  // an event per instance / per group
  }
}
