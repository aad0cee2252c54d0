// Bit-exact numerics of the LPU. The rules implemented here are specified in isa/numerics.md;
// every function below follows that text operation for operation (the RTL mirrors it).
//
// Build requirement: IEEE f32 with round-to-nearest-even, no flush-to-zero / denormals-are-zero,
// and no FMA contraction (-ffp-contract=off). The transcendentals are written as explicit
// sequences of f32 operations so that a compiler may not reorder or fuse them.
#include "lpu/isa/numerics.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "lpu/isa/isa.hpp"

namespace lpu::num {

using isa::Dtype;
using isa::Op;

static_assert(std::endian::native == std::endian::little,
              "vector elements are little-endian; a big-endian host needs byte swaps");
static_assert(std::numeric_limits<float>::is_iec559, "f32 must be IEEE binary32");

namespace {

// ---- bit helpers ----------------------------------------------------------------------------

inline float as_f(std::uint32_t u) { return std::bit_cast<float>(u); }
inline std::uint32_t as_u(float f) { return std::bit_cast<std::uint32_t>(f); }

constexpr std::uint32_t kF32NanBits = 0x7FC00000u;  // canonical f32 NaN
inline float qnan() { return as_f(kF32NanBits); }

// c ? x : y on bit patterns, written with masks: element loops stay branch-free (a ternary on a
// float condition keeps GCC from if-converting, hence from vectorising, under -ftrapping-math).
inline std::uint32_t blend(bool c, std::uint32_t x, std::uint32_t y) {
  const std::uint32_t m = 0u - static_cast<std::uint32_t>(c);
  return (x & m) | (y & ~m);
}

// 2^k as an f32, k in [-126, 127] (a normal power of two, built from its bits).
inline float pow2(int k) { return as_f(static_cast<std::uint32_t>(k + 127) << 23); }

// v * 2^k for k in [-252, 254]: two multiplications by normal powers of two. The first is exact
// for every use in this file; the second rounds once (only when the result is subnormal).
inline float scale2(float v, int k) {
  int k1 = k / 2;  // truncates toward zero
  int k2 = k - k1;
  return (v * pow2(k1)) * pow2(k2);
}

// ---- small float formats --------------------------------------------------------------------

// A binary float format narrower than f32: EB exponent bits, MB mantissa bits, bias
// 2^(EB-1)-1. `sat`: finite overflow and infinities saturate to the largest finite value
// (fp8); otherwise overflow gives infinity (f16, bf16). `nan`: the canonical NaN pattern.
// `ieee`: the all-ones exponent encodes inf/NaN (false for e4m3, whose only NaN is S.1111.111).
struct Fmt {
  int eb, mb;
  bool sat, ieee;
  std::uint32_t max_finite, nan;
  constexpr int bias() const { return (1 << (eb - 1)) - 1; }
  constexpr std::uint32_t sign_bit() const { return 1u << (eb + mb); }
  constexpr std::uint32_t inf() const { return static_cast<std::uint32_t>((1 << eb) - 1) << mb; }
};
constexpr Fmt kF16{5, 10, false, true, 0x7BFF, 0x7E00};
constexpr Fmt kE4m3{4, 3, true, false, 0x7E, 0x7F};
constexpr Fmt kE5m2{5, 2, true, true, 0x7B, 0x7F};

// f32 -> format F, round to nearest even, as numerics.md ("Rounding f32 to a narrower float")
// specifies it; this formulation is select-based so that element loops vectorise:
//  - target normals: rebias the exponent in place and round the low 23-mb bits to nearest even
//    by adding 0b0111..1 plus the lowest kept bit (a carry moves into the exponent);
//  - target subnormals: |x| + M with M = 2^(24-bias-mb), whose ulp is the subnormal quantum
//    2^(1-bias-mb): the f32 addition rounds |x| to that quantum (RNE), and the bits above M's
//    are the subnormal mantissa (2^mb when it rounds up to the smallest normal);
//  - the normal-path result grows monotonically with |x|, so overflow (and inf) is one clamp.
template <const Fmt& F>
inline std::uint32_t encode(float f) {
  constexpr int kShift = 23 - F.mb;
  constexpr std::uint32_t kRebias = static_cast<std::uint32_t>(F.bias() - 127) << 23;  // mod 2^32
  constexpr std::uint32_t kMinNormal = static_cast<std::uint32_t>(128 - F.bias()) << 23;
  constexpr std::uint32_t kMagic = static_cast<std::uint32_t>(127 + 24 - F.bias() - F.mb) << 23;
  const std::uint32_t u = as_u(f);
  const std::uint32_t a = u & 0x7FFFFFFFu;
  const std::uint32_t sign = (u >> 31) ? F.sign_bit() : 0u;
  const std::uint32_t normal =
      (a + kRebias + ((1u << (kShift - 1)) - 1u) + ((a >> kShift) & 1u)) >> kShift;
  const std::uint32_t sub = as_u(as_f(a) + as_f(kMagic)) - kMagic;
  constexpr std::uint32_t top = F.sat ? F.max_finite : F.inf();
  const std::uint32_t r = blend(a < kMinNormal, sub, std::min(normal, top));
  return blend(a > 0x7F800000u, F.nan, sign | r);
}

// Format F -> f32 (exact): integer normalisation, usable in constant expressions.
template <const Fmt& F>
constexpr std::uint32_t decode_bits(std::uint32_t b) {
  const std::uint32_t sign = (b & F.sign_bit()) ? 0x80000000u : 0u;
  const std::uint32_t emax = (1u << F.eb) - 1u;
  std::uint32_t e = (b >> F.mb) & emax;
  std::uint32_t m = b & ((1u << F.mb) - 1u);
  if (F.ieee && e == emax) return sign | 0x7F800000u | (m << (23 - F.mb));
  if (!F.ieee && e == emax && m == (1u << F.mb) - 1u) return sign | kF32NanBits;
  if (e == 0) {
    if (m == 0) return sign;
    int ex = 1;  // normalise the subnormal
    while (!(m & (1u << F.mb))) {
      m <<= 1;
      --ex;
    }
    m &= (1u << F.mb) - 1u;
    e = static_cast<std::uint32_t>(ex - F.bias() + 127);
    return sign | (e << 23) | (m << (23 - F.mb));
  }
  return sign | ((e - static_cast<std::uint32_t>(F.bias()) + 127u) << 23) | (m << (23 - F.mb));
}

template <const Fmt& F>
constexpr std::array<float, 256> make_fp8_table() {
  std::array<float, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) t[i] = std::bit_cast<float>(decode_bits<F>(i));
  return t;
}
constexpr std::array<float, 256> kE4m3Table = make_fp8_table<kE4m3>();
constexpr std::array<float, 256> kE5m2Table = make_fp8_table<kE5m2>();

inline float dec_f16(std::uint16_t h) {
  // (h & 0x7fff) << 13 read as f32 is |value| * 2^-112 for normals and subnormals alike;
  // multiplying by 2^112 is exact. Exponent 31 (inf/NaN) is mapped to exponent 255.
  const std::uint32_t mag = static_cast<std::uint32_t>(h & 0x7FFFu) << 13;
  const std::uint32_t r = blend(mag >= 0x0F800000u, mag | 0x7F800000u, as_u(as_f(mag) * 0x1p112f));
  return as_f(r | (static_cast<std::uint32_t>(h & 0x8000u) << 16));
}
inline float dec_bf16(std::uint16_t h) { return as_f(static_cast<std::uint32_t>(h) << 16); }
inline std::uint16_t enc_bf16(float f) {
  const std::uint32_t u = as_u(f);
  // The generic rule for bf16 (8 exponent bits, like f32) reduces to rounding off the low 16
  // bits to nearest even; a carry propagates into the exponent and turns the largest values
  // into infinity, as the rule requires.
  return static_cast<std::uint16_t>(
      blend((u & 0x7FFFFFFFu) > 0x7F800000u, 0x7FC0u, (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16));
}
inline std::uint32_t enc_f32(float f) { return blend(f != f, kF32NanBits, as_u(f)); }

// ---- element types --------------------------------------------------------------------------

template <Dtype T>
struct Elem;
template <>
struct Elem<Dtype::I8> {
  using S = std::int8_t;
};
template <>
struct Elem<Dtype::I16> {
  using S = std::int16_t;
};
template <>
struct Elem<Dtype::I32> {
  using S = std::int32_t;
};
template <>
struct Elem<Dtype::F32> {
  using S = std::uint32_t;
};
template <>
struct Elem<Dtype::F16> {
  using S = std::uint16_t;
};
template <>
struct Elem<Dtype::Bf16> {
  using S = std::uint16_t;
};
template <>
struct Elem<Dtype::E4m3> {
  using S = std::uint8_t;
};
template <>
struct Elem<Dtype::E5m2> {
  using S = std::uint8_t;
};
template <Dtype T>
using S_t = typename Elem<T>::S;
template <Dtype T>
constexpr bool kFloat =
    T == Dtype::F32 || T == Dtype::F16 || T == Dtype::Bf16 || T == Dtype::E4m3 || T == Dtype::E5m2;

template <class S>
inline S ld(const std::uint8_t* p, std::size_t i) {
  S v;
  std::memcpy(&v, p + i * sizeof(S), sizeof(S));
  return v;
}
template <class S>
inline void st(std::uint8_t* p, std::size_t i, S v) {
  std::memcpy(p + i * sizeof(S), &v, sizeof(S));
}

// Float element pattern -> f32 (exact) and f32 -> pattern (RNE, NaN canonical).
template <Dtype T>
inline float dec(S_t<T> s) {
  if constexpr (T == Dtype::F32)
    return as_f(s);
  else if constexpr (T == Dtype::F16)
    return dec_f16(s);
  else if constexpr (T == Dtype::Bf16)
    return dec_bf16(s);
  else if constexpr (T == Dtype::E4m3)
    return kE4m3Table[s];
  else
    return kE5m2Table[s];
}
template <Dtype T>
inline S_t<T> enc(float f) {
  if constexpr (T == Dtype::F32)
    return enc_f32(f);
  else if constexpr (T == Dtype::F16)
    return static_cast<std::uint16_t>(encode<kF16>(f));
  else if constexpr (T == Dtype::Bf16)
    return enc_bf16(f);
  else if constexpr (T == Dtype::E4m3)
    return static_cast<std::uint8_t>(encode<kE4m3>(f));
  else
    return static_cast<std::uint8_t>(encode<kE5m2>(f));
}
template <Dtype T>
constexpr S_t<T> sign_mask() {
  return static_cast<S_t<T>>(S_t<T>(1) << (8 * sizeof(S_t<T>) - 1));
}

// ---- integer <-> float conversions ----------------------------------------------------------

// Round an integer to P significant bits (RNE) and return it as an f32 (exact: the rounded
// value has at most P <= 24 significant bits and |v| <= 2^64).
template <int P>
inline float int_to_f32_prec(std::int64_t v) {
  const bool neg = v < 0;
  std::uint64_t m = neg ? 0 - static_cast<std::uint64_t>(v) : static_cast<std::uint64_t>(v);
  int sh = 0;
  const int w = static_cast<int>(std::bit_width(m));
  if (w > P) {
    sh = w - P;
    const std::uint64_t q = m >> sh;
    const std::uint64_t rem = m & ((std::uint64_t(1) << sh) - 1);
    const std::uint64_t half = std::uint64_t(1) << (sh - 1);
    m = q + ((rem > half || (rem == half && (q & 1))) ? 1 : 0);  // may become 2^P: still exact
  }
  float f = static_cast<float>(m);                                 // m <= 2^P: exact
  if (sh > 0) f = f * static_cast<float>(std::uint64_t(1) << sh);  // sh <= 61; exact
  return neg ? -f : f;
}

// Precision (significant bits incl. the implicit one) of each float format.
template <Dtype T>
constexpr int kPrec = T == Dtype::F32    ? 24
                      : T == Dtype::F16  ? 11
                      : T == Dtype::Bf16 ? 8
                      : T == Dtype::E4m3 ? 4
                                         : 3;

// Integer -> float element: one rounding (RNE) from the exact integer.
template <Dtype T>
inline S_t<T> int_to_float(std::int64_t v) {
  return enc<T>(int_to_f32_prec<kPrec<T>>(v));
}

// f32 -> integer of type I: RNE, saturating, NaN -> 0. Branch-free (vectorisable).
template <class I>
inline I float_to_int(float x) {
  // Round to an integer, ties to even: for |x| < 2^23, (|x| + 2^23) - 2^23 rounds in the
  // addition; larger magnitudes are integers already.
  const float a = std::fabs(x);
  const float ra = as_f(blend(a < 0x1p23f, as_u((a + 0x1p23f) - 0x1p23f), as_u(a)));
  const float r = as_f(blend(x != x, 0u, as_u(std::copysign(ra, x))));  // NaN -> 0
  if constexpr (sizeof(I) < 4) {
    constexpr float lo = std::numeric_limits<I>::min(), hi = std::numeric_limits<I>::max();
    const float c = as_f(blend(r < lo, as_u(lo), blend(r > hi, as_u(hi), as_u(r))));
    return static_cast<I>(static_cast<std::int32_t>(c));
  } else {
    // i32: 2^31 - 1 is not an f32; clamp below 2^31 for the conversion and patch the maximum.
    const float c = as_f(blend(r < -0x1p31f, as_u(-0x1p31f),
                               blend(r > 0x1.fffffep30f, as_u(0x1.fffffep30f), as_u(r))));
    const auto v = static_cast<std::uint32_t>(static_cast<std::int32_t>(c));
    return static_cast<I>(blend(r >= 0x1p31f, 0x7FFFFFFFu, v));
  }
}

template <class I>
inline I sat_int(std::int64_t v) {
  return static_cast<I>(
      std::clamp<std::int64_t>(v, std::numeric_limits<I>::min(), std::numeric_limits<I>::max()));
}

// One element converted from type F to type T (numerics.md, "Conversions").
template <Dtype F, Dtype T>
inline S_t<T> cvt1(S_t<F> s) {
  if constexpr (F == T) {
    return s;  // same type: bit copy
  } else if constexpr (!kFloat<F> && !kFloat<T>) {
    return sat_int<S_t<T>>(s);
  } else if constexpr (!kFloat<F>) {
    if constexpr (T == Dtype::F32 || sizeof(S_t<F>) < 4)
      return enc<T>(static_cast<float>(s));  // exact (i8/i16) or one RNE rounding (i32->f32)
    else
      return int_to_float<T>(s);
  } else if constexpr (!kFloat<T>) {
    return float_to_int<S_t<T>>(dec<F>(s));
  } else {
    return enc<T>(dec<F>(s));
  }
}

// ---- float helpers of the ALU ---------------------------------------------------------------

// MIN/MAX: NaN -> NaN; otherwise the smaller/larger, with -0 < +0 (equal operands are
// identical patterns except +-0, where OR gives -0 and AND gives +0).
inline float fmin_op(float a, float b) {
  const std::uint32_t ua = as_u(a), ub = as_u(b);
  const std::uint32_t r = blend(a < b, ua, blend(b < a, ub, ua | ub));
  return as_f(blend((a != a) | (b != b), kF32NanBits, r));
}
inline float fmax_op(float a, float b) {
  const std::uint32_t ua = as_u(a), ub = as_u(b);
  const std::uint32_t r = blend(a > b, ua, blend(b > a, ub, ua & ub));
  return as_f(blend((a != a) | (b != b), kF32NanBits, r));
}

// ---- transcendental building blocks (numerics.md, "Transcendental functions") --------------

// exp: x = (32 m + j) ln2/32 + r, |r| <= ln2/64; exp(x) = 2^m * 2^(j/32) * exp(r).
constexpr float kRound = 0x1.8p23f;       // 1.5 * 2^23: (t + R) - R rounds t to an integer
constexpr float kInvL = 0x1.715476p+5f;   // 32 / ln 2
constexpr float kLHi = 0x1.63p-6f;        // 355/16384: ln2/32 to 9 significant bits
constexpr float kLLo = -0x1.bd0106p-18f;  // ln2/32 - kLHi
constexpr float kC3 = 0x1.555556p-3f;     // 1/6
constexpr float kC4 = 0x1.555556p-5f;     // 1/24
// 2^(j/32) = kExp2Hi[j] + kExp2Lo[j], each rounded to nearest f32.
constexpr std::array<float, 32> kExp2Hi = {
    0x1p+0f,        0x1.059b0ep+0f, 0x1.0b5586p+0f, 0x1.11301ep+0f, 0x1.172b84p+0f, 0x1.1d4874p+0f,
    0x1.2387a6p+0f, 0x1.29e9ep+0f,  0x1.306fep+0f,  0x1.371a74p+0f, 0x1.3dea64p+0f, 0x1.44e086p+0f,
    0x1.4bfdaep+0f, 0x1.5342b6p+0f, 0x1.5ab07ep+0f, 0x1.6247ecp+0f, 0x1.6a09e6p+0f, 0x1.71f75ep+0f,
    0x1.7a1148p+0f, 0x1.82589ap+0f, 0x1.8ace54p+0f, 0x1.93737cp+0f, 0x1.9c4918p+0f, 0x1.a5503cp+0f,
    0x1.ae89fap+0f, 0x1.b7f77p+0f,  0x1.c199bep+0f, 0x1.cb720ep+0f, 0x1.d5818ep+0f, 0x1.dfc974p+0f,
    0x1.ea4afap+0f, 0x1.f50766p+0f};
constexpr std::array<float, 32> kExp2Lo = {
    0x0p+0f,          -0x1.9d4f52p-25f, 0x1.9f3122p-25f,  -0x1.fdb496p-25f, -0x1.c15742p-27f,
    -0x1.d2e8cap-25f, 0x1.ceac48p-25f,  -0x1.5c0424p-25f, 0x1.4636e2p-25f,  -0x1.18aac6p-25f,
    0x1.824684p-25f,  0x1.8624b4p-30f,  -0x1.593abcp-25f, -0x1.2c561p-25f,  -0x1.5bd5ecp-27f,
    -0x1.f8b55p-25f,  0x1.9fcef4p-26f,  0x1.1d8beep-25f,  -0x1.829fdp-25f,  -0x1.accc7cp-26f,
    0x1.15506ep-27f,  -0x1.e64744p-25f, 0x1.51f848p-27f,  -0x1.b83b54p-25f, -0x1.a94b14p-26f,
    -0x1.a09438p-25f, -0x1.3d56b2p-27f, -0x1.8837ccp-27f, -0x1.822dbcp-27f, -0x1.908c94p-25f,
    0x1.52486cp-27f,  -0x1.246ebp-26f};

// exp(xh + xl) = (p + lo) * 2^m with p in about [0.98, 2.03] (p the rounded value, lo the
// rounding error of its last addition). Requires |xh| <= 128.
inline float exp_core(float xh, float xl, int& m, float& lo) {
  const float t = xh * kInvL;
  const float kf = (t + kRound) - kRound;  // nearest integer, ties to even
  const int ki = static_cast<int>(kf);
  float r = xh - kf * kLHi;  // exact
  r = r - kf * kLLo;
  r = r + xl;
  const float z = r * r;
  const float q = (kC4 * r + kC3) * r + 0.5f;
  const float s = q * z + r;  // exp(r) - 1
  const float th = kExp2Hi[static_cast<std::size_t>(ki & 31)];
  const float tl = kExp2Lo[static_cast<std::size_t>(ki & 31)];
  m = ki >> 5;  // floor(ki / 32)
  const float u = th * s + tl;
  const float p = th + u;
  lo = u - (p - th);  // exact: |u| < th
  return p;
}

constexpr float kExpMax = 0x1.62e42ep+6f;  // 88.7228317: the largest x with exp(x) < 2^128
constexpr float kExpMin = -104.0f;         // below: exp(x) < 2^-150, rounds to +0

// Error-free transformations (no FMA): Dekker's split/product and Knuth's sum.
inline void split(float a, float& hi, float& lo) {
  const float c = a * 4097.0f;  // 2^12 + 1
  hi = c - (c - a);
  lo = a - hi;
}
inline void two_prod(float a, float b, float& p, float& e) {
  p = a * b;
  float ah, al, bh, bl;
  split(a, ah, al);
  split(b, bh, bl);
  e = (((ah * bh - p) + ah * bl) + al * bh) + al * bl;
}
inline void two_sum(float a, float b, float& s, float& e) {
  s = a + b;
  const float bb = s - a;
  e = (a - (s - bb)) + (b - bb);
}

// GELU: v = 2 sqrt(2/pi) (x + 0.044715 x^3) = x (A + B x^2), A = Ah + Al, B = Bh + Bl.
constexpr float kGeluAh = 0x1.988454p+0f, kGeluAl = -0x1.857936p-25f;
constexpr float kGeluBh = 0x1.2444f2p-4f, kGeluBl = 0x1.49b16ap-29f;

inline void fast_two_sum(float a, float b, float& s, float& e) {  // |a| >= |b|
  s = a + b;
  e = b - (s - a);
}

// (nh + nl) / (dh + dl), one Newton-style correction of the f32 quotient.
inline float div2(float nh, float nl, float dh, float dl) {
  const float yh = nh / dh;
  float pp, pe;
  two_prod(yh, dh, pp, pe);
  const float r = (((nh - pp) - pe) + nl) - yh * dl;
  return yh + r / dh;
}

// n / (1 + exp(wh + wl)) for an exact n and |wh| <= 128:
// exp(w) = (p + pl) 2^k, so the quotient is 2^-k n / ((2^-k + p) + pl).
inline float over_one_plus_exp(float n, float wh, float wl) {
  if (n == 0.0f) return n;  // keeps the sign of zero
  int k;
  float pl;
  const float p = exp_core(wh, wl, k, pl);
  if (k < -100) return n;  // exp(w) < 2^-99: n / (1 + exp(w)) rounds to n
  float dh, dl;
  two_sum(pow2(-std::min(k, 126)), p, dh, dl);
  dl = dl + pl;
  return scale2(div2(n, 0.0f, dh, dl), -k);
}

}  // namespace

// ---- scalar conversions ---------------------------------------------------------------------

float f16_to_f32(std::uint16_t h) { return dec_f16(h); }
float bf16_to_f32(std::uint16_t h) { return dec_bf16(h); }
float e4m3_to_f32(std::uint8_t b) { return kE4m3Table[b]; }
float e5m2_to_f32(std::uint8_t b) { return kE5m2Table[b]; }
std::uint16_t f32_to_f16(float f) { return static_cast<std::uint16_t>(encode<kF16>(f)); }
std::uint16_t f32_to_bf16(float f) { return enc_bf16(f); }
std::uint8_t f32_to_e4m3(float f) { return static_cast<std::uint8_t>(encode<kE4m3>(f)); }
std::uint8_t f32_to_e5m2(float f) { return static_cast<std::uint8_t>(encode<kE5m2>(f)); }

// ---- transcendentals ------------------------------------------------------------------------

float exp_f32(float x) {
  if (x != x) return qnan();
  if (x > kExpMax) return std::numeric_limits<float>::infinity();
  if (x < kExpMin) return 0.0f;
  int m;
  float lo;
  const float p = exp_core(x, 0.0f, m, lo);
  return scale2(p, m);
}

float tanh_f32(float x) {
  if (x != x) return qnan();
  const float a = std::fabs(x);
  if (a < 0x1p-12f) return x;  // tanh(x) = x (1 - x^2/3 ...) rounds to x; keeps -0
  if (a < 0.625f) {
    const float z = x * x;
    float q = -0x1.75e1d4p-8f * z + 0x1.52269cp-6f;
    q = q * z - 0x1.b83c5ap-5f;
    q = q * z + 0x1.110726p-3f;
    q = q * z - 0x1.555532p-2f;
    return (q * z) * x + x;
  }
  if (a >= 9.5f) return std::copysign(1.0f, x);
  // tanh(a) = (1 - E) / (1 + E), E = exp(-2a) in [5e-9, 0.29], all in double-f32.
  int m;
  float pl;
  const float ph = exp_core(-2.0f * a, 0.0f, m, pl);
  const float eh = ph * pow2(m), el = pl * pow2(m);  // exact, m in [-28, -1]
  float nh, nl, dh, dl;
  fast_two_sum(1.0f, -eh, nh, nl);
  nl = nl - el;
  fast_two_sum(1.0f, eh, dh, dl);
  dl = dl + el;
  return std::copysign(div2(nh, nl, dh, dl), x);
}

float sigmoid_f32(float x) {
  if (x != x) return qnan();
  if (x > 64.0f) return 1.0f;
  if (x < -80.0f) return exp_f32(x);  // 1 + exp(x) rounds to 1 with a margin of 2^-90
  return over_one_plus_exp(1.0f, -x, 0.0f);
}

float silu_f32(float x) {
  if (x != x) return qnan();
  if (x > 64.0f) return x;
  if (x < -120.0f) return -0.0f;
  return over_one_plus_exp(x, -x, 0.0f);
}

float gelu_f32(float x) {
  if (x != x) return qnan();
  if (x >= 10.0f) return x;
  if (x <= -11.0f) return -0.0f;
  // v = 2 sqrt(2/pi) (x + 0.044715 x^3) = x (A + B x^2) as vh + vl (double-f32).
  float x2h, x2l, wh, wl, sh, sl, vh, vl;
  two_prod(x, x, x2h, x2l);
  two_prod(kGeluBh, x2h, wh, wl);
  wl = wl + (kGeluBh * x2l + kGeluBl * x2h);
  two_sum(kGeluAh, wh, sh, sl);
  sl = sl + (kGeluAl + wl);
  two_prod(x, sh, vh, vl);
  vl = vl + x * sl;
  return over_one_plus_exp(x, -vh, -vl);  // x sigmoid(v) = 0.5 x (1 + tanh(v/2))
}

float rsqrt_f32(float x) { return 1.0f / std::sqrt(x); }
float recip_f32(float x) { return 1.0f / x; }

// ---- element access -------------------------------------------------------------------------

namespace {

void check_index(isa::Dtype t, std::size_t size, std::size_t i) {
  const auto b = static_cast<std::size_t>(isa::dtype_bytes(t));
  if (i >= size / b) throw std::out_of_range("lpu::num: element index out of range");
}

template <class Fn>
decltype(auto) with_type(Dtype t, Fn&& fn) {
  switch (t) {
    case Dtype::I8:
      return fn(std::integral_constant<Dtype, Dtype::I8>{});
    case Dtype::I16:
      return fn(std::integral_constant<Dtype, Dtype::I16>{});
    case Dtype::I32:
      return fn(std::integral_constant<Dtype, Dtype::I32>{});
    case Dtype::F32:
      return fn(std::integral_constant<Dtype, Dtype::F32>{});
    case Dtype::F16:
      return fn(std::integral_constant<Dtype, Dtype::F16>{});
    case Dtype::Bf16:
      return fn(std::integral_constant<Dtype, Dtype::Bf16>{});
    case Dtype::E4m3:
      return fn(std::integral_constant<Dtype, Dtype::E4m3>{});
    case Dtype::E5m2:
      return fn(std::integral_constant<Dtype, Dtype::E5m2>{});
  }
  throw std::invalid_argument("lpu::num: unknown dtype " + std::to_string(static_cast<int>(t)));
}

}  // namespace

float load_f32(Dtype t, Bytes v, std::size_t i) {
  check_index(t, v.size(), i);
  return with_type(t, [&](auto tc) -> float {
    constexpr Dtype T = decltype(tc)::value;
    const auto s = ld<S_t<T>>(v.data(), i);
    if constexpr (kFloat<T>)
      return dec<T>(s);
    else
      return static_cast<float>(s);  // RNE (only i32 can round)
  });
}

std::int64_t load_int(Dtype t, Bytes v, std::size_t i) {
  check_index(t, v.size(), i);
  return with_type(t, [&](auto tc) -> std::int64_t {
    constexpr Dtype T = decltype(tc)::value;
    if constexpr (kFloat<T>)
      throw std::invalid_argument("lpu::num::load_int: float type");
    else
      return ld<S_t<T>>(v.data(), i);
  });
}

void store_f32(Dtype t, MutBytes v, std::size_t i, float x) {
  check_index(t, v.size(), i);
  with_type(t, [&](auto tc) {
    constexpr Dtype T = decltype(tc)::value;
    if constexpr (kFloat<T>)
      st<S_t<T>>(v.data(), i, enc<T>(x));
    else
      st<S_t<T>>(v.data(), i, float_to_int<S_t<T>>(x));
  });
}

void store_int(Dtype t, MutBytes v, std::size_t i, std::int64_t x, bool wrap) {
  check_index(t, v.size(), i);
  with_type(t, [&](auto tc) {
    constexpr Dtype T = decltype(tc)::value;
    using S = S_t<T>;
    if constexpr (kFloat<T>) {
      st<S>(v.data(), i, int_to_float<T>(x));
    } else if (wrap) {
      st<S>(v.data(), i, static_cast<S>(static_cast<std::make_unsigned_t<S>>(x)));
    } else {
      st<S>(v.data(), i, sat_int<S>(x));
    }
  });
}

// ---- VXM ------------------------------------------------------------------------------------

namespace {

[[noreturn]] void bad_op(Op op, Dtype t, const char* what) {
  std::string m = "lpu::num::";
  m += what;
  m += ": ";
  if (static_cast<std::size_t>(op) < static_cast<std::size_t>(isa::kNumOps))
    m += isa::info(op).mnemonic;
  else
    m += "op " + std::to_string(static_cast<int>(op));
  m += " not allowed with type " + std::to_string(static_cast<int>(t));
  throw std::invalid_argument(m);
}

void check_op(Op op, Dtype t, const char* what) {
  if (static_cast<std::size_t>(op) >= static_cast<std::size_t>(isa::kNumOps) ||
      static_cast<unsigned>(t) >= static_cast<unsigned>(isa::kNumDtypes) ||
      !isa::type_allowed(isa::info(op).types, t))
    bad_op(op, t, what);
}

void check_sizes(const char* what, std::size_t elem, std::size_t n0, std::size_t n1,
                 std::size_t n2 = SIZE_MAX, std::size_t n3 = SIZE_MAX) {
  const bool ok =
      n0 == n1 && (n2 == SIZE_MAX || n2 == n0) && (n3 == SIZE_MAX || n3 == n0) && n0 % elem == 0;
  if (!ok)
    throw std::invalid_argument(std::string("lpu::num::") + what +
                                ": operand sizes differ or are not a multiple of the element size");
}

// Element loops: one call per op/type, the body inlined. Each step handles one 16-byte block
// through local arrays (fixed trip count, no aliasing between input and output, so the compiler
// vectorises it even at -O2, and `out` may be the same buffer as an input); a scalar tail
// handles sizes that are not a multiple of 16.
constexpr std::size_t kBlock = 16;
template <class SI, class SO, class F>
inline void map1x(const std::uint8_t* a, std::uint8_t* o, std::size_t n, F f) {
  constexpr std::size_t K = kBlock / std::max(sizeof(SI), sizeof(SO));
  std::size_t i = 0;
  for (; i + K <= n; i += K) {
    SI x[K];
    SO r[K];
    std::memcpy(x, a + i * sizeof(SI), sizeof x);
    for (std::size_t j = 0; j < K; ++j) r[j] = f(x[j]);
    std::memcpy(o + i * sizeof(SO), r, sizeof r);
  }
  for (; i < n; ++i) st<SO>(o, i, f(ld<SI>(a, i)));
}
template <class S, class F>
inline void map1(const std::uint8_t* a, std::uint8_t* o, std::size_t n, F f) {
  map1x<S, S>(a, o, n, f);
}
template <class S, class F>
inline void map2(const std::uint8_t* a, const std::uint8_t* b, std::uint8_t* o, std::size_t n,
                 F f) {
  constexpr std::size_t K = kBlock / sizeof(S);
  std::size_t i = 0;
  for (; i + K <= n; i += K) {
    S x[K], y[K], r[K];
    std::memcpy(x, a + i * sizeof(S), kBlock);
    std::memcpy(y, b + i * sizeof(S), kBlock);
    for (std::size_t j = 0; j < K; ++j) r[j] = f(x[j], y[j]);
    std::memcpy(o + i * sizeof(S), r, kBlock);
  }
  for (; i < n; ++i) st<S>(o, i, f(ld<S>(a, i), ld<S>(b, i)));
}
template <class S>
inline void fill(std::uint8_t* o, std::size_t n, S v) {
  for (std::size_t i = 0; i < n; ++i) st<S>(o, i, v);
}

template <Dtype T>
void int_binary(Op op, const std::uint8_t* a, const std::uint8_t* b, std::uint8_t* o,
                std::size_t n) {
  using S = S_t<T>;
  using U = std::make_unsigned_t<S>;
  constexpr S ones = static_cast<S>(-1);
  switch (op) {
    case Op::Add:
      return map2<S>(a, b, o, n,
                     [](S x, S y) { return static_cast<S>(static_cast<U>(U(x) + U(y))); });
    case Op::Sub:
      return map2<S>(a, b, o, n,
                     [](S x, S y) { return static_cast<S>(static_cast<U>(U(x) - U(y))); });
    case Op::Mul:
      return map2<S>(a, b, o, n, [](S x, S y) {
        return static_cast<S>(static_cast<U>(std::uint32_t(U(x)) * std::uint32_t(U(y))));
      });
    case Op::Min:
      return map2<S>(a, b, o, n, [](S x, S y) { return y < x ? y : x; });
    case Op::Max:
      return map2<S>(a, b, o, n, [](S x, S y) { return x < y ? y : x; });
    case Op::And:
      return map2<S>(a, b, o, n, [](S x, S y) { return static_cast<S>(x & y); });
    case Op::Or:
      return map2<S>(a, b, o, n, [](S x, S y) { return static_cast<S>(x | y); });
    case Op::Xor:
      return map2<S>(a, b, o, n, [](S x, S y) { return static_cast<S>(x ^ y); });
    case Op::Cmpeq:
      return map2<S>(a, b, o, n, [](S x, S y) { return x == y ? ones : S(0); });
    case Op::Cmplt:
      return map2<S>(a, b, o, n, [](S x, S y) { return x < y ? ones : S(0); });
    case Op::Cmple:
      return map2<S>(a, b, o, n, [](S x, S y) { return x <= y ? ones : S(0); });
    default:
      bad_op(op, T, "vxm_binary");
  }
}

template <Dtype T>
void float_binary(Op op, const std::uint8_t* a, const std::uint8_t* b, std::uint8_t* o,
                  std::size_t n) {
  using S = S_t<T>;
  constexpr S ones = static_cast<S>(~S(0));
  switch (op) {
    case Op::Add:
      return map2<S>(a, b, o, n, [](S x, S y) { return enc<T>(dec<T>(x) + dec<T>(y)); });
    case Op::Sub:
      return map2<S>(a, b, o, n, [](S x, S y) { return enc<T>(dec<T>(x) - dec<T>(y)); });
    case Op::Mul:
      return map2<S>(a, b, o, n, [](S x, S y) { return enc<T>(dec<T>(x) * dec<T>(y)); });
    case Op::Min:
      return map2<S>(a, b, o, n, [](S x, S y) { return enc<T>(fmin_op(dec<T>(x), dec<T>(y))); });
    case Op::Max:
      return map2<S>(a, b, o, n, [](S x, S y) { return enc<T>(fmax_op(dec<T>(x), dec<T>(y))); });
    case Op::Cmpeq:
      return map2<S>(a, b, o, n, [](S x, S y) { return dec<T>(x) == dec<T>(y) ? ones : S(0); });
    case Op::Cmplt:
      return map2<S>(a, b, o, n, [](S x, S y) { return dec<T>(x) < dec<T>(y) ? ones : S(0); });
    case Op::Cmple:
      return map2<S>(a, b, o, n, [](S x, S y) { return dec<T>(x) <= dec<T>(y) ? ones : S(0); });
    default:
      bad_op(op, T, "vxm_binary");
  }
}

template <Dtype T>
void int_unary(Op op, const std::uint8_t* a, std::uint8_t* o, std::size_t n, int imm) {
  using S = S_t<T>;
  using U = std::make_unsigned_t<S>;
  constexpr int bits = 8 * sizeof(S);
  switch (op) {
    case Op::Shl:
      if (imm >= bits) return fill<S>(o, n, S(0));
      return map1<S>(a, o, n, [imm](S x) {
        return static_cast<S>(static_cast<U>(std::uint32_t(U(x)) << imm));
      });
    case Op::Shrl:
      if (imm >= bits) return fill<S>(o, n, S(0));
      return map1<S>(a, o, n, [imm](S x) { return static_cast<S>(static_cast<U>(U(x) >> imm)); });
    case Op::Shra: {
      const int s = std::min(imm, bits - 1);  // >= bits: every bit a copy of the sign
      return map1<S>(a, o, n, [s](S x) { return static_cast<S>(x >> s); });
    }
    case Op::Not:
      return map1<S>(a, o, n, [](S x) { return static_cast<S>(~x); });
    case Op::Neg:
      return map1<S>(a, o, n, [](S x) { return static_cast<S>(static_cast<U>(U(0) - U(x))); });
    case Op::Abs:
      return map1<S>(a, o, n,
                     [](S x) { return x < 0 ? static_cast<S>(static_cast<U>(U(0) - U(x))) : x; });
    case Op::Relu:
      return map1<S>(a, o, n, [](S x) { return x < 0 ? S(0) : x; });
    case Op::Sum: {
      U acc = 0;
      for (std::size_t i = 0; i < n; ++i) acc = static_cast<U>(acc + U(ld<S>(a, i)));
      return fill<S>(o, n, static_cast<S>(acc));
    }
    case Op::Rmax: {
      if (n == 0) return;
      S m = ld<S>(a, 0);
      for (std::size_t i = 1; i < n; ++i) m = std::max(m, ld<S>(a, i));
      return fill<S>(o, n, m);
    }
    default:
      bad_op(op, T, "vxm_unary");
  }
}

template <Dtype T>
void float_unary(Op op, const std::uint8_t* a, std::uint8_t* o, std::size_t n) {
  using S = S_t<T>;
  constexpr S sgn = sign_mask<T>();
  switch (op) {
    case Op::Neg:
      return map1<S>(a, o, n, [](S x) { return static_cast<S>(x ^ sgn); });
    case Op::Abs:
      return map1<S>(a, o, n, [](S x) { return static_cast<S>(x & static_cast<S>(~sgn)); });
    case Op::Relu:
      return map1<S>(a, o, n, [](S x) { return enc<T>(fmax_op(dec<T>(x), 0.0f)); });
    case Op::Exp:
      return map1<S>(a, o, n, [](S x) { return enc<T>(exp_f32(dec<T>(x))); });
    case Op::Tanh:
      return map1<S>(a, o, n, [](S x) { return enc<T>(tanh_f32(dec<T>(x))); });
    case Op::Sigmoid:
      return map1<S>(a, o, n, [](S x) { return enc<T>(sigmoid_f32(dec<T>(x))); });
    case Op::Gelu:
      return map1<S>(a, o, n, [](S x) { return enc<T>(gelu_f32(dec<T>(x))); });
    case Op::Silu:
      return map1<S>(a, o, n, [](S x) { return enc<T>(silu_f32(dec<T>(x))); });
    case Op::Rsqrt:
      return map1<S>(a, o, n, [](S x) { return enc<T>(rsqrt_f32(dec<T>(x))); });
    case Op::Recip:
      return map1<S>(a, o, n, [](S x) { return enc<T>(recip_f32(dec<T>(x))); });
    case Op::Sum: {
      if (n == 0) return;
      float acc = dec<T>(ld<S>(a, 0));
      for (std::size_t i = 1; i < n; ++i) acc = acc + dec<T>(ld<S>(a, i));
      return fill<S>(o, n, enc<T>(acc));
    }
    case Op::Rmax: {
      if (n == 0) return;
      float m = dec<T>(ld<S>(a, 0));
      for (std::size_t i = 1; i < n; ++i) m = fmax_op(m, dec<T>(ld<S>(a, i)));
      return fill<S>(o, n, enc<T>(m));
    }
    default:
      bad_op(op, T, "vxm_unary");
  }
}

// CVT kernels: count elements from in[in_first..] to out[out_first..].
using CvtFn = void (*)(const std::uint8_t*, std::uint8_t*, std::size_t);
template <Dtype F, Dtype T>
void cvt_loop(const std::uint8_t* in, std::uint8_t* out, std::size_t n) {
  map1x<S_t<F>, S_t<T>>(in, out, n, [](S_t<F> x) { return cvt1<F, T>(x); });
}
template <std::size_t... I>
constexpr std::array<CvtFn, 64> make_cvt_table(std::index_sequence<I...>) {
  return {&cvt_loop<static_cast<Dtype>(I / 8), static_cast<Dtype>(I % 8)>...};
}
constexpr std::array<CvtFn, 64> kCvt = make_cvt_table(std::make_index_sequence<64>{});

}  // namespace

void vxm_binary(Op op, Dtype t, Bytes a, Bytes b, MutBytes out) {
  check_op(op, t, "vxm_binary");
  const auto eb = static_cast<std::size_t>(isa::dtype_bytes(t));
  check_sizes("vxm_binary", eb, a.size(), b.size(), out.size());
  const std::size_t n = a.size() / eb;
  with_type(t, [&](auto tc) {
    constexpr Dtype T = decltype(tc)::value;
    if constexpr (kFloat<T>)
      float_binary<T>(op, a.data(), b.data(), out.data(), n);
    else
      int_binary<T>(op, a.data(), b.data(), out.data(), n);
  });
}

void vxm_unary(Op op, Dtype t, Bytes a, MutBytes out, int imm) {
  if (op == Op::Mov) {  // MOV has no type suffix: a byte copy whatever t is
    check_sizes("vxm_unary", 1, a.size(), out.size());
    if (!a.empty() && a.data() != out.data()) std::memmove(out.data(), a.data(), a.size());
    return;
  }
  check_op(op, t, "vxm_unary");
  if (imm < 0) throw std::invalid_argument("lpu::num::vxm_unary: negative shift amount");
  const auto eb = static_cast<std::size_t>(isa::dtype_bytes(t));
  check_sizes("vxm_unary", eb, a.size(), out.size());
  const std::size_t n = a.size() / eb;
  with_type(t, [&](auto tc) {
    constexpr Dtype T = decltype(tc)::value;
    if constexpr (kFloat<T>)
      float_unary<T>(op, a.data(), out.data(), n);
    else
      int_unary<T>(op, a.data(), out.data(), n, imm);
  });
}

void vxm_select(Dtype t, Bytes mask, Bytes a, Bytes b, MutBytes out) {
  check_op(Op::Sel, t, "vxm_select");
  const auto eb = static_cast<std::size_t>(isa::dtype_bytes(t));
  check_sizes("vxm_select", eb, mask.size(), a.size(), b.size(), out.size());
  const std::size_t n = a.size() / eb;
  auto sel = [&](auto zero) {
    using S = decltype(zero);
    constexpr std::size_t K = kBlock / sizeof(S);
    std::size_t i = 0;
    for (; i + K <= n; i += K) {
      S m[K], x[K], y[K], r[K];
      std::memcpy(m, mask.data() + i * sizeof(S), kBlock);
      std::memcpy(x, a.data() + i * sizeof(S), kBlock);
      std::memcpy(y, b.data() + i * sizeof(S), kBlock);
      for (std::size_t j = 0; j < K; ++j) r[j] = m[j] != 0 ? x[j] : y[j];
      std::memcpy(out.data() + i * sizeof(S), r, kBlock);
    }
    for (; i < n; ++i)
      st<S>(out.data(), i, ld<S>(mask.data(), i) != 0 ? ld<S>(a.data(), i) : ld<S>(b.data(), i));
  };
  switch (eb) {
    case 1:
      return sel(std::uint8_t{});
    case 2:
      return sel(std::uint16_t{});
    default:
      return sel(std::uint32_t{});
  }
}

void vxm_const(Dtype t, std::uint32_t value, MutBytes out) {
  check_op(Op::Const, t, "vxm_const");
  const auto eb = static_cast<std::size_t>(isa::dtype_bytes(t));
  check_sizes("vxm_const", eb, out.size(), out.size());
  const std::size_t n = out.size() / eb;
  switch (eb) {
    case 1:
      return fill<std::uint8_t>(out.data(), n, static_cast<std::uint8_t>(value));
    case 2:
      return fill<std::uint16_t>(out.data(), n, static_cast<std::uint16_t>(value));
    default:
      return fill<std::uint32_t>(out.data(), n, value);
  }
}

void vxm_convert(Dtype from, Dtype to, int part, Bytes a, MutBytes out) {
  check_op(Op::Cvt, from, "vxm_convert");
  if (static_cast<unsigned>(to) >= static_cast<unsigned>(isa::kNumDtypes) ||
      !isa::type_allowed(isa::info(Op::Cvt).types2, to))
    bad_op(Op::Cvt, to, "vxm_convert");
  if (part < 0) throw std::invalid_argument("lpu::num::vxm_convert: negative part");
  const auto sf = static_cast<std::size_t>(isa::dtype_bytes(from));
  const auto stb = static_cast<std::size_t>(isa::dtype_bytes(to));
  check_sizes("vxm_convert", std::max(sf, stb), a.size(), out.size());
  const std::size_t n_in = a.size() / sf, n_out = a.size() / stb;
  const auto p = static_cast<std::size_t>(part);
  std::size_t in_first = 0, out_first = 0, count = 0;
  if (stb > sf) {  // widening: output elements come from input [p*n_out, (p+1)*n_out)
    in_first = p * n_out;
    count = in_first < n_in ? std::min(n_out, n_in - in_first) : 0;
  } else {  // narrowing or same size: all input elements land at output [p*n_in, (p+1)*n_in)
    out_first = p * n_in;
    count = out_first < n_out ? std::min(n_in, n_out - out_first) : 0;
  }
  std::uint8_t* o = out.data();
  if (count == 0) {  // the part lies wholly outside the vector
    if (!out.empty()) std::memset(o, 0, out.size());
    return;
  }
  const std::size_t lo = out_first * stb, hi = (out_first + count) * stb;
  if (lo > 0) std::memset(o, 0, lo);
  if (hi < out.size()) std::memset(o + hi, 0, out.size() - hi);
  kCvt[static_cast<std::size_t>(from) * 8 + static_cast<std::size_t>(to)](a.data() + in_first * sf,
                                                                          o + lo, count);
}

// ---- MXM readout ----------------------------------------------------------------------------

namespace {
template <class A>
void readout(const A* acc, std::size_t n, Dtype t, int part, MutBytes out) {
  if (static_cast<unsigned>(t) >= static_cast<unsigned>(isa::kNumDtypes))
    bad_op(Op::Accrd, t, "mxm_readout");
  if (part < 0) throw std::invalid_argument("lpu::num::mxm_readout: negative part");
  const auto eb = static_cast<std::size_t>(isa::dtype_bytes(t));
  check_sizes("mxm_readout", eb, out.size(), out.size());
  const std::size_t m = out.size() / eb;
  const std::size_t first = static_cast<std::size_t>(part) * m;
  const std::size_t count = first < n ? std::min(m, n - first) : 0;
  std::uint8_t* o = out.data();
  if (count * eb < out.size()) std::memset(o + count * eb, 0, out.size() - count * eb);
  if (count == 0) return;
  const A* src = acc + first;
  with_type(t, [&](auto tc) {
    constexpr Dtype T = decltype(tc)::value;
    using S = S_t<T>;
    for (std::size_t j = 0; j < count; ++j) {
      if constexpr (std::is_same_v<A, float>) {
        if constexpr (kFloat<T>)
          st<S>(o, j, enc<T>(src[j]));  // f32 too: NaN canonical
        else
          st<S>(o, j, float_to_int<S>(src[j]));
      } else {
        st<S>(o, j, cvt1<Dtype::I32, T>(src[j]));
      }
    }
  });
}
}  // namespace

void mxm_readout_i32(const std::int32_t* acc, std::size_t n, Dtype t, int part, MutBytes out) {
  readout(acc, n, t, part, out);
}
void mxm_readout_f32(const float* acc, std::size_t n, Dtype t, int part, MutBytes out) {
  readout(acc, n, t, part, out);
}

}  // namespace lpu::num
