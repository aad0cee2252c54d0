// Rack files: the reference rack's figures, sparse overrides, the time base, and errors that
// name the key.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "helpers.hpp"
#include "lpu/common/errors.hpp"

using namespace lpu::rack;

namespace {
std::string key_of_error(const std::string& text) {
  try {
    rt::rack_text(text);
  } catch (const lpu::ConfigError& e) {
    return e.key();
  }
  return "(no error)";
}
const char* kPairHead = "chips = 2\n[topology]\nname = \"full\"\n";
}  // namespace

TEST_CASE("lpx-rack.toml: 256 chips, 128 GB, ~38.5 PB/s, ~315 PFLOPS, 640 TB/s") {
  auto cfg = rt::rack("lpx-rack.toml");
  CHECK(cfg.chips == 256);
  CHECK(cfg.topology.name == "lpx");
  const auto f = rack_figures(cfg);
  CHECK(f.trays == 32);
  CHECK(f.sram_bytes == doctest::Approx(128.0e9).epsilon(0.005));
  CHECK(f.sram_bandwidth == doctest::Approx(38.5e15).epsilon(0.01));
  CHECK(f.peak_flops_fp8 == doctest::Approx(314.6e15).epsilon(0.01));
  CHECK(f.c2c_bandwidth == doctest::Approx(640e12).epsilon(0.01));
  CHECK(f.link_ports == 256 * 96);
  CHECK(f.wired_c2c_bandwidth == doctest::Approx(600e12).epsilon(0.01));
  CHECK(f.wired_links == 256 * 90 / 2);
  // 112 Gb/s x 0.93 / 8 = 13.02 GB/s per link per direction.
  CHECK(f.link_bandwidth == doctest::Approx(13.02e9).epsilon(0.001));
  // Bisection: 16 x 16 tray pairs x 16 links, both directions.
  CHECK(f.bisection_links == 4096);
  CHECK(f.bisection_bandwidth == doctest::Approx(4096 * 2 * 13.02e9).epsilon(0.001));
  // Lookahead: the fastest link, c2c_send 4 + serialisation 25 + latency 160.
  CHECK(f.lookahead_ticks == 189);
  auto t_local = link_timing(cfg, 0, 0), t_global = link_timing(cfg, 0, 28);
  CHECK(t_local.serialisation == 25);
  CHECK(t_local.hop() == 189);
  CHECK(t_global.hop() == 4 + 25 + 240);
  const auto text = info_text(cfg, false);
  CHECK(text.find("256") != std::string::npos);
  CHECK(text.find("640.0 TB/s") != std::string::npos);
  CHECK(text.find("128.0 GB") != std::string::npos);
  auto j = nlohmann::json::parse(info_text(cfg, true));
  CHECK(j["chips"] == 256);
  CHECK(j["links"]["wired"] == 11520);
}

TEST_CASE("small racks: tray8 and pair") {
  auto t8 = rt::rack("tray8.toml");
  CHECK(t8.chips == 8);
  CHECK(t8.topology.wired_links() == 8 * 28 / 2);
  auto p = rt::rack("pair.toml");
  CHECK(p.chips == 2);
  CHECK(p.topology.wired_links() == 1);
  CHECK(p.topology.port(0, 0).peer == 1);
  CHECK(link_timing(p, 0, 0).hop() == 189);
}

TEST_CASE("sparse overrides, start skew and the common time base") {
  auto cfg = rt::rack_text(
      "chips = 16\n[topology]\nname = \"ring\"\n"
      "[[override]]\nchips = \"3,7-9\"\nset = [\"clock_hz=0.9e9\"]\nstart_skew = 100\n"
      "[[override]]\nchips = \"0-15:8\"\nset = [\"start_skew=7\"]\n");
  CHECK(cfg.chip(3).clock_hz == 0.9e9);
  CHECK(cfg.chip(8).clock_hz == 0.9e9);
  CHECK(cfg.chip(4).clock_hz == 1e9);
  CHECK(cfg.params.size() == 2u);  // chips with identical overrides share parameters
  CHECK(cfg.start_skew[3] == 100);
  CHECK(cfg.start_skew[0] == 7);
  CHECK(cfg.start_skew[8] == 7);  // the later block wins
  CHECK(cfg.start_skew[1] == 0);
  // lcm(1 GHz, 0.9 GHz) = 9 GHz: 9 ticks per 1 GHz cycle, 10 per 0.9 GHz cycle.
  CHECK(cfg.ticks_per_cycle[0] == 9);
  CHECK(cfg.ticks_per_cycle[3] == 10);
  CHECK(cfg.ticks_per_reference_cycle == 9.0);

  CHECK(parse_chip_list("3,7-9", 16, "k") == std::vector<int>{3, 7, 8, 9});
  CHECK(parse_chip_list("0-15:4", 16, "k") == std::vector<int>{0, 4, 8, 12});
  CHECK(parse_chip_list("all", 3, "k") == std::vector<int>{0, 1, 2});
}

