#pragma once
// The compiler's tensor IR: one decode step of one micro-batch as a sequence of operations in
// dependency order (each reads what the operations before it produced). Front ends build it
// (frontend.hpp); passes annotate it (partition.hpp: which chips run an operation, and the
// exchanges between them); the cost model and the roofline read it (roofline.hpp).
//
// Contract: Graph::ops is a topological order, and at batch-1 decode also the order in which
// the operations' outputs become complete: an operation reads only outputs of earlier ones.
// Sizes are in elements of the graph's weight type unless a field says bytes.
#include <cstdint>
#include <string>
#include <vector>

#include "lpu/isa/isa.hpp"

namespace lpu::compiler {

enum class OpKind : std::uint8_t {
  Input,      // the host streams the micro-batch's inputs in (embeddings, step constants)
  Norm,       // RMSNorm of an f32 vector of `cols` elements (a reduction over all of it)
  MatVec,     // y[rows] = W[rows, cols] x[cols], `copies` weight matrices (MoE: experts evaluated)
  Attention,  // RoPE, KV-cache append, softmax(K q / sqrt(hd)) V over `context` positions
  SwiGlu,     // a = silu(gate) * up over `cols` elements, `copies` times
  Gating,     // MoE: top-k of `rows` router logits, softmax over the chosen
  Exchange,   // vectors move between chips (inserted by the partition passes)
  Output,     // the logits stream out to the host
};
const char* op_kind_name(OpKind k);

enum class ExchangeKind : std::uint8_t {
  AllGather,  // every member of a tensor group sends its share to every other member
  Send,       // one chip (or group leader) sends the live vectors to the next stage
};

struct Op {
  OpKind kind = OpKind::MatVec;
  std::string name;  // "L3.qkv", "head", "L0.x>1"
  int layer = -1;    // -1: not part of a transformer layer (input, head, output)

  // Shapes. MatVec: rows x cols weights, copies matrices; Norm/SwiGlu: cols elements (SwiGlu:
  // copies); Attention: heads, kv_heads, head_dim over `context` positions; Gating: rows logits,
  // top_k chosen.
  std::int64_t rows = 0, cols = 0;
  int copies = 1;
  int stored_copies = 0;  // MatVec: matrices held in SRAM (MoE: every expert; 0: copies)
  int heads = 0, kv_heads = 0, head_dim = 0, top_k = 0;
  std::int64_t context = 0;
  // Input/Output/Exchange: payload bytes per user (an all-gather: the whole gathered vector).
  std::int64_t bytes = 0;

  // Set by a partition pass: the chips that execute the operation together, each a share of
  // its work (one chip: the whole). Exchange: AllGather among `chips`, or Send from `from` to
  // `to` over `links` parallel links (AllGather: links per pair of members).
  std::vector<int> chips;
  ExchangeKind xkind = ExchangeKind::Send;
  int from = -1, to = -1, links = 0;
  std::int64_t link_latency = 0;   // one way, cycles after serialisation (Exchange)
};

struct Graph {
  std::string model;           // model name
  isa::Dtype wtype = isa::Dtype::E4m3;  // weights, the KV cache and the vectors entering the MXM
  int batch = 1;               // users per micro-batch
  std::int64_t context = 0;    // positions of each user's KV cache the step reads
  std::vector<Op> ops;

  // Human-readable listing, one operation per line (`--print-after`).
  std::string print() const;
};

}  // namespace lpu::compiler
