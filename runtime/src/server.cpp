// `lpu serve`: sessions of emulated devices behind the protocol of docs/protocol.md.
//
// Threads: one I/O thread runs every socket, timer and connection state (no locks needed
// there); a pool of workers runs the engines, each session's requests in order (a serial queue
// per session), sessions in parallel. Workers post replies back to the I/O thread.
#include <fmt/format.h>

#include <atomic>
#include <utility>  // before Boost.Asio 1.74 (std::exchange in awaitable.hpp)
#include <boost/asio.hpp>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "lpu/common/parse.hpp"
#include "lpu/runtime/engine.hpp"
#include "lpu/runtime/net.hpp"

namespace lpu::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

std::pair<std::string, std::string> split_host_port(const std::string& hp);  // client.cpp

namespace {

std::vector<std::uint8_t> error_payload(Code c, const std::string& msg) {
  Writer w;
  w.u32(std::uint32_t(c));
  w.str(msg.size() > 65536 ? msg.substr(0, 65536) + "..." : msg);
  return std::move(w.buf());
}

// A session: one device, its requests in order on the worker pool.
struct Session {
  std::uint64_t id = 0;
  std::unique_ptr<rt::Engine> eng;
  std::atomic<bool> dead{false};
  std::int64_t bytes = 0;  // last known engine bytes (worker side)

  // Serial queue over the pool.
  std::mutex mu;
  std::deque<std::function<void()>> q;
  bool running = false;
};

}  // namespace

struct Conn;

// Lifetime: Server owns the Impl; handlers refer to it by plain pointer (never owning it, so no
// handler left in a stopped io_context keeps it alive); ~Server joins the I/O thread and the
// workers before the Impl goes.
struct Server::Impl {
  ServerOptions opt;
  asio::io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard;
  tcp::acceptor acceptor{io};
  asio::signal_set signals{io};
  asio::steady_timer grace{io};
  std::set<std::shared_ptr<Conn>> conns;  // I/O thread
  bool stopping = false;                  // I/O thread
  std::thread io_thread;
  std::atomic<bool> started{false}, stopped{false};
  std::mutex wait_mu;
  std::condition_variable wait_cv;

  // Counters (any thread).
  std::atomic<int> n_conns{0}, n_sessions{0};
  std::atomic<std::int64_t> bytes_held{0}, requests{0}, errors{0}, accepted{0};
  std::atomic<std::uint64_t> session_seq{0};
  std::uint64_t session_salt = 0;

  asio::thread_pool pool;  // declared last: destroyed (joined) first

  explicit Impl(ServerOptions o) : opt(std::move(o)), pool(std::size_t(opt.workers > 0 ? opt.workers : std::max(1u, std::thread::hardware_concurrency()))) {
    std::random_device rd;
    session_salt = (std::uint64_t(rd()) << 32) ^ rd();
  }

  void log(const std::string& s) {
    if (opt.log) opt.log(s);
  }

  void run_serial(const std::shared_ptr<Session>& s, std::function<void()> job) {
    {
      std::lock_guard lk(s->mu);
      s->q.push_back(std::move(job));
      if (s->running) return;
      s->running = true;
    }
    asio::post(pool, [s] {
      for (;;) {
        std::function<void()> j;
        {
          std::lock_guard lk(s->mu);
          if (s->q.empty()) {
            s->running = false;
            return;
          }
          j = std::move(s->q.front());
          s->q.pop_front();
        }
        j();
      }
    });
  }

  std::uint64_t new_session_id() {
    // Unguessable enough to catch mix-ups; the server also checks the owning connection.
    std::uint64_t x = ++session_seq * 0x9E3779B97F4A7C15ull ^ session_salt;
    x ^= x >> 31;
    return x ? x : 1;
  }

