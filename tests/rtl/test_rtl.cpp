// The RTL harness on its own: programs with known results and timing (docs/timing.md worked
// examples), host access, the random program generator, waveforms.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "lpu/arch/params.hpp"
#include "lpu/asm/assembler.hpp"
#include "lpu/isa/isa.hpp"
#include "lpu/rtl/lockstep.hpp"
#include "lpu/rtl/randprog.hpp"
#include "lpu/rtl/rtl_chip.hpp"

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
  for (const char* m : {"READ", "WRITE", "GATHER", "SCATTER", "ADD", "MUL", "SEL", "EXP", "SUM", "CVT", "CONST", "LW",
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
