// Register tiles for the K-quant weight types (Q4_K, Q6_K) on 256-bit vectors, shared by the AVX2
// and AVX-512 translation units (internal linkage; each compiles its own copy with its own flags).
// `Dot::dot(q, x, init)` is the ISA's u8 × s8 block dot product: init + the 8 lane sums of 4
// products (maddubs + madd on AVX2, VNNI dpbusd on AVX-512). One 32-element group of a
// super-block meets one BlockQ8Act; the group's scale times d_x is applied per lane in f32.
#pragma once

#include <cstring>

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

// The 12 packed bytes of a Q4_K super-block to its 8 scales (low 8 bytes of *sc) and 8 mins
// (*m), the bit shuffling of q4k_scale_min done on three 32-bit words at once.
inline void q4k_unpack_scales(const uint8_t* s, uint64_t* sc, uint64_t* m) {
  uint32_t u[3];
  std::memcpy(u, s, 12);
  constexpr uint32_t k6 = 0x3f3f3f3f, k4 = 0x0f0f0f0f, k2 = 0x03030303;
  const uint32_t sc_lo = u[0] & k6, m_lo = u[1] & k6;
  const uint32_t sc_hi = (u[2] & k4) | (((u[0] >> 6) & k2) << 4);
  const uint32_t m_hi = ((u[2] >> 4) & k4) | (((u[1] >> 6) & k2) << 4);
  *sc = sc_lo | static_cast<uint64_t>(sc_hi) << 32;
  *m = m_lo | static_cast<uint64_t>(m_hi) << 32;
}

inline __m256 u8x8_to_ps(uint64_t v) {
  return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<long long>(v))));
}

// Q4_K: per super-block the 8 group scales are decoded once into a vector (d·sc), multiplied by
// the 8 activation scales, and broadcast per group with a lane permute; the min term
// Σ_g (dmin·m_g)·(d_x·Σq_x) accumulates as a vector too, so no scalar work remains per group.
template <class Dot, int MR, int NR>
void kq_tile_q4_k(const GemmTile& t) {
  __m256 acc[MR][NR], mins[MR][NR];
  for (int i = 0; i < MR; ++i) {
    for (int j = 0; j < NR; ++j) acc[i][j] = mins[i][j] = _mm256_setzero_ps();
  }
  const BlockQ8Act* x[MR];
  for (int i = 0; i < MR; ++i) x[i] = reinterpret_cast<const BlockQ8Act*>(t.x + i * t.x_stride);
  const __m256i low = _mm256_set1_epi8(0x0f);
  for (size_t sb = 0; sb < t.k / 256; ++sb) {
    __m256 xd[MR], xs[MR];  // per group: d_x and d_x · Σq_x
    for (int i = 0; i < MR; ++i) {
      const BlockQ8Act* xg = x[i] + sb * 8;
      xd[i] =
          _mm256_setr_ps(xg[0].d, xg[1].d, xg[2].d, xg[3].d, xg[4].d, xg[5].d, xg[6].d, xg[7].d);
      const __m256i sums = _mm256_setr_epi32(xg[0].sum, xg[1].sum, xg[2].sum, xg[3].sum, xg[4].sum,
                                             xg[5].sum, xg[6].sum, xg[7].sum);
      xs[i] = _mm256_mul_ps(xd[i], _mm256_cvtepi32_ps(sums));
    }
    for (int j = 0; j < NR; ++j) {
      const uint8_t* blk = t.w + j * t.w_stride + sb * sizeof(BlockQ4_K);
      uint64_t sc8, m8;
      q4k_unpack_scales(blk + kQ4KScales, &sc8, &m8);
      const __m256 dsc = _mm256_mul_ps(_mm256_set1_ps(_cvtsh_ss(load_u16(blk))), u8x8_to_ps(sc8));
      const __m256 dm = _mm256_mul_ps(_mm256_set1_ps(_cvtsh_ss(load_u16(blk + 2))), u8x8_to_ps(m8));
      __m256 scale[MR];
      for (int i = 0; i < MR; ++i) {
        scale[i] = _mm256_mul_ps(dsc, xd[i]);
        mins[i][j] = _mm256_fmadd_ps(dm, xs[i], mins[i][j]);
      }
      for (int c = 0; c < 4; ++c) {
        const __m256i raw = kq_load(blk + kQ4KQs + 32 * c);
        const __m256i lo = _mm256_and_si256(raw, low);
        const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low);
        const __m256i ia = _mm256_set1_epi32(2 * c), ib = _mm256_set1_epi32(2 * c + 1);
        for (int i = 0; i < MR; ++i) {
          const __m256i z = _mm256_setzero_si256();
          const __m256i da = Dot::dot(lo, kq_load(x[i][sb * 8 + 2 * c].qs), z);
          const __m256i db = Dot::dot(hi, kq_load(x[i][sb * 8 + 2 * c + 1].qs), z);
          acc[i][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(da),
                                      _mm256_permutevar8x32_ps(scale[i], ia), acc[i][j]);
          acc[i][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(db),
                                      _mm256_permutevar8x32_ps(scale[i], ib), acc[i][j]);
        }
      }
    }
  }
  for (int i = 0; i < MR; ++i) {
    for (int j = 0; j < NR; ++j) t.y[i * t.y_stride + j] = kq_hsum(acc[i][j]) - kq_hsum(mins[i][j]);
  }
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
      const __m256 d = _mm256_set1_ps(_cvtsh_ss(load_u16(blk + kQ6KD)));
      for (int h = 0; h < 2; ++h) {
        // d · scales of this half (8 sub-blocks of 16), then per group the lanes' two scales.
        const __m256 dsc = _mm256_mul_ps(
            d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(
                   _mm_loadl_epi64(reinterpret_cast<const __m128i*>(blk + kQ6KScales + 8 * h)))));
        const __m256i ql[2] = {kq_load(blk + kQ6KQl + 64 * h), kq_load(blk + kQ6KQl + 64 * h + 32)};
        const __m256i qh = kq_load(blk + kQ6KQh + 32 * h);
        for (int r = 0; r < 4; ++r) {
          __m256i nib = ql[r & 1];
          if (r >= 2) nib = _mm256_srli_epi16(nib, 4);
          nib = _mm256_and_si256(nib, low);
          const __m256i hb = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * r), two);
          const __m256i q = _mm256_or_si256(nib, _mm256_slli_epi16(hb, 4));
          // Lanes 0-3 hold elements 0-15 (scale 2r), lanes 4-7 elements 16-31 (scale 2r + 1).
          const __m256 sc =
              _mm256_permutevar8x32_ps(dsc, _mm256_setr_epi32(2 * r, 2 * r, 2 * r, 2 * r, 2 * r + 1,
                                                              2 * r + 1, 2 * r + 1, 2 * r + 1));
          for (int i = 0; i < MR; ++i) {
            const BlockQ8Act& xg = x[i][sb * 8 + 4 * h + r];
            const __m256i corr =
                _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(kq_load(xg.lsum), 5));
            const __m256i dot = Dot::dot(q, kq_load(xg.qs), corr);
            const __m256 s = _mm256_mul_ps(sc, _mm256_broadcast_ss(&xg.d));
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
