// UTF-8 and Python-string helpers: code-point iteration, str.isspace()/isprintable() predicates,
// and the str methods whose semantics templates rely on (strip, split, title, ...).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace runnel::tmpl {

// Decodes the code point at s[i] and advances i; invalid bytes decode as themselves (U+0080..FF).
uint32_t utf8_next(std::string_view s, size_t& i);
void utf8_append(std::string& out, uint32_t cp);
// Number of code points.
size_t utf8_length(std::string_view s);
// Code points of s.
std::vector<uint32_t> utf8_decode(std::string_view s);
std::string utf8_encode(const std::vector<uint32_t>& cps, size_t begin, size_t end);

bool python_is_space(uint32_t cp);
bool python_is_printable(uint32_t cp);

// str.strip/lstrip/rstrip; `chars` null means whitespace.
std::string py_strip(std::string_view s, const std::string* chars, bool left, bool right);
// str.split / str.rsplit; `sep` null means runs of whitespace. maxsplit < 0: no limit.
std::vector<std::string> py_split(std::string_view s, const std::string* sep, int64_t maxsplit,
                                  bool from_right);
std::string py_upper(std::string_view s);
std::string py_lower(std::string_view s);
std::string py_title(std::string_view s);
std::string py_capitalize(std::string_view s);
std::string py_replace(std::string_view s, std::string_view from, std::string_view to,
                       int64_t count);
// Number of non-overlapping occurrences (empty needle: length + 1, as Python).
int64_t py_count(std::string_view s, std::string_view needle);

}  // namespace runnel::tmpl
