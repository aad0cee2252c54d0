// libFuzzer target: rack program manifests (docs/rack.md, "Programs") on the 8-chip tray
// (configs/tray8.toml), files relative to examples/rack/ so that the seeds copied from there
// find their sources; and the whole input as one per-chip expression (eval_chip_expr), the part
// of a manifest most worth hammering. lpu::Error (ConfigError, AsmError, FormatError) is the
// expected outcome for bad input; any other exception, a crash or a sanitizer report is a bug.
#include <cstdint>
#include <string>

#include "lpu/common/errors.hpp"
#include "lpu/rack/config.hpp"
#include "lpu/rack/program.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const lpu::rack::RackConfig cfg = lpu::rack::load_rack(LPU_FUZZ_SOURCE_DIR "/configs/tray8.toml");
  static const lpu::assembler::Options opt = [] {
    lpu::assembler::Options o;
    o.max_instances = 200000;  // keep single inputs fast
    return o;
  }();
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    (void)lpu::rack::parse_manifest(text, "fuzz.toml", LPU_FUZZ_SOURCE_DIR "/examples/rack", cfg, opt);
  } catch (const lpu::Error&) {
  }
  if (size <= 4096) {
    for (int chip : {0, 5}) {
      try {
        (void)lpu::rack::eval_chip_expr(text, cfg, chip, "fuzz");
      } catch (const lpu::Error&) {
      }
    }
  }
  return 0;
}
