// AMX INT8 prefill kernels for the Q8_0R16, Q4_0R16, Q5_0R16, Q3_KR16, Q4_KR16, Q5_KR16 and Q6_KR16
// layouts (packed.h, packed_kquants.h), written once over a tile-operations policy so the same
// loops run on the tile unit (matmul_amx.cpp) and on a software model of it
// (matmul_amx_emulated_avx512.cpp), which tests them on machines without AMX. For the AMX and
// emulated files only (internal linkage, like simd_avx512.h).
//
// The r16 layouts are already AMX B tiles: a 64-byte chunk holds, for each of 16 weight rows, the
// 4 bytes of 4 consecutive k-positions, which is one row of a B tile (K / 4 rows of 16 x 4 bytes).
// Per block (32 elements; Q6_K: per 16-element sub-block) the kernel writes the block's quants as
// signed bytes into a small buffer (Q8_0: q + 128 back to q; Q4_0: nibble - 8; Q5_0: q - 16;
// Q4_K: the nibbles;
// Q5_K: the nibbles and fifth bits; Q6_K: q - 32; Q3_K: q - 4), and one TDPBSSD against an A tile
// (the activation bytes of 16 rows of x, read in place from their BlockQ8Act rows) gives all 16 x
// 16 exact int32 block dots. From there the arithmetic is the VNNI kernels', in the same order:
// Q8_0 / Q4_0 acc = fma(float(dot), d_w * d_x, acc) per block; the K-quants isum += dot * sc per
// sub-block (int32), then per super-block the f32 step (Q4_K's mins by vpdpwssd as in the VNNI
// kernel). So every result equals the VNNI kernels' and the scalar reference's bit for bit.
//
// Tiles: C (rows x 16 int32), A (rows x K bytes), B (K / 4 x 64 bytes), with K = 32 (16 for
// Q6_K); two of each, used by block parity so one block's tile work can overlap the previous
// block's vector work.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/packed.h"
#include "kernels/cpu/packed_kquants.h"
#include "kernels/cpu/packed_kquants_avx512.h"
#include "kernels/cpu/prefetch.h"
#include "kernels/cpu/simd_avx512.h"

namespace runnel::kernels::cpu {
namespace {

// The 64-byte operand of LDTILECFG (palette 1).
struct alignas(64) AmxTileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};  // bytes per row of tile t
  uint8_t rows[16] = {};
};
static_assert(sizeof(AmxTileConfig) == 64);

// Tile numbers by role and block parity p: C is tmm p, A tmm 2 + p, B tmm 4 + p.
constexpr int kAmxTileC = 0, kAmxTileA = 2, kAmxTileB = 4;

// The configuration for `rows` rows of x (1..16) and `kbytes` k-positions per TDPBSSD (32 or 16).
inline AmxTileConfig amx_config(int rows, int kbytes) {
  AmxTileConfig c;
  for (int p = 0; p < 2; ++p) {
    c.rows[kAmxTileC + p] = static_cast<uint8_t>(rows);
    c.colsb[kAmxTileC + p] = 64;  // 16 int32
    c.rows[kAmxTileA + p] = static_cast<uint8_t>(rows);
    c.colsb[kAmxTileA + p] = static_cast<uint16_t>(kbytes);
    c.rows[kAmxTileB + p] = static_cast<uint8_t>(kbytes / 4);
    c.colsb[kAmxTileB + p] = 64;  // 16 weight rows x 4 bytes
  }
  return c;
}

// The rows of x at which the tile kernels take over from the VNNI ones (fewer go to VNNI: a tile
// would be mostly empty).
constexpr int kAmxMinRows = 5;
// The most rows of x per call (two tiles of x, in turn) and groups of 16 weight rows.
constexpr int kAmxMr = 32, kAmxNg = 2;

// Ops (the policy): static configure(rows, kbytes) (a no-op when the thread's tiles already have
// that shape), and template<int P> zero_c / load_a(p, stride) / load_b(p) (rows 64 bytes apart) /
// dot (C_P += A_P . B_P, signed bytes) / store_c(p) (16 int32 per row, rows 64 bytes apart).

// C_P = A_P . B_P for the A tile at xa (rows x_stride apart) and the B tile in bt, stored to c.
template <class Ops, int P>
inline void amx_tile_dot(const uint8_t* xa, size_t x_stride, const int8_t* bt, int32_t* c) {
  Ops::template zero_c<P>();
  Ops::template load_a<P>(xa, x_stride);
  Ops::template load_b<P>(bt);
  Ops::template dot<P>();
  Ops::template store_c<P>(c);
}

