// AVX2 kernels for the Q2_KR16 ... Q6_KR16 and IQ4_XSR16 layouts (packed_kquants.h), over the
// tile loop of packed_dot_avx2.h; internal linkage, for matmul_packed_kquants_avx2.cpp (the avx2
// variant) and matmul_packed_avxvnni.cpp, whose copy (built with -mavxvnni) sums each sub-block's
// dot in int32 by vpdpbusd and adds it times its scale by vpdpwssd (add_sub_block), as the AVX-512
// kernels do. Same arithmetic as the scalar reference (packed_kquants.cpp), bit for bit: per
// super-block and row the exact int32 isum = Σ_j sc_j · dot_j and imin = Σ_j m_j · Σq_x[j], then
// acc = fma(float(isum), d · d_x, acc) and acc = fma(float(imin), dmin · -d_x, acc).
// A sub-block's dot is summed in int16 lanes (vpmaddubsw of nibbles and int8 x: 16 products of at
// most 15 · 127 per lane, below 32767), and one vpmaddwd by the row's scale (in both int16 halves
// of its lane) gives sc_j · dot_j in int32, so no 32-bit multiply is needed; the mins pair two
// sub-blocks per vpmaddwd (m ≤ 63, |Σq_x| ≤ 32 · 127 fit int16).
// Q6_KR16: the same int32 isum = Σ_s sc_s · Σ_e (q_e − 32) · x_e, computed as
// Σ_s sc_s · Σ_e q_e · x_e − 32 · Σ_s sc_s · Σx_s. vpmaddubsw takes the unsigned 6-bit quants (the
// three loads and the fourth vector made of their top bits); two of them summed in int16 stay exact
// (4 products of at most 63 · 127 = 32004 per lane), and each such sum meets the sub-block's scale
// (int16, in both halves of its lane) in one vpmaddwd. The −32 · Σ sc_s · Σx_s term pairs two
// sub-blocks per vpmaddwd (|Σx_s| ≤ 16 · 127 fits int16). Then acc = fma(float(isum), d · d_x,
// acc).
#pragma once

#include "kernels/cpu/act_block_simd.h"
#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/kquant_util.h"
#include "kernels/cpu/packed.h"
#include "kernels/cpu/packed_dot_avx2.h"
#include "kernels/cpu/packed_kquants.h"
#include "kernels/cpu/quant.h"

