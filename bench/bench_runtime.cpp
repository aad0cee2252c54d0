// bench_runtime: requests per second and wall-clock latency percentiles of small streamed
// requests (examples/stream_axpb_i8.lpa on mini: y = x * w + b per item), through the local
// backend and through an `lpu serve` server over loopback (in this process, its own I/O and
// emulation threads), and the ratio. Measures and prints, never asserts.
//
//   build/bin/bench_runtime [requests=2000] [items_per_request=1] [in_flight=8]
//
// "sequential": one request at a time (latency); "pipelined": `in_flight` requests submitted
// ahead (throughput). The emulated figures (device time) are identical on both backends.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <deque>
#include <random>

#include "lpu/asm/assembler.hpp"
#include "lpu/common/parse.hpp"
#include "lpu/runtime/device.hpp"
#include "lpu/runtime/engine.hpp"
#include "lpu/runtime/net.hpp"

using namespace lpu;
using Clock = std::chrono::steady_clock;

namespace {

struct Figures {
  double rps = 0, p50 = 0, p90 = 0, p99 = 0;  // requests/s, seconds
  double pipelined_rps = 0;
  double emulated_items_per_s = 0, emulated_p50 = 0;
};

rt::Batch make_batch(std::mt19937_64& g, int items) {
  rt::Batch b;
  for (int i = 0; i < items; ++i) {
    rt::Bytes x(32);
    for (auto& v : x) v = std::uint8_t(g());
    b.items.push_back(std::move(x));
  }
  return b;
}

Figures measure(rt::Device& d, int requests, int items, int in_flight) {
  auto prog = assembler::assemble_file(std::string(LPU_SOURCE_DIR) + "/examples/stream_axpb_i8.lpa", load_preset("mini")).program;
  d.load_program(prog);
  io::Tensor w{io::ElemType::I8, {32}, std::vector<std::uint8_t>(32, 3)};
  d.load_tensor({0, "w", "w"}, w);
  d.load_tensor({0, "b", "b"}, w);
  std::mt19937_64 g(1);
  for (int i = 0; i < 50; ++i) d.stream(make_batch(g, items));  // warm up (schedules cached)

  Figures f;
  std::vector<double> lat;
  lat.reserve(std::size_t(requests));
  const auto t0 = Clock::now();
  for (int i = 0; i < requests; ++i) {
    auto b = make_batch(g, items);
    const auto s = Clock::now();
    d.stream(std::move(b));
    lat.push_back(std::chrono::duration<double>(Clock::now() - s).count());
  }
  const double seq = std::chrono::duration<double>(Clock::now() - t0).count();
  f.rps = requests / seq;
  f.p50 = rt::percentile(lat, 50);
  f.p90 = rt::percentile(lat, 90);
  f.p99 = rt::percentile(lat, 99);

  std::deque<std::future<rt::BatchResult>> q;
  const auto t1 = Clock::now();
  for (int i = 0; i < requests; ++i) {
    if (int(q.size()) >= in_flight) {
      q.front().get();
      q.pop_front();
    }
    q.push_back(d.submit(make_batch(g, items)));
  }
  while (!q.empty()) {
    q.front().get();
    q.pop_front();
  }
  f.pipelined_rps = requests / std::chrono::duration<double>(Clock::now() - t1).count();
  auto j = d.stats();
  f.emulated_items_per_s = j["stream"]["items_per_s"].get<double>();
  f.emulated_p50 = j["stream"]["latency_s"]["p50"].get<double>();
  return f;
}

void row(const char* name, const Figures& f) {
  fmt::print("{:<8} {:>12.0f} {:>10.1f} {:>10.1f} {:>10.1f} {:>16.0f} {:>14.4g} {:>12.4g}\n", name, f.rps, f.p50 * 1e6, f.p90 * 1e6,
             f.p99 * 1e6, f.pipelined_rps, f.emulated_items_per_s, f.emulated_p50);
}

}  // namespace

int main(int argc, char** argv) {
  const int requests = argc > 1 ? std::max(1, int(lpu::parse_int(argv[1], "requests", lpu::IntRange{1, 1 << 30}))) : 2000;
  const int items = argc > 2 ? std::max(1, int(lpu::parse_int(argv[2], "items", lpu::IntRange{1, 1 << 30}))) : 1;
  const int in_flight = argc > 3 ? std::max(1, int(lpu::parse_int(argv[3], "in flight", lpu::IntRange{1, 1 << 30}))) : 8;
  rt::DeviceSpec spec;
  spec.preset = "mini";

  fmt::print("bench_runtime: {} requests of {} item(s) (32-byte vectors, mini, y = x*w + b); pipelined: {} in flight\n",
             requests, items, in_flight);
  fmt::print("{:<8} {:>12} {:>10} {:>10} {:>10} {:>16} {:>14} {:>12}\n", "backend", "requests/s", "p50 us", "p90 us", "p99 us",
             "pipelined req/s", "emul. items/s", "emul. p50 s");
  Figures local;
  {
    auto d = rt::open_local(spec);
    local = measure(*d, requests, items, in_flight);
  }
  row("local", local);

  net::ServerOptions so;
  so.listen = "127.0.0.1:0";
  so.default_preset = "mini";
  net::Server server(so);
  server.start();
  Figures remote;
  {
    auto d = net::open_remote(server.address(), spec);
    remote = measure(*d, requests, items, in_flight);
  }
  row("remote", remote);
  fmt::print("remote/local: requests/s {:.3f}, p50 latency {:.2f}x, p90 {:.2f}x, p99 {:.2f}x, pipelined requests/s {:.3f}\n",
             remote.rps / local.rps, remote.p50 / local.p50, remote.p90 / local.p90, remote.p99 / local.p99,
             remote.pipelined_rps / local.pipelined_rps);
  fmt::print("emulated figures identical: {}\n",
             remote.emulated_items_per_s == local.emulated_items_per_s && remote.emulated_p50 == local.emulated_p50 ? "yes" : "NO");
  server.stop();
  server.wait();
  return 0;
}
