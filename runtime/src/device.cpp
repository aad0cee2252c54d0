// The local backend (an Engine on its own thread), weights from files, the Streamer, and
// `lpu run` over any device.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <ostream>

#include "lpu/common/errors.hpp"
#include "lpu/common/parse.hpp"
#include "lpu/runtime/device.hpp"
#include "lpu/runtime/engine.hpp"

namespace lpu::rt {

namespace {

class LocalDevice final : public Device {
 public:
  explicit LocalDevice(const DeviceSpec& spec) : eng_(spec), info_(eng_.info()) {
    th_ = std::thread([this] { loop(); });
  }
  ~LocalDevice() override {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    th_.join();
  }

  DeviceInfo info() override { return info_; }  // immutable
  void load_program(const obj::Program& prog, const std::vector<int>& chips) override {
    call([&] { eng_.load_program(prog, chips); }).get();
  }
  void load_tensor(const TensorLoad& w, const io::Tensor& t) override {
    call([&] { eng_.load_tensor(w, t); }).get();
  }
  io::Tensor read_symbol(int chip, const std::string& s) override {
    return call([&] { return eng_.read_symbol(chip, s); }).get();
  }
  void set_reg(int chip, int reg, std::uint32_t v) override {
    call([&] { eng_.set_reg(chip, reg, v); }).get();
  }
  RunResult run(const RunRequest& r) override {
    return call([&] { return eng_.run(r); }).get();
  }
  std::future<BatchResult> submit(Batch b) override {
    auto shared = std::make_shared<Batch>(std::move(b));
    return call([this, shared] { return eng_.stream(*shared); });
  }
  nlohmann::json stats() override {
    return call([&] { return eng_.stats(); }).get();
  }

 private:
  template <class F>
  auto call(F f) -> std::future<decltype(f())> {
    using R = decltype(f());
    auto task = std::make_shared<std::packaged_task<R()>>(std::move(f));
    auto fut = task->get_future();
    {
      std::lock_guard lk(mu_);
      q_.push_back([task] { (*task)(); });
    }
    cv_.notify_all();
    return fut;
  }
  void loop() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock lk(mu_);
        cv_.wait(lk, [&] { return stop_ || !q_.empty(); });
        if (q_.empty()) return;
        job = std::move(q_.front());
        q_.pop_front();
      }
      job();
    }
  }

  Engine eng_;
  const DeviceInfo info_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> q_;
  bool stop_ = false;
  std::thread th_;
};

