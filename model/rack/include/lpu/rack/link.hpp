#pragma once
// Link integrity: every transfer carries a CRC-32 of its payload; a bit error rate flips bits
// with a deterministic, counter-based generator (the same flips for any thread count).
#include <cstdint>
#include <span>
#include <vector>

namespace lpu::rack {

// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320, initial and final XOR 0xFFFFFFFF).
std::uint32_t crc32(std::span<const std::uint8_t> bytes);

// The bit positions flipped in transfer `seq` of directed link (chip, link), out of `bits`
// bits (payload and CRC), for bit error rate `ber` in [0, 1]: each bit flips independently with
// probability `ber`, so their number is Binomial(bits, ber) and the positions are distinct.
// Usually empty. A function of its arguments only.
std::vector<std::uint32_t> bit_errors(std::uint64_t seed, int chip, int link, std::uint64_t seq, std::uint32_t bits,
                                      double ber);

}  // namespace lpu::rack
