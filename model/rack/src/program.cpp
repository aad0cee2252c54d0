// Rack programs: manifests, per-chip expressions, assembly with sharing.
#include "lpu/rack/program.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <toml++/toml.h>

#include "lpu/common/checked.hpp"
#include "lpu/common/errors.hpp"
#include "lpu/common/parse.hpp"

namespace lpu::rack {

namespace fs = std::filesystem;

const assembler::ScheduledInstr* SourceMap::find(const std::string& queue, std::int64_t cycle) const {
  const assembler::ScheduledInstr* best = nullptr;
  for (const auto& s : schedule) {
    if (s.queue != queue || cycle < s.cycle) continue;
    const std::int64_t last = s.cycle + s.repeat * s.repeat_delay;
    if (cycle > last) continue;
    if (s.repeat_delay > 0 && (cycle - s.cycle) % s.repeat_delay != 0) continue;
    if (s.repeat == 0 && cycle != s.cycle) continue;
    best = &s;
  }
  return best;
}

int RackProgram::distinct_objects() const {
  std::set<const obj::Program*> s;
  for (const auto& c : chips)
    if (c.object) s.insert(c.object.get());
  return int(s.size());
}

// ---- expressions ----------------------------------------------------------------------------

namespace {

// Recursive descent over the text, evaluating as it goes. Arithmetic is checked (lpu/common/
// checked.hpp) and nesting is bounded (checked::kMaxDepth): an overflow, a division by zero or
// too deep an expression is a ConfigError naming the key, the place and the chip.
class ExprParser {
 public:
  // `where`: "file:line:col" of the expression's text in its manifest ("" when unknown); error
  // columns count from there.
  ExprParser(const std::string& s, const RackConfig& cfg, int chip, const std::string& key, std::string where,
             int line, int col)
      : s_(s), cfg_(cfg), chip_(chip), key_(key), where_(std::move(where)), line_(line), col_(col) {}
  std::int64_t parse() {
    auto v = sum();
    skip();
    if (i_ != s_.size()) fail(fmt::format("unexpected '{}'", shorten(s_.substr(i_))));
    return v;
  }

