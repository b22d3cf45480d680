// Row-interleaved ("r16") weight layouts: made once at load from GGML's row-major blocks so that
// one 512-bit load holds the same 4 k-positions of 16 weight rows. The matmul then needs no
// horizontal sums (each lane is one output column), decode streams one sequential region per
// thread, and prefill tiles reuse each loaded weight vector across several rows of x.
//
// A group is 16 consecutive weight rows; group g starts at g * 16 * row_bytes(src, k), so a packed
// matrix has exactly the bytes of its source. Within a group, 32-element blocks are stored in
// pairs (2b, 2b+1) so that every pair is a whole number of 64-byte lines, scales first (a kernel
// reads each pair front to back: interleaving a backward jump to the scales with the quants
// halved a K-quant kernel's DRAM rate):
//   Q8_0R16 pair: d[2b] (16 x f16) d[2b+1] (16 x f16) qs[2b] (512 bytes) qs[2b+1] (512) = 1088
//   Q4_0R16 pair: d[2b] d[2b+1] qs[2b] (256 bytes) qs[2b+1] (256)                      = 576
//   Q5_0R16 pair: d[2b] d[2b+1] qs[2b] (320 bytes) qs[2b+1] (320)                      = 704
// and an odd last block is stored alone (d then qs). Q4_1R16 and Q5_1R16 have no pairs: each
// block is whole lines (320 and 384 bytes), d (16 x f16), then m (16 x f16), then Q4_0R16's 256 or
// Q5_0R16's 320 bytes of quants (value q · d + m, q 0..15 or 0..31). Inside a block's qs, chunk c
// (64 bytes)
// holds for row r = 0..15 the bytes of k-positions 4c..4c+3 at offset 4r:
//   Q8_0R16: 8 chunks, byte = q + 128 (unsigned, for the u8 x s8 dot instructions);
//   Q4_0R16: 4 chunks, byte = q[4c + j] | q[4c + 16 + j] << 4 (the raw nibbles 0..15; value q - 8).
//   IQ4_NLR16: Q4_0R16's bytes (pairs, d, nibbles), value kIQ4Values[q] (quant.h); its kernels
//            look each nibble up as kIQ4Values[q] + 128, a byte like Q8_0R16's.
//   Q5_0R16: 64 bytes of fifth bits, then Q4_0R16's 4 chunks of nibbles (value q - 16, q 0..31):
//            fifth-bit byte 4r + j holds in bit c that of q[4c + j] and in bit 4 + c that of
//            q[4c + 16 + j] (Q5_KR16's sub-block layout, packed_kquants.h). Q4_1R16 / Q5_1R16
//            likewise, with no bias (value q · d + m).
// F16R16 / BF16R16 / F32R16 (packed_float.h): element c of row r at (16 c + r) * elem_bytes in its
// group, for any k (one 32- or 64-byte load is element c of 16 rows).
// The K-quant layouts Q2_KR16 ... Q6_KR16 (per 256-element super-block) are described in
// packed_kquants.h.
// Packing requires n % 16 == 0 (every real model's matrices); other shapes keep GGML's layout.
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/dtype.h"

namespace runnel {
class ThreadPool;
}

namespace runnel::kernels::cpu {

constexpr int kPackRows = 16;

// The packed type of `src` (kQ8_0 -> kQ8_0R16, ...), or src itself when it has none.
DType packed_type(DType src);
// The type whose row-major blocks `packed` was made from (itself for unpacked types).
DType packed_source(DType packed);
inline bool is_packed(DType t) { return packed_source(t) != t; }

// The layout the active ISA's matmul streams best for n rows of k elements of `src`: its packed
// type when the ISA has a packed kernel for it and n % 16 == 0, else src.
DType preferred_weight_type(DType src, size_t n, size_t k);

// Repacks n rows of k elements of `src` (row j at w + j * w_stride bytes) into `out`
// (n * row_bytes(packed_type(src), k) bytes: src's own bytes, but for Q3_K, whose scales take a
// byte each)
// as packed_type(src). n must be a multiple of 16.
void pack_weights(DType src, const void* w, size_t w_stride, size_t n, size_t k, void* out,
                  ThreadPool& pool);

// Back to f32 [n, k] (tests, and weights that must be read row by row).
void unpack_weights_f32(DType packed, const void* w, size_t n, size_t k, float* out);

// Byte offsets of block b's qs and d inside a group of nb blocks whose block has `qs_bytes` of
// quants (512 for Q8_0R16, 256 for Q4_0R16, 320 for Q5_0R16) and 32 bytes of scales.
struct PackedBlockOffsets {
  size_t qs, d;
};
inline PackedBlockOffsets packed_block_offsets(size_t b, size_t nb, size_t qs_bytes) {
  const size_t pair = 2 * (qs_bytes + 32);
  const size_t base = b / 2 * pair;
  if (b + 1 == nb && nb % 2 == 1) return {base + 32, base};  // odd last block, alone
  return {base + 64 + (b % 2) * qs_bytes, base + (b % 2) * 32};
}

// Q4_1R16's / Q5_1R16's block b in a group: d at kQ4_1R16Block / kQ5_1R16Block · b, m kQ1R16M
// bytes after it, the quants kQ1R16Qs bytes after it. Their arithmetic is the MLX layouts'
// (packed_mlx.h: acc = fma(float(dot), d · d_x, acc), then acc = fma(m, d_x · float(Σq_x), acc)),
// which Q4_1 and Q5_1 files ran on until session 34, converted at load to MLX 4-bit and 8-bit in
// groups of 32: the same bits, from 20 and 24 bytes a row per 32 elements instead of 24 and 40.
constexpr size_t kQ4_1R16Block = 320, kQ5_1R16Block = 384, kQ1R16M = 32, kQ1R16Qs = 64;

}  // namespace runnel::kernels::cpu
