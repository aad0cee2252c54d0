// The example programs of examples/rack on small racks: ping-pong latency, link and chip
// bandwidth; and the errors a rack detects: RECV before arrival, SEND without room, corrupted
// transfers; DESKEW with start skew; mixed clocks; the cross-chip schedule checker.
#include <doctest/doctest.h>

#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "helpers.hpp"
#include "lpu/common/errors.hpp"

using namespace lpu::rack;

namespace {

std::string error_of(Rack& r) {
  try {
    r.run();
  } catch (const lpu::SimError& e) {
    return e.what();
  }
  return "(no error)";
}

bool has(const std::string& s, const std::string& sub) { return s.find(sub) != std::string::npos; }

}  // namespace

TEST_CASE("ping-pong: measured latency equals the configured latency") {
  // Derivation (configs/pair.toml, lp30): a 320-byte vector on a link of 1 lane x 112 Gb/s x
  // 0.93 payload efficiency = 13.02 bytes per 1 GHz cycle serialises in ceil(320 / 13.02) = 25
  // cycles; links.latency_cycles = 160 (SerDes + FEC + wire). So a vector departs c2c_send = 4
  // cycles after its SEND issues and arrives 25 + 160 = 185 cycles after departure: the earliest
  // RECV is SEND + 189 (HOP). A round trip is HOP out, chip 1's RECV-to-SEND (c2c_recv = 4),
  // HOP back, chip 0's RECV-to-SEND (4): 2 x 189 + 8 = 386 cycles.
  const auto cfg = rt::rack("pair.toml");
  const std::int64_t ser = 25, lat = 160, c2c_send = 4, c2c_recv = 4, hop = c2c_send + ser + lat;
  REQUIRE(link_timing(cfg, 0, 0).serialisation == ser);
  REQUIRE(link_timing(cfg, 0, 0).hop() == hop);
  const auto prog = rt::manifest("pingpong.toml", cfg);
  for (bool timing_only : {false, true}) {
    CAPTURE(timing_only);
    Rack r(cfg, prog, rt::opts(timing_only));
    std::vector<std::uint8_t> ball(320);
    for (int i = 0; i < 320; ++i) ball[std::size_t(i)] = std::uint8_t(i * 7 + 1);
    r.chip(0)->write_symbol("ball", ball);
    r.run();
    const auto st = r.stats();
    // 4 rounds: 8 transfers, each departure to arrival exactly ser + lat, and each RECV issued
    // exactly at arrival (SEND issue to RECV issue = HOP, wait 0).
    CHECK(st.transfers == 8);
    CHECK(st.latency_cycles.min == ser + lat);
    CHECK(st.latency_cycles.max == ser + lat);
    CHECK(st.send_to_recv_cycles.min == hop);
    CHECK(st.send_to_recv_cycles.max == hop);
    for (const auto& l : st.links) CHECK(l.wait_cycles.max == 0);
    // Chip 0: SEND k in 6 + 386 k, its RECV 386 cycles later; the 4th RECV in 6 + 3 x 386 + 382
    // = 1546, on s0w at sxm.e in 1550, at mem.e.234 in 1551 (WRITE), landing in 1553 (mem_write
    // 2); program length = 1553 + 1 + 19 (superlane stagger) = 1573.
    CHECK(st.chip[0].cycles == 6 + 3 * (2 * hop + 2 * c2c_recv) + 2 * hop + c2c_recv + c2c_recv + 1 + 2 + 1 + 19);
    CHECK(st.chip[0].cycles == 1573);
    if (!timing_only) CHECK(r.chip(0)->read_symbol("back") == ball);
  }
}