std::string lower(std::string s) {
  for (auto& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

std::pair<std::string, std::string> split_option(const std::string& s, const char* option) {
  auto eq = s.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == s.size())
    throw ConfigError(option, fmt::format("'{}' must look like NAME=VALUE", s));
  return {s.substr(0, eq), s.substr(eq + 1)};
}

std::pair<int, std::uint32_t> parse_reg_option(const std::string& text) {
  auto [name, val] = split_option(text, "--reg");
  if (name.size() < 2 || name[0] != 'r' || name.find_first_not_of("0123456789", 1) != std::string::npos)
    throw ConfigError("--reg", fmt::format("'{}' is not a register r1..r15", name));
  const auto reg = parse_int(std::string_view(name).substr(1), fmt::format("--reg {}", name), IntRange{1, 15});
  const auto v = parse_int(val, fmt::format("--reg {}", name), IntRange{-(std::int64_t(1) << 31), 0xFFFFFFFFll});
  return {int(reg), std::uint32_t(v)};  // two's complement for negative values
}

int parse_channel_option(const std::string& channel, const char* option) {
  return int(parse_int(channel, fmt::format("{} channel", option), IntRange{0, 255}));
}

std::unique_ptr<Device> open_local(const DeviceSpec& spec) { return std::make_unique<LocalDevice>(spec); }

std::vector<std::string> load_weights(Device& dev, const WeightsFile& f) {
  namespace fs = std::filesystem;
  const auto ext = lower(fs::path(f.path).extension().string());
  std::vector<std::string> done;
  if (ext == ".npy") {
    auto t = io::load_npy(f.path);
    const auto sym = f.symbol.empty() ? fs::path(f.path).stem().string() : f.symbol;
    dev.load_tensor({f.chip, sym, f.path, f.convert}, t);
    done.push_back(sym);
  } else if (ext == ".safetensors") {
    auto m = io::load_safetensors(f.path);
    std::vector<std::string> names;
    for (const auto& [n, t] : m) names.push_back(n);
    auto need = [&](const std::string& n, const char* why) {
      if (!m.count(n))
        throw FormatError(fmt::format("{}: no tensor '{}' ({}; the file has: {})", f.path, n, why,
                                      names.empty() ? "none" : fmt::format("{}", fmt::join(names, ", "))));
    };
    for (const auto& n : f.only) need(n, "asked for");
    for (const auto& [n, s] : f.rename) need(n, "renamed");
    for (const auto& [n, t] : m) {
      if (!f.only.empty() && std::find(f.only.begin(), f.only.end(), n) == f.only.end()) continue;
      auto it = f.rename.find(n);
      const auto sym = it == f.rename.end() ? n : it->second;
      dev.load_tensor({f.chip, sym, fmt::format("{}: tensor '{}'", f.path, n), f.convert}, t);
      done.push_back(sym);
    }
  } else {
    throw Error(fmt::format("{}: unknown weights file type '{}' (expected .npy or .safetensors)", f.path, ext));
  }
  return done;
}

// ---- Streamer ---------------------------------------------------------------------------------

double StreamerStats::percentile_s(double p) const { return percentile(latency_s, p); }

Streamer::Streamer(Device& dev, StreamSpec spec, StreamerOptions opt) : dev_(dev), spec_(spec), opt_(opt) {
  if (opt_.max_batch < 1) opt_.max_batch = 1;
  if (opt_.max_in_flight < 1) opt_.max_in_flight = 1;
  worker_ = std::thread([this] { loop(); });
}

Streamer::~Streamer() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  worker_.join();
}

std::future<ItemResult> Streamer::submit(Bytes input) {
  std::future<ItemResult> f;
  {
    std::lock_guard lk(mu_);
    if (stop_) throw Error("Streamer: submit after shutdown");
    pending_.push_back(Pending{std::move(input), {}});
    f = pending_.back().promise.get_future();
    ++submitted_;
  }
  cv_.notify_all();
  return f;
}

void Streamer::drain() {
  std::unique_lock lk(mu_);
  const auto target = submitted_;
  cv_.wait(lk, [&] { return completed_ >= target; });
}

StreamerStats Streamer::stats() const {
  std::lock_guard lk(mu_);
  return stats_;
}

void Streamer::loop() {
  struct Flight {
    std::future<BatchResult> fut;
    std::vector<std::promise<ItemResult>> promises;
  };
  std::deque<Flight> flights;
  for (;;) {
    std::unique_lock lk(mu_);
    if (flights.empty()) cv_.wait(lk, [&] { return stop_ || !pending_.empty(); });
    if (!pending_.empty() && int(flights.size()) < opt_.max_in_flight) {
      Flight fl;
      Batch b;
      b.spec = spec_;
      while (!pending_.empty() && int(b.items.size()) < opt_.max_batch) {
        b.items.push_back(std::move(pending_.front().input));
        fl.promises.push_back(std::move(pending_.front().promise));
        pending_.pop_front();
      }
      lk.unlock();
      try {
        fl.fut = dev_.submit(std::move(b));
      } catch (...) {
        std::promise<BatchResult> p;
        p.set_exception(std::current_exception());
        fl.fut = p.get_future();
      }
      flights.push_back(std::move(fl));
      continue;
    }
    if (!flights.empty()) {
      lk.unlock();
      Flight fl = std::move(flights.front());
      flights.pop_front();
      const auto n = std::int64_t(fl.promises.size());
      try {
        auto r = fl.fut.get();
        if (r.items.size() != fl.promises.size())
          throw Error(fmt::format("stream: {} results for {} items", r.items.size(), fl.promises.size()));
        {
          std::lock_guard g(mu_);
          if (stats_.items == 0 || r.start_s < stats_.first_s) stats_.first_s = r.start_s;
          stats_.last_s = std::max(stats_.last_s, r.end_s);
          stats_.items += n;
          stats_.batches++;
          for (const auto& it : r.items) stats_.latency_s.push_back(it.latency_s);
        }
        for (std::size_t i = 0; i < fl.promises.size(); ++i) fl.promises[i].set_value(std::move(r.items[i]));
      } catch (...) {
        auto e = std::current_exception();
        for (auto& p : fl.promises) p.set_exception(e);
      }
      lk.lock();
      completed_ += n;
      lk.unlock();
      cv_.notify_all();
      continue;
    }
    if (stop_) return;
  }
}

