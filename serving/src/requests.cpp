#include "lpu/serving/requests.hpp"

#include <fmt/format.h>

#include <cmath>
#include <fstream>
#include <random>
#include <sstream>

#include "lpu/common/errors.hpp"
#include "lpu/common/parse.hpp"

namespace lpu::serving {

namespace {
constexpr int kMaxTokens = 10'000'000;

std::string trim(const std::string& s) {
  const auto a = s.find_first_not_of(" \t\r");
  if (a == std::string::npos) return "";
  const auto b = s.find_last_not_of(" \t\r");
  return s.substr(a, b - a + 1);
}
}  // namespace

LengthDist parse_length(const std::string& text, const std::string& key) {
  const auto dash = text.find('-');
  LengthDist d;
  try {
    if (dash == std::string::npos) {
      d.lo = d.hi = int(parse_int(trim(text), key, IntRange{1, kMaxTokens}));
    } else {
      d.lo = int(parse_int(trim(text.substr(0, dash)), key, IntRange{1, kMaxTokens}));
      d.hi = int(parse_int(trim(text.substr(dash + 1)), key, IntRange{1, kMaxTokens}));
    }
  } catch (const Error&) {
    throw ConfigError(key, fmt::format("'{}': expected a token count N or a uniform range LO-HI (1..{})", text, kMaxTokens));
  }
  if (d.lo > d.hi) throw ConfigError(key, fmt::format("'{}': the range is empty (LO > HI)", text));
  return d;
}

std::string to_string(const LengthDist& d) { return d.fixed() ? fmt::format("{}", d.lo) : fmt::format("{}-{}", d.lo, d.hi); }

std::vector<Request> poisson_requests(const PoissonWorkload& w) {
  if (!(w.rate > 0) || !std::isfinite(w.rate)) throw ConfigError("rate", "the arrival rate must be a positive number of requests per second");
  if (w.requests < 1) throw ConfigError("requests", "at least one request");
  std::mt19937_64 rng(w.seed);
  auto uniform01 = [&] { return double(rng() >> 11) * 0x1.0p-53; };  // [0, 1), 53 bits
  auto draw = [&](const LengthDist& d) {
    if (d.fixed()) return d.lo;
    return d.lo + int(rng() % std::uint64_t(d.hi - d.lo + 1));
  };
  std::vector<Request> v;
  v.reserve(std::size_t(w.requests));
  double t = 0;
  for (int i = 0; i < w.requests; ++i) {
    t += -std::log1p(-uniform01()) / w.rate;
    Request r;
    r.id = i;
    r.arrival_s = t;
    r.prompt_tokens = draw(w.prompt);
    r.output_tokens = draw(w.output);
    v.push_back(r);
  }
  return v;
}

std::vector<Request> parse_trace(const std::string& text, const std::string& origin) {
  std::vector<Request> v;
  std::stringstream ss(text);
  std::string line;
  int n = 0;
  bool header = false;
  while (std::getline(ss, line)) {
    ++n;
    const auto t = trim(line);
    if (t.empty() || t[0] == '#') continue;
    auto fail = [&](const std::string& why) { return ConfigError("trace", fmt::format("{}:{}: {}", origin, n, why)); };
    if (!header) {
      std::string h;
      for (char c : t)
        if (c != ' ' && c != '\t') h += c;
      if (h != "arrival_s,prompt_tokens,output_tokens") throw fail("expected the header arrival_s,prompt_tokens,output_tokens");
      header = true;
      continue;
    }
    std::vector<std::string> f;
    std::stringstream ls(t);
    std::string cell;
    while (std::getline(ls, cell, ',')) f.push_back(trim(cell));
    if (f.size() != 3) throw fail(fmt::format("expected 3 fields, found {}", f.size()));
    Request r;
    r.id = int(v.size());
    try {
      r.arrival_s = parse_double(f[0], "arrival_s", 0, 1e9);
      r.prompt_tokens = int(parse_int(f[1], "prompt_tokens", IntRange{1, kMaxTokens}));
      r.output_tokens = int(parse_int(f[2], "output_tokens", IntRange{1, kMaxTokens}));
    } catch (const Error& e) {
      throw fail(e.what());
    }
    if (!v.empty() && r.arrival_s < v.back().arrival_s) throw fail("arrival times must not decrease");
    v.push_back(r);
  }
  if (!header) throw ConfigError("trace", fmt::format("{}: no header line", origin));
  if (v.empty()) throw ConfigError("trace", fmt::format("{}: no requests", origin));
  return v;
}

std::vector<Request> load_trace(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw ConfigError("trace", fmt::format("cannot open '{}'", path));
  std::stringstream ss;
  ss << f.rdbuf();
  return parse_trace(ss.str(), path);
}

}  // namespace lpu::serving
