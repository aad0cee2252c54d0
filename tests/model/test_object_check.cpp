// Objects are checked against the chip before anything indexes memory with them
// (obj::check_program, called by Chip::load): a valid-CRC object with a hostile symbol or data
// section is a located error in every mode, never an out-of-bounds write (issue 23, items 1-2).
#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "lpu/arch/layout.hpp"
#include "lpu/arch/params.hpp"
#include "lpu/asm/assembler.hpp"
#include "lpu/asm/object.hpp"
#include "lpu/common/errors.hpp"
#include "lpu/isa/isa.hpp"
#include "lpu/model/chip.hpp"

using namespace lpu;

namespace {

// A mini program with one 32-byte symbol, written and read back: the object a user or an
// attacker hands to `lpu run` (the CRC is valid; only the chip can tell what is wrong).
obj::Program crafted(void (*edit)(obj::Program&)) {
  auto p = load_preset("mini");
  auto prog = assembler::assemble_string(".symbol x i8[32] mem.e.0 @ 0\n.queue vxm.0\nCONST.i8 s0e, 1\n", "t.lpa", p).program;
  edit(prog);
  return obj::read_object(obj::write_object(prog), "crafted.lpo");
}

void refused(const obj::Program& prog, const std::string& message) {
  const auto p = load_preset("mini");
  for (auto mode : {model::Mode::Functional, model::Mode::TimingOnly}) {
    CAPTURE(int(mode));
    model::Chip chip(p, mode);
    CHECK_THROWS_WITH_AS(chip.load(prog, "crafted.lpo"), message.c_str(), FormatError);
    // Nothing was loaded: the symbol is unknown, not half-written.
    CHECK_THROWS_AS(chip.write_symbol("x", std::vector<std::uint8_t>(32, 1)), Error);
  }
}

}  // namespace

TEST_CASE("object check: a symbol at row 0xFFFFFFF0 is refused at load (it was an SRAM write out of bounds)") {
  auto prog = crafted([](obj::Program& g) { g.symbols[0].start_row = 0xFFFFFFF0u; });
  REQUIRE(prog.symbols[0].start_row == 0xFFFFFFF0u);
  // 4294967280 = 0xFFFFFFF0; mini has 256 rows per slice; 32 bytes are one row.
  refused(prog, "crafted.lpo: symbol 'x': rows 4294967280..4294967280 beyond the 256 rows of a slice (32 bytes in 1 slices)");
}

TEST_CASE("object check: the last row of a slice is the boundary") {
  const auto p = load_preset("mini");
  auto last = crafted([](obj::Program& g) { g.symbols[0].start_row = 255; });
  model::Chip chip(p, model::Mode::Functional);
  chip.load(last, "crafted.lpo");  // row 255 of 0..255: fits
  chip.write_symbol("x", std::vector<std::uint8_t>(32, 7));
  CHECK(chip.read_symbol("x") == std::vector<std::uint8_t>(32, 7));
  refused(crafted([](obj::Program& g) { g.symbols[0].start_row = 256; }),
          "crafted.lpo: symbol 'x': rows 256..256 beyond the 256 rows of a slice (32 bytes in 1 slices)");
}

TEST_CASE("object check: a symbol on an unknown or non-MEM slice is refused (it was a null dereference)") {
  refused(crafted([](obj::Program& g) { g.symbols[0].slices = {"vxm"}; }),
          "crafted.lpo: symbol 'x': 'vxm' is not a MEM slice of preset 'mini'");
  refused(crafted([](obj::Program& g) { g.symbols[0].slices = {"sxm.w"}; }),
          "crafted.lpo: symbol 'x': 'sxm.w' is not a MEM slice of preset 'mini'");
  refused(crafted([](obj::Program& g) { g.symbols[0].slices = {"mem.e.0", "mem.e.99"}; }),
          "crafted.lpo: symbol 'x': 'mem.e.99' is not a MEM slice of preset 'mini'");
}