namespace runnel::kernels::cpu::avx2 {
namespace {

// A Q4_K sub-block's dot and its scale, the two ways (the same exact integers):
//   nibble_dot(dot, w, x)            dot += w · x for u8 nibbles w and int8 x, 4 per lane
//   scale_operand(sc)                sc (int32 lanes) as add_sub_block takes it
//   add_sub_block(isum, dot, scale)  isum + sc · dot per int32 lane
#ifdef __AVXVNNI__
constexpr bool kInt32Dots = true;
// avxvnni: the dot in int32 by vpdpbusd; then d split as (d & 0xff, d >> 8) int16s by one vpshufb
// and one vpdpwssd with (sc, 256 · sc); needs |d| < 2^23 and sc in [-128, 127]
// (packed_kquants_avx512.h's add_scaled, on 8 lanes).
inline __m256i nibble_dot(__m256i dot, __m256i w, __m256i x) {
  return _mm256_dpbusd_avx_epi32(dot, w, x);
}
inline __m256i scale_operand(__m256i sc) {  // (sc & 0xffff) | sc << 24
  return _mm256_or_si256(_mm256_and_si256(sc, _mm256_set1_epi32(0xffff)),
                         _mm256_slli_epi32(sc, 24));
}
inline __m256i add_sub_block(__m256i isum, __m256i dot, __m256i scale) {
  const __m256i split = _mm256_set_epi32(0x0e0d800c, 0x0a098008, 0x06058004, 0x02018000, 0x0e0d800c,
                                         0x0a098008, 0x06058004, 0x02018000);
  return _mm256_dpwssd_avx_epi32(isum, _mm256_shuffle_epi8(dot, split), scale);
}
#else
constexpr bool kInt32Dots = false;
// avx2: the dot in int16 lanes by vpmaddubsw (16 products of at most 15 · 127 per lane), then one
// vpmaddwd by sc in both int16 halves of its lane. (Q5_K's 31 · 127 takes two such sums: 8
// products each.)
inline __m256i nibble_dot(__m256i dot, __m256i w, __m256i x) {
  return _mm256_add_epi16(dot, _mm256_maddubs_epi16(w, x));
}
inline __m256i scale_operand(__m256i sc) { return _mm256_or_si256(sc, _mm256_slli_epi32(sc, 16)); }
inline __m256i add_sub_block(__m256i isum, __m256i dot, __m256i scale) {
  return _mm256_add_epi32(isum, _mm256_madd_epi16(dot, scale));
}
#endif

// The tile loop's (packed_dot_avx2.h) two entries over K::halves<MR, NH>(a, x, sb, nsb, h0, acc),
// which adds super-block sb's terms for NH halves of 8 rows from h0: one half (block), or both
// (decode: both_halves, reading each line's two halves together).
template <class K>
struct HalvesOf {
  static constexpr size_t kElems = kQKK;
  template <int MR>
  static void block(const PackedGemm& a, const BlockQ8Act* const* x, size_t sb, size_t nsb, int h,
                    __m256 (&acc)[MR]) {
    __m256* const one[1] = {acc};
    K::template halves<MR, 1>(a, x, sb, nsb, h, one);
  }
  template <int MR>
  static void both_halves(const PackedGemm& a, const BlockQ8Act* const* x, size_t sb, size_t nsb,
                          __m256 (&acc0)[MR], __m256 (&acc1)[MR]) {
    __m256* const two[2] = {acc0, acc1};
    K::template halves<MR, 2>(a, x, sb, nsb, 0, two);
  }
};

// A Q4_K / Q5_K / Q2_K super-block's f32 step for rows 8h .. 8h + 7 (w16: the super-block's d,
// 16 f16, with dmin 32 bytes after): acc[i] = fma(float(isum[i]), d · d_x, acc[i]), then
// acc[i] = fma(float(imin[i]), dmin · −d_x, acc[i]).
template <int MR>
inline void add_with_mins(const uint8_t* w16, int h, const __m256i* isum, const __m256i* imin,
                          const BlockQ8Act* const* xs, __m256* acc) {
  static_assert(kQ4KR16Dmin == 32 && kQ2KR16Dmin == 32);
  const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w16 + 16 * h)));
  const __m256 dmin =
      _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w16 + 32 + 16 * h)));
  for (int i = 0; i < MR; ++i) {
    const float dx = xs[i]->d;
    acc[i] =
        _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[i]), _mm256_mul_ps(d, _mm256_set1_ps(dx)), acc[i]);
    acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(imin[i]), _mm256_mul_ps(dmin, _mm256_set1_ps(-dx)),
                             acc[i]);
  }
}

// Q4_KR16, and Q5_KR16 (kQ5): the same header and nibbles, with each sub-block's fifth bits
// merged into chunk c's quants as (f >> c << 4 & 16) and (f >> c & 16) (packed_kquants.h).
template <bool kQ5>
struct Q45KR16 : HalvesOf<Q45KR16<kQ5>> {
  static constexpr size_t kSbBytes = kQ5 ? kQ5KR16SbBytes : kQ4KR16SbBytes;
  static constexpr size_t kSubBytes = kQ5 ? kQ5KR16Sub : 256;
  // Separate sums of a sub-block's low and high chunks where int16 lanes would overflow.
  static constexpr int kDots = kQ5 && !kInt32Dots ? 2 : 1;

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

