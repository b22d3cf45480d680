// The amx variant's prefill kernels: AMX BF16 tiles for every r16 layout but F32R16's (F16, BF16,
// Q8_0, Q4_0, Q5_0, Q4_1, Q5_1, Q2_K ... Q6_K, MLX 4/8-bit),
// written once over a tile-operations policy, so the same loops run on the tile unit
// (matmul_amx.cpp) and on its software model (matmul_amx_emulated_avx512.cpp). For those files
// only (internal linkage).
//
// Prefill of more than 32 rows of x only (MatmulEntry::bf16): matmul.cpp converts x to
// bf16 rows once per call (KernelTable::f32_to_bf16) and expands each slice of NG groups once
// per task (MatmulEntry::expand) into B tiles of bf16 pairs: per group of 16 weight rows and 32
// k-positions, 16 tile rows of 64 bytes, row p holding (w[r][2p], w[r][2p + 1]) for r = 0..15
// (k past the end: zeros). The weights are dequantized exactly in f32 (a quant times its scales,
// plus its offset) and rounded to bf16 (nearest even); BF16 weights move as they are. The kernel
// runs a 2 x 2 block of C tiles (32 rows of x by 32 weight rows) over all of k with TDPBF16PS,
// which sums the products in f32, and stores C straight to y: no per-block vector work at all.
// Decode and prefill of at most 32 rows keep the AVX-512 entry (its kernel, its x: f32 or int8
// blocks, its own expanded layout from 32 rows).
//
// So the results are not the AVX-512 kernels' bits: each product is of x and w rounded to bf16
// (up to 2^-9 relative each) where AVX-512 takes f32 x (float weights) or int8 blocks of x (the
// integer layouts), summed in f32 in the tile unit's order; the tests hold them to that bound
// (expect_amx_bf16_within_rounding). RUNNEL_CPU=avx512 keeps the exact path.
//
// Measured on the first machine with a tile unit any session had (session 30: a 2 vCPU
// Sapphire Rapids-class VM, probe 28-29 GB/s), bench_kernels --gemm --threads 1, 2048 x 2048,
// GFLOP/s avx512 -> amx: f16 157 -> 975-1000, q8_0 389 -> 1033, q4_0 486 -> 1018, q4_k 474 ->
// 1014, q6_k 370 -> 995, q3_k 369 -> 1066, q2_k 357 -> 1064, mlx4 390 -> 1012; at 2048 x 8192
// (x's 512 bf16 rows then stream from L3 for every slice) 690-750. pp512, 2 threads: llama1b F16
// 149 -> 608, Q8_0 384 -> 671, Q4_0 390 -> 773, Q4_K_M 369 -> 735; qwen06b F16 284 -> 905, Q8_0
// 638 -> 1049, Q4_K_M 608 -> 1011, Q6_K 567 -> 1101 tok/s.
//
// Until session 30 the amx variant had INT8 tile kernels for the integer layouts instead (one
// 16 x 16 C tile per 32-element block, its int32 dots scaled by AVX-512 code after each block,
// equal to the VNNI kernels bit for bit). On that machine they were slower than the VNNI kernels
// they replaced (GFLOP/s amx / avx512: Q8_0 337 / 321, Q4_0 347 / 407, Q4_K 268 / 417, Q6_K 196 /
// 322; pp512 llama1b Q8_0 290 / 362, qwen06b Q6_K 359 / 560 tok/s): 2 x 2 INT8 tiles reached
// ~1000 GOP/s per core with no vector work between blocks but ~480 with each block's f32 scaling
// (the two did not overlap), so per-block scales keep INT8 tiles near the VNNI kernels. They were
// removed.
//
// Tiles: C 0..3 (C[2 rt + ct], rt: which 16 rows of x, ct: which group of the pair), A 4 + rt,
// B 6 + ct.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "base/assert.h"
#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/packed.h"
#include "kernels/cpu/packed_dot_avx512.h"
#include "kernels/cpu/packed_kquants.h"
#include "kernels/cpu/packed_kquants_avx512.h"
#include "kernels/cpu/packed_mlx.h"
#include "kernels/cpu/simd_avx512.h"

