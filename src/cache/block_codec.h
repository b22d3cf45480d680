// The stored form of one block, shared by the cold (host RAM) and disk tiers: a fixed header
// (magic, content key, layout fingerprint, sizes, checksum), the block's tokens, then the filled
// rows of every layer's K and V (and the recurrent-state snapshot when present), optionally
// zstd-compressed. decode_block verifies everything before writing a byte of the destination, so
// a corrupt or mismatched blob is a miss, never wrong KV.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "cache/layout.h"

namespace runnel::cache {

struct BlockHeaderInfo {
  uint64_t key = 0;
  int n_tokens = 0;
  int state_tokens = 0;
};

// block: the slot's bytes (layout.slot_bytes()); tokens: the n filled positions (1..block_tokens);
// state_tokens: 0 or the position count the snapshot covers (state bytes are stored when > 0).
// parent_key: the key of the block before it (the chain's root key for the first block); stored
// and checked too, so a 64-bit key collision alone can never hand out another prefix's KV.
std::string encode_block(const KvLayout& layout, const uint8_t* block, uint64_t key,
                         uint64_t parent_key, std::span<const int32_t> tokens, int state_tokens,
                         int zstd_level);

// Checks magic, key, layout, sizes, checksum and that the stored tokens equal `tokens`; then
// writes the rows into `block` and returns true. On any mismatch returns false and says why.
bool decode_block(const KvLayout& layout, std::string_view blob, uint64_t key, uint64_t parent_key,
                  std::span<const int32_t> tokens, uint8_t* block, int* state_tokens,
                  std::string* why);

// Reads only the header (no checksum over the payload); false when it is not a block blob.
bool peek_block_header(std::string_view blob, BlockHeaderInfo* info);

}  // namespace runnel::cache
