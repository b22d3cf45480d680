// The integer core shared by the AVX-512 kernels over r16 layouts whose 32-element blocks hold
// unsigned bytes (Q8_0R16, Q4_0R16: packed.h; mlx8_r16, mlx4_r16: packed_mlx.h), for
// *_avx512.cpp files only (internal linkage, like simd_avx512.h). One zmm of weights is 16 rows
// x 4 bytes of k; x's 4 bytes are broadcast to every lane and vpdpbusd adds the 4 products into
// each row's int32 lane, so a block is 8 dpbusd per 16 rows (4-bit: 4 loads, each unpacked to a
// low and a high half). The kernels differ only in how they start and scale each block's dot.
#pragma once

#include <cstring>

#include "base/assert.h"
#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/packed_kquants_avx512.h"  // q5_chunk
#include "kernels/cpu/prefetch.h"
#include "kernels/cpu/simd_avx512.h"

namespace runnel::kernels::cpu::avx512 {
namespace {

// kIQ4Values[q] + 128 at byte q of every 16-byte lane (vpshufb's table for IQ4 nibbles).
inline __m512i iq4_table() {
  return _mm512_broadcast_i32x4(
      _mm_setr_epi8(1, 24, 45, 63, 79, 93, 106, 118, static_cast<char>(129), static_cast<char>(141),
                    static_cast<char>(153), static_cast<char>(166), static_cast<char>(181),
                    static_cast<char>(197), static_cast<char>(217), static_cast<char>(241)));
}

inline int32_t load_i32(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// dot[i][g] += Σ_e q[g][row][e] · x[i].qs[e] for one block: q points at the block's quants in
// group 0 (group g at q + g * gb): kBits 8, 512 bytes of bytes; 4, 256 of nibble pairs; 5, a
// Q5_0R16 block or Q5_KR16 sub-block (64 bytes of fifth bits, then 256 of nibble pairs).
// A block's 8 dpbusd into one accumulator are a dependency chain (4 cycles each on Zen 4), and
// small tiles (decode: 1 x 1) have too few chains to hide it: they spread the block over
// kSplit = 4 / (MR · NG) accumulators, summed at the end. Integer sums are exact, so the result
// is the same in any order. kPf (decode's stream): each 64-byte load is preceded by the
// prefetch of the lines ahead of it (prefetch_line_ahead). kNl (kBits 4: IQ4_NLR16, IQ4_XSR16):
// each nibble q becomes the byte kIQ4Values[q] + 128 (one vpshufb), so the caller starts the dot
// at -128 · Σq_x.
template <int kBits, int MR, int NG, bool kPf = false, bool kNl = false>
inline void r16_block_dots(const uint8_t* q, size_t gb, const BlockQ8Act* const* x,
                           __m512i (&dot)[MR][NG]) {
  constexpr int kSplit = MR * NG >= 4 ? 1 : 4 / (MR * NG);
  __m512i part[kSplit][MR][NG];
  for (int i = 0; i < MR; ++i) {
    for (int g = 0; g < NG; ++g) {
      part[0][i][g] = dot[i][g];
      for (int s = 1; s < kSplit; ++s) part[s][i][g] = _mm512_setzero_si512();
    }
  }
  static_assert(kBits == 4 || kBits == 5 || kBits == 8);
  static_assert(!kNl || kBits == 4);
  if constexpr (kBits != 8) {
    const __m512i low = _mm512_set1_epi8(0x0f);
    const __m512i table = kNl ? iq4_table() : low;
    __m512i f[NG];
    if constexpr (kBits == 5) {
      for (int g = 0; g < NG; ++g) {
        if constexpr (kPf) prefetch_line_ahead(q + g * gb);
        f[g] = _mm512_loadu_si512(q + g * gb);
      }
    }
    const uint8_t* nib = q + (kBits == 5 ? 64 : 0);
    for (int c = 0; c < 4; ++c) {
      __m512i lo[NG], hi[NG];
      for (int g = 0; g < NG; ++g) {
        if constexpr (kPf) prefetch_line_ahead(nib + g * gb + 64 * c);
        const __m512i v = _mm512_loadu_si512(nib + g * gb + 64 * c);
        if constexpr (kBits == 5) {
          q5_chunk(v, f[g], c, lo[g], hi[g]);
        } else if constexpr (kNl) {
          lo[g] = _mm512_shuffle_epi8(table, _mm512_and_si512(v, low));
          hi[g] = _mm512_shuffle_epi8(table, _mm512_and_si512(_mm512_srli_epi16(v, 4), low));
        } else {
          lo[g] = _mm512_and_si512(v, low);
          // With accumulators of their own, the high nibbles stay in place (16 h) and their sum
          // is shifted down once at the end (exact: it is a multiple of 16).
          hi[g] = kSplit >= 2 ? _mm512_andnot_si512(low, v)
                              : _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
        }
      }
      constexpr int kPairs = kSplit >= 2 ? kSplit / 2 : 1;  // accumulator pairs (lo, hi)
      const int sl = kSplit >= 2 ? 2 * (c % kPairs) : 0, sh = kSplit >= 2 ? sl + 1 : 0;
      for (int i = 0; i < MR; ++i) {
        const __m512i xl = _mm512_set1_epi32(load_i32(x[i]->qs + 4 * c));
        const __m512i xh = _mm512_set1_epi32(load_i32(x[i]->qs + 16 + 4 * c));
        for (int g = 0; g < NG; ++g) {
          part[sl][i][g] = _mm512_dpbusd_epi32(part[sl][i][g], lo[g], xl);
          part[sh][i][g] = _mm512_dpbusd_epi32(part[sh][i][g], hi[g], xh);
        }
      }
    }
  } else {
    for (int c = 0; c < 8; ++c) {
      __m512i wv[NG];
      for (int g = 0; g < NG; ++g) {
        if constexpr (kPf) prefetch_line_ahead(q + g * gb + 64 * c);
        wv[g] = _mm512_loadu_si512(q + g * gb + 64 * c);
      }
      const int s = c % kSplit;
      for (int i = 0; i < MR; ++i) {
        const __m512i xb = _mm512_set1_epi32(load_i32(x[i]->qs + 4 * c));
        for (int g = 0; g < NG; ++g) part[s][i][g] = _mm512_dpbusd_epi32(part[s][i][g], wv[g], xb);
      }
    }
  }
  for (int i = 0; i < MR; ++i) {
    for (int g = 0; g < NG; ++g) {
      if constexpr (kBits == 4 && !kNl && kSplit == 4) {  // lo in 0 and 2, 16 hi in 1 and 3
        dot[i][g] =
            _mm512_add_epi32(_mm512_add_epi32(part[0][i][g], part[2][i][g]),
                             _mm512_srai_epi32(_mm512_add_epi32(part[1][i][g], part[3][i][g]), 4));
      } else if constexpr (kBits == 4 && !kNl && kSplit == 2) {
        dot[i][g] = _mm512_add_epi32(part[0][i][g], _mm512_srai_epi32(part[1][i][g], 4));
      } else if constexpr (kSplit == 4) {
        dot[i][g] = _mm512_add_epi32(_mm512_add_epi32(part[0][i][g], part[1][i][g]),
                                     _mm512_add_epi32(part[2][i][g], part[3][i][g]));
      } else if constexpr (kSplit == 2) {
        dot[i][g] = _mm512_add_epi32(part[0][i][g], part[1][i][g]);
      } else {
        dot[i][g] = part[0][i][g];
      }
    }
  }
}

// One 4-bit block's quants (256 bytes: 4 chunks of nibble pairs, as r16_block_dots<4> reads
// them) as the 8-bit block r16_block_dots<8> reads (512 bytes: chunk c the low nibbles of
// chunk c, chunk 4 + c the high ones), for the expanded prefill layouts (MatmulEntry::expand).
// kNl: each nibble q as kIQ4Values[q] + 128 (IQ4_NLR16, IQ4_XSR16), so a Q8_0R16-style byte.
template <bool kNl = false>
inline void nibbles_to_bytes(const uint8_t* in, uint8_t* out) {
  const __m512i low = _mm512_set1_epi8(0x0f), table = kNl ? iq4_table() : low;
  for (int c = 0; c < 4; ++c) {
    const __m512i v = _mm512_loadu_si512(in + 64 * c);
    __m512i lo = _mm512_and_si512(v, low), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
    if constexpr (kNl) {
      lo = _mm512_shuffle_epi8(table, lo);
      hi = _mm512_shuffle_epi8(table, hi);
    }
    _mm512_storeu_si512(out + 64 * c, lo);
    _mm512_storeu_si512(out + 64 * (4 + c), hi);
  }
}

// The largest register tile (MR rows of x by NG groups) of the kernels over these layouts: 8 x 2
// since session 21 (4 x 3 before). Per block a group's weight vectors (and Q4's nibble unpacking)
// feed MR dpbusd each, so 8 rows amortize them twice as well as 4; the 16 f32 sums then no longer
// all fit in registers with the 16 dots, and GCC keeps a few on the stack (one load and store per
// block each), which costs less. Measured on an Emerald Rapids VM, bench_kernels --gemm --threads 1
// (m = 512, 2048 and 8192 x 2048, three alternating runs of two builds): Q8_0 336-345 / 318-332 ->
// 375-379 / 355-356 GFLOP/s, Q4_0 315-325 / 316-318 -> 352-367 / 323-344, MLX within noise (8-bit
// +0-8%); 6 x 2 and 7 x 2 in between, 5 x 2 and 10 x 2 below 4 x 3. The model's pp512, 4 x 3 and
// 8 x 2 alternated prompt by prompt in one process (5 each): llama1b Q4_0 1.070, Q8_0 1.024,
// qwen06b Q8_0 1.012, Q4_0 0.999.
constexpr int kR16Mr = 8, kR16Ng = 2;

// Calls K::template run<mr, ng>(a) for the call's tile, any mr <= MR and ng <= NG.
template <class K, int MR = kR16Mr, int NG = kR16Ng>
void dispatch_r16_tile(const PackedGemm& a) {
  if constexpr (MR > 1) {
    if (a.mr < MR) return dispatch_r16_tile<K, MR - 1, NG>(a);
  }
  if constexpr (NG > 1) {
    if (a.ng < NG) return dispatch_r16_tile<K, MR, NG - 1>(a);
  }
  RUNNEL_ASSERT(a.mr == MR && a.ng == NG && "packed tile too big");
  K::template run<MR, NG>(a);
}

}  // namespace
}  // namespace runnel::kernels::cpu::avx512
