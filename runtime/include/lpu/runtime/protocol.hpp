#pragma once
// The wire protocol of `lpu serve` (docs/protocol.md): frames, their incremental decoder, the
// reassembly of chunked messages, and the payload encodings of every request and reply.
// Pure functions and small state machines, no sockets: the server, the client and the fuzz
// target (fuzz/fuzz_frames.cpp) share them.
//
// Contract: the decoders never crash, never read out of bounds and never allocate more than a
// small multiple of the bytes they were given (counts are checked against the bytes left);
// every problem is an lpu::net::ProtocolError with a code and a message saying what and where.
#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "lpu/common/errors.hpp"
#include "lpu/runtime/device.hpp"

namespace lpu::net {

// ---- Frames -----------------------------------------------------------------------------------
inline constexpr std::array<std::uint8_t, 4> kMagic = {'L', 'P', 'U', 'N'};
inline constexpr std::uint16_t kVersion = 2;  // 2: ChipStats carries weight_bytes_installed
inline constexpr std::size_t kHeaderBytes = 32;
inline constexpr std::uint32_t kMaxFramePayload = 1u << 20;      // 1 MiB: larger messages are chunked
inline constexpr std::uint16_t kFlagMore = 1;                     // another chunk of this message follows
inline constexpr std::uint16_t kReplyBit = 0x8000;

enum class Type : std::uint16_t {
  Open = 1,        // DeviceSpec -> session id + DeviceInfo
  Close = 2,       // -> empty
  LoadProgram = 3, // chips + object bytes -> empty
  LoadTensor = 4,  // TensorLoad + tensor -> empty
  ReadSymbol = 5,  // chip + name -> tensor
  SetReg = 6,      // chip, reg, value -> empty
  Run = 7,         // RunRequest -> RunResult
  Stream = 8,      // Batch -> BatchResult
  Stats = 9,       // -> JSON text
  Ping = 10,       // bytes -> the same bytes (no session needed)
  Status = 11,     // -> server status JSON (no session needed)
  Hello = 12,      // handshake version + token -> handshake version, token required (first request)
  Error = 0x8000,  // reply: u32 code, string message
};
std::string type_name(std::uint16_t t);

enum class Code : std::uint32_t {
  BadFrame = 1,        // bad magic, reserved bits, impossible header: the connection is closed
  BadVersion = 2,      // unsupported protocol version: the connection is closed
  TooLarge = 3,        // frame or message over the limits
  OutOfOrder = 4,      // chunk out of sequence, or a frame interleaved into a chunked message
  UnknownType = 5,
  UnknownSession = 6,  // no such session on this connection
  Malformed = 7,       // payload does not decode
  Limit = 8,           // sessions, memory, in-flight requests
  Timeout = 9,
  ShuttingDown = 10,
  Failed = 11,         // the runtime refused the request (lpu::Error): message says why
  FormatFailed = 12,   // ditto, lpu::FormatError (bad file contents, mismatched tensor)
  Internal = 13,
  Unauthorized = 14,   // no HELLO with the server's token before this request: the connection is closed
};
std::string code_name(Code c);

class ProtocolError : public lpu::Error {
 public:
  ProtocolError(Code c, const std::string& msg) : lpu::Error(msg), code_(c) {}
  Code code() const { return code_; }

 private:
  Code code_;
};

struct Header {
  std::uint16_t version = kVersion;
  std::uint16_t type = 0;
  std::uint32_t request = 0;
  std::uint32_t chunk = 0;
  std::uint64_t session = 0;
  std::uint32_t length = 0;
  std::uint16_t flags = 0;
  bool more() const { return flags & kFlagMore; }
};

void write_header(const Header& h, std::uint8_t* out);  // kHeaderBytes
// Throws ProtocolError BadFrame / BadVersion / TooLarge (length > max_payload).
Header read_header(std::span<const std::uint8_t> bytes, std::uint32_t max_payload = kMaxFramePayload);

// The frames of one message: chunks of at most max_payload bytes (at least one frame).
std::vector<std::vector<std::uint8_t>> encode_message(std::uint16_t type, std::uint32_t request, std::uint64_t session,
                                                      std::span<const std::uint8_t> payload,
                                                      std::uint32_t max_payload = kMaxFramePayload);

// Reassembles messages from frames, one message at a time per connection.
struct Message {
  std::uint16_t type = 0;
  std::uint32_t request = 0;
  std::uint64_t session = 0;
  std::vector<std::uint8_t> payload;
};
class Reassembler {
 public:
  explicit Reassembler(std::size_t max_message) : max_(max_message) {}
  // What one frame produced: a complete message, an error about some request (the partial
  // message it names is dropped), or both (a new message interleaved into a chunked one: the
  // old one is dropped with OutOfOrder, the new one goes on).
  struct Result {
    std::optional<Message> message;
    std::optional<ProtocolError> error;
    std::uint32_t error_request = 0;
    std::uint64_t error_session = 0;
  };
  // Errors: OutOfOrder for a chunk out of sequence (the rest of its message is dropped
  // quietly) or a new message before the last chunk of the current one; TooLarge past
  // max_message (the rest of that message is dropped quietly).
  Result feed(const Header& h, std::span<const std::uint8_t> payload);
  std::size_t buffered() const { return cur_ ? cur_->payload.size() : 0; }
  void reset() { cur_.reset(), skip_.reset(); }
  void set_max(std::size_t max_message) { max_ = max_message; }  // for messages started from now on

