#include "lexer.hpp"

#include <cctype>

#include "lpu/common/parse.hpp"

namespace lpu::assembler {
namespace {

bool ident_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool ident_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.';
}

}  // namespace

std::vector<Line> lex(const std::string& text, const std::string& file) {
  std::vector<Line> out;
  std::size_t pos = 0;
  int lineno = 0;
  while (pos <= text.size()) {
    std::size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    std::string s = text.substr(pos, eol - pos);
    pos = eol + 1;
    ++lineno;
    if (!s.empty() && s.back() == '\r') s.pop_back();
    Line line;
    line.loc = {file, lineno, 1};
    std::size_t i = 0;
    auto err = [&](std::size_t col, const std::string& msg) {
      throw AsmError({file, lineno, static_cast<int>(col) + 1}, msg);
    };
    try {
      while (i < s.size()) {
        char c = s[i];
        if (c == ' ' || c == '\t') {
          ++i;
          continue;
        }
        if (c == ';' || (c == '/' && i + 1 < s.size() && s[i + 1] == '/')) break;
        Token t;
        t.col = static_cast<int>(i) + 1;
        if (ident_start(c) || (c == '.' && i + 1 < s.size() && ident_start(s[i + 1]))) {
          std::size_t j = i + 1;
          while (j < s.size() && ident_char(s[j])) {
            // "x..y" inside an identifier is a range (mem.w.0..3); keep it in the identifier.
            ++j;
          }
          t.kind = Tok::Ident;
          t.text = s.substr(i, j - i);
          i = j;
        } else if (std::isdigit(static_cast<unsigned char>(c))) {
          std::size_t j = i;
          bool is_float = false;
          if (c == '0' && i + 1 < s.size() && (s[i + 1] == 'x' || s[i + 1] == 'X' || s[i + 1] == 'b' ||
                                               s[i + 1] == 'B')) {
            j = i + 2;
            while (j < s.size() && (std::isxdigit(static_cast<unsigned char>(s[j])) || s[j] == '_')) ++j;
          } else {
            while (j < s.size() && (std::isdigit(static_cast<unsigned char>(s[j])) || s[j] == '_')) ++j;
            if (j + 1 < s.size() && s[j] == '.' && std::isdigit(static_cast<unsigned char>(s[j + 1]))) {
              is_float = true;
              ++j;
              while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
            }
            if (j < s.size() && (s[j] == 'e' || s[j] == 'E')) {
              std::size_t k = j + 1;
              if (k < s.size() && (s[k] == '+' || s[k] == '-')) ++k;
              if (k < s.size() && std::isdigit(static_cast<unsigned char>(s[k]))) {
                is_float = true;
                j = k;
                while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
              }
            }
          }
          std::string lit = s.substr(i, j - i);
          if (j < s.size() && (ident_char(s[j]) && s[j] != '.'))
            err(i, "malformed number '" + s.substr(i, j - i + 1) + "'");
          t.text = lit;
          std::string clean;
          for (char ch : lit)
            if (ch != '_') clean += ch;
          // common/parse.hpp: the whole literal, decimal / 0x / 0b, no wrap past 64 bits.
          if (is_float) {
            t.kind = Tok::Float;
            const auto v = scan_double(clean);
            if (!v) err(i, "number '" + lit + "' is malformed or too large");
            t.fval = *v;
          } else {
            t.kind = Tok::Int;
            const auto v = scan_int(clean, false);
            if (v.status == IntScan::Status::NotANumber || v.used != clean.size()) err(i, "malformed number '" + lit + "'");
            if (v.status == IntScan::Status::OutOfRange) err(i, "number '" + lit + "' is too large");
            t.ival = static_cast<long long>(v.value);
          }
          i = j;
        } else if (c == '"') {
          std::size_t j = i + 1;
          std::string v;
          while (j < s.size() && s[j] != '"') {
            if (s[j] == '\\' && j + 1 < s.size()) ++j;
            v += s[j++];
          }
          if (j >= s.size()) err(i, "unterminated string");
          t.kind = Tok::String;
          t.text = v;
          i = j + 1;
        } else {
          static const char* two[] = {"<<", ">>", ".."};
          t.kind = Tok::Punct;
          bool matched = false;
          for (const char* p : two) {
            if (s.compare(i, 2, p) == 0) {
              t.text = p;
              i += 2;
              matched = true;
              break;
            }
          }
          if (!matched) {
            if (std::string(",:@[]()+-*/%&|^~={}").find(c) == std::string::npos) {
              err(i, std::string("unexpected character '") + c + "'");
            }
            t.text = std::string(1, c);
            ++i;
          }
        }
        line.toks.push_back(t);
      }
    } catch (const AsmError& e) {
      // Kept with the tokens before the error, and reported when the parser reaches the line:
      // in source order, among the parser's errors.
      line.error = e.diagnostics().front();
    }
    if (line.toks.empty() && !line.error) continue;
    line.loc.col = line.toks.empty() ? line.error->loc.col : line.toks.front().col;
    Token end;
    end.kind = Tok::End;
    end.col = static_cast<int>(s.size()) + 1;
    line.toks.push_back(end);
    out.push_back(std::move(line));
  }
  return out;
}

}  // namespace lpu::assembler
