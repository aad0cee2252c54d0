// The runtime's core: chips, host DMA model, weights, streaming, statistics (docs/runtime.md).
#include "lpu/runtime/engine.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <set>

#include "lpu/arch/layout.hpp"
#include "lpu/arch/params.hpp"
#include "lpu/common/errors.hpp"
#include "lpu/isa/isa.hpp"
#include "lpu/isa/tensor_convert.hpp"
#include "lpu/model/chip.hpp"
#include "lpu/model/report.hpp"
#include "lpu/runtime/memory.hpp"

#ifdef LPU_RUNTIME_HAVE_RACK
#include "lpu/rack/config.hpp"
#include "lpu/rack/engine.hpp"
#include "lpu/rack/program.hpp"
#endif

namespace lpu::rt {

bool have_rack() {
#ifdef LPU_RUNTIME_HAVE_RACK
  return true;
#else
  return false;
#endif
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  p = std::clamp(p, 0.0, 100.0);
  auto rank = std::size_t(std::ceil(p / 100.0 * double(v.size())));
  if (rank == 0) rank = 1;
  return v[rank - 1];
}

namespace {

std::string shape_str(const std::vector<std::int64_t>& s) { return fmt::format("[{}]", fmt::join(s, ", ")); }

using obj::symbol_bytes;

// The file element types that hold a dtype's bits exactly.
bool elem_matches(io::ElemType e, isa::Dtype d) {
  using E = io::ElemType;
  switch (d) {
    case isa::Dtype::I8: return e == E::I8;
    case isa::Dtype::I16: return e == E::I16;
    case isa::Dtype::I32: return e == E::I32;
    case isa::Dtype::F32: return e == E::F32;
    case isa::Dtype::F16: return e == E::F16;
    case isa::Dtype::Bf16: return e == E::Bf16 || e == E::U16;
    case isa::Dtype::E4m3: return e == E::E4m3 || e == E::U8;
    case isa::Dtype::E5m2: return e == E::E5m2 || e == E::U8;
  }
  return false;
}

// Counters of `after` minus those of `before` (the model accumulates them over runs; cycles
// and configuration are per run).
model::ChipStats delta(const model::ChipStats& after, const model::ChipStats& before) {
  model::ChipStats d = after;
  for (std::size_t u = 0; u < d.units.size(); ++u) {
    d.units[u].instructions -= before.units[u].instructions;
    d.units[u].busy_cycles -= before.units[u].busy_cycles;
  }
  d.sram_bytes_read -= before.sram_bytes_read;
  d.weight_bytes_installed -= before.weight_bytes_installed;
  d.sram_bytes_written -= before.sram_bytes_written;
  d.sram_ecc_corrected -= before.sram_ecc_corrected;
  for (auto& [k, v] : d.mxm_macs) {
    auto it = before.mxm_macs.find(k);
    if (it != before.mxm_macs.end()) v -= it->second;
  }
  d.mxm_passes -= before.mxm_passes;
  d.vxm_element_ops -= before.vxm_element_ops;
  d.link_bytes_sent -= before.link_bytes_sent;
  d.link_bytes_received -= before.link_bytes_received;
  d.dma_bytes_in -= before.dma_bytes_in;
  d.dma_bytes_out -= before.dma_bytes_out;
  return d;
}

void accumulate(model::ChipStats& t, const model::ChipStats& d) {
  t.cycles += d.cycles;
  t.clock_hz = d.clock_hz;
  t.mxm_planes = d.mxm_planes;
  for (std::size_t u = 0; u < t.units.size(); ++u) {
    t.units[u].instructions += d.units[u].instructions;
    t.units[u].busy_cycles += d.units[u].busy_cycles;
    t.units[u].queues = d.units[u].queues;
  }
  t.sram_bytes_read += d.sram_bytes_read;
  t.weight_bytes_installed += d.weight_bytes_installed;
  t.sram_bytes_written += d.sram_bytes_written;
  t.sram_ecc_corrected += d.sram_ecc_corrected;
  for (const auto& [k, v] : d.mxm_macs) t.mxm_macs[k] += v;
  t.mxm_passes += d.mxm_passes;
  t.vxm_element_ops += d.vxm_element_ops;
  t.link_bytes_sent += d.link_bytes_sent;
  t.link_bytes_received += d.link_bytes_received;
  t.dma_bytes_in += d.dma_bytes_in;
  t.dma_bytes_out += d.dma_bytes_out;
}

// One direction of a chip's host link: transfers are serialised at the bandwidth and arrive
// `latency` after their last byte left.
struct HostLink {
  double bw = 64e9, lat = 0;
  double free = 0;
  struct T {
    double start, arrive;
  };
  T send(double ready, double bytes) {
    const double s = std::max(ready, free);
    free = s + bytes / bw;
    return {s, free + lat};
  }
};

// One issue event of the timing-only run: REPEAT steps accumulators and weight rows, which
// must stay in range for every instance (checked before any functional run).
void check_instance(const model::Chip::IssueEvent& e, const isa::Instr& in, const ChipParams& p, int chip) {
  if (e.repeat_count <= 1) return;
  const auto last = e.repeat_count - 1;
  const int V = p.vector_bytes();
  if ((in.op == isa::Op::Mm || in.op == isa::Op::Mma) && in.v[1] + last >= p.mxm.accumulators)
    throw Error(fmt::format("chip {}, cycle {}: {} repeated {} times steps its accumulator to {}, beyond the {} of a plane", chip,
                            e.cycle, isa::info(in.op).mnemonic, e.repeat_count, in.v[1] + last, p.mxm.accumulators));
  if (in.op == isa::Op::Accrd && in.v[0] + last >= p.mxm.accumulators)
    throw Error(fmt::format("chip {}, cycle {}: ACCRD repeated {} times steps its accumulator to {}, beyond the {} of a plane", chip,
                            e.cycle, e.repeat_count, in.v[0] + last, p.mxm.accumulators));
  if (in.op == isa::Op::Lw && in.v[1] + last >= V / isa::dtype_bytes(in.t))
    throw Error(fmt::format("chip {}, cycle {}: LW repeated {} times steps its row to {}, beyond the {} weight rows", chip, e.cycle,
                            e.repeat_count, in.v[1] + last, V / isa::dtype_bytes(in.t)));
}

// The DMA schedule of a program with given registers: the issue cycle of every DMAIN/DMAOUT
// vector, per channel, in order. Static scheduling makes it a function of program and
// registers only; a timing-only run finds it.
struct DmaSchedule {
  std::map<int, std::vector<std::int64_t>> in, out;
  model::ChipStats stats;
};

struct NullSink : model::LinkSink {
  void send(int, int, std::int64_t, std::span<const std::uint8_t>) override {}
};

DmaSchedule dry_run(const ChipParams& p, const obj::Program& prog, const std::array<std::uint32_t, 16>& regs,
                    int chip_id, bool with_links, std::int64_t max_vectors) {
  std::int64_t vectors = 0;
  model::Chip c(p, model::Mode::TimingOnly, chip_id);
  c.load(prog);
  for (int r = 1; r < 16; ++r) c.set_reg(r, regs[std::size_t(r)]);
  DmaSchedule s;
  NullSink sink;
  if (with_links) c.set_link_sink(&sink);
  const auto op_in = isa::info(isa::Op::Dmain).opcode, op_out = isa::info(isa::Op::Dmaout).opcode;
  const auto op_recv = isa::info(isa::Op::Recv).opcode;
  const auto op_mm = isa::info(isa::Op::Mm).opcode, op_mma = isa::info(isa::Op::Mma).opcode;
  const auto op_rd = isa::info(isa::Op::Accrd).opcode, op_lw = isa::info(isa::Op::Lw).opcode;
  model::Chip* cp = &c;
  c.set_issue_hook([&](const model::Chip::IssueEvent& e) {
    const auto opc = std::uint8_t(e.word >> 56);
    if (opc == op_mm || opc == op_mma || opc == op_rd || opc == op_lw) check_instance(e, isa::decode(e.word), p, chip_id);
    if (opc == op_recv && with_links) {
      // Lone dry run of a rack chip: give every RECV a placeholder arrival.
      auto in = isa::decode(e.word);
      for (std::int64_t k = 0; k < e.repeat_count; ++k)
        cp->receive(int(in.v[0]), std::numeric_limits<std::int64_t>::min(), {});
      return;
    }
    if (opc != op_in && opc != op_out) return;
    vectors += std::max<std::int64_t>(e.repeat_count, 1);
    if (vectors > max_vectors)
      throw Error(fmt::format("chip {}: the program moves more than {} vectors by host DMA in one run (from cycle {}); the "
                              "limit is {} bytes",
                              chip_id, max_vectors, e.cycle, max_vectors * p.vector_bytes()));
    auto in = isa::decode(e.word);
    auto& v = opc == op_in ? s.in[int(in.v[0])] : s.out[int(in.v[1])];
    for (std::int64_t k = 0; k < std::max<std::int64_t>(e.repeat_count, 1); ++k) v.push_back(e.cycle + k * e.repeat_delay);
  });
  c.run();
  for (auto* m : {&s.in, &s.out})
    for (auto& [ch, v] : *m) std::sort(v.begin(), v.end());
  s.stats = c.stats();
  return s;
}

struct Slot {
  int id = 0;
  ChipParams params;
  std::unique_ptr<model::Chip> chip;  // functional chips (single and pipeline backends)
  std::shared_ptr<const obj::Program> prog;
  std::int64_t prog_bytes = 0;
  std::map<std::string, Bytes> weights;  // host copies of what load_tensor wrote (racks, memory bound)
  std::map<int, std::uint32_t> regs;     // set_reg
  std::map<std::array<std::uint32_t, 16>, DmaSchedule> sched;  // cache
  model::ChipStats total;
  std::int64_t runs = 0;
  double busy_until = 0;
  HostLink in, out;
  // Racks: a program loaded since the last rack run, whose chip there runs the old one (its
  // symbols come from `weights` until the next run; the other chips' state stays readable).
  bool reloaded = false;
};

std::int64_t program_bytes(const obj::Program& p) {
  std::int64_t n = 0;
  for (const auto& q : p.queues) n += std::int64_t(q.words.size()) * 8;
  for (const auto& d : p.data) n += std::int64_t(d.bytes.size());
  for (const auto& t : p.perms) n += std::int64_t(t.map.size()) * 2;
  return n;
}

}  // namespace

struct Engine::Impl {
  DeviceSpec spec;
  EngineLimits lim;
  DeviceInfo inf;
  model::Mode mode = model::Mode::Functional;
  std::vector<Slot> slots;
  bool is_rack = false;
#ifdef LPU_RUNTIME_HAVE_RACK
  rack::RackConfig rcfg;
  std::unique_ptr<rack::Rack> last_rack;  // state after the last rack run (read_symbol)
#endif

