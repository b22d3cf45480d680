// AVX-512 VNNI kernels for the Q8_0R16 / Q4_0R16 / Q5_0R16 / Q4_1R16 / Q5_1R16 / IQ4_NLR16 layouts
// (packed.h); the block dots are packed_dot_avx512.h's, and no horizontal sum is ever needed.
//
// Register tile: MR rows of x by NG groups (16 NG weight rows), up to kR16Mr x kR16Ng (8 x 2:
// packed_dot_avx512.h). Per block it holds MR x NG int32 dot accumulators and MR x NG f32 sums;
// each weight load feeds MR dpbusd and each broadcast NG. Decode (MR = 1) takes
// one group per call (matmul.cpp), its stream prefetched, and the block dots spread over 4
// accumulators to cut the dpbusd dependency chain (packed_dot_avx512.h). Two groups per call had
// read q4_0_r16 at 29-31 GB/s where one read 27-28.5 in bench_kernels on an Emerald Rapids VM
// (session 13), but with each thread's one contiguous range (session 14) one group per call reads
// 31.8-32.4 GB/s there and made model decode 5-9% faster (Q4_0; Q8_0 0-2%; session 18), and a
// Zen 4 core read one stream at 32 GB/s, two at 20. Prefill reads Q4_0 from an expanded copy of
// each slice (q4_0_expand below), Q5_0 likewise.
#include <cstring>

#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/packed.h"
#include "kernels/cpu/packed_dot_avx512.h"
#include "kernels/cpu/prefetch.h"

namespace runnel::kernels::cpu::avx512 {
namespace {

// Each block's dot starts at -bias · Σq_x (the stored bytes are q + bias), then
// acc = fma(float(dot), d_w · d_x, acc). kBits: 8, 4 or 5 (Q8_0, Q4_0, Q5_0); kX (Q4_0, Q5_0):
// the weights are the expanded copy (q45_0_expand), bytes in Q8_0R16's layout. kNl (kBits 4):
// IQ4_NLR16, its nibbles looked up as bytes kIQ4Values[q] + 128 (bias 128, as Q8_0's).
template <int kBits, bool kX = false, bool kNl = false>
struct GgmlR16 {
  template <int MR, int NG>
  static void run(const PackedGemm& a) {
    constexpr size_t kQs = kBits == 8 || kX ? 512 : kBits == 4 ? 256 : 320;
    constexpr int kBias = kBits == 8 || kNl ? 128 : kBits == 4 ? 8 : 16;
    const size_t nb = a.k / 32;
    const size_t gb = a.w_group_bytes;
    const BlockQ8Act* x[MR];
    for (int i = 0; i < MR; ++i) x[i] = reinterpret_cast<const BlockQ8Act*>(a.x + i * a.x_stride);
    __m512 acc[MR][NG];
    for (int i = 0; i < MR; ++i)
      for (int g = 0; g < NG; ++g) acc[i][g] = _mm512_setzero_ps();
    // Decode (one group, streamed): each line prefetched just before it is read (the pair's
    // scale line at its first block), not a burst per block (prefetch.h: prefetch_line_ahead).
    constexpr bool kLines = MR == 1 && NG == 1 && !kX;
    for (size_t b = 0; b < nb; ++b) {
      const PackedBlockOffsets off = packed_block_offsets(b, nb, kQs);
      if (a.stream) {
        if (kLines) {
          if (b % 2 == 0) prefetch_line_ahead(a.w + off.d);
        } else {
          for (int g = 0; g < NG; ++g) prefetch_ahead(a.w + g * gb + b * (kQs + 32), kQs + 32);
        }
      }
      __m512 dw[NG];  // the scales first: they lead the block in memory
      for (int g = 0; g < NG; ++g) {
        dw[g] = _mm512_cvtph_ps(
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.w + g * gb + off.d)));
      }
      __m512i dot[MR][NG];
      const BlockQ8Act* xb[MR];
      for (int i = 0; i < MR; ++i) {
        xb[i] = x[i] + b;
        const __m512i c0 = _mm512_set1_epi32(-kBias * xb[i]->sum);
        for (int g = 0; g < NG; ++g) dot[i][g] = c0;
      }
      if (kLines && a.stream) {
        r16_block_dots<kBits, MR, NG, true, kNl>(a.w + off.qs, gb, xb, dot);
      } else {
        r16_block_dots<kX ? 8 : kBits, MR, NG, false, kNl && !kX>(a.w + off.qs, gb, xb, dot);
      }
      for (int g = 0; g < NG; ++g) {
        for (int i = 0; i < MR; ++i) {
          const __m512 s = _mm512_mul_ps(dw[g], _mm512_set1_ps(xb[i]->d));
          acc[i][g] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[i][g]), s, acc[i][g]);
        }
      }
    }
    for (int i = 0; i < MR; ++i)
      for (int g = 0; g < NG; ++g) _mm512_storeu_ps(a.y + i * a.y_stride + 16 * g, acc[i][g]);
  }
};

