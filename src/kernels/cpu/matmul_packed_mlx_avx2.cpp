// AVX2 kernels for the MLX affine r16 layouts (packed_mlx.h): packed_r16_avx2.h's MlxR16 over the
// block dots of packed_dot_avx2.h, so that MLX int4/int8 weights stay packed on AVX2 machines
// instead of being dequantized to f32 at load (4-8x the memory, and decode streaming f32).
// Register tile: up to 4 rows of x (3 for 8-bit) by one group of 16 weight rows.
#include "kernels/cpu/packed_r16_avx2.h"

namespace runnel::kernels::cpu::avx2 {

void register_matmul_mlx(KernelTable& t) { set_mlx_r16_entries<3, 4>(t); }

}  // namespace runnel::kernels::cpu::avx2
