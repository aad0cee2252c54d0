// Streaming: results in order and equal to a plain C++ reference, per-item latency from the
// DMA schedule and the host DMA model, pipelines of chips, the Streamer, errors and recovery.
#include <algorithm>
#include <sstream>
#include <thread>

#include "helpers.hpp"
#include "lpu/isa/isa.hpp"
#include "lpu/rack/config.hpp"
#include "lpu/runtime/engine.hpp"

using namespace lpu;
using namespace lpu::test;

namespace {

rt::DeviceSpec mini(int chips = 1) {
  rt::DeviceSpec s;
  s.preset = "mini";
  s.chips = chips;
  return s;
}

rt::Batch batch_of(const std::vector<std::vector<std::uint8_t>>& xs) {
  rt::Batch b;
  b.items = xs;
  return b;
}

}  // namespace

TEST_CASE("stream: results in order, equal to the reference, for any batch size and split") {
  auto d = rt::open_local(mini());
  d->load_program(stream_program());
  auto w = random_weights(3);
  load_axpb(*d, w);
  std::mt19937_64 g(11);
  for (int n : {1, 2, 8, 33, 300}) {
    std::vector<std::vector<std::uint8_t>> xs;
    for (int i = 0; i < n; ++i) xs.push_back(random_vector(g));
    auto r = d->stream(batch_of(xs));
    REQUIRE(r.items.size() == std::size_t(n));
    for (int i = 0; i < n; ++i) CHECK(r.items[std::size_t(i)].output == axpb(xs[std::size_t(i)], w));
    CHECK(r.runs == 1);
    // The same batch cut into runs of 7 items: the same outputs.
    auto b = batch_of(xs);
    b.spec.max_items = 7;
    auto r7 = d->stream(b);
    CHECK(r7.runs == (n + 6) / 7);
    for (int i = 0; i < n; ++i) CHECK(r7.items[std::size_t(i)].output == r.items[std::size_t(i)].output);
  }
  // Short items are zero-padded: x = 0 gives b.
  auto r = d->stream(batch_of({{}}));
  CHECK(r.items.at(0).output == w.b);
}

TEST_CASE("stream: per-item latency = host DMA in + DMAIN..DMAOUT on chip + host DMA out") {
  auto s = mini();
  s.dma_bandwidth_bytes_per_s = 32e9;  // one 32-byte vector per ns
  s.dma_latency_s = 0;
  auto d = rt::open_local(s);
  d->load_program(stream_program());  // 17 words = 136 bytes: 4.25 ns
  load_axpb(*d, random_weights(1));   // 2 x 1 ns: the link is busy until 6.25 ns
  std::vector<std::vector<std::uint8_t>> xs(4, std::vector<std::uint8_t>(32, 1));
  auto r = d->stream(batch_of(xs));
  // Input j leaves at 6.25 + j ns and arrives 1 ns later; DMAIN j issues in cycle j, so the chip
  // starts at 7.25 ns; DMAOUT j in cycle 15 + j, out after dma latency 2; 1 ns back to the host.
  for (std::size_t j = 0; j < 4; ++j) {
    CHECK(r.items[j].chip_cycles == 17);
    CHECK(r.items[j].latency_s == doctest::Approx(19e-9));
    CHECK(r.items[j].done_s == doctest::Approx((25.25 + double(j)) * 1e-9));
  }
  CHECK(r.start_s == doctest::Approx(6.25e-9));
  CHECK(r.end_s == doctest::Approx(28.25e-9));
  auto j = d->stats();
  CHECK(j["stream"]["items"] == 4);
  CHECK(j["stream"]["latency_s"]["p50"].get<double>() == doctest::Approx(19e-9));
  CHECK(j["stream"]["items_per_s"].get<double>() == doctest::Approx(4 / 22e-9));
  CHECK(j["host_dma"]["bytes_from_device"] == 4 * 32);
  CHECK(j["chips"][0]["runs"] == 1);
  CHECK(j["chips"][0]["dma_bytes_in"] == 4 * 32);
  // A slow link throttles: at 3.2 GB/s a vector takes 10 ns, far more than the chip's 1 ns per item.
  auto s2 = s;
  s2.dma_bandwidth_bytes_per_s = 3.2e9;
  auto d2 = rt::open_local(s2);
  d2->load_program(stream_program());
  load_axpb(*d2, random_weights(1));
  auto r2 = d2->stream(batch_of(std::vector<std::vector<std::uint8_t>>(8, std::vector<std::uint8_t>(32, 1))));
  CHECK(r2.end_s - r2.start_s > 8 * 10e-9);
  CHECK(r2.items[7].latency_s > r2.items[0].latency_s);  // the last one waits for the chip start
}