  // Super-block sb's terms for NH halves from h0 into acc[0 .. NH - 1][0 .. MR - 1]. Decode takes
  // both (NH = 2) sub-block by sub-block, reading each line's two halves together, and spreads the
  // super-block's prefetches over its sub-blocks (prefetch.h).
  template <int MR, int NH>
  static void halves(const PackedGemm& a, const BlockQ8Act* const* x, size_t sb, size_t, int h0,
                     __m256* const (&acc)[NH]) {
    const uint8_t* w = a.w + sb * kSbBytes;
    const BlockQ8Act* xs[MR];
    for (int i = 0; i < MR; ++i) xs[i] = x[i] + sb * 8;
    const __m256i nib = _mm256_set1_epi8(0x0f);
    __m256i isum[NH][MR];
    for (int h = 0; h < NH; ++h)
      for (int i = 0; i < MR; ++i) isum[h][i] = _mm256_setzero_si256();
    for (int j = 0; j < 8; ++j) {
      if (NH == 2 && a.stream) prefetch_ahead_part(w, kSbBytes, j, 8);
      for (int h = 0; h < NH; ++h) {
        const uint8_t* sub = w + kQ4KR16Qs + kSubBytes * j + 32 * (h0 + h);
        const uint8_t* q = sub + (kQ5 ? 64 : 0);
        const __m256i sc = scale_min(w, j, h0 + h, false);
        __m256i dot[kDots][MR];
        for (int e = 0; e < kDots; ++e)
          for (int i = 0; i < MR; ++i) dot[e][i] = _mm256_setzero_si256();
        for (int c = 0; c < 4; ++c) {
          const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 64 * c));
          __m256i vl = _mm256_and_si256(v, nib);
          __m256i vh = _mm256_and_si256(_mm256_srli_epi16(v, 4), nib);
          if constexpr (kQ5) add_fifth_bits(sub, c, vl, vh);
          for (int i = 0; i < MR; ++i) {
            dot[0][i] = nibble_dot(dot[0][i], vl, bcast4(xs[i][j].qs + 4 * c));
            dot[kDots - 1][i] = nibble_dot(dot[kDots - 1][i], vh, bcast4(xs[i][j].qs + 16 + 4 * c));
          }
        }
        const __m256i scale = scale_operand(sc);
        for (int e = 0; e < kDots; ++e)
          for (int i = 0; i < MR; ++i) isum[h][i] = add_sub_block(isum[h][i], dot[e][i], scale);
      }
    }
    for (int h = 0; h < NH; ++h) {
      __m256i imin[MR];
      for (int i = 0; i < MR; ++i) imin[i] = _mm256_setzero_si256();
      for (int j = 0; j < 8; j += 2) {
        const __m256i mm =
            _mm256_or_si256(scale_min(w, j, h0 + h, true),
                            _mm256_slli_epi32(scale_min(w, j + 1, h0 + h, true), 16));
        for (int i = 0; i < MR; ++i) {
          const uint32_t pair = static_cast<uint16_t>(xs[i][j].sum) |
                                static_cast<uint32_t>(static_cast<uint16_t>(xs[i][j + 1].sum))
                                    << 16;
          imin[i] = _mm256_add_epi32(
              imin[i], _mm256_madd_epi16(mm, _mm256_set1_epi32(static_cast<int32_t>(pair))));
        }
      }
      add_with_mins<MR>(w, h0 + h, isum[h], imin, xs, acc[h]);
    }
  }
};

// IQ4_XSR16: per sub-block j the exact dot over the table's values (r16_half_dots_iq4), isum +=
// sc_j · dot_j (vpmulld: |sc_j · dot_j| <= 32 · 32 · 127 · 127), then one fma per super-block.
struct IQ4XSR16 : HalvesOf<IQ4XSR16> {
  // Sub-block j's scale (-32..31) for rows 8h .. 8h + 7, one row per 32-bit lane.
  static __m256i scale(const uint8_t* w, int j, int h) {
    const auto bytes = [&](size_t off) {
      return _mm256_cvtepu8_epi32(
          _mm_loadl_epi64(reinterpret_cast<const __m128i*>(w + off + 8 * h)));
    };
    const __m256i lo = _mm256_and_si256(
        _mm256_srli_epi32(bytes(kIQ4XSR16Sl + 16 * (j / 2)), 4 * (j % 2)), _mm256_set1_epi32(15));
    const __m256i hi = _mm256_and_si256(
        _mm256_srli_epi32(bytes(kIQ4XSR16Sh + 16 * (j / 4)), 2 * (j % 4)), _mm256_set1_epi32(3));
    return _mm256_sub_epi32(_mm256_or_si256(lo, _mm256_slli_epi32(hi, 4)), _mm256_set1_epi32(32));
  }

