// Tensor files: NumPy .npy (versions 1.0/2.0/3.0) and .safetensors.
//
// Both readers treat their input as untrusted: every length and offset is checked against the
// bytes actually present before anything is allocated or copied, all size arithmetic is
// overflow-checked, and every failure is an lpu::FormatError that starts with the origin.
// The writers are deterministic and match the reference implementations byte for byte
// (numpy.lib.format for .npy, the safetensors Rust crate for .safetensors).
#include "lpu/common/tensor_file.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string_view>
#include <system_error>
#include <tuple>
#include <utility>

#include "lpu/common/errors.hpp"

namespace lpu::io {

namespace {

constexpr std::int64_t kI64Max = std::numeric_limits<std::int64_t>::max();

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

[[noreturn]] void fail(const std::string& origin, const std::string& what) {
  throw FormatError(origin + ": " + what);
}

[[noreturn]] void fail_tensor(const std::string& origin, const std::string& name,
                              const std::string& what) {
  throw FormatError(origin + ": tensor '" + name + "': " + what);
}

bool valid_elem(ElemType t) {
  return static_cast<unsigned>(t) <= static_cast<unsigned>(ElemType::Bool);
}

// a * b for non-negative values, nullopt on int64 overflow.
std::optional<std::int64_t> mul_checked(std::int64_t a, std::int64_t b) {
  if (a == 0 || b == 0) return 0;
  if (a > kI64Max / b) return std::nullopt;
  return a * b;
}

// Product of non-negative dims; nullopt if a dim is negative or the product overflows.
// A zero dim makes the product zero regardless of the other dims.
std::optional<std::int64_t> shape_numel(const std::vector<std::int64_t>& shape) {
  for (auto d : shape)
    if (d < 0) return std::nullopt;
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return 0;
  std::int64_t n = 1;
  for (auto d : shape) {
    auto m = mul_checked(n, d);
    if (!m) return std::nullopt;
    n = *m;
  }
  return n;
}

// "(2, 3)", "(3,)", "()" -- Python's repr of a tuple, as NumPy writes it.
std::string py_shape(const std::vector<std::int64_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1) s += ",";
  return s + ")";
}

// "[2, 3]", "[]" -- for messages about safetensors headers.
std::string json_shape(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

// Printable rendering of untrusted text for messages: non-printable bytes become \xNN and the
// result is cut at `max` characters.
std::string printable(std::string_view s, std::size_t max = 80) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (out.size() >= max) {
      out += "...";
      break;
    }
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
  }
  return out;
}

std::uint64_t load_le(const std::uint8_t* p, int n) {
  std::uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

void store_le(std::vector<std::uint8_t>& out, std::uint64_t v, int n) {
  for (int i = 0; i < n; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

void byteswap_elements(std::vector<std::uint8_t>& data, int width) {
  if (width <= 1) return;
  const auto w = static_cast<std::size_t>(width);
  for (std::size_t off = 0; off + w <= data.size(); off += w)
    std::reverse(data.begin() + static_cast<std::ptrdiff_t>(off),
                 data.begin() + static_cast<std::ptrdiff_t>(off + w));
}

// Validates a tensor handed to a writer; returns its byte size.
std::size_t checked_tensor_bytes(const Tensor& t, const std::string& who) {
  if (!valid_elem(t.type))
    throw Error(fmt::format("{}: invalid element type {}", who, static_cast<int>(t.type)));
  auto n = shape_numel(t.shape);
  if (!n)
    throw Error(
        fmt::format("{}: invalid shape {} (negative or overflowing)", who, py_shape(t.shape)));
  auto bytes = mul_checked(*n, elem_bytes(t.type));
  if (!bytes || static_cast<std::uint64_t>(*bytes) != t.data.size())
    throw Error(fmt::format("{}: shape {} of {} needs {} bytes of data but the tensor holds {}",
                            who, py_shape(t.shape), elem_name(t.type),
                            bytes ? std::to_string(*bytes) : std::string("more than 2^63"),
                            t.data.size()));
  return t.data.size();
}

void write_file_bytes(const std::vector<std::uint8_t>& bytes, const std::string& path) {
  errno = 0;
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "wb"), &std::fclose);
  if (!f) throw Error(fmt::format("{}: cannot open for writing: {}", path, std::strerror(errno)));
  if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), f.get()) != bytes.size())
    throw Error(fmt::format("{}: write failed: {}", path, std::strerror(errno)));
  if (std::fflush(f.get()) != 0)
    throw Error(fmt::format("{}: write failed: {}", path, std::strerror(errno)));
  std::FILE* raw = f.release();
  if (std::fclose(raw) != 0)
    throw Error(fmt::format("{}: close failed: {}", path, std::strerror(errno)));
}

