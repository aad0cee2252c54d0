// Weights from .npy and .safetensors into a program's symbols: dtype and shape checked, bad
// files rejected with messages naming the file, tensor, symbol and what was expected.
#include <unistd.h>

#include "helpers.hpp"
#include "lpu/runtime/engine.hpp"

using namespace lpu;
using namespace lpu::test;

namespace {

std::unique_ptr<rt::Device> mini_with_program() {
  rt::DeviceSpec s;
  s.preset = "mini";
  auto d = rt::open_local(s);
  d->load_program(stream_program());
  return d;
}

// A program with symbols of several dtypes (no instructions needed to load weights).
obj::Program typed_program() {
  const char* src = R"(.preset mini
.symbol W i8[4, 32] mem.e.0..1 @ 0
.symbol h f16[16] mem.e.2 @ 0
.symbol g bf16[16] mem.e.2 @ 1
.symbol q e4m3[32] mem.e.3 @ 0
.symbol s f32[8] mem.e.3 @ 1
)";
  return assembler::assemble_string(src, "typed.lpa", load_preset("mini")).program;
}

}  // namespace

TEST_CASE("weights: .npy and .safetensors go into the symbols and read back") {
  TempDir dir;
  auto d = mini_with_program();
  auto w = random_weights(7);
  io::save_npy(i8_tensor({32}, w.w), dir / "w.npy");
  io::save_safetensors({{"b", i8_tensor({32}, w.b)}}, dir / "model.safetensors");
  CHECK(rt::load_weights(*d, dir / "w.npy") == std::vector<std::string>{"w"});
  CHECK(rt::load_weights(*d, dir / "model.safetensors") == std::vector<std::string>{"b"});
  auto rw = d->read_symbol(0, "w");
  CHECK(rw.type == io::ElemType::I8);
  CHECK(rw.shape == std::vector<std::int64_t>{32});
  CHECK(rw.data == w.w);
  CHECK(d->read_symbol(0, "b").data == w.b);

  // Renaming and selecting tensors of a .safetensors file; a .npy into a named symbol.
  io::save_safetensors({{"layer0.scale", i8_tensor({32}, w.b)}, {"other", i8_tensor({3}, {1, 2, 3})}}, dir / "r.safetensors");
  rt::WeightsFile wf;
  wf.path = dir / "r.safetensors";
  wf.rename = {{"layer0.scale", "w"}};
  wf.only = {"layer0.scale"};
  CHECK(rt::load_weights(*d, wf) == std::vector<std::string>{"w"});
  CHECK(d->read_symbol(0, "w").data == w.b);
  CHECK(rt::load_weights(*d, dir / "w.npy", 0, "b") == std::vector<std::string>{"b"});
  CHECK(d->read_symbol(0, "b").data == w.w);
}

TEST_CASE("weights: every ISA dtype, with fp8 as u8 and bf16 as u16 bit patterns") {
  rt::DeviceSpec s;
  s.preset = "mini";
  auto d = rt::open_local(s);
  d->load_program(typed_program());
  io::Tensor h{io::ElemType::F16, {16}, std::vector<std::uint8_t>(32, 0x3c)};
  io::Tensor g{io::ElemType::U16, {16}, std::vector<std::uint8_t>(32, 0x40)};
  io::Tensor q{io::ElemType::U8, {32}, std::vector<std::uint8_t>(32, 0x38)};
  io::Tensor q2{io::ElemType::E4m3, {32}, std::vector<std::uint8_t>(32, 0x30)};
  io::Tensor f{io::ElemType::F32, {8}, std::vector<std::uint8_t>(32, 0)};
  std::vector<std::uint8_t> wd(128);
  for (std::size_t i = 0; i < wd.size(); ++i) wd[i] = std::uint8_t(i);
  d->load_tensor({0, "W", "W.npy"}, i8_tensor({4, 32}, wd));
  d->load_tensor({0, "h", "h.npy"}, h);
  d->load_tensor({0, "g", "g.npy"}, g);
  d->load_tensor({0, "q", "q.npy"}, q);
  d->load_tensor({0, "q", "q2.safetensors: tensor 'q'"}, q2);
  d->load_tensor({0, "s", "s.npy"}, f);
  CHECK(d->read_symbol(0, "W").data == wd);  // spread over two slices and back
  CHECK(d->read_symbol(0, "W").shape == std::vector<std::int64_t>{4, 32});
  CHECK(d->read_symbol(0, "h").data == h.data);
  CHECK(d->read_symbol(0, "g").type == io::ElemType::Bf16);
  CHECK(d->read_symbol(0, "q").data == q2.data);
  // Conversion on request (lpu run --input semantics): f32 values into an f16 symbol.
  io::Tensor ones{io::ElemType::F32, {16}, {}};
  for (int i = 0; i < 16; ++i) ones.data.insert(ones.data.end(), {0, 0, 0x80, 0x3f});
  d->load_tensor({0, "h", "ones.npy", true}, ones);
  auto back = d->read_symbol(0, "h").data;
  CHECK(back[0] == 0x00);
  CHECK(back[1] == 0x3c);  // f16 1.0
}

