// The `lpu` command on hostile and malformed input (issue 23): objects that point outside the
// SRAM, option values it cannot read, and the --stats file of a failed run. Each error is an
// exit status of 1 with a located message, never a crash or an "internal error".
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "helpers.hpp"
#include "lpu/arch/params.hpp"
#include "lpu/asm/assembler.hpp"
#include "lpu/asm/object.hpp"
#include "lpu/common/tensor_file.hpp"

using namespace lpu_cli_test;

// ---- Issue 23: hostile objects, option errors, the --stats of a failed run ------------------

namespace {

// A mini object with symbol x (i8[32] in mem.e.0 at row 0) changed by `edit`, with a valid CRC.
void craft(const fs::path& file, void (*edit)(lpu::obj::Program&)) {
  auto p = lpu::load_preset("mini");
  auto prog = lpu::assembler::assemble_string(".symbol x i8[32] mem.e.0 @ 0\n.queue vxm.0\nCONST.i8 s0e, 1\n", "t.lpa", p).program;
  edit(prog);
  lpu::obj::save_object(prog, file.string());
}

void save_i8(const fs::path& file, std::int64_t n) {
  lpu::io::Tensor t;
  t.type = lpu::io::ElemType::I8;
  t.shape = {n};
  t.data.assign(std::size_t(n), 1);
  lpu::io::save_npy(t, file.string());
}

// An error the user can act on: exit 1, located, not a crash (-1: killed by a signal) and not
// "internal error" (exit 3).
void user_error(const Result& r, const std::string& message) {
  CAPTURE(r.out);
  CHECK(r.status == 1);
  CHECK(contains(r.out, message));
  CHECK_FALSE(contains(r.out, "internal error"));
}

}  // namespace

TEST_CASE("lpu run: a valid-CRC object whose symbol lies outside the SRAM is a located error, in every backend") {
  TempDir d;
  save_i8(d.path / "x.npy", 32);
  // Row 0xFFFFFFF0: the chip's symbol writer wrote far outside the SRAM (heap corruption).
  craft(d.path / "row.lpo", [](lpu::obj::Program& g) { g.symbols[0].start_row = 0xFFFFFFF0u; });
  const std::string row = "row.lpo: symbol 'x': rows 4294967280..4294967280 beyond the 256 rows of a slice";
  user_error(run_lpu("run row.lpo --input x=x.npy --output x=y.npy", d.path), row);
  user_error(run_lpu("run row.lpo --timing-only --input x=x.npy --output x=y.npy", d.path), row);
  user_error(run_lpu("run row.lpo --systemc --input x=x.npy", d.path), row);
  user_error(run_lpu("run row.lpo --rtl --input x=x.npy --output x=y.npy", d.path), row);
  // A symbol on a non-MEM slice and on a slice the chip does not have (segfaults).
  craft(d.path / "vxm.lpo", [](lpu::obj::Program& g) { g.symbols[0].slices = {"vxm"}; });
  user_error(run_lpu("run vxm.lpo --input x=x.npy --output x=y.npy", d.path), "vxm.lpo: symbol 'x': 'vxm' is not a MEM slice of preset 'mini'");
  user_error(run_lpu("run vxm.lpo --rtl --output x=y.npy", d.path), "vxm.lpo: symbol 'x': 'vxm' is not a MEM slice of preset 'mini'");
  craft(d.path / "unknown.lpo", [](lpu::obj::Program& g) { g.symbols[0].slices = {"mem.e.99"}; });
  user_error(run_lpu("run unknown.lpo --output x=y.npy", d.path), "unknown.lpo: symbol 'x': 'mem.e.99' is not a MEM slice of preset 'mini'");
  // A symbol larger than the SRAM (257 rows of 32 bytes in a slice of 256), with a file of its size.
  craft(d.path / "big.lpo", [](lpu::obj::Program& g) { g.symbols[0].shape = {257 * 32}; });
  save_i8(d.path / "big.npy", 257 * 32);
  user_error(run_lpu("run big.lpo --input x=big.npy --output x=y.npy", d.path),
             "big.lpo: symbol 'x': rows 0..256 beyond the 256 rows of a slice (8224 bytes in 1 slices)");
  CHECK_FALSE(fs::exists(d.path / "y.npy"));
}

