// The wire protocol (docs/protocol.md): frames, reassembly, payload codecs.
#include "lpu/runtime/protocol.hpp"

#include <fmt/format.h>

#include <bit>
#include <cstring>

namespace lpu::net {

std::string type_name(std::uint16_t t) {
  const bool reply = (t & kReplyBit) && t != std::uint16_t(Type::Error);
  const auto base = std::uint16_t(reply ? t & ~kReplyBit : t);
  std::string n;
  switch (Type(base)) {
    case Type::Open: n = "OPEN"; break;
    case Type::Close: n = "CLOSE"; break;
    case Type::LoadProgram: n = "LOAD_PROGRAM"; break;
    case Type::LoadTensor: n = "LOAD_TENSOR"; break;
    case Type::ReadSymbol: n = "READ_SYMBOL"; break;
    case Type::SetReg: n = "SET_REG"; break;
    case Type::Run: n = "RUN"; break;
    case Type::Stream: n = "STREAM"; break;
    case Type::Stats: n = "STATS"; break;
    case Type::Ping: n = "PING"; break;
    case Type::Status: n = "STATUS"; break;
    case Type::Hello: n = "HELLO"; break;
    case Type::Error: return "ERROR";
    default: return fmt::format("type {:#06x}", t);
  }
  return reply ? n + " reply" : n;
}

std::string code_name(Code c) {
  switch (c) {
    case Code::BadFrame: return "BAD_FRAME";
    case Code::BadVersion: return "BAD_VERSION";
    case Code::TooLarge: return "TOO_LARGE";
    case Code::OutOfOrder: return "OUT_OF_ORDER";
    case Code::UnknownType: return "UNKNOWN_TYPE";
    case Code::UnknownSession: return "UNKNOWN_SESSION";
    case Code::Malformed: return "MALFORMED";
    case Code::Limit: return "LIMIT";
    case Code::Timeout: return "TIMEOUT";
    case Code::ShuttingDown: return "SHUTTING_DOWN";
    case Code::Failed: return "FAILED";
    case Code::FormatFailed: return "FORMAT_FAILED";
    case Code::Internal: return "INTERNAL";
    case Code::Unauthorized: return "UNAUTHORIZED";
  }
  return fmt::format("code {}", std::uint32_t(c));
}

namespace {
template <class T>
void put_le(std::uint8_t* p, T v) {
  for (std::size_t i = 0; i < sizeof(T); ++i) p[i] = std::uint8_t(std::uint64_t(v) >> (8 * i));
}
template <class T>
T get_le(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) v |= std::uint64_t(p[i]) << (8 * i);
  return T(v);
}
}  // namespace

// ---- Frames -----------------------------------------------------------------------------------
// 0 magic[4] | 4 version u16 | 6 type u16 | 8 request u32 | 12 chunk u32 | 16 session u64 |
// 24 length u32 | 28 flags u16 | 30 reserved u16 (0)

void write_header(const Header& h, std::uint8_t* o) {
  std::memcpy(o, kMagic.data(), 4);
  put_le(o + 4, h.version);
  put_le(o + 6, h.type);
  put_le(o + 8, h.request);
  put_le(o + 12, h.chunk);
  put_le(o + 16, h.session);
  put_le(o + 24, h.length);
  put_le(o + 28, h.flags);
  put_le(o + 30, std::uint16_t(0));
}

Header read_header(std::span<const std::uint8_t> b, std::uint32_t max_payload) {
  if (b.size() < kHeaderBytes)
    throw ProtocolError(Code::BadFrame, fmt::format("frame header: {} bytes, a header has {}", b.size(), kHeaderBytes));
  if (std::memcmp(b.data(), kMagic.data(), 4) != 0)
    throw ProtocolError(Code::BadFrame, fmt::format("frame header: bad magic {:02x} {:02x} {:02x} {:02x} (expected 'LPUN')", b[0],
                                                    b[1], b[2], b[3]));
  Header h;
  h.version = get_le<std::uint16_t>(b.data() + 4);
  if (h.version != kVersion)
    throw ProtocolError(Code::BadVersion, fmt::format("protocol version {} is not supported (this side speaks version {})",
                                                      h.version, kVersion));
  h.type = get_le<std::uint16_t>(b.data() + 6);
  h.request = get_le<std::uint32_t>(b.data() + 8);
  h.chunk = get_le<std::uint32_t>(b.data() + 12);
  h.session = get_le<std::uint64_t>(b.data() + 16);
  h.length = get_le<std::uint32_t>(b.data() + 24);
  h.flags = get_le<std::uint16_t>(b.data() + 28);
  const auto reserved = get_le<std::uint16_t>(b.data() + 30);
  if ((h.flags & ~kFlagMore) != 0 || reserved != 0)
    throw ProtocolError(Code::BadFrame, fmt::format("frame header: unknown flags {:#06x} / reserved {:#06x} (must be 0)",
                                                    h.flags & ~kFlagMore, reserved));
  if (h.length > max_payload)
    throw ProtocolError(Code::TooLarge, fmt::format("frame of request {}: payload of {} bytes, the limit is {} (send larger "
                                                    "messages in chunks)",
                                                    h.request, h.length, max_payload));
  return h;
}