namespace runnel::kernels::cpu {
namespace {

// The 64-byte operand of LDTILECFG (palette 1).
struct alignas(64) AmxTileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};  // bytes per row of tile t
  uint8_t rows[16] = {};
};
static_assert(sizeof(AmxTileConfig) == 64);

// rows0 rows of x in the first row tile, rows1 (0..16) in the second (0: tiles 2, 3, 5 unused).
inline AmxTileConfig amx_bf16_config(int rows0, int rows1) {
  AmxTileConfig c;
  const int rows[2] = {rows0, rows1};
  for (int rt = 0; rt < 2; ++rt) {
    if (rows[rt] == 0) continue;
    for (int ct = 0; ct < 2; ++ct) {
      c.rows[2 * rt + ct] = static_cast<uint8_t>(rows[rt]);
      c.colsb[2 * rt + ct] = 64;  // 16 f32
    }
    c.rows[4 + rt] = static_cast<uint8_t>(rows[rt]);
    c.colsb[4 + rt] = 64;  // 32 bf16 of x
  }
  for (int ct = 0; ct < 2; ++ct) {
    c.rows[6 + ct] = 16;  // 16 pairs of k
    c.colsb[6 + ct] = 64;
  }
  return c;
}

constexpr int kAmxBf16Mr = 32, kAmxBf16Ng = 4;
constexpr size_t kBf16TileBytes = 1024;  // one B tile: 32 k-positions of 16 weight rows

inline size_t bf16_steps(size_t k) { return (k + 31) / 32; }
inline size_t bf16_tiles_bytes(size_t k) { return bf16_steps(k) * kBf16TileBytes; }

// The bits of converted bf16 vectors, as integer vectors.
inline __m512i bf16_bits(__m512bh v) {
  __m512i r;
  std::memcpy(&r, &v, sizeof(r));
  return r;
}
inline __m256i bf16_bits(__m256bh v) {
  __m256i r;
  std::memcpy(&r, &v, sizeof(r));
  return r;
}

// (a0, b0, a1, b1, ...) from (a0..a15, b0..b15): each weight row's pair of k-positions together.
inline __m512i bf16_pair_rows(__m512i v) {
  const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                       23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  return _mm512_permutexvar_epi16(idx, v);
}

// Expands ng groups of F16R16 (kF16) or BF16R16 weights into B tiles (MatmulEntry::expand).
template <bool kF16>
void bf16_tiles_expand(const uint8_t* w, size_t gb, size_t k, int ng, uint8_t* out) {
  const size_t steps = bf16_steps(k), pairs = k / 2;
  for (int g = 0; g < ng; ++g) {
    const uint8_t* src = w + g * gb;
    uint8_t* o = out + static_cast<size_t>(g) * steps * kBf16TileBytes;
    size_t p = 0;
    for (; p < pairs; ++p) {  // k-positions 2p and 2p + 1 of the 16 rows: 64 bytes in a row
      __m512i v = _mm512_loadu_si512(src + 64 * p);
      if constexpr (kF16) {
        const __m512 lo = _mm512_cvtph_ps(_mm512_castsi512_si256(v));
        const __m512 hi = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(v, 1));
        v = bf16_bits(_mm512_cvtne2ps_pbh(hi, lo));
      }
      _mm512_store_si512(o + 64 * p, bf16_pair_rows(v));
    }
    for (; p < steps * 16; ++p) {  // the odd last k-position and the zeros past k
      __m512i v = _mm512_setzero_si512();
      if (2 * p < k) {
        const __m256i e = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 64 * p));
        if constexpr (kF16) {
          v = _mm512_castsi256_si512(bf16_bits(_mm512_cvtneps_pbh(_mm512_cvtph_ps(e))));
        } else {
          v = _mm512_castsi256_si512(e);
        }
      }
      _mm512_store_si512(o + 64 * p, bf16_pair_rows(v));
    }
  }
}

