// Host memory of a device from its chip parameters (lpu/runtime/memory.hpp).
#include "lpu/runtime/memory.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>

#ifdef LPU_RUNTIME_HAVE_RACK
#include "lpu/rack/config.hpp"
#endif

namespace lpu::rt {

namespace {

// Byte costs of one item, measured on this implementation (glibc, 64-bit) and rounded up,
// with vectors that grow by doubling counted at twice their size:
// (A layout entry includes its node in the layout's index by name: about 96 bytes.)
constexpr double kQueue = 480;  // a queue: walker state, TRANS buffer handle, layout entry
constexpr double kLayoutQueue =
    224;                           // a queue in a separate floorplan (the engine's program check)
constexpr double kPosition = 256;  // a slice position: layout entry, unit pointers
constexpr double kDeque = 704;     // an empty std::deque (DMA channel, link inbox)
constexpr double kChipBase = 64 << 10;  // statistics, maps, scratch
constexpr double kStreamSlot = 96;      // one stream register on one diagonal: slot + its entries
constexpr double kPageRows = 64;        // model::Sram allocates SRAM in pages of 64 rows

struct Sized {
  MemoryEstimate m;
  void add(const std::string& what, const std::string& driver, double bytes) {
    for (auto& i : m.items)
      if (i.what == what) {
        i.bytes += bytes;
        return;
      }
    m.items.push_back({what, driver, bytes});
  }
};

}  // namespace

std::string format_bytes(double b) {
  if (b >= double(1ull << 40)) return fmt::format("{:.1f} TiB", b / double(1ull << 40));
  if (b >= double(1ull << 30)) return fmt::format("{:.1f} GiB", b / double(1ull << 30));
  if (b >= double(1 << 20)) return fmt::format("{:.1f} MiB", b / double(1 << 20));
  if (b >= double(1 << 10)) return fmt::format("{:.1f} KiB", b / double(1 << 10));
  return fmt::format("{:.0f} bytes", b);
}

std::string MemoryEstimate::largest(std::size_t n) const {
  std::string s;
  for (std::size_t i = 0; i < items.size() && i < n; ++i) {
    if (items[i].bytes <= 0) break;
    if (!s.empty()) s += ", ";
    s +=
        fmt::format("{} for {} ({})", format_bytes(items[i].bytes), items[i].what, items[i].driver);
  }
  return s;
}

MemoryEstimate chip_memory(const ChipParams& p, bool functional) {
  Sized s;
  const double V = p.vector_bytes();
  const double mem_slices = 2.0 * p.mem.slices_per_hemisphere;
  const double planes = p.mxm.planes;
  const double positions =
      mem_slices + 3 + planes;  // MEM, 2 SXM, VXM, MXM planes (arch/layout.hpp)
  const double q_mem = mem_slices * p.mem.queues_per_slice, q_vxm = p.vxm.queues;
  const double q_sxm = 2.0 * p.sxm.queues_per_hemisphere, q_mxm = planes * p.mxm.queues_per_plane;
  // A TRANS buffer (16 vectors) on every SXM queue: any of them may run a TRANS.
  const double trans = functional ? kLanesPerSuperlane * V : 0;
  s.add("MEM queues",
        fmt::format("mem.slices_per_hemisphere = {}, mem.queues_per_slice = {}",
                    p.mem.slices_per_hemisphere, p.mem.queues_per_slice),
        q_mem * kQueue);
  s.add("VXM queues", fmt::format("vxm.queues = {}", p.vxm.queues), q_vxm * kQueue);
  s.add("SXM queues", fmt::format("sxm.queues_per_hemisphere = {}", p.sxm.queues_per_hemisphere),
        q_sxm * (kQueue + trans));
  s.add("MXM queues",
        fmt::format("mxm.planes = {}, mxm.queues_per_plane = {}", p.mxm.planes,
                    p.mxm.queues_per_plane),
        q_mxm * kQueue);
  s.add("slices",
        fmt::format("mem.slices_per_hemisphere = {}, mxm.planes = {}", p.mem.slices_per_hemisphere,
                    p.mxm.planes),
        positions * kPosition + kChipBase);
  s.add("DMA channels and link inboxes",
        fmt::format("dma.channels = {}, c2c.links = {}", p.dma.channels, p.c2c.links),
        (2.0 * p.dma.channels + p.c2c.links) * kDeque);
  if (functional) {
    // model/src/streams.cpp: a ring of W diagonals per stream and direction, W the power of two
    // at or above the span (positions x hop + the longest latency + 16 + 64).
    int maxlat = 0;
    for (int l : p.latency) maxlat = std::max(maxlat, l);
    const double span = positions * p.stream.hop_cycles + double(maxlat) + kLanesPerSuperlane + 64;
    const double W = std::exp2(std::ceil(std::log2(std::max(span, 1.0))));
    s.add(
        "stream registers",
        fmt::format("stream.per_direction = {}, stream.hop_cycles = {}, longest latency {} cycles",
                    p.stream.per_direction, p.stream.hop_cycles, maxlat),
        2.0 * p.stream.per_direction * W * (kStreamSlot + V));
    // model/src/mxm.hpp: staging rows, accumulators (int32 and f32 views), active weights and
    // up to two installs pending (each int8 or float, V^2 bytes, counted twice), LW undo rows.
    const double A = p.mxm.accumulators;
    s.add("MXM planes",
          fmt::format("mxm.planes = {}, mxm.accumulators = {}, vector.superlanes = {}",
                      p.mxm.planes, p.mxm.accumulators, p.superlanes),
          planes * (8 * V * V + 8 * A * V + 16 * A));
    const double pages = std::ceil(double(p.mem.rows) / kPageRows);
    s.add("SRAM",
          fmt::format("mem.slices_per_hemisphere = {}, mem.rows = {}, vector.superlanes = {}",
                      p.mem.slices_per_hemisphere, p.mem.rows, p.superlanes),
          mem_slices * pages * (8 + kPageRows * V));
  }
  for (const auto& i : s.m.items) s.m.bytes += i.bytes;
  s.m.copies = "1 chip";
  return s.m;
}

namespace {

// Chips of one kind and how many of them.
struct Group {
  const ChipParams* p;
  double count;
};

MemoryEstimate estimate(const std::vector<Group>& groups, bool timing_only, bool rack) {
  Sized s;
  const bool functional = !timing_only;
  double n = 0;
  const Group* biggest = nullptr;
  double biggest_bytes = -1;
  for (const auto& g : groups) {
    const auto m = chip_memory(*g.p, functional);
    // A rack keeps its last run's chips while it builds the next; a functional pipeline keeps
    // its chips; a timing-only device keeps none (every run is a fresh timing-only chip).
    const double times = rack ? 2 * g.count : functional ? g.count : 0;
    for (const auto& i : m.items) s.add(i.what, i.driver, i.bytes * times);
    n += g.count;
    if (m.bytes > biggest_bytes) biggest_bytes = m.bytes, biggest = &g;
  }
  const int N = int(std::min(n, 1e9));
  if (rack) {
    s.m.copies = fmt::format(
        "{} chips, twice: a rack keeps its last run's chips while it builds the next", N);
  } else if (functional) {
    s.m.copies = fmt::format("{} chip{} + 1 built by each run or load", N, N == 1 ? "" : "s");
  } else {
    s.m.copies = "the timing-only chip of a run or load";
  }
  if (biggest) {
    const auto& p = *biggest->p;
    // The fresh chip a run or a load_program builds beside the current one.
    if (functional && !rack)
      for (const auto& i : chip_memory(p, true).items) s.add(i.what, i.driver, i.bytes);
    // A timing-only chip (the DMA schedule, the geometry probe) and the floorplan of the
    // program check, beside the rest.
    for (const auto& i : chip_memory(p, false).items) s.add(i.what, i.driver, i.bytes);
    // (the items exist already: chip_memory named their parameters)
    s.add("MEM queues", "",
          2.0 * p.mem.slices_per_hemisphere * p.mem.queues_per_slice * kLayoutQueue);
    s.add("VXM queues", "", double(p.vxm.queues) * kLayoutQueue);
    s.add("SXM queues", "", 2.0 * p.sxm.queues_per_hemisphere * kLayoutQueue);
    s.add("MXM queues", "", double(p.mxm.planes) * p.mxm.queues_per_plane * kLayoutQueue);
  }
  std::stable_sort(s.m.items.begin(), s.m.items.end(),
                   [](const MemoryItem& a, const MemoryItem& b) { return a.bytes > b.bytes; });
  for (const auto& i : s.m.items) s.m.bytes += i.bytes;
  return s.m;
}

}  // namespace

MemoryEstimate device_memory(const std::vector<ChipParams>& chips, bool timing_only, bool rack) {
  std::vector<Group> g;
  g.reserve(chips.size());
  for (const auto& p : chips) g.push_back({&p, 1});
  return estimate(g, timing_only, rack);
}

MemoryEstimate device_memory(const DeviceSpec& spec) {
  if (!spec.rack.empty()) {
#ifdef LPU_RUNTIME_HAVE_RACK
    const auto rc = rack::load_rack(spec.rack);
    std::vector<ChipParams> v;
    for (int c = 0; c < rc.chips; ++c) v.push_back(rc.chip(c));
    return device_memory(v, spec.timing_only, true);
#else
    throw Error(fmt::format(
        "rack '{}': this build of the runtime has no rack support (lpu_rack was not built)",
        spec.rack));
#endif
  }
  if (spec.chips < 1)
    throw Error(fmt::format("chips = {}: a device has at least 1 chip", spec.chips));
  const auto p = load_preset(spec.preset, spec.set);
  return estimate({{&p, double(spec.chips)}}, spec.timing_only, false);
}

void require_memory(const MemoryEstimate& m, std::int64_t limit, const std::string& how_to_raise) {
  if (m.bytes <= double(limit)) return;
  throw LimitError(
      fmt::format("device memory limit: this device needs up to {} of host memory ({}), more than "
                  "the limit of {}{}; "
                  "most of it: {}",
                  format_bytes(m.bytes), m.copies, format_bytes(double(limit)),
                  how_to_raise.empty() ? "" : " (" + how_to_raise + ")", m.largest(2)));
}

}  // namespace lpu::rt
