#pragma once
// Typed errors. Library code throws these; only main() turns them into exit codes.
#include <cstdint>
#include <stdexcept>
#include <string>

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

// Assembly error: rendered as "file:line:col: error: message" like a compiler.
class AsmError : public Error {
 public:
  AsmError(SourceLoc loc, const std::string& msg)
      : Error(loc.file + ":" + std::to_string(loc.line) + ":" + std::to_string(loc.col) +
              ": error: " + msg),
        loc_(std::move(loc)),
        msg_(msg) {}
  const SourceLoc& loc() const { return loc_; }
  const std::string& message() const { return msg_; }

 private:
  SourceLoc loc_;
  std::string msg_;
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
