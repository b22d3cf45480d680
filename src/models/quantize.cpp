// GGUF requantization (one tensor in memory at a time through GgufWriter producers) and MLX
// affine quantization of safetensors folders (one shard in memory at a time).
#include "models/quantize.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "base/error.h"
#include "base/half.h"
#include "base/mmap.h"
#include "base/strings.h"
#include "base/thread_pool.h"
#include "formats/gguf.h"
#include "formats/safetensors.h"
#include "kernels/cpu/quant.h"

namespace runnel::models {

namespace fs = std::filesystem;

namespace {

struct GgufTarget {
  const char* name;
  DType dtype;
  int file_type;       // llama.cpp's general.file_type (LLAMA_FTYPE_MOSTLY_*)
  bool mix_k = false;  // the _M mix: more bits (Q6_K) where errors cost the most, see below
  // For rows that are no multiple of dtype's block: a type of smaller blocks to use instead, as
  // llama.cpp does (IQ4_NL for IQ4_XS: the same grid per 32 elements); kCount: they stay as they
  // are.
  DType fallback = DType::kCount;
};
constexpr GgufTarget kGgufTargets[] = {
    {"q8_0", DType::kQ8_0, 7},          {"q4_0", DType::kQ4_0, 2},
    {"q4_1", DType::kQ4_1, 3},          {"q5_0", DType::kQ5_0, 8},
    {"q5_1", DType::kQ5_1, 9},          {"q2_k", DType::kQ2_K, 10},
    {"q3_k", DType::kQ3_K, 11},         {"q4_k", DType::kQ4_K, 14},
    {"q4_k_m", DType::kQ4_K, 15, true}, {"q5_k", DType::kQ5_K, 16},
    {"q5_k_m", DType::kQ5_K, 17, true}, {"q6_k", DType::kQ6_K, 18},
    {"iq4_nl", DType::kIQ4_NL, 25},     {"iq4_xs", DType::kIQ4_XS, 30, false, DType::kIQ4_NL},
};

// "blk.7.ffn_down.weight" -> 7, or -1.
int layer_of(const std::string& name) {
  if (name.rfind("blk.", 0) != 0) return -1;
  return std::atoi(name.c_str() + 4);
}

// Q4_K_M / Q5_K_M as the common recipe has it: Q6_K for the output matrix, and for attn_v /
// ffn_down in the first and last eighth of the layers and every third layer between; Q4_K / Q5_K
// elsewhere.
DType mix_type(const GgufTarget& t, const std::string& name, int n_layers) {
  if (!t.mix_k) return t.dtype;
  if (name == "output.weight") return DType::kQ6_K;
  const bool more_bits_tensor = name.find(".attn_v.weight") != std::string::npos ||
                                name.find(".ffn_down.weight") != std::string::npos;
  const int i = layer_of(name);
  if (!more_bits_tensor || i < 0 || n_layers <= 0) return t.dtype;
  const int eighth = n_layers / 8;
  const bool more = i < eighth || i >= n_layers - eighth || (i - eighth) % 3 == 2;
  return more ? DType::kQ6_K : t.dtype;
}

// The type of a 2-D tensor with rows of `cols` elements, or kCount to copy it unchanged.
DType row_type(const GgufTarget& t, const std::string& name, int n_layers, int64_t cols) {
  const DType want = mix_type(t, name, n_layers);
  if (cols % block_elems(t.dtype) == 0 && cols % block_elems(want) == 0) return want;
  if (t.fallback != DType::kCount && cols % block_elems(t.fallback) == 0) return t.fallback;
  return DType::kCount;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

void quantize_gguf(const std::string& from, const std::string& out, const std::string& type) {
  const GgufTarget* target = nullptr;
  for (const auto& t : kGgufTargets)
    if (type == t.name) target = &t;
  check(target != nullptr, "quantize", from, ": cannot quantize a GGUF file to '", type,
        "' (supported for GGUF: ", supported_quantizations(true), ")");
  std::shared_ptr<const formats::GgufFile> f = formats::GgufFile::open(from);
  formats::GgufWriter w;
  for (const auto& [key, value] : f->metadata()) w.set(key, value);
  w.set_int("general.file_type", formats::GgufType::kU32, target->file_type);
  const uint32_t block =
      block_elems(target->fallback != DType::kCount ? target->fallback : target->dtype);
  int n_layers = 0;
  for (const formats::GgufTensor& t : f->tensors())
    n_layers = std::max(n_layers, layer_of(t.name) + 1);
  int n_quantized = 0;
  for (const formats::GgufTensor& t : f->tensors()) {
    const DType out_type =
        t.shape.size() == 2 ? row_type(*target, t.name, n_layers, t.shape[1]) : DType::kCount;
    const bool quantize = out_type != DType::kCount;
    n_quantized += quantize ? 1 : 0;
    if (!quantize) {
      const formats::GgufTensor* src = &t;
      w.add_tensor_producer(t.name, t.dtype, t.shape, t.n_bytes,
                            [f, src](uint8_t* dst) { std::memcpy(dst, src->data, src->n_bytes); });
      continue;
    }
    const int64_t rows = t.shape[0], cols = t.shape[1];
    const size_t in_row = row_bytes(t.dtype, cols), out_row = row_bytes(out_type, cols);
    const DType in_type = t.dtype;
    const uint8_t* data = t.data;
    const std::string name = t.name;
    w.add_tensor_producer(
        t.name, out_type, t.shape, out_row * static_cast<size_t>(rows),
        [f, data, rows, cols, in_row, out_row, in_type, out_type, name](uint8_t* dst) {
          // Rows on every core: the IQ4 quantizers search 32 scales a block (9 M elements a
          // second on one core), so a 7B model took 13 minutes on one.
          std::atomic<bool> ok = true;
          ThreadPool::global().parallel_for(
              static_cast<size_t>(rows), 16, [&](size_t r0, size_t r1) {
                std::vector<float> buf(static_cast<size_t>(cols));
                for (size_t r = r0; r < r1; ++r) {
                  kernels::cpu::dequantize_row(in_type, data + r * in_row, buf.data(), buf.size());
                  if (!kernels::cpu::quantize_row(out_type, buf.data(), dst + r * out_row,
                                                  buf.size())) {
                    ok = false;
                  }
                }
              });
          check(ok, "quantize", name, ": cannot quantize to ", dtype_name(out_type));
        });
  }
  check(n_quantized > 0, "quantize", from, ": no weight matrix has rows that are a multiple of ",
        block, " elements: nothing to quantize to ", type);
  uint32_t alignment = 32;
  if (auto a = f->get_int("general.alignment")) alignment = static_cast<uint32_t>(*a);
  w.write(out, alignment);
}

bool is_float(DType t) { return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16; }

// Appends v (f32) in dtype `t` (f32, f16 or bf16) to `out`.
void put_scalar(std::vector<uint8_t>& out, DType t, float v) {
  if (t == DType::kF32) {
    const uint8_t* p = reinterpret_cast<const uint8_t*>(&v);
    out.insert(out.end(), p, p + 4);
    return;
  }
  const uint16_t h = t == DType::kF16 ? f32_to_f16(v) : f32_to_bf16(v);
  const uint8_t* p = reinterpret_cast<const uint8_t*>(&h);
  out.insert(out.end(), p, p + 2);
}

float round_trip(DType t, float v) {
  if (t == DType::kF16) return f16_to_f32(f32_to_f16(v));
  if (t == DType::kBF16) return bf16_to_f32(f32_to_bf16(v));
  return v;
}

struct MlxOut {
  std::vector<uint8_t> packed, scales, biases;
};

// Per group: scale = (max - min) / (2^bits - 1), bias = min (both rounded to `sb`),
// q = round((x - bias) / scale), packed low bits first.
MlxOut mlx_quantize(const float* x, int64_t rows, int64_t cols, int bits, int group, DType sb) {
  MlxOut o;
  std::vector<uint32_t> words(static_cast<size_t>(rows * cols * bits / 32), 0);
  const int levels = (1 << bits) - 1;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t g0 = 0; g0 < cols; g0 += group) {
      const float* v = x + r * cols + g0;
      float lo = v[0], hi = v[0];
      for (int i = 1; i < group; ++i) lo = std::min(lo, v[i]), hi = std::max(hi, v[i]);
      const float s = round_trip(sb, (hi - lo) / static_cast<float>(levels));
      const float b = round_trip(sb, lo);
      put_scalar(o.scales, sb, s);
      put_scalar(o.biases, sb, b);
      for (int i = 0; i < group; ++i) {
        long q = s > 0 ? std::lround((v[i] - b) / s) : 0;
        q = std::clamp(q, 0L, static_cast<long>(levels));
        const int64_t bit = (r * cols + g0 + i) * bits;
        words[static_cast<size_t>(bit / 32)] |= static_cast<uint32_t>(q) << (bit % 32);
        if (bit % 32 + bits > 32)
          words[static_cast<size_t>(bit / 32 + 1)] |= static_cast<uint32_t>(q) >> (32 - bit % 32);
      }
    }
  }
  o.packed.resize(words.size() * 4);
  std::memcpy(o.packed.data(), words.data(), o.packed.size());
  return o;
}

bool mlx_candidate(const formats::SafeTensor& t) {
  const std::string& n = t.name;
  return t.shape.size() == 2 && is_float(t.dtype) && t.shape[1] % 32 == 0 && n.size() > 7 &&
         n.compare(n.size() - 7, 7, ".weight") == 0;
}

void quantize_folder(const std::string& from, const std::string& out, const std::string& type) {
  check(type == "int4" || type == "int8", "quantize", from,
        ": cannot quantize a safetensors folder to '", type,
        "' (supported for folders: ", supported_quantizations(false), ")");
  const int bits = type == "int4" ? 4 : 8;
  auto model = formats::SafetensorsModel::open_dir(from);
  int group = 64;
  for (const auto& file : model->files())
    for (const formats::SafeTensor& t : file->tensors())
      if (mlx_candidate(t) && t.shape[1] % 64 != 0) group = 32;
  fs::create_directories(out);
  nlohmann::json weight_map = nlohmann::json::object();
  for (const auto& file : model->files()) {
    const std::string shard = fs::path(file->path()).filename().string();
    std::vector<std::vector<uint8_t>> storage;
    storage.reserve(file->tensors().size() * 3);
    std::vector<formats::SafeTensorToWrite> tensors;
    for (const formats::SafeTensor& t : file->tensors()) {
      weight_map[t.name] = shard;
      if (!mlx_candidate(t)) {
        tensors.push_back({t.name, t.dtype, t.shape, t.data, t.n_bytes});
        continue;
      }
      const int64_t rows = t.shape[0], cols = t.shape[1];
      std::vector<float> x(static_cast<size_t>(rows * cols));
      kernels::cpu::dequantize_row(t.dtype, t.data, x.data(), x.size());
      MlxOut q = mlx_quantize(x.data(), rows, cols, bits, group, t.dtype);
      const std::string base = t.name.substr(0, t.name.size() - 7);
      storage.push_back(std::move(q.packed));
      tensors.push_back({t.name,
                         DType::kU32,
                         {rows, cols * bits / 32},
                         storage.back().data(),
                         storage.back().size()});
      storage.push_back(std::move(q.scales));
      tensors.push_back({base + ".scales",
                         t.dtype,
                         {rows, cols / group},
                         storage.back().data(),
                         storage.back().size()});
      storage.push_back(std::move(q.biases));
      tensors.push_back({base + ".biases",
                         t.dtype,
                         {rows, cols / group},
                         storage.back().data(),
                         storage.back().size()});
      weight_map[base + ".scales"] = shard;
      weight_map[base + ".biases"] = shard;
    }
    std::map<std::string, std::string> meta = file->metadata();
    meta["format"] = "mlx";
    formats::write_safetensors((fs::path(out) / shard).string(), tensors, meta);
  }
  for (const auto& e : fs::directory_iterator(from)) {
    const std::string name = e.path().filename().string();
    if (!e.is_regular_file() || e.path().extension() == ".safetensors") continue;
    const fs::path dst = fs::path(out) / name;
    if (name == "config.json" || name == "model.safetensors.index.json") {
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(read_file(e.path().string()));
      } catch (const nlohmann::json::exception& ex) {
        fail("quantize", e.path().string(), ": not valid JSON: ", ex.what());
      }
      if (name == "config.json") {
        check(!j.contains("quantization"), "quantize", from, " is already quantized");
        j["quantization"] = {{"group_size", group}, {"bits", bits}};
      } else {
        j["weight_map"] = weight_map;
      }
      write_file_atomic(dst.string(), j.dump(2));
    } else {
      fs::copy_file(e.path(), dst, fs::copy_options::overwrite_existing);
    }
  }
}

}  // namespace

