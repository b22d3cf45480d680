// AVX-512 helpers for the Q2_KR16 ... Q6_KR16 layouts (packed_kquants.h; the Q5 ones serve
// Q5_0R16 too), shared by the VNNI kernels (matmul_packed_kquants_avx512.cpp,
// matmul_packed_q2_k_avx512.cpp, matmul_packed_avx512.cpp); internal linkage, for files compiled
// with AVX-512 only (like simd_avx512.h).
#pragma once

#include <cstdint>

#include "kernels/cpu/packed_kquants.h"
#include "kernels/cpu/simd_avx512.h"

namespace runnel::kernels::cpu {
namespace {

// Bits from a where mask is set, else from b.
inline __m512i bitsel(__m512i mask, __m512i a, __m512i b) {
  return _mm512_ternarylogic_epi32(a, b, mask, 0xE4);
}

inline __m512i u8x16_epi32(const uint8_t* p) {
  return _mm512_cvtepu8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(p)));
}

inline __m512 f16x16(const uint8_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

// GGML's 6-bit unpacking of a Q4_KR16 super-block's scales for all 16 rows at once (w: the
// super-block's first byte): scm[16 j + r] = sc_j and scm[128 + 16 j + r] = m_j of row r.
inline void q4k_r16_scale_bytes(const uint8_t* w, uint8_t* scm) {
  const __m512i m4 = _mm512_set1_epi8(0x0f), m6 = _mm512_set1_epi8(0x3f);
  const uint8_t* s = w + kQ4KR16Scales;
  const __m512i s0 = _mm512_loadu_si512(s), s1 = _mm512_loadu_si512(s + 64);
  const __m512i s2 = _mm512_loadu_si512(s + 128);
  _mm512_storeu_si512(scm, _mm512_and_si512(s0, m6));
  _mm512_storeu_si512(scm + 64, _mm512_and_si512(bitsel(m4, s2, _mm512_srli_epi16(s0, 2)), m6));
  _mm512_storeu_si512(scm + 128, _mm512_and_si512(s1, m6));
  _mm512_storeu_si512(
      scm + 192,
      _mm512_and_si512(bitsel(m4, _mm512_srli_epi16(s2, 4), _mm512_srli_epi16(s1, 2)), m6));
}

// IQ4_XSR16's scales of a super-block (w: its first byte) for all 16 rows, as int8 (-32..31):
// sc[64 (j % 2) + 16 (j / 2) + r] = sc_j of row r. scales_l's low nibbles are the even sub-blocks'
// low 4 bits, its high nibbles the odd ones'; their high 2 bits come from scales_h's chunks spread
// to [byte 0, byte 0 >> 4, byte 1, byte 1 >> 4] (bits 0-1 for the even, 2-3 for the odd).
inline void iq4_xs_r16_scale_bytes(const uint8_t* w, int8_t* sc) {
  const __m512i m4 = _mm512_set1_epi8(0x0f), m30 = _mm512_set1_epi8(0x30);
  const __m512i sl = _mm512_loadu_si512(w + kIQ4XSR16Sl);
  const __m512i h =
      _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + kIQ4XSR16Sh)));
  const __m512i by4 = _mm512_set1_epi64(0x0004000400040004);
  const __m512i counts = _mm512_mask_blend_epi64(0xcc, _mm512_setzero_si512(), by4);
  const __m512i hs = _mm512_srlv_epi16(_mm512_shuffle_i64x2(h, h, _MM_SHUFFLE(1, 1, 0, 0)), counts);
  constexpr int kAandBorC = 0xEA;  // (A & B) | C
  const __m512i k32 = _mm512_set1_epi8(32);
  const __m512i ev =
      _mm512_ternarylogic_epi32(_mm512_slli_epi16(hs, 4), m30, _mm512_and_si512(sl, m4), kAandBorC);
  const __m512i od = _mm512_ternarylogic_epi32(
      _mm512_slli_epi16(hs, 2), m30, _mm512_and_si512(_mm512_srli_epi16(sl, 4), m4), kAandBorC);
  _mm512_storeu_si512(sc, _mm512_sub_epi8(ev, k32));
  _mm512_storeu_si512(sc + 64, _mm512_sub_epi8(od, k32));
}

