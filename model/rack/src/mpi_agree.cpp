// mpi::agree_on_errors: the outcome of a replicated step, agreed by every rank (mpi.hpp).
#include <fmt/format.h>

#include <exception>
#include <stdexcept>
#include <string>

#include "lpu/common/errors.hpp"
#include "lpu/rack/mpi.hpp"

namespace lpu::rack::mpi {

void agree_on_errors(const std::function<void()>& step) {
  if (!active()) return step();
  // Outcome as bytes: 0 ok; 1 an lpu::Error, 3 another exception (the exit codes), then its text.
  std::exception_ptr mine;
  Bytes out{0};
  try {
    step();
  } catch (const std::exception& e) {
    mine = std::current_exception();
    const std::string what = e.what();
    out = {std::uint8_t(dynamic_cast<const lpu::Error*>(&e) ? 1 : 3)};
    out.insert(out.end(), what.begin(), what.end());
  } catch (...) {
    mine = std::current_exception();
    out = {3};
  }
  const auto all = allgather(out);
  int first = -1;
  bool same = true;
  for (std::size_t r = 0; r < all.size(); ++r) {
    if (all[r].empty() || all[r][0] == 0) {
      same = false;
      continue;
    }
    if (first < 0) first = int(r);
    else same = same && all[r] == all[std::size_t(first)];
  }
  if (first < 0) return;
  mark_agreed(true);
  if (mine && same) std::rethrow_exception(mine);
  const auto& f = all[std::size_t(first)];
  const std::string msg = fmt::format("{} (MPI rank {})", std::string(f.begin() + 1, f.end()), first);
  if (f[0] == 1) throw Error(msg);
  throw std::runtime_error(msg);
}

}  // namespace lpu::rack::mpi
