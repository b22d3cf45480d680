// Q2_KR16 ... Q6_KR16, IQ4_XSR16 (packed_kquants.h): packing from GGML blocks, unpacking,
// and the scalar reference kernels that define their arithmetic for every SIMD variant, per output
// lane and 256-element super-block, on x from quantize_act_q8_256 (one d_x per super-block):
//   Q4_K, Q5_K: isum = Σ_j sc_j·Σ q·x_q, imin = Σ_j m_j·Σ x_q (j = the 8 sub-blocks of 32);
//     acc = fma(float(isum), d·d_x, acc);  acc = fma(float(imin), dmin·(−d_x), acc)
//   Q6_K, Q3_K: isum = Σ_s sc_s·Σ (q − 32)·x_q, Q3_K (q − 4) (s = the 16 sub-blocks of 16);
//     acc = fma(float(isum), d·d_x, acc)
//   Q2_K: isum = Σ_s sc_s·Σ q·x_q, imin = Σ_s m_s·Σ x_q (s = the 16 sub-blocks of 16); then
//     Q4_K's two fmas
//   IQ4_XS: isum = Σ_j sc_j·(Σ (v + 128)·x_q − 128·Σ x_q) (v = kIQ4Values[q]; j = the 8 sub-blocks
//     of 32); acc = fma(float(isum), d·d_x, acc)
// The integer sums are exact in int32 (|isum| < 2^27); the f32 operations are done in exactly
// this order everywhere.
#include "kernels/cpu/packed_kquants.h"

#include <cmath>
#include <cstring>

#include "base/error.h"
#include "base/half.h"
#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/kquant_util.h"
#include "kernels/cpu/packed.h"
#include "kernels/cpu/quant.h"