std::string supported_quantizations(bool gguf_input) {
  if (!gguf_input) return "int4, int8";
  std::string s;
  for (const auto& t : kGgufTargets) s += (s.empty() ? "" : ", ") + std::string(t.name);
  return s;
}

void quantize_model(const std::string& from, const std::string& out, const std::string& type) {
  const std::string t = lower(type);
  // The type first: an unsupported request fails the same way whatever the model.
  bool known = t == "int4" || t == "int8";
  for (const auto& g : kGgufTargets) known = known || t == g.name;
  check(known, "quantize", "unsupported quantization type '", type,
        "' (supported: ", supported_quantizations(true), " for GGUF files; ",
        supported_quantizations(false), " for safetensors folders)");
  check(fs::exists(from), "quantize", from, ": no such file or folder");
  if (fs::is_directory(from)) {
    check(fs::exists(fs::path(from) / "config.json"), "quantize", from,
          ": not a model folder (no config.json)");
    quantize_folder(from, out, t);
  } else {
    quantize_gguf(from, out, t);
  }
}

QuantizedCopy::QuantizedCopy(const std::string& from, const std::string& type,
                             const std::string& parent) {
  fs::create_directories(parent);
  std::string pattern = (fs::path(parent) / ".quantize-XXXXXX").string();
  check(mkdtemp(pattern.data()) != nullptr, "quantize", "cannot create a temporary folder in ",
        parent);
  tmp_ = pattern;
  fs::path src = fs::path(from);
  if (!src.has_filename()) src = src.parent_path();
  path_ = (fs::path(tmp_) / src.filename()).string();
  try {
    quantize_model(from, path_, type);
  } catch (...) {
    std::error_code ec;
    fs::remove_all(tmp_, ec);
    throw;
  }
}

QuantizedCopy::~QuantizedCopy() {
  std::error_code ec;
  if (!tmp_.empty()) fs::remove_all(tmp_, ec);
}

}  // namespace runnel::models
