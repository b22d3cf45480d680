// The K-quant r16 layouts (kernels/cpu/packed_kquants.h): packing keeps every weight of Q2_K,
// Q3_K, Q4_K, Q5_K and Q6_K exactly, each SIMD kernel equals the scalar reference bit for bit (one
// super-block, odd and even counts, misaligned x, every tile shape through m and n; and at the
// extreme sub-block dots), the reference equals exact math on the same integers, results do not
// depend on threads or batch size, bad shapes fail.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "base/error.h"
#include "base/thread_pool.h"
#include "kernel_test_util.h"
#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/packed.h"
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

constexpr DType kSources[] = {DType::kQ2_K, DType::kQ3_K, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K};

// n rows of k random Q2_K ... Q6_K super-blocks: every quant and scale byte random,
// small positive d (and dmin) so that every value is finite.
std::vector<uint8_t> random_rows(DType t, size_t n, size_t k, std::mt19937& rng) {
  std::vector<uint8_t> w(n * row_bytes(t, k));
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> scale(0.0001f, 0.002f);
  const size_t bb = dtype_info(t).block_bytes;
  for (uint8_t& b : w) b = static_cast<uint8_t>(byte(rng));
  for (size_t b = 0; b < w.size() / bb; ++b) {
    uint8_t* blk = w.data() + b * bb;
    const uint16_t d = f32_to_f16(scale(rng)), dmin = f32_to_f16(scale(rng));
    if (t == DType::kQ2_K) {
      std::memcpy(blk + offsetof(BlockQ2_K, d), &d, 2);
      std::memcpy(blk + offsetof(BlockQ2_K, dmin), &dmin, 2);
    } else if (t == DType::kQ3_K) {
      std::memcpy(blk + offsetof(BlockQ3_K, d), &d, 2);
    } else if (t != DType::kQ6_K) {  // Q5_K's d and dmin are where Q4_K's are
      std::memcpy(blk + offsetof(BlockQ4_K, d), &d, 2);
      std::memcpy(blk + offsetof(BlockQ4_K, dmin), &dmin, 2);
    } else {
      std::memcpy(blk + offsetof(BlockQ6_K, d), &d, 2);
    }
  }
  return w;
}