 private:
  static std::string shorten(const std::string& t) { return t.size() <= 60 ? t : t.substr(0, 57) + "..."; }
  [[noreturn]] void fail(const std::string& m) const { fail_at(i_, m); }
  [[noreturn]] void fail_at(std::size_t at, const std::string& m) const {
    // The column of `at` in the manifest: the text starts after the opening quote (no escapes
    // are expected in an expression).
    const std::string place = where_.empty() ? fmt::format("at offset {}: ", at)
                                             : fmt::format("in {}:{}:{}: ", where_, line_, col_ + 1 + int(at));
    throw ConfigError(key_, fmt::format("{}in '{}' (chip {}): {}", place, shorten(s_), chip_, m));
  }
  // Counts one level of nesting (parentheses, unary minus, calls) at offset `at` for its lifetime.
  struct Nest {
    Nest(ExprParser& p, std::size_t at) : p_(p) {
      if (++p_.depth_ > checked::kMaxDepth)
        p_.fail_at(at, fmt::format("expression nested more than {} deep", checked::kMaxDepth));
    }
    ~Nest() { --p_.depth_; }
    Nest(const Nest&) = delete;
    Nest& operator=(const Nest&) = delete;
    ExprParser& p_;
  };
  std::int64_t check(checked::Value r, std::size_t at, std::string_view op, std::int64_t a, std::int64_t b,
                     bool unary = false) const {
    if (!r.ok()) fail_at(at, checked::describe(r.fault, op, a, b, unary));
    return r.v;
  }
  void skip() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }
  bool eat(char c) {
    skip();
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  std::int64_t sum() {
    auto v = product();
    for (;;) {
      skip();
      const std::size_t at = i_;
      if (eat('+')) {
        const auto b = product();
        v = check(checked::add(v, b), at, "+", v, b);
      } else if (eat('-')) {
        const auto b = product();
        v = check(checked::sub(v, b), at, "-", v, b);
      } else {
        return v;
      }
    }
  }
  std::int64_t product() {
    auto v = unary();
    for (;;) {
      skip();
      const std::size_t at = i_;
      if (eat('*')) {
        const auto b = unary();
        v = check(checked::mul(v, b), at, "*", v, b);
      } else if (eat('/')) {
        const auto b = unary();
        v = check(checked::div(v, b), at, "/", v, b);
      } else if (eat('%')) {  // floored: non-negative for a positive divisor (docs/rack.md)
        const auto b = unary();
        v = check(checked::mod_floor(v, b), at, "%", v, b);
      } else {
        return v;
      }
    }
  }
  std::int64_t unary() {
    skip();
    const std::size_t at = i_;
    if (eat('-')) {
      Nest n(*this, at);
      const auto a = unary();
      return check(checked::neg(a), at, "-", a, a, true);
    }
    if (eat('+')) {
      Nest n(*this, at);
      return unary();
    }
    return primary();
  }
  int link_arg(std::int64_t l, std::size_t at) const {
    if (l < 0 || l >= cfg_.topology.links) fail_at(at, fmt::format("link {} out of range 0..{}", l, cfg_.topology.links - 1));
    return int(l);
  }
  // A decimal, 0x hexadecimal or 0-prefixed octal literal (as strtoll with base 0 reads it).
  std::int64_t number() {
    // Decimal, 0x hex or 0b binary (common/parse.hpp); beyond 64 bits is an error, not a wrap.
    const std::size_t at = i_;
    const auto lit = scan_int(std::string_view(s_).substr(i_), false);
    if (lit.status != IntScan::Status::Ok)
      fail_at(at, fmt::format("number '{}' does not fit in 64 bits", shorten(s_.substr(at, std::max<std::size_t>(lit.used, 1)))));
    i_ += lit.used;
    return static_cast<std::int64_t>(lit.value);
  }
  std::int64_t primary() {
    skip();
    if (eat('(')) {
      Nest n(*this, i_ - 1);
      auto v = sum();
      if (!eat(')')) fail("expected ')'");
      return v;
    }
    if (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_]))) return number();
    const std::size_t at = i_;  // errors about a name or call point at its start
    std::string id;
    while (i_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[i_])) || s_[i_] == '_')) id += s_[i_++];
    if (id.empty()) fail_at(at, i_ < s_.size() ? fmt::format("unexpected '{}'", s_[i_]) : "unexpected end");
    if (id == "chip") return chip_;
    if (id == "nchips") return cfg_.chips;
    if (!eat('(')) fail_at(at, fmt::format("unknown name '{}' (chip, nchips, peer(l), peer_link(l), link_to(c), hop(l), ser(l), lat(l))", shorten(id)));
    Nest n(*this, at);
    auto a = sum();
    if (!eat(')')) fail("expected ')'");
    if (id == "link_to") {
      if (a < 0 || a >= cfg_.chips) fail_at(at, fmt::format("chip {} out of range", a));
      int l = cfg_.topology.link_to(chip_, int(a));
      if (l < 0) fail_at(at, fmt::format("chip {} has no link to chip {}", chip_, a));
      return l;
    }
    if (id != "peer" && id != "peer_link" && id != "hop" && id != "ser" && id != "lat")
      fail_at(at, fmt::format("unknown function '{}'", shorten(id)));
    const int l = link_arg(a, at);
    const auto& port = cfg_.topology.port(chip_, l);
    if (port.peer < 0) fail_at(at, fmt::format("link {} of chip {} is not wired", l, chip_));
    if (id == "peer") return port.peer;
    if (id == "peer_link") return port.peer_link;
    const auto t = link_timing(cfg_, chip_, l);
    if (id == "hop") return t.hop();
    if (id == "ser") return t.serialisation;
    return t.latency;
  }

  const std::string& s_;
  const RackConfig& cfg_;
  int chip_;
  std::string key_;
  std::string where_;
  int line_, col_;
  std::size_t i_ = 0;
  int depth_ = 0;
};

// A start delay is a leading NOP on every queue, (1 << 24) - 1 cycles per word: this bounds it
// to 65536 words.
constexpr std::int64_t kMaxStartDelay = (std::int64_t(1) << 40) - 1;

