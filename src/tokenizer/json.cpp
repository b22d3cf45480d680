// Recursive-descent JSON reader with raw-span skipping; see json.h.
#include "tokenizer/json.h"

#include <cstdlib>
#include <cstring>

#include "base/error.h"
#include "tokenizer/unicode.h"

namespace runnel::tokenizer::json {

const Value* Value::find(std::string_view key) const {
  if (kind != Kind::kObject) return nullptr;
  for (const auto& [k, v] : members)
    if (k == key) return &v;
  return nullptr;
}

std::string Value::get_string(std::string_view key, std::string_view def) const {
  const Value* v = find(key);
  if (v == nullptr || v->kind != Kind::kString) return std::string(def);
  return v->str;
}

bool Value::get_bool(std::string_view key, bool def) const {
  const Value* v = find(key);
  if (v == nullptr || v->kind != Kind::kBool) return def;
  return v->boolean;
}

int64_t Value::get_int(std::string_view key, int64_t def) const {
  const Value* v = find(key);
  if (v == nullptr || v->kind != Kind::kNumber) return def;
  return static_cast<int64_t>(v->number);
}

void Cursor::error(std::string_view what) const {
  size_t line = 1, col = 1;
  for (size_t k = 0; k < i_ && k < s_.size(); ++k) {
    if (s_[k] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  fail("tokenizer", file_, ": JSON error at line ", line, " col ", col, ": ", what);
}

void Cursor::skip_ws() {
  while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\r' || s_[i_] == '\t'))
    ++i_;
}

char Cursor::peek() {
  skip_ws();
  return i_ < s_.size() ? s_[i_] : '\0';
}

void Cursor::expect(char c) {
  skip_ws();
  if (i_ >= s_.size()) error(str_cat("unexpected end of file, expected '", c, "'"));
  if (s_[i_] != c) error(str_cat("expected '", c, "', found '", s_[i_], "'"));
  ++i_;
}

bool Cursor::consume(char c) {
  skip_ws();
  if (i_ < s_.size() && s_[i_] == c) {
    ++i_;
    return true;
  }
  return false;
}

namespace {
int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

void Cursor::read_string(std::string& out) {
  expect('"');
  out.clear();
  while (true) {
    size_t start = i_;
    while (i_ < s_.size() && s_[i_] != '"' && s_[i_] != '\\') ++i_;
    out.append(s_.substr(start, i_ - start));
    if (i_ >= s_.size()) error("unterminated string");
    if (s_[i_] == '"') {
      ++i_;
      return;
    }
    ++i_;  // backslash
    if (i_ >= s_.size()) error("unterminated string");
    char e = s_[i_++];
    switch (e) {
      case '"':
        out.push_back('"');
        break;
      case '\\':
        out.push_back('\\');
        break;
      case '/':
        out.push_back('/');
        break;
      case 'b':
        out.push_back('\b');
        break;
      case 'f':
        out.push_back('\f');
        break;
      case 'n':
        out.push_back('\n');
        break;
      case 'r':
        out.push_back('\r');
        break;
      case 't':
        out.push_back('\t');
        break;
      case 'u': {
        auto read4 = [&]() -> uint32_t {
          if (i_ + 4 > s_.size()) error("truncated \\u escape");
          uint32_t v = 0;
          for (int k = 0; k < 4; ++k) {
            int d = hex_digit(s_[i_ + static_cast<size_t>(k)]);
            if (d < 0) error("bad \\u escape");
            v = v << 4 | static_cast<uint32_t>(d);
          }
          i_ += 4;
          return v;
        };
        uint32_t cp = read4();
        if (cp >= 0xD800 && cp < 0xDC00 && i_ + 1 < s_.size() && s_[i_] == '\\' &&
            s_[i_ + 1] == 'u') {
          size_t save = i_;
          i_ += 2;
          uint32_t lo = read4();
          if (lo >= 0xDC00 && lo < 0xE000) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else {
            i_ = save;
          }
        }
        if (cp >= 0xD800 && cp < 0xE000) cp = 0xFFFD;  // lone surrogate
        append_utf8(out, cp);
        break;
      }
      default:
        --i_;
        error("bad escape in string");
    }
  }
}

double Cursor::read_number() {
  skip_ws();
  size_t start = i_;
  while (i_ < s_.size() &&
         (std::strchr("+-.eE", s_[i_]) != nullptr || (s_[i_] >= '0' && s_[i_] <= '9')))
    ++i_;
  if (start == i_) error("expected a value");
  std::string tmp(s_.substr(start, i_ - start));
  char* end = nullptr;
  double v = std::strtod(tmp.c_str(), &end);
  if (end != tmp.c_str() + tmp.size()) {
    i_ = start;
    error("bad number");
  }
  return v;
}

int64_t Cursor::read_int() {
  skip_ws();
  bool neg = false;
  if (i_ < s_.size() && s_[i_] == '-') {
    neg = true;
    ++i_;
  }
  size_t start = i_;
  int64_t v = 0;
  while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9' && i_ - start < 18)
    v = v * 10 + (s_[i_++] - '0');
  if (i_ == start || (i_ < s_.size() && (s_[i_] == '.' || s_[i_] == 'e' || s_[i_] == 'E' ||
                                         (s_[i_] >= '0' && s_[i_] <= '9'))))
    error("expected an integer");
  return neg ? -v : v;
}

std::string_view Cursor::skip_value() {
  skip_ws();
  size_t start = i_;
  int depth = 0;
  do {
    if (i_ >= s_.size()) error("unexpected end of file");
    char c = s_[i_];
    if (c == '"') {
      ++i_;
      while (i_ < s_.size() && s_[i_] != '"') i_ += s_[i_] == '\\' ? 2 : 1;
      if (i_ >= s_.size()) error("unterminated string");
      ++i_;
    } else if (c == '{' || c == '[') {
      ++depth;
      ++i_;
    } else if (c == '}' || c == ']') {
      if (depth == 0) error("unexpected closing bracket");
      --depth;
      ++i_;
    } else {
      ++i_;
    }
  } while (depth > 0);
  return s_.substr(start, i_ - start);
}

Value Cursor::read_value(const std::vector<std::pair<std::string, std::string>>* raw_paths,
                         const std::string& parent, int depth) {
  if (depth > 200) error("nesting too deep");
  Value v;
  char c = peek();
  if (c == '{') {
    ++i_;
    v.kind = Value::Kind::kObject;
    if (consume('}')) return v;
    do {
      std::string key;
      read_string(key);
      expect(':');
      bool raw = false;
      if (raw_paths != nullptr)
        for (const auto& [p, k] : *raw_paths)
          if (p == parent && k == key) raw = true;
      if (raw) {
        Value r;
        r.kind = Value::Kind::kRaw;
        r.str = std::string(skip_value());
        v.members.emplace_back(std::move(key), std::move(r));
      } else {
        Value child = read_value(raw_paths, depth == 0 ? key : std::string("\x01"), depth + 1);
        v.members.emplace_back(std::move(key), std::move(child));
      }
    } while (consume(','));
    expect('}');
  } else if (c == '[') {
    ++i_;
    v.kind = Value::Kind::kArray;
    if (consume(']')) return v;
    do {
      v.items.push_back(read_value(raw_paths, "\x01", depth + 1));
    } while (consume(','));
    expect(']');
  } else if (c == '"') {
    v.kind = Value::Kind::kString;
    read_string(v.str);
  } else if (s_.substr(i_, 4) == "true") {
    v.kind = Value::Kind::kBool;
    v.boolean = true;
    i_ += 4;
  } else if (s_.substr(i_, 5) == "false") {
    v.kind = Value::Kind::kBool;
    i_ += 5;
  } else if (s_.substr(i_, 4) == "null") {
    i_ += 4;
  } else if (c == 0) {
    error("unexpected end of file");
  } else {
    v.kind = Value::Kind::kNumber;
    v.number = read_number();
  }
  return v;
}

Value parse(std::string_view text, const std::string& file,
            const std::vector<std::pair<std::string, std::string>>& raw_paths) {
  Cursor cur(text, file);
  Value v = cur.read_value(&raw_paths, "", 0);
  if (!cur.at_end()) cur.error("trailing characters after the JSON value");
  return v;
}

}  // namespace runnel::tokenizer::json
