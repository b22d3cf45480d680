// Scalar reference conversions between f32 and GGML's block formats (layouts in quant.h).
// Dequantization follows GGML's arithmetic exactly, operation for operation, so that SIMD kernels
// and real GGUF files can be checked against it. Quantizers for the 32-element types follow GGML's
// reference rounding; the K-quant quantizers are simpler (no search for the best scales) but bound
// the error by half a quantization step of each sub-block (see quant_test.cpp). IQ4_NL and IQ4_XS
// live in quant_iq4.cpp.
#include "kernels/cpu/quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "base/assert.h"
#include "base/half.h"
#include "base/strings.h"
#include "kernels/cpu/quant_iq4.h"

namespace runnel::kernels::cpu {
namespace {

inline float h2f(uint16_t h) { return f16_to_f32(h); }

// The smallest f16 >= v (v >= 0, finite): scales stored as f16 must not shrink, or the largest
// element of a block would no longer fit its integer range.
uint16_t f16_round_up(float v) {
  uint16_t h = f32_to_f16(v);
  if (f16_to_f32(h) < v) ++h;  // positive f16s are ordered like their bit patterns
  return h;
}

// Round half to even, as GGML's nearest_int does.
inline int nearest_int(float v) { return static_cast<int>(std::lrintf(v)); }

// ---- 32-element block types ------------------------------------------------------------------

void dequant_q4_0(const BlockQ4_0* x, float* y, size_t nb) {
  for (size_t i = 0; i < nb; ++i, y += kQK) {
    const float d = h2f(x[i].d);
    for (int j = 0; j < kQK / 2; ++j) {
      const int x0 = (x[i].qs[j] & 0x0F) - 8;
      const int x1 = (x[i].qs[j] >> 4) - 8;
      y[j] = x0 * d;
      y[j + kQK / 2] = x1 * d;
    }
  }
}

void dequant_q4_1(const BlockQ4_1* x, float* y, size_t nb) {
  for (size_t i = 0; i < nb; ++i, y += kQK) {
    const float d = h2f(x[i].d), m = h2f(x[i].m);
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = (x[i].qs[j] & 0x0F) * d + m;
      y[j + kQK / 2] = (x[i].qs[j] >> 4) * d + m;
    }
  }
}

// Q5 fifth bits: bit j of qh for element j (j < 32).
template <class Block>
inline void q5_values(const Block& b, int j, int* x0, int* x1) {
  uint32_t qh;
  std::memcpy(&qh, b.qh, 4);
  const int h0 = ((qh >> j) << 4) & 0x10;
  const int h1 = (qh >> (j + 12)) & 0x10;
  *x0 = (b.qs[j] & 0x0F) | h0;
  *x1 = (b.qs[j] >> 4) | h1;
}

void dequant_q5_0(const BlockQ5_0* x, float* y, size_t nb) {
  for (size_t i = 0; i < nb; ++i, y += kQK) {
    const float d = h2f(x[i].d);
    for (int j = 0; j < kQK / 2; ++j) {
      int x0, x1;
      q5_values(x[i], j, &x0, &x1);
      y[j] = (x0 - 16) * d;
      y[j + kQK / 2] = (x1 - 16) * d;
    }
  }
}

void dequant_q5_1(const BlockQ5_1* x, float* y, size_t nb) {
  for (size_t i = 0; i < nb; ++i, y += kQK) {
    const float d = h2f(x[i].d), m = h2f(x[i].m);
    for (int j = 0; j < kQK / 2; ++j) {
      int x0, x1;
      q5_values(x[i], j, &x0, &x1);
      y[j] = x0 * d + m;
      y[j + kQK / 2] = x1 * d + m;
    }
  }
}

void dequant_q8_0(const BlockQ8_0* x, float* y, size_t nb) {
  for (size_t i = 0; i < nb; ++i, y += kQK) {
    const float d = h2f(x[i].d);
    for (int j = 0; j < kQK; ++j) y[j] = x[i].qs[j] * d;
  }
}

// Symmetric 4/5-bit: the element of largest magnitude maps to -8 (-16), as in GGML.
template <class Block, int kLevels>
void quant_sym(const float* x, Block* y, size_t nb) {
  for (size_t i = 0; i < nb; ++i, x += kQK) {
    float amax = 0, max = 0;
    for (int j = 0; j < kQK; ++j) {
      if (std::fabs(x[j]) > amax) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    const float d = max / -(kLevels / 2);
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[i].d = f32_to_f16(d);
    uint32_t qh = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      const int x0 = std::min(kLevels - 1, static_cast<int>(x[j] * id + (kLevels / 2 + 0.5f)));
      const int x1 =
          std::min(kLevels - 1, static_cast<int>(x[j + kQK / 2] * id + (kLevels / 2 + 0.5f)));
      y[i].qs[j] = static_cast<uint8_t>((x0 & 0x0F) | ((x1 & 0x0F) << 4));
      qh |= static_cast<uint32_t>((x0 & 0x10) >> 4) << j;
      qh |= static_cast<uint32_t>((x1 & 0x10) >> 4) << (j + kQK / 2);
    }
    if constexpr (kLevels == 32) std::memcpy(y[i].qh, &qh, 4);
  }
}

// Asymmetric 4/5-bit: value = q * d + min over [min, max] of the block.
template <class Block, int kLevels>
void quant_asym(const float* x, Block* y, size_t nb) {
  for (size_t i = 0; i < nb; ++i, x += kQK) {
    float min = x[0], max = x[0];
    for (int j = 1; j < kQK; ++j) {
      min = std::min(min, x[j]);
      max = std::max(max, x[j]);
    }
    const float d = (max - min) / (kLevels - 1);
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[i].d = f32_to_f16(d);
    y[i].m = f32_to_f16(min);
    uint32_t qh = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      const int x0 = std::min(kLevels - 1, static_cast<int>((x[j] - min) * id + 0.5f));
      const int x1 = std::min(kLevels - 1, static_cast<int>((x[j + kQK / 2] - min) * id + 0.5f));
      y[i].qs[j] = static_cast<uint8_t>((x0 & 0x0F) | ((x1 & 0x0F) << 4));
      qh |= static_cast<uint32_t>((x0 & 0x10) >> 4) << j;
      qh |= static_cast<uint32_t>((x1 & 0x10) >> 4) << (j + kQK / 2);
    }
    if constexpr (kLevels == 32) std::memcpy(y[i].qh, &qh, 4);
  }
}