// One 32-element block of 16 weight rows as the step's B tile (16 rows of bf16 pairs, 1 KiB):
// w = a · u + b, rounded to bf16, for the block's u8 quants u (512 bytes, chunk c holding
// k-positions 4c..4c+3 of the 16 rows, 4 bytes a row) and per-row a and b for each half (16
// k-positions). A product, then a sum, as MLX dequantizes (for the GGML types a · u is exact in
// f32: an f16 scale times a scale of at most 8 bits times a quant of at most 8); then bf16.
inline void quant_block_tile(const uint8_t* u, const __m512 (&a)[2], const __m512 (&b)[2],
                             uint8_t* out) {
  const __m512i lo8 = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
  const __m512i hi8 = _mm512_set_epi32(15, 15, 14, 14, 13, 13, 12, 12, 11, 11, 10, 10, 9, 9, 8, 8);
  for (int h = 0; h < 2; ++h) {
    // Each row's a and b twice, for its two k-positions in a tile row: rows 0-7, then 8-15.
    const __m512 a_lo = _mm512_permutexvar_ps(lo8, a[h]), a_hi = _mm512_permutexvar_ps(hi8, a[h]);
    const __m512 b_lo = _mm512_permutexvar_ps(lo8, b[h]), b_hi = _mm512_permutexvar_ps(hi8, b[h]);
    for (int c = 4 * h; c < 4 * h + 4; ++c) {
      const __m512i v = _mm512_loadu_si512(u + 64 * c);
      for (int e = 0; e < 2; ++e) {  // k-positions 4c + 2e and 4c + 2e + 1 of each row
        const __m256i pairs = _mm512_cvtepi32_epi16(e ? _mm512_srli_epi32(v, 16) : v);
        const __m512 lo = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm256_castsi256_si128(pairs)));
        const __m512 hi =
            _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm256_extracti128_si256(pairs, 1)));
        const __m512bh w = _mm512_cvtne2ps_pbh(_mm512_add_ps(_mm512_mul_ps(hi, a_hi), b_hi),
                                               _mm512_add_ps(_mm512_mul_ps(lo, a_lo), b_lo));
        _mm512_store_si512(out + 64 * (2 * c + e), bf16_bits(w));
      }
    }
  }
}

