// The integer core shared by the AVX2 kernels over r16 layouts whose 32-element blocks hold
// unsigned bytes (Q8_0R16, Q4_0R16: packed.h; mlx8_r16, mlx4_r16: packed_mlx.h), and the tile
// loop that the K-quant kernels use too; for *_avx2.cpp files and the avxvnni variant's
// matmul_packed_avxvnni.cpp only (internal linkage: each gets its own copy, built with its
// flags). AVX2 has no vpdpbusd (AVX-VNNI has: r16_half_dots_vnni below). A 64-byte chunk of a block
// is 16 rows x 4 bytes of k, and each half (rows 0-7, 8-15) is one ymm whose 32-bit lanes are rows.
// Every weight byte is split into nibbles and multiplied with x's int8 quants by vpmaddubsw
// (unsigned x signed bytes, adjacent pairs summed into int16). That is exact as long as no int16
// lane passes 32767: per lane a block adds at most 16 products of a nibble (<= 15) and |q_x| <=
// 127, 16·15·127 = 30480 (5-bit quants, <= 31: the low and high chunks' 8 products each, 31496,
// are widened apart). One vpmaddwd per block then widens the pairs to each row's int32 dot (the
// high nibbles of 8-bit bytes times 16), so the dot is the exact integer the scalar references
// compute.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/prefetch.h"

namespace runnel::kernels::cpu::avx2 {
namespace {

inline __m256i bcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

// Chunk c's fifth bits (Q5_0R16 / Q5_KR16: bit c for the low-nibble element, bit 4 + c for the
// high one; f: the half's 32 bytes of them) or-ed into its quants vl and vh as bit 4. The 16-bit
// shifts move no kept bit across a byte (c <= 3).
inline void add_fifth_bits(const uint8_t* f, int c, __m256i& vl, __m256i& vh) {
  const __m256i fifth = _mm256_set1_epi8(0x10);
  const __m256i fc = _mm256_srli_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(f)), c);
  vl = _mm256_or_si256(vl, _mm256_and_si256(_mm256_slli_epi16(fc, 4), fifth));
  vh = _mm256_or_si256(vh, _mm256_and_si256(fc, fifth));
}

#ifdef __AVXVNNI__
// r16_half_dots with AVX-VNNI (the avxvnni variant's copy of this header, built with -mavxvnni):
// vpdpbusd adds each row's 4 unsigned-by-signed byte products straight into its int32 lane,
// exactly, so 8-bit weights go in whole (8 vpdpbusd a half block, where vpmaddubsw took 16 plus
// their adds and widening) and 4-bit ones as nibbles. The same integers, so the same bits after.
// Decode tiles (1-2 rows) keep two accumulators a row, for two dependency chains: 4-bit weights
// their high nibbles in place (16 times their value, shifted down once at the end: exact, the sum
// is a multiple of 16), 8-bit ones even and odd chunks. Prefill tiles keep one a row, so 6 rows
// of x fit in the 16 registers.
template <int kBits, int MR>
inline void r16_half_dots_vnni(const uint8_t* q, int h, const BlockQ8Act* const* x,
                               __m256i (&dot)[MR]) {
  constexpr bool kSplit = MR <= 2;
  constexpr bool kInPlace = kSplit && kBits == 4;  // high nibbles left at 16 times their value
  __m256i lo[MR], hi[MR];
  for (int i = 0; i < MR; ++i) lo[i] = hi[i] = _mm256_setzero_si256();
  if constexpr (kBits != 8) {
    const __m256i nib = _mm256_set1_epi8(0x0f);
    const uint8_t* nq = q + (kBits == 5 ? 64 : 0);
    for (int c = 0; c < 4; ++c) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(nq + 64 * c + 32 * h));
      __m256i vl = _mm256_and_si256(v, nib);
      __m256i vh =
          kInPlace ? _mm256_andnot_si256(nib, v) : _mm256_and_si256(_mm256_srli_epi16(v, 4), nib);
      if constexpr (kBits == 5) add_fifth_bits(q + 32 * h, c, vl, vh);
      for (int i = 0; i < MR; ++i) {
        lo[i] = _mm256_dpbusd_avx_epi32(lo[i], vl, bcast4(x[i]->qs + 4 * c));
        __m256i& acc = kSplit ? hi[i] : lo[i];
        acc = _mm256_dpbusd_avx_epi32(acc, vh, bcast4(x[i]->qs + 16 + 4 * c));
      }
    }
    for (int i = 0; i < MR; ++i) {
      dot[i] = !kSplit    ? lo[i]
               : kInPlace ? _mm256_add_epi32(lo[i], _mm256_srai_epi32(hi[i], 4))
                          : _mm256_add_epi32(lo[i], hi[i]);
    }
  } else {
    for (int c = 0; c < 8; ++c) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 64 * c + 32 * h));
      for (int i = 0; i < MR; ++i) {
        __m256i& acc = kSplit && c % 2 ? hi[i] : lo[i];
        acc = _mm256_dpbusd_avx_epi32(acc, v, bcast4(x[i]->qs + 4 * c));
      }
    }
    for (int i = 0; i < MR; ++i) dot[i] = kSplit ? _mm256_add_epi32(lo[i], hi[i]) : lo[i];
  }
}
#endif

