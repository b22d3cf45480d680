// AVX-512 primitives (16 lanes) for the tiled flash-attention loop of attention_tiled.h, which
// describes the design and the bit-identity invariant: the K chunk transpose, V widening,
// register-blocked QK (4 rows × 4 vectors) and PV (4 rows × 4 vectors) blocks, QK straight from
// K rows transposed in registers for a decode step's few rows per KV head, QK by rows for
// head_dim >= 128 (16 accumulators of rows × positions, reduce16's fixed tree), and the per-row
// online softmax.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "base/thread_pool.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/attention_tiled.h"
#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/simd_avx512.h"

namespace runnel::kernels::cpu::avx512 {
namespace {

constexpr int kChunk = kTileChunk;
constexpr int kNv = kChunk / 16;
constexpr int kRb = kTileRb;  // QK: 4 × kNv accumulators, PV: 4 × 4

inline __mmask16 tail_mask(int n) {
  return n >= 16 ? 0xffff : static_cast<__mmask16>((1u << n) - 1);
}
inline __m512 load16(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
inline __m512 load16(const uint16_t* p, __mmask16 m) {
  return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
}
// Whole vectors: plain loads (a masked load, even with a constant full mask, ran prefill
// attention 1.7x slower here).
inline __m512 load16(const float* p) { return _mm512_loadu_ps(p); }
inline __m512 load16(const uint16_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

// 16 elements of a K/V row from element e (a multiple of 16). f32 and f16 rows: as load16 (with
// a mask for a ragged tail); q8_0 rows: q · d, exact in f32 (head_dim % 32 == 0: no tail).
template <class T>
inline __m512 load_row(const T* row, int e) {
  return load16(row + e);
}
template <class T>
inline __m512 load_row(const T* row, int e, __mmask16 m) {
  return load16(row + e, m);
}
// A q8_0 block's d to every lane (an 8-byte load at the block holds d and 6 quants).
inline __m512 q8_scale(const BlockQ8_0* b) {
  return _mm512_broadcastss_ps(_mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b))));
}
// Quants [h, h + 16) of block b times d.
inline __m512 q8_half(const BlockQ8_0* b, int h, __m512 d) {
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b->qs + h));
  return _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q)), d);
}
inline __m512 load_row(const BlockQ8_0* row, int e) {
  const BlockQ8_0* b = row + e / kQK;
  return q8_half(b, e % kQK, q8_scale(b));
}
inline __m512 load_row(const BlockQ8_0* row, int e, __mmask16) { return load_row(row, e); }

// In-register 16×16 transpose: r[i] lane e becomes r[e] lane i.
inline void transpose16(__m512 r[16]) {
  __m512 t[16], u[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  // u[4g + m], 128-bit lane k: element 4k + m of rows 4g..4g+3.
  for (int g = 0; g < 4; ++g) {
    u[4 * g + 0] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], 0x44);
    u[4 * g + 1] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], 0xee);
    u[4 * g + 2] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
    u[4 * g + 3] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xee);
  }
  // Per m, a 4×4 transpose of 128-bit lanes across u[m], u[4 + m], u[8 + m], u[12 + m].
  for (int m = 0; m < 4; ++m) {
    const __m512 v0 = _mm512_shuffle_f32x4(u[m], u[4 + m], 0x88);
    const __m512 v1 = _mm512_shuffle_f32x4(u[m], u[4 + m], 0xdd);
    const __m512 v2 = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0x88);
    const __m512 v3 = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0xdd);
    r[m] = _mm512_shuffle_f32x4(v0, v2, 0x88);
    r[4 + m] = _mm512_shuffle_f32x4(v1, v3, 0x88);
    r[8 + m] = _mm512_shuffle_f32x4(v0, v2, 0xdd);
    r[12 + m] = _mm512_shuffle_f32x4(v1, v3, 0xdd);
  }
}

