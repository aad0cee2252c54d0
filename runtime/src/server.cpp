// `lpu serve`: sessions of emulated devices behind the protocol of docs/protocol.md.
//
// Threads: one I/O thread runs every socket, timer and connection state (no locks needed
// there); a pool of workers runs the engines, each session's requests in order (a serial queue
// per session), sessions in parallel. Workers post replies back to the I/O thread.
#include <fmt/format.h>

#include <atomic>
#include <utility>  // before Boost.Asio 1.74 (std::exchange in awaitable.hpp)
#include <boost/asio.hpp>
#include <cctype>
#include <deque>
#include <fstream>
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

struct Conn;

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

  // Serial queue over the pool. A job with a gate waits (the session is parked, holding no
  // thread) while the gate's connection has too many reply bytes unsent: see Server::Impl::gate_open.
  struct Job {
    std::function<void()> fn;
    std::shared_ptr<Conn> gate;
  };
  std::mutex mu;
  std::deque<Job> q;
  bool running = false;  // a worker drains the queue
  bool parked = false;   // waiting in Server::Impl::parked for its gate to open
};

// Constant-time in the contents: the time depends on the server's token length only.
bool same_token(const std::string& want, const std::vector<std::uint8_t>& got) {
  if (want.empty()) return false;
  volatile unsigned diff = want.size() == got.size() ? 0u : 1u;
  for (std::size_t i = 0; i < want.size(); ++i)
    diff = diff | (unsigned(std::uint8_t(want[i])) ^ unsigned(got.empty() ? 0 : got[i % got.size()]));
  return diff == 0;
}

}  // namespace

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

  std::map<std::string, int> per_address;  // I/O thread: connections by peer address
  bool total_paused = false;               // I/O thread: a connection stopped reading for max_backlog

  // Counters (any thread).
  std::atomic<int> n_conns{0}, n_sessions{0};
  std::atomic<std::int64_t> bytes_held{0}, requests{0}, errors{0}, accepted{0}, refused{0}, evicted{0};
  std::atomic<std::int64_t> backlog{0};  // requests queued + replies unsent, all connections
  std::atomic<std::int64_t> unsent{0};   // replies unsent, all connections
  std::atomic<std::uint64_t> session_seq{0};
  std::uint64_t session_salt = 0;

  // Sessions whose next job waits for its connection's replies to drain.
  std::mutex gate_mu;
  std::vector<std::pair<std::shared_ptr<Session>, std::shared_ptr<Conn>>> parked;
  std::atomic<int> n_parked{0};
  std::atomic<int> n_held{0};  // connections not read because of their backlog or the total

  asio::thread_pool pool;  // declared last: destroyed (joined) first

  explicit Impl(ServerOptions o) : opt(std::move(o)), pool(std::size_t(opt.workers > 0 ? opt.workers : std::max(1u, std::thread::hardware_concurrency()))) {
    std::random_device rd;
    session_salt = (std::uint64_t(rd()) << 32) ^ rd();
  }

  void log(const std::string& s) {
    if (opt.log) opt.log(s);
  }
  void warn(const std::string& s) {
    if (opt.warn) opt.warn(s);
    else log("warning: " + s);
  }

  // Back-pressure on execution (any thread): a request may start while its connection holds
  // fewer than max_connection_backlog reply bytes unsent and the server fewer than
  // max_backlog (a connection with nothing unsent always may: its client is keeping up). So
  // replies beyond the limits are those of requests already running, one per worker at most.
  bool gate_open(const Conn& c) const;

  void run_serial(const std::shared_ptr<Session>& s, std::function<void()> job, std::shared_ptr<Conn> gate = nullptr) {
    {
      std::lock_guard lk(s->mu);
      s->q.push_back({std::move(job), std::move(gate)});
      if (s->running || s->parked) return;
      s->running = true;
    }
    asio::post(pool, [this, s] { drain(s); });
  }

  // On a worker: runs the session's jobs in order until its queue is empty or a gate is shut.
  void drain(const std::shared_ptr<Session>& s) {
    for (;;) {
      std::function<void()> j;
      std::shared_ptr<Conn> wait_for;
      {
        std::lock_guard lk(s->mu);
        if (s->q.empty()) {
          s->running = false;
          return;
        }
        auto& f = s->q.front();
        if (f.gate && !s->dead.load() && !gate_open(*f.gate)) {
          s->running = false;
          s->parked = true;
          wait_for = f.gate;
        } else {
          j = std::move(f.fn);
          s->q.pop_front();
        }
      }
      if (wait_for) return park(s, wait_for);
      j();
    }
  }

  void park(const std::shared_ptr<Session>& s, const std::shared_ptr<Conn>& c) {
    {
      std::lock_guard lk(gate_mu);
      // Re-checked under the lock: release() changes the counts before taking it.
      if (!gate_open(*c)) {
        parked.emplace_back(s, c);
        n_parked++;
        return;
      }
    }
    resume(s);
  }

  void resume(const std::shared_ptr<Session>& s) {
    {
      std::lock_guard lk(s->mu);
      s->parked = false;
      if (s->running || s->q.empty()) return;
      s->running = true;
    }
    asio::post(pool, [this, s] { drain(s); });
  }

  // After reply bytes drained or a connection closed (I/O thread): restarts parked sessions
  // whose gate is open again.
  void release() {
    if (n_parked.load() == 0) return;
    std::vector<std::shared_ptr<Session>> go;
    {
      std::lock_guard lk(gate_mu);
      for (std::size_t i = 0; i < parked.size();) {
        if (parked[i].first->dead.load() || gate_open(*parked[i].second)) {
          go.push_back(std::move(parked[i].first));
          parked[i] = std::move(parked.back());
          parked.pop_back();
          n_parked--;
        } else {
          ++i;
        }
      }
    }
    for (auto& s : go) resume(s);
  }

  // Called on the I/O thread whenever backlog bytes were released.
  void drained();

  std::uint64_t new_session_id() {
    // Unguessable enough to catch mix-ups; the server also checks the owning connection.
    std::uint64_t x = ++session_seq * 0x9E3779B97F4A7C15ull ^ session_salt;
    x ^= x >> 31;
    return x ? x : 1;
  }

  void accept();
  void admit(tcp::socket sock);
  void begin_stop();
  void conn_closed(const std::shared_ptr<Conn>& c);
  nlohmann::json status_json() const {
    nlohmann::json j;
    j["protocol_version"] = kVersion;
    j["handshake_version"] = kHandshakeVersion;
    j["token_required"] = !opt.token.empty();
    j["connections"] = n_conns.load();
    j["sessions"] = n_sessions.load();
    j["bytes_held"] = bytes_held.load();
    j["backlog_bytes"] = backlog.load();
    j["unsent_reply_bytes"] = unsent.load();
    j["sessions_waiting_for_readers"] = n_parked.load();
    j["connections_held_back"] = n_held.load();
    j["requests"] = requests.load();
    j["errors"] = errors.load();
    j["connections_accepted"] = accepted.load();
    j["connections_refused"] = refused.load();
    j["connections_evicted"] = evicted.load();
    j["stopping"] = stopped.load();
    const auto& l = opt.limits;
    j["limits"] = {{"max_frame_payload", l.max_frame_payload},
                   {"max_message", l.max_message},
                   {"max_session_bytes", l.max_session_bytes},
                   {"max_connection_backlog", l.max_connection_backlog},
                   {"max_backlog", l.max_backlog},
                   {"max_in_flight", l.max_in_flight},
                   {"max_connections", l.max_connections},
                   {"max_connections_per_address", l.max_connections_per_address},
                   {"max_sessions", l.max_sessions},
                   {"max_sessions_per_connection", l.max_sessions_per_connection},
                   {"max_sessions_per_address", l.max_sessions_per_address},
                   {"max_chips", l.max_chips},
                   {"idle_timeout_s", double(l.idle_timeout.count()) / 1e3},
                   {"auth_timeout_s", double(l.auth_timeout.count()) / 1e3},
                   {"frame_timeout_s", double(l.frame_timeout.count()) / 1e3},
                   {"write_timeout_s", double(l.write_timeout.count()) / 1e3}};
    return j;
  }
};

