// The r16 layouts of GGML's non-linear 4-bit types, IQ4_NLR16 (packed.h) and IQ4_XSR16
// (packed_kquants.h): packing keeps every weight, each SIMD kernel (decode, small tiles, the
// expanded prefill slices) equals the scalar reference bit for bit, also at the extreme table
// values and scales, the reference equals exact math on the GGML fields, AMX's BF16 tiles stay
// within bf16 rounding, and results do not depend on threads or batch size.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "base/half.h"
#include "base/thread_pool.h"
#include "kernel_test_util.h"
#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/packed.h"
#include "kernels/cpu/packed_kquants.h"
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

constexpr DType kSources[] = {DType::kIQ4_NL, DType::kIQ4_XS};

// GGML's kvalues_iq4nl, written out here so the exact-math test does not read the code's table.
constexpr int kValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                             1,    13,   25,  38,  53,  69,  89,  113};

// n rows of k random blocks: every quant and scale byte random, a small positive d.
std::vector<uint8_t> random_rows(DType t, size_t n, size_t k, std::mt19937& rng) {
  std::vector<uint8_t> w(n * row_bytes(t, k));
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> scale(0.0005f, 0.004f);
  for (uint8_t& b : w) b = static_cast<uint8_t>(byte(rng));
  const size_t bb = dtype_info(t).block_bytes;
  for (size_t b = 0; b < w.size() / bb; ++b) {
    const uint16_t d = f32_to_f16(scale(rng));
    std::memcpy(w.data() + b * bb, &d, 2);  // d leads both block types
  }
  return w;
}

// Element e of a row of t from its GGML fields, in double.
double weight(DType t, const uint8_t* row, size_t e) {
  if (t == DType::kIQ4_NL) {
    const BlockIQ4_NL& b = reinterpret_cast<const BlockIQ4_NL*>(row)[e / 32];
    const int l = static_cast<int>(e % 32), q = (b.qs[l % 16] >> (l < 16 ? 0 : 4)) & 15;
    return double(f16_to_f32(b.d)) * kValues[q];
  }
  const BlockIQ4_XS& b = reinterpret_cast<const BlockIQ4_XS*>(row)[e / 256];
  const int j = static_cast<int>(e % 256 / 32), l = static_cast<int>(e % 32);
  const int ls = ((b.scales_l[j / 2] >> (4 * (j % 2))) & 15) | ((b.scales_h >> (2 * j)) & 3) << 4;
  const int q = (b.qs[16 * j + l % 16] >> (l < 16 ? 0 : 4)) & 15;
  return double(f16_to_f32(b.d)) * (ls - 32) * kValues[q];
}

TEST(PackedIQ4, TypesAndPreference) {
  EXPECT_EQ(packed_type(DType::kIQ4_NL), DType::kIQ4_NLR16);
  EXPECT_EQ(packed_type(DType::kIQ4_XS), DType::kIQ4_XSR16);
  EXPECT_EQ(packed_source(DType::kIQ4_NLR16), DType::kIQ4_NL);
  EXPECT_EQ(packed_source(DType::kIQ4_XSR16), DType::kIQ4_XS);
  EXPECT_EQ(dtype_name(DType::kIQ4_XSR16), "iq4_xs_r16");
  for (DType s : kSources) EXPECT_EQ(row_bytes(packed_type(s), 4096), row_bytes(s, 4096));
  // No kernel reads GGML's layout: every variant packs them (the alternative is the fallback).
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvxVnni, Isa::kAvx512, Isa::kAmx}) {
    IsaScope scope(isa);
    if (!scope.ok()) continue;
    EXPECT_EQ(preferred_weight_type(DType::kIQ4_NL, 64, 256), DType::kIQ4_NLR16) << isa_name(isa);
    EXPECT_EQ(preferred_weight_type(DType::kIQ4_XS, 64, 256), DType::kIQ4_XSR16) << isa_name(isa);
    EXPECT_EQ(preferred_weight_type(DType::kIQ4_XS, 24, 256), DType::kIQ4_XS);  // not whole groups
  }
}

TEST(PackedIQ4, PackingKeepsEveryWeight) {
  std::mt19937 rng(3);
  for (DType t : kSources) {
    for (size_t k : {256, 512, 768, 2048}) {
      const size_t n = 48;
      const std::vector<uint8_t> w = random_rows(t, n, k, rng);
      const std::vector<uint8_t> p = pack_rows(t, w, n, k);
      std::vector<float> got(n * k), want(k);
      unpack_weights_f32(packed_type(t), p.data(), n, k, got.data());
      for (size_t j = 0; j < n; ++j) {
        const uint8_t* row = w.data() + j * row_bytes(t, k);
        dequantize_row(t, row, want.data(), k);
        ASSERT_EQ(0, std::memcmp(want.data(), &got[j * k], k * 4))
            << dtype_name(t) << " k=" << k << " row " << j;
        for (size_t e = 0; e < k; e += 37) ASSERT_EQ(want[e], weight(t, row, e)) << e;
      }
    }
  }
}

