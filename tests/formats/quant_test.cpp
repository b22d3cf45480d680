// Scalar reference quantization (kernels/cpu/quant.h): dequantization of hand-built blocks against
// per-element decodings written from the block layouts, and quantize -> dequantize round trips
// whose error bounds are derived from each block's data (half a quantization step plus the f16
// rounding of the scales).
#include "kernels/cpu/quant.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "base/half.h"

namespace runnel::kernels::cpu {
namespace {

std::vector<float> dequant(DType t, const void* src, size_t n) {
  std::vector<float> out(n);
  dequantize_row(t, src, out.data(), n);
  return out;
}

TEST(Quant, Q4_0KnownBlock) {
  BlockQ4_0 b;
  b.d = f32_to_f16(0.5f);
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  auto y = dequant(DType::kQ4_0, &b, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], (j - 8) * 0.5f);
    EXPECT_EQ(y[j + 16], (7 - j) * 0.5f);
  }
}

TEST(Quant, Q4_1AndQ8_0KnownBlocks) {
  BlockQ4_1 b;
  b.d = f32_to_f16(2.0f);
  b.m = f32_to_f16(-3.0f);
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  auto y = dequant(DType::kQ4_1, &b, 32);
  EXPECT_EQ(y[0], -3.0f);
  EXPECT_EQ(y[5], 7.0f);
  EXPECT_EQ(y[16], 27.0f);
  BlockQ8_0 c;
  c.d = f32_to_f16(0.25f);
  for (int j = 0; j < 32; ++j) c.qs[j] = static_cast<int8_t>(j * 8 - 128);
  y = dequant(DType::kQ8_0, &c, 32);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], (j * 8 - 128) * 0.25f);
}

TEST(Quant, Q5KnownBlocks) {
  BlockQ5_0 b;
  b.d = f32_to_f16(1.0f);
  const uint32_t qh = 0xA5A50F0Fu;
  std::memcpy(b.qh, &qh, 4);
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  auto y = dequant(DType::kQ5_0, &b, 32);
  for (int j = 0; j < 32; ++j) {
    const int lo = j < 16 ? j : 15 - (j - 16);
    const int q = lo | (((qh >> j) & 1) << 4);
    EXPECT_EQ(y[j], q - 16.0f) << j;
  }
  BlockQ5_1 c;
  c.d = f32_to_f16(0.5f);
  c.m = f32_to_f16(1.0f);
  std::memcpy(c.qh, &qh, 4);
  std::memcpy(c.qs, b.qs, 16);
  y = dequant(DType::kQ5_1, &c, 32);
  for (int j = 0; j < 32; ++j) {
    const int lo = j < 16 ? j : 15 - (j - 16);
    EXPECT_EQ(y[j], (lo | (((qh >> j) & 1) << 4)) * 0.5f + 1.0f) << j;
  }
}

// K-quant blocks filled with random bytes (and sane f16 scales), decoded element by element from
// the layout description: element e of a 256-block, n = e / 128, j = (e % 128) / 32, l = e % 32.
template <class Block>
Block random_block(std::mt19937& rng) {
  Block b;
  auto* p = reinterpret_cast<uint8_t*>(&b);
  for (size_t i = 0; i < sizeof(Block); ++i) p[i] = static_cast<uint8_t>(rng());
  return b;
}

TEST(Quant, Q2_KMatchesLayout) {
  std::mt19937 rng(1);
  for (int rep = 0; rep < 20; ++rep) {
    auto b = random_block<BlockQ2_K>(rng);
    b.d = f32_to_f16(0.125f);
    b.dmin = f32_to_f16(0.0625f);
    auto y = dequant(DType::kQ2_K, &b, 256);
    for (int e = 0; e < 256; ++e) {
      const int n = e / 128, j = (e % 128) / 32, l = e % 32;
      const uint8_t sc = b.scales[8 * n + 2 * j + l / 16];
      const int q = (b.qs[32 * n + l] >> (2 * j)) & 3;
      EXPECT_EQ(y[e], 0.125f * (sc & 15) * q - 0.0625f * (sc >> 4)) << e;
    }
  }
}