// MatmulEntry::expand of the integer r16 layouts into B tiles (k % 32 == 0 for Q8_0 / Q4_0 / Q5_0,
// k % 256 == 0 for the K-quants, as their layouts have it).
template <DType kType>
void quant_tiles_expand(const uint8_t* w, size_t gb, size_t k, int ng, uint8_t* out) {
  alignas(64) uint8_t u[512];
  for (int g = 0; g < ng; ++g) {
    const uint8_t* src = w + g * gb;
    uint8_t* o = out + static_cast<size_t>(g) * bf16_tiles_bytes(k);
    if constexpr (kType == DType::kQ8_0R16 || kType == DType::kQ4_0R16 ||
                  kType == DType::kQ5_0R16) {
      // d · (u - bias): Q8_0R16 stores q + 128, the 4- and 5-bit ones q + 8 and q + 16.
      constexpr size_t kQs = kType == DType::kQ8_0R16 ? 512 : kType == DType::kQ4_0R16 ? 256 : 320;
      constexpr float kBias = kType == DType::kQ8_0R16 ? 128 : kType == DType::kQ4_0R16 ? 8 : 16;
      const size_t nb = k / 32;
      for (size_t blk = 0; blk < nb; ++blk, o += kBf16TileBytes) {
        const PackedBlockOffsets off = packed_block_offsets(blk, nb, kQs);
        const __m512 d = f16x16(src + off.d), bias = _mm512_mul_ps(d, _mm512_set1_ps(-kBias));
        const uint8_t* q = src + off.qs;
        if constexpr (kType == DType::kQ4_0R16) {
          avx512::nibbles_to_bytes(q, u);
          q = u;
        } else if constexpr (kType == DType::kQ5_0R16) {
          q5_to_bytes(q, u);
          q = u;
        }
        quant_block_tile(q, {d, d}, {bias, bias}, o);
      }
    } else if constexpr (kType == DType::kIQ4_NLR16) {
      // d · kIQ4Values[q] as d · u - 128 · d for the bytes u = kIQ4Values[q] + 128: both products
      // and their difference exact in f32 (d has 11 significant bits, u 8).
      const size_t nb = k / 32;
      for (size_t blk = 0; blk < nb; ++blk, o += kBf16TileBytes) {
        const PackedBlockOffsets off = packed_block_offsets(blk, nb, 256);
        const __m512 d = f16x16(src + off.d), bias = _mm512_mul_ps(d, _mm512_set1_ps(-128.0f));
        avx512::nibbles_to_bytes<true>(src + off.qs, u);
        quant_block_tile(u, {d, d}, {bias, bias}, o);
      }
    } else if constexpr (kType == DType::kQ4_1R16 || kType == DType::kQ5_1R16) {
      // d · q + m per block (packed.h).
      constexpr bool kQ5 = kType == DType::kQ5_1R16;
      for (size_t blk = 0; blk < k / 32; ++blk, o += kBf16TileBytes) {
        const uint8_t* b = src + blk * (kQ5 ? kQ5_1R16Block : kQ4_1R16Block);
        const __m512 d = f16x16(b), m = f16x16(b + kQ1R16M);
        if constexpr (kQ5) {
          q5_to_bytes(b + kQ1R16Qs, u);
        } else {
          avx512::nibbles_to_bytes(b + kQ1R16Qs, u);
        }
        quant_block_tile(u, {d, d}, {m, m}, o);
      }
    } else if constexpr (kType == DType::kQ4_KR16 || kType == DType::kQ5_KR16) {
      // d · sc_j · q - dmin · m_j per 32-element sub-block j.
      constexpr bool kQ5 = kType == DType::kQ5_KR16;
      alignas(64) uint8_t scm[256];
      for (size_t sb = 0; sb < k / 256; ++sb) {
        const uint8_t* ws = src + sb * (kQ5 ? kQ5KR16SbBytes : kQ4KR16SbBytes);
        const __m512 d = f16x16(ws), dmin = f16x16(ws + kQ4KR16Dmin);
        q4k_r16_scale_bytes(ws, scm);
        for (int j = 0; j < 8; ++j, o += kBf16TileBytes) {
          if constexpr (kQ5) {
            q5_to_bytes(ws + kQ4KR16Qs + kQ5KR16Sub * j, u);
          } else {
            avx512::nibbles_to_bytes(ws + kQ4KR16Qs + 256 * j, u);
          }
          const __m512 a = _mm512_mul_ps(d, _mm512_cvtepi32_ps(u8x16_epi32(scm + 16 * j)));
          const __m512 b =
              _mm512_mul_ps(dmin, _mm512_cvtepi32_ps(_mm512_sub_epi32(
                                      _mm512_setzero_si512(), u8x16_epi32(scm + 128 + 16 * j))));
          quant_block_tile(u, {a, a}, {b, b}, o);
        }
      }
    } else if constexpr (kType == DType::kIQ4_XSR16) {
      // d · sc_j · kIQ4Values[q] per sub-block j as a · u - 128 · a (a = d · sc_j, u = the value +
      // 128): a has at most 16 significant bits and u 8, so all of it is exact in f32.
      alignas(64) int8_t sc[128];
      for (size_t sb = 0; sb < k / 256; ++sb) {
        const uint8_t* ws = src + sb * kIQ4XSR16SbBytes;
        const __m512 d = f16x16(ws);
        iq4_xs_r16_scale_bytes(ws, sc);
        for (int j = 0; j < 8; ++j, o += kBf16TileBytes) {
          const __m128i s8 =
              _mm_load_si128(reinterpret_cast<const __m128i*>(sc + 64 * (j % 2) + 16 * (j / 2)));
          const __m512 a = _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(s8)));
          const __m512 b = _mm512_mul_ps(a, _mm512_set1_ps(-128.0f));
          avx512::nibbles_to_bytes<true>(ws + kIQ4XSR16Qs + 256 * j, u);
          quant_block_tile(u, {a, a}, {b, b}, o);
        }
      }
    } else if constexpr (kType == DType::kQ2_KR16) {
      // d · sc_s · q - dmin · m_s per 16-element sub-block s (sc_s, m_s: a byte's two nibbles).
      for (size_t sb = 0; sb < k / 256; ++sb) {
        const uint8_t* ws = src + sb * kQ2KR16SbBytes;
        const __m512 d = f16x16(ws), dmin = f16x16(ws + kQ2KR16Dmin);
        for (int t = 0; t < 8; ++t, o += kBf16TileBytes) {
          __m512 a[2], b[2];
          for (int h = 0; h < 2; ++h) {
            const int s = 2 * t + h;
            const __m512i scm = u8x16_epi32(ws + kQ2KR16Sc + 16 * s);
            a[h] =
                _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_and_si512(scm, _mm512_set1_epi32(15))));
            b[h] = _mm512_mul_ps(dmin, _mm512_cvtepi32_ps(_mm512_sub_epi32(
                                           _mm512_setzero_si512(), _mm512_srli_epi32(scm, 4))));
            __m512i wv[4];
            q2_unpack(ws, s, wv);
            for (int v = 0; v < 4; ++v) _mm512_store_si512(u + 256 * h + 64 * v, wv[v]);
          }
          quant_block_tile(u, a, b, o);
        }
      }
    } else if constexpr (is_mlx_packed(kType)) {
      // MLX: q · s + b per scale block of 32 or 64 (packed_mlx.h).
      const MlxBlockLayout lay = mlx_block_layout(kType);
      for (size_t blk = 0; blk < k / 32; ++blk, o += kBf16TileBytes) {
        const uint8_t* q = src + lay.qs(blk);
        const __m512 sc = _mm512_loadu_ps(src + lay.sb(blk));
        const __m512 bias = _mm512_loadu_ps(src + lay.sb(blk) + 64);
        if (lay.qs_bytes == 256) {
          avx512::nibbles_to_bytes(q, u);
          q = u;
        }
        quant_block_tile(q, {sc, sc}, {bias, bias}, o);
      }
    } else {
      // Q6_KR16 / Q3_KR16: d · sc_s · (q - 32) (Q3_K: q - 4) per 16-element sub-block s.
      static_assert(kType == DType::kQ6_KR16 || kType == DType::kQ3_KR16);
      constexpr bool kQ3 = kType == DType::kQ3_KR16;
      const size_t nsb = k / 256;
      for (size_t sb = 0; sb < nsb; ++sb) {
        const Q6KR16Offsets off = kQ3 ? q3k_r16_offsets(sb, nsb) : q6k_r16_offsets(sb, nsb);
        const __m512 d = f16x16(src + off.d);
        for (int t = 0; t < 8; ++t, o += kBf16TileBytes) {
          __m512 a[2], b[2];
          for (int h = 0; h < 2; ++h) {
            const int s = 2 * t + h;
            const __m128i sc =
                _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + off.sc + 16 * s));
            a[h] = _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(sc)));
            b[h] = _mm512_mul_ps(a[h], _mm512_set1_ps(kQ3 ? -4.0f : -32.0f));
            __m512i wv[4];
            sc16_unpack<kQ3>(src + off.qs, s, wv);
            for (int v = 0; v < 4; ++v) _mm512_store_si512(u + 256 * h + 64 * v, wv[v]);
          }
          quant_block_tile(u, a, b, o);
        }
      }
    }
  }
}

