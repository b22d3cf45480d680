// AVX-512 tiles of the matmul. Plain types: 16 f32 lanes, tails by masked loads, 4×4 tiles (16
// zmm accumulators + 4 x vectors of the 32 registers). Integer paths use VNNI dpbusd (u8 × s8)
// on one 32-element block per ymm: Q8_0 weights are biased to unsigned (w ^ 0x80 = w + 128) and
// the accumulator starts at -128·(lane sums of x), Q4_0 nibbles are unsigned and start at -8·Σx,
// so every lane is the exact integer dot product without a per-pair sign fix-up.
#include <cstring>

#include "kernels/cpu/act_block_simd.h"
#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/quant.h"
#include "kernels/cpu/simd_avx512.h"

namespace runnel::kernels::cpu::avx512 {
namespace {

inline float f16_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

struct LoadF32 {
  static constexpr size_t kBytes = 4;
  static __m512 load(const uint8_t* p) { return _mm512_loadu_ps(p); }
  static __m512 load(const uint8_t* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
};
struct LoadF16 {
  static constexpr size_t kBytes = 2;
  static __m512 load(const uint8_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static __m512 load(const uint8_t* p, __mmask16 m) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
  }
};
struct LoadBF16 {
  static constexpr size_t kBytes = 2;
  static __m512 widen(__m256i h) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
  static __m512 load(const uint8_t* p) {
    return widen(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static __m512 load(const uint8_t* p, __mmask16 m) {
    return widen(_mm256_maskz_loadu_epi16(m, p));
  }
};

template <class L, int MR, int NR>
void tile_plain(const GemmTile& t) {
  __m512 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_setzero_ps();
  const float* x[MR];
  for (int i = 0; i < MR; ++i) x[i] = reinterpret_cast<const float*>(t.x + i * t.x_stride);
  const size_t k16 = t.k / 16 * 16;
  for (size_t c = 0; c < k16; c += 16) {
    __m512 xv[MR];
    for (int i = 0; i < MR; ++i) xv[i] = _mm512_loadu_ps(x[i] + c);
    for (int j = 0; j < NR; ++j) {
      const __m512 wv = L::load(t.w + j * t.w_stride + c * L::kBytes);
      for (int i = 0; i < MR; ++i) acc[i][j] = _mm512_fmadd_ps(xv[i], wv, acc[i][j]);
    }
  }
  if (k16 < t.k) {
    const __mmask16 m = static_cast<__mmask16>((1u << (t.k - k16)) - 1);
    __m512 xv[MR];
    for (int i = 0; i < MR; ++i) xv[i] = _mm512_maskz_loadu_ps(m, x[i] + k16);
    for (int j = 0; j < NR; ++j) {
      const __m512 wv = L::load(t.w + j * t.w_stride + k16 * L::kBytes, m);
      for (int i = 0; i < MR; ++i) acc[i][j] = _mm512_fmadd_ps(xv[i], wv, acc[i][j]);
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) t.y[i * t.y_stride + j] = hsum16(acc[i][j]);
}

template <int MR, int NR>
void tile_f32(const GemmTile& t) {
  tile_plain<LoadF32, MR, NR>(t);
}
template <int MR, int NR>
void tile_f16(const GemmTile& t) {
  tile_plain<LoadF16, MR, NR>(t);
}
template <int MR, int NR>
void tile_bf16(const GemmTile& t) {
  tile_plain<LoadBF16, MR, NR>(t);
}

// Shared loop of the integer paths; W supplies the unsigned weight bytes of a block and the shift
// that turns x's lane sums into the accumulator's starting value (-2^shift · lane sums).
template <class W, int MR, int NR>
void tile_q(const GemmTile& t) {
  __m256 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm256_setzero_ps();
  const BlockQ8Act* x[MR];
  for (int i = 0; i < MR; ++i) x[i] = reinterpret_cast<const BlockQ8Act*>(t.x + i * t.x_stride);
  const size_t nb = t.k / 32;
  for (size_t b = 0; b < nb; ++b) {
    __m256i xq[MR], corr[MR];
    for (int i = 0; i < MR; ++i) {
      xq[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i][b].qs));
      const __m256i l = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i][b].lsum));
      corr[i] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(l, W::kShift));
    }
    for (int j = 0; j < NR; ++j) {
      const uint8_t* wb = t.w + j * t.w_stride + b * W::kBlockBytes;
      const __m256i wu = W::load(wb);
      const float dw = f16_at(wb);
      for (int i = 0; i < MR; ++i) {
        const __m256i dot = _mm256_dpbusd_epi32(corr[i], wu, xq[i]);
        const __m256 d = _mm256_set1_ps(dw * x[i][b].d);
        acc[i][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), d, acc[i][j]);
      }
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) t.y[i * t.y_stride + j] = hsum8(acc[i][j]);
}