TEST_CASE("stream: a pipeline of chips feeds each stage's outputs to the next") {
  auto d = rt::open_local(mini(3));
  CHECK(d->info().kind == "pipeline");
  CHECK(d->info().chips == 3);
  d->load_program(stream_program());
  std::vector<Weights> ws;
  for (int c = 0; c < 3; ++c) {
    ws.push_back(random_weights(100 + std::uint64_t(c)));
    load_axpb(*d, ws.back(), c);
  }
  std::mt19937_64 g(5);
  std::vector<std::vector<std::uint8_t>> xs;
  for (int i = 0; i < 50; ++i) xs.push_back(random_vector(g));
  auto r = d->stream(batch_of(xs));
  for (std::size_t i = 0; i < xs.size(); ++i) {
    CHECK(r.items[i].output == axpb(axpb(axpb(xs[i], ws[0]), ws[1]), ws[2]));
    CHECK(r.items[i].chip_cycles == 3 * 17);
  }
  // Several batches in flight: the second batch's first stage overlaps the first's last stage,
  // so two batches take less than twice one.
  auto r2 = d->stream(batch_of(xs));
  auto r3 = d->stream(batch_of(xs));
  CHECK(r3.end_s - r2.end_s < r.end_s - r.start_s);
  auto j = d->stats();
  CHECK(j["chips"].size() == 3);
  for (int c = 0; c < 3; ++c) CHECK(j["chips"][c]["runs"] == 3);
  // A pipeline needs vectors_out == vectors_in.
  auto b = batch_of(xs);
  b.spec.vectors_out = 2;
  CHECK(contains(error_of([&] { d->stream(b); }), "vectors_out (2) must equal vectors_in (1)"));
}

TEST_CASE("stream: timing-only devices give the same timing and statistics, zero data") {
  auto f = rt::open_local(mini());
  auto ts = mini();
  ts.timing_only = true;
  auto t = rt::open_local(ts);
  for (auto* d : {f.get(), t.get()}) {
    d->load_program(stream_program());
    load_axpb(*d, random_weights(2));
  }
  std::vector<std::vector<std::uint8_t>> xs(20, std::vector<std::uint8_t>(32, 3));
  auto rf = f->stream(batch_of(xs));
  auto rt_ = t->stream(batch_of(xs));
  REQUIRE(rt_.items.size() == 20);
  for (std::size_t i = 0; i < 20; ++i) {
    CHECK(rt_.items[i].latency_s == rf.items[i].latency_s);
    CHECK(rt_.items[i].chip_cycles == rf.items[i].chip_cycles);
    CHECK(rt_.items[i].output == std::vector<std::uint8_t>(32, 0));
  }
  auto jf = deterministic(f->stats()), jt = deterministic(t->stats());
  jf.erase("device");
  jt.erase("device");
  CHECK(jf == jt);
}

