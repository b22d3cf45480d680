// The MLX affine r16 layouts (kernels/cpu/packed_mlx.h): packing keeps every weight exactly
// (vs a test-local MLX dequantizer, for f32/f16/bf16 scales and groups of 32..128), each SIMD
// kernel equals the scalar reference bit for bit over every tile shape, the reference equals
// exact math on the same integers, results do not depend on threads or batch size, and shapes
// that cannot be packed are errors.
#include "kernels/cpu/packed_mlx.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "base/error.h"
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

// One MLX-quantized matrix as a file holds it: random words (every quant value possible) and
// scales/biases of dtype sb (scales small and positive, biases about -half the range).
struct MlxMatrix {
  size_t n, k;
  int bits, group;
  DType sb;
  std::vector<uint32_t> words;
  std::vector<uint8_t> scales, biases;  // raw sb values
};

MlxMatrix random_mlx(size_t n, size_t k, int bits, int group, DType sb, std::mt19937& rng) {
  MlxMatrix m{n, k, bits, group, sb, {}, {}, {}};
  m.words.resize(n * k * static_cast<size_t>(bits) / 32);
  for (uint32_t& w : m.words) w = static_cast<uint32_t>(rng());
  const size_t count = n * k / static_cast<size_t>(group);
  const size_t es = sb == DType::kF32 ? 4 : 2;
  m.scales.resize(count * es);
  m.biases.resize(count * es);
  std::uniform_real_distribution<float> scale(0.0005f, 0.02f), jitter(-0.3f, 0.3f);
  const float half = static_cast<float>((1 << bits) - 1) / 2;
  for (size_t i = 0; i < count; ++i) {
    const float s = scale(rng), b = -s * half * (1 + jitter(rng));
    for (auto [v, dst] : {std::pair{s, &m.scales}, std::pair{b, &m.biases}}) {
      if (sb == DType::kF32) {
        std::memcpy(dst->data() + 4 * i, &v, 4);
      } else {
        const uint16_t h = sb == DType::kF16 ? f32_to_f16(v) : f32_to_bf16(v);
        std::memcpy(dst->data() + 2 * i, &h, 2);
      }
    }
  }
  return m;
}

float sb_value(const MlxMatrix& m, const std::vector<uint8_t>& v, size_t i) {
  if (m.sb == DType::kF32) {
    float f;
    std::memcpy(&f, v.data() + 4 * i, 4);
    return f;
  }
  uint16_t h;
  std::memcpy(&h, v.data() + 2 * i, 2);
  return m.sb == DType::kF16 ? f16_to_f32(h) : bf16_to_f32(h);
}

uint32_t quant(const MlxMatrix& m, size_t row, size_t j) {
  const size_t bit = (row * m.k + j) * static_cast<size_t>(m.bits);
  return m.words[bit / 32] >> (bit % 32) & ((1u << m.bits) - 1);
}

// Like models::mlx_dequantize: q · s + b, a rounded product then a rounded sum.
std::vector<float> dequantize(const MlxMatrix& m) {
  std::vector<float> out(m.n * m.k);
  const size_t gpr = m.k / static_cast<size_t>(m.group);
  for (size_t r = 0; r < m.n; ++r) {
    for (size_t j = 0; j < m.k; ++j) {
      const size_t g = r * gpr + j / static_cast<size_t>(m.group);
      out[r * m.k + j] =
          static_cast<float>(quant(m, r, j)) * sb_value(m, m.scales, g) + sb_value(m, m.biases, g);
    }
  }
  return out;
}

DType type_of(const MlxMatrix& m) { return mlx_packed_type(m.bits, m.group); }

std::vector<uint8_t> packed(const MlxMatrix& m) {
  std::vector<uint8_t> out(m.n * row_bytes(type_of(m), m.k));
  ThreadPool pool(2);
  pack_mlx_affine(m.words.data(), m.scales.data(), m.biases.data(), m.sb, m.n, m.k, m.bits, m.group,
                  out.data(), pool);
  return out;
}

