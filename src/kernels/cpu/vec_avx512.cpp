// AVX-512 variants of the per-token vector ops: 16 lanes; ragged tails use masked loads/stores
// (only the tail: masked stores are slow on Zen 4), so every element goes through the same
// arithmetic. exp16 (simd_avx512.h) is the same Cephes-style exp as exp8 (simd_avx2.h).
#include <cmath>
#include <limits>

#include "base/half.h"
#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/prefetch.h"
#include "kernels/cpu/quant.h"
#include "kernels/cpu/simd_avx512.h"
#include "kernels/cpu/vec.h"

namespace runnel::kernels::cpu::avx512 {
namespace {

inline __mmask16 mask_for(size_t left) {
  return left >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << left) - 1);
}

// Apply f(x_vec) -> y_vec over a row, 16 at a time: full vectors with plain loads and stores, the
// tail masked (masked stores are slow on Zen 4, so they must not run per vector).
template <class F>
void unary(const float* x, float* y, size_t n, F f) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, f(_mm512_loadu_ps(x + i)));
  if (i < n) {
    const __mmask16 m = mask_for(n - i);
    _mm512_mask_storeu_ps(y + i, m, f(_mm512_maskz_loadu_ps(m, x + i)));
  }
}
template <class F>
void binary(const float* a, const float* b, float* y, size_t n, F f) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm512_storeu_ps(y + i, f(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i)));
  }
  if (i < n) {
    const __mmask16 m = mask_for(n - i);
    _mm512_mask_storeu_ps(y + i, m,
                          f(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i)));
  }
}

void rms_norm(const float* x, const float* w, float* y, size_t n, float eps) {
  if (n == 0) return;
  __m512 a = _mm512_setzero_ps();
  for (size_t i = 0; i < n; i += 16) {
    const __m512 v = _mm512_maskz_loadu_ps(mask_for(n - i), x + i);
    a = _mm512_fmadd_ps(v, v, a);
  }
  const float r = 1.0f / std::sqrt(hsum16(a) / static_cast<float>(n) + eps);
  const __m512 rv = _mm512_set1_ps(r);
  if (w) {
    binary(x, w, y, n, [&](__m512 v, __m512 g) { return _mm512_mul_ps(_mm512_mul_ps(v, rv), g); });
  } else {
    unary(x, y, n, [&](__m512 v) { return _mm512_mul_ps(v, rv); });
  }
}

void softmax(const float* x, float* y, size_t n) {
  if (n == 0) return;
  __m512 mv = _mm512_set1_ps(x[0]);
  for (size_t i = 0; i < n; i += 16) {
    mv = _mm512_mask_max_ps(mv, mask_for(n - i), mv, _mm512_maskz_loadu_ps(mask_for(n - i), x + i));
  }
  mv = _mm512_set1_ps(hmax16(mv));
  __m512 sv = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 e = exp16(_mm512_sub_ps(_mm512_loadu_ps(x + i), mv));
    _mm512_storeu_ps(y + i, e);
    sv = _mm512_add_ps(sv, e);
  }
  if (i < n) {
    const __mmask16 m = mask_for(n - i);
    const __m512 e =
        _mm512_maskz_mov_ps(m, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), mv)));
    _mm512_mask_storeu_ps(y + i, m, e);
    sv = _mm512_add_ps(sv, e);
  }
  const __m512 iv = _mm512_set1_ps(1.0f / hsum16(sv));
  unary(y, y, n, [&](__m512 v) { return _mm512_mul_ps(v, iv); });
}

void silu_mul(const float* a, const float* b, float* y, size_t n) {
  const __m512 one = _mm512_set1_ps(1.0f);
  binary(a, b, y, n, [&](__m512 av, __m512 bv) {
    const __m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), av));
    return _mm512_mul_ps(_mm512_div_ps(av, _mm512_add_ps(one, e)), bv);
  });
}