// ---------------------------------------------------------------------------------------------
// .npy
// ---------------------------------------------------------------------------------------------

constexpr std::array<std::uint8_t, 6> kNpyMagic = {0x93, 'N', 'U', 'M', 'P', 'Y'};
constexpr std::size_t kNpyAlign = 64;
constexpr std::size_t kGrowthAxisMaxDigits = 21;  // numpy.lib.format.GROWTH_AXIS_MAX_DIGITS

constexpr std::string_view kNpySupported =
    "supported: |b1 |i1 |u1 <i2 <i4 <i8 <u2 <u4 <f2 <f4 <f8, or '>' for big-endian";

std::string_view npy_descr(ElemType t) {
  switch (t) {
    case ElemType::I8:
      return "|i1";
    case ElemType::I16:
      return "<i2";
    case ElemType::I32:
      return "<i4";
    case ElemType::I64:
      return "<i8";
    case ElemType::U8:
      return "|u1";
    case ElemType::U16:
      return "<u2";
    case ElemType::U32:
      return "<u4";
    case ElemType::F16:
      return "<f2";
    case ElemType::Bf16:
      return "<u2";  // no NumPy type: raw bits, caller reinterprets
    case ElemType::F32:
      return "<f4";
    case ElemType::F64:
      return "<f8";
    case ElemType::E4m3:
      return "|u1";  // likewise
    case ElemType::E5m2:
      return "|u1";
    case ElemType::Bool:
      return "|b1";
  }
  return "";
}

struct NpyDescr {
  ElemType type;
  bool big_endian;
};

NpyDescr parse_descr(std::string_view d, const std::string& origin) {
  auto unsupported = [&](std::string_view why) -> NpyDescr {
    fail(origin, fmt::format("unsupported descr '{}'{} ({})", printable(d), why, kNpySupported));
  };
  if (d.size() < 3) return unsupported("");
  char order = d[0];
  if (order != '<' && order != '>' && order != '|') {
    if (order == '=') return unsupported(": native byte order '=' is ambiguous in a file");
    return unsupported(": no byte-order character");
  }
  char kind = d[1];
  std::string_view size = d.substr(2);
  std::optional<ElemType> t;
  if (kind == 'b' && size == "1") t = ElemType::Bool;
  if (kind == 'i') {
    if (size == "1") t = ElemType::I8;
    if (size == "2") t = ElemType::I16;
    if (size == "4") t = ElemType::I32;
    if (size == "8") t = ElemType::I64;
  }
  if (kind == 'u') {
    if (size == "1") t = ElemType::U8;
    if (size == "2") t = ElemType::U16;
    if (size == "4") t = ElemType::U32;
  }
  if (kind == 'f') {
    if (size == "2") t = ElemType::F16;
    if (size == "4") t = ElemType::F32;
    if (size == "8") t = ElemType::F64;
  }
  if (!t) {
    if (kind == 'V')
      return unsupported(
          ": raw void type (ml_dtypes bfloat16/float8 are not guessed; save them as "
          "uint16/uint8 and reinterpret)");
    return unsupported("");
  }
  if (order == '|' && elem_bytes(*t) != 1)
    return unsupported(": byte order '|' is only valid for 1-byte types");
  return {*t, order == '>'};
}

// Hand-written parser for the header, a Python dict literal such as
//   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
// Accepts exactly the keys 'descr', 'fortran_order' and 'shape' in any order, single or double
// quoted, arbitrary whitespace, an optional trailing comma, and Python 2 'L' integer suffixes.
class NpyHeaderParser {
 public:
  NpyHeaderParser(std::string_view text, const std::string& origin) : s_(text), origin_(origin) {}