TEST(PackedKQuants, TypesAndPreference) {
  EXPECT_EQ(packed_type(DType::kQ4_K), DType::kQ4_KR16);
  EXPECT_EQ(packed_type(DType::kQ6_K), DType::kQ6_KR16);
  EXPECT_EQ(packed_source(DType::kQ4_KR16), DType::kQ4_K);
  EXPECT_EQ(packed_source(DType::kQ6_KR16), DType::kQ6_K);
  EXPECT_EQ(packed_type(DType::kQ5_K), DType::kQ5_KR16);
  EXPECT_EQ(packed_type(DType::kQ3_K), DType::kQ3_KR16);
  EXPECT_EQ(packed_type(DType::kQ2_K), DType::kQ2_KR16);
  EXPECT_EQ(packed_source(DType::kQ2_KR16), DType::kQ2_K);
  EXPECT_EQ(packed_source(DType::kQ3_KR16), DType::kQ3_K);
  EXPECT_EQ(packed_source(DType::kQ5_KR16), DType::kQ5_K);
  EXPECT_EQ(dtype_name(DType::kQ4_KR16), "q4_k_r16");
  EXPECT_EQ(dtype_name(DType::kQ5_KR16), "q5_k_r16");
  for (DType s : {DType::kQ2_K, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K}) {
    EXPECT_EQ(row_bytes(packed_type(s), 4096), row_bytes(s, 4096));
  }
  // Q3_K's scales are decoded to a byte each: 16 bytes a super-block where GGML packs 12.
  EXPECT_EQ(row_bytes(DType::kQ3_KR16, 4096), row_bytes(DType::kQ3_K, 4096) + 4 * 16);
  {
    IsaScope scope(Isa::kScalar);
    EXPECT_EQ(preferred_weight_type(DType::kQ4_K, 64, 256), DType::kQ4_K);
    // Q2_K, Q3_K and Q5_K have no kernel in GGML's layout: packed everywhere (else the fallback).
    EXPECT_EQ(preferred_weight_type(DType::kQ2_K, 64, 256), DType::kQ2_KR16);
    EXPECT_EQ(preferred_weight_type(DType::kQ5_K, 64, 256), DType::kQ5_KR16);
    EXPECT_EQ(preferred_weight_type(DType::kQ3_K, 64, 256), DType::kQ3_KR16);
    EXPECT_TRUE(matmul_supports(DType::kQ6_KR16));
  }
  {
    // AVX2 packs both (its r16 kernels beat GGML's layout).
    IsaScope scope(Isa::kAvx2);
    if (scope.ok()) {
      EXPECT_EQ(preferred_weight_type(DType::kQ4_K, 2048, 2048), DType::kQ4_KR16);
      EXPECT_EQ(preferred_weight_type(DType::kQ6_K, 64, 256), DType::kQ6_KR16);
      EXPECT_EQ(preferred_weight_type(DType::kQ6_K, 72, 256), DType::kQ6_K);  // 72 % 16 != 0
    }
  }
  IsaScope scope(Isa::kAvx512);
  if (!scope.ok()) GTEST_SKIP() << "no AVX-512 here";
  EXPECT_EQ(preferred_weight_type(DType::kQ4_K, 2048, 2048), DType::kQ4_KR16);
  EXPECT_EQ(preferred_weight_type(DType::kQ6_K, 64, 256), DType::kQ6_KR16);
  EXPECT_EQ(preferred_weight_type(DType::kQ6_K, 72, 256), DType::kQ6_K);  // 72 % 16 != 0
}

