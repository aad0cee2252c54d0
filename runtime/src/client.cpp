// The remote backend: a connection to `lpu serve` and the Device that talks through it.
#include <fmt/format.h>

#include <utility>  // before Boost.Asio 1.74 (std::exchange in awaitable.hpp)
#include <boost/asio.hpp>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include "lpu/runtime/net.hpp"

namespace lpu::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

std::pair<std::string, std::string> split_host_port(const std::string& hp) {
  std::string host, port;
  if (!hp.empty() && hp[0] == '[') {
    auto close = hp.find(']');
    if (close == std::string::npos || close + 1 >= hp.size() || hp[close + 1] != ':')
      throw Error(fmt::format("address '{}' must look like [IPv6]:PORT", hp));
    host = hp.substr(1, close - 1);
    port = hp.substr(close + 2);
  } else {
    auto c = hp.rfind(':');
    if (c == std::string::npos || c == 0 || c + 1 == hp.size()) throw Error(fmt::format("address '{}' must look like HOST:PORT", hp));
    host = hp.substr(0, c);
    port = hp.substr(c + 1);
  }
  return {host, port};
}

struct Client::Impl : std::enable_shared_from_this<Client::Impl> {
  ClientOptions opt;
  std::string addr;
  asio::io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard;
  tcp::socket sock{io};
  std::thread th;

  using Done = std::function<void(Message*, std::exception_ptr)>;
  std::mutex mu;  // pending, next, broken
  std::map<std::uint32_t, Done> pending;
  std::uint32_t next = 1;
  std::optional<std::string> broken;

  // I/O thread only.
  std::array<std::uint8_t, kHeaderBytes> hdr{};
  Header cur;
  std::vector<std::uint8_t> payload;
  std::optional<Reassembler> re;
  std::deque<std::vector<std::uint8_t>> outq;
  bool writing = false;

  void fail_all(const std::string& why) {
    std::map<std::uint32_t, Done> p;
    {
      std::lock_guard lk(mu);
      if (!broken) broken = why;
      p.swap(pending);
    }
    auto e = std::make_exception_ptr(Error(fmt::format("connection to {}: {}", addr, *broken)));
    for (auto& [id, d] : p) d(nullptr, e);
  }

  void read() {
    asio::async_read(sock, asio::buffer(hdr), [self = shared_from_this()](error_code ec, std::size_t) {
      if (ec) return self->fail_all(ec == asio::error::eof ? "closed by the server" : ec.message());
      try {
        self->cur = read_header(self->hdr, self->opt.max_frame_payload);
      } catch (const ProtocolError& e) {
        error_code ig;
        self->sock.close(ig);
        return self->fail_all(fmt::format("bad frame from the server: {}", e.what()));
      }
      self->payload.resize(self->cur.length);
      asio::async_read(self->sock, asio::buffer(self->payload), [self](error_code ec2, std::size_t) {
        if (ec2) return self->fail_all(ec2 == asio::error::eof ? "closed by the server" : ec2.message());
        auto r = self->re->feed(self->cur, self->payload);
        if (r.error) {
          error_code ig;
          self->sock.close(ig);
          return self->fail_all(fmt::format("bad reply from the server: {}", r.error->what()));
        }
        if (r.message) self->deliver(std::move(*r.message));
        self->read();
      });
    });
  }

  void deliver(Message m) {
    Done d;
    {
      std::lock_guard lk(mu);
      auto it = pending.find(m.request);
      if (it != pending.end()) {
        d = std::move(it->second);
        pending.erase(it);
      }
    }
    std::exception_ptr ex;
    if (m.type == std::uint16_t(Type::Error)) {
      Code c = Code::Internal;
      std::string msg;
      try {
        Reader r(m.payload, "ERROR");
        c = Code(r.u32());
        msg = r.str();
      } catch (const ProtocolError& e) {
        msg = fmt::format("undecodable error reply: {}", e.what());
      }
      if (c == Code::FormatFailed) ex = std::make_exception_ptr(FormatError(msg));
      else ex = std::make_exception_ptr(RemoteError(c, msg));
      if (!d) {
        // Not about a request of ours (request 0): the server speaks about the connection.
        fail_all(fmt::format("{}: {}", code_name(c), msg));
        return;
      }
    }
    if (!d) return;  // a reply nobody waits for (cannot happen with this client)
    try {
      if (ex) d(nullptr, ex);
      else d(&m, nullptr);
    } catch (...) {
    }
  }