TEST_CASE("stream: the contract is checked before running, with what the program does instead") {
  auto d = rt::open_local(mini());
  d->load_program(stream_program());
  load_axpb(*d, random_weights(1));
  auto b = batch_of(std::vector<std::vector<std::uint8_t>>(3, std::vector<std::uint8_t>(32, 0)));
  b.spec.count_reg = 2;  // the program counts with r1 (initially 7: 8 items)
  auto e = error_of([&] { d->stream(b); });
  CHECK(contains(e, "stream contract: with r2 = 2 (3 items) the program on chip 0 reads 8 vectors by DMAIN on channel 0; expected 3"));
  b.spec = {};
  b.spec.out_channel = 2;
  e = error_of([&] { d->stream(b); });
  CHECK(contains(e, "writes 0 vectors by DMAOUT on channel 2; expected 3"));
  b.spec = {};
  b.spec.in_channel = 9;
  CHECK(contains(error_of([&] { d->stream(b); }), "in_channel 9 out of range: chip 0 has DMA channels 0..3"));
  b.spec = {};
  b.items[1].resize(33);
  CHECK(contains(error_of([&] { d->stream(b); }), "item 1: 33 bytes, more than 1 vector(s) of 32 bytes"));
  auto nop = rt::open_local(mini());
  CHECK(contains(error_of([&] { nop->stream(batch_of({{1}})); }), "stream: chip 0 has no program: load one first"));
}

TEST_CASE("run: lpu run semantics, a failed run leaves the device usable with its weights") {
  auto d = rt::open_local(mini());
  d->load_program(stream_program());
  auto w = random_weights(9);
  load_axpb(*d, w);
  // One run by hand: r1 = 2 (3 items), three vectors in, three out.
  rt::RunRequest q;
  q.regs = {{1, 2}};
  std::mt19937_64 g(1);
  for (int i = 0; i < 3; ++i) q.dma_in[0].push_back(random_vector(g));
  auto r = d->run(q);
  REQUIRE(r.dma_out.at(1).size() == 3);
  for (std::size_t i = 0; i < 3; ++i) CHECK(r.dma_out.at(1)[i] == axpb(q.dma_in[0][i], w));
  CHECK(r.stats.cycles > 17);
  CHECK(r.json["cycles"] == r.stats.cycles);
  CHECK(contains(r.text, "cycles"));
  CHECK(r.seconds > 0);
  // Too few vectors: the program's DMAIN fails; the error says where and when.
  q.dma_in[0].pop_back();
  auto e = error_of([&] { d->run(q); });
  CHECK(contains(e, "DMAIN on channel 0: the host has provided no more vectors"));
  CHECK(contains(e, "cycle 2"));
  // The device still works, with the same weights, and no stale inputs.
  auto x = random_vector(g);
  CHECK(d->stream(batch_of({x})).items.at(0).output == axpb(x, w));
  CHECK(contains(error_of([&] { d->set_reg(0, 0, 1); }), "register r0 cannot be set"));
  d->set_reg(0, 1, 1);  // persists: two items per run from now on
  q.regs.clear();
  q.dma_in[0] = {x, x};
  CHECK(d->run(q).dma_out.at(1).size() == 2);
}

TEST_CASE("run_files: lpu run's options through the runtime API") {
  TempDir dir;
  auto obj = dir / "s.lpo";
  obj::save_object(stream_program(), obj);
  auto w = random_weights(4);
  io::save_npy(i8_tensor({32}, w.w), dir / "w.npy");
  io::save_npy(i8_tensor({32}, w.b), dir / "b.npy");
  std::mt19937_64 g(8);
  io::Tensor x{io::ElemType::U8, {5, 32}, {}};
  for (int i = 0; i < 5; ++i) {
    auto v = random_vector(g);
    x.data.insert(x.data.end(), v.begin(), v.end());
  }
  io::save_npy(x, dir / "x.npy");
  rt::RunFiles f;
  f.program = obj;
  f.inputs = {"w=" + (dir / "w.npy"), "b=" + (dir / "b.npy")};
  f.regs = {"r1=4"};
  f.dma_in = {"0=" + (dir / "x.npy")};
  f.dma_out = {"1=" + (dir / "y.npy")};
  f.outputs = {"w=" + (dir / "w_out.npy")};
  f.stats = dir / "stats.json";
  auto d = rt::open_local(rt::spec_for_program(stream_program(), "", {}, false));
  std::ostringstream out;
  CHECK(rt::run_files(*d, f, out) == 0);
  CHECK(contains(out.str(), "cycles"));
  auto y = io::load_npy(dir / "y.npy");
  CHECK(y.shape == std::vector<std::int64_t>{5, 32});
  for (std::size_t i = 0; i < 5; ++i) {
    std::vector<std::uint8_t> xi(x.data.begin() + std::ptrdiff_t(32 * i), x.data.begin() + std::ptrdiff_t(32 * i + 32));
    std::vector<std::uint8_t> yi(y.data.begin() + std::ptrdiff_t(32 * i), y.data.begin() + std::ptrdiff_t(32 * i + 32));
    CHECK(yi == axpb(xi, w));
  }
  CHECK(io::load_npy(dir / "w_out.npy").data == w.w);
  CHECK(std::filesystem::file_size(dir / "stats.json") > 100);
  f.regs = {"q1=4"};
  CHECK(contains(error_of([&] { rt::run_files(*d, f, out); }), "--reg: 'q1' is not a register r1..r15"));
}

