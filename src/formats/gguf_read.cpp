// GGUF reader: parses the header, metadata and tensor infos of a memory-mapped file with a
// bounds-checked cursor. Every count is checked against the bytes that remain before anything is
// allocated, so a lying file fails with Error("gguf", "<path>: <key or tensor>: ...").
#include <algorithm>
#include <cstring>
#include <limits>
#include <numeric>

#include "base/assert.h"
#include "base/error.h"
#include "formats/gguf.h"

namespace runnel::formats {
namespace {

constexpr uint64_t kDefaultAlignment = 32;
constexpr uint32_t kMaxDims = 4;
// Counts are checked against the remaining bytes, but one byte of file can still become 8 to 32
// bytes of memory (a u8 array element, an empty string): reserve at most this many up front and
// let real elements, each of which consumed file bytes, grow the vectors.
constexpr uint64_t kMaxReserve = uint64_t{1} << 16;

// Smallest encoded size of one value of a metadata type (strings: their u64 length).
uint64_t min_value_bytes(GgufType t) {
  switch (t) {
    case GgufType::kU8:
    case GgufType::kI8:
    case GgufType::kBool:
      return 1;
    case GgufType::kU16:
    case GgufType::kI16:
      return 2;
    case GgufType::kU32:
    case GgufType::kI32:
    case GgufType::kF32:
      return 4;
    case GgufType::kU64:
    case GgufType::kI64:
    case GgufType::kF64:
    case GgufType::kString:
      return 8;
    case GgufType::kArray:
      return 12;  // element type + count
  }
  return 1;
}

bool is_integer_type(GgufType t) {
  switch (t) {
    case GgufType::kU8:
    case GgufType::kI8:
    case GgufType::kU16:
    case GgufType::kI16:
    case GgufType::kU32:
    case GgufType::kI32:
    case GgufType::kU64:
    case GgufType::kI64:
      return true;
    default:
      return false;
  }
}

bool is_float_type(GgufType t) { return t == GgufType::kF32 || t == GgufType::kF64; }

const char* type_name(GgufType t) {
  static const char* const kNames[] = {"u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
                                       "bool", "string", "array", "u64", "i64", "f64"};
  auto i = static_cast<uint32_t>(t);
  return i < 13 ? kNames[i] : "unknown";
}

// Names of GGML types that runnel does not read, for the error message.
std::string ggml_type_hint(uint32_t t) {
  static const char* const kNames[] = {"iq2_xxs", "iq2_xs", "iq3_xxs", "iq1_s", "iq4_nl",
                                       "iq3_s",   "iq2_s",  "iq4_xs",  "i8",    "i16",
                                       "i32",     "i64",    "f64",     "iq1_m"};
  if (t == 9) return " (q8_1)";
  if (t >= 16 && t <= 29) return str_cat(" (", kNames[t - 16], ")");
  return "";
}

}  // namespace

// Reads one file into a GgufFile; owns the cursor.
class GgufParser {
 public:
  explicit GgufParser(GgufFile& out)
      : out_(out), data_(out.file_.data()), size_(out.file_.size()) {}

  void parse() {
    what_ = "header";
    if (size_ < 4 || std::memcmp(data_, "GGUF", 4) != 0) err("not a GGUF file (bad magic)");
    pos_ = 4;
    out_.version_ = read<uint32_t>();
    if (out_.version_ == 1) err("GGUF version 1 is not supported (only 2 and 3)");
    if (out_.version_ != 2 && out_.version_ != 3)
      err(str_cat("unsupported GGUF version ", out_.version_,
                  (out_.version_ & 0xffff) == 0 ? " (a big-endian file?)" : "", " (only 2 and 3)"));
    uint64_t n_tensors = read<uint64_t>();
    uint64_t n_kv = read<uint64_t>();
    // A key/value takes at least 8 (key length) + 4 (type) + 1 bytes; a tensor info at least
    // 8 (name length) + 4 (n_dims) + 4 (type) + 8 (offset).
    if (n_kv > remaining() / 13) err(str_cat("metadata count ", n_kv, " exceeds the file size"));
    for (uint64_t i = 0; i < n_kv; ++i) parse_kv();
    what_ = "tensor infos";
    if (n_tensors > remaining() / 24)
      err(str_cat("tensor count ", n_tensors, " exceeds the file size"));
    out_.tensors_.reserve(std::min(n_tensors, kMaxReserve));
    for (uint64_t i = 0; i < n_tensors; ++i) parse_tensor_info();
    place_tensors();
  }

