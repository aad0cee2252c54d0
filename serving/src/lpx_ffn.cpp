#include "lpu/serving/lpx_ffn.hpp"

#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "lpu/arch/params.hpp"
#include "lpu/common/errors.hpp"
#include "lpu/workload/decoder.hpp"

namespace lpu::serving {

std::string LpxKey::str() const {
  return fmt::format("{}|{}|{}|{}|b{}|{:016x}", model, rack, dtype, partition, batch, files_hash);
}

namespace {

std::string read_text(const std::string& path, const char* what) {
  std::ifstream f(path);
  if (!f) throw ConfigError(what, fmt::format("cannot open '{}'", path));
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void fnv1a(std::uint64_t& h, const std::string& s) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
}

class EmulatorSource final : public LpxTimingSource {
 public:
  EmulatorSource(int threads, std::function<void(const std::string&)> log) : threads_(threads), log_(std::move(log)) {}

  LpxFfnTiming measure(const LpxKey& key) override {
    workload::DecoderSpec spec;
    spec.model = key.model;
    spec.rack = key.rack;
    spec.dtype = key.dtype;
    spec.partition = key.partition;
    spec.batch = key.batch;
    spec.users = key.batch;  // one micro-batch: the programs' whole batch
    // ---- The LPX side runs the FFN-only programs (DecoderSpec::attention, ee31417): every
    // ---- layer's RMSNorm + FFN or experts + residual, no attention and no KV cache. This is the
    // ---- one place the switch is set; "full" would emulate attention too (an over-count).
    spec.attention = "none";
    if (log_)
      log_(fmt::format("emulating the LPX FFN of {} on {} ({}, {}, micro-batch {}): timing-only, once per key", key.model,
                       key.rack, key.dtype, key.partition, key.batch));
    const auto plan = workload::plan_decoder(spec);
    workload::DecodeOptions opt;
    opt.threads = threads_;
    opt.quiet = true;
    const auto j = workload::decode_timing(plan, 1, opt);
    const auto& d = j.at("decode");
    LpxFfnTiming t;
    t.rack_cycles = d.at("rack_cycles_per_step").get<std::int64_t>();
    t.seconds_per_run = d.at("pipeline_latency_s").get<double>();
    t.layers = plan.model.layers;
    t.cycles_per_layer = double(t.rack_cycles) / t.layers;
    t.seconds_per_layer = t.seconds_per_run / t.layers;
    t.chips_used = int(plan.chips.size());
    t.rack_chips = plan.rack.chips;
    t.static_w_per_chip = plan.rack.chip(0).energy.static_w;
    t.dynamic_j_per_run = d.at("energy_dynamic_j_per_step").get<double>();
    return t;
  }

 private:
  int threads_;
  std::function<void(const std::string&)> log_;
};

nlohmann::json to_json(const LpxKey& k, const LpxFfnTiming& t) {
  return {{"model", k.model},
          {"rack", k.rack},
          {"dtype", k.dtype},
          {"partition", k.partition},
          {"batch", k.batch},
          {"files_hash", fmt::format("{:016x}", k.files_hash)},
          {"rack_cycles", t.rack_cycles},
          {"layers", t.layers},
          {"seconds_per_run", t.seconds_per_run},
          {"cycles_per_layer", t.cycles_per_layer},
          {"seconds_per_layer", t.seconds_per_layer},
          {"chips_used", t.chips_used},
          {"rack_chips", t.rack_chips},
          {"static_w_per_chip", t.static_w_per_chip},
          {"dynamic_j_per_run", t.dynamic_j_per_run}};
}

}  // namespace

std::unique_ptr<LpxTimingSource> emulator_lpx_source(int threads, std::function<void(const std::string&)> log) {
  return std::make_unique<EmulatorSource>(threads, std::move(log));
}

std::uint64_t hash_files(const std::string& model, const std::string& rack) {
  std::string mpath = model;
  if (model.find('/') == std::string::npos && !model.ends_with(".toml")) mpath = config_dir() + "/models/" + model + ".toml";
  std::uint64_t h = 0xcbf29ce484222325ULL;
  fnv1a(h, read_text(mpath, "model"));
  fnv1a(h, "\n--rack--\n");
  fnv1a(h, read_text(rack, "lpx.rack"));
  return h;
}

LpxFfnCache::LpxFfnCache(std::string path, LpxTimingSource& source) : path_(std::move(path)), source_(source) {
  if (path_.empty()) return;
  std::ifstream f(path_);
  if (!f) return;  // a new cache
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(f);
    if (j.at("version").get<int>() != 1) throw FormatError("version");
    for (const auto& e : j.at("entries")) {
      LpxKey k;
      k.model = e.at("model").get<std::string>();
      k.rack = e.at("rack").get<std::string>();
      k.dtype = e.at("dtype").get<std::string>();
      k.partition = e.at("partition").get<std::string>();
      k.batch = e.at("batch").get<int>();
      k.files_hash = std::stoull(e.at("files_hash").get<std::string>(), nullptr, 16);
      LpxFfnTiming t;
      t.rack_cycles = e.at("rack_cycles").get<std::int64_t>();
      t.layers = e.at("layers").get<int>();
      t.seconds_per_run = e.at("seconds_per_run").get<double>();
      t.cycles_per_layer = e.at("cycles_per_layer").get<double>();
      t.seconds_per_layer = e.at("seconds_per_layer").get<double>();
      t.chips_used = e.at("chips_used").get<int>();
      t.rack_chips = e.at("rack_chips").get<int>();
      t.static_w_per_chip = e.at("static_w_per_chip").get<double>();
      t.dynamic_j_per_run = e.at("dynamic_j_per_run").get<double>();
      entries_[k.str()] = {k, t};
    }
  } catch (const std::exception& e) {
    throw FormatError(fmt::format("{}: not an LPX timing cache of version 1 ({}); delete it to start a new one", path_, e.what()));
  }
}

const LpxFfnTiming& LpxFfnCache::get(const LpxKey& key) {
  const auto s = key.str();
  if (auto it = entries_.find(s); it != entries_.end()) {
    ++hits_;
    return it->second.second;
  }
  ++misses_;
  auto t = source_.measure(key);
  auto& slot = entries_[s];
  slot = {key, t};
  save();
  return slot.second;
}

void LpxFfnCache::save() const {
  if (path_.empty()) return;
  nlohmann::json j;
  j["version"] = 1;
  j["note"] =
      "LPX FFN timings from the emulator (timing-only), written by lpu serve-sim (docs/serving.md). Exact for its keys while "
      "the generator and emulator are unchanged: delete this file after rebuilding them.";
  j["entries"] = nlohmann::json::array();
  for (const auto& [s, e] : entries_) j["entries"].push_back(to_json(e.first, e.second));  // sorted by key: stable files
  const auto dir = std::filesystem::path(path_).parent_path();
  std::error_code ec;
  if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  const std::string tmp = path_ + ".tmp";
  {
    std::ofstream f(tmp);
    if (!f) throw Error(fmt::format("cannot write the LPX timing cache '{}'", tmp));
    f << j.dump(2) << "\n";
    if (!f) throw Error(fmt::format("cannot write the LPX timing cache '{}'", tmp));
  }
  if (std::rename(tmp.c_str(), path_.c_str()) != 0) throw Error(fmt::format("cannot replace the LPX timing cache '{}'", path_));
}

}  // namespace lpu::serving
