#pragma once
// Bytes on the wire between MPI ranks (internal to lpu_rack): a writer and a reader of plain
// little-endian fields, and lpu errors carried across ranks with their type, so that every rank
// throws what the failing one threw (same message, same exit code in main).
#include <cstdint>
#include <cstring>
#include <exception>
#include <string>
#include <type_traits>
#include <vector>

#include "lpu/common/errors.hpp"

namespace lpu::rack::wire {

struct Writer {
  std::vector<std::uint8_t> b;
  template <class T>
  void put(T v) {
    static_assert(std::is_trivially_copyable_v<T>);
    const auto n = b.size();
    b.resize(n + sizeof(T));
    std::memcpy(b.data() + n, &v, sizeof(T));
  }
  void str(const std::string& s) {
    put<std::uint64_t>(s.size());
    b.insert(b.end(), s.begin(), s.end());
  }
  void bytes(const std::vector<std::uint8_t>& v) {
    put<std::uint64_t>(v.size());
    b.insert(b.end(), v.begin(), v.end());
  }
};

struct Reader {
  const std::vector<std::uint8_t>& b;
  std::size_t at = 0;
  explicit Reader(const std::vector<std::uint8_t>& bytes) : b(bytes) {}
  bool done() const { return at >= b.size(); }
  // Bytes not read yet (every size read from a message is checked against it, never `at + n`,
  // which a corrupt size would wrap).
  std::size_t left() const { return at >= b.size() ? 0 : b.size() - at; }
  // A count of elements of at least `min_bytes` each, checked against the bytes left.
  std::size_t count(std::size_t min_bytes) {
    const auto n = std::size_t(get<std::uint64_t>());
    if (min_bytes > 0 && n > left() / min_bytes) throw Error("MPI: a truncated message between ranks");
    return n;
  }
  template <class T>
  T get() {
    if (sizeof(T) > left()) throw Error("MPI: a truncated message between ranks");
    T v;
    std::memcpy(&v, b.data() + at, sizeof(T));
    at += sizeof(T);
    return v;
  }
  std::string str() {
    const auto n = std::size_t(get<std::uint64_t>());
    if (n > left()) throw Error("MPI: a truncated message between ranks");
    std::string s(reinterpret_cast<const char*>(b.data() + at), n);
    at += n;
    return s;
  }
  std::vector<std::uint8_t> bytes() {
    const auto n = std::size_t(get<std::uint64_t>());
    if (n > left()) throw Error("MPI: a truncated message between ranks");
    std::vector<std::uint8_t> v(b.begin() + std::ptrdiff_t(at), b.begin() + std::ptrdiff_t(at + n));
    at += n;
    return v;
  }
};

// The exception `e` as bytes: its type (AsmError, ConfigError, SimError, FormatError, other
// lpu::Error, anything else) and what rebuilds it.
void put_error(Writer& w, std::exception_ptr e);
// Throws the error put_error wrote; `suffix` is appended to its message (", on MPI rank 1").
[[noreturn]] void throw_error(Reader& r, const std::string& suffix);

}  // namespace lpu::rack::wire