TEST_CASE("ping-pong: a RECV one cycle before the arrival is a located error") {
  const auto cfg = rt::rack("pair.toml");
  // HOP - 1 makes chip 0's first RECV 2 cycles early (2 x HOP in its schedule).
  const std::string m =
      "[[program]]\nchips = \"0\"\nsource = \"ping.lpa\"\n"
      "consts = { LINK = 0, HOP = \"hop(0) - 1\", ROUNDS = 2 }\n"
      "[[program]]\nchips = \"1\"\nsource = \"pong.lpa\"\n"
      "consts = { LINK = 0, HOP = \"hop(0)\", FIRST = \"6 + hop(0)\", ROUNDS = 2 }\n";
  const auto prog = rt::manifest_text(m, cfg);
  for (bool timing_only : {false, true}) {
    CAPTURE(timing_only);
    Rack r(cfg, prog, rt::opts(timing_only));
    const auto e = error_of(r);
    CHECK(has(e, "chip 0"));
    CHECK(has(e, "sxm.e.0"));
    CHECK(has(e, "cycle 386:"));  // scheduled 6 + 2 x 188 + 4; the pong arrives in 6 + 189 + 4 + 189 = 388
    CHECK(has(e, "RECV on link 0: nothing has arrived"));
    CHECK(has(e, "ping.lpa:"));
  }
  // The checker lists it with its source line (and the vectors left unreceived as warnings).
  auto d = check_schedule(cfg, prog);
  REQUIRE(!d.empty());
  CHECK(d[0].chip == 0);
  CHECK(d[0].queue == "sxm.e.0");
  CHECK(d[0].cycle == 386);
  REQUIRE(d[0].loc);
  CHECK(has(d[0].loc->file, "ping.lpa"));
  CHECK(d[0].loc->line == 24);
  CHECK(has(d[0].message, "arrives in cycle 388, 2 cycles later"));
  // A consistent program has no findings.
  CHECK(check_schedule(cfg, rt::manifest("pingpong.toml", cfg)).empty());
}

TEST_CASE("bandwidth: one saturated link reaches >= 97% of its configured bandwidth") {
  // 1000 vectors, one every serialisation time (25 cycles): 320 B / 25 cycles = 12.8 B/cycle
  // of the configured 13.02 = 98.3% (the rest is a vector rounded up to whole cycles).
  const auto cfg = rt::rack("pair.toml");
  const auto prog = rt::manifest("bandwidth.toml", cfg);
  for (bool timing_only : {true, false}) {
    CAPTURE(timing_only);
    Rack r(cfg, prog, rt::opts(timing_only, 2));
    r.run();
    const auto st = r.stats();
    REQUIRE(st.links.size() == 1u);
    const auto& l = st.links[0];
    CHECK(l.transfers == 1000);
    CHECK(l.bytes == 320000);
    CHECK(l.busy_cycles == 25000);
    CHECK(l.last_free - l.first_depart == 25000);
    CHECK(l.active_fraction() >= 0.97);
    CHECK(l.active_fraction() == doctest::Approx(12.8 / 13.02).epsilon(0.001));
    CHECK(l.unreceived == 0);
    CHECK(l.wait_cycles.max == 0);
  }
}

TEST_CASE("bandwidth: one chip drives its 28 tray links at >= 97% of their bandwidth") {
  const auto cfg = rt::rack("tray8.toml");
  const auto prog = rt::manifest("bandwidth_tray.toml", cfg);
  Rack r(cfg, prog, rt::opts(true, 2));
  r.run();
  const auto st = r.stats();
  REQUIRE(st.links.size() == 28u);
  std::int64_t bytes = 0, first = INT64_MAX, last = 0;
  double configured = 0;
  for (const auto& l : st.links) {
    CHECK(l.chip == 0);
    CHECK(l.transfers == 400);
    CHECK(l.active_fraction() >= 0.97);
    bytes += l.bytes;
    first = std::min(first, l.first_depart);
    last = std::max(last, l.last_free);
    configured += l.bytes_per_cycle;
  }
  const double per_chip = double(bytes) / double(last - first);
  CHECK(per_chip / configured >= 0.97);
  CHECK(st.unreceived == 0);
}

