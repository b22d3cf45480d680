// The AVX-512 VNNI kernel for Q2_KR16 (packed_kquants.h), equal bit for bit to the scalar
// reference in packed_kquants.cpp: per 16-element sub-block one load gives the four 2-bit vectors
// (a shift and a mask each), 4 vpdpbusd make its dot and isum += sc_s · dot_s (add_scaled16); per
// super-block Σ m_s · Σx_s is 8 vpdpwssd on (m, m) / (Σx, Σx) int16 pairs, then Q4_K's two fmas.
// Prefill reads an expanded copy of each slice (q2_k_expand): d, dmin and the min pairs as vectors,
// then per sub-block its scale vector and its four u8 weight vectors. Register tile as in the
// other K-quant kernels: MR rows of x by NG groups of 16 weight rows.
#include <cstring>

#include "kernels/cpu/act_block_simd.h"
#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/packed.h"
#include "kernels/cpu/packed_dot_avx512.h"  // dispatch_r16_tile
#include "kernels/cpu/packed_kquants.h"
#include "kernels/cpu/packed_kquants_avx512.h"
#include "kernels/cpu/prefetch.h"

namespace runnel::kernels::cpu::avx512 {
namespace {

// Sub-block s's scales (low nibbles of its 16 bytes, zero-extended: add_scaled16's form, since a
// sub-block's dot fits int16) and the mins of sub-blocks 2p, 2p + 1 as (m, m) int16 pairs, for
// the 16 rows of the super-block at w.
inline __m512i q2_scale(const uint8_t* w, int s) {
  return _mm512_and_si512(u8x16_epi32(w + kQ2KR16Sc + 16 * s), _mm512_set1_epi32(15));
}
// The pair's 32 bytes as words (sub-block 2p's rows, then 2p + 1's), one vpermw to put row r's two
// in lane r, one shift for the high nibbles.
inline __m512i q2_min_pair(const uint8_t* w, int p) {
  const __m512i rows = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24,
                                        8, 23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  const __m512i b = _mm512_cvtepu8_epi16(
      _mm256_load_si256(reinterpret_cast<const __m256i*>(w + kQ2KR16Sc + 32 * p)));
  return _mm512_srli_epi16(_mm512_permutexvar_epi16(rows, b), 4);
}

// The expanded layout (MatmulEntry::expand), per group and super-block: d and dmin (16 f32
// each), the 8 min pairs, then per sub-block its scale and four weight vectors.
constexpr size_t kQ2XMins = 128, kQ2XSub = kQ2XMins + 8 * 64, kQ2XSb = kQ2XSub + 16 * 5 * 64;

size_t q2_k_expanded_bytes(size_t k) { return k / 256 * kQ2XSb; }

void q2_k_expand(const uint8_t* w, size_t gb, size_t k, int ng, uint8_t* out) {
  const size_t nsb = k / 256;
  for (int g = 0; g < ng; ++g) {
    for (size_t sb = 0; sb < nsb; ++sb) {
      const uint8_t* src = w + g * gb + sb * kQ2KR16SbBytes;
      uint8_t* o = out + (g * nsb + sb) * kQ2XSb;
      _mm512_store_ps(o, f16x16(src));
      _mm512_store_ps(o + 64, f16x16(src + kQ2KR16Dmin));
      for (int p = 0; p < 8; ++p) _mm512_store_si512(o + kQ2XMins + 64 * p, q2_min_pair(src, p));
      for (int s = 0; s < 16; ++s) {
        uint8_t* os = o + kQ2XSub + 5 * 64 * s;
        _mm512_store_si512(os, q2_scale(src, s));
        __m512i wv[4];
        q2_unpack(src, s, wv);
        for (int v = 0; v < 4; ++v) _mm512_store_si512(os + 64 * (v + 1), wv[v]);
      }
    }
  }
}

// kX: a.w is the expanded layout above (prefill), else the packed Q2_KR16 one.
template <bool kX, int MR, int NG>
void gemm_q2_k(const PackedGemm& a) {
  const size_t nsb = a.k / 256, gb = a.w_group_bytes;
  const BlockQ8Act* x[MR];
  for (int i = 0; i < MR; ++i) x[i] = reinterpret_cast<const BlockQ8Act*>(a.x + i * a.x_stride);
  __m512 acc[MR][NG];
  for (int i = 0; i < MR; ++i)
    for (int g = 0; g < NG; ++g) acc[i][g] = _mm512_setzero_ps();
  for (size_t sb = 0; sb < nsb; ++sb) {
    const uint8_t* w = a.w + sb * (kX ? kQ2XSb : kQ2KR16SbBytes);
    __m512i isum[MR][NG];
    for (int i = 0; i < MR; ++i)
      for (int g = 0; g < NG; ++g) isum[i][g] = _mm512_setzero_si512();
    // One sub-block a step, decode too. Two with one group (two dpbusd chains) computed faster
    // from cache (one thread, hot: 25-27 against 23-25 GB/s) but streamed slower from DRAM:
    // bench_kernels --threads 2, 3072 x 1024 / 8192 x 2048, three alternating runs, 23.3-23.4 /
    // 26.1-26.2 -> 26.5-26.8 / 30.6-31.3 GB/s; qwen06b Q2_K tg128 109.3 / 115.6 / 117.5 -> 131.8 /
    // 131.9 / 131.9 tok/s (Sapphire Rapids VM, session 31).
    constexpr int kSub = 1;
    for (int s0 = 0; s0 < 16; s0 += kSub) {
      if (!kX && a.stream) {
        for (int g = 0; g < NG; ++g) {
          prefetch_ahead_part<kL1AheadFar, kL2AheadFar>(w + g * gb, kQ2KR16SbBytes, s0 / kSub,
                                                        16 / kSub);
        }
      }
      __m512i wv[kSub][NG][4], sc[kSub][NG];
      for (int h = 0; h < kSub; ++h) {
        for (int g = 0; g < NG; ++g) {
          if constexpr (kX) {
            const uint8_t* p = w + g * gb + kQ2XSub + 5 * 64 * (s0 + h);
            sc[h][g] = _mm512_load_si512(p);
            for (int v = 0; v < 4; ++v) wv[h][g][v] = _mm512_load_si512(p + 64 * (v + 1));
          } else {
            q2_unpack(w + g * gb, s0 + h, wv[h][g]);
            sc[h][g] = q2_scale(w + g * gb, s0 + h);
          }
        }
      }
      for (int i = 0; i < MR; ++i) {
        const int8_t* xq[kSub];
        __m512i start[kSub];
        for (int h = 0; h < kSub; ++h) {
          const int s = s0 + h;
          xq[h] = per_group(x[i])[sb * 8 + s / 2].qs + 16 * (s % 2);
          start[h] = _mm512_setzero_si512();
        }
        add_sub16_dots<kSub, NG, true>(wv, sc, xq, start, isum[i]);
      }
    }
    for (int i = 0; i < MR; ++i) {
      const BlockQ8Act* xs = x[i] + sb * 8;
      alignas(32) int32_t pairs[8];  // (Σx_2p, Σx_2p+1) as int16 pairs
      _mm256_store_si256(reinterpret_cast<__m256i*>(pairs), sub16_sum_pairs(xs));
      for (int g = 0; g < NG; ++g) {
        const uint8_t* wg = w + g * gb;
        __m512i imin = _mm512_setzero_si512();
        for (int p = 0; p < 8; ++p) {
          const __m512i m = kX ? _mm512_load_si512(wg + kQ2XMins + 64 * p) : q2_min_pair(wg, p);
          imin = _mm512_dpwssd_epi32(imin, m, _mm512_set1_epi32(pairs[p]));
        }
        const __m512 dv = kX ? _mm512_load_ps(wg) : f16x16(wg);
        const __m512 dminv = kX ? _mm512_load_ps(wg + 64) : f16x16(wg + kQ2KR16Dmin);
        acc[i][g] = add_with_mins(acc[i][g], isum[i][g], imin, dv, dminv, xs->d);
      }
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int g = 0; g < NG; ++g) _mm512_storeu_ps(a.y + i * a.y_stride + 16 * g, acc[i][g]);
}

struct Q2K {
  template <int MR, int NG>
  static void run(const PackedGemm& a) {
    if (a.expanded) {
      gemm_q2_k<true, MR, NG>(a);
    } else {
      gemm_q2_k<false, MR, NG>(a);
    }
  }
};

// Q6_K's tile (the same shape of work per sub-block).
constexpr int kQ2Mr = 7, kQ2Ng = 2;

}  // namespace

void packed_q2_k_r16(const PackedGemm& a) { dispatch_r16_tile<Q2K, kQ2Mr, kQ2Ng>(a); }

void register_matmul_packed_q2_k(KernelTable& t) {
  MatmulEntry& e = matmul_entry(t, DType::kQ2_KR16);
  e = {nullptr, ActKind::kQ8x256, kQ2Mr, 1, packed_q2_k_r16, kQ2Ng, false};
  e.expand = q2_k_expand;
  e.expanded_bytes = q2_k_expanded_bytes;
}

}  // namespace runnel::kernels::cpu::avx512
