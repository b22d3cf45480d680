// The GGML types converted at load (kernels/cpu/convert.h): packed weights that unpack to
// dequantize_row's values bit for bit, the layout every variant picks for them, every SIMD
// variant's matmul equal to the scalar reference's bits, and close to the f32 product.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "base/thread_pool.h"
#include "kernel_test_util.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/packed.h"
#include "kernels/cpu/quant.h"
#include "packed_test_util.h"

namespace runnel::kernels::cpu::testing {
namespace {

constexpr DType kConverted[] = {DType::kQ4_1};  // Q5_1 has its own layout (packed_test.cpp)

// k for each type: 17 blocks of 32 (an odd last block in the Q8_0R16 pairs), or 3 super-blocks.
size_t k_for(DType t) { return block_elems(t) == 256 ? 768 : 544; }

// n rows of k values of t, each row quantized from random floats with its own spread and offset
// (rows of zeros, rows all above zero, spreads from 1/16 to 16).
std::vector<uint8_t> quantized_rows(DType t, size_t n, size_t k, std::mt19937& rng) {
  const size_t rb = row_bytes(t, k);
  std::vector<uint8_t> w(n * rb);
  for (size_t r = 0; r < n; ++r) {
    const float spread = r % 7 == 3 ? 0.0f : std::ldexp(1.0f, static_cast<int>(r % 9) - 4);
    const float offset = r % 3 == 0 ? 2 * spread : 0.0f;
    std::vector<float> v = random_floats(rng, k, -1, 1);
    for (float& f : v) f = offset + spread * f;
    EXPECT_TRUE(quantize_row(t, v.data(), w.data() + r * rb, k)) << dtype_name(t);
  }
  return w;
}

TEST(Convert, PackedWeightsHoldTheSourceValues) {
  std::mt19937 rng(3);
  const size_t n = 48;
  for (DType t : kConverted) {
    const size_t k = k_for(t);
    const std::vector<uint8_t> w = quantized_rows(t, n, k, rng);
    const std::vector<uint8_t> pw = pack_rows(t, w, n, k);
    std::vector<float> got(n * k), want(n * k);
    unpack_weights_f32(packed_type(t), pw.data(), n, k, got.data());
    for (size_t r = 0; r < n; ++r) {
      dequantize_row(t, w.data() + r * row_bytes(t, k), want.data() + r * k, k);
    }
    for (size_t i = 0; i < n * k; ++i) {
      ASSERT_EQ(std::memcmp(&got[i], &want[i], 4), 0)
          << dtype_name(t) << " row " << i / k << " element " << i % k << ": " << got[i]
          << " != " << want[i];
    }
  }
}

TEST(Convert, EveryVariantConvertsWholeGroupsOfRows) {
  for (Isa isa : kAllIsas) {
    IsaScope scope(isa);
    if (!scope.ok()) continue;
    for (DType t : kConverted) {
      EXPECT_EQ(preferred_weight_type(t, 64, 512), packed_type(t))
          << dtype_name(t) << " on " << isa_name(isa);
      EXPECT_EQ(preferred_weight_type(t, 24, 512), t) << "24 rows are not whole groups";
    }
  }
  EXPECT_EQ(packed_type(DType::kQ4_1), DType::kQ4AR16);
}

TEST(Convert, SimdEqualsScalarBitForBit) {
  std::mt19937 rng(5);
  ThreadPool pool(2);
  int variant = 0;
  const size_t n = 32;
  for (DType t : kConverted) {
    const size_t k = k_for(t);
    const std::vector<uint8_t> pw = pack_rows(t, quantized_rows(t, n, k, rng), n, k);
    expect_simd_equals_scalar(packed_type(t), pw, n, k, rng, pool, variant,
                              std::string(dtype_name(t)));
  }
}

// Against x · W in double over the source's values: within the int8 rounding of x (each block of
// 32 scaled to ±127: at most 1/254 of its largest value per element).
TEST(Convert, MatmulIsCloseToTheF32Product) {
  std::mt19937 rng(9);
  ThreadPool pool(2);
  const size_t n = 32, m = 3;
  for (DType t : kConverted) {
    const size_t k = k_for(t);
    const std::vector<uint8_t> w = quantized_rows(t, n, k, rng);
    const std::vector<uint8_t> pw = pack_rows(t, w, n, k);
    const std::vector<float> x = random_floats(rng, m * k, -2, 2);
    std::vector<float> wf(n * k);
    for (size_t r = 0; r < n; ++r) {
      dequantize_row(t, w.data() + r * row_bytes(t, k), wf.data() + r * k, k);
    }
    const std::vector<float> y = run_packed(packed_type(t), pw, x, 0, m, n, k, pool);
    for (size_t i = 0; i < m; ++i) {
      for (size_t j = 0; j < n; ++j) {
        double ref = 0, mag = 0;
        for (size_t e = 0; e < k; ++e) {
          ref += static_cast<double>(x[i * k + e]) * wf[j * k + e];
          mag += std::fabs(static_cast<double>(wf[j * k + e])) * 2.0 / 254;
        }
        EXPECT_NEAR(y[i * n + j], ref, mag + 1e-5)
            << dtype_name(t) << " y[" << i << ", " << j << "]";
      }
    }
  }
}

}  // namespace
}  // namespace runnel::kernels::cpu::testing