// 16 rows of x from row i0 (`rows` of them real): x0 is the first row's bytes, xr[r] row r's
// blocks (rows past the tile read the last real row; their results are discarded).
struct AmxRowsOfX {
  const uint8_t* x0;
  const BlockQ8Act* xr[16];
  AmxRowsOfX(const PackedGemm& a, int i0, int rows) {
    x0 = a.x + static_cast<size_t>(i0) * a.x_stride;
    for (int r = 0; r < 16; ++r) {
      xr[r] = reinterpret_cast<const BlockQ8Act*>(x0 + std::min(r, rows - 1) * a.x_stride);
    }
  }
};

// Per call: the C tiles' stores (rows past a ragged tile are never stored to: zero, finite,
// unused) and the signed B tiles, each by block parity.
struct AmxScratch {
  alignas(64) int32_t c[2][16][16];
  alignas(64) int8_t bt[2][8][64];
  AmxScratch() { std::memset(c, 0, sizeof(c)); }
};

// Stores the first `rows` rows of an accumulator kept in memory (the K-quant kernels: their
// sixteen int32 sums take the registers) to y.
inline void amx_store_rows(const PackedGemm& a, int i0, int rows, int g,
                           const float (&acc)[16][16]) {
  for (int r = 0; r < rows; ++r) {
    std::memcpy(a.y + static_cast<size_t>(i0 + r) * a.y_stride + 16 * g, acc[r], 64);
  }
}

// Stores acc's first `rows` rows to y (a constant loop bound, so acc stays in registers).
inline void amx_store_rows(const PackedGemm& a, int i0, int rows, int g, const __m512 (&acc)[16]) {
  for (int r = 0; r < 16; ++r) {
    if (r < rows) {
      _mm512_storeu_ps(a.y + static_cast<size_t>(i0 + r) * a.y_stride + 16 * g, acc[r]);
    }
  }
}

// Q8_0R16 / Q4_0R16 / Q5_0R16 (kBits 8, 4, 5): block b of one group (weights wg) for 16 rows of
// x, tiles of parity P: acc[r] = fma(float(dot[r]), d_w * d_x[r], acc[r]).
template <class Ops, int kBits, int P>
inline void amx_r16_block(const PackedGemm& a, const uint8_t* wg, size_t b, size_t nb,
                          const AmxRowsOfX& x, int8_t (&bt)[8][64], int32_t (&c)[16][16],
                          __m512 (&acc)[16]) {
  constexpr size_t kQs = kBits == 8 ? 512 : kBits == 4 ? 256 : 320;
  if (a.stream) prefetch_ahead(wg + b * (kQs + 32), kQs + 32);
  const PackedBlockOffsets off = packed_block_offsets(b, nb, kQs);
  const __m512 dw = f16x16(wg + off.d);
  const uint8_t* q = wg + off.qs;
  if constexpr (kBits == 5) {
    const __m512i f = _mm512_loadu_si512(q), sixteen = _mm512_set1_epi8(16);
    for (int ch = 0; ch < 4; ++ch) {
      __m512i lo, hi;
      q5_chunk(_mm512_loadu_si512(q + 64 + 64 * ch), f, ch, lo, hi);
      _mm512_store_si512(bt[ch], _mm512_sub_epi8(lo, sixteen));
      _mm512_store_si512(bt[4 + ch], _mm512_sub_epi8(hi, sixteen));
    }
  } else if constexpr (kBits == 4) {
    const __m512i low = _mm512_set1_epi8(0x0f), eight = _mm512_set1_epi8(8);
    for (int ch = 0; ch < 4; ++ch) {
      const __m512i v = _mm512_loadu_si512(q + 64 * ch);
      const __m512i lo = _mm512_sub_epi8(_mm512_and_si512(v, low), eight);
      const __m512i hi = _mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi16(v, 4), low), eight);
      _mm512_store_si512(bt[ch], lo);
      _mm512_store_si512(bt[4 + ch], hi);
    }
  } else {
    const __m512i bias = _mm512_set1_epi8(static_cast<char>(0x80));
    for (int ch = 0; ch < 8; ++ch) {
      _mm512_store_si512(bt[ch], _mm512_xor_si512(_mm512_loadu_si512(q + 64 * ch), bias));
    }
  }
  amx_tile_dot<Ops, P>(x.x0 + b * sizeof(BlockQ8Act), a.x_stride, &bt[0][0], &c[0][0]);
  for (int r = 0; r < 16; ++r) {
    const __m512 s = _mm512_mul_ps(dw, _mm512_set1_ps(x.xr[r][b].d));
    acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(c[r])), s, acc[r]);
  }
}

