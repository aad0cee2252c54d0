// lpu decode: greedy decode of a model on the emulated rack (functional, through the runtime),
// or one timing-only step of a big model with the decode figures (docs/decode.md).
#include <fmt/format.h>

#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "commands.hpp"
#include "lpu/common/errors.hpp"
#include "lpu/common/parse.hpp"
#include "lpu/common/tensor_file.hpp"
#include "lpu/rack/mpi.hpp"
#include "lpu/workload/decoder.hpp"
#include "lpu/workload/reference.hpp"

namespace lpu::tools {

void resolve_rack(workload::DecoderSpec& s);
void add_decoder_spec(CLI::App* sub, workload::DecoderSpec& s);

namespace {
std::vector<int> parse_tokens(const std::string& s) {
  std::vector<int> v;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    v.push_back(int(parse_int(item, "--prompt token", range_of<int>())));  // the vocabulary is checked later
  }
  return v;
}
}  // namespace

void add_decode(CLI::App& app, std::vector<std::pair<CLI::App*, Action>>& out) {
  struct O {
    workload::DecoderSpec spec;
    std::string weights, prompt = "1", stats, trace;
    int max_new = 32, threads = 1, tokens = 1;
    bool timing_only = false, json = false, reference = false, quiet = false;
    bool mpi = false;  // started by main (MPI_Init) when the line has --mpi
  };
  auto o = std::make_shared<O>();
  auto* sub = app.add_subcommand("decode", "greedy decode on the emulated rack (functional), or one timing-only decode step");
  add_decoder_spec(sub, o->spec);
  sub->add_option("--weights", o->weights, "weights (.safetensors from lpu gen weights): functional decode");
  sub->add_option("--prompt", o->prompt, "prompt token ids, e.g. 1,2,3")->capture_default_str();
  sub->add_option("--max-new", o->max_new, "tokens to generate")->capture_default_str();
  sub->add_flag("--timing-only", o->timing_only, "one decode step without data: latency, tokens/s, utilisation, energy");
  sub->add_option("--tokens", o->tokens, "timing-only: steps the figures are reported for (they repeat identically)")
      ->capture_default_str();
  sub->add_option("--threads", o->threads, "host threads of the rack engine (timing-only)")->capture_default_str();
  sub->add_option("--stats", o->stats, "write statistics as JSON (a failed decode writes its status and error there too)");
  sub->add_option("--trace", o->trace, "write the timeline of a step on the first stages and the last (Perfetto / chrome://tracing JSON)");
  sub->add_flag("--reference", o->reference, "functional: also run the plain C++ reference decoder and compare");
  sub->add_flag("--json", o->json, "print the result as JSON");
  sub->add_flag("-q,--quiet", o->quiet, "no progress line on stderr (shown only on a terminal, for work over a second)");
  sub->add_flag("--mpi", o->mpi,
                "under mpirun: divide the rack's chips over the MPI ranks (contiguous ranges, --threads each); results "
                "as one process, only rank 0 prints and writes (docs/distributed.md)");
  auto decode = [o]() {
    const bool speak = rack::mpi::rank() == 0;  // under MPI only rank 0 prints
    // (Under MPI the steps every rank takes alike agree on their errors: rack::mpi::replicated;
    // the rack engine agrees on its own; any other error aborts the job from its rank.)
    rack::mpi::agree_on_errors([&] { resolve_rack(o->spec); });
    if (o->timing_only) {
      nlohmann::json j;
      std::string text;
      {
        ProgressLine progress("decode", !o->quiet);  // (cleared before the results print)
        auto plan = rack::mpi::replicated([&] { return workload::plan_decoder(o->spec); });
        workload::DecodeOptions opt;
        opt.threads = o->threads;
        opt.stats = o->stats;
        opt.trace = o->trace;
        j = workload::decode_timing(plan, o->tokens, opt, &text);
      }
      if (!speak) return 0;
      if (o->json) std::cout << j["decode"].dump(2) << "\n";
      else std::cout << text;
      return 0;
    }
    rack::mpi::agree_on_errors([&] {
      if (o->weights.empty()) throw Error("functional decode needs --weights FILE.safetensors (or use --timing-only)");
    });
    auto ws = rack::mpi::replicated([&] { return io::load_safetensors(o->weights); });
    auto plan = [&] {
      ProgressLine progress("decode", !o->quiet);
      return rack::mpi::replicated([&] { return workload::plan_decoder(o->spec); });
    }();
    const auto prompt = rack::mpi::replicated([&] { return parse_tokens(o->prompt); });
    workload::DecodeOptions opt;
    opt.stats = o->stats;
    auto r = workload::decode_functional(plan, ws, prompt, o->max_new, opt);
    if (!o->trace.empty()) {
      // The timeline of one step: the schedule is the same in functional and timing-only runs.
      workload::DecodeOptions t;
      t.trace = o->trace;
      workload::decode_timing(plan, 1, t);
    }
    nlohmann::json j = r.stats["decode"];
    int mismatches = -1;
    double max_diff = 0;
    if (o->reference) {
      workload::ReferenceDecoder ref(plan.model, ws, {plan.wtype, plan.reduce_block});
      std::vector<std::vector<float>> lg;
      auto toks = ref.greedy(prompt, o->max_new, &lg);
      mismatches = 0;
      for (std::size_t i = 0; i < toks.size(); ++i) mismatches += i >= r.tokens.size() || toks[i] != r.tokens[i];
      std::size_t k = 0;
      for (const auto& s : r.steps)
        if (s.token_out >= 0 && k < lg.size()) {
          for (std::size_t v = 0; v < s.logits.size(); ++v)
            max_diff = std::max(max_diff, double(std::abs(s.logits[v] - lg[k][v])));
          ++k;
        }
      j["reference_tokens"] = toks;
      j["reference_token_mismatches"] = mismatches;
      j["reference_max_abs_logit_diff"] = max_diff;
    }
    if (!speak) {
    } else if (o->json) {
      std::cout << j.dump(2) << "\n";
    } else {
      fmt::print("tokens: {}\n", fmt::join(r.tokens, ","));
      fmt::print("{} prompt + {} new tokens on {} chips of {}: {:.3f} us per token (emulated, host to host), {:.1f} tokens/s\n",
                 prompt.size(), r.tokens.size(), plan.chips.size(), plan.rack.name, j["latency_per_token_s"].get<double>() * 1e6,
                 j["tokens_per_s_per_user"].get<double>());
      if (mismatches >= 0)
        fmt::print("reference decoder: {} token mismatch(es), max |logit difference| {:.3g}\n", mismatches, max_diff);
    }
    return mismatches > 0 ? 1 : 0;
  };
  // A failed decode still writes its --stats file, with the error (docs/debugging.md).
  out.emplace_back(sub, [o, decode]() {
    return with_failure_stats(rack::mpi::rank() == 0 ? o->stats : std::string(), "decode", decode);
  });
}

}  // namespace lpu::tools
