// safetensors reader and writer. A file is an 8-byte little-endian header length N, N bytes of
// JSON ({"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}),
// then the data. The reader checks every range against the data size and, like the reference
// implementation, requires the ranges to tile the data exactly (no overlap, no gap).
#include "formats/safetensors.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "base/assert.h"
#include "base/error.h"

namespace runnel::formats {
namespace {

using nlohmann::json;

struct DTypeName {
  const char* name;
  DType dtype;
};
constexpr DTypeName kDTypes[] = {
    {"F32", DType::kF32}, {"F16", DType::kF16}, {"BF16", DType::kBF16}, {"F64", DType::kF64},
    {"I64", DType::kI64}, {"I32", DType::kI32}, {"I16", DType::kI16},   {"I8", DType::kI8},
    {"U8", DType::kU8},   {"U32", DType::kU32}, {"BOOL", DType::kBool},
};

const char* safetensors_name(DType d) {
  for (const DTypeName& n : kDTypes) {
    if (n.dtype == d) return n.name;
  }
  return nullptr;
}

// Non-negative integer from JSON, or nullopt.
std::optional<uint64_t> as_u64(const json& j) {
  if (j.is_number_unsigned()) return j.get<uint64_t>();
  if (j.is_number_integer() && j.get<int64_t>() >= 0)
    return static_cast<uint64_t>(j.get<int64_t>());
  return std::nullopt;
}

}  // namespace

class SafetensorsParser {
 public:
  explicit SafetensorsParser(SafetensorsFile& out) : out_(out) {}