template <class Ops, int kBits>
void amx_r16_rows(const PackedGemm& a, int i0, int rows) {
  const size_t nb = a.k / 32;
  Ops::configure(rows, 32);
  AmxScratch t;
  const AmxRowsOfX x(a, i0, rows);
  for (int g = 0; g < a.ng; ++g) {
    const uint8_t* wg = a.w + g * a.w_group_bytes;
    __m512 acc[16];
    for (int r = 0; r < 16; ++r) acc[r] = _mm512_setzero_ps();
    size_t b = 0;
    for (; b + 1 < nb; b += 2) {
      amx_r16_block<Ops, kBits, 0>(a, wg, b, nb, x, t.bt[0], t.c[0], acc);
      amx_r16_block<Ops, kBits, 1>(a, wg, b + 1, nb, x, t.bt[1], t.c[1], acc);
    }
    if (b < nb) amx_r16_block<Ops, kBits, 0>(a, wg, b, nb, x, t.bt[0], t.c[0], acc);
    amx_store_rows(a, i0, rows, g, acc);
  }
}

// Q4_KR16 (Q5_KR16: kQ5): sub-block j (32 elements) of the super-block at w, tiles of parity P:
// isum[r] += dot[r] * sc_j (int32; scm from q4k_r16_scale_bytes).
template <class Ops, int P, bool kQ5>
inline void amx_q4k_sub(const PackedGemm& a, const uint8_t* w, size_t sb, int j, const uint8_t* scm,
                        const AmxRowsOfX& x, int8_t (&bt)[8][64], int32_t (&c)[16][16],
                        __m512i (&isum)[16]) {
  constexpr size_t kSbBytes = kQ5 ? kQ5KR16SbBytes : kQ4KR16SbBytes;
  if (a.stream) prefetch_ahead_part(w, kSbBytes, static_cast<size_t>(j), 8);
  if constexpr (kQ5) {
    q5_to_bytes(w + kQ4KR16Qs + kQ5KR16Sub * j, reinterpret_cast<uint8_t*>(&bt[0][0]));
  } else {
    const uint8_t* q = w + kQ4KR16Qs + 256 * j;
    const __m512i low = _mm512_set1_epi8(0x0f);
    for (int ch = 0; ch < 4; ++ch) {
      const __m512i v = _mm512_loadu_si512(q + 64 * ch);
      _mm512_store_si512(bt[ch], _mm512_and_si512(v, low));
      _mm512_store_si512(bt[4 + ch], _mm512_and_si512(_mm512_srli_epi16(v, 4), low));
    }
  }
  amx_tile_dot<Ops, P>(x.x0 + (sb * 8 + j) * sizeof(BlockQ8Act), a.x_stride, &bt[0][0], &c[0][0]);
  const __m512i sc = scale_pair(u8x16_epi32(scm + 16 * j));
  for (int r = 0; r < 16; ++r) isum[r] = add_scaled(isum[r], _mm512_load_si512(c[r]), sc);
}