TEST_CASE("Streamer: many callers, each gets its own result in order") {
  auto d = rt::open_local(mini());
  d->load_program(stream_program());
  auto w = random_weights(21);
  load_axpb(*d, w);
  rt::Streamer st(*d, {}, {.max_batch = 16, .max_in_flight = 3});
  std::atomic<int> bad{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&, t] {
      std::mt19937_64 g{std::uint64_t(t)};
      std::vector<std::pair<std::vector<std::uint8_t>, std::future<rt::ItemResult>>> fs;
      for (int i = 0; i < 50; ++i) {
        auto x = random_vector(g);
        auto f = st.submit(x);
        fs.emplace_back(std::move(x), std::move(f));
      }
      double last = -1;
      for (auto& [x, f] : fs) {
        try {
          auto r = f.get();
          if (r.output != axpb(x, w)) ++bad;
          if (r.done_s < last) ++bad;  // a caller's results complete in its submission order
          last = r.done_s;
        } catch (const std::exception&) {
          ++bad;
        }
      }
    });
  for (auto& t : ts) t.join();
  st.drain();
  CHECK(bad == 0);
  auto s = st.stats();
  CHECK(s.items == 200);
  CHECK(s.batches >= 200 / 16);
  CHECK(s.latency_s.size() == 200);
  CHECK(s.items_per_s() > 0);
  CHECK(s.percentile_s(99) >= s.percentile_s(50));
  // Errors reach every caller of the batch.
  auto nop = rt::open_local(mini());
  rt::Streamer s2(*nop);
  auto f = s2.submit({1});
  CHECK(contains(error_of([&] { f.get(); }), "no program"));
}

TEST_CASE("devices: bad specs are refused with the reason") {
  rt::DeviceSpec s;
  s.preset = "nosuchpreset";
  CHECK_THROWS_AS(rt::open_local(s), Error);
  s = mini(0);
  CHECK(contains(error_of([&] { rt::open_local(s); }), "chips = 0: a device has 1 to"));
  s = mini();
  s.dma_bandwidth_bytes_per_s = -1;
  CHECK(contains(error_of([&] { rt::open_local(s); }), "host DMA bandwidth -1 must be a positive"));
  s = mini();
  s.set = {"mem.rows=128"};
  auto d = rt::open_local(s);
  CHECK(contains(error_of([&] { d->load_program(stream_program()); }), "mem_rows"));
  if (!rt::have_rack()) {
    s = mini();
    s.rack = "configs/pair.toml";
    CHECK(contains(error_of([&] { rt::open_local(s); }), "no rack support"));
  }
}

TEST_CASE("rack: items enter one chip, cross a C2C link and leave another") {
  if (!rt::have_rack()) {
    MESSAGE("skipped: the runtime was built without lpu_rack");
    return;
  }
  // configs/pair.toml: two lp30 chips, link 0 of each to the other: SEND to arrival is
  // c2c_send 4 + serialisation 25 + latency 160 = 189 cycles; one vector every 25 cycles.
  const char* tx = R"(.preset lp30
.reg r1 = 7
.queue sxm.w.0
in:  DMAIN 0, s0e
     REPEATR r1, 25
.queue sxm.w.1
     @ready(in) SEND 0, s0e
     REPEATR r1, 25
)";
  const char* rx = R"(.preset lp30
