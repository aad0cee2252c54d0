#include "lpu/model/trace.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <queue>
#include <tuple>

#include "lpu/asm/assembler.hpp"
#include "lpu/common/errors.hpp"
#include "lpu/common/parse.hpp"
#include "lpu/isa/isa.hpp"

namespace lpu::model {

std::set<int> TraceSelection::parse_ranges(const std::string& text, const char* what) {
  std::set<int> out;
  std::size_t i = 0;
  while (i < text.size()) {
    auto comma = text.find(',', i);
    std::string part = text.substr(i, comma == std::string::npos ? std::string::npos : comma - i);
    auto dash = part.find('-');
    // Numbers 0..2^31-1 (common/parse.hpp: the whole text, no sign, no wrap); a range spans at
    // most a million.
    auto number = [&](std::string_view t) {
      const auto sc = scan_int(t, false);
      if (sc.status != IntScan::Status::Ok || sc.used != t.size() || sc.value > std::numeric_limits<int>::max())
        throw Error(fmt::format("{}: '{}' in '{}' is not a number 0..{} (expected a list of numbers and ranges like 0,3-5)",
                                what, t, text, std::numeric_limits<int>::max()));
      return int(sc.value);
    };
    const int a = number(std::string_view(part).substr(0, dash));
    const int b = dash == std::string::npos ? a : number(std::string_view(part).substr(dash + 1));
    if (b < a || b - a > 1'000'000)
      throw Error(fmt::format("{}: range '{}' in '{}' runs backwards or spans more than 1000000", what, part, text));
    for (int k = a; k <= b; ++k) out.insert(k);
    if (comma == std::string::npos) break;
    i = comma + 1;
  }
  return out;
}

std::set<std::string> TraceSelection::parse_units(const std::string& text, const char* what) {
  std::set<std::string> out;
  std::size_t i = 0;
  while (i <= text.size()) {
    auto c = text.find(',', i);
    std::string name = text.substr(i, c == std::string::npos ? std::string::npos : c - i);
    if (name != "mem" && name != "vxm" && name != "mxm" && name != "sxm" && name != "c2c")
      throw Error(fmt::format("{}: '{}' is not one of mem, vxm, mxm, sxm, c2c", what, name));
    out.insert(name);
    if (c == std::string::npos) break;
    i = c + 1;
  }
  return out;
}

namespace {

std::string vcd_id(std::size_t n) {
  std::string s;
  do {
    s += char('!' + n % 94);
    n /= 94;
  } while (n);
  return s;
}

constexpr std::int64_t kPsPerCycle = 1000;  // VCD time units (1 ps) per cycle, as the RTL's

int bits_for(std::int64_t values) {  // bits to hold 0 .. values-1 (at least 1)
  int b = 1;
  while ((std::int64_t(1) << b) < values) ++b;
  return b;
}

// Instance k of a REPEATed instruction as the queue issues it (operands stepped), as the
// chip engine and the RTL's step_word (generated from the same isa.toml `step`) do it.
std::uint64_t stepped_word(const isa::Instr& base, std::uint64_t word, std::int64_t k) {
  return k == 0 ? word : isa::encode(isa::stepped(base, k));
}

bool is_op(std::uint64_t word, isa::Op op) { return std::uint8_t(word >> 56) == isa::info(op).opcode; }

std::string scope_part(const std::string& s) {
  std::string o = s;
  std::replace(o.begin(), o.end(), '.', '_');
  return o;
}

}  // namespace

// ---- VCD ---------------------------------------------------------------------------------------

VcdTracer::VcdTracer(const Chip& chip, const TraceSelection& sel, std::string scope)
    : chip_(chip), sel_(sel), scope_(scope.empty() ? "TOP.lpu_" + chip.params().name : std::move(scope)) {
  const auto& L = chip.layout();
  const auto& P = chip.params();
  mem_write_lat_ = P.lat(isa::LatClass::MemWrite);
  c2c_links_ = P.c2c.links;
  queue_.resize(L.queues().size());
  slice_.resize(L.slices().size());
  // Queues: qv[h].q[k].g, 16 per group, in layout order (the RTL's generate blocks).
  std::size_t longest = 0;
  for (std::size_t qi = 0; qi < L.queues().size(); ++qi) longest = std::max(longest, chip.queue_words(int(qi)).size());
  const int pcw = longest < 65536 ? 16 : 32;
  for (std::size_t qi = 0; qi < L.queues().size(); ++qi) {
    const auto& s = L.slice(L.queues()[qi].slice);
    if (!sel_.unit(slice_kind_name(s.kind))) continue;
    auto& q = queue_[qi];
    const std::string sc = fmt::format("qv[{}].q[{}].g", qi / 16, qi % 16);
    q.pc = sig(sc, "pc", pcw);
    q.issue_pc = sig(sc, "issue_pc", pcw);
    q.issue = sig(sc, "issue", 1, 1);
    q.word = sig(sc, "word", 64);
    q.opcode = sig(sc, "opcode", 8, 2);
    q.code = chip.queue_words(int(qi));
    // Cycle 0: pc 0, the word at pc shown until something issues (as the RTL shows it).
    set(0, q.pc, 0);
    set(0, q.issue_pc, 0);
    set(0, q.word, q.code.empty() ? 0 : q.code[0]);
  }
  // Stream registers at the selected positions: sv[p].dir[d].st[s].
  const int vb = P.vector_bytes() * 8;
  for (int pos : sel_.positions) {
    if (pos < 0 || pos >= L.num_positions())
      throw Error(fmt::format("--positions: {} is not a position of {} (0..{})", pos, P.name, L.num_positions() - 1));
    for (int d = 0; d < 2; ++d)
      for (int id = 0; id < P.stream.per_direction; ++id) {
        if (!sel_.streams.empty() && !sel_.streams.count(id)) continue;
        const std::string sc = fmt::format("sv[{}].dir[{}].st[{}]", pos, d, id);
        int valid = sig(sc, "valid", 1, 1);
        int value = sig(sc, "value", vb, 1);  // 0 until a value comes, as the RTL's registers
        (void)valid;  // = value - 1
        stream_sig_[{id | (d ? 64 : 0), pos}] = value;
      }
  }
  // MEM ports: packed strobes (the RTL's) and per slice rows; MXM passes per plane.
  // RTL slice index: west slices 0..N-1 from the VXM outward, then the east ones.
  int nmem = 0;
  for (const auto& s : L.slices()) {
    if (s.kind != SliceKind::Mem) continue;
    slice_[std::size_t(s.position)].mem_index = (s.hemi == Hemi::West ? 0 : P.mem.slices_per_hemisphere) + s.index;
    ++nmem;
  }
  if (sel_.unit("mem") && nmem > 0) {
    rd_v_.sig = sig("u_mem", "rd_v", nmem, 1);
    wr_v_.sig = sig("u_mem", "wr_v", nmem, 1);
    sram_we_.sig = sig("", "obs_sram_we", nmem, 1);
    const int rb = bits_for(P.mem.rows);
    // The written rows and data as the RTL packs them ([slice][superlane] masks and rows,
    // [slice] data), where that stays a reasonable width (mini: 2,048 bits of data).
    if (std::int64_t(nmem) * P.vector_bytes() * 8 <= 16384) {
      sram_mask_ = sig("", "obs_sram_mask", nmem * P.superlanes, 1);
      sram_row_ = sig("", "obs_sram_row", nmem * P.superlanes * rb, 1);
      sram_d_ = sig("", "obs_sram_d", nmem * P.vector_bytes() * 8, 1);
    }
    for (const auto& s : L.slices()) {
      if (s.kind != SliceKind::Mem) continue;
      auto& ss = slice_[std::size_t(s.position)];
      const std::string sc = scope_part(s.name);
      ss.rd_v = sig(sc, "rd_v", 1, 1);
      ss.rd_row = sig(sc, "rd_row", rb);
      ss.wr_v = sig(sc, "wr_v", 1, 1);
      ss.wr_row = sig(sc, "wr_row", rb);
    }
  }
  if (sel_.unit("mxm")) {
    const int ab = bits_for(P.mxm.accumulators);
    for (const auto& s : L.slices()) {
      if (s.kind != SliceKind::Mxm) continue;
      auto& ss = slice_[std::size_t(s.position)];
      const std::string sc = s.name == "mxm.e.0" ? "u_mxm" : scope_part(s.name);
      ss.mm_go = sig(sc, "mm_go", 1, 1);
      ss.mm_idx = sig(sc, "mm_idx", ab, 1);
      const bool rtl = s.name == "mxm.e.0";  // the RTL's plane: its accumulator port at the top
      ss.acc_we = sig(rtl ? "" : sc, rtl ? "obs_acc_we" : "acc_we", 1, 1);
      ss.acc_idx = sig(rtl ? "" : sc, rtl ? "obs_acc_idx" : "acc_idx", 8, 1);
      ss.acc_d = sig(rtl ? "" : sc, rtl ? "obs_acc_d" : "acc_d", P.vector_bytes() * 32, 1);
    }
  }
  if (sel_.links() && c2c_links_ > 0) tx_v_.sig = sig("", "tx_v", c2c_links_, 1);
}

VcdTracer::~VcdTracer() = default;

int VcdTracer::sig(const std::string& scope, const std::string& name, int width, std::uint8_t init) {
  sigs_.push_back({scope, name, width, init});
  return int(sigs_.size() - 1);
}

void VcdTracer::push(std::int64_t cycle, std::uint64_t seq, int s, std::uint64_t val, std::uint8_t kind) {
  if (s < 0 || cycle > sel_.to) return;
  // Before the window: kept too, the last one of each signal gives its value at `from`.
  changes_.push_back({std::max(cycle, sel_.from - 1), seq, val, std::uint32_t(s), kind});
}

void VcdTracer::set(std::int64_t cycle, int s, std::uint64_t v) { push(cycle, seq_++, s, v, 0); }

void VcdTracer::set_x(std::int64_t cycle, int s) { push(cycle, seq_++, s, 0, 2); }

void VcdTracer::set_bytes(std::int64_t cycle, int s, const std::uint8_t* bytes, int nbytes) {
  if (s < 0 || cycle > sel_.to) return;
  if (!bytes) return set_x(cycle, s);
  const std::uint64_t off = pool_.size();
  pool_.insert(pool_.end(), bytes, bytes + nbytes);
  push(cycle, seq_++, s, off, 1);
}

void VcdTracer::queue_pc(QueueSigs& q, std::int64_t cycle, std::int64_t pc, bool follow_issue_pc) {
  set(cycle, q.pc, std::uint64_t(pc));
  if (follow_issue_pc) set(cycle, q.issue_pc, std::uint64_t(pc));
  set(cycle, q.word, std::size_t(pc) < q.code.size() ? q.code[std::size_t(pc)] : 0);  // past the end: 0, as the RTL
}

void VcdTracer::on_group(int queue, std::int64_t cycle, std::uint64_t word, std::int64_t count, std::int64_t delay,
                         std::int64_t pc) {
  auto& q = queue_[std::size_t(queue)];
  if (q.pc < 0 || cycle > sel_.to) return;
  // The NOPs skipped since the last issue: the RTL looks at each for a cycle and moves pc on,
  // so they ended here: NOP j (n_j cycles) started at cycle - (n_j + ... + n_last).
  if (!q.halted && pc > q.next_pc && std::size_t(pc) <= q.code.size()) {
    std::int64_t total = 0;
    bool nops = true;
    for (std::int64_t j = q.next_pc; j < pc && nops; ++j) {
      const auto w = q.code[std::size_t(j)];
      nops = is_op(w, isa::Op::Nop);
      if (nops) total += isa::decode(w).v[0];
    }
    if (nops) {
      std::int64_t s = cycle - total;
      for (std::int64_t j = q.next_pc; j < pc; ++j) {
        queue_pc(q, s + 1, j + 1, true);
        s += isa::decode(q.code[std::size_t(j)]).v[0];
      }
    } else {
      queue_pc(q, cycle, pc, true);
    }
  }
  const auto in = isa::decode(word);
  const bool rep = std::size_t(pc + 1) < q.code.size() &&
                   (is_op(q.code[std::size_t(pc + 1)], isa::Op::Repeat) || is_op(q.code[std::size_t(pc + 1)], isa::Op::Repeatr));
  const bool halt = in.op == isa::Op::Halt;
  const std::int64_t next = halt ? pc : pc + 1 + (rep ? 1 : 0);
  const std::int64_t d = std::max<std::int64_t>(delay, 1);
  const std::int64_t last = cycle + (count - 1) * d;
  // Instances in the window (and the one before it, whose changes give the value at `from`).
  std::int64_t k0 = 0;
  if (sel_.from > cycle) k0 = std::max<std::int64_t>(0, (sel_.from - cycle) / d - 1);
  std::int64_t k1 = count - 1;
  if (sel_.to < last) k1 = std::max<std::int64_t>(0, (sel_.to - cycle) / d);
  const std::uint64_t op = std::uint8_t(word >> 56);
  for (std::int64_t k = k0; k <= k1; ++k) {
    const std::int64_t c = cycle + k * d;
    set(c, q.issue, 1);
    set(c, q.opcode, op);
    set(c, q.issue_pc, std::uint64_t(pc));
    try {
      set(c, q.word, stepped_word(in, word, k));
    } catch (const std::exception&) {
      set_x(c, q.word);
    }
    if (k == 0) set(c + 1, q.pc, std::uint64_t(next));
    if (d == 1 && k < count - 1) continue;  // the next instance sets all of it in c + 1
    // The cycle after: nothing issues unless the next instance does (it comes later, wins).
    set(c + 1, q.issue, 0);
    set(c + 1, q.opcode, 0xFF);
    set(c + 1, q.issue_pc, std::uint64_t(k + 1 < count ? pc : next));
    set(c + 1, q.word, std::size_t(next) < q.code.size() ? q.code[std::size_t(next)] : 0);
  }
  q.next_pc = next;
  q.halted = halt;
  const int occ = isa::info(in.op).occupancy;
  switch (in.op) {
    case isa::Op::Sync: q.last_end = -1; break;  // released by a NOTIFY: unknown here
    case isa::Op::Deskew: {
      const std::int64_t period = chip_.params().c2c.deskew_period;
      q.last_end = (cycle / period + 1) * period;
      break;
    }
    case isa::Op::Notify:
    case isa::Op::Config: q.last_end = cycle + 1; break;
    default: q.last_end = last + std::max(occ, 1); break;
  }
}

void VcdTracer::on_sram(int slice, int row, bool write, std::int64_t cycle) {
  const auto& ss = slice_[std::size_t(slice)];
  const int en = write ? ss.wr_v : ss.rd_v;
  if (en < 0 || cycle > sel_.to) return;
  set(cycle, en, 1);
  set(cycle, write ? ss.wr_row : ss.rd_row, std::uint64_t(row));
  set(cycle + 1, en, 0);  // a later access in that cycle overrides (sequence order)
  (write ? wr_v_ : rd_v_).ev.emplace_back(cycle, ss.mem_index);
  if (write) sram_we_.ev.emplace_back(cycle + mem_write_lat_ - 1, ss.mem_index);
}

void VcdTracer::on_mxm(int plane, int acc, std::int64_t cycle) {
  const auto& ss = slice_[std::size_t(plane)];
  if (ss.mm_go < 0 || cycle > sel_.to) return;
  set(cycle, ss.mm_go, 1);
  set(cycle, ss.mm_idx, std::uint64_t(acc));
  set(cycle + 1, ss.mm_go, 0);
  set(cycle + 1, ss.mm_idx, 0);  // the RTL's mm_idx is 0 when no MM issues
}

void VcdTracer::on_sram_write(int slice, int row, int offset, const std::uint8_t* data, int bytes, std::int64_t,
                              std::int64_t commit) {
  if (sram_d_ < 0 || commit > sel_.to || slice_[std::size_t(slice)].mem_index < 0) return;
  const std::size_t off = pool_.size();
  pool_.insert(pool_.end(), data, data + bytes);
  sram_writes_.push_back({commit, slice_[std::size_t(slice)].mem_index, row, offset, bytes, off});
}

void VcdTracer::on_acc_write(int plane, int acc, std::int64_t, std::int64_t commit, bool, const std::uint32_t* value,
                             int n) {
  const auto& ss = slice_[std::size_t(plane)];
  if (ss.acc_we < 0 || commit > sel_.to) return;
  // The RTL's accumulate pipeline holds index and value after the strobe.
  set(commit, ss.acc_we, 1);
  set(commit + 1, ss.acc_we, 0);
  set(commit, ss.acc_idx, std::uint64_t(acc));
  const int vb = chip_.params().vector_bytes();
  std::vector<std::uint8_t> b(std::size_t(vb) * 4, 0);
  std::memcpy(b.data(), value, std::size_t(std::min(n, vb)) * 4);  // element j at bits [32j+31:32j]
  set_bytes(commit, ss.acc_d, b.data(), int(b.size()));
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
    if (at < sel_.from || at > sel_.to) continue;
    auto v = stream_sig_.find({sid, p});
    if (v == stream_sig_.end()) continue;
    // A nearer upstream write on the same diagonal replaces this one on its way: ordering by
    // (cycle, distance) keeps the nearest; a value arriving beats the "gone" of the one before.
    const std::uint64_t off = pool_.size();
    pool_.insert(pool_.end(), value, value + vbytes);
    changes_.push_back({at, std::uint64_t(1) << 62 | std::uint64_t(1'000'000 - std::abs(p - position)), off,
                        std::uint32_t(v->second), 1});
    changes_.push_back({at, std::uint64_t(1) << 62 | 2'000'000, 1, std::uint32_t(v->second - 1), 0});
    if (at + hop <= sel_.to) changes_.push_back({at + hop, 0, 0, std::uint32_t(v->second - 1), 0});
  }
}

