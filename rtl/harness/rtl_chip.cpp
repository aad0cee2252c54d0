// RtlChip: the Verilated lpu_mini behind a cycle-level C++ interface (rtl/include/lpu/rtl/rtl_chip.hpp).
#include "lpu/rtl/rtl_chip.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <iterator>
#include <map>
#include <optional>
#include <string_view>

#include "lpu/common/errors.hpp"
#include "lpu/isa/isa.hpp"
#include "lpu/rtl/rtl_config.hpp"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "Vlpu_mini.h"
#include "verilated.h"
#include "verilated_fst_c.h"
#pragma GCC diagnostic pop

namespace lpu::rtl {

namespace {

constexpr int kQueues = 2 * cfg::MEM_SLICES_PER_HEMI * cfg::MEM_QUEUES + cfg::VXM_QUEUES +
                        2 * cfg::SXM_QUEUES + cfg::MXM_QUEUES;
constexpr int kMem = 2 * cfg::MEM_SLICES_PER_HEMI;
constexpr int kPos = kMem + 3 + cfg::MXM_PLANES;
constexpr int kS = cfg::NSTREAMS;
constexpr int kImemWords = 1 << 10;  // lpu_mini IMEM_AW = 10

// Load port kinds (lpu_mini.sv).
enum LdKind : std::uint8_t { kLdImem = 0, kLdLen = 1, kLdSram = 2, kLdReg = 3, kLdPerm = 4, kLdDma = 5 };

std::uint64_t get_bits(const std::uint32_t* w, std::size_t lsb, int n) {
  std::uint64_t r = 0;
  for (int i = 0; i < n; ++i) {
    std::size_t b = lsb + std::size_t(i);
    r |= std::uint64_t((w[b / 32] >> (b % 32)) & 1u) << i;
  }
  return r;
}
void get_bytes(const std::uint32_t* w, std::size_t lsb, std::uint8_t* out, std::size_t n) {
  std::memcpy(out, reinterpret_cast<const std::uint8_t*>(w) + lsb / 8, n);  // little-endian host
}
void put_bytes(std::uint32_t* w, std::size_t lsb, const std::uint8_t* in, std::size_t n) {
  std::memcpy(reinterpret_cast<std::uint8_t*>(w) + lsb / 8, in, n);
}

const char* error_text(int code) {
  switch (code) {
    case 1: return "read of an empty stream";
    case 2: return "stream conflict: two writes of one stream register in one cycle";
    case 3: return "address out of range";
    case 4: return "SRAM port conflict";
    case 5: return "REPEAT without an instruction before it";
    case 6: return "REPEAT delay shorter than the instruction's occupancy";
    case 7: return "NOP 0";
    case 8: return "instruction not executable by this unit";
    case 9: return "RECV: nothing has arrived on the link by this cycle";
    case 10: return "DMAIN: the host has provided no more vectors";
    case 11: return "MM: no weights installed in this plane yet";
    case 12: return "MM: type mismatch with the installed weights";
    case 13: return "MMA into an accumulator holding another type";
    case 14: return "ACCRD before its MM completes (mxm_mm latency)";
    case 15: return "ACCRD of an accumulator no MM wrote";
    case 16: return "permutation table not defined";
    case 17: return "structural hazard (RTL restriction)";
    case 18: return "FIFO full";
    case 19: return "stream id beyond the chip's streams";
    case 20: return "SYNC is never released: every unfinished queue is parked";
    case 21: return "LWM to a plane this hemisphere does not have";
    default: return "unknown error";
  }
}

// A preset number by its key (the keys of cfg::kPresetValues); nullopt for a key this does not
// know (a number gen_cfg.py started to bake in without a check here).
std::optional<long long> preset_number(const ChipParams& p, std::string_view key) {
  if (key.starts_with("latency.")) {
    for (int c = 0; c < isa::kNumLatClasses; ++c)
      if (isa::kLatClassNames[std::size_t(c)] == key.substr(8)) return p.lat(isa::LatClass(c));
    return std::nullopt;
  }
  static const std::map<std::string_view, int (*)(const ChipParams&)> fields = {
      {"vector.superlanes", [](const ChipParams& q) { return q.superlanes; }},
      {"stream.per_direction", [](const ChipParams& q) { return q.stream.per_direction; }},
      {"stream.hop_cycles", [](const ChipParams& q) { return q.stream.hop_cycles; }},
      {"mem.slices_per_hemisphere", [](const ChipParams& q) { return q.mem.slices_per_hemisphere; }},
      {"mem.rows", [](const ChipParams& q) { return q.mem.rows; }},
      {"mem.read_ports", [](const ChipParams& q) { return q.mem.read_ports; }},
      {"mem.write_ports", [](const ChipParams& q) { return q.mem.write_ports; }},
      {"mem.queues_per_slice", [](const ChipParams& q) { return q.mem.queues_per_slice; }},
      {"vxm.queues", [](const ChipParams& q) { return q.vxm.queues; }},
      {"mxm.planes", [](const ChipParams& q) { return q.mxm.planes; }},
      {"mxm.queues_per_plane", [](const ChipParams& q) { return q.mxm.queues_per_plane; }},
      {"mxm.accumulators", [](const ChipParams& q) { return q.mxm.accumulators; }},
      {"mxm.install_rows_per_cycle", [](const ChipParams& q) { return q.mxm.install_rows_per_cycle; }},
      {"sxm.queues_per_hemisphere", [](const ChipParams& q) { return q.sxm.queues_per_hemisphere; }},
      {"sxm.perm_tables", [](const ChipParams& q) { return q.sxm.perm_tables; }},
      {"c2c.links", [](const ChipParams& q) { return q.c2c.links; }},
      {"c2c.deskew_period", [](const ChipParams& q) { return q.c2c.deskew_period; }},
      {"dma.channels", [](const ChipParams& q) { return q.dma.channels; }},
      {"icu.notify_latency", [](const ChipParams& q) { return q.icu.notify_latency; }},
      {"icu.superlane_stagger", [](const ChipParams& q) { return q.icu.superlane_stagger; }},
  };
  auto it = fields.find(key);
  if (it == fields.end()) return std::nullopt;
  return it->second(p);
}

}  // namespace

void check_rtl_params(const ChipParams& p) {
  const auto rebuild = fmt::format("rebuild lpu_rtl (rtl/gen_cfg.py generates its configuration from configs/{}.toml)", cfg::kPreset);
  if (p.name != cfg::kPreset)
    throw ConfigError("name", fmt::format("the RTL is the '{}' chip, not '{}'", cfg::kPreset, p.name));
  for (const auto& [key, built] : cfg::kPresetValues) {
    const auto now = preset_number(p, key);
    if (!now) throw Error(fmt::format("internal: the RTL's configuration has {} = {}, which RtlChip does not check", key, built));
    if (*now != built)
      throw ConfigError(key, fmt::format("the RTL was built for preset '{}' with {} = {}, but the preset now has {}; {}", cfg::kPreset,
                                         key, built, *now, rebuild));
  }
  // every latency class of the ISA is one of them
  for (int c = 0; c < isa::kNumLatClasses; ++c) {
    if (isa::LatClass(c) == isa::LatClass::None) continue;
    const auto key = "latency." + std::string(isa::kLatClassNames[std::size_t(c)]);
    if (std::none_of(std::begin(cfg::kPresetValues), std::end(cfg::kPresetValues), [&](const auto& v) { return key == v.key; }))
      throw ConfigError(key, fmt::format("the RTL was built without this latency class; {}", rebuild));
  }
}

struct RtlChip::Impl {
  ChipParams p;
  Layout layout;
  std::unique_ptr<VerilatedContext> ctx;
  std::unique_ptr<Vlpu_mini> top;
  std::unique_ptr<VerilatedFstC> tfp;
  std::string wave_path, wave_open_path;
  obj::Program prog;
  bool is_loaded = false;
  bool running = false;  // the start edge is done: cycle 0 is visible
  bool started = false;  // first step() done
  bool flip = false;
  bool no_tr = false;
  std::int64_t cyc = 0;
  std::vector<std::deque<std::pair<std::int64_t, Vec>>> arrivals;
  std::deque<std::pair<int, Vec>> dma_pending;
  std::vector<std::vector<Vec>> dma_out;
  SendFn sink;
  std::vector<int> qmap;  // layout queue index -> RTL queue index (identical by construction)