std::vector<std::vector<std::uint8_t>> encode_message(std::uint16_t type, std::uint32_t request, std::uint64_t session,
                                                      std::span<const std::uint8_t> payload, std::uint32_t max_payload) {
  std::vector<std::vector<std::uint8_t>> frames;
  std::size_t off = 0;
  std::uint32_t chunk = 0;
  do {
    const std::size_t n = std::min<std::size_t>(payload.size() - off, max_payload);
    std::vector<std::uint8_t> f(kHeaderBytes + n);
    Header h;
    h.type = type;
    h.request = request;
    h.chunk = chunk++;
    h.session = session;
    h.length = std::uint32_t(n);
    h.flags = off + n < payload.size() ? kFlagMore : 0;
    write_header(h, f.data());
    if (n) std::memcpy(f.data() + kHeaderBytes, payload.data() + off, n);
    frames.push_back(std::move(f));
    off += n;
  } while (off < payload.size());
  return frames;
}

Reassembler::Result Reassembler::feed(const Header& h, std::span<const std::uint8_t> payload) {
  Result res;
  auto error = [&](Code c, std::uint32_t req, std::uint64_t session, const std::string& msg) {
    res.error = ProtocolError(c, msg);
    res.error_request = req;
    res.error_session = session;
  };
  if (skip_) {
    if (h.request == *skip_ && h.chunk != 0) {
      if (!h.more()) skip_.reset();
      return res;
    }
    skip_.reset();
  }
  if (cur_) {
    const bool same = h.request == cur_->request && h.type == cur_->type && h.session == cur_->session;
    if (same && h.chunk == next_chunk_) {
      if (cur_->payload.size() + payload.size() > max_) {
        const auto req = cur_->request;
        const auto ses = cur_->session;
        const auto have = cur_->payload.size() + payload.size();
        cur_.reset();
        if (h.more()) skip_ = req;
        error(Code::TooLarge, req, ses,
              fmt::format("request {}: message of more than {} bytes ({} so far); the limit is {}", req, max_, have, max_));
        return res;
      }
      cur_->payload.insert(cur_->payload.end(), payload.begin(), payload.end());
      ++next_chunk_;
      if (!h.more()) {
        res.message = std::move(*cur_);
        cur_.reset();
      }
      return res;
    }
    const auto req = cur_->request;
    const auto ses = cur_->session;
    const auto expected = next_chunk_;
    cur_.reset();
    if (h.chunk != 0) {
      // A chunk out of sequence: drop the message and the rest of the stray chunk's message.
      if (h.more()) skip_ = h.request;
      error(Code::OutOfOrder, req, ses,
            fmt::format("request {}: chunk {} of request {} arrived where chunk {} was expected; the partial message is dropped",
                        req, h.chunk, h.request, expected));
      return res;
    }
    // A new message before the end of the current one: drop the current one, take the new.
    error(Code::OutOfOrder, req, ses,
          fmt::format("request {}: a new message (request {}) began before its chunk {}; the partial message is dropped", req,
                      h.request, expected));
  } else if (h.chunk != 0) {
    if (h.more()) skip_ = h.request;
    error(Code::OutOfOrder, h.request, h.session,
          fmt::format("request {}: chunk {} without the chunks before it; dropped", h.request, h.chunk));
    return res;
  }
  if (payload.size() > max_) {
    if (h.more()) skip_ = h.request;
    error(Code::TooLarge, h.request, h.session, fmt::format("request {}: message larger than the limit of {} bytes", h.request, max_));
    return res;
  }
  Message m{h.type, h.request, h.session, {}};
  m.payload.assign(payload.begin(), payload.end());
  if (!h.more()) {
    res.message = std::move(m);
  } else {
    cur_ = std::move(m);
    next_chunk_ = 1;
  }
  return res;
}

