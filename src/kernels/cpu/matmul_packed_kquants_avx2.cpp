// The avx2 variant's Q4_KR16 / Q5_KR16 / Q6_KR16 entries (kernels: packed_kquants_avx2.h).
#include "kernels/cpu/packed_kquants_avx2.h"

namespace runnel::kernels::cpu::avx2 {

void register_matmul_packed_kquants(KernelTable& t) {
  set_kquant_r16_entries<3>(t);
  matmul_entry(t, DType::kQ4_K).prefer_packed = true;
  matmul_entry(t, DType::kQ6_K).prefer_packed = true;
}

}  // namespace runnel::kernels::cpu::avx2
