// Hand-written matchers for the pre-tokenizer regexes most models use, chosen by exact pattern
// text; every other pattern runs on PCRE2. They follow the regex semantics alternative by
// alternative (including the backtracking of \s+(?!\S)); tests compare them with PCRE2.
//   GPT-2:   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//   Llama 3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
//            ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+      (Qwen 2/3: \p{N} alone)
// \s is Unicode White_Space, as in the Rust and Oniguruma engines behind HF tokenizers.
#include "tokenizer/pretokenize.h"
#include "tokenizer/unicode.h"

namespace runnel::tokenizer {
namespace {

enum Cls : uint8_t { kLetter, kNumber, kSpace, kOther };

struct Text {
  std::string_view s;
  size_t end;
  // Class and length of the char at i (i < end).
  Cls cls(size_t i, size_t* len) const {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      *len = 1;
      if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return kLetter;
      if (c >= '0' && c <= '9') return kNumber;
      if (c == ' ' || (c >= 0x09 && c <= 0x0d)) return kSpace;
      return kOther;
    }
    uint32_t cp = decode_utf8(s.substr(0, end), i, len);
    if (is_white_space(cp)) return kSpace;
    Cat cat = category(cp);
    if (is_letter(cat)) return kLetter;
    if (is_number(cat)) return kNumber;
    return kOther;
  }
  Cls cls_at(size_t i) const {
    size_t l;
    return i < end ? cls(i, &l) : kOther;
  }
  bool is(size_t i, Cls c) const { return i < end && cls_at(i) == c; }
  // End of the run of chars of class c starting at i, at most max_chars chars.
  size_t run(size_t i, Cls c, size_t max_chars = SIZE_MAX) const {
    size_t n = 0, len;
    while (i < end && n < max_chars && cls(i, &len) == c) {
      i += len;
      ++n;
    }
    return i;
  }
  bool newline(size_t i) const { return i < end && (s[i] == '\r' || s[i] == '\n'); }
};

// Length of a contraction at i ("'s", "'re", ...), 0 if none.
size_t contraction(const Text& t, size_t i, bool caseless) {
  if (i + 1 >= t.end || t.s[i] != '\'') return 0;
  auto eq = [&](size_t k, char c) -> size_t {  // bytes matched at k for letter c, 0 if none
    if (k >= t.end) return 0;
    char x = t.s[k];
    if (x == c) return 1;
    if (!caseless) return 0;
    if (x == c - 32) return 1;
    if (c == 's' && k + 1 < t.end && t.s[k] == '\xC5' && t.s[k + 1] == '\xBF') return 2;  // ſ
    return 0;
  };
  size_t a;
  if ((a = eq(i + 1, 's')) || (a = eq(i + 1, 't')) || (a = eq(i + 1, 'm')) || (a = eq(i + 1, 'd')))
    return 1 + a;
  for (const char* two : {"re", "ve", "ll"}) {
    size_t x = eq(i + 1, two[0]);
    if (x == 0) continue;
    size_t y = eq(i + 1 + x, two[1]);
    if (y != 0) return 1 + x + y;
  }
  return 0;
}

// \s+(?!\S) | \s+ at a whitespace char i (the run holds no newline for Llama 3's pattern).
size_t space_run(const Text& t, size_t i) {
  size_t j = t.run(i, kSpace);
  if (j == t.end) return j;
  // Backtrack one char so the next char is whitespace, if the run has two or more chars.
  size_t k = j - 1;
  while ((static_cast<unsigned char>(t.s[k]) & 0xC0) == 0x80) --k;
  return k > i ? k : j;
}

class Gpt2Splitter : public Splitter {
 public:
  void find(std::string_view text, uint32_t begin, uint32_t end,
            std::vector<Span>& matches) const override {
    Text t{text, end};
    size_t i = begin;
    while (i < end) {
      size_t len;
      Cls c = t.cls(i, &len);
      size_t j = contraction(t, i, false);
      if (j != 0) {
        j += i;
      } else if (text[i] == ' ' && i + 1 < end && t.cls_at(i + 1) != kSpace) {
        size_t l2;
        Cls n = t.cls(i + 1, &l2);
        j = t.run(i + 1, n);
      } else if (c == kSpace) {
        j = space_run(t, i);
      } else {
        j = t.run(i, c);
      }
      matches.emplace_back(static_cast<uint32_t>(i), static_cast<uint32_t>(j));
      i = j;
    }
  }
};

class Llama3Splitter : public Splitter {
 public:
  explicit Llama3Splitter(size_t max_digits) : max_digits_(max_digits) {}
  void find(std::string_view text, uint32_t begin, uint32_t end,
            std::vector<Span>& matches) const override {
    Text t{text, end};
    size_t i = begin;
    while (i < end) {
      size_t len;
      Cls c = t.cls(i, &len);
      size_t j = contraction(t, i, true);
      if (j != 0) {
        j += i;
      } else if (c == kLetter) {
        j = t.run(i, kLetter);
      } else if (c != kNumber && !t.newline(i) && t.is(i + len, kLetter)) {
        j = t.run(i + len, kLetter);  // [^\r\n\p{L}\p{N}]?\p{L}+
      } else if (c == kNumber) {
        j = t.run(i, kNumber, max_digits_);
      } else if (c == kOther || (text[i] == ' ' && t.is(i + 1, kOther))) {
        j = t.run(c == kOther ? i : i + 1, kOther);  //  ?[^\s\p{L}\p{N}]+[\r\n]*
        while (t.newline(j)) ++j;
      } else {
        size_t run_end = t.run(i, kSpace);
        size_t last_nl = SIZE_MAX;
        for (size_t k = i; k < run_end; ++k)
          if (text[k] == '\r' || text[k] == '\n') last_nl = k;
        j = last_nl != SIZE_MAX ? last_nl + 1 : space_run(t, i);  // \s*[\r\n]+ first
      }
      matches.emplace_back(static_cast<uint32_t>(i), static_cast<uint32_t>(j));
      i = j;
    }
  }

 private:
  size_t max_digits_;
};

}  // namespace

std::unique_ptr<Splitter> make_regex_splitter(const std::string& pattern, const std::string& file) {
  static const std::string kLlama3 =
      "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
      "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
  static const std::string kQwen =
      "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
      "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
  if (pattern == kGpt2Pattern) return std::make_unique<Gpt2Splitter>();
  if (pattern == kLlama3) return std::make_unique<Llama3Splitter>(3);
  if (pattern == kQwen) return std::make_unique<Llama3Splitter>(1);
  return make_pcre2_splitter(pattern, file);
}

}  // namespace runnel::tokenizer