  void parse() {
    const uint8_t* data = out_.file_.data();
    const size_t size = out_.file_.size();
    if (size < 8) err("header", str_cat("file of ", size, " bytes is too short"));
    uint64_t n_header = 0;
    std::memcpy(&n_header, data, 8);
    if (n_header > size - 8)
      err("header",
          str_cat("header length ", n_header, " runs past the end of the file (", size, " bytes)"));
    const char* text = reinterpret_cast<const char*>(data + 8);
    json header;
    std::string dup;
    // The callback sees every key of the top-level object, to reject duplicates that json would
    // silently merge.
    std::set<std::string> seen;
    auto on_event = [&](int depth, json::parse_event_t event, json& parsed) {
      if (event == json::parse_event_t::key && depth == 1 && dup.empty() &&
          !seen.insert(parsed.get<std::string>()).second)
        dup = parsed.get<std::string>();
      return true;
    };
    try {
      header = json::parse(text, text + n_header, on_event);
    } catch (const json::exception& e) {
      err("header", str_cat("malformed JSON: ", e.what()));
    }
    if (!dup.empty()) err(dup, "duplicate tensor name");
    if (!header.is_object()) err("header", "JSON is not an object");

    const uint8_t* base = data + 8 + n_header;
    const uint64_t data_size = size - 8 - n_header;
    struct Range {
      uint64_t begin, end;
      size_t index;
    };
    std::vector<Range> ranges;
    for (auto it = header.begin(); it != header.end(); ++it) {
      const std::string& name = it.key();
      const json& v = it.value();
      if (name == "__metadata__") {
        if (!v.is_object()) err(name, "must be an object of strings");
        for (auto m = v.begin(); m != v.end(); ++m) {
          if (!m.value().is_string()) err(name, str_cat(m.key(), ": value is not a string"));
          out_.metadata_[m.key()] = m.value().get<std::string>();
        }
        continue;
      }
      if (!v.is_object()) err(name, "entry is not an object");
      SafeTensor t;
      t.name = name;
      t.file = out_.path_;
      auto dt = v.find("dtype");
      if (dt == v.end() || !dt->is_string()) err(name, "missing dtype");
      bool known = false;
      for (const DTypeName& n : kDTypes) {
        if (*dt == n.name) {
          t.dtype = n.dtype;
          known = true;
        }
      }
      if (!known) err(name, str_cat("unsupported dtype ", dt->get<std::string>()));
      auto shape = v.find("shape");
      if (shape == v.end() || !shape->is_array()) err(name, "missing shape");
      uint64_t n_elements = 1;
      for (const json& d : *shape) {
        std::optional<uint64_t> n = as_u64(d);
        if (!n || *n > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
          err(name, str_cat("bad dimension ", d.dump()));
        if (__builtin_mul_overflow(n_elements, *n, &n_elements))
          err(name, "element count overflows");
        t.shape.push_back(static_cast<int64_t>(*n));
      }
      auto offsets = v.find("data_offsets");
      if (offsets == v.end() || !offsets->is_array() || offsets->size() != 2)
        err(name, "data_offsets must be [begin, end]");
      std::optional<uint64_t> begin = as_u64((*offsets)[0]);
      std::optional<uint64_t> end = as_u64((*offsets)[1]);
      if (!begin || !end || *begin > *end) err(name, str_cat("bad data_offsets ", offsets->dump()));
      if (*end > data_size)
        err(name, str_cat("data_offsets ", offsets->dump(), " run past the data (", data_size,
                          " bytes)"));
      uint64_t n_bytes = 0;
      if (__builtin_mul_overflow(n_elements, uint64_t{dtype_size(t.dtype)}, &n_bytes) ||
          n_bytes != *end - *begin)
        err(name, str_cat("data_offsets ", offsets->dump(), " hold ", *end - *begin,
                          " bytes, but the shape and dtype need ", n_elements, " x ",
                          dtype_size(t.dtype)));
      t.data = base + *begin;
      t.n_bytes = static_cast<size_t>(n_bytes);
      ranges.push_back({*begin, *end, out_.tensors_.size()});
      out_.tensors_.push_back(std::move(t));
    }
    // The ranges must tile [0, data_size): sorted by begin, each starts where the last ended.
    std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) {
      return a.begin < b.begin || (a.begin == b.begin && a.end < b.end);
    });
    uint64_t pos = 0;
    for (const Range& r : ranges) {
      const std::string& name = out_.tensors_[r.index].name;
      if (r.begin < pos) err(name, "data overlaps another tensor");
      if (r.begin > pos) err(name, str_cat("gap of ", r.begin - pos, " bytes before its data"));
      pos = r.end;
    }
    if (pos != data_size)
      err("data", str_cat(data_size - pos, " trailing bytes are not part of any tensor"));
    // Tensors in file order, which is also the order the writer received them.
    std::vector<SafeTensor> ordered;
    ordered.reserve(ranges.size());
    for (const Range& r : ranges) ordered.push_back(std::move(out_.tensors_[r.index]));
    out_.tensors_ = std::move(ordered);
  }

 private:
  [[noreturn]] void err(const std::string& what, const std::string& msg) const {
    fail("safetensors", out_.path_, ": ", what, ": ", msg);
  }
  SafetensorsFile& out_;
};

std::unique_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  auto f = std::make_unique<SafetensorsFile>();
  f->path_ = path;
  try {
    f->file_ = MappedFile(path);
  } catch (const Error& e) {
    fail("safetensors", e.message());
  }
  SafetensorsParser(*f).parse();
  return f;
}