  void accept();
  void begin_stop();
  void conn_closed(const std::shared_ptr<Conn>& c);
  nlohmann::json status_json() const {
    nlohmann::json j;
    j["protocol_version"] = kVersion;
    j["connections"] = n_conns.load();
    j["sessions"] = n_sessions.load();
    j["bytes_held"] = bytes_held.load();
    j["requests"] = requests.load();
    j["errors"] = errors.load();
    j["connections_accepted"] = accepted.load();
    j["stopping"] = stopped.load();
    const auto& l = opt.limits;
    j["limits"] = {{"max_frame_payload", l.max_frame_payload},
                   {"max_message", l.max_message},
                   {"max_session_bytes", l.max_session_bytes},
                   {"max_connections", l.max_connections},
                   {"max_sessions", l.max_sessions},
                   {"max_sessions_per_connection", l.max_sessions_per_connection},
                   {"max_chips", l.max_chips},
                   {"idle_timeout_s", double(l.idle_timeout.count()) / 1e3},
                   {"frame_timeout_s", double(l.frame_timeout.count()) / 1e3},
                   {"write_timeout_s", double(l.write_timeout.count()) / 1e3}};
    return j;
  }
};

struct Conn : std::enable_shared_from_this<Conn> {
  Server::Impl& srv;
  tcp::socket sock;
  std::string peer;
  asio::steady_timer read_timer, write_timer;
  std::uint64_t read_gen = 0, write_gen = 0;
  std::array<std::uint8_t, kHeaderBytes> hdr{};
  Header cur;
  std::vector<std::uint8_t> payload;
  Reassembler re;
  std::deque<std::vector<std::uint8_t>> outq;
  std::size_t out_bytes = 0;
  bool writing = false;
  bool reading = false;       // a read is outstanding
  bool mid_frame = false;     // header read, payload pending
  bool closed = false;
  bool close_when_flushed = false;
  std::size_t inflight_bytes = 0;
  int inflight = 0;
  std::map<std::uint64_t, std::shared_ptr<Session>> sessions;

  Conn(Server::Impl& s, tcp::socket so)
      : srv(s), sock(std::move(so)), read_timer(s.io), write_timer(s.io),
        re(s.opt.limits.max_message) {
    error_code ec;
    sock.set_option(tcp::no_delay(true), ec);  // replies are small and latency matters
    auto ep = sock.remote_endpoint(ec);
    peer = ec ? "?" : fmt::format("{}:{}", ep.address().to_string(), ep.port());
  }

  const Limits& lim() const { return srv.opt.limits; }

  // ---- writing ---------------------------------------------------------------------------
  void send(std::uint16_t type, std::uint32_t request, std::uint64_t session, const std::vector<std::uint8_t>& body) {
    if (closed) return;
    for (auto& f : encode_message(type, request, session, body, lim().max_frame_payload)) {
      out_bytes += f.size();
      outq.push_back(std::move(f));
    }
    if (!writing) write_next();
  }
  void send_error(std::uint32_t request, std::uint64_t session, Code c, const std::string& msg) {
    srv.errors++;
    srv.log(fmt::format("{}: request {}: {} {}", peer, request, code_name(c), msg));
    send(std::uint16_t(Type::Error), request, session, error_payload(c, msg));
  }
  void write_next() {
    if (closed) return;
    if (outq.empty()) {
      writing = false;
      if ((close_when_flushed || srv.stopping) && inflight == 0) return close();
      maybe_read();
      return;
    }
    writing = true;
    const auto gen = ++write_gen;
    write_timer.expires_after(lim().write_timeout);
    write_timer.async_wait([self = shared_from_this(), gen](error_code ec) {
      if (ec || gen != self->write_gen || self->closed) return;
      self->srv.log(fmt::format("{}: write timeout: the client does not read its replies; closing", self->peer));
      self->srv.errors++;
      self->close();
    });
    asio::async_write(sock, asio::buffer(outq.front()), [self = shared_from_this()](error_code ec, std::size_t) {
      ++self->write_gen;
      self->write_timer.cancel();
      if (ec || self->closed) return self->close();
      self->out_bytes -= self->outq.front().size();
      self->outq.pop_front();
      self->write_next();
    });
  }

