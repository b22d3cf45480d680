// Logit transforms. Orderings are total (logit, then id) so results never depend on the order in
// which candidates happen to sit.
#include "sample/transforms.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>

#include "base/error.h"
#include "kernels/cpu/vec.h"

namespace runnel::sample {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

bool before(const Candidate& a, const Candidate& b) {
  return a.logit != b.logit ? a.logit > b.logit : a.id < b.id;
}

// Sorts (at least) the first m items.
void sort_prefix(Candidates& c, size_t m) {
  m = std::min(m, c.items.size());
  if (m <= c.n_sorted) return;
  std::partial_sort(c.items.begin() + static_cast<std::ptrdiff_t>(c.n_sorted),
                    c.items.begin() + static_cast<std::ptrdiff_t>(m), c.items.end(), before);
  c.n_sorted = m;
}

}  // namespace

void apply_mask(std::span<float> logits, const TokenMask& allowed) {
  check(static_cast<size_t>(allowed.size()) == logits.size(), "sample", "token mask has ",
        allowed.size(), " entries for ", logits.size(), " logits");
  const auto& words = allowed.words();
  for (size_t w = 0; w < words.size(); ++w) {
    uint64_t bits = ~words[w];
    if (bits == 0) continue;
    const size_t base = w * 64;
    for (; bits != 0; bits &= bits - 1) {
      const size_t i = base + static_cast<size_t>(__builtin_ctzll(bits));
      if (i < logits.size()) logits[i] = kNegInf;
    }
  }
}

void apply_logit_bias(std::span<float> logits, std::span<const std::pair<int32_t, float>> bias) {
  for (const auto& [id, b] : bias) {
    check(id >= 0 && static_cast<size_t>(id) < logits.size(), "sample", "logit_bias: token id ", id,
          " is outside the vocabulary (", logits.size(), " tokens)");
    logits[static_cast<size_t>(id)] += b;
  }
}

void apply_penalties(std::span<float> logits, std::span<const std::pair<int32_t, int32_t>> counts,
                     float repeat, float frequency, float presence) {
  for (const auto& [id, count] : counts) {
    if (id < 0 || static_cast<size_t>(id) >= logits.size() || count <= 0) continue;
    float& l = logits[static_cast<size_t>(id)];
    if (l == kNegInf) continue;
    l = l > 0 ? l / repeat : l * repeat;
    l -= static_cast<float>(count) * frequency + presence;
  }
}

int32_t argmax(std::span<const float> logits) {
  // The kernels' SIMD scan (a vocabulary is 32K-256K logits, read every greedy step).
  return static_cast<int32_t>(kernels::cpu::argmax(logits.data(), logits.size()));
}

void make_candidates(std::span<const float> logits, Candidates& out) {
  out.items.clear();
  out.n_sorted = 0;
  for (size_t i = 0; i < logits.size(); ++i) {
    if (logits[i] > kNegInf) out.items.push_back({static_cast<int32_t>(i), logits[i], 0.0f});
  }
}

float max_of(const float* x, size_t n) {
  constexpr size_t kLanes = 8;  // independent lanes, so the compiler vectorizes the scan
  float lane[kLanes];
  std::fill(lane, lane + kLanes, kNegInf);
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (size_t j = 0; j < kLanes; ++j) lane[j] = lane[j] < x[i + j] ? x[i + j] : lane[j];
  }
  for (; i < n; ++i) lane[0] = lane[0] < x[i] ? x[i] : lane[0];
  float m = kNegInf;
  for (const float v : lane) m = m < v ? v : m;
  return m;
}

