// Counters of the prefix cache, a plain struct for GET /api/cache, /metrics and `runnel ps`.
// "Blocks" are KV blocks of KvLayout::block_tokens positions.
#pragma once

#include <cstdint>

namespace runnel::cache {

struct TierStats {
  int64_t bytes = 0;  // bytes held now (hot: allocated slabs; cold: encoded blobs; disk: files)
  int64_t capacity_bytes = 0;   // the budget
  int64_t blocks = 0;           // blocks held now
  int64_t hits = 0;             // prompt blocks served from this tier
  int64_t misses = 0;           // prompt blocks looked for in this tier and not found (or corrupt)
  int64_t evictions = 0;        // blocks that left this tier to make room
  int64_t restored_tokens = 0;  // tokens copied from this tier back into the hot pool
};

struct CacheStats {
  TierStats hot, cold, disk;
  int64_t hot_blocks_in_use = 0;  // referenced by live sequences
  int64_t live_sequences = 0;
  int64_t lookups = 0;
  int64_t prompt_tokens = 0;   // tokens of every looked-up prompt
  int64_t cached_tokens = 0;   // of which served from the cache (any tier)
  int64_t corrupt_blocks = 0;  // stored blocks that failed verification (each one a miss)
};

}  // namespace runnel::cache
