// .npy and .safetensors: byte-exact writers, round trips, and rejection of malformed input with
// messages that name the file and the problem.
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "lpu/common/errors.hpp"
#include "lpu/common/tensor_file.hpp"

using namespace lpu::io;
using Bytes = std::vector<std::uint8_t>;

namespace {

constexpr ElemType kAllTypes[] = {ElemType::I8,   ElemType::I16, ElemType::I32, ElemType::I64,
                                  ElemType::U8,   ElemType::U16, ElemType::U32, ElemType::F16,
                                  ElemType::Bf16, ElemType::F32, ElemType::F64, ElemType::E4m3,
                                  ElemType::E5m2, ElemType::Bool};

Bytes B(std::string_view s) { return Bytes(s.begin(), s.end()); }

Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

Bytes le(std::uint64_t v, int n) {
  Bytes out;
  for (int i = 0; i < n; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  return out;
}

// Magic and version 1.0 (B() would stop at the NUL).
const Bytes kMagicV1 = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};

// The float32 values 0, 1, 2, 3, 4, 5, little-endian.
const Bytes kF32_0to5 = {0, 0, 0,    0,    0, 0, 0x80, 0x3f, 0, 0, 0,    0x40,
                         0, 0, 0x40, 0x40, 0, 0, 0x80, 0x40, 0, 0, 0xa0, 0x40};

Tensor make(ElemType type, std::vector<std::int64_t> shape, std::uint8_t seed = 11) {
  Tensor t;
  t.type = type;
  t.shape = std::move(shape);
  t.data.resize(static_cast<std::size_t>(t.numel() * elem_bytes(type)));
  for (std::size_t i = 0; i < t.data.size(); ++i)
    t.data[i] = static_cast<std::uint8_t>(i * 37 + seed);
  return t;
}

// An .npy file with the given header text (padded as given) and data.
Bytes npy_file(std::string_view header, const Bytes& data, int major = 1) {
  Bytes out = B("\x93NUMPY");
  out.push_back(static_cast<std::uint8_t>(major));
  out.push_back(0);
  auto len = le(header.size(), major == 1 ? 2 : 4);
  out.insert(out.end(), len.begin(), len.end());
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

// A .safetensors file with the given header text and data.
Bytes st_file(std::string_view header, const Bytes& data) {
  return cat({le(header.size(), 8), B(header), data});
}

// The message of the lpu::FormatError thrown by f, or a marker when f does something else.
std::string format_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const lpu::FormatError& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("<wrong exception: ") + e.what() + ">";
  }
  return "<no exception>";
}

std::string npy_error(const Bytes& b) {
  return format_error([&] { read_npy(b, "x.npy"); });
}
std::string st_error(const Bytes& b) {
  return format_error([&] { read_safetensors(b, "w.safetensors"); });
}

bool starts_with(const std::string& s, std::string_view p) { return s.rfind(p, 0) == 0; }
bool contains(const std::string& s, std::string_view p) { return s.find(p) != std::string::npos; }

#define CHECK_NPY_REJECTS(bytes, needle)       \
  do {                                         \
    const std::string msg_ = npy_error(bytes); \
    CAPTURE(msg_);                             \
    CHECK(starts_with(msg_, "x.npy: "));       \
    CHECK(contains(msg_, needle));             \
  } while (0)

#define CHECK_ST_REJECTS(bytes, needle)          \
  do {                                           \
    const std::string msg_ = st_error(bytes);    \
    CAPTURE(msg_);                               \
    CHECK(starts_with(msg_, "w.safetensors: ")); \
    CHECK(contains(msg_, needle));               \
  } while (0)

bool same(const Tensor& a, const Tensor& b) {
  return a.type == b.type && a.shape == b.shape && a.data == b.data;
}