TEST_CASE("a SEND while the link is still serialising is an error, not a stall") {
  const auto cfg = rt::rack("pair.toml");
  // Two SENDs 10 cycles apart on a link that needs 25 per vector.
  const std::string tx =
      ".preset lp30\n.queue mem.e.234\nrd: READ 0, s0e\n    REPEAT 1, 10\n"
      ".queue sxm.e.0\n    @ready(rd) SEND 0, s0e\n    REPEAT 1, 10\n";
  const std::string rx = ".preset lp30\n.queue sxm.e.0\n    @195 RECV 0, s0w\n";
  const auto prog = assemble_sources(cfg, {tx, rx}, "room.lpa");
  for (bool timing_only : {false, true}) {
    CAPTURE(timing_only);
    Rack r(cfg, prog, rt::opts(timing_only));
    const auto e = error_of(r);
    CHECK(has(e, "chip 0, sxm.e (queue sxm.e.0), cycle 16:"));
    CHECK(has(e, "SEND on link 0 (to chip 1 link 0) departs in cycle 20"));
    CHECK(has(e, "departs in cycle 10 (busy until 35"));
    CHECK(has(e, "no back-pressure"));
  }
  auto d = check_schedule(cfg, prog);
  REQUIRE(!d.empty());
  CHECK(d[0].cycle == 16);
  REQUIRE(d[0].loc);
  CHECK(d[0].loc->line == 6);
}

TEST_CASE("a corrupted transfer is detected by its CRC, never delivered silently") {
  auto cfg = rt::rack_text("chips = 2\n[topology]\nname = \"full\"\n[links]\nlatency_cycles = 160\nber = 2e-5\nseed = 3\n");
  const auto prog = rt::manifest("bandwidth.toml", cfg);
  std::string first;
  for (bool timing_only : {false, true})
    for (int threads : {1, 2}) {
      CAPTURE(timing_only);
      CAPTURE(threads);
      Rack r(cfg, prog, rt::opts(timing_only, threads));
      const auto e = error_of(r);
      CHECK(has(e, "chip 1, c2c link 0, cycle "));
      CHECK(has(e, "CRC-32 mismatch: the vector sent by chip 0 on link 0"));
      CHECK(has(e, "not delivered"));
      if (first.empty()) first = e;
      CHECK(e == first);  // the same transfer, whatever the mode and thread count
    }
  // No errors at ber 0 with the same program.
  Rack ok(rt::rack("pair.toml"), rt::manifest("bandwidth.toml", rt::rack("pair.toml")), rt::opts(false));
  CHECK_NOTHROW(ok.run());
}

TEST_CASE("DESKEW realigns chips started with skew") {
  // DESKEW runs on SXM queues; a NOTIFY after it releases the other queues (parked by SYNC).
  // Chip 0: DESKEW in 0 -> NOTIFY in 4096 (P = 4096 on lp30) -> the READ issues in 4096 +
  // notify_latency 4 = 4100, the SEND in 4106; the vector arrives in 4106 + 189 = 4295.
  const std::string tx =
      ".preset lp30\n.queue sxm.e.0\n    DESKEW\n    NOTIFY\n    @ready(rd) SEND 0, s0e\n"
      ".queue mem.e.234\n    SYNC\nrd: READ 0, s0e\n";
  const std::string rx = ".preset lp30\n.queue sxm.e.0\n    DESKEW\n    @4096 + 4 + 6 + 189 RECV 0, s0w\n";
  const std::string tx_noskew = ".preset lp30\n.queue mem.e.234\nrd: @4100 READ 0, s0e\n.queue sxm.e.0\n    @ready(rd) SEND 0, s0e\n";
  const std::string base = "chips = 2\n[topology]\nname = \"full\"\n";
  const auto cfg0 = rt::rack_text(base);
  const auto cfg1 = rt::rack_text(base + "[[override]]\nchips = \"0\"\nstart_skew = 1000\n[[override]]\nchips = \"1\"\nstart_skew = 333\n");
  Rack a(cfg0, assemble_sources(cfg0, {tx, rx}, "deskew.lpa"), rt::opts(false));
  a.run();
  Rack b(cfg1, assemble_sources(cfg1, {tx, rx}, "deskew.lpa"), rt::opts(false));
  b.run();
  // Identical: every queue restarts at the rack-wide period boundary 4096.
  CHECK(a.stats().chip[0].cycles == b.stats().chip[0].cycles);
  CHECK(a.stats().chip[1].cycles == b.stats().chip[1].cycles);
  CHECK(b.stats().send_to_recv_cycles.min == 189);
  CHECK(b.stats().send_to_recv_cycles.max == 189);
  // Without DESKEW, chip 0's skew makes chip 1's RECV too early.
  Rack c(cfg1, assemble_sources(cfg1, {tx_noskew, rx}, "noskew.lpa"), rt::opts(false));
  CHECK(has(error_of(c), "chip 1, sxm.e (queue sxm.e.0), cycle 4295: RECV on link 0: nothing has arrived"));
  Rack d(cfg0, assemble_sources(cfg0, {tx_noskew, rx}, "noskew.lpa"), rt::opts(false));
  CHECK_NOTHROW(d.run());
}

