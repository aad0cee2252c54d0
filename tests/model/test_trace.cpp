// Waveforms, timelines and statistics files of a run (examples/vector_add.lpa on mini):
//   rb: READ in mem.w.1 at 0; ra: READ in mem.w.0 at 1; ADD at the VXM at 4 (result s2e at
//   position 5 in 5, position 6 in 6); WRITE in mem.e.0 at 6.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include <fmt/format.h>

#include "helpers.hpp"
#include "lpu/arch/layout.hpp"
#include "lpu/isa/isa.hpp"
#include "lpu/model/report.hpp"
#include "lpu/model/trace.hpp"

using namespace lpu;
using namespace lpu::test;

namespace {

// A minimal VCD reader: value of a signal (full dotted path) at a cycle.
struct Vcd {
  std::map<std::string, std::string> id_of;             // "TOP.lpu_mini.mem_w_0.rd_v" -> id
  std::map<std::string, std::map<std::int64_t, std::string>> changes;  // id -> cycle -> value
  explicit Vcd(const std::string& text) {
    std::istringstream in(text);
    std::string tok, scope;
    std::vector<std::string> scopes;
    std::int64_t t = 0;
    bool defs = true;
    while (in >> tok) {
      if (defs) {
        if (tok == "$scope") {
          std::string kind, name;
          in >> kind >> name;
          scopes.push_back(name);
        } else if (tok == "$upscope") {
          scopes.pop_back();
        } else if (tok == "$var") {
          std::string type, width, id, name;
          in >> type >> width >> id >> name;
          std::string path;
          for (const auto& s : scopes) path += s + ".";
          id_of[path + name] = id;
        } else if (tok == "$enddefinitions") {
          defs = false;
        }
        continue;
      }
      if (tok[0] == '#') {
        t = std::stoll(tok.substr(1));
      } else if (tok[0] == 'b') {
        std::string id;
        in >> id;
        changes[id][t] = tok.substr(1);
      } else if (tok[0] == '0' || tok[0] == '1' || tok[0] == 'x') {
        changes[tok.substr(1)][t] = tok.substr(0, 1);
      }
    }
  }
  // Cycle c is at time 1000 c (1 ps units, 1 ns per cycle, as the RTL's waveform).
  std::string at(const std::string& sig, std::int64_t cycle) const {
    auto id = id_of.find(sig);
    REQUIRE_MESSAGE(id != id_of.end(), sig);
    const auto& ch = changes.at(id->second);
    auto it = ch.upper_bound(cycle * 1000);
    if (it == ch.begin()) return "?";
    return std::prev(it)->second;
  }
};

std::uint64_t from_bits(const std::string& b) { return std::stoull(b, nullptr, 2); }

struct Traced {
  std::string vcd;
  nlohmann::json timeline;
  std::string csv;
  std::vector<std::uint8_t> c;
};

Traced trace_vector_add(const model::TraceSelection& sel) {
  auto p = load_preset("mini");
  auto obj = assembler::assemble_file(example("vector_add.lpa"), p).program;
  model::Chip chip(p, model::Mode::Functional);
  chip.load(obj);
  model::VcdTracer vcd(chip, sel);
  model::Timeline tl;
  model::ObserverFanout both;
  both.obs = {&vcd, tl.attach(chip)};
  chip.set_observer(&both);
  chip.run();
  Traced t;
  std::ostringstream v, j;
  vcd.write(v);
  tl.write(j);
  t.vcd = v.str();
  t.timeline = nlohmann::json::parse(j.str());
  t.csv = model::stats_csv(chip.stats(), p);
  t.c = chip.read_symbol("c");
  return t;
}

}  // namespace

// Queue k of mini in lpu::Layout order is qv[k / 16].q[k % 16].g (the RTL's generate blocks).
std::string queue_scope(const std::string& name) {
  auto p = load_preset("mini");
  Layout L(p);
  auto q = L.find_queue(name);
  REQUIRE_MESSAGE(q, name);
  return fmt::format("TOP.lpu_mini.qv[{}].q[{}].g.", q->v / 16, q->v % 16);
}

