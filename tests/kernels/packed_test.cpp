// The r16 packed layouts (kernels/cpu/packed.h): packing keeps every weight, each SIMD kernel
// equals the scalar reference bit for bit (ragged k, odd block counts, misaligned x, every tile
// shape through m and n), the reference equals exact math on the same integers, results do not
// depend on threads or batch size, and bad shapes are clear errors.
#include "kernels/cpu/packed.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "base/error.h"
#include "base/thread_pool.h"
#include "kernel_test_util.h"
#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/packed_mlx.h"
#include "kernels/cpu/quant.h"
#include "packed_test_util.h"

namespace runnel::kernels::cpu {
namespace {

using testing::expect_bits_independent_of_threads_and_batch;
using testing::expect_simd_equals_scalar;
using testing::expect_simd_equals_scalar_at_extremes;
using testing::IsaScope;
using testing::kEps;
using testing::pack_rows;
using testing::random_floats;
using testing::run_packed;
using testing::simd_isas;

constexpr DType kSources[] = {DType::kQ8_0, DType::kQ4_0, DType::kQ5_0, DType::kQ4_1, DType::kQ5_1};

// Q4_1 and Q5_1 blocks start with d and then the minimum m (the others with d only).
bool has_min(DType t) { return t == DType::kQ4_1 || t == DType::kQ5_1; }

// n rows of k random Q8_0 / Q4_0 / Q5_0 / Q4_1 / Q5_1 blocks (every quant value possible, small
// positive scales; minima between -20 d and +4 d, so values of both signs and of one).
std::vector<uint8_t> random_rows(DType t, size_t n, size_t k, std::mt19937& rng) {
  std::vector<uint8_t> w(n * row_bytes(t, k));
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> scale(0.001f, 0.02f), min_in_d(-20.0f, 4.0f);
  const size_t bb = dtype_info(t).block_bytes;
  for (size_t b = 0; b < w.size() / bb; ++b) {
    uint8_t* blk = w.data() + b * bb;
    const float df = scale(rng);
    const uint16_t d = f32_to_f16(df), m = f32_to_f16(df * min_in_d(rng));
    std::memcpy(blk, &d, 2);
    if (has_min(t)) std::memcpy(blk + 2, &m, 2);
    for (size_t c = has_min(t) ? 4 : 2; c < bb; ++c) blk[c] = static_cast<uint8_t>(byte(rng));
  }
  return w;
}

TEST(Packed, TypesAndPreference) {
  EXPECT_EQ(packed_type(DType::kQ8_0), DType::kQ8_0R16);
  EXPECT_EQ(packed_type(DType::kQ4_0), DType::kQ4_0R16);
  EXPECT_EQ(packed_type(DType::kQ8_K), DType::kQ8_K);  // no r16 layout
  EXPECT_EQ(packed_source(DType::kQ4_0R16), DType::kQ4_0);
  EXPECT_EQ(packed_type(DType::kQ5_0), DType::kQ5_0R16);
  EXPECT_EQ(packed_source(DType::kQ5_0R16), DType::kQ5_0);
  EXPECT_EQ(packed_type(DType::kQ5_1), DType::kQ5_1R16);
  EXPECT_EQ(packed_source(DType::kQ5_1R16), DType::kQ5_1);
  EXPECT_EQ(packed_type(DType::kQ4_1), DType::kQ4_1R16);
  EXPECT_EQ(packed_source(DType::kQ4_1R16), DType::kQ4_1);
  EXPECT_TRUE(is_packed(DType::kQ8_0R16));
  EXPECT_FALSE(is_packed(DType::kQ8_0));
  for (DType s : kSources) EXPECT_EQ(row_bytes(packed_type(s), 4096), row_bytes(s, 4096));
  {
    IsaScope scope(Isa::kScalar);
    EXPECT_EQ(preferred_weight_type(DType::kQ8_0, 64, 256), DType::kQ8_0);
    EXPECT_TRUE(matmul_supports(DType::kQ8_0R16));  // the reference runs packed weights too
    // Q5_0, Q4_1 and Q5_1 have no kernel in GGML's layout: packed everywhere (the alternative is
    // the fallback).
    EXPECT_EQ(preferred_weight_type(DType::kQ5_0, 64, 256), DType::kQ5_0R16);
    EXPECT_EQ(preferred_weight_type(DType::kQ4_1, 64, 256), DType::kQ4_1R16);
    EXPECT_EQ(preferred_weight_type(DType::kQ5_1, 64, 256), DType::kQ5_1R16);
  }
  // AVX2 and AVX-512 both stream Q4_0 and Q8_0 packed (matmul_packed_avx2.cpp says why on AVX2).
  int simd = 0;
  for (Isa isa : {Isa::kAvx2, Isa::kAvxVnni, Isa::kAvx512}) {
    IsaScope scope(isa);
    if (!scope.ok()) continue;
    ++simd;
    EXPECT_EQ(preferred_weight_type(DType::kQ8_0, 64, 256), DType::kQ8_0R16) << isa_name(isa);
    EXPECT_EQ(preferred_weight_type(DType::kQ4_0, 2048, 2048), DType::kQ4_0R16) << isa_name(isa);
    EXPECT_EQ(preferred_weight_type(DType::kQ8_0, 72, 256), DType::kQ8_0);  // 72 % 16 != 0
    EXPECT_EQ(preferred_weight_type(DType::kQ8_K, 64, 256), DType::kQ8_K);
    EXPECT_EQ(preferred_weight_type(DType::kQ4_1, 64, 256), DType::kQ4_1R16) << isa_name(isa);
    EXPECT_EQ(preferred_weight_type(DType::kQ5_1, 64, 256), DType::kQ5_1R16) << isa_name(isa);
    EXPECT_EQ(preferred_weight_type(DType::kQ5_1, 24, 256), DType::kQ5_1);  // not whole groups
  }
  if (simd == 0) GTEST_SKIP() << "no AVX2 here";
}

TEST(Packed, PackingKeepsEveryWeight) {
  std::mt19937 rng(3);
  for (DType t : kSources) {
    for (size_t k : {32, 64, 96, 160, 1024}) {
      const size_t n = 48;
      const std::vector<uint8_t> w = random_rows(t, n, k, rng);
      const std::vector<uint8_t> p = pack_rows(t, w, n, k);
      std::vector<float> got(n * k), want(k);
      unpack_weights_f32(packed_type(t), p.data(), n, k, got.data());
      for (size_t j = 0; j < n; ++j) {
        dequantize_row(t, w.data() + j * row_bytes(t, k), want.data(), k);
        ASSERT_EQ(0, std::memcmp(want.data(), &got[j * k], k * 4))
            << dtype_name(t) << " k=" << k << " row " << j;
      }
    }
  }
}

TEST(Packed, SimdEqualsScalarBitForBit) {
  std::mt19937 rng(11);
  ThreadPool pool(2);
  int variant = 0;
  for (DType t : kSources) {
    const DType pt = packed_type(t);
    for (size_t k : {32, 96, 160, 1024}) {
      for (size_t n : {16, 32, 48, 64, 80, 160}) {
        const std::vector<uint8_t> w = random_rows(t, n, k, rng);
        const std::vector<uint8_t> p = pack_rows(t, w, n, k);
        expect_simd_equals_scalar(pt, p, n, k, rng, pool, variant, std::string(dtype_name(pt)));
      }
    }
  }
}

// The reference against double math on the same integers: Σ_b d_w·d_x·(exact block dot), with
// an error of at most one rounding per block and per product.
TEST(Packed, ReferenceMatchesExactMath) {
  std::mt19937 rng(5);
  ThreadPool pool(1);
  IsaScope s(Isa::kScalar);
  for (DType t : kSources) {
    const size_t m = 3, n = 32, k = 512, nb = k / 32;
    const std::vector<uint8_t> w = random_rows(t, n, k, rng);
    const std::vector<uint8_t> p = pack_rows(t, w, n, k);
    const std::vector<float> x = random_floats(rng, m * k, -2, 2);
    const std::vector<float> y = run_packed(packed_type(t), p, x, 0, m, n, k, pool);
    std::vector<float> wrow(k);
    for (size_t i = 0; i < m; ++i) {
      std::vector<BlockQ8Act> xq(nb);
      quantize_act_q8(x.data() + i * k, k, xq.data());
      for (size_t j = 0; j < n; ++j) {
        dequantize_row(t, w.data() + j * row_bytes(t, k), wrow.data(), k);
        double exact = 0, abs_sum = 0;
        for (size_t c = 0; c < k; ++c) {
          const double term = double(wrow[c]) * xq[c / 32].qs[c % 32] * xq[c / 32].d;
          exact += term;
          abs_sum += std::fabs(term);
          if (has_min(t)) {  // the two products (q · d and m) are summed apart
            uint16_t m;      // after d in both block types
            std::memcpy(&m, w.data() + j * row_bytes(t, k) + c / 32 * dtype_info(t).block_bytes + 2,
                        2);
            abs_sum += 2 * std::fabs(double(f16_to_f32(m)) * xq[c / 32].qs[c % 32] * xq[c / 32].d);
          }
        }
        EXPECT_NEAR(y[i * n + j], exact, 3 * nb * kEps * abs_sum + 1e-30)
            << dtype_name(t) << " i=" << i << " j=" << j;
      }
    }
  }
}

// Block dots at their extremes, where the AVX2 kernels' int16 sums are closest to overflowing:
// every quant byte 0x00 or 0xff (Q5_0: q 0 or 31, Q4_0: 0 or 15, Q8_0: 0 or -1) and x constant
// (every quant ±127), on tiles of the packed layouts (9 rows of x) and of the expanded ones (40).
TEST(Packed, SimdEqualsScalarAtExtremeDots) {
  ThreadPool pool(2);
  const size_t n = 32, k = 96;
  for (DType t : kSources) {
    for (uint8_t fill : {uint8_t{0x00}, uint8_t{0xff}}) {
      std::vector<uint8_t> w(n * row_bytes(t, k), fill);
      const size_t bb = dtype_info(t).block_bytes;
      const uint16_t d = f32_to_f16(0.001f), m = f32_to_f16(-0.016f);
      for (size_t b = 0; b < w.size() / bb; ++b) {
        std::memcpy(w.data() + b * bb, &d, 2);
        if (has_min(t)) std::memcpy(w.data() + b * bb + 2, &m, 2);
      }
      expect_simd_equals_scalar_at_extremes(
          packed_type(t), pack_rows(t, w, n, k), n, k, pool,
          std::string(dtype_name(t)) + " fill " + std::to_string(int(fill)));
    }
  }
}

// The amx variant's prefill (more than 32 rows of x) runs these layouts on the AMX BF16 tiles
// (matmul_amx_bf16_impl.h: each block's weights dequantized and rounded to bf16 once per slice):
// within the rounding of bf16 operands (expect_amx_bf16_within_rounding), ragged tiles of x and
// odd numbers of groups.
TEST(Packed, AmxBf16TilesWithinRoundingOfExactMath) {
  testing::expect_amx_bf16_for_sources(kSources, {32, 96, 1024}, random_rows);
}

TEST(Packed, BitIdenticalAcrossThreadsAndBatchSizes) {
  std::mt19937 rng(7);
  const size_t n = 160, k = 1280;
  for (DType t : kSources) {
    const std::vector<uint8_t> p = pack_rows(t, random_rows(t, n, k, rng), n, k);
    expect_bits_independent_of_threads_and_batch(packed_type(t), p, n, k, rng,
                                                 std::string(dtype_name(t)));
  }
}

// A Q4_1 / Q5_1 row in MLX's form: one quant per byte (q), and per 32 elements the scale (d) and
// the bias (m) as f32.
void q1_row_as_mlx(DType t, const uint8_t* row, size_t k, uint8_t* q, float* s, float* b) {
  for (size_t i = 0; i < k / 32; ++i) {
    uint16_t d, m;
    const uint8_t* qs;
    uint32_t qh = 0;
    if (t == DType::kQ4_1) {
      const BlockQ4_1& blk = reinterpret_cast<const BlockQ4_1*>(row)[i];
      d = blk.d, m = blk.m, qs = blk.qs;
    } else {
      const BlockQ5_1& blk = reinterpret_cast<const BlockQ5_1*>(row)[i];
      d = blk.d, m = blk.m, qs = blk.qs;
      std::memcpy(&qh, blk.qh, 4);
    }
    for (uint32_t j = 0; j < 16; ++j) {
      q[32 * i + j] = static_cast<uint8_t>((qs[j] & 15) | ((qh >> j) & 1) << 4);
      q[32 * i + j + 16] = static_cast<uint8_t>((qs[j] >> 4) | ((qh >> (j + 16)) & 1) << 4);
    }
    s[i] = f16_to_f32(d);
    b[i] = f16_to_f32(m);
  }
}

// Q4_1 and Q5_1 ran on MLX conversions until session 34 (to MLX 4-bit and 8-bit in groups of 32,
// f32 scales and biases); Q4_1R16 / Q5_1R16 do the same arithmetic from 20 / 24 bytes a row per
// 32 elements instead of 24 / 40. Every variant gives the conversion's bits: decode (1 row of x),
// small tiles (9) and prefill (40: expanded slices, and on the amx variant the BF16 tiles, which
// dequantize both to the same bf16 weights).
TEST(Packed, Q4_1AndQ5_1GiveTheBitsOfTheirMlxForms) {
  std::mt19937 rng(13);
  ThreadPool pool(2);
  const size_t n = 48, k = 544;
  for (DType t : {DType::kQ4_1, DType::kQ5_1}) {
    const int bits = t == DType::kQ4_1 ? 4 : 8;
    const std::vector<uint8_t> w = random_rows(t, n, k, rng);
    const std::vector<uint8_t> p = pack_rows(t, w, n, k);
    std::vector<uint8_t> q(k);
    std::vector<uint32_t> words(n * k * bits / 32);
    std::vector<float> s(n * k / 32), b(n * k / 32);
    for (size_t r = 0; r < n; ++r) {
      q1_row_as_mlx(t, w.data() + r * row_bytes(t, k), k, q.data(), s.data() + r * k / 32,
                    b.data() + r * k / 32);
      // MLX: element j at bits [j·bits, (j+1)·bits) of the row's little-endian words.
      uint8_t* wr = reinterpret_cast<uint8_t*>(words.data()) + r * k * bits / 8;
      for (size_t j = 0; j < k; j += 8 / bits) {
        wr[j * bits / 8] = bits == 8 ? q[j] : static_cast<uint8_t>(q[j] | q[j + 1] << 4);
      }
    }
    const DType mt = mlx_packed_type(bits, 32);
    std::vector<uint8_t> mlx(n * row_bytes(mt, k));
    pack_mlx_affine(words.data(), s.data(), b.data(), DType::kF32, n, k, bits, 32, mlx.data(),
                    pool);
    for (Isa isa : kAllIsas) {
      IsaScope scope(isa);
      if (!scope.ok()) continue;
      for (size_t m : {1, 9, 40}) {
        const std::vector<float> x = random_floats(rng, m * k, -2, 2);
        const std::vector<float> got = run_packed(packed_type(t), p, x, 0, m, n, k, pool);
        const std::vector<float> want = run_packed(mt, mlx, x, 0, m, n, k, pool);
        ASSERT_EQ(0, std::memcmp(got.data(), want.data(), got.size() * 4))
            << dtype_name(t) << " " << isa_name(isa) << " m=" << m;
      }
    }
  }
}

TEST(Packed, BadShapesAreErrors) {
  ThreadPool pool(1);
  std::vector<uint8_t> w(64 * 34 * 4), out(w.size());
  EXPECT_THROW(pack_weights(DType::kQ8_0, w.data(), 34 * 4, 24, 128, out.data(), pool), Error);
  EXPECT_THROW(pack_weights(DType::kQ8_K, w.data(), 292, 16, 256, out.data(), pool), Error);
  EXPECT_THROW(pack_weights(DType::kQ8_0, w.data(), 34, 16, 128, out.data(), pool), Error);
  std::vector<float> x(128), y(24);
  EXPECT_THROW(
      matmul(x.data(), 128, 1, 128, w.data(), DType::kQ8_0R16, 34 * 4, 24, y.data(), 24, pool),
      Error);
}

}  // namespace
}  // namespace runnel::kernels::cpu
