// r16 layouts of MLX affine-quantized weights (value = q · scale + bias per group, q unsigned),
// packed at load straight from MLX's U32 words so that the int8 kernels stream them instead of an
// f32 copy. Same group/chunk geometry as packed.h. A group is 16 rows, cut into scale blocks of 32
// elements (kQ8AR16, kQ4AR16: MLX groups of 32) or 64 (kQ8AR16G64, kQ4AR16G64: groups of 64 and
// 128, which repeat their scale and bias in each 64). A scale block holds the quants of its one or
// two 32-element blocks, then s[16] (f32) and b[16] (f32):
//   8-bit quants: 8 chunks, 512 bytes per 32 elements, byte = q (0..255);
//   4-bit quants: 4 chunks, 256 bytes per 32 elements, byte = q[4c+j] | q[4c+16+j] << 4;
// so per row and 32 elements: kQ8AR16 40 bytes, kQ4AR16 24, kQ8AR16G64 36, kQ4AR16G64 20 (Q4_0
// is 18), and every scale block is a whole number of 64-byte lines. Scales and biases are f32:
// MLX stores them as bf16, f16 or f32, and only f32 holds all three exactly (bf16's range and
// f32's precision do not fit f16), so the packed weights equal mlx_dequantize's values bit for
// bit; a scale block of 64 halves what that costs.
// Arithmetic (the scalar reference in packed_mlx.cpp; SIMD reproduces it bit for bit): per
// 32-element block, with x's BlockQ8Act (d_x, Σq_x) and the exact integer dot(q, q_x),
//   acc = fma(float(dot), s · d_x, acc);  acc = fma(b, d_x · float(Σq_x), acc)
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/dtype.h"

namespace runnel {
class ThreadPool;
}

namespace runnel::kernels::cpu {

constexpr bool is_mlx_packed(DType t) {
  return t == DType::kQ8AR16 || t == DType::kQ4AR16 || t == DType::kQ8AR16G64 ||
         t == DType::kQ4AR16G64;
}

// The packed type for MLX `bits` (4 or 8) in groups of `group_size` (a multiple of 32): the G64
// layouts when group_size is a multiple of 64; kU32 (none) for other bit widths.
DType mlx_packed_type(int bits, int group_size);

// What a model load should make of an MLX matrix of n rows x k inputs:
// mlx_packed_type(bits, group_size) when the active ISA prefers it (registers a fast kernel for
// it), n % 16 == 0 and group_size is a multiple of 32 dividing k; else kF32 (dequantize).
DType preferred_mlx_type(int bits, int group_size, size_t n, size_t k);

// Packs rows x cols MLX weights (`packed`: rows * cols * bits / 32 words, element j of a row at
// bits [j*bits, (j+1)*bits) of the row's little-endian bit stream; `scales`/`biases`:
// rows * cols / group_size values of sb_dtype f32, f16 or bf16) into `out`
// (rows * row_bytes(mlx_packed_type(bits, group_size), cols) bytes). Errors on shapes it cannot
// pack.
void pack_mlx_affine(const uint32_t* packed, const void* scales, const void* biases, DType sb_dtype,
                     size_t rows, size_t cols, int bits, int group_size, void* out,
                     ThreadPool& pool);

// Back to f32 [n, k]: q · s + b, rounded like mlx_dequantize (a product, then a sum).
void unpack_mlx_f32(DType packed, const void* w, size_t n, size_t k, float* out);

// Where 32-element block b of a group (16 rows) lives: its quants at qs(b), its scale block's
// s[16] at sb(b) and b[16] at sb(b) + 64.
struct MlxBlockLayout {
  size_t qs_bytes;  // per 32-element block: 512 or 256
  size_t blocks;    // 32-element blocks per scale block: 1 or 2
  size_t stride;    // bytes of a scale block: blocks * qs_bytes + 128
  size_t qs(size_t b) const { return b / blocks * stride + b % blocks * qs_bytes; }
  size_t sb(size_t b) const { return b / blocks * stride + blocks * qs_bytes; }
};
inline MlxBlockLayout mlx_block_layout(DType t) {
  const size_t qs = t == DType::kQ8AR16 || t == DType::kQ8AR16G64 ? 512 : 256;
  const size_t blocks = t == DType::kQ8AR16G64 || t == DType::kQ4AR16G64 ? 2 : 1;
  return {qs, blocks, blocks * qs + 128};
}

}  // namespace runnel::kernels::cpu