TEST(PackedMlx, TypesAndPreference) {
  EXPECT_EQ(mlx_packed_type(8, 32), DType::kQ8AR16);
  EXPECT_EQ(mlx_packed_type(4, 32), DType::kQ4AR16);
  EXPECT_EQ(mlx_packed_type(8, 64), DType::kQ8AR16G64);
  EXPECT_EQ(mlx_packed_type(4, 128), DType::kQ4AR16G64);
  EXPECT_EQ(mlx_packed_type(3, 64), DType::kU32);
  EXPECT_TRUE(is_mlx_packed(DType::kQ8AR16G64));
  EXPECT_EQ(dtype_name(DType::kQ4AR16G64), "mlx4_r16_g64");
  EXPECT_TRUE(is_packed(DType::kQ8AR16));  // not addressable by row (embedding refuses it)
  EXPECT_TRUE(is_mlx_packed(DType::kQ4AR16));
  EXPECT_FALSE(is_mlx_packed(DType::kQ4_0R16));
  EXPECT_EQ(dtype_name(DType::kQ4AR16), "mlx4_r16");
  EXPECT_EQ(dtype_name(DType::kQ8AR16), "mlx8_r16");
  // Per row of k: quants plus an f32 scale and bias per 32 elements.
  EXPECT_EQ(row_bytes(DType::kQ8AR16, 4096), 4096 + 4096 / 32 * 8);
  EXPECT_EQ(row_bytes(DType::kQ4AR16, 4096), 4096 / 2 + 4096 / 32 * 8);
  // ... or per 64 elements.
  EXPECT_EQ(row_bytes(DType::kQ8AR16G64, 4096), 4096 + 4096 / 64 * 8);
  EXPECT_EQ(row_bytes(DType::kQ4AR16G64, 4096), 4096 / 2 + 4096 / 64 * 8);
  {
    IsaScope scope(Isa::kScalar);
    EXPECT_EQ(preferred_mlx_type(4, 64, 64, 256), DType::kF32);
    EXPECT_TRUE(matmul_supports(DType::kQ4AR16));  // the reference runs them too
  }
  // AVX2 and AVX-512 both have integer kernels for the layouts, so both keep MLX weights packed.
  int simd = 0;
  for (Isa isa : {Isa::kAvx2, Isa::kAvxVnni, Isa::kAvx512}) {
    IsaScope scope(isa);
    if (!scope.ok()) continue;
    ++simd;
    EXPECT_EQ(preferred_mlx_type(4, 64, 64, 256), DType::kQ4AR16G64) << isa_name(isa);
    EXPECT_EQ(preferred_mlx_type(4, 32, 64, 256), DType::kQ4AR16) << isa_name(isa);
    EXPECT_EQ(preferred_mlx_type(8, 32, 2048, 2048), DType::kQ8AR16) << isa_name(isa);
    EXPECT_EQ(preferred_mlx_type(8, 128, 2048, 2048), DType::kQ8AR16G64) << isa_name(isa);
    EXPECT_EQ(preferred_mlx_type(4, 64, 72, 256), DType::kF32);  // 72 % 16 != 0
    EXPECT_EQ(preferred_mlx_type(3, 32, 64, 256), DType::kF32);  // no 3-bit layout
    EXPECT_EQ(preferred_mlx_type(2, 64, 64, 256), DType::kF32);
    EXPECT_EQ(preferred_mlx_type(4, 16, 64, 256), DType::kF32);  // group below a block
    EXPECT_EQ(preferred_mlx_type(4, 64, 64, 96), DType::kF32);   // k not a multiple of the group
  }
  if (simd == 0) GTEST_SKIP() << "no AVX2 here";
}

TEST(PackedMlx, PackingKeepsEveryWeight) {
  std::mt19937 rng(3);
  for (int bits : {4, 8}) {
    for (DType sb : {DType::kF32, DType::kF16, DType::kBF16}) {
      for (int group : {32, 64, 128}) {
        for (size_t k : {128, 384, 1024}) {
          const MlxMatrix m = random_mlx(48, k, bits, group, sb, rng);
          const std::vector<uint8_t> p = packed(m);
          std::vector<float> got(m.n * k);
          unpack_weights_f32(type_of(m), p.data(), m.n, k, got.data());
          const std::vector<float> want = dequantize(m);
          ASSERT_EQ(0, std::memcmp(want.data(), got.data(), got.size() * 4))
              << bits << " bits " << dtype_name(sb) << " group " << group << " k=" << k;
        }
      }
    }
  }
}

TEST(PackedMlx, SimdEqualsScalarBitForBit) {
  std::mt19937 rng(11);
  ThreadPool pool(2);
  int variant = 0;
  for (int bits : {4, 8}) {
    for (size_t k : {32, 96, 160, 192, 1024}) {
      for (size_t n : {16, 32, 48, 64, 80, 160}) {
        const int group = k % 64 == 0 ? 64 : 32;  // 192: an odd number of scale blocks of 64
        const MlxMatrix w = random_mlx(n, k, bits, group, DType::kBF16, rng);
        const std::vector<uint8_t> p = packed(w);
        expect_simd_equals_scalar(type_of(w), p, n, k, rng, pool, variant,
                                  std::to_string(bits) + " bits group " + std::to_string(group));
      }
    }
  }
}