// KernelTable::f32_to_bf16: one row of x, zeros up to the next multiple of 32.
inline void bf16_row(const float* x, size_t k, uint16_t* out) {
  for (size_t c = 0; c < k; c += 32) {  // the last piece masked: zeros past k
    const size_t left = c < k ? k - c : 0;
    const __mmask16 m0 = left >= 16 ? 0xffff : static_cast<__mmask16>((1u << left) - 1);
    const __mmask16 m1 = left >= 32   ? 0xffff
                         : left <= 16 ? 0
                                      : static_cast<__mmask16>((1u << (left - 16)) - 1);
    const __m512 lo = _mm512_maskz_loadu_ps(m0, x + c);
    const __m512 hi = _mm512_maskz_loadu_ps(m1, x + c + 16);
    _mm512_storeu_si512(out + c, bf16_bits(_mm512_cvtne2ps_pbh(hi, lo)));
  }
}

// Ops: configure_bf16(rows0, rows1), and template<int T> zero / load(p, stride) / store(p, stride),
// template<int C, int A, int B> dpbf16 (C += A . B).

// One pair of groups (or one: kTwoCols false) for one or two row tiles of x: C over all of k.
template <class Ops, bool kTwoRows, bool kTwoCols>
void amx_bf16_block(const uint8_t* xb, size_t xs, const uint8_t* w0, const uint8_t* w1,
                    size_t steps, float* y, size_t y_stride) {
  Ops::template zero<0>();
  if constexpr (kTwoCols) Ops::template zero<1>();
  if constexpr (kTwoRows) Ops::template zero<2>();
  if constexpr (kTwoRows && kTwoCols) Ops::template zero<3>();
  for (size_t s = 0; s < steps; ++s) {
    Ops::template load<4>(xb + 64 * s, xs);
    if constexpr (kTwoRows) Ops::template load<5>(xb + 16 * xs + 64 * s, xs);
    Ops::template load<6>(w0 + kBf16TileBytes * s, 64);
    if constexpr (kTwoCols) Ops::template load<7>(w1 + kBf16TileBytes * s, 64);
    Ops::template dpbf16<0, 4, 6>();
    if constexpr (kTwoCols) Ops::template dpbf16<1, 4, 7>();
    if constexpr (kTwoRows) Ops::template dpbf16<2, 5, 6>();
    if constexpr (kTwoRows && kTwoCols) Ops::template dpbf16<3, 5, 7>();
  }
  const size_t ys = y_stride * sizeof(float);
  Ops::template store<0>(y, ys);
  if constexpr (kTwoCols) Ops::template store<1>(y + 16, ys);
  if constexpr (kTwoRows) Ops::template store<2>(y + 16 * y_stride, ys);
  if constexpr (kTwoRows && kTwoCols) Ops::template store<3>(y + 16 * y_stride + 16, ys);
}

