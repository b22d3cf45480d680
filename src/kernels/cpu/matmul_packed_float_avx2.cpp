// AVX2 kernels for the float r16 layouts (packed_float.h), the 8-lane counterpart of
// matmul_packed_float_avx512.cpp: element c of a group's 16 weight rows is two 8-lane vectors
// (two 16-byte loads widened by vcvtph2ps for f16, a zero-extend and shift for bf16, two 32-byte
// loads for f32), each meeting x[i][c] broadcast in one fma. Each output lane keeps two fma chains,
// even and odd k positions, added at the end: exactly the scalar reference's arithmetic.
//
// Register tile MR rows of x x one group. MR <= 3 keeps both chains live: 2 chains x 2 halves x MR
// accumulators + 2 widened weights + a broadcast, 12 + 2 + 1 = 15 of the 16 ymm at MR = 3; decode
// (m = 1) then has four independent chains, enough to issue one fma per cycle against a 4-cycle
// latency. MR 4..6 runs the chains one after the other (gemm_r16_by_chain). Measured
// (bench_kernels --gemm --isa avx2, 1 thread, f16 2048x2048, GFLOP per CPU-s): 3 rows both chains
// 57-59, 6 rows by chain 100-110; GGML's row-major AVX2 tiles 78-83.
#include <immintrin.h>

#include <array>
#include <utility>

#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/packed.h"
#include "kernels/cpu/packed_float.h"
#include "kernels/cpu/prefetch.h"

