// lpu run: run an object on the emulated chip.
#include <fmt/format.h>

#include <unistd.h>

#include <chrono>
#include <optional>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "lpu/asm/object.hpp"
#include "lpu/common/errors.hpp"
#include "lpu/common/parse.hpp"
#include "lpu/common/tensor_file.hpp"
#include "lpu/isa/isa.hpp"
#include "lpu/isa/tensor_convert.hpp"
#include "lpu/model/chip.hpp"
#include "lpu/model/report.hpp"
#include "lpu/model/trace.hpp"
#include "lpu/rack/cli.hpp"
#include "lpu/rack/mpi.hpp"
#include "lpu/rtl/rtl_chip.hpp"
#include "lpu/runtime/device.hpp"
#include "lpu/runtime/net.hpp"
#include "lpu/sc/chip_module.hpp"

namespace lpu::tools {

namespace {
using rt::split_option;
struct RunOpts {
  ChipOpts chip;
  std::string input, stats;
  bool timing_only = false, quiet = false, systemc = false;
  double tokens = 0;
  std::string wave, trace, stats_csv, chips, units, streams, positions;
  std::int64_t from = 0, to = INT64_MAX;
  std::vector<std::string> inputs, outputs, regs, dma_in, dma_out, faults;
  std::string rack, remote, token_file;
  int threads = 0;
  bool check = false, rtl = false;
  bool mpi = false;  // started by main (MPI_Init) when the line has --mpi
  std::string mpi_partition;
};

// Options that only a single-chip model run understands.
void refuse(const CLI::App& sub, const char* mode, std::initializer_list<const char*> names) {
  for (const char* n : names)
    if (sub.count(n)) throw Error(fmt::format("{} does not take {}", mode, n));
}

// "SLICE:ROW:BITS" of --inject-fault.
struct Fault {
  std::string slice;
  int row = 0, bits = 0;
};
Fault parse_fault(const std::string& f) {
  auto a = f.find(':'), b = f.rfind(':');
  if (a == std::string::npos || a == b || a == 0)
    throw ConfigError("--inject-fault", fmt::format("'{}' must look like SLICE:ROW:BITS (mem.w.0:7:1)", f));
  const std::string key = fmt::format("--inject-fault {}", f);
  return {f.substr(0, a), int(parse_int(std::string_view(f).substr(a + 1, b - a - 1), key + " row", IntRange{0, (1 << 20) - 1, "rows"})),
          int(parse_int(std::string_view(f).substr(b + 1), key + " bits", IntRange{1, 1 << 16, "bits"}))};
}

// Host side of a single-chip run, shared by the model and the RTL (both have set_reg,
// write_symbol, push_dma_in, read_symbol and take_dma_out); `symbol_of(name)` gives a symbol's
// dtype and shape.
template <class ChipT, class SymbolOf>
void apply_host_inputs(ChipT& chip, const RunOpts& o, SymbolOf&& symbol_of, std::size_t V) {
  for (const auto& r : o.regs) {
    auto [reg, value] = rt::parse_reg_option(r);
    chip.set_reg(reg, value);
  }
  for (const auto& in : o.inputs) {
    auto [sym, file] = split_option(in, "--input");
    const auto& s = symbol_of(sym);
    auto t = io::load_npy(file);
    std::int64_t want = 1;
    for (auto d : s.shape) want *= d;
    if (t.numel() != want)
      throw FormatError(fmt::format("{}: {} elements, symbol '{}' has {}", file, t.numel(), sym, want));
    chip.write_symbol(sym, num::tensor_to_dtype(t, s.dtype, file));
  }
  for (const auto& in : o.dma_in) {
    auto [ch, file] = split_option(in, "--dma-in");
    const int chan = rt::parse_channel_option(ch, "--dma-in");
    auto t = io::load_npy(file);
    if (t.data.size() % V != 0)
      throw FormatError(fmt::format("{}: {} bytes is not a whole number of {}-byte vectors", file, t.data.size(), V));
    for (std::size_t i = 0; i < t.data.size(); i += V)
      chip.push_dma_in(chan, std::span<const std::uint8_t>(t.data.data() + i, V));
  }
}

template <class ChipT, class SymbolOf>
void save_host_outputs(ChipT& chip, const RunOpts& o, SymbolOf&& symbol_of, std::size_t V) {
  for (const auto& ou : o.outputs) {
    auto [sym, file] = split_option(ou, "--output");
    const auto& s = symbol_of(sym);
    io::save_npy(num::dtype_to_tensor(chip.read_symbol(sym), s.dtype, s.shape), file);
  }
  for (const auto& ou : o.dma_out) {
    auto [ch, file] = split_option(ou, "--dma-out");
    auto vs = chip.take_dma_out(rt::parse_channel_option(ch, "--dma-out"));
    io::Tensor t;
    t.type = io::ElemType::U8;
    t.shape = {std::int64_t(vs.size()), std::int64_t(V)};
    for (auto& v : vs) t.data.insert(t.data.end(), v.begin(), v.end());
    io::save_npy(t, file);
  }
}

int run_rack(const RunOpts& o, const CLI::App& sub) {
  refuse(sub, "--rack", {"--preset", "--set", "--input", "--output", "--reg", "--dma-in", "--dma-out", "--inject-fault",
                         "--stats-csv", "--tokens", "--systemc"});
  rack::RackCliOptions r;
  r.rack = o.rack;
  r.program = o.input;
  r.threads = o.threads;
  r.timing_only = o.timing_only;
  r.check = o.check;
  r.stats = o.stats;
  r.quiet = o.quiet;
  r.wave = o.wave;
  r.trace = o.trace;
  r.chips = o.chips;
  r.units = o.units;
  r.streams = o.streams;
  r.positions = o.positions;
  r.from = o.from;
  r.to = o.to;
  r.mpi_partition = o.mpi_partition;
  return rack::run_cli(r);
}

// The Verilated RTL of mini, cycle by cycle until every queue is done and every unit idle.
int run_rtl(const RunOpts& o, const CLI::App& sub) {
  refuse(sub, "--rtl", {"--inject-fault", "--chips", "--units", "--streams", "--positions", "--from", "--to", "--trace",
                        "--stats-csv", "--tokens"});
  auto prog = obj::load_object(o.input);
  rtl::RtlChip chip;
  const auto& params = chip.params();
  if (sub.count("--preset") && o.chip.preset != params.name)
    throw ConfigError("--preset", fmt::format("--rtl: the RTL is the '{}' chip, not '{}'", params.name, o.chip.preset));
  if (sub.count("--set")) throw ConfigError("--set", "--rtl: the RTL's parameters are fixed when it is built (rtl/gen_cfg.py); --set is for the model");
  if (prog.geometry.preset != params.name)
    throw ConfigError(".preset", fmt::format("{}: assembled for preset '{}'; the RTL is the '{}' chip (assemble with .preset {})", o.input,
                                  prog.geometry.preset, params.name, params.name));
  if (!o.wave.empty()) chip.set_wave(o.wave);
  chip.load(prog, o.input);
  auto symbol = [&](const std::string& name) -> const obj::Symbol& {
    for (const auto& s : prog.symbols)
      if (s.name == name) return s;
    throw Error(fmt::format("{}: no symbol '{}'", o.input, name));
  };
  const auto V = std::size_t(rtl::kVectorBytes);
  apply_host_inputs(chip, o, symbol, V);
  // A lone chip has no links (as in the model): a SEND is an error, located.
  std::optional<SimError> link_error;
  chip.set_link_sink([&link_error](int link, std::int64_t depart, const rtl::Vec&) {
    if (!link_error)
      link_error.emplace(0, "c2c", "", depart,
                         fmt::format("SEND on link {}: the link is not connected (a lone chip has no links)", link));
  });
  // A program that never finishes (a SYNC nobody releases) must not hang the command.
  constexpr std::int64_t kLimit = std::int64_t(1) << 31;
  auto t0 = std::chrono::steady_clock::now();
  while (!chip.finished()) {
    if (chip.cycle() >= kLimit) throw SimError(0, "icu", "", chip.cycle(), "the RTL run did not finish within 2^31 cycles");
    chip.step();
    if (link_error) throw *link_error;
    if ((chip.cycle() & 1023) == 0 && chip.error()) break;
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  chip.close_wave();
  if (auto e = chip.error())
    throw SimError(0, e->unit, e->queue, e->cycle,  // the place once: "chip 0, sxm.w (queue sxm.w.0), cycle 0: DMAIN: ..."
                   fmt::format("{} (RTL error code {}, source {}, info {:#x})", e->text, e->code, e->source, e->info));
  save_host_outputs(chip, o, symbol, V);
  const std::int64_t cycles = chip.program_cycles();
  if (!o.quiet) {
    fmt::print("RTL of {}: {} cycles ({:.3f} us at {:.2f} GHz)\n", params.name, cycles, double(cycles) / params.clock_hz * 1e6,
               params.clock_hz / 1e9);
    if (chip.cycle() >= 10000)  // below that, the rate is mostly the first cycle's set-up
      fmt::print("host: {:.3f} s, {:.3g} RTL cycles/s\n", wall, wall > 0 ? double(chip.cycle()) / wall : 0.0);
    if (!o.wave.empty()) fmt::print("waveform: {} (layout: rtl/lpu_mini.gtkw, docs/waveforms.md)\n", o.wave);
  }
  if (!o.stats.empty()) {
    nlohmann::json j;
    j["backend"] = "rtl";
    j["preset"] = params.name;
    j["cycles"] = cycles;
    j["seconds"] = double(cycles) / params.clock_hz;
    j["host"] = {{"wall_s", wall}, {"simulated_cycles", chip.cycle()}};
    j["status"] = "ok";
    std::ofstream f(o.stats);
    if (!f) throw Error(fmt::format("cannot write {}", o.stats));
    f << j.dump(2) << "\n";
  }
  return 0;
}

// The same options on an `lpu serve` server: files are read and written here.
int run_on_server(const RunOpts& o, const CLI::App& sub) {
  refuse(sub, "--remote", {"--inject-fault", "--wave", "--trace", "--stats-csv", "--tokens", "--chips", "--units",
                           "--streams", "--positions", "--from", "--to"});
  net::RemoteRunOptions r;
  r.address = o.remote;
  r.program = o.input;
  if (sub.count("--preset")) r.preset = o.chip.preset;
  r.set = o.chip.set;
  r.timing_only = o.timing_only;
  r.token_file = o.token_file;
  r.files.program = o.input;
  r.files.inputs = o.inputs;
  r.files.outputs = o.outputs;
  r.files.regs = o.regs;
  r.files.dma_in = o.dma_in;
  r.files.dma_out = o.dma_out;
  r.files.stats = o.stats;
  r.files.quiet = o.quiet;
  return net::run_remote(r, std::cout);
}

// The chip model: the default backend (and --systemc).
int run_model(const RunOpts& o, const CLI::App& sub) {
  auto prog = obj::load_object(o.input);
  std::string preset = sub.count("--preset") ? o.chip.preset : prog.geometry.preset;
  auto params = load_preset(preset, o.chip.set);
  const auto mode = o.timing_only ? model::Mode::TimingOnly : model::Mode::Functional;
  std::unique_ptr<model::Chip> direct;
  std::unique_ptr<lpu::sc::ChipModule> module;
  if (o.systemc) module = std::make_unique<lpu::sc::ChipModule>("chip0", params, mode);
  else direct = std::make_unique<model::Chip>(params, mode);
  model::Chip& chip = module ? module->chip() : *direct;
  chip.load(prog, o.input);
  auto symbol_of = [&chip](const std::string& name) -> const auto& { return chip.symbol(name); };
  apply_host_inputs(chip, o, symbol_of, std::size_t(params.vector_bytes()));
  for (const auto& f : o.faults) {
    const auto fault = parse_fault(f);
    chip.inject_fault(fault.slice, fault.row, fault.bits);
  }
  // Tracing: observers only when asked for (an untraced run pays nothing).
  model::TraceSelection sel;
  if (!o.chips.empty()) sel.chips = model::TraceSelection::parse_ranges(o.chips, "--chips");
  if (!o.streams.empty()) sel.streams = model::TraceSelection::parse_ranges(o.streams, "--streams");
  if (!o.positions.empty()) sel.positions = model::TraceSelection::parse_ranges(o.positions, "--positions");
  if (!o.units.empty()) sel.units = model::TraceSelection::parse_units(o.units);
  sel.from = o.from;
  sel.to = o.to;
  if (sel.from > sel.to) throw Error("--from is after --to");
  std::unique_ptr<model::VcdTracer> vcd;
  model::Timeline timeline;
  model::ObserverFanout fan;  // a VCD and a timeline on one chip
  const bool traced = sel.chips.empty() || sel.chips.count(0);
  if (!o.wave.empty() && traced) {
    vcd = std::make_unique<model::VcdTracer>(chip, sel);
    fan.obs.push_back(vcd.get());
  }
  if (!o.trace.empty() && traced) fan.obs.push_back(timeline.attach(chip, &sel));
  if (!fan.obs.empty()) chip.set_observer(fan.target());
  auto t0 = std::chrono::steady_clock::now();
  if (module) {
    sc_core::sc_start();
  } else if (mode == model::Mode::Functional && isatty(2) && !o.quiet) {
    // A progress line on a terminal: the total comes from a timing-only run (cheap: the same
    // cycle count, no data), then the functional run advances in slices.
    model::Chip probe(params, model::Mode::TimingOnly);
    probe.load(prog, o.input);
    for (const auto& r : o.regs) {
      auto [reg, value] = rt::parse_reg_option(r);
      probe.set_reg(reg, value);
    }
    probe.run();
    const double total = double(std::max<std::int64_t>(probe.stats().cycles, 1));
    auto last = std::chrono::steady_clock::now();
    bool shown = false;
    std::int64_t limit = 0, step = 1024;
    while (!chip.run(limit += step)) {
      auto now = std::chrono::steady_clock::now();
      if (std::chrono::duration<double>(now - last).count() < 0.5) {
        step = std::min<std::int64_t>(step * 2, 1 << 24);
        continue;
      }
      last = now;
      const double done = double(std::min<std::int64_t>(limit, std::int64_t(total)));
      const double el = std::chrono::duration<double>(now - t0).count();
      const double rate = done / el;
      fmt::print(stderr, "\r  cycle {:>12.0f} / {:.0f} ({:4.1f}%), {:.3g} cycles/s, {:.0f} s left   ", done, total,
                 100 * done / total, rate, rate > 0 ? (total - done) / rate : 0.0);
      shown = true;
    }
    if (shown) fmt::print(stderr, "\r{:80}\r", "");
  } else {
    chip.run();
  }
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto& st = chip.stats();
  if (vcd) {
    std::ofstream f(o.wave);
    if (!f) throw Error(fmt::format("cannot write {}", o.wave));
    vcd->write(f);
  }
  if (!o.trace.empty()) {
    std::ofstream f(o.trace);
    if (!f) throw Error(fmt::format("cannot write {}", o.trace));
    timeline.write(f);
  }
  if (!o.stats_csv.empty()) {
    std::ofstream f(o.stats_csv);
    if (!f) throw Error(fmt::format("cannot write {}", o.stats_csv));
    f << model::stats_csv(st, params);
  }
  save_host_outputs(chip, o, symbol_of, std::size_t(params.vector_bytes()));
  model::HostStats host{wall, chip.mode() == model::Mode::TimingOnly};
  if (!o.quiet) std::cout << model::format_stats(st, params, host, o.tokens);
  if (!o.stats.empty()) {
    std::ofstream f(o.stats);
    if (!f) throw Error(fmt::format("cannot write {}", o.stats));
    auto j = rt::run_stats_json(st, params, host, o.tokens);  // the schema of lpu run --remote too
    j["status"] = "ok";
    f << j.dump(2) << "\n";
  }
  return 0;
}
}  // namespace

void add_run(CLI::App& app, std::vector<std::pair<CLI::App*, Action>>& out) {
  using Opts = RunOpts;
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("run", "run an object on the emulated chip and report cycles and statistics");
  sub->add_option("program", o->input,
                  "object file (.lpo) from lpu asm; with --rack, a rack manifest (.toml, docs/rack.md) or one "
                  ".lpo/.lpa for every chip")
      ->required()
      ->check(CLI::ExistingFile);
  o->chip.add(sub);
  sub->add_flag("--timing-only", o->timing_only, "compute timing and statistics only: no data, no SRAM contents");
  sub->add_option("--input", o->inputs, "SYMBOL=file.npy: load a tensor into the SRAM rows of a symbol (repeatable)");
  sub->add_option("--output", o->outputs, "SYMBOL=file.npy: save a symbol's SRAM rows after the run (repeatable)");
  sub->add_option("--reg", o->regs,
                  "rN=VALUE: set register r1..r15 before the run; VALUE -2^31..2^32-1, decimal, 0x hex or 0b binary "
                  "(repeatable)");
  sub->add_option("--dma-in", o->dma_in, "CHANNEL=file.npy: vectors (rows) the host streams in (repeatable)");
  sub->add_option("--dma-out", o->dma_out, "CHANNEL=file.npy: save what the chip streamed out (repeatable)");
  sub->add_option("--inject-fault", o->faults, "SLICE:ROW:BITS: flip bits in an SRAM row (ECC test)");
  sub->add_option("--stats", o->stats, "write statistics as JSON (a failed run writes its status and error there too)");
  sub->add_option("--wave", o->wave,
                  "write a VCD waveform of the selected chips, units and cycles (names as the RTL's: docs/waveforms.md)");
  sub->add_option("--chips", o->chips, "chips to trace, e.g. 0,3-5 (default all; rack runs: a scope/process per chip)");
  sub->add_option("--units", o->units, "units to trace: mem,vxm,mxm,sxm,c2c (default all; c2c: the links)");
  sub->add_option("--streams", o->streams, "stream ids to dump, e.g. 0-3 (default all at --positions)");
  sub->add_option("--positions", o->positions, "stream register positions to dump in the VCD, e.g. 5,11 (default none)");
  sub->add_option("--from", o->from, "first cycle to trace");
  sub->add_option("--to", o->to, "last cycle to trace");
  sub->add_option("--trace", o->trace, "write a timeline (Chrome trace-event JSON: ui.perfetto.dev, chrome://tracing)");
  sub->add_option("--stats-csv", o->stats_csv, "write per-unit statistics as CSV");
  sub->add_option("--tokens", o->tokens, "tokens the program produces (for tokens/s and tokens/s per MW)");
  sub->add_flag("--systemc", o->systemc, "run the chip as a SystemC module on SystemC time (same results)");
  sub->add_flag("-q,--quiet", o->quiet, "print nothing but errors");
  auto* rack_opt = sub->add_option("--rack", o->rack, "run on a rack (configs/lpx-rack.toml, docs/rack.md)")
                       ->check(CLI::ExistingFile);
  sub->add_option("--threads", o->threads, "host threads for a rack run (default: the host's cores)")
      ->check(CLI::NonNegativeNumber)
      ->needs(rack_opt);
  sub->add_flag("--check", o->check, "with --rack: check the cross-chip schedule only and list every problem")
      ->needs(rack_opt);
  auto* rtl_opt = sub->add_flag("--rtl", o->rtl,
                                "run on the Verilated RTL of the mini chip (docs/rtl.md); --wave writes .fst or .vcd");
  auto* remote_opt = sub->add_option("--remote", o->remote, "run on an `lpu serve` server at HOST:PORT (docs/runtime.md)");
  sub->add_option("--token-file", o->token_file, "with --remote: the server's token (else the LPU_TOKEN environment variable)")
      ->check(CLI::ExistingFile)
      ->needs(remote_opt);
  sub->add_flag("--mpi", o->mpi,
                "with --rack, under mpirun: divide the chips over the MPI ranks, each running its chips on --threads "
                "threads; results as one process, only rank 0 prints and writes (docs/distributed.md)")
      ->needs(rack_opt);
  sub->add_option("--mpi-partition", o->mpi_partition,
                  "with --mpi: the chips of each rank, one chip list per rank separated by '/', e.g. 0-99/100-255 "
                  "(default: contiguous ranges)")
      ->needs("--mpi");
  rtl_opt->excludes(rack_opt)->excludes(remote_opt)->excludes("--systemc")->excludes("--timing-only");
  remote_opt->excludes(rack_opt)->excludes("--systemc");
  out.emplace_back(sub, [o, sub]() {
    // A failed run still writes its --stats file, with the error (docs/debugging.md).
    // Under MPI only rank 0 writes files, the failure's --stats too.
    return with_failure_stats(rack::mpi::rank() == 0 ? o->stats : std::string(), "run", [&] {
      if (!o->rack.empty()) return run_rack(*o, *sub);
      if (o->rtl) return run_rtl(*o, *sub);
      if (!o->remote.empty()) return run_on_server(*o, *sub);
      return run_model(*o, *sub);
    });
  });
}


}  // namespace lpu::tools