  struct Result {
    std::string descr;
    bool fortran_order = false;
    std::vector<std::int64_t> shape;
  };

  Result parse() {
    Result r;
    bool have_descr = false, have_fortran = false, have_shape = false;
    ws();
    expect('{', "the header must be a dict starting with '{'");
    ws();
    while (!at('}')) {
      std::size_t key_pos = i_;
      std::string key = string_literal("a quoted key");
      ws();
      expect(':', fmt::format("':' after key '{}'", printable(key)));
      ws();
      auto once = [&](bool& seen) {
        if (seen) error_at(key_pos, fmt::format("duplicate key '{}'", key));
        seen = true;
      };
      if (key == "descr") {
        once(have_descr);
        if (at('[') || at('('))
          fail(origin_, "structured dtypes (descr is a list of fields) are not supported");
        r.descr = string_literal("the descr string");
      } else if (key == "fortran_order") {
        once(have_fortran);
        r.fortran_order = boolean();
      } else if (key == "shape") {
        once(have_shape);
        r.shape = tuple();
      } else {
        error_at(key_pos, fmt::format("unexpected key '{}' (a .npy header has exactly 'descr', "
                                      "'fortran_order' and 'shape')",
                                      printable(key)));
      }
      ws();
      if (at(',')) {
        ++i_;
        ws();
      } else if (!at('}')) {
        error("expected ',' or '}' after a value");
      }
    }
    ++i_;  // '}'
    ws();
    if (i_ != s_.size()) error("unexpected text after the closing '}'");
    if (!have_descr) missing("descr");
    if (!have_fortran) missing("fortran_order");
    if (!have_shape) missing("shape");
    return r;
  }

 private:
  [[noreturn]] void error_at(std::size_t pos, const std::string& what) const {
    fail(origin_, fmt::format("malformed .npy header: {} at header offset {} (header: \"{}\")",
                              what, pos, printable(s_)));
  }
  [[noreturn]] void error(const std::string& what) const { error_at(i_, what); }
  [[noreturn]] void missing(std::string_view key) const {
    fail(origin_, fmt::format("malformed .npy header: missing key '{}' (header: \"{}\")", key,
                              printable(s_)));
  }

  bool at(char c) const { return i_ < s_.size() && s_[i_] == c; }
  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r' ||
                              s_[i_] == '\f' || s_[i_] == '\v'))
      ++i_;
  }
  void expect(char c, const std::string& what) {
    if (!at(c)) error(fmt::format("expected {}", what));
    ++i_;
  }
  bool word(std::string_view w) {
    if (s_.substr(i_, w.size()) != w) return false;
    std::size_t end = i_ + w.size();
    if (end < s_.size()) {
      char c = s_[end];
      if (std::isalnum(static_cast<unsigned char>(c)) || c == '_') return false;
    }
    i_ = end;
    return true;
  }

  std::string string_literal(std::string_view what) {
    if (!at('\'') && !at('"')) error(fmt::format("expected {}", what));
    char q = s_[i_];
    std::size_t start = ++i_;
    while (i_ < s_.size() && s_[i_] != q) {
      auto c = static_cast<unsigned char>(s_[i_]);
      if (c == '\\') error("escape sequences in strings are not supported");
      if (c < 0x20 || c >= 0x7f) error(fmt::format("unexpected byte 0x{:02x} in a string", c));
      ++i_;
    }
    if (i_ >= s_.size()) error_at(start - 1, "unterminated string");
    std::string out(s_.substr(start, i_ - start));
    ++i_;
    return out;
  }

  bool boolean() {
    if (word("True")) return true;
    if (word("False")) return false;
    error("fortran_order must be True or False");
  }

  std::int64_t dimension() {
    if (at('-')) error("negative dimension in shape");
    if (i_ >= s_.size() || !std::isdigit(static_cast<unsigned char>(s_[i_])))
      error("expected a non-negative integer dimension");
    std::size_t start = i_;
    std::int64_t v = 0;
    while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_]))) {
      int digit = s_[i_] - '0';
      if (v > (kI64Max - digit) / 10) error_at(start, "dimension does not fit in 64 bits");
      v = v * 10 + digit;
      ++i_;
    }
    if (at('L') || at('l')) ++i_;  // Python 2 long suffix, as numpy's _filter_header accepts
    if (i_ < s_.size() &&
        (std::isalnum(static_cast<unsigned char>(s_[i_])) || s_[i_] == '_' || s_[i_] == '.'))
      error("expected a non-negative integer dimension");
    return v;
  }

  std::vector<std::int64_t> tuple() {
    if (at('[')) error("shape must be a tuple, not a list");
    expect('(', "the shape tuple, e.g. (2, 3)");
    std::vector<std::int64_t> dims;
    ws();
    bool trailing_comma = false;
    while (!at(')')) {
      dims.push_back(dimension());
      ws();
      trailing_comma = false;
      if (at(',')) {
        ++i_;
        trailing_comma = true;
        ws();
      } else if (!at(')')) {
        error("expected ',' or ')' in the shape tuple");
      }
    }
    if (dims.size() == 1 && !trailing_comma)
      error(fmt::format("shape ({}) is not a tuple (a 1-d shape is written ({},))", dims[0],
                        dims[0]));
    ++i_;  // ')'
    return dims;
  }

  std::string_view s_;
  const std::string& origin_;
  std::size_t i_ = 0;
};

