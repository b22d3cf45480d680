// One request's sampler: options, a seeded RNG and the penalty history (seeded with the prompt's
// tokens, extended with every sampled token). Same seed + options + prompt + logits => same tokens,
// whatever else the process is doing: all state is here.
#pragma once

#include <cstdint>
#include <deque>
#include <span>
#include <unordered_map>
#include <vector>

#include "sample/options.h"
#include "sample/rng.h"
#include "sample/transforms.h"
#include "sample/vocabulary.h"

namespace runnel::sample {

struct TokenLogprob {
  int32_t id;
  float logprob;  // natural log
};

struct SampleResult {
  int32_t token = -1;
  // When options.logprobs or top_logprobs > 0: log-softmax of the model's raw logits (before
  // masks, bias, penalties and temperature), as Ollama and OpenAI report the model's distribution.
  float logprob = 0.0f;
  std::vector<TokenLogprob> top;  // options.top_logprobs best, by logprob desc (ties: lower id)
};

class Sampler {
 public:
  // prompt_tokens seed the penalty history (only the last penalty_window() are kept).
  Sampler(SamplingOptions options, std::span<const int32_t> prompt_tokens);

  // logits: [n_vocab] raw scores for the next token. allowed: the grammar's mask, or null.
  // The chosen token is appended to the history. Errors when no token is allowed.
  SampleResult sample(std::span<const float> logits, const TokenMask* allowed = nullptr);
  // Appends a token chosen elsewhere (e.g. forced) to the history.
  void accept(int32_t token);

  uint64_t seed() const { return seed_; }
  const SamplingOptions& options() const { return options_; }
  // (token, count) over the current history window, sorted by token id.
  std::vector<std::pair<int32_t, int32_t>> history_counts() const;

 private:
  bool penalties_active() const;
  // Log-probabilities of the chosen token (when asked for) and the history update.
  SampleResult finish(std::span<const float> logits, SampleResult& result);

  SamplingOptions options_;
  uint64_t seed_;
  Rng rng_;
  size_t window_;
  std::deque<int32_t> history_;
  std::unordered_map<int32_t, int32_t> counts_;
  std::vector<float> scratch_;
  Candidates candidates_;
};

// Log-probabilities of `logits` (log-softmax): the chosen token's and the n best.
void compute_logprobs(std::span<const float> logits, int32_t token, int32_t n_top,
                      SampleResult& out);

}  // namespace runnel::sample
