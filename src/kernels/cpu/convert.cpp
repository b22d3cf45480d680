// Q4_1 / Q5_1 / Q3_K rows in the forms their packed layouts are made from
// (convert.h).
#include "kernels/cpu/convert.h"

#include <cstring>

#include "base/error.h"
#include "base/half.h"
#include "kernels/cpu/kquant_util.h"
#include "kernels/cpu/quant.h"

namespace runnel::kernels::cpu {
namespace {

// Element j and j + 16 of a Q5 block (j < 16): the low nibble of qs[j] / its high nibble, with
// fifth bits j and j + 16 of qh.
template <class Block>
void q5_pair(const Block& b, int j, int* x0, int* x1) {
  uint32_t qh;
  std::memcpy(&qh, b.qh, 4);
  *x0 = (b.qs[j] & 0x0F) | static_cast<int>(((qh >> j) & 1) << 4);
  *x1 = (b.qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1) << 4);
}

}  // namespace

bool is_converted_source(DType src) {
  return src == DType::kQ4_1 || src == DType::kQ5_1 || src == DType::kQ3_K;
}

void q3_k_row_to_q6_k(const void* src, size_t n, void* dst) {
  check(n % kQKK == 0, "matmul", "a Q3_K row of ", n, " elements is not whole super-blocks");
  for (size_t i = 0; i < n / kQKK; ++i) {
    const BlockQ3_K& x = static_cast<const BlockQ3_K*>(src)[i];
    BlockQ6_K& y = static_cast<BlockQ6_K*>(dst)[i];
    // Element e of a Q3_K super-block: 2 bits at shift 2 · (e % 128 / 32) of qs[32 · (e / 128) +
    // e % 32], minus 4 unless bit e / 32 of hmask[e % 32] is set; as a Q6_K quant, that plus 32.
    uint8_t q6[kQKK];
    for (int e = 0; e < kQKK; ++e) {
      const int l = e % 32, shift = 2 * (e % 128 / 32);
      const int lo = (x.qs[32 * (e / 128) + l] >> shift) & 3;
      q6[e] = static_cast<uint8_t>(32 + lo - ((x.hmask[l] >> (e / 32)) & 1 ? 0 : 4));
    }
    // GGML's Q6_K, per half h of 128: ql[64h + l] holds the low nibbles of elements l (low) and
    // l + 64 (high), ql[64h + l + 32] those of l + 32 and l + 96, qh[32h + l] the top 2 bits of
    // l, l + 32, l + 64, l + 96 at shifts 0, 2, 4, 6.
    for (int h = 0; h < 2; ++h) {
      const uint8_t* q = q6 + 128 * h;
      for (int l = 0; l < 32; ++l) {
        y.ql[64 * h + l] = static_cast<uint8_t>((q[l] & 0x0F) | (q[l + 64] & 0x0F) << 4);
        y.ql[64 * h + l + 32] = static_cast<uint8_t>((q[l + 32] & 0x0F) | (q[l + 96] & 0x0F) << 4);
        y.qh[32 * h + l] = static_cast<uint8_t>(q[l] >> 4 | (q[l + 32] >> 4) << 2 |
                                                (q[l + 64] >> 4) << 4 | (q[l + 96] >> 4) << 6);
      }
    }
    for (int s = 0; s < 16; ++s) y.scales[s] = static_cast<int8_t>(q3_k_scale(x.scales, s));
    y.d = x.d;
  }
}

void affine_row_q32(DType src, const void* row, size_t n, uint8_t* q, float* scale, float* bias) {
  check(n % block_elems(src) == 0, "matmul", "a ", dtype_name(src), " row of ", n,
        " elements is not whole blocks");
  if (src == DType::kQ4_1 || src == DType::kQ5_1) {
    for (size_t i = 0; i < n / kQK; ++i, q += kQK) {
      uint16_t d, m;
      const uint8_t* qs;
      if (src == DType::kQ4_1) {
        const BlockQ4_1& b = static_cast<const BlockQ4_1*>(row)[i];
        d = b.d, m = b.m, qs = b.qs;
        for (int j = 0; j < kQK / 2; ++j) {
          q[j] = qs[j] & 0x0F;
          q[j + kQK / 2] = qs[j] >> 4;
        }
      } else {
        const BlockQ5_1& b = static_cast<const BlockQ5_1*>(row)[i];
        d = b.d, m = b.m;
        for (int j = 0; j < kQK / 2; ++j) {
          int x0, x1;
          q5_pair(b, j, &x0, &x1);
          q[j] = static_cast<uint8_t>(x0);
          q[j + kQK / 2] = static_cast<uint8_t>(x1);
        }
      }
      scale[i] = f16_to_f32(d);
      bias[i] = f16_to_f32(m);
    }
    return;
  }
  fail("matmul", dtype_name(src), " has no affine conversion");
}

}  // namespace runnel::kernels::cpu