// Prefill's expanded Q4_0 / Q5_0 (MatmulEntry::expand): the Q8_0R16 layout (packed.h) holding the
// quants as bytes 0..15 / 0..31 (bias 8 / 16), so the tiles run the 8-bit dot core without
// unpacking. IQ4_NL (kNl): the bytes kIQ4Values[q] + 128 (bias 128).
// bench_kernels --gemm --threads 2 --type q4_0_r16: 2048 / 3072 / 16384 x 2048 +10-16%, 2048 x 8192
// -1% (before chunks took half of L2, matmul.cpp); pp512 llama1b Q4_0 1.058x, qwen06b 1.039x
// (Emerald Rapids VM, session 22; with the quarter-L2 chunks the model had gained nothing).
size_t q4_0_expanded_bytes(size_t k) { return kPackRows * row_bytes(DType::kQ8_0, k); }

template <bool kQ5, bool kNl = false>
void q45_0_expand(const uint8_t* w, size_t gb, size_t k, int ng, uint8_t* out) {
  const size_t nb = k / 32, xgb = q4_0_expanded_bytes(k);
  for (int g = 0; g < ng; ++g) {
    for (size_t b = 0; b < nb; ++b) {
      const PackedBlockOffsets src = packed_block_offsets(b, nb, kQ5 ? 320 : 256);
      const PackedBlockOffsets dst = packed_block_offsets(b, nb, 512);
      const uint8_t* in = w + g * gb;
      uint8_t* o = out + g * xgb;
      std::memcpy(o + dst.d, in + src.d, 32);
      if constexpr (kQ5) {
        q5_to_bytes(in + src.qs, o + dst.qs);
      } else {
        nibbles_to_bytes<kNl>(in + src.qs, o + dst.qs);
      }
    }
  }
}

// Q4_1R16 / Q5_1R16 (kBits 4 / 5; packed.h): Q4_0R16's / Q5_0R16's quants, unbiased (the dot
// starts at 0), and per block the two fmas of the MLX kernels (matmul_packed_mlx_avx512.cpp) with
// d and the minimum m, as the reference. kX: prefill's expanded copy (q1_expand: each block's d
// and m, then its quants as bytes), the same for both.
constexpr size_t kQ1XBlock = kQ1R16Qs + 512;

template <int kBits, bool kX = false>
struct Q1R16 {
  template <int MR, int NG>
  static void run(const PackedGemm& a) {
    constexpr size_t kBlock = kX ? kQ1XBlock : kBits == 5 ? kQ5_1R16Block : kQ4_1R16Block;
    const size_t nb = a.k / 32, gb = a.w_group_bytes;
    const BlockQ8Act* x[MR];
    for (int i = 0; i < MR; ++i) x[i] = reinterpret_cast<const BlockQ8Act*>(a.x + i * a.x_stride);
    __m512 acc[MR][NG];
    for (int i = 0; i < MR; ++i)
      for (int g = 0; g < NG; ++g) acc[i][g] = _mm512_setzero_ps();
    // Decode: each of the block's lines prefetched just before it is read, as GgmlR16's.
    constexpr bool kLines = MR == 1 && NG == 1 && !kX;
    for (size_t b = 0; b < nb; ++b) {
      const uint8_t* w = a.w + b * kBlock;
      if (a.stream) {
        if (kLines) {
          prefetch_line_ahead(w);
        } else {
          for (int g = 0; g < NG; ++g) prefetch_ahead(w + g * gb, kBlock);
        }
      }
      __m512 dw[NG], mw[NG];
      for (int g = 0; g < NG; ++g) {
        dw[g] = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + g * gb)));
        mw[g] = _mm512_cvtph_ps(
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + g * gb + kQ1R16M)));
      }
      __m512i dot[MR][NG];
      const BlockQ8Act* xb[MR];
      for (int i = 0; i < MR; ++i) {
        xb[i] = x[i] + b;
        for (int g = 0; g < NG; ++g) dot[i][g] = _mm512_setzero_si512();
      }
      if (kLines && a.stream) {
        r16_block_dots<kBits, MR, NG, true>(w + kQ1R16Qs, gb, xb, dot);
      } else {
        r16_block_dots<kX ? 8 : kBits, MR, NG>(w + kQ1R16Qs, gb, xb, dot);
      }
      for (int g = 0; g < NG; ++g) {
        for (int i = 0; i < MR; ++i) {
          const float dx = xb[i]->d;
          const __m512 sd = _mm512_mul_ps(dw[g], _mm512_set1_ps(dx));
          acc[i][g] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[i][g]), sd, acc[i][g]);
          const __m512 mx = _mm512_set1_ps(dx * static_cast<float>(xb[i]->sum));
          acc[i][g] = _mm512_fmadd_ps(mw[g], mx, acc[i][g]);
        }
      }
    }
    for (int i = 0; i < MR; ++i)
      for (int g = 0; g < NG; ++g) _mm512_storeu_ps(a.y + i * a.y_stride + 16 * g, acc[i][g]);
  }
};

