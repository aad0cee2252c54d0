// The generated multi-chip programs against plain C++ references and analytic cycle counts, and
// the engine's determinism across thread counts and runs.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>

#include "helpers.hpp"
#include "lpu/arch/layout.hpp"
#include "lpu/common/errors.hpp"
#include "rack_refs.hpp"

using namespace lpu::rack;

TEST_CASE("all-reduce over a tray of 8: sums match, cycles match the analytic cost") {
  const auto cfg = rt::rack("tray8.toml");
  for (std::string dtype : {"i32", "f32"}) {
    CAPTURE(dtype);
    AllReduceSpec spec;
    spec.dtype = dtype;
    AllReduceTiming tm;
    auto gen = gen_allreduce(cfg, spec, &tm);
    auto prog = assemble_generated(cfg, gen, "allreduce");
    CHECK(check_schedule(cfg, prog).empty());
    Rack r(cfg, prog, rt::opts(false, 2));
    auto data = rt::allreduce_inputs(r, gen.order, dtype, 11);
    r.run();
    rt::check_allreduce(r, gen.order, dtype, data);
    const auto st = r.stats();
    const auto want = rt::allreduce_analytic_cycles(cfg, gen.order);
    for (int i = 0; i < 8; ++i) CHECK(st.chip[std::size_t(gen.order[std::size_t(i)])].cycles == want[std::size_t(i)]);
    // Uniform tray links (hop 189): 242 + 189 + 7 x (479 + 189) + 6 x (4 + 189) + 241 + 20.
    CHECK(st.cycles == 242 + 189 + 7 * (479 + 189) + 6 * (4 + 189) + 241 + 20);
    // 2 (N - 1) transfers per chip, each RECV exactly at its arrival.
    CHECK(st.transfers == 8 * 14);
    CHECK(st.send_to_recv_cycles.max == 189);
  }
}

TEST_CASE("the manifest example all-reduce reads its inputs and writes outputs") {
  const auto cfg = rt::rack("tray8.toml");
  auto prog = rt::manifest("allreduce_tray8.toml", cfg);
  CHECK(prog.distinct_objects() == 8);
  REQUIRE(prog.chips[3].inputs.size() == 1u);
  CHECK(prog.chips[3].inputs[0].second.find("data/allreduce_x3.npy") != std::string::npos);
  CHECK(prog.chips[3].outputs[0].second == "allreduce_y3.npy");
  Rack r(cfg, prog, rt::opts(false));
  r.run();
  // Y is the same on every chip and equals the sum of the inputs.
  std::vector<std::int32_t> sum(8 * 80, 0);
  for (int c = 0; c < 8; ++c) {
    auto x = rt::from_bytes<std::int32_t>(rt::npy_bytes(rt::src("examples/rack/data/allreduce_x" + std::to_string(c) + ".npy")));
    REQUIRE(x.size() == sum.size());
    for (std::size_t i = 0; i < sum.size(); ++i) sum[i] += x[i];
  }
  for (int c = 0; c < 8; ++c) CHECK(rt::from_bytes<std::int32_t>(r.chip(c)->read_symbol("Y")) == sum);
}

TEST_CASE("pipeline over a tray: outputs match the reference, latency and throughput") {
  const auto cfg = rt::rack("tray8.toml");
  PipelineSpec spec;
  spec.vectors = 40;
  PipelineTiming tm;
  auto gen = gen_pipeline(cfg, spec, &tm);
  auto prog = assemble_generated(cfg, gen, "pipeline");
  CHECK(check_schedule(cfg, prog).empty());
  Rack r(cfg, prog, rt::opts(false, 2));
  auto data = rt::pipeline_inputs(r, gen.order, spec.vectors, 5);
  r.run();
  rt::check_pipeline(r, gen.order, data);
  // One vector every serialisation time (25 cycles); a vector takes DMAIN (8) + 1 hop + MM (24)
  // + ACCRD (3) + 1 hop = 37 cycles through stage 0 to its SEND, then per further stage the link
  // (hop 189) and the same 33 cycles (c2c_recv 4 instead of dma 8): 37 + 7 x 222 = 1591 from
  // DMAIN to DMAOUT.
  CHECK(tm.period == 25);
  CHECK(tm.latency == 37 + 7 * (189 + 33));
  CHECK(tm.last_out == tm.first_in + tm.latency + 39 * 25);
  const auto st = r.stats();
  // The last stage's program ends with its last DMAOUT landing (dma 8) + 1 + stagger 19.
  CHECK(st.chip[7].cycles == tm.last_out + 8 + 1 + 19);
  CHECK(st.transfers == 7 * 40);
  for (const auto& l : st.links) CHECK(l.active_fraction() >= 0.97);
}

