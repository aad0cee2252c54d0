// Entry points, instruction formatting, disassembly and the schedule report.
#include "lpu/asm/assembler.hpp"

#include <fmt/format.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "lpu/isa/numerics.hpp"
#include "source.hpp"

namespace lpu::assembler {
namespace {

obj::Geometry geometry_of(const ChipParams& p) {
  obj::Geometry g;
  g.preset = p.name;
  g.vector_bytes = p.vector_bytes();
  g.streams_per_direction = p.stream.per_direction;
  g.mem_slices_per_hemisphere = p.mem.slices_per_hemisphere;
  g.mem_rows = p.mem.rows;
  g.vxm_queues = p.vxm.queues;
  g.sxm_queues_per_hemisphere = p.sxm.queues_per_hemisphere;
  g.mxm_planes = p.mxm.planes;
  g.mxm_queues_per_plane = p.mxm.queues_per_plane;
  g.mxm_accumulators = p.mxm.accumulators;
  return g;
}

Result assemble(const std::string& text, const std::string& name, const ChipParams& params,
                const Options& opt) {
  Layout layout(params);
  Parsed parsed;
  parsed.queues.resize(layout.queues().size());
  parsed.program.geometry = geometry_of(params);
  Diagnostics diags;
  try {
    Parser parser(params, layout, opt, parsed, diags);
    parser.parse_text(text, name, 0);
    // Scheduling a program with statements missing would only report their consequences.
    diags.raise_if_any();
    return schedule_and_emit(parsed, params, layout, opt, diags);
  } catch (const Diagnostics::Stop& stop) {
    throw stop.error;
  }
}

// The f32 value of one element's bit pattern, and whether printing it re-encodes exactly.
std::string format_imm(isa::Dtype t, std::uint32_t bits) {
  if (!isa::dtype_info(t).is_float) return fmt::format("{:#x}", bits);
  const int nb = isa::dtype_bytes(t);
  std::uint8_t buf[4] = {};
  for (int i = 0; i < 4; ++i) buf[i] = static_cast<std::uint8_t>(bits >> (8 * i));
  const bool clean_high = nb == 4 || (bits >> (8 * nb)) == 0;
  float f = num::load_f32(t, num::Bytes(buf, 4), 0);
  if (clean_high && !std::isnan(f)) {
    std::uint8_t back[4] = {};
    num::store_f32(t, num::MutBytes(back, 4), 0, f);
    std::uint32_t rb = 0;
    for (int i = 0; i < nb; ++i) rb |= std::uint32_t(back[i]) << (8 * i);
    if (rb == bits) {
      std::string s = fmt::format("{}", f);
      if (s.find_first_of(".ein") == std::string::npos) s += ".0";  // keep it a float literal
      return s;
    }
  }
  return fmt::format("raw({:#x})", bits);
}

}  // namespace

std::string format_stream(std::int64_t packed) {
  auto s = StreamRef::unpack(std::uint64_t(packed));
  return fmt::format("s{}{}", s.id, s.dir == Dir::East ? 'e' : 'w');
}

std::string format_instr(const isa::Instr& in, const ChipParams& /*p*/) {
  const auto& ii = isa::info(in);
  std::string s(ii.mnemonic);
  if (ii.types) s += "." + std::string(isa::dtype_info(in.t).name);
  if (ii.types2) s += "." + std::string(isa::dtype_info(in.t2).name);
  for (int j = 0; j < ii.num_operands; ++j) {
    const auto& od = ii.operands[static_cast<std::size_t>(j)];
    const auto v = in.v[static_cast<std::size_t>(j)];
    if (od.kind == isa::Kind::Flag && v == 0 && j + 1 == ii.num_operands) break;  // a trailing flag left out
    s += j ? ", " : " ";
    switch (isa::kind_info(od.kind).syntax) {
      case isa::Syntax::Stream: s += format_stream(v); break;
      case isa::Syntax::Reg: s += fmt::format("r{}", v); break;
      case isa::Syntax::Addr:
        if (isa::addr_reg(v)) s += fmt::format("[r{}+{}]", isa::addr_reg(v), isa::addr_offset(v));
        else s += fmt::format("{}", isa::addr_offset(v));
        break;
      case isa::Syntax::Imm32:
        s += ii.types ? format_imm(in.t, static_cast<std::uint32_t>(v)) : fmt::format("{:#x}", v);
        break;
      default: s += fmt::format("{}", v); break;
    }
  }
  return s;
}

Result assemble_string(const std::string& text, const std::string& name, const ChipParams& params,
                       const Options& opt) {
  return assemble(text, name, params, opt);
}

Result assemble_file(const std::string& path, const ChipParams& params, const Options& opt) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(fmt::format("{}: cannot open", path));
  std::stringstream ss;
  ss << f.rdbuf();
  return assemble(ss.str(), path, params, opt);
}

