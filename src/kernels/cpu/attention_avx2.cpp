// AVX2 flash attention, tiled like attention_avx512.cpp (which explains the design), with 8 lanes:
// a task is (tile of consecutive queries × run of heads sharing one KV head), so each K/V row of a
// chunk is widened once and used by every (query, head) row of the tile. Scores use vertical FMAs
// over a transposed K chunk (lanes = KV positions); the running outputs are register-blocked over
// rows. Per (query, head) the arithmetic is the same whatever tile it lands in (tile of 1 =
// decode): see the invariant before attention_tile.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "base/thread_pool.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/simd_avx2.h"

namespace runnel::kernels::cpu::avx2 {
namespace {

constexpr int kChunk = 64;    // KV positions per step; steps start at multiples of kChunk
constexpr int kMaxRows = 64;  // (query, head) rows per tile
constexpr int kRb = 4;        // rows per register block (QK: 4 × 2 accumulators, PV: 4 × 2)
constexpr int kMaxDp = kMaxHeadDim;  // head_dim rounded up to 8 is at most this

inline __m256i lane_mask(int n) {  // lanes < n set (n in 0..8)
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), idx);
}
// n (>= 1) elements from p, zero above n: never reads past p + n.
inline __m256 load8(const float* p, int n) {
  return n >= 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, lane_mask(n));
}
inline __m256 load8(const uint16_t* p, int n) {
  if (n >= 8) return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  alignas(16) uint16_t t[8] = {};
  std::memcpy(t, p, static_cast<size_t>(n) * 2);
  return _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(t)));
}

inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline float hmax8(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// In-register 8×8 transpose: r[i] lane e becomes r[e] lane i.
inline void transpose8(__m256 r[8]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int g = 0; g < 2; ++g) {
    u[4 * g + 0] = _mm256_shuffle_ps(t[4 * g], t[4 * g + 2], 0x44);
    u[4 * g + 1] = _mm256_shuffle_ps(t[4 * g], t[4 * g + 2], 0xee);
    u[4 * g + 2] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
    u[4 * g + 3] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xee);
  }
  for (int m = 0; m < 4; ++m) {
    r[m] = _mm256_permute2f128_ps(u[m], u[4 + m], 0x20);
    r[4 + m] = _mm256_permute2f128_ps(u[m], u[4 + m], 0x31);
  }
}

// kt[e * kChunk + j] = K[j][e] for j < c (zero for c <= j < 8·ceil(c/8)), e < dp.
template <class T>
void transpose_k(const T* const* krow, int c, int d, int dp, float* kt) {
  __m256 r[8];
  for (int j0 = 0; j0 < c; j0 += 8) {
    for (int e0 = 0; e0 < dp; e0 += 8) {
      for (int t = 0; t < 8; ++t) {
        r[t] = j0 + t < c ? load8(krow[j0 + t] + e0, d - e0) : _mm256_setzero_ps();
      }
      transpose8(r);
      for (int t = 0; t < 8; ++t) _mm256_storeu_ps(kt + (e0 + t) * kChunk + j0, r[t]);
    }
  }
}

// vf[j * dp + e] = V[j][e] as f32 for j < c, zero for d <= e < dp.
template <class T>
void widen_v(const T* const* vrow, int c, int d, int dp, float* vf) {
  for (int j = 0; j < c; ++j) {
    for (int e0 = 0; e0 < dp; e0 += 8)
      _mm256_storeu_ps(vf + j * dp + e0, load8(vrow[j] + e0, d - e0));
  }
}

