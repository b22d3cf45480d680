// A small, fast 64-bit hash (multiply-rotate over four 64-bit lanes, xxh64-like in spirit but our
// own) used for content keys of blocks and for checksums of stored block bytes. Not cryptographic:
// content keys are always verified against the stored tokens, so a collision costs a miss.
#pragma once

#include <cstddef>
#include <cstdint>

namespace runnel::cache {

uint64_t hash64(const void* data, size_t n_bytes, uint64_t seed = 0);

// Mixes one 64-bit value into a running hash.
inline uint64_t hash_mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return h;
}

}  // namespace runnel::cache
