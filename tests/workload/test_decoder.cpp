// The decode generator and its runs: capacity messages, placement, programs that assemble, the
// KV cache and the tokens and logits of the emulated decode against the plain C++ reference
// decoder, the manifest `lpu run --rack` runs, and timing-only runs on small racks.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "lpu/common/errors.hpp"
#include "lpu/common/progress.hpp"
#include "lpu/isa/numerics.hpp"
#include "lpu/rack/engine.hpp"
#include "lpu/workload/decoder.hpp"
#include "lpu/workload/reference.hpp"

using namespace lpu;
using namespace lpu::workload;

namespace {
const std::string kMini4 = std::string(LPU_SOURCE_DIR) + "/examples/decode/mini4.toml";
const std::string kSmall = std::string(LPU_SOURCE_DIR) + "/examples/decode/small.toml";
const std::string kTray8 = std::string(LPU_SOURCE_DIR) + "/configs/tray8.toml";
const std::string kLpx = std::string(LPU_SOURCE_DIR) + "/configs/lpx-rack.toml";
const std::string kMini4k = std::string(LPU_SOURCE_DIR) + "/examples/decode/mini4-4k.toml";
const std::string kMini4x2p = std::string(LPU_SOURCE_DIR) + "/examples/decode/mini4-2p.toml";
const std::string kMini4moe = std::string(LPU_SOURCE_DIR) + "/examples/decode/mini4-moe.toml";

DecoderSpec spec_of(const std::string& model, const std::string& rack, int context) {
  DecoderSpec s;
  s.model = model;
  s.rack = rack;
  s.context = context;
  return s;
}

std::string fmt_group(int layer, int group) { return "K" + std::to_string(layer) + "u0g" + std::to_string(group); }

float load(const io::Tensor& t, std::size_t i) {
  if (t.type == io::ElemType::E4m3) return num::e4m3_to_f32(t.data[i]);
  float f;
  std::memcpy(&f, t.data.data() + 4 * i, 4);
  return f;
}

std::string error_of(const DecoderSpec& s) {
  try {
    plan_decoder(s);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Greedy decode on the emulator; checks tokens and logits against the reference decoder.
DecodeResult check_against_reference(const DecoderSpec& s, int seed, const std::vector<int>& prompt, int steps) {
  auto plan = plan_decoder(s);
  auto w = gen_weights(plan.model, std::uint64_t(seed), plan.wtype);
  auto r = decode_functional(plan, w, prompt, steps, {});
  ReferenceDecoder ref(plan.model, w, {plan.wtype, plan.reduce_block});
  std::vector<std::vector<float>> logits;
  auto toks = ref.greedy(prompt, steps, &logits);
  REQUIRE(r.tokens.size() == std::size_t(steps));
  CHECK(r.tokens == toks);
  // Tolerance 0 (docs/decode.md, "Tolerance"): every operation is specified to the bit and the
  // reference performs the same operations in the same order, so the logits are identical.
  std::size_t k = 0, differ = 0;
  for (const auto& st : r.steps) {
    if (st.token_out < 0 || st.pos + 1 < int(prompt.size())) continue;
    REQUIRE(k < logits.size());
    std::size_t here = 0;
    for (std::size_t v = 0; v < st.logits.size(); ++v) here += st.logits[v] != logits[k][v];
    if (here > 0 && differ == 0) MESSAGE("first step whose logits differ: position ", st.pos, " (", here, " of ", st.logits.size(), ")");
    differ += here;
    ++k;
  }
  CHECK(k == std::size_t(steps));
  CHECK(differ == 0);
  // No decode beats its bound (docs/decode.md, "The bound"): the emulated step, host I/O included,
  // takes at least the bound's cycles.
  const auto& d = r.stats["decode"];
  CHECK(d["bound_tokens_per_s_per_user"].get<double>() > 0);
  CHECK(d["fraction_of_bound"].get<double>() > 0);
  CHECK(d["fraction_of_bound"].get<double>() <= 1.0);
  return r;
}
}  // namespace

TEST_CASE("seeded weights: names, types and shapes of the model, and a seed gives the same tensors") {
  auto m = load_model("tiny");
  auto a = gen_weights(m, 3, isa::Dtype::E4m3);
  auto b = gen_weights(m, 3, isa::Dtype::E4m3);
  auto c = gen_weights(m, 4, isa::Dtype::E4m3);
  CHECK(a.size() == weight_names(m).size());
  CHECK_NOTHROW(check_weights(m, a, isa::Dtype::E4m3, "a"));
  CHECK(a.at("layers.1.attention.wk.weight").shape == std::vector<std::int64_t>{32, 64});  // kv_heads x head_dim, d_model
  CHECK(a.at("layers.0.feed_forward.w2.weight").shape == std::vector<std::int64_t>{64, 128});
  CHECK(a.at("norm.weight").type == io::ElemType::F32);
  CHECK(a.at("output.weight").type == io::ElemType::E4m3);
  CHECK(a.at("output.weight").data == b.at("output.weight").data);
  CHECK(a.at("output.weight").data != c.at("output.weight").data);
  auto bf = gen_weights(m, 3, isa::Dtype::Bf16);
  CHECK(bf.at("tok_embeddings.weight").type == io::ElemType::Bf16);
  CHECK_THROWS_AS(check_weights(m, bf, isa::Dtype::E4m3, "bf"), FormatError);
}

TEST_CASE("reference decoder: close to a double-precision decoder of the same weights") {
  // An independent check of the model definition: the same transformer in double precision
  // without any rounding. fp8 rounding of every matrix input costs a few percent; a wrong
  // RoPE pairing, GQA mapping or norm would cost far more.
  auto m = load_model("tiny");
  auto w = gen_weights(m, 11, isa::Dtype::E4m3);
  ReferenceDecoder ref(m, w, {isa::Dtype::E4m3, 8});
  auto get = [&](const std::string& n) {
    const auto& t = w.at(n);
    std::vector<double> v(std::size_t(t.numel()));
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = load(t, i);
    return v;
  };
  const int d = m.d_model, hd = m.head_dim, H = m.heads, KV = m.kv_heads, F = m.ffn;
  auto mv = [](const std::vector<double>& W, const std::vector<double>& x, int out) {
    std::vector<double> y(std::size_t(out), 0);
    for (int o = 0; o < out; ++o)
      for (std::size_t i = 0; i < x.size(); ++i) y[std::size_t(o)] += W[std::size_t(o) * x.size() + i] * x[i];
    return y;
  };
  auto norm = [&](const std::vector<double>& x, const std::vector<double>& g) {
    double ss = 0;
    for (double v : x) ss += v * v;
    const double r = 1 / std::sqrt(ss / d + m.norm_eps);
    std::vector<double> h(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) h[i] = x[i] * r * g[i];
    return h;
  };
  std::vector<std::vector<std::vector<double>>> K(std::size_t(m.layers)), V(std::size_t(m.layers));
  const std::vector<int> toks{3, 17, 200, 45, 9};
  double err = 0, mag = 0;
  for (int pos = 0; pos < int(toks.size()); ++pos) {
    auto emb = get("tok_embeddings.weight");
    std::vector<double> x(emb.begin() + toks[std::size_t(pos)] * d, emb.begin() + (toks[std::size_t(pos)] + 1) * d);
    for (int l = 0; l < m.layers; ++l) {
      const std::string p = "layers." + std::to_string(l) + ".";
      auto h = norm(x, get(p + "attention_norm.weight"));
      auto q = mv(get(p + "attention.wq.weight"), h, H * hd), k = mv(get(p + "attention.wk.weight"), h, KV * hd),
           v = mv(get(p + "attention.wv.weight"), h, KV * hd);
      auto rope = [&](std::vector<double>& t, int heads) {
        for (int hh = 0; hh < heads; ++hh)
          for (int i = 0; i < hd / 2; ++i) {
            const double th = pos * std::pow(m.rope_theta, -2.0 * i / hd);
            const double a = t[std::size_t(hh * hd + i)], b = t[std::size_t(hh * hd + hd / 2 + i)];
            t[std::size_t(hh * hd + i)] = a * std::cos(th) - b * std::sin(th);
            t[std::size_t(hh * hd + hd / 2 + i)] = b * std::cos(th) + a * std::sin(th);
          }
      };
      rope(q, H);
      rope(k, KV);
      K[std::size_t(l)].push_back(k);
      V[std::size_t(l)].push_back(v);
      std::vector<double> att(std::size_t(H * hd), 0);
      for (int hh = 0; hh < H; ++hh) {
        const int g = hh / (H / KV);
        std::vector<double> s;
        double mx = -1e300;
        for (int pp = 0; pp <= pos; ++pp) {
          double dot = 0;
          for (int i = 0; i < hd; ++i) dot += q[std::size_t(hh * hd + i)] * K[std::size_t(l)][std::size_t(pp)][std::size_t(g * hd + i)];
          s.push_back(dot / std::sqrt(double(hd)));
          mx = std::max(mx, s.back());
        }
        double sum = 0;
        for (auto& e : s) sum += (e = std::exp(e - mx));
        for (int pp = 0; pp <= pos; ++pp)
          for (int j = 0; j < hd; ++j)
            att[std::size_t(hh * hd + j)] += s[std::size_t(pp)] / sum * V[std::size_t(l)][std::size_t(pp)][std::size_t(g * hd + j)];
      }
      auto o = mv(get(p + "attention.wo.weight"), att, d);
      for (int i = 0; i < d; ++i) x[std::size_t(i)] += o[std::size_t(i)];
      auto h2 = norm(x, get(p + "ffn_norm.weight"));
      auto gt = mv(get(p + "feed_forward.w1.weight"), h2, F), up = mv(get(p + "feed_forward.w3.weight"), h2, F);
      std::vector<double> a(static_cast<std::size_t>(F));
      for (int i = 0; i < F; ++i) a[std::size_t(i)] = gt[std::size_t(i)] / (1 + std::exp(-gt[std::size_t(i)])) * up[std::size_t(i)];
      auto dn = mv(get(p + "feed_forward.w2.weight"), a, d);
      for (int i = 0; i < d; ++i) x[std::size_t(i)] += dn[std::size_t(i)];
    }
    auto lg = mv(get("output.weight"), norm(x, get("norm.weight")), m.vocab);
    auto rl = ref.step(toks[std::size_t(pos)], pos);
    for (int v = 0; v < m.vocab; ++v) {
      err += (rl[std::size_t(v)] - lg[std::size_t(v)]) * (rl[std::size_t(v)] - lg[std::size_t(v)]);
      mag += lg[std::size_t(v)] * lg[std::size_t(v)];
    }
  }
  const double rel = std::sqrt(err / mag);
  MESSAGE("reference vs double precision: relative L2 error of the logits ", rel);
  CHECK(rel < 0.15);
}

TEST_CASE("does not fit: the message names the chips and racks needed") {
  auto e = error_of(spec_of("llama-3-70b", kTray8, 8192));
  CHECK(e.find("does not fit on 8 chips") != std::string::npos);
  CHECK(e.find("at least 144 chips") != std::string::npos);  // 72 GB / 500 MB, as lpu capacity
  CHECK(e.find("racks") != std::string::npos);
  CHECK(e.find("with this generator's layout") != std::string::npos);
  auto s = spec_of("llama-3-70b", kLpx, 8192);
  s.users = 64;
  e = error_of(s);
  CHECK(e.find("does not fit on 256 chips") != std::string::npos);
  CHECK(e.find("KV cache") != std::string::npos);
}

TEST_CASE("refused clearly: unknown partitions, mixture-of-experts models, bad batches") {
  auto s = spec_of("tiny", kMini4, 64);
  s.partition = "diagonal";
  CHECK(error_of(s).find("--partition diagonal: unknown") != std::string::npos);
  s.partition = "pipeline";
  s.tensor = 2;
  CHECK(error_of(s).find("no tensor groups") != std::string::npos);
  // A mixture of experts needs tensor groups; latent attention (Kimi K2) is not implemented.
  CHECK(error_of(spec_of("mixtral-8x7b", kLpx, 4096)).find("need tensor groups (--partition hybrid or tensor)") != std::string::npos);
  auto kimi = spec_of("kimi-k2", kLpx, 4096);
  kimi.partition = "hybrid";
  CHECK(error_of(kimi).find("latent attention") != std::string::npos);
  s = spec_of("tiny", kMini4, 64);
  s.users = 3;
  s.batch = 2;
  CHECK(error_of(s).find("multiple of the batch") != std::string::npos);
  s = spec_of("tiny", kMini4, 64);
  auto plan = plan_decoder(s);
  CHECK_THROWS_AS(step_registers(plan, 64), Error);  // outside the context
}

TEST_CASE("placement: symbols inside their slices, never overlapping, registers address the KV cache") {
  for (const auto& rack : {kMini4, kTray8}) {
    CAPTURE(rack);
    auto plan = plan_decoder(spec_of("tiny", rack, 64));
    const int rows = plan.rack.chip(0).mem.rows;
    std::int64_t tiles = 0;
    for (const auto& c : plan.chips) {
      tiles += c.tiles;
      std::map<std::string, std::vector<std::pair<std::int64_t, std::int64_t>>> used;
      bool kv = false;
      for (const auto& sym : chip_placement(plan, c.stage)) {
        const std::int64_t r0 = sym["row"], n = sym["rows"];
        CHECK(r0 >= 0);
        CHECK(r0 + n <= rows);
        for (auto [a, b] : used[sym["slice"]]) CHECK((r0 + n <= a || b <= r0));
        used[sym["slice"]].emplace_back(r0, r0 + n);
        kv |= sym["kind"] == "kcache";
      }
      // The KV cache lives where the attention core runs.
      CHECK(kv == (c.units.find(".attn") != std::string::npos));
    }
    // Every weight tile of the model is streamed once per step: q, k, v, o, gate, up, down, LM head.
    const auto g = plan_json(plan)["geometry"];
    const int NK = g["k_tiles"], RQ = g["q_row_tiles"], RK = g["k_row_tiles"], NVT = g["v_tiles"], RF = g["ffn_row_tiles"],
              RV = g["lm_row_tiles"];
    const int NO = (plan.model.heads + int(g["heads_per_o_vector"]) - 1) / int(g["heads_per_o_vector"]);
    CHECK(tiles == plan.model.layers * ((RQ + RK + NVT) * NK + NK * NO + 2 * RF * NK + NK * RF) + RV * NK);
    // Registers: r1 = pos, and for every position exactly one K third and one V part own it.
    for (int pos : {0, 1, 31, 32, 63}) {
      auto regs = step_registers(plan, pos);
      CHECK(regs[0] == std::pair<int, std::uint32_t>{1, std::uint32_t(pos)});
      int owners = 0;
      for (std::size_t i = 1; i < regs.size(); ++i) owners += regs[i].second != 0;
      CHECK(owners == 2);
    }
  }
}

TEST_CASE("every program assembles, programs differing only in links share a schedule") {
  auto plan = plan_decoder(spec_of("tiny", kTray8, 64));
  auto objs = decoder_objects(plan, 1);
  CHECK(objs.size() == plan.programs.size());
  for (const auto& o : objs) CHECK(o != nullptr);
  CHECK(plan.program_schedule.size() == plan.programs.size());
}

TEST_CASE("KV cache after one step equals the reference decoder's k and v") {
  auto plan = plan_decoder(spec_of("tiny", kMini4, 64));
  auto w = gen_weights(plan.model, 7, plan.wtype);
  DecodeSession ses(plan, w);
  ReferenceDecoder ref(plan.model, w, {plan.wtype, plan.reduce_block});
  const int tok = 5;
  ses.step(tok, 0);
  ref.step(tok, 0);
  const auto& m = plan.model;
  const int hd = m.head_dim, E = plan.reduce_block;
  // K row of position 0: third 0 of block 0, row 1 (row 0 is the dump row); kv head g at slot g,
  // halves in vectors of E elements.
  auto K = ses.read_symbol(0, "K0u0g0j0p0");
  const auto& rk = ref.kcache(0)[0];
  int bad = 0;
  for (int g = 0; g < m.kv_heads; ++g)
    for (int s = 0; s < 2; ++s)
      for (int i = 0; i < hd / 2; ++i) {
        const std::size_t e = std::size_t(((2 * g + s) * E) + i);
        const float chip = load(K, std::size_t(plan.vector_bytes) + e);
        const float want = rk[std::size_t(g * hd + s * hd / 2 + i)];
        if (chip != want && bad++ < 5) MESSAGE("k g=", g, " s=", s, " i=", i, ": chip ", chip, " reference ", want);
      }
  CHECK(bad == 0);
  // V^T: rows slot * hd + j (split in three parts), column = position 0.
  const auto& rv = ref.vcache(0)[0];
  bad = 0;
  const int R = 2 * hd, prt = (R + 2) / 3;
  for (int r = 0; r < R; ++r) {
    auto V = ses.read_symbol(0, "V0u0t0j" + std::to_string(r / prt) + "p0");
    const std::size_t row = std::size_t(prt + r % prt);  // dump rows first
    const float chip = load(V, row * std::size_t(plan.vector_bytes));
    const float want = rv[std::size_t(r)];
    if (chip != want && bad++ < 5) MESSAGE("v row ", r, ": chip ", chip, " reference ", want);
  }
  CHECK(bad == 0);
}

TEST_CASE("tiny on four mini chips: 32 tokens identical to the reference, logits bit-identical") {
  check_against_reference(spec_of("tiny", kMini4, 64), 1, {1, 2, 3}, 32);
}

TEST_CASE("attention over the tokens in the cache: a program per length bucket, one placement, time grows with the tokens") {
  // mini: 32-byte vectors, so a KV-cache block holds n = 32 fp8 positions; context 128 = 4 blocks,
  // buckets of 1, 2 and 4 blocks (32, 64, 128 tokens).
  auto full = plan_decoder(spec_of("tiny", kMini4, 128));
  CHECK(full.kv_block == 32);
  CHECK(full.kv_len == 128);
  CHECK(kv_bucket(full, 1) == 32);
  CHECK(kv_bucket(full, 32) == 32);
  CHECK(kv_bucket(full, 33) == 64);
  CHECK(kv_bucket(full, 65) == 128);
  CHECK_THROWS_AS(kv_bucket(full, 129), Error);
  auto s32 = spec_of("tiny", kMini4, 128);
  s32.kv_len = 32;
  auto p32 = plan_decoder(s32);
  auto s64 = s32;
  s64.kv_len = 64;
  auto p64 = plan_decoder(s64);
  // Every symbol (weights, tables, KV cache) where the whole context's programs have it: a
  // bucket's programs replace another's between steps with the SRAM as it is.
  REQUIRE(p32.chips.size() == full.chips.size());
  for (std::size_t c = 0; c < full.chips.size(); ++c) CHECK(chip_placement(p32, int(c)) == chip_placement(full, int(c)));
  // A step past the bucket's tokens is refused, naming the bucket it needs.
  CHECK_NOTHROW(step_registers(p32, 31));
  try {
    step_registers(p32, 40);
    CHECK(false);
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("kv_len 64") != std::string::npos);
  }
  auto cycles = [](const DecoderPlan& p) { return decode_timing(p, 1, {})["decode"]["rack_cycles_per_step"].get<std::int64_t>(); };
  const auto c32 = cycles(p32), c64 = cycles(p64), c128 = cycles(full);
  MESSAGE("step cycles at 32, 64, 128 tokens: ", c32, " ", c64, " ", c128);
  CHECK(c32 < c64);
  CHECK(c64 < c128);
  CHECK_THROWS_AS(plan_decoder([&] { auto s = s32; s.kv_len = 129; return s; }()), Error);
  // Greedy decode across both bucket changes (positions 32 and 64): tokens and logits as the
  // reference's, each step on its bucket's programs; each head's softmax in two halves (4, 8
  // and 16 score vectors; the other tests take the one-pass softmax auto gives these lengths).
  auto sh = spec_of("tiny", kMini4, 128);
  sh.softmax = "halves";
  auto r = check_against_reference(sh, 5, {4, 9}, 68);
  // Step at pos attends pos + 1 tokens: 1 block up to pos 31, 2 up to 63, then 4.
  for (const auto& st : r.steps) CHECK(st.kv_len == (st.pos < 32 ? 32 : st.pos < 64 ? 64 : 128));
  CHECK(r.steps.back().pos == 68);  // 2 prompt tokens, 68 new: the last made at position 1 + 67
}

TEST_CASE("tiny on a tray of lp30 chips, layers cut inside attention and the FFN: identical tokens and logits") {
  check_against_reference(spec_of("tiny", kTray8, 64), 2, {7, 8}, 12);
}

TEST_CASE("bf16 weights: identical tokens and logits") {
  auto s = spec_of("tiny", kMini4, 64);
  s.dtype = "bf16";
  check_against_reference(s, 3, {4}, 12);
}

TEST_CASE("the rack manifest runs on the rack engine and returns the reference's first logits") {
  const auto dir = std::filesystem::temp_directory_path() / "lpu_test_decoder_manifest";
  std::filesystem::remove_all(dir);
  auto plan = plan_decoder(spec_of("tiny", kMini4, 64));
  auto w = gen_weights(plan.model, 5, plan.wtype);
  write_decoder(plan, dir.string(), &w);
  CHECK(std::filesystem::exists(dir / "placement.json"));
  CHECK(std::filesystem::exists(dir / "decode_p000.lpo"));
  auto prog = rack::load_manifest((dir / "rack.toml").string(), plan.rack);
  rack::Rack rk(plan.rack, prog);
  rk.run();
  auto out = rk.chip(plan.chips.back().chip)->take_dma_out(1);
  REQUIRE(out.size() == std::size_t(plan.logits_vectors));
  ReferenceDecoder ref(plan.model, w, {plan.wtype, plan.reduce_block});
  auto lg = ref.step(0, 0);  // the manifest's input is token 0 at position 0
  int differ = 0;
  for (int v = 0; v < plan.model.vocab; ++v) {
    float x;
    std::memcpy(&x, out[std::size_t(v / plan.reduce_block)].data() + 4 * (v % plan.reduce_block), 4);
    differ += x != lg[std::size_t(v)];
  }
  CHECK(differ == 0);
  std::filesystem::remove_all(dir);
}

TEST_CASE("timing-only on a tray: the emulated step ends where the generator scheduled it, for 1 and 2 threads") {
  auto plan = plan_decoder(spec_of(kSmall, kTray8, 1024));
  const auto& last = plan.chips.back();
  DecodeOptions o1, o2;
  o2.threads = 2;
  auto j1 = decode_timing(plan, 1, o1);
  auto j2 = decode_timing(plan, 1, o2);
  // The rack's cycles: the last stage's start delay plus its program (both from the schedule).
  CHECK(j1["decode"]["rack_cycles_per_step"].get<std::int64_t>() == last.start_delay + last.cycles);
  CHECK(j1["rack"]["cycles"] == j2["rack"]["cycles"]);
  CHECK(j1["decode"]["tokens_per_s_per_user"].get<double>() > 0);
  for (const char* k : {"latency_per_token_s", "tokens_per_s", "mxm_utilisation_mean", "sram_read_bandwidth_per_active_chip",
                        "link_bandwidth_rack", "power_w", "tokens_per_s_per_mw", "chips_used"})
    CHECK(j1["decode"].contains(k));
  CHECK(j1["decode"]["chips_used"] == plan.chips.size());
  // Every weight tile streamed: each tile is n LW rows (320 on lp30) of 320 bytes read once.
  std::int64_t tiles = 0;
  for (const auto& c : plan.chips) tiles += c.tiles;
  CHECK(j1["decode"]["weight_tiles_per_token"] == tiles);
  // The bound of the same plan: above the achieved figure, limited by one of the named resources.
  CHECK(j1["decode"]["fraction_of_bound"].get<double>() > 0);
  CHECK(j1["decode"]["fraction_of_bound"].get<double>() <= 1.0);
  CHECK(j1["decode"]["bound_layers"].size() == 3);  // 2 layers, then the head and the host I/O
  CHECK(!j1["decode"]["bound_limiter"].get<std::string>().empty());
  CHECK(j1["decode"]["sram_bytes_read_per_step"].get<double>() >= double(tiles) * 320 * 320);
}

TEST_CASE("stages of different layers share programs, symbols per layer: identical tokens and logits") {
  // Four chips per layer on the LPX rack: the output-projection stage of layer 1 runs the
  // program of layer 0's, with layer 1's weights.
  auto s = spec_of("tiny", kLpx, 64);
  s.chips_per_layer = 4;
  auto plan = plan_decoder(s);
  std::set<int> progs;
  for (const auto& c : plan.chips) progs.insert(c.program);
  CHECK(progs.size() < plan.chips.size());
  check_against_reference(s, 4, {9, 10}, 8);
}

TEST_CASE("two layers on one chip (a pair of lp30 chips): identical tokens and logits") {
  auto s = spec_of("tiny", std::string(LPU_SOURCE_DIR) + "/configs/pair.toml", 64);
  auto plan = plan_decoder(s);
  CHECK(plan.layers_per_chip == 2);
  CHECK(plan.chips.size() == 2);
  check_against_reference(s, 5, {11}, 8);
}

// ---- tensor and hybrid partitions ------------------------------------------------------------

namespace {
DecoderSpec grouped(const std::string& model, const std::string& rack, const std::string& partition, int tensor) {
  auto s = spec_of(model, rack, 64);
  s.partition = partition;
  s.tensor = tensor;
  s.head_chips = 1;  // functional decode reads the logits from one chip
  return s;
}
}  // namespace

TEST_CASE("tensor partition: four mini chips share every row tile, tokens and logits identical to the reference") {
  auto s = grouped("tiny", kMini4, "tensor", 0);
  auto plan = plan_decoder(s);
  CHECK(plan.tensor == 4);  // mini4 is linked all-to-all: the whole rack is one group
  CHECK(plan.groups == 1);
  REQUIRE(plan.chips.size() == 4);
  // Every member computes a share of every layer's q/k/v row tiles.
  for (const auto& c : plan.chips) CHECK(c.units.find("L1.qkv[") != std::string::npos);
  CHECK(plan.chips.back().dma_out_vectors == plan.logits_vectors);  // --head-chips 1: the last member
  check_against_reference(s, 1, {1, 2, 3}, 32);
}

TEST_CASE("tensor partition, shares of unequal size (three chips) and bf16: identical tokens and logits") {
  auto s = grouped("tiny", kMini4, "tensor", 3);
  s.dtype = "bf16";
  check_against_reference(s, 6, {5}, 12);
}

TEST_CASE("hybrid partition: two groups of two in a pipeline, identical tokens and logits") {
  auto s = grouped("tiny", kMini4, "hybrid", 2);
  auto plan = plan_decoder(s);
  CHECK(plan.groups == 2);  // the layers, then the LM head
  CHECK(plan.chips[2].group == 1);
  CHECK(plan.chips[2].member == 0);
  check_against_reference(s, 7, {2, 9}, 16);
}

TEST_CASE("hybrid groups of lp30 chips exchange products from the edge slices: identical tokens and logits") {
  // Groups of two on a tray of lp30 chips (235 slices a hemisphere): the members send the output
  // and down projections' products from the two outermost slices of a hemisphere (mem.*.233-234,
  // beside the SXM) and keep the gathered SwiGLU output in the east ones; tiny's weights never
  // need those slices, so any instruction of theirs is this exchange's.
  auto s = grouped("tiny", kTray8, "hybrid", 2);
  auto plan = plan_decoder(s);
  int edge_sends = 0, east_a = 0;
  for (const auto& text : plan.programs) {
    std::istringstream in(text);
    std::string line, queue;
    while (std::getline(in, line)) {
      if (line.rfind(".queue ", 0) == 0) queue = line.substr(7);
      const bool edge = queue == "mem.e.234" || queue == "mem.w.234" || queue == "mem.e.233" || queue == "mem.w.233";
      if (edge && line.find(" READ ") != std::string::npos) ++edge_sends;
      if ((queue == "mem.e.234" || queue == "mem.e.233") && line.find(" WRITE ") != std::string::npos) ++east_a;
    }
  }
  CHECK(edge_sends > 0);
  CHECK(east_a > 0);
  check_against_reference(s, 7, {2, 9}, 8);
}

TEST_CASE("a member with more down row tiles than a hemisphere has planes keeps a west copy of a: identical logits") {
  // wide (examples/decode/wide.toml): seven 320-element row tiles; in a group of two lp30 chips
  // member 1 takes down row tiles 3-6, four for the east side's three planes, so its fourth runs
  // on a west plane and reads a second copy of the SwiGLU output that member 0 sends it after the
  // first, received on the west SXM into the outermost west slice (mem.w.234), which only that
  // copy uses there.
  auto s = grouped(std::string(LPU_SOURCE_DIR) + "/examples/decode/wide.toml", kTray8, "hybrid", 2);
  s.softmax = "halves";  // (4 score vectors: the halves at full vector width too)
  auto plan = plan_decoder(s);
  // Member 1 holds the four down row tiles; the west slice beside the SXM takes writes there
  // (the west copy, and the products of row tiles on west planes).
  bool four = false, west_edge = false;
  for (const auto& c : plan.chips)
    if (c.group == 0 && c.member == 1) {
      four = c.units.find("ffn_down[3,7)") != std::string::npos;
      const auto& text = plan.programs[std::size_t(c.program)];
      const auto at = text.find(".queue mem.w.234\n");
      if (at != std::string::npos) west_edge = text.substr(at, text.find(".queue", at + 1) - at).find(" WRITE ") != std::string::npos;
    }
  CHECK(four);
  CHECK(west_edge);
  check_against_reference(s, 3, {5, 6}, 4);
}

TEST_CASE("heads in place: A V writes each head into its place in the Wo input, no SHIFT: identical logits") {
  // In groups of two lp30 chips each member holds one kv head per V^T tile, whose query heads
  // fill whole Wo input vectors (320 lanes): heads128 (examples/decode/heads128.toml), two heads
  // of 128 per vector; heads64, five of 64. Head w of a vector has its V^T rows staged at rows
  // 128 w (64 w) on, so its result lands in place and SELs by slot join a vector's heads; nothing
  // goes through the SXM's SHIFT. A 700-token context: three blocks of 320 positions accumulate
  // into each head's result.
  for (const char* m : {"heads128", "heads64"}) {
    CAPTURE(m);
    auto s = grouped(std::string(LPU_SOURCE_DIR) + "/examples/decode/" + m + ".toml", kTray8, "hybrid", 2);
    s.context = 700;
    auto plan = plan_decoder(s);
    int shifts = 0;
    for (const auto& text : plan.programs)
      for (std::size_t at = text.find(" SHIFT."); at != std::string::npos; at = text.find(" SHIFT.", at + 1)) ++shifts;
    CHECK(shifts == 0);
    check_against_reference(s, 4, {7, 3}, 6);
  }
}

TEST_CASE("attention none: the layers' FFN only, no KV cache, fewer tiles and cycles, timing-only") {
  // The LPX side of attention-FFN disaggregation: every layer's RMSNorm, SwiGLU and residual, no
  // q/k/v, attention or output projection, so no KV cache and none of their weight tiles.
  auto full = grouped("tiny", kTray8, "hybrid", 2);
  auto ffn = full;
  ffn.attention = "none";
  const auto pf = plan_decoder(full), pn = plan_decoder(ffn);
  for (const auto& c : pn.chips) {
    CAPTURE(c.units);
    CHECK(c.units.find("attn") == std::string::npos);
    CHECK(c.units.find("qkv") == std::string::npos);
    CHECK(c.units.find(".wo") == std::string::npos);
    for (const auto& sym : chip_placement(pn, c.stage)) {
      CHECK(sym["kind"] != "kcache");
      CHECK(sym["kind"] != "vcache");
    }
  }
  const auto jf = decode_timing(pf, 1, {}), jn = decode_timing(pn, 1, {});
  CHECK(jn["decode"]["weight_tiles_per_token"].get<std::int64_t>() < jf["decode"]["weight_tiles_per_token"].get<std::int64_t>());
  CHECK(jn["decode"]["rack_cycles_per_step"].get<std::int64_t>() < jf["decode"]["rack_cycles_per_step"].get<std::int64_t>());
  auto w = gen_weights(pn.model, 1, pn.wtype);
  try {
    decode_functional(pn, w, {1}, 1, {});
    FAIL("a functional decode without attention ran");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("timing-only") != std::string::npos);
  }
  ffn.attention = "some";
  CHECK(error_of(ffn).find("--attention some: full or none") != std::string::npos);
  // No KV cache to hold: 64 users of tiny at context 64 need 3 mini chips' SRAM with attention,
  // the FFN layers alone fit the four chips of mini4.
  auto many = spec_of("tiny", kMini4, 64);
  many.users = 64;
  CHECK(error_of(many).find("does not fit") != std::string::npos);
  many.attention = "none";
  CHECK(error_of(many).empty());
  // A mixture of experts: each group's first layer begins with its router (the stage's input is
  // x alone, as at a chunk).
  auto moe = grouped("tiny-moe", kTray8, "hybrid", 2);
  moe.attention = "none";
  const auto pm = plan_decoder(moe);
  bool router_first = false;  // (a member whose units begin with the layer's router)
  for (const auto& c : pm.chips) router_first |= c.units.rfind("L0.router", 0) == 0;
  CHECK(router_first);
  CHECK(decode_timing(pm, 1, {})["decode"]["rack_cycles_per_step"].get<std::int64_t>() > 0);
}