// x's 4 bytes at p to every lane, read straight from memory (a vpbroadcastd load, no ALU uop).
using I32Alias = int32_t __attribute__((may_alias, aligned(1)));
inline __m512i bcast4(const int8_t* p) {
  return _mm512_set1_epi32(*reinterpret_cast<const I32Alias*>(p));
}

// x's blocks as seen by one group's dpbusd: hiding the pointer from the optimizer keeps each
// broadcast a load next to its vpdpbusd instead of GCC hoisting all MR x 8 broadcasts of a
// sub-block out of the group loop and spilling them to the stack as whole zmm.
inline const BlockQ8Act* per_group(const BlockQ8Act* p) {
  asm volatile("" : "+r"(p));
  return p;
}

// The f32 step of a super-block with mins (Q4_K, Q5_K, Q2_K), the scalar reference's order:
// acc = fma(float(isum), d · d_x, acc), then acc = fma(float(imin), dmin · −d_x, acc).
inline __m512 add_with_mins(__m512 acc, __m512i isum, __m512i imin, __m512 d, __m512 dmin,
                            float dx) {
  acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(d, _mm512_set1_ps(dx)), acc);
  return _mm512_fmadd_ps(_mm512_cvtepi32_ps(imin), _mm512_mul_ps(dmin, _mm512_set1_ps(-dx)), acc);
}

// x's sums of 32-element blocks 2p and 2p + 1 of a super-block (xs: its first block) as one
// int16 pair (|Σx| <= 32 · 127), the operand vpdpwssd multiplies Q4_K's mins by.
inline int32_t sum_pair(const BlockQ8Act* xs, int p) {
  const uint32_t lo = static_cast<uint16_t>(xs[2 * p].sum);
  const uint32_t hi = static_cast<uint16_t>(xs[2 * p + 1].sum);
  return static_cast<int32_t>(lo | hi << 16);
}

// Chunk c's 5-bit quants (Q5_KR16 and Q5_0R16: packed_kquants.h, packed.h) from its nibble pairs
// v and the sub-block's (block's) fifth bits f: lo = (v & 15) | (f >> c << 4 & 16), hi = (v >> 4 &
// 15) | (f >> c & 16). The 16-bit shifts move no bit that is kept across a byte (c <= 3).
inline void q5_chunk(__m512i v, __m512i f, int c, __m512i& lo, __m512i& hi) {
  const __m512i m15 = _mm512_set1_epi8(15), m16 = _mm512_set1_epi8(16);
  const __m512i fc = _mm512_srli_epi16(f, static_cast<unsigned>(c));
  constexpr int kAandBorC = 0xEA;  // (A & B) | C
  lo =
      _mm512_ternarylogic_epi32(v, m15, _mm512_and_si512(_mm512_slli_epi16(fc, 4), m16), kAandBorC);
  hi =
      _mm512_ternarylogic_epi32(_mm512_srli_epi16(v, 4), m15, _mm512_and_si512(fc, m16), kAandBorC);
}

// A Q5_KR16 sub-block's or Q5_0R16 block's quants (as r16_block_dots<5> reads them) as the 8-bit
// block of the expanded prefill layouts: chunk c the low-nibble elements of chunk c, chunk 4 + c
// the others.
inline void q5_to_bytes(const uint8_t* in, uint8_t* out) {
  const __m512i f = _mm512_loadu_si512(in);
  for (int c = 0; c < 4; ++c) {
    __m512i lo, hi;
    q5_chunk(_mm512_loadu_si512(in + 64 + 64 * c), f, c, lo, hi);
    _mm512_storeu_si512(out + 64 * c, lo);
    _mm512_storeu_si512(out + 64 * (4 + c), hi);
  }
}