TEST(Quant, Q3_KMatchesLayout) {
  std::mt19937 rng(2);
  for (int rep = 0; rep < 20; ++rep) {
    auto b = random_block<BlockQ3_K>(rng);
    b.d = f32_to_f16(0.25f);
    auto y = dequant(DType::kQ3_K, &b, 256);
    for (int e = 0; e < 256; ++e) {
      const int n = e / 128, j = (e % 128) / 32, l = e % 32, s = 8 * n + 2 * j + l / 16;
      // 6-bit scale s: low 4 bits from byte s % 8 (high nibble when s >= 8), high 2 bits from
      // byte 8 + s % 4 at bit 2 * (s / 4).
      const int lo = (b.scales[s % 8] >> (s >= 8 ? 4 : 0)) & 15;
      const int hi = (b.scales[8 + s % 4] >> (2 * (s / 4))) & 3;
      const int q = ((b.qs[32 * n + l] >> (2 * j)) & 3) - ((b.hmask[l] >> (4 * n + j)) & 1 ? 0 : 4);
      EXPECT_EQ(y[e], 0.25f * ((lo | hi << 4) - 32) * q) << e;
    }
  }
}

// Six-bit scale and min of sub-block s (0..7) of Q4_K/Q5_K.
void k4_scale(const uint8_t* sc, int s, int* d, int* m) {
  if (s < 4) {
    *d = sc[s] & 63;
    *m = sc[s + 4] & 63;
  } else {
    *d = (sc[s + 4] & 15) | ((sc[s - 4] >> 6) << 4);
    *m = (sc[s + 4] >> 4) | ((sc[s] >> 6) << 4);
  }
}

TEST(Quant, Q4_KAndQ5_KMatchLayout) {
  std::mt19937 rng(3);
  for (int rep = 0; rep < 20; ++rep) {
    auto b = random_block<BlockQ4_K>(rng);
    b.d = f32_to_f16(0.5f);
    b.dmin = f32_to_f16(0.25f);
    auto y = dequant(DType::kQ4_K, &b, 256);
    auto c = random_block<BlockQ5_K>(rng);
    c.d = f32_to_f16(0.5f);
    c.dmin = f32_to_f16(0.25f);
    auto z = dequant(DType::kQ5_K, &c, 256);
    for (int e = 0; e < 256; ++e) {
      const int s = e / 32, l = e % 32;  // sub-block s uses nibble s % 2 of qs[32 * (s / 2) + l]
      int d, m;
      k4_scale(b.scales, s, &d, &m);
      const int q4 = (b.qs[32 * (s / 2) + l] >> (4 * (s % 2))) & 15;
      EXPECT_EQ(y[e], 0.5f * d * q4 - 0.25f * m) << e;
      k4_scale(c.scales, s, &d, &m);
      const int q5 = ((c.qs[32 * (s / 2) + l] >> (4 * (s % 2))) & 15) | (((c.qh[l] >> s) & 1) << 4);
      EXPECT_EQ(z[e], 0.5f * d * q5 - 0.25f * m) << e;
    }
  }
}

TEST(Quant, Q6_KAndQ8_KMatchLayout) {
  std::mt19937 rng(4);
  for (int rep = 0; rep < 20; ++rep) {
    auto b = random_block<BlockQ6_K>(rng);
    b.d = f32_to_f16(0.01f);
    auto y = dequant(DType::kQ6_K, &b, 256);
    for (int e = 0; e < 256; ++e) {
      const int n = e / 128, k = (e % 128) / 32, l = e % 32;
      const int lo = (b.ql[64 * n + 32 * (k % 2) + l] >> (4 * (k / 2))) & 15;
      const int hi = (b.qh[32 * n + l] >> (2 * k)) & 3;
      const float d = f16_to_f32(b.d);
      EXPECT_EQ(y[e], d * b.scales[8 * n + 2 * k + l / 16] * ((lo | hi << 4) - 32)) << e;
    }
    auto c = random_block<BlockQ8_K>(rng);
    c.d = 0.03f;
    auto z = dequant(DType::kQ8_K, &c, 256);
    for (int e = 0; e < 256; ++e) EXPECT_EQ(z[e], 0.03f * c.qs[e]);
  }
}