  // Statistics.
  struct {
    std::int64_t bytes_in = 0, bytes_out = 0, transfers = 0;
    double busy_s = 0;
  } dma;
  struct {
    std::int64_t tensors = 0, bytes = 0;
    double seconds = 0;
  } weights;
  struct {
    std::int64_t items = 0, batches = 0, runs = 0;
    double first_s = -1, last_s = 0;
    std::vector<double> latency_s;
    std::vector<double> cycles;
  } sst;
  std::int64_t runs = 0;
  std::int64_t held = 0;   // programs and weights (host copies)
  std::int64_t state = 0;  // the chips themselves: device_memory, computed before allocating them
  static constexpr std::size_t kMaxSamples = 1 << 20;

  Impl(const DeviceSpec& s, const EngineLimits& l) : spec(s), lim(l) {
    mode = spec.timing_only ? model::Mode::TimingOnly : model::Mode::Functional;
    std::vector<ChipParams> params;
    if (!spec.rack.empty()) {
#ifdef LPU_RUNTIME_HAVE_RACK
      rcfg = rack::load_rack(spec.rack);
      is_rack = true;
      if (rcfg.chips > lim.max_chips)
        throw Error(fmt::format("rack '{}' has {} chips, more than the limit of {}", spec.rack, rcfg.chips, lim.max_chips));
      for (int c = 0; c < rcfg.chips; ++c) params.push_back(rcfg.chip(c));
#else
      throw Error(fmt::format("rack '{}': this build of the runtime has no rack support (lpu_rack was not built)", spec.rack));
#endif
    } else {
      if (spec.chips < 1 || spec.chips > lim.max_chips)
        throw Error(fmt::format("chips = {}: a device has 1 to {} chips", spec.chips, lim.max_chips));
      auto p = load_preset(spec.preset, spec.set);
      params.assign(std::size_t(spec.chips), p);
    }
    // Before any chip exists: a preset can ask for more memory than the limit allows.
    const auto m = device_memory(params, spec.timing_only, is_rack);
    require_memory(m, lim.max_bytes, lim.max_bytes_option);
    state = m.bytes >= 0x1p62 ? std::int64_t(1) << 62 : std::int64_t(m.bytes);
    const auto& p0 = params.at(0);
    const double bw = spec.dma_bandwidth_bytes_per_s.value_or(p0.dma.bandwidth_bytes_per_s);
    if (!(bw > 0) || !std::isfinite(bw)) throw Error(fmt::format("host DMA bandwidth {} must be a positive number of bytes/s", bw));
    const double lat_default = p0.clock_hz > 0 ? double(p0.dma.latency_cycles) / p0.clock_hz : 0.0;
    const double lat = spec.dma_latency_s.value_or(lat_default);
    if (!(lat >= 0) || !std::isfinite(lat)) throw Error(fmt::format("host DMA latency {} s must be >= 0", lat));
    slots.resize(params.size());
    for (std::size_t c = 0; c < params.size(); ++c) {
      auto& sl = slots[c];
      sl.id = int(c);
      sl.params = params[c];
      sl.in.bw = sl.out.bw = bw;
      sl.in.lat = sl.out.lat = lat;
      if (mode == model::Mode::Functional && !is_rack) sl.chip = std::make_unique<model::Chip>(sl.params, mode, int(c));
    }
    inf.kind = is_rack ? "rack" : spec.chips > 1 ? "pipeline" : "chip";
    inf.preset = p0.name;
    inf.chips = int(slots.size());
    inf.vector_bytes = p0.vector_bytes();
    inf.clock_hz = p0.clock_hz;
    inf.dma_channels = p0.dma.channels;
    inf.dma_bandwidth_bytes_per_s = bw;
    inf.dma_latency_s = lat;
    inf.timing_only = spec.timing_only;
  }