// r[e] = element e0 + e of the f16 rows kr[0..15] as f32 (lane t: row t), as transpose16 gives
// after widening each row: the rows are transposed as 16-bit values, two to a vector, in four
// rounds of 8 shuffles (and 8 extracts), then widened. Exact: the same values move.
inline void transpose16_f16(const uint16_t* const* kr, int e0, __m512 r[16]) {
  // z[p]'s 128-bit lanes: elements 0-7 and 8-15 of row p, then of row p + 8.
  __m512i z[8], a[8], b[8], c[8];
  for (int p = 0; p < 8; ++p) {
    const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kr[p] + e0));
    const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kr[p + 8] + e0));
    z[p] = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
  }
  // a[2m] (rows 2m, 2m + 1): per lane, 32-bit unit u holds both rows' element u (lanes 0, 2) or
  // 8 + u (lanes 1, 3); a[2m + 1] the same for elements 4 + u and 12 + u.
  for (int m = 0; m < 4; ++m) {
    a[2 * m] = _mm512_unpacklo_epi16(z[2 * m], z[2 * m + 1]);
    a[2 * m + 1] = _mm512_unpackhi_epi16(z[2 * m], z[2 * m + 1]);
  }
  // b[4i + k] (rows 4i .. 4i + 3): 64-bit unit w holds the four rows' element 2k + w (+8).
  for (int i = 0; i < 2; ++i) {
    b[4 * i] = _mm512_unpacklo_epi32(a[4 * i], a[4 * i + 2]);
    b[4 * i + 1] = _mm512_unpackhi_epi32(a[4 * i], a[4 * i + 2]);
    b[4 * i + 2] = _mm512_unpacklo_epi32(a[4 * i + 1], a[4 * i + 3]);
    b[4 * i + 3] = _mm512_unpackhi_epi32(a[4 * i + 1], a[4 * i + 3]);
  }
  // c[u]'s lanes: element u of rows 0-7, element u + 8 of rows 0-7, then both of rows 8-15.
  for (int k = 0; k < 4; ++k) {
    c[2 * k] = _mm512_unpacklo_epi64(b[k], b[4 + k]);
    c[2 * k + 1] = _mm512_unpackhi_epi64(b[k], b[4 + k]);
  }
  for (int u = 0; u < 8; ++u) {
    const __m512i v = _mm512_shuffle_i64x2(c[u], c[u], _MM_SHUFFLE(3, 1, 2, 0));
    r[u] = _mm512_cvtph_ps(_mm512_castsi512_si256(v));
    r[u + 8] = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(v, 1));
  }
}

// kt[e * kChunk + j] = K[j][e] for j < c (zero for c <= j < 16·ceil(c/16)), e < dp.
template <class T>
void transpose_k(const T* const* krow, int c, int d, int dp, float* kt, const T* const* pf) {
  __m512 r[16];
  for (int j0 = 0; j0 < c; j0 += 16) {
    for (int e0 = 0; e0 < dp; e0 += 16) {
      const __mmask16 m = tail_mask(d - e0);
      for (int t = 0; t < 16; ++t) {
        if (pf != nullptr && j0 + t < c && e0 < d) prefetch_at(pf[j0 + t], e0);
        r[t] = j0 + t < c ? load_row(krow[j0 + t], e0, m) : _mm512_setzero_ps();
      }
      transpose16(r);
      for (int t = 0; t < 16; ++t) _mm512_storeu_ps(kt + (e0 + t) * kChunk + j0, r[t]);
    }
  }
}

