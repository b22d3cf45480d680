// MLX affine-quantized safetensors folders: a tiny f32 model quantized here (the test's own
// quantizer and bit packer) must give the logits of an f32 folder holding exactly the dequantized
// values (equal when dequantized at load, within int8-activation rounding when packed for the
// integer kernels), and logits near the original's. Malformed quantized tensors are Errors.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/half.h"
#include "formats/safetensors.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/packed.h"
#include "kernels/cpu/packed_mlx.h"
#include "model_testing.h"
#include "models/registry.h"
#include "models/weights.h"
#include "testing/testing.h"

namespace runnel::models {
namespace {

namespace fs = std::filesystem;

struct Folders {
  std::string f32, mlx, fake;
};

std::vector<int32_t> prompt() { return {1, 17, 250, 3, 99, 42, 7, 300, 12, 64}; }

// Writes `mlx` (packed U32 + scales + biases, dtype `sb`) and `fake` (f32 holding q*s+b) copies
// of the f32 folder `src`. `mangle_scales` writes scales one group short (a malformed file).
void quantize_folder(const std::string& src, const std::string& mlx, const std::string& fake,
                     int bits, int group, DType sb, bool mangle_scales = false) {
  fs::create_directories(mlx);
  fs::create_directories(fake);
  for (const auto& e : fs::directory_iterator(src)) {
    const std::string name = e.path().filename().string();
    if (name.size() > 12 && name.substr(name.size() - 12) == ".safetensors") continue;
    fs::copy_file(e.path(), fs::path(fake) / name);
    if (name == "config.json") {
      std::ifstream in(e.path());
      nlohmann::json j = nlohmann::json::parse(in);
      j["quantization"] = {{"group_size", group}, {"bits", bits}};
      std::ofstream(fs::path(mlx) / name) << j.dump(2);
    } else {
      fs::copy_file(e.path(), fs::path(mlx) / name);
    }
  }
  auto model = formats::SafetensorsModel::open_dir(src);
  // Storage kept alive until written.
  std::vector<std::vector<uint32_t>> words;
  std::vector<std::vector<uint16_t>> halves;
  std::vector<std::vector<float>> floats;
  std::vector<formats::SafeTensorToWrite> out_mlx, out_fake;
  auto to_sb = [&](const std::vector<float>& v) -> formats::SafeTensorToWrite {
    if (sb == DType::kF32) {
      floats.push_back(v);
      return {"", sb, {}, floats.back().data(), v.size() * 4};
    }
    std::vector<uint16_t> h(v.size());
    for (size_t i = 0; i < v.size(); ++i)
      h[i] = sb == DType::kF16 ? f32_to_f16(v[i]) : f32_to_bf16(v[i]);
    halves.push_back(std::move(h));
    return {"", sb, {}, halves.back().data(), v.size() * 2};
  };
  auto sb_value = [&](float x) {
    return sb == DType::kF32   ? x
           : sb == DType::kF16 ? f16_to_f32(f32_to_f16(x))
                               : bf16_to_f32(f32_to_bf16(x));
  };
  floats.reserve(1000);
  halves.reserve(1000);
  words.reserve(1000);
  for (const std::string& name : model->names()) {
    const formats::SafeTensor* t = model->find(name);
    ASSERT_EQ(t->dtype, DType::kF32) << name;
    const bool quantize = t->shape.size() == 2 && t->shape[1] % group == 0 && name.size() > 7 &&
                          name.substr(name.size() - 7) == ".weight";
    if (!quantize) {
      out_mlx.push_back({name, t->dtype, t->shape, t->data, t->n_bytes});
      out_fake.push_back({name, t->dtype, t->shape, t->data, t->n_bytes});
      continue;
    }
    const int64_t rows = t->shape[0], cols = t->shape[1], groups = cols / group;
    const float* x = reinterpret_cast<const float*>(t->data);
    std::vector<float> scales(rows * groups), biases(rows * groups), deq(rows * cols);
    std::vector<uint32_t> packed(rows * cols * bits / 32, 0);
    const int levels = (1 << bits) - 1;
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t g = 0; g < groups; ++g) {
        const float* v = x + r * cols + g * group;
        float lo = v[0], hi = v[0];
        for (int i = 0; i < group; ++i) lo = std::min(lo, v[i]), hi = std::max(hi, v[i]);
        const float s = sb_value((hi - lo) / levels), b = sb_value(lo);
        scales[r * groups + g] = s;
        biases[r * groups + g] = b;
        for (int i = 0; i < group; ++i) {
          const int64_t j = g * group + i;
          const long q = s == 0 ? 0 : std::clamp(std::lround((v[i] - b) / s), 0L, long{levels});
          deq[r * cols + j] = static_cast<float>(q) * s + b;
          const int64_t bit = r * cols * bits + j * bits;
          packed[bit / 32] |= static_cast<uint32_t>(q) << (bit % 32);
          if (bit % 32 + bits > 32)
            packed[bit / 32 + 1] |= static_cast<uint32_t>(q) >> (32 - bit % 32);
        }
      }
    }
    const std::string base = name.substr(0, name.size() - 7);
    words.push_back(std::move(packed));
    out_mlx.push_back({name,
                       DType::kU32,
                       {rows, cols * bits / 32},
                       words.back().data(),
                       words.back().size() * 4});
    formats::SafeTensorToWrite st = to_sb(scales);
    st.name = base + ".scales";
    st.shape = {rows, mangle_scales ? groups - 1 : groups};
    if (mangle_scales) st.n_bytes = st.n_bytes / groups * (groups - 1);
    out_mlx.push_back(st);
    formats::SafeTensorToWrite bt = to_sb(biases);
    bt.name = base + ".biases";
    bt.shape = {rows, groups};
    out_mlx.push_back(bt);
    floats.push_back(std::move(deq));
    out_fake.push_back(
        {name, DType::kF32, {rows, cols}, floats.back().data(), floats.back().size() * 4});
  }
  formats::write_safetensors(mlx + "/model.safetensors", out_mlx, {{"format", "mlx"}});
  formats::write_safetensors(fake + "/model.safetensors", out_fake, {{"format", "pt"}});
}