  template <int MR, int NH>
  static void halves(const PackedGemm& a, const BlockQ8Act* const* x, size_t sb, size_t, int h0,
                     __m256* const (&acc)[NH]) {
    const uint8_t* w = a.w + sb * kIQ4XSR16SbBytes;
    __m256i isum[NH][MR];
    for (int h = 0; h < NH; ++h)
      for (int i = 0; i < MR; ++i) isum[h][i] = _mm256_setzero_si256();
    for (int j = 0; j < 8; ++j) {
      if (NH == 2 && a.stream) prefetch_ahead_part(w, kIQ4XSR16SbBytes, j, 8);
      const BlockQ8Act* xb[MR];
      for (int i = 0; i < MR; ++i) xb[i] = x[i] + sb * 8 + j;
      for (int h = 0; h < NH; ++h) {
        __m256i dot[MR];
        r16_half_dots_iq4<MR>(w + kIQ4XSR16Qs + 256 * j, h0 + h, xb, dot);
        const __m256i sc = scale(w, j, h0 + h);
        for (int i = 0; i < MR; ++i) {
          isum[h][i] = _mm256_add_epi32(isum[h][i], _mm256_mullo_epi32(dot[i], sc));
        }
      }
    }
    for (int h = 0; h < NH; ++h) {
      const __m256 d =
          _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 16 * (h0 + h))));
      for (int i = 0; i < MR; ++i) {
        const __m256 s = _mm256_mul_ps(d, _mm256_set1_ps(x[i][sb * 8].d));
        acc[h][i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[h][i]), s, acc[h][i]);
      }
    }
  }
};

// Q6_KR16, and Q3_KR16 (kQ3): the same frame and sums with 3-bit quants (two loads a sub-block)
// and 4, not 32, taken off each.
template <bool kQ3>
struct Sc16R16 : HalvesOf<Sc16R16<kQ3>> {
  static constexpr size_t kQs = kQ3 ? kQ3KR16Qs : kQ6KR16Qs;

