// libFuzzer target: the `lpu serve` protocol decoders (docs/protocol.md). A ProtocolError (or
// another lpu::Error from a payload that decodes but describes a bad object) is the expected
// outcome for bad input; any other exception, a crash, a sanitizer report or an allocation
// beyond the input's size is a bug.
//
// The first byte picks what the rest is:
//   0  a byte stream from a peer, fed to FrameDecoder in two pieces (split at byte 1), every
//      reassembled message then decoded as a request
//   1  byte 1 = request type, the rest its payload: decoded; and framed in 64-byte chunks,
//      which must reassemble to exactly the same message
//   2  byte 1 = reply kind, the rest a reply payload: decoded as the client does
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <vector>

#include "lpu/common/errors.hpp"
#include "lpu/runtime/protocol.hpp"

namespace {

using namespace lpu::net;

void decode_request(std::uint16_t type, std::span<const std::uint8_t> payload) {
  try {
    check_request_payload(type, payload);
  } catch (const lpu::Error&) {
  }
}

void stream_mode(std::span<const std::uint8_t> d) {
  if (d.empty()) return;
  const std::size_t split = std::min<std::size_t>(d[0], d.size() - 1);
  d = d.subspan(1);
  FrameDecoder dec(4096, 1 << 16);
  std::vector<ProtocolError> errors;
  try {
    for (auto part : {d.subspan(0, split), d.subspan(split)})
      for (auto& m : dec.feed(part, &errors)) decode_request(m.type, m.payload);
  } catch (const ProtocolError&) {
  }
}

void payload_mode(std::span<const std::uint8_t> d) {
  if (d.empty()) return;
  const auto type = std::uint16_t(d[0] % 13);  // request types 0..12 (HELLO is 12)
  auto payload = d.subspan(1);
  decode_request(type, payload);
  // Framing round trip with small chunks.
  auto frames = encode_message(type, 77, 0x1234, payload, 64);
  FrameDecoder dec(64, 1 << 16);
  std::vector<Message> got;
  std::vector<ProtocolError> errors;
  for (const auto& f : frames)
    for (auto& m : dec.feed(f, &errors)) got.push_back(std::move(m));
  if (!errors.empty() || got.size() != 1 || got[0].type != type || got[0].request != 77 || got[0].session != 0x1234 ||
      !std::equal(got[0].payload.begin(), got[0].payload.end(), payload.begin(), payload.end())) {
    std::fprintf(stderr, "framing round trip failed: %zu messages, %zu errors\n", got.size(), errors.size());
    std::abort();
  }
}

void reply_mode(std::span<const std::uint8_t> d) {
  if (d.empty()) return;
  const int kind = d[0] % 6;
  Reader r(d.subspan(1), "reply");
  try {
    switch (kind) {
      case 0: get_info(r); break;
      case 1: get_tensor(r); break;
      case 2: get_run_result(r); break;
      case 3: get_batch_result(r); break;
      case 4: get_chip_stats(r); break;
      default: r.u32(); r.str(); break;  // ERROR
    }
    r.end();
  } catch (const lpu::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::span<const std::uint8_t> d(data + 1, size - 1);
  switch (data[0] % 3) {
    case 0: stream_mode(d); break;
    case 1: payload_mode(d); break;
    default: reply_mode(d); break;
  }
  return 0;
}
