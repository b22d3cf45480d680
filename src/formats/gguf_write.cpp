// GGUF v3 writer: metadata in insertion order (a key set twice keeps its first position and its
// last value), tensor infos, then tensor data, each tensor aligned to `alignment` bytes.
// Written to "<path>.tmp.<pid>" and renamed, so a reader never sees a half-written file.
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>

#include "base/assert.h"
#include "base/error.h"
#include "formats/gguf.h"

namespace runnel::formats {
namespace {

class Out {
 public:
  explicit Out(std::ofstream& f) : f_(f) {}
  template <class T>
  void put(T v) {
    f_.write(reinterpret_cast<const char*>(&v), sizeof(T));
    pos_ += sizeof(T);
  }
  void bytes(const void* p, size_t n) {
    f_.write(static_cast<const char*>(p), static_cast<std::streamsize>(n));
    pos_ += n;
  }
  void str(const std::string& s) {
    put<uint64_t>(s.size());
    bytes(s.data(), s.size());
  }
  void pad(uint64_t alignment) {
    static const char kZeros[64] = {};
    while (pos_ % alignment != 0) {
      size_t n = std::min<uint64_t>(sizeof(kZeros), alignment - pos_ % alignment);
      bytes(kZeros, n);
    }
  }
  uint64_t pos() const { return pos_; }