void make_top_candidates(std::span<const float> logits, int32_t k, Candidates& out) {
  if (k <= 0 || static_cast<size_t>(k) >= logits.size()) {
    make_candidates(logits, out);
    top_k(out, k);
    return;
  }
  // Min-heap of the k largest logits seen so far; its top is the threshold. Once the heap is full,
  // a block of logits none of which beats the threshold changes nothing and is skipped after one
  // max over it (8 lanes, which the compiler vectorizes; NaN never wins it, as it never passes
  // `>`): a sampler step with Ollama's defaults (bench_sample) over 131072 logits 0.27 -> 0.13 ms,
  // over 262144 0.51-0.83 -> 0.16-0.24.
  const size_t n = logits.size();
  std::vector<float> heap;
  heap.reserve(static_cast<size_t>(k));
  const auto greater = std::greater<float>();
  for (size_t i0 = 0; i0 < n; i0 += kMaxBlock) {
    const size_t i1 = std::min(n, i0 + kMaxBlock);
    if (heap.size() == static_cast<size_t>(k) && !(max_of(&logits[i0], i1 - i0) > heap.front())) {
      continue;
    }
    for (size_t i = i0; i < i1; ++i) {
      const float x = logits[i];
      if (!(x > kNegInf)) continue;
      if (heap.size() < static_cast<size_t>(k)) {
        heap.push_back(x);
        std::push_heap(heap.begin(), heap.end(), greater);
      } else if (x > heap.front()) {
        std::pop_heap(heap.begin(), heap.end(), greater);
        heap.back() = x;
        std::push_heap(heap.begin(), heap.end(), greater);
      }
    }
  }
  out.items.clear();
  out.n_sorted = 0;
  if (heap.empty()) return;
  const float threshold = heap.front();
  for (size_t i0 = 0; i0 < n; i0 += kMaxBlock) {
    const size_t i1 = std::min(n, i0 + kMaxBlock);
    if (max_of(&logits[i0], i1 - i0) < threshold) continue;
    for (size_t i = i0; i < i1; ++i) {
      if (logits[i] >= threshold) out.items.push_back({static_cast<int32_t>(i), logits[i], 0.0f});
    }
  }
  top_k(out, k);  // sorts; drops the extra ties at the threshold (higher ids)
}

void apply_temperature(Candidates& c, float temperature) {
  for (auto& item : c.items) item.logit /= temperature;
}

void top_k(Candidates& c, int32_t k) {
  if (k <= 0) return;
  sort_prefix(c, static_cast<size_t>(k));
  if (c.items.size() > static_cast<size_t>(k)) c.items.resize(static_cast<size_t>(k));
}

namespace {

// The largest logit of the candidates, and the smallest when kMin (never NaN: make_candidates
// keeps only logits above -inf), over 4 independent lanes: one max / min chain through 151936
// candidates was 4 cycles an element (top_k 0, top_p 0.9 at 151936 logits: 0.4 ms of a 3 ms
// sampler step).
template <bool kMin>
void logit_range(const std::vector<Candidate>& items, float* hi, float* lo) {
  float h[4] = {kNegInf, kNegInf, kNegInf, kNegInf};
  float l[4] = {INFINITY, INFINITY, INFINITY, INFINITY};
  size_t i = 0;
  for (; i + 4 <= items.size(); i += 4) {
    for (size_t j = 0; j < 4; ++j) {
      h[j] = std::max(h[j], items[i + j].logit);
      if constexpr (kMin) l[j] = std::min(l[j], items[i + j].logit);
    }
  }
  for (; i < items.size(); ++i) {
    h[0] = std::max(h[0], items[i].logit);
    if constexpr (kMin) l[0] = std::min(l[0], items[i].logit);
  }
  *hi = std::max(std::max(h[0], h[1]), std::max(h[2], h[3]));
  if constexpr (kMin) *lo = std::min(std::min(l[0], l[1]), std::min(l[2], l[3]));
}

}  // namespace

void softmax(Candidates& c) {
  if (c.items.empty()) return;
  float max_logit;
  logit_range<false>(c.items, &max_logit, nullptr);
  double sum = 0;
  for (auto& item : c.items) {
    item.prob = std::exp(item.logit - max_logit);
    sum += item.prob;
  }
  for (auto& item : c.items) item.prob = static_cast<float>(item.prob / sum);
}