std::unique_ptr<SafetensorsModel> SafetensorsModel::open_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  auto m = std::make_unique<SafetensorsModel>();
  const std::string index_path = dir + "/model.safetensors.index.json";
  std::map<std::string, std::string> weight_map;  // tensor -> shard file name
  std::vector<std::string> shards;
  std::error_code ec;
  if (fs::exists(index_path, ec)) {
    json index;
    try {
      index = json::parse(read_file(index_path));
    } catch (const json::exception& e) {
      fail("safetensors", index_path, ": malformed JSON: ", e.what());
    } catch (const Error& e) {
      fail("safetensors", e.message());
    }
    if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
      fail("safetensors", index_path, ": weight_map: missing or not an object");
    std::set<std::string> distinct;
    for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it) {
      if (!it.value().is_string())
        fail("safetensors", index_path, ": ", it.key(), ": shard name is not a string");
      std::string shard = it.value().get<std::string>();
      if (shard.empty() || shard.find('/') != std::string::npos || shard == "." || shard == "..")
        fail("safetensors", index_path, ": ", it.key(), ": bad shard name \"", shard, "\"");
      weight_map[it.key()] = shard;
      if (distinct.insert(shard).second) shards.push_back(shard);
    }
    std::sort(shards.begin(), shards.end());
  } else if (fs::exists(dir + "/model.safetensors", ec)) {
    shards.push_back("model.safetensors");
  } else {
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      if (e.path().extension() == ".safetensors") shards.push_back(e.path().filename().string());
    }
    if (ec) fail("safetensors", dir, ": cannot list: ", ec.message());
    std::sort(shards.begin(), shards.end());
  }
  if (shards.empty()) fail("safetensors", dir, ": no *.safetensors files");
  std::map<std::string, const SafetensorsFile*> by_shard;
  for (const std::string& shard : shards) {
    std::string path = dir + "/" + shard;
    if (!fs::exists(path, ec)) fail("safetensors", path, ": missing shard (listed in the index)");
    m->files_.push_back(SafetensorsFile::open(path));
    by_shard[shard] = m->files_.back().get();
    for (const SafeTensor& t : m->files_.back()->tensors()) {
      auto [pos, inserted] = m->index_.emplace(t.name, &t);
      if (!inserted) fail("safetensors", path, ": ", t.name, ": also in ", pos->second->file);
    }
  }
  for (const auto& [name, shard] : weight_map) {
    auto it = m->index_.find(name);
    if (it == m->index_.end() || it->second->file != dir + "/" + shard)
      fail("safetensors", dir, "/", shard, ": ", name,
           ": listed in the index but not in this shard");
  }
  return m;
}

const SafeTensor* SafetensorsModel::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : it->second;
}

std::vector<std::string> SafetensorsModel::names() const {
  std::vector<std::string> out;
  out.reserve(index_.size());
  for (const auto& [name, t] : index_) out.push_back(name);
  return out;
}

void write_safetensors(const std::string& path, const std::vector<SafeTensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const SafeTensorToWrite& t : tensors) {
    const char* dt = safetensors_name(t.dtype);
    RUNNEL_ASSERT_MSG(dt != nullptr,
                      str_cat(t.name, ": safetensors cannot store ", dtype_name(t.dtype)));
    uint64_t n = 1;
    for (int64_t d : t.shape) {
      RUNNEL_ASSERT_MSG(d >= 0, t.name);
      n *= static_cast<uint64_t>(d);
    }
    RUNNEL_ASSERT_MSG(n * dtype_size(t.dtype) == t.n_bytes, t.name + ": size does not match shape");
    RUNNEL_ASSERT_MSG(!header.contains(t.name), "duplicate tensor " + t.name);
    header[t.name] = {
        {"dtype", dt}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.n_bytes}}};
    offset += t.n_bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keeps the data 8-byte aligned
  const std::string tmp = str_cat(path, ".tmp.", ::getpid());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) fail("safetensors", tmp, ": cannot create: ", std::strerror(errno));
    uint64_t n = text.size();
    f.write(reinterpret_cast<const char*>(&n), 8);
    f.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const SafeTensorToWrite& t : tensors)
      f.write(static_cast<const char*>(t.data), static_cast<std::streamsize>(t.n_bytes));
    f.flush();
    if (!f) {
      std::remove(tmp.c_str());
      fail("safetensors", tmp, ": write failed");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    std::remove(tmp.c_str());
    fail("safetensors", path, ": rename failed: ", std::strerror(e));
  }
}

}  // namespace runnel::formats
