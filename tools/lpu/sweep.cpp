// lpu sweep: grid, commands, metrics and CSV (pure parts; the processes are in cmd_sweep.cpp).
#include "sweep.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <toml++/toml.h>

#include "lpu/common/errors.hpp"
#include "lpu/common/parse.hpp"
#include "lpu/rack/config.hpp"

namespace lpu::tools::sweep {

namespace {

bool parse_number(const std::string& s, double& out, bool& integer) {
  const auto v = scan_double(s);  // common/parse.hpp: the whole text, finite
  if (!v) return false;
  out = *v;
  integer = s.find_first_of(".eE") == std::string::npos;
  return true;
}

bool valid_name(const std::string& s) {
  if (s.empty() || !(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

// FIRST:LAST:STEP, when all three are numbers.
bool expand_range(const std::string& item, const std::string& key, std::vector<std::string>& out) {
  auto parts = split(item, ':');
  if (parts.size() != 3) return false;
  double v[3];
  bool ints[3];
  for (int i = 0; i < 3; ++i)
    if (!parse_number(parts[std::size_t(i)], v[i], ints[i])) return false;
  const double first = v[0], last = v[1], step = v[2];
  if (step == 0 || (last - first) * step < 0)
    throw Error(fmt::format("--set {}: range '{}' never reaches {} from {} in steps of {}", key, item, parts[1], parts[0],
                            parts[2]));
  const double n = std::floor((last - first) / step + 1e-9) + 1;
  if (n > 100000) throw Error(fmt::format("--set {}: range '{}' has {:.0f} values (at most 100000)", key, item, n));
  const bool integer = ints[0] && ints[1] && ints[2];
  for (long i = 0; i < long(n); ++i) {
    const double x = first + double(i) * step;
    out.push_back(integer ? fmt::format("{}", std::llround(x)) : fmt::format("{:.12g}", x));
  }
  return true;
}

std::string trim(const std::string& s) {
  auto a = s.find_first_not_of(" \t");
  if (a == std::string::npos) return "";
  auto b = s.find_last_not_of(" \t");
  return s.substr(a, b - a + 1);
}

}  // namespace

std::vector<std::string> split_values(const std::string& text, const std::string& key) {
  std::vector<std::string> items;
  std::string cur;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 1 < text.size() && text[i + 1] == ',') {
      cur += ',';
      ++i;
    } else if (text[i] == ',') {
      items.push_back(cur);
      cur.clear();
    } else {
      cur += text[i];
    }
  }
  items.push_back(cur);
  std::vector<std::string> out;
  for (const auto& it : items) {
    if (it.empty()) throw Error(fmt::format("--set {}: empty value in '{}'", key, text));
    if (!expand_range(it, key, out)) out.push_back(it);
  }
  return out;
}

Param parse_param(const std::string& spec) {
  const auto eq = spec.find('=');
  if (eq == std::string::npos || eq == 0)
    throw Error(fmt::format("--set '{}' must look like KEY=v1,v2,... (e.g. latency.mem_read=5,9)", spec));
  Param p;
  p.spec_key = trim(spec.substr(0, eq));
  if (p.spec_key.empty() || p.spec_key.find_first_of(" \t{}") != std::string::npos)
    throw Error(fmt::format("--set '{}': '{}' is not a parameter name", spec, p.spec_key));
  if (p.spec_key[0] == '@') {
    p.kind = ParamKind::Placeholder;
    p.key = p.spec_key.substr(1);
    if (!valid_name(p.key))
      throw Error(fmt::format("--set '{}': a placeholder is @NAME with NAME of letters, digits and _", spec));
    if (p.key == "run" || p.key == "out" || p.key == "stats")
      throw Error(fmt::format("--set '{}': {{{}}} is built in (run number, output directory, statistics file)", spec,
                              p.key));
    p.column = p.key;
  } else if (p.spec_key.rfind("rack.", 0) == 0) {
    p.kind = ParamKind::Rack;
    p.key = p.spec_key.substr(5);
    if (p.key.empty()) throw Error(fmt::format("--set '{}': rack.KEY needs a key of the rack file", spec));
    p.column = p.spec_key;
  } else {
    p.kind = ParamKind::Preset;
    p.key = p.spec_key;
    p.column = p.spec_key;
  }
  if (eq + 1 == spec.size()) throw Error(fmt::format("--set '{}': no values", spec));
  p.values = split_values(spec.substr(eq + 1), p.spec_key);
  return p;
}

std::vector<std::vector<std::string>> grid(const std::vector<Param>& params) {
  std::vector<std::vector<std::string>> out{{}};
  for (const auto& p : params) {
    std::vector<std::vector<std::string>> next;
    next.reserve(out.size() * p.values.size());
    for (const auto& combo : out)
      for (const auto& v : p.values) {
        auto c = combo;
        c.push_back(v);
        next.push_back(std::move(c));
      }
    out = std::move(next);
  }
  return out;
}

std::string substitute(const std::string& word, const std::map<std::string, std::string>& values,
                       std::vector<std::string>* used) {
  std::string out;
  for (std::size_t i = 0; i < word.size(); ++i) {
    const char c = word[i];
    if (c == '{' && i + 1 < word.size() && word[i + 1] == '{') {
      out += '{';
      ++i;
    } else if (c == '}' && i + 1 < word.size() && word[i + 1] == '}') {
      out += '}';
      ++i;
    } else if (c == '{') {
      const auto close = word.find('}', i);
      if (close == std::string::npos) throw Error(fmt::format("'{}': unmatched '{{' (write {{{{ for a brace)", word));
      const std::string name = word.substr(i + 1, close - i - 1);
      auto it = values.find(name);
      if (it == values.end())
        throw Error(fmt::format("'{}': no parameter for {{{}}} (add --set @{}=v1,v2,...; built in: {{run}}, {{out}}, {{stats}})", word,
                                name, name));
      out += it->second;
      if (used) used->push_back(name);
      i = close;
    } else if (c == '}') {
      throw Error(fmt::format("'{}': unmatched '}}' (write }}}} for a brace)", word));
    } else {
      out += c;
    }
  }
  return out;
}

std::vector<Run> plan(const std::vector<Param>& params, const PlanOptions& o) {
  if (o.command.empty()) throw Error("no command: put it after --, e.g. lpu sweep --set latency.mem_read=5,9 -- run x.lpo");
  std::set<std::string> columns;
  for (const auto& p : params) {
    if (!columns.insert(p.column).second) throw Error(fmt::format("--set {} is given twice", p.spec_key));
    if (p.column == "run" || p.column == "status" || p.column == "wall_s")
      throw Error(fmt::format("--set {}: '{}' is a column of its own in sweep.csv", p.spec_key, p.column));
  }
  if (!o.stdout_json)
    for (const auto& w : o.command)
      if (w == "--stats" || w.rfind("--stats=", 0) == 0)
        throw Error("the command has --stats: the sweep passes --stats DIR/run_N.json itself (or use --stdout-json)");
  const bool rack_params =
      std::any_of(params.begin(), params.end(), [](const Param& p) { return p.kind == ParamKind::Rack; });
  const auto combos = grid(params);
  std::vector<Run> runs;
  runs.reserve(combos.size());
  for (std::size_t i = 0; i < combos.size(); ++i) {
    Run r;
    r.index = int(i);
    r.values = combos[i];
    const std::string base = (std::filesystem::path(o.out_dir) / fmt::format("run_{}", i)).string();
    r.stats_path = base + ".json";
    r.out_path = base + ".out";
    r.err_path = base + ".err";
    std::map<std::string, std::string> vals{{"run", std::to_string(i)}, {"out", o.out_dir}, {"stats", r.stats_path}};
    for (std::size_t k = 0; k < params.size(); ++k) {
      if (params[k].kind == ParamKind::Placeholder) vals[params[k].key] = r.values[k];
      r.label += fmt::format("{}{}={}", r.label.empty() ? "" : " ", params[k].spec_key, r.values[k]);
    }
    std::vector<std::string> used;
    for (const auto& w : o.command) r.argv.push_back(substitute(w, vals, &used));
    if (i == 0)
      for (const auto& p : params)
        if (p.kind == ParamKind::Placeholder && std::find(used.begin(), used.end(), p.key) == used.end())
          throw Error(fmt::format("--set @{}: the command never uses {{{}}}", p.key, p.key));
    // The rack file the command names, if any.
    std::size_t rack_arg = std::string::npos;
    bool rack_inline = false;
    for (std::size_t k = 0; k < r.argv.size(); ++k) {
      if (r.argv[k] == "--rack" && k + 1 < r.argv.size()) {
        rack_arg = k + 1;
        break;
      }
      if (r.argv[k].rfind("--rack=", 0) == 0) {
        rack_arg = k;
        rack_inline = true;
        break;
      }
    }
    if (rack_params && rack_arg == std::string::npos)
      throw Error("rack.* parameters need a command that takes a rack file (--rack FILE)");
    for (std::size_t k = 0; k < params.size(); ++k) {
      const auto& p = params[k];
      if (p.kind == ParamKind::Rack) r.rack_sets.push_back(p.key + "=" + r.values[k]);
      else if (p.kind == ParamKind::Preset && rack_arg != std::string::npos)
        r.rack_sets.push_back("chip.set+=" + p.key + "=" + r.values[k]);
      else if (p.kind == ParamKind::Preset) {
        r.argv.push_back("--set");
        r.argv.push_back(p.key + "=" + r.values[k]);
      }
    }
    if (!r.rack_sets.empty()) {
      r.rack_path = base + ".rack.toml";
      if (rack_inline) {
        r.rack_source = r.argv[rack_arg].substr(7);
        r.argv[rack_arg] = "--rack=" + r.rack_path;
      } else {
        r.rack_source = r.argv[rack_arg];
        r.argv[rack_arg] = r.rack_path;
      }
    }
    // {stats} in the command places the statistics file itself (e.g. inside sh -c '...').
    const bool placed = std::find(used.begin(), used.end(), "stats") != used.end();
    if (!o.stdout_json && !placed) {
      r.argv.push_back("--stats");
      r.argv.push_back(r.stats_path);
    }
    runs.push_back(std::move(r));
  }
  return runs;
}

void write_rack(const Run& run) {
  std::ifstream f(run.rack_source);
  if (!f) throw ConfigError("rack", fmt::format("cannot open rack file '{}'", run.rack_source));
  std::stringstream ss;
  ss << f.rdbuf();
  std::string text = rack::apply_rack_overrides(ss.str(), run.rack_sets, run.rack_source);
  // The derived file lives in the sweep's directory: a relative preset path must still resolve
  // (relative to the original rack file, or to the working directory when the sweep set it).
  auto t = toml::parse(text, run.rack_path);
  if (auto* chip = t["chip"].as_table()) {
    if (auto preset = (*chip)["preset"].value<std::string>()) {
      const bool is_path = preset->find('/') != std::string::npos || preset->ends_with(".toml");
      if (is_path && !std::filesystem::path(*preset).is_absolute()) {
        const bool swept = std::any_of(run.rack_sets.begin(), run.rack_sets.end(),
                                       [](const std::string& s) { return s.rfind("chip.preset=", 0) == 0; });
        auto base = swept ? std::filesystem::current_path() : std::filesystem::path(run.rack_source).parent_path();
        chip->insert_or_assign("preset", std::filesystem::absolute(base / *preset).lexically_normal().string());
        std::stringstream out;
        out << t << "\n";
        text = out.str();
      }
    }
  }
  text = fmt::format("# {} with {} (lpu sweep run {})\n", run.rack_source, fmt::join(run.rack_sets, ", "), run.index) + text;
  auto dir = std::filesystem::path(run.rack_path).parent_path().string();
  (void)rack::parse_rack(text, run.rack_path, dir.empty() ? "." : dir);  // validates; throws ConfigError
  std::ofstream w(run.rack_path);
  if (!w) throw Error(fmt::format("cannot write {}", run.rack_path));
  w << text;
}

namespace {
void flatten_into(const nlohmann::json& j, const std::string& prefix, Flat& out) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it)
      flatten_into(it.value(), prefix.empty() ? it.key() : prefix + "." + it.key(), out);
  } else if (j.is_array()) {
    for (std::size_t i = 0; i < j.size(); ++i)
      flatten_into(j[i], prefix.empty() ? std::to_string(i) : prefix + "." + std::to_string(i), out);
  } else {
    out.emplace_back(prefix.empty() ? "value" : prefix, j);
  }
}

