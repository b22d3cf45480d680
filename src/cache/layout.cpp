// KvLayout validation and fingerprint.
#include "cache/layout.h"

#include "base/error.h"
#include "cache/hash.h"

namespace runnel::cache {

uint64_t KvLayout::fingerprint() const {
  uint64_t h = 0x72756e6e656c6b76ULL;  // "runnelkv"
  h = hash_mix(h, static_cast<uint64_t>(n_layers));
  h = hash_mix(h, static_cast<uint64_t>(block_tokens));
  h = hash_mix(h, static_cast<uint64_t>(kv_dim));
  h = hash_mix(h, static_cast<uint64_t>(dtype));
  h = hash_mix(h, static_cast<uint64_t>(state_bytes));
  return h;
}

void validate_layout(const KvLayout& l) {
  check(l.n_layers > 0, "cache", "layout: n_layers must be positive, got ", l.n_layers);
  check(l.block_tokens > 0 && l.block_tokens <= 4096, "cache",
        "layout: block_tokens must be in 1..4096, got ", l.block_tokens);
  check(l.kv_dim > 0, "cache", "layout: kv_dim must be positive, got ", l.kv_dim);
  check(l.dtype == DType::kF32 || l.dtype == DType::kF16 || l.dtype == DType::kQ8_0, "cache",
        "layout: KV dtype must be f32, f16 or q8_0, got ", dtype_name(l.dtype));
  check(l.dtype != DType::kQ8_0 || l.kv_dim % 32 == 0, "cache",
        "layout: a q8_0 row needs kv_dim a multiple of 32, got ", l.kv_dim);
}

}  // namespace runnel::cache