// Lanes [0, left) of p (all 16 when left >= 16): plain loads and stores for whole vectors,
// masked ones only at a tail (masked stores are slow on Zen 4).
inline __m512 load_part(const float* p, size_t left) {
  return left >= 16 ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(mask_for(left), p);
}
inline void store_part(float* p, size_t left, __m512 v) {
  if (left >= 16) {
    _mm512_storeu_ps(p, v);
  } else {
    _mm512_mask_storeu_ps(p, mask_for(left), v);
  }
}

// v as it is: GCC contracts a product feeding a sum into an FMA, intrinsics too (-ffp-contract=fast
// with -mfma); a product passed through here is rounded on its own.
inline __m512 rounded(__m512 v) {
  __asm__("" : "+v"(v));
  return v;
}

// rope_rows: products and sums as separate instructions (never an FMA), as the scalar reference.
// Neox pairs are (i, i + half): 16 pairs a step from the two halves. Normal pairs are adjacent:
// 8 a step, each cos / sin lane doubled and the pair's partner swapped in; a + b·(−s) is a − b·s
// bit for bit.
void rope_rows(const float* x, float* y, size_t n_heads, size_t head_dim, size_t n_rot,
               const float* cos, const float* sin, RopeStyle style) {
  const size_t half = n_rot / 2;
  const __m512i dup = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
  const __m512 sign = _mm512_castsi512_ps(_mm512_set1_epi64(0x80000000ll));  // even lanes
  for (size_t h = 0; h < n_heads; ++h) {
    const float* xr = x + h * head_dim;
    float* yr = y + h * head_dim;
    if (style == RopeStyle::kNeox) {
      for (size_t i = 0; i < half; i += 16) {
        const size_t left = half - i;
        const __m512 a = load_part(xr + i, left), b = load_part(xr + half + i, left);
        const __m512 c = load_part(cos + i, left), s = load_part(sin + i, left);
        store_part(yr + i, left,
                   _mm512_sub_ps(rounded(_mm512_mul_ps(a, c)), rounded(_mm512_mul_ps(b, s))));
        store_part(yr + half + i, left,
                   _mm512_add_ps(rounded(_mm512_mul_ps(b, c)), rounded(_mm512_mul_ps(a, s))));
      }
    } else {
      for (size_t i = 0; i < half; i += 8) {
        const size_t left = 2 * (half - i);
        const auto m8 = static_cast<__mmask8>(mask_for(half - i));  // the pairs' cos / sin
        const __m512 v = load_part(xr + 2 * i, left);
        const __m512 c =
            _mm512_permutexvar_ps(dup, _mm512_castps256_ps512(_mm256_maskz_loadu_ps(m8, cos + i)));
        const __m512 s =
            _mm512_permutexvar_ps(dup, _mm512_castps256_ps512(_mm256_maskz_loadu_ps(m8, sin + i)));
        const __m512 sw = _mm512_permute_ps(v, 0xb1);  // (b, a) in each pair
        store_part(yr + 2 * i, left,
                   _mm512_add_ps(rounded(_mm512_mul_ps(v, c)),
                                 rounded(_mm512_mul_ps(sw, _mm512_xor_ps(s, sign)))));
      }
    }
    if (yr != xr) {
      for (size_t i = n_rot; i < head_dim; i += 16) {
        store_part(yr + i, head_dim - i, load_part(xr + i, head_dim - i));
      }
    }
  }
}

// rms_norm of H heads at once, each head's sum of squares its own chain in rms_norm's order (so
// each head gets rms_norm's bits) and the H chains interleaved: a head's chain is head_dim / 16
// dependent FMAs, which alone leave the FMA units mostly idle. Normalized heads go to y.
template <int H>
inline void norm_heads(const float* x, const float* w, float eps, float* y, size_t head_dim) {
  __m512 a[H];
  for (int h = 0; h < H; ++h) a[h] = _mm512_setzero_ps();
  for (size_t i = 0; i < head_dim; i += 16) {
    for (int h = 0; h < H; ++h) {
      const __m512 v = _mm512_maskz_loadu_ps(mask_for(head_dim - i), x + h * head_dim + i);
      a[h] = _mm512_fmadd_ps(v, v, a[h]);
    }
  }
  for (int h = 0; h < H; ++h) {
    const float r = 1.0f / std::sqrt(hsum16(a[h]) / static_cast<float>(head_dim) + eps);
    const __m512 rv = _mm512_set1_ps(r);
    binary(x + h * head_dim, w, y + h * head_dim, head_dim,
           [&](__m512 v, __m512 g) { return _mm512_mul_ps(_mm512_mul_ps(v, rv), g); });
  }
}

