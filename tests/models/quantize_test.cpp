// quantize_model: stories260K requantized still tells its story; a tiny safetensors folder
// quantized to MLX int8/int4 loads and stays close to f32; unsupported requests are Errors.
#include "models/quantize.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <functional>

#include "base/error.h"
#include "formats/gguf.h"
#include "formats/safetensors.h"
#include "model_testing.h"
#include "models/model.h"
#include "testing/testing.h"

namespace runnel::models {
namespace {

std::string stories() { return runnel::testing::shared_dir() + "/models/stories260K.gguf"; }

void expect_story(const std::string& type, DType dtype) {
  const std::string out = runnel::testing::make_temp_dir("quant") + "/s.gguf";
  quantize_model(stories(), out, type);
  auto f = formats::GgufFile::open(out);
  int quantized = 0;
  for (const auto& t : f->tensors()) {
    if (t.shape.size() == 2 && t.shape[1] % block_elems(dtype) == 0) {
      EXPECT_EQ(t.dtype, dtype) << t.name;
      ++quantized;
    }
  }
  EXPECT_GT(quantized, 0);
  EXPECT_EQ(f->get_string("general.architecture"), "llama");
  auto m = load_model(out);
  std::string text = testing::sentencepiece_text(out, testing::greedy(*m, {1}, 8));
  EXPECT_EQ(text.rfind(" Once upon a time", 0), 0u) << type << ": " << text;
}

TEST(Quantize, Stories260KToQ8_0TellsTheStory) { expect_story("q8_0", DType::kQ8_0); }
TEST(Quantize, Stories260KToQ5_1TellsTheStory) { expect_story("Q5_1", DType::kQ5_1); }
TEST(Quantize, Stories260KToIQ4_NLTellsTheStory) { expect_story("iq4_nl", DType::kIQ4_NL); }

// IQ4_XS needs rows of 256: stories260K's rows of 64 become IQ4_NL, as llama.cpp does; the file
// still says IQ4_XS (general.file_type 30).
TEST(Quantize, Stories260KToIQ4_XSFallsBackToIQ4_NL) {
  const std::string out = runnel::testing::make_temp_dir("quantxs") + "/s.gguf";
  quantize_model(stories(), out, "iq4_xs");
  auto f = formats::GgufFile::open(out);
  EXPECT_EQ(f->get_int("general.file_type"), 30);
  int quantized = 0;
  for (const auto& t : f->tensors()) {
    const bool nl = t.shape.size() == 2 && t.shape[1] % 32 == 0;
    EXPECT_EQ(t.dtype, nl ? DType::kIQ4_NL : DType::kF32) << t.name;
    quantized += nl ? 1 : 0;
  }
  EXPECT_GT(quantized, 0);
  auto m = load_model(out);
  std::string text = testing::sentencepiece_text(out, testing::greedy(*m, {1}, 8));
  EXPECT_EQ(text.rfind(" Once upon a time", 0), 0u) << text;
}

double max_rel(const std::vector<std::vector<float>>& a, const std::vector<std::vector<float>>& b) {
  double worst = 0, scale = 1e-12;
  for (size_t t = 0; t < b.size(); ++t)
    for (size_t j = 0; j < b[t].size(); ++j) {
      scale = std::max(scale, std::fabs(static_cast<double>(b[t][j])));
      worst = std::max(worst, std::fabs(static_cast<double>(a[t][j]) - b[t][j]));
    }
  return worst / scale;
}

TEST(Quantize, SafetensorsFolderToMlxInt8AndInt4) {
  const std::string root = runnel::testing::make_temp_dir("quantst");
  // ffn 96: the down projection's rows are not a multiple of 64, so group 32 is chosen.
  testing::gen_tiny_model(
      "--arch Qwen2ForCausalLM --hidden 64 --layers 2 --heads 4 --kv-heads 2 --ffn 96 "
      "--vocab 320 --ctx 128 --seed 5 --format safetensors --dtype f32",
      root + "/f32");
  const std::vector<int32_t> tokens = {1, 5, 77, 300, 12, 9};
  auto m32 = load_model(root + "/f32");
  const auto ref = testing::model_logits(*m32, tokens);
  double err[2];
  int i = 0;
  for (const char* type : {"int8", "int4"}) {
    const std::string out = root + "/" + type;
    quantize_model(root + "/f32", out, type);
    auto st = formats::SafetensorsModel::open_dir(out);
    const formats::SafeTensor* q = st->find("model.layers.0.mlp.down_proj.weight");
    ASSERT_NE(q, nullptr);
    EXPECT_EQ(q->dtype, DType::kU32);
    ASSERT_NE(st->find("model.layers.0.mlp.down_proj.scales"), nullptr);
    EXPECT_EQ(st->find("model.layers.0.mlp.down_proj.scales")->shape,
              (std::vector<int64_t>{64, 96 / 32}));
    EXPECT_EQ(st->find("model.norm.weight")->dtype, DType::kF32);
    auto m = load_model(out);
    EXPECT_EQ(m->config().quantization.group_size, 32);
    err[i] = max_rel(testing::model_logits(*m, tokens), ref);
    std::printf("MLX %s vs f32: max rel logit error %.3g\n", type, err[i]);
    ++i;
  }
  EXPECT_LT(err[0], 0.03);
  EXPECT_GT(err[0], 0.0);
  EXPECT_LT(err[1], 0.4);
  EXPECT_LT(err[0], err[1]);
}

// K-quants need rows of 256: a tiny f32 GGUF with hidden 256 and ffn 512.
TEST(Quantize, TinyGgufToKQuantsStaysClose) {
  const std::string root = runnel::testing::make_temp_dir("quantk");
  testing::gen_tiny_model(
      "--arch LlamaForCausalLM --hidden 256 --layers 1 --heads 4 --kv-heads 2 --ffn 512 "
      "--vocab 320 --ctx 64 --seed 3 --format gguf --dtype f32",
      root + "/f32.gguf");
  const std::vector<int32_t> tokens = {1, 9, 200, 31};
  auto m32 = load_model(root + "/f32.gguf");
  const auto ref = testing::model_logits(*m32, tokens);
  double err[6];
  int i = 0;
  const DType dtypes[] = {DType::kQ8_0, DType::kQ6_K, DType::kQ5_K,
                          DType::kQ4_K, DType::kQ3_K, DType::kQ2_K};
  const int64_t file_types[] = {7, 18, 16, 14, 11, 10};
  for (const char* type : {"q8_0", "q6_k", "q5_k", "q4_k", "q3_k", "q2_k"}) {
    const std::string out = root + "/" + type + ".gguf";
    quantize_model(root + "/f32.gguf", out, type);
    auto f = formats::GgufFile::open(out);
    EXPECT_EQ(f->find_tensor("blk.0.ffn_down.weight")->dtype, dtypes[i]);
    EXPECT_EQ(f->find_tensor("blk.0.attn_norm.weight")->dtype, DType::kF32);
    EXPECT_EQ(f->get_int("general.file_type"), file_types[i]);
    auto m = load_model(out);
    err[i] = max_rel(testing::model_logits(*m, tokens), ref);
    std::printf("GGUF %s vs f32: max rel logit error %.3g\n", type, err[i]);
    ++i;
  }
  EXPECT_GT(err[0], 0.0);
  EXPECT_LT(err[0], err[1]);
  EXPECT_LT(err[1], err[2]);
  EXPECT_LT(err[2], err[3]);
  EXPECT_LT(err[3], err[4]);
  EXPECT_LT(err[4], err[5]);
  EXPECT_LT(err[1], 0.08);
  EXPECT_LT(err[3], 0.25);
  EXPECT_LT(err[4], 0.75);
  // stories260K's rows (64, 172) are no multiple of 256: nothing to quantize is an error.
  EXPECT_THROW(quantize_model(stories(), root + "/s.gguf", "q4_k"), Error);
}

// IQ4 on a tiny GGUF with hidden 256 and ffn 288, embeddings tied (the output matrix is
// token_embd): IQ4_XS for rows of 256, IQ4_NL for ffn_down's rows of 288. Both stay as close to
// f32 as Q4_0 does.
TEST(Quantize, TinyGgufToIQ4StaysClose) {
  const std::string root = runnel::testing::make_temp_dir("quantiq4");
  testing::gen_tiny_model(
      "--arch LlamaForCausalLM --hidden 256 --layers 1 --heads 4 --kv-heads 2 --ffn 288 "
      "--vocab 320 --ctx 64 --seed 6 --tied --format gguf --dtype f32",
      root + "/f32.gguf");
  const std::vector<int32_t> tokens = {1, 9, 200, 31, 77};
  auto m32 = load_model(root + "/f32.gguf");
  const auto ref = testing::model_logits(*m32, tokens);
  double err[3];
  int i = 0;
  for (const char* type : {"q4_0", "iq4_nl", "iq4_xs"}) {
    const std::string out = root + "/" + type + ".gguf";
    quantize_model(root + "/f32.gguf", out, type);
    auto f = formats::GgufFile::open(out);
    EXPECT_EQ(f->find_tensor("output.weight"), nullptr);
    if (i > 0) {
      const DType wide = i == 1 ? DType::kIQ4_NL : DType::kIQ4_XS;
      EXPECT_EQ(f->get_int("general.file_type"), i == 1 ? 25 : 30);
      EXPECT_EQ(f->find_tensor("token_embd.weight")->dtype, wide);
      EXPECT_EQ(f->find_tensor("blk.0.attn_q.weight")->dtype, wide);
      EXPECT_EQ(f->find_tensor("blk.0.ffn_up.weight")->dtype, wide);
      EXPECT_EQ(f->find_tensor("blk.0.ffn_down.weight")->dtype, DType::kIQ4_NL);
      EXPECT_EQ(f->find_tensor("blk.0.attn_norm.weight")->dtype, DType::kF32);
    }
    auto m = load_model(out);
    err[i] = max_rel(testing::model_logits(*m, tokens), ref);
    std::printf("GGUF %s vs f32: max rel logit error %.3g\n", type, err[i]);
    ++i;
  }
  EXPECT_GT(err[1], 0.0);
  EXPECT_LT(err[1], err[0]);
  EXPECT_LT(err[2], err[0]);
}

// Q4_K_M: Q6_K for attn_v / ffn_down in the first and last eighth of the layers and every third
// between (8 layers: 0, 3, 6, 7), and for an untied output matrix; Q4_K for everything else.
TEST(Quantize, Q4KMMixesQ6KWhereItMatters) {
  const std::string root = runnel::testing::make_temp_dir("quantkm");
  testing::gen_tiny_model(
      "--arch LlamaForCausalLM --hidden 256 --layers 8 --heads 4 --kv-heads 2 --ffn 512 "
      "--vocab 320 --ctx 64 --seed 4 --format gguf --dtype f32",
      root + "/f32.gguf");
  quantize_model(root + "/f32.gguf", root + "/m.gguf", "Q4_K_M");
  auto f = formats::GgufFile::open(root + "/m.gguf");
  EXPECT_EQ(f->get_int("general.file_type"), 15);
  for (int i = 0; i < 8; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    const DType more = i == 0 || i == 3 || i == 6 || i == 7 ? DType::kQ6_K : DType::kQ4_K;
    EXPECT_EQ(f->find_tensor(p + "attn_v.weight")->dtype, more) << i;
    EXPECT_EQ(f->find_tensor(p + "ffn_down.weight")->dtype, more) << i;
    EXPECT_EQ(f->find_tensor(p + "attn_q.weight")->dtype, DType::kQ4_K) << i;
    EXPECT_EQ(f->find_tensor(p + "ffn_up.weight")->dtype, DType::kQ4_K) << i;
  }
  const formats::GgufTensor* out = f->find_tensor("output.weight");
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(out->dtype, DType::kQ6_K);
  auto m32 = load_model(root + "/f32.gguf");
  auto m = load_model(root + "/m.gguf");
  const std::vector<int32_t> tokens = {1, 9, 200, 31};
  EXPECT_LT(max_rel(testing::model_logits(*m, tokens), testing::model_logits(*m32, tokens)), 0.3);
}

TEST(Quantize, QuantizedCopyLivesInATempFolder) {
  const std::string root = runnel::testing::make_temp_dir("quantcopy");
  std::string path;
  {
    QuantizedCopy q(stories(), "q8_0", root + "/tmp");
    path = q.path();
    EXPECT_EQ(std::filesystem::path(path).filename(), "stories260K.gguf");
    EXPECT_EQ(std::filesystem::path(path).parent_path().parent_path(), root + "/tmp");
    EXPECT_TRUE(std::filesystem::exists(path));
  }
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::path(path).parent_path()));
  EXPECT_THROW(QuantizedCopy(stories(), "int8", root + "/tmp"), Error);
  EXPECT_TRUE(std::filesystem::is_empty(root + "/tmp"));  // the failed attempt left nothing
}

TEST(Quantize, UnsupportedTypesAreErrors) {
  const std::string root = runnel::testing::make_temp_dir("quantbad");
  auto expect_error = [](const std::function<void()>& fn, const std::string& needle) {
    try {
      fn();
      ADD_FAILURE() << "no error, expected " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error([&] { quantize_model(stories(), root + "/a.gguf", "int4"); },
               "supported for GGUF: q8_0, q4_0");
  expect_error([&] { quantize_model(stories(), root + "/a.gguf", "fp8"); },
               "unsupported quantization type 'fp8' (supported: q8_0");
  EXPECT_FALSE(std::filesystem::exists(root + "/a.gguf"));
  testing::gen_tiny_model(
      "--arch LlamaForCausalLM --hidden 64 --layers 1 --heads 4 --kv-heads 2 --ffn 64 "
      "--vocab 320 --ctx 64 --seed 1 --format safetensors --dtype f32",
      root + "/hf");
  expect_error([&] { quantize_model(root + "/hf", root + "/o", "q8_0"); },
               "supported for folders: int4, int8");
  expect_error([&] { quantize_model(root + "/nope", root + "/o", "q8_0"); }, "no such file");
}

}  // namespace
}  // namespace runnel::models
