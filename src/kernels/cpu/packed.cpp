// The r16 layouts (packed.h): packing from GGML blocks, unpacking for tests, and the scalar
// reference kernels that define their arithmetic: per block an exact integer dot of the biased
// weight bytes with x's int8 quants, corrected by bias · Σx_q, then one fma per block:
//   acc = fma(float(dot), d_w · d_x, acc)
// which every SIMD variant reproduces bit for bit. Q5_1R16 (unbiased quants, a minimum per block):
//   acc = fma(float(dot), d_w · d_x, acc);  acc = fma(m_w, d_x · float(Σq_x), acc)
#include "kernels/cpu/packed.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "base/error.h"
#include "base/half.h"
#include "base/thread_pool.h"
#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/packed_float.h"
#include "kernels/cpu/packed_kquants.h"
#include "kernels/cpu/packed_mlx.h"
#include "kernels/cpu/quant.h"

namespace runnel::kernels::cpu {
namespace {

// Per packed type: bytes of one block's quants for a group, and the source block layout.
struct Layout {
  size_t qs_bytes;
  int bias;  // the value added to each stored weight byte's quant (Q8: 128, Q4: 8, Q5: 16)
};
Layout layout_of(DType packed) {
  switch (packed) {
    case DType::kQ8_0R16:
      return {512, 128};
    case DType::kQ4_0R16:
      return {256, 8};
    case DType::kQ5_0R16:
      return {320, 16};
    case DType::kIQ4_NLR16:  // Q4_0R16's nibbles; the stored byte is the table's value + 128
      return {256, 128};
    default:
      fail("matmul", dtype_name(packed), " is not a packed type");
  }
}

// Row r's share of a Q5_0R16 / Q5_1R16 block's 320 bytes of quants at qs, from GGML's fifth bits
// (bit e: element e's) and nibble pairs.
void pack_q5_quants(const uint8_t* qh_bytes, const uint8_t* nibbles, int r, uint8_t* qs) {
  uint32_t qh;
  std::memcpy(&qh, qh_bytes, 4);
  for (int c = 0; c < 4; ++c) std::memcpy(qs + 64 + 64 * c + 4 * r, nibbles + 4 * c, 4);
  for (uint32_t j = 0; j < 4; ++j) {
    uint32_t f = 0;
    for (uint32_t c = 0; c < 4; ++c) {
      f |= ((qh >> (4 * c + j)) & 1) << c | ((qh >> (4 * c + j + 16)) & 1) << (4 + c);
    }
    qs[4 * r + j] = static_cast<uint8_t>(f);
  }
}

// One group (16 rows starting at `rows`) of src into `out`.
void pack_group(DType src, const uint8_t* rows, size_t w_stride, size_t k, uint8_t* out) {
  const size_t nb = k / kQK;
  for (size_t b = 0; b < nb; ++b) {
    for (int r = 0; r < kPackRows; ++r) {
      const uint8_t* row = rows + static_cast<size_t>(r) * w_stride;
      if (src == DType::kQ5_1) {
        const BlockQ5_1& blk = reinterpret_cast<const BlockQ5_1*>(row)[b];
        uint8_t* o = out + b * kQ5_1R16Block;
        std::memcpy(o + 2 * r, &blk.d, 2);
        std::memcpy(o + kQ1R16M + 2 * r, &blk.m, 2);
        pack_q5_quants(blk.qh, blk.qs, r, o + kQ1R16Qs);
      } else if (src == DType::kQ4_1) {  // GGML's nibble pairs, as Q4_0's
        const BlockQ4_1& blk = reinterpret_cast<const BlockQ4_1*>(row)[b];
        uint8_t* o = out + b * kQ4_1R16Block;
        std::memcpy(o + 2 * r, &blk.d, 2);
        std::memcpy(o + kQ1R16M + 2 * r, &blk.m, 2);
        for (int c = 0; c < 4; ++c) std::memcpy(o + kQ1R16Qs + 64 * c + 4 * r, blk.qs + 4 * c, 4);
      } else if (src == DType::kQ8_0) {
        const PackedBlockOffsets off = packed_block_offsets(b, nb, 512);
        const BlockQ8_0& blk = reinterpret_cast<const BlockQ8_0*>(row)[b];
        std::memcpy(out + off.d + 2 * r, &blk.d, 2);
        for (int c = 0; c < 8; ++c) {
          for (int j = 0; j < 4; ++j) {
            out[off.qs + 64 * c + 4 * r + j] = static_cast<uint8_t>(blk.qs[4 * c + j]) ^ 0x80;
          }
        }
      } else if (src == DType::kQ4_0 || src == DType::kIQ4_NL) {  // the same block bytes
        static_assert(sizeof(BlockQ4_0) == sizeof(BlockIQ4_NL));
        const PackedBlockOffsets off = packed_block_offsets(b, nb, 256);
        const BlockQ4_0& blk = reinterpret_cast<const BlockQ4_0*>(row)[b];
        std::memcpy(out + off.d + 2 * r, &blk.d, 2);
        // GGML's byte j already holds elements j (low nibble) and j + 16 (high nibble).
        for (int c = 0; c < 4; ++c) std::memcpy(out + off.qs + 64 * c + 4 * r, blk.qs + 4 * c, 4);
      } else {
        const PackedBlockOffsets off = packed_block_offsets(b, nb, 320);
        const BlockQ5_0& blk = reinterpret_cast<const BlockQ5_0*>(row)[b];
        std::memcpy(out + off.d + 2 * r, &blk.d, 2);
        pack_q5_quants(blk.qh, blk.qs, r, out + off.qs);
      }
    }
  }
}

// Row r's quants of a Q4_1R16 / Q5_1R16 (kQ5) block's quants at qs: q[e], e = 0..31.
template <bool kQ5>
void q1_row_quants(const uint8_t* qs, int r, int* q) {
  for (int c = 0; c < 4; ++c) {
    for (int j = 0; j < 4; ++j) {
      const int v = qs[(kQ5 ? 64 : 0) + 64 * c + 4 * r + j], f = kQ5 ? qs[4 * r + j] >> c : 0;
      q[4 * c + j] = (v & 15) | (f & 1) << 4;
      q[16 + 4 * c + j] = (v >> 4) | (f & 16);
    }
  }
}

// IQ4_NLR16's stored byte for nibble q: the table's value + 128 (1..241, unsigned for the u8 x s8
// dot instructions; the dot then starts at -128 · Σq_x, as Q8_0R16's).
int iq4_byte(int q) { return kIQ4Values[q] + 128; }

constexpr size_t q1_block_bytes(bool q5) { return q5 ? kQ5_1R16Block : kQ4_1R16Block; }

float f16_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}

// Q4_1R16's / Q5_1R16's (kQ5) scalar reference (the file comment's second form).
template <bool kQ5>
void gemm_q1_r16(const PackedGemm& a) {
  const size_t nb = a.k / kQK;
  for (int i = 0; i < a.mr; ++i) {
    const BlockQ8Act* x = reinterpret_cast<const BlockQ8Act*>(a.x + i * a.x_stride);
    for (int g = 0; g < a.ng; ++g) {
      const uint8_t* wg = a.w + static_cast<size_t>(g) * a.w_group_bytes;
      float acc[kPackRows] = {};
      for (size_t b = 0; b < nb; ++b) {
        const uint8_t* blk = wg + b * q1_block_bytes(kQ5);
        for (int r = 0; r < kPackRows; ++r) {
          int q[kQK];
          q1_row_quants<kQ5>(blk + kQ1R16Qs, r, q);
          int32_t dot = 0;
          for (int e = 0; e < kQK; ++e) dot += q[e] * x[b].qs[e];
          acc[r] = std::fma(static_cast<float>(dot), f16_at(blk + 2 * r) * x[b].d, acc[r]);
          acc[r] = std::fma(f16_at(blk + kQ1R16M + 2 * r), x[b].d * static_cast<float>(x[b].sum),
                            acc[r]);
        }
      }
      std::memcpy(a.y + static_cast<size_t>(i) * a.y_stride + 16 * g, acc, sizeof acc);
    }
  }
}

// Scalar reference kernel (the definition; see the file comment).
void gemm_reference(const PackedGemm& a, DType packed) {
  const Layout lay = layout_of(packed);
  const bool nl = packed == DType::kIQ4_NLR16;
  const bool q4 = packed == DType::kQ4_0R16 || nl, q5 = packed == DType::kQ5_0R16;
  const size_t nb = a.k / kQK;
  for (int i = 0; i < a.mr; ++i) {
    const BlockQ8Act* x = reinterpret_cast<const BlockQ8Act*>(a.x + i * a.x_stride);
    for (int g = 0; g < a.ng; ++g) {
      const uint8_t* wg = a.w + static_cast<size_t>(g) * a.w_group_bytes;
      float acc[kPackRows] = {};
      for (size_t b = 0; b < nb; ++b) {
        const PackedBlockOffsets off = packed_block_offsets(b, nb, lay.qs_bytes);
        const int32_t corr = -lay.bias * x[b].sum;
        for (int r = 0; r < kPackRows; ++r) {
          int32_t dot = corr;
          const uint8_t* q = wg + off.qs + 4 * r;
          if (q4 || q5) {
            for (int c = 0; c < 4; ++c) {
              for (int j = 0; j < 4; ++j) {
                const int v = q[(q5 ? 64 : 0) + 64 * c + j], f = q5 ? q[j] >> c : 0;
                int lo = (v & 15) | (f & 1) << 4, hi = (v >> 4) | (f & 16);
                if (nl) lo = iq4_byte(lo), hi = iq4_byte(hi);
                dot += lo * x[b].qs[4 * c + j] + hi * x[b].qs[16 + 4 * c + j];
              }
            }
          } else {
            for (int c = 0; c < 8; ++c) {
              for (int j = 0; j < 4; ++j) dot += q[64 * c + j] * x[b].qs[4 * c + j];
            }
          }
          uint16_t h;
          std::memcpy(&h, wg + off.d + 2 * r, 2);
          const float s = f16_to_f32(h) * x[b].d;
          acc[r] = std::fma(static_cast<float>(dot), s, acc[r]);
        }
      }
      std::memcpy(a.y + static_cast<size_t>(i) * a.y_stride + 16 * g, acc, sizeof acc);
    }
  }
}

void gemm_q8_0_r16(const PackedGemm& a) { gemm_reference(a, DType::kQ8_0R16); }
void gemm_q4_0_r16(const PackedGemm& a) { gemm_reference(a, DType::kQ4_0R16); }
void gemm_q5_0_r16(const PackedGemm& a) { gemm_reference(a, DType::kQ5_0R16); }
void gemm_iq4_nl_r16(const PackedGemm& a) { gemm_reference(a, DType::kIQ4_NLR16); }

}  // namespace