 private:
  [[noreturn]] void err(const std::string& msg) const {
    fail("gguf", out_.path_, ": ", what_, ": ", msg);
  }
  size_t remaining() const { return size_ - pos_; }

  template <class T>
  T read() {
    if (remaining() < sizeof(T))
      err(str_cat("truncated file (need ", sizeof(T), " bytes at offset ", pos_, ", file has ",
                  size_, ")"));
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::string read_string() {
    uint64_t len = read<uint64_t>();
    if (len > remaining())
      err(str_cat("string length ", len, " at offset ", pos_ - 8,
                  " runs past the end of the file"));
    std::string s(reinterpret_cast<const char*>(data_ + pos_), static_cast<size_t>(len));
    pos_ += static_cast<size_t>(len);
    return s;
  }

  GgufType read_type() {
    uint32_t t = read<uint32_t>();
    if (t > static_cast<uint32_t>(GgufType::kF64)) err(str_cat("unknown value type ", t));
    return static_cast<GgufType>(t);
  }

  int64_t read_int(GgufType t) {
    switch (t) {
      case GgufType::kU8:
        return read<uint8_t>();
      case GgufType::kI8:
        return read<int8_t>();
      case GgufType::kU16:
        return read<uint16_t>();
      case GgufType::kI16:
        return read<int16_t>();
      case GgufType::kU32:
        return read<uint32_t>();
      case GgufType::kI32:
        return read<int32_t>();
      case GgufType::kI64:
        return read<int64_t>();
      case GgufType::kU64: {
        uint64_t v = read<uint64_t>();
        if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
          err(str_cat("u64 value ", v, " is too large"));
        return static_cast<int64_t>(v);
      }
      default:
        break;
    }
    RUNNEL_ASSERT(false);
    __builtin_unreachable();
  }

  double read_float(GgufType t) {
    if (t == GgufType::kF32) return read<float>();
    return read<double>();
  }

  bool read_bool() { return read<uint8_t>() != 0; }

  void parse_kv() {
    what_ = "metadata";
    std::string key = read_string();
    what_ = key;
    GgufValue v;
    v.type = read_type();
    if (v.type == GgufType::kArray) {
      v.elem_type = read_type();
      if (v.elem_type == GgufType::kArray) err("arrays of arrays are not supported");
      uint64_t n = read<uint64_t>();
      if (n > remaining() / min_value_bytes(v.elem_type))
        err(str_cat("array of ", n, " ", type_name(v.elem_type), " runs past the end of the file"));
      if (is_integer_type(v.elem_type)) {
        v.ints.reserve(std::min(n, kMaxReserve));
        for (uint64_t i = 0; i < n; ++i) v.ints.push_back(read_int(v.elem_type));
      } else if (is_float_type(v.elem_type)) {
        v.floats.reserve(std::min(n, kMaxReserve));
        for (uint64_t i = 0; i < n; ++i) v.floats.push_back(read_float(v.elem_type));
      } else if (v.elem_type == GgufType::kBool) {
        v.bools.reserve(std::min(n, kMaxReserve));
        for (uint64_t i = 0; i < n; ++i) v.bools.push_back(read_bool());
      } else {
        v.strings.reserve(std::min(n, kMaxReserve));
        for (uint64_t i = 0; i < n; ++i) v.strings.push_back(read_string());
      }
    } else if (is_integer_type(v.type)) {
      v.scalar = read_int(v.type);
    } else if (is_float_type(v.type)) {
      v.scalar = read_float(v.type);
    } else if (v.type == GgufType::kBool) {
      v.scalar = read_bool();
    } else {
      v.scalar = read_string();
    }
    if (!out_.kv_.emplace(key, std::move(v)).second) err("duplicate metadata key");
  }

  void parse_tensor_info() {
    what_ = "tensor info";
    GgufTensor t;
    t.name = read_string();
    what_ = "tensor " + t.name;
    uint32_t n_dims = read<uint32_t>();
    if (n_dims == 0 || n_dims > kMaxDims)
      err(str_cat("n_dims ", n_dims, " is out of range (1..", kMaxDims, ")"));
    std::vector<int64_t> ne(n_dims);  // innermost first, as in the file
    int64_t n_elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      uint64_t v = read<uint64_t>();
      if (v == 0 || v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        err(str_cat("dimension ", d, " has invalid size ", v));
      ne[d] = static_cast<int64_t>(v);
      if (__builtin_mul_overflow(n_elements, ne[d], &n_elements)) err("element count overflows");
    }
    uint32_t ggml_type = read<uint32_t>();
    std::optional<DType> dt = dtype_from_ggml(ggml_type);
    if (!dt) err(str_cat("unsupported tensor type ", ggml_type, ggml_type_hint(ggml_type)));
    t.dtype = *dt;
    t.offset = read<uint64_t>();
    if (ne[0] % block_elems(t.dtype) != 0)
      err(str_cat("row length ", ne[0], " is not a multiple of the ", dtype_name(t.dtype),
                  " block size ", block_elems(t.dtype)));
    // n_bytes = n_elements / block_elems * block_bytes, overflow-checked.
    uint64_t n_blocks = static_cast<uint64_t>(n_elements) / block_elems(t.dtype);
    uint64_t n_bytes = 0;
    if (__builtin_mul_overflow(n_blocks, uint64_t{dtype_info(t.dtype).block_bytes}, &n_bytes) ||
        n_bytes > size_)
      err(str_cat("data size of ", n_elements, " elements exceeds the file size"));
    t.n_bytes = static_cast<size_t>(n_bytes);
    t.shape.assign(ne.rbegin(), ne.rend());
    if (!out_.tensor_index_.emplace(t.name, out_.tensors_.size()).second)
      err("duplicate tensor name");
    out_.tensors_.push_back(std::move(t));
  }

  void place_tensors() {
    what_ = "general.alignment";
    uint64_t alignment = kDefaultAlignment;
    if (const GgufValue* a = out_.find("general.alignment")) {
      if (!is_integer_type(a->type)) err("must be an integer");
      int64_t v = std::get<int64_t>(a->scalar);
      if (v <= 0 || (v & (v - 1)) != 0) err(str_cat("alignment ", v, " is not a power of two"));
      alignment = static_cast<uint64_t>(v);
    }
    if (out_.tensors_.empty()) return;  // vocab-only files may end without padding
    what_ = "tensor data";
    uint64_t data_start = (pos_ + alignment - 1) / alignment * alignment;
    if (data_start > size_) err("data section starts past the end of the file");
    uint64_t data_size = size_ - data_start;
    std::vector<size_t> order(out_.tensors_.size());
    std::iota(order.begin(), order.end(), size_t{0});
    for (GgufTensor& t : out_.tensors_) {
      what_ = "tensor " + t.name;
      if (t.offset % alignment != 0)
        err(str_cat("offset ", t.offset, " is not a multiple of the alignment ", alignment));
      if (t.offset > data_size || t.n_bytes > data_size - t.offset)
        err(str_cat("data [", t.offset, ", +", t.n_bytes, ") lies outside the data section of ",
                    data_size, " bytes"));
      t.data = data_ + data_start + t.offset;
    }
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return out_.tensors_[a].offset < out_.tensors_[b].offset;
    });
    for (size_t i = 1; i < order.size(); ++i) {
      const GgufTensor& prev = out_.tensors_[order[i - 1]];
      const GgufTensor& cur = out_.tensors_[order[i]];
      what_ = "tensor " + cur.name;
      if (prev.offset + prev.n_bytes > cur.offset) err(str_cat("data overlaps tensor ", prev.name));
    }
  }

