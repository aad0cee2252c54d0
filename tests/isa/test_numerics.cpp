// Bit-exact numerics (isa/numerics.md) against independent references: hand-computed bit
// patterns, exhaustive round trips and tie/midpoint sweeps, formula-based decoders, long double
// references for the transcendental functions, and the compiler's _Float16 where available.
#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "lpu/isa/isa.hpp"
#include "lpu/isa/numerics.hpp"

using namespace lpu::num;
using lpu::isa::Dtype;
using lpu::isa::Op;
using Vec = std::vector<std::uint8_t>;

namespace {

float F(std::uint32_t u) { return std::bit_cast<float>(u); }
std::uint32_t U(float f) { return std::bit_cast<std::uint32_t>(f); }
constexpr float kInf = std::numeric_limits<float>::infinity();
const float kNan = std::numeric_limits<float>::quiet_NaN();

template <class T>
Vec pack(std::initializer_list<T> xs, std::size_t bytes = 16) {
  Vec v(bytes, 0);
  std::size_t i = 0;
  for (T x : xs) std::memcpy(v.data() + sizeof(T) * i++, &x, sizeof(T));
  return v;
}
template <class T>
T at(const Vec& v, std::size_t i) {
  T x;
  std::memcpy(&x, v.data() + sizeof(T) * i, sizeof(T));
  return x;
}
template <class T>
Vec splat(T x, std::size_t bytes = 16) {
  Vec v(bytes);
  for (std::size_t i = 0; i < bytes / sizeof(T); ++i)
    std::memcpy(v.data() + sizeof(T) * i, &x, sizeof(T));
  return v;
}

// Element 0 of a binary / unary op over 16-byte vectors holding a and b everywhere.
template <class T>
T bin(Op op, Dtype t, T a, T b) {
  Vec va = splat(a), vb = splat(b), o(16, 0xAA);
  vxm_binary(op, t, va, vb, o);
  for (std::size_t i = 1; i < 16 / sizeof(T); ++i) REQUIRE(at<T>(o, i) == at<T>(o, 0));
  return at<T>(o, 0);
}
template <class T>
T un(Op op, Dtype t, T a, int imm = 0) {
  Vec va = splat(a), o(16, 0xAA);
  vxm_unary(op, t, va, o, imm);
  for (std::size_t i = 1; i < 16 / sizeof(T); ++i) REQUIRE(at<T>(o, i) == at<T>(o, 0));
  return at<T>(o, 0);
}
std::uint32_t binf(Op op, float a, float b) {
  return bin<std::uint32_t>(op, Dtype::F32, U(a), U(b));
}
std::uint32_t unf(Op op, float a) { return un<std::uint32_t>(op, Dtype::F32, U(a)); }

// Ordered integer image of a float: adjacent floats differ by 1 (distance in ulps).
std::int64_t ord(float f) {
  std::int32_t i = std::bit_cast<std::int32_t>(f);
  return i < 0 ? -static_cast<std::int64_t>(i & 0x7FFFFFFF) : i;
}

// Decoders written from the format definitions, in double arithmetic.
double ref_decode(unsigned bits, int eb, int mb, bool ieee_special, bool e4m3_nan) {
  const int bias = (1 << (eb - 1)) - 1;
  const unsigned s = (bits >> (eb + mb)) & 1, e = (bits >> mb) & ((1u << eb) - 1),
                 m = bits & ((1u << mb) - 1);
  const double sign = s ? -1.0 : 1.0;
  if (ieee_special && e == (1u << eb) - 1) return m ? std::nan("") : sign * INFINITY;
  if (e4m3_nan && e == 15 && m == 7) return std::nan("");
  if (e == 0) return sign * std::ldexp(static_cast<double>(m), 1 - bias - mb);
  return sign *
         std::ldexp(1.0 + std::ldexp(static_cast<double>(m), -mb), static_cast<int>(e) - bias);
}

struct FormatCase {
  const char* name;
  int bits, eb, mb;
  bool ieee, e4m3, saturating;
  float (*dec)(unsigned);
  unsigned (*enc)(float);
  unsigned nan, max_finite;
};
const FormatCase kFormats[] = {
    {"f16", 16, 5, 10, true, false, false,
     [](unsigned b) { return f16_to_f32(static_cast<std::uint16_t>(b)); },
     [](float f) -> unsigned { return f32_to_f16(f); }, 0x7E00, 0x7BFF},
    {"bf16", 16, 8, 7, true, false, false,
     [](unsigned b) { return bf16_to_f32(static_cast<std::uint16_t>(b)); },
     [](float f) -> unsigned { return f32_to_bf16(f); }, 0x7FC0, 0x7F7F},
    {"e4m3", 8, 4, 3, false, true, true,
     [](unsigned b) { return e4m3_to_f32(static_cast<std::uint8_t>(b)); },
     [](float f) -> unsigned { return f32_to_e4m3(f); }, 0x7F, 0x7E},
    {"e5m2", 8, 5, 2, true, false, true,
     [](unsigned b) { return e5m2_to_f32(static_cast<std::uint8_t>(b)); },
     [](float f) -> unsigned { return f32_to_e5m2(f); }, 0x7F, 0x7B},
};

}  // namespace

// ---- scalar conversions: hand-computed patterns -----------------------------------------------

TEST_CASE("f32 -> f16: hand-computed patterns, ties, overflow, subnormals, NaN") {
  CHECK(f32_to_f16(1.0f) == 0x3C00);  // exponent 15, mantissa 0
  CHECK(f32_to_f16(-2.0f) == 0xC000);
  CHECK(f32_to_f16(0.0f) == 0x0000);
  CHECK(f32_to_f16(-0.0f) == 0x8000);
  CHECK(f32_to_f16(0.1f) == 0x2E66);      // 0.1 = 1.6 * 2^-4: mantissa round(0.6*1024)=614=0x266
  CHECK(f32_to_f16(65504.0f) == 0x7BFF);  // largest finite
  CHECK(f32_to_f16(65519.0f) == 0x7BFF);  // below the midpoint 65520
  CHECK(f32_to_f16(65520.0f) == 0x7C00);  // midpoint 65504/65536: even side is 2^16 -> inf
  CHECK(f32_to_f16(1e9f) == 0x7C00);
  CHECK(f32_to_f16(-1e9f) == 0xFC00);
  CHECK(f32_to_f16(kInf) == 0x7C00);
  CHECK(f32_to_f16(-kInf) == 0xFC00);
  CHECK(f32_to_f16(kNan) == 0x7E00);
  CHECK(f32_to_f16(F(0xFFC00001)) == 0x7E00);  // negative NaN with payload -> canonical
  // 1 + 2^-11 is the midpoint of 1 (0x3C00, even) and 1 + 2^-10 (0x3C01): down.
  CHECK(f32_to_f16(1.0f + 0x1p-11f) == 0x3C00);
  // 1 + 3*2^-11 is the midpoint of 0x3C01 (odd) and 0x3C02 (even): up.
  CHECK(f32_to_f16(1.0f + 0x3p-11f) == 0x3C02);
  CHECK(f32_to_f16(std::nextafter(1.0f + 0x1p-11f, 2.0f)) == 0x3C01);  // just above the tie
  CHECK(f32_to_f16(0x1p-14f) == 0x0400);                               // smallest normal
  CHECK(f32_to_f16(0x1p-14f - 0x1p-24f) == 0x03FF);                    // largest subnormal
  CHECK(f32_to_f16(0x1p-24f) == 0x0001);                               // smallest subnormal
  CHECK(f32_to_f16(0x1p-25f) == 0x0000);                               // tie 0 / 2^-24 -> 0 (even)
  CHECK(f32_to_f16(std::nextafter(0x1p-25f, 1.0f)) == 0x0001);
  CHECK(f32_to_f16(0x3p-25f) == 0x0002);       // tie 1 / 2 (x 2^-24) -> 2
  CHECK(f32_to_f16(-0x1p-26f) == 0x8000);      // underflows to -0
  CHECK(f32_to_f16(F(0x00000001)) == 0x0000);  // f32 subnormal
  CHECK(f32_to_f16(0x1.ffcp-15f) == 0x0400);   // rounds up across into the normals
}

TEST_CASE("f32 -> bf16: hand-computed patterns") {
  CHECK(f32_to_bf16(1.0f) == 0x3F80);
  CHECK(f32_to_bf16(3.140625f) == 0x4049);      // 1.5703125 * 2: mantissa 0x49
  CHECK(f32_to_bf16(F(0x3F808000)) == 0x3F80);  // tie, even down
  CHECK(f32_to_bf16(F(0x3F818000)) == 0x3F82);  // tie, odd 0x3F81 -> up to 0x3F82
  CHECK(f32_to_bf16(F(0x3F808001)) == 0x3F81);  // above the tie
  CHECK(f32_to_bf16(F(0x3F807FFF)) == 0x3F80);
  CHECK(f32_to_bf16(F(0x7F7F7FFF)) == 0x7F7F);  // largest finite stays
  CHECK(f32_to_bf16(F(0x7F7FFFFF)) == 0x7F80);  // FLT_MAX rounds up to inf
  CHECK(f32_to_bf16(F(0xFF7FFFFF)) == 0xFF80);
  CHECK(f32_to_bf16(kInf) == 0x7F80);
  CHECK(f32_to_bf16(-kInf) == 0xFF80);
  CHECK(f32_to_bf16(kNan) == 0x7FC0);
  CHECK(f32_to_bf16(F(0x7F800001)) == 0x7FC0);  // signalling NaN -> canonical (not inf)
  CHECK(f32_to_bf16(F(0xFFFFFFFF)) == 0x7FC0);
  // f32 subnormals are bf16 subnormals: low 16 bits rounded.
  CHECK(f32_to_bf16(F(0x00008000)) == 0x0000);  // tie -> 0
  CHECK(f32_to_bf16(F(0x00018000)) == 0x0002);  // tie, odd 1 -> 2
  CHECK(f32_to_bf16(F(0x00008001)) == 0x0001);
  CHECK(f32_to_bf16(F(0x007FFFFF)) == 0x0080);  // largest subnormal rounds to smallest normal
  CHECK(f32_to_bf16(-0.0f) == 0x8000);
}

