// The amx variant's prefill attention on the BF16 tiles, over the same tile-operations policy as
// matmul_amx_bf16_impl.h (the tile unit in matmul_amx.cpp, its software model in
// matmul_amx_emulated_avx512.cpp). For those files only (internal linkage).
//
// A task is one KV head and a block of queries: its rows are the (query, head) pairs of the
// heads that share the KV head, 32 of them (2 row tiles of 16; rows past the block are padding).
// Per chunk of 32 KV positions:
//   S^T = K . (scale q)^T on the tiles: A = 16 K rows in bf16 (positions x 32 dims), B = the rows'
//     q transposed into bf16 pairs (once per task), C = 16 positions x 16 rows in f32;
//   the online softmax with vectors whose 16 lanes are the 16 rows of a row tile (the causal
//   mask per lane, max, exp, sum: no horizontal operation), P in bf16;
//   P . V on the tiles: A = P (16 rows x 32 positions: the softmax's vectors transposed as 16 x 16
//     pairs), B = V in bf16 pairs of positions (16 dims per tile), C = 16 rows x 16 dims, added to
//     the rows' outputs after they are scaled by the softmax's alpha.
// Rounding: q · scale, K, V and P in bf16 (up to 2^-9 relative each), sums in f32. So this path's
// bits differ from the AVX-512 loop's (which keeps f32, and whose query bits do not depend on the
// call); tests hold it to the bf16 error (Attention.AmxPrefillWithinBf16Rounding). Only the
// default f16 KV cache takes this path: an f32 one (`--kv-cache-type f32`, chosen for full
// precision) keeps the AVX-512 loop, and so do q8_0 KV, decode and calls of fewer than
// kAmxAttnMinQ queries, head_dim not a multiple of 32 or above 256, and groups of more than 32
// heads. (With f32 KV, a tiny Qwen3 model's logits after a 100-token prompt were 3.3e-3 of their
// range from a float64 reference on this path, against the 1e-4 its test allows.) The f16 calls
// left to the AVX-512 loop take its scores by rows from position 0 (attention_tiled.h) when the
// tiles take the prefill of their shape: the transposed scores exist to speed prefill.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "base/thread_pool.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/matmul_amx_bf16_impl.h"
#include "kernels/cpu/simd_avx512.h"

namespace runnel::kernels::cpu {
namespace {

constexpr int kAmxAttnMinQ = 32;   // queries per call from which the tiles take over
constexpr int kAmxAttnRows = 32;   // (query, head) rows per task: two row tiles
constexpr int kAmxAttnChunk = 32;  // KV positions per step: two position tiles
constexpr int kAmxAttnMaxDim = 256;

struct AmxAttnScratch {
  alignas(64) uint8_t qt[kAmxAttnMaxDim / 32][2][kBf16TileBytes];  // B tiles of (scale q)^T
  alignas(64) float st[2][2][16][16];                              // S^T [pos tile][row tile]
  alignas(64) uint8_t pa[2][kBf16TileBytes];                       // A tiles of P
  alignas(64) float c[4][16][16];                                  // P . V before it is added
  alignas(64) float o[kAmxAttnRows][kAmxAttnMaxDim];               // the rows' outputs
};

// Transposes 16 x 16 32-bit elements: out row i = column i of in (rows 64 bytes apart).
inline void transpose16x16(const uint32_t* in, uint32_t* out) {
  __m512i r[16], t[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_load_si512(in + 16 * i);
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
    r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
    r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
    r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  // r[4b + j] now holds, in 128-bit lane L, column 4L + j of rows 4b..4b+3; two rounds of lane
  // shuffles gather lane L of the four groups b into r[4L + j].
  for (int j = 0; j < 4; ++j) {
    t[j] = _mm512_shuffle_i32x4(r[j], r[4 + j], 0x88);           // lanes 0, 2 of groups 0, 1
    t[4 + j] = _mm512_shuffle_i32x4(r[j], r[4 + j], 0xdd);       // lanes 1, 3
    t[8 + j] = _mm512_shuffle_i32x4(r[8 + j], r[12 + j], 0x88);  // groups 2, 3
    t[12 + j] = _mm512_shuffle_i32x4(r[8 + j], r[12 + j], 0xdd);
  }
  for (int j = 0; j < 4; ++j) {
    r[j] = _mm512_shuffle_i32x4(t[j], t[8 + j], 0x88);            // lane 0 of every group
    r[8 + j] = _mm512_shuffle_i32x4(t[j], t[8 + j], 0xdd);        // lane 2
    r[4 + j] = _mm512_shuffle_i32x4(t[4 + j], t[12 + j], 0x88);   // lane 1
    r[12 + j] = _mm512_shuffle_i32x4(t[4 + j], t[12 + j], 0xdd);  // lane 3
  }
  for (int i = 0; i < 16; ++i) _mm512_store_si512(out + 16 * i, r[i]);
}

// 16 elements of an f16 K/V row from element e as f32.
inline __m512 kv16(const uint16_t* row, int e) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + e)));
}

