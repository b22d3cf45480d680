// The avxvnni variant's kernels (dispatch.h): packed_r16_avx2.h's Q8_0R16 / Q4_0R16 / MLX r16
// kernels and packed_kquants_avx2.h's Q4_KR16 / Q5_KR16 / Q6_KR16 ones built with -mavxvnni, so
// their block dots take AVX-VNNI's vpdpbusd (packed_dot_avx2.h's r16_half_dots_vnni; the K-quants'
// sub-block dots times their scales by vpdpwssd) instead of vpmaddubsw and int16 sums. The same
// exact integer dots, so the same bits as the avx2 variant and the scalar reference. Everything
// else in the avxvnni table is AVX2's.
#include "kernels/cpu/packed_kquants_avx2.h"
#include "kernels/cpu/packed_r16_avx2.h"

namespace runnel::kernels::cpu::avxvnni {

// Rows of x per prefill tile, 8-bit and 4-bit alike: one int32 accumulator a row (no int16 sums to
// split), so 6 rows' dots and f32 sums fit the 16 registers. bench_kernels --gemm --threads 1
// --isa avxvnni (Emerald Rapids VM, 2048 / 8192 x 2048, GFLOP/s): Q8_0 4 rows 146-147 / 156-159,
// 5 rows 142-143 / 155, 6 rows 155-156 / 167-168, 8 rows 153-156 / 162-165; Q4_0 4 rows 155 / 169,
// 5 rows 159-162 / 170-178, 6 rows 169-170 / 186-187, 8 rows 158-161 / 169-171.
constexpr int kMr = 6;
// Q4_K / Q6_K tiles: 6 rows too (the avx2 copy keeps 3: its int16 sums take twice the registers).
// bench_kernels --gemm --threads 1 --isa avxvnni 2048 x 2048, GFLOP/s: Q4_K 3 / 4 / 6 rows 143 /
// 153-155 / 160-163, Q6_K 103-105 / 110-112 / 115-116.
constexpr int kKqMr = 6;

void register_matmul_packed(KernelTable& t) {
  avx2::set_ggml_r16_entries<kMr, kMr>(t);
  avx2::set_mlx_r16_entries<kMr, kMr>(t);
  avx2::set_kquant_r16_entries<kKqMr>(t);
}

}  // namespace runnel::kernels::cpu::avxvnni