struct Conn : std::enable_shared_from_this<Conn> {
  Server::Impl& srv;
  tcp::socket sock;
  std::string addr;  // the peer's IP address (per-address limit)
  std::string peer;  // ADDRESS:PORT (log lines)
  asio::steady_timer read_timer, write_timer;
  std::uint64_t read_gen = 0, write_gen = 0;
  std::array<std::uint8_t, kHeaderBytes> hdr{};
  Header cur;
  std::vector<std::uint8_t> payload;
  Reassembler re;
  std::deque<std::vector<std::uint8_t>> outq;
  std::size_t out_bytes = 0;            // replies unsent (I/O thread) ...
  std::atomic<std::int64_t> unsent{0};  // ... and its copy for the workers' gate
  std::atomic<bool> gone{false};        // closed (for the workers' gate)
  bool writing = false;
  bool reading = false;       // a read is outstanding
  bool mid_frame = false;     // header read, payload pending
  bool closed = false;
  bool close_when_flushed = false;
  bool counted_address = false;  // in srv.per_address
  bool held = false;             // not read because backlogged() (counted in srv.n_held)
  bool authed = true;            // false until a HELLO with the server's token
  std::chrono::steady_clock::time_point auth_deadline, last_active;
  std::size_t inflight_bytes = 0;
  int inflight = 0;
  std::map<std::uint64_t, std::shared_ptr<Session>> sessions;