template <class Ops, bool kQ5>
void amx_q4k_rows(const PackedGemm& a, int i0, int rows) {
  const size_t nsb = a.k / 256;
  Ops::configure(rows, 32);
  AmxScratch t;
  alignas(64) uint8_t scm[256];
  alignas(64) float acc[16][16];
  const AmxRowsOfX x(a, i0, rows);
  for (int g = 0; g < a.ng; ++g) {
    const uint8_t* wg = a.w + g * a.w_group_bytes;
    std::memset(acc, 0, sizeof(acc));
    for (size_t sb = 0; sb < nsb; ++sb) {
      const uint8_t* w = wg + sb * (kQ5 ? kQ5KR16SbBytes : kQ4KR16SbBytes);
      q4k_r16_scale_bytes(w, scm);
      __m512i isum[16];
      for (int r = 0; r < 16; ++r) isum[r] = _mm512_setzero_si512();
      for (int j = 0; j < 8; j += 2) {
        amx_q4k_sub<Ops, 0, kQ5>(a, w, sb, j, scm, x, t.bt[0], t.c[0], isum);
        amx_q4k_sub<Ops, 1, kQ5>(a, w, sb, j + 1, scm, x, t.bt[1], t.c[1], isum);
      }
      // The VNNI kernel's super-block step: Σ m_j Σx_j by vpdpwssd on int16 pairs, two fmas.
      __m512i mpair[4];
      for (int p = 0; p < 4; ++p) {
        mpair[p] = _mm512_or_si512(u8x16_epi32(scm + 128 + 32 * p),
                                   _mm512_slli_epi32(u8x16_epi32(scm + 144 + 32 * p), 16));
      }
      const __m512 dv = f16x16(w), dminv = f16x16(w + kQ4KR16Dmin);
      for (int r = 0; r < 16; ++r) {
        const BlockQ8Act* xs = x.xr[r] + sb * 8;
        __m512i imin = _mm512_setzero_si512();
        for (int p = 0; p < 4; ++p) {
          imin = _mm512_dpwssd_epi32(imin, mpair[p], _mm512_set1_epi32(sum_pair(xs, p)));
        }
        _mm512_store_ps(acc[r],
                        add_with_mins(_mm512_load_ps(acc[r]), isum[r], imin, dv, dminv, xs->d));
      }
    }
    amx_store_rows(a, i0, rows, g, acc);
  }
}

// Q6_KR16 (Q3_KR16: kQ3): 16-element sub-block s of super-block sb (quants at qs, int8 scales at
// sc), tiles of parity P: isum[r] += dot[r] * sc_s.
template <class Ops, int P, bool kQ3>
inline void amx_q6k_sub(const PackedGemm& a, const uint8_t* qs, const uint8_t* sc, size_t sb, int s,
                        const AmxRowsOfX& x, int8_t (&bt)[8][64], int32_t (&c)[16][16],
                        __m512i (&isum)[16]) {
  __m512i wv[4];
  sc16_unpack<kQ3>(qs, s, wv);
  const __m512i bias = _mm512_set1_epi8(kQ3 ? 4 : 32);
  for (int v = 0; v < 4; ++v) _mm512_store_si512(bt[v], _mm512_sub_epi8(wv[v], bias));
  const uint8_t* xa = x.x0 + (sb * 8 + static_cast<size_t>(s / 2)) * sizeof(BlockQ8Act);
  amx_tile_dot<Ops, P>(xa + 16 * (s % 2), a.x_stride, &bt[0][0], &c[0][0]);
  const __m512i scv = scale_pair(
      _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc + 16 * s))));
  for (int r = 0; r < 16; ++r) isum[r] = add_scaled(isum[r], _mm512_load_si512(c[r]), scv);
}

template <class Ops, bool kQ3>
void amx_q6k_rows(const PackedGemm& a, int i0, int rows) {
  const size_t nsb = a.k / 256;
  constexpr size_t kQs = kQ3 ? kQ3KR16Qs : kQ6KR16Qs, kSbBytes = kQs + kQ6KR16Sc + kQ6KR16D;
  Ops::configure(rows, 16);
  AmxScratch t;
  alignas(64) float acc[16][16];
  const AmxRowsOfX x(a, i0, rows);
  for (int g = 0; g < a.ng; ++g) {
    const uint8_t* wg = a.w + g * a.w_group_bytes;
    std::memset(acc, 0, sizeof(acc));
    for (size_t sb = 0; sb < nsb; ++sb) {
      const Q6KR16Offsets off = sc16_offsets(sb, nsb, kQs);
      if (a.stream) prefetch_ahead(wg + sb * kSbBytes, kSbBytes);
      __m512i isum[16];
      for (int r = 0; r < 16; ++r) isum[r] = _mm512_setzero_si512();
      for (int s = 0; s < 16; s += 2) {
        amx_q6k_sub<Ops, 0, kQ3>(a, wg + off.qs, wg + off.sc, sb, s, x, t.bt[0], t.c[0], isum);
        amx_q6k_sub<Ops, 1, kQ3>(a, wg + off.qs, wg + off.sc, sb, s + 1, x, t.bt[1], t.c[1], isum);
      }
      const __m512 dv = f16x16(wg + off.d);
      for (int r = 0; r < 16; ++r) {
        const __m512 s = _mm512_mul_ps(dv, _mm512_set1_ps(x.xr[r][sb * 8].d));
        _mm512_store_ps(acc[r],
                        _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[r]), s, _mm512_load_ps(acc[r])));
      }
    }
    amx_store_rows(a, i0, rows, g, acc);
  }
}

