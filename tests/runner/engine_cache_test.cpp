// The engine on the prefix cache: a revisited or shared prompt reports cached_tokens and gives
// bit-identical greedy output and logprobs to a cold run, from the hot, cold and disk tiers; many
// conversations under a small hot budget stay inside it; cancellation releases every block.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "base/error.h"
#include "runner_testing.h"
#include "testing/testing.h"

namespace runnel::runner::testing {
namespace {

nlohmann::json stats(Engine& e) { return nlohmann::json::parse(e.cache_stats_json()); }

void expect_same(const Output& a, const Output& b, const std::string& what) {
  EXPECT_EQ(a.text, b.text) << what;
  EXPECT_EQ(a.logprobs, b.logprobs) << what;
  EXPECT_EQ(a.result.eval_count, b.result.eval_count) << what;
  EXPECT_EQ(a.result.prompt_eval_count, b.result.prompt_eval_count) << what;
}

TEST(EngineCache, RevisitFromHotTierIsIdentical) {
  auto engine = make_cache_engine(stories_model(), {});
  const std::string prompt = words(50, 1);  // ~90 tokens (stories260K: 128 context)
  Output cold = run(*engine, prompt, 12);
  EXPECT_EQ(cold.result.cached_tokens, 0);
  ASSERT_FALSE(cold.text.empty());
  ASSERT_FALSE(cold.logprobs.empty());
  Output hot = run(*engine, prompt, 12);
  EXPECT_EQ(hot.result.cached_tokens, hot.result.prompt_eval_count - 1);
  expect_same(hot, cold, "hot revisit");
  nlohmann::json s = stats(*engine);
  EXPECT_GT(s["hot"]["hits"].get<int64_t>(), 0);
  EXPECT_EQ(s["hot_blocks_in_use"].get<int64_t>(), 0);
  EXPECT_EQ(s["live_sequences"].get<int64_t>(), 0);
  EXPECT_GT(s["hot"]["bytes"].get<int64_t>(), 0);
  EXPECT_NE(s["config"].get<std::string>(), "");
}

TEST(EngineCache, F16KvRevisitIsIdentical) {
  ScopedEnv f16("RUNNEL_KV_CACHE_TYPE", "f16");
  auto engine = make_cache_engine(tiny_model(), {});
  EXPECT_EQ(stats(*engine)["kv_dtype"].get<std::string>(), "f16");
  const std::string prompt = words(120, 14);
  Output cold = run(*engine, prompt, 8);
  Output hot = run(*engine, prompt, 8);
  EXPECT_EQ(hot.result.cached_tokens, hot.result.prompt_eval_count - 1);
  expect_same(hot, cold, "f16 revisit");
  ScopedEnv bad("RUNNEL_KV_CACHE_TYPE", "q4");
  EXPECT_THROW(make_cache_engine(tiny_model(), {}), Error);
}

TEST(EngineCache, Q8KvRevisitIsIdenticalAndNarrowHeadsFallBackToF16) {
  ScopedEnv q8("RUNNEL_KV_CACHE_TYPE", "q8_0");
  auto engine = make_cache_engine(tiny_wide_heads_model(), {});
  nlohmann::json s = stats(*engine);
  EXPECT_EQ(s["kv_dtype"].get<std::string>(), "q8_0");
  const std::string prompt = words(120, 15);
  Output cold = run(*engine, prompt, 8);
  ASSERT_FALSE(cold.text.empty());
  Output hot = run(*engine, prompt, 8);
  EXPECT_EQ(hot.result.cached_tokens, hot.result.prompt_eval_count - 1);
  expect_same(hot, cold, "q8_0 revisit");
  // A block of 16 positions: 2 layers × K, V × 16 × 2 heads × 34 bytes (f16: 2 × 2 × 16 × 64 × 2).
  EXPECT_EQ(s["block_bytes"].get<int64_t>(), 2 * 2 * 16 * 2 * 34);
  // head_dim 16: no whole q8_0 blocks, so the engine keeps f16 (as Ollama does) and says so.
  auto narrow = make_cache_engine(tiny_model(), {});
  EXPECT_EQ(stats(*narrow)["kv_dtype"].get<std::string>(), "f16");
  EXPECT_FALSE(run(*narrow, prompt, 4).text.empty());
}

TEST(EngineCache, SharedPrefixIsReusedAndIdenticalToColdRun) {
  const std::string system = words(40, 2);  // ~70 tokens
  const std::string a = system + ". " + words(12, 3), b = system + ". " + words(12, 4);
  Output cold_b;
  {
    auto fresh = make_cache_engine(stories_model(), {});
    cold_b = run(*fresh, b, 10);
    EXPECT_EQ(cold_b.result.cached_tokens, 0);
  }
  auto engine = make_cache_engine(stories_model(), {});
  run(*engine, a, 10);
  Output warm_b = run(*engine, b, 10);
  EXPECT_GT(warm_b.result.cached_tokens, 48);
  EXPECT_LT(warm_b.result.cached_tokens, warm_b.result.prompt_eval_count - 1);
  expect_same(warm_b, cold_b, "shared prefix");
}

TEST(EngineCache, LongPromptInManyChunksAndRestoredFromColdAndDisk) {
  // ~800 tokens: the engine prefills it in several 256-token chunks.
  const std::string prompt = words(250, 5), other = words(250, 6);
  Output ref;
  {
    auto engine = make_cache_engine(tiny_model(), {});
    ref = run(*engine, prompt, 8);
    ASSERT_GT(ref.result.prompt_eval_count, 600);
  }
  const std::string dir = runnel::testing::make_temp_dir("runner_kv_disk");
  {
    // A hot pool too small for both prompts: `other` pushes most of `prompt` to the cold tier.
    // Tiny model, f16 KV: 2 layers x K,V x 16 rows x 32 halves = 4 KiB per block.
    auto engine = make_cache_engine(tiny_model(), {"384KiB", "64MiB", std::nullopt});
    Output first = run(*engine, prompt, 8);
    expect_same(first, ref, "hot pool, first run");
    run(*engine, other, 8);
    Output back = run(*engine, prompt, 8);
    nlohmann::json s = stats(*engine);
    EXPECT_GT(s["cold"]["hits"].get<int64_t>(), 0);
    EXPECT_GT(s["cold"]["restored_tokens"].get<int64_t>(), 0);
    EXPECT_LE(s["hot"]["bytes"].get<int64_t>(), s["hot"]["capacity_bytes"].get<int64_t>());
    EXPECT_EQ(back.result.cached_tokens, back.result.prompt_eval_count - 1);
    expect_same(back, ref, "cold tier");
  }
  {
    auto engine = make_cache_engine(tiny_model(), {std::nullopt, "0", dir});
    run(*engine, prompt, 8);
  }  // destruction flushes the cache to disk
  EXPECT_FALSE(std::filesystem::is_empty(dir));
  {
    auto engine = make_cache_engine(tiny_model(), {std::nullopt, "0", dir});
    Output back = run(*engine, prompt, 8);
    nlohmann::json s = stats(*engine);
    EXPECT_GT(s["disk"]["hits"].get<int64_t>(), 0);
    EXPECT_GT(back.result.cached_tokens, 600);
    expect_same(back, ref, "disk tier after a restart");
  }
}

TEST(EngineCache, TwentyConversationsUnderSmallBudget) {
  const std::string system = words(180, 8);  // ~570 tokens
  std::vector<std::string> prompts;
  for (int i = 0; i < 20; ++i) prompts.push_back(system + ". " + words(40, 100 + i));
  std::vector<Output> ref;
  {
    auto engine = make_cache_engine(tiny_model(), {std::nullopt, "0", std::nullopt});
    for (const auto& p : prompts) ref.push_back(run(*engine, p, 6));
    // Shared in full: every conversation after the first reuses the system prompt.
    for (size_t i = 1; i < ref.size(); ++i) EXPECT_GT(ref[i].result.cached_tokens, 500);
  }
  // 512 KiB hot = 128 blocks of 4 KiB (f16 KV): the shared prompt (~36 blocks) plus ~9
  // conversations' own ~8-block tails; 20 conversations need ~200 blocks, so tails are evicted
  // and recomputed.
  const int64_t budget = 512 << 10;
  auto engine = make_cache_engine(tiny_model(), {"512KiB", "0", std::nullopt});
  int64_t cached = 0;
  for (int round = 0; round < 2; ++round) {
    for (size_t i = 0; i < prompts.size(); ++i) {
      Output o = run(*engine, prompts[i], 6);
      expect_same(o, ref[i], "conversation " + std::to_string(i));
      if (round == 1 || i > 0) {
        EXPECT_GT(o.result.cached_tokens, 500) << i;
      }
      cached += o.result.cached_tokens;
      nlohmann::json s = stats(*engine);
      EXPECT_LE(s["hot"]["bytes"].get<int64_t>(), budget);
      EXPECT_EQ(s["hot"]["capacity_bytes"].get<int64_t>(), budget);
    }
  }
  nlohmann::json s = stats(*engine);
  EXPECT_GT(s["hot"]["evictions"].get<int64_t>(), 0);  // the budget was really tight
  EXPECT_EQ(s["hot_blocks_in_use"].get<int64_t>(), 0);
  EXPECT_GT(cached, 30 * 500);
}

TEST(EngineCache, ConcurrentConversationsShareAndMatchSequentialRuns) {
  const std::string system = words(120, 12);
  std::vector<std::string> prompts;
  for (int i = 0; i < 6; ++i) prompts.push_back(system + ". " + words(10 + 7 * i, 200 + i));
  std::vector<Output> ref;
  for (const auto& p : prompts) {
    auto fresh = make_cache_engine(tiny_model(), {});
    ref.push_back(run(*fresh, p, 10));
  }
  auto engine = make_cache_engine(tiny_model(), {});
  for (int round = 0; round < 2; ++round) {
    std::vector<Output> out(prompts.size());
    std::vector<std::thread> threads;
    for (size_t i = 0; i < prompts.size(); ++i)
      threads.emplace_back([&, i] { out[i] = run(*engine, prompts[i], 10); });
    for (auto& t : threads) t.join();
    for (size_t i = 0; i < prompts.size(); ++i) {
      expect_same(out[i], ref[i], "concurrent " + std::to_string(i));
      if (round == 1) {
        EXPECT_GT(out[i].result.cached_tokens, 300) << i;
      }
    }
  }
  EXPECT_EQ(stats(*engine)["hot_blocks_in_use"].get<int64_t>(), 0);
}

TEST(EngineCache, EndOfTurnSharesThePartialLastBlock) {
  auto engine = make_cache_engine(tiny_model(), {});
  // Find a prompt that ends well inside a block; one sampled token is never fed, so the KV holds
  // exactly the prompt.
  std::string prompt;
  int64_t n = 0;
  for (int w = 30;; ++w) {
    prompt = words(w, 13);
    n = static_cast<int64_t>(engine->tokenize(prompt, true).size());
    if (n % 16 >= 6 && n % 16 <= 12) break;
  }
  Output first = run(*engine, prompt, 1);
  ASSERT_EQ(first.result.prompt_eval_count, n);
  Output next = run(*engine, prompt + " and the sun", 4);
  // The full blocks alone would give n / 16 * 16; the committed partial block gives (almost) all.
  EXPECT_GE(next.result.cached_tokens, n - 1);
  auto fresh = make_cache_engine(tiny_model(), {});
  expect_same(next, run(*fresh, prompt + " and the sun", 4), "after a partial block");
}

TEST(EngineCache, CancelMidPrefillReleasesBlocks) {
  const std::string prompt = words(250, 9);  // ~800 tokens: 4 prefill chunks
  auto engine = make_cache_engine(tiny_model(), {});
  // Polled once per step: cancel after two 256-token prefill chunks.
  Output cancelled = run(*engine, prompt, 8, 2);
  EXPECT_EQ(cancelled.result.done_reason, "cancel");
  EXPECT_EQ(cancelled.result.eval_count, 0);
  nlohmann::json s = stats(*engine);
  EXPECT_EQ(s["hot_blocks_in_use"].get<int64_t>(), 0);
  EXPECT_EQ(s["live_sequences"].get<int64_t>(), 0);
  // The chunks computed before the cancel were committed and are correct.
  Output again = run(*engine, prompt, 8);
  EXPECT_GE(again.result.cached_tokens, 256);
  EXPECT_LT(again.result.cached_tokens, again.result.prompt_eval_count - 1);
  auto fresh = make_cache_engine(tiny_model(), {});
  expect_same(again, run(*fresh, prompt, 8), "after a cancel");
}

TEST(EngineCache, PoolExhaustionIsAnErrorForThatRequest) {
  // 64 KiB = 8 blocks = 128 positions: a longer prompt cannot fit.
  auto engine = make_cache_engine(tiny_model(), {"64KiB", "0", std::nullopt});
  EXPECT_THROW(run(*engine, words(300, 10), 4), Error);
  Output small = run(*engine, words(20, 11), 4);
  EXPECT_FALSE(small.text.empty());
  EXPECT_EQ(stats(*engine)["hot_blocks_in_use"].get<int64_t>(), 0);
}

}  // namespace
}  // namespace runnel::runner::testing
