// AVX-512 VNNI kernels for the r16 layouts (packed.h). One zmm of weights is 16 rows x 4 bytes
// of k; x's 4 bytes are broadcast to every lane and vpdpbusd adds the 4 products into each row's
// int32 lane, so a block of 32 is 8 dpbusd per 16 rows (Q4: 4 loads, each unpacked to a low and
// a high half) and no horizontal sum is ever needed.
//
// Register tile: MR rows of x by NG groups (16 NG weight rows). Per block it holds MR x NG int32
// dot accumulators and MR x NG f32 sums, so 4 x 3 uses 24 of the 32 zmm plus NG weight vectors
// and a broadcast; each weight load feeds MR dpbusd and each broadcast NG. Decode (MR = 1) is
// bound by DRAM, not by this arithmetic: one group at a time keeps each thread on one stream.
#include <cstring>

#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/packed.h"
#include "kernels/cpu/simd_avx512.h"

namespace runnel::kernels::cpu::avx512 {
namespace {

inline int32_t load_i32(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

template <bool kQ4, int MR, int NG>
void gemm_r16(const PackedGemm& a) {
  constexpr size_t kQs = kQ4 ? 256 : 512;
  constexpr int kBias = kQ4 ? 8 : 128;
  const size_t nb = a.k / 32;
  const size_t gb = a.w_group_bytes;
  const BlockQ8Act* x[MR];
  for (int i = 0; i < MR; ++i) x[i] = reinterpret_cast<const BlockQ8Act*>(a.x + i * a.x_stride);
  __m512 acc[MR][NG];
  for (int i = 0; i < MR; ++i)
    for (int g = 0; g < NG; ++g) acc[i][g] = _mm512_setzero_ps();
  const __m512i low = _mm512_set1_epi8(0x0f);
  for (size_t b = 0; b < nb; ++b) {
    const PackedBlockOffsets off = packed_block_offsets(b, nb, kQs);
    const uint8_t* q = a.w + off.qs;
    __m512 dw[NG];  // the scales first: they lead the block in memory
    for (int g = 0; g < NG; ++g) {
      dw[g] = _mm512_cvtph_ps(
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.w + g * gb + off.d)));
    }
    __m512i dot[MR][NG];
    for (int i = 0; i < MR; ++i) {
      const __m512i c0 = _mm512_set1_epi32(-kBias * x[i][b].sum);
      for (int g = 0; g < NG; ++g) dot[i][g] = c0;
    }
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
      for (int i = 0; i < MR; ++i) {
        const __m512 s = _mm512_mul_ps(dw[g], _mm512_set1_ps(x[i][b].d));
        acc[i][g] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[i][g]), s, acc[i][g]);
      }
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int g = 0; g < NG; ++g) _mm512_storeu_ps(a.y + i * a.y_stride + 16 * g, acc[i][g]);
}

constexpr int kMr = 4, kNg = 3;

template <bool kQ4>
void gemm(const PackedGemm& a) {
#define RUNNEL_R16_CASE(MR, NG) \
  case MR * 8 + NG:             \
    return gemm_r16<kQ4, MR, NG>(a);
  switch (a.mr * 8 + a.ng) {
    RUNNEL_R16_CASE(1, 1)
    RUNNEL_R16_CASE(1, 2)
    RUNNEL_R16_CASE(1, 3)
    RUNNEL_R16_CASE(2, 1)
    RUNNEL_R16_CASE(2, 2)
    RUNNEL_R16_CASE(2, 3)
    RUNNEL_R16_CASE(3, 1)
    RUNNEL_R16_CASE(3, 2)
    RUNNEL_R16_CASE(3, 3)
    RUNNEL_R16_CASE(4, 1)
    RUNNEL_R16_CASE(4, 2)
    RUNNEL_R16_CASE(4, 3)
    default:
      RUNNEL_ASSERT(false && "packed tile too big");
  }
#undef RUNNEL_R16_CASE
}

}  // namespace

void register_matmul_packed(KernelTable& t) {
  matmul_entry(t, DType::kQ8_0R16) = {nullptr, ActKind::kQ8, kMr, 1, gemm<false>, kNg, false};
  matmul_entry(t, DType::kQ4_0R16) = {nullptr, ActKind::kQ8, kMr, 1, gemm<true>, kNg, false};
  matmul_entry(t, DType::kQ8_0).prefer_packed = true;
  matmul_entry(t, DType::kQ4_0).prefer_packed = true;
}

}  // namespace runnel::kernels::cpu::avx512