  Slot& slot(int c) {
    if (c < 0 || c >= int(slots.size()))
      throw Error(fmt::format("chip {} out of range: the device has {} chip{}", c, slots.size(), slots.size() == 1 ? "" : "s"));
    return slots[std::size_t(c)];
  }
  Slot& programmed(int c, const std::string& what) {
    auto& s = slot(c);
    if (!s.prog) throw Error(fmt::format("{}chip {} has no program: load one first", what.empty() ? "" : what + ": ", c));
    return s;
  }

  void charge(std::int64_t add) {
    if (double(state) + double(held) + double(add) > double(lim.max_bytes))
      throw LimitError(fmt::format("device memory limit: holding {} more bytes would exceed the limit of {} bytes{} (this "
                                   "device's chips take up to {} bytes, its programs and weights {} bytes)",
                                   add, lim.max_bytes, lim.max_bytes_option.empty() ? "" : " (" + lim.max_bytes_option + ")",
                                   state, held));
    held += add;
  }

  // A chip for the next run. The model's chips run once after load() (stream registers and
  // units keep the last run's state), so every run gets a new chip: the program loaded (its
  // .data initial values), then the contents of every program symbol carried over from the
  // previous chip - weights and whatever the program wrote into its symbols persist, like SRAM.
  std::unique_ptr<model::Chip> next_chip(const Slot& s) const {
    auto c = std::make_unique<model::Chip>(s.params, mode, s.id);
    c->load(*s.prog);
    if (s.chip)
      for (const auto& sym : s.prog->symbols) c->write_symbol(sym.name, s.chip->read_symbol(sym.name));
    return c;
  }

  void transfer_in(Slot& s, double bytes, double* start = nullptr) {
    auto t = s.in.send(s.busy_until, bytes);
    s.busy_until = t.arrive;
    dma.bytes_in += std::int64_t(bytes);
    dma.transfers++;
    dma.busy_s += bytes / s.in.bw;
    if (start) *start = t.start;
  }

  // ---- programs and weights ------------------------------------------------------------
  void load_program(const obj::Program& prog, const std::vector<int>& chips) {
    std::vector<int> cs = chips;
    if (cs.empty())
      for (int c = 0; c < int(slots.size()); ++c) cs.push_back(c);
    for (int c : cs) slot(c);  // range check first
    auto shared = std::make_shared<const obj::Program>(prog);
    const auto nb = program_bytes(prog);
    for (int c : cs) {
      auto& s = slot(c);
      // Checks the geometry and the object against the chip by loading it (Chip::load calls
      // obj::check_program: a hostile object is an error, never memory corruption), with a
      // timing-only chip for racks and timing-only devices.
      std::unique_ptr<model::Chip> fresh;
      if (mode == model::Mode::Functional && !is_rack) {
        fresh = std::make_unique<model::Chip>(s.params, mode, s.id);
        fresh->load(*shared);
      } else {
        model::Chip probe(s.params, model::Mode::TimingOnly, s.id);
        probe.load(*shared);
      }
      std::int64_t freed = s.prog ? s.prog_bytes : 0;
      for (const auto& [n, b] : s.weights) freed += std::int64_t(b.size());
      held -= freed;
      charge(nb);
      s.prog = shared;
      s.prog_bytes = nb;
      s.chip = std::move(fresh);
      s.weights.clear();
      s.sched.clear();
      transfer_in(s, double(nb));
      s.reloaded = true;
    }
  }

  const obj::Symbol& find_symbol(const Slot& s, const std::string& name, const std::string& origin) const {
    for (const auto& x : s.prog->symbols)
      if (x.name == name) return x;
    std::vector<std::string> names;
    for (const auto& x : s.prog->symbols) names.push_back(x.name);
    throw Error(fmt::format("{}no symbol '{}' in the program on chip {} (symbols: {})", origin.empty() ? "" : origin + ": ", name,
                            s.id, names.empty() ? "none" : fmt::format("{}", fmt::join(names, ", "))));
  }

