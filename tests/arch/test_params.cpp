// Presets reproduce the published figures (ARCHITECTURE.md 2.2) within 3%.
#include <doctest/doctest.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <string>

#include "lpu/arch/layout.hpp"
#include "lpu/arch/params.hpp"
#include "lpu/common/errors.hpp"

using namespace lpu;

static bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

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

// ---- Ranges (issue 23): every parameter is checked before it is stored -------------------

TEST_CASE("a value beyond an int is refused, not wrapped: --set mem.rows=4294967552 was 256") {
  CHECK_THROWS_WITH_AS(load_preset("mini", {"mem.rows=4294967552"}),
                       "config: mem.rows: 4294967552 is out of range 1..1048576 rows", ConfigError);
  // The attack on the server's memory (issue 23 item 6): a queue count far past any chip.
  CHECK_THROWS_WITH_AS(load_preset("mini", {"sxm.queues_per_hemisphere=2000000"}),
                       "config: sxm.queues_per_hemisphere: 2000000 is out of range 1..256 queues", ConfigError);
  CHECK_THROWS_WITH_AS(load_preset("mini", {"c2c.lane_gbps=0"}), "config: c2c.lane_gbps: 0 is out of range (0, 10000] Gb/s",
                       ConfigError);
  CHECK_THROWS_WITH_AS(load_preset("mini", {"clock_hz=-1e9"}), "config: clock_hz: -1e+09 is out of range (0, 1e+12] Hz",
                       ConfigError);
}

TEST_CASE("every preset key: both ends of its range load, one step beyond is refused naming key, value and range") {
  for (const auto& k : preset_keys()) {
    if (k.type == PresetKey::Type::String) continue;
    CAPTURE(k.key);
    const bool integer = k.type == PresetKey::Type::Integer;
    auto text = [&](double v) { return integer ? std::to_string(std::int64_t(v)) : fmt::format("{:.17g}", v); };
    // The ends themselves (an open lower end: just above it). latency.sxm_trans >= 16 and
    // the other cross-parameter rules are tested on their own.
    const double lo = k.lo_open ? k.lo + (integer ? 1 : std::max(1e-9, k.lo * 1e-9)) : k.lo;
    for (double v : {lo, k.hi}) {
      if (k.key == "latency.sxm_trans" && v < 16) continue;
      CAPTURE(v);
      CHECK_NOTHROW(load_preset("mini", {k.key + "=" + text(v)}));
    }
    for (double v : {k.lo - (k.lo_open ? 0 : 1), k.hi + 1}) {
      CAPTURE(v);
      try {
        load_preset("mini", {k.key + "=" + text(v)});
        FAIL("accepted");
      } catch (const ConfigError& e) {
        CHECK(e.key() == k.key);
        CHECK(has(e.what(), "is out of range"));
        CHECK(has(e.what(), k.unit));
      }
    }
  }
}

TEST_CASE("a --set key with 45,000 dotted parts is an error naming the key, not a stack overflow") {
  std::string key = "a";
  for (int i = 1; i < 45000; ++i) key += ".a";
  try {
    load_preset("mini", {key + "=1"});
    FAIL("accepted");
  } catch (const ConfigError& e) {
    const std::string w = e.what();
    CHECK(w.size() < 300);  // the key is shown cut short
    CHECK(has(w, "config: a.a.a.a"));
    CHECK(has(w, "(89999 characters)"));
    CHECK(has(w, "a preset key has at most 8 dotted parts and 256 characters; this one has 45000 and 89999"));
  }
  // Eight parts is the limit: an unknown key of 8 parts is reported as unknown, 9 as too deep.
  CHECK_THROWS_WITH_AS(load_preset("mini", {"a.b.c.d.e.f.g.h=1"}), doctest::Contains("config: a.b.c.d.e.f.g.h: unknown key"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(load_preset("mini", {"a.b.c.d.e.f.g.h.i=1"}), doctest::Contains("at most 8 dotted parts"), ConfigError);
}

TEST_CASE("docs/presets.md is generated from the reader's own list and up to date") {
  std::ifstream f(std::string(LPU_SOURCE_DIR) + "/docs/presets.md");
  REQUIRE(f);
  std::stringstream ss;
  ss << f.rdbuf();
  // Regenerate with: build/bin/lpu info --preset-keys > docs/presets.md
  CHECK(ss.str() == preset_keys_markdown());
  // Every key the reader accepts has a row (the line starts with the key in backquotes).
  for (const auto& k : preset_keys()) CHECK(has(ss.str(), ("\n| `" + k.key + "` |")));
  // And every key of the three presets is in the list.
  for (const char* preset : {"lp30", "tsp1", "mini"}) CHECK_NOTHROW(load_preset(preset));
}

TEST_CASE("a preset file with a key of 45,000 dotted parts is a located error (toml++ recursed until the stack overflowed)") {
  std::string key = "a";
  for (int i = 1; i < 45000; ++i) key += ".a";
  CHECK_THROWS_WITH_AS(parse_preset("name = \"x\"\n" + key + " = 1\n", "deep.toml"),
                       "config: deep.toml: line 2: a key with more than 256 dotted parts (the parser would recurse as deep)",
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse_preset("[" + key + "]\n", "deep.toml"), doctest::Contains("deep.toml: line 1: a key with more than"),
                       ConfigError);
}
