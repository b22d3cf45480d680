// AVX-512 kernels for the float r16 layouts (packed_float.h). One 32-byte load (f16, bf16; 64 for
// f32) is element c of 16 weight rows; widened to a zmm it meets x[i][c] broadcast in one fma per
// (row of x, group). Each output lane keeps two fma chains, even and odd k positions, added at
// the end: exactly the scalar reference's arithmetic, and no horizontal sum is needed.
//
// Decode (m = 1) is fma-latency-bound: one chain per lane retired 32 bytes of f16 per 4-cycle
// latency, 28-29 GB/s per core hot (bench_kernels --hot --type f16_r16, 1 thread), below what two
// cores read from DRAM here in the probe's fast mode (~80 GB/s); two chains read 55-56 GB/s hot.
// Decode takes one group per call (matmul.cpp), its stream prefetched (prefetch.h). On an Emerald
// Rapids VM (probe 28-33 GB/s, 17 per core) f16_r16 streamed 31.8-32.4 GB/s from DRAM that way
// (bench_kernels --threads 2, 8192 x 2048 and 2048 x 8192; session 18), and 22 without the
// prefetches (session 13); two groups per call (four chains) made model decode 1-2.5% slower
// there (session 18), and a Zen 4 core streamed one group at 30-31 GB/s, two at 26-27.5.
//
// Register tile MR x NG (rows of x x groups of 16 weight rows): 2 MR NG accumulators + NG widened
// weights + a broadcast; 6 x 2 = 24 accumulators, 6 fmas per widened weight. Measured against the
// one-chain 6x4 tile it replaced (bench_kernels --gemm, 2 threads, f16, panel-major prefill order
// of matmul.cpp): GFLOP/s 401-428 and 400-427, equal; 3x4 two-chain equal in GEMM but 15% slower
// at pp16 (it sweeps each weight slice twice as often). Model level, with the panel-major order
// (bench/models/ab.sh, llama1b F16, alternating runs): pp512 150 -> 177, pp16 102 -> 111 tok/s.
#include <array>
#include <cstring>
#include <utility>

#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/packed.h"
#include "kernels/cpu/packed_float.h"
#include "kernels/cpu/prefetch.h"
#include "kernels/cpu/simd_avx512.h"

namespace runnel::kernels::cpu::avx512 {
namespace {

struct WideF16 {
  static constexpr size_t kBytes = 2;
  static __m512 load(const uint8_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
};
struct WideBF16 {  // bf16 is the high half of an f32: shifting it up is exact
  static constexpr size_t kBytes = 2;
  static __m512 load(const uint8_t* p) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
};
struct WideF32 {
  static constexpr size_t kBytes = 4;
  static __m512 load(const uint8_t* p) { return _mm512_loadu_ps(p); }
};

template <class L, int MR, int NG>
void gemm_r16(const PackedGemm& a) {
  constexpr size_t kStep = kPackRows * L::kBytes;  // bytes of one k position of a group
  const size_t gb = a.w_group_bytes;
  const float* x[MR];
  for (int i = 0; i < MR; ++i) x[i] = reinterpret_cast<const float*>(a.x + i * a.x_stride);
  __m512 acc[2][MR][NG];
  for (int h = 0; h < 2; ++h)
    for (int i = 0; i < MR; ++i)
      for (int g = 0; g < NG; ++g) acc[h][i][g] = _mm512_setzero_ps();
  const uint8_t* w = a.w;
  size_t c = 0;
  const auto step = [&] __attribute__((always_inline)) {
    if (a.stream) {
      for (int g = 0; g < NG; ++g) {
        prefetch_ahead<kL1AheadFar, kL2AheadFar>(w + g * gb, 2 * kStep);  // prefetch.h
      }
    }
    for (int h = 0; h < 2; ++h) {
      __m512 wv[NG];
      for (int g = 0; g < NG; ++g) wv[g] = L::load(w + h * kStep + g * gb);
      for (int i = 0; i < MR; ++i) {
        const __m512 xb = _mm512_set1_ps(x[i][c + h]);
        for (int g = 0; g < NG; ++g) acc[h][i][g] = _mm512_fmadd_ps(xb, wv[g], acc[h][i][g]);
      }
    }
  };
  if constexpr (MR == 1 && NG == 1 && L::kBytes == 2) {
    // Decode of f16 / bf16: one 64-byte line per step, the loop not unrolled. Unrolled by 2 (the
    // same prefetches, two lines a step, scheduled by GCC after the loads) the stream ran at
    // 28-29 GB/s where this one reads 34-38 (bench_kernels --threads 2 --type f16_r16, 3072 x
    // 1024 / 8192 x 2048, probe 29-30 GB/s; bf16_r16 29-32 -> 34-37; f32_r16, two lines a
    // step either way, was not faster so). Model decode: qwen06b F16 22.4 -> 26.8 tok/s.
#pragma GCC unroll 1
    for (; c + 2 <= a.k; c += 2, w += 2 * kStep) step();
  } else {
#pragma GCC unroll 2
    for (; c + 2 <= a.k; c += 2, w += 2 * kStep) step();
  }
  if (c < a.k) {
    __m512 wv[NG];
    for (int g = 0; g < NG; ++g) wv[g] = L::load(w + g * gb);
    for (int i = 0; i < MR; ++i) {
      const __m512 xb = _mm512_set1_ps(x[i][c]);
      for (int g = 0; g < NG; ++g) acc[0][i][g] = _mm512_fmadd_ps(xb, wv[g], acc[0][i][g]);
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int g = 0; g < NG; ++g)
      _mm512_storeu_ps(a.y + i * a.y_stride + 16 * g, _mm512_add_ps(acc[0][i][g], acc[1][i][g]));
}

constexpr int kMr = 6, kNg = 2;

// Every (mr, ng) instantiation, indexed by (mr - 1) * kNg + ng - 1.
template <class L, size_t... I>
constexpr std::array<PackedFn, sizeof...(I)> tile_table(std::index_sequence<I...>) {
  return {&gemm_r16<L, static_cast<int>(I) / kNg + 1, static_cast<int>(I) % kNg + 1>...};
}

template <class L>
void gemm(const PackedGemm& a) {
  static constexpr auto kTable = tile_table<L>(std::make_index_sequence<kMr * kNg>());
  RUNNEL_ASSERT(a.mr >= 1 && a.mr <= kMr && a.ng >= 1 && a.ng <= kNg);
  kTable[static_cast<size_t>((a.mr - 1) * kNg + a.ng - 1)](a);
}

}  // namespace

void register_matmul_packed_float(KernelTable& t) {
  matmul_entry(t, DType::kF16R16) = {nullptr, ActKind::kF32, kMr, 1, gemm<WideF16>, kNg, false};
  matmul_entry(t, DType::kBF16R16) = {nullptr, ActKind::kF32, kMr, 1, gemm<WideBF16>, kNg, false};
  matmul_entry(t, DType::kF32R16) = {nullptr, ActKind::kF32, kMr, 1, gemm<WideF32>, kNg, false};
  // Faster than the row-major tiles in GEMM (+25-40% per CPU-s) and at least as fast in GEMV
  // (and ~1.7x at k = 8192, where the row-major tiles reach about half of the probe).
  matmul_entry(t, DType::kF16).prefer_packed = true;
  matmul_entry(t, DType::kBF16).prefer_packed = true;
  matmul_entry(t, DType::kF32).prefer_packed = true;
}

}  // namespace runnel::kernels::cpu::avx512
