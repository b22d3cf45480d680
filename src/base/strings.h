// Small string helpers shared by every layer (GCC 12 has no <format>).
#pragma once

#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace runnel {

// Concatenates anything that has an operator<< into one string.
template <class... Parts>
std::string str_cat(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}

// "a, b, c" from a range of printable values.
template <class Range>
std::string join(const Range& items, std::string_view sep = ", ") {
  std::ostringstream out;
  bool first = true;
  for (const auto& item : items) {
    if (!first) out << sep;
    out << item;
    first = false;
  }
  return out.str();
}

std::vector<std::string> split(std::string_view text, char sep);
bool starts_with(std::string_view text, std::string_view prefix);
bool ends_with(std::string_view text, std::string_view suffix);
// Human-readable byte count: "1.5 GiB".
std::string format_bytes(double bytes);

}  // namespace runnel
