// Lexer: turns template source into text and tag tokens, applying Jinja2's whitespace rules as
// transformers configures them (trim_blocks, lstrip_blocks, `-`/`+` markers, one trailing
// newline dropped, "\r\n" and "\r" normalized to "\n").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace runnel::tmpl {

enum class Tok : uint8_t {
  kText,
  kVarBegin,    // {{
  kVarEnd,      // }}
  kBlockBegin,  // {%
  kBlockEnd,    // %}
  kName,
  kString,
  kInt,
  kFloat,
  kOp,  // text holds the operator: "==", "(", "|", ...
  kEof,
};

struct Token {
  Tok type;
  std::string text;  // text data, name, decoded string literal, or operator
  int64_t ival = 0;
  double fval = 0;
  int line = 1;
  int col = 1;
};

struct LexOptions {
  bool trim_blocks = true;
  bool lstrip_blocks = true;
};

// Throws TemplateError (with line:column) on unterminated tags, strings or comments.
std::vector<Token> lex(const std::string& source, const LexOptions& options = {});

}  // namespace runnel::tmpl