TEST_CASE("f32 -> e4m3: hand-computed patterns, saturation, subnormals") {
  CHECK(f32_to_e4m3(1.0f) == 0x38);  // exponent 7 (bias 7): 0.0111.000
  CHECK(f32_to_e4m3(-1.0f) == 0xB8);
  CHECK(f32_to_e4m3(2.0f) == 0x40);
  CHECK(f32_to_e4m3(240.0f) == 0x77);  // 1.875 * 2^7: 0.1110.111
  CHECK(f32_to_e4m3(256.0f) == 0x78);
  CHECK(f32_to_e4m3(448.0f) == 0x7E);  // 1.75 * 2^8: largest finite
  CHECK(f32_to_e4m3(-448.0f) == 0xFE);
  CHECK(f32_to_e4m3(464.0f) == 0x7E);  // tie 448/480: 448 is even
  CHECK(f32_to_e4m3(480.0f) == 0x7E);  // would be S.1111.111 = NaN: saturates
  CHECK(f32_to_e4m3(1e9f) == 0x7E);
  CHECK(f32_to_e4m3(kInf) == 0x7E);
  CHECK(f32_to_e4m3(-kInf) == 0xFE);
  CHECK(f32_to_e4m3(kNan) == 0x7F);
  CHECK(f32_to_e4m3(-kNan) == 0x7F);
  CHECK(f32_to_e4m3(0x1p-6f) == 0x08);   // smallest normal
  CHECK(f32_to_e4m3(0x7p-9f) == 0x07);   // largest subnormal 0.875 * 2^-6
  CHECK(f32_to_e4m3(0x1p-9f) == 0x01);   // smallest subnormal
  CHECK(f32_to_e4m3(0x1p-10f) == 0x00);  // tie 0 / 2^-9 -> 0
  CHECK(f32_to_e4m3(0x3p-10f) == 0x02);  // tie 1 / 2 -> 2
  CHECK(f32_to_e4m3(0x1.000002p-10f) == 0x01);
  CHECK(f32_to_e4m3(1.0625f) == 0x38);  // tie 1 / 1.125 -> 1 (even)
  CHECK(f32_to_e4m3(1.1875f) == 0x3A);  // tie 1.125 (odd) / 1.25 -> 1.25
  CHECK(f32_to_e4m3(-0.0f) == 0x80);
}

TEST_CASE("f32 -> e5m2: hand-computed patterns, saturation, subnormals") {
  CHECK(f32_to_e5m2(1.0f) == 0x3C);  // exponent 15: 0.01111.00
  CHECK(f32_to_e5m2(-2.0f) == 0xC0);
  CHECK(f32_to_e5m2(57344.0f) == 0x7B);  // 1.75 * 2^15: largest finite
  CHECK(f32_to_e5m2(61440.0f) == 0x7B);  // tie with 2^16: saturates, never inf
  CHECK(f32_to_e5m2(1e30f) == 0x7B);
  CHECK(f32_to_e5m2(kInf) == 0x7B);
  CHECK(f32_to_e5m2(-kInf) == 0xFB);
  CHECK(f32_to_e5m2(kNan) == 0x7F);
  CHECK(f32_to_e5m2(0x1p-14f) == 0x04);  // smallest normal
  CHECK(f32_to_e5m2(0x1p-16f) == 0x01);  // smallest subnormal
  CHECK(f32_to_e5m2(0x1p-17f) == 0x00);  // tie -> 0
  CHECK(f32_to_e5m2(0x3p-17f) == 0x02);  // tie 1/2 -> 2
  CHECK(f32_to_e5m2(1.125f) == 0x3C);    // tie 1 / 1.25 -> 1
  CHECK(f32_to_e5m2(1.375f) == 0x3E);    // tie 1.25 (odd) / 1.5 -> 1.5
}

TEST_CASE("decoding: special patterns") {
  CHECK(f16_to_f32(0x3C00) == 1.0f);
  CHECK(f16_to_f32(0x7BFF) == 65504.0f);
  CHECK(f16_to_f32(0x0001) == 0x1p-24f);
  CHECK(f16_to_f32(0x03FF) == 0x3FFp-24f);
  CHECK(f16_to_f32(0x7C00) == kInf);
  CHECK(f16_to_f32(0xFC00) == -kInf);
  CHECK(std::isnan(f16_to_f32(0x7E00)));
  CHECK(std::isnan(f16_to_f32(0x7C01)));
  CHECK(U(f16_to_f32(0x8000)) == 0x80000000u);
  CHECK(bf16_to_f32(0x3F80) == 1.0f);
  CHECK(bf16_to_f32(0x0001) == 0x1p-133f);  // f32 subnormal 0x00010000
  CHECK(e4m3_to_f32(0x7E) == 448.0f);
  CHECK(e4m3_to_f32(0x01) == 0x1p-9f);
  CHECK(e4m3_to_f32(0x78) == 256.0f);  // exponent 15 is a normal binade in e4m3
  CHECK(std::isnan(e4m3_to_f32(0x7F)));
  CHECK(std::isnan(e4m3_to_f32(0xFF)));
  CHECK(U(e4m3_to_f32(0x80)) == 0x80000000u);
  CHECK(e5m2_to_f32(0x7B) == 57344.0f);
  CHECK(e5m2_to_f32(0x01) == 0x1p-16f);
  CHECK(e5m2_to_f32(0x7C) == kInf);
  CHECK(e5m2_to_f32(0xFC) == -kInf);
  for (unsigned b : {0x7Du, 0x7Eu, 0x7Fu, 0xFDu, 0xFEu, 0xFFu})
    CHECK(std::isnan(e5m2_to_f32(static_cast<std::uint8_t>(b))));
}

// ---- exhaustive sweeps ------------------------------------------------------------------------

TEST_CASE("every pattern of every small format decodes as the format formula says") {
  for (const auto& fc : kFormats) {
    INFO(std::string(fc.name));
    for (unsigned b = 0; b < (1u << fc.bits); ++b) {
      const double want = ref_decode(b, fc.eb, fc.mb, fc.ieee, fc.e4m3);
      const float got = fc.dec(b);
      if (std::isnan(want)) {
        CHECK(std::isnan(got));
      } else if (U(got) != U(static_cast<float>(want))) {  // exact; sign of zero included
        CAPTURE(b);
        CHECK(static_cast<double>(got) == want);
        CHECK(std::signbit(got) == std::signbit(want));
      }
    }
  }
}

// Exceptions: NaN becomes the canonical NaN; e5m2 +-inf saturate to +-max (conversions to fp8
// saturate, so an fp8 infinity does not survive a round trip).
TEST_CASE("every pattern survives decode then encode (NaN canonical, e5m2 inf saturates)") {
  for (const auto& fc : kFormats) {
    INFO(std::string(fc.name));
    int bad = 0;
    for (unsigned b = 0; b < (1u << fc.bits); ++b) {
      const float f = fc.dec(b);
      const unsigned sign = b & (1u << (fc.bits - 1));
      const unsigned want = std::isnan(f)                      ? fc.nan
                            : (std::isinf(f) && fc.saturating) ? (fc.max_finite | sign)
                                                               : b;
      if (fc.enc(f) != want) ++bad;
    }
    CHECK(bad == 0);
  }
}

// For every pair of adjacent finite values lo < hi of a format: the values themselves encode to
// themselves, the midpoint (exact in f32: one more bit than the format) goes to the even
// pattern, and the f32 neighbours of the midpoint go to the nearer value. Negative values mirror.
TEST_CASE("round to nearest even at every midpoint of every small format") {
  for (const auto& fc : kFormats) {
    INFO(std::string(fc.name));
    const unsigned sign = 1u << (fc.bits - 1);
    int bad = 0;
    for (unsigned lo = 0; lo < fc.max_finite; ++lo) {
      const unsigned hi = lo + 1;
      const double vlo = ref_decode(lo, fc.eb, fc.mb, fc.ieee, fc.e4m3);
      const double vhi = ref_decode(hi, fc.eb, fc.mb, fc.ieee, fc.e4m3);
      const float mid = static_cast<float>((vlo + vhi) / 2);
      if (static_cast<double>(mid) != (vlo + vhi) / 2) ++bad;  // midpoint must be exact
      const unsigned even = (lo & 1) ? hi : lo;
      for (float s : {1.0f, -1.0f}) {
        const unsigned sb = s < 0 ? sign : 0;
        if (fc.enc(s * static_cast<float>(vlo)) != (lo | sb)) ++bad;
        if (fc.enc(s * mid) != (even | sb)) ++bad;
        if (fc.enc(s * std::nextafter(mid, 0.0f)) != (lo | sb)) ++bad;
        if (fc.enc(s * std::nextafter(mid, kInf)) != (hi | sb)) ++bad;
      }
    }
    CHECK(bad == 0);
    // Above the largest finite value: overflow to inf (f16, bf16) or saturation (fp8). The
    // rounding boundary is max + half an ulp; max is odd, so the boundary itself rounds up.
    const double vmax = ref_decode(fc.max_finite, fc.eb, fc.mb, fc.ieee, fc.e4m3);
    const double vprev = ref_decode(fc.max_finite - 1, fc.eb, fc.mb, fc.ieee, fc.e4m3);
    const float boundary = static_cast<float>(vmax + (vmax - vprev) / 2);
    const unsigned over = fc.saturating ? fc.max_finite : (fc.max_finite + 1);
    CHECK(fc.enc(std::nextafter(boundary, 0.0f)) == fc.max_finite);
    CHECK(fc.enc(boundary) == over);
    CHECK(fc.enc(-boundary) == (over | sign));
    CHECK(fc.enc(F(0x7F7FFFFF)) == over);
  }
}

