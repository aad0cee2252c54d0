// The RTL harness on its own: programs with known results and timing (docs/timing.md worked
// examples), host access, the random program generator, waveforms.
#include <doctest/doctest.h>

#include <fmt/format.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "lpu/arch/params.hpp"
#include "lpu/asm/assembler.hpp"
#include "lpu/common/errors.hpp"
#include "lpu/isa/isa.hpp"
#include "lpu/model/chip.hpp"
#include "lpu/rtl/lockstep.hpp"
#include "lpu/rtl/randprog.hpp"
#include "lpu/rtl/rtl_chip.hpp"
#include "lpu/rtl/rtl_config.hpp"

using namespace lpu;
namespace fs = std::filesystem;

namespace {

std::string example(const char* name) { return (fs::path(LPU_SOURCE_DIR) / "examples" / name).string(); }

obj::Program assemble(const std::string& text) {
  return assembler::assemble_string(text, "test.lpa", load_preset("mini")).program;
}

// Runs until the RTL has finished; returns the cycles stepped.
std::int64_t run(rtl::RtlChip& c, std::int64_t limit = 100000) {
  std::int64_t n = 0;
  while (!(c.finished() && c.streams_empty()) && n < limit) {
    c.step();
    ++n;
  }
  return n;
}

// The weight bus (LWM): the 4-slice matvec of tests/model/test_weight_bus.cpp. W[r][c] =
// (r mod 11) - 5 + (1 if c mod 3 = 0), an i8 32 x 32 matrix, row r in mem.e.(r mod 4) at row
// r / 4. Slice mem.e.j: LWM.i8 0, 0, j, 4, 32 + REPEAT 7, 1 in cycles 0..7, instance k reads its
// row k (W row 4k + j) into staging row j + 4k, landing in 3 + k (mem_lwm 3): four rows per
// cycle in 3..10. IW in `iw`; x = ones (CONST in iw - 2, at the plane in iw + 5 = the MM's
// cycle); ACCRD parts 0..3 in MM + 4 .. + 7; WRITE of y to mem.e.3 rows 16..19.
int w_at(int r, int col) { return r % 11 - 5 + (col % 3 == 0 ? 1 : 0); }
std::string lwm_matvec(int iw, bool transpose = false) {
  std::string src = ".preset mini\n.data W i8[32, 32] mem.e.0..3 @ 0 = [";
  for (int r = 0; r < 32; ++r)
    for (int col = 0; col < 32; ++col) src += fmt::format("{}{}", r || col ? ", " : "", w_at(r, col));
  src += "]\n.symbol y i32[32] mem.e.3 @ 16\n";
  for (int j = 0; j < 4; ++j) src += fmt::format(".queue mem.e.{}\n    @0 LWM.i8 0, 0, {}, 4, 32\n    REPEAT 7, 1\n", j, j);
  const int mm = iw + 5;
  src += fmt::format(".queue mxm.e.0.0\n    @{} IW.i8{}\n", iw, transpose ? " 1" : "");
  src += fmt::format(".queue vxm.0\n    @{} CONST.i8 s0e, 1\n", iw - 2);
  src += fmt::format(".queue mxm.e.0.1\n    @{} MM.i8 s0e, 0\n", mm);
  src += ".queue mxm.e.0.2\n";
  for (int part = 0; part < 4; ++part) src += fmt::format("    @{} ACCRD.i32 0, s1w, {}\n", mm + 4 + part, part);
  src += fmt::format(".queue mem.e.3.1\n    @{} WRITE s1w, 16, 1\n    REPEAT 3, 1\n", mm + 4 + 1 + 2);
  return src;
}
std::vector<std::int32_t> as_i32(const std::vector<std::uint8_t>& b) {
  std::vector<std::int32_t> v(b.size() / 4);
  std::memcpy(v.data(), b.data(), v.size() * 4);
  return v;
}
// y of the program on the model (functional).
std::vector<std::int32_t> model_y(const obj::Program& prog) {
  model::Chip chip(load_preset("mini"), model::Mode::Functional);
  chip.load(prog);
  chip.run();
  return as_i32(chip.read_symbol("y"));
}

// A transposed (or not) install of type `t` (i8 e4m3 e5m2 f16 bf16): n = 32 / sizeof(t).
// W (n x n, row r = SRAM row r of mem.e.0) goes over the weight bus: LWM.t 0, 0, 0, 1, n +
// REPEAT n - 1, 1 from cycle 0, row r landing in staging row r in 3 + r (mem_lwm 3), the last in
// n + 2; IW.t tr in n + 3; x (SRAM row 0 of mem.w.0, position 4) READ in n - 2 is on s0e at 4 in
// n (mem_read 2) and at the plane (11) in n + 7 = the MM's cycle (IW + mxm_iw); ACCRD.{i32,f32}
// parts 0..parts-1 from MM + 4 (mxm_mm 4) on s1w, at the plane in MM + 5 + p, at mem.e.3 (9) two
// hops later: WRITE rows 16.. of y from MM + 7. Values are small integers (|W|, |x| <= 4), exact
// in every type, and their products and sums exact in f32. W[r][c] != W[c][r] unless r = c mod 9.
struct TrCase {
  const char* t;
  int n;
};
int tr_w(int r, int c) { return (7 * r + 3 * c) % 9 - 4; }
int tr_x(int j) { return j % 5 - 2; }
std::string tr_matvec(const TrCase& k, bool transpose) {
  const bool f = std::string(k.t) != "i8";
  const int n = k.n, parts = 4 * n / 32, mm = n + 7;
  std::string w, x;
  for (int r = 0; r < n; ++r)
    for (int c = 0; c < n; ++c) w += fmt::format("{}{}", r || c ? ", " : "", tr_w(r, c));
  for (int j = 0; j < n; ++j) x += fmt::format("{}{}", j ? ", " : "", tr_x(j));
  std::string src = fmt::format(".preset mini\n.data W {0}[{1}, {1}] mem.e.0 @ 0 = [{2}]\n.data X {0}[{1}] mem.w.0 @ 0 = [{3}]\n"
                                ".symbol y {4}[{1}] mem.e.3 @ 16\n",
                                k.t, n, w, x, f ? "f32" : "i32");
  src += fmt::format(".queue mem.e.0\n    @0 LWM.{} 0, 0, 0, 1, {}\n    REPEAT {}, 1\n", k.t, n, n - 1);
  src += fmt::format(".queue mem.w.0\n    @{} READ 0, s0e\n", n - 2);
  src += fmt::format(".queue mxm.e.0.0\n    @{} IW.{}{}\n", n + 3, k.t, transpose ? " 1" : "");
  src += fmt::format(".queue mxm.e.0.1\n    @{} MM.{} s0e, 0\n.queue mxm.e.0.2\n", mm, k.t);
  for (int p = 0; p < parts; ++p) src += fmt::format("    @{} ACCRD.{} 0, s1w, {}\n", mm + 4 + p, f ? "f32" : "i32", p);
  src += fmt::format(".queue mem.e.3.1\n    @{} WRITE s1w, 16, 1\n    REPEAT {}, 1\n", mm + 7, parts - 1);
  return src;
}
// y = W x, or W^T x transposed (W[i][j] = staging row j, element i: docs/timing.md rule 16).
std::vector<double> tr_reference(int n, bool transpose) {
  std::vector<double> y(std::size_t(n), 0.0);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) y[std::size_t(i)] += (transpose ? tr_w(j, i) : tr_w(i, j)) * tr_x(j);
  return y;
}
// y as doubles (int32 for i8, f32 otherwise) from the bytes of the symbol.
std::vector<double> tr_values(const std::vector<std::uint8_t>& b, bool f) {
  std::vector<double> v(b.size() / 4);
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (f) {
      float x;
      std::memcpy(&x, b.data() + 4 * i, 4);
      v[i] = x;
    } else {
      std::int32_t x;
      std::memcpy(&x, b.data() + 4 * i, 4);
      v[i] = x;
    }
  }
  return v;
}

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

}  // namespace

