// A fake model for cache tests: the K/V row it "computes" for position p of layer l encodes
// (token id, position, layer, K or V, a hash of every token up to p), so a test can check exactly
// which tokens, at which positions and after which prefix, a cache hit restored.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "cache/prefix_cache.h"

namespace runnel::cache::testing {

// A hash of tokens[0..p] (inclusive), 24 bits so it is exact in f32.
uint32_t prefix_hash(std::span<const int32_t> tokens, int p);

// Writes the fake K/V rows of positions [from, seq.n_tokens()) of `seq`. Counts them in *computed.
void compute(Sequence& seq, const KvLayout& layout, int from, int64_t* computed = nullptr);

// Checks that positions [0, seq.n_tokens()) hold the rows of seq.tokens(); returns "" when they
// do, else a description of the first wrong row.
std::string verify(const Sequence& seq, const KvLayout& layout);

// The recurrent-state snapshot the fake model has after `n` tokens (layout.state_bytes bytes).
std::vector<uint8_t> fake_state(std::span<const int32_t> tokens, int n, size_t bytes);

// One request: start, prefill the uncached rest, commit, generate `gen` tokens (ids given),
// commit the partial tail, release. Returns n_cached and verifies the KV at every stage.
struct TurnResult {
  int n_cached = 0;
  int64_t computed = 0;
  std::string error;  // from verify
};
TurnResult run_turn(PrefixCache& cache, std::span<const int32_t> prompt,
                    std::span<const int32_t> gen = {});

// Random tokens in [lo, hi) from a seeded generator.
std::vector<int32_t> random_tokens(uint64_t seed, int n, int32_t lo = 3, int32_t hi = 30000);
std::vector<int32_t> concat(std::span<const int32_t> a, std::span<const int32_t> b);

// A small f32 layout (bytes per block = 2 * n_layers * block_tokens * kv_dim * 4).
KvLayout small_layout(int block_tokens = 16, size_t state_bytes = 0);

}  // namespace runnel::cache::testing