// Reference encoder by brute force: the nearest finite value of the format (ties: even
// pattern), overflow past max + half an ulp. Compared on a stride through all f32 patterns
// (both signs, every exponent, varied mantissas) plus every pattern near the format's range.
TEST_CASE("encoders agree with a brute-force nearest-value search") {
  for (const auto& fc : kFormats) {
    INFO(std::string(fc.name));
    std::vector<std::pair<double, unsigned>> vals;  // non-negative finite values, ascending
    for (unsigned b = 0; b <= fc.max_finite; ++b)
      vals.emplace_back(ref_decode(b, fc.eb, fc.mb, fc.ieee, fc.e4m3), b);
    const double vmax = vals.back().first, half_ulp = (vmax - vals[vals.size() - 2].first) / 2;
    const unsigned over = fc.saturating ? fc.max_finite : fc.max_finite + 1;
    auto ref = [&](float f) -> unsigned {
      if (std::isnan(f)) return fc.nan;
      const unsigned sign = std::signbit(f) ? 1u << (fc.bits - 1) : 0u;
      const double x = std::fabs(static_cast<double>(f));
      if (x >= vmax + half_ulp) return sign | over;  // max is odd: the boundary rounds up
      auto it = std::lower_bound(vals.begin(), vals.end(), std::make_pair(x, 0u));
      if (it == vals.end()) return sign | fc.max_finite;
      if (it->first == x || it == vals.begin()) return sign | it->second;
      const auto lo = *(it - 1), hi = *it;
      const double dl = x - lo.first, dh = hi.first - x;
      return sign | (dl < dh   ? lo.second
                     : dh < dl ? hi.second
                               : ((lo.second & 1) ? hi.second : lo.second));
    };
    int bad = 0;
    for (std::uint64_t u = 0; u < (1ull << 32); u += 4099)
      bad += fc.enc(F(static_cast<std::uint32_t>(u))) != ref(F(static_cast<std::uint32_t>(u)));
    // Dense: f32 patterns whose magnitude lies within two binades of the format's range.
    const std::uint32_t lo_bits = U(static_cast<float>(vals[1].first / 4)),
                        hi_bits = U(static_cast<float>(vmax * 4));
    for (std::uint32_t u = lo_bits; u < hi_bits; u += 127) {
      bad += fc.enc(F(u)) != ref(F(u));
      bad += fc.enc(-F(u)) != ref(-F(u));
    }
    CHECK(bad == 0);
  }
}

#if defined(__FLT16_MAX__)
// The compiler's _Float16 conversion is an independent IEEE implementation (RNE, overflow to inf).
TEST_CASE("f32 -> f16 agrees with the compiler's _Float16 on 4M random patterns") {
  std::mt19937 rng(7);
  int bad = 0;
  for (int i = 0; i < 4'000'000; ++i) {
    std::uint32_t u = static_cast<std::uint32_t>(rng());
    if (i & 1)
      u = (u & 0x807FFFFFu) |
          ((100u + static_cast<std::uint32_t>(rng() % 46u)) << 23);  // exponents near f16's range
    const float f = F(u);
    if (std::isnan(f)) continue;
    const _Float16 h = static_cast<_Float16>(f);
    std::uint16_t want;
    std::memcpy(&want, &h, 2);
    if (f32_to_f16(f) != want) ++bad;
  }
  CHECK(bad == 0);
}
#endif

// ---- float <-> int ----------------------------------------------------------------------------

TEST_CASE("store_f32 to integers: round to nearest even, saturate, NaN -> 0") {
  Vec v(16);
  auto to = [&](Dtype t, float x) {
    store_f32(t, v, 0, x);
    return load_int(t, v, 0);
  };
  CHECK(to(Dtype::I32, 0.5f) == 0);
  CHECK(to(Dtype::I32, 1.5f) == 2);
  CHECK(to(Dtype::I32, 2.5f) == 2);
  CHECK(to(Dtype::I32, -0.5f) == 0);
  CHECK(to(Dtype::I32, -1.5f) == -2);
  CHECK(to(Dtype::I32, -2.5f) == -2);
  CHECK(to(Dtype::I32, 2.4999998f) == 2);
  CHECK(to(Dtype::I32, 8388609.0f) == 8388609);        // 2^23 + 1: already an integer
  CHECK(to(Dtype::I32, 2147483520.0f) == 2147483520);  // largest f32 below 2^31
  CHECK(to(Dtype::I32, 2147483648.0f) == 2147483647);  // 2^31 saturates
  CHECK(to(Dtype::I32, -2147483648.0f) == -2147483647 - 1);
  CHECK(to(Dtype::I32, -1e20f) == -2147483647 - 1);
  CHECK(to(Dtype::I32, kInf) == 2147483647);
  CHECK(to(Dtype::I32, -kInf) == -2147483647 - 1);
  CHECK(to(Dtype::I32, kNan) == 0);
  CHECK(to(Dtype::I8, 127.49f) == 127);
  CHECK(to(Dtype::I8, 127.5f) == 127);    // rounds to 128, saturates
  CHECK(to(Dtype::I8, -128.5f) == -128);  // rounds to -128 (even)
  CHECK(to(Dtype::I8, -129.0f) == -128);
  CHECK(to(Dtype::I8, 300.0f) == 127);
  CHECK(to(Dtype::I16, 1e6f) == 32767);
  CHECK(to(Dtype::I16, -32768.4f) == -32768);
  CHECK(to(Dtype::I16, 0x1p-149f) == 0);
}

TEST_CASE("integers to floats: one RNE rounding from the exact integer") {
  Vec v(16);
  store_int(Dtype::F32, v, 0, 16777217, false);  // 2^24 + 1: tie -> 2^24
  CHECK(at<float>(v, 0) == 16777216.0f);
  store_int(Dtype::F32, v, 0, 16777219, false);  // tie 2^24+2 (odd) / 2^24+4 -> +4
  CHECK(at<float>(v, 0) == 16777220.0f);
  store_int(Dtype::F32, v, 0, std::numeric_limits<std::int64_t>::max(), false);
  CHECK(at<std::uint32_t>(v, 0) == 0x5F000000u);  // 2^63
  store_int(Dtype::F32, v, 0, std::numeric_limits<std::int64_t>::min(), false);
  CHECK(at<std::uint32_t>(v, 0) == 0xDF000000u);  // -2^63
  // 2^24 + 2^16 + 1 to bf16 (8 bits): above the midpoint 2^24 + 2^16, so up to 2^24 + 2^17
  // (0x4B81). Rounding first to f32 would land exactly on the midpoint and go to 0x4B80.
  store_int(Dtype::Bf16, v, 0, 0x01010001, false);
  CHECK(at<std::uint16_t>(v, 0) == 0x4B81);
  store_int(Dtype::Bf16, v, 0, 0x01010000, false);  // the exact midpoint: even 0x4B80
  CHECK(at<std::uint16_t>(v, 0) == 0x4B80);
  store_int(Dtype::F16, v, 0, 65519, false);
  CHECK(at<std::uint16_t>(v, 0) == 0x7BFF);
  store_int(Dtype::F16, v, 0, 65520, false);
  CHECK(at<std::uint16_t>(v, 0) == 0x7C00);
  store_int(Dtype::F16, v, 0, -70000, false);
  CHECK(at<std::uint16_t>(v, 0) == 0xFC00);
  store_int(Dtype::E4m3, v, 0, 17, false);  // tie 16 (0x58) / 18 (0x59) -> 16
  CHECK(at<std::uint8_t>(v, 0) == 0x58);
  store_int(Dtype::E4m3, v, 0, 1000, false);
  CHECK(at<std::uint8_t>(v, 0) == 0x7E);
  store_int(Dtype::E5m2, v, 0, -100000, false);
  CHECK(at<std::uint8_t>(v, 0) == 0xFB);
  CHECK(load_f32(Dtype::I32, pack<std::int32_t>({16777217}), 0) == 16777216.0f);
  CHECK(load_f32(Dtype::I8, pack<std::int8_t>({-128}), 0) == -128.0f);
}

TEST_CASE("store_int on integers wraps or saturates, load_int sign-extends") {
  Vec v(16);
  store_int(Dtype::I8, v, 0, 300, true);
  CHECK(load_int(Dtype::I8, v, 0) == 44);  // 300 - 256
  store_int(Dtype::I8, v, 0, 300, false);
  CHECK(load_int(Dtype::I8, v, 0) == 127);
  store_int(Dtype::I16, v, 1, -40000, true);
  CHECK(load_int(Dtype::I16, v, 1) == 25536);  // -40000 + 65536
  store_int(Dtype::I16, v, 1, -40000, false);
  CHECK(load_int(Dtype::I16, v, 1) == -32768);
  store_int(Dtype::I32, v, 3, 0x1'8000'0000LL, true);
  CHECK(load_int(Dtype::I32, v, 3) == -2147483647 - 1);
  CHECK(v[12] == 0x00);
  CHECK(v[15] == 0x80);  // little-endian
  CHECK(load_int(Dtype::I8, pack<std::uint8_t>({0xFF}), 0) == -1);
  CHECK_THROWS_AS(load_int(Dtype::F32, v, 0), std::invalid_argument);
  CHECK_THROWS_AS(load_int(Dtype::I32, v, 4), std::out_of_range);
  CHECK_THROWS_AS(store_f32(Dtype::I8, v, 16, 1.0f), std::out_of_range);
}

// ---- VXM integer ops --------------------------------------------------------------------------