  // ---- reading ---------------------------------------------------------------------------
  bool backlogged() const {
    return inflight_bytes + out_bytes > lim().max_connection_backlog || inflight >= lim().max_in_flight;
  }
  void arm_read_timer(std::chrono::milliseconds d, bool frame) {
    const auto gen = ++read_gen;
    read_timer.expires_after(d);
    read_timer.async_wait([self = shared_from_this(), gen, frame](error_code ec) {
      if (ec || gen != self->read_gen || self->closed) return;
      if (!frame && self->inflight > 0) {  // idle only when nothing runs
        self->arm_read_timer(self->lim().idle_timeout, false);
        return;
      }
      self->send_error(frame ? self->cur.request : 0, frame ? self->cur.session : 0, Code::Timeout,
                       frame ? fmt::format("frame of request {}: {} payload bytes announced, not all arrived within {} ms; closing",
                                           self->cur.request, self->cur.length, self->lim().frame_timeout.count())
                             : fmt::format("idle for {} ms; closing", self->lim().idle_timeout.count()));
      self->close_when_flushed = true;
      error_code ig;
      self->sock.shutdown(tcp::socket::shutdown_receive, ig);  // the pending read ends: read_failed()
    });
  }
  void maybe_read() {
    if (closed || reading || close_when_flushed || srv.stopping || backlogged()) return;
    reading = true;
    mid_frame = false;
    arm_read_timer(lim().idle_timeout, false);
    asio::async_read(sock, asio::buffer(hdr), [self = shared_from_this()](error_code ec, std::size_t) { self->on_header(ec); });
  }
  // A read ended with an error: the peer hung up (close now: its replies cannot be delivered),
  // or we shut reading down (stopping, or closing after an error reply): close once the
  // running requests have replied.
  void read_failed() {
    reading = false;
    mid_frame = false;
    ++read_gen;
    read_timer.cancel();
    if ((srv.stopping || close_when_flushed) && (inflight > 0 || writing)) return;
    close();
  }
  void on_header(error_code ec) {
    if (closed) return;
    if (ec) return read_failed();
    try {
      cur = read_header(hdr, lim().max_frame_payload);
    } catch (const ProtocolError& e) {
      // The byte stream cannot be trusted any more: say why, then close.
      reading = false;
      ++read_gen;
      read_timer.cancel();
      std::uint32_t req = 0;
      for (int i = 0; i < 4; ++i) req |= std::uint32_t(hdr[std::size_t(8 + i)]) << (8 * i);
      send_error(e.code() == Code::BadFrame ? 0 : req, 0, e.code(), e.what());
      close_when_flushed = true;
      error_code ig;
      sock.shutdown(tcp::socket::shutdown_receive, ig);
      if (!writing && inflight == 0) close();
      return;
    }
    mid_frame = true;
    payload.resize(cur.length);
    arm_read_timer(lim().frame_timeout, true);
    asio::async_read(sock, asio::buffer(payload), [self = shared_from_this()](error_code ec2, std::size_t) { self->on_payload(ec2); });
  }
  void on_payload(error_code ec) {
    if (closed) return;
    reading = false;
    mid_frame = false;
    ++read_gen;
    read_timer.cancel();
    if (ec) return read_failed();
    auto r = re.feed(cur, payload);
    payload.clear();
    payload.shrink_to_fit();
    if (r.error) send_error(r.error_request, r.error_session, r.error->code(), r.error->what());
    if (r.message) handle(std::move(*r.message));
    maybe_read();
  }

  // ---- requests ----------------------------------------------------------------------------
  void handle(Message m) {
    srv.requests++;
    const auto t = m.type;
    if (t & kReplyBit) return send_error(m.request, m.session, Code::UnknownType, fmt::format("{} is a reply, not a request", type_name(t)));
    if (srv.stopping) return send_error(m.request, m.session, Code::ShuttingDown, "the server is shutting down");
    switch (Type(t)) {
      case Type::Ping: return send(std::uint16_t(t | kReplyBit), m.request, m.session, m.payload);
      case Type::Status: return send(std::uint16_t(t | kReplyBit), m.request, m.session, status_payload());
      case Type::Open: return open(std::move(m));
      case Type::Close: case Type::LoadProgram: case Type::LoadTensor: case Type::ReadSymbol: case Type::SetReg:
      case Type::Run: case Type::Stream: case Type::Stats: return dispatch(std::move(m));
      default: return send_error(m.request, m.session, Code::UnknownType, fmt::format("unknown request {}", type_name(t)));
    }
  }
  std::vector<std::uint8_t> status_payload() {
    Writer w;
    w.str(srv.status_json().dump());
    return std::move(w.buf());
  }

