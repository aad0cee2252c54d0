#pragma once
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "lpu/arch/params.hpp"
#include "lpu/asm/assembler.hpp"
#include "lpu/common/errors.hpp"
#include "lpu/common/tensor_file.hpp"
#include "lpu/runtime/device.hpp"

namespace lpu::test {

inline std::string example(const std::string& name) { return std::string(LPU_SOURCE_DIR) + "/examples/" + name; }

// The streamed example: y = x * w + b per item, 32 int8 lanes, wrapping (mini).
inline const obj::Program& stream_program() {
  static const obj::Program p = assembler::assemble_file(example("stream_axpb_i8.lpa"), load_preset("mini")).program;
  return p;
}

inline io::Tensor i8_tensor(const std::vector<std::int64_t>& shape, const std::vector<std::uint8_t>& data) {
  io::Tensor t;
  t.type = io::ElemType::I8;
  t.shape = shape;
  t.data = data;
  return t;
}

struct Weights {
  std::vector<std::uint8_t> w, b;
};
inline Weights random_weights(std::uint64_t seed) {
  std::mt19937_64 g(seed);
  Weights x;
  for (int i = 0; i < 32; ++i) {
    x.w.push_back(std::uint8_t(g()));
    x.b.push_back(std::uint8_t(g()));
  }
  return x;
}
inline std::vector<std::uint8_t> random_vector(std::mt19937_64& g) {
  std::vector<std::uint8_t> v(32);
  for (auto& b : v) b = std::uint8_t(g());
  return v;
}
// The plain C++ reference of the example program.
inline std::vector<std::uint8_t> axpb(const std::vector<std::uint8_t>& x, const Weights& w) {
  std::vector<std::uint8_t> y(32);
  for (std::size_t i = 0; i < 32; ++i) y[i] = std::uint8_t(std::uint8_t(x[i] * w.w[i]) + w.b[i]);
  return y;
}

inline void load_axpb(rt::Device& d, const Weights& w, int chip = 0) {
  d.load_tensor({chip, "w", "w", false}, i8_tensor({32}, w.w));
  d.load_tensor({chip, "b", "b", false}, i8_tensor({32}, w.b));
}

// A fresh temporary directory per test, removed at the end.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    static std::atomic<int> n{0};
    path = std::filesystem::temp_directory_path() /
           ("lpu-rt-test-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string operator/(const std::string& f) const { return (path / f).string(); }
};

inline void write_bytes(const std::string& path, const std::vector<std::uint8_t>& b) {
  FILE* f = std::fopen(path.c_str(), "wb");
  REQUIRE(f);
  if (!b.empty()) std::fwrite(b.data(), 1, b.size(), f);
  std::fclose(f);
}

// The message of the exception `f` throws (empty if none).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

inline bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Statistics without the host-dependent parts.
inline nlohmann::json deterministic(nlohmann::json j) {
  j.erase("host");
  if (j.contains("chips"))
    for (auto& c : j["chips"]) c.erase("host");
  return j;
}

}  // namespace lpu::test
