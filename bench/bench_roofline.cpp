// bench_roofline: decode figures against their bound (issue 14's table in docs/experiments.md).
// For every model x context x partition: one timing-only decode step on the rack (1 user,
// batch 1), the achieved tokens/s per user, the bound (lpu roofline of the same plan), the
// fraction and the limiter; a refused combination prints its reason. Measures and prints a
// Markdown table, never asserts.
// --kv-lens: the tokens in the KV cache a step attends (0: the whole context; longer than the
// context: skipped), to show a step's time following the tokens rather than the context.
// Usage: bench_roofline [--rack FILE] [--models a,b] [--contexts 1024,8192] [--partitions p,q]
//                       [--kv-lens 0,1024] [--threads N]
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "lpu/common/errors.hpp"
#include "lpu/workload/decoder.hpp"

using namespace lpu;

namespace {
std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string x;
  while (std::getline(ss, x, ',')) out.push_back(x);
  return out;
}
double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
}  // namespace

int main(int argc, char** argv) {
  std::string rack = std::string(LPU_SOURCE_DIR) + "/configs/lpx-rack.toml";
  std::vector<std::string> models{"llama-3-8b", "llama-3-70b", "llama-3.1-405b", "mixtral-8x7b"};
  std::vector<std::string> contexts{"1024", "8192", "32768"};
  std::vector<std::string> partitions{"pipeline", "tensor", "hybrid"};
  std::vector<std::string> kv_lens{"0"};
  int threads = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--rack") rack = v;
    else if (a == "--models") models = split(v);
    else if (a == "--contexts") contexts = split(v);
    else if (a == "--partitions") partitions = split(v);
    else if (a == "--kv-lens") kv_lens = split(v);
    else if (a == "--threads") threads = std::stoi(v);
    else {
      fmt::print(stderr, "bench_roofline: unknown option {}\n", a);
      return 2;
    }
  }
  fmt::print("bench_roofline: {} (timing-only, 1 user, batch 1, fp8)\n\n", rack);
  fmt::print("| model | context | kv tokens | partition | chips | achieved tokens/s/user | bound | fraction | limiter | host s |\n");
  fmt::print("|---|---|---|---|---|---|---|---|---|---|\n");
  std::fflush(stdout);
  for (const auto& m : models)
    for (const auto& c : contexts)
      for (const auto& kl : kv_lens)
        for (const auto& p : partitions) {
          if (std::stoi(kl) > std::stoi(c)) continue;
          const std::string kvt = kl == "0" ? c : kl;
          workload::DecoderSpec spec;
          spec.model = m;
          spec.rack = rack;
          spec.context = std::stoi(c);
          spec.kv_len = std::stoi(kl);
          spec.partition = p;
          const double t0 = now();
          try {
            auto plan = workload::plan_decoder(spec);
            workload::DecodeOptions o;
            o.threads = threads;
            o.quiet = true;
            auto j = workload::decode_timing(plan, 1, o)["decode"];
            fmt::print("| {} | {} | {} | {} | {} | {:.0f} | {:.0f} | {:.3f} | {} | {:.0f} |\n", m, c, kvt, p, j["chips_used"].get<int>(),
                       j["tokens_per_s_per_user_batch1"].get<double>(), j["bound_tokens_per_s_per_user"].get<double>(),
                       j["fraction_of_bound"].get<double>(), j["bound_limiter"].get<std::string>(), now() - t0);
          } catch (const Error& e) {
            std::string why = e.what();
            if (why.size() > 160) why = why.substr(0, 157) + "...";
            fmt::print("| {} | {} | {} | {} | - | refused: {} | | | | {:.0f} |\n", m, c, kvt, p, why, now() - t0);
          }
          std::fflush(stdout);
        }
  return 0;
}
