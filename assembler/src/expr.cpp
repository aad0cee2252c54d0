#include "expr.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>

#include "lpu/common/checked.hpp"

namespace lpu::assembler {
namespace {

int precedence(const std::string& op) {
  if (op == "|") return 1;
  if (op == "^") return 2;
  if (op == "&") return 3;
  if (op == "<<" || op == ">>") return 4;
  if (op == "+" || op == "-") return 5;
  if (op == "*" || op == "/" || op == "%") return 6;
  return 0;
}

ExprP num(std::int64_t v, SourceLoc loc) {
  auto e = std::make_shared<Expr>();
  e->num = v;
  e->loc = std::move(loc);
  return e;
}

// A Unary/Binary node over its operands; too deep a tree is an error at the operator.
ExprP node(Expr::K k, const std::string& op, ExprP a, ExprP b, SourceLoc loc) {
  auto e = std::make_shared<Expr>();
  e->k = k;
  e->op = op;
  e->depth = 1 + std::max(a->depth, b ? b->depth : 0);
  e->a = std::move(a);
  e->b = std::move(b);
  e->loc = std::move(loc);
  if (e->depth > kMaxTreeDepth)
    throw AsmError(e->loc, fmt::format("expression too complex: more than {} operators deep", kMaxTreeDepth));
  return e;
}

}  // namespace

ExprParser::Nest::Nest(ExprParser& p, const Token& t) : p_(p) {
  if (++p_.nest_ > checked::kMaxDepth) {
    --p_.nest_;
    p_.fail(t, fmt::format("expression nested more than {} deep (parentheses, unary operators, calls)",
                           checked::kMaxDepth));
  }
}

void ExprParser::fail(const Token& t, const std::string& msg) const { throw AsmError(loc(t), msg); }

ExprP ExprParser::parse() {
  Nest n(*this, peek());
  return binary(1);
}

ExprP ExprParser::binary(int prec) {
  auto lhs = unary();
  for (;;) {
    const Token& t = peek();
    if (t.kind != Tok::Punct) return lhs;
    int p = precedence(t.text);
    if (p == 0 || p < prec) return lhs;
    ++pos_;
    auto rhs = binary(p + 1);
    // Fold constants right away: most expressions never see a label.
    auto e = node(Expr::K::Binary, t.text, lhs, rhs, loc(t));
    if (lhs->k == Expr::K::Num && rhs->k == Expr::K::Num) {
      auto v = eval(*e, [](Expr::K, const std::string&, const SourceLoc&) { return std::nullopt; });
      lhs = num(*v, e->loc);
    } else {
      lhs = e;
    }
  }
}

ExprP ExprParser::unary() {
  const Token& t = peek();
  if (t.kind == Tok::Punct && (t.text == "-" || t.text == "~" || t.text == "+")) {
    Nest n(*this, t);
    ++pos_;
    auto a = unary();
    if (t.text == "+") return a;
    auto e = node(Expr::K::Unary, t.text, a, nullptr, loc(t));
    if (a->k == Expr::K::Num) {
      auto v = eval(*e, [](Expr::K, const std::string&, const SourceLoc&) { return std::nullopt; });
      return num(*v, e->loc);
    }
    return e;
  }
  return primary();
}

std::string ExprParser::parse_label_ref() {
  const Token& t = peek();
  if (t.kind != Tok::Ident) fail(t, "expected a label name");
  std::string name = t.text;
  ++pos_;
  if (peek().kind == Tok::Punct && peek().text == "[") {
    ++pos_;
    auto idx = parse();
    if (idx->k != Expr::K::Num) fail(peek(), "a label index must be a constant expression");
    if (!(peek().kind == Tok::Punct && peek().text == "]")) fail(peek(), "expected ']'");
    ++pos_;
    name += fmt::format("[{}]", idx->num);
  }
  return name;
}

ExprP ExprParser::primary() {
  const Token& t = peek();
  if (t.kind == Tok::Int) {
    ++pos_;
    return num(t.ival, loc(t));
  }
  if (t.kind == Tok::Punct && t.text == "(") {
    ++pos_;
    auto e = parse();
    if (!(peek().kind == Tok::Punct && peek().text == ")")) fail(peek(), "expected ')'");
    ++pos_;
    return e;
  }
  if (t.kind == Tok::Ident) {
    if ((t.text == "issue" || t.text == "ready") && line_.toks[pos_ + 1].kind == Tok::Punct &&
        line_.toks[pos_ + 1].text == "(") {
      if (!labels_) fail(t, t.text + "() is only allowed in an issue time (@...)");
      pos_ += 2;
      auto e = std::make_shared<Expr>();
      e->k = t.text == "issue" ? Expr::K::Issue : Expr::K::Ready;
      e->loc = loc(t);
      e->label = parse_label_ref();
      if (!(peek().kind == Tok::Punct && peek().text == ")")) fail(peek(), "expected ')'");
      ++pos_;
      return e;
    }
    if ((t.text == "max" || t.text == "min") && line_.toks[pos_ + 1].kind == Tok::Punct &&
        line_.toks[pos_ + 1].text == "(") {
      pos_ += 2;
      auto e = parse();
      while (peek().kind == Tok::Punct && peek().text == ",") {
        ++pos_;
        auto b = parse();
        auto m = node(Expr::K::Binary, t.text, e, b, loc(t));
        if (e->k == Expr::K::Num && b->k == Expr::K::Num)
          m = num(t.text == "max" ? std::max(e->num, b->num) : std::min(e->num, b->num), loc(t));
        e = m;
      }
      if (!(peek().kind == Tok::Punct && peek().text == ")")) fail(peek(), "expected ')'");
      ++pos_;
      return e;
    }
    if (auto v = lookup_(t.text)) {
      ++pos_;
      return num(*v, loc(t));
    }
    fail(t, fmt::format("unknown name '{}' in expression", t.text));
  }
  if (t.kind == Tok::Float) fail(t, "a floating-point number is not allowed here");
  if (t.kind == Tok::End) fail(t, "expected an expression");
  fail(t, fmt::format("unexpected '{}' in expression", t.text));
}

std::optional<std::int64_t> eval(
    const Expr& e,
    const std::function<std::optional<std::int64_t>(Expr::K, const std::string&, const SourceLoc&)>&
        label_value) {
  switch (e.k) {
    case Expr::K::Num: return e.num;
    case Expr::K::Issue:
    case Expr::K::Ready: return label_value(e.k, e.label, e.loc);
    case Expr::K::Unary: {
      auto a = eval(*e.a, label_value);
      if (!a) return std::nullopt;
      if (e.op == "~") return ~*a;
      auto r = checked::neg(*a);
      if (!r.ok()) throw AsmError(e.loc, checked::describe(r.fault, "-", *a, *a, true));
      return r.v;
    }
    case Expr::K::Binary: {
      auto a = eval(*e.a, label_value);
      auto b = eval(*e.b, label_value);
      if (!a || !b) return std::nullopt;
      const auto& o = e.op;
      checked::Value r;
      if (o == "+") r = checked::add(*a, *b);
      else if (o == "-") r = checked::sub(*a, *b);
      else if (o == "*") r = checked::mul(*a, *b);
      else if (o == "/") r = checked::div(*a, *b);
      else if (o == "%") r = checked::rem(*a, *b);
      else if (o == "<<") r = checked::shl(*a, *b);
      else if (o == ">>") r = checked::shr(*a, *b);
      else if (o == "max") r.v = std::max(*a, *b);
      else if (o == "min") r.v = std::min(*a, *b);
      else if (o == "&") r.v = *a & *b;
      else if (o == "|") r.v = *a | *b;
      else if (o == "^") r.v = *a ^ *b;
      else throw AsmError(e.loc, "unknown operator " + o);
      if (!r.ok()) throw AsmError(e.loc, checked::describe(r.fault, o, *a, *b));
      return r.v;
    }
  }
  return std::nullopt;
}

}  // namespace lpu::assembler
