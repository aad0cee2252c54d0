// libFuzzer target: the server's OPEN request up to the point of allocating the session
// (lpu::net::plan_open, what `lpu serve` runs for an OPEN): the DeviceSpec decoder, the
// server's policy (preset names only, its own rack, chips per session), the preset with its
// `section.key=value` overrides, and the device's memory computed from the parameters against
// the session limit (lpu::rt::device_memory). A ProtocolError is the expected outcome for bad
// input; anything else - another exception, a crash, a sanitizer report, an allocation over
// libFuzzer's -malloc_limit_mb - is a bug: nothing here may allocate in proportion to a
// parameter, whatever the preset asks for.
//
// The first byte picks what the rest is:
//   0  an OPEN payload as it comes off the wire
//   1  text: the preset name on the first line, one override per further line; byte 1 of the
//      rest (before the text) picks chips (1..16 in its low bits), timing-only (bit 4) and the
//      server's rack (bit 5). Encoded as a client would, then handled as above: this reaches
//      the preset reader and the memory estimate with far fewer wasted inputs than mode 0.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "lpu/runtime/net.hpp"
#include "lpu/runtime/protocol.hpp"

namespace {

using namespace lpu;

const net::ServerOptions& server_options() {
  static const net::ServerOptions o = [] {
    net::ServerOptions s;
    s.default_preset = "mini";
    s.rack = LPU_FUZZ_CONFIG_DIR "/pair.toml";
    return s;  // the default limits: 16 chips, 2 GiB per session
  }();
  return o;
}

void open(std::span<const std::uint8_t> payload) {
  try {
    auto plan = net::plan_open(payload, server_options());
    if (!(plan.memory.bytes > 0)) __builtin_trap();  // every device costs something
  } catch (const net::ProtocolError&) {
  }
}

std::vector<std::uint8_t> from_text(std::span<const std::uint8_t> d) {
  rt::DeviceSpec s;
  if (!d.empty()) {
    s.chips = 1 + (d[0] & 15);
    s.timing_only = d[0] & 16;
    if (d[0] & 32) s.rack = "rack";
    d = d.subspan(1);
  }
  std::string text(d.begin(), d.end());
  std::size_t at = 0;
  bool first = true;
  while (at <= text.size()) {
    auto nl = text.find('\n', at);
    if (nl == std::string::npos) nl = text.size();
    auto line = text.substr(at, nl - at);
    if (first)
      s.preset = line;
    else if (!line.empty())
      s.set.push_back(line);
    first = false;
    at = nl + 1;
  }
  net::Writer w;
  net::put(w, s);
  return std::move(w.buf());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::span<const std::uint8_t> d(data + 1, size - 1);
  if (data[0] % 2 == 0)
    open(d);
  else
    open(from_text(d));
  return 0;
}
