// matmul: every SIMD variant against the scalar reference (all weight types, ragged sizes,
// misaligned pointers, padded strides), the references against exact math, and determinism
// across thread counts and batch sizes.
#include "kernels/cpu/matmul.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "base/error.h"
#include "base/thread_pool.h"
#include "kernel_test_util.h"
#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/quant.h"

namespace runnel::kernels::cpu {
namespace {

using testing::IsaScope;
using testing::kEps;
using testing::random_floats;
using testing::simd_isas;

constexpr DType kTypes[] = {DType::kF32,  DType::kF16,  DType::kBF16, DType::kQ8_0,
                            DType::kQ4_0, DType::kQ4_K, DType::kQ6_K};

bool is_kquant(DType t) { return t == DType::kQ4_K || t == DType::kQ6_K; }

// n rows of k elements of `type` at data() + offset, row stride `stride`; padding bytes are 0xff
// (NaN for float types) so a kernel reading past a row shows up.
struct Weights {
  std::vector<uint8_t> bytes;
  std::vector<float> deq;   // K-quants: rows dequantized by the formats reference (quant.cpp)
  std::vector<float> dmin;  // Q4_K: |dmin| of each super-block, row-major
  size_t offset = 0, stride = 0, k = 0;
  const uint8_t* row(size_t j) const { return bytes.data() + offset + j * stride; }
  const void* ptr() const { return bytes.data() + offset; }
};

Weights make_weights(DType t, size_t n, size_t k, std::mt19937& rng, size_t pad, size_t misalign) {
  Weights w;
  w.offset = misalign;
  w.stride = row_bytes(t, k) + pad;
  w.k = k;
  w.bytes.assign(misalign + n * w.stride + 8, 0xff);
  std::uniform_real_distribution<float> val(-1, 1), scale(0.001f, 0.02f);
  std::uniform_int_distribution<int> q8(-128, 127), byte(0, 255);  // -128: legal, rare
  for (size_t j = 0; j < n; ++j) {
    uint8_t* p = w.bytes.data() + misalign + j * w.stride;
    for (size_t c = 0; c < k; ++c) {
      if (t == DType::kF32) {
        float f = val(rng);
        std::memcpy(p + 4 * c, &f, 4);
      } else if (t == DType::kF16 || t == DType::kBF16) {
        uint16_t h = t == DType::kF16 ? f32_to_f16(val(rng)) : f32_to_bf16(val(rng));
        std::memcpy(p + 2 * c, &h, 2);
      }
    }
    if (is_kquant(t)) {
      // Random quants and scales; finite, small super-block scales.
      for (size_t c = 0; c < row_bytes(t, k); ++c) p[c] = static_cast<uint8_t>(byte(rng));
      const size_t bb = dtype_info(t).block_bytes;
      for (size_t b = 0; b < k / 256; ++b) {
        uint8_t* blk = p + b * bb;
        const uint16_t d = f32_to_f16(scale(rng) / 8), dm = f32_to_f16(scale(rng) / 8);
        if (t == DType::kQ4_K) {
          std::memcpy(blk, &d, 2);
          std::memcpy(blk + 2, &dm, 2);
          w.dmin.push_back(f16_to_f32(dm));
        } else {
          std::memcpy(blk + offsetof(BlockQ6_K, d), &d, 2);
        }
      }
      std::vector<float> row(k);
      dequantize_row(t, p, row.data(), k);
      w.deq.insert(w.deq.end(), row.begin(), row.end());
    }
    if (t == DType::kQ8_0 || t == DType::kQ4_0) {
      const size_t bb = dtype_info(t).block_bytes;
      for (size_t b = 0; b < k / 32; ++b) {
        uint8_t* blk = p + b * bb;
        const uint16_t d = f32_to_f16(scale(rng));
        std::memcpy(blk, &d, 2);
        for (size_t c = 2; c < bb; ++c) {
          blk[c] = t == DType::kQ8_0 ? static_cast<uint8_t>(static_cast<int8_t>(q8(rng)))
                                     : static_cast<uint8_t>(byte(rng));
        }
      }
    }
  }
  return w;
}

// Test-local dequantization (independent of the kernels): f32 value of element c of a row.
float weight_at(DType t, const uint8_t* row, size_t c) {
  uint16_t h;
  switch (t) {
    case DType::kF32: {
      float f;
      std::memcpy(&f, row + 4 * c, 4);
      return f;
    }
    case DType::kF16:
      std::memcpy(&h, row + 2 * c, 2);
      return f16_to_f32(h);
    case DType::kBF16:
      std::memcpy(&h, row + 2 * c, 2);
      return bf16_to_f32(h);
    default:
      break;
  }
  const uint8_t* blk = row + c / 32 * dtype_info(t).block_bytes;
  std::memcpy(&h, blk, 2);
  const float d = f16_to_f32(h);
  const size_t e = c % 32;
  if (t == DType::kQ8_0) return d * static_cast<float>(static_cast<int8_t>(blk[2 + e]));
  const uint8_t byte = blk[2 + e % 16];
  return d * static_cast<float>((e < 16 ? byte & 0xf : byte >> 4) - 8);
}

// Element c of row j, from the test's own unpacking or (K-quants) the formats reference.
float weight_of(DType t, const Weights& w, size_t j, size_t c) {
  return is_kquant(t) ? w.deq[j * w.k + c] : weight_at(t, w.row(j), c);
}

// Q4_K: its min term is summed apart from the scaled quants, so both parts' magnitudes count:
// |d·sc·q| <= |w| + |dmin·m| <= |w| + 63·|dmin|.
double min_part(DType t, const Weights& w, size_t j, size_t c) {
  return t == DType::kQ4_K ? 63.0 * w.dmin[j * (w.k / 256) + c / 256] : 0.0;
}

// The quantity rounding errors scale with, for y[i, j]: Σ |x w| for plain types, and for the
// integer paths Σ_b |d_w d_x| Σ |q_w q_x| over the quantized activations.
double error_scale(DType t, const float* x, const Weights& w, size_t j, size_t k) {
  const uint8_t* wrow = w.row(j);
  double s = 0;
  if (is_kquant(t)) {
    std::vector<BlockQ8Act> xq(k / 32);
    quantize_act_q8(x, k, xq.data());
    for (size_t c = 0; c < k; ++c) {
      s += (std::fabs(weight_of(t, w, j, c)) + min_part(t, w, j, c)) *
           std::fabs(xq[c / 32].d * xq[c / 32].qs[c % 32]);
    }
    return s;
  }
  if (!is_quantized(t)) {
    for (size_t c = 0; c < k; ++c)
      s += std::fabs(static_cast<double>(x[c]) * weight_at(t, wrow, c));
    return s;
  }
  std::vector<BlockQ8Act> xq(k / 32);
  quantize_act_q8(x, k, xq.data());
  for (size_t b = 0; b < k / 32; ++b) {
    uint16_t h;
    std::memcpy(&h, wrow + b * dtype_info(t).block_bytes, 2);
    const double dw = f16_to_f32(h);
    double isum = 0;
    for (size_t e = 0; e < 32; ++e) {
      isum += std::fabs(weight_at(t, wrow, b * 32 + e) / dw * xq[b].qs[e]);
    }
    s += std::fabs(dw * xq[b].d) * isum;
  }
  return s;
}

// Number of rounding steps in one output of either summation (a bound, with room for lane sums).
double error_steps(DType t, size_t k) {
  return is_kquant(t) ? 2 * (k / 16) + 24.0 : is_quantized(t) ? k / 32 + 24.0 : k + 24.0;
}

struct Problem {
  DType t;
  size_t m, n, k;
  size_t x_off, x_pad, w_off, w_pad;
};

// Runs matmul for `p` under the active ISA; y has stride n + 1 and its padding must stay intact.
std::vector<float> run(const Problem& p, const std::vector<float>& xbuf, const Weights& w,
                       ThreadPool& pool) {
  const size_t ys = p.n + 1;
  std::vector<float> y(p.m * ys, -7.0f);
  matmul(xbuf.data() + p.x_off, p.k + p.x_pad, p.m, p.k, w.ptr(), p.t, w.stride, p.n, y.data(), ys,
         pool);
  for (size_t i = 0; i < p.m; ++i) EXPECT_EQ(y[i * ys + p.n], -7.0f) << "wrote past row " << i;
  return y;
}

TEST(Matmul, SimdMatchesScalarReference) {
  ThreadPool pool(2);
  std::mt19937 rng(1234);
  std::vector<size_t> plain_k;
  for (size_t k = 0; k <= 2 * 16 + 3; ++k) plain_k.push_back(k);
  for (size_t k : {64, 100, 257, 1000}) plain_k.push_back(k);
  const std::vector<size_t> quant_k = {0, 32, 64, 96, 160, 256, 1024};
  const std::vector<size_t> kquant_k = {0, 256, 512, 1024};
  int variant = 0;
  for (DType t : kTypes) {
    for (size_t k : is_kquant(t) ? kquant_k : is_quantized(t) ? quant_k : plain_k) {
      for (size_t m : {1, 2, 3, 5, 9}) {
        for (size_t n : {1, 2, 3, 4, 5, 7, 13}) {
          ++variant;
          Problem p{t,
                    m,
                    n,
                    k,
                    size_t(variant % 4),
                    size_t(variant % 3),
                    size_t(variant % 4),
                    size_t(variant % 2 * 3)};
          std::vector<float> xbuf = random_floats(rng, p.x_off + m * (k + p.x_pad) + 1);
          Weights w = make_weights(t, n, k, rng, p.w_pad, p.w_off);
          std::vector<float> ref;
          {
            IsaScope s(Isa::kScalar);
            ref = run(p, xbuf, w, pool);
          }
          for (Isa isa : simd_isas()) {
            IsaScope s(isa);
            std::vector<float> got = run(p, xbuf, w, pool);
            for (size_t i = 0; i < m; ++i) {
              for (size_t j = 0; j < n; ++j) {
                const float* x = xbuf.data() + p.x_off + i * (k + p.x_pad);
                const double tol =
                    2 * error_steps(t, k) * kEps * error_scale(t, x, w, j, k) + 1e-30;
                ASSERT_NEAR(got[i * (n + 1) + j], ref[i * (n + 1) + j], tol)
                    << isa_name(isa) << " " << dtype_name(t) << " m=" << m << " n=" << n
                    << " k=" << k << " i=" << i << " j=" << j;
              }
            }
          }
        }
      }
    }
  }
}

// The scalar reference against exact (double) math: for plain types only summation error; for the
// integer paths also the activation quantization error, at most d_x/2 per element.
TEST(Matmul, ReferenceMatchesExactMath) {
  ThreadPool pool(1);
  IsaScope s(Isa::kScalar);
  std::mt19937 rng(99);
  for (DType t : kTypes) {
    const size_t m = 3, n = 5, k = 512;
    std::vector<float> x = random_floats(rng, m * k, -2, 2);
    Weights w = make_weights(t, n, k, rng, 0, 0);
    std::vector<float> y(m * n);
    matmul(x.data(), k, m, k, w.ptr(), t, w.stride, n, y.data(), n, pool);
    for (size_t i = 0; i < m; ++i) {
      std::vector<BlockQ8Act> xq(k / 32);
      quantize_act_q8(x.data() + i * k, k, xq.data());
      for (size_t j = 0; j < n; ++j) {
        double exact = 0, abs_sum = 0, quant_err = 0;
        for (size_t c = 0; c < k; ++c) {
          const double wc = weight_of(t, w, j, c);
          exact += wc * x[i * k + c];
          abs_sum += (std::fabs(wc) + min_part(t, w, j, c)) * std::fabs(x[i * k + c]);
          quant_err += std::fabs(wc) * xq[c / 32].d / 2;
        }
        const double tol =
            is_quantized(t) ? 1.01 * quant_err + 4 * k * kEps * abs_sum : 2 * k * kEps * abs_sum;
        EXPECT_NEAR(y[i * n + j], exact, tol) << dtype_name(t) << " i=" << i << " j=" << j;
        if (is_quantized(t)) {
          // Quantization must be much better than the crude bound says on random data.
          EXPECT_LT(std::fabs(y[i * n + j] - exact), 0.25 * quant_err + 1e-6) << dtype_name(t);
        }
      }
    }
  }
}

TEST(Matmul, QuantizedActivationsRoundTrip) {
  std::mt19937 rng(5);
  std::vector<float> x = random_floats(rng, 96, -3, 3);
  x[40] = 0;                                 // a zero inside a block
  std::fill(x.begin() + 64, x.end(), 0.0f);  // an all-zero block
  std::vector<BlockQ8Act> q(3);
  quantize_act_q8(x.data(), x.size(), q.data());
  for (int b = 0; b < 3; ++b) {
    int32_t sum = 0;
    for (int e = 0; e < 32; ++e) {
      EXPECT_LE(std::abs(q[b].qs[e]), 127);
      EXPECT_NEAR(q[b].qs[e] * q[b].d, x[b * 32 + e], q[b].d / 2 * 1.0001 + 1e-12);
      sum += q[b].qs[e];
    }
    EXPECT_EQ(q[b].sum, sum);
    for (int l = 0; l < 8; ++l) {
      EXPECT_EQ(q[b].lsum[l],
                q[b].qs[4 * l] + q[b].qs[4 * l + 1] + q[b].qs[4 * l + 2] + q[b].qs[4 * l + 3]);
    }
  }
  EXPECT_EQ(q[2].d, 0.0f);
}

// quantize_act_q8_256: the 8 blocks of each 256 elements share d = amax / 127 of all 256 (an
// all-zero super-block gets d = 0), each value within d/2, sums as in quantize_act_q8.
TEST(Matmul, QuantizedActivations256ShareOneScale) {
  std::mt19937 rng(6);
  std::vector<float> x = random_floats(rng, 768, -1, 1);
  x[300] = -9.5f;                             // the amax of the second super-block
  std::fill(x.begin() + 512, x.end(), 0.0f);  // an all-zero super-block
  std::vector<BlockQ8Act> q(24);
  quantize_act_q8_256(x.data(), x.size(), q.data());
  for (int b = 0; b < 24; ++b) {
    const float d = q[b / 8 * 8].d;
    EXPECT_EQ(q[b].d, d) << "block " << b;
    int32_t sum = 0;
    for (int e = 0; e < 32; ++e) {
      EXPECT_NEAR(q[b].qs[e] * d, x[b * 32 + e], d / 2 * 1.0001 + 1e-12);
      sum += q[b].qs[e];
    }
    EXPECT_EQ(q[b].sum, sum);
    for (int l = 0; l < 8; ++l) {
      EXPECT_EQ(q[b].lsum[l],
                q[b].qs[4 * l] + q[b].qs[4 * l + 1] + q[b].qs[4 * l + 2] + q[b].qs[4 * l + 3]);
    }
  }
  EXPECT_FLOAT_EQ(q[8].d, 9.5f / 127);
  EXPECT_EQ(q[9].qs[12], -127);  // x[300] = element 12 of block 9
  EXPECT_EQ(q[16].d, 0.0f);
}

// Each ISA's quantize_q8 writes exactly the bytes of the scalar definition (ties, zero blocks,
// values that round to ±127, tiny and huge magnitudes).
TEST(Matmul, QuantizeQ8SameBytesOnEveryIsa) {
  std::mt19937 rng(8);
  for (size_t k : {32, 64, 256, 2048}) {
    for (float range : {1e-30f, 1.0f, 3e4f}) {
      std::vector<float> x = random_floats(rng, k, -range, range);
      if (k >= 64) std::fill(x.begin() + 32, x.begin() + 64, 0.0f);
      x[0] = 127 * range;  // d = range: x / d lands on integers and halves below
      for (size_t i = 1; i < 8 && i < k; ++i) x[i] = (static_cast<float>(i) + 0.5f) * range;
      std::vector<BlockQ8Act> want(k / 32), want256(k / 32);
      quantize_act_q8(x.data(), k, want.data());
      if (k % 256 == 0) quantize_act_q8_256(x.data(), k, want256.data());
      for (Isa isa : simd_isas()) {
        std::vector<BlockQ8Act> got(k / 32);
        kernel_table(isa).quantize_q8(x.data(), k, got.data());
        ASSERT_EQ(0, std::memcmp(want.data(), got.data(), got.size() * sizeof(BlockQ8Act)))
            << isa_name(isa) << " k=" << k << " range=" << range;
        if (k % 256 != 0) continue;
        kernel_table(isa).quantize_q8_256(x.data(), k, got.data());
        ASSERT_EQ(0, std::memcmp(want256.data(), got.data(), got.size() * sizeof(BlockQ8Act)))
            << isa_name(isa) << " quantize_q8_256 k=" << k << " range=" << range;
      }
    }
  }
}

// Every y[i, j] is one dot product summed in a fixed order, so thread count and batch size must not
// change a single bit (for every ISA).
TEST(Matmul, BitIdenticalAcrossThreadsAndBatchSizes) {
  std::mt19937 rng(7);
  const size_t n = 45;
  // Two k: one block row in L1, and rows spanning several KiB.
  for (DType t : kTypes) {
    for (size_t k : {size_t{256}, size_t{1280}}) {
      Weights w = make_weights(t, n, k, rng, 0, 0);
      for (size_t m : {1, 7, 70}) {
        std::vector<float> x = random_floats(rng, m * k);
        for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvxVnni, Isa::kAvx512}) {
          IsaScope s(isa);
          if (!s.ok()) continue;
          std::vector<float> first;
          for (int threads : {1, 2, 3}) {
            ThreadPool pool(threads);
            std::vector<float> y(m * n);
            matmul(x.data(), k, m, k, w.ptr(), t, w.stride, n, y.data(), n, pool);
            if (first.empty()) {
              first = y;
            } else {
              ASSERT_EQ(0, std::memcmp(first.data(), y.data(), y.size() * 4))
                  << isa_name(isa) << " " << dtype_name(t) << " m=" << m << " threads=" << threads;
            }
          }
          ThreadPool pool(2);
          for (size_t i = 0; i < m; i += 3) {
            std::vector<float> row(n);
            matmul(x.data() + i * k, k, 1, k, w.ptr(), t, w.stride, n, row.data(), n, pool);
            ASSERT_EQ(0, std::memcmp(row.data(), first.data() + i * n, n * 4))
                << isa_name(isa) << " " << dtype_name(t) << " row " << i << " of m=" << m;
          }
        }
      }
    }
  }
}

