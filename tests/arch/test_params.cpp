// Presets reproduce the published figures (ARCHITECTURE.md 2.2) within 3%.
#include <doctest/doctest.h>

#include <cmath>

#include "lpu/arch/layout.hpp"
#include "lpu/arch/params.hpp"
#include "lpu/common/errors.hpp"

using namespace lpu;

static bool within(double got, double want, double tol = 0.03) {
  return std::abs(got - want) <= tol * want;
}

TEST_CASE("lp30 reproduces the LPX chip figures") {
  auto k = peaks(load_preset("lp30"));
  CHECK(within(k.sram_bytes, 500e6));
  CHECK(within(k.sram_bandwidth_bytes_per_s, 150e12));
  CHECK(within(k.mxm_peak_ops_per_s.at("e4m3"), 1.23e15));
  CHECK(within(k.c2c_bandwidth_bytes_per_s, 2.5e12));
  // Rack of 256: 128 GB, ~38.4-40 PB/s, ~315 PFLOPS, 640 TB/s.
  CHECK(within(256 * k.sram_bytes, 128e9));
  CHECK(within(256 * k.mxm_peak_ops_per_s.at("e4m3"), 315e15));
  CHECK(within(256 * k.c2c_bandwidth_bytes_per_s, 640e12));
}

TEST_CASE("tsp1 reproduces GroqChip 1") {
  auto k = peaks(load_preset("tsp1"));
  CHECK(k.sram_bytes == doctest::Approx(220.0 * 1024 * 1024));  // 88 x 8192 x 320 exactly
  CHECK(within(k.mxm_peak_ops_per_s.at("i8"), 737e12));
  CHECK(k.mxm_macs_per_cycle_int8 == 409600);  // 4 x 320 x 320
  CHECK(k.vxm_alus == 5120);                    // 16 x 320
  CHECK(k.instruction_queues == 144);           // 2 x (44 + 14) + 4 x 3 + 16
  CHECK(within(k.c2c_bandwidth_bytes_per_s, 480e9));
}

TEST_CASE("overrides change parameters and are checked") {
  auto p = load_preset("lp30", {"mem.slices_per_hemisphere=96", "clock_hz=1.2e9"});
  CHECK(p.mem.slices_per_hemisphere == 96);
  CHECK(p.clock_hz == doctest::Approx(1.2e9));
  CHECK_THROWS_AS(load_preset("lp30", {"mem.slices_per_hemispher=96"}), ConfigError);
  CHECK_THROWS_AS(load_preset("lp30", {"mem.rows=abc"}), ConfigError);
  CHECK_THROWS_AS(load_preset("lp30", {"latency.mem_read=0"}), ConfigError);
  CHECK_THROWS_AS(load_preset("no-such-preset"), ConfigError);
  try {
    load_preset("lp30", {"mem.rows=-1"});
    FAIL("expected ConfigError");
  } catch (const ConfigError& e) {
    CHECK(e.key() == "mem.rows");
  }
}

TEST_CASE("mini layout: positions, names and queues") {
  auto p = load_preset("mini");
  Layout l(p);
  // sxm.w | mem.w.3..0 | vxm | mem.e.0..3 | sxm.e | mxm.e.0  (1 plane goes east)
  REQUIRE(l.num_positions() == 1 + 4 + 1 + 4 + 1 + 1);
  CHECK(l.slices()[0].name == "sxm.w");
  CHECK(l.slices()[1].name == "mem.w.3");
  CHECK(l.slices()[5].name == "vxm");
  CHECK(l.slices()[6].name == "mem.e.0");
  CHECK(l.slices()[11].name == "mxm.e.0");
  CHECK(l.queues().size() == 8 * 2 + 4 + 2 * 2 + 3);
  CHECK(l.find_queue("mem.w.3.1"));
  auto q = l.find_queue("mxm.e.0.2");
  REQUIRE(q);
  CHECK(l.queue(*q).position == 11);
  CHECK(!l.find_queue("mem.w.4"));
}