TEST_CASE("object check: a symbol larger than the SRAM, or whose size overflows, is refused") {
  // 257 rows of 32 bytes in one slice of 256 rows.
  refused(crafted([](obj::Program& g) { g.symbols[0].shape = {257 * 32}; }),
          "crafted.lpo: symbol 'x': rows 0..256 beyond the 256 rows of a slice (8224 bytes in 1 slices)");
  // Every MEM slice of mini (8) whole, plus one row: 8 x 256 + 1 rows, 257 per slice.
  refused(crafted([](obj::Program& g) {
            g.symbols[0].shape = {(8 * 256 + 1) * 32};
            g.symbols[0].slices = {"mem.w.0", "mem.w.1", "mem.w.2", "mem.w.3", "mem.e.0", "mem.e.1", "mem.e.2", "mem.e.3"};
          }),
          "crafted.lpo: symbol 'x': rows 0..256 beyond the 256 rows of a slice (65568 bytes in 8 slices)");
  // 2^40 x 2^40 elements: the byte count would overflow int64.
  refused(crafted([](obj::Program& g) { g.symbols[0].shape = {std::int64_t(1) << 40, std::int64_t(1) << 40}; }),
          "crafted.lpo: symbol 'x': shape too large (17592186044416 bytes at most)");
}

TEST_CASE("object check: data sections and permutation tables are checked the same way") {
  refused(crafted([](obj::Program& g) { g.data.push_back({"mem.w.0", 0xFFFFFFF0u, std::vector<std::uint8_t>(32, 1)}); }),
          "crafted.lpo: data for 'mem.w.0' at row 4294967280: rows 4294967280..4294967280 beyond the 256 rows of a slice");
  refused(crafted([](obj::Program& g) { g.data.push_back({"vxm", 0, std::vector<std::uint8_t>(32, 1)}); }),
          "crafted.lpo: data for 'vxm' at row 0: 'vxm' is not a MEM slice of preset 'mini'");
  refused(crafted([](obj::Program& g) { g.perms.push_back({"mem.w.0", 0, std::vector<std::uint16_t>(32, 0)}); }),
          "crafted.lpo: permutation table 0 of mem.w.0: 'mem.w.0' is not an SXM of preset 'mini'");
}

TEST_CASE("fault injection: each refusal names its own condition") {
  const auto p = load_preset("mini");
  auto prog = crafted([](obj::Program&) {});
  model::Chip timing(p, model::Mode::TimingOnly);
  timing.load(prog);
  // A MEM slice of a timing-only chip: the message once said "'mem.e.0' is not a MEM slice".
  CHECK_THROWS_WITH_AS(timing.inject_fault("mem.e.0", 1, 1),
                       "fault injection into mem.e.0 needs a functional run: a timing-only chip keeps no SRAM contents to flip",
                       Error);
  model::Chip chip(p, model::Mode::Functional);
  chip.load(prog);
  CHECK_THROWS_WITH_AS(chip.inject_fault("vxm", 1, 1), "fault injection: 'vxm' is not a MEM slice of preset 'mini'", Error);
  CHECK_THROWS_WITH_AS(timing.inject_fault("vxm", 1, 1), "fault injection: 'vxm' is not a MEM slice of preset 'mini'", Error);
  CHECK_THROWS_WITH_AS(chip.inject_fault("mem.e.0", 256, 1), "fault injection: row 256 of mem.e.0 is out of range 0..255", Error);
  CHECK_THROWS_WITH_AS(chip.inject_fault("mem.e.0", 1, 0), "fault injection: 0 bits: flip at least 1", Error);
  chip.inject_fault("mem.e.0", 255, 1);
}

TEST_CASE("object check: a CVT's part is checked against its two types, as the assembler does") {
  // A widening e5m2 -> f32 has parts 0..3 (found by the lockstep's random programs once every
  // loader checked objects: the server's check allowed only part 0 for 1-byte source types).
  const auto p = load_preset("mini");
  auto ok = assembler::assemble_string(".queue vxm.0\nCONST.e5m2 s0e, 1\n@1 CVT.e5m2.f32 s0e, s1e, 3\n", "t.lpa", p).program;
  model::Chip chip(p, model::Mode::Functional);
  chip.load(ok, "cvt.lpo");
  auto bad = ok;
  auto in = isa::decode(bad.queues[0].words.back());
  REQUIRE(in.op == isa::Op::Cvt);
  in.v[2] = 4;
  bad.queues[0].words.back() = isa::encode(in);
  CHECK_THROWS_WITH_AS(chip.load(bad, "cvt.lpo"), "cvt.lpo: queue vxm.0 word 1 (CVT): part 4: a .e5m2.f32 conversion has parts 0..3",
                       FormatError);
}