TEST_CASE("integer ALU: wrap, signed compares, shifts, edge cases, all three widths") {
  using I8 = std::int8_t;
  using I16 = std::int16_t;
  using I32 = std::int32_t;
  const Dtype t8 = Dtype::I8, t16 = Dtype::I16, t32 = Dtype::I32;
  CHECK(bin<I8>(Op::Add, t8, 127, 1) == -128);
  CHECK(bin<I8>(Op::Add, t8, -128, -1) == 127);
  CHECK(bin<I8>(Op::Sub, t8, -128, 1) == 127);
  CHECK(bin<I8>(Op::Mul, t8, 16, 16) == 0);   // 256 mod 256
  CHECK(bin<I8>(Op::Mul, t8, 100, 3) == 44);  // 300 - 256
  CHECK(bin<I8>(Op::Mul, t8, -128, -1) == -128);
  CHECK(bin<I8>(Op::Min, t8, -1, 1) == -1);  // signed
  CHECK(bin<I8>(Op::Max, t8, -1, 1) == 1);
  CHECK(bin<I8>(Op::And, t8, 0x0F, 0x3C) == 0x0C);
  CHECK(bin<I8>(Op::Or, t8, 0x0F, 0x30) == 0x3F);
  CHECK(bin<I8>(Op::Xor, t8, 0x0F, -1) == static_cast<I8>(0xF0));
  CHECK(bin<I8>(Op::Cmplt, t8, -1, 1) == -1);  // all ones
  CHECK(bin<I8>(Op::Cmplt, t8, 1, -1) == 0);
  CHECK(bin<I8>(Op::Cmple, t8, 5, 5) == -1);
  CHECK(bin<I8>(Op::Cmpeq, t8, 5, 6) == 0);
  CHECK(bin<I8>(Op::Cmpeq, t8, -128, -128) == -1);
  CHECK(un<I8>(Op::Shl, t8, static_cast<I8>(0x81), 1) == 0x02);
  CHECK(un<I8>(Op::Shl, t8, 1, 7) == -128);
  CHECK(un<I8>(Op::Shl, t8, 1, 8) == 0);
  CHECK(un<I8>(Op::Shl, t8, 1, 63) == 0);
  CHECK(un<I8>(Op::Shra, t8, -128, 3) == -16);
  CHECK(un<I8>(Op::Shra, t8, -7, 1) == -4);  // floor, not toward zero
  CHECK(un<I8>(Op::Shra, t8, -5, 8) == -1);  // >= width: sign fill
  CHECK(un<I8>(Op::Shra, t8, 5, 40) == 0);
  CHECK(un<I8>(Op::Shrl, t8, -128, 3) == 0x10);
  CHECK(un<I8>(Op::Shrl, t8, -1, 8) == 0);
  CHECK(un<I8>(Op::Shrl, t8, -1, 0) == -1);
  CHECK(un<I8>(Op::Not, t8, 0x0F) == static_cast<I8>(0xF0));
  CHECK(un<I8>(Op::Neg, t8, -128) == -128);
  CHECK(un<I8>(Op::Neg, t8, 5) == -5);
  CHECK(un<I8>(Op::Abs, t8, -128) == -128);
  CHECK(un<I8>(Op::Abs, t8, -5) == 5);
  CHECK(un<I8>(Op::Relu, t8, -5) == 0);
  CHECK(un<I8>(Op::Relu, t8, 5) == 5);

  CHECK(bin<I16>(Op::Add, t16, 32767, 1) == -32768);
  CHECK(bin<I16>(Op::Mul, t16, 300, 300) == 24464);  // 90000 - 65536
  CHECK(bin<I16>(Op::Mul, t16, 255, 257) == -1);     // 65535
  CHECK(bin<I16>(Op::Mul, t16, -32768, -1) == -32768);
  CHECK(bin<I16>(Op::Sub, t16, -32768, 1) == 32767);
  CHECK(bin<I16>(Op::Cmplt, t16, -300, 200) == -1);
  CHECK(un<I16>(Op::Shl, t16, 3, 15) == -32768);
  CHECK(un<I16>(Op::Shra, t16, -32768, 15) == -1);
  CHECK(un<I16>(Op::Shrl, t16, -32768, 15) == 1);
  CHECK(un<I16>(Op::Shl, t16, 3, 16) == 0);
  CHECK(un<I16>(Op::Neg, t16, -32768) == -32768);
  CHECK(un<I16>(Op::Abs, t16, -32768) == -32768);

  const I32 mn = std::numeric_limits<I32>::min(), mx = std::numeric_limits<I32>::max();
  CHECK(bin<I32>(Op::Add, t32, mx, 1) == mn);
  CHECK(bin<I32>(Op::Sub, t32, mn, 1) == mx);
  CHECK(bin<I32>(Op::Mul, t32, 65536, 65536) == 0);
  CHECK(bin<I32>(Op::Mul, t32, mx, 2) == -2);
  CHECK(bin<I32>(Op::Mul, t32, mn, -1) == mn);
  CHECK(bin<I32>(Op::Min, t32, mn, mx) == mn);
  CHECK(bin<I32>(Op::Max, t32, mn, mx) == mx);
  CHECK(bin<I32>(Op::Cmple, t32, mn, mx) == -1);
  CHECK(bin<I32>(Op::Xor, t32, 0x12345678, -1) == ~0x12345678);
  CHECK(un<I32>(Op::Shl, t32, 1, 31) == mn);
  CHECK(un<I32>(Op::Shl, t32, 1, 32) == 0);
  CHECK(un<I32>(Op::Shra, t32, mn, 31) == -1);
  CHECK(un<I32>(Op::Shra, t32, mn, 32) == -1);
  CHECK(un<I32>(Op::Shra, t32, mx, 63) == 0);
  CHECK(un<I32>(Op::Shrl, t32, mn, 31) == 1);
  CHECK(un<I32>(Op::Shrl, t32, mn, 32) == 0);
  CHECK(un<I32>(Op::Neg, t32, mn) == mn);
  CHECK(un<I32>(Op::Abs, t32, mn) == mn);
  CHECK(un<I32>(Op::Not, t32, 0) == -1);
  CHECK(un<I32>(Op::Relu, t32, mn) == 0);
}

TEST_CASE("integer ALU matches 64-bit reference arithmetic on random vectors") {
  std::mt19937_64 rng(99);
  auto run = [&](auto zero, Dtype t) {
    using T = decltype(zero);
    const int bits = 8 * sizeof(T);
    auto wrap = [&](std::int64_t x) {  // reduce mod 2^bits into the signed range
      const std::uint64_t m =
          static_cast<std::uint64_t>(x) & ((bits == 64) ? ~0ull : ((1ull << bits) - 1));
      const std::int64_t half = std::int64_t(1) << (bits - 1);
      return static_cast<std::int64_t>(m) >= half ? static_cast<std::int64_t>(m) - 2 * half
                                                  : static_cast<std::int64_t>(m);
    };
    Vec a(64), b(64), o(64);
    for (int trial = 0; trial < 200; ++trial) {
      for (auto& x : a) x = static_cast<std::uint8_t>(rng());
      for (auto& x : b) x = static_cast<std::uint8_t>(rng());
      const std::size_t n = 64 / sizeof(T);
      for (Op op : {Op::Add, Op::Sub, Op::Mul, Op::Min, Op::Max, Op::And, Op::Or, Op::Xor,
                    Op::Cmpeq, Op::Cmplt, Op::Cmple}) {
        vxm_binary(op, t, a, b, o);
        for (std::size_t i = 0; i < n; ++i) {
          const std::int64_t x = at<T>(a, i), y = at<T>(b, i);
          std::int64_t want = 0;
          switch (op) {
            case Op::Add:
              want = wrap(x + y);
              break;
            case Op::Sub:
              want = wrap(x - y);
              break;
            case Op::Mul:
              want = wrap(x * y);
              break;
            case Op::Min:
              want = std::min(x, y);
              break;
            case Op::Max:
              want = std::max(x, y);
              break;
            case Op::And:
              want = x & y;
              break;
            case Op::Or:
              want = x | y;
              break;
            case Op::Xor:
              want = x ^ y;
              break;
            case Op::Cmpeq:
              want = x == y ? -1 : 0;
              break;
            case Op::Cmplt:
              want = x < y ? -1 : 0;
              break;
            default:
              want = x <= y ? -1 : 0;
              break;
          }
          if (at<T>(o, i) != want) {
            CAPTURE(static_cast<int>(op));
            CHECK(static_cast<std::int64_t>(at<T>(o, i)) == want);
          }
        }
      }
      const int sh = static_cast<int>(rng() % 70);
      vxm_unary(Op::Shra, t, a, o, sh);
      for (std::size_t i = 0; i < n; ++i) {
        const std::int64_t x = at<T>(a, i);
        const std::int64_t want = x >> std::min(sh, 63);  // on the sign-extended 64-bit value
        CHECK(static_cast<std::int64_t>(at<T>(o, i)) == want);
      }
      vxm_unary(Op::Shl, t, a, o, sh);
      for (std::size_t i = 0; i < n; ++i) {
        const std::int64_t want =
            sh >= bits
                ? 0
                : wrap(static_cast<std::int64_t>(static_cast<std::uint64_t>(at<T>(a, i)) << sh));
        CHECK(static_cast<std::int64_t>(at<T>(o, i)) == want);
      }
      vxm_unary(Op::Shrl, t, a, o, sh);
      for (std::size_t i = 0; i < n; ++i) {
        const std::uint64_t ux = static_cast<std::uint64_t>(at<T>(a, i)) & ((1ull << bits) - 1);
        const std::int64_t want = sh >= bits ? 0 : wrap(static_cast<std::int64_t>(ux >> sh));
        CHECK(static_cast<std::int64_t>(at<T>(o, i)) == want);
      }
    }
  };
  run(std::int8_t{}, Dtype::I8);
  run(std::int16_t{}, Dtype::I16);
  run(std::int32_t{}, Dtype::I32);
}

TEST_CASE("integer SUM wraps in the element width, RMAX is signed") {
  CHECK(un<std::int8_t>(Op::Sum, Dtype::I8, 100) == 64);          // 16 * 100 = 1600 = 6*256 + 64
  CHECK(un<std::int16_t>(Op::Sum, Dtype::I16, 10000) == 14464);   // 80000 - 65536
  CHECK(un<std::int32_t>(Op::Sum, Dtype::I32, 0x40000000) == 0);  // 4 * 2^30 = 2^32
  Vec a = pack<std::int8_t>({-5, 3, -128, 7, 0, 1, 2, 3, 4, 5, 6, -1, -2, -3, -4, -6});
  Vec o(16);
  vxm_unary(Op::Rmax, Dtype::I8, a, o);
  CHECK(o == splat<std::int8_t>(7));
  vxm_unary(Op::Sum, Dtype::I8, a, o);
  CHECK(o == splat<std::int8_t>(-118));  // -5+3-128+7+0+1+2+3+4+5+6-1-2-3-4-6 = -118
}

// ---- VXM float ops ----------------------------------------------------------------------------

