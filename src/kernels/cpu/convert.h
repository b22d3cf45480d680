// GGML block types with no matmul kernel of their own, converted at load into a layout that has
// one and holds the same weight values (packed.cpp's pack_weights calls these per group of rows):
//   Q4_1 -> MLX affine 4-bit in groups of 32 (then kQ4AR16): q (0..15), scale d, bias m.
// (Q5_1 went to MLX 8-bit in groups of 32 the same way until session 34: 40 bytes a row per 32
// elements where its file has 24. It has its own layout now, Q5_1R16 (packed.h), with the same
// arithmetic, so its results kept their bits; affine_row_q32 still gives its MLX form, which the
// tests compare it with.)
// GGML's values are q · d + m; MLX's q · s + b (a product, then a sum): the same roundings, so the
// packed weights unpack to dequantize_row's values bit for bit.
// Without this such a matrix took the backend's fallback (every row dequantized per call, then a
// scalar dot per row of x): a Qwen3-0.6B-shape Q4_1 file decoded 2.4 tokens/s where Q4_0 decodes
// 80. The matmul then runs on int8 activations like every other quantized type (llama.cpp's
// kernels do too). Q5_0, Q5_1, Q3_K and Q5_K have layouts of their own (Q5_0R16, Q5_1R16, packed.h;
// Q3_KR16, Q5_KR16, packed_kquants.h); Q2_K (per-16 scales and minima, which no layout here holds)
// keeps the fallback.
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/dtype.h"

namespace runnel::kernels::cpu {

// Whether src is converted at load (Q4_1).
bool is_converted_source(DType src);

// n elements of a Q4_1 or Q5_1 row as MLX affine groups of 32: q[n] (one per byte) and per
// group scale[n / 32] and bias[n / 32], with q · scale + bias == dequantize_row's value.
void affine_row_q32(DType src, const void* row, size_t n, uint8_t* q, float* scale, float* bias);

}  // namespace runnel::kernels::cpu
