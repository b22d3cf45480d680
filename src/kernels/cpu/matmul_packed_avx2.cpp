// AVX2 kernels for the Q8_0R16 / Q4_0R16 layouts (packed.h), over the block dots and tile loop of
// packed_dot_avx2.h. Same arithmetic as the scalar reference (packed.cpp), bit for bit: each
// block's exact integer dot starts at -bias · Σq_x (the stored bytes are q + bias), then
// acc = fma(float(dot), d_w · d_x, acc). Tiles: up to 4 rows of x (3 for Q8_0, whose split bytes
// need twice the int16 sums) by one group of 16 weight rows.
// Against GGML's layout on AVX2 (matmul_avx2.cpp), runnel bench llama1b, RUNNEL_CPU=avx2, -t 2:
// Q4_0 prefill 51 -> 87 tok/s and decode 20.6 -> 32.4, so AVX2 packs Q4_0. Q8_0's bytes need two
// vpmaddubsw each; on a Zen 4 run with AVX2 forced its prefill came out equal to 15% slower (GEMM
// 2048 x 2048 67-77 GFLOP/s against 78-83) for decode 0-19% faster, but on an AVX2-only EPYC VM
// (session 10) packed is faster both ways: GEMM 44.5 against 38.6 GFLOP/s, qwen06b Q8_0 prefill
// 38.8 -> 43.7 tok/s and decode 18.1 -> 23.5. Machines that have only AVX2 are the ones that run
// this file, so AVX2 packs Q8_0 too.
#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/packed.h"
#include "kernels/cpu/packed_dot_avx2.h"

namespace runnel::kernels::cpu::avx2 {
namespace {

template <bool kQ4>
struct GgmlR16 {
  static constexpr size_t kElems = 32;
  static constexpr size_t kQs = kQ4 ? 256 : 512;
  static constexpr int kBias = kQ4 ? 8 : 128;

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
    r16_half_dots<kQ4, MR>(a.w + off.qs, h, xb, dot);
    for (int i = 0; i < MR; ++i) {
      const __m256i d = _mm256_add_epi32(dot[i], _mm256_set1_epi32(-kBias * xb[i]->sum));
      const __m256 s = _mm256_mul_ps(dw, _mm256_set1_ps(xb[i]->d));
      acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d), s, acc[i]);
    }
  }
};

}  // namespace

void register_matmul_packed(KernelTable& t) {
  constexpr int kQ8Mr = 3, kQ4Mr = 4;
  matmul_entry(t, DType::kQ8_0R16) = {
      nullptr, ActKind::kQ8, kQ8Mr, 1, dispatch_r16_avx2<GgmlR16<false>>, 1, false};
  matmul_entry(t, DType::kQ4_0R16) = {
      nullptr, ActKind::kQ8, kQ4Mr, 1, dispatch_r16_avx2<GgmlR16<true>>, 1, false};
  matmul_entry(t, DType::kQ4_0).prefer_packed = true;
  matmul_entry(t, DType::kQ8_0).prefer_packed = true;
}

}  // namespace runnel::kernels::cpu::avx2