TEST_CASE("attention core shared by kv heads in a group: KV cache on the sharing members only, identical logits") {
  // tiny-gqa on mini: 8 kv heads, a K row and a V^T tile hold 2, so four members take 2 each.
  auto s = grouped("tiny-gqa", kMini4k, "tensor", 4);
  auto plan = plan_decoder(s);
  for (const auto& c : plan.chips) {
    std::set<std::string> kgroups;
    for (const auto& sym : chip_placement(plan, c.stage))
      if (sym["kind"] == "kcache") kgroups.insert(sym["symbol"].get<std::string>().substr(0, 6));  // "K0u0g1"
    // Layers 0 and 1, one K row group (two kv heads) each: g = member.
    CHECK(kgroups == std::set<std::string>{fmt_group(0, c.member), fmt_group(1, c.member)});
  }
  check_against_reference(s, 8, {3, 4}, 8);
}

TEST_CASE("tensor groups must be linked all-to-all, and the group size is checked") {
  // The LPX rack links chips all-to-all within a tray of 8 only.
  auto s = spec_of("tiny", kLpx, 64);
  s.partition = "tensor";
  s.chips = 16;
  auto e = error_of(s);
  CHECK(e.find("must be linked all-to-all") != std::string::npos);
  CHECK(e.find("use --partition hybrid") != std::string::npos);
  s.chips = 0;
  s.tensor = 1;
  CHECK(error_of(s).find("at least 2 chips") != std::string::npos);
  s.tensor = 9;  // chips 0..8 span two trays
  CHECK(error_of(s).find("are not linked") != std::string::npos);
  s = spec_of("tiny", kLpx, 64);
  s.partition = "hybrid";
  s.chips_per_layer = 2;
  CHECK(error_of(s).find("--chips-per-layer") != std::string::npos);
  // Without a value the tensor partition takes the largest all-to-all block: a tray.
  s = spec_of("tiny", kLpx, 64);
  s.partition = "tensor";
  CHECK(plan_decoder(s).tensor == 8);
}

