// Every example manifest of examples/rack runs on its rack; the CLI entry points.
#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "helpers.hpp"
#include "lpu/rack/cli.hpp"
#include "rack_refs.hpp"

using namespace lpu::rack;

TEST_CASE("every example manifest runs on its rack (timing-only) and passes the checker") {
  const std::pair<const char*, const char*> examples[] = {
      {"pingpong.toml", "pair.toml"},           {"bandwidth.toml", "pair.toml"},
      {"bandwidth_tray.toml", "tray8.toml"},    {"allreduce_tray8.toml", "tray8.toml"},
      {"pipeline_tray8.toml", "tray8.toml"},    {"pingpong.toml", "lpx-rack.toml"},
  };  // pipeline256.toml and allreduce256.toml: test_slow.cpp
  for (auto [m, r] : examples) {
    CAPTURE(m);
    CAPTURE(r);
    const auto cfg = rt::rack(r);
    const auto prog = rt::manifest(m, cfg);
    CHECK(check_schedule(cfg, prog, 2).empty());
    Rack rack(cfg, prog, rt::opts(true, 2));
    CHECK_NOTHROW(rack.run());
    CHECK(rack.stats().unreceived == 0);
  }
}

TEST_CASE("pipeline_tray8.toml: functional outputs match the reference computed from its data files") {
  const auto cfg = rt::rack("tray8.toml");
  Rack r(cfg, rt::manifest("pipeline_tray8.toml", cfg), rt::opts(false, 2));
  r.run();
  rt::PipelineData d;
  d.n = 320;
  for (int c = 0; c < 8; ++c)
    d.w.push_back(rt::from_bytes<std::int8_t>(rt::npy_bytes(rt::src("examples/rack/data/pipeline_w" + std::to_string(c) + ".npy"))));
  auto x = rt::from_bytes<std::int8_t>(rt::npy_bytes(rt::src("examples/rack/data/pipeline_x.npy")));
  for (std::size_t b = 0; b < x.size() / 320; ++b) d.x.emplace_back(x.begin() + std::ptrdiff_t(b * 320), x.begin() + std::ptrdiff_t(b * 320 + 320));
  rt::check_pipeline(r, {0, 1, 2, 3, 4, 5, 6, 7}, d);
}

TEST_CASE("run_cli: statistics JSON, and the checker's exit status") {
  const auto dir = std::filesystem::temp_directory_path() / ("lpu_rack_cli_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  RackCliOptions o;
  o.rack = rt::src("configs/pair.toml");
  o.program = rt::src("examples/rack/pingpong.toml");
  o.threads = 2;
  o.quiet = true;
  o.stats = (dir / "stats.json").string();
  CHECK(run_cli(o) == 0);
  std::ifstream f(o.stats);
  auto j = nlohmann::json::parse(f);
  CHECK(j["rack"]["transfers"] == 8);
  CHECK(j["rack"]["latency_cycles"]["min"] == 185);
  CHECK(j["chips"].size() == 2u);
  CHECK(j["links"].size() == 2u);
  CHECK(j["host"]["threads"] == 2);
  o.check = true;
  CHECK(run_cli(o) == 0);
  // A manifest whose ping RECVs too early: the checker reports it and returns 1.
  const auto bad = dir / "bad.toml";
  std::ofstream(bad) << "[[program]]\nchips = \"0\"\nsource = \"" << rt::src("examples/rack/ping.lpa")
                     << "\"\nconsts = { LINK = 0, HOP = 100, ROUNDS = 2 }\n[[program]]\nchips = \"1\"\nsource = \""
                     << rt::src("examples/rack/pong.lpa") << "\"\nconsts = { LINK = 0, HOP = 189, FIRST = 195, ROUNDS = 2 }\n";
  o.program = bad.string();
  CHECK(run_cli(o) == 1);
  // One source for every chip: each sends on link 0 (to the next chip of the tray) and takes
  // what comes from the previous chip (link 24).
  const auto one = dir / "ring.lpa";
  std::ofstream(one) << ".preset lp30\n.queue mem.e.234\nrd: READ 0, s0e\n.queue sxm.e.0\n    @ready(rd) SEND 0, s0e\n"
                        "    @6 + 189 RECV 24, s0w\n";
  const auto cfg = rt::rack("tray8.toml");
  auto prog = load_program(one.string(), cfg);
  CHECK(prog.distinct_objects() == 1);
  Rack r(cfg, prog, rt::opts(false, 2));
  r.run();
  CHECK(r.stats().transfers == 8);
  CHECK(r.stats().unreceived == 0);
  o.rack = rt::src("configs/tray8.toml");
  o.program = one.string();
  o.check = false;
  o.timing_only = true;
  CHECK(run_cli(o) == 0);
  std::filesystem::remove_all(dir);
}