TEST_CASE("1 thread, 2 threads and repeated runs give identical results, cycles and statistics") {
  const auto cfg = rt::rack("tray8.toml");
  PipelineSpec ps;
  ps.vectors = 24;
  auto pipe = assemble_generated(cfg, gen_pipeline(cfg, ps), "pipeline");
  AllReduceSpec as;
  as.dtype = "f32";
  auto ar = gen_allreduce(cfg, as);
  auto arp = assemble_generated(cfg, ar, "allreduce");
  for (bool timing_only : {false, true}) {
    CAPTURE(timing_only);
    std::string ref_json;
    std::vector<std::vector<std::uint8_t>> ref_out;
    for (int threads : {1, 2, 2, 3, 1}) {
      CAPTURE(threads);
      std::string js;
      std::vector<std::vector<std::uint8_t>> out;
      for (int which = 0; which < 2; ++which) {
        Rack r(cfg, which ? arp : pipe, rt::opts(timing_only, threads));
        if (which == 0) rt::pipeline_inputs(r, std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7}, 24, 9);
        else rt::allreduce_inputs(r, ar.order, "f32", 9);
        r.run();
        CHECK(r.threads() == threads);
        js += rack_stats_json(r.stats(), cfg, false).dump();
        if (which == 0) {
          for (auto& v : r.chip(7)->take_dma_out(0)) out.push_back(v);
        } else {
          for (int c = 0; c < 8; ++c) out.push_back(r.chip(c)->read_symbol("Y"));
        }
      }
      if (ref_json.empty()) {
        ref_json = js;
        ref_out = out;
      }
      CHECK(js == ref_json);
      CHECK(out == ref_out);
    }
  }
}

TEST_CASE("the same program in functional and timing-only mode: identical cycles and link statistics") {
  const auto cfg = rt::rack("tray8.toml");
  AllReduceSpec as;
  auto prog = assemble_generated(cfg, gen_allreduce(cfg, as), "allreduce");
  Rack f(cfg, prog, rt::opts(false));
  f.run();
  Rack t(cfg, prog, rt::opts(true));
  t.run();
  auto a = rack_stats_json(f.stats(), cfg, false), b = rack_stats_json(t.stats(), cfg, false);
  CHECK(a["rack"] == b["rack"]);
  CHECK(a["links"] == b["links"]);
  for (int c = 0; c < 8; ++c) CHECK(a["chips"][std::size_t(c)]["cycles"] == b["chips"][std::size_t(c)]["cycles"]);
}

TEST_CASE("timing-only REPEAT groups are checked per instance, across windows") {
  // Chip 0 sends 3 single vectors from separate instructions (unequally spaced, so not one REPEAT
  // group); chip 1 takes them with one RECV + REPEAT issued before the 2nd and 3rd are even sent. In
  // timing-only mode the chip processes the whole group at once; the rack checks each instance.
  const auto cfg = rt::rack("pair.toml");
  const std::string tx =
      ".preset lp30\n.queue mem.e.234\n    @0 READ 0, s0e\n    @100 READ 0, s0e\n    @220 READ 0, s0e\n.queue sxm.e.0\n"
      "    @6 SEND 0, s0e\n    @106 SEND 0, s0e\n    @226 SEND 0, s0e\n";
  // Arrivals: 195, 295, 415.
  auto rx = [](int t, int d) {
    return ".preset lp30\n.queue sxm.e.0\n    @" + std::to_string(t) + " RECV 0, s0w\n    REPEAT 2, " + std::to_string(d) + "\n";
  };
  for (bool timing_only : {true, false}) {
    Rack ok(cfg, assemble_sources(cfg, {tx, rx(195, 110)}, "grp.lpa"), rt::opts(timing_only));
    CHECK_NOTHROW(ok.run());
    Rack bad(cfg, assemble_sources(cfg, {tx, rx(195, 109)}, "grp.lpa"), rt::opts(timing_only));
    std::string e;
    try {
      bad.run();
    } catch (const lpu::SimError& x) {
      e = x.what();
    }
    CHECK(e.find("chip 1, sxm.e (queue sxm.e.0), cycle 413: RECV on link 0: nothing has arrived") != std::string::npos);
  }
}

TEST_CASE("chips without a program, and an unwired link") {
  const auto cfg = rt::rack("tray8.toml");
  std::vector<std::string> src(8);
  src[2] = ".preset lp30\n.queue mem.e.234\nrd: READ 0, s0e\n.queue sxm.e.0\n    @ready(rd) SEND 0, s0e\n";
  Rack r(cfg, assemble_sources(cfg, src, "one.lpa"), rt::opts(false, 2));
  CHECK(r.chip(0) == nullptr);
  r.run();
  const auto st = r.stats();
  CHECK(st.unreceived == 1);  // sent to chip 3, which runs nothing
  CHECK(st.chip[0].cycles == 0);
  // Link 40 is not wired in a tray (28 links per chip).
  src[2] = ".preset lp30\n.queue mem.e.234\nrd: READ 0, s0e\n.queue sxm.e.0\n    @ready(rd) SEND 40, s0e\n";
  Rack u(cfg, assemble_sources(cfg, src, "one.lpa"), rt::opts(true));
  CHECK_THROWS_WITH_AS(u.run(), doctest::Contains("SEND on link 40: the link is not wired"), lpu::SimError);
}