std::filesystem::path temp_dir() {
  static std::atomic<int> n{0};
  auto dir = std::filesystem::temp_directory_path() /
             ("lpu_test_tensor_file_" + std::to_string(::getpid()) + "_" + std::to_string(n++));
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Element types
// ---------------------------------------------------------------------------------------------

TEST_CASE("element names and sizes") {
  CHECK(elem_name(ElemType::I8) == "i8");
  CHECK(elem_name(ElemType::Bf16) == "bf16");
  CHECK(elem_name(ElemType::E4m3) == "e4m3");
  CHECK(elem_name(ElemType::E5m2) == "e5m2");
  CHECK(elem_name(ElemType::Bool) == "bool");
  CHECK(elem_bytes(ElemType::I64) == 8);
  CHECK(elem_bytes(ElemType::F16) == 2);
  CHECK(elem_bytes(ElemType::E5m2) == 1);
  CHECK(elem_bytes(ElemType::U32) == 4);
  Tensor t;
  CHECK(t.numel() == 1);  // scalar
  t.shape = {2, 0, 5};
  CHECK(t.numel() == 0);
  t.shape = {2, 3, 4};
  CHECK(t.numel() == 24);
  t.shape = {-1};
  CHECK_THROWS_AS(t.numel(), lpu::Error);
  t.shape = {std::int64_t{1} << 40, std::int64_t{1} << 40};
  CHECK_THROWS_AS(t.numel(), lpu::Error);
}

// ---------------------------------------------------------------------------------------------
// .npy: known-good bytes
// ---------------------------------------------------------------------------------------------

TEST_CASE("npy: (2, 3) float32 matches the format spec byte for byte") {
  // Magic, version 1.0, header length 118 (0x76), the dict, spaces, '\n'; data at offset 128.
  const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  const std::string header = dict + std::string(58, ' ') + "\n";
  REQUIRE(10 + header.size() == 128);
  const Bytes expected = cat({kMagicV1, Bytes{0x76, 0x00}, B(header), kF32_0to5});

  Tensor t;
  t.type = ElemType::F32;
  t.shape = {2, 3};
  t.data = kF32_0to5;
  CHECK(write_npy(t) == expected);

  const Tensor back = read_npy(expected, "spec.npy");
  CHECK(same(back, t));
}

TEST_CASE("npy: scalar and 1-d headers match the format spec") {
  // Shape (): no spare growth space, 62 spaces of padding.
  const std::string scalar =
      "{'descr': '<i4', 'fortran_order': False, 'shape': (), }" + std::string(62, ' ') + "\n";
  Tensor s;
  s.type = ElemType::I32;
  s.data = {0x2a, 0, 0, 0};
  CHECK(write_npy(s) == cat({kMagicV1, Bytes{0x76, 0}, B(scalar), s.data}));

  // Shape (3,) of uint8.
  const std::string vec =
      "{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }" + std::string(60, ' ') + "\n";
  Tensor v;
  v.type = ElemType::U8;
  v.shape = {3};
  v.data = {1, 2, 3};
  CHECK(write_npy(v) == cat({kMagicV1, Bytes{0x76, 0}, B(vec), v.data}));
}

TEST_CASE("npy: an already aligned header still gets 64 spaces, as NumPy's _wrap_header does") {
  // magic(8) + length(2) + dict(97) + growth spaces(20) + '\n' = 128 already: padlen is 64.
  const std::string dict =
      "{'descr': '<i2', 'fortran_order': False, 'shape': (0, 1000000, 100000, 100000, 100000, "
      "100000), }";
  REQUIRE(dict.size() == 97);
  const std::string header = dict + std::string(20 + 64, ' ') + "\n";
  Tensor t;
  t.type = ElemType::I16;
  t.shape = {0, 1000000, 100000, 100000, 100000, 100000};
  CHECK(write_npy(t) == cat({kMagicV1, Bytes{182, 0}, B(header)}));
}

TEST_CASE("npy: writer aligns data to 64 bytes and is deterministic") {
  for (std::vector<std::int64_t> shape : {std::vector<std::int64_t>{},
                                          {0},
                                          {1},
                                          {7},
                                          {12345678, 0},
                                          {2, 3},
                                          {1, 1, 1, 1, 1, 1, 1, 1},
                                          {1000000000000, 0},
                                          {3, 5, 7, 11, 13},
                                          {0, 9223372036854775807}}) {
    Tensor t;
    t.type = ElemType::I16;
    t.shape = shape;
    t.data.resize(static_cast<std::size_t>(t.numel() * 2));
    const Bytes a = write_npy(t), b = write_npy(t);
    CHECK(a == b);
    const std::size_t hlen = a[8] | (a[9] << 8);
    CHECK((10 + hlen) % 64 == 0);
    CHECK(a[9 + hlen] == '\n');
    CHECK(a.size() == 10 + hlen + t.data.size());
  }
}

// ---------------------------------------------------------------------------------------------
// .npy: round trips and accepted variants
// ---------------------------------------------------------------------------------------------

TEST_CASE("npy: round trip of every element type") {
  for (ElemType type : kAllTypes) {
    CAPTURE(elem_name(type));
    const Tensor t = make(type, {2, 3});
    const Tensor back = read_npy(write_npy(t), "rt.npy");
    // Types without a NumPy dtype come back as their raw bits.
    ElemType expected = type;
    if (type == ElemType::Bf16) expected = ElemType::U16;
    if (type == ElemType::E4m3 || type == ElemType::E5m2) expected = ElemType::U8;
    CHECK(back.type == expected);
    CHECK(back.shape == t.shape);
    CHECK(back.data == t.data);
  }
}

TEST_CASE("npy: scalar and zero-sized shapes round trip") {
  for (std::vector<std::int64_t> shape :
       {std::vector<std::int64_t>{}, {0}, {2, 0}, {0, 3, 4}, {1}, {1, 1, 1}}) {
    const Tensor t = make(ElemType::F32, shape);
    const Tensor back = read_npy(write_npy(t), "rt.npy");
    CHECK(same(back, t));
  }
  const Tensor scalar = read_npy(write_npy(make(ElemType::F64, {})), "s.npy");
  CHECK(scalar.shape.empty());
  CHECK(scalar.numel() == 1);
  CHECK(scalar.data.size() == 8);
}

TEST_CASE("npy: versions 2.0 and 3.0") {
  const std::string hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n";
  for (int major : {2, 3}) {
    const Tensor t = read_npy(npy_file(hdr, kF32_0to5, major), "v.npy");
    CHECK(t.type == ElemType::F32);
    CHECK(t.shape == std::vector<std::int64_t>{2, 3});
    CHECK(t.data == kF32_0to5);
  }
  // The 4-byte length really is read as 32 bits: 0x00010000 + 4 bytes of header would be huge.
  Bytes v2 = npy_file(hdr, kF32_0to5, 2);
  v2[10] = 1;  // header length byte 2 (bits 16..23)
  CHECK_NPY_REJECTS(v2, "header length is");
}

TEST_CASE("npy: big-endian input is converted to little-endian") {
  const Tensor f = read_npy(npy_file("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }\n",
                                     Bytes{0x3f, 0x80, 0, 0, 0x40, 0, 0, 0}),
                            "be.npy");
  CHECK(f.type == ElemType::F32);
  CHECK(f.data == Bytes{0, 0, 0x80, 0x3f, 0, 0, 0, 0x40});

  const Tensor i = read_npy(npy_file("{'descr': '>i2', 'fortran_order': False, 'shape': (3,), }\n",
                                     Bytes{0x01, 0x02, 0xff, 0xfe, 0x00, 0x07}),
                            "be.npy");
  CHECK(i.type == ElemType::I16);
  CHECK(i.data == Bytes{0x02, 0x01, 0xfe, 0xff, 0x07, 0x00});

  const Tensor d = read_npy(npy_file("{'descr': '>f8', 'fortran_order': False, 'shape': (), }\n",
                                     Bytes{0x3f, 0xf0, 0, 0, 0, 0, 0, 0}),
                            "be.npy");
  CHECK(d.type == ElemType::F64);
  CHECK(d.data == Bytes{0, 0, 0, 0, 0, 0, 0xf0, 0x3f});

  const Tensor u = read_npy(
      npy_file("{'descr': '>u4', 'fortran_order': False, 'shape': (1,), }\n", Bytes{1, 2, 3, 4}),
      "be.npy");
  CHECK(u.type == ElemType::U32);
  CHECK(u.data == Bytes{4, 3, 2, 1});

  // One-byte types have nothing to swap; '|' and '<' and '>' are all accepted.
  for (const char* descr : {"|i1", "<i1", ">i1"}) {
    const Tensor b = read_npy(
        npy_file(std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': (2,)}",
                 Bytes{0x80, 0x7f}),
        "b.npy");
    CHECK(b.type == ElemType::I8);
    CHECK(b.data == Bytes{0x80, 0x7f});
  }
}

TEST_CASE("npy: descr mapping on read") {
  struct Case {
    const char* descr;
    ElemType type;
  };
  for (auto [descr, type] :
       {Case{"|b1", ElemType::Bool}, Case{"|i1", ElemType::I8}, Case{"|u1", ElemType::U8},
        Case{"<i2", ElemType::I16}, Case{"<i4", ElemType::I32}, Case{"<i8", ElemType::I64},
        Case{"<u2", ElemType::U16}, Case{"<u4", ElemType::U32}, Case{"<f2", ElemType::F16},
        Case{"<f4", ElemType::F32}, Case{"<f8", ElemType::F64}}) {
    CAPTURE(descr);
    const Bytes data(static_cast<std::size_t>(elem_bytes(type)), 0x5a);
    const Tensor t = read_npy(
        npy_file(std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': (1,), }",
                 data),
        "m.npy");
    CHECK(t.type == type);
    CHECK(t.data == data);
  }
}

TEST_CASE("npy: header syntax variants that NumPy accepts") {
  const Bytes six(24, 0);
  const char* headers[] = {
      // any key order, no trailing comma
      "{'shape': (2, 3), 'fortran_order': False, 'descr': '<f4'}",
      // double quotes, odd whitespace, newlines and tabs
      "  {\"descr\"  :\t\"<f4\" ,\n 'fortran_order':False,'shape':(2,3)  ,  }  \n",
      // trailing comma inside the tuple
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3,), }",
      // Python 2 long suffix
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }\n",
      // 1-d written as (6, ) and with spaces inside the parentheses
      "{'descr': '<f4', 'fortran_order': False, 'shape': ( 6 , ), }",
  };
  for (const char* h : headers) {
    CAPTURE(h);
    const Tensor t = read_npy(npy_file(h, six), "var.npy");
    CHECK(t.type == ElemType::F32);
    CHECK(t.numel() == 6);
  }
  // Data need not be 64-byte aligned in files from other writers.
  const Tensor t =
      read_npy(npy_file("{'descr':'<f4','fortran_order':False,'shape':(6,)}", six), "u.npy");
  CHECK(t.shape == std::vector<std::int64_t>{6});
}

