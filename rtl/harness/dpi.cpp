// DPI-C behavioural floating-point units of the RTL (rtl/sv/lpu_dpi_pkg.sv). Each call works on
// whole vectors with the project's numerics (isa/numerics.md), so they are bit-exact with the
// model by construction; docs/rtl.md lists which operations are DPI models.
#include <bit>
#include <cstdint>
#include <cstring>
#include <stdexcept>

#include "lpu/isa/isa.hpp"
#include "lpu/isa/numerics.hpp"
#include "lpu/rtl/rtl_config.hpp"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "Vlpu_mini__Dpi.h"
#pragma GCC diagnostic pop

namespace {

constexpr std::size_t V = lpu::rtl::cfg::VBYTES;
static_assert(std::endian::native == std::endian::little, "svBitVecVal words are copied as bytes");

lpu::isa::Op op_of(int opcode) {
  auto op = lpu::isa::find_opcode(static_cast<std::uint8_t>(opcode));
  if (!op) throw std::invalid_argument("lpu_dpi: unknown opcode");
  return *op;
}
lpu::isa::Dtype dt(int t) { return static_cast<lpu::isa::Dtype>(t); }

}  // namespace

extern "C" void lpu_dpi_vxm(int op, int t, int t2, int imm, const svBitVecVal* a, const svBitVecVal* b,
                            svBitVecVal* o) {
  using lpu::isa::Op;
  std::uint8_t A[V], B[V], O[V];
  std::memcpy(A, a, V);
  std::memcpy(B, b, V);
  std::memset(O, 0, V);
  const Op opc = op_of(op);
  switch (opc) {
    case Op::Cvt: lpu::num::vxm_convert(dt(t), dt(t2), imm, lpu::num::Bytes(A, V), lpu::num::MutBytes(O, V)); break;
    case Op::Add:
    case Op::Sub:
    case Op::Mul:
    case Op::Min:
    case Op::Max:
    case Op::Cmpeq:
    case Op::Cmplt:
    case Op::Cmple:
      lpu::num::vxm_binary(opc, dt(t), lpu::num::Bytes(A, V), lpu::num::Bytes(B, V), lpu::num::MutBytes(O, V));
      break;
    default: lpu::num::vxm_unary(opc, dt(t), lpu::num::Bytes(A, V), lpu::num::MutBytes(O, V), imm); break;
  }
  std::memcpy(o, O, V);
}

extern "C" void lpu_dpi_mxm_f(int t, const svBitVecVal* w, const svBitVecVal* x, const svBitVecVal* acc_in, int mma,
                              svBitVecVal* acc_out) {
  const auto ty = dt(t);
  const std::size_t n = V / std::size_t(lpu::isa::dtype_bytes(ty));
  const auto* wb = reinterpret_cast<const std::uint8_t*>(w);
  const lpu::num::Bytes xb(reinterpret_cast<const std::uint8_t*>(x), V);
  float y[V];
  float xf[V];
  std::memcpy(y, acc_in, sizeof(y));
  for (std::size_t j = 0; j < n; ++j) xf[j] = lpu::num::load_f32(ty, xb, j);
  for (std::size_t i = 0; i < n; ++i) {
    // y[i] = (((y[i] + W[i][0] x[0]) + W[i][1] x[1]) + ...), each product and sum rounded to f32
    const lpu::num::Bytes row(wb + i * V, V);
    float acc = mma ? y[i] : 0.0f;
    for (std::size_t j = 0; j < n; ++j) {
      const float prod = lpu::num::load_f32(ty, row, j) * xf[j];
      acc = acc + prod;
    }
    y[i] = acc;
  }
  std::memcpy(acc_out, y, sizeof(y));
}

extern "C" void lpu_dpi_accrd(int is_float, int n, int t, int part, const svBitVecVal* acc, svBitVecVal* o) {
  std::uint8_t O[V];
  if (is_float) {
    float a[V];
    std::memcpy(a, acc, sizeof(a));
    lpu::num::mxm_readout_f32(a, std::size_t(n), dt(t), part, lpu::num::MutBytes(O, V));
  } else {
    std::int32_t a[V];
    std::memcpy(a, acc, sizeof(a));
    lpu::num::mxm_readout_i32(a, std::size_t(n), dt(t), part, lpu::num::MutBytes(O, V));
  }
  std::memcpy(o, O, V);
}