// An integer, or an expression in quotes evaluated for `chip`; errors name the manifest
// `origin` with the line and column.
std::int64_t value_of(const toml::node& n, const RackConfig& cfg, int chip, const std::string& key,
                      const std::string& origin) {
  if (n.is_integer()) return *n.value<std::int64_t>();
  if (n.is_string()) {
    const auto& src = n.source();
    return ExprParser(*n.value<std::string>(), cfg, chip, key, origin, int(src.begin.line), int(src.begin.column))
        .parse();
  }
  throw ConfigError(key, fmt::format("in {}: expected an integer or an expression in quotes", origin));
}

std::string subst_chip(std::string s, int chip) {
  for (std::size_t p; (p = s.find("{chip}")) != std::string::npos;) s.replace(p, 6, std::to_string(chip));
  return s;
}

// Backslashes and double quotes escaped, for a file name inside "..." (TOML and assembly alike).
std::string quote(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out += '\\';
    out += c;
  }
  return out;
}

std::string abs_in(const std::string& base, const std::string& f) {
  fs::path p(f);
  return p.is_absolute() ? f : (fs::path(base) / p).lexically_normal().string();
}

// Assembles (text, params) once; identical inputs share the object.
class AsmCache {
 public:
  AsmCache(const RackConfig& cfg, const assembler::Options& opt) : cfg_(cfg), opt_(opt) {}
  std::pair<std::shared_ptr<const obj::Program>, std::shared_ptr<const SourceMap>> get(const std::string& text,
                                                                                      const std::string& name, int chip,
                                                                                      const std::string& file) {
    const int pi = cfg_.chip_params[std::size_t(chip)];
    auto key = std::make_tuple(text, name, pi);
    auto it = cache_.find(key);
    if (it != cache_.end()) return it->second;
    assembler::Result r = file.empty() ? assembler::assemble_string(text, name, cfg_.chip(chip), opt_)
                                       : assembler::assemble_file(file, cfg_.chip(chip), opt_);
    auto sm = std::make_shared<SourceMap>();
    sm->schedule = std::move(r.schedule);
    auto ob = std::make_shared<const obj::Program>(std::move(r.program));
    auto v = std::make_pair(std::shared_ptr<const obj::Program>(ob), std::shared_ptr<const SourceMap>(sm));
    cache_.emplace(key, v);
    return v;
  }

 private:
  const RackConfig& cfg_;
  const assembler::Options& opt_;
  std::map<std::tuple<std::string, std::string, int>,
           std::pair<std::shared_ptr<const obj::Program>, std::shared_ptr<const SourceMap>>>
      cache_;
};

}  // namespace

std::int64_t eval_chip_expr(const std::string& expr, const RackConfig& cfg, int chip, const std::string& key) {
  return ExprParser(expr, cfg, chip, key, "", 0, 0).parse();
}

RackProgram assemble_sources(const RackConfig& cfg, const std::vector<std::string>& sources, const std::string& name,
                             const assembler::Options& opt) {
  if (int(sources.size()) != cfg.chips)
    throw Error(fmt::format("{}: {} sources for a rack of {} chips", name, sources.size(), cfg.chips));
  RackProgram p;
  p.origin = name;
  p.chips.resize(std::size_t(cfg.chips));
  AsmCache cache(cfg, opt);
  for (int c = 0; c < cfg.chips; ++c) {
    const auto& s = sources[std::size_t(c)];
    if (s.empty()) continue;
    auto [ob, sm] = cache.get(s, name, c, "");
    auto& cp = p.chips[std::size_t(c)];
    cp.object = ob;
    cp.source = sm;
    cp.label = name;
  }
  return p;
}

RackProgram assemble_generated(const RackConfig& cfg, const Generated& g, const std::string& name,
                               const assembler::Options& opt) {
  auto p = assemble_sources(cfg, g.sources, name, opt);
  for (std::size_t c = 0; c < g.delays.size() && c < p.chips.size(); ++c) p.chips[c].start_delay = g.delays[c];
  return p;
}