.reg r1 = 7
.symbol scale i8[320] mem.e.0 @ 0
.queue sxm.w.0
rx:  @300 RECV 0, s0e
     REPEATR r1, 25
.queue sxm.w.1
     @ready(rx) DMAOUT s0e, 1
     REPEATR r1, 25
)";
  auto p = load_preset("lp30");
  auto ptx = assembler::assemble_string(tx, "tx.lpa", p).program;
  auto prx = assembler::assemble_string(rx, "rx.lpa", p).program;
  rt::DeviceSpec s;
  s.rack = std::string(LPU_SOURCE_DIR) + "/configs/pair.toml";
  auto d = rt::open_local(s);
  CHECK(d->info().kind == "rack");
  CHECK(d->info().chips == 2);
  d->load_program(ptx, {0});
  d->load_program(prx, {1});
  d->load_tensor({1, "scale", "scale.npy"}, i8_tensor({320}, std::vector<std::uint8_t>(320, 7)));
  std::mt19937_64 g(4);
  rt::Batch b;
  for (int i = 0; i < 12; ++i) {
    std::vector<std::uint8_t> x(320);
    for (auto& v : x) v = std::uint8_t(g());
    b.items.push_back(x);
  }
  auto r = d->stream(b);
  REQUIRE(r.items.size() == 12);
  for (std::size_t i = 0; i < 12; ++i) {
    CHECK(r.items[i].output == b.items[i]);
    CHECK(r.items[i].chip_cycles > 189);
  }
  CHECK(d->read_symbol(1, "scale").data == std::vector<std::uint8_t>(320, 7));
  auto j = d->stats();
  CHECK(j["chips"][0]["link_bytes_sent"] == 12 * 320);
  CHECK(j["chips"][1]["dma_bytes_out"] == 12 * 320);
}

TEST_CASE("objects from anywhere: operands that index the chip are checked before anything runs") {
  auto d = rt::open_local(mini());
  // A DMAIN channel the chip does not have, hand-made (the assembler would refuse it).
  auto bad = stream_program();
  for (auto& q : bad.queues)
    if (q.name == "sxm.w.0") {
      auto in = isa::decode(q.words[0]);
      REQUIRE(in.op == isa::Op::Dmain);
      in.v[0] = 200;
      q.words[0] = isa::encode(in);
    }
  auto e = error_of([&] { d->load_program(bad); });
  CHECK(contains(e, "object: queue sxm.w.0 word 0 (DMAIN): DMA channel 200 beyond the chip's 4 channels"));
  auto sym = stream_program();
  sym.symbols[0].slices = {"vxm"};
  CHECK(contains(error_of([&] { d->load_program(sym); }), "symbol 'w': 'vxm' is not a MEM slice"));
  sym = stream_program();
  sym.symbols[0].start_row = 255;
  sym.symbols[0].shape = {64};
  CHECK(contains(error_of([&] { d->load_program(sym); }), "symbol 'w': rows 255..256 beyond the 256 rows"));

  // MM + REPEATR: the host's count would step the accumulator past the plane's 16.
  const char* src = R"(.preset mini
.reg r1 = 0
.symbol W i8[32, 32] mem.e.3 @ 0
.queue mem.e.3
w:   READ 0, s0e, 1
     REPEAT 31, 1
.queue mxm.e.0.0
lw:  @ready(w) LW.i8 s0e, 0
     REPEAT 31, 1
iw:  IW.i8
.queue mem.e.2
x:   @issue(iw) READ 0, s2e, 0
     REPEATR r1, 1
.queue mxm.e.0.1
mm:  @ready(x) MM.i8 s2e, 0
     REPEATR r1, 1
)";
  d->load_program(assembler::assemble_string(src, "mm.lpa", load_preset("mini")).program);
  rt::RunRequest q;
  q.regs = {{1, 3}};
  CHECK(d->run(q).stats.mxm_passes == 4);
  q.regs = {{1, 20}};
  e = error_of([&] { d->run(q); });
  CHECK(contains(e, "MM repeated 21 times steps its accumulator to 20, beyond the 16 of a plane"));
  q.regs = {{1, 2}};
  CHECK(d->run(q).stats.mxm_passes == 3);  // and the device goes on
}