// The kernel (MatmulEntry::bf16.fn): expanded slices, bf16 x, up to 32 rows and 4 groups a call.
template <class Ops>
void amx_bf16_gemm(const PackedGemm& a) {
  RUNNEL_ASSERT(a.expanded);
  const size_t steps = bf16_steps(a.k);
  const uint8_t* xb = a.x;  // bf16 rows
  const int rows0 = std::min(a.mr, 16), rows1 = a.mr - rows0;
  Ops::configure_bf16(rows0, rows1);
  const size_t gb = a.w_group_bytes;
  for (int g = 0; g < a.ng; g += 2) {
    const uint8_t* w0 = a.w + static_cast<size_t>(g) * gb;
    float* y = a.y + 16 * g;
    if (g + 1 < a.ng) {
      if (rows1 > 0) {
        amx_bf16_block<Ops, true, true>(xb, a.x_stride, w0, w0 + gb, steps, y, a.y_stride);
      } else {
        amx_bf16_block<Ops, false, true>(xb, a.x_stride, w0, w0 + gb, steps, y, a.y_stride);
      }
    } else if (rows1 > 0) {
      amx_bf16_block<Ops, true, false>(xb, a.x_stride, w0, nullptr, steps, y, a.y_stride);
    } else {
      amx_bf16_block<Ops, false, false>(xb, a.x_stride, w0, nullptr, steps, y, a.y_stride);
    }
  }
}

