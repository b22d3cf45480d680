// Sampler: copies the logits, runs the transforms of transforms.h in their documented order and
// draws with the request's own RNG.
#include "sample/sampler.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "base/error.h"
#include "kernels/cpu/vec.h"

namespace runnel::sample {

namespace {

uint64_t pick_seed(const SamplingOptions& o) {
  if (o.seed) return *o.seed;
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

}  // namespace

Sampler::Sampler(SamplingOptions options, std::span<const int32_t> prompt_tokens)
    : options_(std::move(options)),
      seed_(pick_seed(options_)),
      rng_(seed_),
      window_(static_cast<size_t>(std::max(options_.penalty_window(), 0))) {
  const size_t n = std::min(prompt_tokens.size(), window_);
  for (size_t i = prompt_tokens.size() - n; i < prompt_tokens.size(); ++i) {
    accept(prompt_tokens[i]);
  }
}

void Sampler::accept(int32_t token) {
  if (window_ == 0) return;
  history_.push_back(token);
  ++counts_[token];
  if (history_.size() > window_) {
    const int32_t old = history_.front();
    history_.pop_front();
    if (--counts_[old] == 0) counts_.erase(old);
  }
}

std::vector<std::pair<int32_t, int32_t>> Sampler::history_counts() const {
  std::vector<std::pair<int32_t, int32_t>> out(counts_.begin(), counts_.end());
  std::sort(out.begin(), out.end());
  return out;
}

bool Sampler::penalties_active() const {
  return window_ > 0 && (options_.repeat_penalty != 1.0f || options_.frequency_penalty != 0.0f ||
                         options_.presence_penalty != 0.0f);
}

SampleResult Sampler::sample(std::span<const float> logits, const TokenMask* allowed) {
  check(!logits.empty(), "sample", "no logits to sample from");
  SampleResult result;
  if (options_.temperature <= 0.0f && allowed == nullptr && options_.logit_bias.empty()) {
    // Plain greedy: nothing transforms the logits, so they are read in place (no copy of the
    // vocabulary every step).
    result.token = argmax(logits);
    check(result.token >= 0, "sample", "no token is allowed (every logit is -inf)");
    return finish(logits, result);
  }
  scratch_.assign(logits.begin(), logits.end());
  std::span<float> l(scratch_);
  if (allowed != nullptr) apply_mask(l, *allowed);
  if (!options_.logit_bias.empty()) apply_logit_bias(l, options_.logit_bias);
  // Temperature 0 is plain greedy decoding of the model's logits (as llama.cpp and Ollama's own
  // sampler do): penalties shape a distribution to sample from, so they apply only when sampling.
  if (penalties_active() && options_.temperature > 0.0f) {
    const auto counts = history_counts();
    apply_penalties(l, counts, options_.repeat_penalty, options_.frequency_penalty,
                    options_.presence_penalty);
  }
  if (options_.temperature <= 0.0f) {
    result.token = argmax(l);
    check(result.token >= 0, "sample", "no token is allowed (every logit is -inf)");
  } else {
    // Top-k is selected before dividing by the temperature: a positive scale keeps the order, so
    // the set and the result are those of the documented order, without sorting every logit.
    make_top_candidates(l, options_.top_k, candidates_);
    check(!candidates_.items.empty(), "sample", "no token is allowed (every logit is -inf)");
    apply_temperature(candidates_, options_.temperature);
    softmax(candidates_);
    top_p(candidates_, options_.top_p);
    min_p(candidates_, options_.min_p);
    typical_p(candidates_, options_.typical_p);
    result.token = draw(candidates_, rng_.uniform());
  }
  return finish(logits, result);
}

SampleResult Sampler::finish(std::span<const float> logits, SampleResult& result) {
  if (options_.logprobs || options_.top_logprobs > 0) {
    compute_logprobs(logits, result.token, options_.top_logprobs, result);
  }
  accept(result.token);
  return result;
}

void compute_logprobs(std::span<const float> logits, int32_t token, int32_t n_top,
                      SampleResult& out) {
  // log-sum-exp: the maximum, then Σ exp(x - max) in double over the kernels' SIMD exp (was
  // libm's double exp per logit). 151936 logits: 0.96 -> 0.09 ms a token; with 5 top logprobs,
  // whose scan now skips blocks that cannot enter them, 1.52 -> 0.11 ms.
  const size_t n = logits.size();
  const float max_logit = max_of(logits.data(), n);
  const double lse = max_logit + std::log(kernels::cpu::sum_exp(logits.data(), n, max_logit));
  out.logprob = static_cast<float>(logits[static_cast<size_t>(token)] - lse);
  out.top.clear();
  if (n_top <= 0) return;
  // Small sorted buffer of the best n_top (ties: lower id first, ids visited in order).
  std::vector<TokenLogprob> best;
  const auto k = static_cast<size_t>(n_top);
  for (size_t i0 = 0; i0 < n; i0 += kMaxBlock) {
    const size_t i1 = std::min(n, i0 + kMaxBlock);
    if (best.size() == k && !(max_of(logits.data() + i0, i1 - i0) > best.back().logprob)) continue;
    for (size_t i = i0; i < i1; ++i) {
      const float x = logits[i];
      if (best.size() == k && !(x > best.back().logprob)) continue;
      auto pos = std::upper_bound(best.begin(), best.end(), x,
                                  [](float v, const TokenLogprob& t) { return v > t.logprob; });
      best.insert(pos, {static_cast<int32_t>(i), x});
      if (best.size() > k) best.pop_back();
    }
  }
  for (auto& t : best) t.logprob = static_cast<float>(t.logprob - lse);
  out.top = std::move(best);
}

}  // namespace runnel::sample
