// AVX-512 K-quant tiles (Q4_K, Q6_K): the shared loops of matmul_kquants_impl.h with VNNI dpbusd
// (256-bit, AVX512VL) as the block dot product.
#include "kernels/cpu/simd_avx512.h"
// (simd_avx512.h first: it includes <immintrin.h> with GCC 12's false warnings silenced.)
#include "kernels/cpu/matmul_kquants_impl.h"

namespace runnel::kernels::cpu::avx512 {
namespace {

struct Dot {
  static __m256i dot(__m256i q, __m256i x, __m256i init) { return _mm256_dpbusd_epi32(init, q, x); }
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
  matmul_entry(t, DType::kQ4_K) = {q4_k, ActKind::kQ8, 4, 4};
  matmul_entry(t, DType::kQ6_K) = {q6_k, ActKind::kQ8, 4, 4};
}

}  // namespace runnel::kernels::cpu::avx512
