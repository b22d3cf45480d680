// Where a model's tensors come from: a GGUF file or a Hugging Face safetensors folder. Tensors are
// named canonically by their GGUF names ("blk.7.attn_k.weight"); Hugging Face names are mapped.
// Arrays are zero-copy views of the memory-mapped files, kept alive by the arrays themselves.
#pragma once

#include <memory>
#include <string>

#include "array/array.h"

namespace runnel::formats {
class GgufFile;
class SafetensorsModel;
}  // namespace runnel::formats

namespace runnel::models {

class WeightSource {
 public:
  static std::unique_ptr<WeightSource> from_gguf(std::shared_ptr<const formats::GgufFile> file);
  static std::unique_ptr<WeightSource> from_hf_dir(const std::string& dir);

  // The tensor, or an invalid Array when absent.
  array::Array find(const std::string& canonical) const;
  // The tensor with exactly this shape (outermost first), else
  // Error("model", "<file>: layer 7: missing blk.7.attn_k.weight") or a shape mismatch message.
  array::Array get(const std::string& canonical, const array::Shape& expected) const;
  // Like get, converted to f32 (norm weights, biases): a pinned copy when the file is not f32.
  array::Array get_f32(const std::string& canonical, const array::Shape& expected) const;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::shared_ptr<const formats::GgufFile> gguf_;
  std::shared_ptr<const formats::SafetensorsModel> st_;
};

// "blk.3.attn_q.weight" -> "model.layers.3.self_attn.q_proj.weight".
std::string hf_name(const std::string& canonical);

}  // namespace runnel::models
