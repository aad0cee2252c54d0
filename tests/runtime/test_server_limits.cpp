// The server's resources under misuse (issue 23): a session's memory computed from its preset
// and refused before allocation, replies a client does not read holding back its requests
// (per connection and in total), connection limits per address, eviction and idle timeouts,
// and the shared-secret token. Each test keeps a well-behaved client working beside the bad
// ones; timeouts are short and set here, no assertion is about wall-clock speed.
#include <stdlib.h>

#include <fstream>
#include <mutex>

#include "net_helpers.hpp"

using namespace lpu;
using namespace lpu::test;

namespace {

rt::DeviceSpec mini() {
  rt::DeviceSpec s;
  s.preset = "mini";
  return s;
}

std::vector<std::uint8_t> spec_payload(const rt::DeviceSpec& s) {
  net::Writer w;
  net::put(w, s);
  return std::move(w.buf());
}

// Streams `n` random items through the axpb example and returns how many came back wrong.
int good_client_wrong(const std::string& addr, std::uint64_t seed, int n,
                      const net::ClientOptions& co = {}) {
  auto d = net::open_remote(addr, mini(), co);
  d->load_program(stream_program());
  auto w = random_weights(seed);
  load_axpb(*d, w);
  std::mt19937_64 g(seed);
  rt::Batch b;
  std::vector<std::vector<std::uint8_t>> xs;
  for (int i = 0; i < n; ++i) xs.push_back(random_vector(g));
  b.items = xs;
  auto r = d->stream(b);
  int wrong = int(xs.size()) - int(r.items.size());
  for (std::size_t i = 0; i < r.items.size(); ++i) wrong += r.items[i].output != axpb(xs[i], w);
  return wrong;
}

std::int64_t status_i(net::Server& s, const char* key) {
  auto j = s.status();
  return j.contains(key) ? j[key].get<std::int64_t>() : -1;
}

// Log lines of a server, for checking what it said.
struct Log {
  std::mutex mu;
  std::vector<std::string> lines;
  std::function<void(const std::string&)> fn() {
    return [this](const std::string& s) {
      std::lock_guard lk(mu);
      lines.push_back(s);
    };
  }
  bool has(const std::string& part) {
    std::lock_guard lk(mu);
    for (const auto& l : lines)
      if (contains(l, part)) return true;
    return false;
  }
};

}  // namespace

// ---- item 6: a session's memory, before anything is allocated ---------------------------------

TEST_CASE(
    "server: OPEN over the session memory limit is refused before allocating, naming the "
    "parameter") {
  auto o = test_server_options();
  o.limits.max_session_bytes = 64 << 20;
  TestServer server(o);
  Raw a(server.port());
  // 2 x 8 slices x 1M rows x 32 bytes of SRAM (mini with its largest mem.rows): a lazily
  // allocated SRAM that a run may fill, over 64 MiB.
  auto s = mini();
  s.set = {"mem.rows=1048576"};
  a.message(net::Type::Open, 1, 0, spec_payload(s));
  auto r = a.read();
  REQUIRE(r.is_error());
  CHECK(r.code() == net::Code::Limit);
  CAPTURE(r.message());
  CHECK(contains(r.message(), "device memory limit"));
  CHECK(contains(
      r.message(),
      "more than the limit of 64.0 MiB (the server's session limit, lpu serve --max-session-mib)"));
  CHECK(contains(
      r.message(),
      "for SRAM (mem.slices_per_hemisphere = 4, mem.rows = 1048576, vector.superlanes = 2)"));
  // lp30, the default preset, does not fit in 64 MiB either: two copies of 500 MB of SRAM.
  rt::DeviceSpec lp30;
  a.message(net::Type::Open, 2, 0, spec_payload(lp30));
  r = a.read();
  REQUIRE(r.is_error());
  CHECK(r.code() == net::Code::Limit);
  CHECK(contains(r.message(), "for SRAM (mem.slices_per_hemisphere = 235"));
  // The example: a million SXM queues. Refused either by the preset's documented range
  // (FAILED, naming the key) or by the memory limit (LIMIT, naming the key), never allocated.
  s = mini();
  s.set = {"sxm.queues_per_hemisphere=2000000"};
  a.message(net::Type::Open, 3, 0, spec_payload(s));
  r = a.read();
  REQUIRE(r.is_error());
  CHECK((r.code() == net::Code::Limit || r.code() == net::Code::Failed));
  CHECK(contains(r.message(), "sxm.queues_per_hemisphere"));
  // Nothing was kept; the connection and the server go on.
  CHECK(status_i(server.srv, "sessions") == 0);
  CHECK(status_i(server.srv, "bytes_held") == 0);
  a.message(net::Type::Open, 4, 0, open_payload());
  r = a.read();
  REQUIRE_FALSE(r.is_error());
  CHECK(good_client_wrong(server.addr(), 1, 20) == 0);
}

