// Tier movement and eviction. Hot blocks that no sequence references are demoted to the cold tier
// (encoded, optionally compressed) or, without one, to disk; cold blocks are demoted to disk; a
// block no tier can keep is dropped from the trie with everything after it. Victims are the
// blocks of lowest value (GreedyDual-Size-Frequency): when used, a block's priority becomes
// L + block_tokens x (1 + hits), the tokens of recomputation it has saved plus its own, on top of
// the inflation L (the priority of the last evicted block), so value decays with age; ties go to
// the least recently used, then the deepest. A system prompt reused by many conversations outlives
// deep unshared tails, and an ancestor (used whenever a descendant is) outlives its descendants.
#include <algorithm>

#include "base/assert.h"
#include "base/log.h"
#include "cache/block_codec.h"
#include "cache/prefix_cache.h"

namespace runnel::cache {

void PrefixCache::touch(TrieSlot* s, bool hit) {
  if (hit) s->hits += 1;
  s->last_use = clock_;
  s->priority = inflation_ + static_cast<uint64_t>(layout_.block_tokens) * (1 + s->hits);
}

std::vector<PrefixCache::Victim> PrefixCache::victims(bool hot) {
  std::vector<Victim> out;
  trie_.for_each([&](TrieSlot& s, int64_t) {
    const bool candidate =
        hot ? (s.hot != kNoBlock && pool_.refcount(s.hot) == 0) : !s.cold.empty();
    if (candidate) out.push_back({s.priority, s.last_use, s.node->depth_blocks + s.index, s.id});
  });
  return out;
}

bool PrefixCache::evict_first(const Victim& a, const Victim& b) {
  if (a.priority != b.priority) return a.priority < b.priority;
  if (a.last_use != b.last_use) return a.last_use < b.last_use;
  return a.depth > b.depth;
}

BlockId PrefixCache::allocate_block() {
  BlockId b = pool_.allocate();
  while (b == kNoBlock && make_hot_room()) b = pool_.allocate();
  return b;
}

bool PrefixCache::make_hot_room() {
  auto cands = victims(/*hot=*/true);
  if (cands.empty()) return false;
  // Evict a batch (1/32 of the pool) per scan so the O(trie) scan is amortized over many blocks.
  const size_t k = std::min(cands.size(), std::max<size_t>(1, pool_.max_blocks() / 32));
  std::nth_element(cands.begin(), cands.begin() + static_cast<std::ptrdiff_t>(k - 1), cands.end(),
                   evict_first);
  std::sort(cands.begin(), cands.begin() + static_cast<std::ptrdiff_t>(k), evict_first);
  int freed = 0;
  for (size_t i = 0; i < k; ++i) {
    TrieSlot* s = trie_.slot(cands[i].id);
    if (s == nullptr || s->hot == kNoBlock || pool_.refcount(s->hot) != 0) continue;
    inflation_ = std::max(inflation_, s->priority);
    demote_hot(s);
    ++freed;
  }
  return freed > 0;
}

void PrefixCache::demote_hot(TrieSlot* s) {
  const uint32_t id = s->id;
  const BlockId b = s->hot;
  stats_.hot.evictions += 1;
  bool kept = s->on_disk && disk_.contains(s->key);
  if (!kept && config_.cold_bytes > 0) {
    std::string blob = encode_block(layout_, pool_.data(b), s->key, parent_key_of(s),
                                    trie_.tokens_of(s), s->state_tokens, config_.cold_zstd_level);
    kept = put_cold(s, std::move(blob));
    s = trie_.slot(id);
    if (s == nullptr) return;  // dropped while making cold room (its block went with it)
  }
  if (!kept && disk_.enabled()) {
    std::string blob = encode_block(layout_, pool_.data(b), s->key, parent_key_of(s),
                                    trie_.tokens_of(s), s->state_tokens, config_.disk_zstd_level);
    kept = s->on_disk = disk_.put(s->key, blob);
  }
  if (kept) {
    s->hot = kNoBlock;
    pool_.set_owner(b, 0);
    pool_.free(b);
  } else {
    drop_subtree(s);
  }
}

bool PrefixCache::put_cold(TrieSlot* s, std::string blob) {
  const int64_t n = static_cast<int64_t>(blob.size());
  if (n > config_.cold_bytes) return false;
  const uint32_t id = s->id;
  make_cold_room(n, id);
  s = trie_.slot(id);
  if (s == nullptr || cold_bytes_ + n > config_.cold_bytes) return false;
  s->cold = std::move(blob);
  cold_bytes_ += n;
  cold_blocks_ += 1;
  return true;
}

void PrefixCache::make_cold_room(int64_t bytes, uint32_t keep) {
  if (cold_bytes_ + bytes <= config_.cold_bytes) return;
  auto cands = victims(/*hot=*/false);
  std::sort(cands.begin(), cands.end(), evict_first);
  // Free a little more than asked (1/16 of the tier) so the scan is not repeated per block.
  const int64_t target = std::max<int64_t>(0, config_.cold_bytes - bytes - config_.cold_bytes / 16);
  for (const Victim& c : cands) {
    const uint32_t id = c.id;
    if (cold_bytes_ <= target) break;
    if (id == keep) continue;
    TrieSlot* v = trie_.slot(id);
    if (v == nullptr || v->cold.empty()) continue;
    stats_.cold.evictions += 1;
    if (disk_.enabled() && !(v->on_disk && disk_.contains(v->key)))
      v->on_disk = disk_.put(v->key, v->cold);
    drop_cold(v);
    if (!v->on_disk && v->hot == kNoBlock) drop_subtree(v);
  }
}

void PrefixCache::drop_cold(TrieSlot* s) {
  if (s->cold.empty()) return;
  cold_bytes_ -= static_cast<int64_t>(s->cold.size());
  cold_blocks_ -= 1;
  std::string().swap(s->cold);  // release the memory, not just the size
}

void PrefixCache::drop_subtree(TrieSlot* s) {
  trie_.remove_subtree(s, [&](TrieSlot& x) {
    if (x.hot != kNoBlock) {
      // A referenced block stays with its sequence, now uncached; it is freed on release.
      pool_.set_owner(x.hot, 0);
      if (pool_.refcount(x.hot) == 0) pool_.free(x.hot);
      x.hot = kNoBlock;
    }
    drop_cold(&x);
  });
}

bool PrefixCache::ensure_hot(uint32_t slot_id, int* tier) {
  TrieSlot* s = trie_.slot(slot_id);
  if (s == nullptr) return false;
  if (s->hot != kNoBlock) {
    *tier = 0;
    return true;
  }
  if (s->cold.empty() && !(s->on_disk && disk_.contains(s->key))) {
    drop_subtree(s);  // its disk file was trimmed: nothing holds the bytes any more
    return false;
  }
  BlockId b = allocate_block();
  if (b == kNoBlock) return false;
  s = trie_.slot(slot_id);
  if (s == nullptr || (s->cold.empty() && !(s->on_disk && disk_.contains(s->key)))) {
    pool_.free(b);
    return false;
  }
  std::string why;
  int st = 0;
  bool ok = false;
  if (!s->cold.empty()) {
    *tier = 1;
    ok = decode_block(layout_, s->cold, s->key, parent_key_of(s), trie_.tokens_of(s), pool_.data(b),
                      &st, &why);
    drop_cold(s);
    if (ok) stats_.cold.restored_tokens += s->n_filled;
  } else {
    *tier = 2;
    std::optional<std::string> data = disk_.get(s->key);
    ok = data.has_value() && decode_block(layout_, *data, s->key, parent_key_of(s),
                                          trie_.tokens_of(s), pool_.data(b), &st, &why);
    if (ok) {
      stats_.disk.restored_tokens += s->n_filled;
    } else {
      if (!data) why = "file vanished";
      disk_.remove(s->key);
    }
  }
  if (!ok) {
    stats_.corrupt_blocks += 1;
    RUNNEL_WARN("cache", "stored KV block ", s->key, " is unusable (", why, "); recomputing");
    pool_.free(b);
    drop_subtree(s);
    return false;
  }
  s->hot = b;
  s->state_tokens = st;
  pool_.set_owner(b, s->id);
  pool_.set_state_tokens(b, st);
  return true;
}

TrieSlot* PrefixCache::load_from_disk(TriePos pos, uint64_t parent_key, uint64_t key,
                                      std::span<const int32_t> tokens) {
  BlockId b = allocate_block();
  if (b == kNoBlock) return nullptr;
  std::optional<std::string> data = disk_.get(key);
  std::string why = "file vanished";
  int st = 0;
  if (!data || !decode_block(layout_, *data, key, parent_key, tokens, pool_.data(b), &st, &why)) {
    stats_.corrupt_blocks += 1;
    RUNNEL_WARN("cache", "stored KV block ", disk_.path_of(key), " is unusable (", why,
                "); recomputing");
    disk_.remove(key);
    pool_.free(b);
    return nullptr;
  }
  TrieSlot* s = add_slot(pos, tokens, key);
  if (s->hot != kNoBlock) {
    pool_.free(b);
    return s;
  }
  drop_cold(s);
  s->hot = b;
  s->on_disk = true;
  s->state_tokens = st;
  pool_.set_owner(b, s->id);
  pool_.set_state_tokens(b, st);
  stats_.disk.restored_tokens += s->n_filled;
  return s;
}

int64_t PrefixCache::flush_to_disk() {
  if (!disk_.enabled()) return 0;
  int64_t written = 0;
  trie_.for_each([&](TrieSlot& s, int64_t) {
    if (s.on_disk && disk_.contains(s.key)) return;
    bool ok = false;
    if (!s.cold.empty()) {
      ok = disk_.put(s.key, s.cold);
    } else if (s.hot != kNoBlock) {
      ok = disk_.put(s.key,
                     encode_block(layout_, pool_.data(s.hot), s.key, parent_key_of(&s),
                                  trie_.tokens_of(&s), s.state_tokens, config_.disk_zstd_level));
    }
    s.on_disk = ok;
    written += ok ? 1 : 0;
  });
  publish_stats();
  return written;
}

int64_t PrefixCache::evict_unused() {
  auto cands = victims(/*hot=*/true);
  std::sort(cands.begin(), cands.end(), evict_first);
  int64_t n = 0;
  for (const Victim& c : cands) {
    TrieSlot* s = trie_.slot(c.id);
    if (s == nullptr || s->hot == kNoBlock || pool_.refcount(s->hot) != 0) continue;
    demote_hot(s);
    ++n;
  }
  publish_stats();
  return n;
}

void PrefixCache::clear() {
  std::vector<uint32_t> ids;
  trie_.for_each([&](TrieSlot& s, int64_t) {
    if (s.hot == kNoBlock || pool_.refcount(s.hot) == 0) ids.push_back(s.id);
  });
  for (uint32_t id : ids)
    if (TrieSlot* s = trie_.slot(id)) drop_subtree(s);
  publish_stats();
}

}  // namespace runnel::cache
