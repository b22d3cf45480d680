// AVX-512 flash attention, tiled: a task is (tile of consecutive queries × run of heads sharing one
// KV head), so each K/V row of a chunk is widened once and used by every (query, head) row of the
// tile. Scores use vertical FMAs over a transposed K chunk (lanes = KV positions); the running
// outputs are register-blocked over rows. Per (query, head) the arithmetic is the same whatever
// tile it lands in (tile of 1 = decode): see the invariant before attention_tile.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "base/thread_pool.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/simd_avx512.h"

namespace runnel::kernels::cpu::avx512 {
namespace {

constexpr int kChunk = 64;  // KV positions per step; steps start at multiples of kChunk
constexpr int kNv = kChunk / 16;
constexpr int kMaxRows = 64;  // (query, head) rows per tile
constexpr int kRb = 4;        // rows per register block (QK: 4 × kNv accumulators, PV: 4 × 4)
constexpr int kMaxDp = kMaxHeadDim;  // head_dim rounded up to 16 is at most this

inline __mmask16 tail_mask(int n) {
  return n >= 16 ? 0xffff : static_cast<__mmask16>((1u << n) - 1);
}
inline __m512 load16(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
inline __m512 load16(const uint16_t* p, __mmask16 m) {
  return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
}

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

// kt[e * kChunk + j] = K[j][e] for j < c (zero for c <= j < 16·ceil(c/16)), e < dp.
template <class T>
void transpose_k(const T* const* krow, int c, int d, int dp, float* kt) {
  __m512 r[16];
  for (int j0 = 0; j0 < c; j0 += 16) {
    for (int e0 = 0; e0 < dp; e0 += 16) {
      const __mmask16 m = tail_mask(d - e0);
      for (int t = 0; t < 16; ++t) {
        r[t] = j0 + t < c ? load16(krow[j0 + t] + e0, m) : _mm512_setzero_ps();
      }
      transpose16(r);
      for (int t = 0; t < 16; ++t) _mm512_storeu_ps(kt + (e0 + t) * kChunk + j0, r[t]);
    }
  }
}

// vf[j * dp + e] = V[j][e] as f32 for j < c, zero for d <= e < dp.
template <class T>
void widen_v(const T* const* vrow, int c, int d, int dp, float* vf) {
  for (int j = 0; j < c; ++j) {
    for (int e0 = 0; e0 < dp; e0 += 16) {
      _mm512_storeu_ps(vf + j * dp + e0, load16(vrow[j] + e0, tail_mask(d - e0)));
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

// acc[r] = acc[r]·alpha[r], then acc[r] = fma(p[r][j], v[j], acc[r]) for j < c in order, over DV
// vectors of 16 output lanes starting at element e0 of each V row vr[j] (acc starts at the slice;
// row stride dp).
template <int RB, int DV>
void pv_block(float* acc, int dp, const float* p, const float* alpha, const float* const* vr,
              int e0, int c) {
  __m512 o[RB][DV];
  for (int r = 0; r < RB; ++r) {
    const __m512 a = _mm512_set1_ps(alpha[r]);
    for (int v = 0; v < DV; ++v) o[r][v] = _mm512_mul_ps(_mm512_loadu_ps(acc + r * dp + 16 * v), a);
  }
  for (int j = 0; j < c; ++j) {
    __m512 x[DV];
    for (int v = 0; v < DV; ++v) x[v] = _mm512_loadu_ps(vr[j] + e0 + 16 * v);
    for (int r = 0; r < RB; ++r) {
      const __m512 pb = _mm512_set1_ps(p[r * kChunk + j]);
      for (int v = 0; v < DV; ++v) o[r][v] = _mm512_fmadd_ps(pb, x[v], o[r][v]);
    }
  }
  for (int r = 0; r < RB; ++r)
    for (int v = 0; v < DV; ++v) _mm512_storeu_ps(acc + r * dp + 16 * v, o[r][v]);
}

using QkFn = void (*)(const float* const*, const float*, int, float, float*);
using PvFn = void (*)(float*, int, const float*, const float*, const float* const*, int, int);
// Indexed [rows - 1][vectors - 1].
constexpr QkFn kQk[kRb][kNv] = {
    {qk_block<1, 1>, qk_block<1, 2>, qk_block<1, 3>, qk_block<1, 4>},
    {qk_block<2, 1>, qk_block<2, 2>, qk_block<2, 3>, qk_block<2, 4>},
    {qk_block<3, 1>, qk_block<3, 2>, qk_block<3, 3>, qk_block<3, 4>},
    {qk_block<4, 1>, qk_block<4, 2>, qk_block<4, 3>, qk_block<4, 4>},
};
constexpr PvFn kPv[kRb][4] = {
    {pv_block<1, 1>, pv_block<1, 2>, pv_block<1, 3>, pv_block<1, 4>},
    {pv_block<2, 1>, pv_block<2, 2>, pv_block<2, 3>, pv_block<2, 4>},
    {pv_block<3, 1>, pv_block<3, 2>, pv_block<3, 3>, pv_block<3, 4>},
    {pv_block<4, 1>, pv_block<4, 2>, pv_block<4, 3>, pv_block<4, 4>},
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

// Scratch per thread: sized for the largest head_dim (too big for every caller's stack).
struct Scratch {
  alignas(64) float kt[kMaxDp * kChunk];
  alignas(64) float vf[kChunk * kMaxDp];
  alignas(64) float acc[kMaxRows * kMaxDp];
  alignas(64) float s[kMaxRows * kChunk];
  const float* vrow[kChunk];  // vrow[j] = vf + j * dp, set by attention_tile
};

// Invariant (bit-identity): for row r = (query, head), chunks start at absolute positions
// 0, kChunk, ...; per chunk its scores are one fma chain over e (lanes independent), its
// max/exp/sum only read its own c_r positions, and its output lanes get acc·alpha then one fma per
// position of the chunk in order, where positions past c_r (needed by later queries of the tile)
// have weight exactly 0: fma(0, v, acc) == acc because acc is never -0. Rows of queries that see
// no position of a chunk skip it. So a row's bits depend only on its own
// query, n_kv and the data, not on the tile, the thread or n_q.
template <class T>
void attention_tile(const AttentionArgs& a, int i0, int i1, int h0, int h1, Scratch& sc) {
  const int d = a.head_dim, dp = (d + 15) / 16 * 16;
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
  // K/V rows of a chunk: one head's d elements every row * sizeof(T) bytes, a strided pattern
  // the hardware prefetchers follow late, so each chunk's rows are prefetched ahead of use: the
  // first chunk's V (and the next chunk's K and V) while this chunk's K is transposed. Into L2,
  // not L1: with a row stride of 1–4 KiB (8 KV heads) a chunk's rows fall in a few L1 sets, and
  // lines prefetched into L1 were evicted before use (T1 over T0: decode over 4096 positions
  // 10–25% faster in bench_kernels --attention, qwen06b tg512 +3%).
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
    // whole number of vectors that only one row block reads (decode): the copy would cost more
    // than it saves. Read in place by several row blocks, rows 1–4 KiB apart share a few L1
    // sets and keep missing (copying: prefill 10–15% faster in bench_kernels --attention, one
    // thread). Same values either way, so the same bits.
    const float* const* vr = sc.vrow;
    if constexpr (std::is_same_v<T, float>) {
      if (d == dp && nr - r0 <= kRb) vr = vrow[cur];
    }
    if (vr == sc.vrow) widen_v(vrow[cur], c, d, dp, sc.vf);
    for (int rb = r0; rb < nr; rb += kRb) {
      const int n = std::min(kRb, nr - rb);
      // The block's last row belongs to its latest query: the most positions of the block.
      const int c_blk = std::min(c, valid[(rb + n - 1) / nh] - p0);
      const int nv = (c_blk + 15) / 16;
      kQk[n - 1][nv - 1](qrow + rb, sc.kt, d, a.scale, sc.s + rb * kChunk);
      for (int r = rb; r < rb + n; ++r) {
        const int c_r = std::min(c, valid[r / nh] - p0);
        alpha[r] = softmax_row(sc.s + r * kChunk, c_r, nv, mx[r], sum[r]);
      }
      for (int v0 = 0; v0 < dp / 16; v0 += 4) {
        const int nvec = std::min(4, dp / 16 - v0);
        kPv[n - 1][nvec - 1](sc.acc + rb * dp + 16 * v0, dp, sc.s + rb * kChunk, alpha + rb, vr,
                             16 * v0, c_blk);
      }
    }
  }
  for (int r = 0; r < nr; ++r) {
    float* out = a.out + (static_cast<size_t>(i0 + r / nh) * a.n_heads + h0 + r % nh) * d;
    if (valid[r / nh] <= 0) {
      std::fill(out, out + d, 0.0f);
      continue;
    }
    const __m512 inv = _mm512_set1_ps(1.0f / sum[r]);
    for (int e0 = 0; e0 < d; e0 += 16) {
      const __m512 o = _mm512_mul_ps(_mm512_loadu_ps(sc.acc + r * dp + e0), inv);
      if (e0 + 16 <= d) {
        _mm512_storeu_ps(out + e0, o);
      } else {
        _mm512_mask_storeu_ps(out + e0, tail_mask(d - e0), o);
      }
    }
  }
}

void run(const AttentionArgs& a, ThreadPool& pool) {
  const int group = a.n_heads / a.n_kv_heads;
  // Heads per task: the whole group when there is enough parallelism, fewer otherwise; then as
  // many queries per tile as fit kMaxRows, fewer when there are too few tasks. Neither choice
  // changes any output bit.
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

}  // namespace runnel::kernels::cpu::avx512