// s[r][j] = scale · Σ_e q[r][e]·K[j][e] for RB rows and j < 16·⌈c/16⌉ (rows from c on count
// as zero): qk_block over transpose_k's kt, the same fma per e in order from 0 for each lane,
// without kt. Each 16 × 16 block of K is transposed in registers and used at once. For a decode
// step's few rows per KV head (one register block) a transposed block is read once, so writing
// kt (32 KiB a chunk at head_dim 128, two thirds of L1) and reading it back only cost stores,
// loads and the L1 room the K and V rows needed. bench_kernels --attention, decode over 128
// positions, 2 threads, KV GB/s of the old build / this one in alternating runs: 16/8 heads of
// 128 f16 26.8-27.2 -> 31.5-31.7, f32 48-49 -> 59-60, q8_0 12.3-12.6 -> 13.1-13.2; 32/8 heads of 64
// f16 20.2-20.5 -> 20.7-21.3, f32 39 -> 41-42, q8_0 9.5-9.8 -> 9.4-9.6 (AVX2: +12 to +32%).
// Two groups of 16 positions in flight (twice the fma chains) measured no better.
// A group of 16 valid positions with head_dim % 16 == 0 (every group but a chunk's ragged last
// one) takes qk_direct_full: the same fmas, without the per-row and per-element checks, which
// GCC 12 had kept in the unrolled loop (a compare and branch per fma, row pointers reloaded
// from the stack). bench_kernels --attention, f16 KV, decode over 4096 positions, best of
// alternating runs: 32/8 heads of 64 0.787 -> 0.739-0.751 ms (1 thread), 0.401-0.402 ->
// 0.383-0.386 ms (2 threads); 16/8 heads of 128 over 128 positions 0.033 -> 0.030-0.031 ms.
// f16 rows are transposed before widening (transpose16_f16: 40 shuffles a block where widening
// first took 64): 16/8 heads of 128, decode over 1000 positions (one thread) 0.269-0.279 ->
// 0.252-0.253 ms; 32/8 of 64 unchanged (four rows of fmas per block: not the shuffles' port).
// Two groups of 16 positions per pass (twice the chains) were 3-20% slower again.
template <int RB, bool kPf, class T>
__attribute__((always_inline)) inline void qk_direct_full(const float* const* q, const T* const* kr,
                                                          int d, const T* const* pf,
                                                          __m512 (&acc)[RB]) {
  for (int e0 = 0; e0 < d; e0 += 16) {
    __m512 r[16];
    if constexpr (std::is_same_v<T, uint16_t>) {
      if (kPf) {
#pragma GCC unroll 16
        for (int t = 0; t < 16; ++t) prefetch_at(pf[t], e0);
      }
      transpose16_f16(kr, e0, r);
    } else {
#pragma GCC unroll 16
      for (int t = 0; t < 16; ++t) {
        if (kPf) prefetch_at(pf[t], e0);
        r[t] = load_row(kr[t], e0);
      }
      transpose16(r);
    }
#pragma GCC unroll 16
    for (int t = 0; t < 16; ++t) {
#pragma GCC unroll 4
      for (int i = 0; i < RB; ++i) {
        acc[i] = _mm512_fmadd_ps(_mm512_set1_ps(q[i][e0 + t]), r[t], acc[i]);
      }
    }
  }
}
template <int RB, class T>
void qk_direct(const float* const* q, const T* const* krow, int c, int d, float scale, float* s,
               const T* const* pf) {
  const __m512 sc = _mm512_set1_ps(scale);
  __m512 r[16];
  for (int j0 = 0; j0 < c; j0 += 16) {
    __m512 acc[RB];
    for (int i = 0; i < RB; ++i) acc[i] = _mm512_setzero_ps();
    if (j0 + 16 <= c && d % 16 == 0) {
      if (pf != nullptr) {
        qk_direct_full<RB, true>(q, krow + j0, d, pf + j0, acc);
      } else {
        qk_direct_full<RB, false>(q, krow + j0, d, pf, acc);
      }
      for (int i = 0; i < RB; ++i) _mm512_storeu_ps(s + i * kChunk + j0, _mm512_mul_ps(acc[i], sc));
      continue;
    }
    for (int e0 = 0; e0 < d; e0 += 16) {
      const __mmask16 m = tail_mask(d - e0);
      for (int t = 0; t < 16; ++t) {
        if (pf != nullptr && j0 + t < c) prefetch_at(pf[j0 + t], e0);
        r[t] = j0 + t < c ? load_row(krow[j0 + t], e0, m) : _mm512_setzero_ps();
      }
      transpose16(r);
      const int ne = std::min(16, d - e0);
      for (int t = 0; t < ne; ++t) {
        for (int i = 0; i < RB; ++i) {
          acc[i] = _mm512_fmadd_ps(_mm512_set1_ps(q[i][e0 + t]), r[t], acc[i]);
        }
      }
    }
    for (int i = 0; i < RB; ++i) _mm512_storeu_ps(s + i * kChunk + j0, _mm512_mul_ps(acc[i], sc));
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
    for (int e0 = 0; e0 < dp; e0 += 16) {
      if (pf != nullptr && e0 < d) prefetch_at(pf[j], e0);
      _mm512_storeu_ps(vf + j * dp + e0, load_row(vrow[j], e0, tail_mask(d - e0)));
    }
  }
}

