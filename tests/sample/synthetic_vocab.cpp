// Synthetic vocabularies (see synthetic_vocab.h).
#include "synthetic_vocab.h"

#include <set>

#include "sample/rng.h"

namespace runnel::sample::testing {

std::vector<std::string> small_json_vocab(int32_t& eos) {
  std::vector<std::string> v;
  for (int b = 0; b < 256; ++b) v.emplace_back(1, static_cast<char>(b));
  for (const char* t : {"{\"",
                        "\":",
                        "\": ",
                        "\",",
                        "\", \"",
                        "\"}",
                        "\"]",
                        "}]",
                        "]}",
                        "},",
                        "],",
                        "[{",
                        "[[",
                        "{}",
                        "[]",
                        "\":\"",
                        "\": \"",
                        ",\"",
                        ", \"",
                        "\n",
                        "\n  ",
                        "  ",
                        "    ",
                        " \"",
                        "true",
                        "false",
                        "null",
                        "tr",
                        "ue",
                        "fal",
                        "se",
                        "nu",
                        "ll",
                        "0",
                        "1",
                        "12",
                        "100",
                        "3.",
                        ".5",
                        "e+",
                        "E-",
                        "-1",
                        "00",
                        "42",
                        "name",
                        "id",
                        "tags",
                        "type",
                        "value",
                        "items",
                        "hello",
                        " world",
                        "the",
                        " of",
                        "ing",
                        "ab",
                        "abc",
                        "x",
                        "é",
                        "日本",
                        "\xf0\x9f\x98\x80",
                        "\\n",
                        "\\\"",
                        "\\u00e9",
                        "\\ud800",
                        "\\",
                        "\\u",
                        "cat",
                        "dog",
                        "red",
                        "green",
                        "blue",
                        "{\"id\":",
                        "\"name\": \"",
                        "\"tags\": [",
                        "\", \"",
                        "a\"",
                        "b\",",
                        "1,",
                        "2]",
                        "3}",
                        "},{",
                        "\":{",
                        "\":[",
                        "\":true",
                        "\":null",
                        "\":0",
                        "\t",
                        "\r\n",
                        " ",
                        "\xe2\x82",
                        "\xac",
                        "\xc3"}) {
    v.emplace_back(t);
  }
  v.emplace_back("");  // a special token (not text)
  eos = static_cast<int32_t>(v.size());
  v.emplace_back("</s>");  // EOS: its bytes never match a grammar, only the EOS rule allows it
  return v;
}

std::vector<std::string> large_vocab(int32_t n, int32_t& eos, uint64_t seed) {
  int32_t small_eos = 0;
  std::vector<std::string> v = small_json_vocab(small_eos);
  v.pop_back();  // EOS goes last
  std::set<std::string> seen(v.begin(), v.end());
  Rng rng(seed);
  const char* onsets[] = {"",   "b",  "c",  "d",  "f",  "g",  "h",  "j",  "k",  "l",  "m",
                          "n",  "p",  "r",  "s",  "t",  "v",  "w",  "st", "tr", "pl", "ch",
                          "sh", "th", "gr", "br", "cl", "sp", "qu", "wh", "fr", "sc"};
  const char* nuclei[] = {"a", "e", "i", "o", "u", "ai", "ea", "ou", "io", "ee", "oo", "y"};
  const char* codas[] = {"",  "n", "r",    "s",    "t",   "l",  "nd", "ng", "st", "ck",
                         "m", "x", "ment", "tion", "ing", "ed", "er", "ly", "al", "ous"};
  const auto pick = [&](auto& arr) {
    return std::string(arr[rng.next() % (sizeof(arr) / sizeof(arr[0]))]);
  };
  while (static_cast<int32_t>(v.size()) < n - 1) {
    std::string t;
    const uint64_t kind = rng.next() % 100;
    if (kind < 70) {  // words, often with a leading space or capital
      const int syllables = 1 + static_cast<int>(rng.next() % 3);
      for (int i = 0; i < syllables; ++i) t += pick(onsets) + pick(nuclei) + pick(codas);
      if (rng.next() % 3 == 0) t[0] = static_cast<char>(std::toupper(t[0]));
      if (rng.next() % 2 == 0) t = " " + t;
    } else if (kind < 80) {  // byte pairs / triples of printable ASCII (punctuation, code)
      const int len = 2 + static_cast<int>(rng.next() % 3);
      for (int i = 0; i < len; ++i) t += static_cast<char>(0x21 + rng.next() % 94);
    } else if (kind < 86) {  // numbers
      t = std::to_string(rng.next() % 100000);
    } else if (kind < 92) {  // whitespace + punctuation runs, as code vocabularies have
      t = std::string(1 + rng.next() % 8, ' ');
      if (rng.next() % 2) t = "\n" + t;
      if (rng.next() % 2) t += static_cast<char>("{}[]\"(),:;"[rng.next() % 10]);
    } else {  // multi-byte UTF-8 (Latin-1 supplement, CJK)
      const int len = 1 + static_cast<int>(rng.next() % 3);
      for (int i = 0; i < len; ++i) {
        if (rng.next() % 2) {
          const uint32_t cp = 0xC0 + rng.next() % 0x40;
          t += static_cast<char>(0xC0 | (cp >> 6));
          t += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
          const uint32_t cp = 0x4E00 + rng.next() % 0x5000;
          t += static_cast<char>(0xE0 | (cp >> 12));
          t += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
          t += static_cast<char>(0x80 | (cp & 0x3F));
        }
      }
    }
    if (seen.insert(t).second) v.push_back(t);
  }
  eos = static_cast<int32_t>(v.size());
  v.emplace_back("<|end|>");
  return v;
}

}  // namespace runnel::sample::testing