// ---------------------------------------------------------------------------------------------
// .npy: rejection
// ---------------------------------------------------------------------------------------------

TEST_CASE("npy: every truncation of a valid file is rejected") {
  for (const Tensor& t :
       {make(ElemType::F32, {2, 3}), make(ElemType::I8, {}), make(ElemType::U16, {0})}) {
    const Bytes full = write_npy(t);
    for (std::size_t n = 0; n < full.size(); ++n) {
      CAPTURE(n);
      const Bytes prefix(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
      const std::string msg = npy_error(prefix);
      CAPTURE(msg);
      CHECK(starts_with(msg, "x.npy: "));
      CHECK(
          (contains(msg, "truncated") || contains(msg, "empty file") || contains(msg, "but only")));
    }
  }
  // The exact wording for a short data section.
  Bytes full = write_npy(make(ElemType::F32, {2, 3}));
  full.resize(full.size() - 12);
  CHECK(npy_error(full) ==
        "x.npy: header says 6 elements of f32 (24 bytes) but only 12 bytes follow");
}

TEST_CASE("npy: bad magic and bad version") {
  const Bytes good = write_npy(make(ElemType::F32, {2}));
  Bytes bad = good;
  bad[0] = 0x92;
  CHECK_NPY_REJECTS(bad, "not a .npy file: bad magic");
  CHECK_NPY_REJECTS(B("PK\x03\x04 this is a zip"), "not a .npy file");
  CHECK_NPY_REJECTS(B("\x93NUMPZ"), "not a .npy file");
  for (auto [major, minor] : {std::pair{0, 0}, {1, 1}, {4, 0}, {2, 5}, {255, 255}}) {
    Bytes v = good;
    v[6] = static_cast<std::uint8_t>(major);
    v[7] = static_cast<std::uint8_t>(minor);
    CHECK_NPY_REJECTS(v, "unsupported .npy format version " + std::to_string(major) + "." +
                             std::to_string(minor));
  }
}

TEST_CASE("npy: Fortran order is refused") {
  CHECK_NPY_REJECTS(
      npy_file("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", kF32_0to5),
      "Fortran-order arrays are not supported");
}

TEST_CASE("npy: unknown or unsupported descr") {
  const Bytes d8(8, 0);
  for (const char* descr : {"<c8", "<u8", "|O", "<U2", "|S8", "<M8", "<f16", "f4", "=f4", "|f4",
                            "<V2", "float32", "", "<x4"}) {
    CAPTURE(descr);
    CHECK_NPY_REJECTS(
        npy_file(std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': (1,), }",
                 d8),
        "unsupported descr");
  }
  CHECK_NPY_REJECTS(
      npy_file("{'descr': '<V2', 'fortran_order': False, 'shape': (1,), }", Bytes(2, 0)),
      "ml_dtypes");
  CHECK_NPY_REJECTS(
      npy_file("{'descr': [('x', '<f4')], 'fortran_order': False, 'shape': (1,), }", Bytes(4, 0)),
      "structured dtypes");
}

TEST_CASE("npy: shape and data size must agree") {
  const std::string h = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  CHECK(npy_error(npy_file(h, Bytes(20, 0))) ==
        "x.npy: header says 6 elements of f32 (24 bytes) but only 20 bytes follow");
  CHECK(npy_error(npy_file(h, Bytes(28, 0))) ==
        "x.npy: header says 6 elements of f32 (24 bytes) but 28 bytes follow");
  CHECK_NPY_REJECTS(
      npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (1000,), }", Bytes(12, 0)),
      "header says 1000 elements of f32 (4000 bytes) but only 12 bytes follow");
  // Huge shapes must fail on the size check, never by allocating.
  CHECK_NPY_REJECTS(npy_file("{'descr': '<f8', 'fortran_order': False, 'shape': "
                             "(1000000000, 1000000000), }",
                             Bytes(8, 0)),
                    "but only 8 bytes follow");
  CHECK_NPY_REJECTS(npy_file("{'descr': '<f8', 'fortran_order': False, 'shape': "
                             "(4294967296, 4294967296), }",
                             Bytes(8, 0)),
                    "overflows 64 bits");
  CHECK_NPY_REJECTS(npy_file("{'descr': '<f8', 'fortran_order': False, 'shape': "
                             "(9223372036854775807,), }",
                             Bytes(8, 0)),
                    "overflows 64 bits");
  CHECK_NPY_REJECTS(npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': "
                             "(99999999999999999999,), }",
                             Bytes(4, 0)),
                    "does not fit in 64 bits");
}

