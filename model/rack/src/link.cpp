#include "lpu/rack/link.hpp"

#include <algorithm>
#include <array>
#include <cmath>

namespace lpu::rack {

namespace {

constexpr std::array<std::uint32_t, 256> make_table() {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr auto kTable = make_table();

std::uint64_t splitmix(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

double unit(std::uint64_t h) { return double(h >> 11) * (1.0 / 9007199254740992.0); }  // [0, 1)

}  // namespace

std::uint32_t crc32(std::span<const std::uint8_t> bytes) {
  std::uint32_t c = 0xFFFFFFFFu;
  for (auto b : bytes) c = kTable[(c ^ b) & 0xFFu] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

namespace {

// The number of flipped bits ~ Binomial(n, p), by inversion of one uniform draw u in [0, 1).
// The pmf is summed in log space from K0 = max(0, np - 12 sd): the mass below K0 is under
// 1e-30, far below the resolution of u, and starting there keeps P(K0) a normal number for
// every p. (Summing from k = 0 with P(0) = (1 - p)^n underflowed to zero for p >= 0.24 at 2592
// bits, and a guard then drew 2 flips whatever u said.) The sum stops at KHI = np + 12 sd:
// a u beyond the summed mass (a rounding gap of ~1e-16) takes KHI.
std::uint32_t binomial_inverse(double u, std::uint32_t n, double p) {
  if (p <= 0) return 0;
  if (p >= 1) return n;
  const double N = double(n);
  const double mean = N * p, sd = std::sqrt(N * p * (1 - p));
  const double k0 = std::max(0.0, std::floor(mean - 12 * sd));
  const double khi = std::min(N, std::ceil(mean + 12 * sd + 1));
  const double lp = std::log(p), lq = std::log1p(-p);
  double k = k0;
  // log P(K0); at realistic rates K0 = 0 and this is n log(1 - p).
  double logpk = k == 0 ? N * lq : std::lgamma(N + 1) - std::lgamma(k + 1) - std::lgamma(N - k + 1) + k * lp + (N - k) * lq;
  double cdf = std::exp(logpk);
  while (u >= cdf && k < khi) {
    logpk += std::log((N - k) / (k + 1)) + lp - lq;
    k += 1;
    cdf += std::exp(logpk);
  }
  return std::uint32_t(k);
}

// `count` distinct bit positions in [0, n), a uniform random subset: draws splitmix(key ^ (C +
// i)) % n in turn, skipping repeats (flipping one bit twice would flip it back: k draws with
// repeats flip fewer than k bits). Past n/2, the complement is drawn instead, so that the
// expected number of draws stays below 2n.
std::vector<std::uint32_t> distinct_positions(std::uint64_t key, std::uint32_t n, std::uint32_t count) {
  const bool complement = count > n / 2;
  const std::uint32_t want = complement ? n - count : count;
  std::vector<char> taken(n, 0);
  std::vector<std::uint32_t> drawn;
  drawn.reserve(want);
  for (std::uint64_t i = 0; drawn.size() < want; ++i) {
    const auto b = std::uint32_t(splitmix(key ^ (0xA5A5A5A5ull + i)) % n);
    if (taken[b]) continue;
    taken[b] = 1;
    drawn.push_back(b);
  }
  if (!complement) return drawn;
  std::vector<std::uint32_t> out;
  out.reserve(count);
  for (std::uint32_t b = 0; b < n; ++b)
    if (!taken[b]) out.push_back(b);
  return out;
}

}  // namespace

std::vector<std::uint32_t> bit_errors(std::uint64_t seed, int chip, int link, std::uint64_t seq, std::uint32_t bits,
                                      double ber) {
  if (!(ber > 0) || bits == 0) return {};
  const std::uint64_t key =
      splitmix(splitmix(splitmix(seed) ^ (std::uint64_t(std::uint32_t(chip)) << 32 | std::uint32_t(link))) ^ seq);
  const std::uint32_t k = binomial_inverse(unit(key), bits, ber);
  if (k == 0) return {};
  return distinct_positions(key, bits, k);
}

}  // namespace lpu::rack