DType packed_type(DType src) {
  switch (src) {
    case DType::kQ8_0:
      return DType::kQ8_0R16;
    case DType::kQ4_0:
      return DType::kQ4_0R16;
    case DType::kF16:
      return DType::kF16R16;
    case DType::kBF16:
      return DType::kBF16R16;
    case DType::kF32:
      return DType::kF32R16;
    case DType::kQ4_K:
      return DType::kQ4_KR16;
    case DType::kQ6_K:
      return DType::kQ6_KR16;
    case DType::kQ5_0:
      return DType::kQ5_0R16;
    case DType::kQ3_K:
      return DType::kQ3_KR16;
    case DType::kQ2_K:
      return DType::kQ2_KR16;
    case DType::kQ4_1:
      return DType::kQ4_1R16;
    case DType::kQ5_1:
      return DType::kQ5_1R16;
    case DType::kQ5_K:
      return DType::kQ5_KR16;
    case DType::kIQ4_NL:
      return DType::kIQ4_NLR16;
    case DType::kIQ4_XS:
      return DType::kIQ4_XSR16;
    default:
      return src;
  }
}

DType packed_source(DType packed) {
  switch (packed) {
    case DType::kQ8_0R16:
      return DType::kQ8_0;
    case DType::kQ4_0R16:
      return DType::kQ4_0;
    case DType::kQ5_0R16:
      return DType::kQ5_0;
    case DType::kQ5_1R16:
      return DType::kQ5_1;
    case DType::kQ4_1R16:
      return DType::kQ4_1;
    case DType::kIQ4_NLR16:
      return DType::kIQ4_NL;
    case DType::kIQ4_XSR16:
      return DType::kIQ4_XS;
    case DType::kQ8AR16:  // MLX's U32 words (packed_mlx.h): made by pack_mlx_affine
    case DType::kQ4AR16:
    case DType::kQ8AR16G64:
    case DType::kQ4AR16G64:
      return DType::kU32;
    case DType::kF16R16:
      return DType::kF16;
    case DType::kBF16R16:
      return DType::kBF16;
    case DType::kF32R16:
      return DType::kF32;
    case DType::kQ4_KR16:
      return DType::kQ4_K;
    case DType::kQ6_KR16:
      return DType::kQ6_K;
    case DType::kQ5_KR16:
      return DType::kQ5_K;
    case DType::kQ3_KR16:
      return DType::kQ3_K;
    case DType::kQ2_KR16:
      return DType::kQ2_K;
    default:
      return packed;
  }
}