  Conn(Server::Impl& s, tcp::socket so)
      : srv(s), sock(std::move(so)), read_timer(s.io), write_timer(s.io), re(s.opt.limits.max_message) {
    error_code ec;
    sock.set_option(tcp::no_delay(true), ec);  // replies are small and latency matters
    auto ep = sock.remote_endpoint(ec);
    addr = ec ? "?" : ep.address().to_string();
    peer = ec ? "?" : fmt::format("{}:{}", addr, ep.port());
    last_active = std::chrono::steady_clock::now();
    if (!srv.opt.token.empty()) {
      // Before the handshake a client may only send a small HELLO, for a short while.
      authed = false;
      auth_deadline = last_active + lim().auth_timeout;
      re.set_max(std::min<std::size_t>(lim().max_message, kMaxHelloMessage));
    }
  }
  static constexpr std::size_t kMaxHelloMessage = 64 << 10;

  const Limits& lim() const { return srv.opt.limits; }

  // Every change of the bytes a connection holds goes through here (I/O thread).
  void add_unsent(std::int64_t d) {
    out_bytes = std::size_t(std::int64_t(out_bytes) + d);
    unsent += d;
    srv.unsent += d;
    srv.backlog += d;
    if (d < 0) srv.drained();
  }
  // A reply made on a worker counts as unsent from then on (the gate of the session's next
  // request sees it at once), until the I/O thread has queued its frames (uncount_made).
  void count_made(std::int64_t n) {
    unsent += n;
    srv.unsent += n;
    srv.backlog += n;
  }
  void uncount_made(std::int64_t n) {
    unsent -= n;
    srv.unsent -= n;
    srv.backlog -= n;
    srv.drained();
  }
  void add_inflight(std::int64_t d) {
    inflight_bytes = std::size_t(std::int64_t(inflight_bytes) + d);
    srv.backlog += d;
    if (d < 0) srv.drained();
  }

