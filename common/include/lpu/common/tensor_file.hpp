#pragma once
// Tensors on disk: NumPy .npy and .safetensors, read and written by the assembler (.data),
// the runtime (weights, inputs, outputs) and the tools.
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

namespace lpu::io {

// Element types that files may hold. Names follow the ISA suffixes where they exist;
// u8/u16/u32/f64/i64/bool are accepted on input for convenience and converted by callers.
enum class ElemType : std::uint8_t { I8, I16, I32, I64, U8, U16, U32, F16, Bf16, F32, F64, E4m3, E5m2, Bool };
std::string_view elem_name(ElemType t);  // "i8", "f16", "bf16", "e4m3", ...
int elem_bytes(ElemType t);

struct Tensor {
  ElemType type = ElemType::F32;
  std::vector<std::int64_t> shape;   // C order
  std::vector<std::uint8_t> data;    // little-endian, row-major, exactly numel * elem_bytes
  std::int64_t numel() const;
};

// .npy (format versions 1.0, 2.0, 3.0). Reading accepts little-endian or byte-order-less
// descr ('<i1', '|i1', '<f2', '<f4', '<f8', '<i2', '<i4', '<i8', '|u1', '<u2', '<u4', '|b1',
// and the ml_dtypes names '<V2' is NOT guessed); Fortran order is refused; big-endian is
// converted. Contract: never crashes on any input; malformed, truncated or unsupported files
// throw lpu::FormatError with the origin and what is wrong (e.g. "x.npy: header says 1000
// elements of f32 (4000 bytes) but only 12 bytes follow").
Tensor read_npy(std::span<const std::uint8_t> bytes, const std::string& origin);
Tensor load_npy(const std::string& path);
std::vector<std::uint8_t> write_npy(const Tensor& t);  // version 1.0, '<' descr
void save_npy(const Tensor& t, const std::string& path);

// .safetensors: 8-byte little-endian header length, JSON header (dtype, shape, data_offsets,
// optional __metadata__), then the data. dtypes: I8 I16 I32 I64 U8 U16 U32 F16 BF16 F32 F64
// F8_E4M3 F8_E5M2 BOOL. Contract as read_npy: overlapping or out-of-bounds offsets, sizes that
// do not match shape x dtype, bad JSON, duplicate names, a header length larger than the file
// all throw lpu::FormatError naming the file and tensor.
std::map<std::string, Tensor> read_safetensors(std::span<const std::uint8_t> bytes,
                                               const std::string& origin);
std::map<std::string, Tensor> load_safetensors(const std::string& path);
std::vector<std::uint8_t> write_safetensors(const std::map<std::string, Tensor>& tensors,
                                            const std::map<std::string, std::string>& metadata = {});
void save_safetensors(const std::map<std::string, Tensor>& tensors, const std::string& path,
                      const std::map<std::string, std::string>& metadata = {});

// Read a whole file (throws lpu::Error naming the path on failure).
std::vector<std::uint8_t> read_file_bytes(const std::string& path);

}  // namespace lpu::io
