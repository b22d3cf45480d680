// Packing, unpacking and the scalar reference kernels of the float r16 layouts (packed_float.h).
// The reference defines the arithmetic: each output keeps two fma chains, both starting at +0,
// the even k positions in the first and the odd ones in the second, each in k order,
// acc[c % 2] = fma(x[c], widen(w[r][c]), acc[c % 2]) with the weight widened exactly to f32, and
// the result is acc[0] + acc[1]. A SIMD kernel that keeps two chains per output lane equals it bit
// for bit; two chains rather than one let decode issue two fmas per fma latency.
#include "kernels/cpu/packed_float.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "base/error.h"
#include "base/half.h"
#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/packed.h"

namespace runnel::kernels::cpu {
namespace {

float widen(DType packed, const uint8_t* p) {
  if (packed == DType::kF32R16) {
    float f;
    std::memcpy(&f, p, 4);
    return f;
  }
  uint16_t h;
  std::memcpy(&h, p, 2);
  return packed == DType::kF16R16 ? f16_to_f32(h) : bf16_to_f32(h);
}

void gemm_reference(const PackedGemm& a, DType packed) {
  const size_t es = dtype_size(packed_source(packed));
  for (int i = 0; i < a.mr; ++i) {
    const float* x = reinterpret_cast<const float*>(a.x + i * a.x_stride);
    for (int g = 0; g < a.ng; ++g) {
      const uint8_t* wg = a.w + static_cast<size_t>(g) * a.w_group_bytes;
      float acc[2][kPackRows] = {};
      for (size_t c = 0; c < a.k; ++c) {
        for (int r = 0; r < kPackRows; ++r) {
          float& s = acc[c % 2][r];
          s = std::fma(x[c], widen(packed, wg + (c * kPackRows + r) * es), s);
        }
      }
      float* y = a.y + static_cast<size_t>(i) * a.y_stride + 16 * g;
      for (int r = 0; r < kPackRows; ++r) y[r] = acc[0][r] + acc[1][r];
    }
  }
}

void gemm_f16_r16(const PackedGemm& a) { gemm_reference(a, DType::kF16R16); }
void gemm_bf16_r16(const PackedGemm& a) { gemm_reference(a, DType::kBF16R16); }
void gemm_f32_r16(const PackedGemm& a) { gemm_reference(a, DType::kF32R16); }

}  // namespace

bool is_packed_float(DType t) {
  switch (t) {
    case DType::kF16:
    case DType::kBF16:
    case DType::kF32:
    case DType::kF16R16:
    case DType::kBF16R16:
    case DType::kF32R16:
      return true;
    default:
      return false;
  }
}

namespace {
// The transpose with the element type known, so each copy is one load and one store (a memcpy of
// a run-time size is a call per element: it made loading a 2.5 GB F16 model take half a minute).
template <class T>
void transpose_group(const uint8_t* rows, size_t w_stride, size_t k, uint8_t* out) {
  T* o = reinterpret_cast<T*>(out);
  // k in chunks of 64 so the chunk's output (16 x 64 elements, <= 4 KiB) stays in L1 while each
  // row's part of it is scattered in.
  for (size_t c0 = 0; c0 < k; c0 += 64) {
    const size_t c1 = std::min(k, c0 + 64);
    for (size_t r = 0; r < static_cast<size_t>(kPackRows); ++r) {
      const uint8_t* row = rows + r * w_stride;
      for (size_t c = c0; c < c1; ++c) {
        T v;
        std::memcpy(&v, row + c * sizeof(T), sizeof(T));
        o[c * kPackRows + r] = v;
      }
    }
  }
}
}  // namespace

void pack_group_float(DType src, const uint8_t* rows, size_t w_stride, size_t k, uint8_t* out) {
  if (dtype_size(src) == 4) {
    transpose_group<uint32_t>(rows, w_stride, k, out);
  } else {
    transpose_group<uint16_t>(rows, w_stride, k, out);
  }
}

void unpack_float_f32(DType packed, const void* w, size_t n, size_t k, float* out) {
  const size_t es = dtype_size(packed_source(packed));
  const uint8_t* wb = static_cast<const uint8_t*>(w);
  for (size_t row = 0; row < n; ++row) {
    const uint8_t* wg = wb + row / kPackRows * kPackRows * k * es;
    const size_t r = row % kPackRows;
    for (size_t c = 0; c < k; ++c) out[row * k + c] = widen(packed, wg + (c * kPackRows + r) * es);
  }
}

namespace scalar {
void register_matmul_packed_float(KernelTable& t) {
  matmul_entry(t, DType::kF16R16) = {nullptr, ActKind::kF32, 4, 1, gemm_f16_r16, 1, false};
  matmul_entry(t, DType::kBF16R16) = {nullptr, ActKind::kF32, 4, 1, gemm_bf16_r16, 1, false};
  matmul_entry(t, DType::kF32R16) = {nullptr, ActKind::kF32, 4, 1, gemm_f32_r16, 1, false};
}
}  // namespace scalar

}  // namespace runnel::kernels::cpu
