#pragma once
// Between tensor files (lpu::io::Tensor) and the element types of the ISA.
#include <string>
#include <vector>

#include "lpu/common/tensor_file.hpp"
#include "lpu/isa/isa_table.hpp"

namespace lpu::num {

// The bytes of `t` as elements of type `d`. Same type: copied. u8/u16 files are taken as the
// raw bytes of 1- and 2-byte types (fp8, bf16 have no NumPy type). Other numeric types are
// converted with the ISA's rules (RNE, saturation; floats via f32). Throws lpu::FormatError
// naming `what` when the types cannot be converted.
std::vector<std::uint8_t> tensor_to_dtype(const io::Tensor& t, isa::Dtype d, const std::string& what);

// A tensor holding `bytes` of type `d` (fp8 as u8, bf16 as bf16 - written as raw u16 by .npy).
io::Tensor dtype_to_tensor(std::vector<std::uint8_t> bytes, isa::Dtype d, std::vector<std::int64_t> shape);

}  // namespace lpu::num
