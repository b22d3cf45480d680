// Each transform against distributions computed by hand, and the order in which Sampler applies
// them.
#include "sample/transforms.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>

#include "base/error.h"
#include "sample/sampler.h"

namespace runnel::sample {
namespace {

Candidates from_probs(const std::vector<float>& probs) {
  Candidates c;
  for (size_t i = 0; i < probs.size(); ++i) {
    c.items.push_back({static_cast<int32_t>(i), std::log(probs[i]), 0.0f});
  }
  softmax(c);
  return c;
}

std::set<int32_t> ids(const Candidates& c) {
  std::set<int32_t> out;
  for (const auto& item : c.items) out.insert(item.id);
  return out;
}

TEST(Transforms, LogitBiasAddsAndRejectsUnknownIds) {
  std::vector<float> l = {1, 2, 3};
  const std::vector<std::pair<int32_t, float>> bias = {{0, 0.5f}, {2, -100.0f}};
  apply_logit_bias(l, bias);
  EXPECT_FLOAT_EQ(l[0], 1.5f);
  EXPECT_FLOAT_EQ(l[1], 2.0f);
  EXPECT_FLOAT_EQ(l[2], -97.0f);
  const std::vector<std::pair<int32_t, float>> bad = {{3, 1.0f}};
  EXPECT_THROW(apply_logit_bias(l, bad), Error);
}

TEST(Transforms, PenaltiesByHand) {
  std::vector<float> l = {2.0f, -1.0f, 0.5f, 3.0f};
  const std::vector<std::pair<int32_t, int32_t>> counts = {{0, 2}, {1, 1}};
  apply_penalties(l, counts, 2.0f, 0.5f, 0.25f);
  EXPECT_FLOAT_EQ(l[0], 2.0f / 2 - 2 * 0.5f - 0.25f);  // positive: divided
  EXPECT_FLOAT_EQ(l[1], -1.0f * 2 - 0.5f - 0.25f);     // negative: multiplied
  EXPECT_FLOAT_EQ(l[2], 0.5f);                         // not in the history
  EXPECT_FLOAT_EQ(l[3], 3.0f);
}

TEST(Transforms, ArgmaxTiesGoToLowestId) {
  const std::vector<float> l = {1, 3, 3, 2};
  EXPECT_EQ(argmax(l), 1);
  const std::vector<float> none = {-INFINITY, -INFINITY};
  EXPECT_EQ(argmax(none), -1);
}

// Against a one-pass scan on vocabulary-sized rows: ties, NaN (skipped), -inf, ragged tails and
// the maximum in the tail or at index 0.
TEST(Transforms, ArgmaxMatchesOnePassScan) {
  std::mt19937 rng(4);
  std::uniform_int_distribution<int> small(-3, 3);
  for (size_t n : {size_t{1}, size_t{7}, size_t{8}, size_t{9}, size_t{1000}, size_t{151936}}) {
    for (int variant = 0; variant < 4; ++variant) {
      std::vector<float> l(n);
      for (float& v : l) v = static_cast<float>(small(rng));  // many ties
      if (variant == 1) l[n / 2] = NAN;
      if (variant == 2) l.back() = 99.0f;
      if (variant == 3) {
        std::fill(l.begin(), l.end(), -INFINITY);
        l[0] = NAN;
      }
      int32_t want = -1;
      float best = -INFINITY;
      for (size_t i = 0; i < n; ++i) {
        if (l[i] > best) {
          best = l[i];
          want = static_cast<int32_t>(i);
        }
      }
      EXPECT_EQ(argmax(l), want) << "n=" << n << " variant=" << variant;
    }
  }
}

// make_top_candidates (a heap scan that skips blocks below its threshold) against the full
// candidate list cut by top_k, on vocabulary-sized rows: ties, NaN, -inf, the best in the tail.
TEST(Transforms, TopCandidatesMatchFullSortCutByTopK) {
  std::mt19937 rng(6);
  std::uniform_int_distribution<int> small(-40, 40);
  std::normal_distribution<float> wide(0.0f, 3.0f);
  for (size_t n : {size_t{1}, size_t{50}, size_t{129}, size_t{1000}, size_t{151936}}) {
    for (int variant = 0; variant < 4; ++variant) {
      std::vector<float> l(n);
      for (float& v : l) v = variant % 2 ? wide(rng) : static_cast<float>(small(rng)) / 4;
      for (size_t i = 0; i < n; i += 97) l[i] = variant == 2 ? NAN : -INFINITY;
      if (variant == 3) l.back() = 99.0f;
      for (int32_t k : {1, 5, 40, 1000}) {
        if (static_cast<size_t>(k) >= n) continue;
        Candidates got, want;
        make_top_candidates(l, k, got);
        make_candidates(l, want);
        top_k(want, k);
        ASSERT_EQ(got.items.size(), want.items.size()) << "n=" << n << " k=" << k;
        for (size_t i = 0; i < got.items.size(); ++i) {
          ASSERT_EQ(got.items[i].id, want.items[i].id) << "n=" << n << " k=" << k << " i=" << i;
          ASSERT_EQ(got.items[i].logit, want.items[i].logit);
        }
      }
    }
  }
}

TEST(Transforms, MaskSetsMinusInfinity) {
  std::vector<float> l = {1, 2, 3, 4, 5};
  TokenMask m(5);
  m.set(1);
  m.set(4);
  apply_mask(l, m);
  EXPECT_EQ(l[0], -INFINITY);
  EXPECT_EQ(l[1], 2.0f);
  EXPECT_EQ(l[2], -INFINITY);
  EXPECT_EQ(l[4], 5.0f);
}

TEST(Transforms, TemperatureAndSoftmax) {
  Candidates c;
  c.items = {{0, 0.0f, 0}, {1, std::log(2.0f), 0}, {2, std::log(4.0f), 0}};
  softmax(c);
  EXPECT_NEAR(c.items[0].prob, 1.0 / 7, 1e-6);
  EXPECT_NEAR(c.items[1].prob, 2.0 / 7, 1e-6);
  EXPECT_NEAR(c.items[2].prob, 4.0 / 7, 1e-6);
  // Temperature 0.5 squares the ratios: 1 : 4 : 16.
  apply_temperature(c, 0.5f);
  softmax(c);
  EXPECT_NEAR(c.items[0].prob, 1.0 / 21, 1e-6);
  EXPECT_NEAR(c.items[2].prob, 16.0 / 21, 1e-6);
}

TEST(Transforms, TopKKeepsHighestWithTiesByLowerId) {
  Candidates c;
  c.items = {{0, 1, 0}, {1, 5, 0}, {2, 3, 0}, {3, 5, 0}, {4, 2, 0}};
  top_k(c, 2);
  ASSERT_EQ(c.items.size(), 2u);
  EXPECT_EQ(c.items[0].id, 1);
  EXPECT_EQ(c.items[1].id, 3);
  Candidates d;
  d.items = {{0, 1, 0}, {1, 5, 0}};
  top_k(d, 0);  // disabled
  EXPECT_EQ(d.items.size(), 2u);
}

TEST(Transforms, TopP) {
  Candidates c = from_probs({0.15f, 0.5f, 0.05f, 0.3f});
  top_p(c, 0.75f);  // 0.5 + 0.3 >= 0.75
  EXPECT_EQ(ids(c), (std::set<int32_t>{1, 3}));
  c = from_probs({0.15f, 0.5f, 0.05f, 0.3f});
  top_p(c, 0.85f);  // needs 0.15 too
  EXPECT_EQ(ids(c), (std::set<int32_t>{0, 1, 3}));
  c = from_probs({0.15f, 0.5f, 0.05f, 0.3f});
  top_p(c, 0.0f);  // at least one survives
  EXPECT_EQ(ids(c), (std::set<int32_t>{1}));
  c = from_probs({0.15f, 0.5f, 0.05f, 0.3f});
  top_p(c, 1.0f);
  EXPECT_EQ(c.items.size(), 4u);
}

TEST(Transforms, TopPOverManyCandidates) {
  // 1000 candidates with mass concentrated on 100: needs the progressive sort past 64.
  std::vector<float> probs(1000, 0.0001f);
  for (int i = 0; i < 100; ++i) probs[static_cast<size_t>(i) * 10] = 0.0090f;
  Candidates c = from_probs(probs);
  top_p(c, 0.9f * 0.9f / (0.9f + 0.09f));
  EXPECT_GE(c.items.size(), 80u);
  EXPECT_LE(c.items.size(), 100u);
  for (const auto& item : c.items) EXPECT_EQ(item.id % 10, 0);
}

TEST(Transforms, TopPOverALargeVocabularyMatchesAFullSort) {
  // > 4096 candidates takes the bucketed path; it must keep the same set as sorting everything.
  uint64_t x = 12345;
  Candidates c;
  for (int32_t i = 0; i < 50003; ++i) {  // not a multiple of logit_range's 4 lanes
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    c.items.push_back({i, static_cast<float>((x >> 40) % 1000) / 100.0f, 0.0f});
  }
  softmax(c);
  for (const float p : {0.1f, 0.5f, 0.9f, 0.99f}) {
    Candidates fast = c;
    top_p(fast, p);
    std::vector<Candidate> ref = c.items;
    std::sort(ref.begin(), ref.end(), [](const Candidate& a, const Candidate& b) {
      return a.logit != b.logit ? a.logit > b.logit : a.id < b.id;
    });
    double cum = 0;
    std::set<int32_t> expect;
    for (const auto& item : ref) {
      expect.insert(item.id);
      cum += item.prob;
      if (cum >= p) break;
    }
    const std::set<int32_t> got = ids(fast);
    // Summation order may move the cut by a token or two of equal logit.
    EXPECT_LE(std::max(got.size(), expect.size()) - std::min(got.size(), expect.size()), 2u) << p;
    size_t common = 0;
    for (const int32_t id : got) common += expect.count(id);
    EXPECT_GE(common + 2, expect.size()) << p;
  }
}

TEST(Transforms, MinP) {
  Candidates c = from_probs({0.5f, 0.3f, 0.15f, 0.05f});
  min_p(c, 0.2f);  // threshold 0.1
  EXPECT_EQ(ids(c), (std::set<int32_t>{0, 1, 2}));
  c = from_probs({0.5f, 0.3f, 0.15f, 0.05f});
  min_p(c, 0.7f);  // threshold 0.35
  EXPECT_EQ(ids(c), (std::set<int32_t>{0}));
}

TEST(Transforms, TypicalP) {
  // H = 0.8018; |surprise - H|: id0 0.445, id1 0.808, id2 1.501.
  Candidates c = from_probs({0.7f, 0.2f, 0.1f});
  typical_p(c, 0.8f);
  EXPECT_EQ(ids(c), (std::set<int32_t>{0, 1}));
  c = from_probs({0.7f, 0.2f, 0.1f});
  typical_p(c, 0.5f);
  EXPECT_EQ(ids(c), (std::set<int32_t>{0}));
  // H = 1.0549: ids 0 and 1 are 0.139 from it, id 2 is 0.555 away,
  // so 0 and 1 (mass 0.8 >= 0.7) survive.
  c = from_probs({0.4f, 0.4f, 0.2f});
  typical_p(c, 0.7f);
  EXPECT_EQ(ids(c), (std::set<int32_t>{0, 1}));
}

TEST(Transforms, DrawFollowsCumulativeMass) {
  Candidates c = from_probs({0.25f, 0.75f});
  EXPECT_EQ(draw(c, 0.0), 0);
  EXPECT_EQ(draw(c, 0.2), 0);
  EXPECT_EQ(draw(c, 0.3), 1);
  EXPECT_EQ(draw(c, 0.999999), 1);
}

// The order: temperature comes before top-p, so top-p sees the tempered distribution.
TEST(TransformOrder, TemperatureBeforeTopP) {
  const std::vector<float> logits = {std::log(6.0f), std::log(3.0f), std::log(1.0f)};
  std::set<int32_t> seen_t1, seen_t2;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    SamplingOptions o;
    o.top_k = 0;
    o.top_p = 0.6f;
    o.repeat_penalty = 1.0f;
    o.seed = seed;
    o.temperature = 1.0f;  // probs .6 .3 .1: top-p 0.6 keeps only id 0
    seen_t1.insert(Sampler(o, {}).sample(logits).token);
    o.temperature = 2.0f;  // probs .47 .34 .19: top-p 0.6 keeps ids 0 and 1
    seen_t2.insert(Sampler(o, {}).sample(logits).token);
  }
  EXPECT_EQ(seen_t1, (std::set<int32_t>{0}));
  EXPECT_EQ(seen_t2, (std::set<int32_t>{0, 1}));
}

// Top-k comes before top-p: top-p's mass is measured over the k survivors.
TEST(TransformOrder, TopKBeforeTopP) {
  // probs .4 .3 .2 .1; top_k 2 renormalizes to .57 .43; top_p 0.5 then keeps id 0 alone.
  // (top-p first would keep ids 0, 1 and top-k would not change that.)
  const std::vector<float> logits = {std::log(4.0f), std::log(3.0f), std::log(2.0f),
                                     std::log(1.0f)};
  std::set<int32_t> seen;
  for (uint64_t seed = 0; seed < 100; ++seed) {
    SamplingOptions o;
    o.temperature = 1.0f;
    o.top_k = 2;
    o.top_p = 0.5f;
    o.seed = seed;
    seen.insert(Sampler(o, {}).sample(logits).token);
  }
  EXPECT_EQ(seen, (std::set<int32_t>{0}));
}

// The mask comes before the bias: a bias cannot bring back a masked token. Penalties come before
// greedy selection.
TEST(TransformOrder, MaskThenBiasThenPenaltiesThenGreedy) {
  SamplingOptions o;
  o.temperature = 1.0f;  // with top_k 1: the best token after penalties
  o.top_k = 1;
  o.logit_bias = {{0, 100.0f}};
  o.repeat_penalty = 1.1f;
  const std::vector<int32_t> prompt = {1};
  Sampler s(o, prompt);
  const std::vector<float> logits = {0.0f, 2.0f, 1.9f};
  TokenMask m(3);
  m.set(1);
  m.set(2);
  // id 0 is masked despite its bias; id 1 (2.0 / 1.1 = 1.82) falls below id 2 (1.9).
  EXPECT_EQ(s.sample(logits, &m).token, 2);
}

}  // namespace
}  // namespace runnel::sample
