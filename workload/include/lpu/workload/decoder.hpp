#pragma once
// Transformer decode on a rack: the program generator (`lpu gen decoder`) and the runs of its
// programs (`lpu decode`). Design, numerics and commands in docs/decode.md.
//
// One program per chip serves every decode step: the host sets registers before each step
// (the KV-cache row registers, see step_registers) and streams in the token's embedding plus
// the step's constants (RoPE cos/sin, the position, the one-hot lane of the position); the
// last chips stream out the logits.
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "lpu/asm/object.hpp"
#include "lpu/compiler/roofline.hpp"
#include "lpu/common/tensor_file.hpp"
#include "lpu/isa/isa.hpp"
#include "lpu/rack/config.hpp"
#include "lpu/workload/model_shape.hpp"
#include "lpu/workload/reference.hpp"

namespace lpu::workload {

struct DecoderSpec {
  std::string model = "tiny";       // configs/models name or path
  std::string rack;                 // rack file
  int chips = 0;                    // chips to use (0: as many as help, up to the rack)
  std::string partition = "pipeline";  // pipeline | tensor | hybrid (docs/decode.md, "Partitions")
  int tensor = 0;                   // chips per tensor group (0: automatic; tensor, hybrid)
  std::string dtype = "fp8";        // fp8 | bf16 | int8 (int8: timing only)
  int context = 0;                  // KV-cache positions per user (0: min(model max_context, 8192))
  // Positions the attention of a step reads: the tokens in the KV cache (0: the whole context).
  // The programs cover them in whole blocks (a length bucket, kv_bucket); the KV cache and every
  // symbol keep the placement of the whole context, so the programs of all buckets share the
  // chip's SRAM and one can replace another between steps (docs/decode.md, "Attention over the
  // tokens in the cache").
  int kv_len = 0;
  int users = 1;                    // users whose KV cache is held (pipelined micro-batches)
  int batch = 1;                    // users per micro-batch: tokens one run of the programs decodes
  int chips_per_layer = 0;          // 0: automatic
  int head_chips = 0;               // 0: automatic
  int max_links = 4;                // parallel links used between consecutive stages (and between group members)
  std::string moe = "sparse";       // mixture of experts: sparse (the chosen experts, GATHERed) | dense (every expert)
  std::string weight_path = "auto";  // lwm (the weight bus) | lw (streams) | auto: lwm unless sparse experts
  std::string k_cache = "auto";  // rows | transposed (K^T, over the weight bus only) | auto
  // Each head's softmax: halves (two half-length passes by parity, from 4 score vectors), whole
  // (one pass) or auto (halves from 32 score vectors); the same numerics (docs/decode.md).
  std::string softmax = "auto";
  // full: every layer's attention and FFN; none: the FFN (or mixture of experts) of every layer
  // only, with its RMSNorm and residual (attention on other hardware: the LPX side of an
  // attention-FFN disaggregated system, docs/serving.md). `none` is timing-only.
  std::string attention = "full";
};

// What one chip does, where its data is, and how to run it.
struct ChipPlan {
  int chip = 0;                 // rack chip number
  int stage = 0;                // its index in DecoderPlan::chips
  int group = 0, member = 0;    // tensor groups: the pipeline position of its group, its place in it
  std::string role;             // "L3.attn+ffn[0,30)", "head[0,134)"
  std::string units;            // the units it computes, for people
  int program = 0;              // index into DecoderPlan::programs
  std::int64_t start_delay = 0; // cycles after the common start its program begins
  std::int64_t cycles = 0;      // program length (from its start)
  std::int64_t first_send = -1; // program cycle of its first SEND (-1: none)
  std::int64_t tiles = 0;       // weight tiles streamed through the MXM per run
  std::vector<int> in_links, out_links;  // links used (to the previous / next stage)
  int prev = -1, next = -1;     // neighbouring stages' chips
  int dma_in_vectors = 0;       // host DMA channel 0 (first stage)
  int dma_out_vectors = 0;      // host DMA channel 1 (logits)
  int logits_first = 0;         // first f32 logits vector it returns
};

struct PlanDetail;  // internal: the geometry and every symbol's rows (decoder_gen.cpp)

struct DecoderPlan {
  DecoderSpec spec;
  ModelShape model;
  rack::RackConfig rack;
  isa::Dtype wtype = isa::Dtype::E4m3;
  std::string weight_path;    // lwm | lw: how weights reach the planes
  int context = 0;            // positions per user
  int kv_len = 0;             // positions the attention reads (<= context; its programs cover whole blocks)
  int kv_block = 0;           // positions per KV-cache block (the programs' unit of kv_len)
  int reduce_block = 0;       // f32 elements per vector (numerics)
  int chips_per_layer = 1, layers_per_chip = 1, head_chips = 1;
  int tensor = 1, groups = 0;  // tensor groups: chips per group, groups (pipeline: 1, stages)
  std::vector<ChipPlan> chips;          // pipeline order
  std::vector<std::string> programs;    // distinct .lpa texts; times are `@T0+cycle`
  std::vector<std::string> program_names;
  // Programs that differ only in link numbers share a schedule: per program, its schedule and
  // the links its SEND / RECV slots name (so that one assembled object serves them all).
  std::vector<int> program_schedule;
  std::vector<std::vector<int>> program_out_links, program_in_links;
  // Host I/O per micro-batch: first stage DMAIN channel 0; logits DMAOUT channel 1.
  int x_vectors = 0;          // f32 vectors of the embedding per user (zero-padded)
  int const_vectors = 0;      // step constants after the embeddings
  int logits_vectors = 0;     // f32 vectors of logits per user (zero-padded)
  int vector_bytes = 0;
  // Registers the host sets before every step (besides r1 = pos): see step_registers.
  struct RegRule {
    int reg = 0;
    std::string what;     // "K cache, third 1 of a block, slice part 0"
    std::string formula;  // its value as a function of pos
  };
  std::vector<RegRule> regs;
  std::shared_ptr<const PlanDetail> detail;
  double plan_s = 0;          // host seconds plan_decoder took (partition, place, schedule, emit)
};

// Builds the whole plan (schedules every distinct program). Throws lpu::Error with a clear
// message when the model does not fit (chips and racks it would need), for unsupported
// partitions, dtypes and models.
DecoderPlan plan_decoder(const DecoderSpec& spec);

// The kv_len of the length bucket whose programs serve a step that attends `tokens` positions
// (the step at position pos attends pos + 1): whole blocks rounded up to a power of two, at most
// the context. A plan's programs serve every step whose bucket is its kv_len.
int kv_bucket(const DecoderPlan& plan, int tokens);

// Registers (r1 = pos, then the KV-cache part registers) for a step at position `pos`.
std::vector<std::pair<int, std::uint32_t>> step_registers(const DecoderPlan& plan, int pos);

// The host's input of one step for `batch` users: embeddings (f32, zero-padded) then the step
// constants. Each vector is vector_bytes long.
std::vector<std::vector<std::uint8_t>> step_inputs(const DecoderPlan& plan, const std::vector<std::vector<float>>& embeddings,
                                                   int pos);

// The contents of every weight and table symbol of one chip, from model weights (safetensors
// tensors as written by gen_weights). Symbol name -> bytes (the symbol's rows).
std::map<std::string, std::vector<std::uint8_t>> chip_symbols(const DecoderPlan& plan, int stage,
                                                              const std::map<std::string, io::Tensor>& weights);

// Writes the generated files: one .lpa per distinct program (times `@T0+...`), its object
// (assembled with T0 = 0), placement.json (per chip: program, start delay, links, symbols),
// rack.toml (a manifest `lpu run --rack FILE` runs: per chip the source with consts T0 = its
// start delay) and, when weights are given, the symbol contents as .npy files it loads.
void write_decoder(const DecoderPlan& plan, const std::string& dir, const std::map<std::string, io::Tensor>* weights = nullptr);

nlohmann::json plan_json(const DecoderPlan& plan);
// The symbols of stage `stage` (an index into DecoderPlan::chips): slice, row, rows, dtype,
// contents (made on demand: a 70B plan's would take a gigabyte).
nlohmann::json chip_placement(const DecoderPlan& plan, int stage);

// The bound of the plan's decode step (lpu roofline with the plan's partition, chips, group size
// and context): what every decode's statistics compare their figure with.
compiler::Roofline plan_roofline(const DecoderPlan& plan);

// The object of every program (times with T0 = 0; start delays go in rack::ChipProgram):
// one assembly per schedule on up to `threads` host threads (0: the host's cores).
std::vector<std::shared_ptr<const obj::Program>> decoder_objects(const DecoderPlan& plan, int threads = 0);

// ---- runs ----------------------------------------------------------------------------------

struct DecodeOptions {
  int threads = 1;
  std::string stats;   // write statistics JSON here
  std::string trace;   // Perfetto timeline (functional runs, first chips)
  bool quiet = false;
};

struct DecodeStep {
  int pos = 0;
  int token_in = 0;
  int token_out = 0;
  std::vector<float> logits;
  double latency_s = 0;      // emulated, host to host (runtime)
  std::int64_t chip_cycles = 0;
  int kv_len = 0;            // the length bucket whose programs ran it (kv_bucket of pos + 1)
};

struct DecodeResult {
  std::vector<int> tokens;           // generated
  std::vector<DecodeStep> steps;     // every step (prompt and generated)
  nlohmann::json stats;              // runtime statistics + decode summary
};

// A functional decode session on a runtime device: the programs and weights loaded, one step
// per call.
// A decode on a device: each step runs the programs of its length bucket (kv_bucket), planned
// when first needed from the plan's spec; on a change of bucket the new programs replace the
// old ones on every chip and every symbol (weights, KV cache, tables) carries over.
class DecodeSession {
 public:
  DecodeSession(const DecoderPlan& plan, const std::map<std::string, io::Tensor>& weights);
  ~DecodeSession();
  DecodeStep step(int token, int pos);  // logits of the token at `pos`
  // A chip's symbol after the last step (KV cache: "K0u0g0p0" ..., see placement.json).
  io::Tensor read_symbol(int stage, const std::string& name);
  nlohmann::json stats();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Greedy decode on the emulator through the runtime (functional): loads the programs and
// weights onto a rack device, runs one step per token with the step registers set, argmax on
// the host.
DecodeResult decode_functional(const DecoderPlan& plan, const std::map<std::string, io::Tensor>& weights,
                               const std::vector<int>& prompt, int max_new, const DecodeOptions& opt);

// Timing-only: one run of the programs (one micro-batch of `batch` users) on the rack engine;
// statistics with the decode figures (latency per token, tokens/s per user and with `users`
// in flight, utilisation, SRAM and link bandwidth, energy, tokens/s per MW).
nlohmann::json decode_timing(const DecoderPlan& plan, int tokens, const DecodeOptions& opt, std::string* text = nullptr);

}  // namespace lpu::workload
