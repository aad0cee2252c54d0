#pragma once
// Distinct integer types for quantities that must not be mixed up.
#include <compare>
#include <cstdint>
#include <functional>

namespace lpu {

template <class Tag, class Rep>
struct Strong {
  Rep v{};
  constexpr Strong() = default;
  constexpr explicit Strong(Rep x) : v(x) {}
  constexpr auto operator<=>(const Strong&) const = default;
};

using Cycle = std::int64_t;  // arithmetic on cycles is everywhere; a plain integer keeps it light
struct SliceTag {};
struct QueueTag {};
struct ChipTag {};
using SliceId = Strong<SliceTag, std::int32_t>;
using QueueId = Strong<QueueTag, std::int32_t>;
using ChipId = Strong<ChipTag, std::int32_t>;

enum class Dir : std::uint8_t { East = 0, West = 1 };
enum class Hemi : std::uint8_t { West = 0, East = 1, Center = 2 };

// A stream as instructions name it: id plus direction. Packed in 7 bits in the encoding.
struct StreamRef {
  std::uint8_t id = 0;
  Dir dir = Dir::East;
  constexpr auto operator<=>(const StreamRef&) const = default;
  constexpr std::uint32_t packed() const { return id | (dir == Dir::West ? 64u : 0u); }
  static constexpr StreamRef unpack(std::uint64_t p) {
    return {static_cast<std::uint8_t>(p & 63u), (p & 64u) ? Dir::West : Dir::East};
  }
};

}  // namespace lpu

template <class Tag, class Rep>
struct std::hash<lpu::Strong<Tag, Rep>> {
  std::size_t operator()(const lpu::Strong<Tag, Rep>& s) const noexcept {
    return std::hash<Rep>{}(s.v);
  }
};
