// AVX-512 VNNI kernels for the MLX affine r16 layouts (packed_mlx.h). Same scheme as
// matmul_packed_avx512.cpp: one zmm of weights is 16 rows x 4 bytes of k, x's 4 bytes are
// broadcast and vpdpbusd accumulates each row in its own int32 lane. The quants are already
// unsigned (q, not q - bias), so the dot needs no correction; the affine bias enters per block
// through x's block sum: acc = fma(dot, s · d_x, acc), then acc = fma(b, d_x · Σq_x, acc), in
// that order, exactly as the scalar reference (packed_mlx.cpp) does.
// Register tile: MR rows of x by NG groups of 16 weight rows (4 x 3: 12 int32 dots, 12 f32 sums).
#include <cstring>

#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/packed.h"
#include "kernels/cpu/packed_mlx.h"
#include "kernels/cpu/simd_avx512.h"

namespace runnel::kernels::cpu::avx512 {
namespace {

inline int32_t load_i32(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

template <bool kQ4, int MR, int NG>
void gemm_mlx(const PackedGemm& a) {
  constexpr size_t kQs = kQ4 ? 256 : 512;
  constexpr size_t kStride = kQs + 128;
  const size_t nb = a.k / 32;
  const size_t gb = a.w_group_bytes;
  const BlockQ8Act* x[MR];
  for (int i = 0; i < MR; ++i) x[i] = reinterpret_cast<const BlockQ8Act*>(a.x + i * a.x_stride);
  __m512 acc[MR][NG];
  for (int i = 0; i < MR; ++i)
    for (int g = 0; g < NG; ++g) acc[i][g] = _mm512_setzero_ps();
  const __m512i low = _mm512_set1_epi8(0x0f);
  for (size_t b = 0; b < nb; ++b) {
    const uint8_t* q = a.w + b * kStride;
    __m512i dot[MR][NG];
    for (int i = 0; i < MR; ++i)
      for (int g = 0; g < NG; ++g) dot[i][g] = _mm512_setzero_si512();
    if constexpr (kQ4) {
      for (int c = 0; c < 4; ++c) {
        __m512i lo[NG], hi[NG];
        for (int g = 0; g < NG; ++g) {
          const __m512i v = _mm512_loadu_si512(q + g * gb + 64 * c);
          lo[g] = _mm512_and_si512(v, low);
          hi[g] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
        }
        for (int i = 0; i < MR; ++i) {
          const __m512i xl = _mm512_set1_epi32(load_i32(x[i][b].qs + 4 * c));
          const __m512i xh = _mm512_set1_epi32(load_i32(x[i][b].qs + 16 + 4 * c));
          for (int g = 0; g < NG; ++g) {
            dot[i][g] = _mm512_dpbusd_epi32(dot[i][g], lo[g], xl);
            dot[i][g] = _mm512_dpbusd_epi32(dot[i][g], hi[g], xh);
          }
        }
      }
    } else {
      for (int c = 0; c < 8; ++c) {
        __m512i wv[NG];
        for (int g = 0; g < NG; ++g) wv[g] = _mm512_loadu_si512(q + g * gb + 64 * c);
        for (int i = 0; i < MR; ++i) {
          const __m512i xb = _mm512_set1_epi32(load_i32(x[i][b].qs + 4 * c));
          for (int g = 0; g < NG; ++g) dot[i][g] = _mm512_dpbusd_epi32(dot[i][g], wv[g], xb);
        }
      }
    }
    for (int g = 0; g < NG; ++g) {
      const __m512 s = _mm512_loadu_ps(q + g * gb + kQs);
      const __m512 bias = _mm512_loadu_ps(q + g * gb + kQs + 64);
      for (int i = 0; i < MR; ++i) {
        const float dx = x[i][b].d;
        const __m512 sd = _mm512_mul_ps(s, _mm512_set1_ps(dx));
        acc[i][g] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[i][g]), sd, acc[i][g]);
        const __m512 bx = _mm512_set1_ps(dx * static_cast<float>(x[i][b].sum));
        acc[i][g] = _mm512_fmadd_ps(bias, bx, acc[i][g]);
      }
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int g = 0; g < NG; ++g) _mm512_storeu_ps(a.y + i * a.y_stride + 16 * g, acc[i][g]);
}

constexpr int kMr = 4, kNg = 3;

template <bool kQ4>
void gemm(const PackedGemm& a) {
#define RUNNEL_MLX_CASE(MR, NG) \
  case MR * 8 + NG:             \
    return gemm_mlx<kQ4, MR, NG>(a);
  switch (a.mr * 8 + a.ng) {
    RUNNEL_MLX_CASE(1, 1)
    RUNNEL_MLX_CASE(1, 2)
    RUNNEL_MLX_CASE(1, 3)
    RUNNEL_MLX_CASE(2, 1)
    RUNNEL_MLX_CASE(2, 2)
    RUNNEL_MLX_CASE(2, 3)
    RUNNEL_MLX_CASE(3, 1)
    RUNNEL_MLX_CASE(3, 2)
    RUNNEL_MLX_CASE(3, 3)
    RUNNEL_MLX_CASE(4, 1)
    RUNNEL_MLX_CASE(4, 2)
    RUNNEL_MLX_CASE(4, 3)
    default:
      RUNNEL_ASSERT(false && "packed tile too big");
  }
#undef RUNNEL_MLX_CASE
}

}  // namespace

void register_matmul_mlx(KernelTable& t) {
  // prefer_packed on the packed type itself: there is no source entry (MLX words are U32), and
  // it tells preferred_mlx_type that this ISA streams the layout at integer speed.
  matmul_entry(t, DType::kQ8AR16) = {nullptr, ActKind::kQ8, kMr, 1, gemm<false>, kNg, true};
  matmul_entry(t, DType::kQ4AR16) = {nullptr, ActKind::kQ8, kMr, 1, gemm<true>, kNg, true};
}

}  // namespace runnel::kernels::cpu::avx512
