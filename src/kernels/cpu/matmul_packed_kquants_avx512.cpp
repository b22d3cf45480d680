// AVX-512 VNNI kernels for Q3_KR16 / Q4_KR16 / Q5_KR16 / Q6_KR16 (packed_kquants.h), equal bit
// for bit to the scalar reference in packed_kquants.cpp: each zmm of weights is 16 rows x 4
// k-positions, x's 4 bytes are broadcast and vpdpbusd sums into each row's int32 lane. x comes
// from quantize_q8_256 (one d per 256 elements), so a super-block's scaled dots are summed in int32
// and the f32 math is done once per super-block, in the reference's order.
// Q4_K: the 16 rows' 6-bit scales and mins are decoded once per super-block with byte ops on 3
// zmm; the quants are Q4_0R16 blocks (packed_dot_avx512.h's core, each broadcast shared by the NG
// groups); isum += sc_j · dot_j (add_scaled: vpshufb + vpdpwssd), and Σ m_j · Σx_j is 4 vpdpwssd
// on (m, m) / (Σx, Σx) int16 pairs. Q5_K is the same with each chunk's fifth bits merged in
// (q5_chunk), and its expanded copy is Q4_K's with a 5-bit quant per byte.
// Q6_K: three loads give four 6-bit vectors (the fourth from the three loads' top bits), 4 dpbusd
// per 16 elements with −32·Σx as the dot's start value, isum += sc_s · dot_s (add_scaled). Q3_K
// is the same with two loads per sub-block (q3_unpack), −4·Σx, and add_scaled16 (its dots fit
// int16).
// Prefill reads them from an expanded copy of each slice instead (q45_k_expand, sc16_expand):
// quants as u8, scales ready, made once per slice of NG groups for all the tiles of x that
// sweep it.
// Register tile as in matmul_packed_avx512.cpp: MR rows of x by NG groups of 16 weight rows.
#include <cstring>

#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/packed.h"
#include "kernels/cpu/packed_dot_avx512.h"
#include "kernels/cpu/packed_kquants.h"
#include "kernels/cpu/packed_kquants_avx512.h"
#include "kernels/cpu/prefetch.h"
#include "kernels/cpu/simd_avx512.h"