  Impl() : p(load_preset(cfg::kPreset)), layout(p) {
    check_params();
    arrivals.resize(std::size_t(cfg::LINKS));
    dma_out.resize(std::size_t(cfg::DMA_CHANNELS));
  }

  void check_params() const {
    check_rtl_params(p);
    // The RTL's structure is fixed to these; the generated numbers must agree.
    static_assert(cfg::VBYTES == kVectorBytes, "the harness assumes 32-byte vectors");
    static_assert(cfg::HOP == 1, "the RTL moves stream values one position per cycle");
    static_assert(cfg::MXM_PLANES == 1, "the RTL has one MXM plane (east)");
    static_assert(cfg::MEM_ROWS <= 256, "the RTL addresses rows with 8 bits");
    static_assert(cfg::LAT_MEM_LWM >= 1, "an LWM reads SRAM at the end of its issue cycle");
    static_assert(cfg::LAT_MXM_MM >= 2 && cfg::LAT_SXM_TRANS >= 17 && cfg::LAT_SXM_TRANS <= 33,
                  "latencies outside what the RTL implements");
    if (layout.num_positions() != kPos || int(layout.queues().size()) != kQueues)
      throw lpu::Error("RTL floorplan differs from lpu::Layout");
    // Queue order and positions: the RTL numbers queues exactly as lpu::Layout.
    for (int q = 0; q < kQueues; ++q) {
      int pos;
      if (q < kMem * cfg::MEM_QUEUES) {
        int m = q / cfg::MEM_QUEUES;
        pos = m < cfg::MEM_SLICES_PER_HEMI ? cfg::MEM_SLICES_PER_HEMI - m : cfg::MEM_SLICES_PER_HEMI + 2 + (m - cfg::MEM_SLICES_PER_HEMI);
      } else if (q < kMem * cfg::MEM_QUEUES + cfg::VXM_QUEUES) {
        pos = cfg::MEM_SLICES_PER_HEMI + 1;
      } else if (q < kMem * cfg::MEM_QUEUES + cfg::VXM_QUEUES + 2 * cfg::SXM_QUEUES) {
        pos = (q - kMem * cfg::MEM_QUEUES - cfg::VXM_QUEUES) < cfg::SXM_QUEUES ? 0 : kMem + 2;
      } else {
        pos = kMem + 3;
      }
      if (layout.queue(QueueId{q}).position != pos)
        throw lpu::Error(fmt::format("RTL queue {} sits at position {}, lpu::Layout says {} ({})", q, pos,
                                layout.queue(QueueId{q}).position, layout.queue(QueueId{q}).name));
    }
  }