enum class AmxKind { kQ8_0, kQ4_0, kQ5_0, kQ3_K, kQ4_K, kQ5_K, kQ6_K };

// The kernel entry: rows of x 16 at a time (the last tile ragged); below kAmxMinRows rows the
// VNNI kernel `small` runs instead.
template <class Ops, AmxKind kKind>
void amx_gemm(const PackedGemm& a, PackedFn small) {
  if (a.mr < kAmxMinRows) {
    small(a);
    return;
  }
  for (int i0 = 0; i0 < a.mr; i0 += 16) {
    const int rows = std::min(16, a.mr - i0);
    if constexpr (kKind == AmxKind::kQ8_0) amx_r16_rows<Ops, 8>(a, i0, rows);
    if constexpr (kKind == AmxKind::kQ4_0) amx_r16_rows<Ops, 4>(a, i0, rows);
    if constexpr (kKind == AmxKind::kQ5_0) amx_r16_rows<Ops, 5>(a, i0, rows);
    if constexpr (kKind == AmxKind::kQ4_K) amx_q4k_rows<Ops, false>(a, i0, rows);
    if constexpr (kKind == AmxKind::kQ5_K) amx_q4k_rows<Ops, true>(a, i0, rows);
    if constexpr (kKind == AmxKind::kQ6_K) amx_q6k_rows<Ops, false>(a, i0, rows);
    if constexpr (kKind == AmxKind::kQ3_K) amx_q6k_rows<Ops, true>(a, i0, rows);
  }
}

// The seven entries over one Ops, each with its VNNI kernel for small tiles.
template <class Ops>
struct AmxKernels {
  static void q8_0(const PackedGemm& a) {
    amx_gemm<Ops, AmxKind::kQ8_0>(a, avx512::packed_q8_0_r16);
  }
  static void q4_0(const PackedGemm& a) {
    amx_gemm<Ops, AmxKind::kQ4_0>(a, avx512::packed_q4_0_r16);
  }
  static void q5_0(const PackedGemm& a) {
    amx_gemm<Ops, AmxKind::kQ5_0>(a, avx512::packed_q5_0_r16);
  }
  static void q4_k(const PackedGemm& a) {
    amx_gemm<Ops, AmxKind::kQ4_K>(a, avx512::packed_q4_k_r16);
  }
  static void q5_k(const PackedGemm& a) {
    amx_gemm<Ops, AmxKind::kQ5_K>(a, avx512::packed_q5_k_r16);
  }
  static void q6_k(const PackedGemm& a) {
    amx_gemm<Ops, AmxKind::kQ6_K>(a, avx512::packed_q6_k_r16);
  }
  static void q3_k(const PackedGemm& a) {
    amx_gemm<Ops, AmxKind::kQ3_K>(a, avx512::packed_q3_k_r16);
  }
};

// Puts the tile kernels in an AVX-512 table (the amx variant's).
template <class Ops>
void amx_register(KernelTable& t) {
  using K = AmxKernels<Ops>;
  for (auto [type, fn] : {std::pair{DType::kQ8_0R16, &K::q8_0},
                          {DType::kQ4_0R16, &K::q4_0},
                          {DType::kQ5_0R16, &K::q5_0},
                          {DType::kQ4_KR16, &K::q4_k},
                          {DType::kQ5_KR16, &K::q5_k},
                          {DType::kQ6_KR16, &K::q6_k},
                          {DType::kQ3_KR16, &K::q3_k}}) {
    MatmulEntry& e = matmul_entry(t, type);
    e.packed = fn;
    e.mr = kAmxMr;
    e.ng = kAmxNg;
    e.expand = nullptr;  // the tiles read the packed layout
    e.expanded_bytes = nullptr;
  }
}

