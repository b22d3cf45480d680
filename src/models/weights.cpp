#include "models/weights.h"

#include <cstdlib>
#include <utility>

#include "array/ops.h"
#include "base/error.h"
#include "formats/gguf.h"
#include "formats/safetensors.h"

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
      {"attn_norm", "input_layernorm"},     {"ffn_norm", "post_attention_layernorm"},
      {"attn_q", "self_attn.q_proj"},       {"attn_k", "self_attn.k_proj"},
      {"attn_v", "self_attn.v_proj"},       {"attn_output", "self_attn.o_proj"},
      {"attn_q_norm", "self_attn.q_norm"},  {"attn_k_norm", "self_attn.k_norm"},
      {"ffn_gate", "mlp.gate_proj"},        {"ffn_up", "mlp.up_proj"},
      {"ffn_down", "mlp.down_proj"},
  };
  for (auto [g, h] : kLayer)
    if (part == g) return "model.layers." + layer + "." + h + kind;
  return canonical;
}

std::unique_ptr<WeightSource> WeightSource::from_gguf(std::shared_ptr<const formats::GgufFile> file) {
  auto w = std::make_unique<WeightSource>();
  w->path_ = file->path();
  w->gguf_ = std::move(file);
  return w;
}

std::unique_ptr<WeightSource> WeightSource::from_hf_dir(const std::string& dir) {
  auto w = std::make_unique<WeightSource>();
  w->path_ = dir;
  w->st_ = formats::SafetensorsModel::open_dir(dir);
  return w;
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
  check(a.shape() == expected, "model", path_, ": ", layer_prefix(canonical), name, " has shape ",
        array::shape_str(a.shape()), ", expected ", array::shape_str(expected));
  return a;
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
