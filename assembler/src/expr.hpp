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
  int depth = 1;  // of the tree: eval() recurses this deep (bounded by kMaxTreeDepth)
};
using ExprP = std::shared_ptr<Expr>;

// Limits that keep the recursive parser and eval() off the end of the stack: nesting of
// parentheses, unary operators and calls (checked::kMaxDepth), and the depth of a kept tree
// (a chain such as issue(x) + 1 + 1 + ... is not folded and grows one level per operator).
inline constexpr int kMaxTreeDepth = 4096;

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
  // Counts one level of nesting at token t for its lifetime; past checked::kMaxDepth, an error.
  class Nest {
   public:
    Nest(ExprParser& p, const Token& t);
    ~Nest() { --p_.nest_; }
    Nest(const Nest&) = delete;
    Nest& operator=(const Nest&) = delete;

   private:
    ExprParser& p_;
  };
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
  int nest_ = 0;
};

// Evaluates a tree. `label_value(kind, label, loc)` returns nullopt while the label's issue
// cycle is not known yet (the scheduler retries later). Arithmetic is checked (lpu/common/
// checked.hpp): overflow, division by zero and shift amounts outside 0..63 are an AsmError at
// the operator.
std::optional<std::int64_t> eval(
    const Expr& e,
    const std::function<std::optional<std::int64_t>(Expr::K, const std::string&, const SourceLoc&)>&
        label_value);

}  // namespace lpu::assembler