TEST_CASE("weights: dtype and shape mismatches name file, tensor, symbol, expected and got") {
  TempDir dir;
  auto d = mini_with_program();
  io::Tensor f32{io::ElemType::F32, {32}, std::vector<std::uint8_t>(128, 0)};
  io::save_npy(f32, dir / "w.npy");
  auto e = error_of([&] { rt::load_weights(*d, dir / "w.npy"); });
  CHECK(contains(e, dir / "w.npy"));
  CHECK(contains(e, "symbol 'w' on chip 0"));
  CHECK(contains(e, "declared i8[32]"));
  CHECK(contains(e, "expected dtype i8, got f32"));
  CHECK_FALSE(contains(e, "shape"));

  io::save_safetensors({{"b", i8_tensor({4, 8}, std::vector<std::uint8_t>(32, 1))}}, dir / "m.safetensors");
  e = error_of([&] { rt::load_weights(*d, dir / "m.safetensors"); });
  CHECK(contains(e, dir / "m.safetensors: tensor 'b'"));
  CHECK(contains(e, "expected shape [32], got [4, 8]"));
  CHECK_FALSE(contains(e, "dtype"));

  io::save_npy(io::Tensor{io::ElemType::I16, {2, 2}, std::vector<std::uint8_t>(8, 0)}, dir / "both.npy");
  e = error_of([&] { rt::load_weights(*d, dir / "both.npy", 0, "w"); });
  CHECK(contains(e, "expected dtype i8, got i16; expected shape [32], got [2, 2]"));

  // The failed loads changed nothing.
  CHECK(d->read_symbol(0, "w").data == std::vector<std::uint8_t>(32, 0));

  // Conversion mode checks the element count.
  e = error_of([&] { d->load_tensor({0, "w", "x.npy", true}, i8_tensor({4}, {1, 2, 3, 4})); });
  CHECK(contains(e, "x.npy: 4 elements, symbol 'w' on chip 0 is i8[32] (32 elements)"));
}

TEST_CASE("weights: unknown symbols, tensors, chips and missing programs") {
  TempDir dir;
  auto d = mini_with_program();
  io::save_npy(i8_tensor({32}, std::vector<std::uint8_t>(32, 0)), dir / "nosuch.npy");
  auto e = error_of([&] { rt::load_weights(*d, dir / "nosuch.npy"); });
  CHECK(contains(e, dir / "nosuch.npy: no symbol 'nosuch' in the program on chip 0 (symbols: w, b)"));
  io::save_safetensors({{"w", i8_tensor({32}, std::vector<std::uint8_t>(32, 0))}}, dir / "m.safetensors");
  rt::WeightsFile only;
  only.path = dir / "m.safetensors";
  only.only = {"W"};
  e = error_of([&] { rt::load_weights(*d, only); });
  CHECK(contains(e, "m.safetensors: no tensor 'W' (asked for; the file has: w)"));
  e = error_of([&] { rt::load_weights(*d, dir / "m.safetensors", 3); });
  CHECK(contains(e, "chip 3 out of range: the device has 1 chip"));
  e = error_of([&] { rt::load_weights(*d, dir / "weights.bin"); });
  CHECK(contains(e, "unknown weights file type '.bin'"));

  rt::DeviceSpec s;
  s.preset = "mini";
  auto empty = rt::open_local(s);
  e = error_of([&] { rt::load_weights(*empty, dir / "nosuch.npy"); });
  CHECK(contains(e, "chip 0 has no program: load one first"));
}

