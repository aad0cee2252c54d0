#pragma once
// Checked number parsing for every option and configuration reader (presets, rack files,
// manifests, `lpu` options). One place that refuses what std::stoi / strtol / a static_cast
// would let through: trailing text, "-1" read as a huge unsigned value, and values that wrap
// when narrowed ("4294967552" becoming 256). Built on std::from_chars (no locale, no errno).
//
// Contract: every error is an lpu::ConfigError naming the option or key it was given and
// quoting the text (or value) it could not accept, with the accepted range and unit.
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

namespace lpu {

// An inclusive range; `unit` (plural, "rows", "cycles") only decorates messages.
struct IntRange {
  std::int64_t lo = std::numeric_limits<std::int64_t>::min();
  std::int64_t hi = std::numeric_limits<std::int64_t>::max();
  std::string_view unit = {};
};

// "1..1048576 rows", "at least 1 cycles", "any 64-bit integer": the range as messages show it.
std::string describe(const IntRange& r);

// The integer literal at the start of `text`, for tokenizers: an optional sign (when
// `allow_sign`), then decimal digits, or 0x/0X and hex digits, or 0b/0B and binary digits.
// `used` counts the characters of the literal (also when it is out of range); a literal is
// followed by whatever the caller's grammar allows.
struct IntScan {
  enum class Status : std::uint8_t { Ok, NotANumber, OutOfRange };
  Status status = Status::NotANumber;
  std::int64_t value = 0;
  std::size_t used = 0;
};
IntScan scan_int(std::string_view text, bool allow_sign = true);

// `text` must be exactly one integer literal (as scan_int, nothing before or after it) whose
// value lies in `range`. Errors: "KEY: 'TEXT' is not an integer (...)" and
// "KEY: 'TEXT' is out of range LO..HI UNIT".
std::int64_t parse_int(std::string_view text, const std::string& key, const IntRange& range = {});

// The same for a value already read as an integer (a TOML integer, an expression's result).
std::int64_t check_int(std::int64_t value, const std::string& key, const IntRange& range);

// The range of an integer type, for narrowing: parse_int(t, key, range_of<int>()).
template <class T>
constexpr IntRange range_of(std::string_view unit = {}) {
  static_assert(std::numeric_limits<T>::is_integer && sizeof(T) <= 8);
  if constexpr (std::numeric_limits<T>::is_signed)
    return IntRange{std::numeric_limits<T>::min(), std::numeric_limits<T>::max(), unit};
  else if constexpr (sizeof(T) < 8)
    return IntRange{0, std::int64_t(std::numeric_limits<T>::max()), unit};
  else
    return IntRange{0, std::numeric_limits<std::int64_t>::max(), unit};
}

// A finite floating-point number that is the whole of `text` (an optional sign, no spaces),
// or nothing: for readers that try a number before something else.
std::optional<double> scan_double(std::string_view text);

// A finite floating-point number, the whole of `text`, in [lo, hi].
double parse_double(std::string_view text, const std::string& key,
                    double lo = -std::numeric_limits<double>::max(), double hi = std::numeric_limits<double>::max());

// TOML text (presets, rack files, manifests, model shapes), checked before toml++ parses it:
// toml++ builds a table per part of a dotted key recursively, and a key of ~45,000 parts
// overflows the stack (it limits nested arrays and inline tables to 256 itself). Throws
// ConfigError(origin, "line N: a key with more than 256 dotted parts ...") for a longer key
// or table header; dots in strings, comments and numbers do not count.
inline constexpr int kMaxTomlKeyParts = 256;
void check_toml_key_depth(std::string_view text, const std::string& origin);

}  // namespace lpu
