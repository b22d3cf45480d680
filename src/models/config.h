// The hyper-parameters of a loaded model, read from GGUF metadata or a Hugging Face config.json
// and validated (a missing or nonsensical field is an Error naming the file and the field).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "array/ops.h"

namespace runnel::formats {
class GgufFile;
}

namespace runnel::models {

// MLX affine quantization from config.json "quantization": {"group_size": 64, "bits": 4}.
// bits == 0: not quantized. value = q * scale + bias per group of `group_size` inputs.
// Per-module overrides ("model.layers.0.mlp.down_proj": {"bits": 8, "group_size": 64}) as
// mlx-lm writes them for mixed-precision models.
struct MlxQuantization {
  int bits = 0;
  int group_size = 0;
  struct Override {
    int bits = 0, group_size = 0;
  };
  std::map<std::string, Override> overrides;  // module path (no ".weight") -> its own setting
};

struct ModelConfig {
  std::string architecture;  // HF name: "LlamaForCausalLM", "Qwen3ForCausalLM", ...
  std::string source;        // "gguf" or "safetensors"
  int64_t hidden = 0;
  int64_t n_layers = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t ffn = 0;
  int64_t vocab = 0;
  int64_t context_length = 0;  // trained context
  float norm_eps = 1e-5f;
  bool tied_embeddings = false;
  bool qkv_bias = false;  // Qwen2
  bool qk_norm = false;   // Qwen3
  array::RopeConfig rope;
  // llama3 rope scaling from config.json (GGUF files carry rope_freqs.weight instead).
  struct {
    bool llama3 = false;
    float factor = 1, low_freq_factor = 1, high_freq_factor = 4;
    int64_t original_context = 8192;
  } rope_scaling;
  std::vector<int32_t> eos_ids;  // from generation_config.json / config.json, when given
  int32_t bos_id = -1;
  MlxQuantization quantization;  // safetensors folders from mlx-community
};

// Frequency divisors of llama3 rope scaling, one per rotated pair.
std::vector<float> llama3_freq_factors(const ModelConfig& c);

// Reads the fields every dense architecture shares; `arch` is the GGUF architecture prefix.
ModelConfig config_from_gguf(const formats::GgufFile& f, const std::string& hf_architecture);
// `dir` holds config.json (and maybe generation_config.json).
ModelConfig config_from_hf(const std::string& dir);
// The "quantization" object of dir/config.json ({} when absent or no config.json); bits must be
// in {2, 3, 4, 5, 6, 8} and group_size in {32, 64, 128}, else an Error naming the file.
MlxQuantization quantization_from_hf(const std::string& dir);

}  // namespace runnel::models
