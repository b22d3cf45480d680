// Shared by the tests of the packed (r16) layouts: packing source rows, running matmul on packed
// weights with a guard past each output row, and the check that a packed kernel's bits do not
// depend on the thread count or on the batch a row of x comes in.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "base/thread_pool.h"
#include "kernel_test_util.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/packed.h"

namespace runnel::kernels::cpu::testing {

// n rows of k elements of `t` (row-major, row_bytes(t, k) apart) packed as packed_type(t).
inline std::vector<uint8_t> pack_rows(DType t, const std::vector<uint8_t>& w, size_t n, size_t k) {
  std::vector<uint8_t> out(n * row_bytes(packed_type(t), k));
  ThreadPool pool(2);
  pack_weights(t, w.data(), row_bytes(t, k), n, k, out.data(), pool);
  return out;
}

// y = x · Wᵀ on packed weights under the active ISA; x at offset x_off (misaligned when odd), y
// with padding after each row that must stay untouched.
inline std::vector<float> run_packed(DType pt, const std::vector<uint8_t>& pw,
                                     const std::vector<float>& x, size_t x_off, size_t m, size_t n,
                                     size_t k, ThreadPool& pool) {
  const size_t ys = n + 3;
  std::vector<float> y(m * ys, -7.0f);
  matmul(x.data() + x_off, k, m, k, pw.data(), pt, row_bytes(pt, k), n, y.data(), ys, pool);
  for (size_t i = 0; i < m; ++i) EXPECT_EQ(y[i * ys + n], -7.0f) << "wrote past row " << i;
  std::vector<float> out(m * n);
  for (size_t i = 0; i < m; ++i) std::memcpy(&out[i * n], &y[i * ys], n * 4);
  return out;
}

// Whether `isa` multiplies m rows of x by pt weights on the AMX BF16 tiles, which round x and the
// weights to bf16 (MatmulEntry::bf16): the bit-for-bit checks below skip those, and
// expect_amx_bf16_within_rounding holds them to that rounding instead.
inline bool rounds_to_bf16(Isa isa, DType pt, size_t m) {
  const MatmulEntry& e = kernel_table(isa).matmul[static_cast<int>(pt)];
  return e.bf16.fn && m > static_cast<size_t>(e.bf16.mr);
}

// The bf16 value nearest v (ties to even), f32 subnormals as zeros, as the tile unit reads them.
inline float bf16_round(float v) {
  if (std::fpclassify(v) == FP_SUBNORMAL) return 0.0f;
  uint32_t u;
  std::memcpy(&u, &v, 4);
  u = (u + 0x7fff + ((u >> 16) & 1)) & 0xffff0000u;
  std::memcpy(&v, &u, 4);
  return std::fpclassify(v) == FP_SUBNORMAL ? 0.0f : v;
}

// The amx variant on m rows of x (more than one tile, so on the BF16 tiles) against double math
// on x and the weights (unpack_weights_f32 of pw) rounded to bf16: within k + 1 f32 roundings of
// Σ|x·w|. Skipped where AMX cannot run (nor be emulated).
inline void expect_amx_bf16_within_rounding(DType pt, const std::vector<uint8_t>& pw, size_t m,
                                            size_t n, size_t k, std::mt19937& rng, ThreadPool& pool,
                                            const std::string& what) {
  IsaScope scope(Isa::kAmx);
  if (!scope.ok()) return;
  ASSERT_TRUE(rounds_to_bf16(Isa::kAmx, pt, m)) << what;
  std::vector<float> w(n * k);
  unpack_weights_f32(pt, pw.data(), n, k, w.data());
  const std::vector<float> x = random_floats(rng, m * k, -2, 2);
  const std::vector<float> y = run_packed(pt, pw, x, 0, m, n, k, pool);
  for (size_t i = 0; i < m; ++i) {
    for (size_t j = 0; j < n; ++j) {
      double exact = 0, abs_sum = 0;
      for (size_t c = 0; c < k; ++c) {
        const double term = double(bf16_round(x[i * k + c])) * bf16_round(w[j * k + c]);
        exact += term;
        abs_sum += std::fabs(term);
      }
      ASSERT_NEAR(y[i * n + j], exact, (k + 1) * kEps * abs_sum + 1e-37)
          << what << " m=" << m << " n=" << n << " k=" << k << " i=" << i << " j=" << j;
    }
  }
}

// expect_amx_bf16_within_rounding for each source type t, packed, and each k: n rows from
// random_rows(t, n, k, rng), n and m varied (48 / 80 weight rows: odd numbers of groups; 40 / 70
// rows of x: ragged tiles).
template <class Sources, class RandomRows>
void expect_amx_bf16_for_sources(const Sources& sources, const std::vector<size_t>& ks,
                                 RandomRows random_rows) {
  std::mt19937 rng(17);
  ThreadPool pool(2);
  size_t variant = 0;
  for (DType t : sources) {
    for (size_t k : ks) {
      const size_t n = variant % 2 ? 48 : 80, m = variant % 3 ? 40 : 70;
      ++variant;
      const std::vector<uint8_t> p = pack_rows(t, random_rows(t, n, k, rng), n, k);
      expect_amx_bf16_within_rounding(packed_type(t), p, m, n, k, rng, pool,
                                      std::string(dtype_name(t)));
    }
  }
}

// Every SIMD variant gives exactly the scalar reference's bits on packed weights pw (n rows of k,
// type pt), for 1, 2, 3, 4, 5, 8, 9, 13 and 70 rows of x (every tile shape and a ragged last tile;
// from 32 rows the tiles read expanded slices where the kernel has them, matmul.cpp) at an offset
// of 0, 1 or 2 floats in turn (`variant` counts across calls), so misaligned too.
inline void expect_simd_equals_scalar(DType pt, const std::vector<uint8_t>& pw, size_t n, size_t k,
                                      std::mt19937& rng, ThreadPool& pool, int& variant,
                                      const std::string& what) {
  for (size_t m : {1, 2, 3, 4, 5, 8, 9, 13, 70}) {  // every tile height of x, whole and ragged
    const size_t x_off = static_cast<size_t>(++variant % 3);
    const std::vector<float> x = random_floats(rng, x_off + m * k, -2, 2);
    std::vector<float> ref;
    {
      IsaScope s(Isa::kScalar);
      ref = run_packed(pt, pw, x, x_off, m, n, k, pool);
    }
    for (Isa isa : simd_isas()) {
      if (rounds_to_bf16(isa, pt, m)) continue;
      IsaScope s(isa);
      const std::vector<float> got = run_packed(pt, pw, x, x_off, m, n, k, pool);
      ASSERT_EQ(0, std::memcmp(ref.data(), got.data(), ref.size() * 4))
          << isa_name(isa) << " " << what << " m=" << m << " n=" << n << " k=" << k;
    }
  }
}

// Every SIMD variant against the scalar reference with x constant (+1 and -1: every quant of x
// ±127, each block dot at its largest), on tiles of the packed layout (9 rows of x) and of the
// expanded one (40; matmul.cpp), bit for bit.
inline void expect_simd_equals_scalar_at_extremes(DType pt, const std::vector<uint8_t>& pw,
                                                  size_t n, size_t k, ThreadPool& pool,
                                                  const std::string& label) {
  for (auto [xv, m] :
       {std::pair{1.0f, size_t{9}}, {-1.0f, size_t{9}}, {1.0f, size_t{40}}, {-1.0f, size_t{40}}}) {
    const std::vector<float> x(m * k, xv);
    std::vector<float> ref;
    {
      IsaScope s(Isa::kScalar);
      ref = run_packed(pt, pw, x, 0, m, n, k, pool);
    }
    for (Isa isa : simd_isas()) {
      if (rounds_to_bf16(isa, pt, m)) continue;
      IsaScope s(isa);
      const std::vector<float> got = run_packed(pt, pw, x, 0, m, n, k, pool);
      ASSERT_EQ(0, std::memcmp(ref.data(), got.data(), ref.size() * 4))
          << isa_name(isa) << " " << label << " x " << xv << " m " << m;
    }
  }
}

// For the scalar reference, AVX2 and AVX-512: 70 rows of x on 1, 2 and 3 threads give the same
// bits, and so does every 5th row computed alone (decode) on 2 threads.
inline void expect_bits_independent_of_threads_and_batch(DType pt, const std::vector<uint8_t>& pw,
                                                         size_t n, size_t k, std::mt19937& rng,
                                                         const std::string& what) {
  const size_t m = 70;
  const std::vector<float> x = random_floats(rng, m * k);
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvxVnni, Isa::kAvx512}) {
    IsaScope s(isa);
    if (!s.ok()) continue;
    std::vector<float> first;
    for (int threads : {1, 2, 3}) {
      ThreadPool pool(threads);
      const std::vector<float> y = run_packed(pt, pw, x, 0, m, n, k, pool);
      if (first.empty()) first = y;
      ASSERT_EQ(0, std::memcmp(first.data(), y.data(), y.size() * 4))
          << isa_name(isa) << " " << what << " threads=" << threads;
    }
    ThreadPool pool(2);
    for (size_t i = 0; i < m; i += 5) {
      const std::vector<float> xi(x.begin() + i * k, x.begin() + (i + 1) * k);
      const std::vector<float> row = run_packed(pt, pw, xi, 0, 1, n, k, pool);
      ASSERT_EQ(0, std::memcmp(row.data(), first.data() + i * n, n * 4))
          << isa_name(isa) << " " << what << " row " << i;
    }
  }
}

}  // namespace runnel::kernels::cpu::testing
