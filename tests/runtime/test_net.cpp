// The server and the remote backend over loopback: identical results to the local backend,
// isolation, bad frames, disconnects, slow clients, limits, chunking and shutdown.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <fstream>
#include <sstream>

#include "net_helpers.hpp"

using namespace lpu;
using namespace lpu::test;

namespace {

rt::DeviceSpec mini() {
  rt::DeviceSpec s;
  s.preset = "mini";
  return s;
}

rt::Batch batch_of(const std::vector<std::vector<std::uint8_t>>& xs) {
  rt::Batch b;
  b.items = xs;
  return b;
}

// Streams `n` random inputs in batches and checks every result; returns the number wrong.
int stream_and_check(rt::Device& d, const Weights& w, std::uint64_t seed, int n, int per_batch) {
  std::mt19937_64 g(seed);
  int wrong = 0;
  for (int i = 0; i < n; i += per_batch) {
    std::vector<std::vector<std::uint8_t>> xs;
    for (int k = 0; k < per_batch && i + k < n; ++k) xs.push_back(random_vector(g));
    auto r = d.stream(batch_of(xs));
    if (r.items.size() != xs.size()) return n;
    for (std::size_t k = 0; k < xs.size(); ++k) wrong += r.items[k].output != axpb(xs[k], w);
  }
  return wrong;
}

}  // namespace

TEST_CASE("remote: identical results, statistics and errors locally and remotely") {
  TestServer server;
  auto local = rt::open_local(mini());
  auto remote = net::open_remote(server.addr(), mini());
  CHECK(local->info() == remote->info());
  auto w = random_weights(42);
  std::mt19937_64 g(3);
  std::vector<std::vector<std::uint8_t>> xs;
  for (int i = 0; i < 64; ++i) xs.push_back(random_vector(g));
  rt::Batch b = batch_of(xs);
  b.spec.max_items = 20;
  for (auto* d : {local.get(), remote.get()}) {
    d->load_program(stream_program());
    load_axpb(*d, w);
  }
  auto rl = local->stream(b);
  auto rr = remote->stream(b);
  CHECK(rl == rr);
  for (std::size_t i = 0; i < xs.size(); ++i) CHECK(rr.items[i].output == axpb(xs[i], w));
  // Asynchronous submissions: several batches in flight, results in order.
  std::vector<std::future<rt::BatchResult>> fl, fr;
  for (int k = 0; k < 5; ++k) {
    fl.push_back(local->submit(b));
    fr.push_back(remote->submit(b));
  }
  for (int k = 0; k < 5; ++k) CHECK(fl[std::size_t(k)].get() == fr[std::size_t(k)].get());
  CHECK(local->read_symbol(0, "w").data == remote->read_symbol(0, "w").data);
  rt::RunRequest q;
  q.regs = {{1, 1}};
  q.dma_in[0] = {xs[0], xs[1]};
  auto ql = local->run(q), qr = remote->run(q);
  CHECK(ql.dma_out == qr.dma_out);
  CHECK(ql.stats.cycles == qr.stats.cycles);
  CHECK(deterministic(ql.json) == deterministic(qr.json));
  CHECK(deterministic(local->stats()) == deterministic(remote->stats()));
  // Errors: the same message and type on both sides.
  io::Tensor f32{io::ElemType::F32, {32}, std::vector<std::uint8_t>(128, 0)};
  std::string el, er;
  try {
    local->load_tensor({0, "w", "w.npy"}, f32);
  } catch (const FormatError& e) {
    el = e.what();
  }
  try {
    remote->load_tensor({0, "w", "w.npy"}, f32);
  } catch (const FormatError& e) {
    er = e.what();
  }
  CHECK_FALSE(el.empty());
  CHECK(el == er);
  rt::RunRequest chip5;
  chip5.chip = 5;
  CHECK(error_of([&] { local->run(chip5); }) == error_of([&] { remote->run(chip5); }));
  auto e1 = error_of([&] { local->stream(batch_of({std::vector<std::uint8_t>(40)})); });
  CHECK(e1 == error_of([&] { remote->stream(batch_of({std::vector<std::uint8_t>(40)})); }));
  CHECK_FALSE(e1.empty());
  // The remote device still works after its errors.
  CHECK(stream_and_check(*remote, w, 9, 30, 10) == 0);
}