  void write_next() {
    if (outq.empty()) {
      writing = false;
      return;
    }
    writing = true;
    asio::async_write(sock, asio::buffer(outq.front()), [self = shared_from_this()](error_code ec, std::size_t) {
      if (ec) {
        self->outq.clear();
        self->writing = false;
        error_code ig;
        self->sock.close(ig);
        return self->fail_all(ec.message());
      }
      self->outq.pop_front();
      self->write_next();
    });
  }

  void request(Type type, std::uint64_t session, std::vector<std::uint8_t> pl, Done done) {
    std::lock_guard lk(mu);
    if (broken) {
      auto e = std::make_exception_ptr(Error(fmt::format("connection to {}: {}", addr, *broken)));
      done(nullptr, e);
      return;
    }
    std::uint32_t id = next++;
    if (next == 0) next = 1;
    pending[id] = std::move(done);
    auto frames = encode_message(std::uint16_t(type), id, session, pl, opt.max_frame_payload);
    // Posted under the lock: frames go out in call order.
    asio::post(io, [self = shared_from_this(), frames = std::move(frames)]() mutable {
      for (auto& f : frames) self->outq.push_back(std::move(f));
      if (!self->writing) self->write_next();
    });
  }
};

std::shared_ptr<Client> Client::connect(const std::string& host_port, const ClientOptions& opt) {
  auto c = std::shared_ptr<Client>(new Client());
  c->impl_ = std::make_shared<Impl>();
  auto& I = *c->impl_;
  I.opt = opt;
  I.addr = host_port;
  I.re.emplace(opt.max_message);
  auto [host, port] = split_host_port(host_port);
  tcp::resolver res(I.io);
  error_code ec;
  auto eps = res.resolve(host, port, ec);
  if (ec) throw Error(fmt::format("cannot resolve {}: {}", host_port, ec.message()));
  error_code cec = asio::error::would_block;
  asio::async_connect(I.sock, eps, [&cec](error_code e, const tcp::endpoint&) { cec = e; });
  I.io.run_for(opt.connect_timeout);
  if (cec == asio::error::would_block) {
    error_code ig;
    I.sock.close(ig);
    I.io.run();  // let the aborted connect complete
    throw Error(fmt::format("cannot connect to {}: timed out after {} ms", host_port, opt.connect_timeout.count()));
  }
  if (cec) throw Error(fmt::format("cannot connect to {}: {}", host_port, cec.message()));
  I.sock.set_option(tcp::no_delay(true), ec);
  I.io.restart();
  I.guard.emplace(I.io.get_executor());
  I.read();
  I.th = std::thread([self = c->impl_] {
    for (;;) {
      try {
        self->io.run();
        break;
      } catch (...) {
      }
    }
  });
  auto token = opt.token;
  if (!token) {
    const char* env = std::getenv("LPU_TOKEN");
    if (env && *env) token = env;
  }
  if (token) {
    // The handshake first: a server with a token closes a connection whose first request is
    // anything else.
    Writer w;
    put(w, Hello{kHandshakeVersion, std::vector<std::uint8_t>(token->begin(), token->end())});
    try {
      auto m = c->call(Type::Hello, 0, std::move(w.buf()));
      Reader r(m.payload, "HELLO reply");
      get_hello_reply(r);
    } catch (const RemoteError& e) {
      c->close();
      if (e.code() == Code::UnknownType)
        throw RemoteError(e.code(), fmt::format("{}: the server does not know HELLO (an older version): connect without a token", host_port));
      throw RemoteError(e.code(), fmt::format("{}: {}", host_port, e.what()));
    } catch (...) {
      c->close();
      throw;
    }
  }
  return c;
}

Client::~Client() { close(); }

void Client::close() {
  if (!impl_) return;
  auto& I = *impl_;
  if (I.th.joinable()) {
    asio::post(I.io, [self = impl_] {
      error_code ig;
      self->sock.shutdown(tcp::socket::shutdown_both, ig);
      self->sock.close(ig);
      self->guard.reset();
    });
    I.th.join();
  }
  I.fail_all("closed by the client");
}

const std::string& Client::address() const { return impl_->addr; }

void Client::request(Type type, std::uint64_t session, std::vector<std::uint8_t> payload,
                     std::function<void(Message*, std::exception_ptr)> done) {
  impl_->request(type, session, std::move(payload), std::move(done));
}

Message Client::call(Type type, std::uint64_t session, std::vector<std::uint8_t> payload) {
  auto p = std::make_shared<std::promise<Message>>();
  auto f = p->get_future();
  request(type, session, std::move(payload), [p](Message* m, std::exception_ptr e) {
    if (e) p->set_exception(e);
    else p->set_value(std::move(*m));
  });
  return f.get();
}

