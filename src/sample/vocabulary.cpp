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

Vocabulary::Vocabulary(std::vector<std::string> tokens, std::vector<int32_t> eos_ids)
    : tokens_(std::move(tokens)), eos_ids_(std::move(eos_ids)) {
  const auto n = static_cast<int32_t>(tokens_.size());
  eos_flags_.assign(tokens_.size(), 0);
  for (const int32_t id : eos_ids_) {
    check(id >= 0 && id < n, "sample", "vocabulary: EOS id ", id, " is outside [0, ", n, ")");
    eos_flags_[static_cast<size_t>(id)] = 1;
  }
  for (int32_t id = 0; id < n; ++id) {
    const std::string& t = tokens_[static_cast<size_t>(id)];
    check(t.size() <= 65535, "sample", "vocabulary: token ", id, " is longer than 65535 bytes");
    if (!t.empty() && !eos_flags_[static_cast<size_t>(id)]) sorted_ids_.push_back(id);
  }
  std::sort(sorted_ids_.begin(), sorted_ids_.end(), [&](int32_t a, int32_t b) {
    const int c = tokens_[static_cast<size_t>(a)].compare(tokens_[static_cast<size_t>(b)]);
    return c != 0 ? c < 0 : a < b;
  });

  std::vector<uint32_t> path;  // node index per depth - 1
  const std::string* prev = nullptr;
  for (size_t i = 0; i < sorted_ids_.size(); ++i) {
    const std::string& s = tokens_[static_cast<size_t>(sorted_ids_[i])];
    size_t lcp = 0;
    if (prev != nullptr) {
      while (lcp < s.size() && lcp < prev->size() && s[lcp] == (*prev)[lcp]) ++lcp;
    }
    if (prev != nullptr && lcp == s.size() && lcp == prev->size()) {
      ++nodes_[path.back()].n_tok;  // same bytes as the previous token
      continue;
    }
    while (path.size() > lcp) {
      nodes_[path.back()].skip = static_cast<uint32_t>(nodes_.size());
      path.pop_back();
    }
    for (size_t d = lcp; d < s.size(); ++d) {
      path.push_back(static_cast<uint32_t>(nodes_.size()));
      nodes_.push_back({0, 0, static_cast<uint16_t>(d + 1), 0, static_cast<uint8_t>(s[d])});
    }
    Node& last = nodes_[path.back()];
    last.tok_begin = static_cast<uint32_t>(i);
    last.n_tok = 1;
    max_depth_ = std::max(max_depth_, static_cast<int32_t>(s.size()));
    prev = &s;
  }
  while (!path.empty()) {
    nodes_[path.back()].skip = static_cast<uint32_t>(nodes_.size());
    path.pop_back();
  }
}

}  // namespace runnel::sample