TEST_CASE("remote: lpu run --remote writes the same files as a local run") {
  TestServer server;
  TempDir dir;
  auto obj = dir / "s.lpo";
  obj::save_object(stream_program(), obj);
  auto w = random_weights(4);
  io::save_npy(i8_tensor({32}, w.w), dir / "w.npy");
  io::save_npy(i8_tensor({32}, w.b), dir / "b.npy");
  std::mt19937_64 g(8);
  io::Tensor x{io::ElemType::U8, {6, 32}, {}};
  for (int i = 0; i < 6; ++i) {
    auto v = random_vector(g);
    x.data.insert(x.data.end(), v.begin(), v.end());
  }
  io::save_npy(x, dir / "x.npy");
  auto files = [&](const std::string& tag) {
    rt::RunFiles f;
    f.program = obj;
    f.inputs = {"w=" + (dir / "w.npy"), "b=" + (dir / "b.npy")};
    f.regs = {"r1=5"};
    f.dma_in = {"0=" + (dir / "x.npy")};
    f.dma_out = {"1=" + (dir / ("y_" + tag + ".npy"))};
    f.outputs = {"b=" + (dir / ("b_" + tag + ".npy"))};
    f.stats = dir / ("stats_" + tag + ".json");
    return f;
  };
  auto dl = rt::open_local(rt::spec_for_program(stream_program(), "", {}, false));
  std::ostringstream ol, orr;
  CHECK(rt::run_files(*dl, files("local"), ol) == 0);
  net::RemoteRunOptions ro;
  ro.address = server.addr();
  ro.program = obj;
  ro.files = files("remote");
  CHECK(net::run_remote(ro, orr) == 0);
  CHECK(io::read_file_bytes(dir / "y_local.npy") == io::read_file_bytes(dir / "y_remote.npy"));
  CHECK(io::read_file_bytes(dir / "b_local.npy") == io::read_file_bytes(dir / "b_remote.npy"));
  auto jl = nlohmann::json::parse(std::ifstream(dir / "stats_local.json"));
  auto jr = nlohmann::json::parse(std::ifstream(dir / "stats_remote.json"));
  CHECK(deterministic(jl) == deterministic(jr));
  CHECK(contains(orr.str(), "cycles"));
  // Errors come back as errors.
  ro.files.inputs = {"nosuch=" + (dir / "w.npy")};
  CHECK(contains(error_of([&] { net::run_remote(ro, orr); }), "no symbol 'nosuch'"));
  ro.address = "127.0.0.1:1";
  CHECK(contains(error_of([&] { net::run_remote(ro, orr); }), "cannot connect to 127.0.0.1:1"));
}

TEST_CASE("remote: 32 concurrent clients, each with its own weights, streaming 200 inputs" * doctest::timeout(300)) {
  auto o = test_server_options();
  TestServer server(o);
  constexpr int kClients = 32, kInputs = 200;
  std::vector<int> wrong(kClients, -1), sessions_seen(kClients, 0);
  std::vector<std::string> errors(kClients);
  std::vector<std::thread> ts;
  for (int c = 0; c < kClients; ++c)
    ts.emplace_back([&, c] {
      try {
        auto d = net::open_remote(server.addr(), mini());
        d->load_program(stream_program());
        auto w = random_weights(1000 + std::uint64_t(c));
        load_axpb(*d, w);
        // Through a Streamer: items from this client coalesced into batches, several in flight.
        rt::Streamer st(*d, {}, {.max_batch = 16, .max_in_flight = 4});
        std::mt19937_64 g{std::uint64_t(c)};
        std::vector<std::pair<std::vector<std::uint8_t>, std::future<rt::ItemResult>>> fs;
        for (int i = 0; i < kInputs; ++i) {
          auto x = random_vector(g);
          auto f = st.submit(x);
          fs.emplace_back(std::move(x), std::move(f));
        }
        int bad = 0;
        for (auto& [x, f] : fs) bad += f.get().output != axpb(x, w);
        wrong[std::size_t(c)] = bad;
        auto j = d->stats();
        sessions_seen[std::size_t(c)] = j["stream"]["items"].get<int>();
      } catch (const std::exception& e) {
        errors[std::size_t(c)] = e.what();
      }
    });
  for (auto& t : ts) t.join();
  for (int c = 0; c < kClients; ++c) {
    INFO("client ", c, ": ", errors[std::size_t(c)]);
    CHECK(errors[std::size_t(c)].empty());
    CHECK(wrong[std::size_t(c)] == 0);
    CHECK(sessions_seen[std::size_t(c)] == kInputs);  // each session saw only its own items
  }
  CHECK(server.eventually([](const nlohmann::json& j) { return j["sessions"] == 0 && j["bytes_held"] == 0; }));
  CHECK(server.srv.status()["errors"] == 0);
}

