// The r16 layouts of the K-quants (packed.h's framework): Q2_KR16 ... Q6_KR16 interleave 16 rows
// per 256-element super-block with the source's bytes (84 / 144 / 176 / 210 per row for Q2_K /
// Q4_K / Q5_K / Q6_K; Q3_KR16 114 for Q3_K's 110), so a zmm load holds the same 4 k-positions of
// 16 rows and the kernels' scales decode with a few vector ops.
// Offsets below are inside one group (16 rows); super-block s of a group of nsb super-blocks.
//
// Q4_KR16, per super-block (2304 bytes, 36 lines): a 256-byte header, then the quants.
//   header: d (16 x f16) | dmin (16 x f16) | GGML's 12 scale bytes as 12 chunks of 16 bytes
//           (chunk i, byte r = scales[i] of row r), so 3 zmm hold all 16 rows' scale bytes.
//   quants: 32-element sub-block j (0..7) at 256 + 256 j, 4 chunks of 64 bytes; chunk c, row r,
//           byte 4r + t = q[32j + 4c + t] | q[32j + 16 + 4c + t] << 4 (raw nibbles 0..15, the
//           Q4_0R16 block layout), so one load gives 8 k-positions after a mask and a shift.
// Q5_KR16, per super-block (2816 bytes, 44 lines): Q4_KR16's 256-byte header, then sub-block j
//   (0..7) at 256 + 320 j: 64 bytes of fifth bits, then its 256 bytes of nibble pairs laid out as
//   Q4_KR16's. Fifth-bit byte 4r + t holds, in bit c, the fifth bit of the low-nibble element of
//   chunk c (q[32j + 4c + t]) and in bit 4 + c that of its high-nibble one (q[32j + 16 + 4c + t]),
//   so chunk c's 5-bit quants are (v & 15) | (f >> c << 4 & 16) and (v >> 4) | (f >> c & 16).
// Q6_KR16, per super-block: 3072 bytes of quants, 256 bytes of int8 scales (chunk s of 16 bytes,
//   byte r = scales[s] of row r), 32 bytes of d (16 x f16). Super-blocks are stored in pairs
//   (d 0, d 1, scales 0, scales 1, quants 0, quants 1: 6720 bytes, whole lines; an odd last one
//   alone as scales, quants, d) so every quant load stays on 64-byte lines and a decode pass
//   reads each pair in ascending address order (with the scales after the quants, DRAM streaming
//   ran at half the rate). Quants: 16-element sub-block s (0..15) at
//   192 s as three 64-byte vectors A, B, C; row r, byte 4r + t holds in its low 6 bits
//   A: q[16s + t], B: q[16s + 4 + t], C: q[16s + 8 + t] (q = 0..63, value q - 32), and in bits
//   6-7 bits 0-1 (A), 2-3 (B), 4-5 (C) of q[16s + 12 + t].
// Q3_KR16: Q6_KR16's frame (d, int8 scales, pairs of super-blocks) with 1536 bytes of quants: the
//   scales decoded from GGML's 12 bytes to int8 at packing (-32..31; so 114 bytes a row, not 110),
//   and the 16-element sub-blocks in pairs (2p, 2p + 1) at 192 p: A_2p, A_2p+1, H (64 bytes each).
//   Row r, byte 4r + t of A_s holds in bits 2v..2v+1 the low 2 bits of q[16s + 4v + t]; of H, in
//   bit v (bit 4 + v) the third bit of q[32p + 4v + t] (of q[32p + 16 + 4v + t]). q = 0..7 (GGML's
//   two bits, plus 4 where its hmask bit is set), value q - 4.
// Q2_KR16, per super-block (1344 bytes, 21 lines): d (16 x f16) | dmin (16 x f16) | GGML's 16
//   scale bytes as 16 chunks of 16 (chunk s, byte r: sub-block s's scale in the low nibble, its
//   min in the high one) | quants: 16-element sub-block s at 320 + 64 s, byte 4r + t holding in
//   bits 2v..2v+1 q[16s + 4v + t] (0..3; value d·sc·q − dmin·m).
// IQ4_XSR16, per super-block (2176 bytes, 34 lines: the source's bytes): d (16 x f16) | GGML's
//   scales_h as 2 chunks of 16 bytes (chunk c, byte r: byte c of row r's scales_h) | scales_l as 4
//   chunks of 16 (chunk i, byte r: scales_l[i] of row r) | sub-block j (0..7) at 128 + 256 j as
//   Q4_0R16's block of nibble pairs (value d · sc_j · kIQ4Values[q], sc_j = iq4_xs_scale's).
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/dtype.h"

