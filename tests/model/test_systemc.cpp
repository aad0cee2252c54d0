// The SystemC view runs the same engine: several chips elaborated in one SystemC simulation
// give the cycles, statistics and outputs of direct runs, and SystemC time ends at the program's
// last event.
#include <doctest/doctest.h>

#include "helpers.hpp"
#include "lpu/sc/chip_module.hpp"

using namespace lpu;
using namespace lpu::test;

TEST_CASE("SystemC chips match direct runs") {
  struct Prog { const char* file; const char* sym; };
  const Prog progs[] = {{"vector_add.lpa", "c"}, {"matvec_i8.lpa", "y"}, {"softmax.lpa", "y"}, {"mlp_bf16.lpa", "Y"}};
  std::vector<std::unique_ptr<lpu::sc::ChipModule>> mods;
  std::vector<Ran> direct;
  int i = 0;
  for (const auto& pr : progs) {
    auto file = example(pr.file);
    auto p = load_preset(assembler::preset_of_file(file, "lp30"));
    auto obj = assembler::assemble_file(file, p).program;
    mods.push_back(std::make_unique<lpu::sc::ChipModule>(("chip" + std::to_string(i++)).c_str(), p,
                                                          model::Mode::Functional));
    mods.back()->enable_signals(true);
    mods.back()->chip().load(obj);
    direct.push_back(run_file(file, model::Mode::Functional, {pr.sym}));
  }
  sc_core::sc_start();
  std::int64_t longest = 0;
  for (std::size_t k = 0; k < mods.size(); ++k) {
    auto& c = mods[k]->chip();
    CAPTURE(progs[k].file);
    CHECK(c.done());
    CHECK(c.stats().cycles == direct[k].stats.cycles);
    CHECK(c.stats().sram_bytes_read == direct[k].stats.sram_bytes_read);
    CHECK(c.read_symbol(progs[k].sym) == direct[k].out[progs[k].sym]);
    // Last issue lands within the program length; SystemC time reached the last issue cycle.
    longest = std::max<std::int64_t>(longest, c.stats().cycles);
  }
  // Every chip's thread ended at its last event: SystemC time is below the longest program.
  CHECK(sc_core::sc_time_stamp() < mods[0]->period() * double(longest));
  CHECK(sc_core::sc_time_stamp() > sc_core::SC_ZERO_TIME);
  // The slice signals saw the last instruction of vxm.0 in vector_add (ADD in cycle 4).
  for (const auto& s : mods[0]->slices())
    if (s->slice().name == "vxm") CHECK(s->issued_cycle[0]->read() == 4);
}
