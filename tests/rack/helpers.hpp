#pragma once
// Shared helpers of the rack tests.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "lpu/rack/config.hpp"
#include "lpu/rack/engine.hpp"
#include "lpu/rack/program.hpp"

namespace rt {

inline std::string src(const std::string& rel) { return std::string(LPU_SOURCE_DIR) + "/" + rel; }
inline lpu::rack::RackConfig rack(const std::string& file) { return lpu::rack::load_rack(src("configs/" + file)); }
inline lpu::rack::RackProgram manifest(const std::string& file, const lpu::rack::RackConfig& cfg) {
  return lpu::rack::load_manifest(src("examples/rack/" + file), cfg);
}
// A manifest given as text, with files relative to examples/rack.
inline lpu::rack::RackProgram manifest_text(const std::string& text, const lpu::rack::RackConfig& cfg) {
  return lpu::rack::parse_manifest(text, "<test>", src("examples/rack"), cfg);
}
// A rack file as text: a base file with a TOML suffix appended (later keys in new tables).
inline lpu::rack::RackConfig rack_text(const std::string& text) {
  return lpu::rack::parse_rack(text, "<test>", src("configs"));
}

inline lpu::rack::RunOptions opts(bool timing_only, int threads = 1) {
  lpu::rack::RunOptions o;
  o.mode = timing_only ? lpu::model::Mode::TimingOnly : lpu::model::Mode::Functional;
  o.threads = threads;
  o.min_parallel_work = 0;  // every phase with more than one chip on the pool: exercise it
  return o;
}

// Deterministic pseudo-random numbers for test data.
struct Lcg {
  std::uint64_t s;
  explicit Lcg(std::uint64_t seed) : s(seed * 2862933555777941757ull + 3037000493ull) {}
  std::uint32_t next() {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return std::uint32_t(s >> 33);
  }
  int range(int lo, int hi) { return lo + int(next() % std::uint32_t(hi - lo + 1)); }
};

template <class T>
std::vector<std::uint8_t> bytes_of(const std::vector<T>& v) {
  std::vector<std::uint8_t> b(v.size() * sizeof(T));
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}
template <class T>
std::vector<T> from_bytes(const std::vector<std::uint8_t>& b) {
  std::vector<T> v(b.size() / sizeof(T));
  std::memcpy(v.data(), b.data(), v.size() * sizeof(T));
  return v;
}

}  // namespace rt
