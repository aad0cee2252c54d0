#include "lpu/common/parse.hpp"

#include <fmt/format.h>

#include <charconv>
#include <cmath>

#include "lpu/common/errors.hpp"

namespace lpu {

namespace {

// Quoted text for a message; a hostile 100 kB argument is cut, not echoed whole.
std::string quote(std::string_view text) {
  constexpr std::size_t kMax = 64;
  if (text.size() <= kMax) return fmt::format("'{}'", text);
  return fmt::format("'{}...' ({} characters)", text.substr(0, kMax), text.size());
}

constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();

}  // namespace

std::string describe(const IntRange& r) {
  const std::string unit = r.unit.empty() ? std::string() : " " + std::string(r.unit);
  if (r.lo == kMin && r.hi == kMax) return "any 64-bit integer";
  if (r.hi == kMax) return fmt::format("at least {}{}", r.lo, unit);
  if (r.lo == kMin) return fmt::format("at most {}{}", r.hi, unit);
  return fmt::format("{}..{}{}", r.lo, r.hi, unit);
}

IntScan scan_int(std::string_view text, bool allow_sign) {
  IntScan s;
  std::size_t i = 0;
  bool neg = false;
  if (allow_sign && i < text.size() && (text[i] == '-' || text[i] == '+')) neg = text[i++] == '-';
  int base = 10;
  if (i + 1 < text.size() && text[i] == '0' && (text[i + 1] == 'x' || text[i + 1] == 'X')) {
    base = 16;
    i += 2;
  } else if (i + 1 < text.size() && text[i] == '0' && (text[i + 1] == 'b' || text[i + 1] == 'B')) {
    base = 2;
    i += 2;
  }
  // The magnitude as unsigned, so that INT64_MIN ("-9223372036854775808") is representable.
  std::uint64_t mag = 0;
  const char* first = text.data() + i;
  const char* last = text.data() + text.size();
  auto [end, ec] = std::from_chars(first, last, mag, base);
  if (end == first) {  // no digits (a bare sign, "0x" with no hex digit, a letter)
    s.status = IntScan::Status::NotANumber;
    s.used = 0;
    return s;
  }
  s.used = std::size_t(end - text.data());
  if (ec == std::errc::result_out_of_range) {
    s.status = IntScan::Status::OutOfRange;
    return s;
  }
  const std::uint64_t limit = neg ? std::uint64_t(kMax) + 1 : std::uint64_t(kMax);
  if (mag > limit) {
    s.status = IntScan::Status::OutOfRange;
    return s;
  }
  s.value = neg ? (mag == std::uint64_t(kMax) + 1 ? kMin : -std::int64_t(mag)) : std::int64_t(mag);
  s.status = IntScan::Status::Ok;
  return s;
}

std::int64_t parse_int(std::string_view text, const std::string& key, const IntRange& range) {
  const auto s = scan_int(text, true);
  if (s.status == IntScan::Status::NotANumber || s.used != text.size())
    throw ConfigError(key, fmt::format("{} is not an integer (expected digits, or 0x/0b and hex/binary digits)", quote(text)));
  if (s.status == IntScan::Status::OutOfRange || s.value < range.lo || s.value > range.hi)
    throw ConfigError(key, fmt::format("{} is out of range {}", quote(text), describe(range)));
  return s.value;
}

std::int64_t check_int(std::int64_t value, const std::string& key, const IntRange& range) {
  if (value < range.lo || value > range.hi)
    throw ConfigError(key, fmt::format("{} is out of range {}", value, describe(range)));
  return value;
}

std::optional<double> scan_double(std::string_view text) {
  std::string_view t = text;
  if (t.starts_with('+')) t.remove_prefix(1);  // from_chars takes '-' only
  if (t.starts_with('+') || (t.starts_with('-') && text.starts_with('+'))) return std::nullopt;
  double v = 0;
  auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (end == t.data() || end != t.data() + t.size() || ec != std::errc() || !std::isfinite(v)) return std::nullopt;
  return v;
}

double parse_double(std::string_view text, const std::string& key, double lo, double hi) {
  std::string_view t = text;
  if (!t.empty() && t[0] == '+') t.remove_prefix(1);  // from_chars takes '-' only
  double v = 0;
  auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (end == t.data() || end != t.data() + t.size() || t.starts_with('+') || t.starts_with('-') != text.starts_with('-'))
    throw ConfigError(key, fmt::format("{} is not a number", quote(text)));
  if (ec == std::errc::result_out_of_range || !std::isfinite(v))
    throw ConfigError(key, fmt::format("{} is not a finite number", quote(text)));
  if (v < lo || v > hi) throw ConfigError(key, fmt::format("{} is out of range [{:g}, {:g}]", quote(text), lo, hi));
  return v;
}

void check_toml_key_depth(std::string_view text, const std::string& origin) {
  // A lexical pass: skip strings (basic, literal, multi-line) and comments; count the dots
  // since the last character that ends a key or starts a new one. A float has one dot and a
  // date-time one: only keys reach the limit.
  int dots = 0, line = 1;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n') {
      ++line;
      dots = 0;
    } else if (c == '#') {
      while (i + 1 < text.size() && text[i + 1] != '\n') ++i;
    } else if (c == '"' || c == '\'') {
      const bool multi = text.substr(i, 3) == std::string_view(c == '"' ? "\"\"\"" : "\'\'\'");
      const std::string_view close = multi ? text.substr(i, 3) : text.substr(i, 1);
      i += close.size();
      while (i < text.size() && text.substr(i, close.size()) != close) {
        if (text[i] == '\n') ++line;
        if (c == '"' && text[i] == '\\') ++i;  // an escape (basic strings only)
        ++i;
      }
      i += close.size() - 1;  // on the last quote (the loop's ++i steps past it)
    } else if (c == '=' || c == ',' || c == '{' || c == '}' || c == '[' || c == ']') {
      dots = 0;
    } else if (c == '.' && ++dots >= kMaxTomlKeyParts) {
      throw ConfigError(origin, fmt::format("line {}: a key with more than {} dotted parts (the parser would recurse as deep)",
                                            line, kMaxTomlKeyParts));
    }
  }
}

}  // namespace lpu
