#pragma once
// Bit-exact numerics of the LPU, shared by the model (and mirrored by the RTL).
// The rules are specified in isa/numerics.md (part of docs/isa.md). Summary:
//   - Vectors are raw bytes; an element of type t is sizeof(t) bytes, little-endian.
//   - Float arithmetic is done in IEEE f32 (round to nearest even, subnormals kept, no FMA
//     contraction) and rounded once to the destination type.
//   - Conversions round to nearest even and saturate (see numerics.md for inf/NaN).
//   - Integer arithmetic wraps (two's complement); conversions between integers saturate.
#include <cstdint>
#include <span>

#include "lpu/isa/isa_table.hpp"

namespace lpu::num {

using Bytes = std::span<const std::uint8_t>;
using MutBytes = std::span<std::uint8_t>;

// ---- scalar format conversions (bit patterns) ----------------------------------------------
float f16_to_f32(std::uint16_t h);
float bf16_to_f32(std::uint16_t h);
float e4m3_to_f32(std::uint8_t b);
float e5m2_to_f32(std::uint8_t b);
std::uint16_t f32_to_f16(float f);   // RNE; overflow -> +-inf; NaN -> 0x7E00
std::uint16_t f32_to_bf16(float f);  // RNE; overflow -> +-inf; NaN -> 0x7FC0
std::uint8_t f32_to_e4m3(float f);   // RNE; saturates to +-448 (inf too); NaN -> 0x7F
std::uint8_t f32_to_e5m2(float f);   // RNE; saturates to +-57344 (inf too); NaN -> 0x7F

// ---- elements of any type --------------------------------------------------------------------
// Read element i of type t from a byte vector as f32 (floats exact; ints converted RNE).
float load_f32(isa::Dtype t, Bytes v, std::size_t i);
// Read element i as a sign-extended integer (int types only).
std::int64_t load_int(isa::Dtype t, Bytes v, std::size_t i);
// Store an f32 value into element i of type t with the conversion rules (float -> int rounds
// to nearest even and saturates, NaN -> 0).
void store_f32(isa::Dtype t, MutBytes v, std::size_t i, float x);
// Store an integer into element i of type t: ints wrap to the width (wrap = true) or saturate;
// float types convert RNE.
void store_int(isa::Dtype t, MutBytes v, std::size_t i, std::int64_t x, bool wrap);

// ---- transcendental functions, specified as sequences of f32 operations ---------------------
float exp_f32(float x);
float tanh_f32(float x);
float sigmoid_f32(float x);
float gelu_f32(float x);  // tanh approximation
float silu_f32(float x);
float rsqrt_f32(float x);
float recip_f32(float x);

// ---- the VXM: one instruction over a whole vector --------------------------------------------
// Contract: a, b, mask and out have the same size (the vector length in bytes, a multiple of
// 16); op is the instruction (isa::Op::Add ...); t its type suffix. `imm` is the shift amount
// for SHL/SHRA/SHRL. Throws std::invalid_argument for an op/type the ISA does not allow.
void vxm_binary(isa::Op op, isa::Dtype t, Bytes a, Bytes b, MutBytes out);
void vxm_unary(isa::Op op, isa::Dtype t, Bytes a, MutBytes out, int imm = 0);  // incl. SUM, RMAX
void vxm_select(isa::Dtype t, Bytes mask, Bytes a, Bytes b, MutBytes out);
void vxm_const(isa::Dtype t, std::uint32_t value, MutBytes out);
// CVT.from.to with `part` (see numerics.md): widening emits input elements
// [part*m, (part+1)*m) with m = bytes/sizeof(to); narrowing converts all n = bytes/sizeof(from)
// input elements into output elements [part*n, (part+1)*n), other output bytes zero.
void vxm_convert(isa::Dtype from, isa::Dtype to, int part, Bytes a, MutBytes out);

// ---- the MXM ---------------------------------------------------------------------------------
// ACCRD: accumulator elements (int32 for i8 weights, f32 otherwise; n of them) converted to t;
// output element j of `out` = acc[part*m + j], m = out.size()/sizeof(t), zero past n.
void mxm_readout_i32(const std::int32_t* acc, std::size_t n, isa::Dtype t, int part, MutBytes out);
void mxm_readout_f32(const float* acc, std::size_t n, isa::Dtype t, int part, MutBytes out);

}  // namespace lpu::num
