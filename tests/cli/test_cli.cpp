// `lpu run --rtl | --rack | --remote` and `lpu info --rack`, through the real executable.
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "helpers.hpp"

namespace {
using namespace lpu_cli_test;
// `lpu ARGS` in `dir` (the name reads like the command line).
Result lpu(const std::string& args, const fs::path& dir = fs::temp_directory_path()) { return run_lpu(args, dir); }
// `lpu serve ARGS --listen 127.0.0.1:0` in a child process, stopped with SIGTERM at the end;
// its stderr goes to `err` (empty: inherited).
struct Serve {
  pid_t pid = -1;
  FILE* out = nullptr;
  std::string addr;
  explicit Serve(std::vector<std::string> args, const fs::path& err = {}, const std::string& listen = "127.0.0.1:0") {
    int p[2];
    REQUIRE(pipe(p) == 0);
    pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      dup2(p[1], 1);
      close(p[0]);
      close(p[1]);
      if (!err.empty()) {
        FILE* e = std::fopen(err.c_str(), "w");
        if (e) dup2(fileno(e), 2);
      }
      std::vector<std::string> all = {kLpu, "serve", "--listen", listen, "--workers", "1"};
      all.insert(all.end(), args.begin(), args.end());
      std::vector<char*> argv;
      for (auto& a : all) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(kLpu.c_str(), argv.data());
      _exit(127);
    }
    close(p[1]);
    out = fdopen(p[0], "r");
    char line[256] = {0};
    REQUIRE(std::fgets(line, sizeof line, out) != nullptr);
    std::string l(line);
    const auto at = l.find("listening on ");
    REQUIRE(at != std::string::npos);
    addr = l.substr(at + 13);
    while (!addr.empty() && (addr.back() == '\n' || addr.back() == '\r')) addr.pop_back();
    if (addr.rfind("0.0.0.0:", 0) == 0) addr = "127.0.0.1:" + addr.substr(8);
  }
  // SIGTERM; the exit status (0 for a graceful stop).
  int stop() {
    if (pid < 0) return -1;
    kill(pid, SIGTERM);
    int status = 0;
    waitpid(pid, &status, 0);
    pid = -1;
    std::fclose(out);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  ~Serve() { stop(); }
};

// Every key path of a JSON value ("units.mem.instructions"), arrays by index.
void key_paths(const nlohmann::json& j, const std::string& at, std::set<std::string>& out) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      const auto p = at.empty() ? it.key() : at + "." + it.key();
      out.insert(p);
      key_paths(it.value(), p, out);
    }
  } else if (j.is_array()) {
    for (std::size_t i = 0; i < j.size(); ++i) key_paths(j[i], at + "." + std::to_string(i), out);
  }
}

}  // namespace

TEST_CASE("lpu info --rack: the reference rack's figures") {
  auto r = lpu(fmt::format("info --rack '{}' --json", (kSrc / "configs/lpx-rack.toml").string()));
  REQUIRE(r.status == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["chips"] == 256);
  // 256 chips x 500.08 MB (lp30) = 128.02 GB; 256 x 150.4 TB/s = 38.5 PB/s; 256 chips x 96 link
  // ports x 13.02 GB/s x 2 directions = 640.0 TB/s (configs/lpx-rack.toml header).
  CHECK(j["sram_bytes"].get<double>() == doctest::Approx(128.02048e9));
  CHECK(j["sram_bandwidth_bytes_per_s"].get<double>() == doctest::Approx(38.5024e15));
  CHECK(j["c2c_bandwidth_bytes_per_s"].get<double>() == doctest::Approx(639.95904e12));
  auto t = lpu(fmt::format("info --rack '{}'", (kSrc / "configs/lpx-rack.toml").string()));
  CHECK(t.status == 0);
  CHECK(contains(t.out, "bisection"));
  auto bad = lpu(fmt::format("info --rack '{}' --preset mini", (kSrc / "configs/lpx-rack.toml").string()));
  CHECK(bad.status != 0);
  CHECK(contains(bad.out, "rack file names its chip preset"));
}

