// The pieces of the distributed rack engine that are not the window loop (docs/distributed.md):
// which rank runs which chip, and statistics as bytes between ranks.
#include "distributed.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "lpu/common/errors.hpp"

namespace lpu::rack {

std::vector<int> partition_chips(int chips, int ranks, const std::string& spec, const std::vector<int>& rank0) {
  if (ranks < 1) throw Error("MPI partition: no ranks");
  std::vector<int> owner(std::size_t(chips), -1);
  if (!spec.empty()) {
    // "0-99/100-255": one chip list per rank, separated by '/'.
    std::vector<std::string> parts;
    std::size_t at = 0;
    for (;;) {
      const auto s = spec.find('/', at);
      parts.push_back(spec.substr(at, s == std::string::npos ? std::string::npos : s - at));
      if (s == std::string::npos) break;
      at = s + 1;
    }
    if (int(parts.size()) != ranks)
      throw ConfigError("--mpi-partition", fmt::format("'{}' gives {} chip list(s) for {} MPI rank(s): give one per rank, "
                                                       "separated by '/'", spec, parts.size(), ranks));
    for (int r = 0; r < ranks; ++r)
      for (int c : parse_chip_list(parts[std::size_t(r)], chips, fmt::format("--mpi-partition (rank {})", r))) {
        if (owner[std::size_t(c)] >= 0 && owner[std::size_t(c)] != r)
          throw ConfigError("--mpi-partition", fmt::format("chip {} is given to ranks {} and {}", c, owner[std::size_t(c)], r));
        owner[std::size_t(c)] = r;
      }
    for (int c = 0; c < chips; ++c)
      if (owner[std::size_t(c)] < 0)
        throw ConfigError("--mpi-partition", fmt::format("chip {} is given to no rank (every chip of the rack needs one)", c));
    for (int c : rank0)
      if (owner[std::size_t(c)] != 0)
        throw ConfigError("--mpi-partition", fmt::format("chip {} is traced, so it must run on rank 0 (its observers write "
                                                         "the trace there)", c));
    return owner;
  }
  // Default: the chips pinned to rank 0, then contiguous ranges of (nearly) equal size over the
  // ranks (over ranks 1.. when chips are pinned to rank 0 and there is more than one rank).
  std::vector<int> rest;
  std::vector<char> pinned(std::size_t(chips), 0);
  for (int c : rank0) pinned[std::size_t(c)] = 1;
  for (int c = 0; c < chips; ++c) {
    if (pinned[std::size_t(c)]) owner[std::size_t(c)] = 0;
    else rest.push_back(c);
  }
  const int first = !rank0.empty() && ranks > 1 ? 1 : 0;
  const int n = ranks - first;
  const std::size_t m = rest.size();
  for (std::size_t k = 0; k < m; ++k) owner[std::size_t(rest[k])] = first + int(k * std::size_t(n) / std::max<std::size_t>(m, 1));
  return owner;
}

namespace wire {

// Contract: every field of model::ChipStats is written here; a new field changes the size and
// stops the build until it is added.
static_assert(sizeof(model::ChipStats) == 320, "model::ChipStats changed: update put_chip_stats / get_chip_stats");

void put_chip_stats(Writer& w, const model::ChipStats& s) {
  w.put(s.cycles);
  w.put(s.clock_hz);
  for (const auto& u : s.units) {
    w.put(u.instructions);
    w.put(u.busy_cycles);
    w.put<std::int32_t>(u.queues);
  }
  w.put(s.sram_bytes_read);
  w.put(s.sram_bytes_written);
  w.put(s.sram_ecc_corrected);
  w.put(s.weight_bytes_installed);
  w.put<std::uint64_t>(s.mxm_macs.size());
  for (const auto& [k, v] : s.mxm_macs) {
    w.str(k);
    w.put(v);
  }
  w.put(s.mxm_passes);
  w.put<std::int32_t>(s.mxm_planes);
  w.put(s.vxm_element_ops);
  w.put(s.link_bytes_sent);
  w.put(s.link_bytes_received);
  w.put(s.dma_bytes_in);
  w.put(s.dma_bytes_out);
}

model::ChipStats get_chip_stats(Reader& r) {
  model::ChipStats s;
  s.cycles = r.get<std::int64_t>();
  s.clock_hz = r.get<double>();
  for (auto& u : s.units) {
    u.instructions = r.get<std::int64_t>();
    u.busy_cycles = r.get<std::int64_t>();
    u.queues = r.get<std::int32_t>();
  }
  s.sram_bytes_read = r.get<std::int64_t>();
  s.sram_bytes_written = r.get<std::int64_t>();
  s.sram_ecc_corrected = r.get<std::int64_t>();
  s.weight_bytes_installed = r.get<std::int64_t>();
  for (auto n = r.get<std::uint64_t>(); n > 0; --n) {
    auto k = r.str();
    s.mxm_macs[k] = r.get<std::int64_t>();
  }
  s.mxm_passes = r.get<std::int64_t>();
  s.mxm_planes = r.get<std::int32_t>();
  s.vxm_element_ops = r.get<std::int64_t>();
  s.link_bytes_sent = r.get<std::int64_t>();
  s.link_bytes_received = r.get<std::int64_t>();
  s.dma_bytes_in = r.get<std::int64_t>();
  s.dma_bytes_out = r.get<std::int64_t>();
  return s;
}

void put_mam(Writer& w, const MinAvgMax& m) {
  w.put(m.n);
  w.put(m.min);
  w.put(m.max);
  w.put(m.sum);
}
MinAvgMax get_mam(Reader& r) {
  MinAvgMax m;
  m.n = r.get<std::int64_t>();
  m.min = r.get<std::int64_t>();
  m.max = r.get<std::int64_t>();
  m.sum = r.get<double>();
  return m;
}

void put_diag(Writer& w, const Diagnostic& d) {
  w.put<std::int32_t>(d.chip);
  w.str(d.unit);
  w.str(d.queue);
  w.put(d.cycle);
  w.str(d.message);
  w.put<std::uint8_t>(d.loc.has_value());
  if (d.loc) {
    w.str(d.loc->file);
    w.put<std::int32_t>(d.loc->line);
    w.put<std::int32_t>(d.loc->col);
  }
  w.put<std::uint8_t>(d.warning);
}

Diagnostic get_diag(Reader& r) {
  Diagnostic d;
  d.chip = r.get<std::int32_t>();
  d.unit = r.str();
  d.queue = r.str();
  d.cycle = r.get<std::int64_t>();
  d.message = r.str();
  if (r.get<std::uint8_t>()) {
    SourceLoc l;
    l.file = r.str();
    l.line = r.get<std::int32_t>();
    l.col = r.get<std::int32_t>();
    d.loc = l;
  }
  d.warning = r.get<std::uint8_t>() != 0;
  return d;
}

}  // namespace wire
}  // namespace lpu::rack