VcdTracer::LinkSigs& VcdTracer::link(int l) {
  auto [it, fresh] = links_.try_emplace(l);
  if (fresh) {
    const std::string sc = fmt::format("link{}", l);
    const int vb = chip_.params().vector_bytes() * 8;
    auto& s = it->second;
    s.tx = sig(sc, "tx", 1, 1);
    s.tx_d = sig(sc, "tx_d", vb);
    s.tx_n = sig(sc, "tx_n", 32, 1);
    s.rx = sig(sc, "rx", 1, 1);
    s.rx_d = sig(sc, "rx_d", vb);
    s.rx_n = sig(sc, "rx_n", 32, 1);
  }
  return it->second;
}

void VcdTracer::on_link_send(int, int l, std::int64_t, std::int64_t depart, const std::uint8_t* bytes) {
  if (!sel_.links() || depart > sel_.to) return;
  auto& s = link(l);
  set(depart, s.tx, 1);
  set_bytes(depart, s.tx_d, bytes, chip_.params().vector_bytes());
  set(depart, s.tx_n, std::uint64_t(++s.sent));
  set(depart + 1, s.tx, 0);
  if (l >= 0 && l < c2c_links_) tx_v_.ev.emplace_back(depart, l);
}

void VcdTracer::on_link_recv(int, int l, std::int64_t cycle, const std::uint8_t* bytes) {
  if (!sel_.links() || cycle > sel_.to) return;
  auto& s = link(l);
  set(cycle, s.rx, 1);
  set_bytes(cycle, s.rx_d, bytes, chip_.params().vector_bytes());
  set(cycle, s.rx_n, std::uint64_t(++s.received));
  set(cycle + 1, s.rx, 0);
}