TEST_CASE("remote: sessions are isolated, unknown sessions are refused") {
  TestServer server;
  Raw a(server.port()), b(server.port());
  a.message(net::Type::Open, 1, 0, open_payload());
  auto r = a.read();
  REQUIRE(r.h.type == (std::uint16_t(net::Type::Open) | net::kReplyBit));
  const auto sid = r.h.session;
  CHECK(sid != 0);
  // b uses a's session: refused, as is a made-up one.
  b.message(net::Type::Stats, 7, sid, {});
  r = b.read();
  REQUIRE(r.is_error());
  CHECK(r.code() == net::Code::UnknownSession);
  CHECK(r.h.request == 7);
  CHECK(contains(r.message(), "no session"));
  a.message(net::Type::Stats, 2, sid + 1, {});
  r = a.read();
  REQUIRE(r.is_error());
  CHECK(r.code() == net::Code::UnknownSession);
  // a's own session works; after CLOSE it is gone.
  a.message(net::Type::Stats, 3, sid, {});
  r = a.read();
  CHECK(r.h.type == (std::uint16_t(net::Type::Stats) | net::kReplyBit));
  a.message(net::Type::Close, 4, sid, {});
  CHECK(a.read().h.type == (std::uint16_t(net::Type::Close) | net::kReplyBit));
  a.message(net::Type::Stats, 5, sid, {});
  r = a.read();
  REQUIRE(r.is_error());
  CHECK(r.code() == net::Code::UnknownSession);
  // Two devices on one connection do not see each other's weights.
  auto c = net::Client::connect(server.addr());
  auto d1 = c->open(mini()), d2 = c->open(mini());
  d1->load_program(stream_program());
  d2->load_program(stream_program());
  auto w1 = random_weights(1), w2 = random_weights(2);
  load_axpb(*d1, w1);
  load_axpb(*d2, w2);
  CHECK(stream_and_check(*d1, w1, 1, 20, 10) == 0);
  CHECK(stream_and_check(*d2, w2, 2, 20, 10) == 0);
  CHECK(d1->read_symbol(0, "w").data == w1.w);
}

