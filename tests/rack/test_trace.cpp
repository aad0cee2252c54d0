// Waveforms and timelines of rack runs (run_cli with --wave / --trace): ping-pong on
// configs/pair.toml (two lp30 chips joined by one link), with a known ball.
//
// Timing (examples/rack/ping.lpa and pong.lpa derive it): HOP = SEND issue to arrival =
// c2c_send 4 + serialisation ceil(320 / bytes_per_cycle) 25 + links.latency_cycles 160 = 189;
// c2c_recv = 4 (RECV to the vector on the stream, where the next SEND reads it).
//   chip 0: SEND s[k] issues in 6 + 386 k (round trip 2 * 189 + 2 * 4 = 386), departs 4 later:
//           10 + 386 k; RECV r[k] in 6 + 2 * 189 + 4 + 386 k = 388 + 386 k.
//   chip 1: RECV r[k] in 6 + 189 + 386 k = 195 + 386 k; SEND p[k] 4 later: 199 + 386 k, departs
//           203 + 386 k.
// Four rounds: 8 transfers, each a flow from a SEND span to a RECV span.
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "helpers.hpp"
#include "lpu/arch/layout.hpp"
#include "lpu/common/tensor_file.hpp"
#include "lpu/rack/cli.hpp"

using namespace lpu;
using namespace lpu::rack;

