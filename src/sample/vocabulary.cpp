// Vocabulary trie construction: tokens sorted by bytes, nodes emitted in preorder from the common
// prefixes of neighbours, so a prefix's tokens come right when its node is created.
#include "sample/vocabulary.h"

#include <algorithm>
#include <bit>

#include "base/error.h"

namespace runnel::sample {

void TokenMask::set_all() {
  std::fill(words_.begin(), words_.end(), ~uint64_t{0});
  if (n_ % 64 != 0 && !words_.empty()) words_.back() = (uint64_t{1} << (n_ % 64)) - 1;
}

int32_t TokenMask::count() const {
  int32_t n = 0;
  for (const uint64_t w : words_) n += std::popcount(w);
  return n;
}

namespace {

// Code points if `t` is text (see Vocabulary::text_cp), else 0.
int32_t text_code_points(const std::string& t) {
  int32_t n = 0;
  const auto* p = reinterpret_cast<const unsigned char*>(t.data());
  const auto* end = p + t.size();
  const auto cont = [&](const unsigned char* q, unsigned char lo, unsigned char hi) {
    return q < end && *q >= lo && *q <= hi;
  };
  while (p < end) {
    const unsigned char b = *p;
    size_t len = 0;
    if (b >= 0x20 && b < 0x80) {
      if (b == '"' || b == '\\') return 0;
      len = 1;
    } else if (b >= 0xc2 && b <= 0xdf) {
      len = cont(p + 1, 0x80, 0xbf) ? 2 : 0;
    } else if (b >= 0xe0 && b <= 0xef) {
      const unsigned char lo = b == 0xe0 ? 0xa0 : 0x80, hi = b == 0xed ? 0x9f : 0xbf;
      len = cont(p + 1, lo, hi) && cont(p + 2, 0x80, 0xbf) ? 3 : 0;
    } else if (b >= 0xf0 && b <= 0xf4) {
      const unsigned char lo = b == 0xf0 ? 0x90 : 0x80, hi = b == 0xf4 ? 0x8f : 0xbf;
      len = cont(p + 1, lo, hi) && cont(p + 2, 0x80, 0xbf) && cont(p + 3, 0x80, 0xbf) ? 4 : 0;
    }
    if (len == 0) return 0;
    p += len;
    ++n;
  }
  return n;
}

}  // namespace

Vocabulary::Vocabulary(std::vector<std::string> tokens, std::vector<int32_t> eos_ids)
    : tokens_(std::move(tokens)), eos_ids_(std::move(eos_ids)) {
  const auto n = static_cast<int32_t>(tokens_.size());
  eos_flags_.assign(tokens_.size(), 0);
  for (const int32_t id : eos_ids_) {
    check(id >= 0 && id < n, "sample", "vocabulary: EOS id ", id, " is outside [0, ", n, ")");
    eos_flags_[static_cast<size_t>(id)] = 1;
  }
  std::vector<int32_t> ids, non_text;
  text_cp_.assign(tokens_.size(), 0);
  text_upto_.resize(kMaxTextCp + 1);
  for (auto& m : text_upto_) m.resize(n);
  for (int32_t id = 0; id < n; ++id) {
    const std::string& t = tokens_[static_cast<size_t>(id)];
    check(t.size() <= 65535, "sample", "vocabulary: token ", id, " is longer than 65535 bytes");
    if (t.empty() || eos_flags_[static_cast<size_t>(id)]) continue;
    ids.push_back(id);
    const int32_t cp = text_code_points(t);
    if (cp == 0 || cp > kMaxTextCp) {
      non_text.push_back(id);
      continue;
    }
    text_cp_[static_cast<size_t>(id)] = static_cast<uint8_t>(cp);
    for (int32_t k = cp; k <= kMaxTextCp; ++k) text_upto_[static_cast<size_t>(k)].set(id);
  }
  build_trie(std::move(ids), all_);
  build_trie(std::move(non_text), non_text_);
}

void Vocabulary::build_trie(std::vector<int32_t> ids, Trie& out) {
  std::sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) {
    const int c = tokens_[static_cast<size_t>(a)].compare(tokens_[static_cast<size_t>(b)]);
    return c != 0 ? c < 0 : a < b;
  });
  auto& nodes = out.nodes;
  std::vector<uint32_t> path;  // node index per depth - 1
  const std::string* prev = nullptr;
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::string& s = tokens_[static_cast<size_t>(ids[i])];
    size_t lcp = 0;
    if (prev != nullptr) {
      while (lcp < s.size() && lcp < prev->size() && s[lcp] == (*prev)[lcp]) ++lcp;
    }
    if (prev != nullptr && lcp == s.size() && lcp == prev->size()) {
      ++nodes[path.back()].n_tok;  // same bytes as the previous token
      continue;
    }
    while (path.size() > lcp) {
      nodes[path.back()].skip = static_cast<uint32_t>(nodes.size());
      path.pop_back();
    }
    for (size_t d = lcp; d < s.size(); ++d) {
      path.push_back(static_cast<uint32_t>(nodes.size()));
      nodes.push_back({0, 0, static_cast<uint16_t>(d + 1), 0, static_cast<uint8_t>(s[d])});
    }
    Node& last = nodes[path.back()];
    last.tok_begin = static_cast<uint32_t>(i);
    last.n_tok = 1;
    max_depth_ = std::max(max_depth_, static_cast<int32_t>(s.size()));
    prev = &s;
  }
  while (!path.empty()) {
    nodes[path.back()].skip = static_cast<uint32_t>(nodes.size());
    path.pop_back();
  }
  out.ids = std::move(ids);
}

}  // namespace runnel::sample
