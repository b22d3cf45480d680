// `runnel create --quantize`: rewrites a model with quantized weight matrices.
// GGUF in -> GGUF out (q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, q4_k_m, q5_k, q5_k_m, q6_k,
// iq4_nl, iq4_xs): every 2-D tensor whose rows are a multiple of the block size is requantized
// (iq4_xs: rows that are a multiple of 32 but not of 256 become iq4_nl, as llama.cpp does; other
// tensors and all metadata copied).
// Safetensors folder in -> MLX affine folder out (int4, int8; group 64, or 32 when some row is
// not a multiple of 64), loadable by WeightSource. Unsupported combinations are Errors listing
// what is supported.
#pragma once

#include <string>

namespace runnel::models {

// Quantizes `from` (a .gguf file or a safetensors folder) to `out` (a file path for GGUF input,
// a folder, created, for a folder input). `type` is lower-case ("q8_0", "int4", ...).
void quantize_model(const std::string& from, const std::string& out, const std::string& type);

// What quantize_model accepts: "q8_0, q4_0, ..." for GGUF input, "int4, int8" for folders.
std::string supported_quantizations(bool gguf_input);

// A quantized copy of `from` in a fresh temporary folder under `parent` (created if needed):
// path() is <tmp>/<source's file or folder name>, so importing it keeps the source's file names.
// The temporary folder is removed when this object dies (also when quantizing fails).
class QuantizedCopy {
 public:
  QuantizedCopy(const std::string& from, const std::string& type, const std::string& parent);
  ~QuantizedCopy();
  QuantizedCopy(const QuantizedCopy&) = delete;
  QuantizedCopy& operator=(const QuantizedCopy&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string tmp_, path_;
};

}  // namespace runnel::models