  // ---- writing ---------------------------------------------------------------------------
  void send(std::uint16_t type, std::uint32_t request, std::uint64_t session, const std::vector<std::uint8_t>& body) {
    if (closed) return;
    for (auto& f : encode_message(type, request, session, body, lim().max_frame_payload)) {
      add_unsent(std::int64_t(f.size()));
      outq.push_back(std::move(f));
    }
    if (!writing) write_next();
  }
  void send_error(std::uint32_t request, std::uint64_t session, Code c, const std::string& msg) {
    srv.errors++;
    srv.log(fmt::format("{}: request {}: {} {}", peer, request, code_name(c), msg));
    send(std::uint16_t(Type::Error), request, session, error_payload(c, msg));
  }
  // An error after which the connection cannot go on: the reply, then close.
  void fatal(std::uint32_t request, std::uint64_t session, Code c, const std::string& msg) {
    send_error(request, session, c, msg);
    close_when_flushed = true;
    error_code ig;
    sock.shutdown(tcp::socket::shutdown_receive, ig);
    if (!writing && inflight == 0) close();
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
      self->srv.log(fmt::format("{}: write timeout: the client has not read a reply frame in {} ms ({} bytes of replies "
                                "unsent); closing",
                                self->peer, self->lim().write_timeout.count(), self->out_bytes));
      self->srv.errors++;
      self->close();
    });
    asio::async_write(sock, asio::buffer(outq.front()), [self = shared_from_this()](error_code ec, std::size_t) {
      ++self->write_gen;
      self->write_timer.cancel();
      if (ec || self->closed) return self->close();
      self->last_active = std::chrono::steady_clock::now();
      const auto n = std::int64_t(self->outq.front().size());
      self->outq.pop_front();
      self->add_unsent(-n);
      self->write_next();
    });
  }

  // ---- reading ---------------------------------------------------------------------------
  // Back-pressure on input: no more requests from a connection over its own backlog, nor from
  // one holding anything while the server is over its total.
  bool backlogged() {
    const auto mine = inflight_bytes + out_bytes;
    if (mine > lim().max_connection_backlog || inflight >= lim().max_in_flight) return true;
    if (mine > 0 && srv.backlog.load() > std::int64_t(lim().max_backlog)) {
      srv.total_paused = true;
      return true;
    }
    return false;
  }
  void arm_read_timer(std::chrono::milliseconds d, bool frame) {
    const auto gen = ++read_gen;
    read_timer.expires_after(d);
    read_timer.async_wait([self = shared_from_this(), gen, frame](error_code ec) {
      if (ec || gen != self->read_gen || self->closed) return;
      if (!frame && self->authed && self->inflight > 0) {  // idle only when nothing runs
        self->arm_read_timer(self->lim().idle_timeout, false);
        return;
      }
      std::string why = frame ? fmt::format("frame of request {}: {} payload bytes announced, not all arrived within {} ms; closing",
                                            self->cur.request, self->cur.length, self->lim().frame_timeout.count())
                        : !self->authed ? fmt::format("no HELLO with this server's token within {} ms; closing",
                                                      self->lim().auth_timeout.count())
                                        : fmt::format("idle for {} ms; closing", self->lim().idle_timeout.count());
      self->send_error(frame ? self->cur.request : 0, frame ? self->cur.session : 0, Code::Timeout, why);
      self->close_when_flushed = true;
      error_code ig;
      self->sock.shutdown(tcp::socket::shutdown_receive, ig);  // the pending read ends: read_failed()
    });
  }
  void set_held(bool h) {
    if (h == held) return;
    held = h;
    srv.n_held += h ? 1 : -1;
  }
  void maybe_read() {
    if (closed || reading || close_when_flushed || srv.stopping) return;
    if (backlogged()) return set_held(true);
    set_held(false);
    reading = true;
    mid_frame = false;
    auto wait = lim().idle_timeout;
    if (!authed)
      wait = std::max(std::chrono::milliseconds(0), std::chrono::duration_cast<std::chrono::milliseconds>(
                                                        auth_deadline - std::chrono::steady_clock::now()));
    arm_read_timer(wait, false);
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
      fatal(e.code() == Code::BadFrame ? 0 : req, 0, e.code(), e.what());
      return;
    }
    if (!authed && cur.length > kMaxHelloMessage) {
      reading = false;
      ++read_gen;
      read_timer.cancel();
      fatal(cur.request, cur.session, Code::Unauthorized,
            fmt::format("a frame of {} bytes before HELLO: this server requires a token first", cur.length));
      return;
    }
    mid_frame = true;
    last_active = std::chrono::steady_clock::now();
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
    last_active = std::chrono::steady_clock::now();
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
    if (!authed && t != std::uint16_t(Type::Hello))
      return fatal(m.request, m.session, Code::Unauthorized,
                   fmt::format("{}: this server requires a token: send HELLO with it first (lpu run --remote --token-file "
                               "FILE, or the LPU_TOKEN environment variable); closing",
                               type_name(t)));
    if (t & kReplyBit) return send_error(m.request, m.session, Code::UnknownType, fmt::format("{} is a reply, not a request", type_name(t)));
    if (srv.stopping) return send_error(m.request, m.session, Code::ShuttingDown, "the server is shutting down");
    switch (Type(t)) {
      case Type::Ping: return send(std::uint16_t(t | kReplyBit), m.request, m.session, m.payload);
      case Type::Status: return send(std::uint16_t(t | kReplyBit), m.request, m.session, status_payload());
      case Type::Hello: return hello(m);
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

  void hello(const Message& m) {
    Hello h;
    try {
      Reader r(m.payload, "HELLO");
      h = get_hello(r);
      r.end();
    } catch (const ProtocolError& e) {
      if (!authed) return fatal(m.request, m.session, Code::Unauthorized, e.what());
      return send_error(m.request, m.session, e.code(), e.what());
    }
    const bool required = !srv.opt.token.empty();
    if (required && !same_token(srv.opt.token, h.token)) {
      srv.log(fmt::format("{}: HELLO with a wrong or missing token", peer));
      authed = false;
      return fatal(m.request, m.session, Code::Unauthorized,
                   h.token.empty() ? "HELLO without a token: this server requires one; closing"
                                   : "HELLO: wrong token; closing");
    }
    if (!authed) {
      authed = true;
      re.set_max(lim().max_message);
    }
    Writer w;
    put(w, HelloReply{std::min(h.version, kHandshakeVersion), required});
    send(std::uint16_t(m.type | kReplyBit), m.request, m.session, w.buf());
  }

  void open(Message m) {
    if (int(sessions.size()) >= lim().max_sessions_per_connection)
      return send_error(m.request, 0, Code::Limit, fmt::format("a connection may hold {} sessions", lim().max_sessions_per_connection));
    if (srv.n_sessions.load() >= lim().max_sessions)
      return send_error(m.request, 0, Code::Limit, fmt::format("the server holds its maximum of {} sessions", lim().max_sessions));
    if (lim().max_sessions_per_address > 0) {
      // One host must not take every session of the server (they are never evicted).
      std::size_t n = 0;
      for (const auto& c : srv.conns)
        if (c->addr == addr) n += c->sessions.size();
      if (n >= std::size_t(lim().max_sessions_per_address))
        return send_error(m.request, 0, Code::Limit,
                          fmt::format("the address {} holds its maximum of {} sessions (lpu serve --max-sessions-per-address)", addr,
                                      lim().max_sessions_per_address));
    }
    rt::DeviceSpec spec;
    try {
      spec = decode_open(m.payload, srv.opt);
    } catch (const ProtocolError& e) {
      return send_error(m.request, 0, e.code(), e.what());
    }
    auto s = std::make_shared<Session>();
    s->id = srv.new_session_id();
    sessions[s->id] = s;
    srv.n_sessions++;
    srv.log(fmt::format("{}: session {:016x} opened", peer, s->id));
    rt::EngineLimits el;
    el.max_chips = lim().max_chips;
    el.max_bytes = lim().max_session_bytes;
    el.max_bytes_option = "the server's session limit, lpu serve --max-session-mib";
    el.max_items_per_batch = lim().max_items_per_batch;
    el.max_io_bytes = std::int64_t(lim().max_message);
    el.max_run_instances = lim().max_run_instructions;
    // The engine computes the device's memory from its parameters before building anything
    // (rt::device_memory) and refuses it over the session limit: LIMIT.
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
    add_inflight(std::int64_t(nb));
    ++inflight;
    auto msg = std::make_shared<Message>(std::move(m));
    auto self = shared_from_this();
    // CLOSE frees memory: it never waits for the client to read its replies.
    auto gate = close_session ? nullptr : self;
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
        } catch (const rt::LimitError& e) {
          code = Code::Limit;
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
      const auto made = std::int64_t(ok ? reply.size() : err.size()) + std::int64_t(kHeaderBytes);
      self->count_made(made);
      asio::post(sv.io, [self, s, msg, reply = std::move(reply), ok, code, err, nb, drop, made]() {
        --self->inflight;
        if (drop) self->sessions.erase(s->id);
        if (ok)
          self->send(std::uint16_t(msg->type | kReplyBit), msg->request, Type(msg->type) == Type::Open ? s->id : msg->session, reply);
        else
          self->send_error(msg->request, msg->session, code, err);
        self->uncount_made(made);
        self->add_inflight(-std::int64_t(nb));
        if ((self->srv.stopping || self->close_when_flushed) && self->inflight == 0 && !self->writing) return self->close();
        self->maybe_read();
      });
    }, std::move(gate));
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
    gone = true;
    set_held(false);
    add_unsent(-std::int64_t(out_bytes));
    re.reset();
    // Free the sessions: queued requests are skipped, the engine freed on its queue.
    for (auto& entry : sessions) {
      const auto& s = entry.second;  // not a structured binding: clang 14 cannot capture those
      if (!s->dead.exchange(true)) {
        srv.n_sessions--;
        srv.log(fmt::format("{}: session {:016x} freed (connection closed)", peer, entry.first));
      }
      srv.run_serial(s, [s, &sv = srv] {
        sv.bytes_held -= s->bytes;
        s->bytes = 0;
        s->eng.reset();
      });
    }
    sessions.clear();
    srv.release();  // its parked sessions run on (and skip their requests)
    srv.conn_closed(shared_from_this());
  }

  // Nothing of the client's is kept here: closing it loses nothing but the connection.
  bool evictable() const {
    return !closed && !close_when_flushed && sessions.empty() && inflight == 0 && !writing && outq.empty() && !mid_frame;
  }
};