TEST_CASE("hybrid on the LPX rack, timing-only: the step ends where the generator scheduled it, 1 and 2 threads alike") {
  auto s = spec_of(kSmall, kLpx, 1024);
  s.partition = "hybrid";
  auto plan = plan_decoder(s);
  CHECK(plan.tensor == 8);
  std::int64_t end = 0, tiles = 0;
  for (const auto& c : plan.chips) {
    end = std::max(end, c.start_delay + c.cycles);
    tiles += c.tiles;
    CHECK(c.chip / 8 == c.group);  // a group is a tray
  }
  DecodeOptions o2;
  o2.threads = 2;
  auto j1 = decode_timing(plan, 1, {});
  auto j2 = decode_timing(plan, 1, o2);
  CHECK(j1["decode"]["rack_cycles_per_step"].get<std::int64_t>() == end);
  CHECK(j1["rack"]["cycles"] == j2["rack"]["cycles"]);
  CHECK(j1["decode"]["weight_tiles_per_token"] == tiles);
  // Every weight tile once: the tiles the pipeline partition streams, except that a group of 8
  // (more members than kv heads) gives each kv head V-projection row tiles of its own so that
  // every head's attention core can sit on its own member: small has 2 kv heads of 64 dims, a
  // pipeline packs both into one 320-row V tile (kvpt = 2, NVT = 1), the group one each (NVT =
  // 2), over NK = 640 / 320 = 2 column tiles in each of 2 layers: 1 x 2 x 2 = 4 more tiles.
  std::int64_t ptiles = 0;
  for (const auto& c : plan_decoder(spec_of(kSmall, kLpx, 1024)).chips) ptiles += c.tiles;
  CHECK(tiles == ptiles + 4);
}

