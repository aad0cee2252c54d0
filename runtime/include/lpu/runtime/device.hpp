#pragma once
// The host runtime: what a user of an LPU system drives. Open a device (one chip, a
// host-mediated pipeline of chips, or a rack), load a program, load named weights into SRAM,
// stream activations in and results out, read statistics. The same API has a local backend
// (this library: the emulator in this process) and a remote one (lpu_net: an `lpu serve`
// process over TCP). Guide: docs/runtime.md; wire format: docs/protocol.md.
//
// Contract:
//  - Every operation on one Device takes effect in the order it was called (submit() included),
//    whichever thread calls it; a Device may be shared between threads.
//  - Errors are lpu::Error (FormatError for bad files and mismatched tensors, ConfigError for
//    bad presets, SimError for run-time errors of the program); the message names the file,
//    tensor, symbol and chip involved. A failed run leaves the device usable: the chip is reset
//    to its program and the weights loaded through this API (other SRAM contents are lost).
//  - Everything but the "host" entries of statistics is deterministic: a function of the
//    calls made, identical locally and remotely.
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <condition_variable>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "lpu/asm/object.hpp"
#include "lpu/common/tensor_file.hpp"
#include "lpu/model/report.hpp"
#include "lpu/model/stats.hpp"

namespace lpu::rt {

using Bytes = std::vector<std::uint8_t>;

// What to open. Exactly one of: a preset (chips == 1: one chip; chips > 1: a pipeline of that
// many chips of the preset, driven by the host), or a rack file.
struct DeviceSpec {
  std::string preset = "lp30";        // name in configs/ (or a .toml path, local only)
  std::vector<std::string> set;       // preset overrides "section.key=value"
  int chips = 1;                      // > 1: host-mediated pipeline (docs/runtime.md)
  std::string rack;                   // rack file (local) / "rack" for the server's --rack
  bool timing_only = false;           // no data: cycle counts and statistics only
  // The host DMA link of every chip (PCIe). Unset: the preset's dma.bandwidth_bytes_per_s
  // (64e9 = PCIe Gen5 x16 in lp30 and mini) and dma.latency_cycles / clock_hz.
  std::optional<double> dma_bandwidth_bytes_per_s;
  std::optional<double> dma_latency_s;
  bool operator==(const DeviceSpec&) const = default;
};

struct DeviceInfo {
  std::string kind;        // "chip", "pipeline", "rack"
  std::string preset;      // of chip 0
  int chips = 0;
  int vector_bytes = 0;
  double clock_hz = 0;
  int dma_channels = 0;
  double dma_bandwidth_bytes_per_s = 0;
  double dma_latency_s = 0;
  bool timing_only = false;
  bool operator==(const DeviceInfo&) const = default;
};

// A tensor for a symbol: `origin` names where it came from ("w.safetensors: tensor 'W'") in
// error messages. Strict by default: the element type must be the symbol's dtype (fp8 may come
// as u8, bf16 as u16: their raw bits) and the shape must equal the declared shape. convert:
// `lpu run --input` semantics: any element count equal to the symbol's, numeric types
// converted with the ISA's rounding rules.
struct TensorLoad {
  int chip = 0;
  std::string symbol;
  std::string origin;
  bool convert = false;
};

// One run of one chip's program (what `lpu run` does). In a rack, every chip runs and `chip`
// names whose DMA channels are fed and read.
struct RunRequest {
  int chip = 0;
  std::vector<std::pair<int, std::uint32_t>> regs;  // set for this run only (after .reg and set_reg)
  std::map<int, std::vector<Bytes>> dma_in;         // channel -> vectors (short ones zero-padded)
};
struct RunResult {
  std::map<int, std::vector<Bytes>> dma_out;  // every channel the program wrote
  model::ChipStats stats;                     // this run
  double seconds = 0;                         // emulated: first input sent to last output back
  nlohmann::json json;                        // run_stats_json of this run (what lpu run --stats writes)
  std::string text;                           // model::format_stats of this run
};

// The streaming contract (docs/runtime.md, "Streaming"): per run the program processes N
// items; register `count_reg` holds N - 1 (so `X; REPEATR r1, d` issues X N times); item i
// is `vectors_in` vectors read by DMAIN on `in_channel` and `vectors_out` vectors written by
// DMAOUT on `out_channel`, in item order. Pipelines: every stage runs its own program with the
// same contract; stage k's outputs are stage k+1's inputs. Racks: items enter `in_chip` and
// leave `out_chip` (-1: the last chip).
struct StreamSpec {
  int in_channel = 0;
  int out_channel = 1;
  int count_reg = 1;
  int vectors_in = 1;
  int vectors_out = 1;
  int max_items = 4096;  // per run; longer batches are split into several runs
  int in_chip = 0;       // rack only
  int out_chip = -1;     // rack only
  bool operator==(const StreamSpec&) const = default;
};

struct Batch {
  StreamSpec spec;
  std::vector<Bytes> items;  // each at most vectors_in * vector_bytes bytes (zero-padded)
};

struct ItemResult {
  Bytes output;                  // vectors_out * vector_bytes bytes
  std::int64_t chip_cycles = 0;  // on chip: first DMAIN issue to last DMAOUT done, summed over stages
  double latency_s = 0;          // host to host: its input starts leaving the host to its result back
  double done_s = 0;             // emulated device time its result reached the host
  bool operator==(const ItemResult&) const = default;
};
struct BatchResult {
  std::vector<ItemResult> items;
  double start_s = 0;  // emulated: the first input starts leaving the host
  double end_s = 0;    // the last result is back
  std::int64_t runs = 0;
  bool operator==(const BatchResult&) const = default;
};

class Device {
 public:
  virtual ~Device() = default;
  virtual DeviceInfo info() = 0;
  // Loads an object onto `chips` (empty: every chip). Its `.data` initial values are written
  // then; weights loaded through load_tensor survive later runs (they are restored after the
  // program's own data when a run reloads the program). The other chips keep their state: a
  // rack's read_symbol of a chip not reloaded still returns what its last run left.
  virtual void load_program(const obj::Program& prog, const std::vector<int>& chips = {}) = 0;
  // Writes a tensor into a symbol's SRAM rows (host DMA cost accounted). See TensorLoad.
  virtual void load_tensor(const TensorLoad& where, const io::Tensor& t) = 0;
  // A symbol's SRAM rows as a tensor of its dtype (fp8 as u8, bf16 as bf16) and shape.
  virtual io::Tensor read_symbol(int chip, const std::string& symbol) = 0;
  // A register value applied before every later run of that chip (after the program's .reg).
  virtual void set_reg(int chip, int reg, std::uint32_t value) = 0;
  virtual RunResult run(const RunRequest& req) = 0;
  // Streams a batch; results in item order. Asynchronous: batches are processed in order, and
  // several may be in flight (remotely: in the network and the server's queue).
  virtual std::future<BatchResult> submit(Batch batch) = 0;
  BatchResult stream(Batch batch) { return submit(std::move(batch)).get(); }
  // Statistics (docs/runtime.md, "Statistics"): device, host DMA, weights, stream, per chip.
  virtual nlohmann::json stats() = 0;
};

// The emulator in this process. Threads: one per device (operations run on it in call order).
std::unique_ptr<Device> open_local(const DeviceSpec& spec);

// ---- Weights from files ------------------------------------------------------------------
// .npy: one tensor into `symbol` (empty: the file's stem). .safetensors: every tensor into the
// symbol of its name, or of rename[name]; `only` (non-empty) restricts which tensors are loaded.
// Returns the symbols written. Files are read here (on the client when the device is remote).
struct WeightsFile {
  std::string path;
  int chip = 0;
  std::string symbol;                          // .npy only
  std::map<std::string, std::string> rename;   // .safetensors: tensor name -> symbol
  std::vector<std::string> only;               // .safetensors: tensor names
  bool convert = false;                        // see TensorLoad
};
std::vector<std::string> load_weights(Device& dev, const WeightsFile& f);
inline std::vector<std::string> load_weights(Device& dev, const std::string& path, int chip = 0, const std::string& symbol = "") {
  WeightsFile f;
  f.path = path;
  f.chip = chip;
  f.symbol = symbol;
  return load_weights(dev, f);
}

// ---- Many callers, one stream ----------------------------------------------------------------
// Coalesces single items from any number of threads into batches (up to max_batch items, never
// waiting for a batch to fill) with up to max_in_flight batches submitted at once; each caller's
// future gets its own result, in submission order.
struct StreamerOptions {
  int max_batch = 64;
  int max_in_flight = 4;
};
struct StreamerStats {
  std::int64_t items = 0, batches = 0;
  double first_s = 0, last_s = 0;  // emulated: first input sent, last result back
  std::vector<double> latency_s;   // per item, in completion order
  double items_per_s() const { return last_s > first_s ? double(items) / (last_s - first_s) : 0; }
  double percentile_s(double p) const;  // p in [0, 100]; 0 when empty
};

class Streamer {
 public:
  Streamer(Device& dev, StreamSpec spec = {}, StreamerOptions opt = {});
  ~Streamer();  // finishes every submitted item
  Streamer(const Streamer&) = delete;
  Streamer& operator=(const Streamer&) = delete;
  std::future<ItemResult> submit(Bytes input);
  void drain();  // returns when every item submitted so far has its result
  StreamerStats stats() const;

