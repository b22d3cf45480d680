// AVX2 kernels for the MLX affine r16 layouts (packed_mlx.h), over the block dots of
// packed_dot_avx2.h, so that MLX int4/int8 weights stay packed on AVX2 machines instead of being
// dequantized to f32 at load (4-8x the memory, and decode streaming f32). Same arithmetic as the
// scalar reference (packed_mlx.cpp), bit for bit: the exact integer dot per block and row, then
// acc = fma(float(dot), s · d_x, acc) and acc = fma(b, d_x · float(Σq_x), acc).
// Register tile: up to 4 rows of x (3 for 8-bit) by one group of 16 weight rows.
#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/packed.h"
#include "kernels/cpu/packed_dot_avx2.h"
#include "kernels/cpu/packed_mlx.h"

namespace runnel::kernels::cpu::avx2 {
namespace {

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
    r16_half_dots<kQ4, MR>(a.w + lay.qs(b), h, xb, dot);
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

}  // namespace

void register_matmul_mlx(KernelTable& t) {
  // prefer_packed on the packed type itself, as for AVX-512 (matmul_packed_mlx_avx512.cpp): it
  // tells preferred_mlx_type that this ISA streams the layout at integer speed.
  matmul_entry(t, DType::kQ8AR16) = {
      nullptr, ActKind::kQ8, 3, 1, dispatch_r16_avx2<MlxR16<DType::kQ8AR16>>, 1, true};
  matmul_entry(t, DType::kQ4AR16) = {
      nullptr, ActKind::kQ8, 4, 1, dispatch_r16_avx2<MlxR16<DType::kQ4AR16>>, 1, true};
  matmul_entry(t, DType::kQ8AR16G64) = {
      nullptr, ActKind::kQ8, 3, 1, dispatch_r16_avx2<MlxR16<DType::kQ8AR16G64>>, 1, true};
  matmul_entry(t, DType::kQ4AR16G64) = {
      nullptr, ActKind::kQ8, 4, 1, dispatch_r16_avx2<MlxR16<DType::kQ4AR16G64>>, 1, true};
}

}  // namespace runnel::kernels::cpu::avx2