// The call's K and V in bf16, converted once per call (every block of queries of a KV head reads
// them; converting each chunk in every task had cost as much as the tile work): per KV head and
// chunk of 32 positions, the K rows (32 x d bf16, the A tiles of S^T) and then V as B tiles of
// pairs of positions (d / 16 tiles: tile row q holds positions 2q, 2q + 1 of 16 dims). Zeros past
// n_kv (their weight in P is 0, and 0 · 0 is 0).
struct AmxKvBf16 {
  uint8_t* base = nullptr;
  size_t chunk_bytes = 0;  // 64 d for K, 64 d for V
  int chunks = 0;
  int d = 0;
  const uint8_t* k(int g, int c) const {
    return base + (static_cast<size_t>(g) * chunks + c) * chunk_bytes;
  }
  const uint8_t* v(int g, int c) const { return k(g, c) + static_cast<size_t>(d) * 64; }
};

inline void amx_kv_chunk(const AttentionArgs& a, int g, int c, uint8_t* out) {
  const int d = a.head_dim;
  const size_t row_elems = static_cast<size_t>(a.n_kv_heads) * d;
  const uint16_t* krow[kAmxAttnChunk];
  const uint16_t* vrow[kAmxAttnChunk];
  for (int j = 0; j < kAmxAttnChunk; ++j) {
    const int p = c * kAmxAttnChunk + j;
    krow[j] = vrow[j] = nullptr;
    if (p < a.n_kv) {
      const size_t off =
          static_cast<size_t>(p % a.block_tokens) * row_elems + static_cast<size_t>(g) * d;
      krow[j] = static_cast<const uint16_t*>(a.k_blocks[p / a.block_tokens]) + off;
      vrow[j] = static_cast<const uint16_t*>(a.v_blocks[p / a.block_tokens]) + off;
    }
  }
  for (int j = 0; j < kAmxAttnChunk; ++j) {
    for (int e = 0; e < d; e += 32) {
      __m512i v = _mm512_setzero_si512();
      if (krow[j]) v = bf16_bits(_mm512_cvtne2ps_pbh(kv16(krow[j], e + 16), kv16(krow[j], e)));
      _mm512_store_si512(out + 2 * (static_cast<size_t>(j) * d + e), v);
    }
  }
  uint8_t* vo = out + static_cast<size_t>(d) * 64;
  for (int dt = 0; dt < d / 16; ++dt) {
    for (int q = 0; q < 16; ++q) {
      const __m512 v0 = vrow[2 * q] ? kv16(vrow[2 * q], 16 * dt) : _mm512_setzero_ps();
      const __m512 v1 = vrow[2 * q + 1] ? kv16(vrow[2 * q + 1], 16 * dt) : _mm512_setzero_ps();
      _mm512_store_si512(vo + kBf16TileBytes * dt + 64 * q,
                         bf16_pair_rows(bf16_bits(_mm512_cvtne2ps_pbh(v1, v0))));
    }
  }
}