TEST_CASE("rack file errors name the key") {
  CHECK(key_of_error("[topology]\nname = \"ring\"\n") == "chips");
  CHECK(key_of_error("chips = \"two\"\n") == "chips");
  CHECK(key_of_error(std::string(kPairHead) + "colour = 3\n") == "topology.colour");
  CHECK(key_of_error("chips = 2\nfoo = 1\n") == "foo");
  CHECK(key_of_error(std::string(kPairHead) + "[[override]]\nchips = \"3-x\"\n") == "override[0].chips");
  CHECK(key_of_error(std::string(kPairHead) + "[[override]]\nchips = \"5\"\n") == "override[0].chips");
  CHECK(key_of_error(std::string(kPairHead) + "[[override]]\nset = [\"clock_hz=2e9\"]\n") == "override[0].chips");
  CHECK(key_of_error(std::string(kPairHead) + "[[override]]\nchips = \"1\"\nset = [\"mem.rowz=3\"]\n") ==
        "override[0].set");
  CHECK(key_of_error(std::string(kPairHead) + "[[override]]\nchips = \"1\"\nset = [\"vector.superlanes=2\"]\n") ==
        "override[0].set");
  CHECK(key_of_error(std::string(kPairHead) + "[[override]]\nchips = \"1\"\nsize = 2\n") == "override[0].size");
  CHECK(key_of_error(std::string(kPairHead) + "[links]\nlatency_cycles = -1\n") == "links.latency_cycles");
  CHECK(key_of_error(std::string(kPairHead) + "[links]\nber = 2.0\n") == "links.ber");
  CHECK(key_of_error(std::string(kPairHead) + "[links.global]\nlatency_cycles = 3\n") == "links.global");
  CHECK(key_of_error(std::string(kPairHead) + "[links]\nlatency = 3\n") == "links.latency");
  CHECK(key_of_error("chips = 2\n[chip]\npreset = \"nonexistent\"\n") == "chip");
  CHECK(key_of_error("chips = 3\n[topology]\nname = \"lpx\"\n") == "topology.tray");
  CHECK(key_of_error("chips = 2\n[topology]\nname = \"full\"\n[[override]]\nchips = \"1\"\nset = [\"clock_hz=1.0000001e9\"]\n") ==
        "clock_hz");
  CHECK(key_of_error("chips = = 2\n") == "<test>");
  CHECK_THROWS_AS(load_rack("/nonexistent/rack.toml"), lpu::ConfigError);
}

TEST_CASE("links.ber: every probability from 0 to 1 loads, anything else is refused with the value and the range") {
  for (const char* ok : {"0.0", "1e-12", "0.24", "0.5", "1.0"}) {
    CAPTURE(ok);
    CHECK_NOTHROW(parse_rack(std::string(kPairHead) + "[links]\nber = " + ok + "\n", "t.toml", "."));
  }
  CHECK_THROWS_WITH_AS(parse_rack(std::string(kPairHead) + "[links]\nber = 1.5\n", "t.toml", "."),
                       "config: links.ber: 1.5 is out of range [0, 1]: a bit error rate is a probability per bit", lpu::ConfigError);
  CHECK_THROWS_WITH_AS(parse_rack(std::string(kPairHead) + "[links]\nber = -0.1\n", "t.toml", "."),
                       "config: links.ber: -0.1 is out of range [0, 1]: a bit error rate is a probability per bit", lpu::ConfigError);
  CHECK_THROWS_AS(parse_rack(std::string(kPairHead) + "[links]\nber = nan\n", "t.toml", "."), lpu::ConfigError);
}

