// A loaded model: its config and a forward pass written against the array API.
// load_model() opens a GGUF file or a Hugging Face folder and picks the architecture from the
// registry (registry.cpp).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "array/array.h"
#include "array/ops.h"
#include "models/config.h"

namespace runnel::models {

// Whether c's K/V rows can be stored as `type`: q8_0 needs head_dim a multiple of 32 (its blocks).
bool kv_cache_type_fits(const ModelConfig& c, DType type);

// Per-layer key/value storage for one sequence: k[l], v[l] of shape [capacity, n_kv_heads,
// head_dim] in f32, f16 or q8_0, pinned as cache memory for as long as this object lives.
class KvCache {
 public:
  KvCache(const ModelConfig& c, int64_t capacity, DType dtype = DType::kF32);
  ~KvCache();
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;

  int64_t capacity() const { return capacity_; }
  int64_t n_tokens = 0;  // positions filled
  std::vector<array::Array> k, v;

 private:
  int64_t capacity_;
};

class Model {
 public:
  virtual ~Model() = default;
  const ModelConfig& config() const { return config_; }
  // The path it was loaded from and a short description ("llama 5 layers, f32").
  const std::string& path() const { return path_; }
  std::string describe() const;
  size_t weight_bytes() const { return weight_bytes_; }
  int64_t parameter_count() const { return n_params_; }
  // The storage type holding most of the weights' bytes ("q8_0", "f16", ...).
  std::string weight_type() const;

  // One sequence's part of a batched step: its new tokens, which continue the sequence whose
  // keys and values for positions [0, cache->n_tokens) live in `cache`.
  struct SeqInput {
    std::vector<int32_t> tokens;
    KvCache* cache = nullptr;
    // Or paged KV (e.g. the prefix cache's blocks): positions [0, paged_pos) already hold K/V, and
    // paged[layer] covers at least paged_pos + tokens.size() positions. Used when cache is null.
    const std::vector<array::PagedKvBlocks>* paged = nullptr;
    int64_t paged_pos = 0;
    bool all_logits = false;  // logits of every token, or only of the last
  };
  // Logits of every sequence of the batch, rows in order: n rows for a sequence with all_logits,
  // else 1. All sequences advance in one pass, so the weights are read once for everyone.
  // Lazy: nothing runs until the result is evaluated. Advances each KvCache's n_tokens (paged
  // inputs are the caller's to advance); paged blocks must stay valid until evaluation is joined.
  virtual array::Array forward_batch(const std::vector<SeqInput>& batch) = 0;

  // One sequence: logits [n, vocab] (all_logits) or [1, vocab] for tokens at [pos, pos + n).
  array::Array forward(const std::vector<int32_t>& tokens, int64_t pos, KvCache& cache,
                       bool all_logits);

 protected:
  ModelConfig config_;
  std::string path_;
  size_t weight_bytes_ = 0;
  int64_t n_params_ = 0;
  size_t bytes_by_type_[static_cast<int>(DType::kCount)] = {};
};

// Opens `path` (a .gguf file or a folder with config.json + *.safetensors). Errors name the file.
std::unique_ptr<Model> load_model(const std::string& path);

}  // namespace runnel::models