void VcdTracer::on_finish(std::int64_t cycles) {
  end_ = cycles;
  // NOPs after a queue's last instruction: the RTL steps pc through them too.
  for (auto& q : queue_) {
    if (q.pc < 0 || q.halted || q.last_end < 0 || std::size_t(q.next_pc) >= q.code.size()) continue;
    std::int64_t s = q.last_end;
    for (std::size_t j = std::size_t(q.next_pc); j < q.code.size(); ++j) {
      if (!is_op(q.code[j], isa::Op::Nop)) break;
      queue_pc(q, s + 1, std::int64_t(j) + 1, true);
      s += isa::decode(q.code[j]).v[0];
    }
  }
}

// The RTL's write port view (lpu_mem): in the commit cycle, per slice, the superlanes written,
// their rows and the data. With mem_write = 1 the values are the decode's (0 when nothing is
// written); with a longer latency the delay line holds the last write's.
void VcdTracer::pack_sram_writes() const {
  const auto& P = chip_.params();
  const int SL = P.superlanes, rb = bits_for(P.mem.rows), V = P.vector_bytes();
  const int nmem = sigs_[std::size_t(sram_mask_)].width / SL;
  const bool hold = mem_write_lat_ > 1;
  auto w = sram_writes_;
  std::stable_sort(w.begin(), w.end(), [](const SramWrite& a, const SramWrite& b) { return a.commit < b.commit; });
  std::vector<std::uint8_t> mask(std::size_t((nmem * SL + 7) / 8)), rows(std::size_t((nmem * SL * rb + 7) / 8)),
      data(std::size_t(nmem * V));
  auto setbits = [](std::vector<std::uint8_t>& v, int at, int n, std::uint64_t x) {
    for (int i = 0; i < n; ++i) {
      const int b = at + i;
      if ((x >> i) & 1u) v[std::size_t(b / 8)] |= std::uint8_t(1u << (b % 8));
      else v[std::size_t(b / 8)] &= std::uint8_t(~(1u << (b % 8)));
    }
  };
  auto emit = [&](std::int64_t c) {
    for (auto [s, v] : {std::pair{sram_mask_, &mask}, std::pair{sram_row_, &rows}, std::pair{sram_d_, &data}}) {
      const std::size_t off = pool_.size();
      pool_.insert(pool_.end(), v->begin(), v->end());
      changes_.push_back({std::max(c, sel_.from - 1), seq_++, off, std::uint32_t(s), 1});  // before: initial values
    }
  };
  for (std::size_t i = 0; i < w.size();) {
    const std::int64_t c = w[i].commit;
    std::vector<char> written(std::size_t(nmem), 0);
    for (; i < w.size() && w[i].commit == c; ++i) {
      const auto& x = w[i];
      if (!written[std::size_t(x.mem)]) {  // a new write of this slice: its superlanes from scratch
        written[std::size_t(x.mem)] = 1;
        setbits(mask, x.mem * SL, SL, 0);
        setbits(rows, x.mem * SL * rb, SL * rb, 0);
        std::fill(data.begin() + x.mem * V, data.begin() + (x.mem + 1) * V, 0);
      }
      for (int s = x.offset / kLanesPerSuperlane; s * kLanesPerSuperlane < x.offset + x.bytes && s < SL; ++s) {
        setbits(mask, x.mem * SL + s, 1, 1);
        setbits(rows, (x.mem * SL + s) * rb, rb, std::uint64_t(x.row));
      }
      std::memcpy(data.data() + x.mem * V + x.offset, pool_.data() + x.data, std::size_t(x.bytes));
    }
    if (!hold)
      for (int m = 0; m < nmem; ++m)
        if (!written[std::size_t(m)]) {
          setbits(mask, m * SL, SL, 0);
          setbits(rows, m * SL * rb, SL * rb, 0);
          std::fill(data.begin() + m * V, data.begin() + (m + 1) * V, 0);
        }
    emit(c);
    if (!hold && !(i < w.size() && w[i].commit == c + 1)) {
      std::fill(mask.begin(), mask.end(), 0);
      std::fill(rows.begin(), rows.end(), 0);
      std::fill(data.begin(), data.end(), 0);
      if (c + 1 <= sel_.to) emit(c + 1);
    }
  }
}