TEST_CASE("npy: garbage headers are rejected with a clear message") {
  struct Case {
    const char* header;
    const char* needle;
  };
  const Case cases[] = {
      {"", "expected the header must be a dict"},
      {"   \n", "expected the header must be a dict"},
      {"{", "expected a quoted key"},
      {"[]", "must be a dict"},
      {"{}", "missing key 'descr'"},
      {"{'descr': '<f4'}", "missing key 'fortran_order'"},
      {"{'descr': '<f4', 'fortran_order': False}", "missing key 'shape'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}",
       "unexpected key 'extra'"},
      {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}",
       "duplicate key 'descr'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2)}", "is not a tuple"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': [2]}", "must be a tuple, not a list"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': 2}", "expected the shape tuple"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (-2,)}", "negative dimension"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2.0,)}", "non-negative integer"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (0x2,)}", "non-negative integer"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,,)}", "non-negative integer"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3}", "expected ',' or ')'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,", "non-negative integer"},
      {"{'descr': '<f4', 'fortran_order': 0, 'shape': (2,)}", "must be True or False"},
      {"{'descr': '<f4', 'fortran_order': Falsey, 'shape': (2,)}", "must be True or False"},
      {"{'descr': <f4, 'fortran_order': False, 'shape': (2,)}", "expected the descr string"},
      {"{'descr': '<f4, 'fortran_order': False, 'shape': (2,)}",
       "expected ',' or '}' after a value"},
      {"{'descr' '<f4', 'fortran_order': False, 'shape': (2,)}", "expected ':' after key 'descr'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,)", "expected ',' or '}'"},
      {"{'descr': '<f4' 'fortran_order': False, 'shape': (2,)}", "expected ',' or '}'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} x", "unexpected text after"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,)}}", "unexpected text after"},
      {"{'descr\\x': '<f4'}", "escape sequences"},
      {"{'descr': '<f4", "unterminated string"},
      {"{descr: '<f4'}", "expected a quoted key"},
      {"{'descr': '\xc3\xa9', 'fortran_order': False, 'shape': (2,)}", "unexpected byte 0xc3"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.header);
    const std::string msg = npy_error(npy_file(c.header, Bytes(8, 0)));
    CAPTURE(msg);
    CHECK(starts_with(msg, "x.npy: "));
    CHECK(contains(msg, c.needle));
  }
}

