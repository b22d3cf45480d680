// Lookups over the generated tables (binary search over sorted runs), UTF-8 validation and
// repair, and NFC (decompose, order by combining class, compose; Hangul algorithmically).
#include "tokenizer/unicode.h"

#include <algorithm>
#include <vector>

namespace runnel::tokenizer {
namespace {

using namespace unicode_data;

// Runs are (start << 8 | value), sorted by start; returns the value of the run holding cp.
uint8_t run_lookup(const uint32_t* runs, size_t n, uint32_t cp) {
  const uint32_t key = cp << 8 | 0xff;
  const uint32_t* it = std::upper_bound(runs, runs + n, key);
  if (it == runs) return 0;
  return static_cast<uint8_t>(it[-1] & 0xff);
}

uint8_t ccc(uint32_t cp) {
  if (cp < 0x300) return 0;
  return run_lookup(kCccRuns, kCccRunCount, cp);
}

constexpr uint32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr uint32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount,
                   kSCount = kLCount * kNCount;

void decompose(uint32_t cp, std::vector<uint32_t>& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    uint32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out.push_back(kTBase + s % kTCount);
    return;
  }
  if (cp >= 0xC0) {
    const auto* end = kDecomp + kDecompCount;
    const auto* it =
        std::lower_bound(kDecomp, end, cp, [](const uint32_t* e, uint32_t v) { return e[0] < v; });
    if (it != end && (*it)[0] == cp) {
      decompose((*it)[1], out);
      if ((*it)[2] != 0) decompose((*it)[2], out);
      return;
    }
  }
  out.push_back(cp);
}

uint32_t compose_pair(uint32_t a, uint32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase &&
      b < kTBase + kTCount)
    return a + (b - kTBase);
  const auto* end = kCompose + kComposeCount;
  const auto* it = std::lower_bound(kCompose, end, std::make_pair(a, b),
                                    [](const uint32_t* e, std::pair<uint32_t, uint32_t> v) {
                                      return e[0] < v.first || (e[0] == v.first && e[1] < v.second);
                                    });
  if (it != end && (*it)[0] == a && (*it)[1] == b) return (*it)[2];
  return 0;
}

}  // namespace

Cat category(uint32_t cp) {
  if (cp >= 0x110000) return Cat::Cn;
  return static_cast<Cat>(run_lookup(kCategoryRuns, kCategoryRunCount, cp));
}

bool is_white_space(uint32_t cp) {
  if (cp < 0x80) return cp == ' ' || (cp >= 0x09 && cp <= 0x0d);
  switch (cp) {
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | cp >> 6));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | cp >> 12));
    out.push_back(static_cast<char>(0x80 | (cp >> 6 & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | cp >> 18));
    out.push_back(static_cast<char>(0x80 | (cp >> 12 & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp >> 6 & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

namespace {
// Length of the valid sequence starting at s[i], or -(length of the maximal invalid subpart)
// (at least 1), or 0 when the bytes left are a valid but incomplete prefix.
int sequence_at(std::string_view s, size_t i) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  unsigned char c = p[i];
  if (c < 0x80) return 1;
  int need;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    need = 1;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 2;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 3;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return -1;
  }
  for (int k = 1; k <= need; ++k) {
    if (i + k >= n) return 0;
    unsigned char b = p[i + k];
    if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return -k;
  }
  return need + 1;
}
}  // namespace

size_t valid_utf8_prefix(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    int r = sequence_at(s, i);
    if (r <= 0) return i;
    i += static_cast<size_t>(r);
  }
  return i;
}

size_t incomplete_utf8_suffix(std::string_view s) {
  size_t start = s.size() >= 3 ? s.size() - 3 : 0;
  for (size_t i = start; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80 && c < 0xC0) continue;
    if (sequence_at(s, i) == 0) return s.size() - i;
  }
  return 0;
}

