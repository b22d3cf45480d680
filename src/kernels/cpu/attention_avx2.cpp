// AVX2 primitives (8 lanes) for the tiled flash-attention loop of attention_tiled.h, which
// describes the design and the bit-identity invariant: the K chunk transpose (8×8 in registers),
// V widening, register-blocked QK and PV blocks (4 rows × 2 vectors, within 16 ymm registers),
// scores by rows for queries past position 1024 with head_dim >= 128 (AVX-512's chains and
// reduction tree, on pairs of ymm), and the per-row online softmax (positions in vectors of 8
// from the chunk's start).
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "base/thread_pool.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/attention_tiled.h"
#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/simd_avx2.h"

namespace runnel::kernels::cpu::avx2 {
namespace {

constexpr int kChunk = kTileChunk;
constexpr int kRb = kTileRb;  // QK: 4 × 2 accumulators, PV: 4 × 2

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

// n (>= 1) elements of a K/V row from element e (a multiple of 8), zero above n. q8_0 rows: q · d,
// exact in f32 (head_dim % 32 == 0: always 8 elements).
template <class T>
inline __m256 load_row(const T* row, int e, int n) {
  return load8(row + e, n);
}
inline __m256 load_row(const BlockQ8_0* row, int e, int) {
  const BlockQ8_0& b = row[e / kQK];
  const __m128i q = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(b.qs + e % kQK));
  const __m256 d = _mm256_cvtph_ps(_mm_set1_epi16(static_cast<int16_t>(b.d)));
  return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), d);
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
void transpose_k(const T* const* krow, int c, int d, int dp, float* kt, const T* const* pf) {
  __m256 r[8];
  for (int j0 = 0; j0 < c; j0 += 8) {
    for (int e0 = 0; e0 < dp; e0 += 8) {
      for (int t = 0; t < 8; ++t) {
        if (pf != nullptr && j0 + t < c && e0 < d) prefetch_at(pf[j0 + t], e0);
        r[t] = j0 + t < c ? load_row(krow[j0 + t], e0, d - e0) : _mm256_setzero_ps();
      }
      transpose8(r);
      for (int t = 0; t < 8; ++t) _mm256_storeu_ps(kt + (e0 + t) * kChunk + j0, r[t]);
    }
  }
}

// s[r][j] = scale · Σ_e q[r][e]·K[j][e] for RB rows and j < 8·⌈c/8⌉ (rows from c on count as
// zero): qk_block over transpose_k's kt without kt, each 8 × 8 block of K transposed in registers
// and used at once (AVX-512's qk_direct, which says why).
// A group of 8 valid positions with head_dim % 8 == 0 takes qk_direct_full: the same fmas
// without the per-row checks (as AVX-512's).
template <int RB, bool kPf, class T>
__attribute__((always_inline)) inline void qk_direct_full(const float* const* q, const T* const* kr,
                                                          int d, const T* const* pf,
                                                          __m256 (&acc)[RB]) {
  for (int e0 = 0; e0 < d; e0 += 8) {
    __m256 r[8];
#pragma GCC unroll 8
    for (int t = 0; t < 8; ++t) {
      if (kPf) prefetch_at(pf[t], e0);
      r[t] = load_row(kr[t], e0, 8);
    }
    transpose8(r);
#pragma GCC unroll 8
    for (int t = 0; t < 8; ++t) {
#pragma GCC unroll 4
      for (int i = 0; i < RB; ++i) {
        acc[i] = _mm256_fmadd_ps(_mm256_broadcast_ss(q[i] + e0 + t), r[t], acc[i]);
      }
    }
  }
}
template <int RB, class T>
void qk_direct(const float* const* q, const T* const* krow, int c, int d, float scale, float* s,
               const T* const* pf) {
  const __m256 sc = _mm256_set1_ps(scale);
  __m256 r[8];
  for (int j0 = 0; j0 < c; j0 += 8) {
    __m256 acc[RB];
    for (int i = 0; i < RB; ++i) acc[i] = _mm256_setzero_ps();
    if (j0 + 8 <= c && d % 8 == 0) {
      if (pf != nullptr) {
        qk_direct_full<RB, true>(q, krow + j0, d, pf + j0, acc);
      } else {
        qk_direct_full<RB, false>(q, krow + j0, d, pf, acc);
      }
      for (int i = 0; i < RB; ++i) _mm256_storeu_ps(s + i * kChunk + j0, _mm256_mul_ps(acc[i], sc));
      continue;
    }
    for (int e0 = 0; e0 < d; e0 += 8) {
      for (int t = 0; t < 8; ++t) {
        if (pf != nullptr && j0 + t < c) prefetch_at(pf[j0 + t], e0);
        r[t] = j0 + t < c ? load_row(krow[j0 + t], e0, d - e0) : _mm256_setzero_ps();
      }
      transpose8(r);
      const int ne = std::min(8, d - e0);
      for (int t = 0; t < ne; ++t) {
        for (int i = 0; i < RB; ++i) {
          acc[i] = _mm256_fmadd_ps(_mm256_broadcast_ss(q[i] + e0 + t), r[t], acc[i]);
        }
      }
    }
    for (int i = 0; i < RB; ++i) _mm256_storeu_ps(s + i * kChunk + j0, _mm256_mul_ps(acc[i], sc));
  }
}
template <class T>
using QkDirectFn = void (*)(const float* const*, const T* const*, int, int, float, float*,
                            const T* const*);