TEST_CASE("RTL: vector_add computes c = a + b in 9 cycles (docs/timing.md rule 23)") {
  rtl::RtlChip c;
  auto prog = assembler::assemble_file(example("vector_add.lpa"), load_preset("mini")).program;
  c.load(prog);
  run(c);
  REQUIRE_FALSE(c.error());
  auto out = c.read_symbol("c");
  REQUIRE(out.size() == 32);
  for (int i = 0; i < 32; ++i) {
    int a = i + 1;
    int b = i < 16 ? 100 : (i < 31 ? -(i - 15) : 127);
    CHECK(static_cast<std::int8_t>(out[std::size_t(i)]) == static_cast<std::int8_t>(a + b));
  }
  CHECK(c.program_cycles() == 9);
}

TEST_CASE("RTL: the VXM boundary of docs/timing.md: ADD one cycle early reads an empty stream") {
  const char* ok = R"(.preset mini
.queue mem.w.0
ra: READ 0, s0e
.queue vxm.0
    @3 ADD.i8 s0e, s0e, s1e
)";
  const char* early = R"(.preset mini
.queue mem.w.0
ra: READ 0, s0e
.queue vxm.0
    @3 NOT.i8 s0e, s1e
)";
  rtl::RtlChip c;
  c.load(assemble(ok));
  run(c);
  CHECK_FALSE(c.error());
  // the object is edited after assembly: the assembler would refuse the early read
  auto prog = assemble(early);
  for (auto& q : prog.queues)
    if (q.name == "vxm.0") {
      REQUIRE(isa::decode(q.words.at(0)).op == isa::Op::Nop);
      q.words[0] = isa::encode(isa::Instr{isa::Op::Nop, isa::Dtype::I8, isa::Dtype::I8, {2, 0, 0, 0}});
    }
  c.load(prog);
  run(c);
  auto e = c.error();
  REQUIRE(e);
  CHECK(e->code == 1);
  CHECK(e->cycle == 2);
  CHECK(e->message.find("empty stream") != std::string::npos);
}

