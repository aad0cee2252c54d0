// lpu serve: host emulated devices for remote clients (lpu run --remote, the runtime API's
// remote backend). Protocol and limits: docs/protocol.md. Stops gracefully on SIGINT/SIGTERM.
#include <fmt/format.h>

#include <iostream>
#include <mutex>

#include "commands.hpp"
#include "lpu/runtime/net.hpp"

namespace lpu::tools {

void add_serve(CLI::App& app, std::vector<std::pair<CLI::App*, Action>>& out) {
  // Defaults from net::Limits, so that the help text and the library agree.
  const net::Limits dl;
  auto secs = [](std::chrono::milliseconds ms) { return double(ms.count()) / 1e3; };
  auto mib = [](auto bytes) { return double(bytes) / double(1 << 20); };
  struct Opts {
    std::string listen = "127.0.0.1:7070";
    std::string preset = "lp30";
    std::string rack, token_file;
    int workers = 0;
    int max_sessions = 0, max_connections = 0, max_per_address = 0, max_sessions_per_address = 0, max_chips = 0;
    double max_session_mib = 0, max_connection_backlog_mib = 0, max_backlog_mib = 0;
    double idle_timeout = 0, auth_timeout = 0, frame_timeout = 0, write_timeout = 0;
    double max_run_instructions = 0;
    bool quiet = false;
  };
  auto o = std::make_shared<Opts>();
  o->max_sessions = dl.max_sessions;
  o->max_connections = dl.max_connections;
  o->max_per_address = dl.max_connections_per_address;
  o->max_sessions_per_address = dl.max_sessions_per_address;
  o->max_chips = dl.max_chips;
  o->max_session_mib = mib(dl.max_session_bytes);
  o->max_connection_backlog_mib = mib(dl.max_connection_backlog);
  o->max_backlog_mib = mib(dl.max_backlog);
  o->idle_timeout = secs(dl.idle_timeout);
  o->auth_timeout = secs(dl.auth_timeout);
  o->frame_timeout = secs(dl.frame_timeout);
  o->write_timeout = secs(dl.write_timeout);
  o->max_run_instructions = double(dl.max_run_instructions);
  auto* sub = app.add_subcommand("serve", "host emulated devices for remote clients (lpu run --remote, the runtime API)");
  sub->add_option("--listen", o->listen, "HOST:PORT to listen on (port 0: any free port; the address is printed)")
      ->capture_default_str();
  sub->add_option("--preset", o->preset, "chip preset for sessions that name none")->capture_default_str();
  sub->add_option("--rack", o->rack, "rack file hosted for sessions that ask for the rack")->check(CLI::ExistingFile);
  sub->add_option("--token-file", o->token_file,
                  "file holding a shared secret every client must present (lpu run --remote --token-file, or LPU_TOKEN)")
      ->check(CLI::ExistingFile);
  sub->add_option("--workers", o->workers, "emulation threads (default: one per core)")->check(CLI::NonNegativeNumber);
  sub->add_option("--max-sessions", o->max_sessions, "sessions at once, all connections together")
      ->capture_default_str()->check(CLI::PositiveNumber);
  sub->add_option("--max-connections", o->max_connections, "connections at once (a full server evicts an idle one that holds nothing)")
      ->capture_default_str()->check(CLI::PositiveNumber);
  sub->add_option("--max-connections-per-address", o->max_per_address, "connections at once from one client address (0: no limit)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  sub->add_option("--max-sessions-per-address", o->max_sessions_per_address, "sessions at once from one client address (0: no limit)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  sub->add_option("--max-chips", o->max_chips, "chips per session (pipelines)")->capture_default_str()->check(CLI::PositiveNumber);
  sub->add_option("--max-session-mib", o->max_session_mib,
                  "memory of one session, MiB: its device (computed from the preset at OPEN) + programs and weights")
      ->capture_default_str()->check(CLI::PositiveNumber);
  sub->add_option("--max-connection-backlog-mib", o->max_connection_backlog_mib,
                  "requests queued + replies unsent per connection, MiB; beyond it the connection waits for its client to read")
      ->capture_default_str()->check(CLI::PositiveNumber);
  sub->add_option("--max-backlog-mib", o->max_backlog_mib,
                  "requests queued + replies unsent of all connections, MiB; beyond it every connection holding any waits")
      ->capture_default_str()->check(CLI::PositiveNumber);
  sub->add_option("--idle-timeout", o->idle_timeout, "seconds before an idle connection (no request, nothing running) is closed")
      ->capture_default_str()->check(CLI::PositiveNumber);
  sub->add_option("--auth-timeout", o->auth_timeout, "with --token-file: seconds a new connection has to present the token")
      ->capture_default_str()->check(CLI::PositiveNumber);
  sub->add_option("--frame-timeout", o->frame_timeout, "seconds for a frame's payload to arrive once its header has")
      ->capture_default_str()->check(CLI::PositiveNumber);
  sub->add_option("--write-timeout", o->write_timeout, "seconds a client may leave a reply frame unread before it is dropped")
      ->capture_default_str()->check(CLI::PositiveNumber);
  sub->add_option("--max-run-instructions", o->max_run_instructions, "instruction instances one run may issue")
      ->capture_default_str()->check(CLI::PositiveNumber);
  sub->add_flag("-q,--quiet", o->quiet, "log nothing but the listening address and warnings");
  out.emplace_back(sub, [o]() {
    auto ms = [](double s) { return std::chrono::milliseconds(std::int64_t(std::min(s, 1e9) * 1000)); };
    auto bytes = [](double m) { return std::min(m, 1e12) * double(1 << 20); };
    net::ServerOptions so;
    so.listen = o->listen;
    so.default_preset = o->preset;
    so.rack = o->rack;
    so.workers = o->workers;
    so.handle_signals = true;
    if (!o->token_file.empty()) so.token = net::read_token_file(o->token_file);
    auto& l = so.limits;
    l.max_sessions = o->max_sessions;
    l.max_connections = o->max_connections;
    l.max_connections_per_address = o->max_per_address;
    l.max_sessions_per_address = o->max_sessions_per_address;
    l.max_chips = o->max_chips;
    l.max_session_bytes = std::int64_t(bytes(o->max_session_mib));
    l.max_connection_backlog = std::size_t(bytes(o->max_connection_backlog_mib));
    l.max_backlog = std::size_t(bytes(o->max_backlog_mib));
    l.max_run_instructions = std::int64_t(std::min(o->max_run_instructions, 9e18));
    l.idle_timeout = ms(o->idle_timeout);
    l.auth_timeout = ms(o->auth_timeout);
    l.frame_timeout = ms(o->frame_timeout);
    l.write_timeout = ms(o->write_timeout);
    auto mu = std::make_shared<std::mutex>();
    if (!o->quiet)
      so.log = [mu](const std::string& s) {
        std::lock_guard lk(*mu);
        std::cerr << "lpu serve: " << s << std::endl;
      };
    so.warn = [mu](const std::string& s) {
      std::lock_guard lk(*mu);
      std::cerr << "lpu serve: warning: " << s << std::endl;
    };
    net::Server server(so);
    server.start();
    std::cout << "lpu serve: listening on " << server.address() << std::endl;
    server.wait();
    std::cout << "lpu serve: stopped" << std::endl;
    return 0;
  });
}

}  // namespace lpu::tools