TEST_CASE("remote: random and malformed frames while a well-behaved client keeps working") {
  auto o = test_server_options();
  o.limits.max_message = 4 << 20;
  o.limits.frame_timeout = std::chrono::milliseconds(500);
  TestServer server(o);
  const auto port = server.port();
  std::atomic<bool> stop{false};
  std::atomic<int> good_batches{0}, good_wrong{0};
  std::string good_error;
  std::thread good([&] {
    try {
      auto d = net::open_remote(server.addr(), mini());
      d->load_program(stream_program());
      auto w = random_weights(77);
      load_axpb(*d, w);
      std::uint64_t seed = 0;
      while (!stop || good_batches < 10) {
        good_wrong += stream_and_check(*d, w, seed++, 16, 16);
        ++good_batches;
      }
    } catch (const std::exception& e) {
      good_error = e.what();
    }
  });

  std::mt19937_64 g(1234);
  SUBCASE("random bytes") {
    for (int k = 0; k < 200; ++k) {
      Raw r(port);
      std::vector<std::uint8_t> junk(std::size_t(g() % 200));
      for (auto& x : junk) x = std::uint8_t(g());
      if (k % 2 && junk.size() >= 4) std::copy(net::kMagic.begin(), net::kMagic.end(), junk.begin());  // get past the magic
      r.send(junk);
      if (k % 10 == 0) {  // some wait for the verdict; the others just hang up
        auto rep = r.read(std::chrono::milliseconds(200));
        if (rep.is_error()) CHECK(rep.code() != net::Code::Internal);
      }
    }
  }
  SUBCASE("bad magic, wrong version, oversized frame: an error reply, then the connection closes") {
    Raw a(port);
    std::vector<std::uint8_t> f(net::kHeaderBytes, 0);
    a.send(f);
    auto r = a.read();
    REQUIRE(r.is_error());
    CHECK(r.code() == net::Code::BadFrame);
    CHECK(contains(r.message(), "bad magic"));
    CHECK(a.closed_by_server());

    Raw b(port);
    const std::uint16_t wrong = net::kVersion + 1;
    b.frame(std::uint16_t(net::Type::Ping), 9, 0, {1, 2, 3}, 0, 0, wrong);
    r = b.read();
    REQUIRE(r.is_error());
    CHECK(r.code() == net::Code::BadVersion);
    CHECK(r.h.request == 9);
    CHECK(contains(r.message(), fmt::format("protocol version {} is not supported (this side speaks version {})", wrong,
                                            net::kVersion)));
    CHECK(b.closed_by_server());

    Raw c(port);
    std::vector<std::uint8_t> h(net::kHeaderBytes);
    net::Header hh;
    hh.type = std::uint16_t(net::Type::Ping);
    hh.request = 11;
    hh.length = net::kMaxFramePayload + 1;
    net::write_header(hh, h.data());
    c.send(h);
    r = c.read();
    REQUIRE(r.is_error());
    CHECK(r.code() == net::Code::TooLarge);
    CHECK(r.h.request == 11);
    CHECK(c.closed_by_server());

    Raw d(port);
    hh.length = 4;
    hh.flags = 0x80;  // unknown flag
    net::write_header(hh, h.data());
    d.send(h);
    r = d.read();
    REQUIRE(r.is_error());
    CHECK(r.code() == net::Code::BadFrame);
  }
  SUBCASE("unknown types, replies, malformed payloads: an error reply, the connection stays") {
    Raw a(port);
    a.frame(77, 1, 0, {});
    auto r = a.read();
    REQUIRE(r.is_error());
    CHECK(r.code() == net::Code::UnknownType);
    a.frame(std::uint16_t(net::Type::Ping) | net::kReplyBit, 2, 0, {});
    r = a.read();
    REQUIRE(r.is_error());
    CHECK(r.code() == net::Code::UnknownType);
    auto op = open_payload();
    op.resize(op.size() / 2);
    a.message(net::Type::Open, 3, 0, op);
    r = a.read();
    REQUIRE(r.is_error());
    CHECK(r.code() == net::Code::Malformed);
    CHECK(contains(r.message(), "OPEN: truncated"));
    op = open_payload();
    op.push_back(0);
    a.message(net::Type::Open, 4, 0, op);
    r = a.read();
    REQUIRE(r.is_error());
    CHECK(contains(r.message(), "trailing"));
    // A real session, then garbage inside its requests.
    a.message(net::Type::Open, 5, 0, open_payload());
    r = a.read();
    REQUIRE(!r.is_error());
    const auto sid = r.h.session;
    for (auto t : {net::Type::LoadProgram, net::Type::LoadTensor, net::Type::ReadSymbol, net::Type::SetReg, net::Type::Run,
                   net::Type::Stream}) {
      for (int k = 0; k < 20; ++k) {
        std::vector<std::uint8_t> junk(std::size_t(g() % 64));
        for (auto& x : junk) x = std::uint8_t(g() % 4 == 0 ? 0xff : g());
        a.message(t, 100 + std::uint32_t(k), sid, junk);
        r = a.read();
        REQUIRE(!r.eof);
        REQUIRE(r.h.request == 100 + std::uint32_t(k));
        if (r.is_error()) CHECK(r.code() != net::Code::Internal);
      }
    }
    // A huge announced count must not allocate: refused from the bytes actually present.
    net::Writer w;
    net::put(w, rt::StreamSpec{});
    w.u32(0xffffffffu);
    a.message(net::Type::Stream, 200, sid, w.buf());
    r = a.read();
    REQUIRE(r.is_error());
    CHECK(r.code() == net::Code::Malformed);
    CHECK(contains(r.message(), "4294967295 items announced"));
    // Still alive.
    a.message(net::Type::Ping, 201, 0, {4, 5});
    r = a.read();
    CHECK(r.payload == std::vector<std::uint8_t>{4, 5});
  }
  SUBCASE("out-of-order chunks and oversized messages: an error for that request, nothing else lost") {
    Raw a(port);
    a.frame(std::uint16_t(net::Type::Ping), 1, 0, {1}, /*chunk=*/1, 0);
    auto r = a.read();
    REQUIRE(r.is_error());
    CHECK(r.code() == net::Code::OutOfOrder);
    // Chunk 0 of request 2, then a new request 3: 2 is dropped with an error, 3 is served.
    a.frame(std::uint16_t(net::Type::Ping), 2, 0, {1}, 0, net::kFlagMore);
    a.frame(std::uint16_t(net::Type::Ping), 3, 0, {3, 3});
    r = a.read();
    REQUIRE(r.is_error());
    CHECK(r.code() == net::Code::OutOfOrder);
    CHECK(r.h.request == 2);
    r = a.read();
    CHECK(r.h.request == 3);
    CHECK(r.payload == std::vector<std::uint8_t>{3, 3});
    // Chunks 0, 2: out of sequence.
    a.frame(std::uint16_t(net::Type::Ping), 4, 0, {1}, 0, net::kFlagMore);
    a.frame(std::uint16_t(net::Type::Ping), 4, 0, {1}, 2, 0);
    r = a.read();
    REQUIRE(r.is_error());
    CHECK(r.code() == net::Code::OutOfOrder);
    CHECK(r.h.request == 4);
    // More than max_message in chunks: refused once, the remaining chunks ignored.
    std::vector<std::uint8_t> mb(net::kMaxFramePayload, 7);
    for (std::uint32_t k = 0; k < 6; ++k) a.frame(std::uint16_t(net::Type::Ping), 5, 0, mb, k, k < 5 ? net::kFlagMore : 0);
    r = a.read();
    REQUIRE(r.is_error());
    CHECK(r.code() == net::Code::TooLarge);
    CHECK(r.h.request == 5);
    a.message(net::Type::Ping, 6, 0, {6});
    r = a.read();
    CHECK(r.h.request == 6);
    CHECK(r.payload == std::vector<std::uint8_t>{6});
    // A chunked ping under the limit comes back whole, chunked.
    std::vector<std::uint8_t> big(3 * net::kMaxFramePayload + 5);
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = std::uint8_t(i * 7);
    a.message(net::Type::Ping, 7, 0, big);
    r = a.read();
    CHECK(r.h.request == 7);
    CHECK(r.payload == big);
  }
  SUBCASE("truncated frames: a client hanging up mid-frame, or stalling past the frame timeout") {
    for (int k = 0; k < 20; ++k) {
      Raw a(port);
      net::Header hh;
      hh.type = std::uint16_t(net::Type::Ping);
      hh.length = 100;
      std::vector<std::uint8_t> f(net::kHeaderBytes);
      net::write_header(hh, f.data());
      f.resize(f.size() + std::size_t(g() % 100), 1);
      if (k % 2) f.resize(std::size_t(g() % net::kHeaderBytes));
      a.send(f);
    }
    Raw b(port);
    net::Header hh;
    hh.type = std::uint16_t(net::Type::Ping);
    hh.request = 31;
    hh.length = 100;
    std::vector<std::uint8_t> f(net::kHeaderBytes);
    net::write_header(hh, f.data());
    f.resize(f.size() + 10, 1);
    b.send(f);
    auto r = b.read();
    REQUIRE(r.is_error());
    CHECK(r.code() == net::Code::Timeout);
    CHECK(r.h.request == 31);
    CHECK(b.closed_by_server());
  }
  stop = true;
  good.join();
  CHECK(good_error.empty());
  CHECK(good_wrong == 0);
  CHECK(good_batches >= 10);
  // The server is alive and correct afterwards.
  auto d = net::open_remote(server.addr(), mini());
  d->load_program(stream_program());
  auto w = random_weights(5);
  load_axpb(*d, w);
  CHECK(stream_and_check(*d, w, 5, 40, 20) == 0);
  d.reset();
  CHECK(server.eventually([](const nlohmann::json& j) { return j["sessions"] == 0 && j["bytes_held"] == 0; }));
}

