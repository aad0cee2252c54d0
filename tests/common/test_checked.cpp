// Checked 64-bit arithmetic (lpu/common/checked.hpp): exact results up to the edges of int64,
// a fault (never a wrap, never undefined behaviour) one step past them.
#include <doctest/doctest.h>

#include <cstdint>
#include <limits>

#include "lpu/common/checked.hpp"

using namespace lpu::checked;
namespace ck = lpu::checked;

namespace {
constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();

bool is(Value v, std::int64_t want) { return v.ok() && v.v == want; }
bool fault(Value v, Fault f) { return v.fault == f; }
}  // namespace

TEST_CASE("checked add, sub, mul, neg: exact at the edges, overflow one past them") {
  CHECK(is(add(kMax - 1, 1), kMax));
  CHECK(fault(add(kMax, 1), Fault::Overflow));
  CHECK(is(add(kMin + 1, -1), kMin));
  CHECK(fault(add(kMin, -1), Fault::Overflow));
  CHECK(is(sub(kMin + 1, 1), kMin));
  CHECK(fault(sub(kMin, 1), Fault::Overflow));
  CHECK(fault(sub(0, kMin), Fault::Overflow));
  CHECK(is(mul(3037000499, 3037000499), 9223372030926249001));  // floor(sqrt(2^63 - 1))^2
  CHECK(fault(mul(3037000500, 3037000500), Fault::Overflow));
  CHECK(fault(mul(std::int64_t(1) << 32, std::int64_t(1) << 31), Fault::Overflow));  // 2^63
  CHECK(is(mul(-(std::int64_t(1) << 32), std::int64_t(1) << 31), kMin));            // -2^63 fits
  CHECK(fault(mul(kMin, -1), Fault::Overflow));
  CHECK(is(neg(kMax), kMin + 1));
  CHECK(fault(neg(kMin), Fault::Overflow));
}

TEST_CASE("checked div, rem, mod_floor: INT64_MIN / -1 and % -1, division by zero") {
  CHECK(is(ck::div(kMin, 1), kMin));
  CHECK(is(ck::div(kMin + 1, -1), kMax));
  CHECK(fault(ck::div(kMin, -1), Fault::Overflow));
  CHECK(fault(ck::rem(kMin, -1), Fault::Overflow));
  CHECK(fault(mod_floor(kMin, -1), Fault::Overflow));
  CHECK(fault(ck::div(5, 0), Fault::DivideByZero));
  CHECK(fault(ck::rem(5, 0), Fault::DivideByZero));
  CHECK(fault(mod_floor(5, 0), Fault::DivideByZero));
  CHECK(is(ck::div(-7, 2), -3));  // truncating
  CHECK(is(ck::rem(-7, 3), -1));
  CHECK(is(mod_floor(-7, 3), 2));  // the sign of the divisor
  CHECK(is(mod_floor(7, -3), -2));
  CHECK(is(mod_floor(kMin, kMax), kMax - 1));  // -2^63 = -2 (2^63 - 1) + (2^63 - 2)
}

TEST_CASE("checked shifts: a << b is a * 2^b, amounts 0..63") {
  CHECK(is(shl(1, 62), std::int64_t(1) << 62));
  CHECK(fault(shl(1, 63), Fault::Overflow));
  CHECK(fault(shl(2, 62), Fault::Overflow));
  CHECK(is(shl(-1, 63), kMin));
  CHECK(is(shl(-2, 62), kMin));
  CHECK(fault(shl(-3, 62), Fault::Overflow));
  CHECK(is(shl(0, 63), 0));
  CHECK(is(shl(-5, 2), -20));
  CHECK(fault(shl(1, 64), Fault::ShiftRange));
  CHECK(fault(shl(1, -1), Fault::ShiftRange));
  CHECK(fault(shl(0, 64), Fault::ShiftRange));
  CHECK(is(shr(kMin, 63), -1));
  CHECK(is(shr(-8, 1), -4));
  CHECK(is(shr(kMax, 63), 0));
  CHECK(fault(shr(1, 64), Fault::ShiftRange));
  CHECK(fault(shr(1, -1), Fault::ShiftRange));
}

TEST_CASE("checked: messages name the operation") {
  CHECK(describe(Fault::Overflow, "+", kMax, 1) == "integer overflow: 9223372036854775807 + 1 does not fit in 64 bits");
  CHECK(describe(Fault::DivideByZero, "/", 5, 0) == "division by zero: 5 / 0");
  CHECK(describe(Fault::ShiftRange, "<<", 1, 64) == "shift amount 64 out of range 0..63 in 1 << 64");
  CHECK(describe(Fault::Overflow, "-", kMin, kMin, true) ==
        "integer overflow: -(-9223372036854775808) does not fit in 64 bits");
}
