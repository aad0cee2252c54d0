#include "lpu/isa/isa.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <stdexcept>

#include "lpu/common/errors.hpp"

namespace lpu::isa {
namespace {

bool iequal(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::toupper(static_cast<unsigned char>(x)) ==
                  std::toupper(static_cast<unsigned char>(y));
         });
}

bool is_signed(Kind k) { return kind_info(k).syntax == Syntax::Simm; }

}  // namespace

const InstrInfo& info(Op op) { return kInstrs[static_cast<std::size_t>(op)]; }

const KindInfo& kind_info(Kind k) { return kKinds[static_cast<std::size_t>(k)]; }

std::optional<Op> find_mnemonic(std::string_view m) {
  for (const auto& ii : kInstrs)
    if (iequal(ii.mnemonic, m)) return ii.op;
  return std::nullopt;
}

std::optional<Op> find_opcode(std::uint8_t opcode) {
  static const auto table = [] {
    std::array<int, 256> t{};
    t.fill(-1);
    for (const auto& ii : kInstrs) t[ii.opcode] = static_cast<int>(ii.op);
    return t;
  }();
  if (table[opcode] < 0) return std::nullopt;
  return static_cast<Op>(table[opcode]);
}

std::optional<Dtype> find_dtype(std::string_view name) {
  for (std::size_t i = 0; i < kDtypes.size(); ++i)
    if (iequal(kDtypes[i].name, name)) return static_cast<Dtype>(i);
  return std::nullopt;
}

std::int64_t kind_min(Kind k) {
  const auto w = kind_info(k).width;
  return is_signed(k) ? -(std::int64_t(1) << (w - 1)) : 0;
}

std::int64_t kind_max(Kind k) {
  const auto w = kind_info(k).width;
  return is_signed(k) ? (std::int64_t(1) << (w - 1)) - 1 : (std::int64_t(1) << w) - 1;
}

int operand_index(const InstrInfo& ii, std::string_view name) {
  for (int i = 0; i < ii.num_operands; ++i)
    if (ii.operands[static_cast<std::size_t>(i)].name == name) return i;
  return -1;
}

std::uint64_t encode(const Instr& in) {
  const auto& ii = info(in.op);
  std::uint64_t w = std::uint64_t(ii.opcode) << kOpcodeLsb;
  if (ii.types) w |= std::uint64_t(in.t) << kDtypeLsb;
  if (ii.types2) w |= std::uint64_t(in.t2) << kDtype2Lsb;
  for (int k = 0; k < ii.num_operands; ++k) {
    const auto& o = ii.operands[static_cast<std::size_t>(k)];
    std::int64_t v = in.v[static_cast<std::size_t>(k)];
    if (v < kind_min(o.kind) || v > kind_max(o.kind)) {
      throw std::out_of_range(fmt::format("{} operand {} = {} out of range [{}, {}]", ii.mnemonic,
                                          o.name, v, kind_min(o.kind), kind_max(o.kind)));
    }
    std::uint64_t mask = (std::uint64_t(1) << o.width) - 1;
    w |= (static_cast<std::uint64_t>(v) & mask) << o.lsb;
  }
  return w;
}

Instr decode(std::uint64_t w) {
  auto opcode = static_cast<std::uint8_t>(w >> kOpcodeLsb);
  auto op = find_opcode(opcode);
  if (!op) throw FormatError(fmt::format("unknown opcode {:#04x} in word {:#018x}", opcode, w));
  const auto& ii = info(*op);
  Instr in;
  in.op = *op;
  std::uint64_t used = std::uint64_t(0xff) << kOpcodeLsb;
  auto dt = static_cast<unsigned>((w >> kDtypeLsb) & 15u);
  auto dt2 = static_cast<unsigned>((w >> kDtype2Lsb) & 15u);
  if (ii.types) {
    if (dt >= kNumDtypes || !type_allowed(ii.types, static_cast<Dtype>(dt)))
      throw FormatError(fmt::format("{}: type code {} not allowed in word {:#018x}", ii.mnemonic, dt, w));
    in.t = static_cast<Dtype>(dt);
    used |= std::uint64_t(15) << kDtypeLsb;
  }
  if (ii.types2) {
    if (dt2 >= kNumDtypes || !type_allowed(ii.types2, static_cast<Dtype>(dt2)))
      throw FormatError(fmt::format("{}: second type code {} not allowed in word {:#018x}", ii.mnemonic, dt2, w));
    in.t2 = static_cast<Dtype>(dt2);
    used |= std::uint64_t(15) << kDtype2Lsb;
  }
  for (int k = 0; k < ii.num_operands; ++k) {
    const auto& o = ii.operands[static_cast<std::size_t>(k)];
    std::uint64_t mask = (std::uint64_t(1) << o.width) - 1;
    std::uint64_t raw = (w >> o.lsb) & mask;
    used |= mask << o.lsb;
    std::int64_t v = static_cast<std::int64_t>(raw);
    if (is_signed(o.kind) && (raw >> (o.width - 1)) & 1u) v -= std::int64_t(1) << o.width;
    in.v[static_cast<std::size_t>(k)] = v;
  }
  if (w & ~used)
    throw FormatError(fmt::format("{}: stray bits {:#018x} in word {:#018x}", ii.mnemonic, w & ~used, w));
  return in;
}

std::int64_t step_of(const Instr& in, int operand) {
  const auto& ii = info(in.op);
  switch (ii.operands[std::size_t(operand)].step) {
    case Step::None: return 0;
    case Step::One: return 1;
    case Step::Wrap:
      for (int m = 0; m < ii.num_operands; ++m)
        if (ii.operands[std::size_t(m)].kind == Kind::Wstep) return in.v[std::size_t(m)];
      return 0;
    case Step::Stride:
      for (int m = 0; m < ii.num_operands; ++m)
        if (ii.operands[std::size_t(m)].kind == Kind::Stride) return in.v[std::size_t(m)];
      return 0;
  }
  return 0;
}

std::int64_t wrap_modulus(const Instr& in) {
  const auto& ii = info(in.op);
  for (int m = 0; m < ii.num_operands; ++m)
    if (ii.operands[std::size_t(m)].kind == Kind::Wrap) return in.v[std::size_t(m)];
  return 0;
}

Instr stepped(const Instr& base, std::int64_t k) {
  if (k == 0) return base;
  Instr in = base;
  const auto& ii = info(in.op);
  for (int j = 0; j < ii.num_operands; ++j) {
    const std::int64_t s = step_of(base, j);
    if (s == 0) continue;
    auto& v = in.v[std::size_t(j)];
    if (ii.operands[std::size_t(j)].kind == Kind::Addr) {
      v = make_addr(addr_reg(v), addr_offset(v) + k * s);
    } else if (ii.operands[std::size_t(j)].step == Step::Wrap) {
      const std::int64_t n = wrap_modulus(base);
      v = n > 0 ? ((v + (k % n) * (s % n)) % n + n) % n : v;
    } else {
      v += k * s;
    }
  }
  return in;
}

}  // namespace lpu::isa