TEST_CASE("RTL: SRAM write then read (rules 11, 12), registers, host access") {
  const char* text = R"(.preset mini
.reg r1 = 5
.data a i8[32] mem.w.0 @ 0 = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32]
.symbol b i8[32] mem.w.0 @ 7
.queue mem.w.0
    @2 WRITE s0e, [r1 + 2]
.queue mem.w.0.1
    @0 READ 0, s0e
    @2 READ 7, s1e
    @3 READ 7, s2e
)";
  rtl::RtlChip c;
  c.load(assemble(text));
  for (int i = 0; i < 8; ++i) {
    if (c.cycle() == 4) CHECK(c.stream_value(1, Dir::East, 4) == rtl::Vec{});  // READ in 2: the old row
    if (c.cycle() == 5) {
      auto v = c.stream_value(2, Dir::East, 4);  // READ in 3: the new row (mem_write = 1)
      CHECK(v[0] == 1);
      CHECK(v[31] == 32);
    }
    if (c.cycle() == 2) {
      auto w = c.sram_writes();
      REQUIRE(w.size() == 1);
      CHECK(w[0].rows[0] == 7);
      CHECK(w[0].slice == c.slice_index("mem.w.0"));
    }
    c.step();
  }
  CHECK_FALSE(c.error());
  auto b = c.read_symbol("b");
  CHECK(b[0] == 1);
  CHECK(b[31] == 32);
}

TEST_CASE("RTL: REPEAT timing example of docs/timing.md (rule 3) and issue observation") {
  const char* text = R"(.preset mini
.queue mem.w.0
    READ 0, s0e, 1
    REPEAT 3, 1
    @10 READ 7, s1e
)";
  rtl::RtlChip c;
  c.load(assemble(text));
  std::vector<std::pair<std::int64_t, std::uint64_t>> issues;
  const int q = c.layout().find_queue("mem.w.0")->v;
  for (int i = 0; i < 14; ++i) {
    if (c.issued(q)) issues.emplace_back(c.cycle(), c.issued_word(q));
    c.step();
  }
  REQUIRE(issues.size() == 5);
  for (int k = 0; k < 4; ++k) {
    CHECK(issues[std::size_t(k)].first == k);
    auto in = isa::decode(issues[std::size_t(k)].second);
    CHECK(in.op == isa::Op::Read);
    CHECK(isa::addr_offset(in.v[0]) == k);  // the stepped row
  }
  CHECK(issues[4].first == 10);
}

