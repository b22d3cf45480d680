// AVX-512 VNNI kernels for the MLX affine r16 layouts (packed_mlx.h), over the block dots of
// packed_dot_avx512.h (as matmul_packed_avx512.cpp). The quants are already
// unsigned (q, not q - bias), so the dot needs no correction; the affine bias enters per block
// through x's block sum: acc = fma(dot, s · d_x, acc), then acc = fma(b, d_x · Σq_x, acc), in
// that order, exactly as the scalar reference (packed_mlx.cpp) does.
// Register tile: MR rows of x by NG groups of 16 weight rows (up to 8 x 2: packed_dot_avx512.h).
// The G64 layouts load each scale block's s and b once for its two blocks.
#include <cstring>

#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/packed.h"
#include "kernels/cpu/packed_dot_avx512.h"
#include "kernels/cpu/packed_mlx.h"
#include "kernels/cpu/prefetch.h"

namespace runnel::kernels::cpu::avx512 {
namespace {

// kBlocks 32-element blocks share one scale block's s and b (packed_mlx.h): loaded once for
// them, each block still scaled on its own as the reference does. kX (4-bit only): the weights
// are mlx4_expand's copy.
template <bool kQ4, int kBlocks, bool kX = false>
struct MlxR16 {
  template <int MR, int NG>
  static void run(const PackedGemm& a) {
    constexpr size_t kQs = kQ4 && !kX ? 256 : 512;
    constexpr size_t kStride = kBlocks * kQs + 128;  // quants, then 16 f32 scales and biases
    const size_t nsb = a.k / (32 * kBlocks);
    const size_t gb = a.w_group_bytes;
    const BlockQ8Act* x[MR];
    for (int i = 0; i < MR; ++i) x[i] = reinterpret_cast<const BlockQ8Act*>(a.x + i * a.x_stride);
    __m512 acc[MR][NG];
    for (int i = 0; i < MR; ++i)
      for (int g = 0; g < NG; ++g) acc[i][g] = _mm512_setzero_ps();
    for (size_t sb = 0; sb < nsb; ++sb) {
      const uint8_t* w = a.w + sb * kStride;
      if (NG == 1 && a.stream) prefetch_ahead(w, kStride);
#pragma GCC unroll 2
      for (int h = 0; h < kBlocks; ++h) {
        const size_t b = sb * kBlocks + static_cast<size_t>(h);
        __m512i dot[MR][NG];
        const BlockQ8Act* xb[MR];
        for (int i = 0; i < MR; ++i) {
          xb[i] = x[i] + b;
          for (int g = 0; g < NG; ++g) dot[i][g] = _mm512_setzero_si512();
        }
        r16_block_dots<kQ4 && !kX ? 4 : 8, MR, NG>(w + h * kQs, gb, xb, dot);
        for (int g = 0; g < NG; ++g) {
          const __m512 s = _mm512_loadu_ps(w + g * gb + kBlocks * kQs);
          const __m512 bias = _mm512_loadu_ps(w + g * gb + kBlocks * kQs + 64);
          for (int i = 0; i < MR; ++i) {
            const float dx = xb[i]->d;
            const __m512 sd = _mm512_mul_ps(s, _mm512_set1_ps(dx));
            acc[i][g] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[i][g]), sd, acc[i][g]);
            const __m512 bx = _mm512_set1_ps(dx * static_cast<float>(xb[i]->sum));
            acc[i][g] = _mm512_fmadd_ps(bias, bx, acc[i][g]);
          }
        }
      }
    }
    for (int i = 0; i < MR; ++i)
      for (int g = 0; g < NG; ++g) _mm512_storeu_ps(a.y + i * a.y_stride + 16 * g, acc[i][g]);
  }
};

// Prefill's expanded 4-bit layouts (MatmulEntry::expand): the 8-bit layout of the same blocks
// (each chunk of nibbles as its low and high halves, packed_dot_avx512.h's order), so the tiles
// run the 8-bit dot core without unpacking; s and b copied as they are. bench_kernels --gemm
// --threads 2 (3072 / 16384 x 2048, 2048 x 8192; 3 alternating runs): mlx4_r16 +8-10 / 9-11 /
// -1-+0%, mlx4_r16_g64 +14-15 / 14-15 / 2-4% (Emerald Rapids VM, session 22).
template <int kBlocks>
size_t mlx4_expanded_bytes(size_t k) {
  return k / (32 * kBlocks) * (kBlocks * 512 + 128);
}

template <int kBlocks>
void mlx4_expand(const uint8_t* w, size_t gb, size_t k, int ng, uint8_t* out) {
  const size_t nsb = k / (32 * kBlocks), xgb = mlx4_expanded_bytes<kBlocks>(k);
  constexpr size_t kIn = kBlocks * 256 + 128, kOut = kBlocks * 512 + 128;
  for (int g = 0; g < ng; ++g) {
    for (size_t sb = 0; sb < nsb; ++sb) {
      const uint8_t* in = w + g * gb + sb * kIn;
      uint8_t* o = out + g * xgb + sb * kOut;
      for (int h = 0; h < kBlocks; ++h) nibbles_to_bytes(in + 256 * h, o + 512 * h);
      std::memcpy(o + kBlocks * 512, in + kBlocks * 256, 128);
    }
  }
}

template <int kBlocks>
void packed_mlx4(const PackedGemm& a) {
  if (a.expanded) {
    dispatch_r16_tile<MlxR16<true, kBlocks, true>>(a);
  } else {
    dispatch_r16_tile<MlxR16<true, kBlocks>>(a);
  }
}

}  // namespace

void register_matmul_mlx(KernelTable& t) {
  // prefer_packed on the packed type itself: there is no source entry (MLX words are U32), and
  // it tells preferred_mlx_type that this ISA streams the layout at integer speed.
  matmul_entry(t, DType::kQ8AR16) = {
      nullptr, ActKind::kQ8, kR16Mr, 1, dispatch_r16_tile<MlxR16<false, 1>>, kR16Ng, true};
  matmul_entry(t, DType::kQ4AR16) = {nullptr, ActKind::kQ8,   kR16Mr,
                                     1,       packed_mlx4<1>, kR16Ng,
                                     true,    mlx4_expand<1>, mlx4_expanded_bytes<1>};
  matmul_entry(t, DType::kQ8AR16G64) = {
      nullptr, ActKind::kQ8, kR16Mr, 1, dispatch_r16_tile<MlxR16<false, 2>>, kR16Ng, true};
  matmul_entry(t, DType::kQ4AR16G64) = {nullptr, ActKind::kQ8,   kR16Mr,
                                        1,       packed_mlx4<2>, kR16Ng,
                                        true,    mlx4_expand<2>, mlx4_expanded_bytes<2>};
}

}  // namespace runnel::kernels::cpu::avx512