 private:
  std::ofstream& f_;
  uint64_t pos_ = 0;
};

void put_int(Out& o, GgufType t, int64_t v) {
  switch (t) {
    case GgufType::kU8:
      o.put<uint8_t>(static_cast<uint8_t>(v));
      break;
    case GgufType::kI8:
      o.put<int8_t>(static_cast<int8_t>(v));
      break;
    case GgufType::kU16:
      o.put<uint16_t>(static_cast<uint16_t>(v));
      break;
    case GgufType::kI16:
      o.put<int16_t>(static_cast<int16_t>(v));
      break;
    case GgufType::kU32:
      o.put<uint32_t>(static_cast<uint32_t>(v));
      break;
    case GgufType::kI32:
      o.put<int32_t>(static_cast<int32_t>(v));
      break;
    case GgufType::kU64:
      o.put<uint64_t>(static_cast<uint64_t>(v));
      break;
    case GgufType::kI64:
      o.put<int64_t>(v);
      break;
    default:
      RUNNEL_ASSERT_MSG(false, "not an integer type");
  }
}

void put_float(Out& o, GgufType t, double v) {
  if (t == GgufType::kF64) {
    o.put<double>(v);
  } else {
    o.put<float>(static_cast<float>(v));
  }
}

// Writes the value (without key and type tag) of `v`; scalar kinds follow `v.type`.
void put_value(Out& o, const GgufValue& v) {
  switch (v.type) {
    case GgufType::kString:
      o.str(std::get<std::string>(v.scalar));
      return;
    case GgufType::kBool:
      o.put<uint8_t>(std::get<bool>(v.scalar) ? 1 : 0);
      return;
    case GgufType::kF32:
    case GgufType::kF64:
      put_float(o, v.type, std::get<double>(v.scalar));
      return;
    case GgufType::kArray: {
      RUNNEL_ASSERT_MSG(v.elem_type != GgufType::kArray, "GGUF writer: arrays of arrays");
      o.put<uint32_t>(static_cast<uint32_t>(v.elem_type));
      o.put<uint64_t>(v.array_size());
      switch (v.elem_type) {
        case GgufType::kString:
          for (const std::string& s : v.strings) o.str(s);
          return;
        case GgufType::kBool:
          for (bool b : v.bools) o.put<uint8_t>(b ? 1 : 0);
          return;
        case GgufType::kF32:
        case GgufType::kF64:
          for (double f : v.floats) put_float(o, v.elem_type, f);
          return;
        default:
          for (int64_t i : v.ints) put_int(o, v.elem_type, i);
          return;
      }
    }
    default:
      put_int(o, v.type, std::get<int64_t>(v.scalar));
      return;
  }
}

}  // namespace

void GgufWriter::set(const std::string& key, GgufValue value) {
  for (auto& [k, v] : kv_) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  kv_.emplace_back(key, std::move(value));
}

void GgufWriter::set_string(const std::string& key, const std::string& value) {
  GgufValue v;
  v.type = GgufType::kString;
  v.scalar = value;
  set(key, std::move(v));
}

void GgufWriter::set_int(const std::string& key, GgufType type, int64_t value) {
  RUNNEL_ASSERT(type != GgufType::kF32 && type != GgufType::kF64 && type != GgufType::kBool &&
                type != GgufType::kString && type != GgufType::kArray);
  GgufValue v;
  v.type = type;
  v.scalar = value;
  set(key, std::move(v));
}

void GgufWriter::set_float(const std::string& key, double value) {
  GgufValue v;
  v.type = GgufType::kF32;
  v.scalar = value;
  set(key, std::move(v));
}

void GgufWriter::set_bool(const std::string& key, bool value) {
  GgufValue v;
  v.type = GgufType::kBool;
  v.scalar = value;
  set(key, std::move(v));
}

void GgufWriter::set_strings(const std::string& key, std::vector<std::string> values) {
  GgufValue v;
  v.type = GgufType::kArray;
  v.elem_type = GgufType::kString;
  v.strings = std::move(values);
  set(key, std::move(v));
}

void GgufWriter::check_new_tensor(const std::string& name, DType dtype,
                                  const std::vector<int64_t>& shape, size_t n_bytes) const {
  RUNNEL_ASSERT_MSG(!shape.empty() && shape.size() <= 4, name);
  int64_t n = 1;
  for (int64_t d : shape) {
    RUNNEL_ASSERT_MSG(d > 0, name);
    n *= d;
  }
  RUNNEL_ASSERT_MSG(shape.back() % block_elems(dtype) == 0, name);
  RUNNEL_ASSERT_MSG(row_bytes(dtype, static_cast<size_t>(n)) == n_bytes, name);
  for (const Pending& p : tensors_) RUNNEL_ASSERT_MSG(p.name != name, "duplicate tensor " + name);
}

void GgufWriter::add_tensor(const std::string& name, DType dtype, std::vector<int64_t> shape,
                            const void* data, size_t n_bytes) {
  check_new_tensor(name, dtype, shape, n_bytes);
  Pending p{name, dtype, std::move(shape), {}, 0, {}};
  p.bytes.assign(static_cast<const uint8_t*>(data), static_cast<const uint8_t*>(data) + n_bytes);
  tensors_.push_back(std::move(p));
}

void GgufWriter::add_tensor_producer(const std::string& name, DType dtype,
                                     std::vector<int64_t> shape, size_t n_bytes,
                                     std::function<void(uint8_t* dst)> produce) {
  check_new_tensor(name, dtype, shape, n_bytes);
  RUNNEL_ASSERT(produce != nullptr);
  tensors_.push_back(Pending{name, dtype, std::move(shape), {}, n_bytes, std::move(produce)});
}

void GgufWriter::write(const std::string& path, uint32_t alignment) const {
  RUNNEL_ASSERT(alignment > 0 && (alignment & (alignment - 1)) == 0);
  std::vector<std::pair<std::string, GgufValue>> kv = kv_;
  bool has_alignment = false;
  for (auto& [k, v] : kv) has_alignment |= k == "general.alignment";
  if (alignment != 32 || has_alignment) {
    GgufValue a;
    a.type = GgufType::kU32;
    a.scalar = int64_t{alignment};
    bool replaced = false;
    for (auto& [k, v] : kv) {
      if (k == "general.alignment") {
        v = a;
        replaced = true;
      }
    }
    if (!replaced) kv.emplace_back("general.alignment", a);
  }

  std::string tmp = str_cat(path, ".tmp.", ::getpid());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) fail("gguf", tmp, ": cannot create: ", std::strerror(errno));
    Out o(f);
    o.bytes("GGUF", 4);
    o.put<uint32_t>(3);
    o.put<uint64_t>(tensors_.size());
    o.put<uint64_t>(kv.size());
    for (const auto& [k, v] : kv) {
      o.str(k);
      o.put<uint32_t>(static_cast<uint32_t>(v.type));
      put_value(o, v);
    }
    uint64_t offset = 0;
    for (const Pending& t : tensors_) {
      o.str(t.name);
      o.put<uint32_t>(static_cast<uint32_t>(t.shape.size()));
      for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it)
        o.put<uint64_t>(static_cast<uint64_t>(*it));
      o.put<uint32_t>(ggml_type_of(t.dtype));
      o.put<uint64_t>(offset);
      offset = (offset + t.size() + alignment - 1) / alignment * alignment;
    }
    if (!tensors_.empty()) {
      o.pad(alignment);
      std::vector<uint8_t> buf;
      for (const Pending& t : tensors_) {
        if (t.produce) {
          buf.assign(t.n_bytes, 0);
          try {
            t.produce(buf.data());
          } catch (...) {
            f.close();
            std::remove(tmp.c_str());
            throw;
          }
          o.bytes(buf.data(), buf.size());
        } else {
          o.bytes(t.bytes.data(), t.bytes.size());
        }
        o.pad(alignment);
      }
    }
    f.flush();
    if (!f) {
      std::remove(tmp.c_str());
      fail("gguf", tmp, ": write failed");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    std::remove(tmp.c_str());
    fail("gguf", path, ": rename failed: ", std::strerror(e));
  }
}

}  // namespace runnel::formats