void top_p(Candidates& c, float p) {
  if (p >= 1.0f || c.items.empty()) return;
  const size_t n = c.items.size();
  if (c.n_sorted < n && n > 4096) {
    // Many candidates (top-k off): bucket by logit, find the bucket where the mass reaches p,
    // and sort only that bucket. Keeps exactly the set a full sort would keep.
    constexpr int kBuckets = 4096;
    float hi, lo;
    logit_range<true>(c.items, &hi, &lo);
    const float scale = hi > lo ? (kBuckets - 1) / (hi - lo) : 0.0f;
    // Each candidate's bucket, computed once for both passes below.
    thread_local std::vector<uint16_t> bucket;
    bucket.resize(n);
    for (size_t i = 0; i < n; ++i) {
      bucket[i] = static_cast<uint16_t>(
          std::min(kBuckets - 1, static_cast<int>((hi - c.items[i].logit) * scale)));
    }
    std::vector<double> mass(kBuckets, 0.0);
    for (size_t i = 0; i < n; ++i) mass[bucket[i]] += c.items[i].prob;
    int cut = kBuckets - 1;
    double before_cut = 0;
    for (int b = 0; b < kBuckets; ++b) {
      if (before_cut + mass[static_cast<size_t>(b)] >= p) {
        cut = b;
        break;
      }
      before_cut += mass[static_cast<size_t>(b)];
    }
    // In place (the candidate buffer keeps its capacity from step to step).
    std::vector<Candidate> boundary;
    size_t out = 0;
    for (size_t i = 0; i < n; ++i) {
      const int b = bucket[i];
      if (b < cut) {
        c.items[out++] = c.items[i];
      } else if (b == cut) {
        boundary.push_back(c.items[i]);
      }
    }
    c.items.resize(out);
    std::sort(boundary.begin(), boundary.end(), before);
    double cum = before_cut;
    for (const auto& item : boundary) {
      c.items.push_back(item);
      cum += item.prob;
      if (cum >= p) break;
    }
    c.n_sorted = 0;
    return;
  }
  double cum = 0;
  size_t i = 0;
  for (size_t m = 64;; m *= 2) {
    sort_prefix(c, m);
    for (; i < c.n_sorted; ++i) {
      cum += c.items[i].prob;
      if (cum >= p) {
        c.items.resize(i + 1);
        c.n_sorted = i + 1;
        return;
      }
    }
    if (c.n_sorted == c.items.size()) return;  // rounding: the whole set is needed
  }
}

void min_p(Candidates& c, float p) {
  if (p <= 0.0f || c.items.empty()) return;
  float max_prob = 0;
  for (const auto& item : c.items) max_prob = std::max(max_prob, item.prob);
  const float threshold = p * max_prob;
  size_t kept_sorted = 0;
  size_t out = 0;
  for (size_t i = 0; i < c.items.size(); ++i) {
    if (c.items[i].prob >= threshold) {
      if (i < c.n_sorted) ++kept_sorted;
      c.items[out++] = c.items[i];
    }
  }
  c.items.resize(out);
  c.n_sorted = kept_sorted;
}

void typical_p(Candidates& c, float p) {
  if (p >= 1.0f || c.items.empty()) return;
  double total = 0;
  for (const auto& item : c.items) total += item.prob;
  double entropy = 0;
  for (const auto& item : c.items) {
    const double q = item.prob / total;
    if (q > 0) entropy -= q * std::log(q);
  }
  // Score: how far each token's surprise is from the expected surprise (the entropy).
  std::vector<std::pair<double, size_t>> order;
  order.reserve(c.items.size());
  for (size_t i = 0; i < c.items.size(); ++i) {
    const double q = c.items[i].prob / total;
    const double surprise = q > 0 ? -std::log(q) : std::numeric_limits<double>::infinity();
    order.emplace_back(std::fabs(surprise - entropy), i);
  }
  std::sort(order.begin(), order.end(), [&](const auto& a, const auto& b) {
    return a.first != b.first ? a.first < b.first : before(c.items[a.second], c.items[b.second]);
  });
  std::vector<Candidate> kept;
  double cum = 0;
  for (const auto& [score, i] : order) {
    kept.push_back(c.items[i]);
    cum += c.items[i].prob / total;
    if (cum >= p) break;
  }
  c.items = std::move(kept);
  c.n_sorted = 0;
}

int32_t draw(const Candidates& c, double u) {
  check(!c.items.empty(), "sample", "no token is allowed (every candidate was removed)");
  double total = 0;
  for (const auto& item : c.items) total += item.prob;
  const double target = u * total;
  double cum = 0;
  int32_t last_positive = c.items.front().id;
  for (const auto& item : c.items) {
    if (item.prob <= 0) continue;
    cum += item.prob;
    last_positive = item.id;
    if (target < cum) return item.id;
  }
  return last_positive;  // rounding at the very top of the range
}

}  // namespace runnel::sample