namespace runnel::kernels::cpu {

constexpr size_t kQ4KR16SbBytes = 2304;  // one super-block of a group
constexpr size_t kQ4KR16Dmin = 32, kQ4KR16Scales = 64, kQ4KR16Qs = 256;
constexpr size_t kQ5KR16SbBytes = 2816, kQ5KR16Sub = 320;  // sub-block j at kQ4KR16Qs + 320 j
constexpr size_t kQ2KR16SbBytes = 1344, kQ2KR16Dmin = 32, kQ2KR16Sc = 64, kQ2KR16Qs = 320;
constexpr size_t kIQ4XSR16SbBytes = 2176, kIQ4XSR16Sh = 32, kIQ4XSR16Sl = 64, kIQ4XSR16Qs = 128;

constexpr size_t kQ6KR16Qs = 3072, kQ6KR16Sc = 256, kQ6KR16D = 32, kQ3KR16Qs = 1536;
struct Q6KR16Offsets {
  size_t qs, sc, d;
};
// Super-block s of nsb in Q6_KR16's frame with qs_bytes of quants per super-block.
inline Q6KR16Offsets sc16_offsets(size_t s, size_t nsb, size_t qs_bytes) {
  const size_t pair = 2 * (qs_bytes + kQ6KR16Sc + kQ6KR16D);
  const size_t base = s / 2 * pair;
  if (s + 1 == nsb && nsb % 2 == 1) {  // alone: scales, quants, d
    return {base + kQ6KR16Sc, base, base + kQ6KR16Sc + qs_bytes};
  }
  const size_t h = s % 2, head = 2 * (kQ6KR16D + kQ6KR16Sc);
  return {base + head + h * qs_bytes, base + 2 * kQ6KR16D + h * kQ6KR16Sc, base + h * kQ6KR16D};
}
inline Q6KR16Offsets q6k_r16_offsets(size_t s, size_t nsb) {
  return sc16_offsets(s, nsb, kQ6KR16Qs);
}
inline Q6KR16Offsets q3k_r16_offsets(size_t s, size_t nsb) {
  return sc16_offsets(s, nsb, kQ3KR16Qs);
}

inline bool is_kquant_r16(DType t) {
  return t == DType::kQ2_KR16 || t == DType::kQ3_KR16 || t == DType::kQ4_KR16 ||
         t == DType::kQ5_KR16 || t == DType::kQ6_KR16 || t == DType::kIQ4_XSR16;
}

// Sub-block j's scale (-32..31) of row r in the IQ4_XSR16 super-block at w.
inline int iq4_xs_r16_scale(const uint8_t* w, int r, int j) {
  const int lo = (w[kIQ4XSR16Sl + 16 * (j / 2) + r] >> 4 * (j % 2)) & 15;
  const int hi = (w[kIQ4XSR16Sh + 16 * (j / 4) + r] >> 2 * (j % 4)) & 3;
  return (lo | hi << 4) - 32;
}

// Packs one group (16 rows, row r at rows + r * w_stride) of Q2_K ... Q6_K, IQ4_XS into `out`.
void pack_group_kquant(DType src, const uint8_t* rows, size_t w_stride, size_t k, uint8_t* out);
// Unpacks n rows of a Q2_KR16 ... Q6_KR16 matrix to f32 [n, k], exactly like dequantize_row.
void unpack_kquant_f32(DType packed, const uint8_t* w, size_t n, size_t k, float* out);

}  // namespace runnel::kernels::cpu