TEST_CASE(
    "server: plan_open, the fuzz target's entry, decodes, applies the policy and computes the "
    "memory") {
  auto o = test_server_options();
  auto p = net::plan_open(open_payload(), o);
  CHECK(p.spec.preset == "mini");
  CHECK(p.memory.bytes == rt::device_memory(mini()).bytes);
  CHECK(p.memory.bytes > 0);
  auto code_of = [&](const std::vector<std::uint8_t>& pl) {
    try {
      net::plan_open(pl, o);
    } catch (const net::ProtocolError& e) {
      return e.code();
    }
    return net::Code::Internal;
  };
  auto s = mini();
  s.chips = 17;
  CHECK(code_of(spec_payload(s)) == net::Code::Limit);
  s = mini();
  s.preset = "../configs/mini";
  CHECK(code_of(spec_payload(s)) == net::Code::Failed);
  s = mini();
  s.set = {"no.such=1"};
  CHECK(code_of(spec_payload(s)) == net::Code::Failed);
  CHECK(code_of({1, 2, 3}) == net::Code::Malformed);
  o.limits.max_session_bytes = 100 << 10;
  CHECK(code_of(open_payload()) == net::Code::Limit);
}

// ---- item 7: replies nobody reads ---------------------------------------------------------------

TEST_CASE(
    "server: a client that does not read its replies is held back, per connection and in total" *
    doctest::timeout(120)) {
  auto o = test_server_options();
  o.limits.max_connection_backlog = 4 << 20;
  o.limits.max_backlog = 6 << 20;
  o.limits.write_timeout = std::chrono::seconds(60);  // not dropped during the test: held back
  TestServer server(o);
  // A 1 MB symbol on lp30: each READ_SYMBOL (a few bytes) asks for a 1 MB reply.
  const auto prog =
      assembler::assemble_string(".preset lp30\n.symbol big i8[3200, 320] mem.e.0 @ 0\n", "big.lpa",
                                 load_preset("lp30"))
          .program;
  constexpr int kReads = 48;
  auto hog = [&](Raw& r) {
    rt::DeviceSpec s;
    s.preset = "lp30";
    r.message(net::Type::Open, 1, 0, spec_payload(s));
    auto rep = r.read();
    REQUIRE_FALSE(rep.is_error());
    const auto sid = rep.h.session;
    net::Writer w;
    w.u32(0);
    w.bytes(obj::write_object(prog));
    r.message(net::Type::LoadProgram, 2, sid, w.buf());
    REQUIRE_FALSE(r.read().is_error());
    for (std::uint32_t k = 0; k < kReads; ++k) {
      net::Writer q;
      q.i32(0);
      q.str("big");
      r.message(net::Type::ReadSymbol, 100 + k, sid, q.buf());
    }
  };
  Raw h1(server.port());
  hog(h1);
  // Its session waits for h1 to read, with at most its limit plus the reply then being made
  // unsent (the kernel's socket buffers hold some more, outside the server's count).
  REQUIRE(server.eventually(
      [](const nlohmann::json& j) { return j.value("sessions_waiting_for_readers", 0) == 1; }));
  const std::int64_t reply = 1'024'000 + 64;
  CHECK(status_i(server.srv, "unsent_reply_bytes") <= (4 << 20) + reply + 4096);
  // A second one: the server's total (6 MiB) stops it soon, its session waiting or its
  // requests left unread (h1 has sent everything: its connection is never the one held).
  Raw h2(server.port());
  hog(h2);
  REQUIRE(server.eventually([](const nlohmann::json& j) {
    return j.value("sessions_waiting_for_readers", 0) + j.value("connections_held_back", 0) >= 2;
  }));
  CHECK(status_i(server.srv, "unsent_reply_bytes") <= (6 << 20) + 2 * (reply + 4096));
  // A client that reads its replies is served all along.
  CHECK(good_client_wrong(server.addr(), 7, 50) == 0);
  // Nothing is lost: every reply arrives, in order, once the hogs read.
  for (Raw* r : {&h1, &h2}) {
    for (std::uint32_t k = 0; k < kReads; ++k) {
      auto rep = r->read();
      REQUIRE_FALSE(rep.is_error());
      CHECK(rep.h.request == 100 + k);
      CHECK(rep.payload.size() > 1'024'000);
    }
  }
  CHECK(server.eventually([](const nlohmann::json& j) {
    return j["sessions_waiting_for_readers"] == 0 && j["unsent_reply_bytes"] == 0 &&
           j["backlog_bytes"] == 0;
  }));
}

