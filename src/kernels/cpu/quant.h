// Block layouts of GGML's quantized types, byte-compatible with GGUF files, and the scalar
// reference conversions to and from f32. Every SIMD kernel is tested against these.
// A row of n elements is n / block_elems blocks (base/dtype.h gives the sizes).
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/dtype.h"

namespace runnel::kernels::cpu {

constexpr int kQK = 32;    // elements per block of Q4_0, Q4_1, Q5_0, Q5_1, Q8_0
constexpr int kQKK = 256;  // elements per super-block of the K-quants
constexpr int kKScaleBytes = 12;

#pragma pack(push, 1)
struct BlockQ4_0 {
  uint16_t d;  // f16 scale
  // Element j in the low nibble of qs[j], element j+16 in the high nibble; value = (q - 8) * d.
  uint8_t qs[kQK / 2];
};
struct BlockQ4_1 {
  uint16_t d, m;  // f16 scale and min; value = q * d + m
  uint8_t qs[kQK / 2];
};
struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];        // fifth bits, bit j for element j
  uint8_t qs[kQK / 2];  // value = (q - 16) * d
};
struct BlockQ5_1 {
  uint16_t d, m;
  uint8_t qh[4];
  uint8_t qs[kQK / 2];
};
struct BlockQ8_0 {
  uint16_t d;  // f16 scale; value = q * d
  int8_t qs[kQK];
};
struct BlockQ2_K {
  uint8_t scales[kQKK / 16];  // 4-bit scale and 4-bit min per 16 elements
  uint8_t qs[kQKK / 4];
  uint16_t d, dmin;
};
struct BlockQ3_K {
  uint8_t hmask[kQKK / 8];
  uint8_t qs[kQKK / 4];
  uint8_t scales[12];
  uint16_t d;
};
// Scale `is` (0..15, one per 16 elements) of a Q3_K block, -32..31: six bits, the low 4 in bytes
// 0..7 of scales, the high 2 in bytes 8..11.
inline int q3_k_scale(const uint8_t* scales, int is) {
  const int lo = is < 8 ? scales[is] & 0x0F : scales[is - 8] >> 4;
  const int hi = (scales[8 + is % 4] >> (2 * (is / 4))) & 3;
  return (lo | hi << 4) - 32;
}
struct BlockQ4_K {
  uint16_t d, dmin;
  uint8_t scales[kKScaleBytes];  // 6-bit scales and mins for 8 groups of 32
  uint8_t qs[kQKK / 2];
};
struct BlockQ5_K {
  uint16_t d, dmin;
  uint8_t scales[kKScaleBytes];
  uint8_t qh[kQKK / 8];
  uint8_t qs[kQKK / 2];
};
struct BlockQ6_K {
  uint8_t ql[kQKK / 2];
  uint8_t qh[kQKK / 4];
  int8_t scales[kQKK / 16];
  uint16_t d;
};
struct BlockQ8_K {
  float d;
  int8_t qs[kQKK];
  int16_t bsums[kQKK / 16];
};
// IQ4_NL and IQ4_XS: each nibble indexes kIQ4Values (GGML's kvalues_iq4nl, a non-uniform grid).
struct BlockIQ4_NL {
  uint16_t d;           // f16 scale; element j in the low nibble of qs[j], j + 16 in the high one
  uint8_t qs[kQK / 2];  // value = d * kIQ4Values[q]
};
struct BlockIQ4_XS {
  uint16_t d;                   // f16 super-block scale
  uint16_t scales_h;            // bits 2j..2j+1: the high 2 bits of sub-block j's 6-bit scale
  uint8_t scales_l[kQKK / 64];  // nibble j % 2 of byte j / 2: the low 4 bits of sub-block j's
  uint8_t qs[kQKK / 2];         // sub-block j (32 elements) as an IQ4_NL block's qs at 16 j
};
#pragma pack(pop)

inline constexpr int8_t kIQ4Values[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                          1,    13,   25,  38,  53,  69,  89,  113};
// Sub-block j's scale (-32..31) of an IQ4_XS block: value = d * iq4_xs_scale(b, j) * kIQ4Values[q].
inline int iq4_xs_scale(const BlockIQ4_XS& b, int j) {
  return (((b.scales_l[j / 2] >> 4 * (j % 2)) & 15) | ((b.scales_h >> 2 * j) & 3) << 4) - 32;
}

static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20 && sizeof(BlockQ5_0) == 22 &&
              sizeof(BlockQ5_1) == 24 && sizeof(BlockQ8_0) == 34 && sizeof(BlockQ2_K) == 84 &&
              sizeof(BlockQ3_K) == 110 && sizeof(BlockQ4_K) == 144 && sizeof(BlockQ5_K) == 176 &&
              sizeof(BlockQ6_K) == 210 && sizeof(BlockQ8_K) == 292 && sizeof(BlockIQ4_NL) == 18 &&
              sizeof(BlockIQ4_XS) == 136);

// Scalar reference: n elements of `type` at src (n a multiple of block_elems(type)) to f32.
// Works for every plain type too (f32, f16, bf16 exactly; f64 and integers converted numerically,
// bool to 0/1).
void dequantize_row(DType type, const void* src, float* dst, size_t n);

// Scalar reference quantization of n f32 values to `type` (plain f16/bf16/f32 and every block type
// listed above that a writer needs: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K..Q6_K, Q8_K, IQ4_NL,
// IQ4_XS). Returns false for a type it cannot produce.
bool quantize_row(DType type, const float* src, void* dst, size_t n);

}  // namespace runnel::kernels::cpu
