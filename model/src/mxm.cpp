#include "mxm.hpp"

#include <algorithm>
#include <cstring>

#include "acc_ready.hpp"
#include "lpu/isa/numerics.hpp"

namespace lpu::model {

MxmPlane::MxmPlane(int vector_bytes, int accumulators)
    : vb_(vector_bytes),
      nmax_(vector_bytes),
      staging_(std::size_t(vector_bytes) * std::size_t(vector_bytes), 0),
      accs_(std::size_t(accumulators)),
      acc_i_(std::size_t(accumulators) * std::size_t(vector_bytes), 0),
      acc_f_(std::size_t(accumulators) * std::size_t(vector_bytes), 0.0f) {}

void MxmPlane::load_row(isa::Dtype, int row, const std::uint8_t* v, std::int64_t cycle) {
  if (cycle != lw_cycle_) {
    lw_cycle_ = cycle;
    lw_undo_rows_.clear();
    lw_undo_data_.clear();
  }
  std::uint8_t* dst = staging_.data() + std::size_t(row) * std::size_t(vb_);
  lw_undo_rows_.push_back(row);
  lw_undo_data_.insert(lw_undo_data_.end(), dst, dst + vb_);
  std::memcpy(dst, v, std::size_t(vb_));
}

MxmPlane::Weights MxmPlane::build(isa::Dtype t, const std::uint8_t* staging, bool transpose) const {
  Weights w;
  w.t = t;
  w.n = vb_ / isa::dtype_bytes(t);
  const auto n = std::size_t(w.n);
  // Staging row i, element j is W[i][j], or W[j][i] transposed; stored transposed (w[j n + i] =
  // W[i][j]) for the products.
  auto at = [&](std::size_t i, std::size_t j) { return transpose ? j * n + i : i * n + j; };
  if (t == isa::Dtype::I8) {
    w.wi.resize(n * n);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < n; ++j) w.wi[at(j, i)] = static_cast<std::int8_t>(staging[i * std::size_t(vb_) + j]);
  } else {
    w.wf.resize(n * n);
    for (std::size_t i = 0; i < n; ++i) {
      num::Bytes row(staging + i * std::size_t(vb_), std::size_t(vb_));
      for (std::size_t j = 0; j < n; ++j) w.wf[at(j, i)] = num::load_f32(t, row, j);
    }
  }
  return w;
}

void MxmPlane::install(isa::Dtype t, std::int64_t cycle, std::int64_t effective_cycle, bool transpose) {
  if (cycle == lw_cycle_ && !lw_undo_rows_.empty()) {
    // LWs of this cycle were applied before this IW: take the rows as they were before them
    // (latest first, so a row loaded twice in the cycle gets its oldest contents).
    std::vector<std::uint8_t> before = staging_;
    for (std::size_t k = lw_undo_rows_.size(); k-- > 0;)
      std::memcpy(before.data() + std::size_t(lw_undo_rows_[k]) * std::size_t(vb_), lw_undo_data_.data() + k * std::size_t(vb_),
                  std::size_t(vb_));
    pending_w_.emplace_back(effective_cycle, build(t, before.data(), transpose));
  } else {
    pending_w_.emplace_back(effective_cycle, build(t, staging_.data(), transpose));
  }
}

void MxmPlane::promote(std::int64_t cycle) {
  // Installs take effect in issue order (effective cycles are issue + mxm_iw, so ascending).
  while (!pending_w_.empty() && pending_w_.front().first <= cycle) {
    flush();  // products issued before the switch use the old weights
    active_ = std::move(pending_w_.front().second);
    has_active_ = true;
    pending_w_.pop_front();
  }
}

const char* MxmPlane::multiply(isa::Dtype t, int acc, bool accumulate, const std::uint8_t* x, std::int64_t cycle,
                               std::int64_t ready_cycle) {
  promote(cycle);
  if (!has_active_) return "no weights installed in this plane yet";
  if (active_.t != t) return "type mismatch: MM type differs from the installed weights";
  auto& a = accs_[std::size_t(acc)];
  const bool flt = t != isa::Dtype::I8;
  if (accumulate && a.n != 0 && (a.is_float != flt || a.n != active_.n))
    return "MMA into an accumulator holding another type";
  a.is_float = flt;
  a.n = active_.n;
  a.ready = ready_cycle;
  std::size_t off = xs_.size();
  xs_.insert(xs_.end(), x, x + vb_);
  batch_.push_back(Pending{acc, accumulate, off, cycle, ready_cycle});
  return nullptr;
}