TEST_CASE("stream: a matvec per item on lp30, at most 64 items per run (accumulators)") {
  auto prog = assembler::assemble_file(example("stream_matvec_lp30.lpa"), load_preset("lp30")).program;
  rt::DeviceSpec s;
  s.preset = "lp30";
  auto d = rt::open_local(s);
  d->load_program(prog);
  std::mt19937_64 g(17);
  io::Tensor W{io::ElemType::I8, {320, 320}, std::vector<std::uint8_t>(320 * 320)};
  for (auto& v : W.data) v = std::uint8_t(std::int8_t(int(g() % 9) - 4));
  TempDir dir;
  io::save_npy(W, dir / "W.npy");
  rt::load_weights(*d, dir / "W.npy");
  rt::Batch b;
  b.spec.max_items = 64;
  for (int i = 0; i < 100; ++i) {
    std::vector<std::uint8_t> x(320);
    for (auto& v : x) v = std::uint8_t(g());
    b.items.push_back(x);
  }
  auto r = d->stream(b);
  CHECK(r.runs == 2);
  REQUIRE(r.items.size() == 100);
  int wrong = 0;
  for (std::size_t i = 0; i < 100; ++i) {
    for (std::size_t row = 0; row < 320; ++row) {
      std::int32_t acc = 0;
      for (std::size_t j = 0; j < 320; ++j) acc += std::int8_t(W.data[row * 320 + j]) * std::int8_t(b.items[i][j]);
      const auto want = std::int8_t(std::clamp(acc, -128, 127));
      wrong += std::int8_t(r.items[i].output[row]) != want;
    }
  }
  CHECK(wrong == 0);
  // DMAIN of item k in cycle 338 + k, DMAOUT in 375 + k, + dma latency 8.
  CHECK(r.items[0].chip_cycles == 375 + 8 - 338);
  // 65 items in one run would step MM past accumulator 63: refused before running.
  b.spec.max_items = 65;
  b.items.resize(65);
  CHECK(contains(error_of([&] { d->stream(b); }), "MM repeated 65 times steps its accumulator to 64, beyond the 64 of a plane"));
}

TEST_CASE("a rack keeps every other chip's state readable when one chip gets a new program") {
  // mini: CONST at the VXM (position 5) in cycle 0 leaves it in 0 + vxm_alu 1 and is at mem.e.0
  // (position 6) a hop later, in 2, where the WRITE takes it into symbol y.
  const std::string src = R"(.const T0 = 0
.symbol y i8[32] mem.e.0 @ 0
.queue vxm.0
@T0+0 CONST.i8 s0e, 5
.queue mem.e.0
@T0+2 WRITE s0e, 0, 1
)";
  rt::DeviceSpec s;
  s.rack = std::string(LPU_SOURCE_DIR) + "/examples/decode/mini4.toml";
  auto d = rt::open_local(s);
  REQUIRE(d->info().kind == "rack");
  const auto prog = assembler::assemble_string(src, "y.lpa", rack::load_rack(s.rack).chip(0)).program;
  d->load_program(prog, {0, 1});
  d->load_tensor({1, "y", "y.npy"}, i8_tensor({32}, std::vector<std::uint8_t>(32, 9)));
  CHECK(d->read_symbol(1, "y").data == std::vector<std::uint8_t>(32, 9));
  d->run({});
  CHECK(d->read_symbol(1, "y").data == std::vector<std::uint8_t>(32, 5));  // the run wrote it
  d->load_program(prog, {0});  // chip 0 only: chip 1's state is the last run's, not its load
  CHECK(d->read_symbol(1, "y").data == std::vector<std::uint8_t>(32, 5));
  CHECK(d->read_symbol(0, "y").data == std::vector<std::uint8_t>(32, 0));  // a fresh program's data
}