  void open(Message m) {
    if (int(sessions.size()) >= lim().max_sessions_per_connection)
      return send_error(m.request, 0, Code::Limit, fmt::format("a connection may hold {} sessions", lim().max_sessions_per_connection));
    if (srv.n_sessions.load() >= lim().max_sessions)
      return send_error(m.request, 0, Code::Limit, fmt::format("the server holds its maximum of {} sessions", lim().max_sessions));
    rt::DeviceSpec spec;
    try {
      Reader r(m.payload, "OPEN");
      spec = get_spec(r);
      r.end();
    } catch (const ProtocolError& e) {
      return send_error(m.request, 0, e.code(), e.what());
    }
    // Presets by name only; racks: only the server's.
    if (spec.preset.empty()) spec.preset = srv.opt.default_preset;
    if (spec.preset.find('/') != std::string::npos || spec.preset.find('\\') != std::string::npos ||
        (spec.preset.size() >= 5 && spec.preset.ends_with(".toml")))
      return send_error(m.request, 0, Code::Failed,
                        fmt::format("preset '{}': a server takes preset names from its configs/, not paths", spec.preset));
    if (!spec.rack.empty()) {
      if (srv.opt.rack.empty()) return send_error(m.request, 0, Code::Failed, "this server hosts no rack (start it with --rack FILE)");
      spec.rack = srv.opt.rack;
    }
    if (spec.chips > lim().max_chips)
      return send_error(m.request, 0, Code::Limit, fmt::format("chips = {}: a session may have at most {}", spec.chips, lim().max_chips));
    auto s = std::make_shared<Session>();
    s->id = srv.new_session_id();
    sessions[s->id] = s;
    srv.n_sessions++;
    srv.log(fmt::format("{}: session {:016x} opened", peer, s->id));
    rt::EngineLimits el;
    el.max_chips = lim().max_chips;
    el.max_bytes = lim().max_session_bytes;
    el.max_items_per_batch = lim().max_items_per_batch;
    el.max_io_bytes = std::int64_t(lim().max_message);
    el.max_run_instances = lim().max_run_instructions;
    run(s, m, [spec, el](Session& se, Message&) {
      se.eng = std::make_unique<rt::Engine>(spec, el);
      Writer w;
      w.u64(se.id);
      put(w, se.eng->info());
      return std::move(w.buf());
    }, /*on_fail_drop=*/true);
  }

  void dispatch(Message m) {
    auto it = sessions.find(m.session);
    if (it == sessions.end())
      return send_error(m.request, m.session, Code::UnknownSession,
                        fmt::format("{}: no session {:016x} on this connection", type_name(m.type), m.session));
    auto s = it->second;
    if (Type(m.type) == Type::Close) {
      sessions.erase(it);
      run(s, m, [](Session&, Message&) { return std::vector<std::uint8_t>{}; }, false, /*close=*/true);
      return;
    }
    run(s, m, [](Session& se, Message& msg) { return execute(se, msg); });
  }

  static std::vector<std::uint8_t> execute(Session& se, Message& m) {
    if (!se.eng) throw ProtocolError(Code::UnknownSession, "the session's device failed to open");
    auto& e = *se.eng;
    Reader r(m.payload, type_name(m.type));
    Writer w;
    switch (Type(m.type)) {
      case Type::LoadProgram: {
        std::vector<int> chips(r.count(4, "chips"));
        for (auto& c : chips) c = r.i32();
        auto bytes = r.bytes();
        r.end();
        auto prog = obj::read_object(bytes, "LOAD_PROGRAM object");
        e.load_program(prog, chips);
        break;
      }
      case Type::LoadTensor: {
        auto tl = get_tensor_load(r);
        auto t = get_tensor(r);
        r.end();
        e.load_tensor(tl, t);
        break;
      }
      case Type::ReadSymbol: {
        const int chip = r.i32();
        auto name = r.str(4096);
        r.end();
        put(w, e.read_symbol(chip, name));
        break;
      }
      case Type::SetReg: {
        const int chip = r.i32();
        const int reg = r.i32();
        const auto v = r.u32();
        r.end();
        e.set_reg(chip, reg, v);
        break;
      }
      case Type::Run: {
        auto q = get_run_request(r);
        r.end();
        put(w, e.run(q));
        break;
      }
      case Type::Stream: {
        auto b = get_batch(r);
        r.end();
        put(w, e.stream(b));
        break;
      }
      case Type::Stats: {
        r.end();
        w.str(e.stats().dump());
        break;
      }
      default: throw ProtocolError(Code::UnknownType, fmt::format("unknown request {}", type_name(m.type)));
    }
    return std::move(w.buf());
  }

