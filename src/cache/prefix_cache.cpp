// PrefixCache: lookup (start), growth (append with copy-on-write), sharing (commit), release,
// stats and invariant checks. Tier movement and eviction live in tiers.cpp.
#include "cache/prefix_cache.h"

#include <algorithm>
#include <cstring>
#include <unordered_map>

#include "base/assert.h"
#include "base/error.h"
#include "base/log.h"
#include "cache/hash.h"

namespace runnel::cache {

PrefixCache::PrefixCache(const KvLayout& layout, const CacheConfig& config,
                         std::string_view model_digest)
    : layout_(layout),
      config_(config),
      root_key_(hash_mix(hash64(model_digest.data(), model_digest.size(), 0x6d6f64656c),
                         layout.fingerprint())),
      pool_(layout, config.hot_bytes),
      trie_(layout.block_tokens) {
  check(config.cold_bytes >= 0 && config.disk_bytes >= 0, "cache",
        "tier budgets must not be negative");
  check(pool_.max_blocks() >= 1, "cache", "--kv-cache-memory ", format_bytes(config.hot_bytes),
        " holds no block (one block is ", format_bytes(static_cast<double>(layout.slot_bytes())),
        ")");
  if (!config.disk_dir.empty()) disk_ = DiskTier(config.disk_dir, config.disk_bytes);
  publish_stats();
}

PrefixCache::~PrefixCache() {
  // Sequences should be released first; any still alive are detached (inactive, no dangling).
  while (!live_.empty()) seq_release(**live_.begin());
}

uint64_t PrefixCache::block_key(uint64_t parent_key, std::span<const int32_t> tokens) const {
  return hash64(tokens.data(), tokens.size_bytes(), parent_key);
}

uint64_t PrefixCache::content_key(std::span<const int32_t> prefix) const {
  const size_t bt = static_cast<size_t>(layout_.block_tokens);
  uint64_t key = root_key_;
  for (size_t i = 0; i < prefix.size(); i += bt)
    key = block_key(key, prefix.subspan(i, std::min(bt, prefix.size() - i)));
  return key;
}

uint64_t PrefixCache::parent_key_of(const TrieSlot* s) const {
  if (s->index > 0) return s->node->slots[static_cast<size_t>(s->index - 1)]->key;
  const TrieNode* p = s->node->parent;
  return p == nullptr || p->slots.empty() ? root_key_ : p->slots.back()->key;
}

void PrefixCache::unref_block(BlockId b) {
  if (pool_.unref(b) == 0 && pool_.owner(b) == 0) pool_.free(b);
}

TrieSlot* PrefixCache::add_slot(TriePos pos, std::span<const int32_t> tokens, uint64_t key) {
  const int n = static_cast<int>(tokens.size());
  PrefixTrie::Next nx = trie_.next(pos, tokens);
  if (nx.slot != nullptr && nx.lcp == n && nx.slot->n_filled == n) return nx.slot;
  // A shorter partial block that these tokens extend is superseded.
  if (nx.slot != nullptr && nx.slot->n_filled < layout_.block_tokens &&
      nx.lcp == nx.slot->n_filled && n > nx.slot->n_filled)
    drop_subtree(nx.slot);
  return trie_.add(pos, tokens, key);
}

Sequence PrefixCache::start(std::span<const int32_t> prompt) {
  Sequence seq;
  seq.cache_ = this;
  live_.insert(&seq);
  const int n = static_cast<int>(prompt.size());
  const int bt = layout_.block_tokens;
  clock_ += static_cast<uint64_t>(n);
  stats_.lookups += 1;
  stats_.prompt_tokens += n;
  if (n <= 1) {
    publish_stats();
    return seq;
  }
  int n_hot = 0, n_cold = 0, n_disk = 0;
  struct Use {
    uint32_t id;
    int used;  // tokens of the block this sequence reuses
  };
  std::vector<Use> path;
  auto take = [&](TrieSlot* s, int used, int tier) {
    pool_.ref(s->hot);
    seq.blocks_.push_back(s->hot);
    touch(s, /*hit=*/true);
    path.push_back({s->id, used});
    (tier == 0 ? n_hot : tier == 1 ? n_cold : n_disk) += 1;
  };

  // 1. Whole blocks already in the trie, restored tier by tier (referenced as we go, so later
  //    restores can never evict them).
  TriePos pos = trie_.root_pos();
  uint64_t parent_key = root_key_;
  int matched = 0;
  bool intact = true;
  while (matched + bt <= n) {
    PrefixTrie::Next nx = trie_.next(pos, prompt.subspan(static_cast<size_t>(matched)));
    if (nx.slot == nullptr || nx.slot->n_filled != bt || nx.lcp != bt) break;
    int tier = 0;
    const uint32_t id = nx.slot->id;
    if (!ensure_hot(id, &tier)) {
      intact = false;
      break;
    }
    TrieSlot* s = trie_.slot(id);
    take(s, bt, tier);
    pos = PrefixTrie::after(s);
    parent_key = s->key;
    matched += bt;
  }
  // 2. Whole blocks beyond the trie that the disk tier holds (e.g. after a restart).
  if (intact && disk_.enabled()) {
    while (matched + bt <= n) {
      std::span<const int32_t> toks = prompt.subspan(static_cast<size_t>(matched), bt);
      const uint64_t key = block_key(parent_key, toks);
      if (!disk_.contains(key)) break;
      TrieSlot* s = load_from_disk(pos, parent_key, key, toks);
      if (s == nullptr) break;
      take(s, bt, 2);
      pos = PrefixTrie::after(s);
      parent_key = key;
      matched += bt;
    }
  }
  // 3. Part of one more block: the best partial agreement in the trie, or a longer partial block
  //    on disk (the tail of an earlier turn).
  if (intact && matched < n) {
    std::span<const int32_t> rest = prompt.subspan(static_cast<size_t>(matched));
    PrefixTrie::Next nx = trie_.next(pos, rest);
    const uint32_t cand = nx.slot != nullptr ? nx.slot->id : 0;
    const int cand_used = nx.lcp;
    bool done = false;
    if (disk_.enabled()) {
      for (int len = std::min<int>(bt - 1, static_cast<int>(rest.size())); len > cand_used; --len) {
        std::span<const int32_t> toks = rest.subspan(0, static_cast<size_t>(len));
        const uint64_t key = block_key(parent_key, toks);
        if (!disk_.contains(key)) continue;
        if (TrieSlot* s = load_from_disk(pos, parent_key, key, toks)) {
          take(s, len, 2);
          done = true;
        }
        break;
      }
    }
    int tier = 0;
    if (!done && cand != 0 && cand_used > 0 && ensure_hot(cand, &tier))
      take(trie_.slot(cand), cand_used, tier);
  }

  // 4. Reuse at most n - 1 tokens, and for recurrent layouts end where a snapshot exists.
  auto total = [&] {
    int t = 0;
    for (const Use& u : path) t += u.used;
    return t;
  };
  auto pop = [&] {
    unref_block(seq.blocks_.back());
    seq.blocks_.pop_back();
    path.pop_back();
  };
  int over = total() - (n - 1);
  if (over > 0) {
    path.back().used -= over;
    if (path.back().used <= 0) pop();
  }
  if (layout_.state_bytes > 0) {
    while (!path.empty()) {
      const int st = pool_.state_tokens(seq.blocks_.back());
      if (st == path.back().used) break;
      if (st > 0 && st < path.back().used) {  // a snapshot inside the block: resume there
        path.back().used = st;
        break;
      }
      pop();
    }
  }
  seq.n_cached_ = total();
  seq.tokens_.assign(prompt.begin(), prompt.begin() + seq.n_cached_);
  seq.n_committed_blocks_ = 0;
  for (const Use& u : path) {
    if (u.used != bt) break;
    seq.n_committed_blocks_ += 1;
  }
  seq.refresh_ptrs(0);

  const int64_t n_blocks = (n - 1 + bt - 1) / bt;
  const int64_t found = static_cast<int64_t>(seq.blocks_.size());
  stats_.hot.hits += n_hot;
  stats_.cold.hits += n_cold;
  stats_.disk.hits += n_disk;
  stats_.hot.misses += std::max<int64_t>(0, n_blocks - std::min<int64_t>(n_hot, found));
  if (config_.cold_bytes > 0) stats_.cold.misses += std::max<int64_t>(0, n_blocks - found + n_disk);
  if (disk_.enabled()) stats_.disk.misses += std::max<int64_t>(0, n_blocks - found);
  stats_.cached_tokens += seq.n_cached_;
  publish_stats();
  return seq;
}

void PrefixCache::seq_append(Sequence& seq, std::span<const int32_t> tokens) {
  if (tokens.empty()) return;
  const int bt = layout_.block_tokens;
  const int n0 = seq.n_tokens();
  const int n1 = n0 + static_cast<int>(tokens.size());
  const size_t nb0 = seq.blocks_.size();
  const size_t nb1 = static_cast<size_t>((n1 + bt - 1) / bt);
  const int fill = n0 % bt;
  const bool cow =
      fill != 0 && (pool_.owner(seq.blocks_.back()) != 0 || pool_.refcount(seq.blocks_.back()) > 1);
  const size_t need = nb1 - nb0 + (cow ? 1 : 0);
  std::vector<BlockId> fresh;
  fresh.reserve(need);
  for (size_t i = 0; i < need; ++i) {
    BlockId b = allocate_block();
    if (b == kNoBlock) {
      for (BlockId f : fresh) pool_.free(f);
      publish_stats();
      fail("cache", "KV cache memory is full: all ", pool_.max_blocks(), " blocks (",
           format_bytes(static_cast<double>(pool_.capacity_bytes())),
           ") are in use by live sequences; raise --kv-cache-memory or run fewer at once");
    }
    fresh.push_back(b);
  }
  size_t next = 0;
  size_t changed_from = nb0;
  if (cow) {
    BlockId old = seq.blocks_.back();
    BlockId b = fresh[next++];
    const size_t rows = layout_.row_bytes() * static_cast<size_t>(fill);
    for (int layer = 0; layer < layout_.n_layers; ++layer) {
      std::memcpy(pool_.k_ptr(b, layer), pool_.k_ptr(old, layer), rows);
      std::memcpy(pool_.v_ptr(b, layer), pool_.v_ptr(old, layer), rows);
    }
    if (layout_.state_bytes > 0 && pool_.state_tokens(old) == fill) {
      std::memcpy(pool_.state_ptr(b), pool_.state_ptr(old), layout_.state_bytes);
      pool_.set_state_tokens(b, fill);
    }
    pool_.ref(b);
    seq.blocks_.back() = b;
    unref_block(old);
    changed_from = nb0 - 1;
  }
  for (; next < fresh.size(); ++next) {
    pool_.ref(fresh[next]);
    seq.blocks_.push_back(fresh[next]);
  }
  seq.tokens_.insert(seq.tokens_.end(), tokens.begin(), tokens.end());
  clock_ += tokens.size();
  seq.refresh_ptrs(changed_from);
}

void PrefixCache::seq_commit(Sequence& seq, bool include_partial) {
  const int bt = layout_.block_tokens;
  const int n_full = seq.n_tokens() / bt;
  TriePos pos = trie_.root_pos();
  uint64_t parent_key = root_key_;
  if (seq.n_committed_blocks_ > 0) {
    BlockId last = seq.blocks_[static_cast<size_t>(seq.n_committed_blocks_ - 1)];
    if (TrieSlot* s = trie_.slot(pool_.owner(last))) {
      pos = PrefixTrie::after(s);
      parent_key = s->key;
    } else {
      seq.n_committed_blocks_ = 0;  // its trie path was dropped: insert again from the root
    }
  }
  size_t changed_from = seq.blocks_.size();
  auto place = [&](size_t i, std::span<const int32_t> toks) -> TrieSlot* {
    const uint64_t key = block_key(parent_key, toks);
    BlockId b = seq.blocks_[i];
    TrieSlot* s = add_slot(pos, toks, key);
    if (s->hot == b) {
      // already the trie's copy
    } else if (s->hot != kNoBlock) {
      // Computed twice: keep the trie's copy, free ours (same bytes by construction).
      if (pool_.state_tokens(b) > 0 && pool_.state_tokens(s->hot) == 0) {
        std::memcpy(pool_.state_ptr(s->hot), pool_.state_ptr(b), layout_.state_bytes);
        pool_.set_state_tokens(s->hot, pool_.state_tokens(b));
        s->state_tokens = pool_.state_tokens(b);
      }
      pool_.ref(s->hot);
      seq.blocks_[i] = s->hot;
      unref_block(b);
      changed_from = std::min(changed_from, i);
    } else {
      RUNNEL_ASSERT(pool_.owner(b) == 0);
      if (!s->cold.empty()) drop_cold(s);
      s->hot = b;
      pool_.set_owner(b, s->id);
      s->state_tokens = pool_.state_tokens(b);
    }
    touch(s, /*hit=*/false);
    pos = PrefixTrie::after(s);
    parent_key = key;
    return s;
  };
  for (int i = seq.n_committed_blocks_; i < n_full; ++i) {
    place(static_cast<size_t>(i),
          std::span<const int32_t>(seq.tokens_)
              .subspan(static_cast<size_t>(i) * bt, static_cast<size_t>(bt)));
  }
  seq.n_committed_blocks_ = n_full;
  const int fill = seq.n_tokens() % bt;
  if (include_partial && fill > 0) {
    std::span<const int32_t> toks =
        std::span<const int32_t>(seq.tokens_).subspan(static_cast<size_t>(n_full) * bt);
    PrefixTrie::Next nx = trie_.next(pos, toks);
    const bool covered = nx.slot != nullptr && nx.lcp == fill && nx.slot->n_filled >= fill &&
                         !(nx.slot->n_filled == fill && nx.slot->hot == kNoBlock);
    if (!covered) place(static_cast<size_t>(n_full), toks);
  }
  if (changed_from < seq.blocks_.size()) seq.refresh_ptrs(changed_from);
  publish_stats();
}

void PrefixCache::seq_release(Sequence& seq) {
  for (BlockId b : seq.blocks_) unref_block(b);
  live_.erase(&seq);
  seq.cache_ = nullptr;
  seq.tokens_.clear();
  seq.blocks_.clear();
  seq.k_ptrs_.clear();
  seq.v_ptrs_.clear();
  seq.ptr_stride_ = 0;
  seq.n_cached_ = 0;
  seq.n_committed_blocks_ = 0;
  publish_stats();
}

CacheStats PrefixCache::stats() const {
  CacheStats s = stats_;
  s.hot.bytes = pool_.allocated_bytes();
  s.hot.capacity_bytes = pool_.capacity_bytes();
  s.hot.blocks = pool_.used_blocks();
  s.cold.bytes = cold_bytes_;
  s.cold.capacity_bytes = config_.cold_bytes;
  s.cold.blocks = cold_blocks_;
  s.disk.bytes = disk_.bytes();
  s.disk.capacity_bytes = disk_.enabled() ? disk_.budget_bytes() : 0;
  s.disk.blocks = disk_.n_files();
  s.disk.evictions = disk_.n_evictions();
  s.hot_blocks_in_use = pool_.referenced_blocks();
  s.live_sequences = static_cast<int64_t>(live_.size());
  return s;
}

void PrefixCache::publish_stats() {
  CacheStats s = stats();
  std::lock_guard<std::mutex> lock(published_mu_);
  published_ = s;
}

CacheStats PrefixCache::stats_snapshot() const {
  std::lock_guard<std::mutex> lock(published_mu_);
  return published_;
}

void PrefixCache::check_invariants() const {
  const int bt = layout_.block_tokens;
  // Refcounts equal the references held by live sequences.
  std::unordered_map<BlockId, int> refs;
  for (const Sequence* seq : live_) {
    RUNNEL_ASSERT(seq->cache_ == this);
    RUNNEL_ASSERT(seq->blocks_.size() == static_cast<size_t>((seq->n_tokens() + bt - 1) / bt));
    for (BlockId b : seq->blocks_) refs[b] += 1;
    // Every block a sequence shares through the trie holds that sequence's tokens there.
    for (size_t i = 0; i < seq->blocks_.size(); ++i) {
      TrieSlot* s = trie_.slot(pool_.owner(seq->blocks_[i]));
      if (s == nullptr) continue;
      std::span<const int32_t> t = trie_.tokens_of(s);
      const size_t begin = i * static_cast<size_t>(bt);
      const size_t n = std::min<size_t>(t.size(), seq->tokens_.size() - begin);
      RUNNEL_ASSERT_MSG(std::equal(t.begin(), t.begin() + static_cast<std::ptrdiff_t>(n),
                                   seq->tokens_.begin() + static_cast<std::ptrdiff_t>(begin)),
                        "a sequence shares a block that caches other tokens");
      RUNNEL_ASSERT(s->node->depth_blocks + s->index == static_cast<int>(i));
    }
  }
  for (BlockId b = 0; b < pool_.n_created(); ++b) {
    auto it = refs.find(b);
    const int expect = it == refs.end() ? 0 : it->second;
    RUNNEL_ASSERT_MSG(pool_.refcount(b) == expect,
                      str_cat("block ", b, " refcount ", pool_.refcount(b), " != ", expect));
    if (!pool_.is_allocated(b)) {
      RUNNEL_ASSERT(expect == 0 && pool_.owner(b) == 0);
    } else {
      // An allocated block is used by a sequence or cached by exactly one trie slot.
      RUNNEL_ASSERT_MSG(expect > 0 || pool_.owner(b) != 0, str_cat("block ", b, " leaked"));
      if (pool_.owner(b) != 0) {
        TrieSlot* s = trie_.slot(pool_.owner(b));
        RUNNEL_ASSERT_MSG(s != nullptr && s->hot == b, str_cat("block ", b, " owner is stale"));
      }
    }
  }
  int n_referenced = 0;
  for (const auto& [b, n] : refs) n_referenced += n > 0 ? 1 : 0;
  RUNNEL_ASSERT(pool_.referenced_blocks() == n_referenced);
  // Trie structure: slots agree with their nodes; a hot block is cached in one place only.
  int64_t cold = 0, n_cold = 0;
  std::unordered_map<BlockId, uint32_t> owners;
  const_cast<PrefixTrie&>(trie_).for_each([&](TrieSlot& s, int64_t) {
    RUNNEL_ASSERT(trie_.slot(s.id) == &s);
    RUNNEL_ASSERT(s.node->slots[static_cast<size_t>(s.index)] == &s);
    RUNNEL_ASSERT(s.n_filled >= 1 && s.n_filled <= bt);
    if (s.n_filled < bt) {
      RUNNEL_ASSERT_MSG(
          s.index + 1 == static_cast<int>(s.node->slots.size()) && s.node->children.empty(),
          "a partial block has successors");
    }
    RUNNEL_ASSERT(s.state_tokens >= 0 && s.state_tokens <= s.n_filled);
    if (s.hot != kNoBlock) {
      RUNNEL_ASSERT(pool_.owner(s.hot) == s.id);
      RUNNEL_ASSERT_MSG(owners.emplace(s.hot, s.id).second, "block cached in two trie places");
      RUNNEL_ASSERT_MSG(s.cold.empty(), "block both hot and cold");
    }
    if (!s.cold.empty()) {
      cold += static_cast<int64_t>(s.cold.size());
      ++n_cold;
    }
    const TrieNode* node = s.node;
    if (s.index == 0 && node->parent != nullptr) {
      // Siblings never start with the same full block.
      for (const auto& c : node->parent->children) {
        if (c.get() == node) continue;
        const TrieSlot* o = c->slots.front();
        RUNNEL_ASSERT_MSG(
            !(o->n_filled == bt && s.n_filled == bt &&
              std::equal(c->tokens.begin(), c->tokens.begin() + bt, node->tokens.begin())),
            "two trie places hold the same block");
      }
    }
    RUNNEL_ASSERT(node->tokens.size() == static_cast<size_t>((node->slots.size() - 1) * bt +
                                                             node->slots.back()->n_filled));
  });
  RUNNEL_ASSERT(cold == cold_bytes_ && n_cold == cold_blocks_);
  // Budgets hold.
  RUNNEL_ASSERT(pool_.allocated_bytes() <= pool_.capacity_bytes());
  RUNNEL_ASSERT(cold_bytes_ <= config_.cold_bytes);
  RUNNEL_ASSERT(!disk_.enabled() || disk_.bytes() <= disk_.budget_bytes());
}

}  // namespace runnel::cache