// Sub-block s's 16 rows x 16 quants as four u8 vectors (packed_kquants.h: the low 6 bits of
// A, B, C and the three loads' top bits for the fourth).
inline void q6_unpack(const uint8_t* q, __m512i* wv) {
  const __m512i m2 = _mm512_set1_epi8(0x03), m4 = _mm512_set1_epi8(0x0f);
  const __m512i m6 = _mm512_set1_epi8(0x3f);
  const __m512i va = _mm512_loadu_si512(q), vb = _mm512_loadu_si512(q + 64);
  const __m512i vc = _mm512_loadu_si512(q + 128);
  const __m512i top = bitsel(m4, bitsel(m2, _mm512_srli_epi16(va, 6), _mm512_srli_epi16(vb, 4)),
                             _mm512_srli_epi16(vc, 2));
  wv[0] = _mm512_and_si512(va, m6);
  wv[1] = _mm512_and_si512(vb, m6);
  wv[2] = _mm512_and_si512(vc, m6);
  wv[3] = _mm512_and_si512(top, m6);
}

// Q3_KR16's sub-block 2p + h as q6_unpack's four u8 vectors (values 0..7), from its pair's 192
// bytes: bits 2v..2v+1 of A_h, and bit v + 4h of H as bit 2. The 16-bit shifts move no kept bit
// across a byte.
inline void q3_unpack(const uint8_t* pair, int h, __m512i* wv) {
  const __m512i m3 = _mm512_set1_epi8(3), m4 = _mm512_set1_epi8(4);
  const __m512i va = _mm512_loadu_si512(pair + 64 * h), vh = _mm512_loadu_si512(pair + 128);
  for (int v = 0; v < 4; ++v) {
    const int k = v + 4 * h - 2;  // H's bit to bit 2
    const __m512i hb = k >= 0 ? _mm512_srli_epi16(vh, static_cast<unsigned>(k))
                              : _mm512_slli_epi16(vh, static_cast<unsigned>(-k));
    wv[v] = _mm512_ternarylogic_epi32(_mm512_srli_epi16(va, static_cast<unsigned>(2 * v)), m3,
                                      _mm512_and_si512(hb, m4), 0xEA);  // (A & B) | C
  }
}

// Sub-block s (0..15) of a Q6_KR16 or Q3_KR16 (kQ3) super-block whose quants start at qs, as four
// u8 vectors (q, before its bias of 32 or 4 is taken off).
template <bool kQ3>
inline void sc16_unpack(const uint8_t* qs, int s, __m512i* wv) {
  if constexpr (kQ3) {
    q3_unpack(qs + 192 * (s / 2), s % 2, wv);
  } else {
    q6_unpack(qs + 192 * s, wv);
  }
}

// Sub-block s of the Q2_KR16 super-block at w: its 16 rows x 16 quants as four u8 vectors
// (elements 4v + t, v = 0..3: bits 2v..2v+1 of each byte). Each nibble's two fields by a vpshufb
// each, one shift a sub-block where a shift per field took four: the shifts share port 0 with
// vpdpbusd, the shuffles run on port 5. bench_kernels q2_k_r16, three alternating runs: --threads
// 1 --hot 18.5-19.4 -> 20.0-21.0 GB/s; --threads 2, 3072 x 1024 / 8192 x 2048 22.1-22.3 / 25.2-25.7
// -> 24.3-24.7 / 25.9-26.0 (Sapphire Rapids VM, session 35). Q3_K's fields so (and its third bits
// by table) read 3% more hot and no more from DRAM.
inline void q2_unpack(const uint8_t* w, int s, __m512i* wv) {
  const __m512i m4 = _mm512_set1_epi8(0x0f);
  const __m512i v = _mm512_loadu_si512(w + kQ2KR16Qs + 64 * s);
  const __m512i lo = _mm512_and_si512(v, m4), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
  const __m512i t0 =
      _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3));
  const __m512i t1 =
      _mm512_broadcast_i32x4(_mm_setr_epi8(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3));
  wv[0] = _mm512_shuffle_epi8(t0, lo);
  wv[1] = _mm512_shuffle_epi8(t1, lo);
  wv[2] = _mm512_shuffle_epi8(t0, hi);
  wv[3] = _mm512_shuffle_epi8(t1, hi);
}

