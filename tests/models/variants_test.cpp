// Every kernel variant this machine can run tells stories260K's story with the same tokens: the
// f32 file (against the continuation llama.cpp prints) and its Q8_0 / Q4_0 / Q5_0 / Q4_1 / Q5_1 /
// IQ4_NL requantizations (against the scalar reference's tokens); the K-quants and IQ4_XS, which
// need rows of 256, on a tiny random-weight model. The ISA is chosen before each load, since
// loading packs the weights into the layout the active variant streams (kernels/cpu/packed.h).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "kernels/cpu/dispatch.h"
#include "model_testing.h"
#include "models/model.h"
#include "models/quantize.h"
#include "testing/testing.h"

namespace runnel::models {
namespace {

using kernels::cpu::Isa;

std::string stories() { return runnel::testing::shared_dir() + "/models/stories260K.gguf"; }

// Restores the variant the process started with.
class IsaGuard {
 public:
  IsaGuard() : saved_(kernels::cpu::active_isa()) {}
  ~IsaGuard() { kernels::cpu::set_active_isa(saved_); }
  IsaGuard(const IsaGuard&) = delete;
  IsaGuard& operator=(const IsaGuard&) = delete;

 private:
  Isa saved_;
};

// With AMX emulated where the CPU has AVX-512 and no AMX (kernels/cpu/dispatch.h).
std::vector<Isa> runnable_isas() {
  kernels::cpu::enable_amx_emulation();
  std::vector<Isa> out;
  for (Isa isa : kernels::cpu::kAllIsas) {
    if (kernels::cpu::isa_runnable(isa)) out.push_back(isa);
  }
  return out;
}

// Greedy tokens after `prompt` (BOS by default) with `isa` active while the model loads and runs.
std::vector<int32_t> story(const std::string& path, Isa isa, int n,
                           const std::vector<int32_t>& prompt = {1}) {
  EXPECT_TRUE(kernels::cpu::set_active_isa(isa));
  auto m = load_model(path);
  return testing::greedy(*m, prompt, n);
}

TEST(Variants, EveryIsaContinuesStories260KLikeLlamaCpp) {
  IsaGuard guard;
  const std::vector<Isa> isas = runnable_isas();
  if (isas.size() < 2) GTEST_SKIP() << "only the scalar variant runs on this CPU";
  const std::vector<int32_t> want = story(stories(), Isa::kScalar, 48);
  // llama.cpp's greedy continuation from BOS starts so (tests/cli/run_test.cpp has more of it).
  const std::string text = testing::sentencepiece_text(stories(), want);
  EXPECT_EQ(
      text.rfind(" Once upon a time, there was a little girl named Lily. She loved to play", 0), 0u)
      << text;
  for (Isa isa : isas) {
    EXPECT_EQ(story(stories(), isa, 48), want) << kernels::cpu::isa_name(isa);
  }
}

TEST(Variants, EveryIsaGivesTheSameTokensOnQuantizedStories260K) {
  IsaGuard guard;
  const std::string dir = runnel::testing::make_temp_dir("variants");
  // Q5_0, Q4_1, Q5_1 and IQ4_NL run on their r16 layouts (Q5_0R16, ...: kernels/cpu/packed.h).
  for (const char* type : {"q8_0", "q4_0", "q5_0", "q4_1", "q5_1", "iq4_nl"}) {
    const std::string path = dir + "/" + type + ".gguf";
    quantize_model(stories(), path, type);
    const std::vector<int32_t> want = story(path, Isa::kScalar, 48);
    // And after a 25-token prompt, whose prefill takes the tile kernels' path (two tiles of x,
    // the second ragged) where the variant has one.
    std::vector<int32_t> prompt = {1};
    prompt.insert(prompt.end(), want.begin(), want.begin() + 24);
    const std::vector<int32_t> want_after = story(path, Isa::kScalar, 16, prompt);
    for (Isa isa : runnable_isas()) {
      EXPECT_EQ(story(path, isa, 48), want) << type << " on " << kernels::cpu::isa_name(isa);
      EXPECT_EQ(story(path, isa, 16, prompt), want_after)
          << type << " after a prompt on " << kernels::cpu::isa_name(isa);
    }
  }
}

// A tiny random-weight Llama (rows of 256, as the K-quants need) quantized to `type` in `dir`
// (its f16 source made once per dir).
std::string tiny_kquant_model(const std::string& dir, const std::string& type) {
  const std::string f16 = dir + "/f16.gguf", path = dir + "/" + type + ".gguf";
  if (!std::filesystem::exists(f16)) {
    testing::gen_tiny_model(
        "--arch LlamaForCausalLM --hidden 256 --layers 2 --heads 4 --kv-heads 2 --ffn 512 "
        "--vocab 512 --ctx 128 --seed 3 --format gguf --dtype f16",
        f16);
  }
  quantize_model(f16, path, type);
  return path;
}

// Every logit of `prompt` in one forward pass, avx512 against amx: the same floats.
void expect_amx_logits_equal_avx512(const std::string& path, const std::vector<int32_t>& prompt) {
  std::vector<std::vector<float>> logits[2];
  for (int v = 0; v < 2; ++v) {
    ASSERT_TRUE(kernels::cpu::set_active_isa(v == 0 ? Isa::kAvx512 : Isa::kAmx));
    auto m = load_model(path);
    logits[v] = testing::model_logits(*m, prompt);
  }
  ASSERT_EQ(logits[0].size(), prompt.size()) << path;
  for (size_t t = 0; t < prompt.size(); ++t) {
    ASSERT_EQ(logits[0][t], logits[1][t]) << path << " position " << t;
  }
}

// The amx variant differs from avx512 only in its F16 / BF16 prefill matmuls of more than 32 rows
// (the BF16 tiles, PackedFloat.AmxBf16TilesWithinRoundingOfExactMath): on quantized files every
// logit of a 25-token prompt is the same float (AMX emulated where the CPU has none). Until
// session 30 the amx variant had INT8 tiles for these types, equal to the VNNI kernels bit for bit.
TEST(Variants, AmxPrefillLogitsEqualAvx512BitForBit) {
  IsaGuard guard;
  const std::vector<Isa> isas = runnable_isas();
  if (std::find(isas.begin(), isas.end(), Isa::kAmx) == isas.end()) {
    GTEST_SKIP() << "needs AVX-512";
  }
  const std::string dir = runnel::testing::make_temp_dir("variants_amx");
  std::vector<int32_t> prompt = {1};
  for (int i = 0; i < 24; ++i) prompt.push_back(static_cast<int32_t>(100 + 7 * i));
  for (const char* type : {"q8_0", "q4_0", "q5_0", "iq4_nl"}) {
    const std::string path = dir + "/" + type + ".gguf";
    quantize_model(stories(), path, type);
    expect_amx_logits_equal_avx512(path, prompt);
  }
  for (const char* type : {"q4_k_m", "q6_k", "q5_k", "q3_k", "q2_k", "iq4_xs"}) {
    const std::string path = tiny_kquant_model(dir, type);
    expect_amx_logits_equal_avx512(path, prompt);
  }
}

// Q4_K_M (Q4_K and Q6_K matrices) and Q6_K files, packed into the r16 layouts by the SIMD variants
// and run in GGML's layout by the scalar one, and Q5_K, Q3_K and Q2_K (their r16 layouts on every
// variant), and IQ4_XS (IQ4_XSR16 everywhere): the same greedy tokens.
TEST(Variants, EveryIsaGivesTheSameTokensOnKQuants) {
  IsaGuard guard;
  const std::string dir = runnel::testing::make_temp_dir("variants_k");
  for (const char* type : {"q4_k_m", "q6_k", "q5_k", "q3_k", "q2_k", "iq4_xs"}) {
    // The variants' norms and softmax sums differ in their last bits; on this Q2_K model such a
    // difference flips one activation's int8 rounding at position 11 of a teacher-forced prompt
    // (logits then 0.05 apart) and a near tie at token 21, while every variant's matmul equals the
    // scalar reference's bits (PackedKQuants.*): 20 tokens there.
    const int n = std::string(type) == "q2_k" ? 20 : 32;
    const std::string path = tiny_kquant_model(dir, type);
    const std::vector<int32_t> want = story(path, Isa::kScalar, n);
    ASSERT_EQ(want.size(), static_cast<size_t>(n)) << type;
    for (Isa isa : runnable_isas()) {
      EXPECT_EQ(story(path, isa, n), want) << type << " on " << kernels::cpu::isa_name(isa);
    }
  }
}

}  // namespace
}  // namespace runnel::models