namespace runnel::kernels::cpu::avx512 {
namespace {

// A Q4_KR16 super-block's header for one group (w: its first byte): d and dmin, sc_j as int32
// lanes in scale_pair form, and (m_2p, m_2p+1) as int16 pairs for vpdpwssd.
inline void q4k_header(const uint8_t* w, __m512& dv, __m512& dminv, __m512i* isc, __m512i* mpair) {
  dv = f16x16(w);
  dminv = f16x16(w + kQ4KR16Dmin);
  alignas(64) uint8_t scm[256];
  q4k_r16_scale_bytes(w, scm);
  for (int j = 0; j < 8; ++j) isc[j] = scale_pair(u8x16_epi32(scm + 16 * j));
  for (int p = 0; p < 4; ++p) {
    mpair[p] = _mm512_or_si512(u8x16_epi32(scm + 128 + 32 * p),
                               _mm512_slli_epi32(u8x16_epi32(scm + 144 + 32 * p), 16));
  }
}

// Prefill's expanded Q4_K (MatmulEntry::expand), per group and super-block: d, dmin (16 f32
// each), the 4 mpair and 8 isc vectors of q4k_header, then each 32-element sub-block's quants as
// u8 in the Q8_0R16 chunk order (chunk c: k-positions 4c..4c+3), so a tile runs the 8-bit dot
// core with no nibble unpacking and no scale decoding. bench_kernels --gemm --threads 1 --type
// q4_k_r16 (2048 / 8192 x 2048): 352-365 / 339-340 -> 413-434 / 393-414 GFLOP/s (6x2 tiles; 8x2:
// 430-439 / 405-408); pp512 llama1b Q4_K 1.12x, qwen06b 1.08x, Q4_K_M 1.07x / 1.09x (Emerald
// Rapids VM, session 22).
constexpr size_t kQ4XMpair = 128, kQ4XIsc = kQ4XMpair + 4 * 64, kQ4XQs = kQ4XIsc + 8 * 64;
constexpr size_t kQ4XSb = kQ4XQs + 8 * 512;

size_t q4_k_expanded_bytes(size_t k) { return k / 256 * kQ4XSb; }

// Q4_K's and Q5_K's expanded layouts are the same (their quants as bytes).
template <bool kQ5>
void q45_k_expand(const uint8_t* w, size_t gb, size_t k, int ng, uint8_t* out) {
  const size_t nsb = k / 256;
  for (int g = 0; g < ng; ++g) {
    for (size_t sb = 0; sb < nsb; ++sb) {
      const uint8_t* src = w + g * gb + sb * (kQ5 ? kQ5KR16SbBytes : kQ4KR16SbBytes);
      uint8_t* o = out + (g * nsb + sb) * kQ4XSb;
      __m512 dv, dminv;
      __m512i isc[8], mpair[4];
      q4k_header(src, dv, dminv, isc, mpair);
      _mm512_store_ps(o, dv);
      _mm512_store_ps(o + 64, dminv);
      for (int p = 0; p < 4; ++p) _mm512_store_si512(o + kQ4XMpair + 64 * p, mpair[p]);
      for (int j = 0; j < 8; ++j) _mm512_store_si512(o + kQ4XIsc + 64 * j, isc[j]);
      for (int j = 0; j < 8; ++j) {
        if constexpr (kQ5) {
          q5_to_bytes(src + kQ4KR16Qs + kQ5KR16Sub * j, o + kQ4XQs + 512 * j);
        } else {
          nibbles_to_bytes(src + kQ4KR16Qs + 256 * j, o + kQ4XQs + 512 * j);
        }
      }
    }
  }
}

// kX: a.w is the expanded layout above (prefill), else the packed Q4_KR16 (Q5_KR16: kQ5) one.
template <bool kX, bool kQ5, int MR, int NG>
void gemm_q4_k(const PackedGemm& a) {
  const size_t nsb = a.k / 256, gb = a.w_group_bytes;
  constexpr size_t kSbBytes = kQ5 ? kQ5KR16SbBytes : kQ4KR16SbBytes;
  const BlockQ8Act* x[MR];
  for (int i = 0; i < MR; ++i) x[i] = reinterpret_cast<const BlockQ8Act*>(a.x + i * a.x_stride);
  __m512 acc[MR][NG];
  for (int i = 0; i < MR; ++i)
    for (int g = 0; g < NG; ++g) acc[i][g] = _mm512_setzero_ps();
  for (size_t sb = 0; sb < nsb; ++sb) {
    const uint8_t* w = a.w + sb * (kX ? kQ4XSb : kSbBytes);
    // Decode of Q4_K (one group, streamed): each line prefetched just before it is read, the
    // header's here, the quants' by r16_block_dots (prefetch_line_ahead), not in
    // prefetch_ahead_part's bursts of 4-5 lines per sub-block: bench_kernels --threads 2 --type
    // q4_k_r16, three alternating runs, 8192 x 2048 29.5-30.8 -> 33-34.6 GB/s, 3072 x 1024 equal
    // (Sapphire Rapids VM, probe 38). Q5_K read 1-4% less so, and Q6_K / Q3_K with their three
    // lines per sub-block so prefetched 1-4% less: they keep prefetch_ahead_part.
    constexpr bool kLines = MR == 1 && NG == 1 && !kX && !kQ5;
    const bool lines = kLines && a.stream;
    if (lines) {
      for (size_t o = 0; o < kQ4KR16Qs; o += 64) prefetch_line_ahead(w + o);
    }
    // The header is read first, so a decode pass touches the lines in ascending order (see the
    // Q6_K kernel). Expanded, it is read where it is used.
    __m512i isc[NG][kX ? 1 : 8], mpair[NG][kX ? 1 : 4];
    __m512 dv[NG], dminv[NG];
    for (int g = 0; g < NG; ++g) {
      if constexpr (kX) {
        dv[g] = _mm512_load_ps(w + g * gb);
        dminv[g] = _mm512_load_ps(w + g * gb + 64);
      } else {
        q4k_header(w + g * gb, dv[g], dminv[g], isc[g], mpair[g]);
      }
    }
    __m512i isum[MR][NG];
    for (int i = 0; i < MR; ++i)
      for (int g = 0; g < NG; ++g) isum[i][g] = _mm512_setzero_si512();
    for (int j = 0; j < 8; ++j) {
      // Decode's prefetches (one group per call, matmul.cpp), spread over the sub-blocks: 27-28
      // GB/s from DRAM where one burst of 36 per super-block read 25-26 (Emerald Rapids VM, probe
      // 33 GB/s; bench_kernels --threads 2 --type q4_k_r16). Q6_K spreads its own (below).
      if (!kX && a.stream && !kLines) {
        for (int g = 0; g < NG; ++g) prefetch_ahead_part(w + g * gb, kSbBytes, j, 8);
      }
      const BlockQ8Act* xb[MR];
      __m512i dot[MR][NG];
      for (int i = 0; i < MR; ++i) {
        xb[i] = x[i] + sb * 8 + j;
        for (int g = 0; g < NG; ++g) dot[i][g] = _mm512_setzero_si512();
      }
      if constexpr (kX) {
        r16_block_dots<8, MR, NG>(w + kQ4XQs + 512 * j, gb, xb, dot);
        for (int g = 0; g < NG; ++g) {
          const __m512i sc = _mm512_load_si512(w + g * gb + kQ4XIsc + 64 * j);
          for (int i = 0; i < MR; ++i) isum[i][g] = add_scaled(isum[i][g], dot[i][g], sc);
        }
      } else {
        const uint8_t* q = w + kQ4KR16Qs + (kQ5 ? kQ5KR16Sub : 256) * j;
        if (lines) {
          r16_block_dots<kQ5 ? 5 : 4, MR, NG, kLines>(q, gb, xb, dot);
        } else {
          r16_block_dots<kQ5 ? 5 : 4, MR, NG>(q, gb, xb, dot);
        }
        for (int i = 0; i < MR; ++i)
          for (int g = 0; g < NG; ++g) isum[i][g] = add_scaled(isum[i][g], dot[i][g], isc[g][j]);
      }
    }
    for (int i = 0; i < MR; ++i) {
      const BlockQ8Act* xs = x[i] + sb * 8;
      __m512i sums[4];
      for (int p = 0; p < 4; ++p) sums[p] = _mm512_set1_epi32(sum_pair(xs, p));
      for (int g = 0; g < NG; ++g) {
        __m512i imin = _mm512_setzero_si512();
        for (int p = 0; p < 4; ++p) {
          const __m512i m =
              kX ? _mm512_load_si512(w + g * gb + kQ4XMpair + 64 * p) : mpair[g][kX ? 0 : p];
          imin = _mm512_dpwssd_epi32(imin, m, sums[p]);
        }
        acc[i][g] = add_with_mins(acc[i][g], isum[i][g], imin, dv[g], dminv[g], xs->d);
      }
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int g = 0; g < NG; ++g) _mm512_storeu_ps(a.y + i * a.y_stride + 16 * g, acc[i][g]);
}

// corr[s] = −32 · Σ (Q3_K, kQ3: −4 · Σ) of x's 16 quants of sub-block s (0..15) in super-block
// sb: the start value of sub-block s's dots. Vector hadds over the 8 blocks' lsum (4-element
// sums), once per super-block and row of x, instead of scalar sums in every sub-block's loop (7
// uops per sub-block and row).
template <bool kQ3>
inline void q6_corrections(const BlockQ8Act* xb, int32_t* corr) {
  // After the two hadds over blocks b0..b0+3, lanes 0-3 hold their first sub-blocks' sums (2b)
  // and lanes 4-7 their second ones' (2b + 1); the permute puts them in sub-block order.
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int b0 = 0; b0 < 8; b0 += 4) {
    __m256i l[4];
    for (int j = 0; j < 4; ++j) {
      l[j] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb[b0 + j].lsum));
    }
    const __m256i h =
        _mm256_hadd_epi32(_mm256_hadd_epi32(l[0], l[1]), _mm256_hadd_epi32(l[2], l[3]));
    const __m256i sums = _mm256_permutevar8x32_epi32(h, order);
    _mm256_storeu_si256(
        reinterpret_cast<__m256i*>(corr + 2 * b0),
        _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(sums, kQ3 ? 2 : 5)));
  }
}

