// safetensors files, single or sharded (model.safetensors.index.json), memory-mapped and
// validated: the header's JSON, every dtype, shape and data range is checked against the file, and
// tensors may neither overlap nor leave gaps unaccounted. Errors: Error("safetensors",
// "<path>: <tensor>: what is wrong").
//
// Shapes are outermost first, as in the file.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/dtype.h"
#include "base/mmap.h"

namespace runnel::formats {

struct SafeTensor {
  std::string name;
  DType dtype = DType::kF32;  // F32, F16, BF16, I8, U8, I32, U32, I64, F64, BOOL ...
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  size_t n_bytes = 0;
  std::string file;  // which shard
};

class SafetensorsFile {
 public:
  static std::unique_ptr<SafetensorsFile> open(const std::string& path);
  const std::string& path() const { return path_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::vector<SafeTensor>& tensors() const { return tensors_; }

 private:
  std::string path_;
  MappedFile file_;
  std::map<std::string, std::string> metadata_;
  std::vector<SafeTensor> tensors_;
  friend class SafetensorsParser;
};

// All the safetensors of a model folder: model.safetensors, or the shards listed by
// model.safetensors.index.json (every listed tensor must be in its shard), or every *.safetensors.
class SafetensorsModel {
 public:
  static std::unique_ptr<SafetensorsModel> open_dir(const std::string& dir);
  const SafeTensor* find(const std::string& name) const;  // nullptr when absent
  std::vector<std::string> names() const;                 // sorted
  // The files read, in the order opened (their metadata(), e.g. {"format": "mlx"}).
  const std::vector<std::unique_ptr<SafetensorsFile>>& files() const { return files_; }

 private:
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const SafeTensor*> index_;
};

struct SafeTensorToWrite {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  const void* data;
  size_t n_bytes;
};

// Writes one safetensors file atomically, tensors in the given order.
void write_safetensors(const std::string& path, const std::vector<SafeTensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace runnel::formats
