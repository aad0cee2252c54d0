#pragma once
#include <doctest/doctest.h>

#include <string>

#include "lpu/arch/params.hpp"
#include "lpu/asm/assembler.hpp"

namespace lpu::test {

inline const ChipParams& mini() {
  static const ChipParams p = load_preset("mini");
  return p;
}

inline assembler::Result asm_mini(const std::string& src) {
  return assembler::assemble_string(src, "t.lpa", mini());
}

// The cycle of the first scheduled instruction whose text starts with `prefix` in `queue`.
inline std::int64_t cycle_of(const assembler::Result& r, const std::string& queue, const std::string& prefix) {
  for (const auto& s : r.schedule)
    if (s.queue == queue && s.text.rfind(prefix, 0) == 0) return s.cycle;
  FAIL("no instruction '" << prefix << "' in queue " << queue);
  return -1;
}

// Assembles and returns the error text ("" when it assembles).
inline std::string asm_error(const std::string& src) {
  try {
    asm_mini(src);
  } catch (const AsmError& e) {
    return e.what();
  }
  return "";
}

}  // namespace lpu::test
