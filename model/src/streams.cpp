#include "streams.hpp"

#include <algorithm>
#include <climits>

namespace lpu::model {

StreamFile::StreamFile(int streams_per_dir, int positions, int hop, int max_latency, int vector_bytes)
    : streams_(streams_per_dir), hop_(hop), vb_(vector_bytes) {
  // Live diagonals at any time span (positions - 1) * hop (reads still to come) plus the
  // furthest result ahead (latency, TRANS's 16 outputs).
  std::int64_t span = std::int64_t(positions) * hop + max_latency + 64;
  W_ = 1;
  while (W_ < span) W_ <<= 1;
  slots_.resize(std::size_t(2 * streams_ * W_));
}

std::uint8_t* StreamFile::write(int sid, int q, std::int64_t T, std::int64_t now) {
  const std::int64_t d = diag_of(sid, q, T);
  Slot& s = slot(sid, d);
  if (s.diag != d) {
    for (const auto& e : s.e) free_.push_back(e.val);
    s.e.clear();
    s.diag = d;
  } else if (s.e.size() >= 4) {
    // An entry is dead once a write further downstream on its diagonal has landed (its cycle
    // is <= now): every position it was still visible at lies in the past.
    const bool east = !(sid & 64);
    std::int32_t frontier = east ? INT32_MIN : INT32_MAX;
    for (const auto& e : s.e) {
      const std::int64_t te = east ? d + std::int64_t(e.pos) * hop_ : d - std::int64_t(e.pos) * hop_;
      if (te <= now) frontier = east ? std::max(frontier, e.pos) : std::min(frontier, e.pos);
    }
    std::size_t w = 0;
    for (std::size_t i = 0; i < s.e.size(); ++i) {
      const bool dead = east ? s.e[i].pos < frontier : s.e[i].pos > frontier;
      if (dead) free_.push_back(s.e[i].val);
      else s.e[w++] = s.e[i];
    }
    s.e.resize(w);
  }
  for (const auto& e : s.e)
    if (e.pos == q) return nullptr;
  std::uint32_t v;
  if (!free_.empty()) {
    v = free_.back();
    free_.pop_back();
  } else {
    v = next_++;
    if (v / kBlock >= blocks_.size())
      blocks_.push_back(std::make_unique<std::uint8_t[]>(std::size_t(kBlock) * std::size_t(vb_)));
  }
  s.e.push_back(Entry{q, v});
  return value(v);
}

const std::uint8_t* StreamFile::read(int sid, int r, std::int64_t c) const {
  const std::int64_t d = diag_of(sid, r, c);
  const Slot& s = slot(sid, d);
  if (s.diag != d) return nullptr;
  const bool east = !(sid & 64);
  const Entry* best = nullptr;
  for (const auto& e : s.e) {
    if (east ? e.pos > r : e.pos < r) continue;
    if (!best || (east ? e.pos > best->pos : e.pos < best->pos)) best = &e;
  }
  return best ? value(best->val) : nullptr;
}

}  // namespace lpu::model
