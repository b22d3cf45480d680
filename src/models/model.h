// A loaded model: its config and a forward pass written against the array API.
// load_model() opens a GGUF file or a Hugging Face folder and picks the architecture from the
// registry (registry.cpp).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "array/array.h"
#include "models/config.h"

namespace runnel::models {

// Per-layer key/value storage for one sequence: k[l], v[l] of shape [capacity, n_kv_heads,
// head_dim], pinned as cache memory for as long as this object lives.
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

  // Logits for tokens at positions [pos, pos + n) of the sequence whose keys and values live in
  // `cache` (which must hold positions [0, pos) already): [n, vocab] when all_logits, else [1, vocab]
  // for the last token. Lazy: nothing runs until the result is evaluated. Updates cache.n_tokens.
  virtual array::Array forward(const std::vector<int32_t>& tokens, int64_t pos, KvCache& cache,
                               bool all_logits) = 0;

 protected:
  ModelConfig config_;
  std::string path_;
  size_t weight_bytes_ = 0;
};

// Opens `path` (a .gguf file or a folder with config.json + *.safetensors). Errors name the file.
std::unique_ptr<Model> load_model(const std::string& path);

}  // namespace runnel::models
