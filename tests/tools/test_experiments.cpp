// The programs and rack files that docs/experiments.md measures with, at reduced size.
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "lpu/rack/config.hpp"

namespace fs = std::filesystem;

namespace {
const std::string kLpu = std::string(LPU_BINARY_DIR) + "/bin/lpu";
const fs::path kSrc = LPU_SOURCE_DIR;

int run(const std::string& cmd) {
  const int st = std::system(cmd.c_str());
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}
}  // namespace

TEST_CASE("rack bandwidth: every chip drives its 90 wired lpx links, 98.3 percent of each link") {
  const auto dir = fs::path(LPU_BINARY_DIR) / "test-out" / fmt::format("bw_rack_{}", ::getpid());
  fs::create_directories(dir);
  // examples/rack/bandwidth_rack.toml with 40 rounds instead of 400.
  {
    std::ofstream m(dir / "bw40.toml");
    m << fmt::format("[[program]]\nchips = \"all\"\nsource = \"{}\"\nconsts = {{ SER = \"ser(0)\", N = 40 }}\n",
                     (kSrc / "examples/rack/bw_all.lpa").string());
  }
  REQUIRE(run(fmt::format("'{}' run --rack '{}' '{}' --timing-only -q --stats '{}'", kLpu,
                          (kSrc / "configs/lpx-rack.toml").string(), (dir / "bw40.toml").string(),
                          (dir / "s.json").string())) == 0);
  std::ifstream f(dir / "s.json");
  auto j = nlohmann::json::parse(f);
  // 256 chips x 90 links x 40 rounds; every link sends one 320-byte vector per 25-cycle slot:
  // 320 / 25 = 12.8 of the configured 13.02 B/cycle (112 Gb/s x 0.93 / 8 / 1 GHz) = 98.3%.
  CHECK(j["rack"]["transfers"] == 256 * 90 * 40);
  CHECK(j["rack"]["link_bytes"] == 256LL * 90 * 40 * 320);
  CHECK(j["rack"]["unreceived"] == 0);
  CHECK(j["links"].size() == 256 * 90);
  const double want = 12.8 / (112e9 * 0.93 / 8 / 1e9);
  for (const auto& l : j["links"]) CHECK(l["active_bandwidth_fraction"].get<double>() == doctest::Approx(want));
  std::error_code ec;
  fs::remove_all(dir, ec);
}
