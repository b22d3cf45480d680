// The flash-attention loop of the scalar reference (attention.cpp; the AVX2 and AVX-512 variants
// have their own tiled loops), over primitives (Ops) that a variant could supply with its own
// ISA's flags.
// Everything here has internal linkage: copies compiled for different ISAs can never be mixed.
//
// Work split: a task is (query, run of up to kHeadsPerTask query heads that share one KV head), so
// each K/V row is loaded once into L1 and used by every head of the run. Per task: KV positions are
// visited kChunk at a time: scores for the chunk, one rescale of the running output, then the
// weighted V rows. Ops supplies dot (q·k), axpy (acc += p·v), scale and exp_sub_sum
// (s[j] = exp(s[j] - m), returning Σ s[j]). Per (query, head) the order of operations is fixed, so
// results do not depend on the thread count or on how heads are grouped into tasks.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "base/thread_pool.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/attention_rows.h"

namespace runnel::kernels::cpu {
namespace {

constexpr int kAttnChunk = 64;
constexpr int kHeadsPerTask = 8;

template <class Ops, class T>
void attention_task(const AttentionArgs& a, int qi, int h0, int h1) {
  const int d = a.head_dim;
  const int group = a.n_heads / a.n_kv_heads;
  const int kvh = h0 / group;
  const int nh = h1 - h0;
  const int n_valid = std::min(a.n_kv, a.q_pos0 + qi + 1);
  float* out = a.out + (static_cast<size_t>(qi) * a.n_heads + h0) * d;
  const float* q = a.q + (static_cast<size_t>(qi) * a.n_heads + h0) * d;
  if (n_valid <= 0) {
    std::fill(out, out + static_cast<size_t>(nh) * d, 0.0f);
    return;
  }
  // Running outputs live in a 64-byte-aligned stack buffer, not in `out`: each is loaded and
  // stored once per KV position, and unaligned full-width stores that split cache lines defeat
  // store-to-load forwarding (AVX-512 attention ran 8x slower accumulating into `out`).
  alignas(64) float acc[kHeadsPerTask][kMaxHeadDim];
  for (int r = 0; r < nh; ++r) std::fill(acc[r], acc[r] + d, 0.0f);
  alignas(64) float s[kHeadsPerTask][kAttnChunk];
  float mx[kHeadsPerTask], sum[kHeadsPerTask];
  for (int r = 0; r < nh; ++r) {
    mx[r] = -std::numeric_limits<float>::infinity();
    sum[r] = 0;
  }
  const size_t row = static_cast<size_t>(a.n_kv_heads) * d;  // elements per position in a block
  const T* krow[kAttnChunk];
  const T* vrow[kAttnChunk];
  for (int p0 = 0; p0 < n_valid; p0 += kAttnChunk) {
    const int c = std::min(kAttnChunk, n_valid - p0);
    for (int j = 0; j < c; ++j) {
      const int p = p0 + j;
      const size_t off =
          (static_cast<size_t>(p % a.block_tokens) * row + static_cast<size_t>(kvh) * d) /
          kUnitElems<T>;
      krow[j] = static_cast<const T*>(a.k_blocks[p / a.block_tokens]) + off;
      vrow[j] = static_cast<const T*>(a.v_blocks[p / a.block_tokens]) + off;
    }
    for (int j = 0; j < c; ++j) {
      for (int r = 0; r < nh; ++r) s[r][j] = Ops::dot(q + r * d, krow[j], d) * a.scale;
    }
    for (int r = 0; r < nh; ++r) {
      float m_new = mx[r];
      for (int j = 0; j < c; ++j) m_new = std::max(m_new, s[r][j]);
      const float alpha = std::exp(mx[r] - m_new);  // 0 on the first chunk (exp(-inf))
      if (alpha != 1.0f) {
        Ops::scale(acc[r], alpha, d);
        sum[r] *= alpha;
      }
      sum[r] += Ops::exp_sub_sum(s[r], c, m_new);
      mx[r] = m_new;
    }
    for (int j = 0; j < c; ++j) {
      for (int r = 0; r < nh; ++r) Ops::axpy(acc[r], s[r][j], vrow[j], d);
    }
  }
  for (int r = 0; r < nh; ++r) {
    Ops::scale(acc[r], 1.0f / sum[r], d);
    std::copy(acc[r], acc[r] + d, out + r * d);
  }
}

template <class Ops>
void attention_impl(const AttentionArgs& a, ThreadPool& pool) {
  const int group = a.n_heads / a.n_kv_heads;
  // Heads per task: the whole group when there is enough parallelism, fewer otherwise.
  int hs = std::min(group, kHeadsPerTask);
  const int want = 4 * pool.n_threads();
  while (hs > 1 && static_cast<long>(a.n_q) * a.n_kv_heads * ((group + hs - 1) / hs) < want) {
    hs = (hs + 1) / 2;
  }
  const int runs_per_group = (group + hs - 1) / hs;
  const int runs_per_query = a.n_kv_heads * runs_per_group;
  pool.run(a.n_q * runs_per_query, [&](int task, int) {
    const int qi = task / runs_per_query;
    const int r = task % runs_per_query;
    const int g = r / runs_per_group;
    const int h0 = g * group + (r % runs_per_group) * hs;
    const int h1 = std::min(h0 + hs, (g + 1) * group);
    with_kv_type(a.kv_dtype, [&]<class T>() { attention_task<Ops, T>(a, qi, h0, h1); });
  });
}

}  // namespace
}  // namespace runnel::kernels::cpu