RackProgram load_program(const std::string& path, const RackConfig& cfg, const assembler::Options& opt) {
  if (path.ends_with(".lpo") || path.ends_with(".lpa")) {
    std::error_code ec;
    const fs::path abs = fs::absolute(path, ec);
    const std::string quoted = quote(ec ? path : abs.string());
    std::string m = fmt::format("[[program]]\nchips = \"all\"\n{} = \"{}\"\n", path.ends_with(".lpo") ? "object" : "source", quoted);
    auto dir = fs::path(path).parent_path().string();
    return parse_manifest(m, path, dir.empty() ? "." : dir, cfg, opt);
  }
  return load_manifest(path, cfg, opt);
}

RackProgram load_manifest(const std::string& path, const RackConfig& cfg, const assembler::Options& opt) {
  std::ifstream f(path);
  if (!f) throw ConfigError("program", fmt::format("cannot open manifest '{}'", path));
  std::stringstream ss;
  ss << f.rdbuf();
  auto dir = fs::path(path).parent_path().string();
  return parse_manifest(ss.str(), path, dir.empty() ? "." : dir, cfg, opt);
}

RackProgram parse_manifest(const std::string& text, const std::string& origin, const std::string& base_dir,
                           const RackConfig& cfg, const assembler::Options& opt) {
  check_toml_key_depth(text, origin);  // before toml++ recurses on a hostile dotted key
  toml::table t;
  try {
    t = toml::parse(text, origin);
  } catch (const toml::parse_error& e) {
    const auto& s = e.source();
    throw ConfigError(origin, fmt::format("{}:{}: {}", s.begin.line, s.begin.column, std::string(e.description())));
  }
  auto unknown = [&](const std::string& key) { return ConfigError(key, fmt::format("unknown key in {}", origin)); };
  RackProgram prog;
  prog.origin = origin;
  prog.chips.resize(std::size_t(cfg.chips));
  std::vector<std::string> owner(std::size_t(cfg.chips));
  std::vector<std::string> delay_owner(std::size_t(cfg.chips));  // who set the chip's start delay
  const toml::array* blocks = nullptr;
  const toml::table* gen = nullptr;
  for (const auto& [k, v] : t) {
    const std::string key(k.str());
    if (key == "description") {
      if (!v.is_string()) throw ConfigError(key, "expected a string");
    } else if (key == "program") {
      blocks = v.as_array();
      if (!blocks) throw ConfigError(key, "expected [[program]] tables");
    } else if (key == "generate") {
      gen = v.as_table();
      if (!gen) throw ConfigError(key, "expected a table [generate]");
    } else {
      throw unknown(key);
    }
  }
  auto opt2 = opt;
  opt2.include_dirs.push_back(base_dir);

  if (gen) {
    std::string kind;
    std::string chips = "all";
    std::int64_t vectors = 16, period = 0;
    std::string dtype = "i32";
    for (const auto& [k, v] : *gen) {
      const std::string key = "generate." + std::string(k.str());
      if (k.str() == "kind" && v.is_string()) kind = *v.value<std::string>();
      else if (k.str() == "chips" && v.is_string()) chips = *v.value<std::string>();
      else if (k.str() == "vectors" && v.is_integer()) vectors = *v.value<std::int64_t>();
      else if (k.str() == "period" && v.is_integer()) period = *v.value<std::int64_t>();
      else if (k.str() == "dtype" && v.is_string()) dtype = *v.value<std::string>();
      else if (k.str() == "kind" || k.str() == "chips" || k.str() == "vectors" || k.str() == "period" || k.str() == "dtype")
        throw ConfigError(key, "wrong type");
      else throw unknown(key);
    }
    auto order = parse_chip_list(chips, cfg.chips, "generate.chips");
    Generated g;
    if (kind == "pipeline") {
      if (vectors < 1 || vectors > 1'000'000) throw ConfigError("generate.vectors", "out of range 1..1000000");
      PipelineSpec ps;
      ps.order = order;
      ps.vectors = int(vectors);
      ps.period = int(check_int(period, "generate.period", IntRange{0, 1 << 30, "cycles"}));
      g = gen_pipeline(cfg, ps);
    } else if (kind == "allreduce") {
      AllReduceSpec as;
      as.order = order;
      as.dtype = dtype;
      g = gen_allreduce(cfg, as);
    } else {
      throw ConfigError("generate.kind", fmt::format("unknown generator '{}' (pipeline, allreduce)", kind));
    }
    auto p = assemble_generated(cfg, g, fmt::format("{}[{}]", origin, kind), opt2);
    for (int c = 0; c < cfg.chips; ++c)
      if (p.chips[std::size_t(c)].object) {
        prog.chips[std::size_t(c)] = p.chips[std::size_t(c)];
        owner[std::size_t(c)] = "generate";
        delay_owner[std::size_t(c)] = "generate";
      }
  }

  AsmCache cache(cfg, opt2);
  for (std::size_t i = 0; blocks && i < blocks->size(); ++i) {
    const std::string base = fmt::format("program[{}]", i);
    const auto* b = blocks->get(i)->as_table();
    if (!b) throw ConfigError(base, "expected a table");
    const toml::node* chips_n = nullptr;
    const toml::node* delay_n = nullptr;
    std::string source, object;
    const toml::table *consts = nullptr, *regs = nullptr, *inputs = nullptr, *outputs = nullptr, *dma_in = nullptr,
                      *dma_out = nullptr;
    for (const auto& [k, v] : *b) {
      const std::string key = base + "." + std::string(k.str());
      // The node is an argument: clang 14 does not capture structured bindings (C++20).
      auto table = [&key](const toml::node& n) {
        const auto* tt = n.as_table();
        if (!tt) throw ConfigError(key, "expected a table { name = value, ... }");
        return tt;
      };
      if (k.str() == "chips") chips_n = &v;
      else if (k.str() == "start_delay") delay_n = &v;
      else if (k.str() == "source" || k.str() == "object") {
        if (!v.is_string()) throw ConfigError(key, "expected a file name");
        (k.str() == "source" ? source : object) = *v.value<std::string>();
      } else if (k.str() == "consts") consts = table(v);
      else if (k.str() == "regs") regs = table(v);
      else if (k.str() == "inputs") inputs = table(v);
      else if (k.str() == "outputs") outputs = table(v);
      else if (k.str() == "dma_in") dma_in = table(v);
      else if (k.str() == "dma_out") dma_out = table(v);
      else throw unknown(key);
    }
    if (!chips_n) throw ConfigError(base + ".chips", fmt::format("missing in {}", origin));
    std::vector<int> list;
    if (chips_n->is_integer()) list = parse_chip_list(std::to_string(*chips_n->value<std::int64_t>()), cfg.chips, base + ".chips");
    else if (chips_n->is_string()) list = parse_chip_list(*chips_n->value<std::string>(), cfg.chips, base + ".chips");
    else throw ConfigError(base + ".chips", "expected a chip list such as \"0-7\"");
    if (!source.empty() && !object.empty()) throw ConfigError(base + ".object", "give a source or an object, not both");
    if (consts && source.empty()) throw ConfigError(base + ".consts", "consts apply to a source (.lpa)");

    std::shared_ptr<const obj::Program> shared_obj;
    if (!object.empty()) shared_obj = std::make_shared<const obj::Program>(obj::load_object(abs_in(base_dir, object)));
    const std::string src_path = source.empty() ? "" : abs_in(base_dir, source);
    std::error_code ec;  // (a name too long for the file system is a "cannot open", not an exception)
    if (!src_path.empty() && !fs::is_regular_file(src_path, ec))
      throw ConfigError(base + ".source", fmt::format("cannot open '{}'", src_path));

    for (int c : list) {
      auto& cp = prog.chips[std::size_t(c)];
      if (!source.empty() || !object.empty()) {
        if (!owner[std::size_t(c)].empty())
          throw ConfigError(base + ".chips", fmt::format("chip {} already has a program (from {})", c, owner[std::size_t(c)]));
        owner[std::size_t(c)] = base;
      }
      if (shared_obj) {
        cp.object = shared_obj;
        cp.label = object;
      }
      if (!source.empty()) {
        std::string wrapper;
        if (consts) {
          for (const auto& [ck, cv] : *consts) {
            const std::string cname(ck.str()), ckey = base + ".consts." + cname;
            // The name goes into assembly text: an identifier, nothing that could end the line.
            const bool ident = !cname.empty() && (std::isalpha(static_cast<unsigned char>(cname[0])) || cname[0] == '_') &&
                               std::all_of(cname.begin(), cname.end(), [](char ch) {
                                 return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_';
                               });
            if (!ident) throw ConfigError(ckey, fmt::format("in {}: a constant name is an identifier ([A-Za-z_][A-Za-z0-9_]*)", origin));
            wrapper += fmt::format(".const {} = {}\n", cname, value_of(cv, cfg, c, ckey, origin));
          }
          // The wrapper is named after the source, in its directory: include it by file name.
          wrapper += fmt::format(".include \"{}\"\n", quote(std::filesystem::path(src_path).filename().string()));
        }
        auto [ob, sm] = cache.get(wrapper, src_path + ".consts", c, consts ? "" : src_path);
        cp.object = ob;
        cp.source = sm;
        cp.label = source;
      }
      if (delay_n) {
        // Cycles after the chip's counter 0 at which its program starts (a leading NOP, as a
        // start skew): one object serves chips that differ only in when they start.
        const std::string key = base + ".start_delay";
        if (!delay_n->is_integer() && !delay_n->is_string())
          throw ConfigError(key, fmt::format("in {}: expected a number of cycles (an integer or an expression in quotes)", origin));
        const std::int64_t v = value_of(*delay_n, cfg, c, key, origin);
        if (v < 0 || v > kMaxStartDelay)
          throw ConfigError(key, fmt::format("in {}: chip {}: start delay {} out of range 0..{} cycles", origin, c, v, kMaxStartDelay));
        if (!delay_owner[std::size_t(c)].empty())
          throw ConfigError(key, fmt::format("in {}: chip {} already has a start delay (from {})", origin, c, delay_owner[std::size_t(c)]));
        delay_owner[std::size_t(c)] = base;
        cp.start_delay = v;
      }
      if (regs)
        for (const auto& [rk, rv] : *regs) {
          const std::string rname(rk.str());
          const std::string key = base + ".regs." + rname;
          if (rname.size() < 2 || rname[0] != 'r' || rname.find_first_not_of("0123456789", 1) != std::string::npos)
            throw ConfigError(key, "registers are r1..r15");
          const int r = int(parse_int(std::string_view(rname).substr(1), key, IntRange{1, 15}));
          const auto v = value_of(rv, cfg, c, key, origin);
          if (v < -(std::int64_t(1) << 31) || v > 0xFFFFFFFFll) throw ConfigError(key, fmt::format("{} does not fit 32 bits", v));
          cp.regs.emplace_back(r, std::uint32_t(v));
        }
      // Inputs are relative to the manifest, outputs to the working directory.
      auto files = [&](const toml::table* tt, const char* what, bool input, auto&& add) {
        if (!tt) return;
        for (const auto& [fk, fv] : *tt) {
          const std::string key = base + "." + what + "." + std::string(fk.str());
          if (!fv.is_string()) throw ConfigError(key, "expected a file name (may contain {chip})");
          const std::string f = subst_chip(*fv.template value<std::string>(), c);
          add(std::string(fk.str()), input ? abs_in(base_dir, f) : f, key);
        }
      };
      files(inputs, "inputs", true, [&](const std::string& s, const std::string& f, const std::string&) { cp.inputs.emplace_back(s, f); });
      files(outputs, "outputs", false, [&](const std::string& s, const std::string& f, const std::string&) { cp.outputs.emplace_back(s, f); });
      auto chan = [&](const std::string& s, const std::string& key) {
        if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos) throw ConfigError(key, "DMA channels are numbers");
        return int(parse_int(s, key, IntRange{0, 255}));
      };
      files(dma_in, "dma_in", true, [&](const std::string& s, const std::string& f, const std::string& key) { cp.dma_in.emplace_back(chan(s, key), f); });
      files(dma_out, "dma_out", false, [&](const std::string& s, const std::string& f, const std::string& key) { cp.dma_out.emplace_back(chan(s, key), f); });
    }
  }
  return prog;
}

}  // namespace lpu::rack
