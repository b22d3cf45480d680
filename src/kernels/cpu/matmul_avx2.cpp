// AVX2 + FMA + F16C tiles of the matmul (8 f32 lanes). Registers: 16 ymm, so a tile is 2 rows of x
// by 4 rows of W (8 accumulators + x + one weight vector). Integer paths: maddubs(|w|, sign(x, w))
// for Q8_0 (no int16 saturation: |w| <= 128, |x| <= 127, and w = -128 stays exact), maddubs(q, x)
// minus 8·Σx for Q4_0.
#include <immintrin.h>

#include <cstring>

#include "kernels/cpu/act_block_simd.h"
#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/quant.h"

namespace runnel::kernels::cpu::avx2 {
namespace {

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline float f16_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

struct LoadF32 {
  static constexpr size_t kBytes = 4;
  static __m256 load(const uint8_t* p) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(p));
  }
  static float one(const uint8_t* p) {
    float f;
    std::memcpy(&f, p, 4);
    return f;
  }
};
struct LoadF16 {
  static constexpr size_t kBytes = 2;
  static __m256 load(const uint8_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static float one(const uint8_t* p) { return f16_at(p); }
};
struct LoadBF16 {
  static constexpr size_t kBytes = 2;
  static __m256 load(const uint8_t* p) {
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
  }
  static float one(const uint8_t* p) {
    uint16_t h;
    std::memcpy(&h, p, 2);
    uint32_t u = static_cast<uint32_t>(h) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
};

template <class L, int MR, int NR>
void tile_plain(const GemmTile& t) {
  __m256 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm256_setzero_ps();
  const float* x[MR];
  for (int i = 0; i < MR; ++i) x[i] = reinterpret_cast<const float*>(t.x + i * t.x_stride);
  const size_t k8 = t.k / 8 * 8;
  for (size_t c = 0; c < k8; c += 8) {
    __m256 xv[MR];
    for (int i = 0; i < MR; ++i) xv[i] = _mm256_loadu_ps(x[i] + c);
    for (int j = 0; j < NR; ++j) {
      const __m256 wv = L::load(t.w + j * t.w_stride + c * L::kBytes);
      for (int i = 0; i < MR; ++i) acc[i][j] = _mm256_fmadd_ps(xv[i], wv, acc[i][j]);
    }
  }
  for (int i = 0; i < MR; ++i) {
    for (int j = 0; j < NR; ++j) {
      float s = hsum(acc[i][j]);
      for (size_t c = k8; c < t.k; ++c) s += x[i][c] * L::one(t.w + j * t.w_stride + c * L::kBytes);
      t.y[i * t.y_stride + j] = s;
    }
  }
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

// Shared loop of the integer paths. W::dot(block pointer, x block) returns the 8 int32 lane sums
// of the exact block dot product; the block's f16 scale sits at offset 0 of every weight block.
template <class W, int MR, int NR>
void tile_q(const GemmTile& t) {
  __m256 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm256_setzero_ps();
  const BlockQ8Act* x[MR];
  for (int i = 0; i < MR; ++i) x[i] = reinterpret_cast<const BlockQ8Act*>(t.x + i * t.x_stride);
  const size_t nb = t.k / 32;
  for (size_t b = 0; b < nb; ++b) {
    typename W::XPrep xp[MR];
    for (int i = 0; i < MR; ++i) xp[i] = W::prep(x[i][b]);
    for (int j = 0; j < NR; ++j) {
      const uint8_t* wb = t.w + j * t.w_stride + b * W::kBlockBytes;
      const typename W::WPrep wp = W::load(wb);
      const float dw = f16_at(wb);
      for (int i = 0; i < MR; ++i) {
        const __m256 d = _mm256_set1_ps(dw * x[i][b].d);
        acc[i][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(W::dot(wp, xp[i])), d, acc[i][j]);
      }
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) t.y[i * t.y_stride + j] = hsum(acc[i][j]);
}

struct Q8 {
  static constexpr size_t kBlockBytes = sizeof(BlockQ8_0);
  using XPrep = __m256i;
  struct WPrep {
    __m256i w, aw;  // aw = |w| as unsigned bytes (|-128| = 0x80 = 128 unsigned: still exact)
  };
  static XPrep prep(const BlockQ8Act& x) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.qs));
  }
  static WPrep load(const uint8_t* wb) {
    const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb + 2));
    return {w, _mm256_abs_epi8(w)};
  }
  // |w| · (x with w's sign) = w · x; x is in [-127, 127] so negating it never wraps.
  static __m256i dot(const WPrep& w, XPrep x) {
    const __m256i p16 = _mm256_maddubs_epi16(w.aw, _mm256_sign_epi8(x, w.w));
    return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
  }
};