void head_norm_rope(const float* x, const float* w, float eps, float* y, size_t n_heads,
                    size_t head_dim, size_t n_rot, const float* cos, const float* sin,
                    RopeStyle style) {
  size_t h = 0;
  for (; h + 4 <= n_heads; h += 4)
    norm_heads<4>(x + h * head_dim, w, eps, y + h * head_dim, head_dim);
  for (; h < n_heads; ++h) norm_heads<1>(x + h * head_dim, w, eps, y + h * head_dim, head_dim);
  avx512::rope_rows(y, y, n_heads, head_dim, n_rot, cos, sin, style);
}

// 0.5 x (1 + tanh(u)) = x · sigmoid(2u).
void gelu_tanh(const float* x, float* y, size_t n) {
  const __m512 one = _mm512_set1_ps(1.0f), c = _mm512_set1_ps(-2.0f * 0.7978845608028654f);
  const __m512 c3 = _mm512_set1_ps(0.044715f);
  unary(x, y, n, [&](__m512 v) {
    const __m512 u = _mm512_fmadd_ps(_mm512_mul_ps(c3, v), _mm512_mul_ps(v, v), v);
    return _mm512_div_ps(v, _mm512_add_ps(one, exp16(_mm512_mul_ps(c, u))));
  });
}

void add(const float* a, const float* b, float* y, size_t n) {
  binary(a, b, y, n, [](__m512 p, __m512 q) { return _mm512_add_ps(p, q); });
}
void mul(const float* a, const float* b, float* y, size_t n) {
  binary(a, b, y, n, [](__m512 p, __m512 q) { return _mm512_mul_ps(p, q); });
}
void scale(const float* x, float s, float* y, size_t n) {
  const __m512 sv = _mm512_set1_ps(s);
  unary(x, y, n, [&](__m512 v) { return _mm512_mul_ps(v, sv); });
}

void f16_to_f32(const uint16_t* x, float* y, size_t n) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm512_storeu_ps(y + i,
                     _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i))));
  }
  if (i < n) {
    const __mmask16 m = mask_for(n - i);
    _mm512_mask_storeu_ps(y + i, m, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, x + i)));
  }
}
inline __m512 widen_bf16(__m256i h) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
void bf16_to_f32(const uint16_t* x, float* y, size_t n) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm512_storeu_ps(y + i,
                     widen_bf16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i))));
  }
  if (i < n) {
    const __mmask16 m = mask_for(n - i);
    _mm512_mask_storeu_ps(y + i, m, widen_bf16(_mm256_maskz_loadu_epi16(m, x + i)));
  }
}
void f32_to_f16(const float* x, uint16_t* y, size_t n) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i h = _mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i), h);
  }
  if (i < n) {
    const __mmask16 m = mask_for(n - i);
    const __m256i h = _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, x + i), _MM_FROUND_TO_NEAREST_INT);
    _mm256_mask_storeu_epi16(y + i, m, h);
  }
}