TEST_CASE(
    "server: a client that never reads is dropped after the write timeout, with the reason "
    "logged") {
  Log log;
  auto o = test_server_options();
  o.limits.max_connection_backlog = 1 << 20;
  o.limits.write_timeout = std::chrono::milliseconds(300);
  o.log = log.fn();
  TestServer server(o);
  Raw slow(server.port());
  std::vector<std::uint8_t> mb(net::kMaxFramePayload - 64, 1);
  for (std::uint32_t k = 0; k < 32; ++k) slow.message(net::Type::Ping, k, 0, mb);
  CHECK(server.eventually(
      [](const nlohmann::json& j) { return j["connections"] == 0 && j["backlog_bytes"] == 0; }));
  CHECK(log.has("write timeout: the client has not read a reply frame in 300 ms"));
}

// ---- item 8: connections
// ---------------------------------------------------------------------------

TEST_CASE("server: connections per address are limited, other addresses are served") {
  auto o = test_server_options();
  o.limits.max_connections_per_address = 4;
  TestServer server(o);
  std::vector<std::unique_ptr<Raw>> idle;
  for (int i = 0; i < 4; ++i) idle.push_back(std::make_unique<Raw>(server.port()));
  REQUIRE(server.eventually([](const nlohmann::json& j) { return j["connections"] == 4; }));
  Raw fifth(server.port());
  auto r = fifth.read();
  REQUIRE(r.is_error());
  CHECK(r.code() == net::Code::Limit);
  CHECK(contains(r.message(), "the address 127.0.0.1 holds its maximum of 4 connections"));
  CHECK(fifth.closed_by_server());
  // Another address (all of 127.0.0.0/8 is loopback) is served beside them.
  Raw other(server.port(), "127.0.0.2");
  other.message(net::Type::Ping, 5, 0, {1, 2});
  r = other.read();
  REQUIRE_FALSE(r.is_error());
  CHECK(r.payload == std::vector<std::uint8_t>{1, 2});
  // One of the four leaves: its address may connect again.
  idle.pop_back();
  REQUIRE(server.eventually([](const nlohmann::json& j) { return j["connections"] == 4; }));
  Raw again(server.port());
  again.message(net::Type::Ping, 6, 0, {3});
  CHECK(again.read().payload == std::vector<std::uint8_t>{3});
}

TEST_CASE("server: sessions per address are limited, other addresses are served") {
  auto o = test_server_options();
  o.limits.max_sessions_per_address = 3;
  TestServer server(o);
  auto a = net::Client::connect(server.addr());
  auto b = net::Client::connect(server.addr());
  auto d1 = a->open(mini()), d2 = a->open(mini()), d3 = b->open(mini());
  auto e = error_of([&] { b->open(mini()); });
  CHECK(contains(e, "the address 127.0.0.1 holds its maximum of 3 sessions"));
  Raw other(server.port(), "127.0.0.2");
  other.message(net::Type::Open, 1, 0, open_payload());
  CHECK_FALSE(other.read().is_error());
  d1.reset();  // closed: room again
  CHECK(server.eventually([](const nlohmann::json& j) { return j["sessions"] == 3; }));
  CHECK(b->open(mini())->info().preset == "mini");
}