bool Server::Impl::gate_open(const Conn& c) const {
  const auto u = c.unsent.load();
  if (c.gone.load() || u == 0) return true;
  return u < std::int64_t(opt.limits.max_connection_backlog) && unsent.load() < std::int64_t(opt.limits.max_backlog);
}

void Server::Impl::drained() {
  release();
  if (total_paused && backlog.load() <= std::int64_t(opt.limits.max_backlog)) {
    total_paused = false;
    std::vector<std::shared_ptr<Conn>> all(conns.begin(), conns.end());
    for (auto& c : all) c->maybe_read();
  }
}

void Server::Impl::accept() {
  acceptor.async_accept([self = this](error_code ec, tcp::socket sock) {
    if (ec) {
      if (ec == asio::error::operation_aborted || self->stopping) return;
      self->log(fmt::format("accept: {}", ec.message()));
      return self->accept();
    }
    if (self->stopping) return;
    self->admit(std::move(sock));
    self->accept();
  });
}

// A new connection: refused (LIMIT, then closed) when its address holds its maximum, or when
// the server is full and no connection can make room; a full server first evicts the
// connection idle longest among those that hold nothing (no session, nothing running or
// unsent), so that idle or stalled clients cannot lock well-behaved ones out.
void Server::Impl::admit(tcp::socket sock) {
  accepted++;
  auto c = std::make_shared<Conn>(*this, std::move(sock));
  const auto& l = opt.limits;
  auto refuse = [&](const std::string& why) {
    refused++;
    log(fmt::format("{}: refused: {}", c->peer, why));
    conns.insert(c);
    n_conns++;
    c->send_error(0, 0, Code::Limit, why);
    c->close_when_flushed = true;
  };
  auto& at_addr = per_address[c->addr];
  if (l.max_connections_per_address > 0 && at_addr >= l.max_connections_per_address) {
    if (at_addr == 0) per_address.erase(c->addr);
    return refuse(fmt::format("the address {} holds its maximum of {} connections (lpu serve --max-connections-per-address)",
                              c->addr, l.max_connections_per_address));
  }
  if (int(conns.size()) >= l.max_connections) {
    std::shared_ptr<Conn> victim;
    for (const auto& o : conns)
      if (o->evictable() && (!victim || o->last_active < victim->last_active)) victim = o;
    if (!victim) {
      if (at_addr == 0) per_address.erase(c->addr);
      return refuse(fmt::format("the server holds its maximum of {} connections (lpu serve --max-connections)", l.max_connections));
    }
    evicted++;
    log(fmt::format("{}: evicted: the server is full and this connection held nothing and was idle the longest", victim->peer));
    victim->send_error(0, 0, Code::Limit,
                       fmt::format("the server holds its maximum of {} connections and a new client needs one: this "
                                   "connection held no session and was idle the longest; closing",
                                   l.max_connections));
    victim->close_when_flushed = true;
    error_code ig;
    victim->sock.shutdown(tcp::socket::shutdown_receive, ig);
  }
  at_addr++;
  c->counted_address = true;
  conns.insert(c);
  n_conns++;
  log(fmt::format("{}: connected", c->peer));
  c->start();
}

