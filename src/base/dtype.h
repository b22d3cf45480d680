// Element types of arrays and tensors in files. Block-quantized types (GGML's Q8_0, Q4_0, K-quants)
// are opaque storage: a row of n elements takes row_bytes(type, n) bytes, n a multiple of
// block_elems(type). Their block layouts live in kernels/cpu/quant.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace runnel {

enum class DType : uint8_t {
  kF32,
  kF16,
  kBF16,
  kF64,
  kI64,
  kI32,
  kI16,
  kI8,
  kU8,
  kU32,
  kBool,
  // GGML block-quantized types.
  kQ4_0,
  kQ4_1,
  kQ5_0,
  kQ5_1,
  kQ8_0,
  kQ2_K,
  kQ3_K,
  kQ4_K,
  kQ5_K,
  kQ6_K,
  kQ8_K,
  // runnel's own row-interleaved repacks of Q8_0 / Q4_0 (kernels/cpu/packed.h): 16 weight rows
  // interleaved per block, made at load for the kernels that stream them best. Same bytes per row
  // as their source types, but not addressable row by row; never stored in files.
  kQ8_0R16,
  kQ4_0R16,
  // The same for MLX affine int8 / int4 (q · scale + bias, f32 scale and bias per row and 32
  // elements: kernels/cpu/packed_mlx.h), packed at load from MLX's U32 words; never in files.
  kQ8AR16,
  kQ4AR16,
  // The same for F16 / BF16 / F32: 16 rows interleaved per element (any row length).
  kF16R16,
  kBF16R16,
  kF32R16,
  // The same for Q4_K / Q6_K (kernels/cpu/packed_kquants.h).
  kQ4_KR16,
  kQ6_KR16,
  // MLX int8 / int4 with one f32 scale and bias per 64 elements (MLX groups of 64 and 128): the
  // quants of two 32-element blocks, then their shared scale and bias (packed_mlx.h).
  kQ8AR16G64,
  kQ4AR16G64,
  // Q5_K's r16 layout: Q4_KR16 with each sub-block's fifth bits beside its nibbles.
  kQ5_KR16,
  // Q5_0's: Q4_0R16 with each block's fifth bits before its nibbles (kernels/cpu/packed.h).
  kQ5_0R16,
  // Q3_K's: 3-bit quants in Q6_KR16's frame, scales decoded to int8 (kernels/cpu/packed_kquants.h).
  kQ3_KR16,
  // Q2_K's: 2-bit quants, per 16 elements GGML's scale-and-min byte (kernels/cpu/packed_kquants.h).
  kQ2_KR16,
  // Q5_1's: Q5_0R16's quants with each block's scale and minimum before them (packed.h).
  kQ5_1R16,
  // Q4_1's: Q4_0R16's quants with each block's scale and minimum before them (packed.h).
  kQ4_1R16,
  // GGML's non-linear 4-bit types (appended here to keep the numbering above): IQ4_NL (32-element
  // blocks, an f16 scale, nibbles indexing a fixed table of 16 int8 values) and IQ4_XS (256-element
  // super-blocks of the same nibbles, an f16 scale and a 6-bit scale per 32 elements).
  kIQ4_NL,
  kIQ4_XS,
  // Their r16 layouts (kernels/cpu/packed.h, packed_kquants.h).
  kIQ4_NLR16,
  kIQ4_XSR16,
  kCount,
};

struct DTypeInfo {
  std::string_view name;  // "f32", "q8_0", ...
  uint32_t block_elems;   // 1 for plain types
  uint32_t block_bytes;   // bytes of one block (the element size for plain types)
  bool quantized;
};

const DTypeInfo& dtype_info(DType t);
inline std::string_view dtype_name(DType t) { return dtype_info(t).name; }
inline bool is_quantized(DType t) { return dtype_info(t).quantized; }
inline uint32_t block_elems(DType t) { return dtype_info(t).block_elems; }
// Bytes of n elements; n must be a multiple of block_elems(t) (checked by callers on user data).
inline size_t row_bytes(DType t, size_t n) {
  const DTypeInfo& i = dtype_info(t);
  return n / i.block_elems * i.block_bytes;
}
// Plain types only.
inline size_t dtype_size(DType t) { return dtype_info(t).block_bytes; }
// Parses "f32", "q4_0", ... (case-insensitive); returns false when unknown.
bool parse_dtype(std::string_view name, DType* out);

}  // namespace runnel