void VcdTracer::finalise() const {
  if (final_) return;
  final_ = true;
  auto& ch = changes_;
  // Packed strobes: the bits set in a cycle, cleared the cycle after.
  for (const Strobes* st : {&rd_v_, &wr_v_, &sram_we_, &tx_v_}) {
    if (st->sig < 0 || st->ev.empty()) continue;
    const int w = sigs_[std::size_t(st->sig)].width;
    auto ev = st->ev;
    std::sort(ev.begin(), ev.end());
    for (std::size_t i = 0; i < ev.size();) {
      const std::int64_t c = ev[i].first;
      const std::size_t off = pool_.size();
      pool_.resize(off + std::size_t((w + 7) / 8), 0);
      for (; i < ev.size() && ev[i].first == c; ++i)
        if (ev[i].second >= 0 && ev[i].second < w) pool_[off + std::size_t(ev[i].second / 8)] |= std::uint8_t(1u << (ev[i].second % 8));
      if (c < sel_.from || c > sel_.to) {
        pool_.resize(off);
        continue;
      }
      ch.push_back({c, 0, off, std::uint32_t(st->sig), 1});
      const bool next_set = i < ev.size() && ev[i].first == c + 1;
      if (!next_set && c + 1 <= sel_.to) ch.push_back({c + 1, 0, 0, std::uint32_t(st->sig), 0});
    }
  }
  // (cycle, seq) orders the changes of one signal (seq is unique but for the strobes and the
  // stream registers, whose keys differ per signal and cycle); sig makes the order total.
  if (sram_d_ >= 0 && !sram_writes_.empty()) pack_sram_writes();
  std::sort(ch.begin(), ch.end(), [](const Change& a, const Change& b) {
    return std::tie(a.cycle, a.seq, a.sig) < std::tie(b.cycle, b.seq, b.sig);
  });
  // One change per signal and time step (the last), and none that repeats the current value:
  // mark the last of each (signal, cycle) from the end, then compact from the front.
  {
    std::vector<std::int64_t> seen(sigs_.size(), INT64_MIN);
    for (std::size_t i = ch.size(); i-- > 0;) {
      auto& s = seen[ch[i].sig];
      if (s == ch[i].cycle) {
        ch[i].kind |= 0x80;  // superseded
        continue;
      }
      s = ch[i].cycle;
    }
  }
  struct Cur {
    bool set = false;
    std::uint8_t kind = 0;
    std::uint64_t val = 0;
  };
  std::vector<Cur> cur(sigs_.size());
  std::size_t n = 0;
  for (std::size_t i = 0; i < ch.size(); ++i) {
    const Change c = ch[i];
    if (c.kind & 0x80) continue;
    auto& k = cur[c.sig];
    if (k.set && k.kind == c.kind) {
      if (c.kind == 2) continue;
      if (c.kind == 0 && k.val == c.val) continue;
      if (c.kind == 1 && std::memcmp(pool_.data() + c.val, pool_.data() + k.val, std::size_t((sigs_[c.sig].width + 7) / 8)) == 0)
        continue;
    }
    k = {true, c.kind, c.val};
    ch[n++] = c;
  }
  ch.resize(n);
  ch.shrink_to_fit();
}