// ---- mixture of experts ------------------------------------------------------------------------

TEST_CASE("mixture-of-experts gates: the top k logits, lower expert first among equal ones, zero elsewhere") {
  // Logits 1, 3, 3, 2 with k = 2: experts 1 and 2 (equal: both chosen, 1 first); max 3, so both
  // get exp(0) = 1 over a sum of 2: 0.5 each.
  auto g = moe_gates({1.0f, 3.0f, 3.0f, 2.0f}, 2);
  CHECK(g == std::vector<float>{0.0f, 0.5f, 0.5f, 0.0f});
  // k = 1 with a tie: the lower expert alone, gate exp(0) / 1 = 1.
  g = moe_gates({1.0f, 3.0f, 3.0f, 2.0f}, 1);
  CHECK(g == std::vector<float>{0.0f, 1.0f, 0.0f, 0.0f});
  // k = 2, logits 0 and ln 3 chosen: gates 1/4 and 3/4 up to the ISA's exp and reciprocal.
  g = moe_gates({0.0f, -5.0f, std::log(3.0f), -1.0f}, 2);
  CHECK(g[1] == 0.0f);
  CHECK(g[3] == 0.0f);
  CHECK(g[0] == doctest::Approx(0.25).epsilon(1e-5));
  CHECK(g[2] == doctest::Approx(0.75).epsilon(1e-5));
}