  void load_tensor(const TensorLoad& w, const io::Tensor& t) {
    const std::string origin = w.origin.empty() ? "tensor" : w.origin;
    auto& s = programmed(w.chip, origin);
    const auto& sym = find_symbol(s, w.symbol, origin);
    const std::string decl = fmt::format("{}{}", isa::dtype_info(sym.dtype).name, shape_str(sym.shape));
    Bytes bytes;
    if (w.convert) {
      std::int64_t want = 1;
      for (auto d : sym.shape) want *= d;
      if (t.numel() != want)
        throw FormatError(fmt::format("{}: {} elements, symbol '{}' on chip {} is {} ({} elements)", origin, t.numel(), w.symbol,
                                      w.chip, decl, want));
      bytes = num::tensor_to_dtype(t, sym.dtype, origin);
    } else {
      std::vector<std::string> why;
      if (!elem_matches(t.type, sym.dtype))
        why.push_back(fmt::format("expected dtype {}, got {}", isa::dtype_info(sym.dtype).name, io::elem_name(t.type)));
      if (t.shape != sym.shape) why.push_back(fmt::format("expected shape {}, got {}", shape_str(sym.shape), shape_str(t.shape)));
      if (!why.empty())
        throw FormatError(fmt::format("{}: does not fit symbol '{}' on chip {} (declared {}): {}", origin, w.symbol, w.chip, decl,
                                      fmt::join(why, "; ")));
      if (std::int64_t(t.data.size()) != symbol_bytes(sym))
        throw FormatError(fmt::format("{}: {} bytes of data, symbol '{}' on chip {} ({}) holds {}", origin, t.data.size(), w.symbol,
                                      w.chip, decl, symbol_bytes(sym)));
      bytes = t.data;
    }
    auto it = s.weights.find(w.symbol);
    const std::int64_t old = it == s.weights.end() ? 0 : std::int64_t(it->second.size());
    held -= old;
    try {
      charge(std::int64_t(bytes.size()));
    } catch (...) {
      held += old;
      throw;
    }
    if (s.chip) s.chip->write_symbol(w.symbol, bytes);
#ifdef LPU_RUNTIME_HAVE_RACK
    if (is_rack && last_rack && !s.reloaded && last_rack->chip(w.chip)) last_rack->chip(w.chip)->write_symbol(w.symbol, bytes);
#endif
    double start = 0;
    transfer_in(s, double(bytes.size()), &start);
    weights.tensors++;
    weights.bytes += std::int64_t(bytes.size());
    weights.seconds += s.busy_until - start;
    s.weights[w.symbol] = std::move(bytes);
  }

  io::Tensor read_symbol(int c, const std::string& name) {
    auto& s = programmed(c, "read_symbol");
    const auto& sym = find_symbol(s, name, "");
    Bytes bytes;
    if (s.chip) {
      bytes = s.chip->read_symbol(name);
#ifdef LPU_RUNTIME_HAVE_RACK
    } else if (is_rack && last_rack && !s.reloaded && last_rack->has_program(c) && mode == model::Mode::Functional) {
      bytes = last_rack->read_symbol(c, name);  // under MPI, from the rank that runs chip c
#endif
    } else if (mode == model::Mode::Functional && s.weights.count(name)) {
      bytes = s.weights[name];
    } else {
      bytes.assign(std::size_t(symbol_bytes(sym)), 0);
    }
    auto t = s.out.send(s.busy_until, double(bytes.size()));
    s.busy_until = std::max(s.busy_until, t.arrive);
    dma.bytes_out += std::int64_t(bytes.size());
    dma.transfers++;
    dma.busy_s += double(bytes.size()) / s.out.bw;
    return num::dtype_to_tensor(std::move(bytes), sym.dtype, sym.shape);
  }

  void set_reg(int c, int r, std::uint32_t v) {
    slot(c);
    if (r < 1 || r > 15) throw Error(fmt::format("register r{} cannot be set (r1..r15)", r));
    slot(c).regs[r] = v;
  }

  std::array<std::uint32_t, 16> regs_for(const Slot& s, const std::vector<std::pair<int, std::uint32_t>>& extra) const {
    auto r = s.prog->regs;
    for (auto [k, v] : s.regs) r[std::size_t(k)] = v;
    for (auto [k, v] : extra) {
      if (k < 1 || k > 15) throw Error(fmt::format("register r{} cannot be set (r1..r15)", k));
      r[std::size_t(k)] = v;
    }
    r[0] = 0;
    return r;
  }

  const DmaSchedule& schedule(Slot& s, const std::array<std::uint32_t, 16>& regs) {
    auto it = s.sched.find(regs);
    if (it != s.sched.end()) return it->second;
    if (s.sched.size() >= 8) s.sched.clear();
    const auto maxv = lim.max_io_bytes / s.params.vector_bytes();
    auto d = dry_run(s.params, *s.prog, regs, s.id, is_rack, maxv);
    std::int64_t inst = 0;
    for (const auto& u : d.stats.units) inst += u.instructions;
    if (mode == model::Mode::Functional && inst > lim.max_run_instances)
      throw Error(fmt::format("chip {}: the run would issue {} instructions, more than the limit of {}", s.id, inst,
                              lim.max_run_instances));
    return s.sched.emplace(regs, std::move(d)).first->second;
  }

  // One functional run of a single chip (pipeline backend); returns outputs per channel and
  // the run's statistics.
  std::pair<std::map<int, std::vector<Bytes>>, model::ChipStats> run_chip(Slot& s, const std::array<std::uint32_t, 16>& regs,
                                                                          const std::map<int, std::vector<Bytes>>& in,
                                                                          const DmaSchedule& sch) {
    std::map<int, std::vector<Bytes>> out;
    if (!s.chip) {  // timing-only: the dry run is the run
      return {out, sch.stats};
    }
    // On an error the new chip is dropped: the device keeps its state from before the run.
    auto next = next_chip(s);
    auto& c = *next;
    for (int r = 1; r < 16; ++r) c.set_reg(r, regs[std::size_t(r)]);
    for (const auto& [ch, vs] : in) {
      auto need = sch.in.count(ch) ? sch.in.at(ch).size() : 0;
      for (std::size_t j = 0; j < vs.size() && j < need; ++j) c.push_dma_in(ch, vs[j]);
    }
    const auto before = c.stats();
    c.run();
    auto d = delta(c.stats(), before);
    for (int ch = 0; ch < s.params.dma.channels; ++ch) {
      auto v = c.take_dma_out(ch);
      if (!v.empty()) out[ch] = std::move(v);
    }
    s.chip = std::move(next);
    return {out, d};
  }