TEST_CASE("VCD: known signals carry known values at known cycles") {
  model::TraceSelection sel;
  sel.positions = {6};
  sel.streams = {2};
  auto t = trace_vector_add(sel);
  Vcd v(t.vcd);
  const std::string top = "TOP.lpu_mini.";
  // ra: NOP 1 (word 0) then READ row 0 of mem.w.0 (word 1) in cycle 1. As in the RTL, pc is
  // the next word: 0 in cycle 0 (the NOP is looked at), 1 in cycle 1 (the READ issues), 2 after.
  const auto ra = queue_scope("mem.w.0");
  CHECK(from_bits(v.at(ra + "pc", 0)) == 0);
  CHECK(v.at(ra + "issue", 0) == "0");
  CHECK(from_bits(v.at(ra + "opcode", 0)) == 0xFF);  // nothing issues
  CHECK(from_bits(v.at(ra + "pc", 1)) == 1);
  CHECK(v.at(ra + "issue", 1) == "1");
  CHECK(from_bits(v.at(ra + "issue_pc", 1)) == 1);
  CHECK(from_bits(v.at(ra + "opcode", 1)) == isa::info(isa::Op::Read).opcode);
  CHECK(isa::decode(from_bits(v.at(ra + "word", 1))).op == isa::Op::Read);
  CHECK(from_bits(v.at(ra + "pc", 2)) == 2);
  CHECK(v.at(ra + "issue", 2) == "0");
  CHECK(from_bits(v.at(ra + "issue_pc", 2)) == 2);
  // The ADD: vxm.0 word 1 (after NOP 4) in cycle 4.
  const auto add_q = queue_scope("vxm.0");
  CHECK(v.at(add_q + "issue", 3) == "0");
  CHECK(from_bits(v.at(add_q + "pc", 3)) == 1);  // the NOP ended: pc moved on in cycle 1
  auto add = isa::decode(from_bits(v.at(add_q + "word", 4)));
  CHECK(add.op == isa::Op::Add);
  CHECK(from_bits(v.at(add_q + "issue_pc", 4)) == 1);
  // SRAM ports: per slice, and packed one bit per MEM slice (RTL order: mem.w.0..3, mem.e.0..3).
  CHECK(v.at(top + "mem_w_0.rd_v", 0) == "0");
  CHECK(v.at(top + "mem_w_0.rd_v", 1) == "1");
  CHECK(from_bits(v.at(top + "mem_w_0.rd_row", 1)) == 0);
  CHECK(v.at(top + "mem_w_0.rd_v", 2) == "0");
  CHECK(from_bits(v.at(top + "u_mem.rd_v", 0)) == 0b10);  // rb: mem.w.1 in cycle 0
  CHECK(from_bits(v.at(top + "u_mem.rd_v", 1)) == 0b01);  // ra: mem.w.0 in cycle 1
  CHECK(from_bits(v.at(top + "u_mem.rd_v", 2)) == 0);
  // The WRITE in mem.e.0 (bit 4) in cycle 6, committed at the end of 6 (mem_write = 1).
  CHECK(v.at(top + "mem_e_0.wr_v", 6) == "1");
  CHECK(from_bits(v.at(top + "u_mem.wr_v", 6)) == 0b10000);
  CHECK(from_bits(v.at(top + "obs_sram_we", 6)) == 0b10000);
  CHECK(from_bits(v.at(top + "obs_sram_we", 7)) == 0);
  // ... and its superlanes (mask bits 8, 9), rows (0) and data (slice 4's 256 bits), as the
  // RTL's write port shows them in the commit cycle only (mem_write = 1).
  CHECK(from_bits(v.at(top + "obs_sram_mask", 6)) == 0b11u << 8);
  CHECK(from_bits(v.at(top + "obs_sram_mask", 7)) == 0);
  const auto d = v.at(top + "obs_sram_d", 6);
  REQUIRE(d.size() == 8 * 256);
  for (int i = 0; i < 32; ++i)  // byte i of slice 4: bits [4*256 + 8i + 7 : 4*256 + 8i]
    CHECK(from_bits(d.substr(std::size_t(d.size() - 4 * 256 - 8 * (i + 1)), 8)) == t.c[std::size_t(i)]);
  // The sum is on s2e at position 6 in cycle 6 only, and equals c.
  const std::string st = top + "sv[6].dir[0].st[2].";
  CHECK(v.at(st + "valid", 5) == "0");
  CHECK(v.at(st + "valid", 6) == "1");
  CHECK(v.at(st + "valid", 7) == "0");
  auto bits = v.at(st + "value", 6);
  REQUIRE(bits.size() == 256);
  for (int i = 0; i < 32; ++i) {  // element i is bits [8i+7 : 8i], written MSB first
    auto byte = from_bits(bits.substr(std::size_t(256 - 8 * (i + 1)), 8));
    CHECK(byte == t.c[std::size_t(i)]);
  }
}