TEST_CASE("mixture of experts, every expert evaluated (tiny-moe: 4 experts, 2 per token) on tensor groups: identical tokens and logits") {
  auto s = grouped("tiny-moe", kMini4, "tensor", 4);
  s.moe = "dense";
  auto plan = plan_decoder(s);
  // Every expert's 2 gate/up row tiles (ffn 64 = 2 tiles of 32 on mini) go to members 1 and 3
  // (shares [0,0) [0,1) [1,1) [1,2)), its 2 down row tiles likewise; one member has the router.
  int routers = 0, up3 = 0;
  for (const auto& c : plan.chips) {
    up3 += c.units.find("L0.x3.ffn_up[") != std::string::npos;
    routers += c.units.find("L0.router") != std::string::npos;
  }
  CHECK(up3 == 2);
  CHECK(routers == 1);
  check_against_reference(s, 9, {1, 2, 3}, 16);
  // The routing matters: with one expert per token the reference's tokens differ.
  auto m1 = plan.model;
  m1.experts_per_token = 1;
  auto w = gen_weights(plan.model, 9, plan.wtype);
  ReferenceDecoder r2(plan.model, w, {plan.wtype, plan.reduce_block}), r1(m1, w, {plan.wtype, plan.reduce_block});
  CHECK(r2.greedy({1, 2, 3}, 16) != r1.greedy({1, 2, 3}, 16));
}

