// PrefixCache: paged KV blocks shared across conversations through a prefix trie, with hot (pool),
// cold (host RAM, optionally zstd) and disk tiers, and value-weighted LRU eviction.
//
// Threading: one engine thread owns a PrefixCache and all its Sequences; no method is thread-safe
// except stats_snapshot(). Destroying the cache releases (deactivates) sequences still alive.
//
// Use (per request):
//   Sequence seq = cache.start(prompt);        // n_cached() <= prompt.size() - 1 tokens reused
//   seq.append(rest_of_prompt);                // reserve positions; then the model writes K/V rows
//   for each layer: write seq.k_row(layer, pos), seq.v_row(layer, pos) for the new positions;
//                   attention reads seq.k_blocks(layer)[pos / block_tokens] + row offset
//   seq.commit();                              // after the forward pass: share full blocks
//   ... decode: seq.append({token}); forward; ...
//   seq.commit(/*include_partial=*/true);      // end of turn
//   seq.release();                             // or let it go out of scope; also on cancel
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "cache/block_pool.h"
#include "cache/config.h"
#include "cache/disk_tier.h"
#include "cache/layout.h"
#include "cache/prefix_trie.h"
#include "cache/stats.h"

namespace runnel::cache {

class PrefixCache;

// One live sequence (a request's conversation so far): its tokens and its block table. Blocks it
// references are never evicted. Move-only; releases its blocks when destroyed.
class Sequence {
 public:
  Sequence() = default;
  ~Sequence();
  Sequence(Sequence&& other) noexcept;
  Sequence& operator=(Sequence&& other) noexcept;
  Sequence(const Sequence&) = delete;
  Sequence& operator=(const Sequence&) = delete;

  bool active() const { return cache_ != nullptr; }
  // Positions holding (or about to hold) KV.
  int n_tokens() const { return static_cast<int>(tokens_.size()); }
  // Prompt tokens served from the cache by start().
  int n_cached() const { return n_cached_; }
  std::span<const int32_t> tokens() const { return tokens_; }
  int n_blocks() const { return static_cast<int>(blocks_.size()); }
  const std::vector<BlockId>& block_table() const { return blocks_; }

  // Per layer, n_blocks() pointers to [block_tokens, kv_dim] K (or V) planes: position p of the
  // sequence is row p % block_tokens of block p / block_tokens. Valid until the next append,
  // truncate, commit or release.
  const void* const* k_blocks(int layer) const;
  const void* const* v_blocks(int layer) const;
  // One [kv_dim] row, for reading any position < n_tokens().
  const void* k_row(int layer, int pos) const;
  const void* v_row(int layer, int pos) const;
  // Writable rows; only positions appended since start() (they lie in blocks this sequence owns).
  void* k_row_mut(int layer, int pos);
  void* v_row_mut(int layer, int pos);

  // Bulk copies for a model that keeps its own contiguous KV ([n, kv_dim] rows per layer): read
  // rows [begin, end) of one layer out (e.g. after start() to load the cached prefix), and write
  // n rows starting at `begin` in (after the forward pass; positions appended since start()).
  void read_kv(int layer, int begin, int end, void* k_out, void* v_out) const;
  void write_kv(int layer, int begin, int n, const void* k_in, const void* v_in);

  // Adds positions for `tokens`; the caller then writes their K/V rows. Copies the last block first
  // when it is shared (copy-on-write). Throws Error("cache", ...) when the hot pool cannot supply
  // blocks (everything referenced); the sequence is unchanged then.
  void append(std::span<const int32_t> tokens);
  // Drops positions >= n (e.g. after a rejected draft); n <= n_tokens().
  void truncate(int n);
  // Inserts the blocks computed so far into the trie so other sequences can share them: all full
  // blocks, and the partial last block too when include_partial (end of a turn; a later append
  // then copies it). Call only after the forward pass that wrote these positions finished.
  void commit(bool include_partial = false);
  // Drops all references (done or cancelled). Uncommitted blocks return to the pool.
  void release();

  // Recurrent-state snapshots (hybrid models; layout.state_bytes > 0):
  // the snapshot taken after n_cached() positions, to resume from; nullptr when n_cached() == 0.
  const void* resume_state() const;
  // Stores the state after n_tokens() positions (state_bytes bytes) with the last block. Take one
  // at every block boundary and at the end of each turn: a later prompt resumes from the deepest.
  void save_state(const void* state);

 private:
  friend class PrefixCache;
  void refresh_ptrs(size_t from);

