// Slow decode tests (ctest label `slow`): Llama-3-70B and Mixtral-8x7B fp8 planned, placed and
// emulated for one token on the 256-chip LPX rack in timing-only mode.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>

#include "lpu/workload/decoder.hpp"

using namespace lpu;
using namespace lpu::workload;

namespace {
const std::string kLpx = std::string(LPU_SOURCE_DIR) + "/configs/lpx-rack.toml";
}

TEST_CASE("Llama-3-70B fp8 on the LPX rack: plan, place and emulate one token") {
  DecoderSpec s;
  s.model = "llama-3-70b";
  s.rack = kLpx;
  s.context = 8192;
  auto plan = plan_decoder(s);
  CHECK(plan.chips.size() <= 256);
  CHECK(plan.chips_per_layer >= 2);
  DecodeOptions o;
  o.threads = 2;
  auto j = decode_timing(plan, 1, o);
  const auto& last = plan.chips.back();
  CHECK(j["decode"]["rack_cycles_per_step"].get<std::int64_t>() == last.start_delay + last.cycles);
  MESSAGE("tokens/s per user: ", j["decode"]["tokens_per_s_per_user"].get<double>());
}

TEST_CASE("Llama-3-70B and Mixtral-8x7B on the LPX rack in tensor groups of a tray: the step ends where it was scheduled") {
  for (const std::string model : {"llama-3-70b", "mixtral-8x7b"}) {
    CAPTURE(model);
    DecoderSpec s;
    s.model = model;
    s.rack = kLpx;
    s.context = 8192;
    s.partition = "hybrid";
    auto plan = plan_decoder(s);
    CHECK(plan.tensor == 8);
    std::int64_t end = 0;
    for (const auto& c : plan.chips) end = std::max(end, c.start_delay + c.cycles);
    DecodeOptions o;
    o.threads = 2;
    auto j = decode_timing(plan, 1, o);
    CHECK(j["decode"]["rack_cycles_per_step"].get<std::int64_t>() == end);
    MESSAGE(model, " hybrid: tokens/s per user ", j["decode"]["tokens_per_s_per_user"].get<double>());
  }
}