void Server::Impl::conn_closed(const std::shared_ptr<Conn>& c) {
  if (conns.erase(c)) {
    n_conns--;
    log(fmt::format("{}: disconnected", c->peer));
  }
  if (c->counted_address) {
    c->counted_address = false;
    auto it = per_address.find(c->addr);
    if (it != per_address.end() && --it->second <= 0) per_address.erase(it);
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

rt::DeviceSpec decode_open(std::span<const std::uint8_t> payload, const ServerOptions& opt) {
  Reader r(payload, "OPEN");
  auto spec = get_spec(r);
  r.end();
  // Presets by name only; racks: only the server's.
  if (spec.preset.empty()) spec.preset = opt.default_preset;
  if (spec.preset.find('/') != std::string::npos || spec.preset.find('\\') != std::string::npos ||
      (spec.preset.size() >= 5 && spec.preset.ends_with(".toml")))
    throw ProtocolError(Code::Failed, fmt::format("preset '{}': a server takes preset names from its configs/, not paths", spec.preset));
  if (!spec.rack.empty()) {
    if (opt.rack.empty()) throw ProtocolError(Code::Failed, "this server hosts no rack (start it with --rack FILE)");
    spec.rack = opt.rack;
  }
  if (spec.chips > opt.limits.max_chips)
    throw ProtocolError(Code::Limit, fmt::format("chips = {}: a session may have at most {}", spec.chips, opt.limits.max_chips));
  return spec;
}

OpenPlan plan_open(std::span<const std::uint8_t> payload, const ServerOptions& opt) {
  OpenPlan p;
  p.spec = decode_open(payload, opt);
  try {
    p.memory = rt::device_memory(p.spec);
    rt::require_memory(p.memory, opt.limits.max_session_bytes, "the server's session limit, lpu serve --max-session-mib");
  } catch (const rt::LimitError& e) {
    throw ProtocolError(Code::Limit, e.what());
  } catch (const ProtocolError&) {
    throw;
  } catch (const lpu::Error& e) {
    throw ProtocolError(Code::Failed, e.what());
  }
  return p;
}

std::string read_token_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(fmt::format("--token-file {}: cannot read it", path));
  std::string t;
  char buf[4097];
  f.read(buf, sizeof buf);
  t.assign(buf, std::size_t(f.gcount()));
  while (!t.empty() && std::isspace(static_cast<unsigned char>(t.back()))) t.pop_back();
  if (t.size() > 4096) throw Error(fmt::format("--token-file {}: a token has at most 4096 bytes", path));
  if (t.empty()) throw Error(fmt::format("--token-file {}: the file is empty", path));
  return t;
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
  if (I.opt.token.empty() && !addr.is_loopback())
    I.warn(fmt::format("listening on {} without a token: anyone who can reach this port can run programs here "
                       "(lpu serve --token-file FILE; docs/protocol.md, \"Authentication\")",
                       I.opt.listen));
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
