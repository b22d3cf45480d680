// UTF-8 and Python str helpers. Case mapping covers ASCII, Latin-1, Greek and Cyrillic; other
// scripts pass through unchanged (chat templates only case-map ASCII keywords in practice).
#include "template/text.h"

#include "template/value.h"

namespace runnel::tmpl {

uint32_t utf8_next(std::string_view s, size_t& i) {
  unsigned char c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) {
    ++i;
    return c;
  }
  int n = c >= 0xF8 ? -1 : c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : -1;
  if (n < 0 || i + size_t(n) >= s.size()) {
    ++i;
    return c;
  }
  uint32_t cp = c & (0x7F >> (n + 1));
  for (int k = 1; k <= n; ++k) {
    unsigned char cc = static_cast<unsigned char>(s[i + size_t(k)]);
    if ((cc & 0xC0) != 0x80) {
      ++i;
      return c;
    }
    cp = (cp << 6) | (cc & 0x3F);
  }
  i += size_t(n) + 1;
  return cp;
}

void utf8_append(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

size_t utf8_length(std::string_view s) {
  size_t n = 0;
  for (size_t i = 0; i < s.size();) {
    utf8_next(s, i);
    ++n;
  }
  return n;
}

std::vector<uint32_t> utf8_decode(std::string_view s) {
  std::vector<uint32_t> out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) out.push_back(utf8_next(s, i));
  return out;
}

std::string utf8_encode(const std::vector<uint32_t>& cps, size_t begin, size_t end) {
  std::string out;
  for (size_t i = begin; i < end && i < cps.size(); ++i) utf8_append(out, cps[i]);
  return out;
}

bool python_is_space(uint32_t cp) {
  if (cp < 0x80) return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20);
  return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
         cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

bool python_is_printable(uint32_t cp) {
  if (cp < 0x20 || cp == 0x7F) return false;
  if (cp < 0x7F) return true;
  if (cp <= 0xA0 || cp == 0xAD) return false;
  if (python_is_space(cp)) return false;
  if ((cp >= 0x200B && cp <= 0x200F) || (cp >= 0x202A && cp <= 0x202E) ||
      (cp >= 0x2060 && cp <= 0x206F) || cp == 0xFEFF || (cp >= 0xD800 && cp <= 0xDFFF) ||
      (cp >= 0xFFF0 && cp <= 0xFFFB) || cp == 0xFFFE || cp == 0xFFFF || cp > 0x10FFFF) {
    return false;
  }
  if ((cp >= 0xE000 && cp <= 0xF8FF) || cp >= 0xF0000) return false;  // private use
  return true;
}

namespace {

bool in_chars(uint32_t cp, const std::vector<uint32_t>& set) {
  for (uint32_t c : set) {
    if (c == cp) return true;
  }
  return false;
}

uint32_t to_upper(uint32_t c) {
  if (c >= 'a' && c <= 'z') return c - 32;
  if ((c >= 0xE0 && c <= 0xFE && c != 0xF7)) return c - 32;
  if (c >= 0x3B1 && c <= 0x3C9 && c != 0x3C2) return c - 32;
  if (c >= 0x430 && c <= 0x44F) return c - 32;
  if (c >= 0x450 && c <= 0x45F) return c - 80;
  return c;
}

uint32_t to_lower(uint32_t c) {
  if (c >= 'A' && c <= 'Z') return c + 32;
  if ((c >= 0xC0 && c <= 0xDE && c != 0xD7)) return c + 32;
  if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2) return c + 32;
  if (c >= 0x410 && c <= 0x42F) return c + 32;
  if (c >= 0x400 && c <= 0x40F) return c + 80;
  return c;
}

bool is_cased_letter(uint32_t c) { return to_upper(c) != c || to_lower(c) != c; }

}  // namespace

std::string py_strip(std::string_view s, const std::string* chars, bool left, bool right) {
  std::vector<uint32_t> set;
  if (chars) set = utf8_decode(*chars);
  auto strip_it = [&](uint32_t cp) { return chars ? in_chars(cp, set) : python_is_space(cp); };
  // Works on bytes: code points are decoded only at the two ends.
  size_t b = 0, e = s.size();
  if (left) {
    while (b < e) {
      size_t next = b;
      if (!strip_it(utf8_next(s, next))) break;
      b = next;
    }
  }
  if (right) {
    while (e > b) {
      size_t start = e - 1;
      while (start > b && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80 && e - start < 4) {
        --start;
      }
      size_t next = start;
      uint32_t cp = utf8_next(s, next);
      if (next != e) {  // not one well-formed code point: treat the last byte alone
        start = e - 1;
        next = start;
        cp = utf8_next(s, next);
      }
      if (!strip_it(cp)) break;
      e = start;
    }
  }
  return std::string(s.substr(b, e - b));
}

