// The last step of the SIMD activation quantizers (quantize_q8_groups in matmul_avx2.cpp and
// matmul_avx512.cpp): a BlockQ8Act's quants, lane sums, d and total from its 32 int8 quants and 8
// four-element sums in ymm registers. Internal linkage, for files compiled with AVX2 or wider.
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

}  // namespace
}  // namespace runnel::kernels::cpu
