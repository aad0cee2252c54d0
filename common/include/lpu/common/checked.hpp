#pragma once
// Checked 64-bit integer arithmetic for the expression evaluators (the assembler's expressions,
// rack manifests): every operation either returns the exact mathematical result or says why
// it cannot (overflow, division by zero, a shift amount out of range). Nothing here wraps or
// reaches undefined behaviour (INT64_MIN / -1, INT64_MIN % -1, x << 64, -INT64_MIN).
// Callers turn a fault into their own located error with describe().
#include <cstdint>
#include <string>
#include <string_view>

namespace lpu::checked {

// Recursive-descent parsers of expressions stop at this nesting depth (parentheses, unary
// operators, function calls) with a located error instead of overflowing the stack.
inline constexpr int kMaxDepth = 256;

enum class Fault : std::uint8_t { None, Overflow, DivideByZero, ShiftRange };

struct Value {
  std::int64_t v = 0;
  Fault fault = Fault::None;
  bool ok() const { return fault == Fault::None; }
};

inline Value add(std::int64_t a, std::int64_t b) {
  Value r;
  if (__builtin_add_overflow(a, b, &r.v)) r.fault = Fault::Overflow;
  return r;
}
inline Value sub(std::int64_t a, std::int64_t b) {
  Value r;
  if (__builtin_sub_overflow(a, b, &r.v)) r.fault = Fault::Overflow;
  return r;
}
inline Value mul(std::int64_t a, std::int64_t b) {
  Value r;
  if (__builtin_mul_overflow(a, b, &r.v)) r.fault = Fault::Overflow;
  return r;
}
inline Value neg(std::int64_t a) { return sub(0, a); }

// Truncating division and remainder (C++ semantics). INT64_MIN % -1 is mathematically 0 but
// is an overflow here too: both evaluate INT64_MIN / -1 on common hardware (SIGFPE).
inline Value div(std::int64_t a, std::int64_t b) {
  if (b == 0) return {0, Fault::DivideByZero};
  if (b == -1 && a == INT64_MIN) return {0, Fault::Overflow};
  return {a / b, Fault::None};
}
inline Value rem(std::int64_t a, std::int64_t b) {
  if (b == 0) return {0, Fault::DivideByZero};
  if (b == -1 && a == INT64_MIN) return {0, Fault::Overflow};
  return {a % b, Fault::None};
}
// Floored modulo: the result has the sign of b (non-negative for b > 0).
inline Value mod_floor(std::int64_t a, std::int64_t b) {
  Value r = rem(a, b);
  if (r.ok() && r.v != 0 && ((r.v < 0) != (b < 0))) r.v += b;  // |r| < |b|: cannot overflow
  return r;
}

// a << b is a * 2^b: an overflow when that does not fit (negative a included); b in 0..63.
inline Value shl(std::int64_t a, std::int64_t b) {
  if (b < 0 || b > 63) return {0, Fault::ShiftRange};
  if (a == 0) return {0, Fault::None};
  if (b == 63) return a == -1 ? Value{INT64_MIN, Fault::None} : Value{0, Fault::Overflow};
  return mul(a, std::int64_t(1) << b);
}
// Arithmetic shift right (floor(a / 2^b)); b in 0..63.
inline Value shr(std::int64_t a, std::int64_t b) {
  if (b < 0 || b > 63) return {0, Fault::ShiftRange};
  return {a >> b, Fault::None};
}

// "integer overflow: 9223372036854775807 + 1 does not fit in 64 bits", "division by zero: 5 / 0",
// "shift amount 64 out of range 0..63 in 1 << 64". For a unary operator pass a == b.
inline std::string describe(Fault f, std::string_view op, std::int64_t a, std::int64_t b, bool unary = false) {
  const std::string expr = unary ? std::string(op) + (a < 0 ? "(" + std::to_string(a) + ")" : std::to_string(a))
                                 : std::to_string(a) + " " + std::string(op) + " " + std::to_string(b);
  switch (f) {
    case Fault::None: break;
    case Fault::Overflow: return "integer overflow: " + expr + " does not fit in 64 bits";
    case Fault::DivideByZero: return "division by zero: " + expr;
    case Fault::ShiftRange: return "shift amount " + std::to_string(b) + " out of range 0..63 in " + expr;
  }
  return expr;
}

}  // namespace lpu::checked
