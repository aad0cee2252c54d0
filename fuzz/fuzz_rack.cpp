// libFuzzer target: rack files (docs/rack.md, configs/*rack*.toml, pair.toml, tray8.toml), with
// --rack-set overrides. The input is a rack file, then optionally a line "%%" and one override
// (key=value) per line. Presets are looked up in configs/. An accepted rack must also give its
// figures (lpu info --rack). lpu::Error (ConfigError) is the expected outcome for bad input; any
// other exception, a crash or a sanitizer report is a bug.
#include <cstdint>
#include <string>
#include <vector>

#include "lpu/common/errors.hpp"
#include "lpu/rack/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> sets;
  if (auto sep = text.find("\n%%\n"); sep != std::string::npos) {
    std::string rest = text.substr(sep + 4);
    text.resize(sep + 1);
    for (std::size_t b = 0; b < rest.size();) {
      auto e = rest.find('\n', b);
      if (e == std::string::npos) e = rest.size();
      if (e > b) sets.push_back(rest.substr(b, e - b));
      b = e + 1;
    }
  }
  try {
    if (!sets.empty()) text = lpu::rack::apply_rack_overrides(text, sets, "fuzz.toml");
    const auto cfg = lpu::rack::parse_rack(text, "fuzz.toml", LPU_FUZZ_SOURCE_DIR "/configs");
    (void)lpu::rack::info_text(cfg, false);
    (void)lpu::rack::info_text(cfg, true);
  } catch (const lpu::Error&) {
  }
  return 0;
}
