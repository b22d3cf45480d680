// GGUF files (versions 2 and 3): metadata key/values and tensors, memory-mapped. Nothing in the
// file is trusted: every count, size, offset and string is checked against the file's bounds, and
// a bad file is an Error("gguf", "<path>: <tensor or key>: what is wrong").
//
// Shapes are reported outermost dimension first (numpy order): a GGUF tensor with ne = [k, n]
// (k innermost) has shape {n, k}. Tensor data is a pointer into the mapping, aligned as the file
// says (general.alignment, default 32).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "base/dtype.h"
#include "base/mmap.h"

namespace runnel::formats {

// GGUF metadata value types, numbered as in the file.
enum class GgufType : uint32_t {
  kU8 = 0,
  kI8 = 1,
  kU16 = 2,
  kI16 = 3,
  kU32 = 4,
  kI32 = 5,
  kF32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kU64 = 10,
  kI64 = 11,
  kF64 = 12,
};

struct GgufValue {
  GgufType type = GgufType::kU8;
  GgufType elem_type = GgufType::kU8;  // for arrays
  // Scalars: integers widened to int64 (u64 above INT64_MAX is an error), floats to double.
  std::variant<int64_t, double, bool, std::string> scalar;
  // Arrays: exactly one of these is filled, by elem_type.
  std::vector<int64_t> ints;
  std::vector<double> floats;
  std::vector<std::string> strings;
  std::vector<bool> bools;
  size_t array_size() const;
  bool operator==(const GgufValue&) const = default;
};

struct GgufTensor {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;  // outermost first
  uint64_t offset = 0;         // from the start of the data section
  const uint8_t* data = nullptr;
  size_t n_bytes = 0;
  int64_t n_elements() const;
};

class GgufFile {
 public:
  // Maps and validates the whole file. Throws Error("gguf", ...) naming the path.
  static std::unique_ptr<GgufFile> open(const std::string& path);

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  const std::map<std::string, GgufValue>& metadata() const { return kv_; }
  const GgufValue* find(const std::string& key) const;

  // Typed getters: nullopt when absent; Error naming the key when present with the wrong type.
  std::optional<int64_t> get_int(const std::string& key) const;
  std::optional<double> get_float(const std::string& key) const;  // ints convert
  std::optional<bool> get_bool(const std::string& key) const;
  std::optional<std::string> get_string(const std::string& key) const;
  std::optional<std::vector<std::string>> get_strings(const std::string& key) const;
  std::optional<std::vector<int64_t>> get_ints(const std::string& key) const;
  std::optional<std::vector<double>> get_floats(const std::string& key) const;
  // general.architecture ("llama", "qwen2", ...), or Error when missing.
  std::string architecture() const;

  const std::vector<GgufTensor>& tensors() const { return tensors_; }
  const GgufTensor* find_tensor(const std::string& name) const;  // nullptr when absent

 private:
  std::string path_;
  uint32_t version_ = 0;
  MappedFile file_;
  std::map<std::string, GgufValue> kv_;
  std::vector<GgufTensor> tensors_;
  std::map<std::string, size_t> tensor_index_;
  friend class GgufParser;
};

// Writes GGUF v3 files (for `runnel create --quantize`, test models and benchmarks).
class GgufWriter {
 public:
  void set(const std::string& key, GgufValue value);
  void set_string(const std::string& key, const std::string& value);
  void set_int(const std::string& key, GgufType type, int64_t value);  // kU32, kI32, kU64 ...
  void set_float(const std::string& key, double value);                // written as f32
  void set_bool(const std::string& key, bool value);
  void set_strings(const std::string& key, std::vector<std::string> values);
  // shape outermost first; data is row_bytes(dtype, shape.back()) * rows bytes, copied.
  void add_tensor(const std::string& name, DType dtype, std::vector<int64_t> shape,
                  const void* data, size_t n_bytes);
  // A tensor whose n_bytes are produced during write() (e.g. quantized from a memory-mapped
  // source), one tensor at a time, so writing a large model needs memory for one tensor only.
  // produce(dst) fills dst[0, n_bytes); it may throw, and then write() fails and leaves no file.
  void add_tensor_producer(const std::string& name, DType dtype, std::vector<int64_t> shape,
                           size_t n_bytes, std::function<void(uint8_t* dst)> produce);
  // Writes atomically (temp file + rename). Throws Error("gguf", ...) on I/O failure.
  void write(const std::string& path, uint32_t alignment = 32) const;

 private:
  std::vector<std::pair<std::string, GgufValue>> kv_;
  struct Pending {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;  // copied data, or
    size_t n_bytes = 0;          // the size that `produce` fills
    std::function<void(uint8_t*)> produce;
    size_t size() const { return produce ? n_bytes : bytes.size(); }
  };
  void check_new_tensor(const std::string& name, DType dtype, const std::vector<int64_t>& shape,
                        size_t n_bytes) const;
  std::vector<Pending> tensors_;
};

// GGUF tensor type ids <-> DType (GGML_TYPE_F32 = 0, F16 = 1, Q4_0 = 2, ..., BF16 = 30).
std::optional<DType> dtype_from_ggml(uint32_t ggml_type);
uint32_t ggml_type_of(DType dtype);  // RUNNEL_ASSERT on types GGUF cannot store

}  // namespace runnel::formats