// s[r][8v + l] = scale · Σ_e q[r][e]·kt[e][8v + l] for NV vectors from v0, one fma per e in order
// from 0.
template <int RB, int NV>
void qk_block(const float* const* q, const float* kt, int d, float scale, int v0, float* s) {
  __m256 acc[RB][NV];
  for (int r = 0; r < RB; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_setzero_ps();
  for (int e = 0; e < d; ++e) {
    __m256 k[NV];
    for (int v = 0; v < NV; ++v) k[v] = _mm256_loadu_ps(kt + e * kChunk + 8 * (v0 + v));
    for (int r = 0; r < RB; ++r) {
      const __m256 qb = _mm256_broadcast_ss(q[r] + e);
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_fmadd_ps(qb, k[v], acc[r][v]);
    }
  }
  const __m256 sc = _mm256_set1_ps(scale);
  for (int r = 0; r < RB; ++r)
    for (int v = 0; v < NV; ++v)
      _mm256_storeu_ps(s + r * kChunk + 8 * (v0 + v), _mm256_mul_ps(acc[r][v], sc));
}

// acc[r] = acc[r]·alpha[r], then acc[r] = fma(p[r][j], v[j], acc[r]) for j < c in order, over DV
// vectors of 8 output lanes starting at element e0 of each V row vr[j] (acc starts at the slice;
// row stride dp).
template <int RB, int DV>
void pv_block(float* acc, int dp, const float* p, const float* alpha, const float* const* vr,
              int e0, int c) {
  __m256 o[RB][DV];
  for (int r = 0; r < RB; ++r) {
    const __m256 a = _mm256_set1_ps(alpha[r]);
    for (int v = 0; v < DV; ++v) o[r][v] = _mm256_mul_ps(_mm256_loadu_ps(acc + r * dp + 8 * v), a);
  }
  for (int j = 0; j < c; ++j) {
    __m256 x[DV];
    for (int v = 0; v < DV; ++v) x[v] = _mm256_loadu_ps(vr[j] + e0 + 8 * v);
    for (int r = 0; r < RB; ++r) {
      const __m256 pb = _mm256_broadcast_ss(p + r * kChunk + j);
      for (int v = 0; v < DV; ++v) o[r][v] = _mm256_fmadd_ps(pb, x[v], o[r][v]);
    }
  }
  for (int r = 0; r < RB; ++r)
    for (int v = 0; v < DV; ++v) _mm256_storeu_ps(acc + r * dp + 8 * v, o[r][v]);
}

using QkFn = void (*)(const float* const*, const float*, int, float, int, float*);
using PvFn = void (*)(float*, int, const float*, const float*, const float* const*, int, int);
// Indexed [rows - 1][vectors - 1].
constexpr QkFn kQk[kRb][2] = {
    {qk_block<1, 1>, qk_block<1, 2>},
    {qk_block<2, 1>, qk_block<2, 2>},
    {qk_block<3, 1>, qk_block<3, 2>},
    {qk_block<4, 1>, qk_block<4, 2>},
};
constexpr PvFn kPv[kRb][2] = {
    {pv_block<1, 1>, pv_block<1, 2>},
    {pv_block<2, 1>, pv_block<2, 2>},
    {pv_block<3, 1>, pv_block<3, 2>},
    {pv_block<4, 1>, pv_block<4, 2>},
};

// One row's online-softmax step over its c_r (>= 1) scores of the chunk: scores become weights
// (zero from c_r up to 8·nv_pad), mx/sum are updated; returns the rescale of the running output.
// Only the row's own ceil(c_r/8) vectors enter max and sum, so the result does not depend on how
// many positions the rest of the tile needed in this chunk.
float softmax_row(float* s, int c_r, int nv_pad, float& mx, float& sum) {
  const int nv = (c_r + 7) / 8;
  const __m256 ninf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  const __m256 last = _mm256_castsi256_ps(lane_mask(c_r - 8 * (nv - 1)));
  __m256 vm = ninf;
  for (int v = 0; v < nv; ++v) {
    __m256 x = _mm256_loadu_ps(s + 8 * v);
    if (v + 1 == nv) x = _mm256_blendv_ps(ninf, x, last);
    vm = _mm256_max_ps(vm, x);
  }
  const float m_new = std::max(mx, hmax8(vm));
  // exp8 clamps, so the first chunk (mx = -inf) gives a tiny alpha times acc = sum = 0.
  const float alpha = _mm256_cvtss_f32(exp8(_mm256_set1_ps(mx - m_new)));
  const __m256 mv = _mm256_set1_ps(m_new);
  __m256 sv = _mm256_setzero_ps();
  for (int v = 0; v < nv; ++v) {
    __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(s + 8 * v), mv));
    if (v + 1 == nv) e = _mm256_and_ps(e, last);
    _mm256_storeu_ps(s + 8 * v, e);
    sv = _mm256_add_ps(sv, e);
  }
  for (int v = nv; v < nv_pad; ++v) _mm256_storeu_ps(s + 8 * v, _mm256_setzero_ps());
  sum = sum * alpha + hsum8(sv);
  mx = m_new;
  return alpha;
}