TEST_CASE("npy: binary junk in the header") {
  CHECK_NPY_REJECTS(npy_file(std::string_view("\x00\x01\x02\x03", 4), Bytes(8, 0)),
                    "header must be a dict starting with '{' at header offset 0 (header: "
                    "\"\\x00\\x01\\x02\\x03\")");
}

TEST_CASE("npy: header length beyond the file") {
  Bytes b = write_npy(make(ElemType::F32, {2}));
  b[8] = 0xff;
  b[9] = 0xff;
  CHECK_NPY_REJECTS(b, "header length is 65535 but only");
}

TEST_CASE("npy: random corruption never crashes and only throws FormatError") {
  const Bytes good = write_npy(make(ElemType::I32, {3, 2}));
  std::mt19937 rng(1234);
  int accepted = 0;
  for (int iter = 0; iter < 5000; ++iter) {
    Bytes b = good;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      std::size_t pos = rng() % b.size();
      b[pos] = static_cast<std::uint8_t>(rng());
    }
    if (rng() % 4 == 0) b.resize(rng() % (b.size() + 1));
    try {
      (void)read_npy(b, "fuzz.npy");
      ++accepted;
    } catch (const lpu::FormatError& e) {
      CHECK(starts_with(e.what(), "fuzz.npy: "));
    }
  }
  CHECK(accepted > 0);  // flips inside the data are still valid files
}

// ---------------------------------------------------------------------------------------------
// .safetensors: known-good bytes
// ---------------------------------------------------------------------------------------------

TEST_CASE("safetensors: matches the reference implementation byte for byte") {
  {
    // One F32 tensor; a 64-byte header needs no padding.
    Tensor t;
    t.type = ElemType::F32;
    t.shape = {1, 2, 3};
    t.data = kF32_0to5;
    const Bytes expected =
        cat({le(64, 8), B(R"({"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}})"),
             kF32_0to5});
    CHECK(write_safetensors({{"attn.0", t}}) == expected);
    const auto back = read_safetensors(expected, "ref.safetensors");
    REQUIRE(back.size() == 1);
    CHECK(same(back.at("attn.0"), t));
  }
  {
    // A 65-byte header is padded with 7 spaces.
    Tensor t;
    t.type = ElemType::F32;
    t.shape = {1, 1, 2, 3};
    t.data = kF32_0to5;
    const Bytes expected =
        cat({le(72, 8), B(R"({"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}})"),
             B("       "), kF32_0to5});
    CHECK(write_safetensors({{"attn0", t}}) == expected);
  }
  // No tensors at all.
  CHECK(write_safetensors({}) == cat({le(8, 8), B("{}      ")}));
  CHECK(read_safetensors(cat({le(8, 8), B("{}      ")}), "e.safetensors").empty());
  // Metadata only.
  const Bytes meta = cat({le(40, 8), B(R"({"__metadata__":{"framework":"pt"}})"), B("     ")});
  CHECK(write_safetensors({}, {{"framework", "pt"}}) == meta);
  CHECK(read_safetensors(meta, "m.safetensors").empty());
}

TEST_CASE("safetensors: tensors are laid out by descending dtype, then by name") {
  Tensor a;  // U8 [3]
  a.type = ElemType::U8;
  a.shape = {3};
  a.data = {1, 2, 3};
  Tensor b;  // F64 scalar 1.0
  b.type = ElemType::F64;
  b.data = {0, 0, 0, 0, 0, 0, 0xf0, 0x3f};
  Tensor c;  // F32 [2]
  c.type = ElemType::F32;
  c.shape = {2};
  c.data = {0, 0, 0x80, 0x3f, 0, 0, 0, 0x40};
  const std::string header = R"({"b":{"dtype":"F64","shape":[],"data_offsets":[0,8]},)"
                             R"("c":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},)"
                             R"("a":{"dtype":"U8","shape":[3],"data_offsets":[16,19]}})";
  REQUIRE(header.size() == 161);
  const Bytes expected = cat({le(168, 8), B(header), B("       "), b.data, c.data, a.data});
  const std::map<std::string, Tensor> in = {{"a", a}, {"b", b}, {"c", c}};
  CHECK(write_safetensors(in) == expected);
  CHECK(write_safetensors(in) == write_safetensors(in));
  const auto back = read_safetensors(expected, "o.safetensors");
  REQUIRE(back.size() == 3);
  CHECK(same(back.at("a"), a));
  CHECK(same(back.at("b"), b));
  CHECK(same(back.at("c"), c));
}

