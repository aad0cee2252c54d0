// lpu serve: host emulated devices for remote clients (lpu run --remote, the runtime API's
// remote backend). Protocol: docs/protocol.md. Stops gracefully on SIGINT/SIGTERM.
#include <fmt/format.h>

#include <iostream>
#include <mutex>

#include "commands.hpp"
#include "lpu/runtime/net.hpp"

namespace lpu::tools {

void add_serve(CLI::App& app, std::vector<std::pair<CLI::App*, Action>>& out) {
  struct Opts {
    std::string listen = "127.0.0.1:7070";
    std::string preset = "lp30";
    std::string rack;
    int workers = 0;
    int max_sessions = 256;
    int max_connections = 256;
    int max_chips = 16;
    double max_session_mib = 1024;
    double idle_timeout = 600;
    double max_run_instructions = 2e9;
    bool quiet = false;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("serve", "host emulated devices for remote clients (lpu run --remote, the runtime API)");
  sub->add_option("--listen", o->listen, "HOST:PORT to listen on (port 0: any free port; the address is printed)")
      ->capture_default_str();
  sub->add_option("--preset", o->preset, "chip preset for sessions that name none")->capture_default_str();
  sub->add_option("--rack", o->rack, "rack file hosted for sessions that ask for the rack")->check(CLI::ExistingFile);
  sub->add_option("--workers", o->workers, "emulation threads (default: one per core)");
  sub->add_option("--max-sessions", o->max_sessions, "sessions at once, all connections together")->capture_default_str();
  sub->add_option("--max-connections", o->max_connections, "connections at once")->capture_default_str();
  sub->add_option("--max-chips", o->max_chips, "chips per session (pipelines)")->capture_default_str();
  sub->add_option("--max-session-mib", o->max_session_mib, "programs and weights one session may hold, MiB")->capture_default_str();
  sub->add_option("--idle-timeout", o->idle_timeout, "seconds before an idle connection is closed")->capture_default_str();
  sub->add_option("--max-run-instructions", o->max_run_instructions, "instruction instances one run may issue")
      ->capture_default_str();
  sub->add_flag("-q,--quiet", o->quiet, "log nothing but the listening address");
  out.emplace_back(sub, [o]() {
    net::ServerOptions so;
    so.listen = o->listen;
    so.default_preset = o->preset;
    so.rack = o->rack;
    so.workers = o->workers;
    so.handle_signals = true;
    so.limits.max_sessions = o->max_sessions;
    so.limits.max_connections = o->max_connections;
    so.limits.max_chips = o->max_chips;
    so.limits.max_session_bytes = std::int64_t(o->max_session_mib * 1024 * 1024);
    so.limits.max_run_instructions = std::int64_t(o->max_run_instructions);
    so.limits.idle_timeout = std::chrono::milliseconds(std::int64_t(o->idle_timeout * 1000));
    auto mu = std::make_shared<std::mutex>();
    if (!o->quiet)
      so.log = [mu](const std::string& s) {
        std::lock_guard lk(*mu);
        std::cerr << "lpu serve: " << s << std::endl;
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