void quant_q8_0(const float* x, BlockQ8_0* y, size_t nb) {
  for (size_t i = 0; i < nb; ++i, x += kQK) {
    float amax = 0;
    for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[i].d = f32_to_f16(d);
    for (int j = 0; j < kQK; ++j) y[i].qs[j] = static_cast<int8_t>(std::roundf(x[j] * id));
  }
}

// ---- K-quants: dequantization ----------------------------------------------------------------

void dequant_q2_k(const BlockQ2_K* x, float* y, size_t nb) {
  for (size_t i = 0; i < nb; ++i) {
    const float d = h2f(x[i].d), min = h2f(x[i].dmin);
    const uint8_t* q = x[i].qs;
    int is = 0;
    for (int n = 0; n < kQKK; n += 128, q += 32) {
      for (int shift = 0; shift < 8; shift += 2) {
        for (int half = 0; half < 2; ++half) {
          const uint8_t sc = x[i].scales[is++];
          const float dl = d * (sc & 0x0F), ml = min * (sc >> 4);
          for (int l = 0; l < 16; ++l) *y++ = dl * ((q[l + 16 * half] >> shift) & 3) - ml;
        }
      }
    }
  }
}

void dequant_q3_k(const BlockQ3_K* x, float* y, size_t nb) {
  for (size_t i = 0; i < nb; ++i) {
    const float d_all = h2f(x[i].d);
    const uint8_t* q = x[i].qs;
    const uint8_t* hm = x[i].hmask;
    int is = 0;
    uint8_t m = 1;
    for (int n = 0; n < kQKK; n += 128, q += 32) {
      for (int shift = 0; shift < 8; shift += 2, m <<= 1) {
        for (int half = 0; half < 2; ++half) {
          const float dl = d_all * q3_k_scale(x[i].scales, is++);
          for (int l = 16 * half; l < 16 * half + 16; ++l)
            *y++ = dl * (((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4));
        }
      }
    }
  }
}

// Six-bit scale and min of sub-block j (0..7) of Q4_K/Q5_K, packed in 12 bytes.
inline void k4_scale_min(int j, const uint8_t* q, int* d, int* m) {
  if (j < 4) {
    *d = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *d = (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

void dequant_q4_k(const BlockQ4_K* x, float* y, size_t nb) {
  for (size_t i = 0; i < nb; ++i) {
    const float d = h2f(x[i].d), min = h2f(x[i].dmin);
    const uint8_t* q = x[i].qs;
    for (int is = 0; is < 8; is += 2, q += 32) {
      int sc, m;
      k4_scale_min(is, x[i].scales, &sc, &m);
      const float d1 = d * sc, m1 = min * m;
      k4_scale_min(is + 1, x[i].scales, &sc, &m);
      const float d2 = d * sc, m2 = min * m;
      for (int l = 0; l < 32; ++l) *y++ = d1 * (q[l] & 0x0F) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * (q[l] >> 4) - m2;
    }
  }
}

void dequant_q5_k(const BlockQ5_K* x, float* y, size_t nb) {
  for (size_t i = 0; i < nb; ++i) {
    const float d = h2f(x[i].d), min = h2f(x[i].dmin);
    const uint8_t* ql = x[i].qs;
    const uint8_t* qh = x[i].qh;
    uint8_t u1 = 1, u2 = 2;
    for (int is = 0; is < 8; is += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
      int sc, m;
      k4_scale_min(is, x[i].scales, &sc, &m);
      const float d1 = d * sc, m1 = min * m;
      k4_scale_min(is + 1, x[i].scales, &sc, &m);
      const float d2 = d * sc, m2 = min * m;
      for (int l = 0; l < 32; ++l) *y++ = d1 * ((ql[l] & 0x0F) + (qh[l] & u1 ? 16 : 0)) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
    }
  }
}

void dequant_q6_k(const BlockQ6_K* x, float* y, size_t nb) {
  for (size_t i = 0; i < nb; ++i) {
    const float d = h2f(x[i].d);
    const uint8_t* ql = x[i].ql;
    const uint8_t* qh = x[i].qh;
    const int8_t* sc = x[i].scales;
    for (int n = 0; n < kQKK; n += 128, y += 128, ql += 64, qh += 32, sc += 8) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = d * sc[is] * q1;
        y[l + 32] = d * sc[is + 2] * q2;
        y[l + 64] = d * sc[is + 4] * q3;
        y[l + 96] = d * sc[is + 6] * q4;
      }
    }
  }
}

void dequant_q8_k(const BlockQ8_K* x, float* y, size_t nb) {
  for (size_t i = 0; i < nb; ++i, y += kQKK) {
    for (int j = 0; j < kQKK; ++j) y[j] = x[i].d * x[i].qs[j];
  }
}

// ---- K-quants: quantization ------------------------------------------------------------------

// Asymmetric super-block of n_sub sub-blocks: sub-block s has value = d*sc[s]*q - dmin*m[s], with
// q in [0, n_levels) and sc, m in [0, scale_max]. The mins are chosen first (rounded up, so every
// element stays >= the dequantized min), then each scale is rounded up to cover the sub-block's
// range, so the only error is the final rounding of q: at most half a step d*sc[s].
struct AsymBlock {
  float d, dmin;
  uint16_t d_h, dmin_h;
  int sc[16], m[16];
};

void asym_params(const float* x, int n_sub, int sub_len, int n_levels, int scale_max,
                 AsymBlock* b) {
  float neg_min[16], top[16];
  float max_neg = 0;
  for (int s = 0; s < n_sub; ++s) {
    float lo = 0, hi = 0;  // the range always includes 0, as GGML's does
    for (int l = 0; l < sub_len; ++l) {
      lo = std::min(lo, x[s * sub_len + l]);
      hi = std::max(hi, x[s * sub_len + l]);
    }
    neg_min[s] = -lo;
    top[s] = hi;
    max_neg = std::max(max_neg, neg_min[s]);
  }
  b->dmin_h = f16_round_up(max_neg / scale_max);
  b->dmin = h2f(b->dmin_h);
  float need[16], max_need = 0;
  for (int s = 0; s < n_sub; ++s) {
    b->m[s] =
        b->dmin > 0 ? std::min(scale_max, static_cast<int>(std::ceil(neg_min[s] / b->dmin))) : 0;
    need[s] = (top[s] + b->dmin * b->m[s]) / (n_levels - 1);
    max_need = std::max(max_need, need[s]);
  }
  b->d_h = f16_round_up(max_need / scale_max);
  b->d = h2f(b->d_h);
  for (int s = 0; s < n_sub; ++s) {
    b->sc[s] = b->d > 0 ? std::min(scale_max, static_cast<int>(std::ceil(need[s] / b->d))) : 0;
  }
}

inline int asym_q(const AsymBlock& b, int s, float v, int n_levels) {
  const float ds = b.d * b.sc[s], dm = b.dmin * b.m[s];
  if (ds == 0) return 0;
  return std::clamp(nearest_int((v + dm) / ds), 0, n_levels - 1);
}

void pack_k4_scales(const AsymBlock& b, uint8_t* out) {
  for (int j = 0; j < 4; ++j) {
    out[j] = static_cast<uint8_t>(b.sc[j] | ((b.sc[j + 4] >> 4) << 6));
    out[j + 4] = static_cast<uint8_t>(b.m[j] | ((b.m[j + 4] >> 4) << 6));
    out[j + 8] = static_cast<uint8_t>((b.sc[j + 4] & 0x0F) | ((b.m[j + 4] & 0x0F) << 4));
  }
}

void quant_q4_k(const float* x, BlockQ4_K* y, size_t nb) {
  for (size_t i = 0; i < nb; ++i, x += kQKK) {
    AsymBlock b;
    asym_params(x, 8, 32, 16, 63, &b);
    y[i].d = b.d_h;
    y[i].dmin = b.dmin_h;
    pack_k4_scales(b, y[i].scales);
    for (int p = 0; p < 4; ++p) {  // pairs of sub-blocks share 32 bytes: low nibble, high nibble
      for (int l = 0; l < 32; ++l) {
        const int q0 = asym_q(b, 2 * p, x[64 * p + l], 16);
        const int q1 = asym_q(b, 2 * p + 1, x[64 * p + 32 + l], 16);
        y[i].qs[32 * p + l] = static_cast<uint8_t>(q0 | (q1 << 4));
      }
    }
  }
}

void quant_q5_k(const float* x, BlockQ5_K* y, size_t nb) {
  for (size_t i = 0; i < nb; ++i, x += kQKK) {
    AsymBlock b;
    asym_params(x, 8, 32, 32, 63, &b);
    y[i].d = b.d_h;
    y[i].dmin = b.dmin_h;
    pack_k4_scales(b, y[i].scales);
    std::memset(y[i].qh, 0, sizeof(y[i].qh));
    for (int p = 0; p < 4; ++p) {
      for (int l = 0; l < 32; ++l) {
        const int q0 = asym_q(b, 2 * p, x[64 * p + l], 32);
        const int q1 = asym_q(b, 2 * p + 1, x[64 * p + 32 + l], 32);
        y[i].qs[32 * p + l] = static_cast<uint8_t>((q0 & 0x0F) | ((q1 & 0x0F) << 4));
        y[i].qh[l] |= static_cast<uint8_t>(((q0 >> 4) << (2 * p)) | ((q1 >> 4) << (2 * p + 1)));
      }
    }
  }
}

void quant_q2_k(const float* x, BlockQ2_K* y, size_t nb) {
  for (size_t i = 0; i < nb; ++i, x += kQKK) {
    AsymBlock b;
    asym_params(x, 16, 16, 4, 15, &b);
    y[i].d = b.d_h;
    y[i].dmin = b.dmin_h;
    for (int s = 0; s < 16; ++s) y[i].scales[s] = static_cast<uint8_t>(b.sc[s] | (b.m[s] << 4));
    std::memset(y[i].qs, 0, sizeof(y[i].qs));
    // Element 128*n + 32*j + l (l < 32) is in sub-block 8n + 2j + l/16, bits 2j of qs[32n + l].
    for (int e = 0; e < kQKK; ++e) {
      const int n = e / 128, j = (e % 128) / 32, l = e % 32;
      const int q = asym_q(b, 8 * n + 2 * j + l / 16, x[e], 4);
      y[i].qs[32 * n + l] |= static_cast<uint8_t>(q << (2 * j));
    }
  }
}

// Symmetric super-block (Q3_K, Q6_K): value = d * sc[s] * q with q in [-q_neg, q_neg - 1]. Each
// sub-block's scale is rounded up to cover its largest magnitude with q_neg - 1 steps.
void sym_params(const float* x, int n_sub, int sub_len, int q_pos, int scale_max, uint16_t* d_h,
                float* d, int* sc) {
  float need[16], max_need = 0;
  for (int s = 0; s < n_sub; ++s) {
    float amax = 0;
    for (int l = 0; l < sub_len; ++l) amax = std::max(amax, std::fabs(x[s * sub_len + l]));
    need[s] = amax / q_pos;
    max_need = std::max(max_need, need[s]);
  }
  *d_h = f16_round_up(max_need / scale_max);
  *d = h2f(*d_h);
  for (int s = 0; s < n_sub; ++s)
    sc[s] = *d > 0 ? std::min(scale_max, static_cast<int>(std::ceil(need[s] / *d))) : 0;
}

inline int sym_q(float d, int sc, float v, int q_neg) {
  const float ds = d * sc;
  if (ds == 0) return 0;
  return std::clamp(nearest_int(v / ds), -q_neg, q_neg - 1);
}

void quant_q3_k(const float* x, BlockQ3_K* y, size_t nb) {
  for (size_t i = 0; i < nb; ++i, x += kQKK) {
    float d;
    int sc[16];
    sym_params(x, 16, 16, 3, 31, &y[i].d, &d, sc);
    std::memset(y[i].scales, 0, sizeof(y[i].scales));
    for (int s = 0; s < 16; ++s) {  // inverse of q3_k_scale
      const int v = sc[s] + 32;
      if (s < 8) {
        y[i].scales[s] |= static_cast<uint8_t>(v & 0x0F);
      } else {
        y[i].scales[s - 8] |= static_cast<uint8_t>((v & 0x0F) << 4);
      }
      y[i].scales[8 + s % 4] |= static_cast<uint8_t>((v >> 4) << (2 * (s / 4)));
    }
    std::memset(y[i].qs, 0, sizeof(y[i].qs));
    std::memset(y[i].hmask, 0, sizeof(y[i].hmask));
    for (int e = 0; e < kQKK; ++e) {
      const int n = e / 128, j = (e % 128) / 32, l = e % 32, s = 8 * n + 2 * j + l / 16;
      const int q = sym_q(d, sc[s], x[e], 4) + 4;  // 0..7: low 2 bits in qs, bit 2 in hmask
      y[i].qs[32 * n + l] |= static_cast<uint8_t>((q & 3) << (2 * j));
      if (q & 4) y[i].hmask[l] |= static_cast<uint8_t>(1 << (4 * n + j));
    }
  }
}

void quant_q6_k(const float* x, BlockQ6_K* y, size_t nb) {
  for (size_t i = 0; i < nb; ++i, x += kQKK) {
    float d;
    int sc[16];
    sym_params(x, 16, 16, 31, 127, &y[i].d, &d, sc);
    for (int s = 0; s < 16; ++s) y[i].scales[s] = static_cast<int8_t>(sc[s]);
    std::memset(y[i].ql, 0, sizeof(y[i].ql));
    std::memset(y[i].qh, 0, sizeof(y[i].qh));
    // Element 128*n + 32*k + l: sub-block 8n + 2k + l/16; low nibble of ql[64n + 32*(k%2) + l]
    // (high nibble when k >= 2), 2 high bits at 2k of qh[32n + l].
    for (int e = 0; e < kQKK; ++e) {
      const int n = e / 128, k = (e % 128) / 32, l = e % 32;
      const int q = sym_q(d, sc[8 * n + 2 * k + l / 16], x[e], 32) + 32;
      y[i].ql[64 * n + 32 * (k % 2) + l] |= static_cast<uint8_t>((q & 0x0F) << (4 * (k / 2)));
      y[i].qh[32 * n + l] |= static_cast<uint8_t>((q >> 4) << (2 * k));
    }
  }
}

void quant_q8_k(const float* x, BlockQ8_K* y, size_t nb) {
  for (size_t i = 0; i < nb; ++i, x += kQKK) {
    float amax = 0, max = 0;
    for (int j = 0; j < kQKK; ++j) {
      if (std::fabs(x[j]) > amax) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    if (amax == 0) {
      y[i].d = 0;
      std::memset(y[i].qs, 0, sizeof(y[i].qs));
      std::memset(y[i].bsums, 0, sizeof(y[i].bsums));
      continue;
    }
    // -127, not -128, as GGML does since IQ2_XXS: every q is in [-127, 127], which SIMD dot
    // products (sign tricks with maddubs) rely on.
    const float iscale = -127.0f / max;
    for (int j = 0; j < kQKK; ++j) {
      y[i].qs[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * x[j])));
    }
    for (int j = 0; j < kQKK / 16; ++j) {
      int sum = 0;
      for (int l = 0; l < 16; ++l) sum += y[i].qs[16 * j + l];
      y[i].bsums[j] = static_cast<int16_t>(sum);
    }
    y[i].d = 1 / iscale;
  }
}

template <class T>
void convert(const void* src, float* dst, size_t n) {
  const auto* s = static_cast<const T*>(src);
  for (size_t i = 0; i < n; ++i) dst[i] = static_cast<float>(s[i]);
}

}  // namespace