  // ---- clocking ------------------------------------------------------------------------------
  std::uint64_t tnow() const { return std::uint64_t(cyc) * 1000u; }
  void eval_dump(std::uint64_t t) {
    top->eval();
    if (tfp) tfp->dump(t);
  }
  // One clock edge with the current inputs (load phase: no trace).
  void edge() {
    top->clk = 1;
    top->eval();
    top->clk = 0;
    top->eval();
  }

  void load_item(std::uint8_t kind, int sel, int addr, const std::uint8_t* data, std::size_t n) {
    top->ld_v = 1;
    top->ld_kind = kind;
    top->ld_sel = std::uint8_t(sel);
    top->ld_addr = std::uint16_t(addr);
    std::memset(top->ld_data.data(), 0, sizeof(top->ld_data));
    if (data) put_bytes(top->ld_data.data(), 0, data, n);
    edge();
    top->ld_v = 0;
  }

  // Host writes before the run starts (the first observation or step()).
  void host_item(std::uint8_t kind, int sel, int addr, const std::uint8_t* data, std::size_t n) {
    if (!is_loaded) throw lpu::Error("RtlChip: host access before load()");
    if (running) throw lpu::Error("RtlChip: registers and SRAM can only be written before the run starts");
    load_item(kind, sel, addr, data, n);
  }

  // The start edge (go for one clock): from then on the outputs describe cycle 0.
  void ensure_running() {
    if (running || !is_loaded) return;
    open_trace();
    top->go = 1;
    top->clk = 1;
    top->eval();
    top->go = 0;
    top->clk = 0;
    running = true;
    set_inputs();
    eval_dump(tnow());
  }