TEST_CASE("lpu run --rtl: same results as the model, a waveform in FST and VCD") {
  TempDir d;
  REQUIRE(lpu(fmt::format("asm '{}' -o va.lpo", (kSrc / "examples/vector_add.lpa").string()), d.path).status == 0);
  auto rtl = lpu("run --rtl va.lpo --wave va.fst --output c=c_rtl.npy --stats rtl.json", d.path);
  REQUIRE(rtl.status == 0);
  // vector_add on mini: 9 cycles (tests/rtl/test_rtl.cpp derives it from docs/timing.md rule 23).
  CHECK(contains(rtl.out, "RTL of mini: 9 cycles"));
  CHECK(json_of(d.path / "rtl.json")["cycles"] == 9);
  auto model = lpu("run va.lpo --output c=c_model.npy --stats model.json -q", d.path);
  REQUIRE(model.status == 0);
  CHECK(json_of(d.path / "model.json")["cycles"] == 9);
  CHECK(slurp(d.path / "c_rtl.npy") == slurp(d.path / "c_model.npy"));
  CHECK(fs::file_size(d.path / "va.fst") > 100);
  REQUIRE(lpu("run --rtl va.lpo --wave va.vcd -q", d.path).status == 0);
  const auto vcd = slurp(d.path / "va.vcd");
  CHECK(contains(vcd, "$enddefinitions"));
  CHECK(contains(vcd, "$scope module lpu_mini"));
}

TEST_CASE("lpu run --rtl: programs for another chip and model-only options are refused clearly") {
  TempDir d;
  REQUIRE(lpu(fmt::format("asm '{}' -o s.lpo", (kSrc / "examples/sram_stream.lpa").string()), d.path).status == 0);
  auto r = lpu("run --rtl s.lpo", d.path);
  CHECK(r.status != 0);
  CHECK(contains(r.out, "assembled for preset 'lp30'; the RTL is the 'mini' chip"));
  REQUIRE(lpu(fmt::format("asm '{}' -o va.lpo", (kSrc / "examples/vector_add.lpa").string()), d.path).status == 0);
  auto t = lpu("run --rtl va.lpo --trace t.json", d.path);
  CHECK(t.status != 0);
  CHECK(contains(t.out, "--rtl does not take --trace"));
  auto s = lpu("run --rtl va.lpo --set latency.vxm_alu=2", d.path);
  CHECK(s.status != 0);
  CHECK(contains(s.out, "--set is for the model"));
  CHECK(lpu("run --rtl --timing-only va.lpo", d.path).status != 0);
}

TEST_CASE("lpu run --rtl: a run-time error names chip, unit, queue and cycle once, as the model does") {
  // DMAIN in cycle 3 with no host vector: both backends stop there (tests/rtl/test_lockstep.cpp
  // "an invalid program fails the same way on both").
  TempDir d;
  std::ofstream(d.path / "e.lpa") << ".preset mini\n.queue sxm.e.0\n    @3 DMAIN 0, s0w\n";
  REQUIRE(lpu("asm e.lpa -o e.lpo", d.path).status == 0);
  auto rtl = lpu("run --rtl e.lpo", d.path);
  CAPTURE(rtl.out);
  CHECK(rtl.status != 0);
  CHECK(contains(rtl.out, "chip 0, sxm.e (queue sxm.e.0), cycle 3: DMAIN: the host has provided no more vectors (RTL error code 10,"));
  CHECK_FALSE(contains(rtl.out, "RTL, "));  // the RTL's own located message is not nested in it
  CHECK_FALSE(contains(rtl.out, "rtl, cycle"));
  auto model = lpu("run e.lpo", d.path);
  CAPTURE(model.out);
  CHECK(model.status != 0);
  CHECK(contains(model.out, "chip 0, sxm.e (queue sxm.e.0), cycle 3: DMAIN on channel 0: the host has provided no more vectors"));
}

TEST_CASE("lpu asm: every independent error of the file, one line each, exit status 1, no object") {
  TempDir d;
  std::ofstream(d.path / "bad.lpa") << ".preset mini\n"
                                       ".queue vxm.0\n"
                                       "  FROB s0e\n"                 // 3
                                       ".const X = 1 / 0\n"           // 4
                                       ".const Y = X + 1\n"           // follows from 4
                                       ".queue mem.w.0\n"
                                       "  READ 999, s0e\n"            // 7
                                       "  READ 0, s0e $\n";           // 8
  auto r = lpu("asm bad.lpa -o bad.lpo", d.path);
  CAPTURE(r.out);
  CHECK(r.status == 1);
  CHECK(r.out ==
        "bad.lpa:3:3: error: unknown mnemonic 'FROB'\n"
        "bad.lpa:4:14: error: division by zero: 1 / 0\n"
        "bad.lpa:7:8: error: address 999 out of range: a MEM slice has rows 0..255\n"
        "bad.lpa:8:15: error: unexpected character '$'\n");
  CHECK_FALSE(fs::exists(d.path / "bad.lpo"));
}