nlohmann::json Client::status() {
  auto m = call(Type::Status, 0, {});
  Reader r(m.payload, "STATUS reply");
  auto j = nlohmann::json::parse(r.str(std::size_t(16) << 20), nullptr, false);
  if (j.is_discarded()) throw Error("STATUS reply: not JSON");
  return j;
}

std::vector<std::uint8_t> Client::ping(const std::vector<std::uint8_t>& payload) { return call(Type::Ping, 0, payload).payload; }

// ---- The remote device ------------------------------------------------------------------------

namespace {

class RemoteDevice final : public rt::Device {
 public:
  RemoteDevice(std::shared_ptr<Client> c, std::uint64_t session, rt::DeviceInfo info)
      : c_(std::move(c)), session_(session), info_(std::move(info)) {}
  ~RemoteDevice() override {
    try {
      auto p = std::make_shared<std::promise<void>>();
      auto f = p->get_future();
      c_->request(Type::Close, session_, {}, [p](Message*, std::exception_ptr) { p->set_value(); });
      f.wait_for(std::chrono::seconds(30));
    } catch (...) {
    }
  }
  rt::DeviceInfo info() override { return info_; }
  void load_program(const obj::Program& prog, const std::vector<int>& chips) override {
    Writer w;
    w.u32(std::uint32_t(chips.size()));
    for (int c : chips) w.i32(c);
    w.bytes(obj::write_object(prog));
    call(Type::LoadProgram, w);
  }
  void load_tensor(const rt::TensorLoad& tl, const io::Tensor& t) override {
    Writer w;
    put(w, tl);
    put(w, t);
    call(Type::LoadTensor, w);
  }
  io::Tensor read_symbol(int chip, const std::string& s) override {
    Writer w;
    w.i32(chip);
    w.str(s);
    auto m = call(Type::ReadSymbol, w);
    Reader r(m.payload, "READ_SYMBOL reply");
    auto t = get_tensor(r);
    r.end();
    return t;
  }
  void set_reg(int chip, int reg, std::uint32_t v) override {
    Writer w;
    w.i32(chip);
    w.i32(reg);
    w.u32(v);
    call(Type::SetReg, w);
  }
  rt::RunResult run(const rt::RunRequest& q) override {
    Writer w;
    put(w, q);
    auto m = call(Type::Run, w);
    Reader r(m.payload, "RUN reply");
    auto res = get_run_result(r);
    r.end();
    return res;
  }
  std::future<rt::BatchResult> submit(rt::Batch b) override {
    Writer w;
    put(w, b);
    auto p = std::make_shared<std::promise<rt::BatchResult>>();
    auto f = p->get_future();
    c_->request(Type::Stream, session_, std::move(w.buf()), [p](Message* m, std::exception_ptr e) {
      if (e) return p->set_exception(e);
      try {
        Reader r(m->payload, "STREAM reply");
        auto res = get_batch_result(r);
        r.end();
        p->set_value(std::move(res));
      } catch (...) {
        p->set_exception(std::current_exception());
      }
    });
    return f;
  }
  nlohmann::json stats() override {
    auto m = call(Type::Stats, Writer{});
    Reader r(m.payload, "STATS reply");
    auto j = nlohmann::json::parse(r.str(std::size_t(256) << 20), nullptr, false);
    if (j.is_discarded()) throw Error("STATS reply: not JSON");
    return j;
  }

 private:
  Message call(Type t, Writer w) { return c_->call(t, session_, std::move(w.buf())); }
  std::shared_ptr<Client> c_;
  std::uint64_t session_;
  rt::DeviceInfo info_;
};

}  // namespace

std::unique_ptr<rt::Device> Client::open(const rt::DeviceSpec& spec) {
  Writer w;
  put(w, spec);
  auto m = call(Type::Open, 0, std::move(w.buf()));
  Reader r(m.payload, "OPEN reply");
  const auto id = r.u64();
  auto info = get_info(r);
  r.end();
  return std::make_unique<RemoteDevice>(shared_from_this(), id, std::move(info));
}

std::unique_ptr<rt::Device> open_remote(const std::string& host_port, const rt::DeviceSpec& spec, const ClientOptions& opt) {
  auto c = Client::connect(host_port, opt);
  return c->open(spec);  // the device keeps the connection
}

int run_remote(const RemoteRunOptions& o, std::ostream& out) {
  auto prog = obj::load_object(o.program);
  auto spec = rt::spec_for_program(prog, o.preset, o.set, o.timing_only);
  ClientOptions co;
  if (!o.token_file.empty()) co.token = read_token_file(o.token_file);
  auto dev = open_remote(o.address, spec, co);
  auto files = o.files;
  files.program = o.program;
  return rt::run_files(*dev, files, out);
}

}  // namespace lpu::net
