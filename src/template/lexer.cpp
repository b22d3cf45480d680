// Lexer for Jinja2 templates. Text between tags becomes kText tokens after whitespace control;
// inside {{ }} and {% %} it emits names, literals and operators. A tag ends only at bracket depth
// zero, so "{{ {'a': {'b': 1}} }}" works. {% raw %} bodies are emitted as text verbatim.
#include "template/lexer.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "template/error.h"
#include "template/text.h"

namespace runnel::tmpl {
namespace {

bool is_ws(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Python's str.rstrip() (whitespace) on text data.
void rstrip_all(std::string& s) {
  while (!s.empty() && is_ws(s.back())) s.pop_back();
}

class Lexer {
 public:
  Lexer(std::string src, const LexOptions& o) : src_(std::move(src)), opt_(o) {}

  std::vector<Token> run() {
    bool line_starting = true;
    while (pos_ < src_.size()) {
      size_t tag = find_tag(pos_);
      std::string text = src_.substr(pos_, tag - pos_);
      int text_line = line_, text_col = col_;
      if (tag == src_.size()) {
        advance_to(tag);
        emit_text(std::move(text), text_line, text_col);
        break;
      }
      char kind = src_[tag + 1];  // '{', '%' or '#'
      char sign = tag + 2 < src_.size() ? src_[tag + 2] : 0;
      bool is_raw = kind == '%' && starts_raw(tag);
      if (sign == '-') {
        rstrip_all(text);
      } else if (sign != '+' && opt_.lstrip_blocks && kind != '{') {
        size_t l_pos = text.rfind('\n');
        l_pos = l_pos == std::string::npos ? 0 : l_pos + 1;
        if (l_pos > 0 || line_starting) {
          bool all_ws = l_pos < text.size();
          for (size_t i = l_pos; i < text.size() && all_ws; ++i) all_ws = is_ws(text[i]);
          if (all_ws) text.resize(l_pos);
        }
      }
      advance_to(tag);
      emit_text(std::move(text), text_line, text_col);
      if (kind == '#') {
        line_starting = lex_comment();
      } else if (is_raw) {
        line_starting = lex_raw();
      } else {
        line_starting = lex_tag(kind == '{');
      }
    }
    tokens_.push_back(Token{Tok::kEof, "", 0, 0, line_, col_});
    return std::move(tokens_);
  }

 private:
  size_t find_tag(size_t from) const {
    for (size_t p = src_.find('{', from); p != std::string::npos; p = src_.find('{', p + 1)) {
      if (p + 1 < src_.size() && (src_[p + 1] == '{' || src_[p + 1] == '%' || src_[p + 1] == '#')) {
        return p;
      }
    }
    return src_.size();
  }

  void advance_to(size_t p) {
    while (pos_ < p) {
      if (src_[pos_] == '\n') {
        ++line_;
        col_ = 1;
      } else if ((static_cast<unsigned char>(src_[pos_]) & 0xC0) != 0x80) {
        ++col_;
      }
      ++pos_;
    }
  }

  void emit_text(std::string text, int line, int col) {
    if (text.empty()) return;
    if (!tokens_.empty() && tokens_.back().type == Tok::kText) {
      tokens_.back().text += text;
      return;
    }
    tokens_.push_back(Token{Tok::kText, std::move(text), 0, 0, line, col});
  }

  // After a tag's closing marker: `-` strips all following whitespace, otherwise trim_blocks
  // drops one newline after block tags. Returns whether what was consumed ends a line.
  bool after_tag_end(char marker, bool is_block) {
    size_t start = pos_;
    if (marker == '-') {
      size_t p = pos_;
      while (p < src_.size() && is_ws(src_[p])) ++p;
      advance_to(p);
    } else if (marker != '+' && is_block && opt_.trim_blocks && pos_ < src_.size() &&
               src_[pos_] == '\n') {
      advance_to(pos_ + 1);
    }
    if (pos_ > start) return src_[pos_ - 1] == '\n';
    // Nothing consumed: the tag's own last character is not a newline.
    return false;
  }

  bool lex_comment() {
    int line = line_, col = col_;
    size_t end = src_.find("#}", pos_ + 2);
    if (end == std::string::npos) throw_at(line, col, "unterminated comment");
    char marker = src_[end - 1];
    if (end - 1 < pos_ + 2) marker = 0;  // "{#}" style overlap
    advance_to(end + 2);
    return after_tag_end(marker == '-' || marker == '+' ? marker : 0, true);
  }

  // "{%" [-+]? ws* "raw" ws* [-]? "%}"
  bool starts_raw(size_t tag) const {
    size_t p = tag + 2;
    if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) ++p;
    while (p < src_.size() && is_ws(src_[p])) ++p;
    if (src_.compare(p, 3, "raw") != 0) return false;
    p += 3;
    while (p < src_.size() && is_ws(src_[p])) ++p;
    if (p < src_.size() && src_[p] == '-') ++p;
    return src_.compare(p, 2, "%}") == 0;
  }

  bool lex_raw() {
    int line = line_, col = col_;
    size_t close = src_.find("%}", pos_);
    bool strip_after_open = src_[close - 1] == '-';
    advance_to(close + 2);
    if (strip_after_open) {
      size_t p = pos_;
      while (p < src_.size() && is_ws(src_[p])) ++p;
      advance_to(p);
    }
    // Find "{%" [-+]? ws* "endraw" ws* [-+]? "%}".
    for (size_t p = src_.find("{%", pos_); p != std::string::npos; p = src_.find("{%", p + 1)) {
      size_t q = p + 2;
      char open_sign = 0;
      if (q < src_.size() && (src_[q] == '-' || src_[q] == '+')) open_sign = src_[q++];
      while (q < src_.size() && is_ws(src_[q])) ++q;
      if (src_.compare(q, 6, "endraw") != 0) continue;
      q += 6;
      while (q < src_.size() && is_ws(src_[q])) ++q;
      char close_sign = 0;
      if (q < src_.size() && (src_[q] == '-' || src_[q] == '+')) close_sign = src_[q++];
      if (src_.compare(q, 2, "%}") != 0) continue;
      std::string body = src_.substr(pos_, p - pos_);
      if (open_sign == '-') rstrip_all(body);
      emit_text(std::move(body), line_, col_);
      advance_to(q + 2);
      return after_tag_end(close_sign, true);
    }
    throw_at(line, col, "missing {% endraw %}");
  }

  bool lex_tag(bool is_var) {
    int line = line_, col = col_;
    tokens_.push_back(Token{is_var ? Tok::kVarBegin : Tok::kBlockBegin, "", 0, 0, line, col});
    advance_to(pos_ + 2);
    if (pos_ < src_.size() && (src_[pos_] == '-' || src_[pos_] == '+')) advance_to(pos_ + 1);
    const char* close = is_var ? "}}" : "%}";
    int depth = 0;
    while (true) {
      while (pos_ < src_.size() && is_ws(src_[pos_])) advance_to(pos_ + 1);
      if (pos_ >= src_.size()) {
        throw_at(line, col,
                 is_var ? "unexpected end of template, expected '}}'"
                        : "unexpected end of template, expected '%}'");
      }
      if (depth == 0) {
        char c = src_[pos_];
        if ((c == '-' || c == '+') && src_.compare(pos_ + 1, 2, close) == 0 &&
            !(is_var && c == '+')) {
          tokens_.push_back(Token{is_var ? Tok::kVarEnd : Tok::kBlockEnd, "", 0, 0, line_, col_});
          advance_to(pos_ + 3);
          return after_tag_end(c, !is_var);
        }
        if (src_.compare(pos_, 2, close) == 0) {
          tokens_.push_back(Token{is_var ? Tok::kVarEnd : Tok::kBlockEnd, "", 0, 0, line_, col_});
          advance_to(pos_ + 2);
          return after_tag_end(0, !is_var);
        }
      }
      lex_expr_token(depth);
    }
  }

  void lex_expr_token(int& depth) {
    int line = line_, col = col_;
    char c = src_[pos_];
    if (is_name_start(c)) {
      size_t p = pos_;
      while (p < src_.size() && (is_name_start(src_[p]) || is_digit(src_[p]))) ++p;
      tokens_.push_back(Token{Tok::kName, src_.substr(pos_, p - pos_), 0, 0, line, col});
      advance_to(p);
      return;
    }
    if (is_digit(c)) {
      lex_number();
      return;
    }
    if (c == '\'' || c == '"') {
      lex_string(c);
      return;
    }
    static const char* const kOps2[] = {"//", "**", "==", "!=", "<=", ">="};
    for (const char* op : kOps2) {
      if (src_.compare(pos_, 2, op) == 0) {
        tokens_.push_back(Token{Tok::kOp, op, 0, 0, line, col});
        advance_to(pos_ + 2);
        return;
      }
    }
    if (std::strchr("+-*/%~<>=()[]{},.:|;", c) != nullptr && c != 0) {
      if (c == '(' || c == '[' || c == '{') ++depth;
      if (c == ')' || c == ']' || c == '}') {
        if (depth == 0) throw_at(line, col, str_cat("unexpected '", c, "'"));
        --depth;
      }
      tokens_.push_back(Token{Tok::kOp, std::string(1, c), 0, 0, line, col});
      advance_to(pos_ + 1);
      return;
    }
    throw_at(line, col, str_cat("unexpected character '", c, "'"));
  }

  void lex_number() {
    int line = line_, col = col_;
    size_t p = pos_;
    std::string digits;
    auto take_digits = [&] {
      while (p < src_.size() && (is_digit(src_[p]) || (src_[p] == '_' && p + 1 < src_.size() &&
                                                       is_digit(src_[p + 1])))) {
        if (src_[p] != '_') digits += src_[p];
        ++p;
      }
    };
    take_digits();
    bool is_float = false;
    if (p + 1 < src_.size() && src_[p] == '.' && is_digit(src_[p + 1])) {
      is_float = true;
      digits += '.';
      ++p;
      take_digits();
    }
    if (p < src_.size() && (src_[p] == 'e' || src_[p] == 'E')) {
      size_t q = p + 1;
      if (q < src_.size() && (src_[q] == '+' || src_[q] == '-')) ++q;
      if (q < src_.size() && is_digit(src_[q])) {
        is_float = true;
        digits += 'e';
        digits.append(src_, p + 1, q - p - 1);
        p = q;
        take_digits();
      }
    }
    Token t{is_float ? Tok::kFloat : Tok::kInt, digits, 0, 0, line, col};
    if (is_float) {
      t.fval = std::strtod(digits.c_str(), nullptr);
    } else {
      errno = 0;
      t.ival = std::strtoll(digits.c_str(), nullptr, 10);
      if (errno == ERANGE) throw_at(line, col, "integer literal too large");
    }
    tokens_.push_back(std::move(t));
    advance_to(p);
  }

  // Python string literal escapes (Jinja decodes literals with "unicode-escape").
  void lex_string(char quote) {
    int line = line_, col = col_;
    size_t p = pos_ + 1;
    std::string out;
    while (true) {
      if (p >= src_.size()) throw_at(line, col, "unterminated string literal");
      char c = src_[p];
      if (c == quote) break;
      if (c != '\\') {
        out += c;
        ++p;
        continue;
      }
      if (p + 1 >= src_.size()) throw_at(line, col, "unterminated string literal");
      char e = src_[p + 1];
      p += 2;
      auto hex = [&](int n) -> uint32_t {
        if (p + size_t(n) > src_.size()) throw_at(line, col, "truncated escape in string literal");
        uint32_t v = 0;
        for (int k = 0; k < n; ++k) {
          char h = src_[p + size_t(k)];
          int d = is_digit(h)              ? h - '0'
                  : (h >= 'a' && h <= 'f') ? h - 'a' + 10
                  : (h >= 'A' && h <= 'F') ? h - 'A' + 10
                                           : -1;
          if (d < 0) throw_at(line, col, "bad escape in string literal");
          v = v * 16 + uint32_t(d);
        }
        p += size_t(n);
        return v;
      };
      switch (e) {
        case 'n':
          out += '\n';
          break;
        case 't':
          out += '\t';
          break;
        case 'r':
          out += '\r';
          break;
        case '\\':
          out += '\\';
          break;
        case '\'':
          out += '\'';
          break;
        case '"':
          out += '"';
          break;
        case 'a':
          out += '\a';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'v':
          out += '\v';
          break;
        case '\n':
          break;  // line continuation
        case 'x':
          utf8_append(out, hex(2));
          break;
        case 'u':
          utf8_append(out, hex(4));
          break;
        case 'U': {
          uint32_t v = hex(8);
          if (v > 0x10FFFF) throw_at(line, col, "bad \\U escape in string literal");
          utf8_append(out, v);
          break;
        }
        default:
          if (e >= '0' && e <= '7') {
            uint32_t v = uint32_t(e - '0');
            for (int k = 0; k < 2 && p < src_.size() && src_[p] >= '0' && src_[p] <= '7'; ++k) {
              v = v * 8 + uint32_t(src_[p++] - '0');
            }
            utf8_append(out, v);
          } else {
            out += '\\';
            out += e;
          }
      }
    }
    tokens_.push_back(Token{Tok::kString, std::move(out), 0, 0, line, col});
    advance_to(p + 1);
  }

  std::string src_;
  LexOptions opt_;
  size_t pos_ = 0;
  int line_ = 1;
  int col_ = 1;
  std::vector<Token> tokens_;
};

// Newlines normalized to "\n" and one trailing newline dropped (keep_trailing_newline=False).
std::string normalize(const std::string& source) {
  std::string s;
  s.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      s += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      s += source[i];
    }
  }
  if (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

}  // namespace

std::vector<Token> lex(const std::string& source, const LexOptions& options) {
  return Lexer(normalize(source), options).run();
}

}  // namespace runnel::tmpl