DType preferred_weight_type(DType src, size_t n, size_t k) {
  const DType p = packed_type(src);
  if (p == src || n % kPackRows != 0 || k % block_elems(src) != 0 || k == 0) return src;
  const KernelTable& t = kernel_table();
  if (!t.matmul[static_cast<int>(src)].prefer_packed) return src;
  return t.matmul[static_cast<int>(p)].packed ? p : src;
}

void pack_weights(DType src, const void* w, size_t w_stride, size_t n, size_t k, void* out,
                  ThreadPool& pool) {
  check(packed_type(src) != src, "matmul", "no packed layout for ", dtype_name(src));
  check(n % kPackRows == 0, "matmul", "packing needs a multiple of 16 rows, got ", n);
  const bool plain = is_packed_float(src);
  check(plain || k % block_elems(src) == 0, "matmul", "k=", k, " is not a multiple of ",
        block_elems(src));
  check(w_stride >= row_bytes(src, k), "matmul", "weight row stride ", w_stride, " < ",
        row_bytes(src, k));
  const size_t group_bytes = kPackRows * row_bytes(packed_type(src), k);
  const uint8_t* wb = static_cast<const uint8_t*>(w);
  uint8_t* ob = static_cast<uint8_t*>(out);
  const bool kquant = is_kquant_r16(packed_type(src));
  pool.parallel_for(n / kPackRows, 1, [&](size_t g0, size_t g1) {
    for (size_t g = g0; g < g1; ++g) {
      const uint8_t* rows = wb + g * kPackRows * w_stride;
      uint8_t* dst = ob + g * group_bytes;
      if (plain) {
        pack_group_float(src, rows, w_stride, k, dst);
      } else if (kquant) {
        pack_group_kquant(src, rows, w_stride, k, dst);
      } else {
        pack_group(src, rows, w_stride, k, dst);
      }
    }
  });
}