namespace runnel::kernels::cpu {
namespace {

float load_f16(const uint8_t* p) { return f16_to_f32(load_u16(p)); }

// A GGML super-block's 256 quants in element order, unsigned (Q4_K 0..15, Q6_K 0..63), in one pass
// over its layout (a function per element, called 256 times per row and super-block, was 40% of a
// Q6_K model's load).
void q4k_quants(const uint8_t* blk, uint8_t* q) {
  for (int p = 0; p < 4; ++p) {
    for (int l = 0; l < 32; ++l) {
      const uint8_t b = blk[kQ4KQs + 32 * p + l];
      q[64 * p + l] = b & 0xf;
      q[64 * p + 32 + l] = b >> 4;
    }
  }
}
void q5k_quants(const uint8_t* blk, uint8_t* q) {
  const uint8_t* qh = blk + offsetof(BlockQ5_K, qh);
  for (int p = 0; p < 4; ++p) {
    for (int l = 0; l < 32; ++l) {
      const uint8_t b = blk[offsetof(BlockQ5_K, qs) + 32 * p + l];
      q[64 * p + l] = static_cast<uint8_t>((b & 0xf) | ((qh[l] >> (2 * p)) & 1) << 4);
      q[64 * p + 32 + l] = static_cast<uint8_t>((b >> 4) | ((qh[l] >> (2 * p + 1)) & 1) << 4);
    }
  }
}
// Q2_K's: 2 bits at shift 2 · (e % 128 / 32) of qs[32 · (e / 128) + e % 32].
// (Loops over l innermost: 32 contiguous bytes, which the compiler vectorizes.)
void q2k_quants(const uint8_t* blk, uint8_t* q) {
  const BlockQ2_K& b = *reinterpret_cast<const BlockQ2_K*>(blk);
  for (int n = 0; n < 2; ++n)
    for (int j = 0; j < 4; ++j)
      for (int l = 0; l < 32; ++l) q[128 * n + 32 * j + l] = (b.qs[32 * n + l] >> (2 * j)) & 3;
}

// Q3_K's: GGML's 2 bits (at shift 2 · (e % 128 / 32) of qs[32 · (e / 128) + e % 32]) plus 4 where
// bit e / 32 of hmask[e % 32] is set; value q - 4.
void q3k_quants(const uint8_t* blk, uint8_t* q) {
  const BlockQ3_K& b = *reinterpret_cast<const BlockQ3_K*>(blk);
  for (int n = 0; n < 2; ++n) {
    for (int j = 0; j < 4; ++j) {
      for (int l = 0; l < 32; ++l) {
        q[128 * n + 32 * j + l] = static_cast<uint8_t>(((b.qs[32 * n + l] >> (2 * j)) & 3) |
                                                       ((b.hmask[l] >> (4 * n + j)) & 1) << 2);
      }
    }
  }
}
void q6k_quants(const uint8_t* blk, uint8_t* q) {
  for (int h = 0; h < 2; ++h) {
    for (int l = 0; l < 32; ++l) {
      const uint8_t a = blk[kQ6KQl + 64 * h + l], b = blk[kQ6KQl + 64 * h + 32 + l];
      const uint8_t hb = blk[kQ6KQh + 32 * h + l];
      uint8_t* o = q + 128 * h + l;
      o[0] = static_cast<uint8_t>((a & 0xf) | (hb & 3) << 4);
      o[32] = static_cast<uint8_t>((b & 0xf) | ((hb >> 2) & 3) << 4);
      o[64] = static_cast<uint8_t>((a >> 4) | ((hb >> 4) & 3) << 4);
      o[96] = static_cast<uint8_t>((b >> 4) | ((hb >> 6) & 3) << 4);
    }
  }
}

// Q4_K's or Q5_K's super-block (the same d, dmin and scale bytes at the same offsets): the header,
// then each sub-block's nibble pairs (and for Q5_K, before them, its fifth bits).
template <bool kQ5>
void pack_sb_q45_k(const uint8_t* const* blk, uint8_t* out) {
  static_assert(offsetof(BlockQ5_K, d) == offsetof(BlockQ4_K, d) &&
                offsetof(BlockQ5_K, dmin) == offsetof(BlockQ4_K, dmin) &&
                offsetof(BlockQ5_K, scales) == offsetof(BlockQ4_K, scales));
  constexpr size_t kSub = kQ5 ? kQ5KR16Sub : 256, kNib = kQ5 ? 64 : 0;
  for (int r = 0; r < kPackRows; ++r) {
    std::memcpy(out + 2 * r, blk[r] + offsetof(BlockQ4_K, d), 2);
    std::memcpy(out + kQ4KR16Dmin + 2 * r, blk[r] + offsetof(BlockQ4_K, dmin), 2);
    for (int i = 0; i < kKScaleBytes; ++i) out[kQ4KR16Scales + 16 * i + r] = blk[r][kQ4KScales + i];
    uint8_t q[kQKK];
    if constexpr (kQ5) {
      q5k_quants(blk[r], q);
    } else {
      q4k_quants(blk[r], q);
    }
    for (int j = 0; j < 8; ++j) {
      uint8_t* sub = out + kQ4KR16Qs + kSub * j;
      for (int t = 0; t < 4; ++t) {
        int fifth = 0;
        for (int c = 0; c < 4; ++c) {
          const int e = 32 * j + 4 * c + t;
          sub[kNib + 64 * c + 4 * r + t] =
              static_cast<uint8_t>((q[e] & 15) | (q[e + 16] & 15) << 4);
          fifth |= (q[e] >> 4) << c | (q[e + 16] >> 4) << (4 + c);
        }
        if constexpr (kQ5) sub[4 * r + t] = static_cast<uint8_t>(fifth);
      }
    }
  }
}

void pack_sb_q6_k(const uint8_t* const* blk, const Q6KR16Offsets& off, uint8_t* out) {
  for (int r = 0; r < kPackRows; ++r) {
    std::memcpy(out + off.d + 2 * r, blk[r] + kQ6KD, 2);
    uint8_t q[kQKK];
    q6k_quants(blk[r], q);
    for (int s = 0; s < 16; ++s) {
      out[off.sc + 16 * s + r] = blk[r][kQ6KScales + s];
      for (int t = 0; t < 4; ++t) {
        const int top = q[16 * s + 12 + t];
        for (int v = 0; v < 3; ++v) {
          out[off.qs + 192 * s + 64 * v + 4 * r + t] =
              static_cast<uint8_t>(q[16 * s + 4 * v + t] | ((top >> (2 * v)) & 3) << 6);
        }
      }
    }
  }
}

// IQ4_XS's super-block: d, the scale bytes as chunks, then each sub-block's nibble pairs, already
// in Q4_0R16's order (byte t of GGML's 16 holds elements t and t + 16).
void pack_sb_iq4_xs(const uint8_t* const* blk, uint8_t* out) {
  for (int r = 0; r < kPackRows; ++r) {
    const BlockIQ4_XS& b = *reinterpret_cast<const BlockIQ4_XS*>(blk[r]);
    std::memcpy(out + 2 * r, &b.d, 2);
    out[kIQ4XSR16Sh + r] = static_cast<uint8_t>(b.scales_h & 0xff);
    out[kIQ4XSR16Sh + 16 + r] = static_cast<uint8_t>(b.scales_h >> 8);
    for (int i = 0; i < 4; ++i) out[kIQ4XSR16Sl + 16 * i + r] = b.scales_l[i];
    for (int j = 0; j < 8; ++j) {
      for (int c = 0; c < 4; ++c) {
        std::memcpy(out + kIQ4XSR16Qs + 256 * j + 64 * c + 4 * r, b.qs + 16 * j + 4 * c, 4);
      }
    }
  }
}

// The quant of element e (0..31) of row r in sub-block `sub` of a packed Q4_K (0..15) or Q5_K
// (0..31) super-block (sub: the sub-block's first byte, its fifth bits for Q5_K).
int q45k_r16_quant(const uint8_t* sub, bool q5, int r, int e) {
  const int c = e % 16 / 4, t = e % 4;
  const int v = sub[(q5 ? 64 : 0) + 64 * c + 4 * r + t];
  const int nib = e < 16 ? v & 15 : v >> 4;
  if (!q5) return nib;
  return nib | ((sub[4 * r + t] >> (c + (e < 16 ? 0 : 4))) & 1) << 4;
}

void pack_sb_q3_k(const uint8_t* const* blk, const Q6KR16Offsets& off, uint8_t* out) {
  for (int r = 0; r < kPackRows; ++r) {
    const BlockQ3_K& b = *reinterpret_cast<const BlockQ3_K*>(blk[r]);
    std::memcpy(out + off.d + 2 * r, &b.d, 2);
    uint8_t q[kQKK];
    q3k_quants(blk[r], q);
    for (int s = 0; s < 16; ++s) {
      out[off.sc + 16 * s + r] = static_cast<uint8_t>(static_cast<int8_t>(q3_k_scale(b.scales, s)));
    }
    for (int p = 0; p < 8; ++p) {  // sub-blocks 2p, 2p + 1: A_2p, A_2p+1, H
      uint8_t* pair = out + off.qs + 192 * p + 4 * r;
      for (int t = 0; t < 4; ++t) {
        uint8_t h = 0;
        for (int half = 0; half < 2; ++half) {
          const uint8_t* qs = q + 16 * (2 * p + half) + t;
          pair[64 * half + t] = static_cast<uint8_t>((qs[0] & 3) | (qs[4] & 3) << 2 |
                                                     (qs[8] & 3) << 4 | (qs[12] & 3) << 6);
          h |= static_cast<uint8_t>(
              (qs[0] >> 2 | (qs[4] >> 2) << 1 | (qs[8] >> 2) << 2 | (qs[12] >> 2) << 3)
              << (4 * half));
        }
        pair[128 + t] = h;
      }
    }
  }
}

void pack_sb_q2_k(const uint8_t* const* blk, uint8_t* out) {
  for (int r = 0; r < kPackRows; ++r) {
    const BlockQ2_K& b = *reinterpret_cast<const BlockQ2_K*>(blk[r]);
    std::memcpy(out + 2 * r, &b.d, 2);
    std::memcpy(out + kQ2KR16Dmin + 2 * r, &b.dmin, 2);
    uint8_t q[kQKK];
    q2k_quants(blk[r], q);
    for (int s = 0; s < 16; ++s) {
      out[kQ2KR16Sc + 16 * s + r] = b.scales[s];
      const uint8_t* qs = q + 16 * s;
      for (int t = 0; t < 4; ++t) {
        out[kQ2KR16Qs + 64 * s + 4 * r + t] =
            static_cast<uint8_t>(qs[t] | qs[4 + t] << 2 | qs[8 + t] << 4 | qs[12 + t] << 6);
      }
    }
  }
}

int q2k_r16_quant(const uint8_t* sb, int r, int e) {
  return (sb[kQ2KR16Qs + 64 * (e / 16) + 4 * r + e % 4] >> (2 * (e % 16 / 4))) & 3;
}

// The 3-bit quant of element e (0..255) of row r from a packed Q3_K super-block.
int q3k_r16_quant(const uint8_t* qs, int r, int e) {
  const int s = e / 16, v = e % 16 / 4, t = e % 4;
  const uint8_t* pair = qs + 192 * (s / 2);
  const int lo = (pair[64 * (s % 2) + 4 * r + t] >> (2 * v)) & 3;
  return lo | ((pair[128 + 4 * r + t] >> (v + 4 * (s % 2))) & 1) << 2;
}

// The 6-bit quant of element e (0..255) of row r from a packed Q6_K super-block.
int q6k_r16_quant(const uint8_t* qs, int r, int e) {
  const int s = e / 16, v = e % 16 / 4, t = e % 4;
  const uint8_t* p = qs + 192 * s + 4 * r + t;
  if (v < 3) return p[64 * v] & 63;
  return (p[0] >> 6) | (p[64] >> 6) << 2 | (p[128] >> 6) << 4;
}

template <bool kQ5>
void gemm_q45_k_r16(const PackedGemm& a) {
  const size_t nsb = a.k / kQKK, sb_bytes = kQ5 ? kQ5KR16SbBytes : kQ4KR16SbBytes;
  const size_t sub_bytes = kQ5 ? kQ5KR16Sub : 256;
  for (int i = 0; i < a.mr; ++i) {
    const BlockQ8Act* x = reinterpret_cast<const BlockQ8Act*>(a.x + i * a.x_stride);
    for (int g = 0; g < a.ng; ++g) {
      const uint8_t* wg = a.w + static_cast<size_t>(g) * a.w_group_bytes;
      float acc[kPackRows] = {};
      for (size_t sb = 0; sb < nsb; ++sb) {
        const uint8_t* w = wg + sb * sb_bytes;
        const BlockQ8Act* xs = x + sb * 8;
        for (int r = 0; r < kPackRows; ++r) {
          const float d = load_f16(w + 2 * r), dmin = load_f16(w + kQ4KR16Dmin + 2 * r);
          uint8_t scales[kKScaleBytes];
          for (int b = 0; b < kKScaleBytes; ++b) scales[b] = w[kQ4KR16Scales + 16 * b + r];
          int32_t isum = 0, imin = 0;
          for (int j = 0; j < 8; ++j) {
            int sc, m;
            q4k_scale_min(scales, j, &sc, &m);
            const uint8_t* sub = w + kQ4KR16Qs + sub_bytes * j;
            int32_t dot = 0;
            for (int e = 0; e < 32; ++e) dot += q45k_r16_quant(sub, kQ5, r, e) * xs[j].qs[e];
            isum += sc * dot;
            imin += m * xs[j].sum;
          }
          acc[r] = std::fma(static_cast<float>(isum), d * xs->d, acc[r]);
          acc[r] = std::fma(static_cast<float>(imin), dmin * -xs->d, acc[r]);
        }
      }
      std::memcpy(a.y + static_cast<size_t>(i) * a.y_stride + 16 * g, acc, sizeof acc);
    }
  }
}

void gemm_iq4_xs_r16(const PackedGemm& a) {
  const size_t nsb = a.k / kQKK;
  for (int i = 0; i < a.mr; ++i) {
    const BlockQ8Act* x = reinterpret_cast<const BlockQ8Act*>(a.x + i * a.x_stride);
    for (int g = 0; g < a.ng; ++g) {
      const uint8_t* wg = a.w + static_cast<size_t>(g) * a.w_group_bytes;
      float acc[kPackRows] = {};
      for (size_t sb = 0; sb < nsb; ++sb) {
        const uint8_t* w = wg + sb * kIQ4XSR16SbBytes;
        const BlockQ8Act* xs = x + sb * 8;
        for (int r = 0; r < kPackRows; ++r) {
          int32_t isum = 0;
          for (int j = 0; j < 8; ++j) {
            const uint8_t* sub = w + kIQ4XSR16Qs + 256 * j;
            int32_t dot = -128 * xs[j].sum;
            for (int e = 0; e < 32; ++e) {
              dot += (kIQ4Values[q45k_r16_quant(sub, false, r, e)] + 128) * xs[j].qs[e];
            }
            isum += iq4_xs_r16_scale(w, r, j) * dot;
          }
          acc[r] = std::fma(static_cast<float>(isum), load_f16(w + 2 * r) * xs->d, acc[r]);
        }
      }
      std::memcpy(a.y + static_cast<size_t>(i) * a.y_stride + 16 * g, acc, sizeof acc);
    }
  }
}

void gemm_q2_k_r16(const PackedGemm& a) {
  const size_t nsb = a.k / kQKK;
  for (int i = 0; i < a.mr; ++i) {
    const BlockQ8Act* x = reinterpret_cast<const BlockQ8Act*>(a.x + i * a.x_stride);
    for (int g = 0; g < a.ng; ++g) {
      const uint8_t* wg = a.w + static_cast<size_t>(g) * a.w_group_bytes;
      float acc[kPackRows] = {};
      for (size_t sb = 0; sb < nsb; ++sb) {
        const uint8_t* w = wg + sb * kQ2KR16SbBytes;
        const BlockQ8Act* xs = x + sb * 8;
        for (int r = 0; r < kPackRows; ++r) {
          const float d = load_f16(w + 2 * r), dmin = load_f16(w + kQ2KR16Dmin + 2 * r);
          int32_t isum = 0, imin = 0;
          for (int s = 0; s < 16; ++s) {
            const int scm = w[kQ2KR16Sc + 16 * s + r];
            int32_t dot = 0, sum = 0;
            for (int e = 0; e < 16; ++e) {
              const int xq = xs[s / 2].qs[16 * (s % 2) + e];
              dot += q2k_r16_quant(w, r, 16 * s + e) * xq;
              sum += xq;
            }
            isum += (scm & 15) * dot;
            imin += (scm >> 4) * sum;
          }
          acc[r] = std::fma(static_cast<float>(isum), d * xs->d, acc[r]);
          acc[r] = std::fma(static_cast<float>(imin), dmin * -xs->d, acc[r]);
        }
      }
      std::memcpy(a.y + static_cast<size_t>(i) * a.y_stride + 16 * g, acc, sizeof acc);
    }
  }
}

// Q6_KR16, and Q3_KR16 (kQ3).
template <bool kQ3>
void gemm_sc16_r16(const PackedGemm& a) {
  const size_t nsb = a.k / kQKK;
  constexpr int kBias = kQ3 ? 4 : 32;
  for (int i = 0; i < a.mr; ++i) {
    const BlockQ8Act* x = reinterpret_cast<const BlockQ8Act*>(a.x + i * a.x_stride);
    for (int g = 0; g < a.ng; ++g) {
      const uint8_t* wg = a.w + static_cast<size_t>(g) * a.w_group_bytes;
      float acc[kPackRows] = {};
      for (size_t sb = 0; sb < nsb; ++sb) {
        const Q6KR16Offsets off = kQ3 ? q3k_r16_offsets(sb, nsb) : q6k_r16_offsets(sb, nsb);
        const BlockQ8Act* xs = x + sb * 8;
        for (int r = 0; r < kPackRows; ++r) {
          const float d = load_f16(wg + off.d + 2 * r);
          int32_t isum = 0;
          for (int s = 0; s < 16; ++s) {
            int32_t dot = 0;
            for (int e = 0; e < 16; ++e) {
              const int q = kQ3 ? q3k_r16_quant(wg + off.qs, r, 16 * s + e)
                                : q6k_r16_quant(wg + off.qs, r, 16 * s + e);
              dot += (q - kBias) * xs[s / 2].qs[16 * (s % 2) + e];
            }
            isum += static_cast<int8_t>(wg[off.sc + 16 * s + r]) * dot;
          }
          acc[r] = std::fma(static_cast<float>(isum), d * xs->d, acc[r]);
        }
      }
      std::memcpy(a.y + static_cast<size_t>(i) * a.y_stride + 16 * g, acc, sizeof acc);
    }
  }
}

}  // namespace

void pack_group_kquant(DType src, const uint8_t* rows, size_t w_stride, size_t k, uint8_t* out) {
  const size_t nsb = k / kQKK, bb = dtype_info(src).block_bytes;
  for (size_t sb = 0; sb < nsb; ++sb) {
    const uint8_t* blk[kPackRows];
    for (int r = 0; r < kPackRows; ++r) blk[r] = rows + static_cast<size_t>(r) * w_stride + sb * bb;
    if (src == DType::kQ4_K) {
      pack_sb_q45_k<false>(blk, out + sb * kQ4KR16SbBytes);
    } else if (src == DType::kQ5_K) {
      pack_sb_q45_k<true>(blk, out + sb * kQ5KR16SbBytes);
    } else if (src == DType::kQ6_K) {
      pack_sb_q6_k(blk, q6k_r16_offsets(sb, nsb), out);
    } else if (src == DType::kQ3_K) {
      pack_sb_q3_k(blk, q3k_r16_offsets(sb, nsb), out);
    } else if (src == DType::kQ2_K) {
      pack_sb_q2_k(blk, out + sb * kQ2KR16SbBytes);
    } else if (src == DType::kIQ4_XS) {
      pack_sb_iq4_xs(blk, out + sb * kIQ4XSR16SbBytes);
    } else {
      fail("matmul", "no K-quant packed layout for ", dtype_name(src));
    }
  }
}

// Same expressions as quant.cpp's dequantize_row (d·sc·q − dmin·m; d·sc·(q − 32)), so the
// values are identical to the source's bit for bit.
void unpack_kquant_f32(DType packed, const uint8_t* w, size_t n, size_t k, float* out) {
  const size_t nsb = k / kQKK;
  const size_t group_bytes = kPackRows * row_bytes(packed, k);
  for (size_t row = 0; row < n; ++row) {
    const uint8_t* wg = w + row / kPackRows * group_bytes;
    const int r = static_cast<int>(row % kPackRows);
    for (size_t sb = 0; sb < nsb; ++sb) {
      float* o = out + row * k + sb * kQKK;
      if (packed == DType::kQ2_KR16) {
        // GGML's dl · q − ml with dl = d · sc and ml = dmin · m.
        const uint8_t* p = wg + sb * kQ2KR16SbBytes;
        const float d = load_f16(p + 2 * r), dmin = load_f16(p + kQ2KR16Dmin + 2 * r);
        for (int e = 0; e < kQKK; ++e) {
          const int scm = p[kQ2KR16Sc + 16 * (e / 16) + r];
          const float dl = d * static_cast<float>(scm & 15),
                      ml = dmin * static_cast<float>(scm >> 4);
          o[e] = dl * static_cast<float>(q2k_r16_quant(p, r, e)) - ml;
        }
      } else if (packed == DType::kIQ4_XSR16) {  // dl · v with dl = d · sc, as GGML
        const uint8_t* p = wg + sb * kIQ4XSR16SbBytes;
        const float d = load_f16(p + 2 * r);
        for (int j = 0; j < 8; ++j) {
          const float dl = d * static_cast<float>(iq4_xs_r16_scale(p, r, j));
          for (int e = 0; e < 32; ++e) {
            const int q = q45k_r16_quant(p + kIQ4XSR16Qs + 256 * j, false, r, e);
            o[32 * j + e] = dl * static_cast<float>(kIQ4Values[q]);
          }
        }
      } else if (packed == DType::kQ4_KR16 || packed == DType::kQ5_KR16) {
        const bool q5 = packed == DType::kQ5_KR16;
        const uint8_t* p = wg + sb * (q5 ? kQ5KR16SbBytes : kQ4KR16SbBytes);
        const float d = load_f16(p + 2 * r), dmin = load_f16(p + kQ4KR16Dmin + 2 * r);
        uint8_t scales[kKScaleBytes];
        for (int b = 0; b < kKScaleBytes; ++b) scales[b] = p[kQ4KR16Scales + 16 * b + r];
        for (int j = 0; j < 8; ++j) {
          int sc, m;
          q4k_scale_min(scales, j, &sc, &m);
          const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(m);
          const uint8_t* sub = p + kQ4KR16Qs + (q5 ? kQ5KR16Sub : 256) * j;
          for (int e = 0; e < 32; ++e) {
            o[32 * j + e] = d1 * static_cast<float>(q45k_r16_quant(sub, q5, r, e)) - m1;
          }
        }
      } else {
        const bool q3 = packed == DType::kQ3_KR16;
        const Q6KR16Offsets off = q3 ? q3k_r16_offsets(sb, nsb) : q6k_r16_offsets(sb, nsb);
        const float d = load_f16(wg + off.d + 2 * r);
        for (int e = 0; e < kQKK; ++e) {
          const int sc = static_cast<int8_t>(wg[off.sc + 16 * (e / 16) + r]);
          const int q =
              q3 ? q3k_r16_quant(wg + off.qs, r, e) - 4 : q6k_r16_quant(wg + off.qs, r, e) - 32;
          o[e] = d * static_cast<float>(sc) * static_cast<float>(q);
        }
      }
    }
  }
}

namespace scalar {
void register_matmul_packed_kquants(KernelTable& t) {
  matmul_entry(t, DType::kQ4_KR16) = {nullptr, ActKind::kQ8x256, 4, 1, gemm_q45_k_r16<false>, 1,
                                      false};
  matmul_entry(t, DType::kQ5_KR16) = {nullptr, ActKind::kQ8x256, 4, 1, gemm_q45_k_r16<true>, 1,
                                      false};
  matmul_entry(t, DType::kQ2_KR16) = {nullptr, ActKind::kQ8x256, 4, 1, gemm_q2_k_r16, 1, false};
  matmul_entry(t, DType::kIQ4_XSR16) = {nullptr, ActKind::kQ8x256, 4, 1, gemm_iq4_xs_r16, 1, false};
  // Q2_K, Q3_K, Q5_K and IQ4_XS have no kernel in GGML's layout: every variant packs them.
  matmul_entry(t, DType::kIQ4_XS).prefer_packed = true;
  matmul_entry(t, DType::kQ2_K).prefer_packed = true;
  matmul_entry(t, DType::kQ3_K).prefer_packed = true;
  matmul_entry(t, DType::kQ5_K).prefer_packed = true;
  matmul_entry(t, DType::kQ6_KR16) = {nullptr, ActKind::kQ8x256, 4, 1, gemm_sc16_r16<false>, 1,
                                      false};
  matmul_entry(t, DType::kQ3_KR16) = {nullptr, ActKind::kQ8x256, 4, 1, gemm_sc16_r16<true>, 1,
                                      false};
}
}  // namespace scalar

}  // namespace runnel::kernels::cpu