struct Q8 {
  static constexpr size_t kBlockBytes = sizeof(BlockQ8_0);
  static constexpr int kShift = 7;
  static __m256i load(const uint8_t* wb) {
    return _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb + 2)),
                            _mm256_set1_epi8(static_cast<char>(0x80)));
  }
};
struct Q4 {
  static constexpr size_t kBlockBytes = sizeof(BlockQ4_0);
  static constexpr int kShift = 3;
  static __m256i load(const uint8_t* wb) {
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(wb + 2));
    const __m128i m = _mm_set1_epi8(0x0f);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(raw, 4), m), _mm_and_si128(raw, m));
  }
};

template <int MR, int NR>
void tile_q8_0(const GemmTile& t) {
  tile_q<Q8, MR, NR>(t);
}
// Q4_0 two blocks per zmm: the unpacking and the dot/convert/fma run once per pair instead of
// per block (Q4_0's bytes are cheap to stream, so its decode speed is bound by this work).
// The activation pair is loaded as it lies ([x0 | x1], 32 bytes each) and the weight nibbles are
// permuted to match: [lo0 hi0 | lo1 hi1]. Lanes 0-7 belong to block 0, lanes 8-15 to block 1.
template <int MR, int NR>
void tile_q4_0(const GemmTile& t) {
  __m512 acc[MR][NR];
  __m256 tail[MR][NR];
  for (int i = 0; i < MR; ++i) {
    for (int j = 0; j < NR; ++j) {
      acc[i][j] = _mm512_setzero_ps();
      tail[i][j] = _mm256_setzero_ps();
    }
  }
  const BlockQ8Act* x[MR];
  for (int i = 0; i < MR; ++i) x[i] = reinterpret_cast<const BlockQ8Act*>(t.x + i * t.x_stride);
  const size_t nb = t.k / 32;
  const __m256i low = _mm256_set1_epi8(0x0f);
  const __m512i lane_block = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  // From lo = [lo0 | lo1] and hi = [hi0 | hi1] (16 bytes each): [lo0 hi0 lo1 hi1], in qwords.
  const __m512i pair_order = _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11);
  auto load128 = [](const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); };
  auto load256 = [](const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); };
  size_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    __m512i xq[MR], corr[MR];
    __m128 xd[MR];
    for (int i = 0; i < MR; ++i) {
      const BlockQ8Act& x0 = x[i][b];
      const BlockQ8Act& x1 = x[i][b + 1];
      xq[i] = _mm512_inserti64x4(_mm512_castsi256_si512(load256(x0.qs)), load256(x1.qs), 1);
      const __m512i l =
          _mm512_inserti64x4(_mm512_castsi256_si512(load256(x0.lsum)), load256(x1.lsum), 1);
      corr[i] = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(l, 3));
      xd[i] = _mm_setr_ps(x0.d, x1.d, 0, 0);
    }
    for (int j = 0; j < NR; ++j) {
      const uint8_t* wb = t.w + j * t.w_stride + b * sizeof(BlockQ4_0);
      const __m256i raw = _mm256_set_m128i(load128(wb + sizeof(BlockQ4_0) + 2), load128(wb + 2));
      const __m256i lo = _mm256_and_si256(raw, low);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low);
      const __m512i q = _mm512_permutex2var_epi64(_mm512_castsi256_si512(lo), pair_order,
                                                  _mm512_castsi256_si512(hi));
      uint16_t d0, d1;
      std::memcpy(&d0, wb, 2);
      std::memcpy(&d1, wb + sizeof(BlockQ4_0), 2);
      const __m128 dw = _mm_cvtph_ps(_mm_cvtsi32_si128(d0 | static_cast<int>(d1) << 16));
      for (int i = 0; i < MR; ++i) {
        const __m512i dot = _mm512_dpbusd_epi32(corr[i], q, xq[i]);
        const __m512 sc =
            _mm512_permutexvar_ps(lane_block, _mm512_castps128_ps512(_mm_mul_ps(dw, xd[i])));
        acc[i][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), sc, acc[i][j]);
      }
    }
  }
  if (b < nb) {  // odd block count: the last block alone on 256 bits
    __m256i xq[MR], corr[MR];
    for (int i = 0; i < MR; ++i) {
      xq[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i][b].qs));
      const __m256i l = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i][b].lsum));
      corr[i] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(l, 3));
    }
    for (int j = 0; j < NR; ++j) {
      const uint8_t* wb = t.w + j * t.w_stride + b * sizeof(BlockQ4_0);
      const __m256i wu = Q4::load(wb);
      const float dw = f16_at(wb);
      for (int i = 0; i < MR; ++i) {
        const __m256i dot = _mm256_dpbusd_epi32(corr[i], wu, xq[i]);
        tail[i][j] = _mm256_mul_ps(_mm256_cvtepi32_ps(dot), _mm256_set1_ps(dw * x[i][b].d));
      }
    }
  }
  for (int i = 0; i < MR; ++i) {
    for (int j = 0; j < NR; ++j) t.y[i * t.y_stride + j] = hsum16(acc[i][j]) + hsum8(tail[i][j]);
  }
}