  void validate_channels(const Slot& s, int ch, const char* what) const {
    if (ch < 0 || ch >= s.params.dma.channels)
      throw Error(fmt::format("{} {} out of range: chip {} has DMA channels 0..{}", what, ch, s.id, s.params.dma.channels - 1));
  }

  // When the host starts sending a run's inputs: early enough that they arrive as the chip
  // becomes free (the next run's inputs flow while the chip computes), never further ahead -
  // a host that queued everything at once would make every item wait behind all the others.
  static double host_ready(const Slot& s, double bytes) {
    return std::max(0.0, s.busy_until - (bytes / s.in.bw + s.in.lat));
  }

  // ---- lpu run ---------------------------------------------------------------------------
  RunResult run(const RunRequest& req) {
    auto& s = programmed(req.chip, "run");
    const auto regs = regs_for(s, req.regs);
    for (const auto& [ch, vs] : req.dma_in) validate_channels(s, ch, "DMA channel");
    const int V = s.params.vector_bytes();
    for (const auto& [ch, vs] : req.dma_in)
      for (const auto& v : vs)
        if (int(v.size()) > V) throw Error(fmt::format("DMA channel {}: a vector of {} bytes, the chip's vectors have {}", ch, v.size(), V));
    const auto t0 = std::chrono::steady_clock::now();
    RunResult res;
    model::ChipStats st;
    std::map<int, std::vector<Bytes>> out;
    const DmaSchedule* sch = nullptr;
#ifdef LPU_RUNTIME_HAVE_RACK
    if (is_rack) {
      auto r = run_rack(regs_all(req.regs), req.chip, req.dma_in, req.regs);
      out = std::move(r.out);
      st = r.stats[std::size_t(req.chip)];
      sch = &r.in_sched;
      res = timing_for_run(s, *sch, req.dma_in, out, st);
      res.dma_out = std::move(out);
      finish_run(res, s, st, t0, false);
      return res;
    }
#endif
    sch = &schedule(s, regs);
    std::tie(out, st) = run_chip(s, regs, req.dma_in, *sch);
    res = timing_for_run(s, *sch, req.dma_in, out, st);
    res.dma_out = std::move(out);
    finish_run(res, s, st, t0);
    return res;
  }

  // Host DMA timing of one run: inputs sent in the order the chip reads them, the chip starts
  // when no DMAIN would outrun its data, outputs sent back as they leave.
  RunResult timing_for_run(Slot& s, const DmaSchedule& sch, const std::map<int, std::vector<Bytes>>& in,
                           const std::map<int, std::vector<Bytes>>& out, const model::ChipStats& st) {
    const double f = s.params.clock_hz;
    const int V = s.params.vector_bytes();
    struct In {
      std::int64_t cycle;
      int ch;
    };
    std::vector<In> ins;
    for (const auto& [ch, vs] : in) {
      auto it = sch.in.find(ch);
      const std::size_t n = it == sch.in.end() ? 0 : std::min(vs.size(), it->second.size());
      for (std::size_t j = 0; j < n; ++j) ins.push_back({it->second[j], ch});
    }
    std::stable_sort(ins.begin(), ins.end(), [](const In& a, const In& b) { return a.cycle < b.cycle; });
    double first = -1, S = s.busy_until;
    const double ready = host_ready(s, double(ins.size()) * V);
    for (const auto& x : ins) {
      auto t = s.in.send(ready, V);
      if (first < 0) first = t.start;
      S = std::max(S, t.arrive - double(x.cycle) / f);
      dma.bytes_in += V;
      dma.transfers++;
      dma.busy_s += double(V) / s.in.bw;
    }
    const double lat = double(s.params.lat(isa::LatClass::Dma)) / f;
    double end = S + double(st.cycles) / f;
    std::vector<double> leaves;
    for (const auto& [ch, vs] : out) {
      auto it = sch.out.find(ch);
      for (std::size_t j = 0; j < vs.size(); ++j)
        leaves.push_back(S + (it != sch.out.end() && j < it->second.size() ? double(it->second[j]) / f + lat : double(st.cycles) / f));
    }
    std::sort(leaves.begin(), leaves.end());
    for (double l : leaves) {
      auto t = s.out.send(l, V);
      end = std::max(end, t.arrive);
      dma.bytes_out += V;
      dma.transfers++;
      dma.busy_s += double(V) / s.out.bw;
    }
    s.busy_until = S + double(st.cycles) / f;
    RunResult r;
    r.seconds = end - (first < 0 ? S : first);
    return r;
  }

  void finish_run(RunResult& res, Slot& s, const model::ChipStats& st, std::chrono::steady_clock::time_point t0,
                  bool count = true) {
    if (count) {
      accumulate(s.total, st);
      s.runs++;
    }
    runs++;
    res.stats = st;
    model::HostStats host{std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), mode == model::Mode::TimingOnly};
    res.json = run_stats_json(st, s.params, host);  // the emulated host DMA time is res.seconds
    res.text = model::format_stats(st, s.params, host);
  }

  // ---- streaming ---------------------------------------------------------------------------
  void validate(const StreamSpec& sp) {
    auto& s0 = slot(0);
    validate_channels(s0, sp.in_channel, "in_channel");
    validate_channels(s0, sp.out_channel, "out_channel");
    if (sp.count_reg < 1 || sp.count_reg > 15) throw Error(fmt::format("count_reg r{}: must be one of r1..r15", sp.count_reg));
    if (sp.vectors_in < 1 || sp.vectors_out < 1 || sp.vectors_in > 1 << 16 || sp.vectors_out > 1 << 16)
      throw Error(fmt::format("vectors_in {} / vectors_out {}: each must be 1..65536", sp.vectors_in, sp.vectors_out));
    if (sp.max_items < 1) throw Error(fmt::format("max_items {} must be >= 1", sp.max_items));
    if (!is_rack && slots.size() > 1 && sp.vectors_in != sp.vectors_out)
      throw Error(fmt::format("a pipeline feeds each stage's outputs to the next: vectors_out ({}) must equal vectors_in ({})",
                              sp.vectors_out, sp.vectors_in));
    if (is_rack) {
      slot(sp.in_chip);
      slot(sp.out_chip < 0 ? int(slots.size()) - 1 : sp.out_chip);
    }
  }

