#pragma once
// Instructions as values: decode, encode, look up. All tables come from the generated
// isa_table.hpp (isa/isa.toml); nothing here names an opcode.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "lpu/isa/isa_table.hpp"

namespace lpu::isa {

// A decoded instruction. Operand values are held as the integers of their fields: a stream
// as its packed 7-bit value (lpu::StreamRef::unpack), an addr as (reg << 20 | offset), signed
// kinds sign-extended, imm32 as its 32-bit pattern.
struct Instr {
  Op op = Op::Nop;
  Dtype t = Dtype::I8;   // meaningful when info().types != 0
  Dtype t2 = Dtype::I8;  // meaningful when info().types2 != 0
  std::array<std::int64_t, 5> v{};
  bool operator==(const Instr&) const = default;
};

const InstrInfo& info(Op op);
inline const InstrInfo& info(const Instr& i) { return info(i.op); }
std::optional<Op> find_mnemonic(std::string_view m);  // case-insensitive
std::optional<Op> find_opcode(std::uint8_t opcode);
std::optional<Dtype> find_dtype(std::string_view name);
inline const DtypeInfo& dtype_info(Dtype d) { return kDtypes[static_cast<std::size_t>(d)]; }
inline int dtype_bytes(Dtype d) { return dtype_info(d).bytes; }
inline bool type_allowed(std::uint16_t mask, Dtype d) {
  return (mask >> static_cast<unsigned>(d)) & 1u;
}
const KindInfo& kind_info(Kind k);

// Operand field range for a kind: [min, max] of the value held in the field.
std::int64_t kind_min(Kind k);
std::int64_t kind_max(Kind k);

// Contract: encode(i) requires every operand within its field range (checked: throws
// std::out_of_range naming the operand). decode(w) throws lpu::FormatError on an unknown
// opcode, a suffix the instruction does not allow, or stray bits outside every field.
std::uint64_t encode(const Instr& i);
Instr decode(std::uint64_t word);
// What one REPEAT step adds to operand `operand` of `in` (isa.toml `step`): the value of the
// instruction's stride operand for `step = "stride"` (READ/WRITE addr), 1 for `step = "1"` (LW
// row, MM/MMA/ACCRD acc, GATHER/SCATTER addr, LWM addr), the wstep operand for `step = "wrap"`
// (LWM row, taken modulo the wrap operand), 0 for an operand that is not stepped.
std::int64_t step_of(const Instr& in, int operand);
// The modulus of a "wrap" step: the instruction's wrap operand (0: none).
std::int64_t wrap_modulus(const Instr& in);
// Instance k of a REPEATed instruction as its queue issues it: every stepped operand advanced k
// times its step_of (docs/isa.md, REPEAT). An addr operand steps its row offset; its base
// register field is kept. A "wrap" operand is taken modulo wrap_modulus(base).
Instr stepped(const Instr& base, std::int64_t k);

// Address operand helpers: (reg << 20) | offset.
inline constexpr int kAddrOffsetBits = 20;
inline int addr_reg(std::int64_t a) { return static_cast<int>((a >> kAddrOffsetBits) & 15); }
inline std::int64_t addr_offset(std::int64_t a) { return a & ((1 << kAddrOffsetBits) - 1); }
inline std::int64_t make_addr(int reg, std::int64_t off) {
  return (std::int64_t(reg) << kAddrOffsetBits) | off;
}

// Operand index by name, or -1.
int operand_index(const InstrInfo& ii, std::string_view name);

}  // namespace lpu::isa