std::vector<Message> FrameDecoder::feed(std::span<const std::uint8_t> bytes, std::vector<ProtocolError>* errors) {
  if (dead_) throw *dead_;
  std::vector<Message> out;
  buf_.insert(buf_.end(), bytes.begin(), bytes.end());
  std::size_t pos = 0;
  try {
    for (;;) {
      if (!hdr_) {
        if (buf_.size() - pos < kHeaderBytes) break;
        hdr_ = read_header(std::span(buf_).subspan(pos, kHeaderBytes), max_payload_);
        pos += kHeaderBytes;
      }
      if (buf_.size() - pos < hdr_->length) break;
      auto h = *hdr_;
      hdr_.reset();
      auto payload = std::span(buf_).subspan(pos, h.length);
      pos += h.length;
      auto r = re_.feed(h, payload);
      if (r.error && errors) errors->push_back(*r.error);
      if (r.message) out.push_back(std::move(*r.message));
    }
  } catch (const ProtocolError& e) {
    dead_ = e;
    buf_.clear();
    throw;
  }
  buf_.erase(buf_.begin(), buf_.begin() + std::ptrdiff_t(pos));
  return out;
}

// ---- Writer / Reader ----------------------------------------------------------------------------

void Writer::u16(std::uint16_t v) {
  std::uint8_t t[2];
  put_le(t, v);
  b_.insert(b_.end(), t, t + 2);
}
void Writer::u32(std::uint32_t v) {
  std::uint8_t t[4];
  put_le(t, v);
  b_.insert(b_.end(), t, t + 4);
}
void Writer::u64(std::uint64_t v) {
  std::uint8_t t[8];
  put_le(t, v);
  b_.insert(b_.end(), t, t + 8);
}
void Writer::f64(double v) { u64(std::bit_cast<std::uint64_t>(v)); }
void Writer::str(const std::string& s) {
  u32(std::uint32_t(s.size()));
  b_.insert(b_.end(), s.begin(), s.end());
}
void Writer::bytes(std::span<const std::uint8_t> s) {
  u64(s.size());
  b_.insert(b_.end(), s.begin(), s.end());
}

void Reader::fail(const std::string& msg) const {
  throw ProtocolError(Code::Malformed, fmt::format("{}: {} (at payload byte {})", what_, msg, pos_));
}
void Reader::need(std::size_t n, const char* field) {
  if (b_.size() - pos_ < n)
    fail(fmt::format("truncated: {} needs {} bytes, {} left", field, n, b_.size() - pos_));
}
std::uint8_t Reader::u8() {
  need(1, "u8");
  return b_[pos_++];
}
std::uint16_t Reader::u16() {
  need(2, "u16");
  auto v = get_le<std::uint16_t>(b_.data() + pos_);
  pos_ += 2;
  return v;
}
std::uint32_t Reader::u32() {
  need(4, "u32");
  auto v = get_le<std::uint32_t>(b_.data() + pos_);
  pos_ += 4;
  return v;
}
std::uint64_t Reader::u64() {
  need(8, "u64");
  auto v = get_le<std::uint64_t>(b_.data() + pos_);
  pos_ += 8;
  return v;
}
double Reader::f64() { return std::bit_cast<double>(u64()); }
std::string Reader::str(std::size_t max) {
  const auto n = u32();
  if (n > max) fail(fmt::format("string of {} bytes, the limit is {}", n, max));
  need(n, "string");
  std::string s(reinterpret_cast<const char*>(b_.data() + pos_), n);
  pos_ += n;
  return s;
}
std::vector<std::uint8_t> Reader::bytes() {
  const auto n = u64();
  if (n > b_.size() - pos_) fail(fmt::format("truncated: {} bytes announced, {} left", n, b_.size() - pos_));
  std::vector<std::uint8_t> v(b_.begin() + std::ptrdiff_t(pos_), b_.begin() + std::ptrdiff_t(pos_ + n));
  pos_ += std::size_t(n);
  return v;
}
std::size_t Reader::count(std::size_t min_item_bytes, const char* field) {
  const auto n = u32();
  if (min_item_bytes == 0) min_item_bytes = 1;
  if (n > (b_.size() - pos_) / min_item_bytes)
    fail(fmt::format("{}: {} items announced, only {} bytes left", field, n, b_.size() - pos_));
  return n;
}
void Reader::end() {
  if (pos_ != b_.size()) fail(fmt::format("{} unexpected trailing bytes", b_.size() - pos_));
}