void VcdTracer::write(std::ostream& out) const {
  write_all(out, {this},
            fmt::format("lpu emulator waveform: chip {}, preset {}", chip_.id(), chip_.params().name));
}

void VcdTracer::write_all(std::ostream& out, const std::vector<const VcdTracer*>& chips, const std::string& comment) {
  // Scope tree in declaration order (chips in the given order).
  struct Node {
    std::string name;
    std::vector<std::size_t> kids;
    std::vector<std::pair<std::size_t, std::size_t>> vars;  // (chip, signal)
  };
  std::vector<Node> nodes(1);
  auto child = [&](std::size_t n, const std::string& name) {
    for (auto k : nodes[n].kids)
      if (nodes[k].name == name) return k;
    nodes.push_back({name, {}, {}});
    nodes[n].kids.push_back(nodes.size() - 1);
    return nodes.size() - 1;
  };
  auto path = [&](const std::string& p) {
    std::size_t n = 0, i = 0;
    while (i < p.size()) {
      auto dot = p.find('.', i);
      // Dots inside brackets do not occur in our names: split on every dot.
      n = child(n, p.substr(i, dot == std::string::npos ? std::string::npos : dot - i));
      if (dot == std::string::npos) break;
      i = dot + 1;
    }
    return n;
  };
  std::vector<std::size_t> first_id(chips.size());
  std::size_t nid = 0;
  for (std::size_t c = 0; c < chips.size(); ++c) {
    first_id[c] = nid;
    nid += chips[c]->sigs_.size();
    for (std::size_t s = 0; s < chips[c]->sigs_.size(); ++s) {
      const auto& sg = chips[c]->sigs_[s];
      nodes[path(sg.scope.empty() ? chips[c]->scope_ : chips[c]->scope_ + "." + sg.scope)].vars.emplace_back(c, s);
    }
  }
  std::vector<std::string> ids(nid);
  for (std::size_t i = 0; i < nid; ++i) ids[i] = vcd_id(i);
  auto idof = [&](std::size_t c, std::size_t s) -> const std::string& { return ids[first_id[c] + s]; };
  // As the RTL's waveform: one clock cycle is 1 ns (1000 units of 1 ps), so that one GTKWave
  // layout (zoom included) serves both.
  out << "$comment " << comment << "; cycle c is time c ns";
  if (chips.size() > 1) out << " (c in the rack's common time base)";
  out << " $end\n$timescale 1ps $end\n";
  std::function<void(std::size_t)> emit = [&](std::size_t n) {
    if (n) out << "$scope module " << nodes[n].name << " $end\n";
    for (auto [c, s] : nodes[n].vars) {
      const auto& sg = chips[c]->sigs_[s];
      out << "$var wire " << sg.width << " " << idof(c, s) << " " << sg.name
          << (sg.width > 1 ? fmt::format(" [{}:0]", sg.width - 1) : "") << " $end\n";
    }
    for (auto k : nodes[n].kids) emit(k);
    if (n) out << "$upscope $end\n";
  };
  emit(0);
  out << "$enddefinitions $end\n";

  std::vector<const std::vector<Change>*> ch(chips.size());
  std::int64_t t0 = INT64_MAX, tend = 0;
  for (std::size_t c = 0; c < chips.size(); ++c) {
    chips[c]->finalise();
    ch[c] = &chips[c]->changes_;
    const auto* T = chips[c];
    t0 = std::min(t0, std::max<std::int64_t>(T->sel_.from, 0) * T->ticks_ * kPsPerCycle);
    tend = std::max(tend, std::min(T->sel_.to, T->end_) * T->ticks_ * kPsPerCycle);
  }
  if (chips.empty()) t0 = 0;
  // One change as a VCD line, into a reused buffer.
  std::string line;
  auto put = [&](std::size_t c, const Change& x) {
    const auto& sg = chips[c]->sigs_[x.sig];
    const int w = sg.width;
    line.clear();
    if (w > 1) line += 'b';
    if (x.kind == 2) {
      line += 'x';
    } else {
      const std::size_t at = line.size();
      line.append(std::size_t(w), '0');
      char* d = line.data() + at + (w - 1);  // bit i at d[-i]
      if (x.kind == 0) {
        for (int i = 0; i < w && i < 64; ++i)
          if ((x.val >> i) & 1u) d[-i] = '1';
      } else {
        const std::uint8_t* b = chips[c]->pool_.data() + x.val;
        for (int i = 0; i < w; ++i)
          if ((b[i >> 3] >> (i & 7)) & 1u) d[-i] = '1';
      }
    }
    if (w > 1) line += ' ';
    line += idof(c, x.sig);
    line += '\n';
    out.write(line.data(), std::streamsize(line.size()));
  };
  // Initial values: the last change before each chip's window, else the signal's default.
  out << "#" << t0 << "\n$dumpvars\n";
  std::vector<std::size_t> pos(chips.size(), 0);
  for (std::size_t c = 0; c < chips.size(); ++c) {
    const auto* T = chips[c];
    const auto& cc = *ch[c];
    std::vector<const Change*> init(T->sigs_.size(), nullptr);
    auto& i = pos[c];
    for (; i < cc.size() && cc[i].cycle < T->sel_.from; ++i) init[cc[i].sig] = &cc[i];
    for (std::size_t s = 0; s < T->sigs_.size(); ++s) {
      if (init[s]) {
        put(c, *init[s]);
        continue;
      }
      const auto& sg = T->sigs_[s];
      const std::uint64_t ones = sg.width >= 64 ? ~std::uint64_t(0) : (std::uint64_t(1) << sg.width) - 1;
      put(c, Change{0, 0, sg.init == 2 ? ones : 0, std::uint32_t(s), std::uint8_t(sg.init == 0 ? 2 : 0)});
    }
  }
  out << "$end\n";
  // Changes of all chips merged by time, then chip order.
  using Item = std::tuple<std::int64_t, std::size_t>;  // (time, chip)
  std::priority_queue<Item, std::vector<Item>, std::greater<Item>> heap;
  for (std::size_t c = 0; c < chips.size(); ++c)
    if (pos[c] < ch[c]->size()) heap.emplace((*ch[c])[pos[c]].cycle * chips[c]->ticks_ * kPsPerCycle, c);
  std::int64_t t = t0;
  while (!heap.empty()) {
    auto [time, c] = heap.top();
    heap.pop();
    if (time != t) {
      t = time;
      out << "#" << t << "\n";
    }
    const auto& cc = *ch[c];
    const std::int64_t cyc = cc[pos[c]].cycle;
    for (; pos[c] < cc.size() && cc[pos[c]].cycle == cyc; ++pos[c]) put(c, cc[pos[c]]);
    if (pos[c] < cc.size()) heap.emplace(cc[pos[c]].cycle * chips[c]->ticks_ * kPsPerCycle, c);
  }
  if (tend > t) out << "#" << tend << "\n";
}

