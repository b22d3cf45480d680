// The float r16 layouts (f16_r16, bf16_r16, f32_r16; kernels/cpu/packed_float.h): packing keeps
// every weight bit, each SIMD kernel equals the scalar reference bit for bit (every k from 1 to
// 70 and 1000, every tile shape through m and n, misaligned x, subnormal weights), the reference
// equals double math to a rounding per fma, results do not depend on threads or batch size, the
// amx variant's BF16 prefill tiles are within the rounding of bf16 operands, and bad shapes are
// errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "base/error.h"
#include "base/half.h"
#include "base/thread_pool.h"
#include "kernel_test_util.h"
#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/packed.h"
#include "packed_test_util.h"

namespace runnel::kernels::cpu {
namespace {

using testing::expect_amx_bf16_within_rounding;
using testing::expect_bits_independent_of_threads_and_batch;
using testing::expect_simd_equals_scalar;
using testing::IsaScope;
using testing::kEps;
using testing::pack_rows;
using testing::random_floats;
using testing::run_packed;
using testing::simd_isas;

constexpr DType kSources[] = {DType::kF16, DType::kBF16, DType::kF32};

// n rows of k random finite weights, subnormals included: f16 any finite bit pattern; bf16 and
// f32 exponents kept moderate so that no sum overflows (an overflow's NaN would compare by bits).
std::vector<uint8_t> random_rows(DType t, size_t n, size_t k, std::mt19937& rng) {
  std::vector<uint8_t> w(n * row_bytes(t, k));
  std::uniform_int_distribution<uint32_t> bits(0, 0xffffffffu);
  std::uniform_int_distribution<uint32_t> exp8(100, 140);
  for (size_t i = 0; i < n * k; ++i) {
    const uint32_t u = bits(rng);
    const bool sub = u % 16 == 0;  // one in 16 is subnormal
    if (t == DType::kF16) {
      uint16_t h = static_cast<uint16_t>(u >> 16);
      if (((h >> 10) & 31) == 31) h = static_cast<uint16_t>(h & ~0x4000);  // no inf / NaN
      if (sub) h &= 0x83ff;
      std::memcpy(&w[2 * i], &h, 2);
    } else {
      uint32_t f = (u & 0x807fffffu) | (sub ? 0u : exp8(rng) << 23);
      if (t == DType::kF32) {
        std::memcpy(&w[4 * i], &f, 4);
      } else {
        const uint16_t h = static_cast<uint16_t>(f >> 16);
        std::memcpy(&w[2 * i], &h, 2);
      }
    }
  }
  return w;
}

float widen(DType t, const uint8_t* p) {
  if (t == DType::kF32) {
    float f;
    std::memcpy(&f, p, 4);
    return f;
  }
  uint16_t h;
  std::memcpy(&h, p, 2);
  return t == DType::kF16 ? f16_to_f32(h) : bf16_to_f32(h);
}

TEST(PackedFloat, TypesAndPreference) {
  EXPECT_EQ(packed_type(DType::kF16), DType::kF16R16);
  EXPECT_EQ(packed_type(DType::kBF16), DType::kBF16R16);
  EXPECT_EQ(packed_type(DType::kF32), DType::kF32R16);
  EXPECT_EQ(packed_source(DType::kBF16R16), DType::kBF16);
  EXPECT_EQ(dtype_name(DType::kF16R16), "f16_r16");
  EXPECT_TRUE(is_packed(DType::kF32R16));
  for (DType s : kSources) EXPECT_EQ(row_bytes(packed_type(s), 4095), row_bytes(s, 4095));
  {
    IsaScope scope(Isa::kScalar);
    EXPECT_EQ(preferred_weight_type(DType::kF16, 64, 256), DType::kF16);
    for (DType s : kSources) EXPECT_TRUE(matmul_supports(packed_type(s)));
  }
  IsaScope scope(Isa::kAvx512);
  if (!scope.ok()) GTEST_SKIP() << "no AVX-512 here";
  const MatmulEntry* e = kernel_table().matmul;
  for (DType s : kSources) {
    const DType want = e[static_cast<int>(s)].prefer_packed ? packed_type(s) : s;
    EXPECT_EQ(preferred_weight_type(s, 2048, 2048), want) << dtype_name(s);
    EXPECT_EQ(preferred_weight_type(s, 72, 256), s);  // 72 % 16 != 0
  }
}

TEST(PackedFloat, PackingKeepsEveryWeight) {
  std::mt19937 rng(3);
  ThreadPool pool(2);
  for (DType t : kSources) {
    for (size_t k = 1; k <= 1000; k = k < 70 ? k + 1 : 1000 + (k == 1000)) {  // 1..70, 1000
      const size_t n = 32;
      const std::vector<uint8_t> w = random_rows(t, n, k, rng);
      const std::vector<uint8_t> p = pack_rows(t, w, n, k);
      std::vector<float> got(n * k);
      unpack_weights_f32(packed_type(t), p.data(), n, k, got.data());
      for (size_t j = 0; j < n * k; ++j) {
        const float want = widen(t, w.data() + j * dtype_size(t));
        ASSERT_EQ(0, std::memcmp(&want, &got[j], 4)) << dtype_name(t) << " k=" << k << " at " << j;
      }
    }
  }
}

TEST(PackedFloat, SimdEqualsScalarBitForBit) {
  std::mt19937 rng(11);
  ThreadPool pool(2);
  int variant = 0;
  for (DType t : kSources) {
    const DType pt = packed_type(t);
    for (size_t k = 1; k <= 1000; k = k < 70 ? k + 1 : 1000 + (k == 1000)) {
      // Every n for k = 1000; for the short ks one n each, in turn.
      std::vector<size_t> ns = {16, 32, 48, 64, 80, 160};
      if (k != 1000) ns = {ns[k % ns.size()]};
      for (size_t n : ns) {
        const std::vector<uint8_t> p = pack_rows(t, random_rows(t, n, k, rng), n, k);
        expect_simd_equals_scalar(pt, p, n, k, rng, pool, variant, std::string(dtype_name(pt)));
      }
    }
  }
}

// The reference against double math: k fmas in f32 over two chains and one add, so within k + 1
// roundings of Σ|x·w|.
TEST(PackedFloat, ReferenceMatchesExactMath) {
  std::mt19937 rng(5);
  ThreadPool pool(1);
  IsaScope s(Isa::kScalar);
  for (DType t : kSources) {
    const size_t m = 3, n = 32, k = 300;
    const std::vector<uint8_t> w = random_rows(t, n, k, rng);
    const std::vector<uint8_t> p = pack_rows(t, w, n, k);
    const std::vector<float> x = random_floats(rng, m * k, -2, 2);
    const std::vector<float> y = run_packed(packed_type(t), p, x, 0, m, n, k, pool);
    for (size_t i = 0; i < m; ++i) {
      for (size_t j = 0; j < n; ++j) {
        double exact = 0, abs_sum = 0;
        for (size_t c = 0; c < k; ++c) {
          const double term = double(x[i * k + c]) * widen(t, &w[(j * k + c) * dtype_size(t)]);
          exact += term;
          abs_sum += std::fabs(term);
        }
        EXPECT_NEAR(y[i * n + j], exact, (k + 1) * kEps * abs_sum + 1e-37)
            << dtype_name(t) << " i=" << i << " j=" << j;
      }
    }
  }
}

// The amx variant's prefill of F16 / BF16 weights (more than 32 rows of x: matmul_amx_bf16_impl.h)
// multiplies x and the weights rounded to bf16 and sums in f32 (expect_amx_bf16_within_rounding),
// for every k from 1 to 70 and 1000 (ragged tile steps, odd last positions), ragged tiles of x
// (33, 40, 70 rows) and odd numbers of groups (n / 16).
TEST(PackedFloat, AmxBf16TilesWithinRoundingOfExactMath) {
  std::mt19937 rng(13);
  ThreadPool pool(2);
  constexpr size_t kNs[] = {16, 48, 80}, kMs[] = {33, 40, 70};
  size_t variant = 0;
  for (DType t : {DType::kF16, DType::kBF16}) {
    for (size_t k = 1; k <= 1000; k = k < 70 ? k + 1 : 1000 + (k == 1000)) {
      const size_t n = kNs[k % 3], m = kMs[variant++ % 3];
      const std::vector<uint8_t> p = pack_rows(t, random_rows(t, n, k, rng), n, k);
      expect_amx_bf16_within_rounding(packed_type(t), p, m, n, k, rng, pool,
                                      std::string(dtype_name(t)));
    }
  }
}

TEST(PackedFloat, BitIdenticalAcrossThreadsAndBatchSizes) {
  std::mt19937 rng(7);
  const size_t n = 160, k = 1283;
  for (DType t : kSources) {
    const std::vector<uint8_t> p = pack_rows(t, random_rows(t, n, k, rng), n, k);
    expect_bits_independent_of_threads_and_batch(packed_type(t), p, n, k, rng,
                                                 std::string(dtype_name(t)));
  }
}

TEST(PackedFloat, BadShapesAreErrors) {
  ThreadPool pool(1);
  std::vector<uint8_t> w(64 * 100 * 4), out(w.size());
  EXPECT_THROW(pack_weights(DType::kF16, w.data(), 200, 24, 100, out.data(), pool), Error);
  EXPECT_THROW(pack_weights(DType::kBF16, w.data(), 100, 16, 100, out.data(), pool), Error);
  EXPECT_THROW(pack_weights(DType::kF16R16, w.data(), 200, 16, 100, out.data(), pool), Error);
  std::vector<float> x(100), y(24);
  EXPECT_THROW(matmul(x.data(), 100, 1, 100, w.data(), DType::kF16R16, 200, 24, y.data(), 24, pool),
               Error);
}

}  // namespace
}  // namespace runnel::kernels::cpu
