// AVX2 variants of the per-token vector ops (8 lanes, scalar tails); exp8 from simd_avx2.h.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "base/half.h"
#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/prefetch.h"
#include "kernels/cpu/quant.h"
#include "kernels/cpu/simd_avx2.h"
#include "kernels/cpu/vec.h"

namespace runnel::kernels::cpu::avx2 {
namespace {

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

void rms_norm(const float* x, const float* w, float* y, size_t n, float eps) {
  if (n == 0) return;
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 v0 = _mm256_loadu_ps(x + i), v1 = _mm256_loadu_ps(x + i + 8);
    a0 = _mm256_fmadd_ps(v0, v0, a0);
    a1 = _mm256_fmadd_ps(v1, v1, a1);
  }
  float ss = hsum(_mm256_add_ps(a0, a1));
  for (; i < n; ++i) ss += x[i] * x[i];
  const float r = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
  const __m256 rv = _mm256_set1_ps(r);
  for (i = 0; i + 8 <= n; i += 8) {
    __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i), rv);
    if (w) v = _mm256_mul_ps(v, _mm256_loadu_ps(w + i));
    _mm256_storeu_ps(y + i, v);
  }
  for (; i < n; ++i) y[i] = x[i] * r * (w ? w[i] : 1.0f);
}

void softmax(const float* x, float* y, size_t n) {
  if (n == 0) return;
  float mx = x[0];
  for (size_t i = 1; i < n; ++i) mx = std::max(mx, x[i]);
  const __m256 mv = _mm256_set1_ps(mx);
  __m256 sv = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv));
    _mm256_storeu_ps(y + i, e);
    sv = _mm256_add_ps(sv, e);
  }
  float sum = hsum(sv);
  for (; i < n; ++i) {
    y[i] = std::exp(x[i] - mx);
    sum += y[i];
  }
  const float inv = 1.0f / sum;
  const __m256 iv = _mm256_set1_ps(inv);
  for (i = 0; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(y + i), iv));
  for (; i < n; ++i) y[i] *= inv;
}

void silu_mul(const float* a, const float* b, float* y, size_t n) {
  const __m256 one = _mm256_set1_ps(1.0f);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 av = _mm256_loadu_ps(a + i);
    const __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), av));
    const __m256 s = _mm256_div_ps(av, _mm256_add_ps(one, e));
    _mm256_storeu_ps(y + i, _mm256_mul_ps(s, _mm256_loadu_ps(b + i)));
  }
  for (; i < n; ++i) y[i] = a[i] / (1.0f + std::exp(-a[i])) * b[i];
}

// Lanes [0, left) of p (all 8 when left >= 8): plain loads and stores for whole vectors,
// maskload / maskstore only at a tail.
inline __m256i lanes(size_t left) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(std::min<size_t>(left, 8))), idx);
}
inline __m256 load_part(const float* p, size_t left) {
  return left >= 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, lanes(left));
}
inline void store_part(float* p, size_t left, __m256 v) {
  if (left >= 8) {
    _mm256_storeu_ps(p, v);
  } else {
    _mm256_maskstore_ps(p, lanes(left), v);
  }
}

// v as it is: GCC contracts a product feeding a sum into an FMA, intrinsics too (-ffp-contract=fast
// with -mfma); a product passed through here is rounded on its own.
inline __m256 rounded(__m256 v) {
  __asm__("" : "+x"(v));
  return v;
}

// rope_rows: products and sums as separate instructions (never an FMA), as the scalar reference
// and vec_avx512.cpp's.
void rope_rows(const float* x, float* y, size_t n_heads, size_t head_dim, size_t n_rot,
               const float* cos, const float* sin, RopeStyle style) {
  const size_t half = n_rot / 2;
  const __m256i dup = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);
  const __m256 sign = _mm256_castsi256_ps(_mm256_set1_epi64x(0x80000000ll));  // even lanes
  for (size_t h = 0; h < n_heads; ++h) {
    const float* xr = x + h * head_dim;
    float* yr = y + h * head_dim;
    if (style == RopeStyle::kNeox) {
      for (size_t i = 0; i < half; i += 8) {
        const size_t left = half - i;
        const __m256 a = load_part(xr + i, left), b = load_part(xr + half + i, left);
        const __m256 c = load_part(cos + i, left), s = load_part(sin + i, left);
        store_part(yr + i, left,
                   _mm256_sub_ps(rounded(_mm256_mul_ps(a, c)), rounded(_mm256_mul_ps(b, s))));
        store_part(yr + half + i, left,
                   _mm256_add_ps(rounded(_mm256_mul_ps(b, c)), rounded(_mm256_mul_ps(a, s))));
      }
    } else {
      for (size_t i = 0; i < half; i += 4) {
        const size_t left = 2 * (half - i);
        const __m256 v = load_part(xr + 2 * i, left);
        const __m256i m4 = lanes(std::min<size_t>(half - i, 4));  // the pairs' cos / sin
        const __m256 c = _mm256_permutevar8x32_ps(_mm256_maskload_ps(cos + i, m4), dup);
        const __m256 s = _mm256_permutevar8x32_ps(_mm256_maskload_ps(sin + i, m4), dup);
        const __m256 sw = _mm256_permute_ps(v, 0xb1);  // (b, a) in each pair
        store_part(yr + 2 * i, left,
                   _mm256_add_ps(rounded(_mm256_mul_ps(v, c)),
                                 rounded(_mm256_mul_ps(sw, _mm256_xor_ps(s, sign)))));
      }
    }
    if (yr != xr) {
      for (size_t i = n_rot; i < head_dim; i += 8) {
        store_part(yr + i, head_dim - i, load_part(xr + i, head_dim - i));
      }
    }
  }
}