  void check_contract(const Slot& s, const DmaSchedule& sch, const StreamSpec& sp, std::size_t n, bool check_in, bool check_out) {
    auto count = [](const std::map<int, std::vector<std::int64_t>>& m, int ch) { return m.count(ch) ? m.at(ch).size() : 0; };
    const auto nin = count(sch.in, sp.in_channel), nout = count(sch.out, sp.out_channel);
    if (check_in && nin != n * std::size_t(sp.vectors_in))
      throw Error(fmt::format("stream contract: with r{} = {} ({} items) the program on chip {} reads {} vectors by DMAIN on "
                              "channel {}; expected {} ({} per item)",
                              sp.count_reg, n - 1, n, s.id, nin, sp.in_channel, n * std::size_t(sp.vectors_in), sp.vectors_in));
    if (check_out && nout != n * std::size_t(sp.vectors_out))
      throw Error(fmt::format("stream contract: with r{} = {} ({} items) the program on chip {} writes {} vectors by DMAOUT on "
                              "channel {}; expected {} ({} per item)",
                              sp.count_reg, n - 1, n, s.id, nout, sp.out_channel, n * std::size_t(sp.vectors_out), sp.vectors_out));
  }

  BatchResult stream(const Batch& b) {
    validate(b.spec);
    const auto& sp = b.spec;
    if (b.items.empty()) return {};
    if (std::int64_t(b.items.size()) > lim.max_items_per_batch)
      throw Error(fmt::format("a batch of {} items exceeds the limit of {}", b.items.size(), lim.max_items_per_batch));
    const std::size_t in_bytes = std::size_t(sp.vectors_in) * std::size_t(inf.vector_bytes);
    const double io = double(b.items.size()) * double(std::max(sp.vectors_in, sp.vectors_out)) * double(inf.vector_bytes);
    if (io > double(lim.max_io_bytes))
      throw Error(fmt::format("a batch of {} items of {} vector(s) in and {} out exceeds the limit of {} bytes", b.items.size(),
                              sp.vectors_in, sp.vectors_out, lim.max_io_bytes));
    for (std::size_t i = 0; i < b.items.size(); ++i)
      if (b.items[i].size() > in_bytes)
        throw Error(fmt::format("item {}: {} bytes, more than {} vector(s) of {} bytes", i, b.items[i].size(), sp.vectors_in,
                                inf.vector_bytes));
    for (auto& s : slots)
      if (!s.prog && !is_rack) throw Error(fmt::format("stream: chip {} has no program: load one first", s.id));
    BatchResult res;
    res.start_s = -1;
    res.items.reserve(b.items.size());
    for (std::size_t i0 = 0; i0 < b.items.size(); i0 += std::size_t(sp.max_items)) {
      const std::size_t n = std::min(b.items.size() - i0, std::size_t(sp.max_items));
      stream_chunk(b, i0, n, res);
    }
    sst.batches++;
    if (sst.first_s < 0 || res.start_s < sst.first_s) sst.first_s = res.start_s;
    sst.last_s = std::max(sst.last_s, res.end_s);
    return res;
  }

  void stream_chunk(const Batch& b, std::size_t i0, std::size_t n, BatchResult& res) {
    const auto& sp = b.spec;
    const int V = inf.vector_bytes;
    // Stage input vectors and when each is ready at the host.
    std::vector<Bytes> vecs;
    vecs.reserve(n * std::size_t(sp.vectors_in));
    for (std::size_t i = 0; i < n; ++i) {
      const auto& it = b.items[i0 + i];
      for (int j = 0; j < sp.vectors_in; ++j) {
        Bytes v(std::size_t(V), 0);
        const std::size_t off = std::size_t(j) * std::size_t(V);
        if (off < it.size()) std::copy(it.begin() + std::ptrdiff_t(off), it.begin() + std::ptrdiff_t(std::min(it.size(), off + std::size_t(V))), v.begin());
        vecs.push_back(std::move(v));
      }
    }
    std::vector<double> ready(vecs.size(), 0.0);
    std::vector<double> item_start(n, -1);
    std::vector<std::int64_t> item_cycles(n, 0);
    const std::vector<std::pair<int, std::uint32_t>> count{{sp.count_reg, std::uint32_t(n - 1)}};

#ifdef LPU_RUNTIME_HAVE_RACK
    if (is_rack) {
      stream_rack(sp, n, vecs, ready, item_start, item_cycles, count);
    } else
#endif
    {
      for (auto& s : slots) {
        const auto regs = regs_for(s, count);
        const auto& sch = schedule(s, regs);
        check_contract(s, sch, sp, n, true, true);
        std::map<int, std::vector<Bytes>> in;
        in[sp.in_channel] = std::move(vecs);
        auto [out, stt] = run_chip(s, regs, in, sch);
        const bool first_stage = s.id == 0;
        stage_timing(s, s, sch, sch, sp, n, ready, item_start, item_cycles, first_stage, stt.cycles);
        accumulate(s.total, stt);
        s.runs++;
        runs++;
        sst.runs++;
        res.runs++;
        if (mode == model::Mode::Functional) {
          vecs = std::move(out[sp.out_channel]);
          if (vecs.size() != n * std::size_t(sp.vectors_out))
            throw Error(fmt::format("stream: chip {} returned {} vectors on channel {}, expected {}", s.id, vecs.size(), sp.out_channel,
                                    n * std::size_t(sp.vectors_out)));
        } else {
          vecs.assign(n * std::size_t(sp.vectors_out), Bytes(std::size_t(V), 0));
        }
      }
    }
    for (std::size_t i = 0; i < n; ++i) {
      ItemResult r;
      r.output.reserve(std::size_t(sp.vectors_out) * std::size_t(V));
      for (int j = 0; j < sp.vectors_out; ++j) {
        const auto& v = vecs[i * std::size_t(sp.vectors_out) + std::size_t(j)];
        r.output.insert(r.output.end(), v.begin(), v.end());
      }
      r.done_s = ready[i * std::size_t(sp.vectors_out) + std::size_t(sp.vectors_out) - 1];
      r.latency_s = r.done_s - item_start[i];
      r.chip_cycles = item_cycles[i];
      if (res.start_s < 0 || item_start[i] < res.start_s) res.start_s = item_start[i];
      res.end_s = std::max(res.end_s, r.done_s);
      sst.items++;
      if (sst.latency_s.size() < kMaxSamples) {
        sst.latency_s.push_back(r.latency_s);
        sst.cycles.push_back(double(r.chip_cycles));
      }
      res.items.push_back(std::move(r));
    }
  }

