// The 256-chip rack (configs/lpx-rack.toml), functional: all-reduce across all chips and the
// 256-stage pipeline against plain C++ references; thread-count independence at full size.
#include <doctest/doctest.h>

#include "helpers.hpp"
#include "rack_refs.hpp"

using namespace lpu::rack;

TEST_CASE("all-reduce across 256 chips: sums match, cycles match the analytic cost") {
  const auto cfg = rt::rack("lpx-rack.toml");
  AllReduceSpec spec;  // ring 0, 1, ..., 255: 224 tray links (hop 189) and 32 global (hop 269)
  auto gen = gen_allreduce(cfg, spec);
  auto prog = assemble_generated(cfg, gen, "allreduce256");
  Rack r(cfg, prog, rt::opts(false, 2));
  auto data = rt::allreduce_inputs(r, gen.order, "i32", 3);
  r.run();
  rt::check_allreduce(r, gen.order, "i32", data);
  const auto st = r.stats();
  const auto want = rt::allreduce_analytic_cycles(cfg, gen.order);
  for (int c = 0; c < 256; ++c) CHECK(st.chip[std::size_t(c)].cycles == want[std::size_t(c)]);
  CHECK(st.cycles == *std::max_element(want.begin(), want.end()));
  CHECK(st.transfers == 256 * 510);
  MESSAGE("all-reduce 256 chips: ", st.cycles, " cycles (analytic ", *std::max_element(want.begin(), want.end()), ")");
}

TEST_CASE("256-stage pipeline: outputs match the reference") {
  const auto cfg = rt::rack("lpx-rack.toml");
  PipelineSpec spec;
  spec.vectors = 12;
  PipelineTiming tm;
  auto gen = gen_pipeline(cfg, spec, &tm);
  auto prog = assemble_generated(cfg, gen, "pipeline256");
  Rack r(cfg, prog, rt::opts(false, 2));
  auto data = rt::pipeline_inputs(r, gen.order, spec.vectors, 17);
  r.run();
  rt::check_pipeline(r, gen.order, data);
  // 255 links: 224 inside trays (hop 189), 31 between trays (hop 269); 33 cycles per stage after
  // the RECV, 37 in the first stage (DMAIN).
  CHECK(tm.latency == 37 + 224 * (189 + 33) + 31 * (269 + 33));
  MESSAGE("pipeline 256 stages: latency ", tm.latency, " cycles, one vector every ", tm.period, " cycles");
}

TEST_CASE("256 chips: 1 and 2 threads give identical statistics (timing-only pipeline)") {
  const auto cfg = rt::rack("lpx-rack.toml");
  PipelineSpec ps;
  ps.vectors = 256;
  auto pipe = assemble_generated(cfg, gen_pipeline(cfg, ps), "pipeline256");
  std::string ref;
  for (int threads : {1, 2, 2}) {
    Rack r(cfg, pipe, rt::opts(true, threads));
    r.run();
    auto js = rack_stats_json(r.stats(), cfg, false).dump();
    if (ref.empty()) ref = js;
    CHECK(js == ref);
  }
}

TEST_CASE("the 256-chip example manifests run and pass the checker") {
  const auto cfg = rt::rack("lpx-rack.toml");
  for (const char* m : {"pipeline256.toml", "allreduce256.toml"}) {
    CAPTURE(m);
    const auto prog = rt::manifest(m, cfg);
    CHECK(check_schedule(cfg, prog, 2).empty());
    Rack rack(cfg, prog, rt::opts(true, 2));
    CHECK_NOTHROW(rack.run());
    CHECK(rack.stats().unreceived == 0);
  }
  // Generated stages that differ only in time share objects: 256 stages, a handful of objects.
  CHECK(rt::manifest("pipeline256.toml", cfg).distinct_objects() <= 6);
}
