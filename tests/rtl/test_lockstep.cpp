// Lockstep of the RTL against the model: every example that assembles for mini, 200
// constrained-random programs (fixed seeds), and mutation checks proving the comparison is not
// blind.
#include <doctest/doctest.h>

#include <filesystem>
#include <fmt/format.h>

#include "lpu/arch/params.hpp"
#include "lpu/asm/assembler.hpp"
#include "lpu/common/errors.hpp"
#include "lpu/rtl/lockstep.hpp"
#include "lpu/rtl/randprog.hpp"

using namespace lpu;
namespace fs = std::filesystem;

namespace {

// Programs and cycles compared by this process (printed at the end of each random batch).
struct Totals {
  int programs = 0;
  std::int64_t cycles = 0, checks = 0;
};
Totals totals;

rtl::LockstepResult lockstep(rtl::RtlChip& rtl, const obj::Program& p, const ChipParams& model_params,
                             const rtl::LockstepOptions& o = {}) {
  auto r = rtl::run_lockstep(rtl, p, model_params, o);
  ++totals.programs;
  totals.cycles += r.stats.cycles;
  totals.checks += r.stats.stream_checks;
  return r;
}

void random_batch(std::uint64_t first, int count) {
  const auto mini = load_preset("mini");
  rtl::RtlChip rtl;
  std::int64_t cycles = 0, issues = 0, writes = 0;
  for (std::uint64_t s = first; s < first + std::uint64_t(count); ++s) {
    CAPTURE(s);
    const auto text = rtl::random_program(s);
    obj::Program prog;
    REQUIRE_NOTHROW(prog = assembler::assemble_string(text, fmt::format("random_{}.lpa", s), mini).program);
    auto r = lockstep(rtl, prog, mini);
    if (!r.ok()) MESSAGE(r.report() << "\nprogram:\n" << text);
    REQUIRE(r.ok());
    CHECK(r.error.empty());  // a random program runs without error on both
    CHECK(r.stats.model_cycles == r.stats.rtl_cycles);
    CHECK(r.stats.issues > 0);
    cycles += r.stats.cycles;
    issues += r.stats.issues;
    writes += r.stats.sram_writes;
  }
  MESSAGE(count << " random programs (seeds " << first << ".." << first + std::uint64_t(count) - 1 << "): " << cycles
                << " cycles, " << issues << " issues, " << writes << " SRAM writes compared, zero mismatches");
}

}  // namespace

TEST_CASE("lockstep: every example that assembles for mini, zero mismatches") {
  const auto mini = load_preset("mini");
  rtl::RtlChip rtl;
  int n = 0;
  for (const auto& e : fs::recursive_directory_iterator(fs::path(LPU_SOURCE_DIR) / "examples")) {
    if (e.path().extension() != ".lpa") continue;
    obj::Program prog;
    try {
      prog = assembler::assemble_file(e.path().string(), mini).program;
    } catch (const Error&) {
      continue;  // another preset
    }
    CAPTURE(e.path().string());
    auto r = lockstep(rtl, prog, mini);
    if (!r.ok()) MESSAGE(r.report());
    CHECK(r.ok());
    CHECK(r.stats.model_cycles == r.stats.rtl_cycles);
    MESSAGE(e.path().filename().string() << ": " << r.report());
    ++n;
  }
  CHECK(n >= 3);  // vector_add, matvec_i8, stream_axpb_i8 at least
}

// 200 random programs in four batches (ctest runs them in parallel).
TEST_CASE("lockstep: random programs, seeds 1..50") { random_batch(1, 50); }
TEST_CASE("lockstep: random programs, seeds 51..100") { random_batch(51, 50); }
TEST_CASE("lockstep: random programs, seeds 101..150") { random_batch(101, 50); }
TEST_CASE("lockstep: random programs, seeds 151..200") { random_batch(151, 50); }

TEST_CASE("mutation: one latency one cycle longer in the model only (latency.vxm_alu=2) is reported") {
  const auto mini = load_preset("mini");
  const auto mutated = load_preset("mini", {"latency.vxm_alu=2"});
  rtl::RtlChip rtl;
  auto prog = assembler::assemble_file((fs::path(LPU_SOURCE_DIR) / "examples" / "vector_add.lpa").string(), mini).program;
  auto good = lockstep(rtl, prog, mini);
  CHECK(good.ok());
  auto bad = lockstep(rtl, prog, mutated);
  REQUIRE_FALSE(bad.ok());
  MESSAGE(bad.report());
  // the ADD issues in 4; its result stands at the VXM (5) in 5 on the RTL, in 6 on the model
  CHECK(bad.mismatch->cycle == 5);
  CHECK(bad.mismatch->unit == "streams");
  CHECK(bad.mismatch->where.find("s2e at position 5") != std::string::npos);
  CHECK(bad.mismatch->expected == "empty");
  // and on random programs: every one with an ALU-class VXM result is caught
  int caught = 0;
  for (std::uint64_t s = 1; s <= 10; ++s) {
    auto p = assembler::assemble_string(rtl::random_program(s), "r.lpa", mini).program;
    caught += lockstep(rtl, p, mutated).ok() ? 0 : 1;
  }
  CHECK(caught >= 8);
}

TEST_CASE("mutation: SRAM write latency one cycle longer in the model only is reported") {
  const auto mini = load_preset("mini");
  const auto mutated = load_preset("mini", {"latency.mem_write=2"});
  rtl::RtlChip rtl;
  auto prog = assembler::assemble_file((fs::path(LPU_SOURCE_DIR) / "examples" / "vector_add.lpa").string(), mini).program;
  auto bad = lockstep(rtl, prog, mutated);
  REQUIRE_FALSE(bad.ok());
  MESSAGE(bad.report());
  CHECK(bad.mismatch->unit == "sram");
  CHECK(bad.mismatch->cycle == 6);  // the WRITE of cycle 6 commits at its end on the RTL
}

TEST_CASE("mutation: one bit of every VXM ALU result flipped in the RTL only is reported") {
  const auto mini = load_preset("mini");
  rtl::RtlChip rtl;
  auto prog = assembler::assemble_file((fs::path(LPU_SOURCE_DIR) / "examples" / "vector_add.lpa").string(), mini).program;
  rtl::LockstepOptions o;
  o.flip_alu = true;
  auto bad = lockstep(rtl, prog, mini, o);
  REQUIRE_FALSE(bad.ok());
  MESSAGE(bad.report());
  CHECK(bad.mismatch->cycle == 5);
  CHECK(bad.mismatch->unit == "streams");
  REQUIRE(bad.mismatch->expected.size() == 64);
  REQUIRE(bad.mismatch->got.size() == 64);
  CHECK(bad.mismatch->expected.substr(2) == bad.mismatch->got.substr(2));  // only byte 0 differs
  CHECK(bad.mismatch->expected.substr(0, 2) != bad.mismatch->got.substr(0, 2));
}

TEST_CASE("lockstep: an invalid program fails the same way on both") {
  const auto mini = load_preset("mini");
  rtl::RtlChip rtl;
  // DMAIN with no vector provided: the model and the RTL both stop in cycle 3
  auto prog = assembler::assemble_string(R"(.preset mini
.queue sxm.e.0
    @3 DMAIN 0, s0w
)", "e.lpa", mini).program;
  rtl::LockstepOptions o;
  o.dma_vectors = 0;
  auto r = lockstep(rtl, prog, mini, o);
  CHECK(r.ok());
  CHECK(r.error.find("DMAIN") != std::string::npos);
  MESSAGE(r.report());
  MESSAGE("this process compared " << totals.programs << " programs, " << totals.cycles << " cycles");
}