size_t q1_expanded_bytes(size_t k) { return k / 32 * kQ1XBlock; }

template <bool kQ5>
void q1_expand(const uint8_t* w, size_t gb, size_t k, int ng, uint8_t* out) {
  const size_t nb = k / 32, xgb = q1_expanded_bytes(k);
  for (int g = 0; g < ng; ++g) {
    for (size_t b = 0; b < nb; ++b) {
      const uint8_t* in = w + g * gb + b * (kQ5 ? kQ5_1R16Block : kQ4_1R16Block);
      uint8_t* o = out + g * xgb + b * kQ1XBlock;
      std::memcpy(o, in, kQ1R16Qs);  // d and m
      if constexpr (kQ5) {
        q5_to_bytes(in + kQ1R16Qs, o + kQ1R16Qs);
      } else {
        nibbles_to_bytes(in + kQ1R16Qs, o + kQ1R16Qs);
      }
    }
  }
}

}  // namespace

void packed_q8_0_r16(const PackedGemm& a) { dispatch_r16_tile<GgmlR16<8>>(a); }
void packed_q4_0_r16(const PackedGemm& a) {
  if (a.expanded) {
    dispatch_r16_tile<GgmlR16<4, true>>(a);
  } else {
    dispatch_r16_tile<GgmlR16<4>>(a);
  }
}
void packed_q5_0_r16(const PackedGemm& a) {
  if (a.expanded) {
    dispatch_r16_tile<GgmlR16<5, true>>(a);
  } else {
    dispatch_r16_tile<GgmlR16<5>>(a);
  }
}

void packed_iq4_nl_r16(const PackedGemm& a) {
  if (a.expanded) {
    dispatch_r16_tile<GgmlR16<4, true, true>>(a);
  } else {
    dispatch_r16_tile<GgmlR16<4, false, true>>(a);
  }
}

template <int kBits>
void packed_q1_r16(const PackedGemm& a) {
  if (a.expanded) {
    dispatch_r16_tile<Q1R16<kBits, true>>(a);
  } else {
    dispatch_r16_tile<Q1R16<kBits>>(a);
  }
}

void register_matmul_packed(KernelTable& t) {
  matmul_entry(t, DType::kQ8_0R16) = {nullptr,         ActKind::kQ8, kR16Mr, 1,
                                      packed_q8_0_r16, kR16Ng,       false};
  MatmulEntry& q4 = matmul_entry(t, DType::kQ4_0R16);
  q4 = {nullptr, ActKind::kQ8, kR16Mr, 1, packed_q4_0_r16, kR16Ng, false};
  q4.expand = q45_0_expand<false>;
  q4.expanded_bytes = q4_0_expanded_bytes;
  MatmulEntry& q5 = matmul_entry(t, DType::kQ5_0R16);
  q5 = {nullptr, ActKind::kQ8, kR16Mr, 1, packed_q5_0_r16, kR16Ng, false};
  q5.expand = q45_0_expand<true>;
  q5.expanded_bytes = q4_0_expanded_bytes;
  MatmulEntry& q41 = matmul_entry(t, DType::kQ4_1R16);
  q41 = {nullptr, ActKind::kQ8, kR16Mr, 1, packed_q1_r16<4>, kR16Ng, false};
  q41.expand = q1_expand<false>;
  q41.expanded_bytes = q1_expanded_bytes;
  MatmulEntry& q51 = matmul_entry(t, DType::kQ5_1R16);
  q51 = {nullptr, ActKind::kQ8, kR16Mr, 1, packed_q1_r16<5>, kR16Ng, false};
  q51.expand = q1_expand<true>;
  q51.expanded_bytes = q1_expanded_bytes;
  MatmulEntry& nl = matmul_entry(t, DType::kIQ4_NLR16);
  nl = {nullptr, ActKind::kQ8, kR16Mr, 1, packed_iq4_nl_r16, kR16Ng, false};
  nl.expand = q45_0_expand<false, true>;
  nl.expanded_bytes = q4_0_expanded_bytes;
  matmul_entry(t, DType::kQ8_0).prefer_packed = true;
  matmul_entry(t, DType::kQ4_0).prefer_packed = true;
}

}  // namespace runnel::kernels::cpu::avx512
