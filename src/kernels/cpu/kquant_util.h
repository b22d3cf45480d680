// Unpacking helpers for the K-quant matmul tiles (Q4_K, Q6_K), shared by every ISA's tiles with
// internal linkage. Layouts: quant.h and GGML. Each 32-element group of a super-block meets one
// BlockQ8Act of the activations.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/cpu/quant.h"

namespace runnel::kernels::cpu {
namespace {

// Q4_K: six-bit scale and min of group j (0..7) from the 12 packed bytes.
inline void q4k_scale_min(const uint8_t* s, int j, int* sc, int* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 0xf) | ((s[j - 4] >> 6) << 4);
    *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

inline uint16_t load_u16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return h;
}

// Q4_K group g (0..7) of a super-block: its 32 quants are the low (g even) or high (g odd)
// nibbles of qs[32 * (g / 2) .. + 32), in element order.
constexpr size_t kQ4KQs = offsetof(BlockQ4_K, qs);
constexpr size_t kQ4KScales = offsetof(BlockQ4_K, scales);
// Q6_K group g: half h = g / 4, r = g % 4. Low 4 bits: ql[64h + (r & 1) * 32 + l], nibble r / 2;
// high 2 bits: bits 2r..2r+1 of qh[32h + l]; value q - 32 with scale scales[8h + 2r + l / 16].
constexpr size_t kQ6KQl = offsetof(BlockQ6_K, ql);
constexpr size_t kQ6KQh = offsetof(BlockQ6_K, qh);
constexpr size_t kQ6KScales = offsetof(BlockQ6_K, scales);
constexpr size_t kQ6KD = offsetof(BlockQ6_K, d);

}  // namespace
}  // namespace runnel::kernels::cpu