TEST_CASE("RTL: LWM, four slices fill the plane at four rows per cycle, and y = W x is the model's") {
  rtl::RtlChip c;
  const auto prog = assemble(lwm_matvec(11));
  c.load(prog);
  std::map<std::int64_t, std::vector<std::pair<int, int>>> landed;  // cycle -> (slice, staging row)
  int bad_data = 0;
  for (int i = 0; i < 40 && !(c.finished() && c.streams_empty()); ++i) {
    for (const auto& w : c.weight_rows()) {
      landed[c.cycle()].emplace_back(w.slice, w.row);
      for (int col = 0; col < 32; ++col) bad_data += static_cast<std::int8_t>(w.data[std::size_t(col)]) != w_at(w.row, col);
    }
    c.step();
  }
  REQUIRE_FALSE(c.error());
  CHECK(bad_data == 0);  // staging row r holds W row r
  // slice mem.e.j (RTL index 4 + j), instance k: issued in k, lands in 3 + k in row j + 4k
  REQUIRE(landed.size() == 8);
  for (int k = 0; k < 8; ++k) {
    CAPTURE(k);
    auto v = landed[3 + k];
    std::sort(v.begin(), v.end());
    REQUIRE(v.size() == 4);
    for (int j = 0; j < 4; ++j) CHECK(v[std::size_t(j)] == std::pair{c.slice_index(fmt::format("mem.e.{}", j)), j + 4 * k});
  }
  const auto y = as_i32(c.read_symbol("y"));
  REQUIRE(y.size() == 32);
  for (int r = 0; r < 32; ++r) {
    int want = 0;
    for (int col = 0; col < 32; ++col) want += w_at(r, col);
    CHECK(y[std::size_t(r)] == want);
  }
  CHECK(y == model_y(prog));
  // the model test's derivation: the last WRITE lands in 27: 27 + 1 + (2 - 1) x 1 = 29
  CHECK(c.program_cycles() == 29);
}

TEST_CASE("RTL: LWM boundary, an IW in the landing cycle of the last rows does not install them (rule 16)") {
  // IW in 10: rows 28..31 land in 10 and belong to the next install: the installed rows 28..31
  // are still zero, so y[28..31] = 0; the other rows as with the IW in 11. The model agrees.
  rtl::RtlChip c;
  std::vector<std::int32_t> y[2];
  for (int iw : {10, 11}) {
    CAPTURE(iw);
    const auto prog = assemble(lwm_matvec(iw));
    c.load(prog);
    run(c);
    REQUIRE_FALSE(c.error());
    y[iw - 10] = as_i32(c.read_symbol("y"));
    CHECK(y[iw - 10] == model_y(prog));
  }
  for (int r = 0; r < 28; ++r) CHECK(y[0][std::size_t(r)] == y[1][std::size_t(r)]);
  for (int r = 28; r < 32; ++r) {
    CHECK(y[0][std::size_t(r)] == 0);
    CHECK(y[1][std::size_t(r)] != 0);
  }
}

TEST_CASE("RTL: REPEATed LWM, instance k lands in staging row (row + k x rstep) mod wrap") {
  // mem.e.2: LWM.bf16 5, 0, 3, 5, 12 + REPEAT 9, 2: instance k issues in 1 + 2k, reads row 5 + k
  // and lands in 4 + 2k in staging row (3 + 5k) mod 12 = 3, 8, 1, 6, 11, 4, 9, 2, 7, 0.
  const char* text = R"(.preset mini
.queue mem.e.2
    @1 LWM.bf16 5, 0, 3, 5, 12
    REPEAT 9, 2
)";
  rtl::RtlChip c;
  c.load(assemble(text));
  const int slice = c.slice_index("mem.e.2");
  std::vector<rtl::Vec> rows;
  for (int k = 0; k < 10; ++k) {
    rtl::Vec v{};
    for (int i = 0; i < 32; ++i) v[std::size_t(i)] = std::uint8_t(16 * k + i);
    c.write_row(slice, 5 + k, v);
    rows.push_back(v);
  }
  std::vector<std::tuple<std::int64_t, int, int>> landed;  // cycle, slice, staging row
  int k = 0;
  for (int i = 0; i < 30; ++i) {
    for (const auto& w : c.weight_rows()) {
      landed.emplace_back(c.cycle(), w.slice, w.row);
      if (k < 10) CHECK(w.data == rows[std::size_t(k)]);
      ++k;
    }
    c.step();
  }
  REQUIRE_FALSE(c.error());
  REQUIRE(landed.size() == 10);
  for (int j = 0; j < 10; ++j) CHECK(landed[std::size_t(j)] == std::tuple{std::int64_t(4 + 2 * j), slice, (3 + 5 * j) % 12});
}