TEST_CASE("mixture of experts, every expert evaluated, in a hybrid pipeline of two groups, bf16: identical tokens and logits") {
  auto s = grouped("tiny-moe", kMini4, "hybrid", 2);
  s.dtype = "bf16";
  s.moe = "dense";
  check_against_reference(s, 10, {4, 5}, 12);
}

TEST_CASE("sparse routing: the chosen experts' weights GATHERed by an index computed on chip, identical tokens and logits") {
  auto s = grouped("tiny-moe", kMini4moe, "tensor", 4);
  auto plan = plan_decoder(s);
  // Slot units (the k-th chosen expert) instead of every expert; weights stored per expert
  // region; the programs GATHER.
  int gathers = 0, regions = 0;
  for (const auto& c : plan.chips) {
    CHECK(c.units.find("L0.x") == std::string::npos);
    for (const auto& sym : chip_placement(plan, c.stage)) regions += sym["symbol"].get<std::string>()[0] == 'X';
  }
  for (const auto& txt : plan.programs)
    for (std::size_t at = txt.find("GATHER"); at != std::string::npos; at = txt.find("GATHER", at + 1)) ++gathers;
  CHECK(gathers > 0);
  CHECK(regions > 0);
  check_against_reference(s, 9, {1, 2, 3}, 16);
  // Half the expert tiles of the dense evaluation per token (2 of 4 experts).
  auto d = s;
  d.moe = "dense";
  std::int64_t ts = 0, td = 0;
  for (const auto& c : plan.chips) ts += c.tiles;
  for (const auto& c : plan_decoder(d).chips) td += c.tiles;
  CHECK(ts < td);
}

