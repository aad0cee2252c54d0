// libFuzzer target: chip presets (configs/*.toml; README, "Presets") with --set overrides. The input
// is a preset file, then optionally a line "%%" and one override (section.key=value) per line.
// An accepted preset must also give its derived peaks and floorplan (lpu info). lpu::Error
// (ConfigError) is the expected outcome for bad input; any other exception, a crash or a
// sanitizer report is a bug.
#include <cstdint>
#include <string>
#include <vector>

#include "lpu/arch/layout.hpp"
#include "lpu/arch/params.hpp"
#include "lpu/common/errors.hpp"

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
    const auto p = lpu::parse_preset(text, "fuzz.toml", sets);
    (void)lpu::peaks(p);
    const lpu::Layout layout(p);
    (void)layout.queues().size();
  } catch (const lpu::Error&) {
  }
  return 0;
}