TEST_CASE("RTL and model: an LWM from a west slice (no plane in that hemisphere) is refused at load, the same way") {
  // The assembler refuses it, so the object is edited: the LWM of mem.e.0 moved to mem.w.0. Both
  // loaders run the one object check (obj::check_program), before the chip is touched.
  auto prog = assemble(".preset mini\n.queue mem.e.0\n    @2 LWM.i8 0, 0, 0, 1, 32\n");
  REQUIRE(prog.queues.size() == 1);
  prog.queues[0].name = "mem.w.0";
  const std::string msg = "object: queue mem.w.0 word 1 (LWM): plane 0 beyond the 0 MXM plane(s) of mem.w.0's hemisphere";
  rtl::RtlChip c;
  CHECK_THROWS_WITH(c.load(prog), doctest::Contains(msg.c_str()));
  model::Chip chip(load_preset("mini"), model::Mode::Functional);
  CHECK_THROWS_WITH(chip.load(prog), doctest::Contains(msg.c_str()));
}

TEST_CASE("RTL: IW with tr = 1 installs the staging buffer transposed, as the model does (i8 matvec over the weight bus)") {
  // The model's test (tests/model/test_weight_bus.cpp): x = ones, so y[r] = sum over c of
  // W[c][r] = sum of ((c mod 11) - 5) over c = 0..31 (155 - 160 = -5), + 32 when r mod 3 = 0.
  // Same timing as without the flag: 29 cycles. With the IW in the landing cycle of the last
  // rows (10), staging rows 28..31 are not installed (still zero): y[r] = sum over c < 28 of
  // W[c][r] = (125 - 140) + 28 (r mod 3 = 0) (rule 16, transposed or not).
  rtl::RtlChip c;
  for (int iw : {11, 10}) {
    CAPTURE(iw);
    const auto prog = assemble(lwm_matvec(iw, true));
    c.load(prog);
    run(c);
    REQUIRE_FALSE(c.error());
    const auto y = as_i32(c.read_symbol("y"));
    REQUIRE(y.size() == 32);
    for (int r = 0; r < 32; ++r) {
      CAPTURE(r);
      int want = 0;
      for (int col = 0; col < (iw == 11 ? 32 : 28); ++col) want += w_at(col, r);
      CHECK(want == (iw == 11 ? -5 + (r % 3 == 0 ? 32 : 0) : -15 + (r % 3 == 0 ? 28 : 0)));
      CHECK(y[std::size_t(r)] == want);
    }
    CHECK(y == model_y(prog));
    if (iw == 11) CHECK(c.program_cycles() == 29);
  }
}

