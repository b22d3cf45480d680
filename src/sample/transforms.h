// Logit transforms as plain functions. The Sampler applies them in this fixed order:
//   1. grammar mask (disallowed tokens get -inf)   5. top-k
//   2. logit bias                                  6. softmax, then top-p
//   3. repetition / frequency / presence penalties 7. min-p
//   4. temperature (0: argmax of the logits after mask and bias, ties to lowest id; penalties
//      apply only when sampling, temperature > 0)  8. typical-p, then a draw from what is left
// Steps 1-3 work on the full logits [n_vocab]; from step 4 on, on the surviving candidates.
#pragma once

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "sample/vocabulary.h"

namespace runnel::sample {

struct Candidate {
  int32_t id;
  float logit;
  float prob;  // valid after softmax()
};

// The candidates still in play. items[0, n_sorted) hold the largest, in descending order (ties:
// lower id first); the rest is unordered.
struct Candidates {
  std::vector<Candidate> items;
  size_t n_sorted = 0;
};

// Disallowed tokens (bit clear) get -inf.
void apply_mask(std::span<float> logits, const TokenMask& allowed);
// logits[id] += bias. An id outside the vocabulary is an Error.
void apply_logit_bias(std::span<float> logits, std::span<const std::pair<int32_t, float>> bias);
// For each (token, count) seen in the history window: a positive logit is divided by `repeat`, a
// negative one multiplied by it (llama.cpp/Ollama convention), then count * frequency and
// presence (once) are subtracted.
void apply_penalties(std::span<float> logits, std::span<const std::pair<int32_t, int32_t>> counts,
                     float repeat, float frequency, float presence);
// Highest logit (NaN never counts); ties go to the lowest id. -1 when every logit is -inf.
int32_t argmax(std::span<const float> logits);

// Every token whose logit is above -inf, unordered.
void make_candidates(std::span<const float> logits, Candidates& out);
// The k highest (k <= 0: all), sorted: the same set top_k(make_candidates) gives, found with
// one pass and a small heap instead of sorting the vocabulary.
void make_top_candidates(std::span<const float> logits, int32_t k, Candidates& out);
// The largest of x[0..n) (NaN never counts), -inf when there is none; the scans over a vocabulary
// skip blocks of kMaxBlock logits whose maximum cannot change their result.
float max_of(const float* x, size_t n);
constexpr size_t kMaxBlock = 128;
void apply_temperature(Candidates& c, float temperature);  // logit /= temperature (> 0)
void top_k(Candidates& c, int32_t k);                      // k <= 0: no-op; leaves c sorted
void softmax(Candidates& c);                               // fills prob, summing to 1
void top_p(Candidates& c, float p);      // smallest prefix by prob with mass >= p (p >= 1: no-op)
void min_p(Candidates& c, float p);      // drops prob < p * max prob (p <= 0: no-op)
void typical_p(Candidates& c, float p);  // locally typical sampling (p >= 1: no-op)
// Draws one id with probability prob / sum(prob); `u` uniform in [0, 1).
int32_t draw(const Candidates& c, double u);

}  // namespace runnel::sample
