// Small AVX-512 helpers for *_avx512.cpp files only (internal linkage); <immintrin.h> comes through
// intrinsics.h (GCC 12's false uninitialized warnings off). Horizontal reductions have a fixed
// order (halves, then quarters, then within 128 bits), so results are deterministic.
#pragma once

#include <cstdint>

#include "kernels/cpu/intrinsics.h"

namespace runnel::kernels::cpu {
namespace {

inline __m128 fold512(__m512 v, __m512 (*op)(__m512, __m512)) {
  v = op(v, _mm512_shuffle_f32x4(v, v, 0x4e));  // swap 256-bit halves
  v = op(v, _mm512_shuffle_f32x4(v, v, 0xb1));  // swap 128-bit lanes within halves
  return _mm512_castps512_ps128(v);
}

inline float hsum16(__m512 v) {
  __m128 s = fold512(v, [](__m512 a, __m512 b) { return _mm512_add_ps(a, b); });
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline float hmax16(__m512 v) {
  __m128 s = fold512(v, [](__m512 a, __m512 b) { return _mm512_max_ps(a, b); });
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline uint64_t hxor512(__m512i v) {
  v = _mm512_xor_si512(v, _mm512_shuffle_i64x2(v, v, 0x4e));
  v = _mm512_xor_si512(v, _mm512_shuffle_i64x2(v, v, 0xb1));
  const __m128i s = _mm512_castsi512_si128(v);
  return static_cast<uint64_t>(_mm_cvtsi128_si64(s) ^ _mm_extract_epi64(s, 1));
}

// Cephes-style exp (see simd_avx2.h): relative error < 2e-7 over [-87.3, 88.3], clamped outside.
inline __m512 exp16(__m512 x) {
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.3f)), _mm512_set1_ps(88.3f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504089f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.0f / 5040);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  const __m512i e =
      _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  return _mm512_mul_ps(p, _mm512_castsi512_ps(e));
}

}  // namespace
}  // namespace runnel::kernels::cpu
