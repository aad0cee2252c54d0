#pragma once
// The network server (`lpu serve`) and the remote backend of the runtime API, over TCP with
// the protocol of docs/protocol.md (lpu/runtime/protocol.hpp). Boost.Asio underneath; nothing
// of it shows here.
//
// Server contract: any number of concurrent connections, each with its own sessions (a session
// is one device: it sees only its own programs, weights and results); requests of one session
// run in order, sessions in parallel on a pool of emulation threads. Malformed, truncated,
// oversized or out-of-order frames, a wrong version, an unknown session, a client that
// disconnects mid-transfer or reads too slowly: an ERROR reply with a code and a message
// (and, when the byte stream can no longer be trusted, the connection closed) - never a crash,
// never another session disturbed; a dead connection's sessions are freed. Resources are
// bounded (Limits): a session's memory is computed from its preset before it is allocated;
// replies a client does not read hold back its requests (back-pressure) up to a write timeout;
// connections per address are limited and a full server evicts an idle connection that holds
// nothing. With a token, only clients that present it get past HELLO. stop() (or
// SIGINT/SIGTERM with handle_signals) is graceful: no new connections or requests, requests
// already running finish and get their replies, then everything closes.
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <vector>

#include "lpu/common/errors.hpp"
#include "lpu/runtime/device.hpp"
#include "lpu/runtime/memory.hpp"
#include "lpu/runtime/protocol.hpp"

namespace lpu::net {

// Server limits (docs/protocol.md, "Limits"; `lpu serve` options in parentheses).
struct Limits {
  std::uint32_t max_frame_payload = kMaxFramePayload;
  std::size_t max_message = std::size_t(256) << 20;          // one reassembled request
  // A session's memory: its device's chips (rt::device_memory, computed from the preset before
  // anything is allocated) plus the programs and weights it holds (--max-session-mib).
  std::int64_t max_session_bytes = std::int64_t(2) << 30;
  // Requests queued + replies unsent. Beyond the first, a connection's requests are neither read
  // nor started until its client reads its replies (--max-connection-backlog-mib); beyond the
  // second, the same for every connection holding anything (--max-backlog-mib).
  std::size_t max_connection_backlog = std::size_t(64) << 20;
  std::size_t max_backlog = std::size_t(1) << 30;
  int max_in_flight = 1024;                                  // requests queued per connection
  int max_connections = 256;                                 // (--max-connections)
  int max_connections_per_address = 32;                      // 0: no limit (--max-connections-per-address)
  int max_sessions = 256;                                    // the whole server (--max-sessions)
  int max_sessions_per_connection = 16;
  int max_sessions_per_address = 64;                         // 0: no limit (--max-sessions-per-address)
  int max_chips = 16;                                        // per session (--max-chips)
  int max_items_per_batch = 1 << 16;
  std::int64_t max_run_instructions = 2'000'000'000;         // instruction instances of one run
  std::chrono::milliseconds idle_timeout{std::chrono::minutes(10)};  // no frame, nothing running (--idle-timeout)
  std::chrono::milliseconds auth_timeout{std::chrono::seconds(10)};  // connect to HELLO, with a token (--auth-timeout)
  std::chrono::milliseconds frame_timeout{std::chrono::seconds(30)};  // header read to its payload read (--frame-timeout)
  std::chrono::milliseconds write_timeout{std::chrono::seconds(60)};  // one reply frame to drain (--write-timeout)
  std::chrono::milliseconds shutdown_grace{std::chrono::seconds(30)};  // running requests at stop()
};

struct ServerOptions {
  std::string listen = "127.0.0.1:0";  // HOST:PORT (port 0: any free port, see Server::port())
  std::string default_preset = "lp30"; // for sessions that name none
  std::string rack;                    // rack file hosted for DeviceSpec.rack == "rack"
  int workers = 0;                     // emulation threads (0: hardware concurrency)
  bool handle_signals = false;         // SIGINT/SIGTERM -> stop()
  // Shared secret (read_token_file): when set, every connection must start with a HELLO that
  // carries it (compared in constant time) or is closed with UNAUTHORIZED.
  std::string token;
  Limits limits;
  std::function<void(const std::string&)> log;   // one line per event worth knowing (optional)
  std::function<void(const std::string&)> warn;  // warnings (unset: log, prefixed "warning: ")
};

// A token from a file: its contents without trailing whitespace (a newline from `echo`).
// Throws lpu::Error if the file cannot be read, is empty, or holds more than 4096 bytes.
std::string read_token_file(const std::string& path);

// The server's handling of an OPEN request up to allocating the session, for the fuzz target
// (fuzz/fuzz_open.cpp) and the server itself. decode_open: the DeviceSpec and the server's
// policy (preset names only, only its own rack, chips per session). plan_open: that, then the
// preset with its overrides and the device's memory against the session limit, computed as
// the engine computes it before building anything. Both throw ProtocolError with the reply's
// code (MALFORMED, LIMIT, FAILED) and message.
rt::DeviceSpec decode_open(std::span<const std::uint8_t> payload, const ServerOptions& opt);
struct OpenPlan {
  rt::DeviceSpec spec;
  rt::MemoryEstimate memory;
};
OpenPlan plan_open(std::span<const std::uint8_t> payload, const ServerOptions& opt);

class Server {
 public:
  explicit Server(ServerOptions opt);  // binds; throws lpu::Error if it cannot
  ~Server();                           // stop() and wait()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  unsigned short port() const;
  std::string address() const;  // "127.0.0.1:PORT"
  void start();                 // serves on background threads
  void wait();                  // until stopped
  void stop();                  // graceful (see above); returns at once, wait() for the end
  nlohmann::json status() const;  // connections, sessions, bytes held, requests, errors

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

// An ERROR reply, thrown by the remote backend. what() is the server's message, which for
// runtime errors is exactly the local backend's message.
class RemoteError : public lpu::Error {
 public:
  RemoteError(Code c, const std::string& msg) : lpu::Error(msg), code_(c) {}
  Code code() const { return code_; }

