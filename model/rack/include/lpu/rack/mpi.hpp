#pragma once
// The rack engine across processes (docs/distributed.md): the small interface the engine uses to
// talk to the other MPI ranks. Compiled against Open MPI when the build found it (CMake option
// LPU_MPI, src/mpi_transport.cpp); otherwise a stub (src/mpi_stub.cpp) whose init() throws an
// lpu::Error saying that this build has no MPI.
//
// Contract: SPMD. Every rank runs the same host program (lpu run / lpu decode, the runtime, the
// decode loop) on the same inputs; only the chips are divided. Every rack run of a process that
// called init() is distributed over all ranks, and every call below is collective: all ranks make
// it, in the same order (except send/recv, which are point to point and paired by the caller).
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace lpu::rack::mpi {

using Bytes = std::vector<std::uint8_t>;

bool available();                  // this build has MPI
void init(int* argc, char*** argv);  // MPI_Init; throws lpu::Error when !available()
void finalize();                   // MPI_Finalize (no-op when not initialised)
bool active();                     // init() was called and finalize() not yet
int rank();                        // 0 when not active
int size();                        // 1 when not active
[[noreturn]] void abort(int code);  // MPI_Abort on every rank (an error only one rank saw)

// Collectives over all ranks. Results are indexed by rank.
std::vector<Bytes> allgather(const Bytes& mine);
std::vector<Bytes> alltoall(const std::vector<Bytes>& to_each);  // to_each.size() == size()
Bytes bcast(int root, const Bytes& bytes);  // bytes ignored on other ranks
std::vector<Bytes> gather(const Bytes& mine);  // rank 0 gets every rank's; the others nothing

// What this rank sent through the calls above since init (message counts are point-to-point
// equivalents: a collective with R ranks counts R - 1 messages to the others, each with the
// bytes for that rank; empty payloads of an all-to-all are not counted as data messages).
struct Traffic {
  std::int64_t collectives = 0;
  std::int64_t messages = 0;  // non-empty payloads to other ranks
  std::int64_t bytes = 0;     // payload bytes to other ranks
};
Traffic traffic();

// An error every rank agreed on (all throw it, none aborts): main() reports it once, from
// rank 0, and every rank finalises normally. Set by the engine before it throws such an error.
void mark_agreed(bool agreed);
bool agreed();

// Runs `step` (work every rank does with the same inputs and no collective inside: reading the
// rack, the program, the weights, planning) and agrees on its outcome (one all-gather): when it
// failed on any rank, every rank throws, marked agreed. The same error on every rank is rethrown
// as it is (what one process would print); else every rank throws the lowest failing rank's
// message, naming that rank (a file missing on one machine). Not active: just runs `step`.
void agree_on_errors(const std::function<void()>& step);

// agree_on_errors for a step with a result.
template <class F>
auto replicated(F&& step) {
  std::optional<decltype(step())> r;
  agree_on_errors([&] { r.emplace(step()); });
  return std::move(*r);
}

}  // namespace lpu::rack::mpi