namespace runnel::kernels::cpu::avx2 {
namespace {

// load(p): the 8 elements at p widened to f32.
struct WideF16 {
  static constexpr size_t kBytes = 2;
  static __m256 load(const uint8_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
};
struct WideBF16 {  // bf16 is the high half of an f32: shifting it up is exact
  static constexpr size_t kBytes = 2;
  static __m256 load(const uint8_t* p) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
};
struct WideF32 {
  static constexpr size_t kBytes = 4;
  static __m256 load(const uint8_t* p) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(p));
  }
};

template <class L, int MR>
void gemm_r16(const PackedGemm& a) {
  constexpr size_t kStep = kPackRows * L::kBytes;  // bytes of one k position of a group
  constexpr size_t kHalf = 8 * L::kBytes;          // rows 8..15 of that position
  const float* x[MR];
  for (int i = 0; i < MR; ++i) x[i] = reinterpret_cast<const float*>(a.x + i * a.x_stride);
  __m256 acc[2][MR][2];  // [chain: even / odd k][row of x][rows 0..7 / 8..15 of the group]
  for (int h = 0; h < 2; ++h)
    for (int i = 0; i < MR; ++i) acc[h][i][0] = acc[h][i][1] = _mm256_setzero_ps();
  const uint8_t* w = a.w;
  size_t c = 0;
  // Decode (a.stream): each step's bytes (one line for f16 / bf16, two for f32) prefetched just
  // before they are read (prefetch_line_ahead), as the AVX-512 kernel's stream; it had none:
  // bench_kernels --threads 2 --isa avx2, 3072 x 1024 / 8192 x 2048, f16_r16 and bf16_r16 26 ->
  // 32-39 GB/s, f32_r16 equal, GEMM equal (Sapphire Rapids VM, session 31).
#pragma GCC unroll 1
  for (; c + 2 <= a.k; c += 2, w += 2 * kStep) {
    if (a.stream) {
      for (size_t o = 0; o < 2 * kStep; o += 64) prefetch_line_ahead(w + o);
    }
    for (int h = 0; h < 2; ++h) {
      const __m256 w0 = L::load(w + h * kStep), w1 = L::load(w + h * kStep + kHalf);
      for (int i = 0; i < MR; ++i) {
        const __m256 xb = _mm256_broadcast_ss(x[i] + c + h);
        acc[h][i][0] = _mm256_fmadd_ps(xb, w0, acc[h][i][0]);
        acc[h][i][1] = _mm256_fmadd_ps(xb, w1, acc[h][i][1]);
      }
    }
  }
  if (c < a.k) {  // odd k: the last position is even, so it joins the first chain
    const __m256 w0 = L::load(w), w1 = L::load(w + kHalf);
    for (int i = 0; i < MR; ++i) {
      const __m256 xb = _mm256_broadcast_ss(x[i] + c);
      acc[0][i][0] = _mm256_fmadd_ps(xb, w0, acc[0][i][0]);
      acc[0][i][1] = _mm256_fmadd_ps(xb, w1, acc[0][i][1]);
    }
  }
  for (int i = 0; i < MR; ++i) {
    float* y = a.y + i * a.y_stride;
    _mm256_storeu_ps(y, _mm256_add_ps(acc[0][i][0], acc[1][i][0]));
    _mm256_storeu_ps(y + 8, _mm256_add_ps(acc[0][i][1], acc[1][i][1]));
  }
}

// MR = 4..6 rows: one pass over k per chain (the even positions, then the odd ones), 2 MR
// accumulators each, the first pass's sums parked in y. Each chain's fmas keep their order, so the
// bits are the interleaved kernel's; the second pass finds the group's lines in L1 / L2.
template <class L, int MR>
void gemm_r16_by_chain(const PackedGemm& a) {
  constexpr size_t kStep = kPackRows * L::kBytes;
  constexpr size_t kHalf = 8 * L::kBytes;
  const float* x[MR];
  for (int i = 0; i < MR; ++i) x[i] = reinterpret_cast<const float*>(a.x + i * a.x_stride);
  for (int h = 0; h < 2; ++h) {
    __m256 acc[MR][2];
    for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    for (size_t c = static_cast<size_t>(h); c < a.k; c += 2) {
      const uint8_t* w = a.w + c * kStep;
      const __m256 w0 = L::load(w), w1 = L::load(w + kHalf);
      for (int i = 0; i < MR; ++i) {
        const __m256 xb = _mm256_broadcast_ss(x[i] + c);
        acc[i][0] = _mm256_fmadd_ps(xb, w0, acc[i][0]);
        acc[i][1] = _mm256_fmadd_ps(xb, w1, acc[i][1]);
      }
    }
    for (int i = 0; i < MR; ++i) {
      float* y = a.y + i * a.y_stride;
      if (h == 0) {
        _mm256_storeu_ps(y, acc[i][0]);
        _mm256_storeu_ps(y + 8, acc[i][1]);
      } else {
        _mm256_storeu_ps(y, _mm256_add_ps(_mm256_loadu_ps(y), acc[i][0]));
        _mm256_storeu_ps(y + 8, _mm256_add_ps(_mm256_loadu_ps(y + 8), acc[i][1]));
      }
    }
  }
}

constexpr int kMr = 6;

// Entry mr - 1: both chains live for 1..3 rows (decode needs their four chains), one chain per
// pass for 4..6.
template <class L, int MR>
constexpr PackedFn tile_fn() {
  if constexpr (MR <= 3) {
    return &gemm_r16<L, MR>;
  } else {
    return &gemm_r16_by_chain<L, MR>;
  }
}

template <class L, size_t... I>
constexpr std::array<PackedFn, sizeof...(I)> tile_table(std::index_sequence<I...>) {
  return {tile_fn<L, static_cast<int>(I) + 1>()...};
}

template <class L>
void gemm(const PackedGemm& a) {
  static constexpr auto kTable = tile_table<L>(std::make_index_sequence<kMr>());
  RUNNEL_ASSERT(a.mr >= 1 && a.mr <= kMr && a.ng == 1);
  kTable[static_cast<size_t>(a.mr - 1)](a);
}

}  // namespace

void register_matmul_packed_float(KernelTable& t) {
  matmul_entry(t, DType::kF16R16) = {nullptr, ActKind::kF32, kMr, 1, gemm<WideF16>, 1, false};
  matmul_entry(t, DType::kBF16R16) = {nullptr, ActKind::kF32, kMr, 1, gemm<WideBF16>, 1, false};
  matmul_entry(t, DType::kF32R16) = {nullptr, ActKind::kF32, kMr, 1, gemm<WideF32>, 1, false};
  // Faster than the row-major AVX2 tiles (bench_kernels, 1 thread): GEMM 2048x2048 per CPU-s
  // f16 100-110 vs 78-83 GFLOP/s, bf16 93-98 vs 86, f32 104 vs 40-44; GEMV hot 2.4-2.7x.
  matmul_entry(t, DType::kF16).prefer_packed = true;
  matmul_entry(t, DType::kBF16).prefer_packed = true;
  matmul_entry(t, DType::kF32).prefer_packed = true;
}

}  // namespace runnel::kernels::cpu::avx2
