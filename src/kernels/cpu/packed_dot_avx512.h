// The integer core shared by the AVX-512 kernels over r16 layouts whose 32-element blocks hold
// unsigned bytes (Q8_0R16, Q4_0R16: packed.h; mlx8_r16, mlx4_r16: packed_mlx.h), for
// *_avx512.cpp files only (internal linkage, like simd_avx512.h). One zmm of weights is 16 rows
// x 4 bytes of k; x's 4 bytes are broadcast to every lane and vpdpbusd adds the 4 products into
// each row's int32 lane, so a block is 8 dpbusd per 16 rows (4-bit: 4 loads, each unpacked to a
// low and a high half). The kernels differ only in how they start and scale each block's dot.
#pragma once

#include <cstring>

#include "base/assert.h"
#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/simd_avx512.h"

namespace runnel::kernels::cpu::avx512 {
namespace {

inline int32_t load_i32(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// dot[i][g] += Σ_e q[g][row][e] · x[i].qs[e] for one block: q points at the block's quants in
// group 0 (group g at q + g * gb), 512 bytes of bytes (kQ4 false) or 256 of nibble pairs (true).
template <bool kQ4, int MR, int NG>
inline void r16_block_dots(const uint8_t* q, size_t gb, const BlockQ8Act* const* x,
                           __m512i (&dot)[MR][NG]) {
  if constexpr (kQ4) {
    const __m512i low = _mm512_set1_epi8(0x0f);
    for (int c = 0; c < 4; ++c) {
      __m512i lo[NG], hi[NG];
      for (int g = 0; g < NG; ++g) {
        const __m512i v = _mm512_loadu_si512(q + g * gb + 64 * c);
        lo[g] = _mm512_and_si512(v, low);
        hi[g] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
      }
      for (int i = 0; i < MR; ++i) {
        const __m512i xl = _mm512_set1_epi32(load_i32(x[i]->qs + 4 * c));
        const __m512i xh = _mm512_set1_epi32(load_i32(x[i]->qs + 16 + 4 * c));
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
        const __m512i xb = _mm512_set1_epi32(load_i32(x[i]->qs + 4 * c));
        for (int g = 0; g < NG; ++g) dot[i][g] = _mm512_dpbusd_epi32(dot[i][g], wv[g], xb);
      }
    }
  }
}

// The register tiles both kernel families instantiate: MR in 1..4 rows of x, NG in 1..3 groups.
constexpr int kR16Mr = 4, kR16Ng = 3;

// Calls K::template run<MR, NG>(a) for the call's (mr, ng).
template <class K>
void dispatch_r16_tile(const PackedGemm& a) {
  switch (a.mr * 8 + a.ng) {
#define RUNNEL_R16_CASE(MR, NG) \
  case MR * 8 + NG:             \
    return K::template run<MR, NG>(a);
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
#undef RUNNEL_R16_CASE
    default:
      RUNNEL_ASSERT(false && "packed tile too big");
  }
}

}  // namespace
}  // namespace runnel::kernels::cpu::avx512