  // Inputs of the current cycle: a link vector arriving in cycle a is presented in a - 1 (the
  // RTL takes it into the link's FIFO at the end of that cycle); a late one as soon as possible.
  void set_inputs() {
    top->rx_v = 0;
    for (int l = 0; l < cfg::LINKS; ++l) {
      auto& a = arrivals[std::size_t(l)];
      if (!a.empty() && a.front().first <= cyc + 1) {
        top->rx_v |= std::uint8_t(1u << l);
        put_bytes(top->rx_d.data(), std::size_t(l) * 256, a.front().second.data(), kVectorBytes);
      }
    }
    top->tst_flip_alu = flip ? 1 : 0;
    top->tst_no_tr = no_tr ? 1 : 0;
    top->ld_v = 0;
    if (!dma_pending.empty()) {
      top->ld_v = 1;
      top->ld_kind = kLdDma;
      top->ld_sel = std::uint8_t(dma_pending.front().first);
      std::memset(top->ld_data.data(), 0, sizeof(top->ld_data));
      put_bytes(top->ld_data.data(), 0, dma_pending.front().second.data(), kVectorBytes);
    }
  }

  // Outputs of the current cycle that leave the chip.
  void collect_outputs() {
    for (int l = 0; l < cfg::LINKS; ++l) {
      if (top->tx_v & (1u << l)) {
        Vec v;
        get_bytes(top->tx_d.data(), std::size_t(l) * 256, v.data(), kVectorBytes);
        if (sink) sink(l, cyc, v);
      }
    }
    for (int c = 0; c < cfg::DMA_CHANNELS; ++c) {
      if (top->dmaout_v & (1u << c)) {
        Vec v;
        get_bytes(top->dmaout_d.data(), std::size_t(c) * 256, v.data(), kVectorBytes);
        dma_out[std::size_t(c)].push_back(v);
      }
    }
  }

  void step() {
    if (!is_loaded) throw lpu::Error("RtlChip: step() before load()");
    ensure_running();
    started = true;
    // this cycle's link and DMA inputs are latched at this edge
    for (auto& a : arrivals)
      if (!a.empty() && a.front().first <= cyc + 1) a.pop_front();
    if (top->ld_v && !dma_pending.empty()) dma_pending.pop_front();
    top->clk = 1;
    eval_dump(tnow() + 500);
    ++cyc;
    top->clk = 0;
    set_inputs();
    eval_dump(tnow());
    collect_outputs();
  }

  void open_trace() {
    if (wave_path.empty()) return;
    tfp = std::make_unique<VerilatedFstC>();
    top->trace(tfp.get(), 99);
    std::string fst = wave_path;
    if (fst.size() >= 4 && fst.substr(fst.size() - 4) == ".vcd") fst += ".tmp.fst";
    tfp->open(fst.c_str());
    wave_open_path = fst;
  }

  void close_trace() {
    if (!tfp) return;
    tfp->close();
    tfp.reset();
    if (wave_open_path != wave_path) {  // VCD: convert
      std::string cmd = fmt::format("fst2vcd -f '{}' -o '{}' >/dev/null 2>&1", wave_open_path, wave_path);
      int rc = std::system(cmd.c_str());
      std::filesystem::remove(wave_open_path);
      if (rc != 0) throw lpu::Error(fmt::format("fst2vcd failed writing {}", wave_path));
    }
    wave_open_path.clear();
  }