TEST_CASE("RTL: transposed installs of every MXM type (i8 e4m3 e5m2 f16 bf16) give W^T x, as the model does") {
  // tr_matvec: n x n weights over the weight bus, IW.t tr, one MM, the accumulator written to y.
  // Each type installed both ways: the RTL's y is the reference (W x, or W^T x with tr = 1) and
  // the model's, the program length is the model's and the same both ways, and the whole run
  // agrees with the model in lockstep, cycle by cycle.
  const auto mini = load_preset("mini");
  rtl::RtlChip c;
  for (const TrCase k : {TrCase{"i8", 32}, TrCase{"e4m3", 32}, TrCase{"e5m2", 32}, TrCase{"f16", 16}, TrCase{"bf16", 16}}) {
    const bool f = std::string(k.t) != "i8";
    std::int64_t cycles[2] = {0, 0};
    for (const bool tr : {false, true}) {
      const std::string type = k.t;
      CAPTURE(type);
      CAPTURE(tr);
      const auto prog = assemble(tr_matvec(k, tr));
      c.load(prog);
      run(c);
      REQUIRE_FALSE(c.error());
      const auto want = tr_reference(k.n, tr);
      CHECK(want != tr_reference(k.n, !tr));  // the flag matters for these weights
      CHECK(tr_values(c.read_symbol("y"), f) == want);
      model::Chip chip(mini, model::Mode::Functional);
      chip.load(prog);
      chip.run();
      CHECK(tr_values(chip.read_symbol("y"), f) == want);
      cycles[tr] = c.program_cycles();
      CHECK(cycles[tr] == chip.stats().cycles);
      const auto ls = rtl::run_lockstep(c, prog, mini);
      if (!ls.ok()) MESSAGE(ls.report());
      CHECK(ls.ok());
      CHECK(ls.stats.acc_writes == 1);
      CHECK(ls.stats.weight_rows == k.n);
    }
    CHECK(cycles[0] == cycles[1]);
  }
}

TEST_CASE("RTL parameters: every number the RTL is built with is checked against the preset, a mismatch refused naming the key") {
  const auto mini = load_preset("mini");
  CHECK_NOTHROW(rtl::check_rtl_params(mini));
  // the table covers every latency class of the ISA and the ICU parameters
  std::set<std::string> keys;
  for (const auto& v : rtl::cfg::kPresetValues) keys.insert(v.key);
  for (int c = 0; c < isa::kNumLatClasses; ++c)
    if (isa::LatClass(c) != isa::LatClass::None) CHECK(keys.count("latency." + std::string(isa::kLatClassNames[std::size_t(c)])) == 1);
  for (const char* k : {"icu.notify_latency", "icu.superlane_stagger", "mem.rows", "mxm.install_rows_per_cycle", "c2c.deskew_period"})
    CHECK(keys.count(k) == 1);
  CHECK(keys.size() >= 38);
  // each one changed by one in the preset (an override, as a stale build would see an edited
  // configs/mini.toml) is refused with a ConfigError naming it and both values
  for (const auto& v : rtl::cfg::kPresetValues) {
    const std::string key = v.key;
    CAPTURE(key);
    const auto changed = load_preset("mini", {fmt::format("{}={}", key, v.value + 1)});
    try {
      rtl::check_rtl_params(changed);
      FAIL("accepted");
    } catch (const ConfigError& e) {
      CHECK(e.key() == key);
      CHECK(std::string(e.what()) ==
            fmt::format("config: {0}: the RTL was built for preset 'mini' with {0} = {1}, but the preset now has {2}; rebuild lpu_rtl "
                        "(rtl/gen_cfg.py generates its configuration from configs/mini.toml)",
                        key, v.value, v.value + 1));
    }
  }
  CHECK_THROWS_WITH_AS(rtl::check_rtl_params(load_preset("tsp1")), "config: name: the RTL is the 'mini' chip, not 'tsp1'", ConfigError);
}

TEST_CASE("random programs: deterministic, accepted by the assembler, mixing every unit") {
  CHECK(rtl::random_program(7) == rtl::random_program(7));
  CHECK(rtl::random_program(7) != rtl::random_program(8));
  std::set<std::string> mnemonics;
  for (std::uint64_t s = 1; s <= 40; ++s) {
    CAPTURE(s);
    auto text = rtl::random_program(s);
    obj::Program prog;
    REQUIRE_NOTHROW(prog = assemble(text));
    for (const auto& q : prog.queues)
      for (auto w : q.words) mnemonics.insert(std::string(isa::info(isa::decode(w).op).mnemonic));
  }
  for (const char* m : {"READ", "WRITE", "GATHER", "SCATTER", "LWM", "ADD", "MUL", "SEL", "EXP", "SUM", "CVT", "CONST", "LW",
                        "IW", "MM", "MMA", "ACCRD", "SHIFT", "ROT", "PERM", "DIST", "TRANS", "SEND", "RECV", "DMAIN",
                        "DMAOUT", "NOP", "REPEAT", "REPEATR", "SYNC", "NOTIFY", "CONFIG", "HALT", "DESKEW"}) {
    CAPTURE(m);
    CHECK(mnemonics.count(m) == 1);
  }
}