TEST_CASE(
    "server: a full server evicts an idle connection that holds nothing, so a good client gets "
    "in") {
  auto o = test_server_options();
  o.limits.max_connections = 6;
  o.limits.max_connections_per_address = 0;
  TestServer server(o);
  // Six connections that do nothing, some of them stuck in the middle of a header.
  std::vector<std::unique_ptr<Raw>> idle;
  for (int i = 0; i < 6; ++i) {
    idle.push_back(std::make_unique<Raw>(server.port()));
    if (i % 2) idle.back()->send({'L', 'P', 'U'});
  }
  REQUIRE(server.eventually([](const nlohmann::json& j) { return j["connections"] == 6; }));
  CHECK(good_client_wrong(server.addr(), 3, 30) == 0);
  CHECK(status_i(server.srv, "connections_evicted") >= 1);
  // The oldest idle one was told why and closed.
  auto r = idle.front()->read();
  REQUIRE(r.is_error());
  CHECK(r.code() == net::Code::Limit);
  CHECK(contains(r.message(), "held no session and was idle the longest"));
  CHECK(idle.front()->closed_by_server());
}

TEST_CASE(
    "server: connections that hold sessions are not evicted: a full server refuses the newcomer") {
  auto o = test_server_options();
  o.limits.max_connections = 3;
  o.limits.max_connections_per_address = 0;
  TestServer server(o);
  std::vector<std::unique_ptr<rt::Device>> held;
  for (int i = 0; i < 3; ++i) held.push_back(net::open_remote(server.addr(), mini()));
  auto e = error_of([&] { net::open_remote(server.addr(), mini()); });
  CHECK(contains(e, "the server holds its maximum of 3 connections"));
  CHECK(status_i(server.srv, "connections_evicted") == 0);
  held.pop_back();  // one leaves: there is room again
  REQUIRE(server.eventually([](const nlohmann::json& j) { return j["connections"] == 2; }));
  CHECK(good_client_wrong(server.addr(), 4, 10) == 0);
}

TEST_CASE("server: idle connections time out with a TIMEOUT reply, and are closed") {
  auto o = test_server_options();
  o.limits.idle_timeout = std::chrono::milliseconds(300);
  TestServer server(o);
  std::vector<std::unique_ptr<Raw>> idle;
  for (int i = 0; i < 8; ++i) idle.push_back(std::make_unique<Raw>(server.port()));
  for (auto& r : idle) {
    auto rep = r->read();
    REQUIRE(rep.is_error());
    CHECK(rep.code() == net::Code::Timeout);
    CHECK(contains(rep.message(), "idle for 300 ms; closing"));
    CHECK(r->closed_by_server());
  }
  CHECK(server.eventually([](const nlohmann::json& j) { return j["connections"] == 0; }));
  CHECK(good_client_wrong(server.addr(), 12, 20) == 0);
}

// ---- item 9: the token --------------------------------------------------------------------------

