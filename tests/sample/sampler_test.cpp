// Sampler: seed reproducibility, the penalty history (prompt tokens included, window size),
// logprobs.
#include "sample/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "base/error.h"
#include "sample/rng.h"

namespace runnel::sample {
namespace {

std::vector<float> random_logits(Rng& rng, size_t n) {
  std::vector<float> l(n);
  for (auto& x : l) x = static_cast<float>(rng.uniform() * 6.0 - 3.0);
  return l;
}

std::vector<int32_t> run(const SamplingOptions& o, int steps) {
  Rng logits_rng(1234);
  Sampler s(o, std::vector<int32_t>{1, 2, 3});
  std::vector<int32_t> out;
  for (int i = 0; i < steps; ++i) out.push_back(s.sample(random_logits(logits_rng, 500)).token);
  return out;
}

TEST(Rng, KnownFirstValuesAndUniformRange) {
  Rng a(42), b(42), c(43);
  const uint64_t first = a.next();
  EXPECT_EQ(first, b.next());
  EXPECT_NE(first, c.next());
  Rng r(7);
  double sum = 0;
  for (int i = 0; i < 10000; ++i) {
    const double u = r.uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
  }
  EXPECT_NEAR(sum / 10000, 0.5, 0.02);
}

TEST(Sampler, SameSeedSameTokens) {
  SamplingOptions o;  // Ollama defaults: temperature 0.8, top_k 40, top_p 0.9, penalties
  o.seed = 99;
  const auto a = run(o, 300);
  const auto b = run(o, 300);
  EXPECT_EQ(a, b);
  o.seed = 100;
  EXPECT_NE(run(o, 300), a);
  // Every transform enabled at once is still reproducible.
  o.min_p = 0.05f;
  o.typical_p = 0.9f;
  o.frequency_penalty = 0.3f;
  o.presence_penalty = 0.2f;
  EXPECT_EQ(run(o, 200), run(o, 200));
}

TEST(Sampler, NoSeedPicksARandomOne) {
  SamplingOptions o;
  EXPECT_NE(Sampler(o, {}).seed(), Sampler(o, {}).seed());
}

TEST(Sampler, PenaltyWindowIncludesPromptTokens) {
  SamplingOptions o;
  o.temperature = 1.0f;  // with top_k 1: the best token after penalties
  o.top_k = 1;
  o.repeat_penalty = 1.1f;
  const std::vector<float> logits = {0.0f, 1.0f, 0.95f};
  // Without the prompt, id 1 wins; with id 1 in the prompt, 1.0 / 1.1 = 0.91 < 0.95.
  EXPECT_EQ(Sampler(o, {}).sample(logits).token, 1);
  EXPECT_EQ(Sampler(o, std::vector<int32_t>{1}).sample(logits).token, 2);
  // repeat_last_n = 2: only the last two prompt tokens count.
  o.repeat_last_n = 2;
  EXPECT_EQ(Sampler(o, std::vector<int32_t>{1, 0, 0}).sample(logits).token, 1);
  EXPECT_EQ(Sampler(o, std::vector<int32_t>{0, 1, 0}).sample(logits).token, 2);
  // 0 disables the penalties.
  o.repeat_last_n = 0;
  EXPECT_EQ(Sampler(o, std::vector<int32_t>{1}).sample(logits).token, 1);
  // -1 means num_ctx.
  o.repeat_last_n = -1;
  o.num_ctx = 3;
  EXPECT_EQ(Sampler(o, std::vector<int32_t>{1, 0, 0}).sample(logits).token, 2);
  EXPECT_EQ(Sampler(o, std::vector<int32_t>{1, 0, 0, 0}).sample(logits).token, 1);
}

TEST(Sampler, TemperatureZeroIsGreedyOverTheModelsLogits) {
  SamplingOptions o;  // default repeat_penalty 1.1
  o.temperature = 0.0f;
  const std::vector<float> logits = {0.0f, 1.0f, 0.95f};
  // id 1 is in the prompt, but greedy decoding ignores the penalties.
  EXPECT_EQ(Sampler(o, std::vector<int32_t>{1}).sample(logits).token, 1);
}

TEST(Sampler, GeneratedTokensJoinTheHistory) {
  SamplingOptions o;
  o.temperature = 1.0f;  // with top_k 1: the best token after penalties
  o.top_k = 1;
  o.repeat_penalty = 1.1f;
  o.repeat_last_n = 1;
  Sampler s(o, {});
  const std::vector<float> logits = {1.0f, 0.95f};
  // 0 wins, is penalized (0.91) so 1 wins, which pushes 0 out of the 1-token window, ...
  EXPECT_EQ(s.sample(logits).token, 0);
  EXPECT_EQ(s.sample(logits).token, 1);
  EXPECT_EQ(s.sample(logits).token, 0);
  EXPECT_EQ(s.history_counts(), (std::vector<std::pair<int32_t, int32_t>>{{0, 1}}));
}

TEST(Sampler, FrequencyAndPresencePenaltiesCountOccurrences) {
  SamplingOptions o;
  o.temperature = 1.0f;  // with top_k 1: the best token after penalties
  o.top_k = 1;
  o.repeat_penalty = 1.0f;
  o.frequency_penalty = 0.1f;
  const std::vector<float> logits = {1.0f, 0.75f};
  // id 0 seen twice: 1.0 - 0.2 = 0.8 > 0.75; three times: 0.7 < 0.75.
  EXPECT_EQ(Sampler(o, std::vector<int32_t>{0, 0}).sample(logits).token, 0);
  EXPECT_EQ(Sampler(o, std::vector<int32_t>{0, 0, 0}).sample(logits).token, 1);
  o.frequency_penalty = 0.0f;
  o.presence_penalty = 0.3f;  // once, whatever the count
  EXPECT_EQ(Sampler(o, std::vector<int32_t>{0}).sample(logits).token, 1);
}

TEST(Sampler, LogprobsAreThoseOfTheRawLogits) {
  SamplingOptions o;
  o.temperature = 0.0f;
  o.top_logprobs = 2;
  o.logit_bias = {{0, 10.0f}};  // changes the choice, not the reported distribution
  Sampler s(o, {});
  const std::vector<float> logits = {0.0f, std::log(3.0f), -1e30f};
  const SampleResult r = s.sample(logits);
  EXPECT_EQ(r.token, 0);
  EXPECT_NEAR(r.logprob, std::log(0.25), 1e-5);
  ASSERT_EQ(r.top.size(), 2u);
  EXPECT_EQ(r.top[0].id, 1);
  EXPECT_NEAR(r.top[0].logprob, std::log(0.75), 1e-5);
  EXPECT_EQ(r.top[1].id, 0);
}

// On a vocabulary-sized row (ties, -inf, the best in the last block) against a plain double
// log-sum-exp and a full scan for the top ids.
TEST(Sampler, LogprobsMatchPlainLogSumExpOnAVocabulary) {
  std::mt19937 rng(12);
  std::uniform_int_distribution<int> small(-200, 200);
  std::vector<float> l(151936);
  for (size_t i = 0; i < l.size(); ++i) {
    l[i] = i % 17 == 3 ? -INFINITY : static_cast<float>(small(rng)) / 20;  // many ties
  }
  l.back() = 12.5f;
  double mx = -INFINITY, sum = 0;
  for (const float x : l) mx = std::max(mx, static_cast<double>(x));
  for (const float x : l) sum += std::exp(static_cast<double>(x) - mx);
  const double lse = mx + std::log(sum);
  std::vector<int32_t> order(l.size());
  for (size_t i = 0; i < l.size(); ++i) order[i] = static_cast<int32_t>(i);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return l[a] > l[b]; });
  for (const int32_t n_top : {0, 1, 5, 20}) {
    SampleResult r;
    compute_logprobs(l, 7, n_top, r);
    EXPECT_NEAR(r.logprob, l[7] - lse, 1e-5) << n_top;
    ASSERT_EQ(r.top.size(), static_cast<size_t>(n_top));
    for (int32_t i = 0; i < n_top; ++i) {
      EXPECT_EQ(r.top[i].id, order[i]) << "top " << n_top << " rank " << i;
      EXPECT_NEAR(r.top[i].logprob, l[order[i]] - lse, 1e-5);
    }
  }
}

TEST(Sampler, GreedyHonoursMaskAndAllMaskedIsAnError) {
  SamplingOptions o;
  o.temperature = 0.0f;
  Sampler s(o, {});
  const std::vector<float> logits = {3.0f, 2.0f, 1.0f};
  TokenMask m(3);
  m.set(2);
  EXPECT_EQ(s.sample(logits, &m).token, 2);
  m.clear();
  EXPECT_THROW(s.sample(logits, &m), Error);
  o.temperature = 1.0f;
  Sampler t(o, {});
  EXPECT_THROW(t.sample(logits, &m), Error);
}

TEST(Sampler, SamplesFollowTheDistribution) {
  SamplingOptions o;
  o.temperature = 1.0f;
  o.top_k = 0;
  o.top_p = 1.0f;
  o.repeat_penalty = 1.0f;
  o.seed = 5;
  Sampler s(o, {});
  const std::vector<float> logits = {0.0f, std::log(3.0f)};
  int ones = 0;
  for (int i = 0; i < 4000; ++i) ones += s.sample(logits).token;
  EXPECT_NEAR(ones / 4000.0, 0.75, 0.03);
}

}  // namespace
}  // namespace runnel::sample