  GgufFile& out_;
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  std::string what_;
};

size_t GgufValue::array_size() const {
  return ints.size() + floats.size() + strings.size() + bools.size();
}

int64_t GgufTensor::n_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::unique_ptr<GgufFile> GgufFile::open(const std::string& path) {
  auto f = std::make_unique<GgufFile>();
  f->path_ = path;
  try {
    f->file_ = MappedFile(path);
  } catch (const Error& e) {
    fail("gguf", e.message());
  }
  GgufParser(*f).parse();
  return f;
}

const GgufValue* GgufFile::find(const std::string& key) const {
  auto it = kv_.find(key);
  return it == kv_.end() ? nullptr : &it->second;
}

const GgufTensor* GgufFile::find_tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

namespace {
[[noreturn]] void wrong_type(const std::string& path, const std::string& key, const char* want,
                             const GgufValue& v) {
  std::string got = type_name(v.type);
  if (v.type == GgufType::kArray) got = str_cat("array of ", type_name(v.elem_type));
  fail("gguf", path, ": ", key, ": expected ", want, ", found ", got);
}
}  // namespace

std::optional<int64_t> GgufFile::get_int(const std::string& key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return std::nullopt;
  if (!is_integer_type(v->type)) wrong_type(path_, key, "an integer", *v);
  return std::get<int64_t>(v->scalar);
}

