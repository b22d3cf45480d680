// AVX2 K-quant tiles (Q4_K, Q6_K): the shared loops of matmul_kquants_impl.h with maddubs + madd
// as the block dot product (quants are unsigned <= 63, |x| <= 127: no int16 saturation).
#include <immintrin.h>

#include "kernels/cpu/matmul_kquants_impl.h"

namespace runnel::kernels::cpu::avx2 {
namespace {

struct Dot {
  static __m256i dot(__m256i q, __m256i x, __m256i init) {
    const __m256i p16 = _mm256_maddubs_epi16(q, x);
    return _mm256_add_epi32(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)), init);
  }
};

template <int MR, int NR>
void q4_k_tile(const GemmTile& t) {
  kq_tile_q4_k<Dot, MR, NR>(t);
}
template <int MR, int NR>
void q6_k_tile(const GemmTile& t) {
  kq_tile_q6_k<Dot, MR, NR>(t);
}
void q4_k(const GemmTile& t) { RUNNEL_TILE_SWITCH(q4_k_tile, t); }
void q6_k(const GemmTile& t) { RUNNEL_TILE_SWITCH(q6_k_tile, t); }

}  // namespace

void register_matmul_kquants(KernelTable& t) {
  matmul_entry(t, DType::kQ4_K) = {q4_k, ActKind::kQ8, 2, 4};
  matmul_entry(t, DType::kQ6_K) = {q6_k, ActKind::kQ8, 2, 4};
}

}  // namespace runnel::kernels::cpu::avx2