// ---- Payloads ---------------------------------------------------------------------------------

void put(Writer& w, const rt::DeviceSpec& s) {
  w.str(s.preset);
  w.u32(std::uint32_t(s.set.size()));
  for (const auto& x : s.set) w.str(x);
  w.i32(s.chips);
  w.str(s.rack);
  w.u8(s.timing_only);
  w.u8(s.dma_bandwidth_bytes_per_s.has_value());
  w.f64(s.dma_bandwidth_bytes_per_s.value_or(0));
  w.u8(s.dma_latency_s.has_value());
  w.f64(s.dma_latency_s.value_or(0));
}
rt::DeviceSpec get_spec(Reader& r) {
  rt::DeviceSpec s;
  s.preset = r.str(4096);
  s.set.resize(r.count(4, "overrides"));
  for (auto& x : s.set) x = r.str(4096);
  s.chips = r.i32();
  s.rack = r.str(4096);
  s.timing_only = r.u8() != 0;
  const bool hb = r.u8() != 0;
  const double bw = r.f64();
  const bool hl = r.u8() != 0;
  const double lat = r.f64();
  if (hb) s.dma_bandwidth_bytes_per_s = bw;
  if (hl) s.dma_latency_s = lat;
  return s;
}

void put(Writer& w, const rt::DeviceInfo& s) {
  w.str(s.kind);
  w.str(s.preset);
  w.i32(s.chips);
  w.i32(s.vector_bytes);
  w.f64(s.clock_hz);
  w.i32(s.dma_channels);
  w.f64(s.dma_bandwidth_bytes_per_s);
  w.f64(s.dma_latency_s);
  w.u8(s.timing_only);
}
rt::DeviceInfo get_info(Reader& r) {
  rt::DeviceInfo s;
  s.kind = r.str(64);
  s.preset = r.str(4096);
  s.chips = r.i32();
  s.vector_bytes = r.i32();
  s.clock_hz = r.f64();
  s.dma_channels = r.i32();
  s.dma_bandwidth_bytes_per_s = r.f64();
  s.dma_latency_s = r.f64();
  s.timing_only = r.u8() != 0;
  return s;
}

void put(Writer& w, const io::Tensor& t) {
  w.u8(std::uint8_t(t.type));
  w.u32(std::uint32_t(t.shape.size()));
  for (auto d : t.shape) w.i64(d);
  w.bytes(t.data);
}
io::Tensor get_tensor(Reader& r) {
  io::Tensor t;
  const auto ty = r.u8();
  if (ty > std::uint8_t(io::ElemType::Bool)) r.fail(fmt::format("unknown element type {}", ty));
  t.type = io::ElemType(ty);
  const auto rank = r.count(8, "tensor shape");
  if (rank > 32) r.fail(fmt::format("tensor of rank {}, at most 32", rank));
  t.shape.resize(rank);
  std::uint64_t numel = 1;
  for (auto& d : t.shape) {
    d = r.i64();
    if (d < 0 || d > (std::int64_t(1) << 40)) r.fail(fmt::format("tensor dimension {} out of range", d));
    if (d != 0 && numel > (std::uint64_t(1) << 48) / std::uint64_t(d)) r.fail("tensor shape overflows");
    numel *= std::uint64_t(d);
  }
  t.data = r.bytes();
  if (numel * std::uint64_t(io::elem_bytes(t.type)) != t.data.size())
    r.fail(fmt::format("tensor data of {} bytes, its shape and type need {}", t.data.size(),
                       numel * std::uint64_t(io::elem_bytes(t.type))));
  return t;
}

void put(Writer& w, const rt::TensorLoad& t) {
  w.i32(t.chip);
  w.str(t.symbol);
  w.str(t.origin);
  w.u8(t.convert);
}
rt::TensorLoad get_tensor_load(Reader& r) {
  rt::TensorLoad t;
  t.chip = r.i32();
  t.symbol = r.str(4096);
  t.origin = r.str(8192);
  t.convert = r.u8() != 0;
  return t;
}

