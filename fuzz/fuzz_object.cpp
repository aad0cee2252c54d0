// libFuzzer target: arbitrary bytes into the object loader (docs/object-format.md).
// lpu::Error (FormatError) is the expected outcome for bad input; any other exception, a crash
// or a sanitizer report is a bug. An accepted object must survive write -> read unchanged.
//
// Most random inputs die at the checksum, so each input is also tried "resealed": its total
// length field and trailing CRC-32 fixed up, which lets the fuzzer reach the section parsers.
#include <boost/crc.hpp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <vector>

#include "lpu/asm/object.hpp"
#include "lpu/common/errors.hpp"

namespace {

void try_read(std::span<const std::uint8_t> bytes) {
  lpu::obj::Program p;
  try {
    p = lpu::obj::read_object(bytes, "fuzz.lpo");
  } catch (const lpu::Error&) {
    return;
  }
  // Accepted: the writer must accept it too, and the round trip must be exact.
  std::vector<std::uint8_t> again;
  try {
    again = lpu::obj::write_object(p);
  } catch (const lpu::Error& e) {
    std::fprintf(stderr, "read_object accepted a program write_object refuses: %s\n", e.what());
    std::abort();
  }
  if (!(lpu::obj::read_object(again, "fuzz-rewritten.lpo") == p)) {
    std::fprintf(stderr, "write/read round trip changed the program\n");
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try_read({data, size});

  // Header is 28 bytes, the CRC trailer 4 (docs/object-format.md).
  if (size >= 32) {
    std::vector<std::uint8_t> b(data, data + size);
    for (int i = 0; i < 8; ++i) b[16 + std::size_t(i)] = static_cast<std::uint8_t>(std::uint64_t(size) >> (8 * i));
    boost::crc_32_type crc;
    crc.process_bytes(b.data(), size - 4);
    const std::uint32_t c = crc.checksum();
    for (int i = 0; i < 4; ++i) b[size - 4 + std::size_t(i)] = static_cast<std::uint8_t>(c >> (8 * i));
    try_read(b);
  }
  return 0;
}