TEST_CASE("weights: truncated files and wrong headers are rejected with clear messages") {
  TempDir dir;
  auto d = mini_with_program();
  auto good_npy = io::write_npy(i8_tensor({32}, std::vector<std::uint8_t>(32, 5)));
  auto good_st = io::write_safetensors({{"w", i8_tensor({32}, std::vector<std::uint8_t>(32, 5))}});

  // Truncated .npy: the last data byte missing, and half the header.
  write_bytes(dir / "t1.npy", {good_npy.begin(), good_npy.end() - 1});
  auto e = error_of([&] { rt::load_weights(*d, dir / "t1.npy", 0, "w"); });
  CHECK(contains(e, dir / "t1.npy"));
  CHECK(contains(e, "31 bytes"));
  write_bytes(dir / "t2.npy", {good_npy.begin(), good_npy.begin() + 30});
  e = error_of([&] { rt::load_weights(*d, dir / "t2.npy", 0, "w"); });
  CHECK(contains(e, dir / "t2.npy"));
  CHECK_FALSE(e.empty());

  // Wrong magic, and a header that is not a dict.
  auto bad = good_npy;
  bad[1] = 'X';
  write_bytes(dir / "magic.npy", bad);
  e = error_of([&] { rt::load_weights(*d, dir / "magic.npy", 0, "w"); });
  CHECK(contains(e, dir / "magic.npy"));
  CHECK(contains(e, "magic"));
  bad = good_npy;
  bad[10] = '[';
  write_bytes(dir / "hdr.npy", bad);
  e = error_of([&] { rt::load_weights(*d, dir / "hdr.npy", 0, "w"); });
  CHECK(contains(e, dir / "hdr.npy"));

  // Truncated .safetensors, a header length beyond the file, JSON that is not JSON.
  write_bytes(dir / "t.safetensors", {good_st.begin(), good_st.end() - 3});
  e = error_of([&] { rt::load_weights(*d, dir / "t.safetensors"); });
  CHECK(contains(e, dir / "t.safetensors"));
  auto big = good_st;
  big[5] = 0x7f;
  write_bytes(dir / "len.safetensors", big);
  e = error_of([&] { rt::load_weights(*d, dir / "len.safetensors"); });
  CHECK(contains(e, dir / "len.safetensors"));
  auto js = good_st;
  js[8] = '!';
  write_bytes(dir / "json.safetensors", js);
  e = error_of([&] { rt::load_weights(*d, dir / "json.safetensors"); });
  CHECK(contains(e, dir / "json.safetensors"));
  // A missing file.
  e = error_of([&] { rt::load_weights(*d, dir / "absent.npy"); });
  CHECK(contains(e, dir / "absent.npy"));

  // Every one of them is a FormatError (or Error for the missing file), and nothing was loaded.
  CHECK_THROWS_AS(rt::load_weights(*d, dir / "t1.npy", 0, "w"), FormatError);
  CHECK(d->read_symbol(0, "w").data == std::vector<std::uint8_t>(32, 0));
}

TEST_CASE("weights: loading costs host DMA time and shows in the statistics") {
  rt::DeviceSpec s;
  s.preset = "mini";
  s.dma_bandwidth_bytes_per_s = 1e9;  // 1 GB/s: 32 bytes take 32 ns
  s.dma_latency_s = 1e-6;
  auto d = rt::open_local(s);
  CHECK(d->info().dma_bandwidth_bytes_per_s == 1e9);
  d->load_program(stream_program());
  auto before = d->stats();
  load_axpb(*d, random_weights(1));
  auto j = d->stats();
  CHECK(j["weights"]["tensors"] == 2);
  CHECK(j["weights"]["bytes"] == 64);
  // Each tensor: 32 B / 1 GB/s + 1 us latency, one after the other.
  CHECK(j["weights"]["seconds"].get<double>() == doctest::Approx(2 * (32e-9 + 1e-6)));
  CHECK(j["host_dma"]["bytes_to_device"].get<std::int64_t>() - before["host_dma"]["bytes_to_device"].get<std::int64_t>() == 64);
  CHECK(j["emulated_seconds"].get<double>() > 2e-6);

  // The preset's link by default: mini and lp30 are PCIe Gen5 x16, 64 GB/s.
  rt::DeviceSpec m;
  m.preset = "mini";
  CHECK(rt::open_local(m)->info().dma_bandwidth_bytes_per_s == 64e9);
}

TEST_CASE("weights: the program's own .data is restored under loaded weights on every run") {
  // Symbol d has initial values; weights loaded over it must survive the reload of each run.
  const char* src = R"(.preset mini
.reg r1 = 0
.data d i8[32] mem.w.0 @ 0 = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]
.queue mem.w.0
rd:  READ 0, s0e
.queue sxm.e.0
     @ready(rd) DMAOUT s0e, 1
)";
  auto prog = assembler::assemble_string(src, "d.lpa", load_preset("mini")).program;
  rt::DeviceSpec s;
  s.preset = "mini";
  auto d = rt::open_local(s);
  d->load_program(prog);
  CHECK(d->run({}).dma_out.at(1).at(0) == std::vector<std::uint8_t>(32, 1));
  d->load_tensor({0, "d", "d.npy"}, i8_tensor({32}, std::vector<std::uint8_t>(32, 9)));
  for (int k = 0; k < 2; ++k) CHECK(d->run({}).dma_out.at(1).at(0) == std::vector<std::uint8_t>(32, 9));
  // A new program forgets the weights.
  d->load_program(prog);
  CHECK(d->run({}).dma_out.at(1).at(0) == std::vector<std::uint8_t>(32, 1));
}