TEST_CASE("lpu run: every option error names the option and the text it could not read") {
  TempDir d;
  REQUIRE(run_lpu(fmt::format("asm '{}' -o va.lpo", (kSrc / "examples/vector_add.lpa").string()), d.path).status == 0);
  save_i8(d.path / "v.npy", 32);
  // Each of these printed "internal error: stoi" / "stoul", or was taken modulo 2^32.
  user_error(run_lpu("run va.lpo --reg r1=abc", d.path), "lpu: error: config: --reg r1: 'abc' is not an integer");
  user_error(run_lpu("run va.lpo --reg r1=4294967296", d.path),
             "lpu: error: config: --reg r1: '4294967296' is out of range -2147483648..4294967295");
  user_error(run_lpu("run va.lpo --reg r16=1", d.path), "lpu: error: config: --reg r16: '16' is out of range 1..15");
  user_error(run_lpu("run va.lpo --reg rx=1", d.path), "lpu: error: config: --reg: 'rx' is not a register r1..r15");
  user_error(run_lpu("run va.lpo --dma-in x=v.npy", d.path), "lpu: error: config: --dma-in channel: 'x' is not an integer");
  user_error(run_lpu("run va.lpo --dma-in 99999999999=v.npy", d.path),
             "lpu: error: config: --dma-in channel: '99999999999' is out of range 0..255");
  user_error(run_lpu("run va.lpo --dma-out 1x=o.npy", d.path), "lpu: error: config: --dma-out channel: '1x' is not an integer");
  user_error(run_lpu("run va.lpo --inject-fault mem.e.0:x:1", d.path),
             "lpu: error: config: --inject-fault mem.e.0:x:1 row: 'x' is not an integer");
  user_error(run_lpu("run va.lpo --inject-fault mem.e.0:1:4294967297", d.path),
             "lpu: error: config: --inject-fault mem.e.0:1:4294967297 bits: '4294967297' is out of range 1..65536 bits");
  user_error(run_lpu("run va.lpo --set mem.rows=4294967552", d.path),
             "lpu: error: config: mem.rows: 4294967552 is out of range 1..1048576 rows");
  user_error(run_lpu("run va.lpo --wave w.vcd --chips 0,x", d.path), "lpu: error: --chips: 'x' in '0,x' is not a number");
  // The timing-only fault-injection message names the real condition (it said "not a MEM slice").
  user_error(run_lpu("run va.lpo --timing-only --inject-fault mem.e.0:1:1", d.path),
             "lpu: error: fault injection into mem.e.0 needs a functional run: a timing-only chip keeps no SRAM contents to flip");
  // A --set key of 45,000 dotted parts overflowed the stack.
  std::string key = "a";
  for (int i = 1; i < 45000; ++i) key += ".a";
  user_error(run_lpu(fmt::format("info --preset mini --set {}=1", key), d.path), "a preset key has at most 8 dotted parts");
}

TEST_CASE("a failed run still writes its --stats file: status, error, kind and place") {
  TempDir d;
  REQUIRE(run_lpu(fmt::format("asm '{}' -o va.lpo", (kSrc / "examples/vector_add.lpa").string()), d.path).status == 0);
  REQUIRE(run_lpu("run va.lpo -q --stats ok.json", d.path).status == 0);
  CHECK(json_of(d.path / "ok.json")["status"] == "ok");
  CHECK(json_of(d.path / "ok.json")["cycles"] == 9);
  // A bad option value.
  user_error(run_lpu("run va.lpo --reg r1=abc --stats reg.json", d.path), "'abc' is not an integer");
  auto j = json_of(d.path / "reg.json");
  CHECK(j["status"] == "error");
  CHECK(j["command"] == "run");
  CHECK(j["error_kind"] == "config");
  CHECK(j["key"] == "--reg r1");
  CHECK(j["exit_code"] == 1);
  CHECK(j["error"] == "config: --reg r1: 'abc' is not an integer (expected digits, or 0x/0b and hex/binary digits)");
  // A hostile object.
  craft(d.path / "row.lpo", [](lpu::obj::Program& g) { g.symbols[0].start_row = 0xFFFFFFF0u; });
  user_error(run_lpu("run row.lpo --stats row.json", d.path), "beyond the 256 rows");
  j = json_of(d.path / "row.json");
  CHECK(j["error_kind"] == "format");
  CHECK(contains(j["error"].get<std::string>(), "row.lpo: symbol 'x': rows 4294967280..4294967280"));
  // An error during the run: chip and cycle (two flipped bits in the row a READ takes in cycle 0).
  user_error(run_lpu("run va.lpo --inject-fault mem.w.0:0:2 --stats sim.json", d.path), "uncorrectable ECC error");
  j = json_of(d.path / "sim.json");
  CHECK(j["error_kind"] == "simulation");
  CHECK(j["chip"] == 0);
  CHECK(j["cycle"] == 1);
  // The RTL backend and a rack run write the same.
  user_error(run_lpu("run row.lpo --rtl --stats rtl.json", d.path), "beyond the 256 rows");
  CHECK(json_of(d.path / "rtl.json")["status"] == "error");
  std::ofstream(d.path / "bad.toml") << "chips = [\n";
  user_error(run_lpu(fmt::format("run --rack '{}' bad.toml --stats rack.json", (kSrc / "configs/pair.toml").string()), d.path),
             "lpu: error: config: ");
  j = json_of(d.path / "rack.json");
  CHECK(j["status"] == "error");
  CHECK(j["error_kind"] == "config");
  // lpu decode takes --stats too.
  const auto rack = (kSrc / "examples/decode/mini4.toml").string();
  user_error(run_lpu(fmt::format("decode --model tiny --rack '{}' --context 64 --stats dec.json", rack), d.path),
             "functional decode needs --weights");
  j = json_of(d.path / "dec.json");
  CHECK(j["status"] == "error");
  CHECK(j["command"] == "decode");
  // --kv-len: the tokens in the cache, at most the context; the step's figures say which.
  user_error(run_lpu(fmt::format("decode --model tiny --rack '{}' --context 64 --kv-len 65 --timing-only", rack), d.path),
             "--kv-len 65");
  auto ok = run_lpu(fmt::format("decode --model tiny --rack '{}' --context 64 --kv-len 20 --timing-only --json", rack), d.path);
  REQUIRE(ok.status == 0);
  CHECK(ok.out.find("\"kv_len\": 20") != std::string::npos);
}
