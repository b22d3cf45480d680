// r16 layouts of MLX affine-quantized weights (value = q · scale + bias per group, q unsigned):
// kQ8AR16 (8 bits) and kQ4AR16 (4 bits), packed at load straight from MLX's U32 words so that
// the int8 kernels stream them instead of an f32 copy. Same group/chunk geometry as packed.h:
// a group is 16 rows; each 32-element block of a group is stored alone as
//   kQ8AR16: qs (8 chunks, 512 bytes: byte = q, 0..255) s[16] (f32) b[16] (f32)    = 640 bytes
//   kQ4AR16: qs (4 chunks, 256 bytes: byte = q[4c+j] | q[4c+16+j] << 4)  s[16] b[16] = 384 bytes
// (every block a whole number of 64-byte lines, so no pairing is needed). Scales and biases are
// f32: MLX stores them as bf16, f16 or f32, and only f32 holds all three exactly (bf16's range
// and f32's precision do not fit f16), so the packed weights equal mlx_dequantize's values bit
// for bit; the price is 4 bytes per row-block over f16 (Q4: 24 instead of 20 bytes per 32).
// MLX groups of 64 or 128 repeat their scale and bias in each 32-element block.
// Arithmetic (the scalar reference in packed_mlx.cpp; SIMD reproduces it bit for bit): per block,
// with x's BlockQ8Act (d_x, Σq_x) and the exact integer dot(q, q_x),
//   acc = fma(float(dot), s · d_x, acc);  acc = fma(b, d_x · float(Σq_x), acc)
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/dtype.h"

namespace runnel {
class ThreadPool;
}

namespace runnel::kernels::cpu {

inline bool is_mlx_packed(DType t) { return t == DType::kQ8AR16 || t == DType::kQ4AR16; }

// The packed type for MLX `bits` (4 or 8), else kU32 (none).
DType mlx_packed_type(int bits);

// What a model load should make of an MLX matrix of n rows x k inputs: mlx_packed_type(bits) when
// the active ISA prefers it (registers a fast kernel for it), n % 16 == 0 and k, group_size are
// multiples of 32; else kF32 (dequantize, as before).
DType preferred_mlx_type(int bits, int group_size, size_t n, size_t k);

// Packs rows x cols MLX weights (`packed`: rows * cols * bits / 32 words, element j of a row at
// bits [j*bits, (j+1)*bits) of the row's little-endian bit stream; `scales`/`biases`:
// rows * cols / group_size values of sb_dtype f32, f16 or bf16) into `out`
// (rows * row_bytes(mlx_packed_type(bits), cols) bytes). Errors on shapes it cannot pack.
void pack_mlx_affine(const uint32_t* packed, const void* scales, const void* biases, DType sb_dtype,
                     size_t rows, size_t cols, int bits, int group_size, void* out,
                     ThreadPool& pool);

// Back to f32 [n, k]: q · s + b, rounded like mlx_dequantize (a product, then a sum).
void unpack_mlx_f32(DType packed, const void* w, size_t n, size_t k, float* out);

// One block of a group (16 rows x 32 elements): its quants, then s[16] at qs_bytes and b[16] at
// qs_bytes + 64; block b of a group starts at b * stride.
struct MlxBlockLayout {
  size_t qs_bytes;  // 512 or 256
  size_t stride;    // qs_bytes + 128
};
inline MlxBlockLayout mlx_block_layout(DType t) {
  const size_t qs = t == DType::kQ8AR16 ? 512 : 256;
  return {qs, qs + 128};
}

}  // namespace runnel::kernels::cpu