TEST_CASE("chips with different clocks meet on a common time base") {
  // Chip 0 at 1 GHz SENDs in cycle 6: departs 10, arrives 10 + 25 + 160 = 195 ns later. Chip 1
  // runs at 0.5 GHz: its first cycle at or after 195 ns is cycle ceil(97.5) = 98.
  const std::string base = "chips = 2\n[topology]\nname = \"full\"\n[[override]]\nchips = \"1\"\nset = [\"clock_hz=0.5e9\"]\n";
  const auto cfg = rt::rack_text(base);
  CHECK(cfg.ticks_per_cycle[0] == 1);
  CHECK(cfg.ticks_per_cycle[1] == 2);
  const std::string tx = ".preset lp30\n.queue mem.e.234\nrd: READ 0, s0e\n.queue sxm.e.0\n    @ready(rd) SEND 0, s0e\n";
  auto rx = [](int t) { return ".preset lp30\n.queue sxm.e.0\n    @" + std::to_string(t) + " RECV 0, s0w\n"; };
  Rack ok(cfg, assemble_sources(cfg, {tx, rx(98)}, "clk.lpa"), rt::opts(false, 2));
  CHECK_NOTHROW(ok.run());
  CHECK(ok.stats().latency_cycles.min == 186);  // arrival 98 x 2 ns = 196 ns - departure 10 ns
  Rack early(cfg, assemble_sources(cfg, {tx, rx(97)}, "clk.lpa"), rt::opts(true, 2));
  CHECK(has(error_of(early), "chip 1, sxm.e (queue sxm.e.0), cycle 97: RECV on link 0: nothing has arrived"));
}

