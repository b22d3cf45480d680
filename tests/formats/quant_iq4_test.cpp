// IQ4_NL and IQ4_XS (kernels/cpu/quant_iq4.cpp): hand-built blocks decoded against GGML's
// formulas written out here with the grid as literals, and quantize -> dequantize round trips:
// relative RMS error against Q4_0's on the same data, every element on the grid point nearest
// to it at the stored scale, exact zeros, values small enough for f16-subnormal scales, and a
// second round trip that changes nothing.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "base/half.h"
#include "kernels/cpu/quant.h"

namespace runnel::kernels::cpu {
namespace {

// GGML's kvalues_iq4nl, written again so that a wrong table in quant.h fails here.
constexpr float kGrid[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                             1,    13,   25,  38,  53,  69,  89,  113};

std::vector<float> dequant(DType t, const void* src, size_t n) {
  std::vector<float> out(n);
  dequantize_row(t, src, out.data(), n);
  return out;
}

std::vector<uint8_t> quant(DType t, const std::vector<float>& x) {
  std::vector<uint8_t> q(row_bytes(t, x.size()));
  EXPECT_TRUE(quantize_row(t, x.data(), q.data(), x.size())) << dtype_name(t);
  return q;
}

TEST(QuantIQ4, NlKnownBlocks) {
  BlockIQ4_NL b;
  b.d = f32_to_f16(0.5f);
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  auto y = dequant(DType::kIQ4_NL, &b, 32);
  const float half[16] = {-63.5f, -52,  -41.5f, -32.5f, -24.5f, -17.5f, -11,   -5,
                          0.5f,   6.5f, 12.5f,  19,     26.5f,  34.5f,  44.5f, 56.5f};
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], half[j]) << j;
    EXPECT_EQ(y[j + 16], half[15 - j]) << j;
  }
  // A negative scale that f16 rounds: d (as stored) times the grid value, in f32.
  b.d = f32_to_f16(-0.013f);
  const float d = f16_to_f32(b.d);
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>((j * 7) % 16 | ((j * 3) % 16) << 4);
  y = dequant(DType::kIQ4_NL, &b, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], d * kGrid[(j * 7) % 16]) << j;
    EXPECT_EQ(y[j + 16], d * kGrid[(j * 3) % 16]) << j;
  }
}

TEST(QuantIQ4, XsKnownBlock) {
  // Sub-block scales ls = 0, 63, 32, 1, 31, 33, 16, 48 (ls - 32 = -32, 31, 0, -31, -1, 1, -16, 16):
  // low nibbles in scales_l (sub-block 2i low, 2i + 1 high), high 2 bits at 2 * ib of scales_h.
  const int l[8] = {-32, 31, 0, -31, -1, 1, -16, 16};
  BlockIQ4_XS b;
  b.scales_l[0] = 0xF0;  // ls 0: 0, ls 63: 15
  b.scales_l[1] = 0x10;  // ls 32: 0, ls 1: 1
  b.scales_l[2] = 0x1F;  // ls 31: 15, ls 33: 1
  b.scales_l[3] = 0x00;  // ls 16: 0, ls 48: 0
  b.scales_h = 0xD92C;   // high bits 0, 3, 2, 0, 1, 2, 1, 3
  std::mt19937 rng(11);
  for (uint8_t& q : b.qs) q = static_cast<uint8_t>(rng());
  for (const float scale : {0.125f, -0.0371f, 3.3f}) {
    b.d = f32_to_f16(scale);
    const float d = f16_to_f32(b.d);
    auto y = dequant(DType::kIQ4_XS, &b, 256);
    for (int ib = 0; ib < 8; ++ib) {
      EXPECT_EQ(iq4_xs_scale(b, ib), l[ib]) << ib;
      const float dl = d * static_cast<float>(l[ib]);  // GGML: d * (ls - 32) first
      for (int j = 0; j < 16; ++j) {
        const uint8_t q = b.qs[16 * ib + j];
        EXPECT_EQ(y[32 * ib + j], dl * kGrid[q & 15]) << ib << " " << j;
        EXPECT_EQ(y[32 * ib + 16 + j], dl * kGrid[q >> 4]) << ib << " " << j;
      }
    }
    // The extremes: ls 0 decodes with -32 d, ls 63 with 31 d, ls 32 to zeros.
    EXPECT_EQ(y[0], d * -32.0f * kGrid[b.qs[0] & 15]);
    EXPECT_EQ(y[32], d * 31.0f * kGrid[b.qs[16] & 15]);
    for (int e = 64; e < 96; ++e) EXPECT_EQ(y[e], 0.0f) << e;
  }
}