// dot[i] = Σ_e q[row][e] · x[i]->qs[e] for rows 8h..8h+7 of one block whose quants start at q:
// kBits 8: 512 bytes of bytes; 4: 256 of nibble pairs (byte = q[4c+j] | q[4c+16+j] << 4); 5: 64
// bytes of fifth bits, then such nibble pairs (Q5_0R16).
template <int kBits, int MR>
inline void r16_half_dots(const uint8_t* q, int h, const BlockQ8Act* const* x, __m256i (&dot)[MR]) {
  static_assert(kBits == 4 || kBits == 5 || kBits == 8);
#ifdef __AVXVNNI__
  r16_half_dots_vnni<kBits, MR>(q, h, x, dot);
#else
  constexpr bool kQ4 = kBits != 8;
  const __m256i nib = _mm256_set1_epi8(0x0f);
  // lo: Σ low-nibble products; hi: Σ high-nibble products (4-bit: elements 16 + 4c + j, summed
  // with lo; 8-bit: the upper 4 bits of the same element, worth 16 each).
  __m256i lo[MR], hi[MR];
  for (int i = 0; i < MR; ++i) lo[i] = hi[i] = _mm256_setzero_si256();
  constexpr int kChunks = kQ4 ? 4 : 8;
  const uint8_t* nq = q + (kBits == 5 ? 64 : 0);
  for (int c = 0; c < kChunks; ++c) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(nq + 64 * c + 32 * h));
    __m256i vl = _mm256_and_si256(v, nib);
    __m256i vh = _mm256_and_si256(_mm256_srli_epi16(v, 4), nib);
    if constexpr (kBits == 5) add_fifth_bits(q + 32 * h, c, vl, vh);
    for (int i = 0; i < MR; ++i) {
      if constexpr (kQ4) {
        lo[i] = _mm256_add_epi16(lo[i], _mm256_maddubs_epi16(vl, bcast4(x[i]->qs + 4 * c)));
        hi[i] = _mm256_add_epi16(hi[i], _mm256_maddubs_epi16(vh, bcast4(x[i]->qs + 16 + 4 * c)));
      } else {
        const __m256i xb = bcast4(x[i]->qs + 4 * c);
        lo[i] = _mm256_add_epi16(lo[i], _mm256_maddubs_epi16(vl, xb));
        hi[i] = _mm256_add_epi16(hi[i], _mm256_maddubs_epi16(vh, xb));
      }
    }
  }
  const __m256i ones = _mm256_set1_epi16(1);
  for (int i = 0; i < MR; ++i) {
    if constexpr (kBits == 5) {
      dot[i] = _mm256_add_epi32(_mm256_madd_epi16(lo[i], ones), _mm256_madd_epi16(hi[i], ones));
    } else if constexpr (kQ4) {
      dot[i] = _mm256_madd_epi16(_mm256_add_epi16(lo[i], hi[i]), ones);
    } else {
      dot[i] = _mm256_add_epi32(_mm256_madd_epi16(lo[i], ones),
                                _mm256_madd_epi16(hi[i], _mm256_set1_epi16(16)));
    }
  }
#endif
}

// dot[i] = Σ_e kIQ4Values[q[row][e]] · x[i]->qs[e] for rows 8h..8h+7 of one block of IQ4 nibble
// pairs (IQ4_NLR16's block, an IQ4_XSR16 sub-block: Q4_0R16's 256 bytes), exactly. With AVX-VNNI
// each nibble is looked up as the byte kIQ4Values[q] + 128 (vpshufb) for vpdpbusd, and the dot
// corrected by -128 · Σq_x. vpmaddubsw would saturate on such bytes (two products up to 241 · 127),
// so AVX2 looks up the signed values instead and multiplies their magnitudes by x's quants with
// the values' signs (vpsignb): pairs of at most 2 · 127 · 127 = 32258, widened at once.
template <int MR>
inline void r16_half_dots_iq4(const uint8_t* q, int h, const BlockQ8Act* const* x,
                              __m256i (&dot)[MR]) {
  const __m256i nib = _mm256_set1_epi8(0x0f);
#ifdef __AVXVNNI__
  const __m256i table = _mm256_broadcastsi128_si256(
      _mm_setr_epi8(1, 24, 45, 63, 79, 93, 106, 118, static_cast<char>(129), static_cast<char>(141),
                    static_cast<char>(153), static_cast<char>(166), static_cast<char>(181),
                    static_cast<char>(197), static_cast<char>(217), static_cast<char>(241)));
  for (int i = 0; i < MR; ++i) dot[i] = _mm256_set1_epi32(-128 * x[i]->sum);
#else
  const __m256i table = _mm256_broadcastsi128_si256(
      _mm_setr_epi8(-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113));
  const __m256i ones = _mm256_set1_epi16(1);
  for (int i = 0; i < MR; ++i) dot[i] = _mm256_setzero_si256();
#endif
  for (int c = 0; c < 4; ++c) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 64 * c + 32 * h));
    const __m256i wl = _mm256_shuffle_epi8(table, _mm256_and_si256(v, nib));
    const __m256i wh = _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srli_epi16(v, 4), nib));