TEST(Matmul, RejectsBadArguments) {
  ThreadPool pool(1);
  std::vector<float> x(64), y(4);
  std::vector<uint8_t> w(1024);
  EXPECT_FALSE(matmul_supports(DType::kQ2_K));
  EXPECT_TRUE(matmul_supports(DType::kQ8_0));
  EXPECT_THROW(matmul(x.data(), 64, 1, 64, w.data(), DType::kQ2_K, 512, 1, y.data(), 1, pool),
               Error);
  EXPECT_THROW(matmul(x.data(), 40, 1, 40, w.data(), DType::kQ8_0, 512, 1, y.data(), 1, pool),
               Error);
  EXPECT_THROW(matmul(x.data(), 64, 1, 64, w.data(), DType::kF32, 100, 2, y.data(), 2, pool),
               Error);
  try {
    matmul(x.data(), 40, 1, 40, w.data(), DType::kQ4_0, 512, 1, y.data(), 1, pool);
  } catch (const Error& e) {
    EXPECT_EQ(e.component(), "matmul");
    EXPECT_NE(e.message().find("k=40"), std::string::npos) << e.message();
  }
}

TEST(Matmul, EmptyKGivesZeros) {
  ThreadPool pool(2);
  std::vector<float> y(6, 5.0f);
  float x = 0;
  matmul(&x, 0, 2, 0, nullptr, DType::kF16, 0, 3, y.data(), 3, pool);
  for (float v : y) EXPECT_EQ(v, 0.0f);
}

}  // namespace
}  // namespace runnel::kernels::cpu
