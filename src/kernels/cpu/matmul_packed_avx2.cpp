// AVX2 kernels for the Q8_0R16 / Q4_0R16 layouts (packed.h): packed_r16_avx2.h's GgmlR16 over
// the block dots and tile loop of packed_dot_avx2.h. Tiles: up to 4 rows of x (3 for Q8_0, whose
// split bytes need twice the int16 sums) by one group of 16 weight rows.
// Against GGML's layout on AVX2 (matmul_avx2.cpp), runnel bench llama1b, RUNNEL_CPU=avx2, -t 2:
// Q4_0 prefill 51 -> 87 tok/s and decode 20.6 -> 32.4, so AVX2 packs Q4_0. Q8_0's bytes need two
// vpmaddubsw each; on a Zen 4 run with AVX2 forced its prefill came out equal to 15% slower (GEMM
// 2048 x 2048 67-77 GFLOP/s against 78-83) for decode 0-19% faster, but on an AVX2-only EPYC VM
// (session 10) packed is faster both ways: GEMM 44.5 against 38.6 GFLOP/s, qwen06b Q8_0 prefill
// 38.8 -> 43.7 tok/s and decode 18.1 -> 23.5. Machines that have only AVX2 are the ones that run
// this file, so AVX2 packs Q8_0 too.
#include "kernels/cpu/packed_r16_avx2.h"

namespace runnel::kernels::cpu::avx2 {

void register_matmul_packed(KernelTable& t) {
  set_ggml_r16_entries<3, 4>(t);
  matmul_entry(t, DType::kQ4_0).prefer_packed = true;
  matmul_entry(t, DType::kQ8_0).prefer_packed = true;
}

}  // namespace runnel::kernels::cpu::avx2