TEST_CASE("f32 ALU: RNE, subnormals kept, NaN canonical, signed zeros") {
  CHECK(binf(Op::Add, 1.0f, 0x1p-24f) == U(1.0f));             // tie -> even
  CHECK(binf(Op::Add, 1.0f, 0x3p-24f) == U(1.0f + 0x1p-22f));  // tie -> even (up)
  CHECK(binf(Op::Add, 0x1p-149f, 0x1p-149f) == U(0x1p-148f));  // subnormal arithmetic
  CHECK(binf(Op::Add, kInf, -kInf) == 0x7FC00000u);
  CHECK(binf(Op::Add, F(0x7F800001), 1.0f) == 0x7FC00000u);  // payload not propagated
  CHECK(binf(Op::Add, F(0xFFC12345), 1.0f) == 0x7FC00000u);
  CHECK(binf(Op::Sub, 1.0f, 1.0f) == 0x00000000u);   // +0
  CHECK(binf(Op::Sub, -0.0f, 0.0f) == 0x80000000u);  // -0 - +0 = -0
  CHECK(binf(Op::Mul, 0x1p-100f, 0x1p-49f) == U(0x1p-149f));
  CHECK(binf(Op::Mul, 0x1p-100f, 0x1p-50f) == 0u);              // 2^-150: tie -> 0
  CHECK(binf(Op::Mul, 0x1.8p-100f, 0x1p-49f) == U(0x1p-148f));  // 1.5 * 2^-149: tie -> 2
  CHECK(binf(Op::Mul, 0x1p127f, 2.0f) == U(kInf));
  CHECK(binf(Op::Mul, 0.0f, kInf) == 0x7FC00000u);
  CHECK(binf(Op::Mul, -2.0f, 0.0f) == 0x80000000u);
  CHECK(binf(Op::Min, 1.0f, kNan) == 0x7FC00000u);
  CHECK(binf(Op::Max, kNan, 1.0f) == 0x7FC00000u);
  CHECK(binf(Op::Min, 0.0f, -0.0f) == 0x80000000u);
  CHECK(binf(Op::Min, -0.0f, 0.0f) == 0x80000000u);
  CHECK(binf(Op::Max, -0.0f, 0.0f) == 0x00000000u);
  CHECK(binf(Op::Max, 0.0f, -0.0f) == 0x00000000u);
  CHECK(binf(Op::Max, -1.0f, -kInf) == U(-1.0f));
  CHECK(binf(Op::Min, 0x1p-149f, 0.0f) == 0u);
  CHECK(binf(Op::Cmpeq, kNan, kNan) == 0u);
  CHECK(binf(Op::Cmpeq, 0.0f, -0.0f) == 0xFFFFFFFFu);
  CHECK(binf(Op::Cmplt, -0.0f, 0.0f) == 0u);
  CHECK(binf(Op::Cmple, -0.0f, 0.0f) == 0xFFFFFFFFu);
  CHECK(binf(Op::Cmplt, -kInf, kInf) == 0xFFFFFFFFu);
  CHECK(binf(Op::Cmplt, kNan, kInf) == 0u);
  CHECK(binf(Op::Cmple, 1.0f, kNan) == 0u);
  CHECK(unf(Op::Neg, F(0x7FC00001)) == 0xFFC00001u);  // sign flip only: payload kept
  CHECK(unf(Op::Neg, 0.0f) == 0x80000000u);
  CHECK(unf(Op::Abs, -0.0f) == 0u);
  CHECK(unf(Op::Abs, F(0xFF800001)) == 0x7F800001u);
  CHECK(unf(Op::Relu, -0.0f) == 0u);  // max(-0, +0) = +0
  CHECK(unf(Op::Relu, -3.0f) == 0u);
  CHECK(unf(Op::Relu, -kInf) == 0u);
  CHECK(unf(Op::Relu, 2.5f) == U(2.5f));
  CHECK(unf(Op::Relu, kInf) == U(kInf));
  CHECK(unf(Op::Relu, F(0xFFC00001)) == 0x7FC00000u);
}

TEST_CASE("f32 ALU matches double arithmetic on random operands") {
  // For + - * of two f32, rounding the exact double result to f32 is the f32 result (the
  // double rounding is innocuous: 53 >= 2*24 + 2).
  std::mt19937 rng(5);
  int bad = 0;
  for (int i = 0; i < 200000; ++i) {
    const float a = F(static_cast<std::uint32_t>(rng())), b = F(static_cast<std::uint32_t>(rng()));
    if (std::isnan(a) || std::isnan(b)) continue;
    const double da = a, db = b;
    const float want[3] = {static_cast<float>(da + db), static_cast<float>(da - db),
                           static_cast<float>(da * db)};
    const Op ops[3] = {Op::Add, Op::Sub, Op::Mul};
    for (int k = 0; k < 3; ++k) {
      const std::uint32_t got = binf(ops[k], a, b);
      const std::uint32_t w = std::isnan(want[k]) ? 0x7FC00000u : U(want[k]);
      if (got != w) ++bad;
    }
  }
  CHECK(bad == 0);
}

TEST_CASE("narrow float ALU: f32 arithmetic, one rounding to the type") {
  using H = std::uint16_t;
  using B = std::uint8_t;
  // f16: 1 + 2^-11 (0x1000) is a tie -> 0x3C00; 65504 + 16 = 65520 -> inf.
  CHECK(bin<H>(Op::Add, Dtype::F16, 0x3C00, 0x1000) == 0x3C00);
  CHECK(bin<H>(Op::Add, Dtype::F16, 0x7BFF, 0x4C00) == 0x7C00);
  // (1 + 2^-10)^2 = 1 + 2^-9 + 2^-20, exact in f32, rounds to 1 + 2^-9 (0x3C02).
  CHECK(bin<H>(Op::Mul, Dtype::F16, 0x3C01, 0x3C01) == 0x3C02);
  CHECK(bin<H>(Op::Mul, Dtype::F16, 0x0001, 0x3800) == 0x0000);  // 2^-25: tie -> 0
  CHECK(bin<H>(Op::Sub, Dtype::F16, 0x7C00, 0x7C00) == 0x7E00);  // inf - inf: canonical NaN
  CHECK(bin<H>(Op::Min, Dtype::F16, 0x7E01, 0x3C00) == 0x7E00);
  CHECK(bin<H>(Op::Max, Dtype::F16, 0x8000, 0x0000) == 0x0000);
  CHECK(bin<H>(Op::Cmplt, Dtype::F16, 0xBC00, 0x3C00) == 0xFFFF);  // mask of 16 bits
  CHECK(bin<H>(Op::Cmpeq, Dtype::F16, 0x7E00, 0x7E00) == 0x0000);
  CHECK(un<H>(Op::Neg, Dtype::F16, 0x3C00) == 0xBC00);
  CHECK(un<H>(Op::Abs, Dtype::F16, 0xFC00) == 0x7C00);
  CHECK(un<H>(Op::Relu, Dtype::F16, 0x8000) == 0x0000);
  CHECK(un<H>(Op::Relu, Dtype::F16, 0xFE00) == 0x7E00);
  // bf16: (1 + 2^-7)^2 = 1 + 2^-6 + 2^-14 -> 0x3F82; 1 + 2^-8 is a tie -> 0x3F80.
  CHECK(bin<H>(Op::Mul, Dtype::Bf16, 0x3F81, 0x3F81) == 0x3F82);
  CHECK(bin<H>(Op::Add, Dtype::Bf16, 0x3F80, 0x3B80) == 0x3F80);
  CHECK(bin<H>(Op::Add, Dtype::Bf16, 0x7F7F, 0x7F7F) == 0x7F80);  // overflow -> inf
  CHECK(bin<H>(Op::Cmple, Dtype::Bf16, 0x3F80, 0x3F80) == 0xFFFF);
  CHECK(bin<H>(Op::Min, Dtype::Bf16, 0x3F80, 0xBF80) == 0xBF80);
  // e4m3: 448 + 448 saturates; 2^-9 * 0.5 = 2^-10 is a tie -> 0; 1 + 1 = 2 (0x40).
  CHECK(bin<B>(Op::Add, Dtype::E4m3, 0x7E, 0x7E) == 0x7E);
  CHECK(bin<B>(Op::Sub, Dtype::E4m3, 0xFE, 0x7E) == 0xFE);
  CHECK(bin<B>(Op::Mul, Dtype::E4m3, 0x01, 0x30) == 0x00);
  CHECK(bin<B>(Op::Add, Dtype::E4m3, 0x38, 0x38) == 0x40);
  CHECK(bin<B>(Op::Max, Dtype::E4m3, 0xFF, 0x38) == 0x7F);  // NaN -> canonical 0x7F
  CHECK(bin<B>(Op::Cmplt, Dtype::E4m3, 0x38, 0x40) == 0xFF);
  CHECK(un<B>(Op::Neg, Dtype::E4m3, 0x7F) == 0xFF);  // still a NaN pattern
  CHECK(un<B>(Op::Abs, Dtype::E4m3, 0xB8) == 0x38);
  // e5m2: saturates instead of overflowing to inf.
  CHECK(bin<B>(Op::Add, Dtype::E5m2, 0x7B, 0x7B) == 0x7B);
  CHECK(bin<B>(Op::Sub, Dtype::E5m2, 0xFB, 0x7B) == 0xFB);
  CHECK(bin<B>(Op::Mul, Dtype::E5m2, 0x7C, 0x00) == 0x7F);    // inf * 0 = NaN
  CHECK(bin<B>(Op::Cmpeq, Dtype::E5m2, 0x80, 0x00) == 0xFF);  // -0 == +0
  CHECK(un<B>(Op::Relu, Dtype::E5m2, 0xBC) == 0x00);
}

#if defined(__FLT16_MAX__)
TEST_CASE("f16 ADD/SUB/MUL equal f32 arithmetic rounded by the compiler's _Float16") {
  std::mt19937 rng(11);
  int bad = 0;
  Vec a(64), b(64), o(64);
  for (int trial = 0; trial < 2000; ++trial) {
    for (std::size_t i = 0; i < 32; ++i) {
      std::uint16_t x, y;
      do x = static_cast<std::uint16_t>(rng());
      while ((x & 0x7C00) == 0x7C00);  // finite
      do y = static_cast<std::uint16_t>(rng());
      while ((y & 0x7C00) == 0x7C00);
      std::memcpy(&a[2 * i], &x, 2);
      std::memcpy(&b[2 * i], &y, 2);
    }
    const Op ops[3] = {Op::Add, Op::Sub, Op::Mul};
    for (int k = 0; k < 3; ++k) {
      vxm_binary(ops[k], Dtype::F16, a, b, o);
      for (std::size_t i = 0; i < 32; ++i) {
        _Float16 x, y;
        std::memcpy(&x, &a[2 * i], 2);
        std::memcpy(&y, &b[2 * i], 2);
        const float fx = static_cast<float>(x), fy = static_cast<float>(y);
        const float r = k == 0 ? fx + fy : k == 1 ? fx - fy : fx * fy;
        const _Float16 h = static_cast<_Float16>(r);
        std::uint16_t want;
        std::memcpy(&want, &h, 2);
        if (at<std::uint16_t>(o, i) != want) ++bad;
      }
    }
  }
  CHECK(bad == 0);
}
#endif

