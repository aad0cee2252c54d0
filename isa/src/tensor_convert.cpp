#include "lpu/isa/tensor_convert.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "lpu/common/errors.hpp"
#include "lpu/isa/isa.hpp"
#include "lpu/isa/numerics.hpp"

namespace lpu::num {

std::vector<std::uint8_t> tensor_to_dtype(const io::Tensor& t, isa::Dtype d, const std::string& what) {
  const int esz = isa::dtype_bytes(d);
  const auto numel = std::size_t(t.numel());
  const auto fname = io::elem_name(t.type);
  std::vector<std::uint8_t> out(numel * std::size_t(esz), 0);
  const bool same = fname == isa::dtype_info(d).name;
  const bool raw = io::elem_bytes(t.type) == esz && (t.type == io::ElemType::U8 || t.type == io::ElemType::U16);
  if (same || raw) {
    std::memcpy(out.data(), t.data.data(), out.size());
    return out;
  }
  MutBytes mb(out.data(), out.size());
  const int fb = io::elem_bytes(t.type);
  for (std::size_t i = 0; i < numel; ++i) {
    const std::uint8_t* e = t.data.data() + i * std::size_t(fb);
    double x = 0;
    switch (t.type) {
      case io::ElemType::F32: { float f; std::memcpy(&f, e, 4); x = f; break; }
      case io::ElemType::F64: std::memcpy(&x, e, 8); break;
      case io::ElemType::F16: x = f16_to_f32(std::uint16_t(e[0] | e[1] << 8)); break;
      case io::ElemType::Bf16: x = bf16_to_f32(std::uint16_t(e[0] | e[1] << 8)); break;
      case io::ElemType::E4m3: x = e4m3_to_f32(e[0]); break;
      case io::ElemType::E5m2: x = e5m2_to_f32(e[0]); break;
      case io::ElemType::I8: x = static_cast<std::int8_t>(e[0]); break;
      case io::ElemType::Bool:
      case io::ElemType::U8: x = e[0]; break;
      case io::ElemType::I16: { std::int16_t y; std::memcpy(&y, e, 2); x = y; break; }
      case io::ElemType::U16: { std::uint16_t y; std::memcpy(&y, e, 2); x = y; break; }
      case io::ElemType::I32: { std::int32_t y; std::memcpy(&y, e, 4); x = y; break; }
      case io::ElemType::U32: { std::uint32_t y; std::memcpy(&y, e, 4); x = y; break; }
      case io::ElemType::I64: { std::int64_t y; std::memcpy(&y, e, 8); x = double(y); break; }
    }
    if (isa::dtype_info(d).is_float) {
      store_f32(d, mb, i, static_cast<float>(x));
    } else {
      if (std::isnan(x)) throw FormatError(fmt::format("{}: NaN cannot be converted to {}", what, isa::dtype_info(d).name));
      store_int(d, mb, i, static_cast<std::int64_t>(std::nearbyint(std::clamp(x, -9.2e18, 9.2e18))), false);
    }
  }
  return out;
}

io::Tensor dtype_to_tensor(std::vector<std::uint8_t> bytes, isa::Dtype d, std::vector<std::int64_t> shape) {
  io::Tensor t;
  switch (d) {
    case isa::Dtype::I8: t.type = io::ElemType::I8; break;
    case isa::Dtype::I16: t.type = io::ElemType::I16; break;
    case isa::Dtype::I32: t.type = io::ElemType::I32; break;
    case isa::Dtype::F32: t.type = io::ElemType::F32; break;
    case isa::Dtype::F16: t.type = io::ElemType::F16; break;
    case isa::Dtype::Bf16: t.type = io::ElemType::Bf16; break;
    case isa::Dtype::E4m3: t.type = io::ElemType::E4m3; break;
    case isa::Dtype::E5m2: t.type = io::ElemType::E5m2; break;
  }
  t.shape = std::move(shape);
  t.data = std::move(bytes);
  return t;
}

}  // namespace lpu::num