#ifndef __AVXVNNI__
    const __m256i al = _mm256_abs_epi8(wl), ah = _mm256_abs_epi8(wh);
#endif
    for (int i = 0; i < MR; ++i) {
      const __m256i xl = bcast4(x[i]->qs + 4 * c), xh = bcast4(x[i]->qs + 16 + 4 * c);
#ifdef __AVXVNNI__
      dot[i] = _mm256_dpbusd_avx_epi32(dot[i], wl, xl);
      dot[i] = _mm256_dpbusd_avx_epi32(dot[i], wh, xh);
#else
      const __m256i pl = _mm256_maddubs_epi16(al, _mm256_sign_epi8(xl, wl));
      const __m256i ph = _mm256_maddubs_epi16(ah, _mm256_sign_epi8(xh, wh));
      dot[i] = _mm256_add_epi32(
          dot[i], _mm256_add_epi32(_mm256_madd_epi16(pl, ones), _mm256_madd_epi16(ph, ones)));
#endif
    }
  }
}

// One call's tile: MR rows of x by one group of 16 weight rows, as two halves of 8 rows (ymm
// lanes), K::template block<MR>(a, x, b, nb, h, acc) adding block b's terms for half h (a block
// is K::kElems elements of k: 32, or a K-quant super-block of 256). Decode calls
// K::template both_halves<MR>(a, x, b, nb, acc0, acc1) instead where K has it.
template <class K, int MR>
void run_r16_tile(const PackedGemm& a) {
  const size_t nb = a.k / K::kElems;
  const BlockQ8Act* x[MR];
  for (int i = 0; i < MR; ++i) x[i] = reinterpret_cast<const BlockQ8Act*>(a.x + i * a.x_stride);
  if constexpr (MR <= 2) {
    // Decode: both halves of each block in turn, one pass over the group's bytes (two passes
    // measured 1.3-1.5x slower from DRAM).
    __m256 acc0[MR], acc1[MR];
    for (int i = 0; i < MR; ++i) acc0[i] = acc1[i] = _mm256_setzero_ps();
    const size_t block_bytes = a.w_group_bytes / nb;  // every layout's blocks are equal in size
    for (size_t b = 0; b < nb; ++b) {
      if constexpr (requires { K::template both_halves<MR>(a, x, b, nb, acc0, acc1); }) {
        // A K-quant super-block: the kernel takes both halves sub-block by sub-block and
        // spreads its prefetches over them (prefetch_ahead_part).
        K::template both_halves<MR>(a, x, b, nb, acc0, acc1);
      } else {
        if (a.stream) prefetch_ahead(a.w + b * block_bytes, block_bytes);
        K::template block<MR>(a, x, b, nb, 0, acc0);
        K::template block<MR>(a, x, b, nb, 1, acc1);
      }
    }
    for (int i = 0; i < MR; ++i) {
      _mm256_storeu_ps(a.y + i * a.y_stride, acc0[i]);
      _mm256_storeu_ps(a.y + i * a.y_stride + 8, acc1[i]);
    }
  } else {
    // Prefill tiles: rows 0-7 over all of k, then rows 8-15 (the group is in L2 by then), so
    // only MR f32 accumulators are live next to the 2·MR int16 sums (16 ymm registers).
    for (int h = 0; h < 2; ++h) {
      __m256 acc[MR];
      for (int i = 0; i < MR; ++i) acc[i] = _mm256_setzero_ps();
      for (size_t b = 0; b < nb; ++b) K::template block<MR>(a, x, b, nb, h, acc);
      for (int i = 0; i < MR; ++i) _mm256_storeu_ps(a.y + i * a.y_stride + 8 * h, acc[i]);
    }
  }
}

// Calls run_r16_tile<K, mr>(a) for the call's mr (1..MR).
template <class K, int MR>
void dispatch_r16_avx2(const PackedGemm& a) {
  if constexpr (MR > 1) {
    if (a.mr < MR) return dispatch_r16_avx2<K, MR - 1>(a);
  }
  RUNNEL_ASSERT(a.mr == MR && "packed tile too big");
  run_r16_tile<K, MR>(a);
}

}  // namespace
}  // namespace runnel::kernels::cpu::avx2