namespace {

namespace fs = std::filesystem;

fs::path out_dir() {
  auto d = fs::path(LPU_BINARY_DIR) / "test-out" / ("rack_trace_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

// The ping-pong manifest with a known ball: byte i of the vector is (3 i + 1) mod 256.
std::string pingpong_manifest(const fs::path& dir) {
  io::Tensor t;
  t.type = io::ElemType::I8;
  t.shape = {320};
  for (int i = 0; i < 320; ++i) t.data.push_back(std::uint8_t(3 * i + 1));
  io::save_npy(t, (dir / "ball.npy").string());
  const auto m = dir / "pingpong.toml";
  std::ofstream(m) << "[[program]]\nchips = \"0\"\nsource = \"" << rt::src("examples/rack/ping.lpa")
                   << "\"\nconsts = { LINK = \"link_to(1)\", HOP = \"hop(link_to(1))\", ROUNDS = 4 }\n"
                   << "inputs = { ball = \"" << (dir / "ball.npy").string() << "\" }\n"
                   << "[[program]]\nchips = \"1\"\nsource = \"" << rt::src("examples/rack/pong.lpa")
                   << "\"\nconsts = { LINK = \"link_to(0)\", HOP = \"hop(link_to(0))\", FIRST = \"6 + hop(link_to(0))\", "
                      "ROUNDS = 4 }\n";
  return m.string();
}

RackCliOptions pingpong(const fs::path& dir, const std::string& tag) {
  RackCliOptions o;
  o.rack = rt::src("configs/pair.toml");
  o.program = pingpong_manifest(dir);
  o.quiet = true;
  o.wave = (dir / (tag + ".vcd")).string();
  o.trace = (dir / (tag + ".json")).string();
  return o;
}

// A minimal VCD reader: value of a signal (full dotted path) in a cycle.
struct Vcd {
  std::map<std::string, std::string> id_of;
  std::map<std::string, std::map<std::int64_t, std::string>> changes;
  explicit Vcd(const std::string& text) {
    std::istringstream in(text);
    std::string tok;
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
          std::string type, width, id, name, path;
          in >> type >> width >> id >> name;
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
  bool has(const std::string& sig) const { return id_of.count(sig) != 0; }
  // Cycle c is at time 1000 c (1 ps units, 1 ns per cycle, as the RTL's waveform).
  std::string at(const std::string& sig, std::int64_t cycle) const {
    auto id = id_of.find(sig);
    REQUIRE_MESSAGE(id != id_of.end(), sig);
    const auto& ch = changes.at(id->second);
    auto it = ch.upper_bound(cycle * 1000);
    if (it == ch.begin()) return "?";
    return std::prev(it)->second;
  }
  std::uint64_t num(const std::string& sig, std::int64_t cycle) const { return std::stoull(at(sig, cycle), nullptr, 2); }
  // Byte i of a vector signal (bits [8i+7:8i], written MSB first).
  int byte(const std::string& sig, std::int64_t cycle, int i) const {
    auto b = at(sig, cycle);
    return int(std::stoul(b.substr(b.size() - std::size_t(8 * (i + 1)), 8), nullptr, 2));
  }
};

}  // namespace

TEST_CASE("rack VCD: link sends and receives carry known values at known cycles, and vcd2fst reads it") {
  const auto dir = out_dir();
  auto o = pingpong(dir, "pp");
  o.units = "sxm";  // the SXM queues and the links: enough here, and small
  REQUIRE(run_cli(o) == 0);
  const auto cfg = rt::rack("pair.toml");
  const int l0 = cfg.topology.link_to(0, 1), l1 = cfg.topology.link_to(1, 0);
  REQUIRE(l0 >= 0);
  REQUIRE(l1 >= 0);
  REQUIRE(link_timing(cfg, 0, l0).hop() == 189);
  Vcd v(slurp(o.wave));
  const std::string tx0 = fmt::format("TOP.chip0.link{}.", l0), rx1 = fmt::format("TOP.chip1.link{}.", l1);
  const std::string tx1 = fmt::format("TOP.chip1.link{}.", l1), rx0 = fmt::format("TOP.chip0.link{}.", l0);
  for (int k = 0; k < 4; ++k) {
    CAPTURE(k);
    const std::int64_t r = 386 * k;
    // chip 0's SEND departs in 10 + 386 k: a one-cycle strobe, the count, the vector.
    CHECK(v.at(tx0 + "tx", 9 + r) == "0");
    CHECK(v.at(tx0 + "tx", 10 + r) == "1");
    CHECK(v.at(tx0 + "tx", 11 + r) == "0");
    CHECK(v.num(tx0 + "tx_n", 10 + r) == std::uint64_t(k + 1));
    CHECK(v.num("TOP.chip0.tx_v", 10 + r) == (std::uint64_t(1) << l0));
    CHECK(v.num("TOP.chip0.tx_v", 11 + r) == 0);
    // chip 1 takes it in 195 + 386 k and sends it back departing 203 + 386 k.
    CHECK(v.at(rx1 + "rx", 194 + r) == "0");
    CHECK(v.at(rx1 + "rx", 195 + r) == "1");
    CHECK(v.at(rx1 + "rx", 196 + r) == "0");
    CHECK(v.num(rx1 + "rx_n", 195 + r) == std::uint64_t(k + 1));
    CHECK(v.at(tx1 + "tx", 203 + r) == "1");
    // chip 0 takes it back in 388 + 386 k.
    CHECK(v.at(rx0 + "rx", 388 + r) == "1");
    CHECK(v.num(rx0 + "rx_n", 388 + r) == std::uint64_t(k + 1));
    // The ball travels unchanged: byte i = 3 i + 1.
    for (int i : {0, 1, 100, 319}) {
      CHECK(v.byte(tx0 + "tx_d", 10 + r, i) == (3 * i + 1) % 256);
      CHECK(v.byte(rx1 + "rx_d", 195 + r, i) == (3 * i + 1) % 256);
      CHECK(v.byte(rx0 + "rx_d", 388 + r, i) == (3 * i + 1) % 256);
    }
  }
  // The SEND queue (sxm.e.0) issues in 6 with its own signals, as the RTL names them.
  const Layout L(cfg.chip(0));
  const int q = L.find_queue("sxm.e.0")->v;
  const std::string qs = fmt::format("TOP.chip0.qv[{}].q[{}].g.", q / 16, q % 16);
  CHECK(v.at(qs + "issue", 6) == "1");
  CHECK(v.at(qs + "issue", 7) == "0");
  CHECK(v.has("TOP.chip0.u_mem.rd_v") == false);  // --units sxm
  if (std::system("command -v vcd2fst > /dev/null 2>&1") != 0) {
    MESSAGE("vcd2fst not installed (gtkwave); skipping the conversion check");
    return;
  }
  const auto fst = (dir / "pp.fst").string();
  CHECK(std::system(("vcd2fst " + o.wave + " " + fst + " > /dev/null 2>&1").c_str()) == 0);
  CHECK(fs::file_size(fst) > 0);
}

TEST_CASE("rack timeline: a process per chip, a flow per transfer from its SEND span to its RECV span") {
  const auto dir = out_dir();
  auto o = pingpong(dir, "ppt");
  o.wave.clear();
  REQUIRE(run_cli(o) == 0);
  const auto doc = nlohmann::json::parse(slurp(o.trace));
  const auto& ev = doc.at("traceEvents");
  std::map<int, nlohmann::json> s, f;
  std::set<int> pids;
  for (const auto& e : ev) {
    if (e["ph"] == "s") s[e["id"].get<int>()] = e;
    if (e["ph"] == "f") f[e["id"].get<int>()] = e;
    if (e["ph"] == "M" && e["name"] == "process_name") pids.insert(e["pid"].get<int>());
  }
  CHECK(pids == std::set<int>{0, 1});
  REQUIRE(s.size() == 8);
  REQUIRE(f.size() == 8);
  // The span enclosing an event on its track.
  auto span_at = [&](const nlohmann::json& x) -> std::string {
    for (const auto& e : ev)
      if (e["ph"] == "X" && e["pid"] == x["pid"] && e["tid"] == x["tid"] && e["ts"].get<double>() <= x["ts"].get<double>() + 1e-9 &&
          x["ts"].get<double>() < e["ts"].get<double>() + e["dur"].get<double>())
        return e["name"];
    return "";
  };
  std::multiset<std::pair<std::int64_t, std::int64_t>> got0, got1;  // (send cycle, recv cycle) by sender
  for (const auto& [id, a] : s) {
    CAPTURE(id);
    REQUIRE(f.count(id));
    const auto& b = f[id];
    CHECK(b["bp"] == "e");
    CHECK(a["pid"] != b["pid"]);
    CHECK(span_at(a) == "SEND");
    CHECK(span_at(b) == "RECV");
    // lp30 at 1 GHz: ts in microseconds = cycle / 1000.
    const auto sc = std::llround(a["ts"].get<double>() * 1000), rc = std::llround(b["ts"].get<double>() * 1000);
    (a["pid"] == 0 ? got0 : got1).insert({sc, rc});
  }
  std::multiset<std::pair<std::int64_t, std::int64_t>> want0, want1;
  for (int k = 0; k < 4; ++k) {
    want0.insert({6 + 386 * k, 195 + 386 * k});
    want1.insert({199 + 386 * k, 388 + 386 * k});
  }
  CHECK(got0 == want0);
  CHECK(got1 == want1);
  // Counters per chip.
  int counters = 0;
  for (const auto& e : ev) counters += e["ph"] == "C" && e["name"] == "SRAM read TB/s";
  CHECK(counters > 0);
}

TEST_CASE("rack tracing: 1 and 2 threads write identical files") {
  const auto dir = out_dir();
  SUBCASE("ping-pong, functional") {
    auto a = pingpong(dir, "t1");
    a.threads = 1;
    auto b = pingpong(dir, "t2");
    b.threads = 2;
    b.min_parallel_work = 0;  // every phase with two chips on the pool
    REQUIRE(run_cli(a) == 0);
    REQUIRE(run_cli(b) == 0);
    CHECK(slurp(a.wave) == slurp(b.wave));
    CHECK(slurp(a.trace) == slurp(b.trace));
  }
  SUBCASE("8-chip pipeline on a tray, timing-only, selected chips and units") {
    auto run = [&](int threads, const std::string& tag) {
      RackCliOptions o;
      o.rack = rt::src("configs/tray8.toml");
      o.program = rt::src("examples/rack/pipeline_tray8.toml");
      o.timing_only = true;
      o.quiet = true;
      o.threads = threads;
      o.min_parallel_work = 0;
      o.chips = "0,3-5";
      o.units = "mxm,sxm";
      o.wave = (dir / (tag + ".vcd")).string();
      o.trace = (dir / (tag + ".json")).string();
      REQUIRE(run_cli(o) == 0);
      return std::pair(slurp(o.wave), slurp(o.trace));
    };
    const auto one = run(1, "p1"), two = run(2, "p2");
    CHECK(one.first == two.first);
    CHECK(one.second == two.second);
    CHECK(one.first.find("TOP.chip") == std::string::npos);  // scopes are nested, not dotted
    Vcd v(one.first);
    CHECK(v.has("TOP.chip3.tx_v"));
    CHECK(!v.has("TOP.chip1.tx_v"));
    // Chips 3-4-5 are consecutive stages: the flows between them are drawn, not those to 2 or 6.
    const auto doc = nlohmann::json::parse(one.second);
    int flows = 0;
    for (const auto& e : doc["traceEvents"])
      if (e["ph"] == "s") {
        ++flows;
        CHECK((e["pid"] == 3 || e["pid"] == 4));
      }
    CHECK(flows == 2 * 16);  // 16 vectors from 3 to 4 and from 4 to 5
  }
}

TEST_CASE("rack tracing: --chips leaves the other chips out") {
  const auto dir = out_dir();
  auto o = pingpong(dir, "c1");
  o.chips = "1";
  REQUIRE(run_cli(o) == 0);
  Vcd v(slurp(o.wave));
  bool chip0 = false, chip1 = false;
  for (const auto& [name, id] : v.id_of) {
    chip0 |= name.rfind("TOP.chip0.", 0) == 0;
    chip1 |= name.rfind("TOP.chip1.", 0) == 0;
  }
  CHECK(chip1);
  CHECK(!chip0);
  const auto doc = nlohmann::json::parse(slurp(o.trace));
  for (const auto& e : doc["traceEvents"]) {
    CHECK(e["pid"] == 1);
    CHECK(e["ph"] != "s");  // the sender is not traced: no arrows
  }
  // A chip list out of range is a located error.
  o.chips = "0-2";
  CHECK_THROWS_AS(run_cli(o), ConfigError);
}