struct Q4 {
  static constexpr size_t kBlockBytes = sizeof(BlockQ4_0);
  struct XPrep {
    __m256i q, corr;  // corr = -8 · lane sums
  };
  using WPrep = __m256i;
  static XPrep prep(const BlockQ8Act& x) {
    const __m256i l = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.lsum));
    return {_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.qs)),
            _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(l, 3))};
  }
  static WPrep load(const uint8_t* wb) {
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(wb + 2));
    const __m128i m = _mm_set1_epi8(0x0f);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(raw, 4), m), _mm_and_si128(raw, m));
  }
  static __m256i dot(WPrep w, const XPrep& x) {
    const __m256i p16 = _mm256_maddubs_epi16(w, x.q);
    return _mm256_add_epi32(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)), x.corr);
  }
};

template <int MR, int NR>
void tile_q8_0(const GemmTile& t) {
  tile_q<Q8, MR, NR>(t);
}
template <int MR, int NR>
void tile_q4_0(const GemmTile& t) {
  tile_q<Q4, MR, NR>(t);
}

// quantize_act_q8 / quantize_act_q8_256 (matmul.cpp) 8 elements at a time, to the same bytes:
// the max is exact in any order (and, like std::max, vmaxps keeps the running max when an element
// is NaN), d and 1/d are the same scalar divisions, cvtps2dq rounds to nearest even like
// nearbyint, and the lane sums of 4 are exact integer sums. Until session 27 AVX2 ran the scalar
// reference here: ~2% of an AVX2 decode step (perf, qwen06b Q4_0).
template <size_t kGroup>
void quantize_q8_groups(const float* x, size_t k, BlockQ8Act* out) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256i lo = _mm256_set1_epi32(-127), hi = _mm256_set1_epi32(127);
  const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
  // packs_epi32 then packs_epi16 leave the 32 bytes as dwords A0 B0 C0 D0 | A1 B1 C1 D1 (A: the
  // first 8 quants, ...): this puts them back in order.
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (size_t g0 = 0; g0 < k; g0 += kGroup, x += kGroup) {
    __m256 m = _mm256_setzero_ps();
    for (size_t j = 0; j < kGroup; j += 8) {
      m = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + j), abs_mask), m);
    }
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float d = _mm_cvtss_f32(m4) / 127.0f;
    const __m256 id = _mm256_set1_ps(d > 0 ? 1.0f / d : 0.0f);
    for (size_t b = 0; b < kGroup; b += 32, ++out) {
      __m256i q[4];
      for (int v = 0; v < 4; ++v) {
        const __m256i r = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + b + 8 * v), id));
        q[v] = _mm256_min_epi32(_mm256_max_epi32(r, lo), hi);
      }
      const __m256i q8 = _mm256_permutevar8x32_epi32(
          _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3])),
          order);
      store_act_block(out, q8, _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, q8), ones16), d);
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
  matmul_entry(t, DType::kF32) = {f32, ActKind::kF32, 2, 4};
  matmul_entry(t, DType::kF16) = {f16, ActKind::kF32, 2, 4};
  matmul_entry(t, DType::kBF16) = {bf16, ActKind::kF32, 2, 4};
  matmul_entry(t, DType::kQ8_0) = {q8_0, ActKind::kQ8, 2, 4};
  matmul_entry(t, DType::kQ4_0) = {q4_0, ActKind::kQ8, 2, 4};
}

}  // namespace runnel::kernels::cpu::avx2