void append_lossy_utf8(std::string& out, std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      out.push_back(s[i++]);
      continue;
    }
    int r = sequence_at(s, i);
    if (r > 0) {
      out.append(s.substr(i, static_cast<size_t>(r)));
      i += static_cast<size_t>(r);
    } else {
      out.append("\xEF\xBF\xBD");
      i += r == 0 ? s.size() - i : static_cast<size_t>(-r);
    }
  }
}

namespace {
// One bit per code point that NFC may change or combine: a non-zero combining class, a
// canonical decomposition, or the second half of a composition (incl. Hangul V and T jamo).
// A string without any of them is already in NFC.
struct NfcSensitive {
  std::vector<uint64_t> bits = std::vector<uint64_t>(0x110000 / 64, 0);
  void set(uint32_t cp) { bits[cp >> 6] |= uint64_t{1} << (cp & 63); }
  NfcSensitive() {
    for (size_t i = 0; i < kCccRunCount; ++i) {
      if ((kCccRuns[i] & 0xff) == 0) continue;
      uint32_t end = i + 1 < kCccRunCount ? kCccRuns[i + 1] >> 8 : 0x110000;
      for (uint32_t cp = kCccRuns[i] >> 8; cp < end; ++cp) set(cp);
    }
    for (size_t i = 0; i < kDecompCount; ++i) set(kDecomp[i][0]);
    for (size_t i = 0; i < kComposeCount; ++i) set(kCompose[i][1]);
    for (uint32_t cp = kVBase; cp < kVBase + kVCount; ++cp) set(cp);
    for (uint32_t cp = kTBase + 1; cp < kTBase + kTCount; ++cp) set(cp);
    for (uint32_t cp = kSBase; cp < kSBase + kSCount; ++cp)
      bits[cp >> 6] &= ~(uint64_t{1} << (cp & 63));
  }
  bool test(uint32_t cp) const { return cp < 0x110000 && (bits[cp >> 6] >> (cp & 63) & 1); }
};
}  // namespace

std::string nfc(std::string_view s) {
  static const NfcSensitive sensitive;
  bool simple = true;
  for (size_t i = 0; i < s.size();) {
    if (static_cast<unsigned char>(s[i]) < 0xC0) {
      ++i;
      continue;
    }
    size_t len;
    if (sensitive.test(decode_utf8(s, i, &len))) {
      simple = false;
      break;
    }
    i += len;
  }
  if (simple) return std::string(s);
  std::vector<uint32_t> cps;
  cps.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t len;
    uint32_t cp = decode_utf8(s, i, &len);
    decompose(cp, cps);
    i += len;
  }
  // Canonical ordering: stable sort of each run of non-starters by combining class.
  for (size_t i = 0; i < cps.size();) {
    if (ccc(cps[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < cps.size() && ccc(cps[j]) != 0) ++j;
    std::stable_sort(cps.begin() + static_cast<ptrdiff_t>(i),
                     cps.begin() + static_cast<ptrdiff_t>(j),
                     [](uint32_t a, uint32_t b) { return ccc(a) < ccc(b); });
    i = j;
  }
  // Canonical composition.
  std::vector<uint32_t> res;
  res.reserve(cps.size());
  size_t starter = SIZE_MAX;
  int last_ccc = 0;  // combining class of the last char kept after the starter
  for (uint32_t cp : cps) {
    const int c = ccc(cp);
    if (starter != SIZE_MAX) {
      const bool adjacent = res.size() == starter + 1;
      if (adjacent || (last_ccc != 0 && last_ccc < c)) {
        if (uint32_t comp = compose_pair(res[starter], cp)) {
          res[starter] = comp;
          continue;
        }
      }
    }
    if (c == 0) starter = res.size();
    last_ccc = c;
    res.push_back(cp);
  }
  std::string out;
  out.reserve(s.size());
  for (uint32_t cp : res) append_utf8(out, cp);
  return out;
}

}  // namespace runnel::tokenizer
