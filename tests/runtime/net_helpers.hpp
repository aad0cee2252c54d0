#pragma once
// A server in the test process and a raw client that can send anything, over loopback only.
#include <utility>  // before Boost.Asio 1.74
#include <boost/asio.hpp>
#include <thread>

#include "helpers.hpp"
#include "lpu/runtime/net.hpp"
#include "lpu/runtime/protocol.hpp"

namespace lpu::test {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

inline net::ServerOptions test_server_options() {
  net::ServerOptions o;
  o.listen = "127.0.0.1:0";
  o.default_preset = "mini";
  o.workers = 2;
  return o;
}

struct TestServer {
  net::Server srv;
  explicit TestServer(net::ServerOptions o = test_server_options()) : srv(std::move(o)) { srv.start(); }
  std::string addr() const { return srv.address(); }
  unsigned short port() const { return srv.port(); }
  // Waits (bounded) until the server's status satisfies `pred`.
  template <class P>
  bool eventually(P pred, std::chrono::seconds limit = std::chrono::seconds(20)) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      if (pred(srv.status())) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return pred(srv.status());
  }
};

// A client that speaks raw frames.
struct Raw {
  asio::io_context io;
  tcp::socket s{io};
  // `from`: the local address to connect from (any of 127.0.0.0/8 reaches a loopback server).
  explicit Raw(unsigned short port, const std::string& from = "") {
    if (!from.empty()) {
      s.open(tcp::v4());
      s.bind(tcp::endpoint(asio::ip::make_address(from), 0));
    }
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  }
  void send(const std::vector<std::uint8_t>& b) {
    boost::system::error_code ec;
    asio::write(s, asio::buffer(b), ec);
  }
  void frame(std::uint16_t type, std::uint32_t request, std::uint64_t session, const std::vector<std::uint8_t>& payload,
             std::uint32_t chunk = 0, std::uint16_t flags = 0, std::uint16_t version = net::kVersion) {
    std::vector<std::uint8_t> f(net::kHeaderBytes);
    net::Header h;
    h.type = type;
    h.request = request;
    h.session = session;
    h.chunk = chunk;
    h.flags = flags;
    h.length = std::uint32_t(payload.size());
    net::write_header(h, f.data());
    f[4] = std::uint8_t(version);
    f[5] = std::uint8_t(version >> 8);
    f.insert(f.end(), payload.begin(), payload.end());
    send(f);
  }
  void message(net::Type t, std::uint32_t request, std::uint64_t session, const std::vector<std::uint8_t>& payload) {
    for (auto& f : net::encode_message(std::uint16_t(t), request, session, payload)) send(f);
  }

  struct Reply {
    bool eof = false, timeout = false;
    net::Header h;
    std::vector<std::uint8_t> payload;
    net::Code code() const {
      net::Reader r(payload, "error");
      return net::Code(r.u32());
    }
    std::string message() const {
      net::Reader r(payload, "error");
      r.u32();
      return r.str();
    }
    bool is_error() const { return !eof && !timeout && h.type == std::uint16_t(net::Type::Error); }
  };
  bool read_exact(std::uint8_t* p, std::size_t n, std::chrono::milliseconds to, Reply& r) {
    bool done = false;
    boost::system::error_code err;
    asio::async_read(s, asio::buffer(p, n), [&](boost::system::error_code ec, std::size_t) {
      err = ec;
      done = true;
    });
    io.restart();
    io.run_for(to);
    if (!done) {
      boost::system::error_code ig;
      s.cancel(ig);
      io.restart();
      io.run();
      r.timeout = true;
      return false;
    }
    if (err) {
      r.eof = true;
      return false;
    }
    return true;
  }
  // One whole message (chunks joined).
  Reply read(std::chrono::milliseconds to = std::chrono::seconds(20)) {
    Reply r;
    for (;;) {
      std::array<std::uint8_t, net::kHeaderBytes> hb{};
      if (!read_exact(hb.data(), hb.size(), to, r)) return r;
      auto h = net::read_header(hb);
      std::vector<std::uint8_t> p(h.length);
      if (h.length && !read_exact(p.data(), p.size(), to, r)) return r;
      r.h = h;
      r.payload.insert(r.payload.end(), p.begin(), p.end());
      if (!h.more()) return r;
    }
  }
  // True when the server closed the connection (after any replies still in flight).
  bool closed_by_server(std::chrono::milliseconds to = std::chrono::seconds(20)) {
    for (int i = 0; i < 100; ++i) {
      auto r = read(to);
      if (r.eof) return true;
      if (r.timeout) return false;
    }
    return false;
  }
};

inline std::vector<std::uint8_t> open_payload(const std::string& preset = "mini") {
  rt::DeviceSpec s;
  s.preset = preset;
  net::Writer w;
  net::put(w, s);
  return std::move(w.buf());
}

inline std::vector<std::uint8_t> hello_payload(const std::string& token) {
  net::Writer w;
  net::put(w, net::Hello{net::kHandshakeVersion, std::vector<std::uint8_t>(token.begin(), token.end())});
  return std::move(w.buf());
}

}  // namespace lpu::test
