// The last step of the SIMD activation quantizers (quantize_q8_groups in matmul_avx2.cpp and
// matmul_avx512.cpp): a BlockQ8Act's quants, lane sums, d and total from its 32 int8 quants and 8
// four-element sums in ymm registers; and the sums the 16-element sub-blocks of the K-quant
// kernels take from those blocks. Internal linkage, for files compiled with AVX2 or wider.
#pragma once

#include "kernels/cpu/intrinsics.h"
#include "kernels/cpu/kernel_table.h"

namespace runnel::kernels::cpu {
namespace {

inline void store_act_block(BlockQ8Act* out, __m256i q8, __m256i lsum, float d) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out->qs), q8);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out->lsum), lsum);
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(lsum), _mm256_extracti128_si256(lsum, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  out->d = d;
  out->sum = _mm_cvtsi128_si32(s);
}

// For x's super-block xb (8 blocks of 32): lane p (0..7) = Σx_2p | Σx_2p+1 << 16 as int16, the
// sums of sub-blocks 2p and 2p + 1 (16 quants each, from the blocks' 4-element lsum).
inline __m256i sub16_sum_pairs(const BlockQ8Act* xb) {
  __m256i h[2];
  for (int half = 0; half < 2; ++half) {
    __m256i l[4];
    for (int j = 0; j < 4; ++j)
      l[j] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb[4 * half + j].lsum));
    // Lanes 0-3: the first sub-block of blocks 4·half + 0..3; lanes 4-7: their second one.
    h[half] = _mm256_hadd_epi32(_mm256_hadd_epi32(l[0], l[1]), _mm256_hadd_epi32(l[2], l[3]));
  }
  // int16 lanes 0-7: first sub-blocks of blocks 0..7; lanes 8-15: second ones. Interleaving the
  // two halves puts each block's pair (2p, 2p + 1) in one 32-bit lane, in block order.
  const __m256i pk = _mm256_packs_epi32(h[0], h[1]);
  const __m128i lo = _mm256_castsi256_si128(pk), hi = _mm256_extracti128_si256(pk, 1);
  return _mm256_set_m128i(_mm_unpackhi_epi16(lo, hi), _mm_unpacklo_epi16(lo, hi));
}
}  // namespace
}  // namespace runnel::kernels::cpu
