// AVX2 kernel for the Q4_KR16 layout (packed_kquants.h), over the tile loop of packed_dot_avx2.h.
// Same arithmetic as the scalar reference (packed_kquants.cpp), bit for bit: per super-block and
// row the exact int32 isum = Σ_j sc_j · dot_j and imin = Σ_j m_j · Σq_x[j], then
// acc = fma(float(isum), d · d_x, acc) and acc = fma(float(imin), dmin · -d_x, acc).
// A sub-block's dot is summed in int16 lanes (vpmaddubsw of nibbles and int8 x: 16 products of at
// most 15 · 127 per lane, below 32767), and one vpmaddwd by the row's scale (in both int16 halves
// of its lane) gives sc_j · dot_j in int32, so no 32-bit multiply is needed; the mins pair two
// sub-blocks per vpmaddwd (m ≤ 63, |Σq_x| ≤ 32 · 127 fit int16). Q6_K keeps GGML's layout on AVX2.
#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/kquant_util.h"
#include "kernels/cpu/packed.h"
#include "kernels/cpu/packed_dot_avx2.h"
#include "kernels/cpu/packed_kquants.h"
#include "kernels/cpu/quant.h"

namespace runnel::kernels::cpu::avx2 {
namespace {

struct Q4KR16 {
  static constexpr size_t kElems = kQKK;

  // Scale byte chunk b (12 of them) for rows 8h .. 8h + 7, one row per 32-bit lane.
  static __m256i scale_bytes(const uint8_t* w, int b, int h) {
    return _mm256_cvtepu8_epi32(
        _mm_loadl_epi64(reinterpret_cast<const __m128i*>(w + kQ4KR16Scales + 16 * b + 8 * h)));
  }
  // Sub-block j's 6-bit scale (want_min false) or min, per lane (GGML's get_scale_min_k4).
  static __m256i scale_min(const uint8_t* w, int j, int h, bool want_min) {
    const __m256i m63 = _mm256_set1_epi32(63), m15 = _mm256_set1_epi32(15);
    if (j < 4) return _mm256_and_si256(scale_bytes(w, want_min ? j + 4 : j, h), m63);
    const __m256i lo = scale_bytes(w, j + 4, h);
    const __m256i top =
        _mm256_slli_epi32(_mm256_srli_epi32(scale_bytes(w, want_min ? j : j - 4, h), 6), 4);
    return _mm256_or_si256(want_min ? _mm256_srli_epi32(lo, 4) : _mm256_and_si256(lo, m15), top);
  }

  template <int MR>
  static void block(const PackedGemm& a, const BlockQ8Act* const* x, size_t sb, size_t, int h,
                    __m256 (&acc)[MR]) {
    const uint8_t* w = a.w + sb * kQ4KR16SbBytes;
    const BlockQ8Act* xs[MR];
    for (int i = 0; i < MR; ++i) xs[i] = x[i] + sb * 8;
    const __m256i nib = _mm256_set1_epi8(0x0f);
    __m256i isum[MR];
    for (int i = 0; i < MR; ++i) isum[i] = _mm256_setzero_si256();
    for (int j = 0; j < 8; ++j) {
      __m256i d16[MR];
      for (int i = 0; i < MR; ++i) d16[i] = _mm256_setzero_si256();
      const uint8_t* q = w + kQ4KR16Qs + 256 * j + 32 * h;
      for (int c = 0; c < 4; ++c) {
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 64 * c));
        const __m256i vl = _mm256_and_si256(v, nib);
        const __m256i vh = _mm256_and_si256(_mm256_srli_epi16(v, 4), nib);
        for (int i = 0; i < MR; ++i) {
          d16[i] = _mm256_add_epi16(d16[i], _mm256_maddubs_epi16(vl, bcast4(xs[i][j].qs + 4 * c)));
          d16[i] =
              _mm256_add_epi16(d16[i], _mm256_maddubs_epi16(vh, bcast4(xs[i][j].qs + 16 + 4 * c)));
        }
      }
      const __m256i sc = scale_min(w, j, h, false);
      const __m256i sc2 = _mm256_or_si256(sc, _mm256_slli_epi32(sc, 16));  // sc in both halves
      for (int i = 0; i < MR; ++i)
        isum[i] = _mm256_add_epi32(isum[i], _mm256_madd_epi16(d16[i], sc2));
    }
    __m256i imin[MR];
    for (int i = 0; i < MR; ++i) imin[i] = _mm256_setzero_si256();
    for (int j = 0; j < 8; j += 2) {
      const __m256i mm = _mm256_or_si256(scale_min(w, j, h, true),
                                         _mm256_slli_epi32(scale_min(w, j + 1, h, true), 16));
      for (int i = 0; i < MR; ++i) {
        const uint32_t pair = static_cast<uint16_t>(xs[i][j].sum) |
                              static_cast<uint32_t>(static_cast<uint16_t>(xs[i][j + 1].sum)) << 16;
        imin[i] = _mm256_add_epi32(
            imin[i], _mm256_madd_epi16(mm, _mm256_set1_epi32(static_cast<int32_t>(pair))));
      }
    }
    const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 16 * h)));
    const __m256 dmin = _mm256_cvtph_ps(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + kQ4KR16Dmin + 16 * h)));
    for (int i = 0; i < MR; ++i) {
      const float dx = xs[i]->d;
      acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[i]), _mm256_mul_ps(d, _mm256_set1_ps(dx)),
                               acc[i]);
      acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(imin[i]),
                               _mm256_mul_ps(dmin, _mm256_set1_ps(-dx)), acc[i]);
    }
  }
};

}  // namespace

void register_matmul_packed_kquants(KernelTable& t) {
  constexpr int kMr = 3;
  matmul_entry(t, DType::kQ4_KR16) = {
      nullptr, ActKind::kQ8x256, kMr, 1, dispatch_r16_avx2<Q4KR16>, 1, false};
  matmul_entry(t, DType::kQ4_K).prefer_packed = true;
}

}  // namespace runnel::kernels::cpu::avx2