  void load(const obj::Program& pr, const std::string& origin) {
    close_trace();
    const auto& g = pr.geometry;
    auto mism = [&](const char* what, long long a, long long b) {
      if (a != b)
        throw FormatError(fmt::format("object was assembled for preset '{}' with {} = {}, the RTL ('{}') has {}",
                                      g.preset, what, a, p.name, b));
    };
    mism("vector_bytes", g.vector_bytes, cfg::VBYTES);
    mism("streams_per_direction", g.streams_per_direction, cfg::NSTREAMS);
    mism("mem_slices_per_hemisphere", g.mem_slices_per_hemisphere, cfg::MEM_SLICES_PER_HEMI);
    mism("mem_rows", g.mem_rows, cfg::MEM_ROWS);
    mism("vxm_queues", g.vxm_queues, cfg::VXM_QUEUES);
    mism("sxm_queues_per_hemisphere", g.sxm_queues_per_hemisphere, cfg::SXM_QUEUES);
    mism("mxm_planes", g.mxm_planes, cfg::MXM_PLANES);
    mism("mxm_queues_per_plane", g.mxm_queues_per_plane, cfg::MXM_QUEUES);
    mism("mxm_accumulators", g.mxm_accumulators, cfg::MXM_ACCS);
    obj::check_program(pr, p, layout, origin);  // symbols, data, tables, operands: in range
    for (const auto& qc : pr.queues) {
      if (!layout.find_queue(qc.name))
        throw FormatError(fmt::format("object names queue '{}', which the RTL does not have", qc.name));
      if (qc.words.size() > std::size_t(kImemWords))
        throw lpu::Error(fmt::format("queue '{}' has {} words; the RTL's instruction memory holds {}", qc.name,
                                qc.words.size(), kImemWords));
    }
    prog = pr;
    top.reset();
    ctx = std::make_unique<VerilatedContext>();
    ctx->randReset(0);  // every register and memory starts at zero
    ctx->debug(0);
    if (!wave_path.empty()) ctx->traceEverOn(true);
    top = std::make_unique<Vlpu_mini>(ctx.get(), "TOP");
    cyc = 0;
    started = false;
    running = false;
    for (auto& a : arrivals) a.clear();
    dma_pending.clear();
    for (auto& d : dma_out) d.clear();
    // reset
    top->clk = 0;
    top->rst_n = 0;
    top->go = 0;
    top->ld_v = 0;
    top->rx_v = 0;
    top->tst_flip_alu = flip ? 1 : 0;
    top->tst_no_tr = no_tr ? 1 : 0;
    top->eval();
    edge();
    top->rst_n = 1;
    top->eval();
    // program
    for (const auto& qc : pr.queues) {
      int q = layout.find_queue(qc.name)->v;
      for (std::size_t i = 0; i < qc.words.size(); ++i) {
        std::uint8_t b[8];
        std::memcpy(b, &qc.words[i], 8);
        load_item(kLdImem, q, int(i), b, 8);
      }
      load_item(kLdLen, q, int(qc.words.size()), nullptr, 0);
    }
    for (const auto& d : pr.data) {
      int m = slice_index(d.slice);
      if (m < 0) throw FormatError(fmt::format("data for '{}', not a MEM slice", d.slice));
      std::size_t rows = d.bytes.size() / kVectorBytes;
      if (d.row + rows > std::size_t(cfg::MEM_ROWS)) throw FormatError(fmt::format("data beyond the rows of {}", d.slice));
      for (std::size_t r = 0; r < rows; ++r)
        load_item(kLdSram, m, int(d.row + r), d.bytes.data() + r * kVectorBytes, kVectorBytes);
    }
    for (int r = 1; r < 16; ++r) {
      std::uint8_t b[4];
      std::memcpy(b, &pr.regs[std::size_t(r)], 4);
      load_item(kLdReg, 0, r, b, 4);
    }
    for (const auto& pt : pr.perms) {
      if (pt.sxm != "sxm.w" && pt.sxm != "sxm.e") throw FormatError(fmt::format("perm table for '{}'", pt.sxm));
      if (pt.map.size() != std::size_t(kVectorBytes)) throw FormatError("perm table size differs from the vector");
      std::uint8_t b[kVectorBytes];
      for (int i = 0; i < kVectorBytes; ++i) b[i] = std::uint8_t(pt.map[std::size_t(i)]);
      load_item(kLdPerm, pt.sxm == "sxm.w" ? 0 : 1, int(pt.index), b, kVectorBytes);
    }
    is_loaded = true;
  }

  int slice_index(const std::string& name) const {
    for (int m = 0; m < kMem; ++m)
      if (slice_name(m) == name) return m;
    return -1;
  }
  static std::string slice_name(int m) {
    return m < cfg::MEM_SLICES_PER_HEMI ? fmt::format("mem.w.{}", m) : fmt::format("mem.e.{}", m - cfg::MEM_SLICES_PER_HEMI);
  }

  std::vector<std::uint8_t> read_row(int m, int row) {
    if (!is_loaded) throw lpu::Error("RtlChip: read before load()");
    if (m < 0 || m >= kMem || row < 0 || row >= cfg::MEM_ROWS) throw lpu::Error(fmt::format("no SRAM row {} of slice {}", row, m));
    top->dbg_slice = std::uint8_t(m);
    top->dbg_row = std::uint8_t(row);
    top->eval();
    std::vector<std::uint8_t> v(kVectorBytes);
    get_bytes(top->dbg_data.data(), 0, v.data(), kVectorBytes);
    return v;
  }