// One type's entry: the tile kernel, the same for every type, and the type's expansion.
template <class Ops>
void amx_bf16_set(KernelTable& t, DType type, ExpandFn expand) {
  matmul_entry(t, type).bf16 = {&amx_bf16_gemm<Ops>, expand, bf16_tiles_bytes, kAmxBf16Mr,
                                kAmxBf16Ng};
}
template <class Ops, DType... kQuant>
void amx_bf16_register_quants(KernelTable& t) {
  (amx_bf16_set<Ops>(t, kQuant, &quant_tiles_expand<kQuant>), ...);
}
// Puts the BF16 tile kernels in the amx variant's table, over the AVX-512 entries of every r16
// layout but F32R16 (whose weights bf16 would round to 8 of their 24 bits).
template <class Ops>
void amx_bf16_register(KernelTable& t) {
  amx_bf16_set<Ops>(t, DType::kF16R16, &bf16_tiles_expand<true>);
  amx_bf16_set<Ops>(t, DType::kBF16R16, &bf16_tiles_expand<false>);
  amx_bf16_register_quants<Ops, DType::kQ8_0R16, DType::kQ4_0R16, DType::kQ5_0R16, DType::kQ2_KR16,
                           DType::kQ3_KR16, DType::kQ4_KR16, DType::kQ5_KR16, DType::kQ6_KR16,
                           DType::kQ8AR16, DType::kQ4AR16, DType::kQ8AR16G64, DType::kQ4AR16G64,
                           DType::kQ4_1R16, DType::kQ5_1R16, DType::kIQ4_NLR16, DType::kIQ4_XSR16>(
      t);
  t.f32_to_bf16 = bf16_row;
}

// The tile kernel on fixed pseudo-random F16 weights (3 groups: a pair and a single; k = 83: a
// ragged step and an odd last position) and 21 rows of x (a full tile and a ragged one), against
// double math on the bf16-rounded operands: true when every output is within the f32 sums'
// rounding of it. dispatch.cpp runs it before it lets AMX be chosen.
template <class Ops>
bool amx_bf16_self_test() {
  constexpr size_t kM = 21, kN = 48, kK = 83;
  uint32_t seed = 777;
  auto next = [&seed] {
    seed = seed * 1664525u + 1013904223u;
    return static_cast<float>(seed >> 8) / 16777216.0f * 2.0f - 1.0f;
  };
  auto bf16_round = [](float v) {
    uint32_t u;
    std::memcpy(&u, &v, 4);
    u = (u + 0x7fff + ((u >> 16) & 1)) & 0xffff0000u;
    std::memcpy(&v, &u, 4);
    return v;
  };
  std::vector<float> x(kM * kK), wf(kN * kK);
  for (float& v : x) v = next();
  for (float& v : wf) v = bf16_round(next());  // exact in f16 as well (8 significant bits)
  // F16R16: element c of row r of a group at 16 c + r.
  const size_t gb = 16 * kK * 2;
  std::vector<uint8_t> w(kN / 16 * gb);
  for (size_t j = 0; j < kN; ++j) {
    for (size_t c = 0; c < kK; ++c) {
      const uint16_t h = _cvtss_sh(wf[j * kK + c], 0);
      std::memcpy(&w[j / 16 * gb + (16 * c + j % 16) * 2], &h, 2);
    }
  }
  std::vector<uint8_t> tiles(kN / 16 * bf16_tiles_bytes(kK) + 64);
  uint8_t* t = tiles.data() + (64 - reinterpret_cast<uintptr_t>(tiles.data()) % 64) % 64;
  bf16_tiles_expand<true>(w.data(), gb, kK, kN / 16, t);
  const size_t xs = bf16_steps(kK) * 32;  // bf16 per row of x
  std::vector<uint16_t> xb(kM * xs);
  for (size_t i = 0; i < kM; ++i) bf16_row(&x[i * kK], kK, &xb[i * xs]);
  std::vector<float> y(kM * kN, 0.0f);
  PackedGemm a{reinterpret_cast<const uint8_t*>(xb.data()),
               xs * 2,
               t,
               bf16_tiles_bytes(kK),
               y.data(),
               kN,
               kK,
               static_cast<int>(kM),
               static_cast<int>(kN / 16)};
  a.expanded = true;
  amx_bf16_gemm<Ops>(a);
  for (size_t i = 0; i < kM; ++i) {
    for (size_t j = 0; j < kN; ++j) {
      double exact = 0, abs_sum = 0;
      for (size_t c = 0; c < kK; ++c) {
        const double term = double(bf16_round(x[i * kK + c])) * wf[j * kK + c];
        exact += term;
        abs_sum += std::fabs(term);
      }
      if (!(std::fabs(y[i * kN + j] - exact) <= (kK + 1) * 0x1p-24 * abs_sum + 1e-30)) return false;
    }
  }
  return true;
}

}  // namespace
}  // namespace runnel::kernels::cpu
