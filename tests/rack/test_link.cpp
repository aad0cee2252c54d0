// Link integrity: CRC-32 and the deterministic bit-error generator.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "lpu/rack/link.hpp"

using namespace lpu::rack;

TEST_CASE("CRC-32 (IEEE) check value") {
  const std::string s = "123456789";
  CHECK(crc32(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(s.data()), s.size())) == 0xCBF43926u);
  CHECK(crc32({}) == 0u);
}

TEST_CASE("bit errors: deterministic, zero without a rate, Binomial(bits, ber) in number") {
  CHECK(bit_errors(1, 0, 0, 0, 2592, 0.0).empty());
  CHECK(bit_errors(7, 3, 5, 11, 2592, 1e-3) == bit_errors(7, 3, 5, 11, 2592, 1e-3));
  // P(at least one flip in 2592 bits) = 1 - (1 - 1e-4)^2592 = 0.228.
  int hit = 0;
  for (std::uint64_t s = 0; s < 20000; ++s) hit += !bit_errors(1, 0, 0, s, 2592, 1e-4).empty();
  CHECK(hit / 20000.0 == doctest::Approx(0.228).epsilon(0.05));
  // Mean number of flips = bits x ber = 25.92 at ber 0.01.
  std::size_t flips = 0;
  for (std::uint64_t s = 0; s < 2000; ++s) {
    auto f = bit_errors(1, 2, 3, s, 2592, 0.01);
    for (auto b : f) CHECK(b < 2592u);
    flips += f.size();
  }
  CHECK(double(flips) / 2000.0 == doctest::Approx(25.92).epsilon(0.05));
  // Different links and seeds draw differently.
  int differ = 0;
  for (std::uint64_t s = 0; s < 100; ++s) differ += bit_errors(1, 0, 0, s, 2592, 0.01) != bit_errors(2, 0, 0, s, 2592, 0.01);
  CHECK(differ > 90);
}

namespace {
// log of Binomial(n, p) at k.
double log_pmf(int n, double p, int k) {
  return std::lgamma(n + 1.0) - std::lgamma(k + 1.0) - std::lgamma(n - k + 1.0) + k * std::log(p) + (n - k) * std::log1p(-p);
}
}  // namespace

TEST_CASE("bit errors: Binomial(bits, ber) for every rate from 0 to 1, including >= 0.24 where (1 - ber)^2592 underflows") {
  // Before the fix, P(0 flips) = (1 - ber)^2592 underflowed (0.24: 1e-309, 0.25: 0) and every
  // draw gave 2 flips. Mean, variance and a chi-square test of the count against the pmf,
  // 4000 transfers per rate, fixed seed (the generator is deterministic: this cannot flake).
  const std::uint32_t n = 2592;
  for (double ber : {1e-3, 0.05, 0.24, 0.25, 0.5, 0.9, 0.999}) {
    CAPTURE(ber);
    const int T = 4000;
    std::vector<int> ks;
    double sum = 0, sq = 0;
    for (std::uint64_t s = 0; s < std::uint64_t(T); ++s) {
      auto f = bit_errors(3, 1, 2, s, n, ber);
      // Distinct positions: k flips flip k bits.
      std::vector<std::uint32_t> sorted = f;
      std::sort(sorted.begin(), sorted.end());
      CHECK(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end());
      CHECK((sorted.empty() || sorted.back() < n));
      ks.push_back(int(f.size()));
      sum += double(f.size());
      sq += double(f.size()) * double(f.size());
    }
    const double mean = n * ber, var = n * ber * (1 - ber);
    const double m = sum / T, v = sq / T - m * m;
    // The sample mean is within 5 standard errors; the variance within 15%.
    CHECK(std::abs(m - mean) < 5 * std::sqrt(var / T));
    CHECK(v == doctest::Approx(var).epsilon(0.15));
    // Chi-square over bins of expected count >= 40, merged from both tails.
    std::map<int, double> expected;
    for (int k = 0; k <= int(n); ++k) expected[k] = T * std::exp(log_pmf(int(n), ber, k));
    std::vector<std::pair<double, double>> bins;  // expected, observed
    std::map<int, int> observed;
    for (int k : ks) ++observed[k];
    double e = 0, o = 0;
    for (int k = 0; k <= int(n); ++k) {
      e += expected[k];
      o += observed.count(k) ? observed[k] : 0;
      if (e >= 40) {
        bins.emplace_back(e, o);
        e = o = 0;
      }
    }
    if (!bins.empty()) {
      bins.back().first += e;
      bins.back().second += o;
    }
    double chi2 = 0;
    for (auto [be, bo] : bins) chi2 += (bo - be) * (bo - be) / be;
    const double dof = double(bins.size()) - 1;
    CAPTURE(chi2);
    CAPTURE(dof);
    // Mean dof, sd sqrt(2 dof): 6 sd above the mean fails (a wrong distribution is far above).
    if (dof >= 1) CHECK(chi2 < dof + 6 * std::sqrt(2 * dof) + 6);
  }
}

TEST_CASE("bit errors: P(at least one flip) in a 320-byte vector and its CRC, and the ends of the range") {
  const std::uint32_t n = (320 + 4) * 8;
  for (double ber : {1e-6, 1e-4, 1e-3, 0.01}) {
    CAPTURE(ber);
    const double want = 1 - std::pow(1 - ber, double(n));  // 0.0026, 0.228, 0.925, 1 - 5e-12
    const int T = 20000;
    int hit = 0;
    for (std::uint64_t s = 0; s < std::uint64_t(T); ++s) hit += !bit_errors(11, 0, 1, s, n, ber).empty();
    CHECK(std::abs(hit / double(T) - want) < 5 * std::sqrt(want * (1 - want) / T) + 1e-9);
  }
  // The ends: no flips at 0, every bit at 1 (each exactly once).
  for (std::uint64_t s = 0; s < 10; ++s) {
    CHECK(bit_errors(5, 0, 0, s, n, 0.0).empty());
    auto all = bit_errors(5, 0, 0, s, n, 1.0);
    std::sort(all.begin(), all.end());
    REQUIRE(all.size() == n);
    for (std::uint32_t b = 0; b < n; ++b) CHECK(all[b] == b);
  }
  // The underflow case of the issue, one draw that must not be 2: at 0.3 the count is about
  // 778 +- 23.
  const auto f = bit_errors(1, 0, 0, 0, n, 0.3);
  CHECK(f.size() > 600);
  CHECK(f.size() < 950);
}