 private:
  std::size_t max_;
  std::optional<Message> cur_;
  std::uint32_t next_chunk_ = 0;
  std::optional<std::uint32_t> skip_;  // request whose remaining chunks are dropped
};

// Incremental frame decoder over a byte stream (the fuzz target's entry point; the server
// reads header and payload separately and uses read_header + Reassembler directly).
class FrameDecoder {
 public:
  FrameDecoder(std::uint32_t max_payload, std::size_t max_message) : max_payload_(max_payload), re_(max_message) {}
  // Appends bytes; returns every message completed. A fatal error (BadFrame, BadVersion,
  // TooLarge frame) poisons the decoder: it throws that error from then on.
  std::vector<Message> feed(std::span<const std::uint8_t> bytes, std::vector<ProtocolError>* errors);

 private:
  std::uint32_t max_payload_;
  Reassembler re_;
  std::vector<std::uint8_t> buf_;
  std::optional<Header> hdr_;
  std::optional<ProtocolError> dead_;
};

// ---- Payload encoding (little-endian) ---------------------------------------------------------
class Writer {
 public:
  void u8(std::uint8_t v) { b_.push_back(v); }
  void u16(std::uint16_t v);
  void u32(std::uint32_t v);
  void u64(std::uint64_t v);
  void i32(std::int32_t v) { u32(std::uint32_t(v)); }
  void i64(std::int64_t v) { u64(std::uint64_t(v)); }
  void f64(double v);
  void str(const std::string& s);
  void bytes(std::span<const std::uint8_t> s);  // u64 length + bytes
  std::vector<std::uint8_t>& buf() { return b_; }

 private:
  std::vector<std::uint8_t> b_;
};

class Reader {
 public:
  Reader(std::span<const std::uint8_t> b, std::string what) : b_(b), what_(std::move(what)) {}
  std::uint8_t u8();
  std::uint16_t u16();
  std::uint32_t u32();
  std::uint64_t u64();
  std::int32_t i32() { return std::int32_t(u32()); }
  std::int64_t i64() { return std::int64_t(u64()); }
  double f64();
  std::string str(std::size_t max = 1 << 20);
  std::vector<std::uint8_t> bytes();
  // A count of items of at least `min_item_bytes` each: checked against the bytes left.
  std::size_t count(std::size_t min_item_bytes, const char* field);
  void end();  // throws if bytes are left
  std::size_t left() const { return b_.size() - pos_; }
  [[noreturn]] void fail(const std::string& msg) const;

 private:
  void need(std::size_t n, const char* field);
  std::span<const std::uint8_t> b_;
  std::size_t pos_ = 0;
  std::string what_;
};

// HELLO (docs/protocol.md, "Authentication"): the first request on a connection to a server
// started with a token. The handshake has its own version, independent of the frame version.
inline constexpr std::uint32_t kHandshakeVersion = 1;
struct Hello {
  std::uint32_t version = kHandshakeVersion;
  std::vector<std::uint8_t> token;  // empty: none
};
struct HelloReply {
  std::uint32_t version = kHandshakeVersion;
  bool token_required = false;
};
void put(Writer& w, const Hello& h);
void put(Writer& w, const HelloReply& h);
Hello get_hello(Reader& r);  // a token of at most 4096 bytes
HelloReply get_hello_reply(Reader& r);

void put(Writer& w, const rt::DeviceSpec& s);
void put(Writer& w, const rt::DeviceInfo& s);
void put(Writer& w, const io::Tensor& t);
void put(Writer& w, const rt::TensorLoad& t);
void put(Writer& w, const rt::RunRequest& r);
void put(Writer& w, const rt::RunResult& r);
void put(Writer& w, const rt::StreamSpec& s);
void put(Writer& w, const rt::Batch& b);
void put(Writer& w, const rt::BatchResult& b);
void put(Writer& w, const model::ChipStats& s);

rt::DeviceSpec get_spec(Reader& r);
rt::DeviceInfo get_info(Reader& r);
io::Tensor get_tensor(Reader& r);
rt::TensorLoad get_tensor_load(Reader& r);
rt::RunRequest get_run_request(Reader& r);
rt::RunResult get_run_result(Reader& r);
rt::StreamSpec get_stream_spec(Reader& r);
rt::Batch get_batch(Reader& r);
rt::BatchResult get_batch_result(Reader& r);
model::ChipStats get_chip_stats(Reader& r);

// Decodes the payload of a request of `type` to check it (fuzzing): throws ProtocolError.
void check_request_payload(std::uint16_t type, std::span<const std::uint8_t> payload);

}  // namespace lpu::net
