// libFuzzer target: arbitrary text into the assembler, assembled for the "mini" preset.
// lpu::Error (AsmError, ConfigError, ...) is the expected outcome for bad input; any other
// exception, a crash or a sanitizer report is a bug.
#include <cstdint>
#include <string>

#include "lpu/arch/params.hpp"
#include "lpu/asm/assembler.hpp"
#include "lpu/common/errors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const lpu::ChipParams params = lpu::load_preset("mini");
  // The examples' .npy files resolve, so the seeds copied from examples/ assemble.
  static const lpu::assembler::Options opt = [] {
    lpu::assembler::Options o;
    o.include_dirs = {LPU_FUZZ_EXAMPLES_DIR};
    o.max_instances = 200000;  // keep single inputs fast
    return o;
  }();
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    (void)lpu::assembler::assemble_string(text, "fuzz.lpa", params, opt);
  } catch (const lpu::Error&) {
  }
  return 0;
}
