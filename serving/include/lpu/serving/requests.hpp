#pragma once
// The requests a serving simulation runs (docs/serving.md, "Workloads"): a Poisson process with
// seeded lengths, or a trace file. Deterministic: the same spec and seed give the same requests on
// every platform (the generator and the draws are written out here, not taken from <random>'s
// distributions, whose algorithms the standard leaves to the library).
#include <cstdint>
#include <string>
#include <vector>

namespace lpu::serving {

struct Request {
  int id = 0;
  double arrival_s = 0;
  int prompt_tokens = 1;
  int output_tokens = 1;  // the first comes from the prefill, the rest from decode steps
};

// A token count: fixed ("1024") or uniform over whole numbers in [lo, hi] ("512-2048").
struct LengthDist {
  int lo = 1, hi = 1;
  bool fixed() const { return lo == hi; }
};
// Throws ConfigError(key) for anything but "N" or "LO-HI" with 1 <= LO <= HI <= 10^7.
LengthDist parse_length(const std::string& text, const std::string& key);
std::string to_string(const LengthDist& d);

struct PoissonWorkload {
  double rate = 1;    // requests per second
  int requests = 100;
  std::uint64_t seed = 1;
  LengthDist prompt{1024, 1024}, output{256, 256};
};
// Inter-arrival times -ln(1 - u) / rate with u uniform in [0, 1) from 53 bits of a
// std::mt19937_64 seeded with `seed`; then the prompt and output lengths of that request, each
// lo + (x mod (hi - lo + 1)) of one further draw (fixed lengths take no draw). The first request
// arrives after one inter-arrival time. Ids 0, 1, ...
std::vector<Request> poisson_requests(const PoissonWorkload& w);

// A trace: CSV with the header `arrival_s,prompt_tokens,output_tokens` and one request per line
// (blank lines and lines starting with '#' skipped); arrivals must not decrease. Ids in file
// order. Throws ConfigError("trace", "FILE:LINE: ...") on a bad line.
std::vector<Request> parse_trace(const std::string& text, const std::string& origin);
std::vector<Request> load_trace(const std::string& path);

}  // namespace lpu::serving