void MxmPlane::flush() {
  if (batch_.empty()) return;
  const int n = active_.n;
  const auto nn = std::size_t(n);
  if (active_.t == isa::Dtype::I8) {
    for (const auto& p : batch_) {
      std::int32_t* y = acc_i_.data() + std::size_t(p.acc) * std::size_t(nmax_);
      if (!p.accumulate) std::fill(y, y + n, 0);
      const auto* x = reinterpret_cast<const std::int8_t*>(xs_.data() + p.x);
      // y[i] += W[i][j] x[j], j outer so that the inner loop runs over contiguous i.
      for (std::size_t j = 0; j < nn; ++j) {
        const std::int32_t xj = x[j];
        if (xj == 0) continue;
        const std::int8_t* wj = active_.wi.data() + j * nn;
        for (std::size_t i = 0; i < nn; ++i) y[i] += std::int32_t(wj[i]) * xj;
      }
      if (on_write_) report(p);
    }
  } else {
    // Blocks of vectors share each weight column: W streams through the cache once per block.
    constexpr std::size_t kBlock = 8;
    std::vector<float> xf(kBlock * nn);
    for (std::size_t b0 = 0; b0 < batch_.size(); b0 += kBlock) {
      const std::size_t nb = std::min(kBlock, batch_.size() - b0);
      // Column order per output: y[i] = (((y[i] + W[i][0] x[0]) + W[i][1] x[1]) + ...), each
      // product and sum rounded to f32 (no fused multiply-add: -ffp-contract=off). Two
      // pending products of one block that target the same accumulator stay in batch order
      // because b runs inside j only for distinct accumulators (checked here); then an MM
      // (not MMA) zeroes its accumulator just before its own products, after the earlier ones.
      bool distinct = true;
      for (std::size_t a = 0; a < nb && distinct; ++a)
        for (std::size_t b = a + 1; b < nb; ++b) distinct &= batch_[b0 + a].acc != batch_[b0 + b].acc;
      float* ys[kBlock];
      for (std::size_t b = 0; b < nb; ++b) {
        const auto& p = batch_[b0 + b];
        ys[b] = acc_f_.data() + std::size_t(p.acc) * std::size_t(nmax_);
        if (distinct && !p.accumulate) std::fill(ys[b], ys[b] + n, 0.0f);
        num::Bytes xb(xs_.data() + p.x, std::size_t(vb_));
        for (std::size_t j = 0; j < nn; ++j) xf[b * nn + j] = num::load_f32(active_.t, xb, j);
      }
      if (distinct) {
        for (std::size_t j = 0; j < nn; ++j) {
          const float* wj = active_.wf.data() + j * nn;
          for (std::size_t b = 0; b < nb; ++b) {
            const float xj = xf[b * nn + j];
            float* y = ys[b];
            for (std::size_t i = 0; i < nn; ++i) {
              const float prod = wj[i] * xj;
              y[i] = y[i] + prod;
            }
          }
        }
        if (on_write_)
          for (std::size_t b = 0; b < nb; ++b) report(batch_[b0 + b]);
      } else {
        for (std::size_t b = 0; b < nb; ++b) {
          if (!batch_[b0 + b].accumulate) std::fill(ys[b], ys[b] + n, 0.0f);
          for (std::size_t j = 0; j < nn; ++j) {
            const float* wj = active_.wf.data() + j * nn;
            const float xj = xf[b * nn + j];
            float* y = ys[b];
            for (std::size_t i = 0; i < nn; ++i) {
              const float prod = wj[i] * xj;
              y[i] = y[i] + prod;
            }
          }
          if (on_write_) report(batch_[b0 + b]);
        }
      }
    }
  }
  batch_.clear();
  xs_.clear();
}

void MxmPlane::report(const Pending& p) {
  const auto off = std::size_t(p.acc) * std::size_t(nmax_);
  const auto n = std::size_t(active_.n);
  report_buf_.resize(n);
  if (active_.t == isa::Dtype::I8) std::memcpy(report_buf_.data(), acc_i_.data() + off, n * 4);
  else std::memcpy(report_buf_.data(), acc_f_.data() + off, n * 4);
  on_write_(p.acc, p.cycle, p.ready, active_.t != isa::Dtype::I8, report_buf_.data(), int(n));
}

const char* MxmPlane::read(int acc, isa::Dtype t, int part, std::uint8_t* out, std::int64_t cycle) {
  auto& a = accs_[std::size_t(acc)];
  if (a.n == 0) return kAccUnwritten;
  if (cycle < a.ready) return kAccNotReady;
  flush();
  num::MutBytes ob(out, std::size_t(vb_));
  if (a.is_float) {
    num::mxm_readout_f32(acc_f_.data() + std::size_t(acc) * std::size_t(nmax_), std::size_t(a.n), t, part, ob);
  } else {
    num::mxm_readout_i32(acc_i_.data() + std::size_t(acc) * std::size_t(nmax_), std::size_t(a.n), t, part, ob);
  }
  return nullptr;
}

}  // namespace lpu::model