void unpack_weights_f32(DType packed, const void* w, size_t n, size_t k, float* out) {
  if (is_mlx_packed(packed)) return unpack_mlx_f32(packed, w, n, k, out);
  if (is_packed_float(packed)) return unpack_float_f32(packed, w, n, k, out);
  if (is_kquant_r16(packed)) {
    return unpack_kquant_f32(packed, static_cast<const uint8_t*>(w), n, k, out);
  }
  if (packed == DType::kQ4_1R16 || packed == DType::kQ5_1R16) {
    // q · d + m, as dequantize_row (a product, then a sum)
    const bool q5 = packed == DType::kQ5_1R16;
    const size_t group_bytes = kPackRows * row_bytes(packed, k);
    for (size_t row = 0; row < n; ++row) {
      const uint8_t* wg = static_cast<const uint8_t*>(w) + row / kPackRows * group_bytes;
      const int r = static_cast<int>(row % kPackRows);
      for (size_t b = 0; b < k / kQK; ++b) {
        const uint8_t* blk = wg + b * q1_block_bytes(q5);
        const float d = f16_at(blk + 2 * r), m = f16_at(blk + kQ1R16M + 2 * r);
        int q[kQK];
        if (q5) {
          q1_row_quants<true>(blk + kQ1R16Qs, r, q);
        } else {
          q1_row_quants<false>(blk + kQ1R16Qs, r, q);
        }
        for (int e = 0; e < kQK; ++e) out[row * k + b * kQK + e] = static_cast<float>(q[e]) * d + m;
      }
    }
    return;
  }
  const Layout lay = layout_of(packed);
  const size_t nb = k / kQK;
  const size_t group_bytes = kPackRows * row_bytes(packed, k);
  const uint8_t* wb = static_cast<const uint8_t*>(w);
  for (size_t row = 0; row < n; ++row) {
    const uint8_t* wg = wb + row / kPackRows * group_bytes;
    const size_t r = row % kPackRows;
    for (size_t b = 0; b < nb; ++b) {
      const PackedBlockOffsets off = packed_block_offsets(b, nb, lay.qs_bytes);
      uint16_t h;
      std::memcpy(&h, wg + off.d + 2 * r, 2);
      const float d = f16_to_f32(h);
      float* o = out + row * k + b * kQK;
      const uint8_t* q = wg + off.qs + 4 * r;
      const bool q5 = packed == DType::kQ5_0R16, nl = packed == DType::kIQ4_NLR16;
      for (size_t c = 0; c < (q5 ? 4 : lay.qs_bytes / 64); ++c) {
        for (int j = 0; j < 4; ++j) {
          const int v = q[(q5 ? 64 : 0) + 64 * c + j], f = q5 ? q[j] >> c : 0;
          if (nl) {  // as dequantize_row: d times the table's value
            o[4 * c + j] = d * static_cast<float>(kIQ4Values[v & 15]);
            o[16 + 4 * c + j] = d * static_cast<float>(kIQ4Values[v >> 4]);
          } else if (packed == DType::kQ4_0R16 || q5) {
            o[4 * c + j] = static_cast<float>(((v & 15) | (f & 1) << 4) - lay.bias) * d;
            o[16 + 4 * c + j] = static_cast<float>(((v >> 4) | (f & 16)) - lay.bias) * d;
          } else {
            o[4 * c + j] = static_cast<float>(v - 128) * d;
          }
        }
      }
    }
  }
}