TEST_CASE("rack file integers are checked, not wrapped or thrown as std::out_of_range") {
  // A chip number of 10 digits (std::stoll's territory) and a start_skew beyond 64 bits.
  CHECK_THROWS_WITH_AS(parse_rack(std::string(kPairHead) + "[[override]]\nchips = \"0-99999999999\"\n", "t.toml", "."),
                       "config: override[0].chips: '99999999999' is out of range 0..999999999", lpu::ConfigError);
  CHECK_THROWS_WITH_AS(
      parse_rack(std::string(kPairHead) + "[[override]]\nchips = \"1\"\nset = [\"start_skew=99999999999999999999\"]\n", "t.toml", "."),
      "config: override[0].set start_skew: '99999999999999999999' is out of range 0..1099511627776 cycles", lpu::ConfigError);
  CHECK_THROWS_WITH_AS(parse_rack(std::string(kPairHead) + "[[override]]\nchips = \"1\"\nset = [\"start_skew=x\"]\n", "t.toml", "."),
                       doctest::Contains("config: override[0].set start_skew: 'x' is not an integer"), lpu::ConfigError);
}

TEST_CASE("a rack file, manifest or --set rack key of 45,000 dotted parts is an error, not a stack overflow") {
  std::string key = "a";
  for (int i = 1; i < 45000; ++i) key += ".a";
  CHECK_THROWS_WITH_AS(rt::rack_text(std::string(kPairHead) + key + " = 1\n"),
                       doctest::Contains("line 4: a key with more than 256 dotted parts"), lpu::ConfigError);
  const auto pair = rt::rack("pair.toml");
  CHECK_THROWS_WITH_AS(rt::manifest_text("[[chip]]\n" + key + " = 1\n", pair), doctest::Contains("line 2: a key with more than 256"),
                       lpu::ConfigError);
  CHECK_THROWS_WITH_AS(apply_rack_overrides(kPairHead, {key + "=1"}, "t.toml"), doctest::Contains("a key has 1 to 8 dotted parts"),
                       lpu::ConfigError);
}

TEST_CASE("manifest integers: literals beyond 64 bits, register numbers and channels are checked") {
  const auto pair = rt::rack("pair.toml");
  auto error = [&](const std::string& extra) {
    try {
      rt::manifest_text("[[program]]\nchips = \"0\"\nsource = \"ping.lpa\"\n"
                        "consts = { LINK = \"link_to(1)\", HOP = \"hop(link_to(1))\", ROUNDS = 4 }\n" + extra,
                        pair);
    } catch (const lpu::ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  // std::stoll threw std::out_of_range ("internal error: stoll").
  CHECK(error("regs = { r1 = \"99999999999999999999 + 1\" }\n") ==
        "config: program[0].regs.r1: in <test>:5:16: in '99999999999999999999 + 1' (chip 0): number '99999999999999999999' "
        "does not fit in 64 bits");
  CHECK(error("regs = { r1 = \"0x10 + 0b11\" }\n") == "(no error)");
  CHECK(error("regs = { r16 = 1 }\n") == "config: program[0].regs.r16: '16' is out of range 1..15");
  CHECK(error("regs = { r99999999999 = 1 }\n") == "config: program[0].regs.r99999999999: '99999999999' is out of range 1..15");
  CHECK(error("dma_in = { 99999999999 = \"x.npy\" }\n") ==
        "config: program[0].dma_in.99999999999: '99999999999' is out of range 0..255");
}

TEST_CASE("rack overrides and files that would crash: an empty key, keys nested thousands deep") {
  const std::string text = "chips = 2\n[topology]\nname = \"full\"\n";
  auto err = [&](const std::vector<std::string>& sets) {
    try {
      apply_rack_overrides(text, sets, "pair");
    } catch (const lpu::ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  // " = 2": the key trims to nothing (was vector::back() of an empty vector).
  CHECK(err({" = 2"}) == "config: rack-set: ' = 2': a key has 1 to 8 dotted parts");
  CHECK(err({"links.global.latency_cycles=300"}) == "(no error)");
  std::string deep = "a";
  for (int i = 0; i < 45000; ++i) deep += ".a";
  CHECK(err({deep + "=1"}).find("a key has 1 to 8 dotted parts") != std::string::npos);
  // A value that opens a table nested 50,000 deep (toml++ recurses on it).
  std::string header = "1\n[a";
  for (int i = 0; i < 50000; ++i) header += ".a";
  CHECK(err({"name=" + header + "]"}) == "config: rack-set: line 2: a key with more than 256 dotted parts (the parser would recurse as deep)");
  // The same in a rack file: the file and the line.
  try {
    rt::rack_text(text + deep + " = 1\n");
    FAIL("accepted");
  } catch (const lpu::ConfigError& e) {
    CHECK(std::string(e.what()) == "config: <test>: line 4: a key with more than 256 dotted parts (the parser would recurse as deep)");
  }
}