// Prefill's expanded Q6_K (MatmulEntry::expand): per group and super-block, d as 16 f32, then
// per sub-block its scale_pair vector and its four unpacked u8 weight vectors (q6_unpack's), so
// a tile's sub-block step is loads and the 6 dot ops per row and group: unpacking (12 ops) and
// the scale's (4) once per slice instead of once per tile of 7 rows of x. bench_kernels --gemm
// --threads 1 --type q6_k_r16 (2048 / 8192 x 2048): 263-266 / 258-260 -> 307-317 / 301-313
// GFLOP/s; pp512 of llama1b and qwen06b Q6_K 1.10x (Emerald Rapids VM, session 22).
constexpr size_t kQ6XSub = 5 * 64, kQ6XSb = 64 + 16 * kQ6XSub;

size_t q6_k_expanded_bytes(size_t k) { return k / 256 * kQ6XSb; }

// Q3_K's scales (sign-extended int8 per lane) in add_scaled16's form: the low int16 kept.
inline __m512i q3_scale16(__m512i sc) { return _mm512_and_si512(sc, _mm512_set1_epi32(0xffff)); }

// Q3_K's (kQ3) is the same with its quants 0..7 (the kernel takes 4, not 32, off) and its scales
// in add_scaled16's form.
template <bool kQ3>
void sc16_expand(const uint8_t* w, size_t gb, size_t k, int ng, uint8_t* out) {
  const size_t nsb = k / 256;
  for (int g = 0; g < ng; ++g) {
    for (size_t sb = 0; sb < nsb; ++sb) {
      const uint8_t* src = w + g * gb;
      const Q6KR16Offsets off = kQ3 ? q3k_r16_offsets(sb, nsb) : q6k_r16_offsets(sb, nsb);
      uint8_t* o = out + (g * nsb + sb) * kQ6XSb;
      _mm512_store_ps(o, f16x16(src + off.d));
      for (int s = 0; s < 16; ++s) {
        uint8_t* os = o + 64 + s * kQ6XSub;
        const __m512i sc = _mm512_cvtepi8_epi32(
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + off.sc + 16 * s)));
        _mm512_store_si512(os, kQ3 ? q3_scale16(sc) : scale_pair(sc));
        __m512i wv[4];
        sc16_unpack<kQ3>(src + off.qs, s, wv);
        for (int v = 0; v < 4; ++v) _mm512_store_si512(os + 64 * (v + 1), wv[v]);
      }
    }
  }
}

