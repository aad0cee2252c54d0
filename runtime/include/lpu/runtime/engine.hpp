#pragma once
// The synchronous core behind every device: the emulated chips of one device, the host DMA
// model, weights, streaming and statistics. Not thread-safe: LocalDevice runs it on its own
// thread, the server on one strand per session. Semantics in device.hpp and docs/runtime.md.
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "lpu/runtime/device.hpp"

namespace lpu::rt {

struct EngineLimits {
  int max_chips = 1024;                 // chips of a pipeline or rack
  // Host memory of the device: its chips (rt::device_memory, checked before any is built) plus
  // the programs and weights it holds; rt::LimitError beyond, naming max_bytes_option.
  std::int64_t max_bytes = INT64_MAX;
  std::string max_bytes_option;
  int max_items_per_batch = 1 << 20;
  std::int64_t max_io_bytes = INT64_MAX;       // DMA vectors of one run, in + out; a batch's inputs
  std::int64_t max_run_instances = INT64_MAX;  // instruction instances of one functional run
};

class Engine {
 public:
  explicit Engine(const DeviceSpec& spec, const EngineLimits& lim = {});
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  DeviceInfo info() const;
  void load_program(const obj::Program& prog, const std::vector<int>& chips);
  void load_tensor(const TensorLoad& where, const io::Tensor& t);
  io::Tensor read_symbol(int chip, const std::string& symbol);
  void set_reg(int chip, int reg, std::uint32_t value);
  RunResult run(const RunRequest& req);
  BatchResult stream(const Batch& batch);
  nlohmann::json stats() const;
  std::int64_t bytes_held() const;  // the chips (device_memory) + programs and weights held

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// Whether this build has rack devices (lpu_rack linked).
bool have_rack();

// Percentile (nearest rank) of unsorted values; 0 when empty.
double percentile(std::vector<double> v, double p);

}  // namespace lpu::rt
