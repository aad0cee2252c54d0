// Link integrity: CRC-32 and the deterministic bit-error generator.
#include <doctest/doctest.h>

#include <string>

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