TEST(PackedIQ4, SimdEqualsScalarBitForBit) {
  std::mt19937 rng(11);
  ThreadPool pool(2);
  int variant = 0;
  for (DType t : kSources) {
    const DType pt = packed_type(t);
    // IQ4_NL's 32-element blocks: odd block counts too (an odd last block stands alone).
    const std::vector<size_t> ks = t == DType::kIQ4_NL ? std::vector<size_t>{32, 96, 160, 1024}
                                                       : std::vector<size_t>{256, 768, 1024};
    for (size_t k : ks) {
      for (size_t n : {16, 32, 48, 64, 80, 160}) {
        const std::vector<uint8_t> p = pack_rows(t, random_rows(t, n, k, rng), n, k);
        expect_simd_equals_scalar(pt, p, n, k, rng, pool, variant, std::string(dtype_name(pt)));
      }
    }
  }
}

// Every nibble 0 (value -127) or 15 (113), IQ4_XS's scales then -32 or 31, x constant (every
// quant ±127): each sub-block's dot and its scaled sum at their largest.
TEST(PackedIQ4, SimdEqualsScalarAtExtremeDots) {
  ThreadPool pool(2);
  const size_t n = 32, k = 512;
  for (DType t : kSources) {
    for (uint8_t fill : {uint8_t{0x00}, uint8_t{0xff}}) {
      std::vector<uint8_t> w(n * row_bytes(t, k), fill);
      const size_t bb = dtype_info(t).block_bytes;
      const uint16_t d = f32_to_f16(0.001f);
      for (size_t b = 0; b < w.size() / bb; ++b) std::memcpy(w.data() + b * bb, &d, 2);
      expect_simd_equals_scalar_at_extremes(
          packed_type(t), pack_rows(t, w, n, k), n, k, pool,
          std::string(dtype_name(t)) + " fill " + std::to_string(int(fill)));
    }
  }
}

// The reference against double math on the GGML fields times x's quants: one rounding per block
// (IQ4_NL) or super-block (IQ4_XS) and product.
TEST(PackedIQ4, ReferenceMatchesExactMath) {
  std::mt19937 rng(5);
  ThreadPool pool(1);
  IsaScope s(Isa::kScalar);
  for (DType t : kSources) {
    const size_t m = 3, n = 32, k = 768, nb = k / 32;
    const std::vector<uint8_t> w = random_rows(t, n, k, rng);
    const std::vector<uint8_t> p = pack_rows(t, w, n, k);
    const std::vector<float> x = random_floats(rng, m * k, -2, 2);
    const std::vector<float> y = run_packed(packed_type(t), p, x, 0, m, n, k, pool);
    for (size_t i = 0; i < m; ++i) {
      std::vector<BlockQ8Act> xq(nb);
      if (t == DType::kIQ4_NL) {
        quantize_act_q8(x.data() + i * k, k, xq.data());
      } else {
        quantize_act_q8_256(x.data() + i * k, k, xq.data());
      }
      for (size_t j = 0; j < n; ++j) {
        const uint8_t* row = w.data() + j * row_bytes(t, k);
        double exact = 0, abs_sum = 0;
        for (size_t e = 0; e < k; ++e) {
          const double term = weight(t, row, e) * xq[e / 32].qs[e % 32] * xq[e / 32].d;
          exact += term;
          abs_sum += std::fabs(term);
        }
        EXPECT_NEAR(y[i * n + j], exact, 3 * nb * kEps * abs_sum + 1e-30)
            << dtype_name(t) << " i=" << i << " j=" << j;
      }
    }
  }
}

TEST(PackedIQ4, AmxBf16TilesWithinRoundingOfExactMath) {
  testing::expect_amx_bf16_for_sources(kSources, {256, 768, 1024}, random_rows);
}

TEST(PackedIQ4, BitIdenticalAcrossThreadsAndBatchSizes) {
  std::mt19937 rng(7);
  const size_t n = 160, k = 1280;
  for (DType t : kSources) {
    const std::vector<uint8_t> p = pack_rows(t, random_rows(t, n, k, rng), n, k);
    expect_bits_independent_of_threads_and_batch(packed_type(t), p, n, k, rng,
                                                 std::string(dtype_name(t)));
  }
}

}  // namespace
}  // namespace runnel::kernels::cpu
