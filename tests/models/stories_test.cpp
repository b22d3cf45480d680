// The real trained model in ../shared/models: stories260K (llama2.c TinyStories, 260K parameters).
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "array/ops.h"
#include "model_testing.h"
#include "testing/testing.h"

namespace runnel::models {
namespace {

std::string stories_path() { return runnel::testing::shared_dir() + "/models/stories260K.gguf"; }

TEST(Stories260K, GreedyFromBosTellsTheKnownStory) {
  auto m = load_model(stories_path());
  EXPECT_EQ(m->config().architecture, "LlamaForCausalLM");
  EXPECT_EQ(m->config().n_layers, 5);
  EXPECT_EQ(m->config().hidden, 64);
  EXPECT_EQ(m->config().n_kv_heads, 4);
  std::vector<int32_t> ids = testing::greedy(*m, {1}, 20);
  std::string text = testing::sentencepiece_text(stories_path(), ids);
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

namespace runnel::models {
namespace {

size_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  size_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * 4096;
}

// 2,000 decode steps with the async_eval pipelining of a real decode loop: after warm-up, resident
// memory and the runtime's scratch memory stay flat (the cache is allocated up front).
TEST(Stories260K, DecodeHoldsFlatMemory) {
  auto m = load_model(stories_path());
  KvCache cache(m->config(), 2100);
  // Touch the cache's pages now: filling it is not growth.
  for (auto* side : {&cache.k, &cache.v})
    for (array::Array& a : *side) std::memset(a.raw_mutable(), 0, a.n_bytes());
  array::Array logits = m->forward({1}, 0, cache, false);
  array::eval(logits);
  size_t rss_warm = 0, scratch_warm = 0;
  for (int step = 0; step < 2000; ++step) {
    // Greedy: the argmax of the previous logits feeds the next step.
    const float* l = logits.data<float>();
    int32_t best = 0;
    for (int32_t j = 1; j < m->config().vocab; ++j)
      if (l[j] > l[best]) best = j;
    array::Array next = m->forward({best}, cache.n_tokens, cache, false);
    array::async_eval({next});
    logits = next;
    if (step == 100) {
      array::wait();
      rss_warm = resident_bytes();
      scratch_warm = array::memory_stats().active[0];
    }
  }
  array::wait();
  EXPECT_EQ(array::memory_stats().active[0], scratch_warm);
  // Allow a few pages of allocator noise, nothing that grows with the step count.
  EXPECT_LT(resident_bytes(), rss_warm + 256 * 1024)
      << "resident memory grew from " << rss_warm << " to " << resident_bytes();
}

}  // namespace
}  // namespace runnel::models
