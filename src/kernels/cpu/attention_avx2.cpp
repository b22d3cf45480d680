// AVX2 primitives for the shared flash-attention loop (attention_impl.h): dot products of q with
// K rows and updates of the running output with V rows, 8 lanes at a time, f16 rows via F16C.
#include <immintrin.h>

#include <cmath>

#include "kernels/cpu/attention_impl.h"
#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/simd_avx2.h"

namespace runnel::kernels::cpu::avx2 {
namespace {

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 load8(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline float one(const float* p) { return *p; }
inline float one(const uint16_t* p) { return _cvtsh_ss(*p); }

struct Ops {
  template <class T>
  static float dot(const float* q, const T* k, int d) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= d; i += 16) {
      a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), load8(k + i), a0);
      a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), load8(k + i + 8), a1);
    }
    for (; i + 8 <= d; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), load8(k + i), a0);
    float s = hsum(_mm256_add_ps(a0, a1));
    for (; i < d; ++i) s += q[i] * one(k + i);
    return s;
  }
  template <class T>
  static void axpy(float* acc, float p, const T* v, int d) {
    const __m256 pv = _mm256_set1_ps(p);
    int i = 0;
    for (; i + 8 <= d; i += 8) {
      _mm256_storeu_ps(acc + i, _mm256_fmadd_ps(pv, load8(v + i), _mm256_loadu_ps(acc + i)));
    }
    for (; i < d; ++i) acc[i] += p * one(v + i);
  }
  static void scale(float* acc, float s, int d) {
    const __m256 sv = _mm256_set1_ps(s);
    int i = 0;
    for (; i + 8 <= d; i += 8)
      _mm256_storeu_ps(acc + i, _mm256_mul_ps(sv, _mm256_loadu_ps(acc + i)));
    for (; i < d; ++i) acc[i] *= s;
  }
  static float exp_sub_sum(float* s, int n, float m) {
    const __m256 mv = _mm256_set1_ps(m);
    __m256 sv = _mm256_setzero_ps();
    int j = 0;
    for (; j + 8 <= n; j += 8) {
      const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(s + j), mv));
      _mm256_storeu_ps(s + j, e);
      sv = _mm256_add_ps(sv, e);
    }
    float sum = hsum(sv);
    for (; j < n; ++j) sum += (s[j] = std::exp(s[j] - m));
    return sum;
  }
};

void run(const AttentionArgs& a, ThreadPool& pool) { attention_impl<Ops>(a, pool); }

}  // namespace

void register_attention(KernelTable& t) { t.attention = run; }

}  // namespace runnel::kernels::cpu::avx2
