// Q4_1 / Q5_1 rows in the forms their packed layouts are made from
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

bool is_converted_source(DType src) { return src == DType::kQ4_1; }

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