template <class Ops>
void amx_attention_task(const AttentionArgs& a, const AmxKvBf16& kv, int g, int i0, int qb,
                        AmxAttnScratch& sc) {
  const int d = a.head_dim, group = a.n_heads / a.n_kv_heads, steps = d / 32;
  // Rows: r = (query i0 + r / group, head g * group + r % group); past the block: padding that
  // sees position 0 only (its outputs are dropped).
  alignas(64) int32_t lim[kAmxAttnRows];  // positions [0, lim) visible to row r
  int last = 0;
  for (int r = 0; r < kAmxAttnRows; ++r) {
    const int qi = i0 + r / group;
    const bool real = r < qb * group && qi < a.n_q;
    lim[r] = real ? std::min(a.n_kv, a.q_pos0 + qi + 1) : 1;
    last = std::max(last, lim[r]);
  }
  // (scale q)^T as B tiles: per 32 dims and row tile, tile row p holds dims 2p, 2p + 1 of its 16
  // rows (16 x 16 pairs, transposed from the rows' 32 dims each).
  alignas(64) uint32_t rows16[16][16];
  const __m512 scale = _mm512_set1_ps(a.scale);
  for (int rt = 0; rt < 2; ++rt) {
    for (int s = 0; s < steps; ++s) {
      for (int n = 0; n < 16; ++n) {
        const int r = 16 * rt + n;
        const int qi = i0 + r / group;
        __m512i v = _mm512_setzero_si512();
        if (r < qb * group && qi < a.n_q) {
          const float* q =
              a.q + (static_cast<size_t>(qi) * a.n_heads + g * group + r % group) * d + 32 * s;
          v = bf16_bits(_mm512_cvtne2ps_pbh(_mm512_mul_ps(_mm512_loadu_ps(q + 16), scale),
                                            _mm512_mul_ps(_mm512_loadu_ps(q), scale)));
        }
        _mm512_store_si512(rows16[n], v);
      }
      transpose16x16(&rows16[0][0], reinterpret_cast<uint32_t*>(sc.qt[s][rt]));
    }
  }
  for (int r = 0; r < kAmxAttnRows; ++r) std::fill(sc.o[r], sc.o[r] + d, 0.0f);
  __m512 m[2], l[2];
  const __m512i lim_v[2] = {_mm512_load_si512(lim), _mm512_load_si512(lim + 16)};
  for (int rt = 0; rt < 2; ++rt) {
    m[rt] = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
    l[rt] = _mm512_setzero_ps();
  }
  Ops::configure_bf16(16, 16);
  for (int c0 = 0; c0 < last; c0 += kAmxAttnChunk) {
    const uint8_t* kc = kv.k(g, c0 / kAmxAttnChunk);
    const uint8_t* vc = kv.v(g, c0 / kAmxAttnChunk);
    // S^T: C[2 pt + rt] = K rows of position tile pt . (scale q)^T of row tile rt.
    const size_t ks = static_cast<size_t>(d) * 2;  // bytes of a K row in bf16
    Ops::template zero<0>();
    Ops::template zero<1>();
    Ops::template zero<2>();
    Ops::template zero<3>();
    for (int s = 0; s < steps; ++s) {
      Ops::template load<4>(kc + 64 * s, ks);
      Ops::template load<5>(kc + 16 * ks + 64 * s, ks);
      Ops::template load<6>(sc.qt[s][0], 64);
      Ops::template load<7>(sc.qt[s][1], 64);
      Ops::template dpbf16<0, 4, 6>();
      Ops::template dpbf16<1, 4, 7>();
      Ops::template dpbf16<2, 5, 6>();
      Ops::template dpbf16<3, 5, 7>();
    }
    Ops::template store<0>(sc.st[0][0], 64);
    Ops::template store<1>(sc.st[0][1], 64);
    Ops::template store<2>(sc.st[1][0], 64);
    Ops::template store<3>(sc.st[1][1], 64);
    // The online softmax, 16 rows per vector; P as the A tiles of P . V.
    __m512 alpha[2];
    for (int rt = 0; rt < 2; ++rt) {
      __m512 sv[kAmxAttnChunk];
      __m512 mc = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
      for (int j = 0; j < kAmxAttnChunk; ++j) {
        const __mmask16 seen = _mm512_cmpgt_epi32_mask(lim_v[rt], _mm512_set1_epi32(c0 + j));
        sv[j] = _mm512_mask_blend_ps(seen, _mm512_set1_ps(-std::numeric_limits<float>::infinity()),
                                     _mm512_load_ps(sc.st[j / 16][rt][j % 16]));
        mc = _mm512_max_ps(mc, sv[j]);
      }
      const __m512 mn = _mm512_max_ps(m[rt], mc);   // finite: every row sees position 0
      alpha[rt] = exp16(_mm512_sub_ps(m[rt], mn));  // 0 at the first chunk (m = -inf)
      __m512 sum = _mm512_setzero_ps();
      for (int j = 0; j < kAmxAttnChunk; j += 2) {
        // exp16 clamps its argument at -87.3: a masked score's weight is set to 0 exactly.
        const __mmask16 s0 = _mm512_cmpgt_epi32_mask(lim_v[rt], _mm512_set1_epi32(c0 + j));
        const __mmask16 s1 = _mm512_cmpgt_epi32_mask(lim_v[rt], _mm512_set1_epi32(c0 + j + 1));
        const __m512 p0 = _mm512_maskz_mov_ps(s0, exp16(_mm512_sub_ps(sv[j], mn)));
        const __m512 p1 = _mm512_maskz_mov_ps(s1, exp16(_mm512_sub_ps(sv[j + 1], mn)));
        sum = _mm512_add_ps(sum, _mm512_add_ps(p0, p1));
        _mm512_store_si512(rows16[j / 2], bf16_pair_rows(bf16_bits(_mm512_cvtne2ps_pbh(p1, p0))));
      }
      l[rt] = _mm512_fmadd_ps(l[rt], alpha[rt], sum);
      m[rt] = mn;
      transpose16x16(&rows16[0][0], reinterpret_cast<uint32_t*>(sc.pa[rt]));
    }
    // P . V, 16 dims at a time per row tile, added to the rows' outputs scaled by alpha.
    alignas(64) float al[2][16];
    _mm512_store_ps(al[0], alpha[0]);
    _mm512_store_ps(al[1], alpha[1]);
    Ops::template load<4>(sc.pa[0], 64);
    Ops::template load<5>(sc.pa[1], 64);
    for (int dt = 0; dt < d / 16; dt += 2) {
      Ops::template zero<0>();
      Ops::template zero<1>();
      Ops::template zero<2>();
      Ops::template zero<3>();
      Ops::template load<6>(vc + kBf16TileBytes * dt, 64);
      Ops::template load<7>(vc + kBf16TileBytes * (dt + 1), 64);
      Ops::template dpbf16<0, 4, 6>();
      Ops::template dpbf16<1, 4, 7>();
      Ops::template dpbf16<2, 5, 6>();
      Ops::template dpbf16<3, 5, 7>();
      Ops::template store<0>(sc.c[0], 64);
      Ops::template store<1>(sc.c[1], 64);
      Ops::template store<2>(sc.c[2], 64);
      Ops::template store<3>(sc.c[3], 64);
      for (int t = 0; t < 4; ++t) {
        const int rt = t / 2, e = 16 * (dt + t % 2);
        for (int n = 0; n < 16; ++n) {
          float* o = sc.o[16 * rt + n] + e;
          _mm512_store_ps(o, _mm512_fmadd_ps(_mm512_load_ps(o), _mm512_set1_ps(al[rt][n]),
                                             _mm512_load_ps(sc.c[t][n])));
        }
      }
    }
  }
  alignas(64) float lsum[2][16];
  _mm512_store_ps(lsum[0], l[0]);
  _mm512_store_ps(lsum[1], l[1]);
  for (int r = 0; r < qb * group; ++r) {
    const int qi = i0 + r / group;
    if (qi >= a.n_q) break;
    const __m512 inv = _mm512_set1_ps(1.0f / lsum[r / 16][r % 16]);
    float* out = a.out + (static_cast<size_t>(qi) * a.n_heads + g * group + r % group) * d;
    for (int e = 0; e < d; e += 16)
      _mm512_storeu_ps(out + e, _mm512_mul_ps(_mm512_load_ps(sc.o[r] + e), inv));
  }
}