std::vector<std::string> py_split(std::string_view s, const std::string* sep, int64_t maxsplit,
                                  bool from_right) {
  std::vector<std::string> out;
  if (sep == nullptr) {
    std::vector<uint32_t> cps = utf8_decode(s);
    // Words as [begin, end) code-point ranges.
    std::vector<std::pair<size_t, size_t>> words;
    size_t i = 0;
    while (i < cps.size()) {
      while (i < cps.size() && python_is_space(cps[i])) ++i;
      if (i >= cps.size()) break;
      size_t b = i;
      while (i < cps.size() && !python_is_space(cps[i])) ++i;
      words.emplace_back(b, i);
    }
    if (maxsplit < 0 || size_t(maxsplit) + 1 >= words.size()) {
      for (auto [b, e] : words) out.push_back(utf8_encode(cps, b, e));
      return out;
    }
    size_t n = size_t(maxsplit);
    if (!from_right) {
      for (size_t k = 0; k < n; ++k)
        out.push_back(utf8_encode(cps, words[k].first, words[k].second));
      // The rest keeps its inner whitespace but loses trailing whitespace.
      size_t e = cps.size();
      while (e > 0 && python_is_space(cps[e - 1])) --e;
      out.push_back(utf8_encode(cps, words[n].first, e));
    } else {
      size_t b = 0;
      while (b < cps.size() && python_is_space(cps[b])) ++b;
      out.push_back(utf8_encode(cps, b, words[words.size() - n - 1].second));
      for (size_t k = words.size() - n; k < words.size(); ++k) {
        out.push_back(utf8_encode(cps, words[k].first, words[k].second));
      }
    }
    return out;
  }
  const std::string& d = *sep;
  if (d.empty()) throw ValueError("empty separator");
  if (!from_right) {
    size_t pos = 0;
    int64_t splits = 0;
    while (maxsplit < 0 || splits < maxsplit) {
      size_t f = s.find(d, pos);
      if (f == std::string_view::npos) break;
      out.emplace_back(s.substr(pos, f - pos));
      pos = f + d.size();
      ++splits;
    }
    out.emplace_back(s.substr(pos));
    return out;
  }
  size_t end = s.size();
  int64_t splits = 0;
  std::vector<std::string> rev;
  while (maxsplit < 0 || splits < maxsplit) {
    if (end < d.size()) break;
    size_t f = s.rfind(d, end - d.size());
    if (f == std::string_view::npos) break;
    rev.emplace_back(s.substr(f + d.size(), end - f - d.size()));
    end = f;
    ++splits;
  }
  rev.emplace_back(s.substr(0, end));
  out.assign(rev.rbegin(), rev.rend());
  return out;
}

std::string py_upper(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) utf8_append(out, to_upper(utf8_next(s, i)));
  return out;
}

std::string py_lower(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) utf8_append(out, to_lower(utf8_next(s, i)));
  return out;
}

std::string py_title(std::string_view s) {
  std::string out;
  bool prev_cased = false;
  for (size_t i = 0; i < s.size();) {
    uint32_t c = utf8_next(s, i);
    utf8_append(out, prev_cased ? to_lower(c) : to_upper(c));
    prev_cased = is_cased_letter(c);
  }
  return out;
}

std::string py_capitalize(std::string_view s) {
  std::string out;
  bool first = true;
  for (size_t i = 0; i < s.size();) {
    uint32_t c = utf8_next(s, i);
    utf8_append(out, first ? to_upper(c) : to_lower(c));
    first = false;
  }
  return out;
}

std::string py_replace(std::string_view s, std::string_view from, std::string_view to,
                       int64_t count) {
  std::string out;
  if (from.empty()) {
    // Python inserts `to` between every code point (and at both ends).
    int64_t done = 0;
    size_t i = 0;
    while (true) {
      if (count < 0 || done < count) {
        out += to;
        ++done;
      }
      if (i >= s.size()) break;
      size_t b = i;
      utf8_next(s, i);
      out.append(s.substr(b, i - b));
    }
    return out;
  }
  size_t pos = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    size_t f = s.find(from, pos);
    if (f == std::string_view::npos) break;
    out.append(s.substr(pos, f - pos));
    out.append(to);
    pos = f + from.size();
    ++done;
  }
  out.append(s.substr(pos));
  return out;
}

int64_t py_count(std::string_view s, std::string_view needle) {
  if (needle.empty()) return int64_t(utf8_length(s)) + 1;
  int64_t n = 0;
  for (size_t pos = s.find(needle); pos != std::string_view::npos;
       pos = s.find(needle, pos + needle.size())) {
    ++n;
  }
  return n;
}

}  // namespace runnel::tmpl
