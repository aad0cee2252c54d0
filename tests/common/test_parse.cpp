// The checked number parser every option and configuration reader uses (common/parse.hpp).
#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "lpu/common/errors.hpp"
#include "lpu/common/parse.hpp"

using lpu::ConfigError;
using lpu::IntRange;
using lpu::parse_int;

static bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST_CASE("parse_int: decimal, signed, hex and binary, the whole text") {
  CHECK(parse_int("0", "k") == 0);
  CHECK(parse_int("42", "k") == 42);
  CHECK(parse_int("-7", "k") == -7);
  CHECK(parse_int("+7", "k") == 7);
  CHECK(parse_int("0x2a", "k") == 42);
  CHECK(parse_int("0X2A", "k") == 42);
  CHECK(parse_int("-0x10", "k") == -16);
  CHECK(parse_int("0b101", "k") == 5);
  CHECK(parse_int("010", "k") == 10);  // decimal: no octal surprise (strtol base 0 read 8)
  CHECK(parse_int("9223372036854775807", "k") == std::numeric_limits<std::int64_t>::max());
  CHECK(parse_int("-9223372036854775808", "k") == std::numeric_limits<std::int64_t>::min());
}

TEST_CASE("parse_int: what stoi and strtoul let through is an error naming the key and the text") {
  // Each of these was accepted by std::stoi / std::stoul (trailing text, a sign on an unsigned
  // value) or threw a bare std::invalid_argument ("internal error: stoi").
  for (const char* bad : {"", " 1", "1 ", "abc", "1x", "12abc", "0x", "0b2", "--1", "+-1", "1.5", "1e3", "0x1g"}) {
    CAPTURE(bad);
    CHECK_THROWS_WITH_AS(parse_int(bad, "--reg r1"),
                         doctest::Contains((std::string("--reg r1: '") + bad + "' is not an integer").c_str()), ConfigError);
  }
  CHECK_THROWS_WITH_AS(parse_int("9223372036854775808", "k"), doctest::Contains("'9223372036854775808' is out of range"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse_int("-9223372036854775809", "k"), doctest::Contains("is out of range"), ConfigError);
  CHECK_THROWS_WITH_AS(parse_int("0x10000000000000000", "k"), doctest::Contains("is out of range"), ConfigError);
}

TEST_CASE("parse_int: ranges, units and narrowing") {
  const IntRange rows{1, 1 << 20, "rows"};
  CHECK(parse_int("1048576", "mem.rows", rows) == 1 << 20);
  // 4294967552 = 2^32 + 256: a static_cast<int> made it 256.
  CHECK_THROWS_WITH_AS(parse_int("4294967552", "mem.rows", rows),
                       "config: mem.rows: '4294967552' is out of range 1..1048576 rows", ConfigError);
  CHECK_THROWS_WITH_AS(parse_int("0", "mem.rows", rows), "config: mem.rows: '0' is out of range 1..1048576 rows", ConfigError);
  // Unsigned: "-1" is not 4294967295 (std::stoul wrapped it).
  CHECK_THROWS_WITH_AS(parse_int("-1", "x", lpu::range_of<std::uint32_t>()), "config: x: '-1' is out of range 0..4294967295",
                       ConfigError);
  CHECK(parse_int("4294967295", "x", lpu::range_of<std::uint32_t>()) == 4294967295LL);
  CHECK_THROWS_AS(parse_int("2147483648", "x", lpu::range_of<int>()), ConfigError);
  CHECK(lpu::describe(lpu::range_of<std::uint64_t>()) == "at least 0");
  CHECK(lpu::describe(IntRange{}) == "any 64-bit integer");
  CHECK(lpu::describe(IntRange{.lo = 1, .unit = "cycles"}) == "at least 1 cycles");
  CHECK(lpu::check_int(5, "k", IntRange{0, 9}) == 5);
  CHECK_THROWS_WITH_AS(lpu::check_int(4294967552LL, "mem.rows", rows),
                       "config: mem.rows: 4294967552 is out of range 1..1048576 rows", ConfigError);
}

TEST_CASE("parse_int: a huge argument is quoted cut short") {
  const std::string big(100000, '7');
  try {
    parse_int(big, "--reg r1");
    FAIL("no error");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()).size() < 200);
    CHECK(has(e.what(), "(100000 characters)"));
  }
}

TEST_CASE("scan_int: a literal at the start of a longer text, for tokenizers") {
  auto s = lpu::scan_int("0x1f+3");
  CHECK(s.status == lpu::IntScan::Status::Ok);
  CHECK(s.value == 31);
  CHECK(s.used == 4);
  s = lpu::scan_int("99999999999999999999)");
  CHECK(s.status == lpu::IntScan::Status::OutOfRange);
  CHECK(s.used == 20);
  s = lpu::scan_int("-5", false);
  CHECK(s.status == lpu::IntScan::Status::NotANumber);
  CHECK(s.used == 0);
}

TEST_CASE("parse_double: finite, whole text, in range") {
  CHECK(lpu::parse_double("0.5", "k") == 0.5);
  CHECK(lpu::parse_double("+1e9", "k") == 1e9);
  CHECK(lpu::parse_double("-2", "k") == -2);
  for (const char* bad : {"", "x", "1.5x", "++1", "+-1", " 1"}) {
    CAPTURE(bad);
    CHECK_THROWS_WITH_AS(lpu::parse_double(bad, "--ber"), doctest::Contains("is not a number"), ConfigError);
  }
  CHECK_THROWS_WITH_AS(lpu::parse_double("nan", "k"), doctest::Contains("is not a finite number"), ConfigError);
  CHECK_THROWS_WITH_AS(lpu::parse_double("1e999", "k"), doctest::Contains("is not a finite number"), ConfigError);
  CHECK_THROWS_WITH_AS(lpu::parse_double("1.5", "ber", 0, 1), "config: ber: '1.5' is out of range [0, 1]", ConfigError);
}

TEST_CASE("check_toml_key_depth: counts the dots of keys only") {
  const std::string deep = [] {
    std::string k = "a";
    for (int i = 1; i < 300; ++i) k += ".a";
    return k;
  }();
  CHECK_THROWS_WITH_AS(lpu::check_toml_key_depth("x = 1\n" + deep + " = 2\n", "f.toml"),
                       "config: f.toml: line 2: a key with more than 256 dotted parts (the parser would recurse as deep)", ConfigError);
  CHECK_THROWS_AS(lpu::check_toml_key_depth("[" + deep + "]\n", "f.toml"), ConfigError);
  CHECK_THROWS_AS(lpu::check_toml_key_depth("t = {" + deep + " = 1}\n", "f.toml"), ConfigError);
  // Dots in strings (every kind), comments, floats, dates and arrays of floats do not count.
  const std::string dots(1000, '.');
  std::string floats;
  for (int i = 0; i < 500; ++i) floats += "1.5, ";
  const std::vector<std::string> fine = {
      "s = \"" + dots + "\"\n",
      "s = '" + dots + "'\n",
      "s = \"\"\"\n" + dots + "\n\"\"\"\n",
      "s = '''" + dots + "'''\n",
      "# " + dots + "\n",
      "s = \"\\\"" + dots + "\"\n",
      "a.b.c = 1.5\n",
      "d = 1979-05-27T07:32:00.999\n",
      "v = [" + floats + "2.5]\n",
      "\"a.b\".c = 1\n"};
  for (const auto& ok : fine) {
    CAPTURE(ok.substr(0, 40));
    CHECK_NOTHROW(lpu::check_toml_key_depth(ok, "f.toml"));
  }
}