// Rows of 1024 values: Gaussian, uniform off-centre, Gaussian with outliers, all negative,
// blocks of growing spread, and a constant run then noise.
const char* const kRowNames[] = {"gaussian", "uniform", "outliers",
                                 "negative", "growing", "constant"};
std::vector<std::vector<float>> test_rows() {
  std::mt19937 rng(42);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> uniform(-3.0f, 5.0f);
  std::vector<std::vector<float>> rows(6, std::vector<float>(1024));
  for (size_t i = 0; i < 1024; ++i) {
    rows[0][i] = normal(rng) * 0.02f;
    rows[1][i] = uniform(rng);
    rows[2][i] = normal(rng) * (i % 97 == 0 ? 50.0f : 1.0f);
    rows[3][i] = -1.5f - std::fabs(normal(rng));
    rows[4][i] = normal(rng) * static_cast<float>(1 + i / 32);
    rows[5][i] = i < 512 ? 7.0f : normal(rng);
  }
  return rows;
}

double rms(const std::vector<float>& x) {
  double s = 0;
  for (float v : x) s += static_cast<double>(v) * v;
  return std::sqrt(s / static_cast<double>(x.size()));
}

double relative_rms_error(DType t, const std::vector<float>& x) {
  const auto y = dequant(t, quant(t, x).data(), x.size());
  std::vector<float> diff(x.size());
  for (size_t i = 0; i < x.size(); ++i) diff[i] = y[i] - x[i];
  return rms(diff) / rms(x);
}

TEST(QuantIQ4, RoundTripErrorIsBelowQ4_0s) {
  // 64 Ki Gaussian values: the figures the README quotes.
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> gauss(1 << 16);
  for (float& v : gauss) v = normal(rng);
  const double q4_0 = relative_rms_error(DType::kQ4_0, gauss);
  const double nl = relative_rms_error(DType::kIQ4_NL, gauss);
  const double xs = relative_rms_error(DType::kIQ4_XS, gauss);
  std::printf("Gaussian, relative RMS error: q4_0 %.4f, iq4_nl %.4f, iq4_xs %.4f\n", q4_0, nl, xs);
  EXPECT_LT(nl, q4_0);
  EXPECT_LT(xs, q4_0);
  EXPECT_LT(nl, 0.1);
  EXPECT_LT(xs, 0.1);
  const auto rows = test_rows();
  for (size_t r = 0; r < rows.size(); ++r) {
    const double e0 = relative_rms_error(DType::kQ4_0, rows[r]);
    const double e_nl = relative_rms_error(DType::kIQ4_NL, rows[r]);
    const double e_xs = relative_rms_error(DType::kIQ4_XS, rows[r]);
    std::printf("%-9s relative RMS error: q4_0 %.4f, iq4_nl %.4f, iq4_xs %.4f\n", kRowNames[r], e0,
                e_nl, e_xs);
    if (r == 3) {
      // Values of one sign far from zero: the grid, dense near zero, has 6 points for them
      // (-127..-35 or 113..38) as Q4_0 has; a dense search of scales does no better.
      EXPECT_LT(e_nl, e0 * 1.1) << kRowNames[r];
      EXPECT_LT(e_xs, e0 * 1.1) << kRowNames[r];
    } else {
      EXPECT_LT(e_nl, e0) << kRowNames[r];
      EXPECT_LT(e_xs, e0) << kRowNames[r];
    }
    // One element in 97 at 50 sigma: its block's other elements share a scale 20 times theirs.
    EXPECT_LT(e_nl, r == 2 ? 0.12 : 0.1) << kRowNames[r];
    EXPECT_LT(e_xs, r == 2 ? 0.12 : 0.1) << kRowNames[r];
  }
}

