// GrammarMatcher: a persistent (parent-linked) stack in an arena makes a grammar state two ints, so
// the trie walk keeps one state per depth and undoes nothing; frames pushed during a walk are
// dropped when it ends.
#include "sample/matcher.h"

#include <algorithm>

#include "base/assert.h"

namespace runnel::sample {

namespace {
constexpr size_t kCacheSize = 32;
}

GrammarMatcher::GrammarMatcher(std::shared_ptr<const Grammar> grammar,
                               std::shared_ptr<const Vocabulary> vocab)
    : grammar_(std::move(grammar)), vocab_(std::move(vocab)) {
  state_ = {grammar_->start(), -1};
  walk_states_.resize(static_cast<size_t>(vocab_->max_depth()) + 1);
}

inline bool GrammarMatcher::step(State& st, uint8_t byte) {
  const Grammar& g = *grammar_;
  for (;;) {
    const int32_t a = g.action(st.pos, byte);
    if (a >= 0) {
      st.pos = a;
      return true;
    }
    if (a != Grammar::kReject) {
      const Grammar::Call& c = g.call(a);
      const int32_t below = st.top < 0 ? 0 : frames_[static_cast<size_t>(st.top)].cum;
      frames_.push_back({c.ret, st.top, below + g.dist(c.ret)});
      st.top = static_cast<int32_t>(frames_.size()) - 1;
      st.pos = c.callee;
      continue;
    }
    if (st.top < 0 || !g.accepting(st.pos)) return false;
    const Frame& f = frames_[static_cast<size_t>(st.top)];
    st.pos = f.ret;
    st.top = f.parent;
  }
}

int32_t GrammarMatcher::distance(const State& st) const {
  return grammar_->dist(st.pos) + (st.top < 0 ? 0 : frames_[static_cast<size_t>(st.top)].cum);
}

int32_t GrammarMatcher::completion_bytes() const { return distance(state_); }

bool GrammarMatcher::is_finished() {
  if (!is_complete()) return false;
  const size_t n_frames = frames_.size();
  for (int b = 0; b < 256; ++b) {
    State st = state_;
    const bool ok = step(st, static_cast<uint8_t>(b));
    frames_.resize(n_frames);
    if (ok) return false;
  }
  return true;
}

std::vector<int32_t> GrammarMatcher::stack_of(const State& st) const {
  std::vector<int32_t> out;
  for (int32_t f = st.top; f >= 0; f = frames_[static_cast<size_t>(f)].parent) {
    out.push_back(frames_[static_cast<size_t>(f)].ret);
  }
  return out;
}

int32_t GrammarMatcher::add_text_tokens(TokenMask& mask, int64_t budget_after) {
  const Grammar::TextChain* chain = grammar_->text_chain(state_.pos);
  if (chain == nullptr) return -1;
  const int32_t room = std::min(chain->loops ? Vocabulary::kMaxTextCp : chain->last - chain->index,
                                Vocabulary::kMaxTextCp);
  const int32_t cum = state_.top < 0 ? 0 : frames_[static_cast<size_t>(state_.top)].cum;
  // A text token of k code points lands on count index + k (clamped when the chain loops).
  int32_t max_dist = 0;
  int32_t lo = 0;  // text tokens with lo < k <= hi are allowed, as one run of sizes
  auto& dst = mask.words();
  const auto add_run = [&](int32_t from, int32_t to) {  // k in (from, to]
    if (to <= from) return;
    const auto& upto = vocab_->text_upto(to).words();
    if (from == 0) {
      for (size_t i = 0; i < dst.size(); ++i) dst[i] |= upto[i];
    } else {
      const auto& below = vocab_->text_upto(from).words();
      for (size_t i = 0; i < dst.size(); ++i) dst[i] |= upto[i] & ~below[i];
    }
  };
  for (int32_t k = 1; k <= room; ++k) {
    const int32_t j = std::min(chain->index + k, chain->last);
    const int32_t d = grammar_->dist(chain->first + j) + cum;
    max_dist = std::max(max_dist, d);
    if (budget_after >= 0 && d > budget_after) {
      add_run(lo, k - 1);
      lo = k;
    }
  }
  add_run(lo, room);
  return max_dist;
}

int32_t GrammarMatcher::walk(const Vocabulary::Trie& trie, TokenMask& mask, int64_t budget_after) {
  ++n_walks_;
  const auto& nodes = trie.nodes;
  const auto& ids = trie.ids;
  const Grammar& g = *grammar_;
  const size_t n_frames = frames_.size();
  State* states = walk_states_.data();
  states[0] = state_;
  int32_t max_dist = 0;
  const size_t n = nodes.size();
  for (size_t i = 0; i < n;) {
    const Vocabulary::Node& node = nodes[i];
    State st = states[node.depth - 1];
    if (!step(st, node.byte)) {
      i = node.skip;
      continue;
    }
    states[node.depth] = st;
    if (node.n_tok != 0) {
      const int32_t d =
          g.dist(st.pos) + (st.top < 0 ? 0 : frames_[static_cast<size_t>(st.top)].cum);
      max_dist = std::max(max_dist, d);
      if (budget_after < 0 || d <= budget_after) {
        for (uint32_t k = 0; k < node.n_tok; ++k) mask.set(ids[node.tok_begin + k]);
      }
    }
    ++i;
  }
  frames_.resize(n_frames);
  return max_dist;
}

void GrammarMatcher::fill_mask(TokenMask& mask, int64_t tokens_left) {
  const int32_t n_vocab = vocab_->n_vocab();
  if (mask.size() != n_vocab) mask.resize(n_vocab);
  const int64_t budget_after = tokens_left < 0 ? -1 : std::max<int64_t>(tokens_left - 1, 0);
  const std::vector<int32_t> stack = stack_of(state_);
  ++clock_;
  CacheEntry* entry = nullptr;
  for (auto& e : cache_) {
    if (e.pos == state_.pos && e.stack == stack) {
      entry = &e;
      break;
    }
  }
  if (entry != nullptr && (budget_after < 0 || entry->max_dist <= budget_after)) {
    ++n_cache_hits_;
    entry->last_use = clock_;
    mask.words() = entry->mask.words();
  } else {
    mask.clear();
    int32_t max_dist = add_text_tokens(mask, budget_after);
    if (max_dist >= 0) {
      max_dist = std::max(max_dist, walk(vocab_->non_text_trie(), mask, budget_after));
    } else {
      max_dist = walk(vocab_->trie(), mask, budget_after);
    }
    // Only masks that the budget did not trim are worth keeping.
    if (budget_after < 0 || max_dist <= budget_after) {
      if (entry == nullptr) {
        if (cache_.size() < kCacheSize) {
          entry = &cache_.emplace_back();
        } else {
          entry = &*std::min_element(
              cache_.begin(), cache_.end(),
              [](const auto& a, const auto& b) { return a.last_use < b.last_use; });
        }
      }
      entry->pos = state_.pos;
      entry->stack = stack;
      entry->max_dist = max_dist;
      entry->last_use = clock_;
      entry->mask = mask;
    }
  }
  if (is_complete()) {
    for (const int32_t id : vocab_->eos_ids()) mask.set(id);
  }
}

bool GrammarMatcher::accept_bytes(std::string_view bytes) {
  State st = state_;
  const size_t n_frames = frames_.size();
  for (const char ch : bytes) {
    if (!step(st, static_cast<uint8_t>(ch))) {
      frames_.resize(n_frames);
      return false;
    }
  }
  state_ = st;
  if (frames_.size() > 4096) compact();
  return true;
}

bool GrammarMatcher::accept_token(int32_t id) {
  if (id < 0 || id >= vocab_->n_vocab()) return false;
  if (vocab_->is_eos(id)) return is_complete();
  const std::string& bytes = vocab_->token(id);
  if (bytes.empty()) return false;
  return accept_bytes(bytes);
}

void GrammarMatcher::compact() {
  // Keep only the live stack: frames are immutable, so copying the chain bottom-up is enough.
  std::vector<int32_t> chain;
  for (int32_t f = state_.top; f >= 0; f = frames_[static_cast<size_t>(f)].parent)
    chain.push_back(f);
  std::vector<Frame> fresh;
  fresh.reserve(chain.size() + 64);
  int32_t parent = -1;
  for (size_t i = chain.size(); i-- > 0;) {
    Frame f = frames_[static_cast<size_t>(chain[i])];
    f.parent = parent;
    fresh.push_back(f);
    parent = static_cast<int32_t>(fresh.size()) - 1;
  }
  frames_ = std::move(fresh);
  state_.top = parent;
}

}  // namespace runnel::sample
