// The MPI side of the distributed rack engine (docs/distributed.md): byte-level collectives on
// MPI_COMM_WORLD. Compiled only when CMake found MPI (LPU_MPI); mpi_stub.cpp otherwise.
#include <mpi.h>

#include <fmt/format.h>

#include <climits>

#include "lpu/common/errors.hpp"
#include "lpu/rack/mpi.hpp"

namespace lpu::rack::mpi {

namespace {
bool g_active = false;
bool g_agreed = false;
int g_rank = 0, g_size = 1;
Traffic g_traffic;

void check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  throw Error(fmt::format("MPI rank {}: {} failed: {}", g_rank, what, std::string(msg, std::size_t(len))));
}

int as_count(std::size_t n, const char* what) {
  if (n > std::size_t(INT_MAX)) throw Error(fmt::format("MPI rank {}: {}: {} bytes exceed one MPI message", g_rank, what, n));
  return int(n);
}

void require_active(const char* what) {
  if (!g_active) throw Error(fmt::format("{}: MPI is not initialised (run with --mpi under mpirun)", what));
}

// Counts one collective: `per_rank[r]` bytes go to rank r.
void count(const std::vector<std::size_t>& per_rank) {
  ++g_traffic.collectives;
  for (int r = 0; r < g_size; ++r) {
    if (r == g_rank || per_rank[std::size_t(r)] == 0) continue;
    ++g_traffic.messages;
    g_traffic.bytes += std::int64_t(per_rank[std::size_t(r)]);
  }
}

std::vector<int> displs_of(const std::vector<int>& counts, std::size_t* total) {
  std::vector<int> d(counts.size());
  std::size_t t = 0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    d[i] = as_count(t, "displacement");
    t += std::size_t(counts[i]);
  }
  *total = t;
  return d;
}

std::vector<Bytes> split(const Bytes& all, const std::vector<int>& counts, const std::vector<int>& displs) {
  std::vector<Bytes> out(counts.size());
  for (std::size_t r = 0; r < counts.size(); ++r)
    out[r].assign(all.begin() + displs[r], all.begin() + displs[r] + counts[r]);
  return out;
}
}  // namespace

bool available() { return true; }

void init(int* argc, char*** argv) {
  if (g_active) return;
  int provided = 0;
  // One thread at a time makes MPI calls, not always the one that called init: the engine's pool
  // threads never do, but a functional decode runs the rack on the runtime device's worker thread.
  check(MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided), "MPI_Init_thread");
  if (provided < MPI_THREAD_SERIALIZED) {
    MPI_Finalize();
    throw Error(fmt::format("this MPI library gives thread level {}; lpu --mpi needs MPI_THREAD_SERIALIZED ({})", provided,
                            int(MPI_THREAD_SERIALIZED)));
  }
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_size);
  g_active = true;
}

void finalize() {
  if (!g_active) return;
  g_active = false;
  MPI_Finalize();
}

bool active() { return g_active; }
int rank() { return g_rank; }
int size() { return g_size; }

void abort(int code) {
  if (g_active) MPI_Abort(MPI_COMM_WORLD, code);
  std::exit(code);
}

std::vector<Bytes> allgather(const Bytes& mine) {
  require_active("allgather");
  int n = as_count(mine.size(), "allgather");
  std::vector<int> counts(static_cast<std::size_t>(g_size));
  check(MPI_Allgather(&n, 1, MPI_INT, counts.data(), 1, MPI_INT, MPI_COMM_WORLD), "MPI_Allgather");
  std::size_t total = 0;
  auto displs = displs_of(counts, &total);
  Bytes all(total);
  check(MPI_Allgatherv(mine.data(), n, MPI_BYTE, all.data(), counts.data(), displs.data(), MPI_BYTE, MPI_COMM_WORLD),
        "MPI_Allgatherv");
  count(std::vector<std::size_t>(std::size_t(g_size), mine.size()));
  return split(all, counts, displs);
}

std::vector<Bytes> alltoall(const std::vector<Bytes>& to_each) {
  require_active("alltoall");
  if (int(to_each.size()) != g_size) throw Error("alltoall: one buffer per rank");
  std::vector<int> scounts(static_cast<std::size_t>(g_size)), rcounts(static_cast<std::size_t>(g_size));
  std::vector<std::size_t> sizes(static_cast<std::size_t>(g_size));
  for (int r = 0; r < g_size; ++r) {
    scounts[std::size_t(r)] = as_count(to_each[std::size_t(r)].size(), "alltoall");
    sizes[std::size_t(r)] = to_each[std::size_t(r)].size();
  }
  check(MPI_Alltoall(scounts.data(), 1, MPI_INT, rcounts.data(), 1, MPI_INT, MPI_COMM_WORLD), "MPI_Alltoall");
  std::size_t stotal = 0, rtotal = 0;
  auto sdispls = displs_of(scounts, &stotal);
  auto rdispls = displs_of(rcounts, &rtotal);
  Bytes sbuf;
  sbuf.reserve(stotal);
  for (const auto& b : to_each) sbuf.insert(sbuf.end(), b.begin(), b.end());
  Bytes rbuf(rtotal);
  check(MPI_Alltoallv(sbuf.data(), scounts.data(), sdispls.data(), MPI_BYTE, rbuf.data(), rcounts.data(), rdispls.data(),
                      MPI_BYTE, MPI_COMM_WORLD),
        "MPI_Alltoallv");
  count(sizes);
  return split(rbuf, rcounts, rdispls);
}

Bytes bcast(int root, const Bytes& bytes) {
  require_active("bcast");
  std::uint64_t n = bytes.size();
  check(MPI_Bcast(&n, 1, MPI_UINT64_T, root, MPI_COMM_WORLD), "MPI_Bcast");
  Bytes out = g_rank == root ? bytes : Bytes(std::size_t(n));
  check(MPI_Bcast(out.data(), as_count(std::size_t(n), "bcast"), MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast");
  count(std::vector<std::size_t>(std::size_t(g_size), g_rank == root ? std::size_t(n) : 0));
  return out;
}

std::vector<Bytes> gather(const Bytes& mine) {
  require_active("gather");
  int n = as_count(mine.size(), "gather");
  std::vector<int> counts(static_cast<std::size_t>(g_size));
  check(MPI_Gather(&n, 1, MPI_INT, counts.data(), 1, MPI_INT, 0, MPI_COMM_WORLD), "MPI_Gather");
  std::size_t total = 0;
  auto displs = displs_of(counts, &total);
  Bytes all(g_rank == 0 ? total : 0);
  check(MPI_Gatherv(mine.data(), n, MPI_BYTE, all.data(), counts.data(), displs.data(), MPI_BYTE, 0, MPI_COMM_WORLD),
        "MPI_Gatherv");
  std::vector<std::size_t> sizes(std::size_t(g_size), 0);
  sizes[0] = mine.size();
  count(sizes);
  if (g_rank != 0) return {};
  return split(all, counts, displs);
}

Traffic traffic() { return g_traffic; }
void mark_agreed(bool a) { g_agreed = a; }
bool agreed() { return g_agreed; }

}  // namespace lpu::rack::mpi
