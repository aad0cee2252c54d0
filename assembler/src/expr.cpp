#include "expr.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>

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

}  // namespace

void ExprParser::fail(const Token& t, const std::string& msg) const { throw AsmError(loc(t), msg); }

ExprP ExprParser::parse() { return binary(1); }

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
    auto e = std::make_shared<Expr>();
    e->k = Expr::K::Binary;
    e->op = t.text;
    e->a = lhs;
    e->b = rhs;
    e->loc = loc(t);
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
    ++pos_;
    auto a = unary();
    if (t.text == "+") return a;
    if (a->k == Expr::K::Num) {
      if (t.text == "-" && a->num == INT64_MIN) fail(t, "integer overflow in expression");
      return num(t.text == "-" ? -a->num : ~a->num, loc(t));
    }
    auto e = std::make_shared<Expr>();
    e->k = Expr::K::Unary;
    e->op = t.text;
    e->a = a;
    e->loc = loc(t);
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
        auto m = std::make_shared<Expr>();
        m->k = Expr::K::Binary;
        m->op = t.text;
        m->a = e;
        m->b = b;
        m->loc = loc(t);
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
      if (e.op == "-" && *a == INT64_MIN) throw AsmError(e.loc, "integer overflow in expression");
      return e.op == "-" ? -*a : ~*a;
    }
    case Expr::K::Binary: {
      auto a = eval(*e.a, label_value);
      auto b = eval(*e.b, label_value);
      if (!a || !b) return std::nullopt;
      const auto& o = e.op;
      std::int64_t r = 0;
      auto overflow = [&]() -> std::int64_t { throw AsmError(e.loc, "integer overflow in expression"); };
      if (o == "+") return __builtin_add_overflow(*a, *b, &r) ? overflow() : r;
      if (o == "-") return __builtin_sub_overflow(*a, *b, &r) ? overflow() : r;
      if (o == "*") return __builtin_mul_overflow(*a, *b, &r) ? overflow() : r;
      if (o == "/" || o == "%") {
        if (*b == 0) throw AsmError(e.loc, "division by zero");
        if (*b == -1 && *a == INT64_MIN) overflow();
        return o == "/" ? *a / *b : *a % *b;
      }
      if (o == "<<" || o == ">>") {
        if (*b < 0 || *b > 62) throw AsmError(e.loc, "shift amount out of range 0..62");
        if (o == ">>") return *a >> *b;
        if (*a < 0 || (*a >> (62 - *b)) != 0) overflow();
        return *a << *b;
      }
      if (o == "max") return std::max(*a, *b);
      if (o == "min") return std::min(*a, *b);
      if (o == "&") return *a & *b;
      if (o == "|") return *a | *b;
      if (o == "^") return *a ^ *b;
      throw AsmError(e.loc, "unknown operator " + o);
    }
  }
  return std::nullopt;
}

}  // namespace lpu::assembler