  // Runs `fn` on the session's serial queue; replies on the I/O thread.
  template <class Fn>
  void run(const std::shared_ptr<Session>& s, Message& m, Fn fn, bool drop_on_fail = false, bool close_session = false) {
    const std::size_t nb = m.payload.size();
    inflight_bytes += nb;
    ++inflight;
    auto msg = std::make_shared<Message>(std::move(m));
    auto self = shared_from_this();
    srv.run_serial(s, [self, s, msg, fn, nb, drop_on_fail, close_session]() mutable {
      auto& sv = self->srv;
      std::vector<std::uint8_t> reply;
      Code code = Code::Internal;
      std::string err;
      bool ok = false;
      if (s->dead.load() && !close_session) {
        err = "session closed";
        code = Code::UnknownSession;
      } else {
        try {
          reply = fn(*s, *msg);
          ok = true;
        } catch (const ProtocolError& e) {
          code = e.code();
          err = e.what();
        } catch (const lpu::FormatError& e) {
          code = Code::FormatFailed;
          err = e.what();
        } catch (const lpu::Error& e) {
          code = Code::Failed;
          err = e.what();
        } catch (const std::bad_alloc&) {
          code = Code::Limit;
          err = "out of memory";
        } catch (const std::exception& e) {
          code = Code::Internal;
          err = fmt::format("internal error: {}", e.what());
        } catch (...) {
          code = Code::Internal;
          err = "internal error";
        }
      }
      bool drop = close_session || (!ok && drop_on_fail);
      // Memory accounting (worker side).
      const std::int64_t now_bytes = (s->eng && !drop) ? s->eng->bytes_held() : 0;
      sv.bytes_held += now_bytes - s->bytes;
      s->bytes = now_bytes;
      if (drop && s->eng) s->eng.reset();
      const bool counted_drop = drop && !s->dead.exchange(true);
      if (counted_drop) sv.n_sessions--;
      asio::post(sv.io, [self, s, msg, reply = std::move(reply), ok, code, err, nb, drop]() {
        self->inflight_bytes -= nb;
        --self->inflight;
        if (drop) self->sessions.erase(s->id);
        if (ok)
          self->send(std::uint16_t(msg->type | kReplyBit), msg->request, Type(msg->type) == Type::Open ? s->id : msg->session, reply);
        else
          self->send_error(msg->request, msg->session, code, err);
        if ((self->srv.stopping || self->close_when_flushed) && self->inflight == 0 && !self->writing) return self->close();
        self->maybe_read();
      });
    });
  }

  void start() { maybe_read(); }

  void close() {
    if (closed) return;
    closed = true;
    ++read_gen;
    ++write_gen;
    error_code ig;
    read_timer.cancel();
    write_timer.cancel();
    sock.shutdown(tcp::socket::shutdown_both, ig);
    sock.close(ig);
    outq.clear();
    out_bytes = 0;
    re.reset();
    // Free the sessions: queued requests are skipped, the engine freed on its queue.
    for (auto& [id, s] : sessions) {
      if (!s->dead.exchange(true)) {
        srv.n_sessions--;
        srv.log(fmt::format("{}: session {:016x} freed (connection closed)", peer, id));
      }
      srv.run_serial(s, [s, &sv = srv] {
        sv.bytes_held -= s->bytes;
        s->bytes = 0;
        s->eng.reset();
      });
    }
    sessions.clear();
    srv.conn_closed(shared_from_this());
  }
};

void Server::Impl::accept() {
  acceptor.async_accept([self = this](error_code ec, tcp::socket sock) {
    if (ec) {
      if (ec == asio::error::operation_aborted || self->stopping) return;
      self->log(fmt::format("accept: {}", ec.message()));
      return self->accept();
    }
    if (self->stopping) return;
    self->accepted++;
    auto c = std::make_shared<Conn>(*self, std::move(sock));
    if (int(self->conns.size()) >= self->opt.limits.max_connections) {
      c->send_error(0, 0, Code::Limit, fmt::format("the server holds its maximum of {} connections", self->opt.limits.max_connections));
      c->close_when_flushed = true;
      self->conns.insert(c);
      self->n_conns++;
      self->accept();
      return;
    }
    self->conns.insert(c);
    self->n_conns++;
    self->log(fmt::format("{}: connected", c->peer));
    c->start();
    self->accept();
  });
}