bool is_index(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool matches(const std::vector<std::string>& pattern, const std::string& key) {
  auto parts = split(key, '.');
  if (parts.size() != pattern.size()) return false;
  for (std::size_t i = 0; i < parts.size(); ++i)
    if (pattern[i] != "*" && pattern[i] != parts[i]) return false;
  return true;
}

const std::vector<std::string> kAggregates{"sum", "min", "max", "avg", "count"};

// "sum(a.*.b)" -> {"sum", "a.*.b"}; "a.b" -> {"", "a.b"}.
std::pair<std::string, std::string> split_metric(const std::string& m) {
  const auto open = m.find('(');
  if (open != std::string::npos && m.back() == ')') {
    const std::string agg = m.substr(0, open);
    if (std::find(kAggregates.begin(), kAggregates.end(), agg) == kAggregates.end())
      throw Error(fmt::format("--metric '{}': '{}' is not one of sum, min, max, avg, count", m, agg));
    return {agg, m.substr(open + 1, m.size() - open - 2)};
  }
  return {"", m};
}
}  // namespace

Flat flatten(const nlohmann::json& j) {
  Flat out;
  flatten_into(j, "", out);
  return out;
}

void check_metric(const std::string& metric) {
  auto [agg, key] = split_metric(metric);
  if (key.empty() || key.find_first_of("(), \t") != std::string::npos)
    throw Error(fmt::format("--metric '{}': expected a key (cycles, rack.link_bytes) or sum(chips.*.KEY)", metric));
  if (agg.empty() && key.find('*') != std::string::npos)
    throw Error(fmt::format("--metric '{}': a pattern with * needs an aggregate, e.g. sum({})", metric, key));
}