// The AVX-512 attention the amx variant falls back to (set by amx_attention_register): [0] as
// the avx512 variant has it, [1] with scores by rows from position 0, for the calls of a KV type
// and shape whose prefill the tiles take (only their small calls and decode come here).
inline AttentionFn (&amx_attention_fallback())[2] {
  static AttentionFn f[2] = {};
  return f;
}

// Whether the tiles take calls of this KV type and shape with enough queries; and this call.
inline bool amx_attention_shape(const AttentionArgs& a) {
  const int group = a.n_kv_heads > 0 ? a.n_heads / a.n_kv_heads : 0;
  return a.head_dim % 32 == 0 && a.head_dim <= kAmxAttnMaxDim && group >= 1 &&
         group <= kAmxAttnRows && a.kv_dtype == DType::kF16;
}
inline bool amx_attention_takes(const AttentionArgs& a) {
  return a.n_q >= kAmxAttnMinQ && a.n_kv > 0 && amx_attention_shape(a);
}

template <class Ops>
void amx_attention(const AttentionArgs& a, ThreadPool& pool) {
  if (!amx_attention_takes(a)) {
    amx_attention_fallback()[amx_attention_shape(a)](a, pool);
    return;
  }
  const int group = a.n_heads / a.n_kv_heads, qb = kAmxAttnRows / group;
  const int blocks = (a.n_q + qb - 1) / qb;
  AmxKvBf16 kv;
  kv.d = a.head_dim;
  kv.chunk_bytes = static_cast<size_t>(a.head_dim) * 128;
  kv.chunks = (std::min(a.n_kv, a.q_pos0 + a.n_q) + kAmxAttnChunk - 1) / kAmxAttnChunk;
  struct alignas(64) Line {
    uint8_t b[64];
  };
  thread_local std::vector<Line> kv_buf;  // the caller's (below: how long it is kept)
  const size_t lines = static_cast<size_t>(a.n_kv_heads) * kv.chunks * kv.chunk_bytes / 64;
  if (kv_buf.size() < lines) kv_buf.resize(lines);
  kv.base = kv_buf.data()->b;
  pool.run(a.n_kv_heads * kv.chunks, [&](int task, int) {
    const int g = task / kv.chunks, c = task % kv.chunks;
    amx_kv_chunk(a, g, c, const_cast<uint8_t*>(kv.k(g, c)));
  });
  pool.run(blocks * a.n_kv_heads, [&](int task, int) {
    thread_local std::unique_ptr<AmxAttnScratch> sc(new AmxAttnScratch);  // ~90 KiB a thread
    const int b = blocks - 1 - task / a.n_kv_heads;  // latest queries (most positions) first
    const int g = task % a.n_kv_heads;
    amx_attention_task<Ops>(a, kv, g, b * qb, qb, *sc);
  });
  // As large as the f16 KV the call reads (16 MiB at 4096 positions of Qwen3-0.6B's 8 KV heads):
  // kept between calls up to 64 MiB, released after longer contexts.
  if (kv_buf.size() * sizeof(Line) > (size_t{64} << 20)) std::vector<Line>().swap(kv_buf);
}

template <class Ops>
void amx_attention_register(KernelTable& t) {
  amx_attention_fallback()[0] = t.attention;
  amx_attention_fallback()[1] = t.attention_rows != nullptr ? t.attention_rows : t.attention;
  t.attention = amx_attention<Ops>;
}

}  // namespace
}  // namespace runnel::kernels::cpu