namespace scalar {
void register_matmul_packed(KernelTable& t) {
  matmul_entry(t, DType::kQ8_0R16) = {nullptr, ActKind::kQ8, 4, 1, gemm_q8_0_r16, 1, false};
  matmul_entry(t, DType::kQ4_0R16) = {nullptr, ActKind::kQ8, 4, 1, gemm_q4_0_r16, 1, false};
  matmul_entry(t, DType::kQ5_0R16) = {nullptr, ActKind::kQ8, 4, 1, gemm_q5_0_r16, 1, false};
  matmul_entry(t, DType::kQ4_1R16) = {nullptr, ActKind::kQ8, 4, 1, gemm_q1_r16<false>, 1, false};
  matmul_entry(t, DType::kQ5_1R16) = {nullptr, ActKind::kQ8, 4, 1, gemm_q1_r16<true>, 1, false};
  matmul_entry(t, DType::kIQ4_NLR16) = {nullptr, ActKind::kQ8, 4, 1, gemm_iq4_nl_r16, 1, false};
  // Q5_0, Q4_1, Q5_1 and IQ4_NL have no kernel in GGML's layout: every variant packs them (the
  // alternative is the backend's dequantizing fallback).
  matmul_entry(t, DType::kQ5_0).prefer_packed = true;
  matmul_entry(t, DType::kQ4_1).prefer_packed = true;
  matmul_entry(t, DType::kQ5_1).prefer_packed = true;
  matmul_entry(t, DType::kIQ4_NL).prefer_packed = true;
}
}  // namespace scalar

}  // namespace runnel::kernels::cpu