TEST_CASE("VCD: vcd2fst accepts the file") {
  auto t = trace_vector_add({});
  const std::string dir = std::string(LPU_BINARY_DIR) + "/test-out";
  std::filesystem::create_directories(dir);
  {
    std::ofstream f(dir + "/vector_add.vcd");
    f << t.vcd;
  }
  if (std::system("command -v vcd2fst > /dev/null 2>&1") != 0) {
    MESSAGE("vcd2fst not installed (gtkwave); skipping the conversion check");
    return;
  }
  const std::string cmd = "vcd2fst " + dir + "/vector_add.vcd " + dir + "/vector_add.fst > /dev/null 2>&1";
  CHECK(std::system(cmd.c_str()) == 0);
  CHECK(std::filesystem::file_size(dir + "/vector_add.fst") > 0);
}

TEST_CASE("VCD: a cycle window and a unit selection limit what is dumped") {
  model::TraceSelection sel;
  sel.units = {"vxm"};
  sel.from = 3;
  sel.to = 4;
  auto t = trace_vector_add(sel);
  Vcd v(t.vcd);
  const auto add_q = queue_scope("vxm.0");
  CHECK(v.id_of.count(add_q + "word") == 1);
  CHECK(v.id_of.count(queue_scope("mem.w.0") + "word") == 0);
  CHECK(v.id_of.count("TOP.lpu_mini.mem_w_0.rd_v") == 0);
  CHECK(t.vcd.find("#1000\n") == std::string::npos);  // nothing before the window
  CHECK(t.vcd.find("#7000\n") == std::string::npos);  // nor after it
  // Values before the window are carried into it: pc is 1 from cycle 1 (the NOP ended).
  CHECK(from_bits(v.at(add_q + "pc", 3)) == 1);
  CHECK(v.at(add_q + "issue", 4) == "1");
}

TEST_CASE("timeline: tracks per queue, spans per instruction, counters") {
  auto t = trace_vector_add({});
  const auto& ev = t.timeline.at("traceEvents");
  REQUIRE(ev.is_array());
  bool vxm_track = false, add_span = false, counter = false;
  for (const auto& e : ev) {
    if (e["ph"] == "M" && e["name"] == "thread_name" && e["args"]["name"] == "vxm.0") vxm_track = true;
    if (e["ph"] == "X" && e["name"] == "ADD") {
      add_span = true;
      CHECK(e["ts"].get<double>() == doctest::Approx(0.004));  // cycle 4 at 1 GHz, in us
      CHECK(e["args"]["instruction"] == "ADD.i8 s0e, s1e, s2e");
    }
    if (e["ph"] == "C" && e["name"] == "SRAM read TB/s") counter = true;
  }
  CHECK(vxm_track);
  CHECK(add_span);
  CHECK(counter);
}

TEST_CASE("statistics CSV has a row per unit and the chip totals") {
  auto t = trace_vector_add({});
  std::istringstream in(t.csv);
  std::string line;
  std::vector<std::string> lines;
  while (std::getline(in, line)) lines.push_back(line);
  REQUIRE(lines.size() == 1 + model::kNumUnitKinds + 1);
  CHECK(lines[0].rfind("chip,unit,queues,instructions", 0) == 0);
  CHECK(lines.back().rfind("0,chip,,,,,9,64,32,", 0) == 0);  // 9 cycles, 2 rows read, 1 written
}