TEST_CASE("sparse routing in a hybrid pipeline and with unequal shares: identical tokens and logits") {
  check_against_reference(grouped("tiny-moe", kMini4moe, "hybrid", 2), 11, {6}, 12);
  auto s = grouped("tiny-moe", kMini4moe, "tensor", 3);
  s.dtype = "bf16";
  check_against_reference(s, 12, {7, 8}, 8);
}

TEST_CASE("sparse routing is refused clearly where it cannot run") {
  auto s = grouped("tiny-moe", kMini4moe, "tensor", 4);
  s.batch = 2;
  s.users = 2;
  CHECK(error_of(s).find("--moe sparse") != std::string::npos);
  s = grouped("tiny-moe", kMini4, "tensor", 4);  // plain mini: too few MEM slices beside the expert regions
  CHECK(error_of(s).find("does not fit") != std::string::npos);
  s.moe = "both";
  CHECK(error_of(s).find("--moe both") != std::string::npos);
}

TEST_CASE("the weight path: LWM lanes by default, LW on request, the same tokens and logits either way") {
  // Weights reach the planes over the weight bus (docs/decode.md, "The weight path"): every
  // program loads its weights with LWM and no weight LW; --weight-path lw is the stream path.
  auto count = [](const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (std::size_t i = text.find(what); i != std::string::npos; i = text.find(what, i + 1)) ++n;
    return n;
  };
  auto s = spec_of("tiny", kMini4, 64);
  auto plan = plan_decoder(s);
  CHECK(plan.weight_path == "lwm");
  for (const auto& prog : plan.programs) CHECK(count(prog, " LWM.") > 0);
  s.weight_path = "lw";
  auto lw = plan_decoder(s);
  CHECK(lw.weight_path == "lw");
  for (const auto& prog : lw.programs) CHECK(count(prog, " LWM.") == 0);
  check_against_reference(s, 3, {1, 2}, 6);
  s.weight_path = "bus";
  CHECK(error_of(s) == "--weight-path bus: auto, lwm or lw");
  // Sparse experts are GATHERed over streams: auto takes LW, lwm is refused.
  auto m = grouped("tiny-moe", kMini4moe, "tensor", 4);
  CHECK(plan_decoder(m).weight_path == "lw");
  m.weight_path = "lwm";
  CHECK(error_of(m) == "--weight-path lwm: sparse experts are GATHERed over streams (LW); use --moe dense or --weight-path lw");
}

