#pragma once
// Integer expressions of the assembly language. Operand expressions are folded while parsing;
// issue-time expressions (@...) may name labels (issue(l), ready(l)) and are kept as a tree
// until the scheduler can evaluate them.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "lexer.hpp"

namespace lpu::assembler {

struct Expr {
  enum class K { Num, Issue, Ready, Unary, Binary } k = K::Num;
  std::int64_t num = 0;
  std::string label;  // Issue/Ready: canonical label name ("x" or "x[3]")
  std::string op;     // Unary/Binary operator
  std::shared_ptr<Expr> a, b;
  SourceLoc loc;
};
using ExprP = std::shared_ptr<Expr>;

// Reads tokens of one line from `pos`. Names resolve through `lookup_const`; when
// `allow_labels`, issue(name) and ready(name) are accepted.
class ExprParser {
 public:
  ExprParser(const Line& line, std::size_t& pos,
             std::function<std::optional<std::int64_t>(const std::string&)> lookup_const,
             bool allow_labels)
      : line_(line), pos_(pos), lookup_(std::move(lookup_const)), labels_(allow_labels) {}
  ExprP parse();  // full expression, stops before ',' ']' ')' or end

  // Label reference syntax: name or name[expr]; canonical text "name" / "name[3]".
  std::string parse_label_ref();

 private:
  ExprP binary(int prec);
  ExprP unary();
  ExprP primary();
  const Token& peek() const { return line_.toks[pos_]; }
  [[noreturn]] void fail(const Token& t, const std::string& msg) const;
  SourceLoc loc(const Token& t) const { return {line_.loc.file, line_.loc.line, t.col}; }

  const Line& line_;
  std::size_t& pos_;
  std::function<std::optional<std::int64_t>(const std::string&)> lookup_;
  bool labels_;
};

// Evaluates a tree. `label_value(kind, label, loc)` returns nullopt while the label's issue
// cycle is not known yet (the scheduler retries later). Division by zero is an AsmError.
std::optional<std::int64_t> eval(
    const Expr& e,
    const std::function<std::optional<std::int64_t>(Expr::K, const std::string&, const SourceLoc&)>&
        label_value);

}  // namespace lpu::assembler