// Scratch per thread: sized for the largest head_dim (too big for every caller's stack).
struct Scratch {
  alignas(64) float kt[kMaxDp * kChunk];
  alignas(64) float vf[kChunk * kMaxDp];
  alignas(64) float acc[kMaxRows * kMaxDp];
  alignas(64) float s[kMaxRows * kChunk];
  const float* vrow[kChunk];  // vrow[j] = vf + j * dp, set by attention_tile
};

// Invariant (bit-identity), as in attention_avx512.cpp: for row r = (query, head), chunks start at
// absolute positions 0, kChunk, ...; per chunk its scores are one fma chain over e (lanes
// independent), its max/exp/sum only read its own c_r positions (in vectors of 8 from the chunk's
// start), and its output lanes get acc·alpha then one fma per position of the chunk in order,
// where positions past c_r have weight exactly 0: fma(0, v, acc) == acc because acc is never -0.
// Rows of queries that see no position of a chunk skip it. So a row's bits depend only on its own
// query, n_kv and the data, not on the tile, the thread or n_q.
template <class T>
void attention_tile(const AttentionArgs& a, int i0, int i1, int h0, int h1, Scratch& sc) {
  const int d = a.head_dim, dp = (d + 7) / 8 * 8;
  const int kvh = h0 / (a.n_heads / a.n_kv_heads);
  const int nh = h1 - h0, nq = i1 - i0, nr = nq * nh;
  const float* qrow[kMaxRows];
  int valid[kMaxRows];  // per query of the tile: kv positions it sees (non-decreasing)
  for (int t = 0; t < nq; ++t) {
    valid[t] = std::min(a.n_kv, a.q_pos0 + i0 + t + 1);
    for (int h = 0; h < nh; ++h) {
      qrow[t * nh + h] = a.q + (static_cast<size_t>(i0 + t) * a.n_heads + h0 + h) * d;
    }
  }
  for (int j = 0; j < kChunk; ++j) sc.vrow[j] = sc.vf + j * dp;
  float mx[kMaxRows], sum[kMaxRows], alpha[kMaxRows];
  for (int r = 0; r < nr; ++r) {
    mx[r] = -std::numeric_limits<float>::infinity();
    sum[r] = 0;
    std::fill(sc.acc + r * dp, sc.acc + (r + 1) * dp, 0.0f);
  }
  const size_t row = static_cast<size_t>(a.n_kv_heads) * d;  // elements per position in a block
  const int n_max = valid[nq - 1];
  // The next chunk's K/V rows are prefetched into L2 while this chunk is computed (see
  // attention_avx512.cpp for why L2 and not L1).
  const auto rows_of = [&](int p0, int c, const T** kr, const T** vr) {
    for (int j = 0; j < c; ++j) {
      const int p = p0 + j;
      const size_t off =
          static_cast<size_t>(p % a.block_tokens) * row + static_cast<size_t>(kvh) * d;
      kr[j] = static_cast<const T*>(a.k_blocks[p / a.block_tokens]) + off;
      vr[j] = static_cast<const T*>(a.v_blocks[p / a.block_tokens]) + off;
    }
  };
  const auto prefetch = [&](const T* const* r, int c) {
    const int lines = (d * static_cast<int>(sizeof(T)) + 63) / 64;
    for (int j = 0; j < c; ++j) {
      const char* p = reinterpret_cast<const char*>(r[j]);
      for (int l = 0; l < lines; ++l) _mm_prefetch(p + 64 * l, _MM_HINT_T1);
    }
  };
  const T* krow[2][kChunk];
  const T* vrow[2][kChunk];
  rows_of(0, std::min(kChunk, n_max), krow[0], vrow[0]);
  for (int p0 = 0, cur = 0; p0 < n_max; p0 += kChunk, cur ^= 1) {
    const int c = std::min(kChunk, n_max - p0);
    const int c_next = std::min(kChunk, n_max - p0 - kChunk);
    if (p0 == 0) prefetch(vrow[cur], c);
    if (c_next > 0) {
      rows_of(p0 + kChunk, c_next, krow[cur ^ 1], vrow[cur ^ 1]);
      prefetch(krow[cur ^ 1], c_next);
      prefetch(vrow[cur ^ 1], c_next);
    }
    transpose_k(krow[cur], c, d, dp, sc.kt);
    int t0 = 0;  // first query of the tile that sees a position of this chunk
    while (valid[t0] <= p0) ++t0;
    const int r0 = t0 * nh;
    // V rows are widened (and zero-padded to dp) into contiguous scratch, except f32 rows of a
    // whole number of vectors that only one row block reads (decode). Same values, same bits.
    const float* const* vr = sc.vrow;
    if constexpr (std::is_same_v<T, float>) {
      if (d == dp && nr - r0 <= kRb) vr = vrow[cur];
    }
    if (vr == sc.vrow) widen_v(vrow[cur], c, d, dp, sc.vf);
    for (int rb = r0; rb < nr; rb += kRb) {
      const int n = std::min(kRb, nr - rb);
      // The block's last row belongs to its latest query: the most positions of the block.
      const int c_blk = std::min(c, valid[(rb + n - 1) / nh] - p0);
      const int nv = (c_blk + 7) / 8;
      for (int v0 = 0; v0 < nv; v0 += 2) {
        kQk[n - 1][std::min(2, nv - v0) - 1](qrow + rb, sc.kt, d, a.scale, v0, sc.s + rb * kChunk);
      }
      for (int r = rb; r < rb + n; ++r) {
        const int c_r = std::min(c, valid[r / nh] - p0);
        alpha[r] = softmax_row(sc.s + r * kChunk, c_r, nv, mx[r], sum[r]);
      }
      for (int v0 = 0; v0 < dp / 8; v0 += 2) {
        const int nvec = std::min(2, dp / 8 - v0);
        kPv[n - 1][nvec - 1](sc.acc + rb * dp + 8 * v0, dp, sc.s + rb * kChunk, alpha + rb, vr,
                             8 * v0, c_blk);
      }
    }
  }
  for (int r = 0; r < nr; ++r) {
    float* out = a.out + (static_cast<size_t>(i0 + r / nh) * a.n_heads + h0 + r % nh) * d;
    if (valid[r / nh] <= 0) {
      std::fill(out, out + d, 0.0f);
      continue;
    }
    const __m256 inv = _mm256_set1_ps(1.0f / sum[r]);
    for (int e0 = 0; e0 < d; e0 += 8) {
      const __m256 o = _mm256_mul_ps(_mm256_loadu_ps(sc.acc + r * dp + e0), inv);
      if (e0 + 8 <= d) {
        _mm256_storeu_ps(out + e0, o);
      } else {
        _mm256_maskstore_ps(out + e0, lane_mask(d - e0), o);
      }
    }
  }
}