// ---------------------------------------------------------------------------------------------
// .safetensors
// ---------------------------------------------------------------------------------------------

using json = nlohmann::json;

constexpr std::uint64_t kStMaxHeader = 100'000'000;  // as the reference implementation
constexpr int kStMaxDepth = 64;

struct StDtype {
  std::string_view name;
  ElemType type;
  int rank;  // position in the reference crate's Dtype enum: writers sort by it, descending
};

// Ranks follow the reference enum order BOOL < U8 < I8 < F8_E5M2 < F8_E4M3 < I16 < U16 < F16 <
// BF16 < I32 < U32 < F32 < F64 < I64, so that sorting descending puts wider types first and
// every tensor's data is naturally aligned.
constexpr std::array<StDtype, 14> kStDtypes = {{
    {"BOOL", ElemType::Bool, 0},
    {"U8", ElemType::U8, 1},
    {"I8", ElemType::I8, 2},
    {"F8_E5M2", ElemType::E5m2, 3},
    {"F8_E4M3", ElemType::E4m3, 4},
    {"I16", ElemType::I16, 5},
    {"U16", ElemType::U16, 6},
    {"F16", ElemType::F16, 7},
    {"BF16", ElemType::Bf16, 8},
    {"I32", ElemType::I32, 9},
    {"U32", ElemType::U32, 10},
    {"F32", ElemType::F32, 11},
    {"F64", ElemType::F64, 12},
    {"I64", ElemType::I64, 13},
}};

const StDtype& st_dtype(ElemType t) {
  for (const auto& d : kStDtypes)
    if (d.type == t) return d;
  throw Error(fmt::format("write_safetensors: invalid element type {}", static_cast<int>(t)));
}

std::string json_type_name(const json& j) {
  if (j.is_number_unsigned()) return "a non-negative integer";
  if (j.is_number_integer()) return "a negative integer";
  if (j.is_number_float()) return "a non-integer number";
  return std::string(j.type_name());
}

std::string st_supported() {
  std::string s;
  for (const auto& d : kStDtypes) {
    if (!s.empty()) s += ' ';
    s += d.name;
  }
  return s;
}

struct StEntry {
  std::string name;
  ElemType type;
  std::vector<std::int64_t> shape;
  std::uint64_t begin, end;
};

}  // namespace

// -----------------------------------------------------------------------------------------------
// Element types and Tensor
// -----------------------------------------------------------------------------------------------

std::string_view elem_name(ElemType t) {
  switch (t) {
    case ElemType::I8:
      return "i8";
    case ElemType::I16:
      return "i16";
    case ElemType::I32:
      return "i32";
    case ElemType::I64:
      return "i64";
    case ElemType::U8:
      return "u8";
    case ElemType::U16:
      return "u16";
    case ElemType::U32:
      return "u32";
    case ElemType::F16:
      return "f16";
    case ElemType::Bf16:
      return "bf16";
    case ElemType::F32:
      return "f32";
    case ElemType::F64:
      return "f64";
    case ElemType::E4m3:
      return "e4m3";
    case ElemType::E5m2:
      return "e5m2";
    case ElemType::Bool:
      return "bool";
  }
  return "?";
}

