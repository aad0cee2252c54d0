#include "lpu/rack/link.hpp"

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

std::vector<std::uint32_t> bit_errors(std::uint64_t seed, int chip, int link, std::uint64_t seq, std::uint32_t bits,
                                      double ber) {
  std::vector<std::uint32_t> out;
  if (ber <= 0 || bits == 0) return out;
  const std::uint64_t key =
      splitmix(splitmix(splitmix(seed) ^ (std::uint64_t(std::uint32_t(chip)) << 32 | std::uint32_t(link))) ^ seq);
  // Number of flipped bits ~ Binomial(bits, ber), by inversion of one uniform draw.
  const double u = unit(key);
  double pk = std::pow(1.0 - ber, double(bits));  // P(k = 0)
  double cdf = pk;
  std::uint32_t k = 0;
  while (u >= cdf && k < bits) {
    pk *= double(bits - k) / double(k + 1) * ber / (1.0 - ber);
    ++k;
    cdf += pk;
    if (pk < 1e-300 && cdf < u) {  // numerically exhausted: take the remaining mass as one more bit
      ++k;
      break;
    }
  }
  for (std::uint32_t i = 0; i < k; ++i) out.push_back(std::uint32_t(splitmix(key ^ (0xA5A5A5A5ull + i)) % bits));
  return out;
}

}  // namespace lpu::rack