TEST_CASE("lpu run --rack: ping-pong, identical statistics with 1 and 2 threads") {
  TempDir d;
  const auto rack = (kSrc / "configs/pair.toml").string();
  const auto man = (kSrc / "examples/rack/pingpong.toml").string();
  REQUIRE(lpu(fmt::format("run --rack '{}' '{}' --threads 1 --stats t1.json -q", rack, man), d.path).status == 0);
  REQUIRE(lpu(fmt::format("run --rack '{}' '{}' --threads 2 --stats t2.json", rack, man), d.path).status == 0);
  auto a = json_of(d.path / "t1.json"), b = json_of(d.path / "t2.json");
  CHECK(a["host"]["threads"] == 1);
  CHECK(b["host"]["threads"] == 2);
  a.erase("host");
  b.erase("host");
  CHECK(a == b);
  // Each of the 8 transfers (4 rounds, both ways): SEND issue to RECV = c2c_send (4) +
  // serialisation ceil(320 / 13.02) (25) + link latency (160, configs/pair.toml) = 189 cycles.
  CHECK(a["rack"]["transfers"] == 8);
  CHECK(a["rack"]["send_to_recv_cycles"]["min"] == 189);
  CHECK(a["rack"]["send_to_recv_cycles"]["max"] == 189);
  auto chk = lpu(fmt::format("run --rack '{}' '{}' --check", rack, man), d.path);
  CHECK(chk.status == 0);
  CHECK(contains(chk.out, "0 error(s)"));
  // Waveform and timeline of a rack run, through the command (tests/rack/test_trace.cpp checks
  // their contents): chip 1 only in the VCD; both chips and the flow arrows between them in the trace.
  REQUIRE(lpu(fmt::format("run --rack '{}' '{}' --wave pp.vcd --chips 1 -q", rack, man), d.path).status == 0);
  REQUIRE(lpu(fmt::format("run --rack '{}' '{}' --trace pp.json -q", rack, man), d.path).status == 0);
  const auto vcd = slurp(d.path / "pp.vcd");
  CHECK(contains(vcd, "$scope module chip1"));
  CHECK_FALSE(contains(vcd, "$scope module chip0"));
  CHECK(contains(slurp(d.path / "pp.json"), "\"ph\":\"f\""));
  auto bad = lpu(fmt::format("run --rack '{}' '{}' --reg r1=3", rack, man), d.path);
  CHECK(bad.status != 0);
  CHECK(contains(bad.out, "--rack does not take --reg"));
  CHECK(lpu(fmt::format("run '{}' --threads 2", man), d.path).status != 0);  // --threads needs --rack
}

TEST_CASE("lpu run --remote: the same files as a local run, through lpu serve") {
  TempDir d;
  REQUIRE(lpu(fmt::format("asm '{}' -o va.lpo", (kSrc / "examples/vector_add.lpa").string()), d.path).status == 0);
  int out[2];
  REQUIRE(pipe(out) == 0);
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    dup2(out[1], 1);
    close(out[0]);
    close(out[1]);
    execl(kLpu.c_str(), kLpu.c_str(), "serve", "--listen", "127.0.0.1:0", "--workers", "1", "-q", nullptr);
    _exit(127);
  }
  close(out[1]);
  FILE* f = fdopen(out[0], "r");
  char line[256] = {0};
  REQUIRE(std::fgets(line, sizeof line, f) != nullptr);
  std::string l(line);
  REQUIRE(contains(l, "listening on 127.0.0.1:"));
  auto addr = l.substr(l.find("127.0.0.1:"));
  while (!addr.empty() && (addr.back() == '\n' || addr.back() == '\r')) addr.pop_back();
  auto remote = lpu(fmt::format("run --remote {} va.lpo --output c=c_r.npy --stats r.json", addr), d.path);
  auto local = lpu("run va.lpo --output c=c_l.npy --stats l.json", d.path);
  auto refused = lpu(fmt::format("run --remote {} va.lpo --wave w.vcd", addr), d.path);
  kill(pid, SIGTERM);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  std::fclose(f);
  REQUIRE(remote.status == 0);
  REQUIRE(local.status == 0);
  CHECK(slurp(d.path / "c_r.npy") == slurp(d.path / "c_l.npy"));
  CHECK(json_of(d.path / "r.json")["cycles"] == json_of(d.path / "l.json")["cycles"]);
  CHECK(refused.status != 0);
  CHECK(contains(refused.out, "--remote does not take --wave"));
  CHECK(WIFEXITED(status));
}

