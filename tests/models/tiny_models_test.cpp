// Tiny random-weight models of every architecture, made by tools/gen_tiny_model.py, against the
// independent numpy forward pass in tools/reference_forward.py.
#include <gtest/gtest.h>

#include <cmath>

#include "array/ops.h"
#include "base/cpu.h"
#include "base/thread_pool.h"
#include "model_testing.h"
#include "testing/testing.h"

namespace runnel::models {
namespace {

struct Fixture {
  std::string hf_dir, gguf_f32, gguf_q8, gguf_q4, hf_q8, hf_q4;
};

const char* kArchs[] = {"LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM",
                        "Qwen3ForCausalLM"};

std::string common_args(const std::string& arch) {
  // Qwen3 gets a head_dim that is not hidden/heads; Llama gets llama3 rope scaling.
  std::string a = "--arch " + arch + " --hidden 64 --layers 2 --heads 4 --kv-heads 2 --ffn 96 " +
                  "--vocab 320 --ctx 256 --seed 7";
  if (arch == "Qwen3ForCausalLM") a += " --head-dim 32 --tied";
  if (arch == "LlamaForCausalLM")
    a += " --rope-scaling llama3 --rope-factor 8 --rope-low-freq-factor 1 "
         "--rope-high-freq-factor 4 --rope-orig-ctx 64 --rope-theta 500000";
  return a;
}

const Fixture& fixture(const std::string& arch) {
  static std::map<std::string, Fixture> cache;
  auto it = cache.find(arch);
  if (it != cache.end()) return it->second;
  std::string dir = runnel::testing::make_temp_dir("tiny");
  Fixture f;
  std::string a = common_args(arch);
  f.hf_dir = dir + "/hf";
  f.gguf_f32 = dir + "/f32.gguf";
  f.gguf_q8 = dir + "/q8.gguf";
  f.gguf_q4 = dir + "/q4.gguf";
  f.hf_q8 = dir + "/hf_q8";
  f.hf_q4 = dir + "/hf_q4";
  testing::gen_tiny_model(a + " --format safetensors --dtype f32", f.hf_dir);
  testing::gen_tiny_model(a + " --format gguf --dtype f32", f.gguf_f32);
  testing::gen_tiny_model(a + " --format gguf --dtype q8_0", f.gguf_q8);
  testing::gen_tiny_model(a + " --format gguf --dtype q4_0", f.gguf_q4);
  testing::gen_tiny_model(a + " --format safetensors --fake-quant q8_0", f.hf_q8);
  testing::gen_tiny_model(a + " --format safetensors --fake-quant q4_0", f.hf_q4);
  return cache.emplace(arch, f).first->second;
}

std::vector<int32_t> prompt(size_t n) {
  std::vector<int32_t> ids(n);
  for (size_t i = 0; i < n; ++i) ids[i] = static_cast<int32_t>((i * 37 + 11) % 318);
  return ids;
}

// Largest |a - b| relative to the spread of the reference logits.
double max_rel_error(const std::vector<std::vector<float>>& a,
                     const std::vector<std::vector<float>>& b) {
  EXPECT_EQ(a.size(), b.size());
  double worst = 0, scale = 1e-6;
  for (const auto& row : b)
    for (float v : row) scale = std::max(scale, static_cast<double>(std::fabs(v)));
  for (size_t t = 0; t < std::min(a.size(), b.size()); ++t) {
    EXPECT_EQ(a[t].size(), b[t].size());
    for (size_t j = 0; j < std::min(a[t].size(), b[t].size()); ++j)
      worst = std::max(worst, std::fabs(static_cast<double>(a[t][j]) - b[t][j]));
  }
  return worst / scale;
}

double rms_rel_error(const std::vector<std::vector<float>>& a,
                     const std::vector<std::vector<float>>& b) {
  double err = 0, ref = 0;
  for (size_t t = 0; t < a.size(); ++t)
    for (size_t j = 0; j < a[t].size(); ++j) {
      err += (static_cast<double>(a[t][j]) - b[t][j]) * (static_cast<double>(a[t][j]) - b[t][j]);
      ref += static_cast<double>(b[t][j]) * b[t][j];
    }
  return std::sqrt(err / std::max(ref, 1e-30));
}

// f32 forward vs a float64 reference: a few hundred ulps of accumulated rounding over a handful of
// layers with hidden 64 is ~1e-5 relative; 1e-4 leaves room without hiding a wrong formula (those
// show up at 1e-1).
constexpr double kF32Tolerance = 1e-4;

class TinyModel : public ::testing::TestWithParam<const char*> {};

TEST_P(TinyModel, MatchesReferenceForPromptsOf1_7_100) {
  const Fixture& f = fixture(GetParam());
  for (const std::string& path : {f.hf_dir, f.gguf_f32}) {
    auto m = load_model(path);
    for (size_t n : {size_t{1}, size_t{7}, size_t{100}}) {
      auto ids = prompt(n);
      auto ref = testing::reference_logits(f.hf_dir, ids);
      EXPECT_LT(max_rel_error(testing::model_logits(*m, ids), ref), kF32Tolerance)
          << path << " n=" << n;
    }
  }
}

TEST_P(TinyModel, IncrementalDecodingMatchesReference) {
  const Fixture& f = fixture(GetParam());
  auto m = load_model(f.gguf_f32);
  auto ids = prompt(12);
  auto ref = testing::reference_logits(f.hf_dir, ids);
  EXPECT_LT(max_rel_error(testing::model_logits_stepwise(*m, ids), ref), kF32Tolerance);
}

TEST_P(TinyModel, GgufAndSafetensorsGiveTheSameLogits) {
  const Fixture& f = fixture(GetParam());
  auto a = load_model(f.hf_dir);
  auto b = load_model(f.gguf_f32);
  auto ids = prompt(9);
  // Same weights; the only difference is RoPE pairing (NeoX on HF rows vs interleaved on the
  // permuted GGUF rows), which permutes the same products: equal up to summation order.
  EXPECT_LT(max_rel_error(testing::model_logits(*a, ids), testing::model_logits(*b, ids)), 1e-5);
}

TEST_P(TinyModel, QuantizedFilesMatchTheirDequantizedReference) {
  const Fixture& f = fixture(GetParam());
  auto ids = prompt(7);
  // The fake-quant folder holds exactly the values the quantized GGUF dequantizes to, so the
  // remaining error is only that of quantizing activations to int8 blocks inside the integer
  // kernels (about 1/254 of each block's largest value per element, compounding over layers;
  // measured up to 2.3% of the largest logit for the q/k-normed Qwen3).
  for (auto [gguf, hf] : {std::pair{f.gguf_q8, f.hf_q8}, std::pair{f.gguf_q4, f.hf_q4}}) {
    auto m = load_model(gguf);
    auto ref = testing::reference_logits(hf, ids);
    EXPECT_LT(max_rel_error(testing::model_logits(*m, ids), ref), 4e-2) << gguf;
  }
  // And quantization itself stays within a stated error of f32: RMS of the logit error over RMS
  // of the logits, measured 0.3-1% for Q8_0 and 8-32% for Q4_0 on these random-weight models (the
  // tied, q/k-normed Qwen3 amplifies most).
  auto f32 = testing::reference_logits(f.hf_dir, ids);
  EXPECT_LT(rms_rel_error(testing::reference_logits(f.hf_q8, ids), f32), 0.03);
  EXPECT_LT(rms_rel_error(testing::reference_logits(f.hf_q4, ids), f32), 0.4);
}

TEST_P(TinyModel, ThreadCountDoesNotChangeLogits) {
  const Fixture& f = fixture(GetParam());
  auto ids = prompt(7);
  std::vector<std::vector<std::vector<float>>> results;
  for (int threads : {1, 2, 3}) {
    ThreadPool::set_global_threads(threads);
    auto m = load_model(f.gguf_q8);
    results.push_back(testing::model_logits(*m, ids));
  }
  ThreadPool::set_global_threads(cpu_count());
  // Work is split by output rows, never inside a dot product: results are bit-identical.
  EXPECT_EQ(results[0], results[1]);
  EXPECT_EQ(results[0], results[2]);
}

INSTANTIATE_TEST_SUITE_P(Archs, TinyModel, ::testing::ValuesIn(kArchs),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace runnel::models