void dequantize_row(DType type, const void* src, float* dst, size_t n) {
  RUNNEL_ASSERT(n % block_elems(type) == 0);
  const size_t nb = n / block_elems(type);
  switch (type) {
    case DType::kF32:
      std::memcpy(dst, src, n * 4);
      return;
    case DType::kF16: {
      const auto* s = static_cast<const uint16_t*>(src);
      for (size_t i = 0; i < n; ++i) dst[i] = f16_to_f32(s[i]);
      return;
    }
    case DType::kBF16: {
      const auto* s = static_cast<const uint16_t*>(src);
      for (size_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(s[i]);
      return;
    }
    case DType::kF64:
      convert<double>(src, dst, n);
      return;
    case DType::kI64:
      convert<int64_t>(src, dst, n);
      return;
    case DType::kI32:
      convert<int32_t>(src, dst, n);
      return;
    case DType::kI16:
      convert<int16_t>(src, dst, n);
      return;
    case DType::kI8:
      convert<int8_t>(src, dst, n);
      return;
    case DType::kU8:
      convert<uint8_t>(src, dst, n);
      return;
    case DType::kU32:
      convert<uint32_t>(src, dst, n);
      return;
    case DType::kBool: {
      const auto* s = static_cast<const uint8_t*>(src);
      for (size_t i = 0; i < n; ++i) dst[i] = s[i] != 0 ? 1.0f : 0.0f;
      return;
    }
    case DType::kQ4_0:
      dequant_q4_0(static_cast<const BlockQ4_0*>(src), dst, nb);
      return;
    case DType::kQ4_1:
      dequant_q4_1(static_cast<const BlockQ4_1*>(src), dst, nb);
      return;
    case DType::kQ5_0:
      dequant_q5_0(static_cast<const BlockQ5_0*>(src), dst, nb);
      return;
    case DType::kQ5_1:
      dequant_q5_1(static_cast<const BlockQ5_1*>(src), dst, nb);
      return;
    case DType::kQ8_0:
      dequant_q8_0(static_cast<const BlockQ8_0*>(src), dst, nb);
      return;
    case DType::kQ2_K:
      dequant_q2_k(static_cast<const BlockQ2_K*>(src), dst, nb);
      return;
    case DType::kQ3_K:
      dequant_q3_k(static_cast<const BlockQ3_K*>(src), dst, nb);
      return;
    case DType::kQ4_K:
      dequant_q4_k(static_cast<const BlockQ4_K*>(src), dst, nb);
      return;
    case DType::kQ5_K:
      dequant_q5_k(static_cast<const BlockQ5_K*>(src), dst, nb);
      return;
    case DType::kQ6_K:
      dequant_q6_k(static_cast<const BlockQ6_K*>(src), dst, nb);
      return;
    case DType::kQ8_K:
      dequant_q8_k(static_cast<const BlockQ8_K*>(src), dst, nb);
      return;
    case DType::kIQ4_NL:
      dequant_iq4_nl(static_cast<const BlockIQ4_NL*>(src), dst, nb);
      return;
    case DType::kIQ4_XS:
      dequant_iq4_xs(static_cast<const BlockIQ4_XS*>(src), dst, nb);
      return;
    default:
      RUNNEL_ASSERT_MSG(false, str_cat("dequantize_row: unsupported ", dtype_name(type)));
  }
}

bool quantize_row(DType type, const float* src, void* dst, size_t n) {
  RUNNEL_ASSERT(n % block_elems(type) == 0);
  const size_t nb = n / block_elems(type);
  switch (type) {
    case DType::kF32:
      std::memcpy(dst, src, n * 4);
      return true;
    case DType::kF16: {
      auto* d = static_cast<uint16_t*>(dst);
      for (size_t i = 0; i < n; ++i) d[i] = f32_to_f16(src[i]);
      return true;
    }
    case DType::kBF16: {
      auto* d = static_cast<uint16_t*>(dst);
      for (size_t i = 0; i < n; ++i) d[i] = f32_to_bf16(src[i]);
      return true;
    }
    case DType::kQ4_0:
      quant_sym<BlockQ4_0, 16>(src, static_cast<BlockQ4_0*>(dst), nb);
      return true;
    case DType::kQ4_1:
      quant_asym<BlockQ4_1, 16>(src, static_cast<BlockQ4_1*>(dst), nb);
      return true;
    case DType::kQ5_0:
      quant_sym<BlockQ5_0, 32>(src, static_cast<BlockQ5_0*>(dst), nb);
      return true;
    case DType::kQ5_1:
      quant_asym<BlockQ5_1, 32>(src, static_cast<BlockQ5_1*>(dst), nb);
      return true;
    case DType::kQ8_0:
      quant_q8_0(src, static_cast<BlockQ8_0*>(dst), nb);
      return true;
    case DType::kQ2_K:
      quant_q2_k(src, static_cast<BlockQ2_K*>(dst), nb);
      return true;
    case DType::kQ3_K:
      quant_q3_k(src, static_cast<BlockQ3_K*>(dst), nb);
      return true;
    case DType::kQ4_K:
      quant_q4_k(src, static_cast<BlockQ4_K*>(dst), nb);
      return true;
    case DType::kQ5_K:
      quant_q5_k(src, static_cast<BlockQ5_K*>(dst), nb);
      return true;
    case DType::kQ6_K:
      quant_q6_k(src, static_cast<BlockQ6_K*>(dst), nb);
      return true;
    case DType::kQ8_K:
      quant_q8_k(src, static_cast<BlockQ8_K*>(dst), nb);
      return true;
    case DType::kIQ4_NL:
      quant_iq4_nl(src, static_cast<BlockIQ4_NL*>(dst), nb);
      return true;
    case DType::kIQ4_XS:
      quant_iq4_xs(src, static_cast<BlockIQ4_XS*>(dst), nb);
      return true;
    default:
      return false;
  }
}

}  // namespace runnel::kernels::cpu
