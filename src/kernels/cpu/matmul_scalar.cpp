// Scalar reference tiles of the matmul: the definition every SIMD variant is tested against.
// Plain types: y = Σ x·w summed in f32 in index order. Q8_0/Q4_0: x quantized to BlockQ8Act;
// per block b an exact integer dot isum_b, then y = Σ_b (d_w(b) · d_x(b)) · isum_b in f32.
// Q4_K: per 32-group g, y += (d·sc_g)·d_x·isum_g − (dmin·m_g)·d_x·Σq_x. Q6_K: per 16 elements
// y += (d·sc)·d_x·isum over (q − 32).
#include <cstring>

#include "base/half.h"
#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/kquant_util.h"
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

void tile_q4_k(const GemmTile& t) {
  for_each_pair(t, [](const uint8_t* xp, const uint8_t* wp, size_t k) {
    const BlockQ8Act* x = reinterpret_cast<const BlockQ8Act*>(xp);
    float s = 0;
    for (size_t sb = 0; sb < k / 256; ++sb, x += 8) {
      const uint8_t* blk = wp + sb * sizeof(BlockQ4_K);
      const float d = f16_to_f32(load_u16(blk)), dmin = f16_to_f32(load_u16(blk + 2));
      for (int g = 0; g < 8; ++g) {
        int sc, m;
        q4k_scale_min(blk + kQ4KScales, g, &sc, &m);
        const uint8_t* qs = blk + kQ4KQs + 32 * (g / 2);
        int32_t isum = 0;
        for (int e = 0; e < 32; ++e) isum += ((qs[e] >> (4 * (g & 1))) & 0xf) * x[g].qs[e];
        s += d * static_cast<float>(sc) * x[g].d * static_cast<float>(isum);
        s -= dmin * static_cast<float>(m) * x[g].d * static_cast<float>(x[g].sum);
      }
    }
    return s;
  });
}

void tile_q6_k(const GemmTile& t) {
  for_each_pair(t, [](const uint8_t* xp, const uint8_t* wp, size_t k) {
    const BlockQ8Act* x = reinterpret_cast<const BlockQ8Act*>(xp);
    float s = 0;
    for (size_t sb = 0; sb < k / 256; ++sb, x += 8) {
      const uint8_t* blk = wp + sb * sizeof(BlockQ6_K);
      const float d = f16_to_f32(load_u16(blk + kQ6KD));
      const int8_t* scales = reinterpret_cast<const int8_t*>(blk + kQ6KScales);
      for (int g = 0; g < 8; ++g) {
        const int h = g / 4, r = g % 4;
        const uint8_t* ql = blk + kQ6KQl + 64 * h + (r & 1) * 32;
        const uint8_t* qh = blk + kQ6KQh + 32 * h;
        int32_t isum[2] = {0, 0};
        for (int l = 0; l < 32; ++l) {
          const int q = ((ql[l] >> (4 * (r / 2))) & 0xf) | (((qh[l] >> (2 * r)) & 3) << 4);
          isum[l / 16] += (q - 32) * x[g].qs[l];
        }
        for (int half = 0; half < 2; ++half) {
          const float sc = static_cast<float>(scales[8 * h + 2 * r + half]);
          s += d * sc * x[g].d * static_cast<float>(isum[half]);
        }
      }
    }
    return s;
  });
}

}  // namespace

void register_matmul(KernelTable& t) {
  t.quantize_q8 = quantize_act_q8;
  t.quantize_q8_256 = quantize_act_q8_256;
  matmul_entry(t, DType::kF32) = {tile_f32, ActKind::kF32, 4, 4};
  matmul_entry(t, DType::kF16) = {tile_f16, ActKind::kF32, 4, 4};
  matmul_entry(t, DType::kBF16) = {tile_bf16, ActKind::kF32, 4, 4};
  matmul_entry(t, DType::kQ8_0) = {tile_q8_0, ActKind::kQ8, 4, 4};
  matmul_entry(t, DType::kQ4_0) = {tile_q4_0, ActKind::kQ8, 4, 4};
  matmul_entry(t, DType::kQ4_K) = {tile_q4_k, ActKind::kQ8, 4, 4};
  matmul_entry(t, DType::kQ6_K) = {tile_q6_k, ActKind::kQ8, 4, 4};
}

}  // namespace runnel::kernels::cpu::scalar
