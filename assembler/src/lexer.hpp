#pragma once
// Tokens of one source line. Identifiers may contain dots (mem.w.3, ADD.i8, s0e).
#include <optional>
#include <string>
#include <vector>

#include "lpu/common/errors.hpp"

namespace lpu::assembler {

enum class Tok { Ident, Int, Float, String, Punct, End };

struct Token {
  Tok kind = Tok::End;
  std::string text;  // identifier, punctuation, string contents, or the literal as written
  long long ival = 0;
  double fval = 0;
  int col = 1;
};

struct Line {
  std::vector<Token> toks;  // always ends with a Tok::End token
  SourceLoc loc;            // file and line; col of the first token
  std::optional<Diagnostic> error;  // a malformed literal or unknown character: toks end before it
};

// Splits text into lines of tokens; comments (';' or '//' to end of line) and blank lines are
// dropped. A line with a malformed literal or an unknown character carries the error (the
// parser reports it when it reaches the line).
std::vector<Line> lex(const std::string& text, const std::string& file);

}  // namespace lpu::assembler