 private:
  Code code_;
};

struct ClientOptions {
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(10)};
  std::uint32_t max_frame_payload = kMaxFramePayload;
  std::size_t max_message = std::size_t(1) << 30;
  // The server's token: sent in a HELLO before anything else. Unset: the environment variable
  // LPU_TOKEN if it is set and not empty, else no HELLO (a server without a token).
  std::optional<std::string> token;
};

// One connection to a server; thread-safe; any number of devices (sessions) on it.
class Client : public std::enable_shared_from_this<Client> {
 public:
  static std::shared_ptr<Client> connect(const std::string& host_port, const ClientOptions& opt = {});
  ~Client();
  std::unique_ptr<rt::Device> open(const rt::DeviceSpec& spec);
  nlohmann::json status();
  std::vector<std::uint8_t> ping(const std::vector<std::uint8_t>& payload);
  // One request; `done` runs on the client's I/O thread with the reply, or with an exception
  // (RemoteError for an ERROR reply, lpu::Error when the connection is lost).
  void request(Type type, std::uint64_t session, std::vector<std::uint8_t> payload,
               std::function<void(Message*, std::exception_ptr)> done);
  Message call(Type type, std::uint64_t session, std::vector<std::uint8_t> payload);  // blocking
  void close();
  const std::string& address() const;

  struct Impl;

 private:
  Client() = default;
  std::shared_ptr<Impl> impl_;
};

// A device on a server: connect + open.
std::unique_ptr<rt::Device> open_remote(const std::string& host_port, const rt::DeviceSpec& spec,
                                        const ClientOptions& opt = {});

// `lpu run --remote HOST:PORT prog.lpo ...`: the options of `lpu run` (same syntax), run on a
// server. Files are read and written here; the server sees only their contents.
struct RemoteRunOptions {
  std::string address;               // HOST:PORT
  std::string program;               // .lpo
  std::string preset;                // empty: the program's .preset
  std::vector<std::string> set;      // --set
  bool timing_only = false;
  std::string token_file;            // --token-file (else LPU_TOKEN, see ClientOptions::token)
  rt::RunFiles files;                // --input --output --reg --dma-in --dma-out --stats -q
};
int run_remote(const RemoteRunOptions& o, std::ostream& out);

}  // namespace lpu::net