// Every element decodes to the grid point nearest it at its block's scale as stored (ties
// either way): the indices were picked again after the scale was rounded to f16.
TEST(QuantIQ4, EveryElementIsOnItsNearestGridPoint) {
  for (const auto& x : test_rows()) {
    const auto nl = quant(DType::kIQ4_NL, x);
    const auto xs = quant(DType::kIQ4_XS, x);
    const auto y_nl = dequant(DType::kIQ4_NL, nl.data(), x.size());
    const auto y_xs = dequant(DType::kIQ4_XS, xs.data(), x.size());
    const auto* bn = reinterpret_cast<const BlockIQ4_NL*>(nl.data());
    const auto* bx = reinterpret_cast<const BlockIQ4_XS*>(xs.data());
    for (size_t i = 0; i < x.size(); ++i) {
      const float d_nl = f16_to_f32(bn[i / 32].d);
      const float d_xs = f16_to_f32(bx[i / 256].d) * iq4_xs_scale(bx[i / 256], (i % 256) / 32);
      for (const float v : kGrid) {
        ASSERT_LE(std::fabs(x[i] - y_nl[i]), std::fabs(x[i] - d_nl * v) * (1 + 1e-6f)) << i;
        ASSERT_LE(std::fabs(x[i] - y_xs[i]), std::fabs(x[i] - d_xs * v) * (1 + 1e-6f)) << i;
      }
    }
  }
}

TEST(QuantIQ4, ZerosStayExactZeros) {
  std::vector<float> x(512, 0.0f);
  for (DType t : {DType::kIQ4_NL, DType::kIQ4_XS}) {
    const auto q = quant(t, x);
    const uint16_t d = t == DType::kIQ4_NL ? reinterpret_cast<const BlockIQ4_NL*>(q.data())->d
                                           : reinterpret_cast<const BlockIQ4_XS*>(q.data())->d;
    EXPECT_EQ(d, 0) << dtype_name(t);
    for (float v : dequant(t, q.data(), x.size())) ASSERT_EQ(v, 0.0f) << dtype_name(t);
  }
  // A zero sub-block inside a super-block that is not: zeros too, next to the others' values.
  for (size_t i = 0; i < 256; ++i) x[i] = i / 32 == 3 ? 0.0f : std::sin(0.1f * i);
  const auto y = dequant(DType::kIQ4_XS, quant(DType::kIQ4_XS, x).data(), x.size());
  for (size_t i = 96; i < 128; ++i) EXPECT_EQ(y[i], 0.0f) << i;
  for (size_t i = 0; i < 96; ++i) EXPECT_NEAR(y[i], x[i], 0.15f) << i;
}

// Values so small that the scales are f16 subnormals keep most of their precision: IQ4_XS's d
// is ~sigma / 1400 (sigma 1e-4: 12 ulps), and each sub-block's multiple of it is still found.
// (At sigma 3e-5 d underflows, as GGML's does: IQ4_XS cannot hold such a block.)
TEST(QuantIQ4, TinyValuesKeepTheirPrecision) {
  std::mt19937 rng(9);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (const float sigma : {1e-3f, 1e-4f}) {
    std::vector<float> x(1 << 14);
    for (float& v : x) v = normal(rng) * sigma;
    const double nl = relative_rms_error(DType::kIQ4_NL, x);
    const double xs = relative_rms_error(DType::kIQ4_XS, x);
    std::printf("sigma %g relative RMS error: iq4_nl %.4f, iq4_xs %.4f\n", sigma, nl, xs);
    EXPECT_LT(nl, 0.08) << sigma;
    EXPECT_LT(xs, sigma < 1e-3f ? 0.12 : 0.08) << sigma;
  }
}

// Quantizing what was dequantized gives it back: the values are on the grid at a scale the
// search finds again. Also for heavy tails, small integers (blocks of few distinct values), and
// values so small that IQ4_XS's d is an f16 subnormal (for a d of only a few ulps, below ~1e-4,
// several scales fit alike and a second round trip may settle on another).
TEST(QuantIQ4, SecondRoundTripChangesNothing) {
  auto rows = test_rows();
  std::mt19937 rng(5);
  std::student_t_distribution<float> heavy(3.0f);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (const float unit : {1.0f, 1e-3f}) {
    std::vector<float> t(1 << 15), ints(1 << 15);
    for (float& v : t) v = heavy(rng) * unit;
    for (float& v : ints) v = std::round(normal(rng) * 3) * unit;
    rows.push_back(t);
    rows.push_back(ints);
  }
  for (DType t : {DType::kIQ4_NL, DType::kIQ4_XS}) {
    for (const auto& x : rows) {
      const auto y1 = dequant(t, quant(t, x).data(), x.size());
      const auto y2 = dequant(t, quant(t, y1).data(), x.size());
      for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(y2[i], y1[i]) << dtype_name(t) << " " << i;
    }
  }
}

}  // namespace
}  // namespace runnel::kernels::cpu