void Server::Impl::conn_closed(const std::shared_ptr<Conn>& c) {
  if (conns.erase(c)) {
    n_conns--;
    log(fmt::format("{}: disconnected", c->peer));
  }
  if (stopping && conns.empty()) {
    grace.cancel();
    signals.cancel();
    guard.reset();
  }
}

void Server::Impl::begin_stop() {
  if (stopping) return;
  stopping = true;
  stopped = true;
  log("shutting down: finishing running requests");
  error_code ig;
  acceptor.close(ig);
  signals.cancel();
  // Connections with nothing running close now; the others when their replies are out.
  std::vector<std::shared_ptr<Conn>> all(conns.begin(), conns.end());
  for (auto& c : all) {
    error_code ig2;
    if (c->mid_frame || c->reading) c->sock.shutdown(tcp::socket::shutdown_receive, ig2);
    if (c->inflight == 0 && !c->writing) c->close();
  }
  if (conns.empty()) {
    guard.reset();
    return;
  }
  grace.expires_after(opt.limits.shutdown_grace);
  grace.async_wait([self = this](error_code ec) {
    if (ec) return;
    self->log("shutdown grace period over: closing the remaining connections");
    std::vector<std::shared_ptr<Conn>> rest(self->conns.begin(), self->conns.end());
    for (auto& c : rest) c->close();
    self->guard.reset();
  });
}

Server::Server(ServerOptions opt) : impl_(std::make_shared<Impl>(std::move(opt))) {
  auto& I = *impl_;
  auto [host, port] = split_host_port(I.opt.listen);
  error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  if (ec) throw Error(fmt::format("--listen '{}': '{}' is not an IP address", I.opt.listen, host));
  const auto p = parse_int(port, fmt::format("--listen '{}' port", I.opt.listen), IntRange{0, 65535});
  tcp::endpoint ep(addr, static_cast<unsigned short>(p));
  I.acceptor.open(ep.protocol(), ec);
  if (!ec) I.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) I.acceptor.bind(ep, ec);
  if (!ec) I.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw Error(fmt::format("cannot listen on {}: {}", I.opt.listen, ec.message()));
  if (!I.opt.rack.empty() && !rt::have_rack())
    throw Error(fmt::format("--rack {}: this build has no rack support (lpu_rack was not built)", I.opt.rack));
}

Server::~Server() {
  if (!impl_) return;
  stop();
  wait();
  impl_->pool.join();
}

unsigned short Server::port() const {
  error_code ec;
  return impl_->acceptor.local_endpoint(ec).port();
}
std::string Server::address() const {
  error_code ec;
  auto ep = impl_->acceptor.local_endpoint(ec);
  return fmt::format("{}:{}", ep.address().to_string(), ep.port());
}

void Server::start() {
  auto& I = *impl_;
  if (I.started.exchange(true)) return;
  I.guard.emplace(I.io.get_executor());
  if (I.opt.handle_signals) {
    I.signals.add(SIGINT);
    I.signals.add(SIGTERM);
    I.signals.async_wait([self = impl_.get()](error_code ec, int sig) {
      if (ec) return;
      self->log(fmt::format("signal {}: graceful shutdown", sig));
      self->begin_stop();
    });
  }
  I.accept();
  I.io_thread = std::thread([self = impl_.get()] {
    for (;;) {
      try {
        self->io.run();
        break;
      } catch (const std::exception& e) {  // a handler threw: log, keep serving
        self->log(fmt::format("internal error in the I/O thread: {}", e.what()));
      }
    }
    {
      std::lock_guard lk(self->wait_mu);
      self->stopped = true;
    }
    self->wait_cv.notify_all();
  });
}

void Server::wait() {
  auto& I = *impl_;
  if (!I.started) return;
  if (I.io_thread.joinable()) I.io_thread.join();
}

void Server::stop() {
  auto& I = *impl_;
  if (!I.started) {
    I.stopped = true;
    return;
  }
  asio::post(I.io, [self = impl_.get()] { self->begin_stop(); });
}

nlohmann::json Server::status() const { return impl_->status_json(); }

}  // namespace lpu::net