// Each head through this file's rms_norm into y, then rotated in place there (the same bits as the
// two table entries one after the other, without their calls).
void head_norm_rope(const float* x, const float* w, float eps, float* y, size_t n_heads,
                    size_t head_dim, size_t n_rot, const float* cos, const float* sin,
                    RopeStyle style) {
  for (size_t h = 0; h < n_heads; ++h) {
    avx2::rms_norm(x + h * head_dim, w, y + h * head_dim, head_dim, eps);
    avx2::rope_rows(y + h * head_dim, y + h * head_dim, 1, head_dim, n_rot, cos, sin, style);
  }
}

// 0.5 x (1 + tanh(u)) = x · sigmoid(2u).
void gelu_tanh(const float* x, float* y, size_t n) {
  const __m256 one = _mm256_set1_ps(1.0f), c = _mm256_set1_ps(-2.0f * 0.7978845608028654f);
  const __m256 c3 = _mm256_set1_ps(0.044715f);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    const __m256 u = _mm256_fmadd_ps(_mm256_mul_ps(c3, v), _mm256_mul_ps(v, v), v);
    const __m256 e = exp8(_mm256_mul_ps(c, u));
    _mm256_storeu_ps(y + i, _mm256_div_ps(v, _mm256_add_ps(one, e)));
  }
  for (; i < n; ++i) {
    const float v = x[i];
    y[i] = 0.5f * v * (1.0f + std::tanh(0.7978845608028654f * (v + 0.044715f * v * v * v)));
  }
}

// Op works on both __m256 and float (GCC vector extensions), so tails use the same expression.
template <class Op>
void binary(const float* a, const float* b, float* y, size_t n, Op op) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, op(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
  for (; i < n; ++i) y[i] = op(a[i], b[i]);
}
void add(const float* a, const float* b, float* y, size_t n) {
  binary(a, b, y, n, [](auto p, auto q) { return p + q; });
}
void mul(const float* a, const float* b, float* y, size_t n) {
  binary(a, b, y, n, [](auto p, auto q) { return p * q; });
}
void scale(const float* x, float s, float* y, size_t n) {
  const __m256 sv = _mm256_set1_ps(s);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), sv));
  for (; i < n; ++i) y[i] = x[i] * s;
}

void f16_to_f32(const uint16_t* x, float* y, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(y + i,
                     _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i))));
  }
  for (; i < n; ++i) y[i] = _cvtsh_ss(x[i]);
}
void bf16_to_f32(const uint16_t* x, float* y, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i v =
        _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i)));
    _mm256_storeu_ps(y + i, _mm256_castsi256_ps(_mm256_slli_epi32(v, 16)));
  }
  for (; i < n; ++i) y[i] = runnel::bf16_to_f32(x[i]);
}
void f32_to_f16(const float* x, uint16_t* y, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), h);
  }
  for (; i < n; ++i) y[i] = runnel::f32_to_f16(x[i]);
}