  // Rows 8h .. 8h + 7's scales of sub-blocks s0 and s1 as int16 pairs (sc_s0, sc_s1) per lane.
  static __m256i scale_pair(const uint8_t* sc, int s0, int s1) {
    const __m128i a = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(sc + 16 * s0));
    const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(sc + 16 * s1));
    return _mm256_cvtepi8_epi16(_mm_unpacklo_epi8(a, b));
  }

  // Super-block sb's terms for NH halves from h0 into acc[0 .. NH - 1][0 .. MR - 1]; decode takes
  // both (NH = 2), sub-block by sub-block, as Q45KR16::halves does, and shares x's sums.
  template <int MR, int NH>
  static void halves(const PackedGemm& a, const BlockQ8Act* const* x, size_t sb, size_t nsb, int h0,
                     __m256* const (&acc)[NH]) {
    const Q6KR16Offsets off = sc16_offsets(sb, nsb, kQs);
    const BlockQ8Act* xs[MR];
    for (int i = 0; i < MR; ++i) xs[i] = x[i] + sb * 8;
    // isum starts at −32 · Σ_s sc_s · Σx_s (d and the scales lie before the quants: read first).
    __m256i isum[NH][MR];
    {
      alignas(32) int32_t p32[MR][8];
      for (int i = 0; i < MR; ++i)
        _mm256_store_si256(reinterpret_cast<__m256i*>(p32[i]), sub16_sum_pairs(xs[i]));
      for (int h = 0; h < NH; ++h) {
        const uint8_t* sc = a.w + off.sc + 8 * (h0 + h);
        __m256i corr[MR];
        for (int i = 0; i < MR; ++i) corr[i] = _mm256_setzero_si256();
        for (int p = 0; p < 8; ++p) {
          const __m256i scp = scale_pair(sc, 2 * p, 2 * p + 1);
          for (int i = 0; i < MR; ++i) {
            corr[i] =
                _mm256_add_epi32(corr[i], _mm256_madd_epi16(scp, _mm256_set1_epi32(p32[i][p])));
          }
        }
        for (int i = 0; i < MR; ++i)
          isum[h][i] =
              _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(corr[i], kQ3 ? 2 : 5));
      }
    }
    const size_t sb_bytes = kQs + kQ6KR16Sc + kQ6KR16D;
    const __m256i m6 = _mm256_set1_epi8(0x3f), top2 = _mm256_set1_epi8(static_cast<char>(0xc0));
    for (int s = 0; s < 16; ++s) {
      // The pair layout keeps a super-block's bytes near sb · sb_bytes: stream by that.
      if (NH == 2 && a.stream) {
        // Q3_K keeps the far distances, as Q2_K (prefetch.h).
        prefetch_ahead_part<kQ3 ? kL1AheadFar : kL1Ahead, kQ3 ? kL2AheadFar : kL2Ahead>(
            a.w + sb * sb_bytes, sb_bytes, s, 16);
      }
      for (int h = 0; h < NH; ++h) {
        const uint8_t* sc = a.w + off.sc + 8 * (h0 + h);
        __m256i wa, wb, wc, top;  // the quants of elements 4v + t, v = 0..3
        if constexpr (kQ3) {
          // Bits 2v..2v+1 of A_(s % 2), bit v + 4 (s % 2) of H as bit 2 (packed_kquants.h); the
          // 16-bit shifts move no kept bit across a byte.
          const uint8_t* q = a.w + off.qs + 192 * (s / 2) + 32 * (h0 + h);
          const __m256i va = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 64 * (s % 2)));
          const __m256i vh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 128));
          const __m256i m3 = _mm256_set1_epi8(3), m4 = _mm256_set1_epi8(4);
          __m256i w[4];
          for (int v = 0; v < 4; ++v) {
            const int k = v + 4 * (s % 2) - 2;
            const __m256i hb = k >= 0 ? _mm256_srli_epi16(vh, k) : _mm256_slli_epi16(vh, -k);
            w[v] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(va, 2 * v), m3),
                                   _mm256_and_si256(hb, m4));
          }
          wa = w[0], wb = w[1], wc = w[2], top = w[3];
        } else {
          const uint8_t* q = a.w + off.qs + 192 * s + 32 * (h0 + h);
          const __m256i va = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q));
          const __m256i vb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 64));
          const __m256i vc = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 128));
          // Bits 6-7 of every byte only, so the 16-bit shifts move no bit across a byte.
          top = _mm256_or_si256(_mm256_or_si256(_mm256_srli_epi16(_mm256_and_si256(va, top2), 6),
                                                _mm256_srli_epi16(_mm256_and_si256(vb, top2), 4)),
                                _mm256_srli_epi16(_mm256_and_si256(vc, top2), 2));
          wa = _mm256_and_si256(va, m6), wb = _mm256_and_si256(vb, m6);
          wc = _mm256_and_si256(vc, m6);
        }
        // Prefill tiles of the avxvnni copy: Σ q · x over the sub-block by vpdpbusd
        // (|Σ| <= 16 · 63 · 127), times sc_s by add_sub_block. Decode keeps the int16 sums: token
        // by token, vpdpbusd's made llama1b / qwen06b Q6_K steps 0.996-1.026 as long (mean 1.007,
        // 11 runs; Emerald Rapids VM, avxvnni against avx2).
#ifdef __AVXVNNI__
        if constexpr (MR > 2) {
          const __m256i scp = scale_operand(
              _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(sc + 16 * s))));
          for (int i = 0; i < MR; ++i) {
            const int8_t* xq = xs[i][s / 2].qs + 16 * (s % 2);
            __m256i d = _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), wa, bcast4(xq));
            d = _mm256_dpbusd_avx_epi32(d, wb, bcast4(xq + 4));
            d = _mm256_dpbusd_avx_epi32(d, wc, bcast4(xq + 8));
            d = _mm256_dpbusd_avx_epi32(d, top, bcast4(xq + 12));
            isum[h][i] = add_sub_block(isum[h][i], d, scp);
          }
        } else
