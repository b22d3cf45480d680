#include "array/ops.h"
#include "base/error.h"
#include "models/model.h"

namespace runnel::models {

bool kv_cache_type_fits(const ModelConfig& c, DType type) {
  return type != DType::kQ8_0 || c.head_dim % 32 == 0;
}

KvCache::KvCache(const ModelConfig& c, int64_t capacity, DType dtype) : capacity_(capacity) {
  check(kv_cache_type_fits(c, dtype), "model", "a ", dtype_name(dtype),
        " KV cache needs head_dim a multiple of 32; this model's is ", c.head_dim);
  for (int64_t l = 0; l < c.n_layers; ++l) {
    for (auto* side : {&k, &v}) {
      array::Array a = array::Array::empty({capacity, c.n_kv_heads, c.head_dim}, dtype,
                                           array::MemoryKind::kCache);
      array::pin(a, array::MemoryKind::kCache);
      side->push_back(a);
    }
  }
}

KvCache::~KvCache() {
  for (auto* side : {&k, &v})
    for (const array::Array& a : *side) array::unpin(a);
}

array::Array Model::forward(const std::vector<int32_t>& tokens, int64_t pos, KvCache& cache,
                            bool all_logits) {
  check(pos == cache.n_tokens, "model", "forward at position ", pos, " but the cache holds ",
        cache.n_tokens, " tokens");
  SeqInput in;
  in.tokens = tokens;
  in.cache = &cache;
  in.all_logits = all_logits;
  return forward_batch({in});
}

}  // namespace runnel::models
