#include "lpu/model/trace.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "lpu/asm/assembler.hpp"
#include "lpu/common/errors.hpp"
#include "lpu/isa/isa.hpp"

namespace lpu::model {

std::set<int> TraceSelection::parse_ranges(const std::string& text, const char* what) {
  std::set<int> out;
  std::size_t i = 0;
  while (i < text.size()) {
    auto comma = text.find(',', i);
    std::string part = text.substr(i, comma == std::string::npos ? std::string::npos : comma - i);
    auto dash = part.find('-');
    try {
      std::size_t used = 0;
      int a = std::stoi(part.substr(0, dash), &used);
      if (used != (dash == std::string::npos ? part.size() : dash)) throw std::invalid_argument(part);
      int b = a;
      if (dash != std::string::npos) {
        b = std::stoi(part.substr(dash + 1), &used);
        if (used != part.size() - dash - 1) throw std::invalid_argument(part);
      }
      if (a < 0 || b < a || b - a > 1'000'000) throw std::invalid_argument(part);
      for (int k = a; k <= b; ++k) out.insert(k);
    } catch (const std::exception&) {
      throw Error(fmt::format("{}: '{}' is not a list of numbers and ranges like 0,3-5", what, text));
    }
    if (comma == std::string::npos) break;
    i = comma + 1;
  }
  return out;
}

namespace {

std::string bits(std::uint64_t v, int width) {
  std::string s(std::size_t(width), '0');
  for (int i = 0; i < width; ++i)
    if ((v >> i) & 1u) s[std::size_t(width - 1 - i)] = '1';
  return s;
}

std::string vcd_id(std::size_t n) {
  std::string s;
  do {
    s += char('!' + n % 94);
    n /= 94;
  } while (n);
  return s;
}

std::string scope_name(const std::string& s) {
  std::string o = s;
  std::replace(o.begin(), o.end(), '.', '_');
  return o;
}

}  // namespace

// ---- VCD ---------------------------------------------------------------------------------------

VcdTracer::VcdTracer(const Chip& chip, const TraceSelection& sel)
    : chip_(chip), sel_(sel), prefix_(fmt::format("chip{}", chip.id())) {
  const auto& L = chip.layout();
  queue_sig_.assign(L.queues().size(), {-1, -1});
  slice_sig_.assign(L.slices().size(), {});
  for (const auto& s : L.slices()) {
    std::string unit(slice_kind_name(s.kind));
    if (!sel_.units.empty() && !sel_.units.count(unit)) continue;
    const std::string scope = scope_name(s.name);
    int k = 0;
    for (std::size_t qi = 0; qi < L.queues().size(); ++qi)
      if (L.queues()[qi].slice.v == s.position) {
        int a = sig(scope, fmt::format("q{}_insn", k), 64);
        int b = sig(scope, fmt::format("q{}_pc", k), 32);
        queue_sig_[qi] = {a, b};
        ++k;
      }
    auto& ss = slice_sig_[std::size_t(s.position)];
    if (s.kind == SliceKind::Mem) {
      ss.rd_en = sig(scope, "rd_en", 1);
      ss.rd_addr = sig(scope, "rd_addr", 20);
      ss.wr_en = sig(scope, "wr_en", 1);
      ss.wr_addr = sig(scope, "wr_addr", 20);
    }
    if (s.kind == SliceKind::Mxm) {
      ss.mm_en = sig(scope, "mm_en", 1);
      ss.mm_acc = sig(scope, "mm_acc", 8);
    }
  }
  const int vb = chip.params().vector_bytes() * 8;
  for (int pos : sel_.positions)
    for (int id = 0; id < chip.params().stream.per_direction; ++id) {
      if (!sel_.streams.empty() && !sel_.streams.count(id)) continue;
      for (char d : {'e', 'w'}) {
        int v = sig("streams", fmt::format("s{}{}_p{}", id, d, pos), vb);
        sig("streams", fmt::format("s{}{}_p{}_valid", id, d, pos), 1);
        stream_sig_[{id | (d == 'w' ? 64 : 0), pos}] = v;
      }
    }
}

int VcdTracer::sig(const std::string& scope, const std::string& name, int width) {
  int n = int(sigs_.size());
  sigs_.push_back({scope, name, vcd_id(sigs_.size()), width});
  by_name_[scope + "." + name] = n;
  return n;
}

void VcdTracer::change(std::int64_t cycle, int s, std::string v) {
  if (s < 0 || !in_window(cycle)) return;
  changes_.push_back({cycle, seq_++, s, std::move(v)});
}

void VcdTracer::on_group(int queue, std::int64_t cycle, std::uint64_t word, std::int64_t, std::int64_t,
                         std::int64_t pc) {
  const auto [insn, pcs] = queue_sig_[std::size_t(queue)];
  if (insn < 0 || !in_window(cycle)) return;
  change(cycle, insn, bits(word, 64));
  change(cycle, pcs, bits(std::uint64_t(pc), 32));
}

void VcdTracer::on_sram(int slice, int row, bool write, std::int64_t cycle) {
  const auto& ss = slice_sig_[std::size_t(slice)];
  const int en = write ? ss.wr_en : ss.rd_en;
  if (en < 0 || !in_window(cycle)) return;
  change(cycle, en, "1");
  change(cycle, write ? ss.wr_addr : ss.rd_addr, bits(std::uint64_t(row), 20));
  change(cycle + 1, en, "0");  // a later access in that cycle overrides (sequence order)
}

void VcdTracer::on_mxm(int plane, int acc, std::int64_t cycle) {
  const auto& ss = slice_sig_[std::size_t(plane)];
  if (ss.mm_en < 0 || !in_window(cycle)) return;
  change(cycle, ss.mm_en, "1");
  change(cycle, ss.mm_acc, bits(std::uint64_t(acc), 8));
  change(cycle + 1, ss.mm_en, "0");
}

void VcdTracer::on_stream(int sid, int position, std::int64_t cycle, const std::uint8_t* value) {
  if (sel_.positions.empty()) return;
  const int id = sid & 63;
  const bool east = !(sid & 64);
  if (!sel_.streams.empty() && !sel_.streams.count(id)) return;
  const int hop = chip_.params().stream.hop_cycles;
  const int vbytes = chip_.params().vector_bytes();
  for (int p : sel_.positions) {
    if (east ? p < position : p > position) continue;
    const std::int64_t at = cycle + std::int64_t(std::abs(p - position)) * hop;
    if (!in_window(at)) continue;
    auto v = stream_sig_.find({sid, p});
    if (v == stream_sig_.end()) continue;
    std::string b(std::size_t(vbytes) * 8, '0');
    for (int i = 0; i < vbytes * 8; ++i)
      if ((value[i / 8] >> (i % 8)) & 1) b[std::size_t(vbytes * 8 - 1 - i)] = '1';
    // A nearer upstream write on the same diagonal replaces this one on its way: ordering by
    // (cycle, distance) below keeps the nearest.
    changes_.push_back({at, std::uint64_t(1) << 62 | std::uint64_t(1'000'000 - std::abs(p - position)), v->second, b});
    changes_.push_back({at, std::uint64_t(1) << 62 | 2'000'000, v->second + 1, "1"});
    changes_.push_back({at + hop, 0, v->second + 1, "0"});  // gone next hop unless another arrives
  }
}

void VcdTracer::on_finish(std::int64_t cycles) { end_ = cycles; }

void VcdTracer::write(std::ostream& out) const {
  out << "$comment lpu emulator waveform: chip " << chip_.id() << ", preset " << chip_.params().name
      << "; one time unit = one clock cycle $end\n$timescale 1ns $end\n";
  out << "$scope module " << prefix_ << " $end\n";
  std::string cur;
  for (const auto& s : sigs_) {
    if (s.scope != cur) {
      if (!cur.empty()) out << "$upscope $end\n";
      out << "$scope module " << s.scope << " $end\n";
      cur = s.scope;
    }
    out << "$var wire " << s.width << " " << s.id << " " << s.name << (s.width > 1 ? fmt::format(" [{}:0]", s.width - 1) : "")
        << " $end\n";
  }
  if (!cur.empty()) out << "$upscope $end\n";
  out << "$upscope $end\n$enddefinitions $end\n";
  // Initial values: everything unknown until first driven, enables low.
  out << "#" << std::max<std::int64_t>(sel_.from, 0) << "\n$dumpvars\n";
  for (const auto& s : sigs_) {
    bool low = s.name.ends_with("_en") || s.name.ends_with("_valid");
    if (s.width == 1) out << (low ? "0" : "x") << s.id << "\n";
    else out << "bx " << s.id << "\n";
  }
  out << "$end\n";
  auto ch = changes_;
  std::stable_sort(ch.begin(), ch.end(), [](const Change& a, const Change& b) {
    return std::tie(a.cycle, a.seq) < std::tie(b.cycle, b.seq);
  });
  std::int64_t t = std::max<std::int64_t>(sel_.from, 0);
  for (std::size_t i = 0; i < ch.size(); ++i) {
    // Within one time step only the last change of a signal counts.
    bool superseded = false;
    for (std::size_t j = i + 1; j < ch.size() && ch[j].cycle == ch[i].cycle; ++j)
      if (ch[j].sig == ch[i].sig) {
        superseded = true;
        break;
      }
    if (superseded) continue;
    if (ch[i].cycle != t) {
      t = ch[i].cycle;
      out << "#" << t << "\n";
    }
    const auto& s = sigs_[std::size_t(ch[i].sig)];
    if (s.width == 1) out << ch[i].value << s.id << "\n";
    else out << "b" << ch[i].value << " " << s.id << "\n";
  }
  const std::int64_t last = std::min(sel_.to, end_);
  if (last > t) out << "#" << last << "\n";
}

// ---- Timeline ----------------------------------------------------------------------------------

struct Timeline::Track : Chip::Observer {
  const Chip* chip;
  struct Span {
    int queue;
    std::int64_t cycle, count, delay;
    std::uint64_t word;
  };
  std::vector<Span> spans;
  std::int64_t cycles = 0;
  void on_group(int queue, std::int64_t cycle, std::uint64_t word, std::int64_t count, std::int64_t delay,
                std::int64_t) override {
    spans.push_back({queue, cycle, count, delay, word});
  }
  void on_finish(std::int64_t c) override { cycles = c; }
};

Timeline::Timeline() = default;
Timeline::~Timeline() = default;

Chip::Observer* Timeline::attach(const Chip& chip) {
  tracks_.push_back(std::make_unique<Track>());
  tracks_.back()->chip = &chip;
  return tracks_.back().get();
}

void Timeline::flow(int from_chip, std::int64_t send_cycle, int to_chip, std::int64_t recv_cycle, int link) {
  flows_.push_back({from_chip, to_chip, link, send_cycle, recv_cycle});
}

std::size_t Timeline::events() const {
  std::size_t n = flows_.size();
  for (const auto& t : tracks_) n += t->spans.size();
  return n;
}

void Timeline::write(std::ostream& out) const {
  using nlohmann::json;
  json ev = json::array();
  double clock = 1e9;
  for (const auto& tr : tracks_) {
    const Chip& c = *tr->chip;
    clock = c.params().clock_hz;
    const double us = 1e6 / c.params().clock_hz;  // microseconds per cycle
    const int pid = c.id();
    ev.push_back({{"name", "process_name"}, {"ph", "M"}, {"pid", pid}, {"args", {{"name", fmt::format("chip {} ({})", pid, c.params().name)}}}});
    std::set<int> used;
    for (const auto& s : tr->spans) used.insert(s.queue);
    for (int q : used)
      ev.push_back({{"name", "thread_name"}, {"ph", "M"}, {"pid", pid}, {"tid", q},
                    {"args", {{"name", c.layout().queue(QueueId{q}).name}}}});
    // Counters: SRAM bytes read and MXM passes per bucket of cycles.
    const std::int64_t buckets = std::clamp<std::int64_t>(tr->cycles / 1, 1, 200);
    const std::int64_t width = std::max<std::int64_t>(1, (tr->cycles + buckets - 1) / buckets);
    std::vector<double> sram(std::size_t(buckets + 1), 0), mxm(std::size_t(buckets + 1), 0);
    for (const auto& s : tr->spans) {
      const auto in = isa::decode(s.word);
      const auto& ii = isa::info(in.op);
      const int occ = ii.occupancy;
      const std::int64_t end = s.cycle + (s.count - 1) * s.delay + occ;
      std::string text = assembler::format_instr(in, c.params());
      json args = {{"instruction", text}};
      if (s.count > 1) {
        args["repeat"] = s.count;
        args["every"] = s.delay;
      }
      ev.push_back({{"name", std::string(ii.mnemonic)}, {"cat", std::string(isa::kUnitNames[std::size_t(ii.unit)])},
                    {"ph", "X"}, {"pid", pid}, {"tid", s.queue}, {"ts", double(s.cycle) * us},
                    {"dur", double(end - s.cycle) * us}, {"args", args}});
      const bool rd = in.op == isa::Op::Read || in.op == isa::Op::Gather;
      const bool mm = in.op == isa::Op::Mm || in.op == isa::Op::Mma;
      if (rd || mm) {
        for (std::int64_t k = 0; k < s.count;) {  // instances per bucket, in bulk
          const std::int64_t c0 = s.cycle + k * std::max<std::int64_t>(s.delay, 1);
          const std::int64_t b = std::min(c0 / width, buckets);
          const std::int64_t bucket_end = (b + 1) * width;
          std::int64_t n = s.delay > 0 ? std::min(s.count - k, (bucket_end - c0 + s.delay - 1) / s.delay) : s.count - k;
          n = std::max<std::int64_t>(n, 1);
          if (rd) sram[std::size_t(b)] += double(n) * c.params().vector_bytes();
          if (mm) mxm[std::size_t(b)] += double(n);
          k += n;
        }
      }
    }
    const double planes = std::max(1, c.params().mxm.planes);
    for (std::int64_t b = 0; b < buckets; ++b) {
      const double secs = double(width) / c.params().clock_hz;
      ev.push_back({{"name", "SRAM read TB/s"}, {"ph", "C"}, {"pid", pid}, {"ts", double(b * width) * us},
                    {"args", {{"TB/s", sram[std::size_t(b)] / secs / 1e12}}}});
      ev.push_back({{"name", "MXM utilisation %"}, {"ph", "C"}, {"pid", pid}, {"ts", double(b * width) * us},
                    {"args", {{"%", 100.0 * mxm[std::size_t(b)] / (double(width) * planes)}}}});
    }
  }
  const double us = 1e6 / clock;
  int id = 0;
  for (const auto& f : flows_) {
    ev.push_back({{"name", fmt::format("link {}", f.link)}, {"cat", "c2c"}, {"ph", "s"}, {"id", id}, {"pid", f.from_chip},
                  {"tid", 0}, {"ts", double(f.send) * us}});
    ev.push_back({{"name", fmt::format("link {}", f.link)}, {"cat", "c2c"}, {"ph", "f"}, {"bp", "e"}, {"id", id},
                  {"pid", f.to_chip}, {"tid", 0}, {"ts", double(f.recv) * us}});
    ++id;
  }
  json doc = {{"traceEvents", ev}, {"displayTimeUnit", "ns"}};
  out << doc.dump() << "\n";
}

}  // namespace lpu::model