#endif
        {
          const __m256i sc2 = scale_pair(sc, s, s);
          for (int i = 0; i < MR; ++i) {
            const int8_t* xq = xs[i][s / 2].qs + 16 * (s % 2);
            const __m256i p0 = _mm256_add_epi16(_mm256_maddubs_epi16(wa, bcast4(xq)),
                                                _mm256_maddubs_epi16(wb, bcast4(xq + 4)));
            const __m256i p1 = _mm256_add_epi16(_mm256_maddubs_epi16(wc, bcast4(xq + 8)),
                                                _mm256_maddubs_epi16(top, bcast4(xq + 12)));
            isum[h][i] = _mm256_add_epi32(isum[h][i], _mm256_add_epi32(_mm256_madd_epi16(p0, sc2),
                                                                       _mm256_madd_epi16(p1, sc2)));
          }
        }
      }
    }
    for (int h = 0; h < NH; ++h) {
      const __m256 d = _mm256_cvtph_ps(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(a.w + off.d + 16 * (h0 + h))));
      for (int i = 0; i < MR; ++i) {
        acc[h][i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[h][i]),
                                    _mm256_mul_ps(d, _mm256_set1_ps(xs[i]->d)), acc[h][i]);
      }
    }
  }
};

// Q2_KR16: per 16-element sub-block one load gives the four 2-bit vectors, summed as Q6_K's are
// (vpmaddubsw pairs in int16, then one vpmaddwd by the scale; the avxvnni copy's prefill tiles
// vpdpbusd and add_sub_block); per super-block Σ m_s · Σx_s by vpmaddwd on int16 pairs, then Q4_K's
// two fmas. Same integers as the scalar reference (packed_kquants.cpp), so the same bits.
struct Q2KR16 : HalvesOf<Q2KR16> {
  // Rows 8h .. 8h + 7's scale (low nibble) or min (high nibble) of sub-block s per 32-bit lane.
  static __m256i nibble(const uint8_t* w, int s, int h, bool high) {
    const __m256i b = _mm256_cvtepu8_epi32(
        _mm_loadl_epi64(reinterpret_cast<const __m128i*>(w + kQ2KR16Sc + 16 * s + 8 * h)));
    return high ? _mm256_srli_epi32(b, 4) : _mm256_and_si256(b, _mm256_set1_epi32(15));
  }