int elem_bytes(ElemType t) {
  switch (t) {
    case ElemType::I8:
    case ElemType::U8:
    case ElemType::E4m3:
    case ElemType::E5m2:
    case ElemType::Bool:
      return 1;
    case ElemType::I16:
    case ElemType::U16:
    case ElemType::F16:
    case ElemType::Bf16:
      return 2;
    case ElemType::I32:
    case ElemType::U32:
    case ElemType::F32:
      return 4;
    case ElemType::I64:
    case ElemType::F64:
      return 8;
  }
  return 0;
}

std::int64_t Tensor::numel() const {
  auto n = shape_numel(shape);
  if (!n) throw Error(fmt::format("tensor shape {} is negative or overflows", py_shape(shape)));
  return *n;
}

// -----------------------------------------------------------------------------------------------
// .npy
// -----------------------------------------------------------------------------------------------

Tensor read_npy(std::span<const std::uint8_t> bytes, const std::string& origin) {
  const std::size_t size = bytes.size();
  if (size == 0) fail(origin, "empty file (0 bytes), not a .npy file");
  const std::size_t magic_seen = std::min(size, kNpyMagic.size());
  if (!std::equal(kNpyMagic.begin(), kNpyMagic.begin() + static_cast<std::ptrdiff_t>(magic_seen),
                  bytes.begin()))
    fail(origin, fmt::format("not a .npy file: bad magic \"{}\" (expected \"\\x93NUMPY\")",
                             printable(std::string_view(reinterpret_cast<const char*>(bytes.data()),
                                                        magic_seen))));
  if (size < 8)
    fail(origin, fmt::format("truncated .npy file: {} bytes, the magic and version need 8", size));
  const int major = bytes[6], minor = bytes[7];
  if (minor != 0 || major < 1 || major > 3)
    fail(origin, fmt::format("unsupported .npy format version {}.{} (supported: 1.0, 2.0, 3.0)",
                             major, minor));
  const int len_bytes = major == 1 ? 2 : 4;
  const std::size_t preamble = 8 + static_cast<std::size_t>(len_bytes);
  if (size < preamble)
    fail(origin, fmt::format("truncated .npy file: {} bytes, a version {}.0 preamble needs {}",
                             size, major, preamble));
  const std::uint64_t header_len = load_le(bytes.data() + 8, len_bytes);
  if (header_len > size - preamble)
    fail(origin, fmt::format("truncated .npy file: header length is {} but only {} bytes follow",
                             header_len, size - preamble));
  const std::size_t data_start = preamble + static_cast<std::size_t>(header_len);
  std::string_view text(reinterpret_cast<const char*>(bytes.data() + preamble),
                        static_cast<std::size_t>(header_len));

  auto hdr = NpyHeaderParser(text, origin).parse();
  auto descr = parse_descr(hdr.descr, origin);
  if (hdr.fortran_order)
    fail(origin,
         "Fortran-order arrays are not supported (save a C-contiguous array, e.g. "
         "np.ascontiguousarray)");

  const int eb = elem_bytes(descr.type);
  auto numel = shape_numel(hdr.shape);
  std::optional<std::int64_t> nbytes;
  if (numel) nbytes = mul_checked(*numel, eb);
  if (!numel || !nbytes)
    fail(origin, fmt::format("shape {} of {} overflows 64 bits", py_shape(hdr.shape),
                             elem_name(descr.type)));
  const std::size_t avail = size - data_start;
  if (static_cast<std::uint64_t>(*nbytes) != avail)
    fail(origin, fmt::format("header says {} elements of {} ({} bytes) but {}{} bytes follow",
                             *numel, elem_name(descr.type), *nbytes,
                             static_cast<std::uint64_t>(*nbytes) > avail ? "only " : "", avail));

  Tensor t;
  t.type = descr.type;
  t.shape = std::move(hdr.shape);
  t.data.assign(bytes.begin() + static_cast<std::ptrdiff_t>(data_start), bytes.end());
  if (descr.big_endian) byteswap_elements(t.data, eb);
  return t;
}