TEST_CASE("float SUM accumulates in f32 in element order and rounds once") {
  // ((1e8 + 1) - 1e8) + 1 = 1 in f32 (1e8 + 1 rounds back to 1e8); exact sum would be 2.
  CHECK(at<float>(
            [] {
              Vec o(16);
              vxm_unary(Op::Sum, Dtype::F32, pack<float>({1e8f, 1.0f, -1e8f, 1.0f}), o);
              return o;
            }(),
            3) == 1.0f);
  // f16: 2048 + 1 + 1 = 2050 in f32, representable in f16 (0x6801). Accumulating in f16 would
  // round 2049 to 2048 twice.
  Vec h = pack<std::uint16_t>({0x6800, 0x3C00, 0x3C00});
  Vec o(16);
  vxm_unary(Op::Sum, Dtype::F16, h, o);
  CHECK(o == splat<std::uint16_t>(0x6801));
  vxm_unary(Op::Sum, Dtype::F32, pack<float>({-0.0f, -0.0f, -0.0f, -0.0f}), o);
  CHECK(o == splat<std::uint32_t>(0x80000000u));  // starts from element 0, not from +0
  vxm_unary(Op::Sum, Dtype::F32, pack<float>({kInf, 1.0f, -kInf, 0.0f}), o);
  CHECK(o == splat<std::uint32_t>(0x7FC00000u));
  vxm_unary(Op::Sum, Dtype::E4m3, splat<std::uint8_t>(0x70), o);  // 16 * 128 = 2048 -> 448
  CHECK(o == splat<std::uint8_t>(0x7E));
  vxm_unary(Op::Sum, Dtype::Bf16, splat<std::uint16_t>(0x3F80), o);  // 8 * 1 = 8 = 0x4100
  CHECK(o == splat<std::uint16_t>(0x4100));
}

TEST_CASE("float RMAX: NaN propagates as the canonical NaN, +0 beats -0") {
  Vec o(16);
  vxm_unary(Op::Rmax, Dtype::F32, pack<float>({-1.0f, 3.0f, -kInf, 2.0f}), o);
  CHECK(o == splat<float>(3.0f));
  vxm_unary(Op::Rmax, Dtype::F32, pack<float>({-1.0f, F(0xFF800001), 5.0f, 2.0f}), o);
  CHECK(o == splat<std::uint32_t>(0x7FC00000u));
  vxm_unary(Op::Rmax, Dtype::F32, pack<float>({-0.0f, 0.0f, -0.0f, -1.0f}), o);
  CHECK(o == splat<std::uint32_t>(0u));
  vxm_unary(Op::Rmax, Dtype::F32, pack<float>({-0.0f, -0.0f, -2.0f, -1.0f}), o);
  CHECK(o == splat<std::uint32_t>(0x80000000u));
  vxm_unary(Op::Rmax, Dtype::E4m3, pack<std::uint8_t>({0xB8, 0x38, 0x40, 0x7E}), o);
  CHECK(o == splat<std::uint8_t>(0x7E));
  vxm_unary(Op::Rmax, Dtype::E4m3, pack<std::uint8_t>({0xB8, 0xFF}), o);  // 0xFF is NaN
  CHECK(o == splat<std::uint8_t>(0x7F));
  vxm_unary(Op::Rmax, Dtype::F16,
            pack<std::uint16_t>({0xFC00, 0xFC00, 0xFC00, 0xFC00, 0xFC00, 0xFC00, 0xFC00, 0xFC00}),
            o);
  CHECK(o == splat<std::uint16_t>(0xFC00));
}

TEST_CASE("SEL copies bits by a same-width mask, CONST takes the low bits") {
  Vec mask = pack<std::uint16_t>({0xFFFF, 0x0000, 0x8000, 0x0001, 0, 0, 0, 0});
  Vec a = pack<std::uint16_t>({1, 2, 3, 4, 5, 6, 7, 0x7E01});
  Vec b = pack<std::uint16_t>({10, 20, 30, 40, 50, 60, 70, 80});
  Vec o(16);
  vxm_select(Dtype::F16, mask, a, b, o);  // 0x8000 (-0 as f16) is a nonzero mask
  CHECK(o == pack<std::uint16_t>({1, 20, 3, 4, 50, 60, 70, 80}));
  vxm_select(Dtype::F16, splat<std::uint16_t>(1), a, b, o);
  CHECK(o == a);  // NaN payload 0x7E01 copied unchanged
  Vec m8 = pack<std::uint8_t>({0, 1, 0x80, 0});
  vxm_select(Dtype::I8, m8, splat<std::uint8_t>(0xAA), splat<std::uint8_t>(0x55), o);
  CHECK(at<std::uint32_t>(o, 0) == 0x55AAAA55u);
  vxm_select(Dtype::I32, pack<std::uint32_t>({0x100, 0}), splat<std::uint32_t>(7),
             splat<std::uint32_t>(9), o);
  CHECK(o == pack<std::uint32_t>({7, 9, 9, 9}));

  vxm_const(Dtype::I8, 0x12345678u, o);
  CHECK(o == splat<std::uint8_t>(0x78));
  vxm_const(Dtype::F16, 0xABCD3C00u, o);
  CHECK(o == splat<std::uint16_t>(0x3C00));
  vxm_const(Dtype::F32, 0x7F800001u, o);  // not canonicalised: a bit pattern
  CHECK(o == splat<std::uint32_t>(0x7F800001u));
  vxm_const(Dtype::E5m2, 0x17Bu, o);
  CHECK(o == splat<std::uint8_t>(0x7B));
}

// ---- transcendentals --------------------------------------------------------------------------

namespace {
long double ref_fn(Op op, long double x) {
  const long double c = 0.797884560802865355879892119868763737L;  // sqrt(2/pi)
  switch (op) {
    case Op::Exp:
      return std::exp(x);
    case Op::Tanh:
      return std::tanh(x);
    case Op::Sigmoid:
      return 1.0L / (1.0L + std::exp(-x));
    // 0.5 x (1 + tanh(u)) == x / (1 + exp(-2u)); the second form has no cancellation.
    case Op::Gelu:
      return x / (1.0L + std::exp(-2.0L * c * (x + 0.044715L * x * x * x)));
    case Op::Silu:
      return x / (1.0L + std::exp(-x));
    case Op::Rsqrt:
      return 1.0L / std::sqrt(x);
    default:
      return 1.0L / x;
  }
}
float fn(Op op, float x) {
  switch (op) {
    case Op::Exp:
      return exp_f32(x);
    case Op::Tanh:
      return tanh_f32(x);
    case Op::Sigmoid:
      return sigmoid_f32(x);
    case Op::Gelu:
      return gelu_f32(x);
    case Op::Silu:
      return silu_f32(x);
    case Op::Rsqrt:
      return rsqrt_f32(x);
    default:
      return recip_f32(x);
  }
}
}  // namespace

// Error in ulps of the exact result (ulp of its binade), over inputs whose correctly rounded
// result is a normal f32; also the distance to the correctly rounded result (<= 2: the spec's
// bound). Inputs: random bit patterns over the whole line plus dense samples of [-20, 20].
TEST_CASE("transcendentals: within the documented error of the exact result") {
  struct Case {
    Op op;
    const char* name;
    double measured;  // documented maximum (numerics.md), from an exhaustive sweep
  };
  const Case cases[] = {{Op::Exp, "exp", 0.536},         {Op::Tanh, "tanh", 0.776},
                        {Op::Sigmoid, "sigmoid", 0.537}, {Op::Gelu, "gelu", 0.540},
                        {Op::Silu, "silu", 0.541},       {Op::Rsqrt, "rsqrt", 1.490},
                        {Op::Recip, "recip", 0.500}};
  std::mt19937 rng(2024);
  std::uniform_real_distribution<float> dense(-20.0f, 20.0f);
  for (const auto& c : cases) {
    INFO(std::string(c.name));
    double max_ulp = 0;
    std::int64_t max_dist = 0;
    float worst = 0;
    int checked = 0;
    for (int i = 0; i < 600000; ++i) {
      const float x = (i & 1) ? F(static_cast<std::uint32_t>(rng())) : dense(rng);
      if (!std::isfinite(x)) continue;
      const long double r = ref_fn(c.op, x);
      const float rf = static_cast<float>(r);
      if (!std::isfinite(rf) || std::fabs(rf) < std::numeric_limits<float>::min()) continue;
      const float y = fn(c.op, x);
      const long double ulp = std::ldexp(1.0L, std::ilogb(rf) - 23);
      const double e = std::isnan(y)
                           ? 1e9
                           : static_cast<double>(std::fabs(static_cast<long double>(y) - r) / ulp);
      const std::int64_t d = std::isnan(y) ? 1 << 30 : std::llabs(ord(y) - ord(rf));
      if (e > max_ulp) {
        max_ulp = e;
        worst = x;
      }
      max_dist = std::max(max_dist, d);
      ++checked;
    }
    MESSAGE(std::string(c.name) << ": " << checked << " points, max error " << max_ulp << " ulp at "
                                << worst << ", max distance " << max_dist);
    CHECK(max_dist <= 2);
    CHECK(max_ulp <= c.measured + 1e-3);
  }
}