TEST_CASE("safetensors: names and metadata are escaped as JSON") {
  Tensor t;
  t.type = ElemType::I8;
  t.shape = {1};
  t.data = {7};
  const Bytes out = write_safetensors({{"a\"b\\c\n\xc3\xa9", t}}, {{"k\t", "v\x01"}});
  const std::string text(out.begin() + 8, out.end() - 1);
  CHECK(contains(text, R"({"__metadata__":{"k\t":"v\u0001"},"a\"b\\c\n)"
                       "\xc3\xa9"
                       R"(":{)"));
  const auto back = read_safetensors(out, "esc.safetensors");
  CHECK(back.count("a\"b\\c\n\xc3\xa9") == 1);
  // Invalid UTF-8 cannot be written.
  CHECK_THROWS_AS(write_safetensors({{"bad\xff", t}}), lpu::Error);
  CHECK_THROWS_AS(write_safetensors({{"ok", t}}, {{"k", "\xfe"}}), lpu::Error);
}

// ---------------------------------------------------------------------------------------------
// .safetensors: round trips
// ---------------------------------------------------------------------------------------------

TEST_CASE("safetensors: round trip of every element type with metadata") {
  std::map<std::string, Tensor> in;
  std::uint8_t seed = 1;
  for (ElemType type : kAllTypes)
    in["t_" + std::string(elem_name(type))] = make(type, {2, 3}, seed++);
  in["scalar"] = make(ElemType::F32, {});
  in["empty"] = make(ElemType::I64, {0, 4});
  in["empty2"] = make(ElemType::U8, {3, 0});
  const std::map<std::string, std::string> meta = {{"format", "pt"}, {"author", "lpu test"}};
  const Bytes bytes = write_safetensors(in, meta);
  // The header starts with the metadata, keys sorted.
  const std::string head(bytes.begin() + 8, bytes.begin() + 8 + 80);
  CHECK(starts_with(head, R"({"__metadata__":{"author":"lpu test","format":"pt"},)"));
  const std::uint64_t n = bytes[0] | (bytes[1] << 8) | (bytes[2] << 16);
  CHECK(n % 8 == 0);
  const auto out = read_safetensors(bytes, "rt.safetensors");
  REQUIRE(out.size() == in.size());
  for (const auto& [name, t] : in) {
    CAPTURE(name);
    REQUIRE(out.count(name) == 1);
    CHECK(same(out.at(name), t));
  }
  CHECK(out.at("t_bf16").type == ElemType::Bf16);
  CHECK(out.at("t_e4m3").type == ElemType::E4m3);
  CHECK(out.at("t_e5m2").type == ElemType::E5m2);
}

TEST_CASE("safetensors: data of every tensor is naturally aligned in the file") {
  std::map<std::string, Tensor> in;
  std::uint8_t seed = 3;
  for (ElemType type : kAllTypes) {
    Tensor t = make(type, {3});
    std::fill(t.data.begin(), t.data.end(), seed++);  // a run found nowhere else
    in[std::string(elem_name(type))] = t;
  }
  const Bytes bytes = write_safetensors(in);
  // Each tensor's bytes appear at a file offset that is a multiple of its element size.
  const std::uint64_t n = bytes[0] | (bytes[1] << 8);
  for (const auto& [name, t] : in) {
    CAPTURE(name);
    auto it = std::search(bytes.begin() + 8 + static_cast<std::ptrdiff_t>(n), bytes.end(),
                          t.data.begin(), t.data.end());
    REQUIRE(it != bytes.end());
    CHECK((it - bytes.begin()) % elem_bytes(t.type) == 0);
  }
}

TEST_CASE("writers reject inconsistent tensors") {
  Tensor t;
  t.type = ElemType::F32;
  t.shape = {2, 3};
  t.data.resize(20);
  CHECK_THROWS_AS(write_npy(t), lpu::Error);
  CHECK_THROWS_AS(write_safetensors({{"t", t}}), lpu::Error);
  try {
    write_npy(t);
  } catch (const lpu::Error& e) {
    CHECK(std::string(e.what()) ==
          "write_npy: shape (2, 3) of f32 needs 24 bytes of data but the tensor holds 20");
  }
  t.shape = {-1};
  t.data.clear();
  CHECK_THROWS_AS(write_npy(t), lpu::Error);
  Tensor ok;
  ok.data.resize(4);
  CHECK_THROWS_AS(write_safetensors({{"__metadata__", ok}}), lpu::Error);
}

// ---------------------------------------------------------------------------------------------
// .safetensors: rejection
// ---------------------------------------------------------------------------------------------

TEST_CASE("safetensors: every truncation of a valid file is rejected") {
  Tensor a = make(ElemType::F32, {2, 2});
  Tensor b = make(ElemType::I8, {3});
  const Bytes full = write_safetensors({{"a", a}, {"b", b}}, {{"k", "v"}});
  for (std::size_t n = 0; n < full.size(); ++n) {
    CAPTURE(n);
    const Bytes prefix(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    const std::string msg = st_error(prefix);
    CAPTURE(msg);
    CHECK(starts_with(msg, "w.safetensors: "));
    CHECK((contains(msg, "truncated") || contains(msg, "extend past the end")));
  }
}

TEST_CASE("safetensors: header length beyond the file or over the limit") {
  const std::string h = R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})";
  Bytes f = st_file(h, Bytes{1, 2});
  f[0] = static_cast<std::uint8_t>(h.size() + 3);
  CHECK_ST_REJECTS(f, "header length is " + std::to_string(h.size() + 3) + " but only " +
                          std::to_string(h.size() + 2) + " bytes follow");
  Bytes huge = f;
  for (int i = 0; i < 8; ++i) huge[static_cast<std::size_t>(i)] = 0xff;
  CHECK_ST_REJECTS(huge, "exceeds the 100000000-byte limit");
}

TEST_CASE("safetensors: bad JSON and wrong header structure") {
  struct Case {
    const char* header;
    const char* needle;
  };
  const Case cases[] = {
      {"", "not valid JSON"},
      {"{", "not valid JSON"},
      {"{\"a\":}", "not valid JSON"},
      {"{} trailing", "not valid JSON"},
      {"{'a': 1}", "not valid JSON"},
      {"{\"a\":\"\xff\"}", "not valid JSON"},
      {"[]", "header must be a JSON object, not array"},
      {"42", "header must be a JSON object, not number"},
      {R"({"a":[1,2]})", "tensor 'a': entry must be an object, not array"},
      {R"({"__metadata__":[]})", "__metadata__ must be an object of strings"},
      {R"({"__metadata__":{"k":1}})", "__metadata__ value 'k' must be a string"},
      {R"({"a":{"shape":[],"data_offsets":[0,1]}})", "tensor 'a': missing field 'dtype'"},
      {R"({"a":{"dtype":"U8","data_offsets":[0,1]}})", "tensor 'a': missing field 'shape'"},
      {R"({"a":{"dtype":"U8","shape":[]}})", "tensor 'a': missing field 'data_offsets'"},
      {R"({"a":{"dtype":"U8","shape":[],"data_offsets":[0,1],"x":1}})", "unknown field 'x'"},
      {R"({"a":{"dtype":8,"shape":[],"data_offsets":[0,1]}})", "dtype must be a string"},
      {R"({"a":{"dtype":"U8","shape":1,"data_offsets":[0,1]}})", "shape must be an array"},
      {R"({"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}})",
       "shape entries must be non-negative integers, found a negative integer"},
      {R"({"a":{"dtype":"U8","shape":[1.0],"data_offsets":[0,1]}})",
       "shape entries must be non-negative integers, found a non-integer number"},
      {R"({"a":{"dtype":"U8","shape":["1"],"data_offsets":[0,1]}})",
       "shape entries must be non-negative integers, found string"},
      {R"({"a":{"dtype":"U8","shape":[18446744073709551615],"data_offsets":[0,1]}})",
       "does not fit in 64 bits"},
      {R"({"a":{"dtype":"U8","shape":[99999999999999999999999],"data_offsets":[0,1]}})",
       "found a non-integer number"},
      {R"({"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,1]}})",
       "overflows 64 bits"},
      {R"({"a":{"dtype":"U8","shape":[],"data_offsets":[0]}})", "array of two integers"},
      {R"({"a":{"dtype":"U8","shape":[],"data_offsets":[0,1,2]}})", "array of two integers"},
      {R"({"a":{"dtype":"U8","shape":[],"data_offsets":{"b":0}}})", "array of two integers"},
      {R"({"a":{"dtype":"U8","shape":[],"data_offsets":[-1,0]}})", "non-negative integers"},
      {R"({"a":{"dtype":"U8","shape":[],"data_offsets":[1,0]}})", "end before they begin"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.header);
    CHECK_ST_REJECTS(st_file(c.header, Bytes{9}), c.needle);
  }
}

