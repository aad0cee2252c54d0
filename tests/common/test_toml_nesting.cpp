// check_toml_nesting: a line with more than 1024 dots outside strings and comments is refused
// before toml++ (whose tables nested that deep overflow the stack) sees it.
#include <doctest/doctest.h>

#include <string>

#include "lpu/common/toml_nesting.hpp"

namespace {
std::string dots(int n, const std::string& part = "a") {
  std::string s = part;
  for (int i = 0; i < n; ++i) s += "." + part;
  return s;
}
std::string error_of(const std::string& text) {
  try {
    lpu::check_toml_nesting(text, "f.toml");
  } catch (const lpu::ConfigError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("toml nesting: 1024 dots in a line pass, 1025 are refused with the file and line") {
  CHECK(error_of(dots(1024) + " = 1\n").empty());
  CHECK(error_of("x = 1\n" + dots(1025) + " = 1\n") ==
        "config: f.toml: line 2: more than 1024 dots in one line (keys nested that deep are refused)");
  CHECK(!error_of("[" + dots(45000) + "]\n").empty());
  CHECK(!error_of(dots(3000, "\"q\"") + " = 1\n").empty());  // quoted parts
  CHECK(!error_of(dots(3000, "1") + " = 1\n").empty());      // digits are keys too
}

TEST_CASE("toml nesting: dots in strings, comments and multi-line strings do not count") {
  const std::string many(5000, '.');
  CHECK(error_of("a = \"" + many + "\"\n").empty());
  CHECK(error_of("a = '" + many + "'\n").empty());
  CHECK(error_of("a = 1 # " + many + "\n").empty());
  CHECK(error_of("a = \"\"\"\n" + many + "\n\"\"\"\n").empty());
  CHECK(error_of("a = '''\n" + many + "\n'''\n").empty());
  CHECK(error_of("a = \"\\\"" + many + "\"\n").empty());  // an escaped quote does not end the string
  // Each line counts on its own.
  std::string lines;
  for (int i = 0; i < 10; ++i) lines += dots(1000) + " = 1\n";
  CHECK(error_of(lines).empty());
  // After a multi-line string ends, dots count again.
  CHECK(error_of("a = \"\"\"x\"\"\" " + many + "\n") ==
        "config: f.toml: line 1: more than 1024 dots in one line (keys nested that deep are refused)");
}
