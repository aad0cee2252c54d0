// The ISA table is consistent, and encode/decode are inverse over every instruction.
#include <doctest/doctest.h>

#include <random>
#include <set>

#include "lpu/common/errors.hpp"
#include "lpu/isa/isa.hpp"

using namespace lpu::isa;

TEST_CASE("no two instructions share an opcode or a mnemonic") {
  std::set<int> opcodes;
  std::set<std::string_view> names;
  for (const auto& ii : kInstrs) {
    CHECK(opcodes.insert(ii.opcode).second);
    CHECK(names.insert(ii.mnemonic).second);
  }
  CHECK(opcodes.size() == kInstrs.size());
}

TEST_CASE("operand fields stay inside the operand area and never overlap") {
  for (const auto& ii : kInstrs) {
    std::uint64_t used = 0;
    for (int k = 0; k < ii.num_operands; ++k) {
      const auto& o = ii.operands[static_cast<std::size_t>(k)];
      CAPTURE(ii.mnemonic);
      CAPTURE(o.name);
      CHECK(o.width == kind_info(o.kind).width);
      REQUIRE(o.lsb + o.width <= kOperandBits);
      std::uint64_t mask = ((std::uint64_t(1) << o.width) - 1) << o.lsb;
      CHECK((used & mask) == 0);
      used |= mask;
    }
    // Operands, type suffixes and opcode occupy disjoint bit ranges.
    CHECK(kOperandBits <= kDtype2Lsb);
    CHECK(kDtype2Lsb + kDtypeWidth <= kDtypeLsb);
    CHECK(kDtypeLsb + kDtypeWidth <= kOpcodeLsb);
  }
}

TEST_CASE("encode then decode gives the instruction back, for every instruction") {
  std::mt19937_64 rng(1234);
  for (const auto& ii : kInstrs) {
    for (int trial = 0; trial < 200; ++trial) {
      Instr in;
      in.op = ii.op;
      if (ii.types) {
        do in.t = static_cast<Dtype>(rng() % kNumDtypes); while (!type_allowed(ii.types, in.t));
      }
      if (ii.types2) {
        do in.t2 = static_cast<Dtype>(rng() % kNumDtypes); while (!type_allowed(ii.types2, in.t2));
      }
      for (int k = 0; k < ii.num_operands; ++k) {
        auto kind = ii.operands[static_cast<std::size_t>(k)].kind;
        auto lo = kind_min(kind), hi = kind_max(kind);
        // Include both extremes of every field.
        std::int64_t v = trial == 0 ? lo : trial == 1 ? hi
                                           : lo + static_cast<std::int64_t>(rng() % std::uint64_t(hi - lo + 1));
        in.v[static_cast<std::size_t>(k)] = v;
      }
      auto w = encode(in);
      CAPTURE(ii.mnemonic);
      CHECK(decode(w) == in);
      CHECK((w >> kOpcodeLsb) == ii.opcode);
    }
  }
}

TEST_CASE("an operand out of its field range is refused by encode") {
  Instr in;
  in.op = Op::Nop;
  in.v[0] = std::int64_t(1) << 24;  // count is 24 bits
  CHECK_THROWS_AS(encode(in), std::out_of_range);
  in.v[0] = -1;
  CHECK_THROWS_AS(encode(in), std::out_of_range);
}

TEST_CASE("decode rejects unknown opcodes, disallowed types and stray bits") {
  CHECK_THROWS_AS(decode(std::uint64_t(0xff) << kOpcodeLsb), lpu::FormatError);
  // XOR is integer-only: type code of f32 is refused.
  Instr x;
  x.op = Op::Xor;
  x.t = Dtype::I32;
  auto w = encode(x);
  auto f32_code = static_cast<std::uint64_t>(Dtype::F32);
  auto bad = (w & ~(std::uint64_t(15) << kDtypeLsb)) | (f32_code << kDtypeLsb);
  CHECK_THROWS_AS(decode(bad), lpu::FormatError);
  // NOP has one 24-bit operand: bit 30 set is a stray bit.
  Instr n;
  n.op = Op::Nop;
  n.v[0] = 5;
  CHECK_THROWS_AS(decode(encode(n) | (std::uint64_t(1) << 30)), lpu::FormatError);
}

TEST_CASE("mnemonic and dtype lookup is case-insensitive") {
  CHECK(find_mnemonic("read") == Op::Read);
  CHECK(find_mnemonic("ReAd") == Op::Read);
  CHECK(!find_mnemonic("REED"));
  CHECK(find_dtype("BF16") == Dtype::Bf16);
  CHECK(!find_dtype("f64"));
}
