#pragma once
// Accumulator readiness (docs/timing.md rule 17) for timing-only mode, which computes no data
// and so has no MxmPlane to ask. An ACCRD in cycle t reads what the last MM/MMA into its
// accumulator processed before it left (events run in cycle order, then queue order); that is
// readable from the MM's cycle + mxm_mm on, and an accumulator no MM/MMA has written cannot be
// read. The functional path (MxmPlane::read) rejects exactly the same instances with the same
// messages, below.
//
// A REPEAT group is one event in timing-only mode, so the group's later instances are known
// before the events between them have run: writes are kept by (cycle, queue) and each read is
// checked only once every event ordered before it has run (check_before, from Chip::run).
#include <algorithm>
#include <cstdint>
#include <functional>
#include <iterator>
#include <optional>
#include <queue>
#include <tuple>
#include <vector>

namespace lpu::model {

inline constexpr const char* kAccUnwritten = "accumulator read before any MM wrote it";
inline constexpr const char* kAccNotReady = "accumulator read before its MM completes (mxm_mm latency)";

class AccReadiness {
 public:
  // plane_of_position[p]: the plane index of the MXM at slice position p, or -1.
  AccReadiness(std::vector<int> plane_of_position, int accumulators)
      : plane_of_(std::move(plane_of_position)), accs_per_plane_(accumulators) {
    int planes = 0;
    for (int x : plane_of_) planes = std::max(planes, x + 1);
    accs_.resize(std::size_t(planes) * std::size_t(accumulators));
  }

  // An MM/MMA instance into accumulator `acc` (in range) of the plane at position `pos`, issued
  // in `cycle` by queue `queue`, readable from `ready`. `now`: the cycle of the event being run.
  void write(int pos, int acc, std::int64_t cycle, int queue, std::int64_t ready, std::int64_t now) {
    auto& a = at(pos, acc);
    W w{cycle, queue, ready};
    auto it = std::upper_bound(a.w.begin(), a.w.end(), w, before);
    a.w.insert(it, w);
    // Every read still to be checked is at `now` or later: of the writes before `now`, only the
    // last can matter.
    std::size_t old = 0;
    while (old < a.w.size() && a.w[old].cycle < now) ++old;
    if (old >= 2) a.w.erase(a.w.begin(), a.w.begin() + std::ptrdiff_t(old - 1));
  }

  // An ACCRD instance of accumulator `acc` (in range) in `cycle` by queue `queue`.
  void read(int pos, int acc, std::int64_t cycle, int queue) { reads_.push(R{cycle, queue, pos, acc}); }

  struct Failure {
    int queue;
    std::int64_t cycle;
    const char* message;
  };
  // Checks the reads ordered before (cycle, queue); the first that fails, if any.
  std::optional<Failure> check_before(std::int64_t cycle, int queue) {
    while (!reads_.empty() && std::tie(reads_.top().cycle, reads_.top().queue) < std::tie(cycle, queue)) {
      const R r = reads_.top();
      reads_.pop();
      auto& a = at(r.pos, r.acc);
      // The last write ordered before the read.
      auto it = std::lower_bound(a.w.begin(), a.w.end(), W{r.cycle, r.queue, 0}, before);
      std::optional<std::int64_t> ready;
      if (it != a.w.begin()) {
        ready = std::prev(it)->ready;
        a.w.erase(a.w.begin(), std::prev(it));  // reads come in order: the earlier ones are done
      } else if (a.carried) {
        ready = a.carried_ready;
      }
      if (!ready) return Failure{r.queue, r.cycle, kAccUnwritten};
      if (r.cycle < *ready) return Failure{r.queue, r.cycle, kAccNotReady};
    }
    return std::nullopt;
  }

  // A new program or run: the accumulators keep what they hold (as MxmPlane does), pending
  // reads are dropped.
  void restart() {
    for (auto& a : accs_) {
      if (!a.w.empty()) {
        a.carried = true;
        a.carried_ready = a.w.back().ready;
      }
      a.w.clear();
    }
    reads_ = {};
  }

 private:
  struct W {
    std::int64_t cycle;
    int queue;
    std::int64_t ready;
  };
  static bool before(const W& a, const W& b) { return std::tie(a.cycle, a.queue) < std::tie(b.cycle, b.queue); }
  struct Acc {
    std::vector<W> w;  // by (cycle, queue)
    bool carried = false;  // written in an earlier run
    std::int64_t carried_ready = 0;
  };
  struct R {
    std::int64_t cycle;
    int queue, pos, acc;
    bool operator>(const R& o) const { return std::tie(cycle, queue) > std::tie(o.cycle, o.queue); }
  };
  Acc& at(int pos, int acc) {
    return accs_[std::size_t(plane_of_[std::size_t(pos)]) * std::size_t(accs_per_plane_) + std::size_t(acc)];
  }

  std::vector<int> plane_of_;
  int accs_per_plane_;
  std::vector<Acc> accs_;
  std::priority_queue<R, std::vector<R>, std::greater<R>> reads_;
};

}  // namespace lpu::model
