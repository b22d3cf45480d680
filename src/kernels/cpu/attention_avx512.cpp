// AVX-512 primitives for the shared flash-attention loop (attention_impl.h): 16 lanes, f16 rows
// widened with vcvtph2ps; only ragged tails use masked loads/stores (slow on Zen 4).
#include "kernels/cpu/attention_impl.h"
#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/simd_avx512.h"

namespace runnel::kernels::cpu::avx512 {
namespace {

inline __m512 load16(const float* p) { return _mm512_loadu_ps(p); }
inline __m512 load16(const uint16_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
inline __m512 load16(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
inline __m512 load16(const uint16_t* p, __mmask16 m) {
  return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
}
inline __mmask16 tail_mask(int n) { return static_cast<__mmask16>((1u << n) - 1); }

struct Ops {
  template <class T>
  static float dot(const float* q, const T* k, int d) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 32 <= d; i += 32) {
      a0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), load16(k + i), a0);
      a1 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i + 16), load16(k + i + 16), a1);
    }
    for (; i + 16 <= d; i += 16) a0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), load16(k + i), a0);
    if (i < d) {
      const __mmask16 m = tail_mask(d - i);
      a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + i), load16(k + i, m), a1);
    }
    return hsum16(_mm512_add_ps(a0, a1));
  }
  template <class T>
  static void axpy(float* acc, float p, const T* v, int d) {
    const __m512 pv = _mm512_set1_ps(p);
    int i = 0;
    for (; i + 16 <= d; i += 16) {
      _mm512_storeu_ps(acc + i, _mm512_fmadd_ps(pv, load16(v + i), _mm512_loadu_ps(acc + i)));
    }
    if (i < d) {
      const __mmask16 m = tail_mask(d - i);
      const __m512 r = _mm512_fmadd_ps(pv, load16(v + i, m), _mm512_maskz_loadu_ps(m, acc + i));
      _mm512_mask_storeu_ps(acc + i, m, r);
    }
  }
  static void scale(float* acc, float s, int d) {
    const __m512 sv = _mm512_set1_ps(s);
    int i = 0;
    for (; i + 16 <= d; i += 16)
      _mm512_storeu_ps(acc + i, _mm512_mul_ps(sv, _mm512_loadu_ps(acc + i)));
    if (i < d) {
      const __mmask16 m = tail_mask(d - i);
      _mm512_mask_storeu_ps(acc + i, m, _mm512_mul_ps(sv, _mm512_maskz_loadu_ps(m, acc + i)));
    }
  }
  // Full vectors use plain loads/stores; only the tail is masked (masked stores are slow on
  // Zen 4 and defeat store-to-load forwarding of the scores read right after).
  static float exp_sub_sum(float* s, int n, float m) {
    const __m512 mv = _mm512_set1_ps(m);
    __m512 sv = _mm512_setzero_ps();
    int j = 0;
    for (; j + 16 <= n; j += 16) {
      const __m512 e = exp16(_mm512_sub_ps(_mm512_loadu_ps(s + j), mv));
      _mm512_storeu_ps(s + j, e);
      sv = _mm512_add_ps(sv, e);
    }
    if (j < n) {
      const __mmask16 k = tail_mask(n - j);
      const __m512 e =
          _mm512_maskz_mov_ps(k, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, s + j), mv)));
      _mm512_mask_storeu_ps(s + j, k, e);
      sv = _mm512_add_ps(sv, e);
    }
    return hsum16(sv);
  }
};

void run(const AttentionArgs& a, ThreadPool& pool) { attention_impl<Ops>(a, pool); }

}  // namespace

void register_attention(KernelTable& t) { t.attention = run; }

}  // namespace runnel::kernels::cpu::avx512
