// AVX-512 kernels for the float r16 layouts (packed_float.h). One 32-byte load (f16, bf16; 64 for
// f32) is element c of 16 weight rows; widened to a zmm it meets x[i][c] broadcast in one fma per
// (row of x, group), so each output lane is a single fma chain in k order, exactly the scalar
// reference's, and no horizontal sum is needed.
//
// Register tile MR x NG (rows of x x groups of 16 weight rows): MR NG accumulators + NG widened
// weights + a broadcast. Zen 4 retires one zmm fma per cycle with a 4-cycle latency, so a tile
// needs >= 4 independent chains and should amortise each weight load + widen (vcvtph2ps is two
// uops) over several fmas: 6 x 4 = 24 accumulators + 4 weights + 1 broadcast = 29 of 32 zmm, 6
// fmas per widened weight. Measured (bench_kernels --gemm, 1 thread, GFLOP per CPU-s, f16):
// 6x4 103-107, 4x6 98-100, 8x3 96-99, 4x4 93-99; the row-major 4x4 dot tiles 68-79.
// Decode (m <= 6) runs one group per call: one chain per output lane, latency-bound at 32 bytes
// of f16 per 4 cycles (~29 GB/s per core, hot), above what a core gets from DRAM; two groups per
// call (two streams) and software prefetch 256-4096 bytes ahead measured no better or worse.

#include <array>
#include <cstring>
#include <utility>

#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/packed.h"
#include "kernels/cpu/packed_float.h"
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
  __m512 acc[MR][NG];
  for (int i = 0; i < MR; ++i)
    for (int g = 0; g < NG; ++g) acc[i][g] = _mm512_setzero_ps();
  const uint8_t* w = a.w;
#pragma GCC unroll 4
  for (size_t c = 0; c < a.k; ++c, w += kStep) {
    __m512 wv[NG];
    for (int g = 0; g < NG; ++g) wv[g] = L::load(w + g * gb);
    for (int i = 0; i < MR; ++i) {
      const __m512 xb = _mm512_set1_ps(x[i][c]);
      for (int g = 0; g < NG; ++g) acc[i][g] = _mm512_fmadd_ps(xb, wv[g], acc[i][g]);
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int g = 0; g < NG; ++g) _mm512_storeu_ps(a.y + i * a.y_stride + 16 * g, acc[i][g]);
}

constexpr int kMr = 6, kNg = 4;

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