const std::string& f32_folder() {
  static const std::string dir = [] {
    std::string d = runnel::testing::make_temp_dir("mlx") + "/f32";
    testing::gen_tiny_model(
        "--arch LlamaForCausalLM --hidden 64 --layers 2 --heads 4 --kv-heads 2 --ffn 128 "
        "--vocab 320 --ctx 128 --seed 11 --format safetensors --dtype f32",
        d);
    return d;
  }();
  return dir;
}

// Largest |a - b| over the largest |b|.
double max_rel(const std::vector<std::vector<float>>& a, const std::vector<std::vector<float>>& b) {
  double worst = 0, scale = 1e-12;
  for (size_t t = 0; t < b.size(); ++t)
    for (size_t j = 0; j < b[t].size(); ++j) {
      scale = std::max(scale, std::fabs(static_cast<double>(b[t][j])));
      worst = std::max(worst, std::fabs(static_cast<double>(a[t][j]) - b[t][j]));
    }
  return worst / scale;
}

// Whether get_linear packed this folder's matrices for the integer kernels (int4/int8 under
// AVX2 and AVX-512) instead of dequantizing them; a packed matrix (integer, or f32 repacked as
// f32_r16) must hold exactly get()'s f32 values.
bool linear_is_packed(const std::string& mlx, int bits, int group) {
  auto w = WeightSource::from_hf_dir(mlx);
  DType file_type = DType::kCount;
  const array::Array lin = w->get_linear("blk.0.ffn_down.weight", {64, 128}, false, &file_type);
  const array::Array f32 = w->get("blk.0.ffn_down.weight", {64, 128});
  EXPECT_EQ(file_type, DType::kF32);
  const bool want =
      (bits == 4 || bits == 8) && kernels::cpu::active_isa() >= kernels::cpu::Isa::kAvx2;
  const bool integer = kernels::cpu::is_mlx_packed(lin.dtype());
  EXPECT_EQ(integer, want) << dtype_name(lin.dtype());
  if (integer) {
    EXPECT_EQ(lin.dtype(), kernels::cpu::mlx_packed_type(bits, group));
  }
  if (lin.dtype() == DType::kF32) return false;
  // Packed for the integer kernels, or (dequantized) repacked as f32_r16: the same values.
  std::vector<float> unpacked(64 * 128);
  kernels::cpu::unpack_weights_f32(lin.dtype(), lin.raw(), 64, 128, unpacked.data());
  EXPECT_EQ(unpacked, f32.to_floats());
  return integer;
}