Tensor load_npy(const std::string& path) {
  auto bytes = read_file_bytes(path);
  return read_npy(bytes, path);
}

std::vector<std::uint8_t> write_npy(const Tensor& t) {
  checked_tensor_bytes(t, "write_npy");
  // Exactly what numpy.lib.format._write_array_header produces: keys sorted, repr() values,
  // spare spaces for growing axis 0, then spaces and '\n' up to a multiple of 64 bytes.
  std::string header = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
                                   npy_descr(t.type), py_shape(t.shape));
  if (!t.shape.empty()) {
    std::size_t digits = std::to_string(t.shape[0]).size();
    header.append(kGrowthAxisMaxDigits - std::min(digits, kGrowthAxisMaxDigits), ' ');
  }
  int major = 1;
  std::size_t len_bytes = 2;
  std::size_t hlen = header.size() + 1;
  std::size_t padlen = kNpyAlign - ((8 + len_bytes + hlen) % kNpyAlign);
  if (hlen + padlen > 0xffff) {  // NumPy falls back to version 2.0 likewise
    major = 2;
    len_bytes = 4;
    padlen = kNpyAlign - ((8 + len_bytes + hlen) % kNpyAlign);
  }
  std::vector<std::uint8_t> out(kNpyMagic.begin(), kNpyMagic.end());
  out.reserve(8 + len_bytes + hlen + padlen + t.data.size());
  out.push_back(static_cast<std::uint8_t>(major));
  out.push_back(0);
  store_le(out, hlen + padlen, static_cast<int>(len_bytes));
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), padlen, static_cast<std::uint8_t>(' '));
  out.push_back('\n');
  out.insert(out.end(), t.data.begin(), t.data.end());
  return out;
}

void save_npy(const Tensor& t, const std::string& path) { write_file_bytes(write_npy(t), path); }

// -----------------------------------------------------------------------------------------------
// .safetensors
// -----------------------------------------------------------------------------------------------

