// AVX2 kernels for the MLX affine r16 layouts (packed_mlx.h), so that MLX int4/int8 weights stay
// packed on AVX2 machines instead of being dequantized to f32 at load (4-8x the memory, and decode
// streaming f32). Same arithmetic as the scalar reference (packed_mlx.cpp), bit for bit: the exact
// integer dot per block and row, then acc = fma(float(dot), s · d_x, acc) and
// acc = fma(b, d_x · float(Σq_x), acc).
//
// AVX2 has no vpdpbusd. A 64-byte chunk of a block is 16 rows x 4 bytes of k; each half (rows
// 0-7, 8-15) is one ymm whose 32-bit lanes are rows. Every weight byte is split into nibbles and
// multiplied with x's int8 quants by vpmaddubsw (unsigned x signed bytes, adjacent pairs summed
// into int16), which is exact as long as no int16 lane exceeds 32767: per lane a block adds at most
// 16 products of a nibble (<= 15) and |q_x| <= 127, so 16 · 15 · 127 = 30480. One vpmaddwd per
// block then widens the int16 pairs to the row's int32 dot (times 16 for the high nibbles of 8-bit
// weights). Register tile: up to 2 rows of x by one group of 16 weight rows.
#include <immintrin.h>

#include <cstring>

#include "base/assert.h"
#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/packed.h"
#include "kernels/cpu/packed_mlx.h"

namespace runnel::kernels::cpu::avx2 {
namespace {

inline __m256i bcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

template <DType kType>
struct MlxR16 {
  static constexpr bool kQ4 = kType == DType::kQ4AR16 || kType == DType::kQ4AR16G64;

  template <int MR>
  static void run(const PackedGemm& a) {
    const MlxBlockLayout lay = mlx_block_layout(kType);
    const size_t nb = a.k / 32;
    const BlockQ8Act* x[MR];
    for (int i = 0; i < MR; ++i) x[i] = reinterpret_cast<const BlockQ8Act*>(a.x + i * a.x_stride);
    const __m256i nib = _mm256_set1_epi8(0x0f);
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[MR][2];
    for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    for (size_t b = 0; b < nb; ++b) {
      const uint8_t* q = a.w + lay.qs(b);
      const uint8_t* sb = a.w + lay.sb(b);
      for (int h = 0; h < 2; ++h) {  // rows 8h .. 8h + 7
        // lo: Σ low-nibble products; hi: Σ high-nibble products (4-bit: elements 16 + 4c + j,
        // so they go into lo's sum as well; 8-bit: the upper 4 bits of the same element, x16).
        __m256i lo[MR], hi[MR];
        for (int i = 0; i < MR; ++i) lo[i] = hi[i] = _mm256_setzero_si256();
        for (size_t c = 0; c < lay.qs_bytes / 64; ++c) {
          const __m256i v =
              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 64 * c + 32 * h));
          const __m256i vl = _mm256_and_si256(v, nib);
          const __m256i vh = _mm256_and_si256(_mm256_srli_epi16(v, 4), nib);
          for (int i = 0; i < MR; ++i) {
            if constexpr (kQ4) {
              lo[i] = _mm256_add_epi16(lo[i], _mm256_maddubs_epi16(vl, bcast4(x[i][b].qs + 4 * c)));
              hi[i] = _mm256_add_epi16(hi[i],
                                       _mm256_maddubs_epi16(vh, bcast4(x[i][b].qs + 16 + 4 * c)));
            } else {
              const __m256i xb = bcast4(x[i][b].qs + 4 * c);
              lo[i] = _mm256_add_epi16(lo[i], _mm256_maddubs_epi16(vl, xb));
              hi[i] = _mm256_add_epi16(hi[i], _mm256_maddubs_epi16(vh, xb));
            }
          }
        }
        const __m256 s = _mm256_loadu_ps(reinterpret_cast<const float*>(sb) + 8 * h);
        const __m256 bias = _mm256_loadu_ps(reinterpret_cast<const float*>(sb + 64) + 8 * h);
        for (int i = 0; i < MR; ++i) {
          const __m256i dot =
              kQ4 ? _mm256_madd_epi16(_mm256_add_epi16(lo[i], hi[i]), ones)
                  : _mm256_add_epi32(_mm256_madd_epi16(lo[i], ones),
                                     _mm256_madd_epi16(hi[i], _mm256_set1_epi16(16)));
          const float dx = x[i][b].d;
          const __m256 sd = _mm256_mul_ps(s, _mm256_set1_ps(dx));
          acc[i][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), sd, acc[i][h]);
          const __m256 bx = _mm256_set1_ps(dx * static_cast<float>(x[i][b].sum));
          acc[i][h] = _mm256_fmadd_ps(bias, bx, acc[i][h]);
        }
      }
    }
    for (int i = 0; i < MR; ++i) {
      _mm256_storeu_ps(a.y + i * a.y_stride, acc[i][0]);
      _mm256_storeu_ps(a.y + i * a.y_stride + 8, acc[i][1]);
    }
  }

  static void dispatch(const PackedGemm& a) {
    RUNNEL_ASSERT(a.ng == 1);
    if (a.mr == 2) return run<2>(a);
    RUNNEL_ASSERT(a.mr == 1);
    run<1>(a);
  }
};

}  // namespace

void register_matmul_mlx(KernelTable& t) {
  // prefer_packed on the packed type itself, as for AVX-512 (matmul_packed_mlx_avx512.cpp): it
  // tells preferred_mlx_type that this ISA streams the layout at integer speed.
  matmul_entry(t, DType::kQ8AR16) = {nullptr, ActKind::kQ8, 2, 1, MlxR16<DType::kQ8AR16>::dispatch,
                                     1,       true};
  matmul_entry(t, DType::kQ4AR16) = {nullptr, ActKind::kQ8, 2, 1, MlxR16<DType::kQ4AR16>::dispatch,
                                     1,       true};
  matmul_entry(t, DType::kQ8AR16G64) = {
      nullptr, ActKind::kQ8, 2, 1, MlxR16<DType::kQ8AR16G64>::dispatch, 1, true};
  matmul_entry(t, DType::kQ4AR16G64) = {
      nullptr, ActKind::kQ8, 2, 1, MlxR16<DType::kQ4AR16G64>::dispatch, 1, true};
}

}  // namespace runnel::kernels::cpu::avx2