// The reference against double math on the same integers: Σ_b d_x·(s·dot + b·Σq_x), with an
// error of at most a few roundings per block relative to the terms' magnitudes.
TEST(PackedMlx, ReferenceMatchesExactMath) {
  std::mt19937 rng(5);
  ThreadPool pool(1);
  IsaScope s(Isa::kScalar);
  for (auto [bits, group] : {std::pair{4, 64}, std::pair{8, 64}, std::pair{4, 32}}) {
    const size_t m = 3, n = 32, k = 512, nb = k / 32;
    const MlxMatrix w = random_mlx(n, k, bits, group, DType::kF16, rng);
    const std::vector<uint8_t> p = packed(w);
    const std::vector<float> x = random_floats(rng, m * k, -2, 2);
    const std::vector<float> y = run_packed(type_of(w), p, x, 0, m, n, k, pool);
    for (size_t i = 0; i < m; ++i) {
      std::vector<BlockQ8Act> xq(nb);
      quantize_act_q8(x.data() + i * k, k, xq.data());
      for (size_t j = 0; j < n; ++j) {
        double exact = 0, abs_sum = 0;
        for (size_t b = 0; b < nb; ++b) {
          const size_t g =
              j * (k / static_cast<size_t>(group)) + 32 * b / static_cast<size_t>(group);
          const double sc = sb_value(w, w.scales, g), bi = sb_value(w, w.biases, g);
          double dot = 0;
          for (size_t c = 0; c < 32; ++c) dot += double(quant(w, j, 32 * b + c)) * xq[b].qs[c];
          const double t1 = sc * xq[b].d * dot, t2 = bi * xq[b].d * xq[b].sum;
          exact += t1 + t2;
          abs_sum += std::fabs(t1) + std::fabs(t2);
        }
        EXPECT_NEAR(y[i * n + j], exact, 3 * nb * kEps * abs_sum + 1e-30)
            << bits << " bits group " << group << " i=" << i << " j=" << j;
      }
    }
  }
}

// The amx variant's prefill (more than 32 rows of x) on the AMX BF16 tiles: each block dequantized
// (q · s + b) and rounded to bf16 once per slice, then within the rounding of bf16 operands
// (expect_amx_bf16_within_rounding); both bit widths, groups of 32 and 64 (an odd number of scale
// blocks at k = 192), ragged tiles of x.
TEST(PackedMlx, AmxBf16TilesWithinRoundingOfExactMath) {
  std::mt19937 rng(19);
  ThreadPool pool(2);
  size_t variant = 0;
  for (int bits : {4, 8}) {
    for (size_t k : {96, 192, 1024}) {
      const int group = k % 64 == 0 ? 64 : 32;
      const size_t n = variant % 2 ? 48 : 80, m = variant % 3 ? 40 : 70;
      ++variant;
      const MlxMatrix w = random_mlx(n, k, bits, group, DType::kBF16, rng);
      expect_amx_bf16_within_rounding(
          type_of(w), packed(w), m, n, k, rng, pool,
          std::to_string(bits) + " bits group " + std::to_string(group));
    }
  }
}

TEST(PackedMlx, BitIdenticalAcrossThreadsAndBatchSizes) {
  std::mt19937 rng(7);
  const size_t n = 160, k = 1280;
  for (int bits : {4, 8}) {
    for (int group : {32, 128}) {
      const MlxMatrix w = random_mlx(n, k, bits, group, DType::kBF16, rng);
      const std::vector<uint8_t> p = packed(w);
      expect_bits_independent_of_threads_and_batch(
          type_of(w), p, n, k, rng, std::to_string(bits) + " bits group " + std::to_string(group));
    }
  }
}

TEST(PackedMlx, BadShapesAreErrors) {
  ThreadPool pool(1);
  std::vector<uint32_t> words(64 * 128);
  std::vector<float> sb(64 * 8);
  std::vector<uint8_t> out(64 * 256 * 8);
  auto pack = [&](size_t rows, size_t cols, int bits, int group, DType dt) {
    pack_mlx_affine(words.data(), sb.data(), sb.data(), dt, rows, cols, bits, group, out.data(),
                    pool);
  };
  EXPECT_NO_THROW(pack(32, 128, 4, 64, DType::kF32));
  EXPECT_THROW(pack(32, 128, 3, 32, DType::kF32), Error);  // no 3-bit layout
  EXPECT_THROW(pack(24, 128, 4, 64, DType::kF32), Error);  // 24 rows
  EXPECT_THROW(pack(32, 128, 4, 16, DType::kF32), Error);  // group below a block
  EXPECT_THROW(pack(32, 96, 8, 64, DType::kF32), Error);   // k not a multiple of the group
  EXPECT_THROW(pack(32, 128, 8, 64, DType::kI32), Error);  // scale dtype
  std::vector<float> x(128), y(24);
  EXPECT_THROW(matmul(x.data(), 128, 1, 128, out.data(), DType::kQ8AR16,
                      row_bytes(DType::kQ8AR16, 128), 24, y.data(), 24, pool),
               Error);
}

}  // namespace
}  // namespace runnel::kernels::cpu