std::map<std::string, Tensor> read_safetensors(std::span<const std::uint8_t> bytes,
                                               const std::string& origin) {
  const std::size_t size = bytes.size();
  if (size < 8)
    fail(origin,
         fmt::format("truncated .safetensors file: {} bytes, the header length field needs 8",
                     size));
  const std::uint64_t n = load_le(bytes.data(), 8);
  if (n > kStMaxHeader)
    fail(origin, fmt::format("header length {} exceeds the {}-byte limit", n, kStMaxHeader));
  if (n > size - 8)
    fail(origin, fmt::format("truncated .safetensors file: header length is {} but only {} bytes "
                             "follow the length field",
                             n, size - 8));
  const auto* hbegin = bytes.data() + 8;
  const auto* hend = hbegin + n;
  const std::size_t data_start = 8 + static_cast<std::size_t>(n);
  const std::uint64_t data_size = size - data_start;

  // Parse, tracking keys per object to reject duplicates (nlohmann would keep the last one).
  std::vector<std::set<std::string>> keys;
  std::string duplicate;
  json::parser_callback_t cb = [&](int depth, json::parse_event_t ev, json& parsed) {
    // A valid header nests 3 levels deep; refuse pathological nesting before it costs memory.
    if (depth > kStMaxDepth)
      fail(origin, fmt::format("header nests deeper than {} levels", kStMaxDepth));
    switch (ev) {
      case json::parse_event_t::object_start:
        keys.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!keys.empty()) keys.pop_back();
        break;
      case json::parse_event_t::key:
        if (!keys.empty() && parsed.is_string() &&
            !keys.back().insert(parsed.get<std::string>()).second && duplicate.empty())
          duplicate = parsed.get<std::string>();
        break;
      default:
        break;
    }
    return true;
  };
  json header;
  try {
    header = json::parse(hbegin, hend, cb);
  } catch (const json::exception& e) {
    fail(origin, fmt::format("header is not valid JSON: {}", e.what()));
  }
  if (!duplicate.empty()) fail(origin, fmt::format("duplicate key '{}' in the header", duplicate));
  if (!header.is_object())
    fail(origin, fmt::format("header must be a JSON object, not {}", header.type_name()));

  std::vector<StEntry> entries;
  for (const auto& [name, v] : header.items()) {
    if (name == "__metadata__") {
      if (!v.is_object())
        fail(origin,
             fmt::format("__metadata__ must be an object of strings, not {}", v.type_name()));
      for (const auto& [k, mv] : v.items())
        if (!mv.is_string())
          fail(origin, fmt::format("__metadata__ value '{}' must be a string, not {}", k,
                                   json_type_name(mv)));
      continue;
    }
    auto bad = [&, &name = name](const std::string& what) { fail_tensor(origin, name, what); };
    if (!v.is_object()) bad(fmt::format("entry must be an object, not {}", v.type_name()));
    for (const auto& [field, fv] : v.items()) {
      (void)fv;
      if (field != "dtype" && field != "shape" && field != "data_offsets")
        bad(fmt::format("unknown field '{}' (expected dtype, shape, data_offsets)", field));
    }
    for (const char* field : {"dtype", "shape", "data_offsets"})
      if (!v.contains(field)) bad(fmt::format("missing field '{}'", field));

    StEntry e;
    e.name = name;
    const auto& jd = v.at("dtype");
    if (!jd.is_string()) bad(fmt::format("dtype must be a string, not {}", json_type_name(jd)));
    const auto dname = jd.get<std::string>();
    const StDtype* dt = nullptr;
    for (const auto& d : kStDtypes)
      if (d.name == dname) dt = &d;
    if (!dt)
      fail_tensor(origin, name,
                  fmt::format("unsupported dtype '{}' (supported: {})", dname, st_supported()));
    e.type = dt->type;

    const auto& js = v.at("shape");
    if (!js.is_array()) bad(fmt::format("shape must be an array, not {}", json_type_name(js)));
    for (const auto& d : js) {
      if (!d.is_number_unsigned())
        bad(fmt::format("shape entries must be non-negative integers, found {}",
                        json_type_name(d)));
      const auto dv = d.get<std::uint64_t>();
      if (dv > static_cast<std::uint64_t>(kI64Max))
        bad(fmt::format("shape dimension {} does not fit in 64 bits", dv));
      e.shape.push_back(static_cast<std::int64_t>(dv));
    }

    const auto& jo = v.at("data_offsets");
    if (!jo.is_array() || jo.size() != 2)
      bad("data_offsets must be an array of two integers [begin, end]");
    for (const auto& o : jo)
      if (!o.is_number_unsigned())
        bad(fmt::format("data_offsets must be non-negative integers, found {}", json_type_name(o)));
    e.begin = jo[0].get<std::uint64_t>();
    e.end = jo[1].get<std::uint64_t>();
    if (e.end < e.begin)
      bad(fmt::format("data_offsets [{}, {}] end before they begin", e.begin, e.end));
    if (e.end > data_size)
      bad(fmt::format("data_offsets [{}, {}] extend past the end of the {}-byte data section",
                      e.begin, e.end, data_size));
    auto numel = shape_numel(e.shape);
    std::optional<std::int64_t> nbytes;
    if (numel) nbytes = mul_checked(*numel, elem_bytes(e.type));
    if (!numel || !nbytes)
      bad(fmt::format("shape {} of {} overflows 64 bits", json_shape(e.shape), dname));
    if (static_cast<std::uint64_t>(*nbytes) != e.end - e.begin)
      bad(fmt::format("data_offsets [{}, {}] span {} bytes but shape {} of {} needs {}", e.begin,
                      e.end, e.end - e.begin, json_shape(e.shape), dname, *nbytes));
    entries.push_back(std::move(e));
  }

  // Tensors must tile the data section exactly, as the reference implementation requires.
  std::vector<const StEntry*> order;
  for (const auto& e : entries) order.push_back(&e);
  std::sort(order.begin(), order.end(), [](const StEntry* a, const StEntry* b) {
    return std::tie(a->begin, a->end, a->name) < std::tie(b->begin, b->end, b->name);
  });
  std::uint64_t pos = 0;
  const StEntry* prev = nullptr;
  for (const auto* e : order) {
    if (e->begin < pos)
      fail(origin, fmt::format("tensors '{}' [{}, {}] and '{}' [{}, {}] overlap", prev->name,
                               prev->begin, prev->end, e->name, e->begin, e->end));
    if (e->begin > pos)
      fail(origin, fmt::format("tensor '{}' starts at data offset {} but the previous tensor ends "
                               "at {} (unused bytes between tensors are not allowed)",
                               e->name, e->begin, pos));
    pos = e->end;
    prev = e;
  }
  if (pos != data_size)
    fail(origin, fmt::format("{} bytes after the last tensor (data section is {} bytes, tensors "
                             "cover {})",
                             data_size - pos, data_size, pos));

  std::map<std::string, Tensor> out;
  for (auto& e : entries) {
    Tensor t;
    t.type = e.type;
    t.shape = std::move(e.shape);
    const auto* p = bytes.data() + data_start;
    t.data.assign(p + e.begin, p + e.end);
    out.emplace(e.name, std::move(t));
  }
  return out;
}

