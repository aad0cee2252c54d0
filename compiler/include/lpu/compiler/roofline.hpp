#pragma once
// The roofline of a partitioned decode graph: the fewest cycles the machine allows for one
// decode step of one micro-batch, and which resource bounds it (docs/decode.md, "The bound").
//
// Model: the operations of the graph run in order (at batch-1 decode each needs its
// predecessor's output: a norm or a softmax needs a whole vector, a matrix product its whole
// input, an exchange what was computed). An operation on c chips takes at least
//     max(SRAM or weight-install time, MXM time, VXM time, link serialisation) + its latency
// where each throughput term is its work divided by c chips' peak rate, and the latency is what
// no schedule can hide: a link's one-way latency for an exchange, the drain of the unit pipeline
// after the last input (e.g. MM + ACCRD for a matrix product), the host's DMA latency. The step
// takes at least the sum over its operations. A schedule that pipelines one operation into the
// next at tile granularity could beat this model; the compiler does not, and tests check that
// no emulated decode is faster than its bound.
#include <array>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "lpu/compiler/partition.hpp"

namespace lpu::compiler {

// Transit: the stream hops a result must travel from the unit that made it to the unit of the
// next operation (the VXM in the middle of the chip, the MXM planes and the SXM with the links at
// its edges; docs/decode.md "The bound").
enum class Limiter : std::uint8_t { Sram, WeightInstall, Mxm, Vxm, LinkBandwidth, LinkLatency, UnitLatency, Host, Transit };
inline constexpr int kNumLimiters = 9;
const char* limiter_name(Limiter l);  // "sram", "weight install", "mxm", "vxm", "link bandwidth", ..., "transit"

struct OpBound {
  std::string name;
  OpKind kind = OpKind::MatVec;
  int layer = -1;
  int chips = 1;
  double cycles = 0;                        // throughput part + latency part
  Limiter limiter = Limiter::Sram;          // the larger part's resource
  std::array<double, kNumLimiters> terms{};  // each resource's cycles (the latency in its own slot)
};

struct LayerBound {
  int layer = -1;           // -1: the head and the host I/O
  double cycles = 0;
  Limiter limiter = Limiter::Sram;
  std::array<double, kNumLimiters> by_limiter{};
};

struct Roofline {
  double clock_hz = 0;
  int batch = 1;
  double cycles = 0;                    // one step of one micro-batch
  double seconds_per_token = 0;         // cycles / clock
  double tokens_per_s_per_user = 0;     // 1 / seconds_per_token
  Limiter limiter = Limiter::Sram;      // the resource that accounts for the most cycles
  std::array<double, kNumLimiters> by_limiter{};  // cycles attributed to each resource
  std::vector<OpBound> ops;
  std::vector<LayerBound> layers;       // per transformer layer, then the rest (layer -1)
  std::string partition;                // Partitioned::describe()

  nlohmann::json json(bool per_op = false) const;
  std::string text() const;             // a summary and the per-layer breakdown
};

Roofline roofline(const Partitioned& part, const rack::RackConfig& rack);

}  // namespace lpu::compiler
