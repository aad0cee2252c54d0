#include "lpu/common/progress.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>

namespace lpu::progress {
namespace {

std::mutex mu;
Sink sink;                        // guarded by mu
std::atomic<bool> installed{false};  // sink is non-empty

}  // namespace

void set_sink(Sink s) {
  std::lock_guard<std::mutex> lk(mu);
  sink = std::move(s);
  installed = bool(sink);
}

void report(std::string_view phase, std::int64_t done_units, std::int64_t total) {
  if (!installed.load(std::memory_order_relaxed)) return;
  std::lock_guard<std::mutex> lk(mu);
  if (sink) sink(phase, done_units, total);
}

void done() { report("", 0, 0); }

Sink terminal_line(std::string prefix) {
  struct State {
    std::string prefix;
    std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now(), last = t0;
    bool shown = false;
    std::size_t width = 0;
  };
  auto st = std::make_shared<State>();
  st->prefix = std::move(prefix);
  return [st](std::string_view phase, std::int64_t d, std::int64_t total) {
    if (phase.empty()) {  // done: clear the line
      if (st->shown) std::fprintf(stderr, "\r%*s\r", int(st->width), "");
      std::fflush(stderr);
      st->shown = false;
      st->t0 = st->last = std::chrono::steady_clock::now();
      return;
    }
    const auto t = std::chrono::steady_clock::now();
    if (t - st->t0 < std::chrono::seconds(1)) return;
    if (st->shown && t - st->last < std::chrono::milliseconds(500)) return;
    st->last = t;
    const std::string s = total > 0 ? fmt::format("{}: {} {}/{}", st->prefix, phase, d, total)
                          : d > 0   ? fmt::format("{}: {} {}", st->prefix, phase, d)
                                    : fmt::format("{}: {}", st->prefix, phase);
    std::fprintf(stderr, "\r%-*s", int(st->width), s.c_str());
    std::fflush(stderr);
    st->width = std::max(st->width, s.size());
    st->shown = true;
  };
}

}  // namespace lpu::progress
