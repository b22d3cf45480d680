// Scalar reference tiles of the matmul: the definition every SIMD variant is tested against.
// Plain types: y = Σ x·w summed in f32 in index order. Q8_0/Q4_0: x quantized to BlockQ8Act;
// per block b an exact integer dot isum_b, then y = Σ_b (d_w(b) · d_x(b)) · isum_b in f32.
#include <cstring>

#include "base/half.h"
#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/quant.h"

namespace runnel::kernels::cpu::scalar {
namespace {

float load_f16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}

template <class Dot>
void for_each_pair(const GemmTile& t, Dot dot) {
  for (int i = 0; i < t.mr; ++i) {
    for (int j = 0; j < t.nr; ++j) {
      t.y[static_cast<size_t>(i) * t.y_stride + j] =
          dot(t.x + i * t.x_stride, t.w + j * t.w_stride, t.k);
    }
  }
}

void tile_f32(const GemmTile& t) {
  for_each_pair(t, [](const uint8_t* xp, const uint8_t* wp, size_t k) {
    const float* x = reinterpret_cast<const float*>(xp);
    float s = 0;
    for (size_t c = 0; c < k; ++c) {
      float w;
      std::memcpy(&w, wp + 4 * c, 4);
      s += x[c] * w;
    }
    return s;
  });
}

void tile_f16(const GemmTile& t) {
  for_each_pair(t, [](const uint8_t* xp, const uint8_t* wp, size_t k) {
    const float* x = reinterpret_cast<const float*>(xp);
    float s = 0;
    for (size_t c = 0; c < k; ++c) s += x[c] * load_f16(wp + 2 * c);
    return s;
  });
}

void tile_bf16(const GemmTile& t) {
  for_each_pair(t, [](const uint8_t* xp, const uint8_t* wp, size_t k) {
    const float* x = reinterpret_cast<const float*>(xp);
    float s = 0;
    for (size_t c = 0; c < k; ++c) {
      uint16_t h;
      std::memcpy(&h, wp + 2 * c, 2);
      s += x[c] * bf16_to_f32(h);
    }
    return s;
  });
}

void tile_q8_0(const GemmTile& t) {
  for_each_pair(t, [](const uint8_t* xp, const uint8_t* wp, size_t k) {
    const BlockQ8Act* x = reinterpret_cast<const BlockQ8Act*>(xp);
    float s = 0;
    for (size_t b = 0; b < k / 32; ++b) {
      const uint8_t* wb = wp + b * sizeof(BlockQ8_0);
      const int8_t* qw = reinterpret_cast<const int8_t*>(wb + offsetof(BlockQ8_0, qs));
      int32_t isum = 0;
      for (int c = 0; c < 32; ++c) isum += qw[c] * x[b].qs[c];
      s += load_f16(wb) * x[b].d * static_cast<float>(isum);
    }
    return s;
  });
}

void tile_q4_0(const GemmTile& t) {
  for_each_pair(t, [](const uint8_t* xp, const uint8_t* wp, size_t k) {
    const BlockQ8Act* x = reinterpret_cast<const BlockQ8Act*>(xp);
    float s = 0;
    for (size_t b = 0; b < k / 32; ++b) {
      const uint8_t* wb = wp + b * sizeof(BlockQ4_0);
      const uint8_t* qs = wb + offsetof(BlockQ4_0, qs);
      int32_t isum = 0;
      for (int c = 0; c < 16; ++c) {
        isum += ((qs[c] & 0xf) - 8) * x[b].qs[c];
        isum += ((qs[c] >> 4) - 8) * x[b].qs[c + 16];
      }
      s += load_f16(wb) * x[b].d * static_cast<float>(isum);
    }
    return s;
  });
}

}  // namespace

void register_matmul(KernelTable& t) {
  matmul_entry(t, DType::kF32) = {tile_f32, ActKind::kF32, 4, 4};
  matmul_entry(t, DType::kF16) = {tile_f16, ActKind::kF32, 4, 4};
  matmul_entry(t, DType::kBF16) = {tile_bf16, ActKind::kF32, 4, 4};
  matmul_entry(t, DType::kQ8_0) = {tile_q8_0, ActKind::kQ8, 4, 4};
  matmul_entry(t, DType::kQ4_0) = {tile_q4_0, ActKind::kQ8, 4, 4};
}

}  // namespace runnel::kernels::cpu::scalar