TEST_CASE("remote: a client disconnecting mid-transfer frees its session, slow readers do not stall others") {
  auto o = test_server_options();
  o.limits.write_timeout = std::chrono::milliseconds(500);
  o.limits.max_connection_backlog = 8 << 20;
  TestServer server(o);
  {
    Raw a(server.port());
    a.message(net::Type::Open, 1, 0, open_payload());
    auto r = a.read();
    REQUIRE(!r.is_error());
    const auto sid = r.h.session;
    net::Writer w;
    w.u32(0);
    w.bytes(obj::write_object(stream_program()));
    a.message(net::Type::LoadProgram, 2, sid, w.buf());
    CHECK(!a.read().is_error());
    CHECK(server.eventually([](const nlohmann::json& j) { return j["sessions"] == 1 && j["bytes_held"].get<std::int64_t>() > 0; }));
    // A chunked LOAD_TENSOR cut off after its first chunk; the client is gone.
    net::Writer t;
    net::put(t, rt::TensorLoad{0, "w", "w.npy", false});
    net::put(t, io::Tensor{io::ElemType::I8, {3 << 20}, std::vector<std::uint8_t>(3 << 20, 1)});
    auto frames = net::encode_message(std::uint16_t(net::Type::LoadTensor), 3, sid, t.buf());
    REQUIRE(frames.size() > 2);
    a.send(frames[0]);
    a.send({frames[1].begin(), frames[1].begin() + 1000});
  }
  CHECK(server.eventually([](const nlohmann::json& j) { return j["sessions"] == 0 && j["bytes_held"] == 0 && j["connections"] == 0; }));

  // A client that sends requests but never reads the replies: closed after the write timeout;
  // meanwhile another client is served.
  Raw slow(server.port());
  std::vector<std::uint8_t> mb(net::kMaxFramePayload - 64, 1);
  for (std::uint32_t k = 0; k < 64; ++k) slow.message(net::Type::Ping, k, 0, mb);
  auto d = net::open_remote(server.addr(), mini());
  d->load_program(stream_program());
  auto w = random_weights(8);
  load_axpb(*d, w);
  CHECK(stream_and_check(*d, w, 8, 100, 25) == 0);
  CHECK(server.eventually([](const nlohmann::json& j) { return j["connections"] == 1; }));  // only d's
  CHECK(stream_and_check(*d, w, 9, 20, 20) == 0);
}