void check_bits(int bits, int group, DType sb, double max_error_vs_f32) {
  const std::string root = runnel::testing::make_temp_dir("mlxq");
  const std::string mlx = root + "/mlx", fake = root + "/fake";
  quantize_folder(f32_folder(), mlx, fake, bits, group, sb);
  auto m_f32 = load_model(f32_folder());
  auto m_mlx = load_model(mlx);
  auto m_fake = load_model(fake);
  EXPECT_EQ(m_mlx->config().quantization.bits, bits);
  EXPECT_EQ(m_mlx->config().quantization.group_size, group);
  const auto l_f32 = testing::model_logits(*m_f32, prompt());
  const auto l_mlx = testing::model_logits(*m_mlx, prompt());
  const auto l_fake = testing::model_logits(*m_fake, prompt());
  ASSERT_EQ(l_mlx.size(), prompt().size());
  const double vs_fake = max_rel(l_mlx, l_fake), vs_f32 = max_rel(l_mlx, l_f32);
  const bool packed = linear_is_packed(mlx, bits, group);
  std::printf("MLX %d-bit group %d (%s): max rel error vs fake-quant %.3g, vs f32 %.3g\n", bits,
              group, packed ? "packed" : "dequantized", vs_fake, vs_f32);
  // Dequantized, the MLX model runs the fake-quant folder's f32 weights: the same logits. Packed,
  // the weights are still exactly the same values (checked above), and what remains is quantizing
  // activations to int8 blocks in the integer kernels: about 1/254 of each block's largest value
  // per element, compounding over the layers; the same bound tiny_models_test.cpp states for
  // Q8_0/Q4_0 against their dequantized references, relative to the largest logit.
  EXPECT_LE(vs_fake, packed ? 4e-2 : 1e-5);
  EXPECT_LE(vs_f32, max_error_vs_f32);
  EXPECT_GT(vs_f32, 0.0);  // it really was quantized
}

TEST(Mlx, Int4Group64F16ScalesMatchesFakeQuant) { check_bits(4, 64, DType::kF16, 0.5); }
TEST(Mlx, Int8Group64Bf16ScalesMatchesFakeQuant) { check_bits(8, 64, DType::kBF16, 0.04); }
TEST(Mlx, Int8Group32F32ScalesMatchesFakeQuant) { check_bits(8, 32, DType::kF32, 0.04); }
TEST(Mlx, Int3Group32F32ScalesMatchesFakeQuant) { check_bits(3, 32, DType::kF32, 0.85); }

// Each SIMD variant (AVX2 and AVX-512 have integer kernels for the MLX layouts) keeps int4 and
// int8 weights packed and stays within the same bounds of the fake-quant model.
TEST(Mlx, EverySimdIsaRunsThePackedWeights) {
  const kernels::cpu::Isa saved = kernels::cpu::active_isa();
  int ran = 0;
  for (kernels::cpu::Isa isa :
       {kernels::cpu::Isa::kAvx2, kernels::cpu::Isa::kAvxVnni, kernels::cpu::Isa::kAvx512}) {
    if (!kernels::cpu::isa_supported(isa)) continue;
    ++ran;
    ASSERT_TRUE(kernels::cpu::set_active_isa(isa));
    SCOPED_TRACE(kernels::cpu::isa_name(isa));
    check_bits(4, 64, DType::kF16, 0.5);
    check_bits(8, 32, DType::kF32, 0.04);
  }
  kernels::cpu::set_active_isa(saved);
  if (ran == 0) GTEST_SKIP() << "no AVX2 here";
}