TEST_CASE("transcendentals: special values") {
  CHECK(exp_f32(0.0f) == 1.0f);
  CHECK(exp_f32(-0.0f) == 1.0f);
  CHECK(exp_f32(kInf) == kInf);
  CHECK(U(exp_f32(-kInf)) == 0u);
  CHECK(std::isnan(exp_f32(kNan)));
  CHECK(exp_f32(1.0f) == F(0x402DF854));          // e = 2.71828182846 -> 0x402DF854
  CHECK(std::isfinite(exp_f32(0x1.62e42ep+6f)));  // 88.7228317: largest x with exp(x) < 2^128
  CHECK(exp_f32(0x1.62e42ep+6f) > 3.4e38f);
  CHECK(exp_f32(0x1.62e430p+6f) == kInf);
  CHECK(exp_f32(1000.0f) == kInf);
  CHECK(exp_f32(-104.5f) == 0.0f);
  CHECK(exp_f32(-103.0f) > 0.0f);  // 2^-148.6: subnormal, not flushed
  CHECK(exp_f32(-103.0f) ==
        F(static_cast<std::uint32_t>(std::lround(std::exp(-103.0L) / 0x1p-149L))));
  CHECK(exp_f32(-87.5f) == static_cast<float>(std::exp(-87.5L)));  // subnormal result, rounded once

  CHECK(tanh_f32(kInf) == 1.0f);
  CHECK(tanh_f32(-kInf) == -1.0f);
  CHECK(U(tanh_f32(-0.0f)) == 0x80000000u);
  CHECK(U(tanh_f32(-0x1p-140f)) == U(-0x1p-140f));
  CHECK(std::isnan(tanh_f32(kNan)));
  CHECK(tanh_f32(9.5f) == 1.0f);
  // 1 - tanh(9) = 3.05e-8 > 2^-25: the correctly rounded value is just below 1.
  CHECK(tanh_f32(9.0f) == F(0x3F7FFFFF));
  CHECK(tanh_f32(-9.0f) == -F(0x3F7FFFFF));

  CHECK(sigmoid_f32(0.0f) == 0.5f);
  CHECK(sigmoid_f32(-0.0f) == 0.5f);
  CHECK(sigmoid_f32(kInf) == 1.0f);
  CHECK(U(sigmoid_f32(-kInf)) == 0u);
  CHECK(sigmoid_f32(100.0f) == 1.0f);
  CHECK(sigmoid_f32(-90.0f) == static_cast<float>(std::exp(-90.0L)));  // subnormal result
  CHECK(std::isnan(sigmoid_f32(kNan)));

  CHECK(U(gelu_f32(0.0f)) == 0u);
  CHECK(U(gelu_f32(-0.0f)) == 0x80000000u);
  CHECK(gelu_f32(kInf) == kInf);
  CHECK(U(gelu_f32(-kInf)) == 0x80000000u);
  CHECK(gelu_f32(20.0f) == 20.0f);
  CHECK(U(gelu_f32(-20.0f)) == 0x80000000u);
  CHECK(std::isnan(gelu_f32(kNan)));
  // The literal definition 0.5 x (1 + tanh(sqrt(2/pi)(x + 0.044715 x^3))) at x = 1, 2 in long
  // double.
  for (float x : {1.0f, 2.0f, 0.5f}) {
    const long double lx = x;
    const long double want = 0.5L * lx *
                             (1.0L + std::tanh(0.797884560802865355879892119868763737L *
                                               (lx + 0.044715L * lx * lx * lx)));
    CHECK(std::llabs(ord(gelu_f32(x)) - ord(static_cast<float>(want))) <= 1);
  }

  CHECK(U(silu_f32(-0.0f)) == 0x80000000u);
  CHECK(silu_f32(kInf) == kInf);
  CHECK(U(silu_f32(-kInf)) == 0x80000000u);
  CHECK(silu_f32(100.0f) == 100.0f);
  CHECK(std::isnan(silu_f32(kNan)));
  CHECK(silu_f32(-100.0f) < 0.0f);  // -100 e^-100 = -3.7e-42: a subnormal, not 0

  CHECK(rsqrt_f32(0.0f) == kInf);
  CHECK(rsqrt_f32(-0.0f) == -kInf);
  CHECK(std::isnan(rsqrt_f32(-1.0f)));
  CHECK(std::isnan(rsqrt_f32(-kInf)));
  CHECK(U(rsqrt_f32(kInf)) == 0u);
  CHECK(rsqrt_f32(4.0f) == 0.5f);
  CHECK(rsqrt_f32(0.25f) == 2.0f);
  CHECK(rsqrt_f32(0x1p-148f) == 0x1p74f);  // subnormal input

  CHECK(recip_f32(0.0f) == kInf);
  CHECK(recip_f32(-0.0f) == -kInf);
  CHECK(U(recip_f32(kInf)) == 0u);
  CHECK(U(recip_f32(-kInf)) == 0x80000000u);
  CHECK(recip_f32(3.0f) == F(0x3EAAAAAB));
  CHECK(recip_f32(0x1p127f) == 0x1p-127f);  // subnormal result
  CHECK(recip_f32(0x1p-149f) == kInf);
}

TEST_CASE("transcendental VXM ops on narrow types: convert to f32, compute, round to t") {
  using H = std::uint16_t;
  using B = std::uint8_t;
  CHECK(un<B>(Op::Exp, Dtype::E4m3, 0x00) == 0x38);      // e^0 = 1
  CHECK(un<H>(Op::Exp, Dtype::F16, 0x3C00) == 0x4170);   // e = 2.71828 -> 1392 * 2^-9 = 2.71875
  CHECK(un<H>(Op::Exp, Dtype::Bf16, 0x3F80) == 0x402E);  // 2.71828 -> 2.71875 (0x402E)
  CHECK(un<B>(Op::Exp, Dtype::E5m2, 0x5A) == 0x7B);      // e^192 saturates
  CHECK(un<B>(Op::Exp, Dtype::E4m3, 0x70) == 0x7E);      // e^128 = inf in f32, saturates
  CHECK(un<H>(Op::Exp, Dtype::F16, 0x4C00) == 0x7C00);   // e^16 > 65504 -> inf
  CHECK(un<H>(Op::Rsqrt, Dtype::F16, 0x0000) == 0x7C00);
  CHECK(un<H>(Op::Rsqrt, Dtype::F16, 0xBC00) == 0x7E00);   // NaN canonical
  CHECK(un<H>(Op::Recip, Dtype::Bf16, 0x4000) == 0x3F00);  // 1/2
  CHECK(un<B>(Op::Recip, Dtype::E4m3, 0x80) == 0xFE);      // 1/-0 = -inf -> -448
  CHECK(un<H>(Op::Tanh, Dtype::F16, 0x7C00) == 0x3C00);
  CHECK(un<H>(Op::Sigmoid, Dtype::F16, 0x0000) == 0x3800);  // 0.5
  CHECK(un<B>(Op::Gelu, Dtype::E4m3, 0x40) == 0x40);        // gelu(2) = 1.9546: nearer 2 than 1.875
  CHECK(un<H>(Op::Silu, Dtype::F16, 0x8000) == 0x8000);
  // f32 vectors apply the scalar functions element-wise (NaN canonical).
  Vec a = pack<float>({0.5f, -3.0f, kNan, 80.0f}), o(16);
  vxm_unary(Op::Exp, Dtype::F32, a, o);
  CHECK(at<float>(o, 0) == exp_f32(0.5f));
  CHECK(at<float>(o, 1) == exp_f32(-3.0f));
  CHECK(at<std::uint32_t>(o, 2) == 0x7FC00000u);
  CHECK(at<float>(o, 3) == exp_f32(80.0f));
}

// ---- CVT ----------------------------------------------------------------------------------------

TEST_CASE("CVT widening: part p takes input elements p*m to (p+1)*m - 1") {
  Vec a = pack<std::int8_t>({0, -1, 2, -3, 4, -5, 6, -7, 8, -9, 10, -11, 12, -13, 127, -128});
  Vec o(16);
  vxm_convert(Dtype::I8, Dtype::I32, 0, a, o);
  CHECK(o == pack<std::int32_t>({0, -1, 2, -3}));
  vxm_convert(Dtype::I8, Dtype::I32, 3, a, o);
  CHECK(o == pack<std::int32_t>({12, -13, 127, -128}));
  vxm_convert(Dtype::I8, Dtype::I32, 4, a, o);  // past the input: zeros
  CHECK(o == Vec(16, 0));
  vxm_convert(Dtype::I8, Dtype::I16, 1, a, o);
  CHECK(o == pack<std::int16_t>({8, -9, 10, -11, 12, -13, 127, -128}));
  vxm_convert(Dtype::I8, Dtype::F16, 1, a, o);  // exact: 8 = 0x4800, -9 = 0xC880, 127 = 0x57F0
  CHECK(o == pack<std::uint16_t>({0x4800, 0xC880, 0x4900, 0xC980, 0x4A00, 0xCA80, 0x57F0, 0xD800}));
  // f16 -> f32: exact; NaN canonical.
  vxm_convert(Dtype::F16, Dtype::F32, 0, pack<std::uint16_t>({0x3C00, 0x0001, 0x7E01, 0xFC00}), o);
  CHECK(o == pack<std::uint32_t>({0x3F800000u, 0x33800000u, 0x7FC00000u, 0xFF800000u}));
  // e4m3 -> bf16, part 0 of 16 inputs -> the first 8.
  vxm_convert(Dtype::E4m3, Dtype::Bf16, 0, pack<std::uint8_t>({0x38, 0x7E, 0x01, 0xFF, 0x80, 0x08}),
              o);
  CHECK(o == pack<std::uint16_t>({0x3F80, 0x43E0, 0x3B00, 0x7FC0, 0x8000, 0x3C80, 0, 0}));
  // e4m3 -> e5m2 (same size): 448 = 1.75 * 2^8 -> 0x5F; 2^-9 -> normal 0x18.
  vxm_convert(Dtype::E4m3, Dtype::E5m2, 0, pack<std::uint8_t>({0x7E, 0x01}), o);
  CHECK(at<std::uint16_t>(o, 0) == 0x185F);
}

TEST_CASE("CVT narrowing: all inputs land at output elements p*n to (p+1)*n - 1, rest zero") {
  Vec a = pack<float>({1.5f, 2.5f, -300.0f, kNan});
  Vec o(16, 0xAA);
  vxm_convert(Dtype::F32, Dtype::I8, 0, a, o);
  CHECK(o == pack<std::int8_t>({2, 2, -128, 0}));
  vxm_convert(Dtype::F32, Dtype::I8, 2, a, o);
  CHECK(o == pack<std::int8_t>({0, 0, 0, 0, 0, 0, 0, 0, 2, 2, -128, 0}));
  vxm_convert(Dtype::F32, Dtype::I8, 3, a, o);
  CHECK(o == pack<std::int8_t>({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 2, -128, 0}));
  vxm_convert(Dtype::F32, Dtype::I8, 4, a, o);
  CHECK(o == Vec(16, 0));
  vxm_convert(Dtype::F32, Dtype::Bf16, 1, pack<float>({1.0f, F(0x3F818000), kNan, F(0x7F7FFFFF)}),
              o);
  CHECK(o == pack<std::uint16_t>({0, 0, 0, 0, 0x3F80, 0x3F82, 0x7FC0, 0x7F80}));
  vxm_convert(Dtype::F32, Dtype::E4m3, 0, pack<float>({1000.0f, -kInf, 0x1p-10f, 1.0f}), o);
  CHECK(o == pack<std::uint8_t>({0x7E, 0xFE, 0x00, 0x38}));
  vxm_convert(Dtype::I32, Dtype::I8, 1, pack<std::int32_t>({1000, -1000, 5, -5}), o);
  CHECK(o == pack<std::int8_t>({0, 0, 0, 0, 127, -128, 5, -5}));
  vxm_convert(Dtype::I32, Dtype::I16, 0, pack<std::int32_t>({40000, -40000, 32767, -32768}), o);
  CHECK(o == pack<std::int16_t>({32767, -32768, 32767, -32768}));
  vxm_convert(Dtype::I32, Dtype::Bf16, 0, pack<std::int32_t>({0x01010001, 0x01010000, -1, 0}), o);
  CHECK(o == pack<std::uint16_t>({0x4B81, 0x4B80, 0xBF80, 0}));
  vxm_convert(Dtype::I16, Dtype::E5m2, 1, pack<std::int16_t>({1, -2, 32767, 0, 0, 0, 0, 0}), o);
  CHECK(o == pack<std::uint8_t>(
                 {0, 0, 0, 0, 0, 0, 0, 0, 0x3C, 0xC0, 0x78, 0, 0, 0, 0, 0}));  // 32767 -> 2^15
  vxm_convert(Dtype::F16, Dtype::E4m3, 0, pack<std::uint16_t>({0x5F00, 0x7C00, 0x7E00, 0x3C00}), o);
  CHECK(at<std::uint32_t>(o, 0) == 0x387F7E7Eu);  // 448 -> 0x7E, inf -> 0x7E, NaN, 1
}