std::optional<double> GgufFile::get_float(const std::string& key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return std::nullopt;
  if (is_integer_type(v->type)) return static_cast<double>(std::get<int64_t>(v->scalar));
  if (!is_float_type(v->type)) wrong_type(path_, key, "a number", *v);
  return std::get<double>(v->scalar);
}

std::optional<bool> GgufFile::get_bool(const std::string& key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return std::nullopt;
  if (v->type != GgufType::kBool) wrong_type(path_, key, "a bool", *v);
  return std::get<bool>(v->scalar);
}

std::optional<std::string> GgufFile::get_string(const std::string& key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return std::nullopt;
  if (v->type != GgufType::kString) wrong_type(path_, key, "a string", *v);
  return std::get<std::string>(v->scalar);
}

std::optional<std::vector<std::string>> GgufFile::get_strings(const std::string& key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return std::nullopt;
  if (v->type != GgufType::kArray || v->elem_type != GgufType::kString)
    wrong_type(path_, key, "an array of strings", *v);
  return v->strings;
}

std::optional<std::vector<int64_t>> GgufFile::get_ints(const std::string& key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return std::nullopt;
  if (v->type != GgufType::kArray || !is_integer_type(v->elem_type))
    wrong_type(path_, key, "an array of integers", *v);
  return v->ints;
}

std::optional<std::vector<double>> GgufFile::get_floats(const std::string& key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return std::nullopt;
  if (v->type != GgufType::kArray) wrong_type(path_, key, "an array of numbers", *v);
  if (is_float_type(v->elem_type)) return v->floats;
  if (!is_integer_type(v->elem_type)) wrong_type(path_, key, "an array of numbers", *v);
  return std::vector<double>(v->ints.begin(), v->ints.end());
}

std::string GgufFile::architecture() const {
  std::optional<std::string> arch = get_string("general.architecture");
  if (!arch) fail("gguf", path_, ": general.architecture: missing");
  return *arch;
}

std::optional<DType> dtype_from_ggml(uint32_t ggml_type) {
  switch (ggml_type) {
    case 0:
      return DType::kF32;
    case 1:
      return DType::kF16;
    case 2:
      return DType::kQ4_0;
    case 3:
      return DType::kQ4_1;
    case 6:
      return DType::kQ5_0;
    case 7:
      return DType::kQ5_1;
    case 8:
      return DType::kQ8_0;
    case 10:
      return DType::kQ2_K;
    case 11:
      return DType::kQ3_K;
    case 12:
      return DType::kQ4_K;
    case 13:
      return DType::kQ5_K;
    case 14:
      return DType::kQ6_K;
    case 15:
      return DType::kQ8_K;
    case 20:
      return DType::kIQ4_NL;
    case 23:
      return DType::kIQ4_XS;
    case 24:
      return DType::kI8;
    case 25:
      return DType::kI16;
    case 26:
      return DType::kI32;
    case 27:
      return DType::kI64;
    case 28:
      return DType::kF64;
    case 30:
      return DType::kBF16;
    default:
      return std::nullopt;
  }
}

uint32_t ggml_type_of(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return 0;
    case DType::kF16:
      return 1;
    case DType::kQ4_0:
      return 2;
    case DType::kQ4_1:
      return 3;
    case DType::kQ5_0:
      return 6;
    case DType::kQ5_1:
      return 7;
    case DType::kQ8_0:
      return 8;
    case DType::kQ2_K:
      return 10;
    case DType::kQ3_K:
      return 11;
    case DType::kQ4_K:
      return 12;
    case DType::kQ5_K:
      return 13;
    case DType::kQ6_K:
      return 14;
    case DType::kQ8_K:
      return 15;
    case DType::kIQ4_NL:
      return 20;
    case DType::kIQ4_XS:
      return 23;
    case DType::kI8:
      return 24;
    case DType::kI16:
      return 25;
    case DType::kI32:
      return 26;
    case DType::kI64:
      return 27;
    case DType::kF64:
      return 28;
    case DType::kBF16:
      return 30;
    default:
      break;
  }
  RUNNEL_ASSERT_MSG(false, str_cat("GGUF cannot store ", dtype_name(dtype)));
  __builtin_unreachable();
}

}  // namespace runnel::formats