std::map<std::string, Tensor> load_safetensors(const std::string& path) {
  auto bytes = read_file_bytes(path);
  return read_safetensors(bytes, path);
}

std::vector<std::uint8_t> write_safetensors(const std::map<std::string, Tensor>& tensors,
                                            const std::map<std::string, std::string>& metadata) {
  // Reference order: descending dtype rank, then name; offsets are contiguous.
  std::vector<std::pair<const std::string*, const Tensor*>> order;
  for (const auto& [name, t] : tensors) {
    if (name == "__metadata__")
      throw Error("write_safetensors: '__metadata__' is reserved and cannot name a tensor");
    checked_tensor_bytes(t, fmt::format("write_safetensors: tensor '{}'", name));
    order.emplace_back(&name, &t);
  }
  std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    int ra = st_dtype(a.second->type).rank, rb = st_dtype(b.second->type).rank;
    if (ra != rb) return ra > rb;
    return *a.first < *b.first;
  });

  nlohmann::ordered_json h = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    auto m = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) m[k] = v;
    h["__metadata__"] = std::move(m);
  }
  std::uint64_t offset = 0;
  for (const auto& [name, t] : order) {
    auto e = nlohmann::ordered_json::object();
    e["dtype"] = st_dtype(t->type).name;
    auto shape = nlohmann::ordered_json::array();
    for (auto d : t->shape) shape.push_back(static_cast<std::uint64_t>(d));
    e["shape"] = std::move(shape);
    e["data_offsets"] = {offset, offset + t->data.size()};
    offset += t->data.size();
    h[*name] = std::move(e);
  }
  std::string text;
  try {
    text = h.dump();
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("write_safetensors: tensor names and metadata must be valid UTF-8: {}",
                            e.what()));
  }
  text.append((8 - text.size() % 8) % 8, ' ');

  std::vector<std::uint8_t> out;
  out.reserve(8 + text.size() + offset);
  store_le(out, text.size(), 8);
  out.insert(out.end(), text.begin(), text.end());
  for (const auto& [name, t] : order) out.insert(out.end(), t->data.begin(), t->data.end());
  return out;
}

void save_safetensors(const std::map<std::string, Tensor>& tensors, const std::string& path,
                      const std::map<std::string, std::string>& metadata) {
  write_file_bytes(write_safetensors(tensors, metadata), path);
}

// -----------------------------------------------------------------------------------------------
// Files
// -----------------------------------------------------------------------------------------------

std::vector<std::uint8_t> read_file_bytes(const std::string& path) {
  errno = 0;
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) throw Error(fmt::format("{}: cannot open for reading: {}", path, std::strerror(errno)));
  std::vector<std::uint8_t> out;
  std::error_code ec;
  auto hint = std::filesystem::file_size(path, ec);  // only a capacity hint
  if (!ec && hint < (std::uint64_t{1} << 40)) out.reserve(static_cast<std::size_t>(hint));
  std::array<std::uint8_t, 1 << 16> buf;
  for (;;) {
    std::size_t got = std::fread(buf.data(), 1, buf.size(), f.get());
    out.insert(out.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(got));
    if (got < buf.size()) {
      if (std::ferror(f.get()))
        throw Error(fmt::format("{}: read failed: {}", path, std::strerror(errno)));
      break;
    }
  }
  return out;
}

}  // namespace lpu::io