  PrefixCache* cache_ = nullptr;
  std::vector<int32_t> tokens_;
  std::vector<BlockId> blocks_;
  std::vector<const void*> k_ptrs_, v_ptrs_;  // [layer][block], n_layers * capacity
  size_t ptr_stride_ = 0;                     // blocks per layer row in k_ptrs_
  int n_cached_ = 0;
  int n_committed_blocks_ = 0;  // full blocks known to be in the trie
};

class PrefixCache {
 public:
  // model_digest: identifies the weights (e.g. the GGUF file's sha256); part of every disk key.
  PrefixCache(const KvLayout& layout, const CacheConfig& config, std::string_view model_digest);
  ~PrefixCache();
  PrefixCache(const PrefixCache&) = delete;
  PrefixCache& operator=(const PrefixCache&) = delete;

  const KvLayout& layout() const { return layout_; }
  const CacheConfig& config() const { return config_; }

  // Finds the longest cached prefix of `prompt` (whole blocks, then possibly part of one more),
  // restoring cold and disk blocks into the hot pool, and returns a sequence holding it. At most
  // prompt.size() - 1 tokens are reused, so the last prompt token is always evaluated; for
  // layouts with recurrent state the match ends where a snapshot exists.
  Sequence start(std::span<const int32_t> prompt);

  // Writes every cached block not yet on disk (call at shutdown so a restart finds them);
  // returns the number of blocks written. No-op without a disk tier.
  int64_t flush_to_disk();
  // Moves every hot block no sequence uses down a tier (cold, else disk, else dropped), e.g. to
  // give memory back when idle; returns the number of blocks moved or dropped.
  int64_t evict_unused();
  // Forgets every cached block no sequence uses (hot and cold); disk files stay.
  void clear();

  CacheStats stats() const;
  // Thread-safe: the stats as of the end of the last start/commit/release.
  CacheStats stats_snapshot() const;
  // Verifies the internal invariants (refcounts equal live references, trie/pool ownership agree,
  // budgets hold); aborts via RUNNEL_ASSERT when broken. For tests; O(cached blocks).
  void check_invariants() const;

  // The content key of the last block of `prefix` (blocks are block_tokens-long chunks from the
  // start; the last may be partial) and the disk file that would hold it. For diagnostics/tests.
  uint64_t content_key(std::span<const int32_t> prefix) const;
  std::string disk_path(uint64_t key) const { return disk_.path_of(key); }

  // Raw block access (for tests and diagnostics).
  BlockPool& pool() { return pool_; }
  const PrefixTrie& trie() const { return trie_; }

 private:
  friend class Sequence;

  // tiers.cpp
  BlockId allocate_block();
  bool make_hot_room();
  void demote_hot(TrieSlot* s);
  bool put_cold(TrieSlot* s, std::string blob);
  void make_cold_room(int64_t bytes, uint32_t keep);
  void drop_cold(TrieSlot* s);
  void drop_subtree(TrieSlot* s);
  bool ensure_hot(uint32_t slot_id, int* tier);
  TrieSlot* load_from_disk(TriePos pos, uint64_t parent_key, uint64_t key,
                           std::span<const int32_t> tokens);
  struct Victim {
    uint64_t priority, last_use;
    int depth;
    uint32_t id;
  };
  std::vector<Victim> victims(bool hot);
  static bool evict_first(const Victim& a, const Victim& b);
  void touch(TrieSlot* s, bool hit);

  // prefix_cache.cpp
  uint64_t parent_key_of(const TrieSlot* s) const;
  TrieSlot* add_slot(TriePos pos, std::span<const int32_t> tokens, uint64_t key);
  uint64_t block_key(uint64_t parent_key, std::span<const int32_t> tokens) const;
  void unref_block(BlockId b);
  void seq_append(Sequence& seq, std::span<const int32_t> tokens);
  void seq_commit(Sequence& seq, bool include_partial);
  void seq_release(Sequence& seq);
  void publish_stats();

  KvLayout layout_;
  CacheConfig config_;
  uint64_t root_key_;
  BlockPool pool_;
  PrefixTrie trie_;
  DiskTier disk_;
  int64_t cold_bytes_ = 0;
  int64_t cold_blocks_ = 0;
  uint64_t clock_ = 0;      // tokens processed: recency
  uint64_t inflation_ = 0;  // GreedyDual's L: the priority of the last evicted hot block
  CacheStats stats_;
  std::unordered_set<Sequence*> live_;
  mutable std::mutex published_mu_;
  CacheStats published_;
};

}  // namespace runnel::cache
