// Parsing: directives, .rept/.include expansion, instructions and operands.
#include <fmt/format.h>

#include <bit>
#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "lpu/common/checked.hpp"
#include "lpu/common/parse.hpp"
#include "lpu/common/tensor_file.hpp"
#include "lpu/isa/numerics.hpp"
#include "lpu/isa/tensor_convert.hpp"
#include "source.hpp"

namespace lpu::assembler {
namespace {

namespace fs = std::filesystem;

SourceLoc at(const Line& l, const Token& t) { return {l.loc.file, l.loc.line, t.col}; }
[[noreturn]] void fail(const Line& l, const Token& t, const std::string& msg) {
  throw AsmError(at(l, t), msg);
}
bool is_punct(const Token& t, const char* p) { return t.kind == Tok::Punct && t.text == p; }
void expect(const Line& l, std::size_t& pos, const char* p) {
  if (!is_punct(l.toks[pos], p)) {
    const auto& t = l.toks[pos];
    fail(l, t, fmt::format("expected '{}'{}", p,
                           t.kind == Tok::End ? " before end of line" : fmt::format(", found '{}'", t.text)));
  }
  ++pos;
}
void expect_end(const Line& l, std::size_t pos) {
  if (l.toks[pos].kind != Tok::End) fail(l, l.toks[pos], fmt::format("unexpected '{}'", l.toks[pos].text));
}

std::string type_list(std::uint16_t mask) {
  std::string s;
  for (int d = 0; d < isa::kNumDtypes; ++d)
    if (isa::type_allowed(mask, static_cast<isa::Dtype>(d)))
      s += (s.empty() ? "." : " .") + std::string(isa::kDtypes[static_cast<std::size_t>(d)].name);
  return s;
}

// Parses "s12e" / "s3w".
std::optional<StreamRef> parse_stream_name(const std::string& s) {
  if (s.size() < 3 || (s[0] != 's' && s[0] != 'S')) return std::nullopt;
  char d = static_cast<char>(std::tolower(static_cast<unsigned char>(s.back())));
  if (d != 'e' && d != 'w') return std::nullopt;
  int id = 0;
  for (std::size_t i = 1; i + 1 < s.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return std::nullopt;
    id = id * 10 + (s[i] - '0');
    if (id > 63) return StreamRef{64, Dir::East};  // flagged as out of range by the caller
  }
  return StreamRef{static_cast<std::uint8_t>(id), d == 'e' ? Dir::East : Dir::West};
}

std::optional<int> parse_reg(const std::string& s) {
  if (s.size() < 2 || (s[0] != 'r' && s[0] != 'R')) return std::nullopt;
  int v = 0;
  for (std::size_t i = 1; i < s.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return std::nullopt;
    v = v * 10 + (s[i] - '0');
    if (v > 99) return std::nullopt;
  }
  return v;
}

// Converts a number to the bit pattern of one element of type t (floats: numerics rules).
std::uint32_t float_bits(isa::Dtype t, double v) {
  std::uint8_t buf[4] = {};
  num::store_f32(t, num::MutBytes(buf, 4), 0, static_cast<float>(v));
  std::uint32_t bits = 0;
  for (int i = 0; i < isa::dtype_bytes(t); ++i) bits |= std::uint32_t(buf[i]) << (8 * i);
  return bits;
}

}  // namespace

std::optional<std::int64_t> Parser::lookup(const std::string& name) const {
  auto it = consts_.find(name);
  if (it != consts_.end()) return it->second;
  if (bad_consts_.count(name)) throw Cascade{};
  return std::nullopt;
}

std::optional<StreamRef> Parser::stream_alias(const std::string& name) const {
  auto it = streams_.find(name);
  if (it != streams_.end()) return it->second;
  if (bad_streams_.count(name)) throw Cascade{};
  return std::nullopt;
}

std::int64_t Parser::const_expr(const Line& line, std::size_t& pos) {
  ExprParser ep(line, pos, [this](const std::string& n) { return lookup(n); }, false);
  auto e = ep.parse();
  return e->num;  // no labels allowed: always folded
}

std::string Parser::name(const Line& line, std::size_t& pos, const char* what) {
  std::string out;
  int next_col = -1;
  for (;;) {
    const Token& t = line.toks[pos];
    if (next_col >= 0 && t.col != next_col) break;  // pieces must touch
    if (t.kind == Tok::Ident) {
      out += t.text;
      next_col = t.col + static_cast<int>(t.text.size());
      ++pos;
    } else if (t.kind == Tok::Int && next_col >= 0) {
      out += t.text;
      next_col = t.col + static_cast<int>(t.text.size());
      ++pos;
    } else if (is_punct(t, "{")) {
      ++pos;
      auto v = const_expr(line, pos);
      if (!is_punct(line.toks[pos], "}")) fail(line, line.toks[pos], "expected '}'");
      out += std::to_string(v);
      next_col = line.toks[pos].col + 1;
      ++pos;
    } else {
      break;
    }
  }
  if (out.empty()) fail(line, line.toks[pos], fmt::format("expected {}", what));
  return out;
}

std::string Parser::resolve_path(const std::string& name, const SourceLoc& loc) const {
  std::vector<fs::path> tries;
  fs::path p(name);
  if (p.is_absolute()) {
    tries.push_back(p);
  } else {
    if (!file_stack_.empty()) tries.push_back(fs::path(file_stack_.back()).parent_path() / p);
    for (const auto& d : opt_.include_dirs) tries.push_back(fs::path(d) / p);
  }
  for (const auto& t : tries) {
    std::error_code ec;
    if (fs::is_regular_file(t, ec)) return t.string();
  }
  throw AsmError(loc, fmt::format("cannot find file '{}'", name));
}

void Parser::parse_text(const std::string& text, const std::string& file, int depth) {
  if (depth > 16) throw AsmError({file, 1, 1}, ".include nested more than 16 deep");
  auto lines = lex(text, file);
  file_stack_.push_back(file);
  run(lines, 0, lines.size(), depth);
  file_stack_.pop_back();
}

// Statements one by one: an error is recorded and the statement skipped, so that every
// independent error of the file is reported (Diagnostics).
void Parser::run(const std::vector<Line>& lines, std::size_t b, std::size_t e, int depth) {
  for (std::size_t i = b; i < e; ++i) {
    const Line& line = lines[i];
    if (--budget_ < 0)
      diags_.fatal(AsmError(line.loc, "program too large: more than 4,000,000 statements after .rept expansion"));
    const Token& t0 = line.toks[0];
    if (line.error) {
      diags_.add(AsmError(line.error->loc, line.error->message));
      // A .rept line with an error skips its block (whose .endr would be an error of its own).
      if (t0.kind == Tok::Ident && t0.text == ".rept")
        if (const auto j = matching_endr(lines, i, e); j < e) i = j;
      continue;
    }
    try {
      if (t0.kind == Tok::Ident && t0.text == ".endr") fail(line, t0, ".endr without .rept");
      if (t0.kind == Tok::Ident && t0.text == ".rept") {
        i = rept(lines, i, e, depth);
        continue;
      }
      statement(line, depth);
    } catch (const Cascade&) {
      diags_.cascade();
    } catch (const AsmError& err) {
      diags_.add(err);
    }
  }
}

std::size_t Parser::matching_endr(const std::vector<Line>& lines, std::size_t i, std::size_t e) {
  int nest = 1;
  std::size_t j = i + 1;
  for (; j < e; ++j) {
    const auto& tj = lines[j].toks[0];
    if (tj.kind == Tok::Ident && tj.text == ".rept") ++nest;
    if (tj.kind == Tok::Ident && tj.text == ".endr" && --nest == 0) break;
  }
  return j;
}

std::size_t Parser::rept(const std::vector<Line>& lines, std::size_t i, std::size_t e, int depth) {
  const Line& line = lines[i];
  const Token& t0 = line.toks[0];
  const std::size_t j = matching_endr(lines, i, e);
  if (j >= e) fail(line, t0, ".rept without a matching .endr");
  // From here on an error skips the whole block: its body would only repeat it.
  try {
    if (rept_nest_ >= checked::kMaxDepth)
      fail(line, t0, fmt::format(".rept nested more than {} deep", checked::kMaxDepth));
    // .rept COUNT   or   .rept VAR = START, COUNT
    std::size_t pos = 1;
    std::string var;
    std::int64_t start = 0;
    if (line.toks[1].kind == Tok::Ident && is_punct(line.toks[2], "=")) {
      var = line.toks[1].text;
      pos = 3;
      start = const_expr(line, pos);
      expect(line, pos, ",");
    }
    const Token& ct = line.toks[pos];
    std::int64_t count = const_expr(line, pos);
    expect_end(line, pos);
    if (count < 0) fail(line, t0, ".rept count must not be negative");
    if (count > 0 && !checked::add(start, count - 1).ok())
      fail(line, ct, fmt::format("integer overflow: {} + {} - 1 (the last value of {}) does not fit in 64 bits",
                                 start, count, var));
    std::optional<std::int64_t> saved;
    if (!var.empty()) {
      if (auto it = consts_.find(var); it != consts_.end()) saved = it->second;
    }
    ++rept_nest_;
    for (std::int64_t k = 0; k < count; ++k) {
      if (!var.empty()) consts_[var] = start + k;
      const auto failed = diags_.failures();
      run(lines, i + 1, j, depth);
      // A body that failed once would mostly fail the same way again: one repetition with
      // errors is reported, and no time goes into the rest.
      if (diags_.failures() != failed) break;
    }
    --rept_nest_;
    if (!var.empty()) {
      if (saved) consts_[var] = *saved;
      else consts_.erase(var);
    }
  } catch (const Cascade&) {
    diags_.cascade();
  } catch (const AsmError& err) {
    diags_.add(err);
  }
  return j;
}

void Parser::statement(const Line& line, int depth) {
  const Token& t0 = line.toks[0];
  if (t0.kind == Tok::Ident && t0.text[0] == '.' && t0.text != ".include") {
    directive(line, depth);
    return;
  }
  if (t0.kind == Tok::Ident && t0.text == ".include") {
    if (line.toks[1].kind != Tok::String) fail(line, line.toks[1], ".include expects a file name in quotes");
    expect_end(line, 2);
    auto path = resolve_path(line.toks[1].text, at(line, line.toks[1]));
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    for (const auto& open : file_stack_)
      if (open == path) fail(line, line.toks[1], fmt::format("'{}' includes itself", path));
    parse_text(ss.str(), path, depth + 1);
    return;
  }
  instruction(line);
}

void Parser::directive(const Line& line, int /*depth*/) {
  const Token& t0 = line.toks[0];
  const std::string& d = t0.text;
  std::size_t pos = 1;
  auto ident = [&](const char* what) -> const Token& {
    const Token& t = line.toks[pos];
    if (t.kind != Tok::Ident) fail(line, t, fmt::format("expected {}", what));
    ++pos;
    return t;
  };
  if (d == ".preset") {
    const Token& n = ident("a preset name");
    expect_end(line, pos);
    // Fatal: every queue name and range after it would be checked against the wrong chip.
    if (n.text != p_.name)
      diags_.fatal(AsmError(at(line, n), fmt::format("program is written for preset '{}' but is being assembled for '{}' "
                                                     "(use --preset {})", n.text, p_.name, n.text)));
  } else if (d == ".const") {
    const Token& n = ident("a constant name");
    try {
      expect(line, pos, "=");
      auto v = const_expr(line, pos);
      expect_end(line, pos);
      if (consts_.count(n.text)) fail(line, n, fmt::format("constant '{}' is already defined", n.text));
      if (parse_reg(n.text) || parse_stream_name(n.text) || isa::find_mnemonic(n.text))
        fail(line, n, fmt::format("'{}' is reserved (register, stream or mnemonic)", n.text));
      consts_[n.text] = v;
    } catch (...) {
      bad_consts_.insert(n.text);  // its uses are not reported again
      throw;
    }
  } else if (d == ".stream") {
    const Token& n = ident("a stream alias");
    try {
      expect(line, pos, "=");
      const Token& s = ident("a stream such as s0e");
      expect_end(line, pos);
      auto sr = parse_stream_name(s.text);
      if (!sr) {
        sr = stream_alias(s.text);
        if (!sr) fail(line, s, fmt::format("'{}' is not a stream (write s<id>e or s<id>w)", s.text));
      }
      if (sr->id >= p_.stream.per_direction)
        fail(line, s, fmt::format("stream {} does not exist: the chip has {} streams per direction", s.text,
                                  p_.stream.per_direction));
      if (parse_stream_name(n.text) || parse_reg(n.text))
        fail(line, n, fmt::format("'{}' is reserved", n.text));
      streams_[n.text] = *sr;
    } catch (...) {
      bad_streams_.insert(n.text);
      throw;
    }
  } else if (d == ".reg") {
    const Token& n = ident("a register r1..r15");
    auto r = parse_reg(n.text);
    if (!r || *r < 1 || *r > 15) fail(line, n, "expected a register r1..r15 (r0 is always zero)");
    expect(line, pos, "=");
    auto v = const_expr(line, pos);
    expect_end(line, pos);
    if (v < 0 || v > 0xffffffffLL) fail(line, n, fmt::format("register value {} out of range 0..2^32-1", v));
    out_.program.regs[static_cast<std::size_t>(*r)] = static_cast<std::uint32_t>(v);
  } else if (d == ".queue") {
    const Token& n = line.toks[pos];
    cur_queue_ = kBadQueue;  // until it is known: its instructions are skipped, not reported
    const std::string qname = name(line, pos, "a queue name such as mem.w.0 or vxm.0");
    expect_end(line, pos);
    auto q = layout_.find_queue(qname);
    if (!q) {
      fail(line, n, fmt::format("no queue '{}' on preset '{}' (queues: mem.{{w,e}}.0..{}, vxm.0..{}, "
                                "sxm.{{w,e}}.0..{}, mxm.{{w,e}}.<plane>.0..{})", qname, p_.name,
                                p_.mem.slices_per_hemisphere - 1, p_.vxm.queues - 1,
                                p_.sxm.queues_per_hemisphere - 1, p_.mxm.queues_per_plane - 1));
    }
    cur_queue_ = q->v;
  } else if (d == ".data") {
    data_directive(line, pos);
  } else if (d == ".symbol") {
    symbol_directive(line, pos, false);
  } else if (d == ".bytes") {
    bytes_directive(line, pos);
  } else if (d == ".perm") {
    perm_directive(line, pos);
  } else {
    fail(line, t0, fmt::format("unknown directive '{}'", d));
  }
}

void Parser::add_data(const std::string& slice, std::uint32_t row, std::vector<std::uint8_t> bytes,
                      const SourceLoc& loc, const std::string& what) {
  const auto v = p_.vector_bytes();
  std::int64_t rows = static_cast<std::int64_t>(bytes.size()) / v;
  std::int64_t lo = row, hi = std::int64_t(row) + rows - 1;
  if (hi >= p_.mem.rows)
    throw AsmError(loc, fmt::format("{} needs rows {}..{} of {} but the slice has {} rows", what, lo, hi,
                                    slice, p_.mem.rows));
  for (const auto& u : used_rows_[slice]) {
    if (lo <= u.hi && u.lo <= hi)
      throw AsmError(loc, fmt::format("{} (rows {}..{} of {}) overlaps {} declared at {}:{} (rows {}..{})",
                                      what, lo, hi, slice, u.what, u.loc.file, u.loc.line, u.lo, u.hi));
  }
  used_rows_[slice].push_back({lo, hi, what, loc});
  if (!bytes.empty()) out_.program.data.push_back({slice, row, std::move(bytes)});
}

// .data NAME TYPE[d0, d1, ...] SLICES @ ROW [= [values] | = "file.npy"]
void Parser::data_directive(const Line& line, std::size_t pos) { symbol_directive(line, pos, true); }

void Parser::symbol_directive(const Line& line, std::size_t pos, bool with_init) {
  const Token& n = line.toks[pos];
  if (n.kind != Tok::Ident) fail(line, n, "expected a symbol name");
  ++pos;
  for (const auto& s : out_.program.symbols)
    if (s.name == n.text) fail(line, n, fmt::format("symbol '{}' is already defined", n.text));
  const Token& tt = line.toks[pos];
  if (tt.kind != Tok::Ident) fail(line, tt, "expected an element type such as i8 or f16");
  auto dt = isa::find_dtype(tt.text);
  if (!dt) fail(line, tt, fmt::format("unknown type '{}' (types: {})", tt.text, type_list(0xff)));
  ++pos;
  obj::Symbol sym;
  sym.name = n.text;
  sym.dtype = *dt;
  expect(line, pos, "[");
  std::int64_t numel = 1;
  while (!is_punct(line.toks[pos], "]")) {
    const Token& dtok = line.toks[pos];
    auto dim = const_expr(line, pos);
    if (dim < 0 || dim > (1LL << 32)) fail(line, dtok, fmt::format("dimension {} out of range", dim));
    sym.shape.push_back(dim);
    if (__builtin_mul_overflow(numel, dim, &numel) || numel > (1LL << 36))
      fail(line, dtok, "tensor too large");
    if (is_punct(line.toks[pos], ",")) ++pos;
    else if (!is_punct(line.toks[pos], "]")) fail(line, line.toks[pos], "expected ',' or ']'");
  }
  ++pos;
  // Slices: mem.w.0 or mem.w.0..3 (several slices: rows are striped across them).
  const Token& st = line.toks[pos];
  std::string spec = name(line, pos, "a MEM slice such as mem.w.0 or a range mem.w.0..3");
  auto dots = spec.find("..");
  if (dots == std::string::npos) {
    auto s = layout_.find_slice(spec);
    if (!s || layout_.slice(*s).kind != SliceKind::Mem)
      fail(line, st, fmt::format("'{}' is not a MEM slice of preset '{}'", spec, p_.name));
    sym.slices.push_back(spec);
  } else {
    std::string first = spec.substr(0, dots);
    std::string last_idx = spec.substr(dots + 2);
    auto s = layout_.find_slice(first);
    if (!s || layout_.slice(*s).kind != SliceKind::Mem)
      fail(line, st, fmt::format("'{}' is not a MEM slice of preset '{}'", first, p_.name));
    const auto& sl = layout_.slice(*s);
    const auto idx = scan_int(last_idx, false);  // common/parse.hpp: the whole text or -1
    const int hi = idx.status == IntScan::Status::Ok && idx.used == last_idx.size() && idx.value <= p_.mem.slices_per_hemisphere
                       ? int(idx.value)
                       : -1;
    if (hi < sl.index || hi >= p_.mem.slices_per_hemisphere)
      fail(line, st, fmt::format("bad slice range '{}': the last index must be in {}..{}", spec, sl.index,
                                 p_.mem.slices_per_hemisphere - 1));
    std::string prefix = first.substr(0, first.rfind('.') + 1);
    for (int i = sl.index; i <= hi; ++i) sym.slices.push_back(prefix + std::to_string(i));
  }
  expect(line, pos, "@");
  const Token& rt = line.toks[pos];
  auto row = const_expr(line, pos);
  if (row < 0 || row >= p_.mem.rows) fail(line, rt, fmt::format("row {} out of range 0..{}", row, p_.mem.rows - 1));
  sym.start_row = static_cast<std::uint32_t>(row);

  const int esz = isa::dtype_bytes(*dt);
  const std::int64_t nbytes = numel * esz;
  const int v = p_.vector_bytes();
  const std::int64_t nrows = (nbytes + v - 1) / v;
  std::vector<std::uint8_t> bytes;
  if (is_punct(line.toks[pos], "=")) {
    if (!with_init) fail(line, line.toks[pos], ".symbol takes no initial value (use .data)");
    ++pos;
    bytes.assign(static_cast<std::size_t>(nrows * v), 0);
    num::MutBytes mb(bytes.data(), bytes.size());
    if (line.toks[pos].kind == Tok::String) {
      const Token& ft = line.toks[pos];
      auto path = resolve_path(ft.text, at(line, ft));
      io::Tensor tensor;
      try {
        tensor = io::load_npy(path);
      } catch (const Error& e) {
        fail(line, ft, e.what());
      }
      if (tensor.shape != sym.shape) {
        std::string got, want;
        for (auto x : tensor.shape) got += (got.empty() ? "" : ",") + std::to_string(x);
        for (auto x : sym.shape) want += (want.empty() ? "" : ",") + std::to_string(x);
        fail(line, ft, fmt::format("'{}' has shape [{}] but {} is declared [{}]", ft.text, got, n.text, want));
      }
      try {
        auto conv = num::tensor_to_dtype(tensor, *dt, ft.text);
        std::copy(conv.begin(), conv.end(), bytes.begin());
      } catch (const Error& e) {
        fail(line, ft, e.what());
      }
      ++pos;
    } else {
      expect(line, pos, "[");
      std::int64_t i = 0;
      while (!is_punct(line.toks[pos], "]")) {
        const Token& vt = line.toks[pos];
        if (i >= numel) fail(line, vt, fmt::format("more values than the {} elements of {}", numel, n.text));
        bool neg = false;
        if (is_punct(vt, "-") && (line.toks[pos + 1].kind == Tok::Float ||
                                  (line.toks[pos + 1].kind == Tok::Ident && line.toks[pos + 1].text == "inf"))) {
          neg = true;
          ++pos;
        }
        const Token& lt = line.toks[pos];
        if (lt.kind == Tok::Float || (lt.kind == Tok::Ident && (lt.text == "inf" || lt.text == "nan"))) {
          if (!isa::dtype_info(*dt).is_float) fail(line, lt, fmt::format("{} is an integer type", tt.text));
          double x = lt.kind == Tok::Float ? lt.fval : lt.text == "inf" ? INFINITY : NAN;
          num::store_f32(*dt, mb, static_cast<std::size_t>(i), static_cast<float>(neg ? -x : x));
          ++pos;
        } else {
          auto x = const_expr(line, pos);
          if (isa::dtype_info(*dt).is_float) {
            num::store_f32(*dt, mb, static_cast<std::size_t>(i), static_cast<float>(x));
          } else {
            const int bits = 8 * esz;
            const std::int64_t lo = -(std::int64_t(1) << (bits - 1));
            const std::int64_t hi = (std::int64_t(1) << bits) - 1;  // unsigned spellings allowed
            if (x < lo || x > hi) fail(line, vt, fmt::format("value {} does not fit {}", x, tt.text));
            num::store_int(*dt, mb, static_cast<std::size_t>(i), x, true);
          }
        }
        ++i;
        if (is_punct(line.toks[pos], ",")) ++pos;
        else if (!is_punct(line.toks[pos], "]")) fail(line, line.toks[pos], "expected ',' or ']'");
      }
      if (i != numel)
        fail(line, line.toks[pos], fmt::format("{} values given, {} declares {} elements", i, n.text, numel));
      ++pos;
    }
  } else if (with_init) {
    fail(line, line.toks[pos], ".data needs '= [values]' or '= \"file.npy\"' (use .symbol to reserve rows)");
  }
  expect_end(line, pos);
  // Place rows: row k goes to slices[k % S] at start_row + k / S. A .symbol only names rows
  // (outputs, aliases); .data also initialises them and may not overlap other data.
  const auto S = static_cast<std::int64_t>(sym.slices.size());
  SourceLoc loc = at(line, n);
  for (std::int64_t s = 0; s < S && !bytes.empty(); ++s) {
    std::vector<std::uint8_t> chunk;
    for (std::int64_t k = s; k < nrows; k += S)
      chunk.insert(chunk.end(), bytes.begin() + k * v, bytes.begin() + (k + 1) * v);
    if (chunk.empty()) continue;
    add_data(sym.slices[static_cast<std::size_t>(s)], static_cast<std::uint32_t>(row), std::move(chunk), loc,
             n.text);
  }
  if (bytes.empty()) {
    const std::int64_t per_slice = (nrows + S - 1) / S;
    if (row + per_slice > p_.mem.rows)
      fail(line, n, fmt::format("{} needs {} rows per slice from row {} but a slice has {} rows", n.text,
                                per_slice, row, p_.mem.rows));
  }
  out_.data_locs[sym.name] = loc;
  out_.program.symbols.push_back(std::move(sym));
}

// .bytes SLICE @ ROW = "hex"   (raw rows; what the disassembler prints for data sections)
void Parser::bytes_directive(const Line& line, std::size_t pos) {
  const Token& st = line.toks[pos];
  const std::string sname = name(line, pos, "a MEM slice");
  auto s = layout_.find_slice(sname);
  if (!s || layout_.slice(*s).kind != SliceKind::Mem) fail(line, st, fmt::format("'{}' is not a MEM slice", sname));
  expect(line, pos, "@");
  const Token& rt = line.toks[pos];
  auto row = const_expr(line, pos);
  if (row < 0 || row >= p_.mem.rows) fail(line, rt, fmt::format("row {} out of range 0..{}", row, p_.mem.rows - 1));
  expect(line, pos, "=");
  const Token& ht = line.toks[pos];
  if (ht.kind != Tok::String) fail(line, ht, "expected a string of hex digits");
  ++pos;
  expect_end(line, pos);
  const std::string& h = ht.text;
  const auto v = static_cast<std::size_t>(p_.vector_bytes());
  if (h.empty() || h.size() % (2 * v) != 0)
    fail(line, ht, fmt::format("hex data must be whole rows: a multiple of {} hex digits", 2 * v));
  std::vector<std::uint8_t> bytes(h.size() / 2);
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    int hv = 0;
    for (int k = 0; k < 2; ++k) {
      char c = h[2 * i + static_cast<std::size_t>(k)];
      int d = std::isdigit(static_cast<unsigned char>(c)) ? c - '0'
              : (c >= 'a' && c <= 'f') ? c - 'a' + 10
              : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
      if (d < 0) fail(line, ht, fmt::format("'{}' is not a hex digit", c));
      hv = hv * 16 + d;
    }
    bytes[i] = static_cast<std::uint8_t>(hv);
  }
  add_data(sname, static_cast<std::uint32_t>(row), std::move(bytes), at(line, st), ".bytes");
}

