// Disassembly re-assembles to an identical object: for every instruction of the ISA with every
// type suffix it allows and random operands, and for every example program.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <fmt/format.h>
#include <random>

#include "helpers.hpp"
#include "lpu/isa/isa.hpp"

using namespace lpu;
using namespace lpu::test;

namespace {

// A small valid program on `mini` that contains instruction `op` with suffixes t, t2.
std::string program_for(isa::Op op, isa::Dtype t, isa::Dtype t2, std::mt19937& rng) {
  const auto& ii = isa::info(op);
  const auto& p = mini();
  const int V = p.vector_bytes();
  auto rnd = [&](std::int64_t lo, std::int64_t hi) {
    return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng);
  };
  std::string name(ii.mnemonic);
  if (ii.types) name += "." + std::string(isa::dtype_info(t).name);
  if (ii.types2) name += "." + std::string(isa::dtype_info(t2).name);
  std::string pre = ".preset mini\n.reg r3 = 5\n.perm sxm.e 0 = [";
  for (int i = 0; i < V; ++i) pre += fmt::format("{}{}", i ? ", " : "", V - 1 - i);
  pre += "]\n";
  switch (op) {
    case isa::Op::Nop:
      return pre + fmt::format(".queue vxm.0\nCONST.i8 s7w, 1\nNOP {}\nCONST.i8 s6w, 2\n", rnd(1, 1000));
    case isa::Op::Repeat:
      return pre + fmt::format(".queue vxm.0\nCONST.i8 s7w, 1\nREPEAT {}, {}\n", rnd(0, 50), rnd(1, 9));
    case isa::Op::Repeatr: return pre + fmt::format(".queue vxm.0\nCONST.i8 s7w, 1\nREPEATR r3, {}\n", rnd(1, 9));
    case isa::Op::Sync: return pre + ".queue vxm.1\n@5 NOTIFY\n.queue vxm.0\nSYNC\nCONST.i8 s7w, 1\n";
    case isa::Op::Notify: return pre + ".queue vxm.0\n@3 NOTIFY\n";
    case isa::Op::Config: return pre + fmt::format(".queue vxm.0\nCONFIG r{}, {}\n", rnd(1, 15), rnd(0, 0xffffffffLL));
    case isa::Op::Halt: return pre + ".queue vxm.0\nCONST.i8 s7w, 1\nHALT\n";
    case isa::Op::Deskew: return pre + ".queue sxm.e.0\n@7 DESKEW\nDMAIN 0, s7w\n";
    default: break;
  }
  std::string q = ii.unit == isa::Unit::Mem ? "mem.e.1"
                  : ii.unit == isa::Unit::Vxm ? "vxm.0"
                  : ii.unit == isa::Unit::Mxm ? "mxm.e.0.1"
                                              : "sxm.e.0";
  std::string prod, ops, acc;
  int k = 0;
  const int tb = isa::dtype_bytes(t);
  const int n = V / tb;
  for (int j = 0; j < ii.num_operands; ++j) {
    const auto& od = ii.operands[size_t(j)];
    std::string v;
    if (od.reads) {
      // Producer k in mem.w.k (position 4 - k) at cycle 3 - k: every value reaches position P
      // in cycle (3 - k) + 2 + (P - 4 + k) = P + 1.
      prod += fmt::format(".queue mem.w.{}\np{}: @{} READ {}, s{}e\n", k, k, 3 - k, rnd(0, 255), k);
      if (op == isa::Op::Trans) prod += "REPEAT 15, 1\n";
      v = fmt::format("s{}e", k++);
    } else if (od.writes) {
      v = "s7w";
    } else {
      switch (od.kind) {
        case isa::Kind::Addr: v = rnd(0, 1) ? fmt::format("{}", rnd(0, 200)) : fmt::format("[r3+{}]", rnd(0, 200)); break;
        case isa::Kind::Stride: v = fmt::format("{}", rnd(-2, 2)); break;
        case isa::Kind::Row: v = fmt::format("{}", rnd(0, n - 1)); break;
        case isa::Kind::Acc:
          v = fmt::format("{}", rnd(0, p.mxm.accumulators - 1));
          acc = v;
          break;
        case isa::Kind::Part: {
          int parts = tb;
          if (op == isa::Op::Cvt) parts = std::max(tb, isa::dtype_bytes(t2)) / std::min(tb, isa::dtype_bytes(t2));
          v = fmt::format("{}", rnd(0, parts - 1));
          break;
        }
        case isa::Kind::Shamt: v = fmt::format("{}", rnd(0, 8 * tb - 1)); break;
        case isa::Kind::Offset: v = fmt::format("{}", rnd(-(n - 1), n - 1)); break;
        case isa::Kind::Lane: v = fmt::format("{}", rnd(0, n - 1)); break;
        case isa::Kind::Table: v = "0"; break;
        case isa::Kind::Link: v = fmt::format("{}", rnd(0, p.c2c.links - 1)); break;
        case isa::Kind::Chan: v = fmt::format("{}", rnd(0, p.dma.channels - 1)); break;
        // LWM (from mem.e.1 into mini's only plane, mxm.e.0): a wrap of n rows, any row below it.
        case isa::Kind::Srow: v = fmt::format("{}", rnd(0, p.mem.rows - 1)); break;
        case isa::Kind::Plane: v = "0"; break;
        case isa::Kind::Wrow: v = fmt::format("{}", rnd(0, n - 1)); break;
        case isa::Kind::Wstep: v = fmt::format("{}", rnd(0, n)); break;
        case isa::Kind::Wrap: v = fmt::format("{}", n); break;
        case isa::Kind::Flag: v = fmt::format("{}", rnd(0, 1)); break;
        case isa::Kind::Imm32:
          v = isa::dtype_info(t).is_float ? fmt::format("{}", double(rnd(-1000, 1000)) / 8.0)
                                          : fmt::format("{}", rnd(0, 0xffffffffLL));
          break;
        default: FAIL("no generator for operand kind of " << ii.mnemonic);
      }
    }
    ops += (j ? ", " : " ") + v;
  }
  std::string setup;
  if (op == isa::Op::Mm || op == isa::Op::Mma)
    setup = fmt::format(".queue mxm.e.0.0\nIW.{}\n", isa::dtype_info(t).name);  // installed in cycle 4
  std::string at = k ? "@ready(p0) " : "";
  if (op == isa::Op::Accrd) {
    // An accumulator is read only once an MM has written it (timing.md rule 17): weights from
    // cycle 4, x (a CONST in 0) at the plane in 7, the MM in 7, readable from 7 + mxm_mm = 11.
    setup = fmt::format(".queue mxm.e.0.0\nIW.i8\n.queue vxm.0\nCONST.i8 s6e, 1\n.queue mxm.e.0.2\n@7 MM.i8 s6e, {}\n", acc);
    at = "@11 ";
  }
  return pre + prod + setup + fmt::format(".queue {}\n{}{}{}\n", q, at, name, ops);
}