  // Timing of one stage: inputs (ready at the host at `ready`) sent over `sin`'s host link,
  // the run started when no DMAIN outruns its data, outputs returned over `sout`'s link;
  // `ready` becomes the host arrival of each output vector.
  void stage_timing(Slot& sin, Slot& sout, const DmaSchedule& schin, const DmaSchedule& schout, const StreamSpec& sp,
                    std::size_t n, std::vector<double>& ready, std::vector<double>& item_start, std::vector<std::int64_t>& item_cycles,
                    bool first_stage, std::int64_t run_cycles) {
    const int V = inf.vector_bytes;
    const double f = sin.params.clock_hz;
    const auto& cin = schin.in.at(sp.in_channel);
    const auto& cout = schout.out.at(sp.out_channel);
    double S = std::max(sin.busy_until, sout.busy_until);
    if (first_stage) {
      const double r0 = host_ready(sin, double(ready.size()) * V);
      for (auto& r : ready) r = std::max(r, r0);
    }
    for (std::size_t j = 0; j < ready.size(); ++j) {
      auto t = sin.in.send(ready[j], V);
      if (first_stage && j % std::size_t(sp.vectors_in) == 0) item_start[j / std::size_t(sp.vectors_in)] = t.start;
      S = std::max(S, t.arrive - double(cin[j]) / f);
      dma.bytes_in += V;
      dma.transfers++;
      dma.busy_s += double(V) / sin.in.bw;
    }
    const double fo = sout.params.clock_hz;
    const double lat = double(sout.params.lat(isa::LatClass::Dma)) / fo;
    std::vector<double> out(n * std::size_t(sp.vectors_out));
    for (std::size_t j = 0; j < out.size(); ++j) {
      auto t = sout.out.send(S + double(cout[j]) / fo + lat, V);
      out[j] = t.arrive;
      dma.bytes_out += V;
      dma.transfers++;
      dma.busy_s += double(V) / sout.out.bw;
    }
    for (std::size_t i = 0; i < n; ++i)
      item_cycles[i] += cout[(i + 1) * std::size_t(sp.vectors_out) - 1] + sout.params.lat(isa::LatClass::Dma) -
                        cin[i * std::size_t(sp.vectors_in)];
    const double end = S + double(run_cycles) / f;
    sin.busy_until = std::max(sin.busy_until, end);
    sout.busy_until = std::max(sout.busy_until, end);
    ready = std::move(out);
  }

#ifdef LPU_RUNTIME_HAVE_RACK
  // ---- rack backend ------------------------------------------------------------------------
  struct RackRun {
    std::map<int, std::vector<Bytes>> out;
    std::vector<model::ChipStats> stats;
    DmaSchedule in_sched, out_sched;
    std::int64_t cycles = 0;
  };
  std::vector<std::array<std::uint32_t, 16>> regs_all(const std::vector<std::pair<int, std::uint32_t>>& extra) {
    std::vector<std::array<std::uint32_t, 16>> r(slots.size());
    for (auto& s : slots)
      if (s.prog) r[std::size_t(s.id)] = regs_for(s, extra);
    return r;
  }
  RackRun run_rack(const std::vector<std::array<std::uint32_t, 16>>& regs, int io_chip,
                   const std::map<int, std::vector<Bytes>>& in, const std::vector<std::pair<int, std::uint32_t>>& extra,
                   int out_chip = -1) {
    if (out_chip < 0) out_chip = io_chip;
    rack::RackProgram rp;
    rp.origin = "runtime";
    rp.chips.resize(slots.size());
    bool any = false;
    for (auto& s : slots) {
      auto& cp = rp.chips[std::size_t(s.id)];
      if (!s.prog) continue;
      any = true;
      cp.object = s.prog;
      cp.label = fmt::format("chip {}", s.id);
      auto r = regs_for(s, extra);
      for (int k = 1; k < 16; ++k)
        if (r[std::size_t(k)] != s.prog->regs[std::size_t(k)]) cp.regs.emplace_back(k, r[std::size_t(k)]);
    }
    if (!any) throw Error("rack: no chip has a program: load one first");
    auto& sin = programmed(io_chip, "rack run");
    auto& sout = programmed(out_chip, "rack run");
    RackRun rr;
    rr.in_sched = schedule(sin, regs[std::size_t(io_chip)]);
    rr.out_sched = schedule(sout, regs[std::size_t(out_chip)]);
    // The rack runs chips with their start skew (docs/rack.md): shift the lone dry runs.
    for (auto* p : {&rr.in_sched, &rr.out_sched}) {
      const auto skew = rcfg.start_skew.empty() ? 0 : rcfg.start_skew[std::size_t(p == &rr.in_sched ? io_chip : out_chip)];
      for (auto* m : {&p->in, &p->out})
        for (auto& [ch, v] : *m)
          for (auto& c : v) c += skew;
    }
    rack::RunOptions ro;
    ro.mode = mode;
    ro.threads = 1;
    ro.load_inputs = false;
    auto rk = std::make_unique<rack::Rack>(rcfg, rp, ro);
    if (mode == model::Mode::Functional) {
      for (auto& s : slots)
        if (auto* c = rk->chip(s.id)) {
          auto* old = last_rack && !s.reloaded ? last_rack->chip(s.id) : nullptr;
          if (old)
            for (const auto& sym : s.prog->symbols) c->write_symbol(sym.name, old->read_symbol(sym.name));
          else
            for (const auto& [name, b] : s.weights) c->write_symbol(name, b);
        }
      auto* c = rk->chip(io_chip);  // null under MPI on the ranks that do not run it
      for (const auto& [ch, vs] : in) {
        if (!c) break;
        auto need = rr.in_sched.in.count(ch) ? rr.in_sched.in.at(ch).size() : 0;
        for (std::size_t j = 0; j < vs.size() && j < need; ++j) c->push_dma_in(ch, vs[j]);
      }
    }
    rk->run();
    auto rs = rk->stats();
    rr.stats = rs.chip;
    rr.stats.resize(slots.size());
    rr.cycles = rs.cycles;
    if (mode == model::Mode::Functional)
      for (int ch = 0; ch < sout.params.dma.channels; ++ch) {
        auto v = rk->take_dma_out(out_chip, ch);  // every rank gets it (MPI)
        if (!v.empty()) rr.out[ch] = std::move(v);
      }
    for (auto& s : slots) {
      accumulate(s.total, rr.stats[std::size_t(s.id)]);
      if (s.prog) s.runs++;
    }
    last_rack = std::move(rk);
    for (auto& s : slots) s.reloaded = false;
    return rr;
  }