namespace {
void put_vectors(Writer& w, const std::map<int, std::vector<rt::Bytes>>& m) {
  w.u32(std::uint32_t(m.size()));
  for (const auto& [ch, vs] : m) {
    w.i32(ch);
    w.u32(std::uint32_t(vs.size()));
    for (const auto& v : vs) w.bytes(v);
  }
}
std::map<int, std::vector<rt::Bytes>> get_vectors(Reader& r) {
  std::map<int, std::vector<rt::Bytes>> m;
  const auto n = r.count(8, "channels");
  for (std::size_t i = 0; i < n; ++i) {
    const int ch = r.i32();
    if (m.count(ch)) r.fail(fmt::format("channel {} twice", ch));
    auto& vs = m[ch];
    vs.resize(r.count(8, "vectors"));
    for (auto& v : vs) v = r.bytes();
  }
  return m;
}
}  // namespace

void put(Writer& w, const rt::RunRequest& q) {
  w.i32(q.chip);
  w.u32(std::uint32_t(q.regs.size()));
  for (auto [k, v] : q.regs) {
    w.i32(k);
    w.u32(v);
  }
  put_vectors(w, q.dma_in);
}
rt::RunRequest get_run_request(Reader& r) {
  rt::RunRequest q;
  q.chip = r.i32();
  q.regs.resize(r.count(8, "registers"));
  for (auto& [k, v] : q.regs) {
    k = r.i32();
    v = r.u32();
  }
  q.dma_in = get_vectors(r);
  return q;
}

void put(Writer& w, const model::ChipStats& s) {
  w.i64(s.cycles);
  w.f64(s.clock_hz);
  w.u32(std::uint32_t(s.units.size()));
  for (const auto& u : s.units) {
    w.i64(u.instructions);
    w.i64(u.busy_cycles);
    w.i32(u.queues);
  }
  w.i64(s.sram_bytes_read);
  w.i64(s.sram_bytes_written);
  w.i64(s.sram_ecc_corrected);
  w.i64(s.weight_bytes_installed);
  w.u32(std::uint32_t(s.mxm_macs.size()));
  for (const auto& [k, v] : s.mxm_macs) {
    w.str(k);
    w.i64(v);
  }
  w.i64(s.mxm_passes);
  w.i32(s.mxm_planes);
  w.i64(s.vxm_element_ops);
  w.i64(s.link_bytes_sent);
  w.i64(s.link_bytes_received);
  w.i64(s.dma_bytes_in);
  w.i64(s.dma_bytes_out);
}
model::ChipStats get_chip_stats(Reader& r) {
  model::ChipStats s;
  s.cycles = r.i64();
  s.clock_hz = r.f64();
  const auto nu = r.count(20, "units");
  if (nu != s.units.size()) r.fail(fmt::format("{} unit kinds, this side has {}", nu, s.units.size()));
  for (auto& u : s.units) {
    u.instructions = r.i64();
    u.busy_cycles = r.i64();
    u.queues = r.i32();
  }
  s.sram_bytes_read = r.i64();
  s.sram_bytes_written = r.i64();
  s.sram_ecc_corrected = r.i64();
  s.weight_bytes_installed = r.i64();
  const auto nm = r.count(12, "mxm_macs");
  for (std::size_t i = 0; i < nm; ++i) {
    auto k = r.str(64);
    s.mxm_macs[k] = r.i64();
  }
  s.mxm_passes = r.i64();
  s.mxm_planes = r.i32();
  s.vxm_element_ops = r.i64();
  s.link_bytes_sent = r.i64();
  s.link_bytes_received = r.i64();
  s.dma_bytes_in = r.i64();
  s.dma_bytes_out = r.i64();
  return s;
}

void put(Writer& w, const rt::RunResult& q) {
  put_vectors(w, q.dma_out);
  put(w, q.stats);
  w.f64(q.seconds);
  w.str(q.json.dump());
  w.str(q.text);
}
rt::RunResult get_run_result(Reader& r) {
  rt::RunResult q;
  q.dma_out = get_vectors(r);
  q.stats = get_chip_stats(r);
  q.seconds = r.f64();
  const auto j = r.str(std::size_t(64) << 20);
  q.json = nlohmann::json::parse(j, nullptr, false);
  if (q.json.is_discarded()) r.fail("statistics are not valid JSON");
  q.text = r.str(std::size_t(64) << 20);
  return q;
}

