#pragma once
// Plain C++ references for the generated rack programs (all-reduce, pipeline), independent of
// the emulator and of the generators' own timing.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "helpers.hpp"
#include "lpu/arch/layout.hpp"
#include "lpu/common/tensor_file.hpp"
#include "lpu/isa/isa.hpp"

namespace rt {

inline std::vector<std::uint8_t> npy_bytes(const std::string& path) { return lpu::io::load_npy(path).data; }

// ---- all-reduce ------------------------------------------------------------------------------

struct AllReduceData {
  int n = 0, e = 0;
  std::vector<std::vector<std::int32_t>> xi;  // per ring position: n x e
  std::vector<std::vector<float>> xf;
};

inline AllReduceData allreduce_inputs(lpu::rack::Rack& r, const std::vector<int>& order, const std::string& dtype,
                                      std::uint64_t seed) {
  AllReduceData d;
  d.n = int(order.size());
  d.e = r.config().base().vector_bytes() / 4;
  Lcg g(seed);
  for (int p = 0; p < d.n; ++p) {
    auto* chip = r.chip(order[std::size_t(p)]);
    if (dtype == "i32") {
      std::vector<std::int32_t> x(std::size_t(d.n * d.e));
      for (auto& v : x) v = g.range(-100000, 100000);
      chip->write_symbol("X", bytes_of(x));
      d.xi.push_back(std::move(x));
    } else {
      std::vector<float> x(std::size_t(d.n * d.e));
      for (auto& v : x) v = float(g.range(-1000000, 1000000)) * 1.37e-3f;
      chip->write_symbol("X", bytes_of(x));
      d.xf.push_back(std::move(x));
    }
  }
  return d;
}

// Chunk c is reduced along the ring starting at ring position c: acc = X[c][c], then
// acc = acc + X[c+1][c], ... (f32: exactly this order of additions; i32 wraps).
inline void check_allreduce(lpu::rack::Rack& r, const std::vector<int>& order, const std::string& dtype,
                            const AllReduceData& d) {
  const auto N = std::size_t(d.n), E = std::size_t(d.e);
  if (dtype == "i32") {
    std::vector<std::int32_t> y(N * E);
    for (std::size_t c = 0; c < N; ++c)
      for (std::size_t i = 0; i < E; ++i) {
        std::uint32_t acc = 0;
        for (std::size_t p = 0; p < N; ++p) acc += std::uint32_t(d.xi[p][c * E + i]);
        y[c * E + i] = std::int32_t(acc);
      }
    for (int c : order) CHECK(from_bytes<std::int32_t>(r.chip(c)->read_symbol("Y")) == y);
  } else {
    std::vector<float> y(N * E);
    for (std::size_t c = 0; c < N; ++c)
      for (std::size_t i = 0; i < E; ++i) {
        float acc = d.xf[c][c * E + i];
        for (std::size_t j = 1; j < N; ++j) acc = acc + d.xf[(c + j) % N][c * E + i];
        y[c * E + i] = acc;
      }
    for (int c : order) {
      auto got = from_bytes<float>(r.chip(c)->read_symbol("Y"));
      CHECK(std::memcmp(got.data(), y.data(), y.size() * 4) == 0);
    }
  }
}

// Analytic cycle count per ring position (docs/rack.md, "All-reduce"). On lp30: sxm.e at 475,
// mem.w.0 at 238, the VXM at 239, mem.e.0 at 240; one hop per cycle.
//   first send  F  = mem_read + (sxm.e - mem.w.0)            READ own chunk -> SEND     (242)
//   RS step     rs = c2c_recv + 2 (sxm.e - vxm) + vxm_alu     RECV -> ADD -> SEND        (479)
//   AG step     ag = c2c_recv                                  RECV -> SEND (forward)     (4)
//   last write  w  = c2c_recv + (sxm.e - mem.e.0) + mem_write  RECV -> result row written (241)
//   hop(a->b)      = c2c_send + serialisation + latency of the link a -> b
// The last RECV of position r ends a chain of 2 (N - 1) dependent transfers ending at r, with N - 1
// adder passes and N - 2 forwards between them:
//   T(r) = F + sum of the 2N - 2 hops ending at r + (N - 1) rs + (N - 2) ag + w, cycles = T + 1 + 19.
inline std::vector<std::int64_t> allreduce_analytic_cycles(const lpu::rack::RackConfig& cfg, const std::vector<int>& order) {
  using lpu::isa::LatClass;
  const auto& p = cfg.base();
  lpu::Layout lay(p);
  auto pos = [&](const char* s) { return std::int64_t(lay.slice(*lay.find_slice(s)).position); };
  const std::int64_t F = p.lat(LatClass::MemRead) + pos("sxm.e") - pos("mem.w.0");
  const std::int64_t rs = p.lat(LatClass::C2cRecv) + 2 * (pos("sxm.e") - pos("vxm")) + p.lat(LatClass::VxmAlu);
  const std::int64_t ag = p.lat(LatClass::C2cRecv);
  const std::int64_t w = p.lat(LatClass::C2cRecv) + pos("sxm.e") - pos("mem.e.0") + p.lat(LatClass::MemWrite);
  const int N = int(order.size());
  auto hop = [&](int from_pos) {
    const int a = order[std::size_t(from_pos)], b = order[std::size_t((from_pos + 1) % N)];
    return lpu::rack::link_timing(cfg, a, cfg.topology.link_to(a, b)).hop();
  };
  std::vector<std::int64_t> out(static_cast<std::size_t>(N));
  for (int r = 0; r < N; ++r) {
    std::int64_t sum = 0;
    for (int j = 0; j < 2 * N - 2; ++j) sum += hop(((r - j - 1) % N + N) % N);
    out[std::size_t(r)] = F + sum + (N - 1) * rs + (N - 2) * ag + w + 1 + std::int64_t(p.superlanes - 1) * p.icu.superlane_stagger;
  }
  return out;
}

// ---- pipeline --------------------------------------------------------------------------------

struct PipelineData {
  int n = 0;
  std::vector<std::vector<std::int8_t>> w;  // per stage: n x n, row-major W[i][j]
  std::vector<std::vector<std::int8_t>> x;  // input vectors
};

inline PipelineData pipeline_inputs(lpu::rack::Rack& r, const std::vector<int>& order, int vectors, std::uint64_t seed) {
  PipelineData d;
  d.n = r.config().base().vector_bytes();
  Lcg g(seed);
  for (int c : order) {
    std::vector<std::int8_t> w(std::size_t(d.n * d.n));
    for (auto& v : w) {
      const int u = g.range(0, 15);
      v = std::int8_t(u == 0 ? -1 : u == 1 ? 1 : u == 2 ? 2 : 0);
    }
    r.chip(c)->write_symbol("W", bytes_of(w));
    d.w.push_back(std::move(w));
  }
  for (int b = 0; b < vectors; ++b) {
    std::vector<std::int8_t> x(std::size_t(d.n));
    for (auto& v : x) v = std::int8_t(g.range(-30, 30));
    r.chip(order[0])->push_dma_in(0, bytes_of(x));
    d.x.push_back(std::move(x));
  }
  return d;
}

// y = sat_i8(W x) with exact int32 accumulation, stage after stage.
inline void check_pipeline(lpu::rack::Rack& r, const std::vector<int>& order, const PipelineData& d) {
  const auto n = std::size_t(d.n);
  auto out = r.chip(order.back())->take_dma_out(0);
  REQUIRE(out.size() == d.x.size());
  for (std::size_t b = 0; b < d.x.size(); ++b) {
    std::vector<std::int8_t> v = d.x[b];
    for (const auto& w : d.w) {
      std::vector<std::int8_t> y(n);
      for (std::size_t i = 0; i < n; ++i) {
        std::int32_t acc = 0;
        for (std::size_t j = 0; j < n; ++j) acc += std::int32_t(w[i * n + j]) * std::int32_t(v[j]);
        y[i] = std::int8_t(std::clamp(acc, -128, 127));
      }
      v = std::move(y);
    }
    CHECK(from_bytes<std::int8_t>(out[b]) == v);
  }
}

}  // namespace rt
