// Where a model's tensors come from: a GGUF file or a Hugging Face safetensors folder. Tensors are
// named canonically by their GGUF names ("blk.7.attn_k.weight"); Hugging Face names are mapped.
// Arrays are zero-copy views of the memory-mapped files, kept alive by the arrays themselves.
// MLX affine-quantized folders (X.weight U32 packed + X.scales + X.biases) are dequantized to f32
// at load by get(): a pinned copy, shape [out, in] as expected; get_linear packs int4/int8 ones
// straight into the kernels' MLX r16 layouts instead when the active ISA prefers them.
#pragma once

#include <memory>
#include <string>

#include "array/array.h"
#include "models/config.h"

namespace runnel::formats {
class GgufFile;
class SafetensorsModel;
struct SafeTensor;
}  // namespace runnel::formats

namespace runnel::models {

class WeightSource {
 public:
  static std::unique_ptr<WeightSource> from_gguf(std::shared_ptr<const formats::GgufFile> file);
  // Reads the quantization of dir/config.json itself.
  static std::unique_ptr<WeightSource> from_hf_dir(const std::string& dir);
  static std::unique_ptr<WeightSource> from_hf_dir(const std::string& dir,
                                                   const MlxQuantization& quantization);

  // The tensor, or an invalid Array when absent.
  array::Array find(const std::string& canonical) const;
  // The tensor with exactly this shape (outermost first), else
  // Error("model", "<file>: layer 7: missing blk.7.attn_k.weight") or a shape mismatch message.
  array::Array get(const std::string& canonical, const array::Shape& expected) const;
  // Like get, for a matrix that only array::linear reads: in the layout the active kernels stream
  // best (array::prepare_linear_weight). When it was packed, the file's pages under the tensor are
  // handed back to the OS (the packed copy is what decode reads), unless `keep_source` (a tied
  // embedding that is also read by row). `file_type`, when given, receives the type before packing.
  array::Array get_linear(const std::string& canonical, const array::Shape& expected,
                          bool keep_source = false, DType* file_type = nullptr) const;
  // Several matrices that array::linear reads as one (q|k|v, gate|up): their rows concatenated, in
  // the layout get_linear would give each (array::prepare_fused_linear_weight), or an invalid
  // Array when they cannot be one matrix (types or widths differ). The file's pages are released
  // as in get_linear; `file_type` receives the parts' type.
  array::Array get_fused_linear(const std::vector<std::pair<std::string, array::Shape>>& parts,
                                DType* file_type) const;
  // Hands the file's pages under tensor `canonical` back to the OS when `a` is the zero-copy view
  // of it (a copy of the tensor replaces it); otherwise does nothing.
  void release_if_view(const std::string& canonical, const array::Array& a) const;
  // Like get, converted to f32 (norm weights, biases): a pinned copy when the file is not f32.
  array::Array get_f32(const std::string& canonical, const array::Shape& expected) const;
  const std::string& path() const { return path_; }

 private:
  // A validated MLX-quantized matrix (errors name the file, layer and tensor).
  struct MlxTensor {
    const uint32_t* words;
    const formats::SafeTensor *scales, *biases;
    int64_t rows, cols;
    int bits, group_size;
  };
  bool is_mlx_quantized(const std::string& name, const array::Array& a) const;
  MlxTensor check_mlx(const std::string& canonical, const std::string& name,
                      const array::Array& packed, const array::Shape& expected) const;
  array::Array dequantize_mlx(const std::string& canonical, const std::string& name,
                              const array::Array& packed, const array::Shape& expected) const;

  std::string path_;
  std::shared_ptr<const formats::GgufFile> gguf_;
  std::shared_ptr<const formats::SafetensorsModel> st_;
  MlxQuantization quant_;
};

// Dequantizes one MLX affine-quantized matrix to f32 [rows, cols] (row-major):
// `packed` holds rows * cols * bits / 32 little-endian uint32 (element j of a row is bits
// [j*bits, (j+1)*bits) of the row's bit stream), `scales`/`biases` rows * cols / group_size
// values of dtype f32, f16 or bf16.
void mlx_dequantize(const uint32_t* packed, const void* scales, const void* biases, DType sb_dtype,
                    int64_t rows, int64_t cols, int bits, int group_size, float* out);

// "blk.3.attn_q.weight" -> "model.layers.3.self_attn.q_proj.weight".
std::string hf_name(const std::string& canonical);

}  // namespace runnel::models