// kX: a.w is the expanded layout above (prefill), else the packed Q6_KR16 (Q3_KR16: kQ3) one.
template <bool kX, bool kQ3, int MR, int NG>
void gemm_q6_k(const PackedGemm& a) {
  const size_t nsb = a.k / 256, gb = a.w_group_bytes;
  const BlockQ8Act* x[MR];
  for (int i = 0; i < MR; ++i) x[i] = reinterpret_cast<const BlockQ8Act*>(a.x + i * a.x_stride);
  __m512 acc[MR][NG];
  for (int i = 0; i < MR; ++i)
    for (int g = 0; g < NG; ++g) acc[i][g] = _mm512_setzero_ps();
  for (size_t sb = 0; sb < nsb; ++sb) {
    const Q6KR16Offsets off = kQ3 ? q3k_r16_offsets(sb, nsb) : q6k_r16_offsets(sb, nsb);
    constexpr size_t kSbBytes = (kQ3 ? kQ3KR16Qs : kQ6KR16Qs) + kQ6KR16Sc + kQ6KR16D;
    const uint8_t* xw = a.w + sb * kQ6XSb;  // kX: the super-block in group 0
    // The super-block's d and scales are read up front (then from this copy), so that a decode
    // pass touches each pair's lines in ascending order: interleaving the scale lines with the
    // quant stream halved the DRAM rate (the hardware prefetchers lose the stream).
    alignas(64) int8_t scs[NG][kX ? 1 : 256];
    __m512 dv[NG];
    for (int g = 0; g < NG; ++g) {
      if constexpr (kX) {
        dv[g] = _mm512_load_ps(xw + g * gb);
      } else {
        dv[g] = f16x16(a.w + g * gb + off.d);
        for (int c = 0; c < 4; ++c) {
          _mm512_store_si512(scs[g] + 64 * c, _mm512_loadu_si512(a.w + g * gb + off.sc + 64 * c));
        }
      }
    }
    __m512i isum[MR][NG];
    for (int i = 0; i < MR; ++i)
      for (int g = 0; g < NG; ++g) isum[i][g] = _mm512_setzero_si512();
    alignas(32) int32_t corr[MR][16];
    for (int i = 0; i < MR; ++i) q6_corrections<kQ3>(x[i] + sb * 8, corr[i]);
    // kSub 16-element sub-blocks at a time, all NG groups' weight vectors unpacked first, so each
    // broadcast of x feeds NG dpbusd (one broadcast per dpbusd had cost 1.3 loads per dpbusd). With
    // one group (decode) two sub-blocks give Q6_K two dpbusd chains, read in ascending order.
    // Q3_K decodes one sub-block a step: fewer chains (hot, one thread, 27-32 -> 23-24 GB/s) but
    // a steadier stream from DRAM (bench_kernels --threads 2, 8192 x 2048, three alternating runs:
    // 26.6-26.7 -> 28.1-28.4 GB/s; qwen06b Q3_K tg128 90.3 / 90.3 / 92.4 -> 91.6 / 95.1 / 94.7;
    // Q6_K measured equal either way; Sapphire Rapids VM, session 31).
    constexpr int kSub = NG == 1 && !kQ3 ? 2 : 1;
    for (int s0 = 0; s0 < 16; s0 += kSub) {
      __m512i wv[kSub][NG][4], sc[kSub][NG];
      // Decode's prefetches, spread over the steps as in the Q4_K kernel: one burst of 105 per
      // super-block made every Q6_K decode step 3-6% longer (token by token, llama1b and qwen06b
      // Q6_K, Emerald Rapids VM; one part per sub-block instead of per step: 0-2% longer again).
      if (!kX && a.stream) {
        for (int g = 0; g < NG; ++g) {
          // Q3_K keeps the far distances, as Q2_K (prefetch.h).
          prefetch_ahead_part<kQ3 ? kL1AheadFar : kL1Ahead, kQ3 ? kL2AheadFar : kL2Ahead>(
              a.w + g * gb + sb * kSbBytes, kSbBytes, s0 / kSub, 16 / kSub);
        }
      }
      for (int h = 0; h < kSub; ++h) {
        for (int g = 0; g < NG; ++g) {
          if constexpr (kX) {
            const uint8_t* p = xw + g * gb + 64 + (s0 + h) * kQ6XSub;
            sc[h][g] = _mm512_load_si512(p);
            for (int v = 0; v < 4; ++v) wv[h][g][v] = _mm512_load_si512(p + 64 * (v + 1));
          } else {
            sc16_unpack<kQ3>(a.w + g * gb + off.qs, s0 + h, wv[h][g]);
            const __m512i s8 = _mm512_cvtepi8_epi32(
                _mm_load_si128(reinterpret_cast<const __m128i*>(scs[g] + 16 * (s0 + h))));
            sc[h][g] = kQ3 ? q3_scale16(s8) : scale_pair(s8);
          }
        }
      }
      for (int i = 0; i < MR; ++i) {
        const int8_t* xq[kSub];
        __m512i start[kSub];
        for (int h = 0; h < kSub; ++h) {
          const int s = s0 + h;
          xq[h] = per_group(x[i])[sb * 8 + s / 2].qs + 16 * (s % 2);
          start[h] = _mm512_set1_epi32(corr[i][s]);
        }
        add_sub16_dots<kSub, NG, kQ3>(wv, sc, xq, start, isum[i]);
      }
    }
    for (int i = 0; i < MR; ++i) {
      const __m512 xd = _mm512_set1_ps(x[i][sb * 8].d);
      for (int g = 0; g < NG; ++g) {
        acc[i][g] =
            _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[i][g]), _mm512_mul_ps(dv[g], xd), acc[i][g]);
      }
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int g = 0; g < NG; ++g) _mm512_storeu_ps(a.y + i * a.y_stride + 16 * g, acc[i][g]);
}