TEST_CASE("KV cache over the weight bus: K^T and V^T tiles, one register each, the same tokens and logits") {
  // A plane on each side: K^T and V^T tiles load over the weight bus (docs/decode.md, "KV cache"),
  // the K^T tiles installed transposed (IW tr=1), one register per slice part of each.
  auto s = spec_of("tiny", kMini4x2p, 64);
  s.k_cache = "transposed";  // (auto takes K rows at 64 positions: two blocks save too few loads)
  auto plan = plan_decoder(s);
  CHECK(plan.weight_path == "lwm");
  REQUIRE(plan.regs.size() == 2);  // 64 positions: one K^T and one V^T part
  CHECK(plan.regs[0].what.find("K^T cache") == 0);
  CHECK(plan.regs[1].what.find("V cache") == 0);
  std::size_t transposed = 0;
  for (const auto& prog : plan.programs) {
    std::istringstream in(prog);
    for (std::string line; std::getline(in, line);)
      transposed += line.find(" IW.") != std::string::npos && line.ends_with(" 1");
  }
  CHECK(transposed > 0);
  // Every position has exactly one block row per register (pos / 32: block 0 or 1 of 32 positions).
  for (int pos : {0, 31, 32, 63}) {
    auto regs = step_registers(plan, pos);
    CHECK(regs.size() == 3);
    for (std::size_t i = 1; i < regs.size(); ++i) CHECK(regs[i].second != 0);
  }
  check_against_reference(s, 4, {2, 7}, 6);
  // A tensor group of four: one kv head per member's core.
  auto t = grouped("tiny-gqa", kMini4x2p, "tensor", 4);
  t.k_cache = "transposed";
  check_against_reference(t, 5, {3, 1}, 4);
  s.k_cache = "auto";
  CHECK(plan_decoder(s).regs[0].what.find("K cache, third 0") == 0);
  s.k_cache = "columns";
  CHECK(error_of(s) == "--k-cache columns: auto, rows or transposed");
  s.k_cache = "transposed";
  s.weight_path = "lw";
  CHECK(error_of(s).find("--k-cache transposed: the K^T cache loads over the weight bus") == 0);
}

TEST_CASE("32k context on lp30: the transposed K cache needs one register per slice part, the three-slice K cache twelve") {
  // 32768 positions = 103 blocks of n = 320. K^T (over the weight bus): small's two kv heads'
  // footprint (2 x 2 x 80 = 320 rows) over 16 slices, prk = 20 rows a block, a slice of 3325 rows
  // holds (3325 - 20) / 20 = 165 blocks: one part, one register; V^T (2 x 64 = 128 rows, 8 a
  // block) likewise. Over streams (LW) a K block's rows are thirds of 107, (3325 - 1) / 107 = 31
  // blocks per slice: 4 parts per third, 12 registers; V^T thirds of 43 rows, (3325 - 43) / 43 =
  // 76 blocks per slice, 2 parts: 14 > 13.
  auto s = spec_of(kSmall, kLpx, 32768);
  auto plan = plan_decoder(s);
  REQUIRE(plan.regs.size() == 2);
  CHECK(plan.regs[0].what == "K^T cache, slice part 0");
  s.weight_path = "lw";
  CHECK(error_of(s) ==
        "context 32768 needs 14 KV-cache registers (the cache spans 12 + 2 slice parts); at most 13 are available: use a shorter "
        "--context");
}

TEST_CASE("the weight path on lp30: 80, 80 and 64 lanes per hemisphere, row r of a tile in lane r mod lanes") {
  // n = 320 (e4m3), a bus of 80 rows per plane per cycle, 235 slices per hemisphere less half of
  // those kept for scratch (470 / 32 = 14), the tables (2) and the KV cache (8B at 1k: a few):
  // about 226 per side. Three planes: 226 / 3 = 75 lanes would take ceil(320 / 75) = 5 cycles a
  // tile, which 64 lanes give (192 slices); then the slowest plane gains 16 lanes to save a cycle
  // (80 lanes, 4 cycles: 208), and another (224 <= 226): 80, 80, 64.
  auto plan = plan_decoder(spec_of("tiny", kTray8, 64));
  std::map<std::string, std::set<int>> lanes;  // "e0" -> lane numbers
  for (const auto& c : plan.chips) {
    if (c.stage != 0) continue;
    for (const auto& sym : chip_placement(plan, c.stage)) {
      const std::string nm = sym["symbol"];
      if (sym["kind"] != "weights" || nm[0] != 'W') continue;
      const auto l = nm.find('l');
      lanes[nm.substr(1, l - 1)].insert(std::stoi(nm.substr(l + 1)));
      CHECK(sym["contents"][0].get<std::string>().find(", ...") != std::string::npos);  // every lanes-th row
    }
  }
  std::multiset<std::size_t> sizes;
  for (const auto& [pl, ls] : lanes) sizes.insert(ls.size());
  CAPTURE(lanes.size());
  // tiny's few tiles may leave planes idle, but any plane used has its lanes.
  for (auto n : sizes) CHECK((n == 80 || n == 64));
  auto big = spec_of("llama-3-8b", kLpx, 1024);
  big.chips = 0;
  const auto plan8 = plan_decoder(big);
  std::multiset<std::size_t> s8;
  std::map<std::string, std::set<int>> l8;
  for (const auto& sym : chip_placement(plan8, 0)) {
    const std::string nm = sym["symbol"];
    if (sym["kind"] != "weights" || nm[0] != 'W') continue;
    l8[nm.substr(1, nm.find('l') - 1)].insert(std::stoi(nm.substr(nm.find('l') + 1)));
  }
  std::string got;
  for (const auto& [pl, ls] : l8) {
    s8.insert(ls.size());
    got += pl + ":" + std::to_string(ls.size()) + " ";
  }
  CAPTURE(got);
  CHECK(s8 == std::multiset<std::size_t>{64, 64, 80, 80, 80, 80});
}

TEST_CASE("progress: a hybrid plan reports each tensor group, its timing run each program assembled") {
  auto s = spec_of("tiny", kLpx, 64);
  s.partition = "hybrid";
  std::map<std::string, std::pair<std::int64_t, std::int64_t>> last;  // phase -> (done, total) last reported
  std::map<std::string, int> calls;
  progress::set_sink([&](std::string_view phase, std::int64_t d, std::int64_t t) {
    last[std::string(phase)] = {d, t};
    ++calls[std::string(phase)];
  });
  auto plan = plan_decoder(s);
  decode_timing(plan, 1, {});
  progress::set_sink({});
  REQUIRE(last.count("planning tensor group"));
  CHECK(last["planning tensor group"] == std::make_pair(std::int64_t(plan.groups), std::int64_t(plan.groups)));
  CHECK(calls["planning tensor group"] == plan.groups);
  // (one assembly per schedule: programs differing only in link numbers share one)
  const auto schedules = *std::max_element(plan.program_schedule.begin(), plan.program_schedule.end()) + 1;
  CHECK(last["assembling programs"] == std::make_pair(std::int64_t(schedules), std::int64_t(schedules)));
  CHECK(calls["assembling programs"] == schedules);
  CHECK(calls["emulating the rack"] == 1);
}