// ---- Timeline ----------------------------------------------------------------------------------

struct Timeline::Track : Chip::Observer {
  const Chip* chip = nullptr;
  TraceSelection sel;
  std::vector<char> queue_on;  // per queue: drawn
  struct Span {
    int queue;
    std::int64_t cycle, count, delay;
    std::uint64_t word;
  };
  std::vector<Span> spans;
  struct Link {
    int queue, link;
    std::int64_t cycle, depart;
  };
  std::vector<Link> sends, recvs;
  std::int64_t cycles = 0;
  void on_group(int queue, std::int64_t cycle, std::uint64_t word, std::int64_t count, std::int64_t delay,
                std::int64_t) override {
    if (!queue_on[std::size_t(queue)]) return;
    const std::int64_t end = cycle + (count - 1) * delay;
    if (end < sel.from || cycle > sel.to) return;
    spans.push_back({queue, cycle, count, delay, word});
  }
  void on_link_send(int queue, int link, std::int64_t cycle, std::int64_t depart, const std::uint8_t*) override {
    sends.push_back({queue, link, cycle, depart});
  }
  void on_link_recv(int queue, int link, std::int64_t cycle, const std::uint8_t*) override {
    recvs.push_back({queue, link, cycle, cycle});
  }
  void on_finish(std::int64_t c) override { cycles = c; }
};

