// lpu sweep: the grid, substitution, commands, metrics and CSV (sweep.hpp, directly), and real
// sweeps through the lpu executable (a preset latency, a rack link latency, a failing run).
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "lpu/common/errors.hpp"
#include "lpu/rack/config.hpp"
#include "sweep.hpp"

namespace fs = std::filesystem;
using namespace lpu::tools::sweep;

namespace {

const std::string kLpu = std::string(LPU_BINARY_DIR) + "/bin/lpu";
const fs::path kSrc = LPU_SOURCE_DIR;

struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path = fs::path(LPU_BINARY_DIR) / "test-out" / fmt::format("sweep_{}_{}", ::getpid(), counter++);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

struct Out {
  int status = -1;
  std::string text;  // stdout and stderr
};

Out sh(const std::string& cmd, const fs::path& dir) {
  const std::string full = fmt::format("cd '{}' && {} 2>&1", dir.string(), cmd);
  Out r;
  FILE* p = popen(full.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.text.append(buf, n);
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// sweep.csv as rows of column -> value (no quoted fields in these tests).
std::vector<std::map<std::string, std::string>> read_csv(const fs::path& p) {
  std::stringstream ss(slurp(p));
  std::string line;
  std::vector<std::string> cols;
  std::vector<std::map<std::string, std::string>> rows;
  auto fields = [](const std::string& l) {
    std::vector<std::string> f{""};
    for (char c : l) {
      if (c == ',') f.emplace_back();
      else f.back() += c;
    }
    return f;
  };
  std::getline(ss, line);
  cols = fields(line);
  while (std::getline(ss, line)) {
    auto f = fields(line);
    REQUIRE(f.size() == cols.size());
    std::map<std::string, std::string> row;
    for (std::size_t i = 0; i < cols.size(); ++i) row[cols[i]] = f[i];
    rows.push_back(row);
  }
  return rows;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("sweep parameters: kinds, value lists, ranges and escaped commas") {
  auto p = parse_param("latency.mem_read=5,7,9");
  CHECK(p.kind == ParamKind::Preset);
  CHECK(p.key == "latency.mem_read");
  CHECK(p.values == std::vector<std::string>{"5", "7", "9"});
  auto r = parse_param("rack.links.latency_cycles=100:400:100");
  CHECK(r.kind == ParamKind::Rack);
  CHECK(r.key == "links.latency_cycles");
  CHECK(r.column == "rack.links.latency_cycles");
  CHECK(r.values == std::vector<std::string>{"100", "200", "300", "400"});
  auto h = parse_param("@chips=64,128");
  CHECK(h.kind == ParamKind::Placeholder);
  CHECK(h.key == "chips");
  CHECK(h.column == "chips");
  CHECK(parse_param("clock_hz=0.8e9:1.0e9:0.1e9").values == std::vector<std::string>{"800000000", "900000000", "1000000000"});
  CHECK(parse_param("@list=0\\,1,2-3").values == std::vector<std::string>{"0,1", "2-3"});
  CHECK(parse_param("@p=a:b:c").values == std::vector<std::string>{"a:b:c"});  // not numbers: one value
  CHECK_THROWS_AS(parse_param("latency.mem_read"), lpu::Error);
  CHECK_THROWS_AS(parse_param("latency.mem_read="), lpu::Error);
  CHECK_THROWS_AS(parse_param("latency.mem_read=5,,7"), lpu::Error);
  CHECK_THROWS_AS(parse_param("@1x=5"), lpu::Error);
  CHECK_THROWS_AS(parse_param("@run=5"), lpu::Error);
  CHECK_THROWS_AS(parse_param("@stats=5"), lpu::Error);
  CHECK_THROWS_AS(parse_param("x=1:5:-1"), lpu::Error);
}

TEST_CASE("sweep grid: every combination, the first parameter slowest") {
  std::vector<Param> ps{parse_param("a=1,2,3"), parse_param("b=x,y"), parse_param("c=0")};
  auto g = grid(ps);
  REQUIRE(g.size() == 6);  // 3 x 2 x 1
  CHECK(g[0] == std::vector<std::string>{"1", "x", "0"});
  CHECK(g[1] == std::vector<std::string>{"1", "y", "0"});
  CHECK(g[5] == std::vector<std::string>{"3", "y", "0"});
  CHECK(csv_columns(ps, {"cycles", "sum(chips.*.x)"}) ==
        std::vector<std::string>{"run", "a", "b", "c", "status", "cycles", "sum(chips.*.x)", "wall_s"});
}

TEST_CASE("sweep substitution: placeholders, built-ins, braces and errors") {
  std::map<std::string, std::string> v{{"chips", "64"}, {"run", "3"}, {"out", "o"}};
  std::vector<std::string> used;
  CHECK(substitute("--chips={chips}", v, &used) == "--chips=64");
  CHECK(substitute("{out}/trace_{run}.json", v, &used) == "o/trace_3.json");
  CHECK(substitute("{{chips}}", v) == "{chips}");
  CHECK(used == std::vector<std::string>{"chips", "out", "run"});
  CHECK_THROWS_WITH_AS(substitute("{nope}", v), doctest::Contains("--set @nope="), lpu::Error);
  CHECK_THROWS_AS(substitute("{chips", v), lpu::Error);
  CHECK_THROWS_AS(substitute("a}b", v), lpu::Error);
}

TEST_CASE("sweep plan: --set and --stats appended, placeholders substituted, rack keys to a derived rack file") {
  PlanOptions o;
  o.out_dir = "d";
  o.command = {"lpu", "run", "x.lpo", "--tokens", "{n}"};
  auto runs = plan({parse_param("latency.mem_read=5,9"), parse_param("@n=1,2")}, o);
  REQUIRE(runs.size() == 4);
  CHECK(runs[3].argv == std::vector<std::string>{"lpu", "run", "x.lpo", "--tokens", "2", "--set", "latency.mem_read=9",
                                                 "--stats", "d/run_3.json"});
  CHECK(runs[3].label == "latency.mem_read=9 @n=2");
  CHECK(runs[3].rack_path.empty());

  // On a rack command a preset key goes to every chip's [chip] set; rack.KEY to the rack file.
  o.command = {"run", "--rack", "r.toml", "m.toml"};
  runs = plan({parse_param("rack.links.latency_cycles=100,200"), parse_param("latency.c2c_send=6")}, o);
  REQUIRE(runs.size() == 2);
  CHECK(runs[1].argv == std::vector<std::string>{"run", "--rack", "d/run_1.rack.toml", "m.toml", "--stats", "d/run_1.json"});
  CHECK(runs[1].rack_source == "r.toml");
  CHECK(runs[1].rack_sets == std::vector<std::string>{"links.latency_cycles=200", "chip.set+=latency.c2c_send=6"});
  o.command = {"run", "--rack=r.toml", "m.toml"};
  CHECK(plan({parse_param("rack.chips=4")}, o)[0].argv[1] == "--rack=d/run_0.rack.toml");

  // {stats} places the statistics file: no --stats is added.
  o.command = {"sh", "-c", "lpu run x.lpo --stats {stats} --tokens {n}"};
  CHECK(plan({parse_param("@n=1,2")}, o)[1].argv ==
        std::vector<std::string>{"sh", "-c", "lpu run x.lpo --stats d/run_1.json --tokens 2"});

  // --stdout-json: no --stats.
  o.command = {"info", "--json"};
  o.stdout_json = true;
  CHECK(plan({parse_param("mem.rows=1,2")}, o)[1].argv ==
        std::vector<std::string>{"info", "--json", "--set", "mem.rows=2"});
  o.stdout_json = false;

  // What can be wrong before anything runs.
  o.command = {"run", "x.lpo", "--stats", "s.json"};
  CHECK_THROWS_WITH_AS(plan({parse_param("a=1")}, o), doctest::Contains("--stats"), lpu::Error);
  o.command = {"run", "x.lpo"};
  CHECK_THROWS_WITH_AS(plan({parse_param("@n=1")}, o), doctest::Contains("never uses {n}"), lpu::Error);
  CHECK_THROWS_WITH_AS(plan({parse_param("rack.chips=2")}, o), doctest::Contains("--rack"), lpu::Error);
  CHECK_THROWS_AS(plan({parse_param("a=1"), parse_param("a=2")}, o), lpu::Error);
  o.command = {};
  CHECK_THROWS_AS(plan({parse_param("a=1")}, o), lpu::Error);
}

TEST_CASE("rack overrides: typed values, new tables, chip.set appended, the derived rack file") {
  const std::string text = slurp(kSrc / "configs/pair.toml");
  auto t = lpu::rack::apply_rack_overrides(
      text, {"links.latency_cycles=200", "topology.name=ring", "chip.set+=latency.c2c_send=6", "links.extra.x=1"}, "pair");
  CHECK(contains(t, "latency_cycles = 200"));
  CHECK(contains(t, "name = 'ring'"));
  CHECK(contains(t, "'latency.c2c_send=6'"));
  auto cfg = lpu::rack::parse_rack(
      lpu::rack::apply_rack_overrides(text, {"links.latency_cycles=200", "chip.set+=latency.c2c_send=6"}, "pair"), "pair");
  CHECK(cfg.link_classes.at(0).latency_cycles == 200);
  // hop = c2c_send + serialisation + latency = 6 + 25 + 200 (docs/rack.md, link model)
  CHECK(lpu::rack::link_timing(cfg, 0, 0).hop() == 231);
  CHECK_THROWS_AS(lpu::rack::apply_rack_overrides(text, {"chips.x=1"}, "pair"), lpu::ConfigError);  // chips is no table
  CHECK_THROWS_AS(lpu::rack::apply_rack_overrides(text, {"links.seed+=1"}, "pair"), lpu::ConfigError);

  TempDir d;
  Run r;
  r.rack_source = (kSrc / "configs/pair.toml").string();
  r.rack_path = (d.path / "run_0.rack.toml").string();
  r.rack_sets = {"links.latency_cycles=180"};
  write_rack(r);
  CHECK(lpu::rack::load_rack(r.rack_path).link_classes.at(0).latency_cycles == 180);
  CHECK(lpu::rack::load_rack(r.rack_source, r.rack_sets).link_classes.at(0).latency_cycles == 180);
  r.rack_sets = {"links.latency_cycles=fast"};  // a string where an integer belongs: the rack parser says so
  CHECK_THROWS_WITH_AS(write_rack(r), doctest::Contains("links.latency_cycles"), lpu::ConfigError);
}

TEST_CASE("sweep metrics: flattened keys, aggregates over chips, defaults, CSV") {
  auto j = nlohmann::json::parse(R"({"cycles": 10, "seconds": 1e-8, "preset": "lp30", "host": {"wall_seconds": 0.5},
    "energy": {"total_j": 2.5, "static_j": 1.0},
    "rack": {"cycles": 12, "link_bytes": 640},
    "chips": [{"cycles": 10, "sram_bytes_read": 100}, {"cycles": 12, "sram_bytes_read": 50}]})");
  auto f = flatten(j);
  CHECK(evaluate("rack.link_bytes", f)->get<int>() == 640);
  CHECK(evaluate("chips.1.cycles", f)->get<int>() == 12);
  CHECK(evaluate("sum(chips.*.sram_bytes_read)", f)->get<int>() == 150);
  CHECK(evaluate("max(chips.*.cycles)", f)->get<int>() == 12);
  CHECK(evaluate("avg(chips.*.cycles)", f)->get<double>() == doctest::Approx(11));
  CHECK(evaluate("count(chips.*.cycles)", f)->get<int>() == 2);
  CHECK(!evaluate("nope", f));
  CHECK_THROWS_AS(check_metric("chips.*.cycles"), lpu::Error);
  CHECK_THROWS_AS(check_metric("median(chips.*.cycles)"), lpu::Error);
  // Defaults: named statistics outside arrays and host.*, plus sums over a rack's chips.
  auto d = default_metrics({&f});
  CHECK(d == std::vector<std::string>{"cycles", "rack.cycles", "seconds", "rack.link_bytes", "energy.total_j",
                                      "sum(chips.*.sram_bytes_read)"});

  std::vector<Param> ps{parse_param("a=1,2")};
  PlanOptions o;
  o.command = {"run", "x"};
  o.out_dir = "d";
  auto runs = plan(ps, o);
  std::vector<Result> res(2);
  res[0].status = "ok";
  res[0].flat = f;
  res[0].wall_s = 0.25;
  res[1].status = "failed";
  CHECK(csv(ps, runs, res, {"cycles", "energy.total_j", "preset"}) ==
        "run,a,status,cycles,energy.total_j,preset,wall_s\n"
        "0,1,ok,10,2.5,lp30,0.250\n"
        "1,2,failed,,,,\n");
  CHECK(csv_field("a,b") == "\"a,b\"");
  CHECK(shell_quote("it's") == "'it'\\''s'");
  CHECK(shell_quote("--set=a.b") == "--set=a.b");
  auto p = parse_plot("@chips:sum(chips.*.x):latency.mem_read");
  CHECK(p.x == "chips");
  CHECK(p.y == "sum(chips.*.x)");
  CHECK(p.series == "latency.mem_read");
  CHECK_THROWS_AS(parse_plot("x"), lpu::Error);
}

TEST_CASE("lpu sweep: a latency of lpu run moves the cycle count by the derived amount, a failing run is reported") {
  TempDir d;
  const auto lpa = (kSrc / "examples/sram_stream.lpa").string();
  REQUIRE(sh(fmt::format("'{}' asm '{}' -o s.lpo", kLpu, lpa), d.path).status == 0);
  // sram_stream on lp30: the last READ issues in 3324 and lands in 3324 + mem_read; the program
  // takes L + 1 + (superlanes - 1) x stagger = 3324 + mem_read + 1 + 19 cycles (docs/timing.md
  // rule 23): 3349 for mem_read = 5, 3353 for 9. "x" is no number: that run fails, alone.
  auto r = sh(fmt::format("'{}' sweep --set latency.mem_read=5,x,9 --out out -j 2 -- run s.lpo --timing-only", kLpu),
              d.path);
  CHECK(r.status == 1);  // one run failed
  CHECK(contains(r.text, "run 1 failed: latency.mem_read=x: exit 1: lpu: error: config: latency.mem_read"));
  CHECK(contains(r.text, "3 runs: 1 failed, 2 ok"));
  auto rows = read_csv(d.path / "out/sweep.csv");
  REQUIRE(rows.size() == 3);
  CHECK(rows[0]["latency.mem_read"] == "5");
  CHECK(rows[0]["status"] == "ok");
  CHECK(rows[0]["cycles"] == "3349");
  CHECK(rows[1]["status"] == "failed");
  CHECK(rows[1]["cycles"] == "");
  CHECK(rows[2]["status"] == "ok");
  CHECK(rows[2]["cycles"] == "3353");
  // Every run read 470 slices x 3325 rows x 320 B = 500,080,000 bytes.
  CHECK(rows[2]["sram_bytes_read"] == "500080000");
  CHECK(fs::exists(d.path / "out/run_0.json"));
  CHECK(contains(slurp(d.path / "out/commands.sh"), "--set latency.mem_read=9 --stats out/run_2.json"));

  // --fail-fast with one job: the failure stops the sweep; the last run never starts.
  r = sh(fmt::format("'{}' sweep --set latency.mem_read=5,x,9 --out ff --fail-fast -q -- run s.lpo --timing-only", kLpu),
         d.path);
  CHECK(r.status == 1);
  rows = read_csv(d.path / "ff/sweep.csv");
  REQUIRE(rows.size() == 3);
  CHECK(rows[0]["status"] == "ok");
  CHECK(rows[1]["status"] == "failed");
  CHECK(rows[2]["status"] == "not run");

  // --dry-run prints the commands and runs nothing.
  r = sh(fmt::format("'{}' sweep --set icu.superlane_stagger=1,2 --out dry --dry-run -- run s.lpo", kLpu), d.path);
  CHECK(r.status == 0);
  CHECK(contains(r.text, "run s.lpo --set icu.superlane_stagger=2 --stats dry/run_1.json"));
  CHECK(!fs::exists(d.path / "dry"));
}

TEST_CASE("lpu sweep: a rack link latency, through a derived rack file, and a plot") {
  TempDir d;
  // Ping-pong on configs/pair.toml: chip 0 SENDs in 6, each of the 4 rounds takes
  // 2 x HOP + 2 x c2c_recv = 2 HOP + 8, and the last vector is written one hop west of sxm.e
  // (ready = RECV + c2c_recv + 1) and lands mem_write = 2 later; program length L + 1 + 19:
  // cycles = 6 + 4 (2 HOP + 8) - 4 + 5 + 2 + 20 = 8 HOP + 61, HOP = 4 + 25 + latency_cycles.
  // latency 160: HOP 189, 1573 cycles (docs/rack.md); latency 200: HOP 229, 1893 cycles.
  auto r = sh(fmt::format("'{}' sweep --set rack.links.latency_cycles=160,200 --out rk --metric rack.cycles "
                          "--metric rack.send_to_recv_cycles.max --plot links.latency_cycles:rack.cycles "
                          "--plot rack.links.latency_cycles:rack.cycles -- run --rack '{}' '{}' --timing-only",
                          kLpu, (kSrc / "configs/pair.toml").string(), (kSrc / "examples/rack/pingpong.toml").string()),
              d.path);
  INFO(r.text);
  auto rows = read_csv(d.path / "rk/sweep.csv");
  REQUIRE(rows.size() == 2);
  CHECK(rows[0]["rack.cycles"] == "1573");
  CHECK(rows[1]["rack.cycles"] == "1893");
  CHECK(rows[1]["rack.send_to_recv_cycles.max"] == "229");
  CHECK(lpu::rack::load_rack((d.path / "rk/run_1.rack.toml").string()).link_classes.at(0).latency_cycles == 200);
  // The first --plot names no column ("links.latency_cycles"): an error naming the columns.
  CHECK(r.status != 0);
  CHECK(contains(r.text, "no column 'links.latency_cycles'"));
  // With matplotlib (scripts/setup.sh installs it) the second plot is a PNG.
  r = sh(fmt::format("'{}' sweep --set rack.links.latency_cycles=160,200 --out rk2 -q "
                     "--plot rack.links.latency_cycles:rack.cycles -- run --rack '{}' '{}' --timing-only",
                     kLpu, (kSrc / "configs/pair.toml").string(), (kSrc / "examples/rack/pingpong.toml").string()),
         d.path);
  INFO(r.text);
  if (sh("/usr/bin/python3 -c 'import matplotlib'", d.path).status == 0) {
    CHECK(r.status == 0);
    const auto png = d.path / "rk2/plot_rack.cycles_vs_rack.links.latency_cycles.png";
    REQUIRE(fs::exists(png));
    CHECK(slurp(png).substr(1, 3) == "PNG");
  }
}

TEST_CASE("experiment files: a global ping-pong on the lpx rack and the 576-chip tsp1 system") {
  TempDir d;
  auto r = sh(fmt::format("'{}' run --rack '{}' '{}' --timing-only -q --stats g.json", kLpu,
                          (kSrc / "configs/lpx-rack.toml").string(), (kSrc / "examples/rack/pingpong_global.toml").string()),
              d.path);
  REQUIRE(r.status == 0);
  auto j = nlohmann::json::parse(slurp(d.path / "g.json"));
  // Chips 7 and 8 are joined by a global link: hop = c2c_send 4 + serialisation 25 + 240 = 269;
  // chip 7 runs 8 x hop + 61 = 2213 cycles (pingpong.toml's derivation).
  CHECK(j["rack"]["send_to_recv_cycles"]["max"] == 269);
  CHECK(j["rack"]["cycles"] == 2213);
  // tsp1-576: 576 chips, 16 links each (a 24 x 24 torus, 4 per direction); 15 GB/s per link is
  // ceil(320 / (15e9 / 0.9e9)) = 20 cycles per vector; hop = 4 + 20 + 300 = 324.
  auto cfg = lpu::rack::load_rack((kSrc / "configs/tsp1-576.toml").string());
  CHECK(cfg.chips == 576);
  CHECK(lpu::rack::link_timing(cfg, 0, 0).hop() == 324);
  CHECK(lpu::rack::rack_figures(cfg).sram_bytes == doctest::Approx(576 * 230686720.0));
}
