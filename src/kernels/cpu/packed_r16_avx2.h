// The AVX2 kernels of the Q8_0R16 / Q4_0R16 / Q5_0R16 / Q4_1R16 / Q5_1R16 / IQ4_NLR16 (packed.h)
// and MLX affine r16 (packed_mlx.h) layouts, over the block dots and tile loop of
// packed_dot_avx2.h, and the table entries that name them. Included by matmul_packed_avx2.cpp and
// matmul_packed_mlx_avx2.cpp (the avx2 variant) and by matmul_packed_avxvnni.cpp, whose copy (built
// with -mavxvnni) takes its dots in vpdpbusd. Internal linkage, like packed_dot_avx2.h.
//
// Same arithmetic as the scalar references (packed.cpp, packed_mlx.cpp), bit for bit: each
// block's exact integer dot, then Q8_0 / Q4_0: the dot starts at -bias · Σq_x (the stored bytes
// are q + bias) and acc = fma(float(dot), d_w · d_x, acc); MLX: acc = fma(float(dot), s · d_x,
// acc) and acc = fma(b, d_x · float(Σq_x), acc).
#pragma once

#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/packed.h"
#include "kernels/cpu/packed_dot_avx2.h"
#include "kernels/cpu/packed_mlx.h"

namespace runnel::kernels::cpu::avx2 {
namespace {

// kBits 8, 4, 5: Q8_0R16, Q4_0R16, Q5_0R16; kNl (kBits 4): IQ4_NLR16, whose block dots
// (r16_half_dots_iq4) are over the table's values already, so no bias to take off.
template <int kBits, bool kNl = false>
struct GgmlR16 {
  static constexpr size_t kElems = 32;
  static constexpr size_t kQs = kBits == 8 ? 512 : kBits == 4 ? 256 : 320;
  static constexpr int kBias = kNl ? 0 : kBits == 8 ? 128 : kBits == 4 ? 8 : 16;

  // acc[i] += block b's contribution to rows 8h .. 8h + 7 of x row i.
  template <int MR>
  static void block(const PackedGemm& a, const BlockQ8Act* const* x, size_t b, size_t nb, int h,
                    __m256 (&acc)[MR]) {
    const PackedBlockOffsets off = packed_block_offsets(b, nb, kQs);
    const BlockQ8Act* xb[MR];
    for (int i = 0; i < MR; ++i) xb[i] = x[i] + b;
    const __m256 dw =
        _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a.w + off.d + 16 * h)));
    __m256i dot[MR];
    if constexpr (kNl) {
      r16_half_dots_iq4<MR>(a.w + off.qs, h, xb, dot);
    } else {
      r16_half_dots<kBits, MR>(a.w + off.qs, h, xb, dot);
    }
    for (int i = 0; i < MR; ++i) {
      const __m256i d = _mm256_add_epi32(dot[i], _mm256_set1_epi32(-kBias * xb[i]->sum));
      const __m256 s = _mm256_mul_ps(dw, _mm256_set1_ps(xb[i]->d));
      acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d), s, acc[i]);
    }
  }
};

// Q4_1R16 / Q5_1R16 (kBits 4 / 5; packed.h): Q4_0R16's / Q5_0R16's quants, unbiased, then MLX's
// two fmas with d and the minimum m.
template <int kBits>
struct Q1R16 {
  static constexpr size_t kElems = 32;

  template <int MR>
  static void block(const PackedGemm& a, const BlockQ8Act* const* x, size_t b, size_t, int h,
                    __m256 (&acc)[MR]) {
    const uint8_t* w = a.w + b * (kBits == 5 ? kQ5_1R16Block : kQ4_1R16Block);
    const BlockQ8Act* xb[MR];
    for (int i = 0; i < MR; ++i) xb[i] = x[i] + b;
    __m256i dot[MR];
    r16_half_dots<kBits, MR>(w + kQ1R16Qs, h, xb, dot);
    const __m256 s = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 16 * h)));
    const __m256 m =
        _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + kQ1R16M + 16 * h)));
    for (int i = 0; i < MR; ++i) {
      const float dx = xb[i]->d;
      const __m256 sd = _mm256_mul_ps(s, _mm256_set1_ps(dx));
      acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot[i]), sd, acc[i]);
      const __m256 mx = _mm256_set1_ps(dx * static_cast<float>(xb[i]->sum));
      acc[i] = _mm256_fmadd_ps(m, mx, acc[i]);
    }
  }
};

