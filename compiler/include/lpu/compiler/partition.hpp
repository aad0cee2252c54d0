#pragma once
// Partition passes: which chips execute each operation of a decode graph, and the exchanges
// between them (docs/decode.md, "Partitions"). The result is the input graph with every op's
// `chips` set and Exchange ops inserted where vectors cross chips.
//
//   pipeline  every operation on one chip; consecutive chips of a chain take consecutive runs
//             of operations; a Send carries the live vectors at each cut.
//   tensor    one group of T chips linked all-to-all runs every operation, each member a share
//             of its rows (matrix products: row tiles; attention: kv heads); an all-gather after
//             every operation whose output the next one needs whole.
//   hybrid    a pipeline of tensor groups, each holding a run of whole layers, plus a head group.
#include <string>
#include <vector>

#include "lpu/compiler/ir.hpp"
#include "lpu/rack/config.hpp"

namespace lpu::compiler {

enum class PartitionKind : std::uint8_t { Pipeline, Tensor, Hybrid };
PartitionKind parse_partition(const std::string& s);  // throws lpu::Error
const char* partition_name(PartitionKind k);

struct PartitionOptions {
  PartitionKind kind = PartitionKind::Pipeline;
  int chips = 0;             // chips available from the start of the chain (0: the rack)
  int tensor = 0;            // chips per tensor group (0: the largest all-to-all block from chip 0, at most 8 for hybrid)
  int max_links = 4;         // parallel links used between two chips
  // Optional: a plan's own choices, so that the bound describes that plan (0: the pass decides
  // from capacity).
  int stages = 0;            // pipeline: chips in the chain
  int layers_per_group = 0;  // hybrid: layers per tensor group
  std::vector<int> chain;    // pipeline order of the chips (empty: 0, 1, 2, ...)
  double usable_sram = 0.85; // fraction of a chip's SRAM a plan can give to weights and the KV cache
};

struct Partitioned {
  Graph graph;               // ops with chips, Exchanges inserted
  PartitionKind kind = PartitionKind::Pipeline;
  int tensor = 1;            // group size (pipeline: 1)
  int groups = 0;            // pipeline stages or tensor groups (the head group included)
  int chips_used = 0;
  std::string describe() const;  // "28 groups of 8 (3 layers each) + a head group"
};

// Throws lpu::Error when the model does not fit the chips (naming what it needs), the topology
// lacks a link the partition needs, or a tensor group is not linked all-to-all.
Partitioned partition(const Graph& g, const rack::RackConfig& rack, const PartitionOptions& o);

// Weight bytes an operation streams per step (MatVec: rows x cols x copies x sizeof(wtype)),
// and KV-cache bytes it reads per user (Attention: 2 x context x kv_heads x head_dim x sizeof).
double op_weight_bytes(const Graph& g, const Op& op);
double op_kv_bytes(const Graph& g, const Op& op);

}  // namespace lpu::compiler