TEST(PackedKQuants, PackingKeepsEveryWeight) {
  std::mt19937 rng(3);
  for (DType t : kSources) {
    for (size_t k : {256, 512, 768, 2048}) {
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

TEST(PackedKQuants, SimdEqualsScalarBitForBit) {
  std::mt19937 rng(11);
  ThreadPool pool(2);
  int variant = 0;
  for (DType t : kSources) {
    const DType pt = packed_type(t);
    for (size_t k : {256, 768, 1024}) {
      for (size_t n : {16, 32, 48, 64, 80, 160}) {
        const std::vector<uint8_t> p = pack_rows(t, random_rows(t, n, k, rng), n, k);
        expect_simd_equals_scalar(pt, p, n, k, rng, pool, variant, std::string(dtype_name(pt)));
      }
    }
  }
}

// The sub-block dots at their extremes, where the SIMD kernels' split of a dot into int16 halves
// (add_scaled) is closest to its bounds: every Q6_K quant 0 (q - 32 = -32) or 63 with scale -128
// or 127, every Q4_K / Q5_K quant 15 / 31 with scale and min 63, every Q3_K quant 0 or 7 (value
// -4 or 3) with scale -32 or 31, every Q2_K quant 3 with scale and min 15, and x constant (every
// quant ±127), so a sub-block dot is ±16·32·127 (Q6_K), ±32·15·127 (Q4_K), ±32·31·127 (Q5_K),
// ±16·4·127 (Q3_K) or ±16·3·127 (Q2_K).
TEST(PackedKQuants, SimdEqualsScalarAtExtremeDots) {
  ThreadPool pool(2);
  const size_t n = 32, k = 512;
  for (DType t : kSources) {
    for (uint8_t fill : {uint8_t{0x00}, uint8_t{0xff}}) {
      std::vector<uint8_t> w(n * row_bytes(t, k), fill);
      const size_t bb = dtype_info(t).block_bytes;
      const uint16_t d = f32_to_f16(0.001f);
      for (size_t b = 0; b < w.size() / bb; ++b) {
        uint8_t* blk = w.data() + b * bb;
        if (t == DType::kQ2_K) {
          std::memcpy(blk + offsetof(BlockQ2_K, d), &d, 2);
          std::memcpy(blk + offsetof(BlockQ2_K, dmin), &d, 2);
        } else if (t == DType::kQ3_K) {
          std::memcpy(blk + offsetof(BlockQ3_K, d), &d, 2);
        } else if (t != DType::kQ6_K) {
          std::memcpy(blk + offsetof(BlockQ4_K, d), &d, 2);
          std::memcpy(blk + offsetof(BlockQ4_K, dmin), &d, 2);
        } else {
          std::memset(blk + offsetof(BlockQ6_K, scales), fill == 0 ? 0x80 : 0x7f, 16);
          std::memcpy(blk + offsetof(BlockQ6_K, d), &d, 2);
        }
      }
      expect_simd_equals_scalar_at_extremes(
          packed_type(t), pack_rows(t, w, n, k), n, k, pool,
          std::string(dtype_name(t)) + " fill " + std::to_string(int(fill)));
    }
  }
}

// The reference against double math on the source's integers: Q2_K / Q4_K / Q5_K w = d·sc·q −
// dmin·m, Q3_K w = d·sc·(q − 4), Q6_K w = d·sc·(q − 32), times x = d_x·q_x; error at most a few
// roundings per scale step.
TEST(PackedKQuants, ReferenceMatchesExactMath) {
  std::mt19937 rng(5);
  ThreadPool pool(1);
  IsaScope s(Isa::kScalar);
  for (DType t : kSources) {
    const size_t m = 3, n = 32, k = 768, nb = k / 32;
    const std::vector<uint8_t> w = random_rows(t, n, k, rng);
    const std::vector<uint8_t> p = pack_rows(t, w, n, k);
    const std::vector<float> x = random_floats(rng, m * k, -2, 2);
    const std::vector<float> y = run_packed(packed_type(t), p, x, 0, m, n, k, pool);
    // Every weight recomputed in double from the GGML fields (f16 scales are exact in double).
    for (size_t i = 0; i < m; ++i) {
      std::vector<BlockQ8Act> xq(nb);
      quantize_act_q8_256(x.data() + i * k, k, xq.data());
      for (size_t j = 0; j < n; ++j) {
        const uint8_t* row = w.data() + j * row_bytes(t, k);
        double exact = 0, abs_sum = 0;
        for (size_t sb = 0; sb < k / 256; ++sb) {
          const uint8_t* blk = row + sb * dtype_info(t).block_bytes;
          for (int e = 0; e < 256; ++e) {
            const BlockQ8Act& xb = xq[sb * 8 + e / 32];
            const double xv = double(xb.qs[e % 32]) * xb.d;
            double a, b = 0;  // w = a − b
            if (t == DType::kQ2_K) {
              const BlockQ2_K& q = *reinterpret_cast<const BlockQ2_K*>(blk);
              const int qv = (q.qs[32 * (e / 128) + e % 32] >> (2 * (e % 128 / 32))) & 3;
              a = double(f16_to_f32(q.d)) * (q.scales[e / 16] & 15) * qv;
              b = double(f16_to_f32(q.dmin)) * (q.scales[e / 16] >> 4);
            } else if (t == DType::kQ3_K) {
              const BlockQ3_K& q = *reinterpret_cast<const BlockQ3_K*>(blk);
              const int l = e % 32, lo = (q.qs[32 * (e / 128) + l] >> (2 * (e % 128 / 32))) & 3;
              const int qv = lo | ((q.hmask[l] >> (e / 32)) & 1) << 2;
              a = double(f16_to_f32(q.d)) * q3_k_scale(q.scales, e / 16) * (qv - 4);
            } else if (t != DType::kQ6_K) {
              // Q5_K is Q4_K's fields plus qh (bit g of qh[e % 32]: element e's fifth bit).
              const BlockQ4_K& q = *reinterpret_cast<const BlockQ4_K*>(blk);
              const int g = e / 32;
              const uint8_t* sc = q.scales;
              const int s6 = g < 4 ? sc[g] & 63 : (sc[g + 4] & 15) | (sc[g - 4] >> 6) << 4;
              const int m6 = g < 4 ? sc[g + 4] & 63 : (sc[g + 4] >> 4) | (sc[g] >> 6) << 4;
              const uint8_t* qs = t == DType::kQ4_K ? q.qs : blk + offsetof(BlockQ5_K, qs);
              int qv = (qs[32 * (g / 2) + e % 32] >> (4 * (g & 1))) & 15;
              if (t == DType::kQ5_K) qv |= ((blk[offsetof(BlockQ5_K, qh) + e % 32] >> g) & 1) << 4;
              a = double(f16_to_f32(q.d)) * s6 * qv;
              b = double(f16_to_f32(q.dmin)) * m6;
            } else {
              const BlockQ6_K& q = *reinterpret_cast<const BlockQ6_K*>(blk);
              const int g = e / 32, l = e % 32, h = g / 4, r = g % 4;
              const int qv = ((q.ql[64 * h + (r & 1) * 32 + l] >> (4 * (r / 2))) & 15) |
                             ((q.qh[32 * h + l] >> (2 * r)) & 3) << 4;
              a = double(f16_to_f32(q.d)) * q.scales[e / 16] * (qv - 32);
            }
            exact += (a - b) * xv;
            abs_sum += (std::fabs(a) + std::fabs(b)) * std::fabs(xv);
          }
        }
        EXPECT_NEAR(y[i * n + j], exact, 3 * 2 * nb * kEps * abs_sum + 1e-30)
            << dtype_name(t) << " i=" << i << " j=" << j;
      }
    }
  }
}

// The amx variant's prefill (more than 32 rows of x) runs these layouts on the AMX BF16 tiles
// (matmul_amx_bf16_impl.h: each block's weights dequantized and rounded to bf16 once per slice):
// within the rounding of bf16 operands (expect_amx_bf16_within_rounding), ragged tiles of x and
// odd numbers of groups.
TEST(PackedKQuants, AmxBf16TilesWithinRoundingOfExactMath) {
  testing::expect_amx_bf16_for_sources(kSources, {256, 768, 1024}, random_rows);
}

TEST(PackedKQuants, BitIdenticalAcrossThreadsAndBatchSizes) {
  std::mt19937 rng(7);
  const size_t n = 160, k = 1280;
  for (DType t : kSources) {
    const std::vector<uint8_t> p = pack_rows(t, random_rows(t, n, k, rng), n, k);
    expect_bits_independent_of_threads_and_batch(packed_type(t), p, n, k, rng,
                                                 std::string(dtype_name(t)));
  }
}

TEST(PackedKQuants, BadShapesAreErrors) {
  ThreadPool pool(1);
  std::vector<uint8_t> w(64 * 210 * 4), out(w.size());
  // k not a multiple of 256, n not a multiple of 16, a short row stride.
  EXPECT_THROW(pack_weights(DType::kQ4_K, w.data(), 144, 16, 128, out.data(), pool), Error);
  EXPECT_THROW(pack_weights(DType::kQ6_K, w.data(), 210, 24, 256, out.data(), pool), Error);
  EXPECT_THROW(pack_weights(DType::kQ4_K, w.data(), 100, 16, 256, out.data(), pool), Error);
  EXPECT_THROW(pack_weights(DType::kQ5_K, w.data(), 176, 16, 128, out.data(), pool), Error);
  std::vector<float> x(512), y(24);
  EXPECT_THROW(
      matmul(x.data(), 256, 1, 256, w.data(), DType::kQ6_KR16, 210, 24, y.data(), 24, pool), Error);
  EXPECT_THROW(
      matmul(x.data(), 384, 1, 384, w.data(), DType::kQ4_KR16, 216, 16, y.data(), 16, pool), Error);
}

}  // namespace
}  // namespace runnel::kernels::cpu