// The largest tiles; every smaller (mr, ng) is instantiated by the recursion below.
// Measured best (bench_kernels --gemm --type q4_k_r16 / q6_k_r16): Q4_K of 4x3, 4x2, 5x2, 6x2, 8x2
// (within noise of each other; expanded, 8x2 2-5% above 6x2); Q6_K of 7x2 (6x2 and 8x2 within 10%,
// 4x3 and 5x3 10-20% slower; expanded, 8x2 within 2%; 12x1 and 16x1 15-20% slower than 7x2).
constexpr int kQ4Mr = 8, kQ4Ng = 2, kQ6Mr = 7, kQ6Ng = 2;

template <int kBits, int MR, int NG>  // kBits: 3, 4, 5, 6 for Q3_K, Q4_K, Q5_K, Q6_K
void tile(const PackedGemm& a) {
  if constexpr (MR > 1) {
    if (a.mr < MR) return tile<kBits, MR - 1, NG>(a);
  }
  if constexpr (NG > 1) {
    if (a.ng < NG) return tile<kBits, MR, NG - 1>(a);
  }
  RUNNEL_ASSERT(a.mr == MR && a.ng == NG && "packed tile too big");
  if constexpr (kBits == 6 || kBits == 3) {
    if (a.expanded) {
      gemm_q6_k<true, kBits == 3, MR, NG>(a);
    } else {
      gemm_q6_k<false, kBits == 3, MR, NG>(a);
    }
  } else {
    if (a.expanded) {
      gemm_q4_k<true, false, MR, NG>(a);  // the same expanded layout for Q4_K and Q5_K
    } else {
      gemm_q4_k<false, kBits == 5, MR, NG>(a);
    }
  }
}

}  // namespace