Timeline::Timeline() = default;
Timeline::~Timeline() = default;

Chip::Observer* Timeline::attach(const Chip& chip, const TraceSelection* sel) {
  tracks_.push_back(std::make_unique<Track>());
  auto& t = *tracks_.back();
  t.chip = &chip;
  if (sel) t.sel = *sel;
  const auto& L = chip.layout();
  t.queue_on.resize(L.queues().size());
  for (std::size_t q = 0; q < L.queues().size(); ++q)
    t.queue_on[q] = t.sel.unit(slice_kind_name(L.slice(L.queues()[q].slice).kind));
  return &t;
}

void Timeline::set_peers(std::function<std::pair<int, int>(int, int)> peers) { peers_ = std::move(peers); }

std::size_t Timeline::events() const {
  std::size_t n = 0;
  for (const auto& t : tracks_) n += t->spans.size() + t->sends.size();
  return n;
}

void Timeline::write(std::ostream& out) const {
  using nlohmann::json;
  json ev = json::array();
  std::map<int, const Track*> by_chip;
  for (const auto& tr : tracks_) by_chip[tr->chip->id()] = tr.get();
  for (const auto& [pid, tr] : by_chip) {
    const Chip& c = *tr->chip;
    const double us = 1e6 / c.params().clock_hz;  // microseconds per cycle
    ev.push_back({{"name", "process_name"}, {"ph", "M"}, {"pid", pid}, {"args", {{"name", fmt::format("chip {} ({})", pid, c.params().name)}}}});
    ev.push_back({{"name", "process_sort_index"}, {"ph", "M"}, {"pid", pid}, {"args", {{"sort_index", pid}}}});
    std::set<int> used;
    for (const auto& s : tr->spans) used.insert(s.queue);
    for (int q : used) {
      ev.push_back({{"name", "thread_name"}, {"ph", "M"}, {"pid", pid}, {"tid", q},
                    {"args", {{"name", c.layout().queue(QueueId{q}).name}}}});
      ev.push_back({{"name", "thread_sort_index"}, {"ph", "M"}, {"pid", pid}, {"tid", q}, {"args", {{"sort_index", q}}}});
    }
    // Counters: SRAM bytes read and MXM passes per bucket of cycles.
    std::int64_t cycles = tr->cycles;  // 0 when the run stopped with an error: up to the last span
    if (cycles == 0)
      for (const auto& s : tr->spans) cycles = std::max(cycles, s.cycle + (s.count - 1) * s.delay + 1);
    const std::int64_t buckets = std::clamp<std::int64_t>(cycles, 1, 200);
    const std::int64_t width = std::max<std::int64_t>(1, (cycles + buckets - 1) / buckets);
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
  // Flows: the i-th vector sent on a link is taken by the i-th RECV on the peer's end (links
  // deliver in order, without loss: a corrupted transfer stops the run).
  if (peers_) {
    int id = 0;
    for (const auto& [a, ta] : by_chip) {
      std::map<int, std::vector<Track::Link>> out_by_link;
      for (const auto& s : ta->sends) out_by_link[s.link].push_back(s);
      for (auto& [l, sends] : out_by_link) {
        const auto [b, bl] = peers_(a, l);
        auto tb = by_chip.find(b);
        if (b < 0 || tb == by_chip.end()) continue;
        std::vector<Track::Link> recvs;
        for (const auto& r : tb->second->recvs)
          if (r.link == bl) recvs.push_back(r);
        std::stable_sort(sends.begin(), sends.end(), [](const auto& x, const auto& y) { return x.depart < y.depart; });
        std::stable_sort(recvs.begin(), recvs.end(), [](const auto& x, const auto& y) { return x.cycle < y.cycle; });
        const double ua = 1e6 / ta->chip->params().clock_hz, ub = 1e6 / tb->second->chip->params().clock_hz;
        for (std::size_t i = 0; i < std::min(sends.size(), recvs.size()); ++i) {
          const auto& s = sends[i];
          const auto& r = recvs[i];
          if (s.cycle < ta->sel.from || s.cycle > ta->sel.to) continue;
          const std::string name = fmt::format("c2c {}.{} -> {}.{}", a, l, b, bl);
          ev.push_back({{"name", name}, {"cat", "c2c"}, {"ph", "s"}, {"id", id}, {"pid", a}, {"tid", s.queue},
                        {"ts", double(s.cycle) * ua}});
          ev.push_back({{"name", name}, {"cat", "c2c"}, {"ph", "f"}, {"bp", "e"}, {"id", id}, {"pid", b}, {"tid", r.queue},
                        {"ts", double(r.cycle) * ub}});
          ++id;
        }
      }
    }
  }
  json doc = {{"traceEvents", ev}, {"displayTimeUnit", "ns"}};
  out << doc.dump() << "\n";
}

}  // namespace lpu::model