std::string preset_of_file(const std::string& path, const std::string& fallback) {
  std::ifstream f(path);
  std::string line;
  while (std::getline(f, line)) {
    auto b = line.find_first_not_of(" \t");
    if (b == std::string::npos || line.compare(b, 8, ".preset ") != 0) continue;
    auto s = line.find_first_not_of(" \t", b + 8);
    if (s == std::string::npos) break;
    auto e = line.find_first_of(" \t;", s);
    return line.substr(s, e == std::string::npos ? std::string::npos : e - s);
  }
  return fallback;
}

std::string schedule_report(const Result& r) {
  std::string out;
  std::string cur;
  for (const auto& s : r.schedule) {
    if (s.queue != cur) {
      out += fmt::format("{}{}:\n", out.empty() ? "" : "\n", s.queue);
      cur = s.queue;
    }
    std::string rep = s.repeat ? fmt::format("  x{} every {} (to cycle {})", s.repeat + 1, s.repeat_delay,
                                             s.cycle + s.repeat * s.repeat_delay)
                               : "";
    out += fmt::format("  {:>10}  {:<40}{}   ; {}:{}\n", s.cycle, s.text, rep, s.loc.file, s.loc.line);
  }
  out += fmt::format("\nlast issue cycle: {}\n", r.last_issue_cycle);
  return out;
}

std::string disassemble(const obj::Program& p, const ChipParams& params) {
  std::string out;
  out += fmt::format("; disassembled; re-assembles to the same object\n.preset {}\n", p.geometry.preset);
  for (std::size_t r = 1; r < p.regs.size(); ++r)
    if (p.regs[r]) out += fmt::format(".reg r{} = {}\n", r, p.regs[r]);
  for (const auto& pt : p.perms) {
    out += fmt::format(".perm {} {} = [", pt.sxm, pt.index);
    for (std::size_t i = 0; i < pt.map.size(); ++i) out += fmt::format("{}{}", i ? ", " : "", pt.map[i]);
    out += "]\n";
  }
  for (const auto& d : p.data) {
    out += fmt::format(".bytes {} @ {} = \"", d.slice, d.row);
    for (auto b : d.bytes) out += fmt::format("{:02x}", b);
    out += "\"\n";
  }
  for (const auto& s : p.symbols) {
    std::string shape;
    for (std::size_t i = 0; i < s.shape.size(); ++i) shape += fmt::format("{}{}", i ? ", " : "", s.shape[i]);
    std::string slices = s.slices.front();
    if (s.slices.size() > 1) {
      auto last = s.slices.back();
      slices += ".." + last.substr(last.rfind('.') + 1);
    }
    out += fmt::format(".symbol {} {}[{}] {} @ {}\n", s.name, isa::dtype_info(s.dtype).name, shape, slices,
                       s.start_row);
  }
  for (const auto& q : p.queues) {
    out += fmt::format("\n.queue {}\n", q.name);
    for (auto w : q.words) out += "    " + format_instr(isa::decode(w), params) + "\n";
  }
  return out;
}

}  // namespace lpu::assembler
