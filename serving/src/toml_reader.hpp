#pragma once
// Internal to lpu_serving: typed keys from a parsed TOML table, each error a ConfigError naming
// the key, the file and the line:column of the value; unknown keys are errors too (the files of
// configs/gpu and configs/serving are read through it, and found and read by read_system_file).
#include <fmt/format.h>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <toml++/toml.h>

#include "lpu/arch/params.hpp"
#include "lpu/common/errors.hpp"
#include "lpu/common/parse.hpp"

namespace lpu::serving::detail {

// A system file's path and text. `name_or_path` is a path, or a bare name (no '/', not ending in
// .toml) of CONFIG_DIR/<folder>/<name>.toml. A file that cannot be opened is
// ConfigError("system", "cannot open 'PATH' (<what> live in CONFIG_DIR/<folder><note>)").
struct SystemFile {
  std::string path, text;
};
inline SystemFile read_system_file(const std::string& name_or_path, const std::string& folder, const std::string& what,
                                   const std::string& note = "") {
  SystemFile file{name_or_path, ""};
  if (name_or_path.find('/') == std::string::npos && !name_or_path.ends_with(".toml"))
    file.path = config_dir() + "/" + folder + "/" + name_or_path + ".toml";
  std::ifstream f(file.path);
  if (!f)
    throw ConfigError("system", fmt::format("cannot open '{}' ({} live in {}/{}{})", file.path, what, config_dir(), folder, note));
  std::stringstream ss;
  ss << f.rdbuf();
  file.text = ss.str();
  return file;
}

// Parses TOML text; a syntax error becomes ConfigError(origin, "line:col: ...").
inline toml::table parse_toml(const std::string& text, const std::string& origin) {
  check_toml_key_depth(text, origin);  // before toml++ recurses on a hostile dotted key
  try {
    return toml::parse(text, origin);
  } catch (const toml::parse_error& e) {
    const auto& s = e.source();
    throw ConfigError(origin, fmt::format("{}:{}: {}", s.begin.line, s.begin.column, std::string(e.description())));
  }
}

// Reads typed keys ("table.key") from a table, remembers which keys it read, and names key, file
// and line in every error. Keys nest one table deep.
class Reader {
 public:
  Reader(const toml::table& t, std::string origin) : t_(t), origin_(std::move(origin)) {}

  bool has(const std::string& key) const { return bool(t_.at_path(key)); }

  double real(const std::string& key, double lo, double hi, bool lo_open = false) {
    used_.insert(key);
    auto node = t_.at_path(key);
    if (!node) throw ConfigError(key, fmt::format("missing in {}", origin_));
    return check_real(key, node, lo, hi, lo_open);
  }
  double real_or(const std::string& key, double dflt, double lo, double hi, bool lo_open = false) {
    used_.insert(key);
    auto node = t_.at_path(key);
    if (!node) return dflt;
    return check_real(key, node, lo, hi, lo_open);
  }

  int integer(const std::string& key, int lo, int hi) {
    used_.insert(key);
    auto node = t_.at_path(key);
    if (!node) throw ConfigError(key, fmt::format("missing in {}", origin_));
    return check_int(key, node, lo, hi);
  }
  int integer_or(const std::string& key, int dflt, int lo, int hi) {
    used_.insert(key);
    auto node = t_.at_path(key);
    if (!node) return dflt;
    return check_int(key, node, lo, hi);
  }

  std::string text(const std::string& key, const std::string& dflt) {
    used_.insert(key);
    auto node = t_.at_path(key);
    if (!node) return dflt;
    auto v = node.value<std::string>();
    if (!v || !node.is_string()) throw ConfigError(key, fmt::format("{}: expected a string", where(node)));
    return *v;
  }
  std::string required_text(const std::string& key) {
    if (!has(key)) throw ConfigError(key, fmt::format("missing in {}", origin_));
    return text(key, "");
  }

  // Every key of the file must have been read (a misspelt key is an error, not a default).
  void check_unknown() const {
    for (const auto& [k, v] : t_) {
      const std::string key(k.str());
      if (const auto* sub = v.as_table()) {
        for (const auto& [k2, v2] : *sub) {
          const std::string full = key + "." + std::string(k2.str());
          if (!used_.count(full)) throw ConfigError(full, fmt::format("{}: unknown key", where(v2)));
        }
      } else if (!used_.count(key)) {
        throw ConfigError(key, fmt::format("{}: unknown key", where(v)));
      }
    }
  }

  const std::string& origin() const { return origin_; }

 private:
  double check_real(const std::string& key, toml::node_view<const toml::node> node, double lo, double hi, bool lo_open) const {
    auto v = node.value<double>();
    if (!v || !node.is_number()) throw ConfigError(key, fmt::format("{}: expected a number", where(node)));
    const bool ok = std::isfinite(*v) && (lo_open ? *v > lo : *v >= lo) && *v <= hi;
    if (!ok)
      throw ConfigError(key, fmt::format("{}: {:g} is out of range {}{:g}..{:g}", where(node), *v, lo_open ? "(exclusive) " : "", lo, hi));
    return *v;
  }
  int check_int(const std::string& key, toml::node_view<const toml::node> node, int lo, int hi) const {
    if (!node.is_integer()) throw ConfigError(key, fmt::format("{}: expected an integer", where(node)));
    const auto v = *node.value<std::int64_t>();
    if (v < lo || v > hi) throw ConfigError(key, fmt::format("{}: {} is out of range {}..{}", where(node), v, lo, hi));
    return int(v);
  }
  std::string where(const toml::node& n) const {
    const auto& s = n.source();
    return fmt::format("{}:{}:{}", origin_, s.begin.line, s.begin.column);
  }
  std::string where(toml::node_view<const toml::node> n) const { return n.node() ? where(*n.node()) : origin_; }

  const toml::table& t_;
  std::string origin_;
  std::set<std::string> used_;
};

}  // namespace lpu::serving::detail