TEST_CASE("CVT to the same type is a bit copy for part 0 and zeros otherwise") {
  Vec a = pack<std::uint32_t>({0x7F800001u, 0xFFFFFFFFu, 0x3F800000u, 0x80000000u});
  Vec o(16);
  vxm_convert(Dtype::F32, Dtype::F32, 0, a, o);
  CHECK(o == a);  // NaN payloads kept
  vxm_convert(Dtype::F32, Dtype::F32, 1, a, o);
  CHECK(o == Vec(16, 0));
  vxm_convert(Dtype::E4m3, Dtype::E4m3, 0, splat<std::uint8_t>(0xFF), o);
  CHECK(o == splat<std::uint8_t>(0xFF));
  vxm_convert(Dtype::I16, Dtype::F16, 0, pack<std::int16_t>({-1, 2048, 2049, 0, 0, 0, 0, 0}),
              o);                                                            // same size
  CHECK(o == pack<std::uint16_t>({0xBC00, 0x6800, 0x6800, 0, 0, 0, 0, 0}));  // 2049: tie -> 2048
  vxm_convert(Dtype::F32, Dtype::I32, 0, pack<float>({-2.5f, 3e9f, kNan, -3e9f}), o);
  CHECK(o == pack<std::int32_t>({-2, 2147483647, 0, -2147483647 - 1}));
}

TEST_CASE("CVT: every type pair runs, and float->float matches decode/encode") {
  std::mt19937 rng(3);
  Vec a(32), o(32);
  for (auto& x : a) x = static_cast<std::uint8_t>(rng());
  for (int f = 0; f < 8; ++f)
    for (int t = 0; t < 8; ++t)
      for (int p = 0; p < 5; ++p)
        CHECK_NOTHROW(vxm_convert(static_cast<Dtype>(f), static_cast<Dtype>(t), p, a, o));
  vxm_convert(Dtype::Bf16, Dtype::F16, 0, a, o);
  for (std::size_t i = 0; i < 16; ++i)
    CHECK(at<std::uint16_t>(o, i) == f32_to_f16(bf16_to_f32(at<std::uint16_t>(a, i))));
  CHECK_THROWS_AS(vxm_convert(Dtype::F32, Dtype::I8, -1, a, o), std::invalid_argument);
  Vec short16(16);
  CHECK_THROWS_AS(vxm_convert(Dtype::F32, Dtype::I8, 0, a, short16), std::invalid_argument);
}

// ---- MXM readout --------------------------------------------------------------------------------

TEST_CASE("mxm readout: part p is accumulator elements p*m to (p+1)*m - 1, zero past n") {
  const std::int32_t acc[10] = {0, 1, -1, 127, 128, -129, 1000, -1000, 70000, 0x01010001};
  Vec o(16, 0xAA);
  mxm_readout_i32(acc, 10, Dtype::I8, 0, o);
  CHECK(o == pack<std::int8_t>({0, 1, -1, 127, 127, -128, 127, -128, 127, 127}));
  mxm_readout_i32(acc, 10, Dtype::I8, 1, o);
  CHECK(o == Vec(16, 0));
  mxm_readout_i32(acc, 10, Dtype::I32, 2, o);
  CHECK(o == pack<std::int32_t>({70000, 0x01010001, 0, 0}));
  mxm_readout_i32(acc, 10, Dtype::I16, 1, o);
  CHECK(o == pack<std::int16_t>({32767, 32767, 0, 0, 0, 0, 0, 0}));
  mxm_readout_i32(acc, 10, Dtype::F16, 1, o);  // 70000 -> inf; 2^24+2^16+1 -> inf
  CHECK(o == pack<std::uint16_t>({0x7C00, 0x7C00, 0, 0, 0, 0, 0, 0}));
  mxm_readout_i32(acc, 10, Dtype::Bf16, 1, o);
  CHECK(o == pack<std::uint16_t>({0x4789, 0x4B81, 0, 0, 0, 0, 0, 0}));  // 70000 -> 70144 (0x4789)
  mxm_readout_i32(acc, 10, Dtype::E4m3, 0, o);
  // 127 and 128 -> 128 (0x70, ulp 8 below 128); -129 -> -128 (ulp 16 above 128).
  CHECK(o == pack<std::uint8_t>({0x00, 0x38, 0xB8, 0x70, 0x70, 0xF0, 0x7E, 0xFE, 0x7E, 0x7E}));

  const float facc[12] = {1.0f,   kNan,  F(0xFFC00000), 127.5f, -0.5f, 3e9f,
                          1e-45f, -kInf, F(0x3F818000), 2.0f,   0.0f,  -0.0f};
  mxm_readout_f32(facc, 12, Dtype::F32, 0, o);
  CHECK(o == pack<std::uint32_t>({0x3F800000u, 0x7FC00000u, 0x7FC00000u, 0x42FF0000u}));
  mxm_readout_f32(facc, 12, Dtype::I8, 0, o);
  CHECK(o == pack<std::int8_t>({1, 0, 0, 127, 0, 127, 0, -128, 1, 2, 0, 0}));
  mxm_readout_f32(facc, 12, Dtype::Bf16, 1, o);
  CHECK(o == pack<std::uint16_t>({0x3F82, 0x4000, 0x0000, 0x8000, 0, 0, 0, 0}));
  mxm_readout_f32(facc, 12, Dtype::I32, 1, o);
  CHECK(o == pack<std::int32_t>({0, 2147483647, 0, -2147483647 - 1}));
  CHECK_THROWS_AS(mxm_readout_f32(facc, 12, Dtype::I32, -1, o), std::invalid_argument);
  mxm_readout_f32(nullptr, 0, Dtype::F32, 0, o);
  CHECK(o == Vec(16, 0));
}

// ---- op/type validation
// ---------------------------------------------------------------------------

TEST_CASE("every VXM op accepts exactly the types isa.toml allows") {
  using lpu::isa::info;
  using lpu::isa::kInstrs;
  using lpu::isa::Unit;
  const Op binary[] = {Op::Add, Op::Sub, Op::Mul,   Op::Min,   Op::Max,  Op::And,
                       Op::Or,  Op::Xor, Op::Cmpeq, Op::Cmplt, Op::Cmple};
  const Op unary[] = {Op::Shl,   Op::Shra,  Op::Shrl, Op::Not,     Op::Neg,  Op::Abs,
                      Op::Relu,  Op::Exp,   Op::Tanh, Op::Sigmoid, Op::Gelu, Op::Silu,
                      Op::Rsqrt, Op::Recip, Op::Sum,  Op::Rmax};
  Vec a(32, 0x3C), b(32, 0x41), o(32);
  int covered = 0;
  for (int ti = 0; ti < 8; ++ti) {
    const auto t = static_cast<Dtype>(ti);
    for (Op op : binary) {
      INFO(info(op).mnemonic);
      CAPTURE(ti);
      if (lpu::isa::type_allowed(info(op).types, t)) {
        CHECK_NOTHROW(vxm_binary(op, t, a, b, o));
        ++covered;
      } else {
        CHECK_THROWS_AS(vxm_binary(op, t, a, b, o), std::invalid_argument);
      }
      CHECK_THROWS_AS(vxm_unary(op, t, a, o), std::invalid_argument);  // not unary
    }
    for (Op op : unary) {
      INFO(info(op).mnemonic);
      CAPTURE(ti);
      if (lpu::isa::type_allowed(info(op).types, t)) {
        CHECK_NOTHROW(vxm_unary(op, t, a, o, 3));
        ++covered;
      } else {
        CHECK_THROWS_AS(vxm_unary(op, t, a, o, 3), std::invalid_argument);
      }
      CHECK_THROWS_AS(vxm_binary(op, t, a, b, o), std::invalid_argument);  // not binary
    }
    CHECK_NOTHROW(vxm_select(t, a, a, b, o));
    CHECK_NOTHROW(vxm_const(t, 1, o));
  }
  // Every VXM instruction with a type suffix is one of the above, SEL, CONST or CVT.
  int vxm_typed = 0;
  for (const auto& ii : kInstrs)
    if (ii.unit == Unit::Vxm && ii.types) ++vxm_typed;
  CHECK(vxm_typed == 11 + 16 + 3);
  CHECK(covered > 0);
  // MOV: a byte copy, whatever the type.
  vxm_unary(Op::Mov, Dtype::F32, b, o);
  CHECK(o == b);
  Vec short16(16), odd6(6);
  CHECK_THROWS_AS(vxm_binary(Op::Add, Dtype::I8, a, short16, o), std::invalid_argument);
  CHECK_THROWS_AS(vxm_binary(Op::Add, Dtype::I32, odd6, odd6, odd6), std::invalid_argument);
  CHECK_THROWS_AS(vxm_unary(Op::Shl, Dtype::I8, a, o, -1), std::invalid_argument);
  CHECK_THROWS_AS(vxm_binary(Op::Read, Dtype::I8, a, b, o), std::invalid_argument);
}