void check_roundtrip(const assembler::Result& a, const std::string& what) {
  auto text = assembler::disassemble(a.program, mini());
  assembler::Result b;
  try {
    b = assembler::assemble_string(text, "disasm.lpa", mini());
  } catch (const AsmError& e) {
    FAIL(what << ": disassembly does not re-assemble: " << e.what() << "\n" << text);
  }
  CHECK_MESSAGE(a.program == b.program, what << "\n" << text);
  CHECK(obj::write_object(a.program) == obj::write_object(b.program));
}

}  // namespace

TEST_CASE("round trip over every instruction and every type suffix it allows") {
  std::mt19937 rng(42);
  int programs = 0;
  for (const auto& ii : isa::kInstrs) {
    for (int a = 0; a < isa::kNumDtypes; ++a) {
      auto t = static_cast<isa::Dtype>(a);
      if (ii.types ? !isa::type_allowed(ii.types, t) : a != 0) continue;
      for (int b = 0; b < isa::kNumDtypes; ++b) {
        auto t2 = static_cast<isa::Dtype>(b);
        if (ii.types2 ? !isa::type_allowed(ii.types2, t2) : b != 0) continue;
        for (int trial = 0; trial < 3; ++trial) {
          auto src = program_for(ii.op, t, t2, rng);
          assembler::Result r;
          try {
            r = asm_mini(src);
          } catch (const AsmError& e) {
            FAIL(ii.mnemonic << ": generated program does not assemble: " << e.what() << "\n" << src);
          }
          // The instruction itself is in the object.
          bool found = false;
          for (const auto& q : r.program.queues)
            for (auto w : q.words) found |= isa::decode(w).op == ii.op;
          CHECK_MESSAGE(found, ii.mnemonic);
          check_roundtrip(r, std::string(ii.mnemonic));
          ++programs;
        }
      }
    }
  }
  MESSAGE(programs << " generated programs round-tripped");
  CHECK(programs > 3 * isa::kNumOps);
}

TEST_CASE("round trip of every example program") {
  namespace fs = std::filesystem;
  int n = 0;
  for (const auto& e : fs::directory_iterator(fs::path(LPU_SOURCE_DIR) / "examples")) {
    if (e.path().extension() != ".lpa") continue;
    // Examples name their preset in a `.preset` line; assemble for it.
    auto preset = assembler::preset_of_file(e.path().string(), "lp30");
    auto params = load_preset(preset);
    assembler::Options opt;
    auto a = assembler::assemble_file(e.path().string(), params, opt);
    auto text = assembler::disassemble(a.program, params);
    auto b = assembler::assemble_string(text, "disasm.lpa", params);
    CHECK_MESSAGE(a.program == b.program, e.path().string());
    ++n;
  }
  CHECK(n >= 1);
}