TEST_CASE("lpu run --remote --stats: exactly the keys and values of a local run (but host)") {
  // Two deterministic programs: vector_add on mini, and an int8 matmul on lp30 (MXM counters,
  // energy) with the host's inputs and outputs.
  TempDir d;
  REQUIRE(lpu(fmt::format("asm '{}' -o va.lpo", (kSrc / "examples/vector_add.lpa").string()), d.path).status == 0);
  REQUIRE(lpu(fmt::format("asm '{}' -o mm.lpo", (kSrc / "examples/matmul_i8.lpa").string()), d.path).status == 0);
  Serve serve({"-q"});
  for (const std::string run : {"va.lpo --output c=c.npy", "mm.lpo", "va.lpo --timing-only"}) {
    CAPTURE(run);
    auto l = lpu(fmt::format("run {} --stats local.json -q", run), d.path);
    auto r = lpu(fmt::format("run --remote {} {} --stats remote.json -q", serve.addr, run), d.path);
    REQUIRE(l.status == 0);
    REQUIRE(r.status == 0);
    auto jl = json_of(d.path / "local.json"), jr = json_of(d.path / "remote.json");
    std::set<std::string> kl, kr;
    key_paths(jl, "", kl);
    key_paths(jr, "", kr);
    std::string only_local, only_remote;
    for (const auto& k : kl)
      if (!kr.count(k)) only_local += k + " ";
    for (const auto& k : kr)
      if (!kl.count(k)) only_remote += k + " ";
    CHECK(only_local == "");
    CHECK(only_remote == "");
    CHECK(kl.count("host.wall_seconds") == 1);
    // Values: everything but the wall-clock time of whichever process emulated it.
    jl.erase("host");
    jr.erase("host");
    CHECK(jl == jr);
  }
  CHECK(serve.stop() == 0);
}

TEST_CASE("lpu serve --token-file: lpu run --remote needs the token, from --token-file or LPU_TOKEN") {
  TempDir d;
  REQUIRE(lpu(fmt::format("asm '{}' -o va.lpo", (kSrc / "examples/vector_add.lpa").string()), d.path).status == 0);
  std::ofstream(d.path / "token") << "correct horse battery staple\n";
  std::ofstream(d.path / "wrong") << "incorrect\n";
  Serve serve({"--token-file", (d.path / "token").string(), "-q"});
  auto ok = lpu(fmt::format("run --remote {} va.lpo --token-file token --output c=c.npy", serve.addr), d.path);
  CHECK(ok.status == 0);
  CHECK(contains(ok.out, "cycles"));
  auto none = lpu(fmt::format("run --remote {} va.lpo -q", serve.addr), d.path);
  CHECK(none.status != 0);
  CHECK(contains(none.out, "this server requires a token"));
  const auto cmd = fmt::format("cd '{}' && LPU_TOKEN='correct horse battery staple' '{}' run --remote {} va.lpo -q 2>&1",
                               d.path.string(), kLpu, serve.addr);
  CHECK(std::system(cmd.c_str()) == 0);
  auto bad = lpu(fmt::format("run --remote {} va.lpo --token-file wrong -q", serve.addr), d.path);
  CHECK(bad.status != 0);
  CHECK(contains(bad.out, "wrong token"));
  // --token-file belongs to --remote.
  CHECK(lpu("run va.lpo --token-file token -q", d.path).status != 0);
  CHECK(serve.stop() == 0);
}

TEST_CASE("lpu serve: a warning on stderr when listening beyond loopback without a token, even with -q") {
  TempDir d;
  {
    Serve serve({"-q"}, d.path / "err.txt", "0.0.0.0:0");
    CHECK(serve.stop() == 0);
  }
  CHECK(contains(slurp(d.path / "err.txt"), "lpu serve: warning: listening on 0.0.0.0:0 without a token"));
  std::ofstream(d.path / "token") << "t0ken\n";
  {
    Serve serve({"-q", "--token-file", (d.path / "token").string()}, d.path / "err2.txt", "0.0.0.0:0");
    CHECK(serve.stop() == 0);
  }
  CHECK_FALSE(contains(slurp(d.path / "err2.txt"), "warning"));
  // Limits and timeouts are options; nonsense values are refused.
  CHECK(lpu("serve --idle-timeout -1").status != 0);
  CHECK(lpu("serve --max-connections-per-address -2").status != 0);
  auto help = lpu("serve --help");
  for (const char* o : {"--token-file", "--max-connections-per-address", "--max-sessions-per-address", "--idle-timeout",
                        "--auth-timeout", "--write-timeout", "--frame-timeout", "--max-connection-backlog-mib",
                        "--max-backlog-mib", "--max-session-mib"})
    CHECK(contains(help.out, o));
}
