#include "models/weights.h"

#include <cstdlib>
#include <utility>

#include "array/ops.h"
#include "base/error.h"
#include "base/half.h"
#include "base/strings.h"
#include "base/thread_pool.h"
#include "formats/gguf.h"
#include "formats/safetensors.h"
#include "kernels/cpu/packed_mlx.h"

namespace runnel::models {

std::string hf_name(const std::string& canonical) {
  static const std::pair<const char*, const char*> kGlobal[] = {
      {"token_embd.weight", "model.embed_tokens.weight"},
      {"output_norm.weight", "model.norm.weight"},
      {"output.weight", "lm_head.weight"},
  };
  for (auto [g, h] : kGlobal)
    if (canonical == g) return h;
  // blk.N.<part>.<kind>
  if (canonical.rfind("blk.", 0) != 0) return canonical;
  size_t dot = canonical.find('.', 4);
  if (dot == std::string::npos) return canonical;
  const std::string layer = canonical.substr(4, dot - 4);
  std::string rest = canonical.substr(dot + 1);
  size_t kind_dot = rest.rfind('.');
  const std::string part = rest.substr(0, kind_dot);
  const std::string kind = kind_dot == std::string::npos ? "" : rest.substr(kind_dot);
  static const std::pair<const char*, const char*> kLayer[] = {
      {"attn_norm", "input_layernorm"},    {"ffn_norm", "post_attention_layernorm"},
      {"attn_q", "self_attn.q_proj"},      {"attn_k", "self_attn.k_proj"},
      {"attn_v", "self_attn.v_proj"},      {"attn_output", "self_attn.o_proj"},
      {"attn_q_norm", "self_attn.q_norm"}, {"attn_k_norm", "self_attn.k_norm"},
      {"ffn_gate", "mlp.gate_proj"},       {"ffn_up", "mlp.up_proj"},
      {"ffn_down", "mlp.down_proj"},
  };
  for (auto [g, h] : kLayer)
    if (part == g) return "model.layers." + layer + "." + h + kind;
  return canonical;
}

std::unique_ptr<WeightSource> WeightSource::from_gguf(
    std::shared_ptr<const formats::GgufFile> file) {
  auto w = std::make_unique<WeightSource>();
  w->path_ = file->path();
  w->gguf_ = std::move(file);
  return w;
}

std::unique_ptr<WeightSource> WeightSource::from_hf_dir(const std::string& dir) {
  return from_hf_dir(dir, quantization_from_hf(dir));
}

std::unique_ptr<WeightSource> WeightSource::from_hf_dir(const std::string& dir,
                                                        const MlxQuantization& quantization) {
  auto w = std::make_unique<WeightSource>();
  w->path_ = dir;
  w->st_ = formats::SafetensorsModel::open_dir(dir);
  w->quant_ = quantization;
  return w;
}

void mlx_dequantize(const uint32_t* packed, const void* scales, const void* biases, DType sb_dtype,
                    int64_t rows, int64_t cols, int bits, int group_size, float* out) {
  const int64_t words_per_row = cols * bits / 32;
  const int64_t groups = cols / group_size;
  const uint64_t mask = (uint64_t{1} << bits) - 1;
  for (int64_t r = 0; r < rows; ++r) {
    const uint32_t* w = packed + r * words_per_row;
    float* o = out + r * cols;
    for (int64_t j = 0; j < cols; ++j) {
      const int64_t bit = j * bits;
      const int64_t word = bit / 32;
      const int shift = static_cast<int>(bit % 32);
      uint64_t v = w[word] >> shift;
      if (shift + bits > 32) v |= static_cast<uint64_t>(w[word + 1]) << (32 - shift);
      const int64_t g = r * groups + j / group_size;
      o[j] =
          static_cast<float>(v & mask) * float_element(scales, sb_dtype, static_cast<size_t>(g)) +
          float_element(biases, sb_dtype, static_cast<size_t>(g));
    }
  }
}

array::Array WeightSource::find(const std::string& canonical) const {
  if (gguf_) {
    const formats::GgufTensor* t = gguf_->find_tensor(canonical);
    if (t == nullptr) return {};
    return array::Array::from_external(t->shape, t->dtype, t->data, gguf_);
  }
  const formats::SafeTensor* t = st_->find(hf_name(canonical));
  if (t == nullptr) return {};
  return array::Array::from_external(t->shape, t->dtype, t->data, st_);
}

namespace {
std::string layer_prefix(const std::string& canonical) {
  if (canonical.rfind("blk.", 0) != 0) return "";
  size_t dot = canonical.find('.', 4);
  return "layer " + canonical.substr(4, dot - 4) + ": ";
}
}  // namespace

array::Array WeightSource::get(const std::string& canonical, const array::Shape& expected) const {
  array::Array a = find(canonical);
  const std::string name = gguf_ ? canonical : hf_name(canonical);
  check(a.valid(), "model", path_, ": ", layer_prefix(canonical), "missing ", name);
  if (is_mlx_quantized(name, a)) return dequantize_mlx(canonical, name, a, expected);
  check(a.shape() == expected, "model", path_, ": ", layer_prefix(canonical), name, " has shape ",
        array::shape_str(a.shape()), ", expected ", array::shape_str(expected));
  return a;
}

bool WeightSource::is_mlx_quantized(const std::string& name, const array::Array& a) const {
  if (!st_ || a.dtype() != DType::kU32 || name.size() <= 7 ||
      name.compare(name.size() - 7, 7, ".weight") != 0) {
    return false;
  }
  const std::string base = name.substr(0, name.size() - 7);
  return st_->find(base + ".scales") != nullptr || st_->find(base + ".biases") != nullptr;
}

WeightSource::MlxTensor WeightSource::check_mlx(const std::string& canonical,
                                                const std::string& name, const array::Array& packed,
                                                const array::Shape& expected) const {
  const std::string where = str_cat(path_, ": ", layer_prefix(canonical), name);
  const formats::SafeTensor* sc = st_->find(name.substr(0, name.size() - 7) + ".scales");
  const formats::SafeTensor* bi = st_->find(name.substr(0, name.size() - 7) + ".biases");
  check(sc != nullptr && bi != nullptr, "model", where,
        " is U32 (MLX quantized) but its .scales or .biases is missing");
  check(quant_.bits > 0, "model", where,
        " is MLX quantized but config.json has no \"quantization\" {bits, group_size}");
  check(expected.size() == 2, "model", where, ": a quantized tensor must be a matrix");
  int bits = quant_.bits, group = quant_.group_size;
  if (auto o = quant_.overrides.find(name.substr(0, name.size() - 7)); o != quant_.overrides.end())
    bits = o->second.bits, group = o->second.group_size;
  const int64_t rows = expected[0], cols = expected[1];
  check(cols % group == 0 && cols * bits % 32 == 0, "model", where, ": ", cols,
        " inputs are not a multiple of group_size ", group);
  const array::Shape want_packed{rows, cols * bits / 32};
  check(packed.shape() == want_packed, "model", where, " has packed shape ",
        array::shape_str(packed.shape()), ", expected ", array::shape_str(want_packed), " for ",
        array::shape_str(expected), " at ", bits, " bits");
  const array::Shape want_sb{rows, cols / group};
  for (const formats::SafeTensor* t : {sc, bi}) {
    check(t->shape == want_sb, "model", path_, ": ", layer_prefix(canonical), t->name,
          " has shape ", array::shape_str(t->shape), ", expected ", array::shape_str(want_sb),
          " (group_size ", group, ")");
    check(t->dtype == DType::kF32 || t->dtype == DType::kF16 || t->dtype == DType::kBF16, "model",
          path_, ": ", t->name, " must be f32, f16 or bf16");
  }
  check(sc->dtype == bi->dtype, "model", where, ": scales and biases have different dtypes");
  return {static_cast<const uint32_t*>(packed.raw()), sc, bi, rows, cols, bits, group};
}

array::Array WeightSource::dequantize_mlx(const std::string& canonical, const std::string& name,
                                          const array::Array& packed,
                                          const array::Shape& expected) const {
  const MlxTensor t = check_mlx(canonical, name, packed, expected);
  array::Array out = array::Array::empty(expected, DType::kF32, array::MemoryKind::kWeights);
  mlx_dequantize(t.words, t.scales->data, t.biases->data, t.scales->dtype, t.rows, t.cols, t.bits,
                 t.group_size, out.mutable_data<float>());
  return out;
}

array::Array WeightSource::get_linear(const std::string& canonical, const array::Shape& expected,
                                      bool keep_source, DType* file_type) const {
  // MLX int4/int8 matrices go straight from the file's words to the packed layout when the
  // active kernels prefer it (no f32 copy); other bit widths and ISAs dequantize in get().
  if (st_ && expected.size() == 2) {
    const std::string name = hf_name(canonical);
    if (array::Array raw = find(canonical); raw.valid() && is_mlx_quantized(name, raw)) {
      const MlxTensor t = check_mlx(canonical, name, raw, expected);
      const DType p = kernels::cpu::preferred_mlx_type(
          t.bits, t.group_size, static_cast<size_t>(t.rows), static_cast<size_t>(t.cols));
      if (p != DType::kF32) {
        // The logical type is what get() would return (f32), as before packing existed.
        if (file_type) *file_type = DType::kF32;
        array::Array out = array::Array::empty(expected, p, array::MemoryKind::kWeights);
        kernels::cpu::pack_mlx_affine(t.words, t.scales->data, t.biases->data, t.scales->dtype,
                                      static_cast<size_t>(t.rows), static_cast<size_t>(t.cols),
                                      t.bits, t.group_size, out.raw_mutable(),
                                      ThreadPool::global());
        if (!keep_source) {  // words, scales and biases are views of the mapped file
          release_mapped_pages(raw.raw(), raw.n_bytes());
          release_mapped_pages(t.scales->data, t.scales->n_bytes);
          release_mapped_pages(t.biases->data, t.biases->n_bytes);
        }
        return out;
      }
    }
  }
  array::Array a = get(canonical, expected);
  if (file_type) *file_type = a.dtype();
  array::Array p = array::prepare_linear_weight(a);
  if (!keep_source && !p.same(a)) release_if_view(canonical, a);
  return p;
}

array::Array WeightSource::get_fused_linear(
    const std::vector<std::pair<std::string, array::Shape>>& parts, DType* file_type) const {
  std::vector<array::Array> ws;
  for (const auto& [name, shape] : parts) {
    if (st_) {  // MLX-quantized parts pack from their words in get_linear: fuse those after
      const array::Array raw = find(name);
      if (raw.valid() && is_mlx_quantized(hf_name(name), raw)) return {};
    }
    ws.push_back(get(name, shape));
  }
  *file_type = ws[0].dtype();
  array::Array fused = array::prepare_fused_linear_weight(ws);
  if (fused.valid()) {
    for (size_t i = 0; i < ws.size(); ++i) release_if_view(parts[i].first, ws[i]);
  }
  return fused;
}

void WeightSource::release_if_view(const std::string& canonical, const array::Array& a) const {
  const array::Array view = find(canonical);
  if (view.valid() && a.raw() == view.raw()) release_mapped_pages(a.raw(), a.n_bytes());
}

array::Array WeightSource::get_f32(const std::string& canonical,
                                   const array::Shape& expected) const {
  array::Array a = get(canonical, expected);
  if (a.dtype() == DType::kF32) return a;
  array::Array f = array::astype(a, DType::kF32);
  array::eval(f);
  return f;
}

}  // namespace runnel::models