TEST_CASE("server: with a token, only clients that present it get past HELLO") {
  Log log;
  auto o = test_server_options();
  o.token = "s3cret-token";
  o.limits.auth_timeout = std::chrono::milliseconds(300);
  o.log = log.fn();
  TestServer server(o);
  CHECK(server.srv.status()["token_required"] == true);
  // Anything before HELLO: UNAUTHORIZED, and the connection is closed.
  Raw a(server.port());
  a.message(net::Type::Ping, 1, 0, {1});
  auto r = a.read();
  REQUIRE(r.is_error());
  CHECK(r.code() == net::Code::Unauthorized);
  CHECK(contains(r.message(), "this server requires a token"));
  CHECK(a.closed_by_server());
  // A wrong token, an empty one, a prefix, a longer one: refused and closed.
  for (std::string t : {"wrong", "", "s3cret", "s3cret-token-and-more", "S3cret-token"}) {
    Raw b(server.port());
    b.message(net::Type::Hello, 2, 0, hello_payload(t));
    r = b.read();
    REQUIRE(r.is_error());
    CHECK(r.code() == net::Code::Unauthorized);
    CHECK(b.closed_by_server());
  }
  CHECK(log.has("HELLO with a wrong or missing token"));
  // A connection that says nothing is closed after the authentication timeout.
  Raw mute(server.port());
  r = mute.read();
  REQUIRE(r.is_error());
  CHECK(r.code() == net::Code::Timeout);
  CHECK(contains(r.message(), "no HELLO with this server's token within 300 ms"));
  // Before HELLO, a large frame is refused at its header.
  Raw big(server.port());
  big.message(net::Type::Hello, 3, 0, std::vector<std::uint8_t>(200 << 10, 0));
  r = big.read();
  REQUIRE(r.is_error());
  CHECK(r.code() == net::Code::Unauthorized);
  // The right token: served. Then PING and everything else work on that connection.
  Raw c(server.port());
  c.message(net::Type::Hello, 4, 0, hello_payload("s3cret-token"));
  r = c.read();
  REQUIRE_FALSE(r.is_error());
  net::Reader rd(r.payload, "HELLO reply");
  auto hr = net::get_hello_reply(rd);
  CHECK(hr.version == net::kHandshakeVersion);
  CHECK(hr.token_required);
  c.message(net::Type::Ping, 5, 0, {9});
  CHECK(c.read().payload == std::vector<std::uint8_t>{9});
  // The client library: with the token (option or LPU_TOKEN), without, or with a wrong one.
  net::ClientOptions co;
  co.token = "s3cret-token";
  CHECK(good_client_wrong(server.addr(), 5, 20, co) == 0);
  auto e = error_of([&] { net::open_remote(server.addr(), mini()); });
  CHECK(contains(e, "this server requires a token"));
  co.token = "nope";
  e = error_of([&] { net::open_remote(server.addr(), mini(), co); });
  CHECK(contains(e, "HELLO: wrong token"));
  ::setenv("LPU_TOKEN", "s3cret-token", 1);
  const int wrong_env = good_client_wrong(server.addr(), 6, 20);
  ::unsetenv("LPU_TOKEN");
  CHECK(wrong_env == 0);
}

TEST_CASE("server: without a token HELLO is optional and any token is accepted") {
  TestServer server;
  Raw a(server.port());
  a.message(net::Type::Hello, 1, 0, hello_payload("anything"));
  auto r = a.read();
  REQUIRE_FALSE(r.is_error());
  net::Reader rd(r.payload, "HELLO reply");
  CHECK_FALSE(net::get_hello_reply(rd).token_required);
  net::ClientOptions co;
  co.token = "anything";
  CHECK(good_client_wrong(server.addr(), 8, 10, co) == 0);
  CHECK(good_client_wrong(server.addr(), 9, 10) == 0);
}

TEST_CASE("server: a warning, through the logger, when listening beyond loopback without a token") {
  for (auto [listen, token, warned] :
       {std::tuple{"0.0.0.0:0", "", true}, std::tuple{"0.0.0.0:0", "t", false},
        std::tuple{"127.0.0.1:0", "", false}}) {
    std::vector<std::string> warnings;
    auto o = test_server_options();
    o.listen = listen;
    o.token = token;
    o.warn = [&](const std::string& s) { warnings.push_back(s); };
    net::Server s(o);
    CAPTURE(listen);
    CAPTURE(token);
    CHECK(warnings.size() == (warned ? 1u : 0u));
    if (warned)
      CHECK(contains(warnings[0],
                     "without a token: anyone who can reach this port can run programs"));
  }
}

TEST_CASE("read_token_file: the file contents without trailing whitespace, empty files refused") {
  TempDir dir;
  std::ofstream(dir / "t") << "abc def\n\n";
  CHECK(net::read_token_file(dir / "t") == "abc def");
  std::ofstream(dir / "empty") << " \n";
  CHECK(contains(error_of([&] { net::read_token_file(dir / "empty"); }), "the file is empty"));
  CHECK(contains(error_of([&] { net::read_token_file(dir / "nosuch"); }), "cannot read it"));
  std::ofstream(dir / "long") << std::string(5000, 'x');
  CHECK(contains(error_of([&] { net::read_token_file(dir / "long"); }), "at most 4096 bytes"));
}