template <class T>
constexpr QkDirectFn<T> kQkDirect[kRb] = {qk_direct<1, T>, qk_direct<2, T>, qk_direct<3, T>,
                                          qk_direct<4, T>};

// vf[j * dp + e] = V[j][e] as f32 for j < c, zero for d <= e < dp.
template <class T>
void widen_v(const T* const* vrow, int c, int d, int dp, float* vf, const T* const* pf) {
  for (int j = 0; j < c; ++j) {
    for (int e0 = 0; e0 < dp; e0 += 8) {
      if (pf != nullptr && e0 < d) prefetch_at(pf[j], e0);
      _mm256_storeu_ps(vf + j * dp + e0, load_row(vrow[j], e0, d - e0));
    }
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

// Scores by rows (attention_tiled.h): the arithmetic of AVX-512's qk_rows on 8-lane vectors. A
// score is 16 fma chains over the head (chain l: elements l, 16 + l, ...; lanes past d are zero),
// kept as two ymm (chains 0-7, 8-15), then summed in reduce16's tree: chain l + l+8, then l + l+4,
// l + l+2, l + l+1. K rows are read in place; f16 rows are widened as they are loaded.

// K rows past the chunk's valid positions: their scores are computed (as 0) and never stored.
template <class T>
const T* zero_row() {
  alignas(32) static const T zeros[kMaxHeadDim / kUnitElems<T>] = {};
  return zeros;
}

// n elements from p as 8 lanes, zero above n (none read when n <= 0).
template <class T>
inline __m256 load_upto8(const T* p, int n) {
  return n <= 0 ? _mm256_setzero_ps() : load8(p, n);
}
template <class T>
inline __m256 load_row_upto8(const T* row, int e, int n) {
  return n <= 0 ? _mm256_setzero_ps() : load_row(row, e, n);
}

// Scores i < N (acc[2i], acc[2i + 1]: chains 0-7 and 8-15) summed in reduce16's tree, score i in
// lane i. Slot k of the network holds score (k % 2)·4 + k / 2: its outputs then land in order.
template <int N>
__attribute__((always_inline)) inline __m256 reduce_scores(const __m256 (&acc)[2 * N]) {
  __m256 s[8];
#pragma GCC unroll 8
  for (int k = 0; k < 8; ++k) {  // chain l + chain l+8
    const int i = (k % 2) * 4 + k / 2;
    s[k] = i < N ? _mm256_add_ps(acc[2 * i], acc[2 * i + 1]) : _mm256_setzero_ps();
  }
  __m256 u[4];  // l + l+4: 128-bit half h of u[m] belongs to slot 2m + h
#pragma GCC unroll 4
  for (int m = 0; m < 4; ++m) {
    u[m] = _mm256_add_ps(_mm256_permute2f128_ps(s[2 * m], s[2 * m + 1], 0x20),
                         _mm256_permute2f128_ps(s[2 * m], s[2 * m + 1], 0x31));
  }
  __m256 w[2];  // l + l+2
#pragma GCC unroll 2
  for (int m = 0; m < 2; ++m) {
    w[m] = _mm256_add_ps(_mm256_shuffle_ps(u[2 * m], u[2 * m + 1], 0x44),
                         _mm256_shuffle_ps(u[2 * m], u[2 * m + 1], 0xee));
  }
  // l + l+1: lanes 0-3 are slots 0, 2, 4, 6 and lanes 4-7 slots 1, 3, 5, 7, i.e. scores 0..7.
  return _mm256_add_ps(_mm256_shuffle_ps(w[0], w[1], 0x88), _mm256_shuffle_ps(w[0], w[1], 0xdd));
}

// acc of score r·NP + p += q[r][e0..e0+16) · K[p][e0..e0+16), chain by chain; with kTail, lanes
// from d on are zero (as AVX-512's masked loads make them).
template <int RB, int NP, bool kTail, class T>
__attribute__((always_inline)) inline void qk_step(const float* const* q, const T* const* kr,
                                                   const T* const* pf, int e0, int d,
                                                   __m256 (&acc)[2 * RB * NP]) {
#pragma GCC unroll 2
  for (int h = 0; h < 2; ++h) {
    const int e = e0 + 8 * h;
    __m256 qv[RB];
#pragma GCC unroll 4
    for (int r = 0; r < RB; ++r)
      qv[r] = kTail ? load_upto8(q[r] + e, d - e) : _mm256_loadu_ps(q[r] + e);
#pragma GCC unroll 8
    for (int p = 0; p < NP; ++p) {
      if (pf != nullptr && h == 0) prefetch_at(pf[p], e0);
      const __m256 k = kTail ? load_row_upto8(kr[p], e, d - e) : load_row(kr[p], e, 8);
#pragma GCC unroll 4
      for (int r = 0; r < RB; ++r) {
        acc[2 * (r * NP + p) + h] = _mm256_fmadd_ps(qv[r], k, acc[2 * (r * NP + p) + h]);
      }
    }
  }
}

// s[r][j0 + p] = scale · score(q[r], K[j0 + p]) for RB rows × NP positions (RB·NP <= 8: two
// accumulators a score within 16 ymm), stored for positions below c only. pf (or nullptr): the
// rows to prefetch, one per row of krow.
template <int RB, int NP, class T>
void qk_tile(const float* const* q, const T* const* krow, int j0, int c, int d, float scale,
             float* s, const T* const* pf) {
  static_assert(RB * NP <= 8);
  __m256 acc[2 * RB * NP];
#pragma GCC unroll 16
  for (int i = 0; i < 2 * RB * NP; ++i) acc[i] = _mm256_setzero_ps();
  const T* kr[NP];
  for (int p = 0; p < NP; ++p) kr[p] = j0 + p < c ? krow[j0 + p] : zero_row<T>();
  const T* pr[NP];
  for (int p = 0; p < NP; ++p) pr[p] = pf != nullptr && j0 + p < c ? pf[j0 + p] : kr[p];
  const T* const* prp = pf != nullptr ? pr : nullptr;
  int e0 = 0;
  for (; e0 + 16 <= d; e0 += 16) qk_step<RB, NP, false>(q, kr, prp, e0, d, acc);
  if (e0 < d) qk_step<RB, NP, true>(q, kr, prp, e0, d, acc);
  alignas(32) float sums[8];
  _mm256_store_ps(sums, _mm256_mul_ps(reduce_scores<RB * NP>(acc), _mm256_set1_ps(scale)));
  const int np = std::min(NP, c - j0);
  for (int r = 0; r < RB; ++r)
    for (int p = 0; p < np; ++p) s[r * kChunk + j0 + p] = sums[r * NP + p];
}

template <int RB, class T>
void qk_rows(const float* const* q, const T* const* krow, int c, int d, float scale, float* s,
             const T* const* pf) {
  constexpr int kNp = RB == 1 ? 6 : RB == 2 ? 3 : RB == 3 ? 2 : 1;
  for (int j0 = 0; j0 < c; j0 += kNp) qk_tile<RB, kNp>(q, krow, j0, c, d, scale, s, pf);
}
template <class T>
using QkRowsFn = void (*)(const float* const*, const T* const*, int, int, float, float*,
                          const T* const*);
template <class T>
constexpr QkRowsFn<T> kQkRows[kRb] = {qk_rows<1, T>, qk_rows<2, T>, qk_rows<3, T>, qk_rows<4, T>};

// acc[r] = acc[r]·alpha[r], then acc[r] = fma(p[r][j], v[j], acc[r]) for j < c in order, over DV
// vectors of 8 output lanes starting at element e0 of each V row vr[j] (acc starts at the slice;
// row stride dp). T = uint16_t rows (read in place) are widened as they are loaded. pf (or
// nullptr): the rows to prefetch, one per row of vr.
template <int RB, int DV, class T>
void pv_block(float* acc, int dp, const float* p, const float* alpha, const T* const* vr, int e0,
              int c, const T* const* pf) {
  __m256 o[RB][DV];
  for (int r = 0; r < RB; ++r) {
    const __m256 a = _mm256_set1_ps(alpha[r]);
    for (int v = 0; v < DV; ++v) o[r][v] = _mm256_mul_ps(_mm256_loadu_ps(acc + r * dp + 8 * v), a);
  }
  for (int j = 0; j < c; ++j) {
    __m256 x[DV];
    if (pf != nullptr)
      for (int v = 0; v < DV; ++v) prefetch_at(pf[j], e0 + 8 * v);
    for (int v = 0; v < DV; ++v) x[v] = load_row(vr[j], e0 + 8 * v, 8);
    for (int r = 0; r < RB; ++r) {
      const __m256 pb = _mm256_broadcast_ss(p + r * kChunk + j);
      for (int v = 0; v < DV; ++v) o[r][v] = _mm256_fmadd_ps(pb, x[v], o[r][v]);
    }
  }
  for (int r = 0; r < RB; ++r)
    for (int v = 0; v < DV; ++v) _mm256_storeu_ps(acc + r * dp + 8 * v, o[r][v]);
}

using QkFn = void (*)(const float* const*, const float*, int, float, int, float*);
template <class T>
using PvFn = void (*)(float*, int, const float*, const float*, const T* const*, int, int,
                      const T* const*);
// Indexed [rows - 1][vectors - 1].
constexpr QkFn kQk[kRb][2] = {
    {qk_block<1, 1>, qk_block<1, 2>},
    {qk_block<2, 1>, qk_block<2, 2>},
    {qk_block<3, 1>, qk_block<3, 2>},
    {qk_block<4, 1>, qk_block<4, 2>},
};
template <class T>
constexpr PvFn<T> kPv[kRb][2] = {
    {pv_block<1, 1, T>, pv_block<1, 2, T>},
    {pv_block<2, 1, T>, pv_block<2, 2, T>},
    {pv_block<3, 1, T>, pv_block<3, 2, T>},
    {pv_block<4, 1, T>, pv_block<4, 2, T>},
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

// The primitives of the shared tiled loop (attention_tiled.h).
struct Vec {
  static constexpr int kLanes = 8;
  template <class T>
  static void transpose_k(const T* const* krow, int c, int d, int dp, float* kt,
                          const T* const* pf) {
    avx2::transpose_k(krow, c, d, dp, kt, pf);
  }
  template <class T>
  static void widen_v(const T* const* vrow, int c, int d, int dp, float* vf, const T* const* pf) {
    avx2::widen_v(vrow, c, d, dp, vf, pf);
  }
  template <class T>
  static void qk_rows(int n, const float* const* q, const T* const* krow, int c, int d, float scale,
                      float* s, const T* const* pf) {
    kQkRows<T>[n - 1](q, krow, c, d, scale, s, pf);
  }
  static void qk(int n, int nv, const float* const* q, const float* kt, int d, float scale,
                 float* s) {
    for (int v0 = 0; v0 < nv; v0 += 2) kQk[n - 1][std::min(2, nv - v0) - 1](q, kt, d, scale, v0, s);
  }
  template <class T>
  static void qk_direct(int n, const float* const* q, const T* const* krow, int c, int d,
                        float scale, float* s, const T* const* pf) {
    kQkDirect<T>[n - 1](q, krow, c, d, scale, s, pf);
  }
  static float softmax_row(float* s, int c_r, int nv_pad, float& mx, float& sum) {
    return avx2::softmax_row(s, c_r, nv_pad, mx, sum);
  }
  template <class T>
  static void pv(int n, float* acc, int dp, const float* p, const float* alpha, const T* const* vr,
                 int c, const T* const* pf) {
    for (int v0 = 0; v0 < dp / 8; v0 += 2) {
      kPv<T>[n - 1][std::min(2, dp / 8 - v0) - 1](acc + 8 * v0, dp, p, alpha, vr, 8 * v0, c, pf);
    }
  }
  static void store_row(const float* acc, float inv_sum, int d, float* out) {
    const __m256 inv = _mm256_set1_ps(inv_sum);
    for (int e0 = 0; e0 < d; e0 += 8) {
      const __m256 o = _mm256_mul_ps(_mm256_loadu_ps(acc + e0), inv);
      if (e0 + 8 <= d) {
        _mm256_storeu_ps(out + e0, o);
      } else {
        _mm256_maskstore_ps(out + e0, lane_mask(d - e0), o);
      }
    }
  }
};

void run(const AttentionArgs& a, ThreadPool& pool) { attention_tiled<Vec>(a, pool); }

}  // namespace

void register_attention(KernelTable& t) { t.attention = run; }

}  // namespace runnel::kernels::cpu::avx2