  void stream_rack(const StreamSpec& sp, std::size_t n, std::vector<Bytes>& vecs, std::vector<double>& ready,
                   std::vector<double>& item_start, std::vector<std::int64_t>& item_cycles,
                   const std::vector<std::pair<int, std::uint32_t>>& count) {
    const int out_chip = sp.out_chip < 0 ? int(slots.size()) - 1 : sp.out_chip;
    auto regs = regs_all(count);
    std::map<int, std::vector<Bytes>> in;
    in[sp.in_channel] = vecs;
    auto& sin = programmed(sp.in_chip, "stream");
    auto& sout = programmed(out_chip, "stream");
    {
      const auto& a = schedule(sin, regs[std::size_t(sp.in_chip)]);
      check_contract(sin, a, sp, n, true, false);
      const auto& z = schedule(sout, regs[std::size_t(out_chip)]);
      check_contract(sout, z, sp, n, false, true);
    }
    auto rr = run_rack(regs, sp.in_chip, in, count, out_chip);
    stage_timing(sin, sout, rr.in_sched, rr.out_sched, sp, n, ready, item_start, item_cycles, true, rr.cycles);
    for (auto& s : slots) s.busy_until = std::max(s.busy_until, sin.busy_until);
    runs++;
    sst.runs++;
    if (mode == model::Mode::Functional) {
      vecs = std::move(rr.out[sp.out_channel]);
      if (vecs.size() != n * std::size_t(sp.vectors_out))
        throw Error(fmt::format("stream: chip {} returned {} vectors on channel {}, expected {}", out_chip, vecs.size(), sp.out_channel,
                                n * std::size_t(sp.vectors_out)));
    } else {
      vecs.assign(n * std::size_t(sp.vectors_out), Bytes(std::size_t(inf.vector_bytes), 0));
    }
  }
#endif

  // ---- statistics --------------------------------------------------------------------------
  nlohmann::json stats() const {
    nlohmann::json j;
    j["device"] = {{"kind", inf.kind},
                   {"preset", inf.preset},
                   {"chips", inf.chips},
                   {"vector_bytes", inf.vector_bytes},
                   {"clock_hz", inf.clock_hz},
                   {"mode", inf.timing_only ? "timing-only" : "functional"}};
    double now = 0;
    for (const auto& s : slots) now = std::max({now, s.busy_until, s.in.free + s.in.lat, s.out.free + s.out.lat});
    j["emulated_seconds"] = now;
    j["runs"] = runs;
    j["host_dma"] = {{"bandwidth_bytes_per_s", inf.dma_bandwidth_bytes_per_s},
                     {"latency_s", inf.dma_latency_s},
                     {"bytes_to_device", dma.bytes_in},
                     {"bytes_from_device", dma.bytes_out},
                     {"transfers", dma.transfers},
                     {"busy_seconds", dma.busy_s}};
    j["weights"] = {{"tensors", weights.tensors}, {"bytes", weights.bytes}, {"seconds", weights.seconds}};
    auto pct = [](const std::vector<double>& v) {
      nlohmann::json o;
      if (v.empty()) return o;
      double sum = 0;
      for (double x : v) sum += x;
      o["min"] = *std::min_element(v.begin(), v.end());
      o["mean"] = sum / double(v.size());
      o["p50"] = percentile(v, 50);
      o["p90"] = percentile(v, 90);
      o["p99"] = percentile(v, 99);
      o["max"] = *std::max_element(v.begin(), v.end());
      return o;
    };
    const double span = sst.first_s >= 0 ? sst.last_s - sst.first_s : 0;
    j["stream"] = {{"items", sst.items},
                   {"batches", sst.batches},
                   {"runs", sst.runs},
                   {"seconds", span},
                   {"items_per_s", span > 0 ? double(sst.items) / span : 0.0},
                   {"latency_s", pct(sst.latency_s)},
                   {"chip_cycles", pct(sst.cycles)}};
    auto chips = nlohmann::json::array();
    for (const auto& s : slots) {
      auto c = model::stats_json(s.total, s.params, nullptr);
      c["runs"] = s.runs;
      c["chip"] = s.id;
      c["program"] = bool(s.prog);
      chips.push_back(std::move(c));
    }
    j["chips"] = std::move(chips);
    return j;
  }
};

Engine::Engine(const DeviceSpec& spec, const EngineLimits& lim) : impl_(std::make_unique<Impl>(spec, lim)) {}
Engine::~Engine() = default;
DeviceInfo Engine::info() const { return impl_->inf; }
void Engine::load_program(const obj::Program& prog, const std::vector<int>& chips) { impl_->load_program(prog, chips); }
void Engine::load_tensor(const TensorLoad& w, const io::Tensor& t) { impl_->load_tensor(w, t); }
io::Tensor Engine::read_symbol(int chip, const std::string& s) { return impl_->read_symbol(chip, s); }
void Engine::set_reg(int chip, int reg, std::uint32_t v) { impl_->set_reg(chip, reg, v); }
RunResult Engine::run(const RunRequest& r) { return impl_->run(r); }
BatchResult Engine::stream(const Batch& b) { return impl_->stream(b); }
nlohmann::json Engine::stats() const { return impl_->stats(); }
std::int64_t Engine::bytes_held() const { return impl_->held + impl_->state; }

}  // namespace lpu::rt