TEST_CASE("safetensors: pathological nesting is refused") {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  CHECK_ST_REJECTS(st_file(deep, Bytes{}), "header nests deeper than 64 levels");
  std::string objs;
  for (int i = 0; i < 1000; ++i) objs += "{\"a\":";
  objs += "1" + std::string(1000, '}');
  CHECK_ST_REJECTS(st_file(objs, Bytes{}), "header nests deeper than 64 levels");
}

TEST_CASE("safetensors: unknown dtype") {
  for (const char* dt : {"U64", "F8_E8M0", "C64", "f32", "", "F4"}) {
    CAPTURE(dt);
    CHECK_ST_REJECTS(
        st_file(std::string(R"({"a":{"dtype":")") + dt + R"(","shape":[1],"data_offsets":[0,8]}})",
                Bytes(8, 0)),
        std::string("tensor 'a': unsupported dtype '") + dt + "'");
  }
}

TEST_CASE("safetensors: duplicate keys") {
  CHECK_ST_REJECTS(st_file(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                           R"("a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
                           Bytes{1, 2}),
                   "duplicate key 'a'");
  CHECK_ST_REJECTS(
      st_file(R"({"a":{"dtype":"U8","dtype":"I8","shape":[1],"data_offsets":[0,1]}})", Bytes{1}),
      "duplicate key 'dtype'");
  CHECK_ST_REJECTS(st_file(R"({"__metadata__":{"k":"1","k":"2"}})", Bytes{}), "duplicate key 'k'");
  CHECK_ST_REJECTS(st_file(R"({"__metadata__":{},"__metadata__":{}})", Bytes{}),
                   "duplicate key '__metadata__'");
}

TEST_CASE("safetensors: offsets out of bounds, overlapping, or leaving gaps") {
  CHECK(
      st_error(st_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", Bytes(4, 0))) ==
      "w.safetensors: tensor 'a': data_offsets [0, 8] extend past the end of the 4-byte data "
      "section");
  CHECK_ST_REJECTS(st_file(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[18446744073709551615,)"
                           R"(18446744073709551615]}})",
                           Bytes(1, 0)),
                   "extend past the end");
  CHECK(st_error(st_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                         R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                         Bytes(12, 0))) ==
        "w.safetensors: tensors 'a' [0, 8] and 'b' [4, 12] overlap");
  // Same range twice.
  CHECK_ST_REJECTS(st_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                           R"("b":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}})",
                           Bytes(8, 0)),
                   "overlap");
  // An empty tensor inside another one.
  CHECK_ST_REJECTS(st_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                           R"("z":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}})",
                           Bytes(8, 0)),
                   "overlap");
  // An empty tensor at the boundary is fine.
  CHECK(read_safetensors(st_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                 R"("z":{"dtype":"F32","shape":[0],"data_offsets":[8,8]}})",
                                 Bytes(8, 0)),
                         "ok.safetensors")
            .size() == 2);
  CHECK_ST_REJECTS(st_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                           R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                           Bytes(12, 0)),
                   "tensor 'b' starts at data offset 8 but the previous tensor ends at 4");
  CHECK_ST_REJECTS(
      st_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", Bytes(8, 0)),
      "tensor 'a' starts at data offset 4 but the previous tensor ends at 0");
  CHECK(
      st_error(st_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", Bytes(6, 0))) ==
      "w.safetensors: 2 bytes after the last tensor (data section is 6 bytes, tensors cover 4)");
  CHECK_ST_REJECTS(st_file("{}", Bytes(1, 0)), "1 bytes after the last tensor");
}