TEST_CASE("remote: limits and refused devices") {
  auto o = test_server_options();
  o.limits.max_sessions_per_connection = 2;
  // The device itself (rt::device_memory of mini) and 1000 bytes of programs and weights.
  const auto device = std::int64_t(rt::device_memory(mini()).bytes);
  o.limits.max_session_bytes = device + 1000;
  o.limits.max_chips = 4;
  o.limits.max_run_instructions = 1000;
  TestServer server(o);
  auto c = net::Client::connect(server.addr());
  auto d1 = c->open(mini());
  auto d2 = c->open(mini());
  auto e = error_of([&] { c->open(mini()); });
  CHECK(contains(e, "a connection may hold 2 sessions"));
  d1->load_program(stream_program());
  io::Tensor big{io::ElemType::I8, {32}, std::vector<std::uint8_t>(32, 0)};
  d1->load_tensor({0, "w", "w"}, big);  // 136 + 32 bytes: fine
  // Runs are bounded before they start: 6 instructions per item.
  CHECK(d1->stream(batch_of(std::vector<std::vector<std::uint8_t>>(100, std::vector<std::uint8_t>(32, 1)))).items.size() == 100);
  e = error_of([&] { d1->stream(batch_of(std::vector<std::vector<std::uint8_t>>(200, std::vector<std::uint8_t>(32, 1)))); });
  CHECK(contains(e, "chip 0: the run would issue 1200 instructions, more than the limit of 1000"));
  auto prog = assembler::assemble_string(".preset mini\n.symbol big i8[64, 32] mem.e.0 @ 0\n", "big.lpa", load_preset("mini")).program;
  d2->load_program(prog);
  e = error_of([&] { d2->load_tensor({0, "big", "big.npy"}, io::Tensor{io::ElemType::I8, {64, 32}, std::vector<std::uint8_t>(2048)}); });
  CHECK(contains(e, "device memory limit"));
  d1.reset();
  d2.reset();
  auto c2 = net::Client::connect(server.addr());
  rt::DeviceSpec s = mini();
  s.chips = 5;
  CHECK(contains(error_of([&] { c2->open(s); }), "chips = 5: a session may have at most 4"));
  s = mini();
  s.preset = "../configs/mini.toml";
  CHECK(contains(error_of([&] { c2->open(s); }), "a server takes preset names from its configs/, not paths"));
  s = mini();
  s.rack = "rack";
  CHECK(contains(error_of([&] { c2->open(s); }), "this server hosts no rack"));
  s = mini();
  s.preset = "nosuch";
  CHECK_FALSE(error_of([&] { c2->open(s); }).empty());
  // An empty preset takes the server's default.
  s = mini();
  s.preset = "";
  CHECK(c2->open(s)->info().preset == "mini");
  CHECK(c2->ping({1, 2, 3}) == std::vector<std::uint8_t>{1, 2, 3});
  CHECK(c2->status()["protocol_version"] == net::kVersion);
}