// isum + d · sc per int32 lane, exactly, without vpmulld (2 port-0 µops, 10 cycles): d is split
// as dh · 256 + dl (dh = d >> 8 as int16, dl = d & 0xff as int16: one vpshufb puts d's bytes
// [b0, b1, b2] as [b0, 0, b1, b2]) and one vpdpwssd adds dl · sc + dh · (256 · sc). Needs
// |d| < 2^23 and sc in [-128, 127] (256 · sc then fits int16); sc_pair = scale_pair(sc). The sub-
// block dots of Q4_K (|d| <= 32 · 15 · 128), Q5_K (32 · 31 · 128), Q6_K (16 · 32 · 128), Q3_K
// (16 · 4 · 128) and Q2_K (16 · 3 · 128) qualify, and since the integer sum is exact either way
// the bits are the vpmulld form's.
inline __m512i scale_pair(__m512i sc) {
  return _mm512_or_si512(_mm512_and_si512(sc, _mm512_set1_epi32(0xffff)),
                         _mm512_slli_epi32(sc, 24));
}
inline __m512i add_scaled(__m512i isum, __m512i d, __m512i sc_pair) {
  const __m512i split = _mm512_set4_epi32(0x0e0d800c, 0x0a098008, 0x06058004, 0x02018000);
  return _mm512_dpwssd_epi32(isum, _mm512_shuffle_epi8(d, split), sc_pair);
}

// isum + d · sc per int32 lane, exactly, when d fits int16: sc16 holds sc (|sc| < 2^15) in each
// lane's low int16 and 0 in its high one, so one vpdpwssd adds lo(d) · sc + hi(d) · 0 = d · sc.
// Q2_K's sub-block dots qualify (|d| <= 16 · 3 · 128) and Q3_K's (16 · 4 · 128, its −4 · Σx start
// included), Q6_K's (16 · 32 · 128) do not. One µop where add_scaled and scale_pair take five.
inline __m512i add_scaled16(__m512i isum, __m512i d, __m512i sc16) {
  return _mm512_dpwssd_epi32(isum, d, sc16);
}

// One row of x against kSub 16-element sub-blocks (s0, s0 + 1, ...) of NG groups, Q6_K / Q3_K /
// Q2_K style: per sub-block h and group g a dot from start[h] over its four unpacked weight
// vectors wv[h][g] (x's bytes from xq[h]), then isum[g] += sc[h][g] · dot: add_scaled with sc in
// scale_pair form, or add_scaled16 with sc in its form when kD16 (the dots fit int16).
template <int kSub, int NG, bool kD16 = false>
inline void add_sub16_dots(const __m512i (&wv)[kSub][NG][4], const __m512i (&sc)[kSub][NG],
                           const int8_t* const (&xq)[kSub], const __m512i (&start)[kSub],
                           __m512i (&isum)[NG]) {
  __m512i d[kSub][NG];
  for (int h = 0; h < kSub; ++h)
    for (int g = 0; g < NG; ++g) d[h][g] = start[h];
  for (int v = 0; v < 4; ++v) {
    for (int h = 0; h < kSub; ++h) {
      const __m512i xv = bcast4(xq[h] + 4 * v);
      for (int g = 0; g < NG; ++g) d[h][g] = _mm512_dpbusd_epi32(d[h][g], wv[h][g][v], xv);
    }
  }
  for (int h = 0; h < kSub; ++h)
    for (int g = 0; g < NG; ++g) {
      isum[g] =
          kD16 ? add_scaled16(isum[g], d[h][g], sc[h][g]) : add_scaled(isum[g], d[h][g], sc[h][g]);
    }
}

}  // namespace
}  // namespace runnel::kernels::cpu
