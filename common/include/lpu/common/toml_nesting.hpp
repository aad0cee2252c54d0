#pragma once
// A guard to run before toml::parse on text from a user or a peer. toml++ limits the nesting of
// arrays and inline tables (256) but not of tables made by dotted keys or headers:
// `a.a.a. ... .a = 1` with some 50,000 parts overflows the stack (in the parser and when the
// table is freed). A key or header is on one line, so the dots of a line bound the depth it can
// add; this refuses a line with more than kMaxTomlDots dots outside strings and comments (real
// files have a handful), naming the file and line.
#include <cstddef>
#include <string>

#include "lpu/common/errors.hpp"

namespace lpu {

inline constexpr int kMaxTomlDots = 1024;

// Throws ConfigError(origin, "line N: ...") for a line of `text` with too many dots.
inline void check_toml_nesting(const std::string& text, const std::string& origin) {
  enum class In { Code, Basic, Literal, MlBasic, MlLiteral, Comment } in = In::Code;
  int line = 1, dots = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    auto at = [&](const char* s) { return text.compare(i, 3, s) == 0; };
    if (c == '\n') {
      ++line;
      dots = 0;
      if (in == In::Comment || in == In::Basic || in == In::Literal) in = In::Code;  // (a malformed string)
      continue;
    }
    switch (in) {
      case In::Code:
        if (c == '#') in = In::Comment;
        else if (at("\"\"\"")) in = In::MlBasic, i += 2;
        else if (at("'''")) in = In::MlLiteral, i += 2;
        else if (c == '"') in = In::Basic;
        else if (c == '\'') in = In::Literal;
        else if (c == '.' && ++dots > kMaxTomlDots)
          throw ConfigError(origin, "line " + std::to_string(line) + ": more than " + std::to_string(kMaxTomlDots) +
                                        " dots in one line (keys nested that deep are refused)");
        break;
      case In::Basic:
        if (c == '\\' && i + 1 < text.size() && text[i + 1] != '\n') ++i;
        else if (c == '"') in = In::Code;
        break;
      case In::Literal:
        if (c == '\'') in = In::Code;
        break;
      case In::MlBasic:
        if (c == '\\' && i + 1 < text.size() && text[i + 1] != '\n') ++i;
        else if (at("\"\"\"")) in = In::Code, i += 2;
        break;
      case In::MlLiteral:
        if (at("'''")) in = In::Code, i += 2;
        break;
      case In::Comment: break;
    }
  }
}

}  // namespace lpu
