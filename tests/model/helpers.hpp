#pragma once
#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

#include "lpu/arch/params.hpp"
#include "lpu/asm/assembler.hpp"
#include "lpu/isa/numerics.hpp"
#include "lpu/model/chip.hpp"

namespace lpu::test {

inline std::string example(const std::string& name) { return std::string(LPU_SOURCE_DIR) + "/examples/" + name; }

struct Ran {
  model::ChipStats stats;
  std::map<std::string, std::vector<std::uint8_t>> out;
};

// Assembles `src` (text) for `preset` and runs it; returns stats and the named symbols.
inline Ran run_text(const std::string& src, const std::string& preset, model::Mode mode,
                    const std::vector<std::string>& symbols = {}, const std::vector<std::string>& set = {}) {
  auto p = load_preset(preset, set);
  auto r = assembler::assemble_string(src, "t.lpa", p);
  model::Chip chip(p, mode);
  chip.load(r.program);
  chip.run();
  Ran out{chip.stats(), {}};
  for (const auto& s : symbols) out.out[s] = chip.read_symbol(s);
  return out;
}

// dma_vectors: zero vectors the host provides on every DMA channel (streaming examples read
// their items by DMAIN; their count comes from the program's registers).
inline Ran run_file(const std::string& file, model::Mode mode, const std::vector<std::string>& symbols = {},
                    int dma_vectors = 0) {
  auto preset = assembler::preset_of_file(file, "lp30");
  auto p = load_preset(preset);
  assembler::Options o;
  auto r = assembler::assemble_file(file, p, o);
  model::Chip chip(p, mode);
  chip.load(r.program);
  const std::vector<std::uint8_t> zero(std::size_t(p.vector_bytes()), 0);
  for (int ch = 0; ch < p.dma.channels; ++ch)
    for (int i = 0; i < dma_vectors; ++i) chip.push_dma_in(ch, zero);
  chip.run();
  Ran out{chip.stats(), {}};
  for (const auto& s : symbols) out.out[s] = chip.read_symbol(s);
  return out;
}

template <class T>
std::vector<T> as(const std::vector<std::uint8_t>& b) {
  std::vector<T> v(b.size() / sizeof(T));
  std::memcpy(v.data(), b.data(), v.size() * sizeof(T));
  return v;
}

}  // namespace lpu::test