// Runs each tile kernel and its VNNI kernel on the same fixed pseudo-random weights (2 groups, 3
// blocks or super-blocks: a pair and an odd last one) and 21 rows of x (a full tile of x and a
// ragged one): true when every output bit agrees. dispatch.cpp runs it once before it lets AMX be
// chosen, so a CPU whose tile unit disagrees runs the AVX-512 variant instead.
template <class Ops>
bool amx_self_test() {
  constexpr size_t kM = 21, kNg = 2;
  uint32_t seed = 12345;
  auto next = [&seed] {
    seed = seed * 1664525u + 1013904223u;
    return seed >> 8;
  };
  // Sets `count` f16 values at p to finite scales in [2^-7, 2^-6).
  auto scales = [&next](uint8_t* p, int count) {
    for (int i = 0; i < count; ++i) {
      const uint16_t h = static_cast<uint16_t>(0x2000 | (next() & 0x3ff));
      std::memcpy(p + 2 * i, &h, 2);
    }
  };
  using K = AmxKernels<Ops>;
  const struct {
    DType src;
    PackedFn amx, vnni;
  } cases[] = {{DType::kQ8_0, K::q8_0, avx512::packed_q8_0_r16},
               {DType::kQ4_0, K::q4_0, avx512::packed_q4_0_r16},
               {DType::kQ5_0, K::q5_0, avx512::packed_q5_0_r16},
               {DType::kQ4_K, K::q4_k, avx512::packed_q4_k_r16},
               {DType::kQ5_K, K::q5_k, avx512::packed_q5_k_r16},
               {DType::kQ6_K, K::q6_k, avx512::packed_q6_k_r16},
               {DType::kQ3_K, K::q3_k, avx512::packed_q3_k_r16}};
  for (const auto& cs : cases) {
    const bool kquant = block_elems(cs.src) == 256;
    const size_t k = kquant ? 3 * 256 : 3 * 32, nb = k / 32;
    std::vector<BlockQ8Act> x(kM * nb);
    for (size_t i = 0; i < x.size(); ++i) {
      BlockQ8Act& blk = x[i];
      blk.sum = 0;
      for (int j = 0; j < 32; ++j) {
        blk.qs[j] = static_cast<int8_t>(static_cast<int>(next() % 255) - 127);
        blk.sum += blk.qs[j];
      }
      for (int l = 0; l < 8; ++l) {
        blk.lsum[l] = blk.qs[4 * l] + blk.qs[4 * l + 1] + blk.qs[4 * l + 2] + blk.qs[4 * l + 3];
      }
      blk.d = 0.001f * static_cast<float>(1 + i % 7);
    }
    const size_t gb = kPackRows * row_bytes(packed_type(cs.src), k);
    std::vector<uint8_t> w(kNg * gb);
    for (uint8_t& v : w) v = static_cast<uint8_t>(next());
    for (size_t g = 0; g < kNg; ++g) {
      uint8_t* wg = w.data() + g * gb;
      for (size_t b = 0; b < 3; ++b) {
        if (cs.src == DType::kQ4_K || cs.src == DType::kQ5_K) {
          const size_t sb_bytes = cs.src == DType::kQ4_K ? kQ4KR16SbBytes : kQ5KR16SbBytes;
          scales(wg + b * sb_bytes, 32);  // d and dmin
        } else if (cs.src == DType::kQ6_K || cs.src == DType::kQ3_K) {
          scales(wg + (cs.src == DType::kQ6_K ? q6k_r16_offsets(b, 3) : q3k_r16_offsets(b, 3)).d,
                 16);
        } else {
          const size_t qs = cs.src == DType::kQ8_0 ? 512 : cs.src == DType::kQ4_0 ? 256 : 320;
          scales(wg + packed_block_offsets(b, 3, qs).d, 16);
        }
      }
    }
    std::vector<float> want(kM * 16 * kNg, 0.0f), got(kM * 16 * kNg, 1.0f);
    PackedGemm a{reinterpret_cast<const uint8_t*>(x.data()),
                 nb * sizeof(BlockQ8Act),
                 w.data(),
                 gb,
                 got.data(),
                 16 * kNg,
                 k,
                 static_cast<int>(kM),
                 static_cast<int>(kNg)};
    cs.amx(a);
    for (size_t i = 0; i < kM; i += 4) {
      PackedGemm v = a;
      v.mr = static_cast<int>(std::min<size_t>(4, kM - i));
      v.x = a.x + i * a.x_stride;
      v.y = want.data() + i * a.y_stride;
      cs.vnni(v);
    }
    if (std::memcmp(want.data(), got.data(), want.size() * sizeof(float)) != 0) return false;
  }
  return true;
}

}  // namespace
}  // namespace runnel::kernels::cpu