// .perm sxm.w INDEX = [b0, b1, ...]   (vector_bytes entries, each < vector_bytes)
void Parser::perm_directive(const Line& line, std::size_t pos) {
  const Token& st = line.toks[pos];
  if (st.kind != Tok::Ident || (st.text != "sxm.w" && st.text != "sxm.e"))
    fail(line, st, "expected sxm.w or sxm.e");
  ++pos;
  const Token& it = line.toks[pos];
  auto idx = const_expr(line, pos);
  if (idx < 0 || idx >= p_.sxm.perm_tables)
    fail(line, it, fmt::format("permutation table {} out of range 0..{}", idx, p_.sxm.perm_tables - 1));
  for (const auto& pt : out_.program.perms)
    if (pt.sxm == st.text && pt.index == idx)
      fail(line, it, fmt::format("permutation table {} of {} is already defined", idx, st.text));
  expect(line, pos, "=");
  expect(line, pos, "[");
  obj::PermTable pt;
  pt.sxm = st.text;
  pt.index = static_cast<std::uint32_t>(idx);
  while (!is_punct(line.toks[pos], "]")) {
    const Token& vt = line.toks[pos];
    auto x = const_expr(line, pos);
    if (x < 0 || x >= p_.vector_bytes())
      fail(line, vt, fmt::format("permutation entry {} out of range 0..{}", x, p_.vector_bytes() - 1));
    pt.map.push_back(static_cast<std::uint16_t>(x));
    if (is_punct(line.toks[pos], ",")) ++pos;
    else if (!is_punct(line.toks[pos], "]")) fail(line, line.toks[pos], "expected ',' or ']'");
  }
  if (static_cast<int>(pt.map.size()) != p_.vector_bytes())
    fail(line, line.toks[pos], fmt::format("a permutation has {} entries (one per byte of a vector), {} given",
                                           p_.vector_bytes(), pt.map.size()));
  ++pos;
  expect_end(line, pos);
  out_.program.perms.push_back(std::move(pt));
}