TEST_CASE("waveform: an FST of the RTL run read back by fst2vcd, a VCD read by vcd2fst, the GTKWave layout") {
  const auto dir = fs::temp_directory_path() / ("lpu_rtl_wave_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  auto prog = assembler::assemble_file(example("matvec_i8.lpa"), load_preset("mini")).program;
  const std::string fst = (dir / "matvec.fst").string();
  const std::string vcd = (dir / "matvec.vcd").string();
  {
    rtl::RtlChip c;
    c.set_wave(fst);
    c.load(prog);
    run(c);
    CHECK_FALSE(c.error());
    c.close_wave();
  }
  REQUIRE(fs::exists(fst));
  CHECK(fs::file_size(fst) > 1000);
  const std::string back = (dir / "back.vcd").string();
  REQUIRE(std::system(("fst2vcd -f '" + fst + "' -o '" + back + "' > /dev/null 2>&1").c_str()) == 0);
  auto text = slurp(back);
  for (const char* sig : {"obs_iss_w", "obs_sv_v", "obs_sram_we", "obs_acc_we", "pc"}) {
    CAPTURE(sig);
    CHECK(text.find(sig) != std::string::npos);
  }
  {
    rtl::RtlChip c;
    c.set_wave(vcd);
    c.load(prog);
    run(c);
    c.close_wave();
  }
  REQUIRE(fs::exists(vcd));
  CHECK(slurp(vcd).find("$enddefinitions") != std::string::npos);
  const std::string refst = (dir / "re.fst").string();
  CHECK(std::system(("vcd2fst '" + vcd + "' '" + refst + "' > /dev/null 2>&1").c_str()) == 0);
  CHECK(fs::exists(refst));
  // the saved GTKWave layout names signals that exist in the waveform (full hierarchical names)
  std::set<std::string> names;
  {
    std::istringstream v(text);
    std::string line;
    std::vector<std::string> scope;
    while (std::getline(v, line)) {
      std::istringstream w(line);
      std::string kw, a, b, c, d;
      w >> kw;
      if (kw == "$scope") {
        w >> a >> b;
        scope.push_back(b);
      } else if (kw == "$upscope") {
        scope.pop_back();
      } else if (kw == "$var") {
        w >> a >> b >> c >> d;
        std::string full;
        for (const auto& x : scope) full += x + ".";
        names.insert(full + d);
      } else if (kw == "$enddefinitions") {
        break;
      }
    }
  }
  auto gtkw = slurp((fs::path(LPU_SOURCE_DIR) / "rtl" / "lpu_mini.gtkw").string());
  REQUIRE_FALSE(gtkw.empty());
  std::istringstream lines(gtkw);
  std::string line;
  int named = 0;
  while (std::getline(lines, line)) {
    if (line.rfind("TOP.", 0) != 0) continue;
    auto name = line;
    if (name.back() == ']') name = name.substr(0, name.rfind('['));  // the bit range
    CAPTURE(line);
    CHECK(names.count(name) == 1);
    ++named;
  }
  CHECK(named >= 10);
  // GTKWave itself loads the layout on the waveform (headless, when xvfb-run is installed)
  if (std::system("command -v xvfb-run > /dev/null 2>&1 && command -v gtkwave > /dev/null 2>&1") == 0) {
    const std::string tcl = (dir / "count.tcl").string(), log = (dir / "gtkwave.log").string();
    std::ofstream(tcl) << "puts \"DISPLAYED [llength [gtkwave::getDisplayedSignals]]\"\ngtkwave::/File/Quit\n";
    const std::string cmd = "timeout 120 xvfb-run -a gtkwave -S '" + tcl + "' '" + fst + "' '" + LPU_SOURCE_DIR +
                            "/rtl/lpu_mini.gtkw' > '" + log + "' 2>&1";
    CHECK(std::system(cmd.c_str()) == 0);
    CHECK(slurp(log).find("DISPLAYED " + std::to_string(named)) != std::string::npos);
  }
  fs::remove_all(dir);
}
