// Expressions of the assembly language: checked 64-bit arithmetic and bounded nesting. Every
// overflow, division by zero and out-of-range shift is an error at its operator; 20,000 nested
// parentheses are an error, not a stack overflow.
#include <doctest/doctest.h>

#include <fmt/format.h>

#include <string>

#include "helpers.hpp"

using namespace lpu;
using namespace lpu::test;

namespace {

// `src` (one or more lines) fails with its first error at line:col, the column of the first
// occurrence of `at` on that line, with a message containing `what`.
void expect_error_at(const std::string& src, int line, const std::string& at, const std::string& what) {
  std::size_t b = 0;
  for (int l = 1; l < line; ++l) b = src.find('\n', b) + 1;
  const auto col = int(src.find(at, b) - b) + 1;
  const auto e = asm_error(src);
  CAPTURE(src);
  CAPTURE(e);
  REQUIRE(!e.empty());
  CHECK(e.rfind(fmt::format("t.lpa:{}:{}: error: ", line, col), 0) == 0);
  CHECK(e.find(what) != std::string::npos);
}

// `src` fails with its first error on `line` (at column `col` when > 0), its message containing `what`.
void expect_error_line(const std::string& src, int line, int col, const std::string& what) {
  const auto e = asm_error(src);
  CAPTURE(e.substr(0, 300));
  REQUIRE(!e.empty());
  CHECK(e.rfind(col > 0 ? fmt::format("t.lpa:{}:{}: error: ", line, col) : fmt::format("t.lpa:{}:", line), 0) == 0);
  CHECK(e.find(what) != std::string::npos);
}

// The value of a constant expression, through a register.
std::int64_t value(const std::string& expr) {
  auto r = asm_mini(".const V = " + expr + "\n.reg r1 = V\n");
  return r.program.regs[1];
}

const std::string kMin = "(-9223372036854775807 - 1)";

}  // namespace

TEST_CASE("expressions: every operator's overflow is an error at the operator") {
  expect_error_at(".const A = 9223372036854775807 + 1\n", 1, "+", "integer overflow: 9223372036854775807 + 1");
  expect_error_at(".const A = -9223372036854775807 - 2\n", 1, "- 2", "integer overflow: -9223372036854775807 - 2");
  expect_error_at(".const A = 4294967296 * 2147483648\n", 1, "*", "integer overflow: 4294967296 * 2147483648");
  expect_error_at(".const A = " + kMin + " / -1\n", 1, "/", "integer overflow: -9223372036854775808 / -1");
  expect_error_at(".const A = " + kMin + " % -1\n", 1, "%", "integer overflow: -9223372036854775808 % -1");
  expect_error_at(".const A = -" + kMin + "\n", 1, "-(", "integer overflow: -(-9223372036854775808)");
  expect_error_at(".const A = 5 / (3 - 3)\n", 1, "/", "division by zero: 5 / 0");
  expect_error_at(".const A = 5 % 0\n", 1, "%", "division by zero: 5 % 0");
  expect_error_at(".const A = 1 << 63\n", 1, "<<", "integer overflow: 1 << 63");
  expect_error_at(".const A = -3 << 62\n", 1, "<<", "integer overflow: -3 << 62");
  expect_error_at(".const A = 1 << 64\n", 1, "<<", "shift amount 64 out of range 0..63");
  expect_error_at(".const A = 1 >> -1\n", 1, ">>", "shift amount -1 out of range 0..63");
  // Not folded while parsing: an issue-time expression over a label, evaluated by the scheduler.
  expect_error_at(".queue vxm.0\nx: @1 CONST.i8 s0e, 1\n.queue vxm.1\n@issue(x) + 9223372036854775807 CONST.i8 s1e, 1\n", 4,
                  "+", "integer overflow: 1 + 9223372036854775807");
  expect_error_at(".queue vxm.0\nx: @1 CONST.i8 s0e, 1\n.queue vxm.1\n@issue(x) - " + kMin + " CONST.i8 s1e, 1\n", 4,
                  "- (", "integer overflow: 1 - -9223372036854775808");
  // @+delay: the cycle the queue is free plus the delay.
  expect_error_at(".queue vxm.0\nCONST.i8 s0e, 1\n@+9223372036854775807 CONST.i8 s0e, 1\n", 3, "9223",
                  "integer overflow: 1 + 9223372036854775807");
  // .rept VAR = START, COUNT: the last value START + COUNT - 1 must fit.
  expect_error_at(".rept I = 9223372036854775807, 2\n.endr\n", 1, "2\n", "integer overflow");
}