void Parser::instruction(const Line& line) {
  std::size_t pos = 0;
  SrcInstr si;
  // Label: name:  or  name[expr]:
  if (line.toks[0].kind == Tok::Ident) {
    bool is_label = is_punct(line.toks[1], ":");
    if (!is_label && is_punct(line.toks[1], "[")) {
      std::size_t j = 2;
      int depth = 1;
      while (line.toks[j].kind != Tok::End && depth > 0) {
        if (is_punct(line.toks[j], "[")) ++depth;
        if (is_punct(line.toks[j], "]")) --depth;
        ++j;
      }
      is_label = depth == 0 && is_punct(line.toks[j], ":");
    }
    if (is_label) {
      ExprParser ep(line, pos, [this](const std::string& n) { return lookup(n); }, false);
      si.label = ep.parse_label_ref();
      expect(line, pos, ":");
      if (line.toks[pos].kind == Tok::End) fail(line, line.toks[pos], "a label must be followed by an instruction");
    }
  }
  if (is_punct(line.toks[pos], "@")) {
    ++pos;
    if (is_punct(line.toks[pos], "+")) {
      si.at_relative = true;
      ++pos;
    }
    ExprParser ep(line, pos, [this](const std::string& n) { return lookup(n); }, true);
    si.at = ep.parse();
  }
  const Token& mt = line.toks[pos];
  if (mt.kind != Tok::Ident) fail(line, mt, "expected an instruction mnemonic");
  ++pos;
  if (cur_queue_ == kBadQueue) throw Cascade{};
  if (cur_queue_ < 0) fail(line, mt, "instruction outside a .queue section");
  const auto& q = layout_.queue(QueueId{cur_queue_});
  si.loc = at(line, mt);

  // Mnemonic and type suffixes.
  std::string m = mt.text;
  std::vector<std::string> sfx;
  if (auto d = m.find('.'); d != std::string::npos) {
    std::string rest = m.substr(d + 1);
    m = m.substr(0, d);
    std::size_t s = 0;
    for (;;) {
      auto e = rest.find('.', s);
      sfx.push_back(rest.substr(s, e == std::string::npos ? std::string::npos : e - s));
      if (e == std::string::npos) break;
      s = e + 1;
    }
  }
  auto op = isa::find_mnemonic(m);
  if (!op) fail(line, mt, fmt::format("unknown mnemonic '{}'", m));
  const auto& ii = isa::info(*op);
  si.in.op = *op;
  const std::size_t want = (ii.types ? 1u : 0u) + (ii.types2 ? 1u : 0u);
  if (sfx.size() != want) {
    if (want == 0) fail(line, mt, fmt::format("{} takes no type suffix", ii.mnemonic));
    if (want == 1) fail(line, mt, fmt::format("{} needs one type suffix, one of {}", ii.mnemonic, type_list(ii.types)));
    fail(line, mt, fmt::format("{} needs two type suffixes (from and to), e.g. {}.i32.i8", ii.mnemonic, ii.mnemonic));
  }
  for (std::size_t k = 0; k < sfx.size(); ++k) {
    auto dt = isa::find_dtype(sfx[k]);
    auto mask = k == 0 ? ii.types : ii.types2;
    if (!dt) fail(line, mt, fmt::format("unknown type '.{}' (types: {})", sfx[k], type_list(0xff)));
    if (!isa::type_allowed(mask, *dt))
      fail(line, mt, fmt::format("type mismatch: {} does not take type .{} (allowed: {})", ii.mnemonic, sfx[k],
                                 type_list(mask)));
    (k == 0 ? si.in.t : si.in.t2) = *dt;
  }
  if (!isa::queue_accepts(q.kind, ii.unit))
    fail(line, mt, fmt::format("{} is a {} instruction and cannot go in {} queue '{}'", ii.mnemonic,
                               isa::kUnitNames[static_cast<std::size_t>(ii.unit)],
                               isa::kQueueKindNames[static_cast<std::size_t>(q.kind)], q.name));

  // Operands.
  int k = 0;
  while (line.toks[pos].kind != Tok::End) {
    if (k > 0) expect(line, pos, ",");
    const Token& ot = line.toks[pos];
    if (k >= ii.num_operands)
      fail(line, ot, fmt::format("{} takes {} operand{}", ii.mnemonic, ii.num_operands, ii.num_operands == 1 ? "" : "s"));
    const auto& od = ii.operands[static_cast<std::size_t>(k)];
    const auto& kd = isa::kind_info(od.kind);
    std::int64_t val = 0;
    switch (kd.syntax) {
      case isa::Syntax::Stream: {
        if (ot.kind != Tok::Ident) fail(line, ot, fmt::format("operand {} of {} must be a stream (s<id>e / s<id>w)", od.name, ii.mnemonic));
        auto sr = parse_stream_name(ot.text);
        if (!sr) {
          sr = stream_alias(ot.text);
          if (!sr)
            fail(line, ot, fmt::format("'{}' is not a stream (operand {} of {}; write s<id>e or s<id>w or a .stream alias)",
                                       ot.text, od.name, ii.mnemonic));
        }
        if (sr->id >= p_.stream.per_direction)
          fail(line, ot, fmt::format("stream {} does not exist: the chip has {} streams per direction", ot.text,
                                     p_.stream.per_direction));
        val = sr->packed();
        ++pos;
        break;
      }
      case isa::Syntax::Reg: {
        auto r = ot.kind == Tok::Ident ? parse_reg(ot.text) : std::nullopt;
        if (!r || *r > 15) fail(line, ot, fmt::format("operand {} of {} must be a register r0..r15", od.name, ii.mnemonic));
        if (*op == isa::Op::Config && *r == 0) fail(line, ot, "CONFIG cannot write r0 (always zero)");
        val = *r;
        ++pos;
        break;
      }
      case isa::Syntax::Addr: {
        int reg = 0;
        std::int64_t off = 0;
        if (is_punct(ot, "[")) {
          ++pos;
          const Token& rt = line.toks[pos];
          auto r = rt.kind == Tok::Ident ? parse_reg(rt.text) : std::nullopt;
          if (r) {
            if (*r > 15) fail(line, rt, "registers are r0..r15");
            reg = *r;
            ++pos;
            if (is_punct(line.toks[pos], "+")) {
              ++pos;
              off = const_expr(line, pos);
            }
          } else {
            off = const_expr(line, pos);
          }
          expect(line, pos, "]");
        } else {
          off = const_expr(line, pos);
        }
        if (off < 0 || off >= (1 << isa::kAddrOffsetBits))
          fail(line, ot, fmt::format("address offset {} out of range 0..{}", off, (1 << isa::kAddrOffsetBits) - 1));
        if (reg == 0 && off >= p_.mem.rows)
          fail(line, ot, fmt::format("address {} out of range: a MEM slice has rows 0..{}", off, p_.mem.rows - 1));
        val = isa::make_addr(reg, off);
        break;
      }
      case isa::Syntax::Imm32: {
        const bool flt = isa::dtype_info(si.in.t).is_float && ii.types != 0;
        bool neg = false;
        if (is_punct(ot, "-") && (line.toks[pos + 1].kind == Tok::Float ||
                                  (line.toks[pos + 1].kind == Tok::Ident && line.toks[pos + 1].text == "inf"))) {
          neg = true;
          ++pos;
        }
        const Token& lt = line.toks[pos];
        if (lt.kind == Tok::Ident && lt.text == "raw" && is_punct(line.toks[pos + 1], "(")) {
          pos += 2;
          val = const_expr(line, pos);
          expect(line, pos, ")");
          if (val < 0 || val > 0xffffffffLL) fail(line, lt, "raw() takes a 32-bit pattern 0..0xffffffff");
        } else if (lt.kind == Tok::Float || (lt.kind == Tok::Ident && (lt.text == "inf" || lt.text == "nan"))) {
          if (!flt) fail(line, lt, fmt::format("a floating-point value needs a float type, not .{}",
                                               isa::dtype_info(si.in.t).name));
          double x = lt.kind == Tok::Float ? lt.fval : lt.text == "inf" ? INFINITY : NAN;
          val = float_bits(si.in.t, neg ? -x : x);
          ++pos;
        } else {
          auto x = const_expr(line, pos);
          if (flt) {
            val = float_bits(si.in.t, static_cast<double>(x));
          } else {
            if (x < -(1LL << 31) || x > 0xffffffffLL) fail(line, ot, fmt::format("value {} does not fit 32 bits", x));
            val = x & 0xffffffffLL;
          }
        }
        break;
      }
      case isa::Syntax::Simm:
      case isa::Syntax::Uimm: {
        val = const_expr(line, pos);
        if (val < isa::kind_min(od.kind) || val > isa::kind_max(od.kind))
          fail(line, ot, fmt::format("operand {} of {} = {} out of range {}..{}", od.name, ii.mnemonic, val,
                                     isa::kind_min(od.kind), isa::kind_max(od.kind)));
        break;
      }
    }
    si.in.v[static_cast<std::size_t>(k)] = val;
    ++k;
  }
  // Trailing stride / offset / part / flag operands may be left out (0).
  for (int j = k; j < ii.num_operands; ++j) {
    auto kind = ii.operands[static_cast<std::size_t>(j)].kind;
    if (kind != isa::Kind::Stride && kind != isa::Kind::Part && kind != isa::Kind::Offset && kind != isa::Kind::Flag) {
      std::string names;
      for (int a = 0; a < ii.num_operands; ++a)
        names += (a ? ", " : "") + std::string(ii.operands[static_cast<std::size_t>(a)].name);
      fail(line, line.toks[pos], fmt::format("{} expects operands ({}), got {}", ii.mnemonic, names, k));
    }
  }
  out_.queues[static_cast<std::size_t>(cur_queue_)].instrs.push_back(std::move(si));
}

}  // namespace lpu::assembler
