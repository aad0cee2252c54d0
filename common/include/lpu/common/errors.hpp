#pragma once
// Typed errors. Library code throws these; only main() turns them into exit codes.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace lpu {

struct SourceLoc {
  std::string file;
  int line = 0;
  int col = 0;
};

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A bad preset or override: names the key (and file when known).
class ConfigError : public Error {
 public:
  ConfigError(std::string key, const std::string& msg)
      : Error("config: " + key + ": " + msg), key_(std::move(key)) {}
  const std::string& key() const { return key_; }

 private:
  std::string key_;
};

// One located message of the assembler.
struct Diagnostic {
  SourceLoc loc;
  std::string message;
};

// Assembly error: rendered as "file:line:col: error: message" like a compiler. The assembler
// reports every independent error of a run (up to a limit) in one AsmError: what() has one line
// per diagnostic; loc() and message() are the first one's.
class AsmError : public Error {
 public:
  AsmError(SourceLoc loc, const std::string& msg) : AsmError(std::vector<Diagnostic>{{std::move(loc), msg}}) {}
  // `diags` must not be empty. `truncated`: more errors were left unreported (a last line says so).
  explicit AsmError(std::vector<Diagnostic> diags, bool truncated = false)
      : Error(render(diags, truncated)), diags_(std::move(diags)), truncated_(truncated) {}
  const SourceLoc& loc() const { return diags_.front().loc; }
  const std::string& message() const { return diags_.front().message; }
  const std::vector<Diagnostic>& diagnostics() const { return diags_; }
  bool truncated() const { return truncated_; }

  static std::string line(const Diagnostic& d) {
    return d.loc.file + ":" + std::to_string(d.loc.line) + ":" + std::to_string(d.loc.col) + ": error: " + d.message;
  }

 private:
  static std::string render(const std::vector<Diagnostic>& diags, bool truncated) {
    std::string s;
    for (const auto& d : diags) s += (s.empty() ? "" : "\n") + line(d);
    if (truncated && !diags.empty())
      s += "\n" + diags.front().loc.file + ": error: too many errors (" + std::to_string(diags.size()) +
           " reported), stopping";
    return s;
  }
  std::vector<Diagnostic> diags_;
  bool truncated_ = false;
};

// A corrupt, truncated or incompatible object or data file.
class FormatError : public Error {
 public:
  using Error::Error;
};

// An error during emulation: where and when it happened.
class SimError : public Error {
 public:
  SimError(int chip, std::string unit, std::string queue, std::int64_t cycle,
           const std::string& msg)
      : Error("chip " + std::to_string(chip) + ", " + unit +
              (queue.empty() ? std::string() : " (queue " + queue + ")") + ", cycle " +
              std::to_string(cycle) + ": " + msg),
        chip_(chip),
        cycle_(cycle) {}
  int chip() const { return chip_; }
  std::int64_t cycle() const { return cycle_; }

 private:
  int chip_;
  std::int64_t cycle_;
};

}  // namespace lpu
