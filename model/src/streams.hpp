#pragma once
// Stream registers without shifting: a value written at (position q, cycle T) lies on the
// diagonal d = T - q*hop (eastward; westward d = T + q*hop) and is seen at every position
// downstream on that diagonal until a nearer upstream write replaces it. A read at (r, c)
// looks up its diagonal and takes the nearest upstream write. Diagonals live in a ring sized
// to the chip's length, so memory follows the values in flight, not the program length.
#include <cstdint>
#include <memory>
#include <vector>

namespace lpu::model {

class StreamFile {
 public:
  StreamFile(int streams_per_dir, int positions, int hop, int max_latency, int vector_bytes);

  // Returns the buffer for the value written on stream `sid` (id | 64 for westward) at
  // position q in cycle T; nullptr if another write already took that register in that cycle.
  // `now` is the cycle being processed (every read before it is done): values that a nearer
  // upstream write has replaced by `now` can no longer be read and are dropped.
  std::uint8_t* write(int sid, int q, std::int64_t T, std::int64_t now);
  // The value seen at position r in cycle c, or nullptr if none (or no longer held).
  const std::uint8_t* read(int sid, int r, std::int64_t c) const;

 private:
  struct Entry {
    std::int32_t pos;
    std::uint32_t val;
  };
  struct Slot {
    std::int64_t diag = INT64_MIN;
    std::vector<Entry> e;
  };
  std::int64_t diag_of(int sid, int pos, std::int64_t cycle) const {
    return (sid & 64) ? cycle + std::int64_t(pos) * hop_ : cycle - std::int64_t(pos) * hop_;
  }
  Slot& slot(int sid, std::int64_t d) { return slots_[std::size_t(((sid & 63) + (sid & 64 ? streams_ : 0)) * W_ + (d & (W_ - 1)))]; }
  const Slot& slot(int sid, std::int64_t d) const {
    return slots_[std::size_t(((sid & 63) + (sid & 64 ? streams_ : 0)) * W_ + (d & (W_ - 1)))];
  }

  int streams_;
  int hop_;
  int vb_;
  std::int64_t W_;
  std::vector<Slot> slots_;
  // Values live in fixed blocks so that pointers handed out stay valid while more are written.
  static constexpr std::uint32_t kBlock = 1024;
  std::uint8_t* value(std::uint32_t v) const {
    return blocks_[v / kBlock].get() + std::size_t(v % kBlock) * std::size_t(vb_);
  }
  std::vector<std::unique_ptr<std::uint8_t[]>> blocks_;
  std::uint32_t next_ = 0;
  std::vector<std::uint32_t> free_;
};

}  // namespace lpu::model
