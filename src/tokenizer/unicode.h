// Unicode helpers for the tokenizers: UTF-8 decoding, general categories (the \p{..} classes of
// the pre-tokenizer regexes), White_Space, NFC, and lossy UTF-8 repair like Rust's
// String::from_utf8_lossy (one U+FFFD per maximal invalid subpart). Tables: unicode_tables.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace runnel::tokenizer {

// General categories, in the generator's order.
enum class Cat : uint8_t {
  Cn,
  Lu,
  Ll,
  Lt,
  Lm,
  Lo,
  Mn,
  Mc,
  Me,
  Nd,
  Nl,
  No,
  Pc,
  Pd,
  Ps,
  Pe,
  Pi,
  Pf,
  Po,
  Sm,
  Sc,
  Sk,
  So,
  Zs,
  Zl,
  Zp,
  Cc,
  Cf,
  Cs,
  Co,
};

Cat category(uint32_t cp);
inline bool is_letter(Cat c) { return c >= Cat::Lu && c <= Cat::Lo; }
inline bool is_mark(Cat c) { return c >= Cat::Mn && c <= Cat::Me; }
inline bool is_number(Cat c) { return c >= Cat::Nd && c <= Cat::No; }
inline bool is_punct(Cat c) { return c >= Cat::Pc && c <= Cat::Po; }
inline bool is_symbol(Cat c) { return c >= Cat::Sm && c <= Cat::So; }
// Unicode White_Space (what Rust's and Oniguruma's \s match).
bool is_white_space(uint32_t cp);

// Decodes one code point at s[i] (valid UTF-8 assumed for text already checked; invalid bytes
// decode as themselves with length 1). Returns the code point and sets *len.
inline uint32_t decode_utf8(std::string_view s, size_t i, size_t* len) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data()) + i;
  const size_t left = s.size() - i;
  unsigned char c = p[0];
  if (c < 0x80) {
    *len = 1;
    return c;
  }
  if ((c & 0xe0) == 0xc0 && left >= 2) {
    *len = 2;
    return (c & 0x1fu) << 6 | (p[1] & 0x3fu);
  }
  if ((c & 0xf0) == 0xe0 && left >= 3) {
    *len = 3;
    return (c & 0x0fu) << 12 | (p[1] & 0x3fu) << 6 | (p[2] & 0x3fu);
  }
  if ((c & 0xf8) == 0xf0 && left >= 4) {
    *len = 4;
    return (c & 0x07u) << 18 | (p[1] & 0x3fu) << 12 | (p[2] & 0x3fu) << 6 | (p[3] & 0x3fu);
  }
  *len = 1;
  return c;
}
inline size_t utf8_len(unsigned char lead) {
  return lead < 0x80 ? 1 : (lead & 0xe0) == 0xc0 ? 2 : (lead & 0xf0) == 0xe0 ? 3 : 4;
}
void append_utf8(std::string& out, uint32_t cp);

// Length of the longest prefix of `s` that is valid UTF-8.
size_t valid_utf8_prefix(std::string_view s);
inline bool is_valid_utf8(std::string_view s) { return valid_utf8_prefix(s) == s.size(); }
// Length of the incomplete-but-possibly-valid sequence at the end of `s` (0..3): bytes a
// streaming decoder must hold back.
size_t incomplete_utf8_suffix(std::string_view s);
// Appends `s` with each maximal invalid subpart replaced by U+FFFD.
void append_lossy_utf8(std::string& out, std::string_view s);

// Canonical composition (NFC). Strings with no code point >= U+0300 are returned unchanged fast.
std::string nfc(std::string_view s);

namespace unicode_data {
extern const uint32_t kCategoryRuns[];
extern const size_t kCategoryRunCount;
extern const uint32_t kCccRuns[];
extern const size_t kCccRunCount;
extern const uint32_t kDecomp[][3];
extern const size_t kDecompCount;
extern const uint32_t kCompose[][3];
extern const size_t kComposeCount;
}  // namespace unicode_data

}  // namespace runnel::tokenizer
