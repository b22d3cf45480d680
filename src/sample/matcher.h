// Per-request state of constrained decoding: where the grammar is after the tokens accepted so
// far, and the mask of tokens that may come next. The mask walks the vocabulary trie once, pruning
// every subtree whose prefix the grammar rejects; masks are cached per grammar state, so a state
// that repeats (inside a long string, say) costs a lookup.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "sample/grammar.h"
#include "sample/vocabulary.h"

namespace runnel::sample {

class GrammarMatcher {
 public:
  GrammarMatcher(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const Vocabulary> vocab);

  // Sets exactly the tokens allowed next: text tokens the grammar accepts as a whole, and the EOS
  // ids when the value is complete. `tokens_left` (-1: unbounded) is how many tokens may still be
  // generated, this one included; when bounded, a token is allowed only if the value can still be
  // completed in the tokens left after it (counting one byte per token, which holds when the
  // vocabulary has single-byte tokens), so generation that hits its budget still ends complete.
  // The mask is never empty while a vocabulary has single-byte tokens and tokens_left >= the
  // completion_bytes() (an invariant the previous masks keep).
  void fill_mask(TokenMask& mask, int64_t tokens_left = -1);
  // Advances over a token; returns false (state unchanged) when the grammar rejects it. An EOS id
  // is accepted only when the value is complete.
  bool accept_token(int32_t id);
  // Advances over raw bytes; false (state unchanged) when rejected.
  bool accept_bytes(std::string_view bytes);
  // The value is complete (EOS allowed).
  bool is_complete() const { return completion_bytes() == 0; }
  // The value is complete and no byte may follow it: the caller should stop.
  bool is_finished();
  // Fewest bytes that complete the value.
  int32_t completion_bytes() const;

  // Mask cache statistics.
  int64_t n_cache_hits() const { return n_cache_hits_; }
  int64_t n_walks() const { return n_walks_; }

 private:
  struct Frame {
    int32_t ret;
    int32_t parent;
    int32_t cum;  // sum of dist(ret) over this frame and all below it
  };
  struct State {
    int32_t pos;
    int32_t top;  // frame index, -1 when the stack is empty
  };
  struct CacheEntry {
    int32_t pos;
    std::vector<int32_t> stack;
    int32_t max_dist;  // largest completion distance after any allowed token
    uint64_t last_use;
    TokenMask mask;
  };

  bool step(State& st, uint8_t byte);
  int32_t distance(const State& st) const;
  std::vector<int32_t> stack_of(const State& st) const;
  // Walks the trie; returns the largest completion distance over the tokens the grammar accepts
  // (before the budget trims them).
  int32_t walk(const Vocabulary::Trie& trie, TokenMask& mask, int64_t budget_after);
  // In a text state (see Grammar::TextChain), sets every text token allowed here without a trie
  // walk and returns their largest completion distance; -1 when the state is not a text state.
  int32_t add_text_tokens(TokenMask& mask, int64_t budget_after);
  void compact();

  std::shared_ptr<const Grammar> grammar_;
  std::shared_ptr<const Vocabulary> vocab_;
  std::vector<Frame> frames_;
  State state_;
  std::vector<State> walk_states_;
  std::vector<CacheEntry> cache_;
  uint64_t clock_ = 0;
  int64_t n_cache_hits_ = 0;
  int64_t n_walks_ = 0;
};

}  // namespace runnel::sample