// vec_avx512.cpp's f32_to_q8_0 on ymm: the bytes of quant.cpp's quant_q8_0.
void f32_to_q8_0(const float* x, void* y, size_t n) {
  auto* b = static_cast<BlockQ8_0*>(y);
  const __m256 sign = _mm256_set1_ps(-0.0f), half = _mm256_set1_ps(0.49999997f);
  for (size_t i = 0; i < n / kQK; ++i, x += kQK) {
    __m256 v[4], m = _mm256_setzero_ps();
    for (int j = 0; j < 4; ++j) {
      v[j] = _mm256_loadu_ps(x + 8 * j);
      m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v[j]));
    }
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    const float d = _mm_cvtss_f32(h) / 127;
    const __m256 id = _mm256_set1_ps(d != 0 ? 1.0f / d : 0.0f);
    b[i].d = runnel::f32_to_f16(d);
    __m256i q[4];
    for (int j = 0; j < 4; ++j) {
      const __m256 p = _mm256_mul_ps(v[j], id);
      q[j] = _mm256_cvttps_epi32(_mm256_add_ps(p, _mm256_or_ps(half, _mm256_and_ps(p, sign))));
    }
    // int32 -> int8 in order: packs interleave 128-bit lanes, the permute puts them back.
    const __m256i w =
        _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    const __m256i o = _mm256_permutevar8x32_epi32(w, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(b[i].qs), o);
  }
}

uint64_t read_sum(const void* p, size_t bytes) {
  // One line a step, its prefetch just before its loads (membw.cpp says why).
  const __m256i* v = static_cast<const __m256i*>(p);
  __m256i a[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
#pragma GCC unroll 1
  for (size_t i = 0; i + 2 <= bytes / 32; i += 2) {
    probe_line_ahead(reinterpret_cast<const uint8_t*>(v + i));
    a[0] = _mm256_xor_si256(a[0], _mm256_loadu_si256(v + i));
    a[1] = _mm256_xor_si256(a[1], _mm256_loadu_si256(v + i + 1));
  }
  a[0] = _mm256_xor_si256(a[0], a[1]);
  return static_cast<uint64_t>(_mm256_extract_epi64(a[0], 0) ^ _mm256_extract_epi64(a[0], 1) ^
                               _mm256_extract_epi64(a[0], 2) ^ _mm256_extract_epi64(a[0], 3));
}

// argmax (vec.h): AVX-512's two passes on 8 lanes, the tail scalar.
int64_t argmax(const float* x, size_t n) {
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  const __m256 neg_inf = _mm256_set1_ps(kNegInf);
  __m256 m[4] = {neg_inf, neg_inf, neg_inf, neg_inf};
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    for (int j = 0; j < 4; ++j) m[j] = _mm256_max_ps(_mm256_loadu_ps(x + i + 8 * j), m[j]);
  }
  const __m256 v = _mm256_max_ps(_mm256_max_ps(m[0], m[1]), _mm256_max_ps(m[2], m[3]));
  __m128 h = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  h = _mm_max_ps(h, _mm_movehl_ps(h, h));
  h = _mm_max_ss(h, _mm_movehdup_ps(h));
  float mx = _mm_cvtss_f32(h);
  for (size_t t = i; t < n; ++t) mx = mx < x[t] ? x[t] : mx;
  if (!(mx > kNegInf)) return -1;
  const __m256 mv = _mm256_set1_ps(mx);
  for (i = 0; i + 8 <= n; i += 8) {
    const int hit = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + i), mv, _CMP_EQ_OQ));
    if (hit != 0) return static_cast<int64_t>(i) + __builtin_ctz(static_cast<unsigned>(hit));
  }
  for (; i < n; ++i) {
    if (x[i] == mx) return static_cast<int64_t>(i);
  }
  return -1;  // not reached: mx is one of the values
}

// sum_exp (vec.h): AVX-512's on 8 lanes (exp8), the tail scalar in double.
double sum_exp(const float* x, size_t n, float m) {
  const __m256 mv = _mm256_set1_ps(m);
  __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv));
    a0 = _mm256_add_pd(a0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
    a1 = _mm256_add_pd(a1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
  }
  const __m256d a = _mm256_add_pd(a0, a1);
  __m128d h = _mm_add_pd(_mm256_castpd256_pd128(a), _mm256_extractf128_pd(a, 1));
  double s = _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
  for (; i < n; ++i) s += std::exp(static_cast<double>(x[i] - m));
  return s;
}

}  // namespace

void register_vec(KernelTable& t) {
  t.rms_norm = rms_norm;
  t.softmax = softmax;
  t.silu_mul = silu_mul;
  t.rope_rows = rope_rows;
  t.head_norm_rope = head_norm_rope;
  t.gelu_tanh = gelu_tanh;
  t.add = add;
  t.mul = mul;
  t.scale = scale;
  t.argmax = argmax;
  t.sum_exp = sum_exp;
  t.f16_to_f32 = f16_to_f32;
  t.bf16_to_f32 = bf16_to_f32;
  t.f32_to_f16 = f32_to_f16;
  t.f32_to_q8_0 = f32_to_q8_0;
  t.read_sum = read_sum;
}

}  // namespace runnel::kernels::cpu::avx2