TEST_CASE("expressions: exact results at the edges of int64") {
  CHECK(value("(9223372036854775807 - 1 + 1) - 9223372036854775807 + 7") == 7);
  CHECK(value(kMin + " / 1 + 9223372036854775807 + 2") == 1);
  CHECK(value("((-1 << 63) >> 60) + 108") == 100);  // -2^63 fits; >> is arithmetic
  CHECK(value("-7 / 2 + 10") == 7);                      // truncating division
  CHECK(value("-7 % 3 + 10") == 9);                      // remainder with the sign of the dividend
  CHECK(value("max(" + kMin + ", 3) * 5") == 15);
}

TEST_CASE("expressions: nesting is bounded, 20,000 parentheses are an error and not a stack overflow") {
  auto nested = [](int n) { return std::string(std::size_t(n), '(') + "1" + std::string(std::size_t(n), ')'); };
  CHECK(value(nested(200) + " + 1") == 2);
  // The 257th level: the parenthesis after the 256th, in column 12 + 256.
  expect_error_line(".const A = " + nested(20000) + "\n", 1, 268, "nested more than 256 deep");
  // Unary operators recurse as deeply.
  std::string minus;
  for (int i = 0; i < 20000; ++i) minus += "- ";
  expect_error_line(".const A = " + minus + "1\n", 1, 0, "nested more than 256 deep");
  std::string tilde(20000, '~');
  expect_error_line(".const A = " + tilde + "1\n", 1, 0, "nested more than 256 deep");
  // Calls, in an issue time.
  std::string calls;
  for (int i = 0; i < 20000; ++i) calls += "max(";
  calls += "1";
  for (int i = 0; i < 20000; ++i) calls += ")";
  expect_error_line(".queue vxm.0\n@" + calls + " CONST.i8 s0e, 1\n", 2, 0, "nested more than 256 deep");
  // A chain over a label is kept as a tree (issue(x) is not known while parsing): its depth is
  // bounded too.
  std::string chain = "issue(x)";
  for (int i = 0; i < 5000; ++i) chain += " + 1";
  const auto e = asm_error(".queue vxm.0\nx: CONST.i8 s0e, 1\n.queue vxm.1\n@" + chain + " CONST.i8 s1e, 1\n");
  CHECK(e.find("t.lpa:4:") == 0);
  CHECK(e.find("expression too complex: more than 4096 operators deep") != std::string::npos);
  std::string ok_chain = "issue(x)";
  for (int i = 0; i < 1000; ++i) ok_chain += " + 1";
  auto r = asm_mini(".queue vxm.0\nx: CONST.i8 s0e, 1\n.queue vxm.1\n@" + ok_chain + " CONST.i8 s1e, 1\n");
  CHECK(cycle_of(r, "vxm.1", "CONST") == 1000);
  // Label indices: x[x[x[...]]] in issue().
  std::string idx = "0";
  for (int i = 0; i < 20000; ++i) idx = "(" + idx + ")";
  expect_error_line(".queue vxm.0\nx[0]: CONST.i8 s0e, 1\n.queue vxm.1\n@issue(x[" + idx + "]) CONST.i8 s1e, 1\n", 4, 0,
                    "nested more than 256 deep");
}

TEST_CASE(".rept nesting is bounded") {
  std::string ok, deep;
  for (int i = 0; i < 100; ++i) ok += ".rept 1\n";
  ok += ".queue vxm.0\nCONST.i8 s0e, 1\n";
  for (int i = 0; i < 100; ++i) ok += ".endr\n";
  CHECK(asm_error(ok).empty());
  for (int i = 0; i < 20000; ++i) deep += ".rept 1\n";
  for (int i = 0; i < 20000; ++i) deep += ".endr\n";
  const auto e = asm_error(deep);
  CHECK(e.find("t.lpa:257:1: error: .rept nested more than 256 deep") == 0);
}