// ---- lpu run over a device --------------------------------------------------------------------

DeviceSpec spec_for_program(const obj::Program& prog, const std::string& preset, const std::vector<std::string>& set,
                            bool timing_only) {
  DeviceSpec s;
  s.preset = !preset.empty() ? preset : !prog.geometry.preset.empty() ? prog.geometry.preset : "lp30";
  s.set = set;
  s.timing_only = timing_only;
  return s;
}

nlohmann::json run_stats_json(const model::ChipStats& s, const ChipParams& p, const model::HostStats& host, double tokens) {
  return model::stats_json(s, p, &host, tokens);
}

int run_files(Device& dev, const RunFiles& f, std::ostream& out) {
  auto prog = obj::load_object(f.program);
  const auto V = std::size_t(dev.info().vector_bytes);
  dev.load_program(prog);
  RunRequest req;
  for (const auto& r : f.regs) req.regs.push_back(parse_reg_option(r));
  for (const auto& in : f.inputs) {
    auto [sym, file] = split_option(in, "--input");
    dev.load_tensor({0, sym, file, true}, io::load_npy(file));
  }
  for (const auto& in : f.dma_in) {
    auto [ch, file] = split_option(in, "--dma-in");
    auto& vs = req.dma_in[parse_channel_option(ch, "--dma-in")];
    auto t = io::load_npy(file);
    if (t.data.size() % V != 0)
      throw FormatError(fmt::format("{}: {} bytes is not a whole number of {}-byte vectors", file, t.data.size(), V));
    for (std::size_t i = 0; i < t.data.size(); i += V) vs.emplace_back(t.data.begin() + std::ptrdiff_t(i), t.data.begin() + std::ptrdiff_t(i + V));
  }
  auto res = dev.run(req);
  for (const auto& o : f.outputs) {
    auto [sym, file] = split_option(o, "--output");
    io::save_npy(dev.read_symbol(0, sym), file);
  }
  for (const auto& o : f.dma_out) {
    auto [ch, file] = split_option(o, "--dma-out");
    io::Tensor t;
    t.type = io::ElemType::U8;
    auto it = res.dma_out.find(parse_channel_option(ch, "--dma-out"));
    const std::size_t n = it == res.dma_out.end() ? 0 : it->second.size();
    t.shape = {std::int64_t(n), std::int64_t(V)};
    if (it != res.dma_out.end())
      for (auto& v : it->second) t.data.insert(t.data.end(), v.begin(), v.end());
    io::save_npy(t, file);
  }
  if (!f.quiet) out << res.text;
  if (!f.stats.empty()) {
    std::ofstream s(f.stats);
    if (!s) throw Error(fmt::format("cannot write {}", f.stats));
    auto j = res.json;
    j["status"] = "ok";  // as a local run's; a failed run writes "error" (tools/lpu, docs/debugging.md)
    s << j.dump(2) << "\n";
  }
  return 0;
}

}  // namespace lpu::rt