TEST_CASE("manifest start_delay: a chip's program starts that many cycles later, on the common counter") {
  const auto cfg = rt::rack("pair.toml");
  // A local program, the same for both chips: READ in 0, its value on s0e in 0 + mem_read 5;
  // program length = 5 + 1 + 19 (superlane stagger of lp30) = 25. With start_delay = 100 x chip
  // chip 1's queues begin with a NOP 100 on the chip's counter: the READ issues in 100 and the
  // chip halts in 125. Both chips share one object (the delay is not in it).
  const auto dir = std::filesystem::temp_directory_path() / ("lpu_rack_delay_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "read.lpa") << ".preset lp30\n.queue mem.e.234\n    READ 0, s0e\n";
  auto run = [&](const std::string& delay) {
    auto prog = lpu::rack::parse_manifest("[[program]]\nchips = \"0-1\"\nsource = \"read.lpa\"\n" + delay, "<test>",
                                          dir.string(), cfg);
    CHECK(prog.distinct_objects() == 1);
    Rack r(cfg, prog, rt::opts(true));
    r.run();
    return std::pair(r.stats().chip[0].cycles, r.stats().chip[1].cycles);
  };
  CHECK(run("") == std::pair<std::int64_t, std::int64_t>(25, 25));
  CHECK(run("start_delay = \"100 * chip\"\n") == std::pair<std::int64_t, std::int64_t>(25, 125));
  std::filesystem::remove_all(dir);

  // Ping-pong (examples/rack/pingpong.toml) with chip 1 started D = 100 cycles late and its
  // first RECV moved D cycles earlier in its program (FIRST = 6 + hop - D): the RECV issues in
  // D + FIRST = 6 + 189 = 195 on the common counter, exactly at the arrival, and the run is the
  // one of the manifest without delay. With start_delay = D - 1 it issues in 194, one cycle
  // before the arrival: a located error in chip 1's cycle 194.
  auto pingpong = [&](int delay) {
    return rt::manifest_text(fmt::format(R"m([[program]]
chips = "0"
source = "ping.lpa"
consts = {{ LINK = "link_to(1)", HOP = "hop(link_to(1))", ROUNDS = 4 }}
[[program]]
chips = "1"
source = "pong.lpa"
consts = {{ LINK = "link_to(0)", HOP = "hop(link_to(0))", FIRST = "6 + hop(link_to(0)) - 100", ROUNDS = 4 }}
start_delay = {}
)m", delay), cfg);
  };
  Rack plain(cfg, rt::manifest("pingpong.toml", cfg), rt::opts(true));
  plain.run();
  Rack late(cfg, pingpong(100), rt::opts(true));
  late.run();
  CHECK(late.stats().chip[0].cycles == 1573);  // derived in "ping-pong: measured latency ..."
  CHECK(late.stats().chip[1].cycles == plain.stats().chip[1].cycles);
  CHECK(late.stats().send_to_recv_cycles.min == 189);
  CHECK(late.stats().send_to_recv_cycles.max == 189);
  Rack early(cfg, pingpong(99), rt::opts(true));
  CHECK(has(error_of(early), "chip 1, sxm.e (queue sxm.e.0), cycle 194: RECV on link 0: nothing has arrived"));

  // Bad values: a ConfigError naming the key and the manifest.
  auto error = [&](const std::string& m) {
    try {
      rt::manifest_text(m, cfg);
    } catch (const lpu::ConfigError& e) {
      return e.key() + " | " + e.what();
    }
    return std::string("(no error)");
  };
  const std::string block = "[[program]]\nchips = \"0\"\nsource = \"bw_rx.lpa\"\nconsts = { LINK = 0, SER = 25, N = 2, FIRST = 195 }\n";
  CHECK(error(block + "start_delay = -1\n") ==
        "program[0].start_delay | config: program[0].start_delay: in <test>: chip 0: start delay -1 out of range 0..1099511627775 cycles");
  CHECK(error(block + "start_delay = 1.5\n") ==
        "program[0].start_delay | config: program[0].start_delay: in <test>: expected a number of cycles (an integer or an expression in quotes)");
  // An expression error: the manifest, line and column (the quote is in column 15 of line 5).
  CHECK(error(block + "start_delay = \"frob\"\n").starts_with("program[0].start_delay | config: program[0].start_delay: in <test>:5:16: in 'frob' (chip 0): unknown name 'frob'"));
  CHECK(error(block + "start_delay = 5\n[[program]]\nchips = \"0-1\"\nstart_delay = 7\n") ==
        "program[1].start_delay | config: program[1].start_delay: in <test>: chip 0 already has a start delay (from program[0])");
  CHECK(error("[generate]\nkind = \"pipeline\"\nchips = \"0-1\"\n[[program]]\nchips = \"1\"\nstart_delay = 3\n") ==
        "program[0].start_delay | config: program[0].start_delay: in <test>: chip 1 already has a start delay (from generate)");
}

TEST_CASE("manifest expressions: checked arithmetic, every operator, located in the manifest") {
  const auto cfg = rt::rack("pair.toml");
  auto err = [&](const std::string& expr) {
    try {
      eval_chip_expr(expr, cfg, 1, "k");
    } catch (const lpu::ConfigError& e) {
      CHECK(e.key() == "k");
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  const std::string min = "(-9223372036854775807 - 1)";
  // Each operator one past the edge; the offset is the operator's.
  CHECK(err("9223372036854775807 + 1") ==
        "config: k: at offset 20: in '9223372036854775807 + 1' (chip 1): integer overflow: 9223372036854775807 + 1 does not fit in 64 bits");
  CHECK(err("-9223372036854775807 - 2").find("at offset 21: in '-9223372036854775807 - 2' (chip 1): integer overflow: "
                                              "-9223372036854775807 - 2 does not fit") != std::string::npos);
  CHECK(err("4294967296 * 2147483648").find("at offset 11: ") != std::string::npos);
  CHECK(err("4294967296 * 2147483648").find("integer overflow: 4294967296 * 2147483648") != std::string::npos);
  CHECK(err(min + " / -1").find("at offset 27: ") != std::string::npos);  // was SIGFPE
  CHECK(err(min + " / -1").find("integer overflow: -9223372036854775808 / -1") != std::string::npos);
  CHECK(err(min + " % -1").find("integer overflow: -9223372036854775808 % -1") != std::string::npos);
  CHECK(err("-" + min).find("at offset 0: ") != std::string::npos);
  CHECK(err("-" + min).find("integer overflow: -(-9223372036854775808)") != std::string::npos);
  CHECK(err("chip / (chip - 1)").find("division by zero: 1 / 0") != std::string::npos);
  CHECK(err("5 % (chip - 1)").find("division by zero: 5 % 0") != std::string::npos);
  CHECK(err("99999999999999999999").find("number '99999999999999999999' does not fit in 64 bits") != std::string::npos);
  // Exact up to the edges; % is floored (non-negative for a positive divisor).
  CHECK(eval_chip_expr(min + " + 9223372036854775807 + chip", cfg, 1, "k") == 0);
  CHECK(eval_chip_expr(min + " % 3", cfg, 0, "k") == 1);  // -2^63 = 3 (-3074457345618258603) + 1
  CHECK(eval_chip_expr("-7 % -3", cfg, 0, "k") == -1);
  // Nesting is bounded: 20,000 parentheses or unary minuses are an error, not a stack overflow.
  const std::string deep = std::string(20000, '(') + "1" + std::string(20000, ')');
  CHECK(err(deep).find("at offset 256: ") != std::string::npos);
  CHECK(err(deep).find("expression nested more than 256 deep") != std::string::npos);
  CHECK(err(std::string(20000, '-') + "1").find("expression nested more than 256 deep") != std::string::npos);
  CHECK(err(std::string(20000, '(') + "1").find("nested more than 256 deep") != std::string::npos);
  CHECK(eval_chip_expr(std::string(200, '(') + "chip" + std::string(200, ')'), cfg, 1, "k") == 1);
  // In a manifest: the file, line and column of the operator, and the key.
  auto manifest_error = [&](const std::string& m) {
    try {
      rt::manifest_text(m, cfg);
    } catch (const lpu::ConfigError& e) {
      return e.key() + " | " + e.what();
    }
    return std::string("(no error)");
  };
  CHECK(manifest_error("[[program]]\nchips = \"0-1\"\nregs = { r1 = \"" + min + " / -1\" }\n") ==
        "program[0].regs.r1 | config: program[0].regs.r1: in <test>:3:43: in '(-9223372036854775807 - 1) / -1' (chip 0): "
        "integer overflow: -9223372036854775808 / -1 does not fit in 64 bits");
  CHECK(manifest_error("[[program]]\nchips = \"0\"\nsource = \"ping.lpa\"\nconsts = { LINK = \"1 << 2\" }\n") ==
        "program[0].consts.LINK | config: program[0].consts.LINK: in <test>:4:22: in '1 << 2' (chip 0): unexpected '<< 2'");
  // A key nested 50,000 tables deep (toml++ would overflow the stack on it).
  std::string dotted = "a";
  for (int i = 0; i < 50000; ++i) dotted += ".a";
  CHECK(manifest_error("[[program]]\nchips = \"0\"\n" + dotted + " = 1\n") ==
        "<test> | config: <test>: line 3: a key with more than 256 dotted parts (the parser would recurse as deep)");
  CHECK(manifest_error("[[program]]\nchips = \"0\"\nsource = \"ping.lpa\"\nconsts = { \"A\\nB\" = 1 }\n").find(
            "program[0].consts.A\nB | config: program[0].consts.A\nB: in <test>: a constant name is an identifier") == 0);
}

TEST_CASE("manifest errors name the key") {
  const auto cfg = rt::rack("pair.toml");
  auto key_of = [&](const std::string& m) {
    try {
      rt::manifest_text(m, cfg);
    } catch (const lpu::ConfigError& e) {
      return e.key();
    }
    return std::string("(no error)");
  };
  CHECK(key_of("[[program]]\nsource = \"ping.lpa\"\n") == "program[0].chips");
  CHECK(key_of("[[program]]\nchips = \"0-2\"\nsource = \"ping.lpa\"\n") == "program[0].chips");
  CHECK(key_of("[[program]]\nchips = \"0\"\nsource = \"nope.lpa\"\n") == "program[0].source");
  // A name too long for the file system: a ConfigError, not a std::filesystem exception (found
  // by fuzz_manifest, fuzz/corpus/manifest/regress_long_source_name).
  CHECK(key_of("[[program]]\nchips = \"0\"\nsource = \"" + std::string(5000, 'x') + ".lpa\"\n") ==
        "program[0].source");
  CHECK(key_of("[[program]]\nchips = \"0\"\nsource = \"ping.lpa\"\nconsts = { LINK = \"peer(5)\" }\n") ==
        "program[0].consts.LINK");
  CHECK(key_of("[[program]]\nchips = \"0\"\nsource = \"ping.lpa\"\nconsts = { LINK = \"frob(0)\" }\n") ==
        "program[0].consts.LINK");
  CHECK(key_of("[[program]]\nchips = \"0\"\nregs = { r16 = 1 }\n") == "program[0].regs.r16");
  CHECK(key_of("[[program]]\nchips = \"0\"\ncolour = 1\n") == "program[0].colour");
  CHECK(key_of("[generate]\nkind = \"sort\"\n") == "generate.kind");
  CHECK(key_of("[[program]]\nchips = \"0\"\nsource = \"bw_tx.lpa\"\nconsts = { LINK = 0, SER = 25, N = 2 }\n"
               "[[program]]\nchips = \"0\"\nsource = \"bw_tx.lpa\"\nconsts = { LINK = 0, SER = 25, N = 2 }\n") ==
        "program[1].chips");
  // Expressions.
  CHECK(eval_chip_expr("hop(link_to(1)) * 2 + chip", cfg, 0, "k") == 378);
  CHECK(eval_chip_expr("(nchips - 1 - chip) % 2", cfg, 1, "k") == 0);
  CHECK(eval_chip_expr("-7 % 3", cfg, 0, "k") == 2);
  CHECK(eval_chip_expr("peer_link(0) + ser(0) + lat(0)", cfg, 1, "k") == 185);
  // A source error is an assembler error with its file and line.
  CHECK_THROWS_AS(rt::manifest_text("[[program]]\nchips = \"0\"\nsource = \"ping.lpa\"\nconsts = { LINK = 0 }\n", cfg),
                  lpu::AsmError);
}

TEST_CASE("a program file whose name has quotes and backslashes") {
  // load_program writes the name into a manifest (TOML) and the consts wrapper into assembly:
  // both quote it.
  const auto cfg = rt::rack("pair.toml");
  const auto dir = std::filesystem::temp_directory_path() / fmt::format("lpu_quote_{}", ::getpid());
  std::filesystem::create_directories(dir);
  const auto file = dir / "a\"b\\c.lpa";
  std::ofstream(file) << ".queue vxm.0\nCONST.i8 s0e, 1\n";
  auto p = load_program(file.string(), cfg);
  CHECK(p.chips.size() == 2);
  CHECK(p.chips[0].object != nullptr);
  std::filesystem::remove_all(dir);
}