std::optional<nlohmann::json> evaluate(const std::string& metric, const Flat& flat) {
  auto [agg, key] = split_metric(metric);
  if (agg.empty()) {
    for (const auto& [k, v] : flat)
      if (k == key) return v;
    return std::nullopt;
  }
  const auto pattern = split(key, '.');
  double sum = 0, lo = 0, hi = 0;
  long n = 0;
  bool all_int = true;
  for (const auto& [k, v] : flat) {
    if (!(v.is_number() || v.is_boolean()) || !matches(pattern, k)) continue;
    const double x = v.is_boolean() ? double(v.get<bool>()) : v.get<double>();
    all_int = all_int && (v.is_number_integer() || v.is_boolean());
    lo = n ? std::min(lo, x) : x;
    hi = n ? std::max(hi, x) : x;
    sum += x;
    ++n;
  }
  if (agg == "count") return nlohmann::json(n);
  if (n == 0) return std::nullopt;
  double r = agg == "sum" ? sum : agg == "min" ? lo : agg == "max" ? hi : sum / double(n);
  if (all_int && agg != "avg" && std::fabs(r) < 9e15) return nlohmann::json(std::int64_t(std::llround(r)));
  return nlohmann::json(r);
}

std::vector<std::string> default_metrics(const std::vector<const Flat*>& runs) {
  // Last key components that are default metrics wherever they appear (outside arrays and
  // host.*), in this order of columns.
  static const std::vector<std::string> names{
      "cycles", "seconds", "tokens", "tokens_per_s", "sram_bytes_read", "sram_bytes_written",
      "sram_bandwidth_bytes_per_s", "mxm_utilisation", "link_bytes", "link_bytes_sent", "link_bandwidth_bytes_per_s",
      "total_j", "average_power_w", "chips_used", "usd_per_million_tokens"};
  auto rank = [&](const std::string& last) -> int {
    auto it = std::find(names.begin(), names.end(), last);
    if (it != names.end()) return int(it - names.begin());
    return last.rfind("tokens_per_s", 0) == 0 ? 3 : -1;  // tokens_per_s_per_user, ..._per_mw
  };
  std::vector<std::pair<int, std::string>> found;
  std::set<std::string> seen;
  std::vector<std::string> chip_arrays;  // "chips." or "rack.chips.": per-chip statistics of a rack
  for (const auto* f : runs)
    for (const auto& [k, v] : *f) {
      if (auto at = k.find("chips.0."); at != std::string::npos && (at == 0 || k[at - 1] == '.')) {
        const std::string prefix = k.substr(0, at + 6);
        if (std::find(chip_arrays.begin(), chip_arrays.end(), prefix) == chip_arrays.end()) chip_arrays.push_back(prefix);
      }
      if (!(v.is_number() || v.is_boolean()) || !seen.insert(k).second) continue;
      auto parts = split(k, '.');
      if (parts[0] == "host" || std::any_of(parts.begin(), parts.end(), is_index)) continue;
      if (int r = rank(parts.back()); r >= 0) found.emplace_back(r, k);
    }
  std::stable_sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::string> out;
  for (auto& [r, k] : found) out.push_back(k);
  for (const auto& prefix : chip_arrays)
    for (const char* key : {"sram_bytes_read", "sram_bytes_written", "mxm_macs", "energy.total_j"}) {
      const std::string m = fmt::format("sum({}*.{})", prefix, key);
      for (const auto* f : runs)
        if (evaluate(m, *f)) {
          out.push_back(m);
          break;
        }
    }
  if (out.empty()) {  // e.g. lpu info --json: every number, outside arrays and host.*
    std::set<std::string> added;
    for (const auto* f : runs)
      for (const auto& [k, v] : *f) {
        auto parts = split(k, '.');
        if (!v.is_number() || parts[0] == "host" || std::any_of(parts.begin(), parts.end(), is_index)) continue;
        if (added.insert(k).second && out.size() < 64) out.push_back(k);
      }
  }
  return out;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

std::vector<std::string> csv_columns(const std::vector<Param>& params, const std::vector<std::string>& metrics) {
  std::vector<std::string> cols{"run"};
  for (const auto& p : params) cols.push_back(p.column);
  cols.push_back("status");
  cols.insert(cols.end(), metrics.begin(), metrics.end());
  cols.push_back("wall_s");
  return cols;
}

std::string csv(const std::vector<Param>& params, const std::vector<Run>& runs, const std::vector<Result>& results,
                const std::vector<std::string>& metrics) {
  std::string out;
  auto cols = csv_columns(params, metrics);
  for (std::size_t i = 0; i < cols.size(); ++i) out += (i ? "," : "") + csv_field(cols[i]);
  out += "\n";
  auto value = [](const nlohmann::json& v) -> std::string {
    if (v.is_number_integer()) return v.dump();
    if (v.is_number_float()) return fmt::format("{}", v.get<double>());
    if (v.is_boolean()) return v.get<bool>() ? "1" : "0";
    if (v.is_string()) return csv_field(v.get<std::string>());
    return "";
  };
  for (std::size_t i = 0; i < runs.size(); ++i) {
    const auto& r = runs[i];
    const auto& res = results[i];
    out += std::to_string(r.index);
    for (const auto& v : r.values) out += "," + csv_field(v);
    out += "," + res.status;
    for (const auto& m : metrics) {
      out += ",";
      if (res.status == "ok")
        if (auto v = evaluate(m, res.flat)) out += value(*v);
    }
    out += res.wall_s > 0 ? fmt::format(",{:.3f}", res.wall_s) : std::string(",");
    out += "\n";
  }
  return out;
}

std::string shell_quote(const std::string& s) {
  if (!s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || std::string_view("_./=:,+@%-").find(c) != std::string_view::npos;
      }))
    return s;
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

PlotSpec parse_plot(const std::string& text) {
  // Split at ':' outside parentheses (a metric may be sum(chips.*.x)).
  std::vector<std::string> parts{""};
  int depth = 0;
  for (char c : text) {
    if (c == '(') ++depth;
    if (c == ')') --depth;
    if (c == ':' && depth == 0) parts.emplace_back();
    else parts.back() += c;
  }
  if (parts.size() < 2 || parts.size() > 3 || std::any_of(parts.begin(), parts.end(), [](auto& p) { return p.empty(); }))
    throw Error(fmt::format("--plot '{}' must look like X:Y or X:Y:SERIES (column names of sweep.csv)", text));
  auto strip = [](std::string s) { return !s.empty() && s[0] == '@' ? s.substr(1) : s; };
  return {strip(parts[0]), strip(parts[1]), parts.size() == 3 ? strip(parts[2]) : ""};
}

}  // namespace lpu::tools::sweep