void run(const AttentionArgs& a, ThreadPool& pool) {
  const int group = a.n_heads / a.n_kv_heads;
  // Heads per task and queries per tile as in attention_avx512.cpp; neither changes any bit.
  const int want = 4 * pool.n_threads();
  int hs = std::min(group, kMaxRows);
  while (hs > 1 && static_cast<long>(a.n_q) * a.n_kv_heads * ((group + hs - 1) / hs) < want) {
    hs = (hs + 1) / 2;
  }
  const int runs_per_group = (group + hs - 1) / hs;
  const int runs = a.n_kv_heads * runs_per_group;
  int tq = std::max(1, kMaxRows / hs);
  while (tq > 1 && static_cast<long>((a.n_q + tq - 1) / tq) * runs < want) tq = (tq + 1) / 2;
  const int n_tiles = (a.n_q + tq - 1) / tq;
  static thread_local Scratch scratch;
  pool.run(n_tiles * runs, [&](int task, int) {
    // Latest tiles first: they see the most positions, so the causal tail balances out.
    const int tile = n_tiles - 1 - task / runs;
    const int r = task % runs;
    const int g = r / runs_per_group;
    const int h0 = g * group + (r % runs_per_group) * hs;
    const int h1 = std::min(h0 + hs, (g + 1) * group);
    const int i0 = tile * tq, i1 = std::min(i0 + tq, a.n_q);
    if (a.kv_dtype == DType::kF16) {
      attention_tile<uint16_t>(a, i0, i1, h0, h1, scratch);
    } else {
      attention_tile<float>(a, i0, i1, h0, h1, scratch);
    }
  });
}

}  // namespace

void register_attention(KernelTable& t) { t.attention = run; }

}  // namespace runnel::kernels::cpu::avx2