 private:
  void loop();
  struct Pending {
    Bytes input;
    std::promise<ItemResult> promise;
  };
  Device& dev_;
  StreamSpec spec_;
  StreamerOptions opt_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> pending_;
  std::int64_t submitted_ = 0, completed_ = 0;
  bool stop_ = false;
  StreamerStats stats_;
  std::thread worker_;
};

// ---- `lpu run` over any device ------------------------------------------------------------
// The options of `lpu run` (tools/lpu/cmd_run.cpp), run through the runtime API: the same
// files, the same printed statistics. Used by `lpu run --remote` (lpu::net::run_remote).
struct RunFiles {
  std::string program;                      // .lpo
  std::vector<std::string> inputs;          // SYMBOL=file.npy
  std::vector<std::string> outputs;         // SYMBOL=file.npy
  std::vector<std::string> regs;            // rN=VALUE
  std::vector<std::string> dma_in;          // CHANNEL=file.npy
  std::vector<std::string> dma_out;         // CHANNEL=file.npy
  std::string stats;                        // JSON file
  bool quiet = false;
};
// The statistics of one run of one chip, as `lpu run --stats FILE` writes them: one schema for
// the local command (model, --systemc), the runtime API (RunResult::json) and `lpu run
// --remote`, so that the files of a deterministic program differ only in "host" (wall-clock
// time of whichever process emulated it). docs/runtime.md, "Statistics".
nlohmann::json run_stats_json(const model::ChipStats& s, const ChipParams& p, const model::HostStats& host, double tokens = 0);
// The host options of `lpu run`, read the same way for a local and a remote run. Errors are
// lpu::ConfigError naming the option and quoting the text (common/parse.hpp).
// "NAME=VALUE" (both non-empty).
std::pair<std::string, std::string> split_option(const std::string& text, const char* option);
// "--reg rN=VALUE": r1..r15 and a 32-bit value (-2^31 .. 2^32-1; negative values are stored in
// two's complement, as a manifest's `regs` are).
std::pair<int, std::uint32_t> parse_reg_option(const std::string& text);
// The CHANNEL of "--dma-in CHANNEL=file" / "--dma-out": 0..255 (the chip checks its own count).
int parse_channel_option(const std::string& channel, const char* option);

// Runs on chip 0 of `dev` (already opened for the program's preset); prints to `out`.
int run_files(Device& dev, const RunFiles& f, std::ostream& out);
// The DeviceSpec `lpu run` would use for a program: its .preset unless `preset` is given.
DeviceSpec spec_for_program(const obj::Program& prog, const std::string& preset,
                            const std::vector<std::string>& set, bool timing_only);

}  // namespace lpu::rt
