// Progress reports: nothing without a sink, every report to the sink from any thread, done()
// as an empty phase. (The terminal line itself is seen on a terminal only.)
#include <doctest/doctest.h>

#include <string>
#include <thread>
#include <vector>

#include "lpu/common/progress.hpp"

using namespace lpu;

TEST_CASE("progress: reports reach the installed sink, from several threads, and stop when it is removed") {
  std::vector<std::string> seen;
  progress::report("before", 1, 2);  // no sink: nothing to record
  progress::set_sink([&](std::string_view phase, std::int64_t d, std::int64_t t) {
    seen.push_back(std::string(phase) + ":" + std::to_string(d) + "/" + std::to_string(t));
  });
  std::vector<std::thread> ts;
  for (int i = 0; i < 4; ++i)
    ts.emplace_back([] {
      for (int k = 0; k < 100; ++k) progress::report("work", k, 100);
    });
  for (auto& t : ts) t.join();
  progress::done();
  progress::set_sink({});
  progress::report("after", 1, 1);
  REQUIRE(seen.size() == 401);
  CHECK(seen.back() == ":0/0");
  for (std::size_t i = 0; i + 1 < seen.size(); ++i) CHECK(seen[i].rfind("work:", 0) == 0);
}