void put(Writer& w, const rt::StreamSpec& s) {
  w.i32(s.in_channel);
  w.i32(s.out_channel);
  w.i32(s.count_reg);
  w.i32(s.vectors_in);
  w.i32(s.vectors_out);
  w.i32(s.max_items);
  w.i32(s.in_chip);
  w.i32(s.out_chip);
}
rt::StreamSpec get_stream_spec(Reader& r) {
  rt::StreamSpec s;
  s.in_channel = r.i32();
  s.out_channel = r.i32();
  s.count_reg = r.i32();
  s.vectors_in = r.i32();
  s.vectors_out = r.i32();
  s.max_items = r.i32();
  s.in_chip = r.i32();
  s.out_chip = r.i32();
  return s;
}

void put(Writer& w, const rt::Batch& b) {
  put(w, b.spec);
  w.u32(std::uint32_t(b.items.size()));
  for (const auto& it : b.items) w.bytes(it);
}
rt::Batch get_batch(Reader& r) {
  rt::Batch b;
  b.spec = get_stream_spec(r);
  b.items.resize(r.count(8, "items"));
  for (auto& it : b.items) it = r.bytes();
  return b;
}

void put(Writer& w, const rt::BatchResult& b) {
  w.f64(b.start_s);
  w.f64(b.end_s);
  w.i64(b.runs);
  w.u32(std::uint32_t(b.items.size()));
  for (const auto& it : b.items) {
    w.bytes(it.output);
    w.i64(it.chip_cycles);
    w.f64(it.latency_s);
    w.f64(it.done_s);
  }
}
rt::BatchResult get_batch_result(Reader& r) {
  rt::BatchResult b;
  b.start_s = r.f64();
  b.end_s = r.f64();
  b.runs = r.i64();
  b.items.resize(r.count(32, "items"));
  for (auto& it : b.items) {
    it.output = r.bytes();
    it.chip_cycles = r.i64();
    it.latency_s = r.f64();
    it.done_s = r.f64();
  }
  return b;
}

void put(Writer& w, const Hello& h) {
  w.u32(h.version);
  w.bytes(h.token);
}
void put(Writer& w, const HelloReply& h) {
  w.u32(h.version);
  w.u8(h.token_required ? 1 : 0);
}
Hello get_hello(Reader& r) {
  Hello h;
  h.version = r.u32();
  if (h.version == 0) r.fail("handshake version 0 does not exist (the first is 1)");
  const auto n = r.u64();
  if (n > 4096) r.fail(fmt::format("a token of {} bytes: at most 4096", n));
  if (n > r.left()) r.fail(fmt::format("token: {} bytes announced, {} left", n, r.left()));
  h.token.reserve(std::size_t(n));
  for (std::uint64_t i = 0; i < n; ++i) h.token.push_back(r.u8());
  return h;
}
HelloReply get_hello_reply(Reader& r) {
  HelloReply h;
  h.version = r.u32();
  const auto b = r.u8();
  if (b > 1) r.fail(fmt::format("token_required {}: must be 0 or 1", b));
  h.token_required = b == 1;
  return h;
}

void check_request_payload(std::uint16_t type, std::span<const std::uint8_t> payload) {
  Reader r(payload, type_name(type));
  switch (Type(type)) {
    case Type::Open: get_spec(r); break;
    case Type::Close: case Type::Stats: case Type::Status: break;
    case Type::LoadProgram: {
      auto n = r.count(4, "chips");
      for (std::size_t i = 0; i < n; ++i) r.i32();
      auto obj = r.bytes();
      obj::read_object(obj, "LOAD_PROGRAM");
      break;
    }
    case Type::LoadTensor: get_tensor_load(r); get_tensor(r); break;
    case Type::ReadSymbol: r.i32(); r.str(4096); break;
    case Type::SetReg: r.i32(); r.i32(); r.u32(); break;
    case Type::Run: get_run_request(r); break;
    case Type::Stream: get_batch(r); break;
    case Type::Ping: return;
    case Type::Hello: get_hello(r); break;
    default: throw ProtocolError(Code::UnknownType, fmt::format("unknown request type {}", type_name(type)));
  }
  r.end();
}

}  // namespace lpu::net