// Test data: several distributions, 4 super-blocks each (1024 values).
std::vector<std::vector<float>> test_rows() {
  std::mt19937 rng(42);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> uniform(-3.0f, 5.0f);
  std::vector<std::vector<float>> rows(6, std::vector<float>(1024));
  for (size_t i = 0; i < 1024; ++i) {
    rows[0][i] = normal(rng) * 0.02f;
    rows[1][i] = uniform(rng);
    rows[2][i] = normal(rng) * (i % 97 == 0 ? 50.0f : 1.0f);  // outliers
    rows[3][i] = 0.0f;
    rows[4][i] = -1.5f - std::fabs(normal(rng));               // all negative
    rows[5][i] = i < 512 ? 7.0f : normal(rng) * (i / 64 + 1);  // constant, then growing blocks
  }
  return rows;
}

struct Range {
  float amax = 0, lo = 0, hi = 0;  // lo <= 0 <= hi
};
Range range_of(const float* x, size_t n) {
  Range r;
  for (size_t i = 0; i < n; ++i) {
    r.amax = std::max(r.amax, std::fabs(x[i]));
    r.lo = std::min(r.lo, x[i]);
    r.hi = std::max(r.hi, x[i]);
  }
  return r;
}

// bound(x of the group, group, super-block) -> allowed |error| for every element of the group.
template <class Bound>
void check_round_trip(DType t, size_t group, size_t super, Bound bound) {
  for (const auto& x : test_rows()) {
    const size_t n = x.size();
    std::vector<uint8_t> q(row_bytes(t, n));
    ASSERT_TRUE(quantize_row(t, x.data(), q.data(), n)) << dtype_name(t);
    auto y = dequant(t, q.data(), n);
    for (size_t g = 0; g < n; g += group) {
      const Range rg = range_of(&x[g], group);
      const Range rs = range_of(&x[g / super * super], super);
      const float b = bound(rg, rs) + 1e-30f;
      for (size_t i = g; i < g + group; ++i) {
        ASSERT_LE(std::fabs(y[i] - x[i]), b)
            << dtype_name(t) << " element " << i << " x=" << x[i] << " y=" << y[i];
      }
    }
  }
}

TEST(Quant, PlainTypesConvertNumerically) {
  const double f64[] = {1.5, -2.25};
  EXPECT_EQ(dequant(DType::kF64, f64, 2), (std::vector<float>{1.5f, -2.25f}));
  const int64_t i64[] = {-3, 1 << 20};
  EXPECT_EQ(dequant(DType::kI64, i64, 2), (std::vector<float>{-3.0f, 1048576.0f}));
  const int32_t i32[] = {-7, 9};
  EXPECT_EQ(dequant(DType::kI32, i32, 2), (std::vector<float>{-7.0f, 9.0f}));
  const int16_t i16[] = {-300, 300};
  EXPECT_EQ(dequant(DType::kI16, i16, 2), (std::vector<float>{-300.0f, 300.0f}));
  const int8_t i8[] = {-128, 127};
  EXPECT_EQ(dequant(DType::kI8, i8, 2), (std::vector<float>{-128.0f, 127.0f}));
  const uint8_t u8[] = {0, 255};
  EXPECT_EQ(dequant(DType::kU8, u8, 2), (std::vector<float>{0.0f, 255.0f}));
  const uint32_t u32[] = {0, 4000000000u};
  EXPECT_EQ(dequant(DType::kU32, u32, 2), (std::vector<float>{0.0f, 4e9f}));
  const uint8_t b[] = {0, 1};
  EXPECT_EQ(dequant(DType::kBool, b, 2), (std::vector<float>{0.0f, 1.0f}));
  const uint16_t h[] = {0x3c00, 0xc000};  // f16 1, -2
  EXPECT_EQ(dequant(DType::kF16, h, 2), (std::vector<float>{1.0f, -2.0f}));
  const uint16_t bf[] = {0x3f80, 0xc040};  // bf16 1, -3
  EXPECT_EQ(dequant(DType::kBF16, bf, 2), (std::vector<float>{1.0f, -3.0f}));
}

TEST(Quant, RoundTripPlain) {
  check_round_trip(DType::kF32, 1, 1, [](Range, Range) { return 0.0f; });
  check_round_trip(DType::kF16, 1, 1, [](Range g, Range) { return g.amax * 0x1p-11f; });
  check_round_trip(DType::kBF16, 1, 1, [](Range g, Range) { return g.amax * 0x1p-8f; });
}

