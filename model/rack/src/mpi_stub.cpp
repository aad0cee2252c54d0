// The distributed rack engine in a build without MPI (docs/distributed.md): one process, and a
// clear error for --mpi. mpi_transport.cpp is the real one.
#include <cstdlib>

#include "lpu/common/errors.hpp"
#include "lpu/rack/mpi.hpp"

namespace lpu::rack::mpi {

namespace {
bool g_agreed = false;
[[noreturn]] void none() {
  throw Error(
      "--mpi: this build of lpu has no MPI (install libopenmpi-dev and openmpi-bin, e.g. with scripts/setup.sh, then "
      "reconfigure with cmake -DLPU_MPI=ON)");
}
}  // namespace

bool available() { return false; }
void init(int*, char***) { none(); }
void finalize() {}
bool active() { return false; }
int rank() { return 0; }
int size() { return 1; }
void abort(int code) { std::exit(code); }
std::vector<Bytes> allgather(const Bytes&) { none(); }
std::vector<Bytes> alltoall(const std::vector<Bytes>&) { none(); }
Bytes bcast(int, const Bytes&) { none(); }
std::vector<Bytes> gather(const Bytes&) { none(); }
Traffic traffic() { return {}; }
void mark_agreed(bool a) { g_agreed = a; }
bool agreed() { return g_agreed; }

}  // namespace lpu::rack::mpi