  const obj::Symbol& symbol(const std::string& name) const {
    for (const auto& s : prog.symbols)
      if (s.name == name) return s;
    throw lpu::Error(fmt::format("no symbol '{}' in the program", name));
  }
};

RtlChip::RtlChip() : impl_(std::make_unique<Impl>()) {}
RtlChip::~RtlChip() {
  try {
    impl_->close_trace();
  } catch (...) {
  }
}
const ChipParams& RtlChip::params() const { return impl_->p; }
const Layout& RtlChip::layout() const { return impl_->layout; }

void RtlChip::set_wave(const std::string& path) {
  auto& I = *impl_;
  I.wave_path = path;
  if (I.is_loaded && !I.running) {
    auto prog = I.prog;
    I.load(prog, "object");
  }
}
void RtlChip::close_wave() { impl_->close_trace(); }
void RtlChip::load(const obj::Program& prog, const std::string& origin) { impl_->load(prog, origin); }
bool RtlChip::loaded() const { return impl_->is_loaded; }

void RtlChip::set_reg(int r, std::uint32_t value) {
  if (r < 1 || r > 15) throw lpu::Error(fmt::format("register r{} cannot be set (r1..r15)", r));
  std::uint8_t b[4];
  std::memcpy(b, &value, 4);
  impl_->host_item(kLdReg, 0, r, b, 4);
}
void RtlChip::write_row(int slice, int row, std::span<const std::uint8_t> bytes) {
  if (slice < 0 || slice >= kMem || row < 0 || row >= cfg::MEM_ROWS) throw lpu::Error("write_row: no such row");
  Vec v{};
  std::memcpy(v.data(), bytes.data(), std::min(bytes.size(), v.size()));
  impl_->host_item(kLdSram, slice, row, v.data(), kVectorBytes);
}
void RtlChip::write_symbol(const std::string& name, std::span<const std::uint8_t> bytes) {
  const auto s = impl_->symbol(name);
  const std::int64_t nb = obj::symbol_bytes(s);  // load checked it fits the SRAM
  if (std::int64_t(bytes.size()) != nb) throw lpu::Error(fmt::format("symbol '{}' holds {} bytes, {} given", name, nb, bytes.size()));
  const std::size_t S = s.slices.size(), V = kVectorBytes;
  for (std::size_t k = 0; k * V < bytes.size(); ++k)
    write_row(slice_index(s.slices[k % S]), int(s.start_row + k / S),
              bytes.subspan(k * V, std::min(V, bytes.size() - k * V)));
}
std::vector<std::uint8_t> RtlChip::read_row(int slice, int row) { return impl_->read_row(slice, row); }
std::vector<std::uint8_t> RtlChip::read_symbol(const std::string& name) {
  const auto s = impl_->symbol(name);
  std::vector<std::uint8_t> out(std::size_t(obj::symbol_bytes(s)), 0);
  const std::size_t S = s.slices.size(), V = kVectorBytes;
  for (std::size_t k = 0; k * V < out.size(); ++k) {
    auto row = read_row(slice_index(s.slices[k % S]), int(s.start_row + k / S));
    std::memcpy(out.data() + k * V, row.data(), std::min(V, out.size() - k * V));
  }
  return out;
}
void RtlChip::push_dma_in(int chan, std::span<const std::uint8_t> vector) {
  if (chan < 0 || chan >= cfg::DMA_CHANNELS) throw lpu::Error(fmt::format("DMA channel {} out of range", chan));
  Vec v{};
  std::memcpy(v.data(), vector.data(), std::min(vector.size(), v.size()));
  auto& I = *impl_;
  if (I.is_loaded && !I.running) {
    I.host_item(kLdDma, chan, 0, v.data(), kVectorBytes);
  } else {
    I.dma_pending.emplace_back(chan, v);
    if (I.is_loaded) {
      I.set_inputs();
      I.top->eval();
    }
  }
}
std::vector<Vec> RtlChip::take_dma_out(int chan) {
  if (chan < 0 || chan >= cfg::DMA_CHANNELS) throw lpu::Error(fmt::format("DMA channel {} out of range", chan));
  auto out = std::move(impl_->dma_out[std::size_t(chan)]);
  impl_->dma_out[std::size_t(chan)].clear();
  return out;
}
std::vector<std::pair<int, Vec>> RtlChip::dma_out_now() const {
  impl_->ensure_running();
  std::vector<std::pair<int, Vec>> out;
  if (!impl_->is_loaded) return out;
  for (int c = 0; c < cfg::DMA_CHANNELS; ++c) {
    if (impl_->top->dmaout_v & (1u << c)) {
      Vec v;
      get_bytes(impl_->top->dmaout_d.data(), std::size_t(c) * 256, v.data(), kVectorBytes);
      out.emplace_back(c, v);
    }
  }
  return out;
}
void RtlChip::receive(int link, std::int64_t arrival, std::span<const std::uint8_t> bytes) {
  auto& I = *impl_;
  if (link < 0 || link >= cfg::LINKS) throw lpu::Error(fmt::format("link {} out of range", link));
  auto& a = I.arrivals[std::size_t(link)];
  if (!a.empty() && a.back().first >= arrival)
    throw lpu::Error(fmt::format("link {}: arrivals must be in order, one per cycle (cycle {} after {})", link, arrival,
                            a.back().first));
  Vec v{};
  std::memcpy(v.data(), bytes.data(), std::min(bytes.size(), v.size()));
  a.emplace_back(arrival, v);
  if (I.is_loaded && I.running && arrival <= I.cyc + 1) {
    I.set_inputs();
    I.top->eval();
  }
}
void RtlChip::set_link_sink(SendFn fn) { impl_->sink = std::move(fn); }
void RtlChip::set_test_ignore_tr(bool on) {
  impl_->no_tr = on;  // registered by the chip: effective from the next clock edge
  if (impl_->is_loaded) impl_->top->tst_no_tr = on ? 1 : 0;
}

void RtlChip::set_test_flip_alu(bool on) {
  impl_->flip = on;  // registered by the chip: effective from the next clock edge
  if (impl_->is_loaded) impl_->top->tst_flip_alu = on ? 1 : 0;
}

void RtlChip::step() { impl_->step(); }
std::int64_t RtlChip::cycle() const { return impl_->cyc; }
bool RtlChip::finished() const {
  impl_->ensure_running(); return impl_->is_loaded && impl_->top->quiescent; }
bool RtlChip::streams_empty() const {
  impl_->ensure_running();
  const auto* w = impl_->top->obs_sv_v.data();
  for (int i = 0; i < (kPos * 2 * kS + 31) / 32; ++i)
    if (w[i]) return false;
  return true;
}
std::int64_t RtlChip::program_cycles() const {
  impl_->ensure_running();
  const auto& t = *impl_->top;
  if (!t.last_act_v) return 0;
  return std::int64_t(t.last_act) + 1 + std::int64_t(cfg::SUPERLANES - 1) * cfg::STAGGER;
}

int RtlChip::num_queues() const { return kQueues; }
bool RtlChip::issued(int q) const {
  impl_->ensure_running(); return (impl_->top->obs_iss_v >> q) & 1u; }
std::uint64_t RtlChip::issued_word(int q) const {
  impl_->ensure_running(); return get_bits(impl_->top->obs_iss_w.data(), std::size_t(q) * 64, 64); }
int RtlChip::issued_pc(int q) const {
  impl_->ensure_running();
  return int(get_bits(impl_->top->obs_iss_pc.data(), std::size_t(q) * 16, 16));
}
int RtlChip::pc(int q) const {
  impl_->ensure_running(); return int(get_bits(impl_->top->obs_pc.data(), std::size_t(q) * 16, 16)); }
bool RtlChip::stream_valid(int s, Dir d, int pos) const {
  impl_->ensure_running();
  std::size_t i = (std::size_t(pos) * 2 + (d == Dir::West ? 1 : 0)) * kS + std::size_t(s);
  return get_bits(impl_->top->obs_sv_v.data(), i, 1) != 0;
}
Vec RtlChip::stream_value(int s, Dir d, int pos) const {
  impl_->ensure_running();
  std::size_t i = (std::size_t(pos) * 2 + (d == Dir::West ? 1 : 0)) * kS + std::size_t(s);
  Vec v;
  get_bytes(impl_->top->obs_sv_d.data(), i * 256, v.data(), kVectorBytes);
  return v;
}
std::vector<RtlChip::SramWrite> RtlChip::sram_writes() const {
  impl_->ensure_running();
  const auto& t = *impl_->top;
  std::vector<SramWrite> out;
  for (int m = 0; m < kMem; ++m) {
    if (!((t.obs_sram_we >> m) & 1u)) continue;
    SramWrite w;
    w.slice = m;
    w.mask = std::uint8_t((t.obs_sram_mask >> (2 * m)) & 3u);
    for (int s = 0; s < 2; ++s) w.rows[std::size_t(s)] = int(get_bits(t.obs_sram_row.data(), std::size_t(m) * 16 + std::size_t(s) * 8, 8));
    get_bytes(t.obs_sram_d.data(), std::size_t(m) * 256, w.data.data(), kVectorBytes);
    out.push_back(w);
  }
  return out;
}
std::optional<RtlChip::AccWrite> RtlChip::acc_write() const {
  impl_->ensure_running();
  const auto& t = *impl_->top;
  if (!t.obs_acc_we) return std::nullopt;
  AccWrite a;
  a.acc = t.obs_acc_idx;
  get_bytes(t.obs_acc_d.data(), 0, a.data.data(), a.data.size());
  return a;
}
std::vector<RtlChip::WeightRow> RtlChip::weight_rows() const {
  impl_->ensure_running();
  const auto& t = *impl_->top;
  constexpr int kRowBits = std::bit_width(unsigned(cfg::VBYTES - 1));  // WROW_B of lpu_rtl_pkg
  std::vector<WeightRow> out;
  for (int i = 0; i < cfg::MEM_SLICES_PER_HEMI; ++i) {
    if (!((t.obs_wb_v >> i) & 1u)) continue;
    WeightRow w;
    w.slice = cfg::MEM_SLICES_PER_HEMI + i;
    w.row = int((t.obs_wb_row >> (kRowBits * i)) & ((1u << kRowBits) - 1));
    get_bytes(t.obs_wb_d.data(), std::size_t(i) * 256, w.data.data(), kVectorBytes);
    out.push_back(w);
  }
  return out;
}
std::optional<RtlChip::Error> RtlChip::error() const {
  impl_->ensure_running();
  const auto& t = *impl_->top;
  if (!t.err_v) return std::nullopt;
  Error e;
  e.code = t.err_code;
  e.source = t.err_src;
  e.info = t.err_info;
  e.cycle = std::int64_t(t.err_cycle);
  std::string where;
  const int es_mem = kQueues, es_vxm = es_mem + kMem, es_sxm = es_vxm + cfg::VXM_QUEUES,
            es_mxm = es_sxm + 2 * cfg::SXM_QUEUES, es_streams = es_mxm + cfg::MXM_QUEUES, es_host = es_streams + 1;
  const auto& L = impl_->layout;
  std::optional<QueueId> q;
  if (e.source < kQueues) q = QueueId{e.source};
  else if (e.source < es_vxm) e.unit = slice_name(e.source - es_mem);
  else if (e.source < es_sxm) q = QueueId{kMem * cfg::MEM_QUEUES + e.source - es_vxm};
  else if (e.source < es_mxm) q = QueueId{kMem * cfg::MEM_QUEUES + cfg::VXM_QUEUES + e.source - es_sxm};
  else if (e.source < es_streams) q = QueueId{kMem * cfg::MEM_QUEUES + cfg::VXM_QUEUES + 2 * cfg::SXM_QUEUES + e.source - es_mxm};
  else if (e.source == es_streams) e.unit = "streams";
  else if (e.source == es_host) e.unit = "host interface";
  else e.unit = "chip";
  if (q) {
    const auto& lq = L.queue(*q);
    e.unit = L.slice(lq.slice).name;
    e.queue = lq.name;
    where = (e.source < kQueues ? "queue " : "") + lq.name;
  } else {
    where = e.unit;
  }
  std::string detail;
  if (e.code == 1 || e.code == 2)
    detail = fmt::format(": s{}{} at position {}", e.info & 63, (e.info & 64) ? 'w' : 'e', e.info >> 16);
  else if (e.info)
    detail = fmt::format(" (info {})", e.info);
  e.text = fmt::format("{}{}", error_text(e.code), detail);
  e.message = fmt::format("RTL, {}, cycle {}: {}", where, e.cycle, e.text);
  return e;
}

int RtlChip::num_mem_slices() { return kMem; }
std::string RtlChip::slice_name(int slice) const { return Impl::slice_name(slice); }
int RtlChip::slice_index(const std::string& name) const { return impl_->slice_index(name); }
int RtlChip::slice_position(int slice) const { return impl_->layout.find_slice(slice_name(slice))->v; }

}  // namespace lpu::rtl