// quant.cpp's quant_q8_0 per block, vectorized: the same amax, d = amax / 127 and id = 1 / d, and
// roundf(x · id) as trunc(v + copysign(0.49999997, v)), which equals roundf for every float of
// magnitude up to 130 (checked exhaustively; |x · id| <= 127 here).
void f32_to_q8_0(const float* x, void* y, size_t n) {
  auto* b = static_cast<BlockQ8_0*>(y);
  const __m512 sign = _mm512_set1_ps(-0.0f), half = _mm512_set1_ps(0.49999997f);
  for (size_t i = 0; i < n / kQK; ++i, x += kQK) {
    const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
    const float amax =
        _mm512_reduce_max_ps(_mm512_max_ps(_mm512_andnot_ps(sign, v0), _mm512_andnot_ps(sign, v1)));
    const float d = amax / 127;
    const __m512 id = _mm512_set1_ps(d != 0 ? 1.0f / d : 0.0f);
    b[i].d = runnel::f32_to_f16(d);
    const __m512 p0 = _mm512_mul_ps(v0, id), p1 = _mm512_mul_ps(v1, id);
    const __m512i q0 =
        _mm512_cvttps_epi32(_mm512_add_ps(p0, _mm512_or_ps(half, _mm512_and_ps(p0, sign))));
    const __m512i q1 =
        _mm512_cvttps_epi32(_mm512_add_ps(p1, _mm512_or_ps(half, _mm512_and_ps(p1, sign))));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(b[i].qs), _mm512_cvtepi32_epi8(q0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(b[i].qs + 16), _mm512_cvtepi32_epi8(q1));
  }
}

uint64_t read_sum(const void* p, size_t bytes) {
  // One line a step, its prefetch just before its load (membw.cpp says why).
  const __m512i* v = static_cast<const __m512i*>(p);
  __m512i a = _mm512_setzero_si512();
#pragma GCC unroll 1
  for (size_t i = 0; i < bytes / 64; ++i) {
    probe_line_ahead(reinterpret_cast<const uint8_t*>(v + i));
    a = _mm512_xor_si512(a, _mm512_loadu_si512(v + i));
  }
  return hxor512(a);
}

// argmax (vec.h) in two passes: the maximum over four vectors of lanes (max_ps(x, m) is
// `m < x ? x : m`, so a NaN never enters), then the first lane equal to it. qwen06b's 151936
// logits right after the output matmul (half of them in the other core's cache): 66 -> 33 µs a
// token against sample's compiler-vectorized loop; read again, in cache, 35 -> 9-10 µs.
int64_t argmax(const float* x, size_t n) {
  const __m512 neg_inf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  __m512 m[4] = {neg_inf, neg_inf, neg_inf, neg_inf};
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    for (int j = 0; j < 4; ++j) m[j] = _mm512_max_ps(_mm512_loadu_ps(x + i + 16 * j), m[j]);
  }
  for (; i < n; i += 16) {
    m[0] = _mm512_max_ps(_mm512_mask_loadu_ps(neg_inf, mask_for(n - i), x + i), m[0]);
  }
  const float mx =
      _mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(m[0], m[1]), _mm512_max_ps(m[2], m[3])));
  if (!(mx > -std::numeric_limits<float>::infinity())) return -1;
  const __m512 mv = _mm512_set1_ps(mx);
  for (i = 0; i < n; i += 16) {
    const __mmask16 live = mask_for(n - i);
    const __mmask16 hit =
        _mm512_mask_cmp_ps_mask(live, _mm512_maskz_loadu_ps(live, x + i), mv, _CMP_EQ_OQ);
    if (hit != 0) return static_cast<int64_t>(i) + __builtin_ctz(hit);
  }
  return -1;  // not reached: mx is one of the values
}

// sum_exp (vec.h): exp16 of each vector, widened to double and summed in two double vectors (the
// tail's dead lanes zeroed). sample::compute_logprobs over 151936 logits, which summed libm's
// double exp: 0.96 -> 0.09 ms.
double sum_exp(const float* x, size_t n, float m) {
  const __m512 mv = _mm512_set1_ps(m);
  __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd();
  const auto add = [&](__m512 e) {
    a0 = _mm512_add_pd(a0, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
    a1 = _mm512_add_pd(
        a1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1))));
  };
  size_t i = 0;
  for (; i + 16 <= n; i += 16) add(exp16(_mm512_sub_ps(_mm512_loadu_ps(x + i), mv)));
  if (i < n) {
    const __mmask16 live = mask_for(n - i);
    add(_mm512_maskz_mov_ps(live, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(live, x + i), mv))));
  }
  return _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
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

}  // namespace runnel::kernels::cpu::avx512