void packed_q4_k_r16(const PackedGemm& a) { tile<4, kQ4Mr, kQ4Ng>(a); }
void packed_q5_k_r16(const PackedGemm& a) { tile<5, kQ4Mr, kQ4Ng>(a); }
void packed_q6_k_r16(const PackedGemm& a) { tile<6, kQ6Mr, kQ6Ng>(a); }
void packed_q3_k_r16(const PackedGemm& a) { tile<3, kQ6Mr, kQ6Ng>(a); }

void register_matmul_packed_kquants(KernelTable& t) {
  MatmulEntry& q4 = matmul_entry(t, DType::kQ4_KR16);
  q4 = {nullptr, ActKind::kQ8x256, kQ4Mr, 1, packed_q4_k_r16, kQ4Ng, false};
  q4.expand = q45_k_expand<false>;
  q4.expanded_bytes = q4_k_expanded_bytes;
  MatmulEntry& q5 = matmul_entry(t, DType::kQ5_KR16);
  q5 = {nullptr, ActKind::kQ8x256, kQ4Mr, 1, packed_q5_k_r16, kQ4Ng, false};
  q5.expand = q45_k_expand<true>;
  q5.expanded_bytes = q4_k_expanded_bytes;
  MatmulEntry& q6 = matmul_entry(t, DType::kQ6_KR16);
  q6 = {nullptr, ActKind::kQ8x256, kQ6Mr, 1, packed_q6_k_r16, kQ6Ng, false};
  q6.expand = sc16_expand<false>;
  q6.expanded_bytes = q6_k_expanded_bytes;
  MatmulEntry& q3 = matmul_entry(t, DType::kQ3_KR16);
  q3 = {nullptr, ActKind::kQ8x256, kQ6Mr, 1, packed_q3_k_r16, kQ6Ng, false};
  q3.expand = sc16_expand<true>;
  q3.expanded_bytes = q6_k_expanded_bytes;
  register_matmul_packed_q2_k(t);
  register_matmul_packed_iq4_xs(t);
  matmul_entry(t, DType::kQ4_K).prefer_packed = true;
  matmul_entry(t, DType::kQ6_K).prefer_packed = true;
}

}  // namespace runnel::kernels::cpu::avx512