  template <int MR, int NH>
  static void halves(const PackedGemm& a, const BlockQ8Act* const* x, size_t sb, size_t, int h0,
                     __m256* const (&acc)[NH]) {
    const uint8_t* w = a.w + sb * kQ2KR16SbBytes;
    const BlockQ8Act* xs[MR];
    for (int i = 0; i < MR; ++i) xs[i] = x[i] + sb * 8;
    const __m256i m3 = _mm256_set1_epi8(3);
    __m256i isum[NH][MR];
    for (int h = 0; h < NH; ++h)
      for (int i = 0; i < MR; ++i) isum[h][i] = _mm256_setzero_si256();
    for (int s = 0; s < 16; ++s) {
      if (NH == 2 && a.stream)
        prefetch_ahead_part<kL1AheadFar, kL2AheadFar>(w, kQ2KR16SbBytes, s, 16);
      for (int h = 0; h < NH; ++h) {
        const __m256i v = _mm256_loadu_si256(
            reinterpret_cast<const __m256i*>(w + kQ2KR16Qs + 64 * s + 32 * (h0 + h)));
        __m256i wq[4];
        for (int e = 0; e < 4; ++e) wq[e] = _mm256_and_si256(_mm256_srli_epi16(v, 2 * e), m3);
        const __m256i sc = nibble(w, s, h0 + h, false);
#ifdef __AVXVNNI__
        if constexpr (MR > 2) {
          const __m256i scp = scale_operand(sc);
          for (int i = 0; i < MR; ++i) {
            const int8_t* xq = xs[i][s / 2].qs + 16 * (s % 2);
            __m256i d = _mm256_setzero_si256();
            for (int e = 0; e < 4; ++e) d = _mm256_dpbusd_avx_epi32(d, wq[e], bcast4(xq + 4 * e));
            isum[h][i] = add_sub_block(isum[h][i], d, scp);
          }
        } else
#endif
        {
          const __m256i sc2 = _mm256_or_si256(sc, _mm256_slli_epi32(sc, 16));
          for (int i = 0; i < MR; ++i) {
            const int8_t* xq = xs[i][s / 2].qs + 16 * (s % 2);
            const __m256i p0 = _mm256_add_epi16(_mm256_maddubs_epi16(wq[0], bcast4(xq)),
                                                _mm256_maddubs_epi16(wq[1], bcast4(xq + 4)));
            const __m256i p1 = _mm256_add_epi16(_mm256_maddubs_epi16(wq[2], bcast4(xq + 8)),
                                                _mm256_maddubs_epi16(wq[3], bcast4(xq + 12)));
            isum[h][i] = _mm256_add_epi32(isum[h][i], _mm256_add_epi32(_mm256_madd_epi16(p0, sc2),
                                                                       _mm256_madd_epi16(p1, sc2)));
          }
        }
      }
    }
    alignas(32) int32_t pairs[MR][8];  // (Σx_2p, Σx_2p+1) as int16 pairs
    for (int i = 0; i < MR; ++i)
      _mm256_store_si256(reinterpret_cast<__m256i*>(pairs[i]), sub16_sum_pairs(xs[i]));
    for (int h = 0; h < NH; ++h) {
      __m256i imin[MR];
      for (int i = 0; i < MR; ++i) imin[i] = _mm256_setzero_si256();
      for (int p = 0; p < 8; ++p) {
        const __m256i mm =
            _mm256_or_si256(nibble(w, 2 * p, h0 + h, true),
                            _mm256_slli_epi32(nibble(w, 2 * p + 1, h0 + h, true), 16));
        for (int i = 0; i < MR; ++i) {
          imin[i] =
              _mm256_add_epi32(imin[i], _mm256_madd_epi16(mm, _mm256_set1_epi32(pairs[i][p])));
        }
      }
      add_with_mins<MR>(w, h0 + h, isum[h], imin, xs, acc[h]);
    }
  }
};

// Q2_KR16 ... Q6_KR16, IQ4_XSR16: tiles of up to kMr rows of x by one group of 16 weight rows.
template <int kMr>
void set_kquant_r16_entries(KernelTable& t) {
  matmul_entry(t, DType::kQ4_KR16) = {
      nullptr, ActKind::kQ8x256, kMr, 1, dispatch_r16_avx2<Q45KR16<false>, kMr>, 1, false};
  matmul_entry(t, DType::kQ5_KR16) = {
      nullptr, ActKind::kQ8x256, kMr, 1, dispatch_r16_avx2<Q45KR16<true>, kMr>, 1, false};
  matmul_entry(t, DType::kQ6_KR16) = {
      nullptr, ActKind::kQ8x256, kMr, 1, dispatch_r16_avx2<Sc16R16<false>, kMr>, 1, false};
  matmul_entry(t, DType::kQ3_KR16) = {
      nullptr, ActKind::kQ8x256, kMr, 1, dispatch_r16_avx2<Sc16R16<true>, kMr>, 1, false};
  matmul_entry(t, DType::kQ2_KR16) = {
      nullptr, ActKind::kQ8x256, kMr, 1, dispatch_r16_avx2<Q2KR16, kMr>, 1, false};
  matmul_entry(t, DType::kIQ4_XSR16) = {
      nullptr, ActKind::kQ8x256, kMr, 1, dispatch_r16_avx2<IQ4XSR16, kMr>, 1, false};
}

}  // namespace
}  // namespace runnel::kernels::cpu::avx2
