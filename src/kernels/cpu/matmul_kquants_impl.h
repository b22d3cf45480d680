// Register tiles for the K-quant weight types (Q4_K, Q6_K) on 256-bit vectors, shared by the AVX2
// and AVX-512 translation units (internal linkage; each compiles its own copy with its own flags).
// `Dot::dot(q, x, init)` is the ISA's u8 × s8 block dot product: init + the 8 lane sums of 4
// products (maddubs + madd on AVX2, VNNI dpbusd on AVX-512). One 32-element group of a
// super-block meets one BlockQ8Act; the group's scale times d_x is applied per lane in f32.
#pragma once

#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/kquant_util.h"

namespace runnel::kernels::cpu {
namespace {

inline float kq_hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline __m256i kq_load(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

template <class Dot, int MR, int NR>
void kq_tile_q4_k(const GemmTile& t) {
  __m256 acc[MR][NR];
  float mins[MR][NR];
  for (int i = 0; i < MR; ++i) {
    for (int j = 0; j < NR; ++j) {
      acc[i][j] = _mm256_setzero_ps();
      mins[i][j] = 0;
    }
  }
  const BlockQ8Act* x[MR];
  for (int i = 0; i < MR; ++i) x[i] = reinterpret_cast<const BlockQ8Act*>(t.x + i * t.x_stride);
  const __m256i low = _mm256_set1_epi8(0x0f);
  for (size_t sb = 0; sb < t.k / 256; ++sb) {
    for (int j = 0; j < NR; ++j) {
      const uint8_t* blk = t.w + j * t.w_stride + sb * sizeof(BlockQ4_K);
      const float d = _cvtsh_ss(load_u16(blk)), dmin = _cvtsh_ss(load_u16(blk + 2));
      float dsc[8], dm[8];
      for (int g = 0; g < 8; ++g) {
        int sc, m;
        q4k_scale_min(blk + kQ4KScales, g, &sc, &m);
        dsc[g] = d * static_cast<float>(sc);
        dm[g] = dmin * static_cast<float>(m);
      }
      for (int c = 0; c < 4; ++c) {
        const __m256i raw = kq_load(blk + kQ4KQs + 32 * c);
        const __m256i lo = _mm256_and_si256(raw, low);
        const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low);
        for (int i = 0; i < MR; ++i) {
          const BlockQ8Act& xa = x[i][sb * 8 + 2 * c];
          const BlockQ8Act& xb = x[i][sb * 8 + 2 * c + 1];
          const __m256i z = _mm256_setzero_si256();
          const __m256i da = Dot::dot(lo, kq_load(xa.qs), z);
          const __m256i db = Dot::dot(hi, kq_load(xb.qs), z);
          acc[i][j] =
              _mm256_fmadd_ps(_mm256_cvtepi32_ps(da), _mm256_set1_ps(dsc[2 * c] * xa.d), acc[i][j]);
          acc[i][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(db), _mm256_set1_ps(dsc[2 * c + 1] * xb.d),
                                      acc[i][j]);
        }
      }
      for (int i = 0; i < MR; ++i) {
        for (int g = 0; g < 8; ++g) {
          const BlockQ8Act& xg = x[i][sb * 8 + g];
          mins[i][j] += dm[g] * xg.d * static_cast<float>(xg.sum);
        }
      }
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) t.y[i * t.y_stride + j] = kq_hsum(acc[i][j]) - mins[i][j];
}

template <class Dot, int MR, int NR>
void kq_tile_q6_k(const GemmTile& t) {
  __m256 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm256_setzero_ps();
  const BlockQ8Act* x[MR];
  for (int i = 0; i < MR; ++i) x[i] = reinterpret_cast<const BlockQ8Act*>(t.x + i * t.x_stride);
  const __m256i low = _mm256_set1_epi8(0x0f), two = _mm256_set1_epi8(3);
  for (size_t sb = 0; sb < t.k / 256; ++sb) {
    for (int j = 0; j < NR; ++j) {
      const uint8_t* blk = t.w + j * t.w_stride + sb * sizeof(BlockQ6_K);
      const float d = _cvtsh_ss(load_u16(blk + kQ6KD));
      const int8_t* scales = reinterpret_cast<const int8_t*>(blk + kQ6KScales);
      for (int h = 0; h < 2; ++h) {
        const __m256i ql[2] = {kq_load(blk + kQ6KQl + 64 * h), kq_load(blk + kQ6KQl + 64 * h + 32)};
        const __m256i qh = kq_load(blk + kQ6KQh + 32 * h);
        for (int r = 0; r < 4; ++r) {
          __m256i nib = ql[r & 1];
          if (r >= 2) nib = _mm256_srli_epi16(nib, 4);
          nib = _mm256_and_si256(nib, low);
          const __m256i hb = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * r), two);
          const __m256i q = _mm256_or_si256(nib, _mm256_slli_epi16(hb, 4));
          const float sa = d * static_cast<float>(scales[8 * h + 2 * r]);
          const float sbv = d * static_cast<float>(scales[8 * h + 2 * r + 1]);
          for (int i = 0; i < MR; ++i) {
            const BlockQ8Act& xg = x[i][sb * 8 + 4 * h + r];
            // Lanes 0-3 hold elements 0-15 (first scale), lanes 4-7 elements 16-31.
            const __m256i corr =
                _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(kq_load(xg.lsum), 5));
            const __m256i dot = Dot::dot(q, kq_load(xg.qs), corr);
            const __m256 s = _mm256_set_m128(_mm_set1_ps(sbv * xg.d), _mm_set1_ps(sa * xg.d));
            acc[i][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), s, acc[i][j]);
          }
        }
      }
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) t.y[i * t.y_stride + j] = kq_hsum(acc[i][j]);
}

}  // namespace
}  // namespace runnel::kernels::cpu
