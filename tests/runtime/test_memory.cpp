// rt::device_memory: the host memory of a device computed from its parameters, before anything
// is allocated (lpu/runtime/memory.hpp). It must bound what building the chips allocates, grow
// with every parameter that grows the model's state, and name the parameter responsible.
#include <malloc.h>

#include <functional>

#include "helpers.hpp"
#include "lpu/model/chip.hpp"
#include "lpu/runtime/memory.hpp"

using namespace lpu;
using namespace lpu::test;

namespace {

// Bytes in use by malloc (glibc; the main arena and mmapped blocks: this thread's allocations).
std::int64_t heap_in_use() {
  const auto m = mallinfo2();
  return std::int64_t(m.uordblks + m.hblkhd);
}

std::int64_t allocated_by_chip(const ChipParams& p, model::Mode mode) {
  const auto before = heap_in_use();
  auto c = std::make_unique<model::Chip>(p, mode);
  return heap_in_use() - before;
}

double item(const rt::MemoryEstimate& m, const std::string& what) {
  for (const auto& i : m.items)
    if (i.what == what) return i.bytes;
  return -1;
}

}  // namespace

TEST_CASE(
    "device_memory: bounds what building a chip allocates, for presets and parameters that grow "
    "it") {
  // Set on the parameters directly, not through the preset reader: the estimate must hold for
  // any values, within or beyond the ranges the reader accepts.
  using Set = std::function<void(ChipParams&)>;
  const std::vector<std::pair<std::string, Set>> changes = {
      {"none", [](ChipParams&) {}},
      {"sxm.queues_per_hemisphere=20000",
       [](ChipParams& p) { p.sxm.queues_per_hemisphere = 20000; }},
      {"mxm.queues_per_plane=3000", [](ChipParams& p) { p.mxm.queues_per_plane = 3000; }},
      {"mem.queues_per_slice=8, mem.slices_per_hemisphere=1000",
       [](ChipParams& p) { p.mem.queues_per_slice = 8, p.mem.slices_per_hemisphere = 1000; }},
      {"vxm.queues=256", [](ChipParams& p) { p.vxm.queues = 256; }},
      {"mem.rows=1048576", [](ChipParams& p) { p.mem.rows = 1 << 20; }},
      {"stream.hop_cycles=40", [](ChipParams& p) { p.stream.hop_cycles = 40; }},
      {"latency.mxm_mm=20000",
       [](ChipParams& p) { p.latency[std::size_t(isa::LatClass::MxmMm)] = 20000; }},
      {"mxm.planes=64", [](ChipParams& p) { p.mxm.planes = 64; }},
      {"mxm.accumulators=256, vector.superlanes=64",
       [](ChipParams& p) { p.mxm.accumulators = 256, p.superlanes = 64; }},
      {"dma.channels=256, c2c.links=256",
       [](ChipParams& p) { p.dma.channels = 256, p.c2c.links = 256; }},
  };
  for (const char* preset : {"mini", "lp30"})
    for (const auto& [what, set] : changes) {
      auto p = load_preset(preset);
      set(p);
      for (bool functional : {false, true}) {
        const auto est = rt::chip_memory(p, functional);
        const auto got =
            allocated_by_chip(p, functional ? model::Mode::Functional : model::Mode::TimingOnly);
        CAPTURE(preset);
        CAPTURE(what);
        CAPTURE(functional);
        CHECK(double(got) <= est.bytes);
      }
    }
}

TEST_CASE(
    "device_memory: every chip a device holds, its transient copies, and SRAM at its configured "
    "size") {
  auto lp30 = load_preset("lp30");
  const auto one = rt::chip_memory(lp30, true).bytes, timing = rt::chip_memory(lp30, false).bytes;
  // lp30: 470 slices x 3325 rows (52 pages of 64 rows: 3328) x 320 bytes, and 8-byte page pointers.
  CHECK(item(rt::chip_memory(lp30, true), "SRAM") == doctest::Approx(470.0 * 52 * (64 * 320 + 8)));
  CHECK(item(rt::chip_memory(lp30, false), "SRAM") == -1);  // timing-only chips have no data
  rt::DeviceSpec s;
  s.preset = "lp30";
  // One chip and the one a run builds beside it, a timing-only chip and a floorplan.
  const auto m1 = rt::device_memory(s);
  CHECK(m1.bytes > 2 * one + timing);
  CHECK(m1.bytes < 2 * one + timing + 1e6);
  CHECK(m1.items.front().what == "SRAM");
  s.chips = 4;
  CHECK(rt::device_memory(s).bytes == doctest::Approx(m1.bytes + 3 * one));
  s.timing_only = true;
  CHECK(rt::device_memory(s).bytes < 2 * timing);
  // lp30 fits the server's default session limit (2 GiB) with room for a GiB of programs and
  // weights.
  s = {};
  CHECK(rt::device_memory(s).bytes < double(std::int64_t(1) << 30) + 64e6);
}

TEST_CASE(
    "device_memory: overflow-free for any parameter, and the limit's error names the parameter") {
  auto p = load_preset("lp30");
  p.sxm.queues_per_hemisphere =
      2'000'000;  // the example: about 1 GB allocated in 9 s, before
  auto m = rt::device_memory(std::vector<ChipParams>{p}, false, false);
  CHECK(m.items.front().what == "SXM queues");
  CHECK(m.bytes > 4e9);
  auto e = error_of(
      [&] { rt::require_memory(m, std::int64_t(2) << 30, "lpu serve --max-session-mib"); });
  CAPTURE(e);
  CHECK(contains(e, "device memory limit: this device needs up to "));
  CHECK(contains(e, "more than the limit of 2.0 GiB (lpu serve --max-session-mib)"));
  CHECK(contains(e, "for SXM queues (sxm.queues_per_hemisphere = 2000000)"));
  p.sxm.queues_per_hemisphere = 2'147'483'647;
  p.stream.hop_cycles = 2'147'483'647;
  p.mem.rows = 2'147'483'647;
  m = rt::device_memory(std::vector<ChipParams>(16, p), false, false);
  CHECK(std::isfinite(m.bytes));
  CHECK(m.bytes > 1e17);
  CHECK_THROWS_AS(rt::require_memory(m, std::int64_t(1) << 50, ""), rt::LimitError);
  // A local device's memory is computed from its preset, before any chip is built: the largest
  // SRAM the ranges allow is 2 x 4096 slices x 2^20 rows x 32 bytes = 256 GiB on mini.
  rt::DeviceSpec s;
  s.preset = "mini";
  s.set = {"mem.slices_per_hemisphere=4096", "mem.rows=1048576"};
  CHECK(rt::device_memory(s).bytes > 2.7e11);
  // A value past a key's range never reaches it: the reader refuses it, naming the range.
  s.set = {"sxm.queues_per_hemisphere=1000000"};
  CHECK_THROWS_WITH(rt::device_memory(s), doctest::Contains("out of range 1..256 queues"));
}
