// The prefix trie over token ids with compressed runs: each node is an edge holding a run of whole
// blocks (tokens + one TrieSlot per block); children differ in their first block. Only the last
// slot of a leaf may be partially filled. A position in the trie is (node, j): "after the first j
// slots of node" ((root, 0) is the empty prefix). Slots live in a registry keyed by a stable id, so
// eviction code can hold ids across structural changes and find out whether a slot still exists.
// The trie stores metadata only; which tier holds a block's bytes is recorded in its slot.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/function_ref.h"
#include "cache/block_pool.h"

namespace runnel::cache {

struct TrieNode;

struct TrieSlot {
  uint32_t id = 0;
  TrieNode* node = nullptr;
  int index = 0;           // position in node->slots
  uint64_t key = 0;        // content key: hash of (parent full block's key, this block's tokens)
  int n_filled = 0;        // tokens in the block; block_tokens except a leaf's last block
  int state_tokens = 0;    // positions the recurrent-state snapshot covers; 0 = none
  BlockId hot = kNoBlock;  // the block in the hot pool, if any
  std::string cold;        // the encoded block when the cold tier holds it
  bool on_disk = false;    // a file was written (it may have been trimmed since: then a miss)
  uint64_t last_use = 0;   // cache clock (tokens processed) at the last match or commit
  uint64_t priority = 0;   // eviction value (GreedyDual): inflation + tokens of recompute it saves
  uint32_t hits = 0;       // times a prompt reused this block
};

struct TrieNode {
  TrieNode* parent = nullptr;
  int depth_blocks = 0;         // blocks on the path before this node's first slot
  std::vector<int32_t> tokens;  // slot i covers tokens[i * block_tokens, + slots[i]->n_filled)
  std::vector<TrieSlot*> slots;
  std::vector<std::unique_ptr<TrieNode>> children;
};

struct TriePos {
  TrieNode* node = nullptr;
  int j = 0;
};

class PrefixTrie {
 public:
  explicit PrefixTrie(int block_tokens);
  ~PrefixTrie();

  TriePos root_pos() { return {&root_, 0}; }
  static TriePos after(const TrieSlot* s) { return {s->node, s->index + 1}; }
  // nullptr when the slot was removed.
  TrieSlot* slot(uint32_t id) const;
  size_t n_slots() const { return slots_.size(); }
  int block_tokens() const { return block_tokens_; }
  // The tokens of a slot's block.
  std::span<const int32_t> tokens_of(const TrieSlot* s) const;

  struct Next {
    TrieSlot* slot = nullptr;  // best candidate after pos, or nullptr
    int lcp = 0;               // tokens of `tokens` it agrees with (<= slot->n_filled)
  };
  // The slot after `pos` whose block shares the longest prefix with `tokens` (at most one block).
  Next next(TriePos pos, std::span<const int32_t> tokens) const;

  // Adds a block after `pos` (a full-block boundary) holding `tokens` (1..block_tokens of them);
  // splits the node when `pos` is inside it, extends a leaf run when possible.
  TrieSlot* add(TriePos pos, std::span<const int32_t> tokens, uint64_t key);

  // Removes `s` and everything after it (later slots of its node and all descendants), calling
  // on_remove for each removed slot first.
  void remove_subtree(TrieSlot* s, FunctionRef<void(TrieSlot&)> on_remove);

  // Visits every slot with the number of blocks in its subtree (itself included).
  void for_each(FunctionRef<void(TrieSlot&, int64_t)> fn);
  // The slots on the path from the root to `s`, s included, root first.
  std::vector<TrieSlot*> path_to(TrieSlot* s) const;

 private:
  void split(TrieNode* node, int j);

  int block_tokens_;
  TrieNode root_;
  uint32_t next_id_ = 1;
  std::unordered_map<uint32_t, std::unique_ptr<TrieSlot>> slots_;
};

}  // namespace runnel::cache
