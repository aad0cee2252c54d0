#pragma once
// Error collection for one assembly run (lexer, parser, scheduler and checker).
#include <algorithm>
#include <cstddef>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "lpu/common/errors.hpp"

namespace lpu::assembler {

// The errors of one assembly run. Like a compiler, the assembler goes on after an error and
// reports every independent one: each statement that fails is recorded and skipped. An error on
// a line already reported is not repeated (a .rept body, a REPEAT's instances), and errors that
// only follow from an earlier one are suppressed (Cascade). At kMaxErrors it stops.
class Diagnostics {
 public:
  static constexpr std::size_t kMaxErrors = 20;
  // Records e's diagnostics; at the limit, throws every error collected.
  void add(const AsmError& e) {
    ++failures_;
    for (const auto& d : e.diagnostics()) {
      if (!lines_.emplace(d.loc.file, d.loc.line).second) continue;
      list_.push_back(d);
      if (list_.size() >= kMaxErrors) throw Stop{AsmError(list_, true)};
    }
  }
  // A statement skipped because it only repeats an earlier error (Cascade).
  void cascade() { ++failures_; }
  // Statements that failed so far, reported or not: a .rept stops repeating a body that fails.
  std::size_t failures() const { return failures_; }
  bool empty() const { return list_.empty(); }
  std::size_t size() const { return list_.size(); }
  // Errors found in no particular order from `first` on are put in source order.
  void sort_from(std::size_t first) {
    std::stable_sort(list_.begin() + std::ptrdiff_t(first), list_.end(), [](const Diagnostic& a, const Diagnostic& b) {
      return std::tie(a.loc.file, a.loc.line, a.loc.col) < std::tie(b.loc.file, b.loc.line, b.loc.col);
    });
  }
  // Throws what was collected, if anything.
  void raise_if_any() const {
    if (!list_.empty()) throw Stop{AsmError(list_)};
  }
  // Records e and stops now: an error after which nothing else can be checked meaningfully.
  [[noreturn]] void fatal(const AsmError& e) {
    add(e);
    throw Stop{AsmError(list_)};
  }

  // Ends the run with every error collected; not an AsmError, so that the handlers that record
  // a statement's error and go on let it through. assemble() rethrows `error`.
  struct Stop {
    AsmError error;
  };

 private:
  std::vector<Diagnostic> list_;
  std::set<std::pair<std::string, int>> lines_;
  std::size_t failures_ = 0;
};

// Thrown where an error would only repeat an earlier one (a use of a constant, stream alias or
// queue whose definition failed): the statement is skipped without a message.
struct Cascade {};

}  // namespace lpu::assembler