TEST(Mlx, WrongScalesShapeIsAnError) {
  const std::string root = runnel::testing::make_temp_dir("mlxbad");
  quantize_folder(f32_folder(), root + "/mlx", root + "/fake", 4, 32, DType::kF16, true);
  try {
    load_model(root + "/mlx");
    FAIL() << "loaded a folder with malformed scales";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(".scales has shape"), std::string::npos) << what;
    EXPECT_NE(what.find("group_size 32"), std::string::npos) << what;
  }
}

TEST(Mlx, QuantizedWithoutConfigIsAnError) {
  const std::string root = runnel::testing::make_temp_dir("mlxnocfg");
  quantize_folder(f32_folder(), root + "/mlx", root + "/fake", 4, 64, DType::kF16);
  auto w = WeightSource::from_hf_dir(root + "/mlx", MlxQuantization{});
  try {
    w->get("blk.0.attn_q.weight", {64, 64});
    FAIL() << "dequantized without a quantization config";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.layers.0.self_attn.q_proj.weight"),
              std::string::npos)
        << e.what();
  }
  // With the right config the same tensor comes back as f32 [64, 64].
  auto ok = WeightSource::from_hf_dir(root + "/mlx", MlxQuantization{4, 64, {}});
  array::Array a = ok->get("blk.0.attn_q.weight", {64, 64});
  EXPECT_EQ(a.dtype(), DType::kF32);
  // A per-module override wins over the global setting.
  MlxQuantization mixed{8, 32, {{"model.layers.0.self_attn.q_proj", {4, 64}}}};
  auto w_mixed = WeightSource::from_hf_dir(root + "/mlx", mixed);
  EXPECT_EQ(w_mixed->get("blk.0.attn_q.weight", {64, 64}).to_floats(), a.to_floats());
  EXPECT_THROW(w_mixed->get("blk.0.attn_k.weight", {32, 64}), Error);  // stored at 4 bits
  // A wrong logical shape is named.
  EXPECT_THROW(ok->get("blk.0.attn_q.weight", {64, 128}), Error);
}

TEST(Mlx, ConfigOverridesAndMode) {
  const std::string root = runnel::testing::make_temp_dir("mlxcfg");
  std::ofstream(root + "/config.json") << R"({"quantization": {"group_size": 64, "bits": 4,
      "model.layers.1.mlp.down_proj": {"group_size": 32, "bits": 8}}})";
  MlxQuantization q = quantization_from_hf(root);
  EXPECT_EQ(q.bits, 4);
  EXPECT_EQ(q.group_size, 64);
  ASSERT_EQ(q.overrides.count("model.layers.1.mlp.down_proj"), 1u);
  EXPECT_EQ(q.overrides["model.layers.1.mlp.down_proj"].bits, 8);
  EXPECT_EQ(q.overrides["model.layers.1.mlp.down_proj"].group_size, 32);
  std::ofstream(root + "/config.json")
      << R"({"quantization": {"group_size": 32, "bits": 4, "mode": "mxfp4"}})";
  EXPECT_THROW(quantization_from_hf(root), Error);
}

TEST(Mlx, BadBitsInConfigIsAnError) {
  const std::string root = runnel::testing::make_temp_dir("mlxbits");
  std::ofstream(root + "/config.json") << R"({"quantization": {"group_size": 64, "bits": 7}})";
  try {
    quantization_from_hf(root);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bits 7"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace runnel::models