TEST_CASE("safetensors: size must match shape x dtype") {
  CHECK(st_error(st_file(R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}})",
                         Bytes(20, 0))) ==
        "w.safetensors: tensor 'a': data_offsets [0, 20] span 20 bytes but shape [2, 3] of F32 "
        "needs 24");
  CHECK_ST_REJECTS(
      st_file(R"({"a":{"dtype":"BF16","shape":[],"data_offsets":[0,4]}})", Bytes(4, 0)),
      "span 4 bytes but shape [] of BF16 needs 2");
}

TEST_CASE("safetensors: random corruption never crashes and only throws FormatError") {
  const Bytes good = write_safetensors(
      {{"w", make(ElemType::F16, {2, 2})}, {"b", make(ElemType::I8, {3})}}, {{"k", "v"}});
  std::mt19937 rng(99);
  for (int iter = 0; iter < 5000; ++iter) {
    Bytes b = good;
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits; ++e) b[rng() % b.size()] = static_cast<std::uint8_t>(rng());
    if (rng() % 4 == 0) b.resize(rng() % (b.size() + 1));
    try {
      (void)read_safetensors(b, "fuzz.safetensors");
    } catch (const lpu::FormatError& e) {
      CHECK(starts_with(e.what(), "fuzz.safetensors: "));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------

TEST_CASE("files: save, load, and I/O errors") {
  const auto dir = temp_dir();
  const Tensor t = make(ElemType::I32, {4, 2});
  const std::string npy = (dir / "t.npy").string();
  save_npy(t, npy);
  CHECK(read_file_bytes(npy) == write_npy(t));
  CHECK(same(load_npy(npy), t));

  const std::string st = (dir / "t.safetensors").string();
  save_safetensors({{"x", t}}, st, {{"a", "b"}});
  CHECK(read_file_bytes(st) == write_safetensors({{"x", t}}, {{"a", "b"}}));
  const auto m = load_safetensors(st);
  REQUIRE(m.count("x") == 1);
  CHECK(same(m.at("x"), t));

  // A malformed file names its path.
  const std::string bad = (dir / "bad.npy").string();
  save_safetensors({{"x", t}}, bad);
  const std::string msg = format_error([&] { load_npy(bad); });
  CHECK(starts_with(msg, bad + ": not a .npy file"));

  // Missing files and unwritable paths are lpu::Error, not FormatError, and name the path.
  const std::string missing = (dir / "missing.npy").string();
  bool format = false;
  std::string what;
  try {
    load_npy(missing);
  } catch (const lpu::FormatError&) {
    format = true;
  } catch (const lpu::Error& e) {
    what = e.what();
  }
  CHECK_FALSE(format);
  CHECK(starts_with(what, missing + ": cannot open for reading"));
  CHECK_THROWS_AS(read_file_bytes(dir.string()), lpu::Error);  // a directory
  CHECK_THROWS_AS(save_npy(t, (dir / "no" / "such" / "dir.npy").string()), lpu::Error);
  CHECK_THROWS_AS(load_safetensors(missing), lpu::Error);

  // Empty file.
  const std::string empty = (dir / "empty.npy").string();
  {
    std::FILE* f = std::fopen(empty.c_str(), "wb");
    REQUIRE(f);
    std::fclose(f);
  }
  CHECK(format_error([&] { load_npy(empty); }) ==
        empty + ": empty file (0 bytes), not a .npy file");

  std::filesystem::remove_all(dir);
}