TEST_CASE("remote: large tensors travel in chunks both ways") {
  TestServer server;
  const char* src = ".preset lp30\n.symbol big i8[6000, 320] mem.e.0..3 @ 0\n";
  auto prog = assembler::assemble_string(src, "big.lpa", load_preset("lp30")).program;
  rt::DeviceSpec s;
  s.preset = "lp30";
  auto d = net::open_remote(server.addr(), s);
  d->load_program(prog);
  io::Tensor t{io::ElemType::I8, {6000, 320}, std::vector<std::uint8_t>(6000 * 320)};
  for (std::size_t i = 0; i < t.data.size(); ++i) t.data[i] = std::uint8_t(i * 2654435761u >> 13);
  d->load_tensor({0, "big", "big.npy"}, t);
  auto back = d->read_symbol(0, "big");
  CHECK(back.shape == t.shape);
  CHECK(back.data == t.data);
  auto j = d->stats();
  CHECK(j["host_dma"]["bytes_to_device"].get<std::int64_t>() >= std::int64_t(t.data.size()));
  // 1.92 MB at 64 GB/s: 30 us of emulated host DMA.
  CHECK(j["weights"]["seconds"].get<double>() > 30e-6);
}

TEST_CASE("server: graceful shutdown finishes running requests, then closes") {
  auto srv = std::make_unique<TestServer>();
  auto d = net::open_remote(srv->addr(), mini());
  d->load_program(stream_program());
  auto w = random_weights(3);
  load_axpb(*d, w);
  std::mt19937_64 g(1);
  std::vector<std::vector<std::uint8_t>> xs;
  for (int i = 0; i < 20000; ++i) xs.push_back(random_vector(g));
  auto f = d->submit(batch_of(xs));
  // Wait until it runs, then stop.
  CHECK(srv->eventually([](const nlohmann::json& j) { return j["requests"].get<int>() >= 5; }));
  srv->srv.stop();
  auto r = f.get();  // the running request completes and its reply arrives
  REQUIRE(r.items.size() == xs.size());
  CHECK(r.items.back().output == axpb(xs.back(), w));
  srv->srv.wait();
  CHECK(srv->srv.status()["connections"] == 0);
  // New requests on the closed connection fail cleanly.
  CHECK(contains(error_of([&] { d->stats(); }), "connection to"));
  CHECK_THROWS(net::open_remote(srv->addr(), mini()));
  srv.reset();
}

TEST_CASE("lpu serve: listens, serves, and exits 0 on SIGTERM") {
  const std::string lpu = std::string(LPU_BINARY_DIR) + "/bin/lpu";
  if (!std::filesystem::exists(lpu)) {
    MESSAGE("skipped: ", lpu, " not built");
    return;
  }
  int out[2];
  REQUIRE(pipe(out) == 0);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    dup2(out[1], 1);
    close(out[0]);
    close(out[1]);
    execl(lpu.c_str(), lpu.c_str(), "serve", "--listen", "127.0.0.1:0", "--preset", "mini", "--workers", "1", "-q", nullptr);
    _exit(127);
  }
  close(out[1]);
  FILE* f = fdopen(out[0], "r");
  char line[256] = {0};
  REQUIRE(std::fgets(line, sizeof line, f) != nullptr);
  std::string l(line);
  REQUIRE(contains(l, "listening on 127.0.0.1:"));
  auto addr = l.substr(l.find("127.0.0.1:"));
  while (!addr.empty() && (addr.back() == '\n' || addr.back() == '\r')) addr.pop_back();
  {
    rt::DeviceSpec dflt;
    dflt.preset = "";  // the server's --preset
    auto d = net::open_remote(addr, dflt);
    d->load_program(stream_program());
    auto w = random_weights(6);
    load_axpb(*d, w);
    CHECK(stream_and_check(*d, w, 6, 50, 25) == 0);
  }
  kill(pid, SIGTERM);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  std::string rest;
  while (std::fgets(line, sizeof line, f)) rest += line;
  CHECK(contains(rest, "lpu serve: stopped"));
  std::fclose(f);
}