// s[r][16v + l] = scale · Σ_e q[r][e]·kt[e][16v + l], one fma per e in order from 0.
template <int RB, int NV>
void qk_block(const float* const* q, const float* kt, int d, float scale, float* s) {
  __m512 acc[RB][NV];
  for (int r = 0; r < RB; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();
  for (int e = 0; e < d; ++e) {
    __m512 k[NV];
    for (int v = 0; v < NV; ++v) k[v] = _mm512_loadu_ps(kt + e * kChunk + 16 * v);
    for (int r = 0; r < RB; ++r) {
      const __m512 qb = _mm512_set1_ps(q[r][e]);
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(qb, k[v], acc[r][v]);
    }
  }
  const __m512 sc = _mm512_set1_ps(scale);
  for (int r = 0; r < RB; ++r)
    for (int v = 0; v < NV; ++v)
      _mm512_storeu_ps(s + r * kChunk + 16 * v, _mm512_mul_ps(acc[r][v], sc));
}

// Reduces 16 accumulators at once: lane j of the result is the sum of the 16 lanes of acc[j],
// always in the same tree (lane i + lane i+8, then i + i+4, i + i+2, i + i+1) however many of
// the 16 are in use, so a score has the same bits in every tile shape. The network's input i is
// acc[4·(i % 4) + i / 4]: its output lane 4m + k comes from input 4k + m. The loops are unrolled
// by pragma so that GCC keeps acc in registers (without, it kept a copy on the stack).
__attribute__((always_inline)) inline __m512 reduce16(const __m512 (&acc)[16]) {
  __m512 b[8], c[4], d[2];
#pragma GCC unroll 8
  for (int m = 0; m < 8; ++m) {
    const __m512 x = acc[4 * ((2 * m) % 4) + m / 2], y = acc[4 * ((2 * m + 1) % 4) + m / 2];
    b[m] = _mm512_add_ps(_mm512_shuffle_f32x4(x, y, 0x44), _mm512_shuffle_f32x4(x, y, 0xee));
  }
#pragma GCC unroll 4
  for (int m = 0; m < 4; ++m) {
    c[m] = _mm512_add_ps(_mm512_shuffle_f32x4(b[2 * m], b[2 * m + 1], 0x88),
                         _mm512_shuffle_f32x4(b[2 * m], b[2 * m + 1], 0xdd));
  }
#pragma GCC unroll 2
  for (int m = 0; m < 2; ++m) {
    d[m] = _mm512_add_ps(_mm512_shuffle_ps(c[2 * m], c[2 * m + 1], 0x44),
                         _mm512_shuffle_ps(c[2 * m], c[2 * m + 1], 0xee));
  }
  return _mm512_add_ps(_mm512_shuffle_ps(d[0], d[1], 0x88), _mm512_shuffle_ps(d[0], d[1], 0xdd));
}

// K rows past the chunk's valid positions: their scores are computed (as 0) and never used.
template <class T>
const T* zero_row() {
  alignas(64) static const T zeros[kMaxHeadDim / kUnitElems<T>] = {};
  return zeros;
}

// acc[r·NP + p] += q[r][e0..] · K[p][e0..] lane by lane, for one vector of the head.
template <int RB, int NP, bool kTail, class T>
__attribute__((always_inline)) inline void qk_step(const float* const* q, const T* const* kr,
                                                   const T* const* pf, int e0, __mmask16 m,
                                                   __m512 (&acc)[16]) {
  __m512 qv[RB];
#pragma GCC unroll 4
  for (int r = 0; r < RB; ++r) {
    qv[r] = kTail ? _mm512_maskz_loadu_ps(m, q[r] + e0) : _mm512_loadu_ps(q[r] + e0);
  }
#pragma GCC unroll 16
  for (int p = 0; p < NP; ++p) {
    if (pf != nullptr) prefetch_at(pf[p], e0);
    const __m512 k = kTail ? load_row(kr[p], e0, m) : load_row(kr[p], e0);
#pragma GCC unroll 4
    for (int r = 0; r < RB; ++r) acc[r * NP + p] = _mm512_fmadd_ps(qv[r], k, acc[r * NP + p]);
  }
}

// qk_step over elements [e0, e0 + 32) of q8_0 rows (one block: d converted once), the same fmas
// in the same order as two qk_steps.
template <int RB, int NP>
__attribute__((always_inline)) inline void qk_step_q8(const float* const* q,
                                                      const BlockQ8_0* const* kr,
                                                      const BlockQ8_0* const* pf, int e0,
                                                      __m512 (&acc)[16]) {
  __m512 qv[2][RB];
#pragma GCC unroll 4
  for (int r = 0; r < RB; ++r) {
    qv[0][r] = _mm512_loadu_ps(q[r] + e0);
    qv[1][r] = _mm512_loadu_ps(q[r] + e0 + 16);
  }
#pragma GCC unroll 16
  for (int p = 0; p < NP; ++p) {
    if (pf != nullptr) prefetch_at(pf[p], e0);
    const BlockQ8_0* b = kr[p] + e0 / kQK;
    const __m512 d = q8_scale(b);
    const __m512 k0 = q8_half(b, 0, d), k1 = q8_half(b, 16, d);
#pragma GCC unroll 4
    for (int r = 0; r < RB; ++r) {
      acc[r * NP + p] = _mm512_fmadd_ps(qv[0][r], k0, acc[r * NP + p]);
      acc[r * NP + p] = _mm512_fmadd_ps(qv[1][r], k1, acc[r * NP + p]);
    }
  }
}

// s[r][j0 + p] = scale · score(q[r], K[j0 + p]) for RB rows × NP positions (RB·NP <= 16), where
// score(q, k) is 16 lanes of fma chains over the head's vectors in order (lane l: elements
// l, 16 + l, ...; lanes past d are zero), summed by reduce16's tree. K rows are read in place
// (T = uint16_t rows are widened as they are loaded); rows from c on count as zero. pf (or
// nullptr): the rows to prefetch, one per row of krow.
template <int RB, int NP, class T>
void qk_tile(const float* const* q, const T* const* krow, int j0, int c, int d, float scale,
             float* s, const T* const* pf) {
  static_assert(RB * NP <= 16 && 16 % NP == 0);
  __m512 acc[16];
#pragma GCC unroll 16
  for (int i = 0; i < 16; ++i) acc[i] = _mm512_setzero_ps();
  const T* kr[NP];
  for (int p = 0; p < NP; ++p) kr[p] = j0 + p < c ? krow[j0 + p] : zero_row<T>();
  const T* pr[NP];
  for (int p = 0; p < NP; ++p) pr[p] = pf != nullptr && j0 + p < c ? pf[j0 + p] : kr[p];
  const T* const* prp = pf != nullptr ? pr : nullptr;
  int e0 = 0;
  if constexpr (std::is_same_v<T, BlockQ8_0>) {
    for (; e0 < d; e0 += kQK) qk_step_q8<RB, NP>(q, kr, prp, e0, acc);
  } else {
    for (; e0 + 16 <= d; e0 += 16) qk_step<RB, NP, false>(q, kr, prp, e0, 0xffff, acc);
    if (e0 < d) qk_step<RB, NP, true>(q, kr, prp, e0, tail_mask(d - e0), acc);
  }
  // Score j = r·NP + p comes out in lane j.
  const __m512 sums = _mm512_mul_ps(reduce16(acc), _mm512_set1_ps(scale));
  if constexpr (NP == 16) {
    _mm512_storeu_ps(s + j0, sums);
  } else if constexpr (NP == 8) {
    const __m512d h = _mm512_castps_pd(sums);
    _mm256_storeu_pd(reinterpret_cast<double*>(s + j0), _mm512_extractf64x4_pd(h, 0));
    if (RB > 1) {
      _mm256_storeu_pd(reinterpret_cast<double*>(s + kChunk + j0), _mm512_extractf64x4_pd(h, 1));
    }
  } else {
    const __m128 l[4] = {_mm512_extractf32x4_ps(sums, 0), _mm512_extractf32x4_ps(sums, 1),
                         _mm512_extractf32x4_ps(sums, 2), _mm512_extractf32x4_ps(sums, 3)};
    for (int r = 0; r < RB; ++r) _mm_storeu_ps(s + r * kChunk + j0, l[r]);
  }
}

template <int RB, class T>
void qk_rows(const float* const* q, const T* const* krow, int c, int d, float scale, float* s,
             const T* const* pf) {
  constexpr int kNp = RB == 1 ? 16 : RB == 2 ? 8 : 4;
  for (int j0 = 0; j0 < c; j0 += kNp) qk_tile<RB, kNp>(q, krow, j0, c, d, scale, s, pf);
}
template <class T>
using QkRowsFn = void (*)(const float* const*, const T* const*, int, int, float, float*,
                          const T* const*);
template <class T>
constexpr QkRowsFn<T> kQkRows[kRb] = {qk_rows<1, T>, qk_rows<2, T>, qk_rows<3, T>, qk_rows<4, T>};

// acc[r] = acc[r]·alpha[r], then acc[r] = fma(p[r][j], v[j], acc[r]) for j < c in order, over DV
// vectors of 16 output lanes starting at element e0 of each V row vr[j] (acc starts at the slice;
// row stride dp). T = uint16_t rows (read in place) are widened as they are loaded. pf (or
// nullptr): the rows to prefetch, one per row of vr.
template <int RB, int DV, class T>
void pv_block(float* acc, int dp, const float* p, const float* alpha, const T* const* vr, int e0,
              int c, const T* const* pf) {
  __m512 o[RB][DV];
  for (int r = 0; r < RB; ++r) {
    const __m512 a = _mm512_set1_ps(alpha[r]);
    for (int v = 0; v < DV; ++v) o[r][v] = _mm512_mul_ps(_mm512_loadu_ps(acc + r * dp + 16 * v), a);
  }
  for (int j = 0; j < c; ++j) {
    __m512 x[DV];
    if (pf != nullptr)
      for (int v = 0; v < DV; ++v) prefetch_at(pf[j], e0 + 16 * v);
    if constexpr (std::is_same_v<T, BlockQ8_0>) {  // e0 on a block (DV is even): d once a block
      for (int v = 0; v + 1 < DV; v += 2) {
        const BlockQ8_0* b = vr[j] + (e0 + 16 * v) / kQK;
        const __m512 d = q8_scale(b);
        x[v] = q8_half(b, 0, d);
        x[v + 1] = q8_half(b, 16, d);
      }
      if (DV % 2 == 1) x[DV - 1] = load_row(vr[j], e0 + 16 * (DV - 1));
    } else {
      for (int v = 0; v < DV; ++v) x[v] = load_row(vr[j], e0 + 16 * v);
    }
    for (int r = 0; r < RB; ++r) {
      const __m512 pb = _mm512_set1_ps(p[r * kChunk + j]);
      for (int v = 0; v < DV; ++v) o[r][v] = _mm512_fmadd_ps(pb, x[v], o[r][v]);
    }
  }
  for (int r = 0; r < RB; ++r)
    for (int v = 0; v < DV; ++v) _mm512_storeu_ps(acc + r * dp + 16 * v, o[r][v]);
}

using QkFn = void (*)(const float* const*, const float*, int, float, float*);
template <class T>
using PvFn = void (*)(float*, int, const float*, const float*, const T* const*, int, int,
                      const T* const*);
// Indexed [rows - 1][vectors - 1].
constexpr QkFn kQk[kRb][kNv] = {
    {qk_block<1, 1>, qk_block<1, 2>, qk_block<1, 3>, qk_block<1, 4>},
    {qk_block<2, 1>, qk_block<2, 2>, qk_block<2, 3>, qk_block<2, 4>},
    {qk_block<3, 1>, qk_block<3, 2>, qk_block<3, 3>, qk_block<3, 4>},
    {qk_block<4, 1>, qk_block<4, 2>, qk_block<4, 3>, qk_block<4, 4>},
};
template <class T>
constexpr PvFn<T> kPv[kRb][4] = {
    {pv_block<1, 1, T>, pv_block<1, 2, T>, pv_block<1, 3, T>, pv_block<1, 4, T>},
    {pv_block<2, 1, T>, pv_block<2, 2, T>, pv_block<2, 3, T>, pv_block<2, 4, T>},
    {pv_block<3, 1, T>, pv_block<3, 2, T>, pv_block<3, 3, T>, pv_block<3, 4, T>},
    {pv_block<4, 1, T>, pv_block<4, 2, T>, pv_block<4, 3, T>, pv_block<4, 4, T>},
};

// One row's online-softmax step over its c_r (>= 1) scores of the chunk: scores become weights
// (zero from c_r up to 16·nv_pad), mx/sum are updated; returns the rescale of the running output.
// Only the row's own ceil(c_r/16) vectors enter max and sum, so the result does not depend on
// how many positions the rest of the tile needed in this chunk.
float softmax_row(float* s, int c_r, int nv_pad, float& mx, float& sum) {
  const int nv = (c_r + 15) / 16;
  const __mmask16 last = tail_mask(c_r - 16 * (nv - 1));
  __m512 vm = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  for (int v = 0; v < nv; ++v) {
    vm = _mm512_mask_max_ps(vm, v + 1 < nv ? 0xffff : last, vm, _mm512_loadu_ps(s + 16 * v));
  }
  const float m_new = std::max(mx, hmax16(vm));
  // exp16 clamps, so the first chunk (mx = -inf) gives a tiny alpha times acc = sum = 0.
  const float alpha = _mm512_cvtss_f32(exp16(_mm512_set1_ps(mx - m_new)));
  const __m512 mv = _mm512_set1_ps(m_new);
  __m512 sv = _mm512_setzero_ps();
  for (int v = 0; v < nv; ++v) {
    const __m512 e = _mm512_maskz_mov_ps(v + 1 < nv ? 0xffff : last,
                                         exp16(_mm512_sub_ps(_mm512_loadu_ps(s + 16 * v), mv)));
    _mm512_storeu_ps(s + 16 * v, e);
    sv = _mm512_add_ps(sv, e);
  }
  for (int v = nv; v < nv_pad; ++v) _mm512_storeu_ps(s + 16 * v, _mm512_setzero_ps());
  sum = sum * alpha + hsum16(sv);
  mx = m_new;
  return alpha;
}

// The primitives of the shared tiled loop (attention_tiled.h).
struct Vec {
  static constexpr int kLanes = 16;
  template <class T>
  static void transpose_k(const T* const* krow, int c, int d, int dp, float* kt,
                          const T* const* pf) {
    avx512::transpose_k(krow, c, d, dp, kt, pf);
  }
  template <class T>
  static void widen_v(const T* const* vrow, int c, int d, int dp, float* vf, const T* const* pf) {
    avx512::widen_v(vrow, c, d, dp, vf, pf);
  }
  template <class T>
  static void qk_rows(int n, const float* const* q, const T* const* krow, int c, int d, float scale,
                      float* s, const T* const* pf) {
    kQkRows<T>[n - 1](q, krow, c, d, scale, s, pf);
  }
  static void qk(int n, int nv, const float* const* q, const float* kt, int d, float scale,
                 float* s) {
    kQk[n - 1][nv - 1](q, kt, d, scale, s);
  }
  template <class T>
  static void qk_direct(int n, const float* const* q, const T* const* krow, int c, int d,
                        float scale, float* s, const T* const* pf) {
    kQkDirect<T>[n - 1](q, krow, c, d, scale, s, pf);
  }
  static float softmax_row(float* s, int c_r, int nv_pad, float& mx, float& sum) {
    return avx512::softmax_row(s, c_r, nv_pad, mx, sum);
  }
  template <class T>
  static void pv(int n, float* acc, int dp, const float* p, const float* alpha, const T* const* vr,
                 int c, const T* const* pf) {
    for (int v0 = 0; v0 < dp / 16; v0 += 4) {
      kPv<T>[n - 1][std::min(4, dp / 16 - v0) - 1](acc + 16 * v0, dp, p, alpha, vr, 16 * v0, c, pf);
    }
  }
  static void store_row(const float* acc, float inv_sum, int d, float* out) {
    const __m512 inv = _mm512_set1_ps(inv_sum);
    for (int e0 = 0; e0 < d; e0 += 16) {
      const __m512 o = _mm512_mul_ps(_mm512_loadu_ps(acc + e0), inv);
      if (e0 + 16 <= d) {
        _mm512_storeu_ps(out + e0, o);
      } else {
        _mm512_mask_storeu_ps(out + e0, tail_mask(d - e0), o);
      }
    }
  }
};

void run(const AttentionArgs& a, ThreadPool& pool) { attention_tiled<Vec>(a, pool); }
void run_rows(const AttentionArgs& a, ThreadPool& pool) { attention_tiled<Vec>(a, pool, 0); }

}  // namespace

void register_attention(KernelTable& t) {
  t.attention = run;
  t.attention_rows = run_rows;
}

}  // namespace runnel::kernels::cpu::avx512