// quantize_act_q8 / quantize_act_q8_256 (matmul.cpp) 32 elements at a time, to the same bytes:
// the max is exact in any order, d and 1/d are the same scalar divisions, cvtps2dq rounds to
// nearest even like nearbyint, and dpbusd of the quants with 0x01 bytes gives the lane sums of 4.
template <size_t kGroup>
void quantize_q8_groups(const float* x, size_t k, BlockQ8Act* out) {
  const __m512 abs_mask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
  const __m256i ones = _mm256_set1_epi8(1);
  const __m512i lo = _mm512_set1_epi32(-127), hi = _mm512_set1_epi32(127);
  for (size_t g0 = 0; g0 < k; g0 += kGroup, x += kGroup) {
    __m512 m = _mm512_setzero_ps();
    for (size_t j = 0; j < kGroup; j += 16) {  // a NaN is skipped, as by std::max
      m = _mm512_max_ps(_mm512_and_ps(_mm512_loadu_ps(x + j), abs_mask), m);
    }
    const float d = hmax16(m) / 127.0f;
    const __m512 id = _mm512_set1_ps(d > 0 ? 1.0f / d : 0.0f);
    for (size_t b = 0; b < kGroup; b += 32, ++out) {
      const __m512 x0 = _mm512_loadu_ps(x + b), x1 = _mm512_loadu_ps(x + b + 16);
      const __m512i q0 =
          _mm512_min_epi32(_mm512_max_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(x0, id)), lo), hi);
      const __m512i q1 =
          _mm512_min_epi32(_mm512_max_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(x1, id)), lo), hi);
      const __m256i q = _mm256_set_m128i(_mm512_cvtepi32_epi8(q1), _mm512_cvtepi32_epi8(q0));
      store_act_block(out, q, _mm256_dpbusd_epi32(_mm256_setzero_si256(), ones, q), d);
    }
  }
}

void f32(const GemmTile& t) { RUNNEL_TILE_SWITCH(tile_f32, t); }
void f16(const GemmTile& t) { RUNNEL_TILE_SWITCH(tile_f16, t); }
void bf16(const GemmTile& t) { RUNNEL_TILE_SWITCH(tile_bf16, t); }
void q8_0(const GemmTile& t) { RUNNEL_TILE_SWITCH(tile_q8_0, t); }
void q4_0(const GemmTile& t) { RUNNEL_TILE_SWITCH(tile_q4_0, t); }

}  // namespace

void register_matmul(KernelTable& t) {
  t.quantize_q8 = quantize_q8_groups<32>;
  t.quantize_q8_256 = quantize_q8_groups<256>;
  matmul_entry(t, DType::kF32) = {f32, ActKind::kF32, 4, 4};
  matmul_entry(t, DType::kF16) = {f16, ActKind::kF32, 4, 4};
  matmul_entry(t, DType::kBF16) = {bf16, ActKind::kF32, 4, 4};
  matmul_entry(t, DType::kQ8_0) = {q8_0, ActKind::kQ8, 4, 4};
  matmul_entry(t, DType::kQ4_0) = {q4_0, ActKind::kQ8, 4, 4};
}

}  // namespace runnel::kernels::cpu::avx512