template <DType kType>
struct MlxR16 {
  static constexpr size_t kElems = 32;
  static constexpr bool kQ4 = kType == DType::kQ4AR16 || kType == DType::kQ4AR16G64;

  // acc[i] += block b's two fmas for rows 8h .. 8h + 7 of x row i.
  template <int MR>
  static void block(const PackedGemm& a, const BlockQ8Act* const* x, size_t b, size_t, int h,
                    __m256 (&acc)[MR]) {
    const MlxBlockLayout lay = mlx_block_layout(kType);
    const BlockQ8Act* xb[MR];
    for (int i = 0; i < MR; ++i) xb[i] = x[i] + b;
    __m256i dot[MR];
    r16_half_dots<kQ4 ? 4 : 8, MR>(a.w + lay.qs(b), h, xb, dot);
    const float* sb = reinterpret_cast<const float*>(a.w + lay.sb(b));
    const __m256 s = _mm256_loadu_ps(sb + 8 * h);
    const __m256 bias = _mm256_loadu_ps(sb + 16 + 8 * h);
    for (int i = 0; i < MR; ++i) {
      const float dx = xb[i]->d;
      const __m256 sd = _mm256_mul_ps(s, _mm256_set1_ps(dx));
      acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot[i]), sd, acc[i]);
      const __m256 bx = _mm256_set1_ps(dx * static_cast<float>(xb[i]->sum));
      acc[i] = _mm256_fmadd_ps(bias, bx, acc[i]);
    }
  }
};

// Q8_0R16 and Q4_0R16 / Q5_0R16: tiles of up to kMr8 / kMr4 rows of x by one group of 16 weight
// rows.
template <int kMr8, int kMr4>
void set_ggml_r16_entries(KernelTable& t) {
  matmul_entry(t, DType::kQ8_0R16) = {
      nullptr, ActKind::kQ8, kMr8, 1, dispatch_r16_avx2<GgmlR16<8>, kMr8>, 1, false};
  matmul_entry(t, DType::kQ4_0R16) = {
      nullptr, ActKind::kQ8, kMr4, 1, dispatch_r16_avx2<GgmlR16<4>, kMr4>, 1, false};
  matmul_entry(t, DType::kQ5_0R16) = {
      nullptr, ActKind::kQ8, kMr4, 1, dispatch_r16_avx2<GgmlR16<5>, kMr4>, 1, false};
  matmul_entry(t, DType::kQ4_1R16) = {
      nullptr, ActKind::kQ8, kMr4, 1, dispatch_r16_avx2<Q1R16<4>, kMr4>, 1, false};
  matmul_entry(t, DType::kQ5_1R16) = {
      nullptr, ActKind::kQ8, kMr4, 1, dispatch_r16_avx2<Q1R16<5>, kMr4>, 1, false};
  matmul_entry(t, DType::kIQ4_NLR16) = {
      nullptr, ActKind::kQ8, kMr4, 1, dispatch_r16_avx2<GgmlR16<4, true>, kMr4>, 1, false};
}

// The MLX r16 layouts likewise. prefer_packed on the packed type itself, as for AVX-512
// (matmul_packed_mlx_avx512.cpp): it tells preferred_mlx_type that this ISA streams the layout at
// integer speed.
template <int kMr8, int kMr4>
void set_mlx_r16_entries(KernelTable& t) {
  matmul_entry(t, DType::kQ8AR16) = {
      nullptr, ActKind::kQ8, kMr8, 1, dispatch_r16_avx2<MlxR16<DType::kQ8AR16>, kMr8>, 1, true};
  matmul_entry(t, DType::kQ4AR16) = {
      nullptr, ActKind::kQ8, kMr4, 1, dispatch_r16_avx2<MlxR16<DType::kQ4AR16>, kMr4>, 1, true};
  matmul_entry(t, DType::kQ8AR16G64) = {
      nullptr, ActKind::kQ8, kMr8, 1, dispatch_r16_avx2<MlxR16<DType::kQ8AR16G64>, kMr8>, 1, true};
  matmul_entry(t, DType::kQ4AR16G64) = {
      nullptr, ActKind::kQ8, kMr4, 1, dispatch_r16_avx2<MlxR16<DType::kQ4AR16G64>, kMr4>, 1, true};
}

}  // namespace
}  // namespace runnel::kernels::cpu::avx2
