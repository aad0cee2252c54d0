#pragma once
// One MXM plane: staging and active weights (double buffered), accumulators, and a batch of
// pending products computed together as one matrix product when their result is needed (an
// accumulator read, a weight change, the end of the run). Numerics: int8 weights accumulate
// exactly in int32; float weights multiply in f32 and add in f32 in column order, starting
// from the accumulator (0 for MM) - the same sums in the same order as one by one.
#include <cstdint>
#include <deque>
#include <functional>
#include <vector>

#include "lpu/isa/isa.hpp"

namespace lpu::model {

class MxmPlane {
 public:
  MxmPlane(int vector_bytes, int accumulators);

  // LW in `cycle`: staging row `row` = v.
  void load_row(isa::Dtype t, int row, const std::uint8_t* v, std::int64_t cycle);
  // IW in `cycle`: the staging rows as they were before this cycle (an LW in the same cycle
  // is not included, whatever the order of the calls) become the active weights for MMs from
  // `effective_cycle` on. Installs wait in a queue, each taking effect at its own cycle.
  // `transpose`: the weights are the staging buffer transposed (W[i][j] = staging row j, element i).
  void install(isa::Dtype t, std::int64_t cycle, std::int64_t effective_cycle, bool transpose = false);
  // MM/MMA at `cycle` with the vector x. Returns an error message or empty.
  const char* multiply(isa::Dtype t, int acc, bool accumulate, const std::uint8_t* x, std::int64_t cycle,
                       std::int64_t ready_cycle);
  // ACCRD: writes part `part` of accumulator `acc` as type t into out (vector_bytes).
  const char* read(int acc, isa::Dtype t, int part, std::uint8_t* out, std::int64_t cycle);
  void flush();

  // Accumulator writes, when set: called for every MM/MMA in issue order once its product is
  // computed (products are batched: at the latest at the next ACCRD, weight change or flush),
  // with the accumulator's new value (n int32 or f32 elements, as 32-bit patterns).
  using AccWriteFn = std::function<void(int acc, std::int64_t cycle, std::int64_t ready, bool is_float,
                                        const std::uint32_t* value, int n)>;
  void set_acc_write(AccWriteFn fn) { on_write_ = std::move(fn); }

  // Reference view for tests and lockstep.
  bool acc_is_float(int acc) const { return accs_[std::size_t(acc)].is_float; }
  const std::int32_t* acc_i32(int acc) { flush(); return acc_i_.data() + std::size_t(acc) * std::size_t(nmax_); }
  const float* acc_f32(int acc) { flush(); return acc_f_.data() + std::size_t(acc) * std::size_t(nmax_); }

 private:
  struct Weights {
    isa::Dtype t = isa::Dtype::I8;
    int n = 0;
    std::vector<std::int8_t> wi;  // transposed: wi[j * n + i] = W[i][j]
    std::vector<float> wf;
  };
  struct Acc {
    bool is_float = false;
    int n = 0;
    std::int64_t ready = -1;  // cycle from which ACCRD may read it
  };
  struct Pending {
    int acc;
    bool accumulate;
    std::size_t x;  // offset into xs_
    std::int64_t cycle, ready;
  };
  void promote(std::int64_t cycle);
  Weights build(isa::Dtype t, const std::uint8_t* staging, bool transpose) const;
  void report(const Pending& p);

  int vb_;
  int nmax_;
  std::vector<std::uint8_t> staging_;  // nmax rows of vb bytes
  // Rows loaded in cycle lw_cycle_ with their previous contents (an IW in that cycle uses those).
  std::int64_t lw_cycle_ = -1;
  std::vector<int> lw_undo_rows_;
  std::vector<std::uint8_t> lw_undo_data_;  // vb bytes per entry of lw_undo_rows_
  Weights active_;
  bool has_active_ = false;
  std::deque<std::pair<std::int64_t, Weights>> pending_w_;  // (effective cycle, weights), in order
  AccWriteFn on_write_;
  std::vector<std::uint32_t> report_buf_;
  std::vector<Acc> accs_;
  std::vector<std::int32_t> acc_i_;
  std::vector<float> acc_f_;
  std::vector<Pending> batch_;
  std::vector<std::uint8_t> xs_;
};

}  // namespace lpu::model