TEST(Quant, RoundTrip32ElementTypes) {
  // Symmetric types map the largest magnitude to -8 (-16); the opposite extreme clamps one step
  // short, so the error is at most one step d = amax / 8 (amax / 16), plus the f16 rounding of d.
  check_round_trip(DType::kQ8_0, 32, 32,
                   [](Range g, Range) { return g.amax * (0.5f / 127 + 1e-3f); });
  check_round_trip(DType::kQ4_0, 32, 32,
                   [](Range g, Range) { return g.amax * (1.0f / 8 + 1e-2f); });
  check_round_trip(DType::kQ5_0, 32, 32,
                   [](Range g, Range) { return g.amax * (1.0f / 16 + 1e-2f); });
  // Asymmetric: half a step of (max - min) / 15 (31), plus f16 rounding of d and the min.
  check_round_trip(DType::kQ4_1, 32, 32, [](Range g, Range) {
    return (g.hi - g.lo) * (0.5f / 15 + 1e-2f) + g.amax * 1e-3f;
  });
  check_round_trip(DType::kQ5_1, 32, 32, [](Range g, Range) {
    return (g.hi - g.lo) * (0.5f / 31 + 1e-2f) + g.amax * 1e-3f;
  });
}

TEST(Quant, RoundTripKQuants) {
  // Half a step of the sub-block's own range, plus a term from the super-block's shared scales
  // (each sub-block scale is a multiple of d = super-block range / (levels * scale_max)).
  check_round_trip(DType::kQ4_K, 32, 256,
                   [](Range g, Range s) { return (g.hi - g.lo) * 0.5f / 15 + s.amax * 5e-3f; });
  check_round_trip(DType::kQ5_K, 32, 256,
                   [](Range g, Range s) { return (g.hi - g.lo) * 0.5f / 31 + s.amax * 3e-3f; });
  check_round_trip(DType::kQ2_K, 16, 256,
                   [](Range g, Range s) { return (g.hi - g.lo) * 0.5f / 3 + s.amax * 0.04f; });
  check_round_trip(DType::kQ3_K, 16, 256,
                   [](Range g, Range s) { return g.amax * 0.5f / 3 + s.amax * 6e-3f; });
  check_round_trip(DType::kQ6_K, 16, 256,
                   [](Range g, Range s) { return g.amax * 0.5f / 31 + s.amax * 5e-4f; });
  // Q8_K: the largest magnitude maps to -127 (d = amax / 127), so no element clamps.
  check_round_trip(DType::kQ8_K, 256, 256,
                   [](Range g, Range) { return g.amax * (0.5f / 127) * 1.001f; });
}

TEST(Quant, Q8_KBlockSumsAndGgmlQ4_0Rounding) {
  std::vector<float> x(256);
  for (int i = 0; i < 256; ++i) x[i] = std::sin(i * 0.37f) * 3;
  BlockQ8_K b;
  ASSERT_TRUE(quantize_row(DType::kQ8_K, x.data(), &b, 256));
  EXPECT_NEAR(std::fabs(b.d), 3.0f / 127, 1e-3f);  // d = -(x of largest magnitude) / 127
  for (int i = 0; i < 256; ++i) EXPECT_GE(b.qs[i], -127);
  for (int j = 0; j < 16; ++j) {
    int sum = 0;
    for (int l = 0; l < 16; ++l) sum += b.qs[16 * j + l];
    EXPECT_EQ(b.bsums[j], sum);
  }
  // GGML's Q4_0 rule: d = max / -8 for the element of largest magnitude, q = min(15, x / d + 8.5).
  std::vector<float> v(32);
  for (int j = 0; j < 32; ++j) v[j] = static_cast<float>(j - 16);
  BlockQ4_0 q;
  ASSERT_TRUE(quantize_row(DType::kQ4_0, v.data(), &q, 32));
  EXPECT_EQ(f16_to_f32(q.d), 2.0f);
  auto y = dequant(DType::kQ4_0, &q, 32);
  EXPECT_EQ(y[0], -16.0f);
  EXPECT_EQ(y[1], -14.0f);  // -15 / 2 + 8.5 = 1 -> (1 - 8) * 2
  EXPECT_EQ(y[31], 14.0f);  // clamped at 15
  EXPECT_FALSE(quantize_row(DType::kI32, v.data(), &q, 1));
}

}  // namespace
}  // namespace runnel::kernels::cpu
