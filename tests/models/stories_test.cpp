// The real trained model in ../shared/models: stories260K (llama2.c TinyStories, 260K parameters).
#include <gtest/gtest.h>

#include <fstream>

#include "array/ops.h"
#include "formats/gguf.h"
#include "model_testing.h"
#include "testing/testing.h"

namespace runnel::models {
namespace {

std::string stories_path() { return runnel::testing::shared_dir() + "/models/stories260K.gguf"; }

// Decodes ids with the GGUF's SentencePiece vocabulary (▁ is a space, <0xNN> a byte), without
// relying on the tokenizer layer: this test checks the model alone.
std::string decode(const std::vector<int32_t>& ids) {
  auto f = formats::GgufFile::open(stories_path());
  auto tokens = *f->get_strings("tokenizer.ggml.tokens");
  std::string out;
  for (int32_t id : ids) {
    const std::string& t = tokens[static_cast<size_t>(id)];
    if (t.size() == 6 && t.rfind("<0x", 0) == 0) {
      out += static_cast<char>(std::stoi(t.substr(3, 2), nullptr, 16));
      continue;
    }
    for (size_t i = 0; i < t.size(); ++i) {
      if (t.compare(i, 3, "\xe2\x96\x81") == 0) {
        out += ' ';
        i += 2;
      } else {
        out += t[i];
      }
    }
  }
  return out;
}

TEST(Stories260K, GreedyFromBosTellsTheKnownStory) {
  auto m = load_model(stories_path());
  EXPECT_EQ(m->config().architecture, "LlamaForCausalLM");
  EXPECT_EQ(m->config().n_layers, 5);
  EXPECT_EQ(m->config().hidden, 64);
  EXPECT_EQ(m->config().n_kv_heads, 4);
  std::vector<int32_t> ids = testing::greedy(*m, {1}, 20);
  std::string text = decode(ids);
  EXPECT_EQ(text.rfind(" Once upon a time, there was a little girl named Lily.", 0), 0u) << text;
}

TEST(Stories260K, BatchedAndStepwiseLogitsAgree) {
  auto m = load_model(stories_path());
  std::vector<int32_t> prompt = {1, 403, 407, 261, 378, 429, 267, 301, 307, 404};
  auto batch = testing::model_logits(*m, prompt);
  auto step = testing::model_logits_stepwise(*m, prompt);
  ASSERT_EQ(batch.size(), step.size());
  for (size_t t = 0; t < batch.size(); ++t)
    for (size_t j = 0; j < batch[t].size(); ++j) ASSERT_NEAR(batch[t][j], step[t][j], 1e-4f);
}

}  // namespace
}  // namespace runnel::models
