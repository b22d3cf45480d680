// The AVX-512 VNNI kernel for IQ4_XSR16 (packed_kquants.h), equal bit for bit to the scalar
// reference in packed_kquants.cpp: Q4_K's frame without the mins. Per super-block and group the
// 16 rows' 6-bit scales are decoded with byte ops on two loads (iq4_xs_r16_scale_bytes); per
// 32-element sub-block the nibbles are looked up as kIQ4Values[q] + 128 (r16_block_dots<4, ...,
// kNl>: one vpshufb per half chunk), the dot starts at -128 · Σx_j, and isum += sc_j · dot_j
// (add_scaled); then one fma per super-block. Prefill reads an expanded copy of each slice
// (iq4_xs_expand: d as f32, the scales in add_scaled's form, the quants as those bytes), so its
// tiles run the 8-bit dot core. Register tile as in the K-quant kernels: MR rows of x by NG
// groups of 16 weight rows.
#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/packed.h"
#include "kernels/cpu/packed_dot_avx512.h"
#include "kernels/cpu/packed_kquants.h"
#include "kernels/cpu/packed_kquants_avx512.h"
#include "kernels/cpu/prefetch.h"

namespace runnel::kernels::cpu::avx512 {
namespace {

// A super-block's header for one group (w: its first byte): d, and sc_j as int32 lanes in
// scale_pair form.
inline void iq4_xs_header(const uint8_t* w, __m512& dv, __m512i* isc) {
  dv = f16x16(w);
  alignas(64) int8_t sc[128];
  iq4_xs_r16_scale_bytes(w, sc);
  for (int j = 0; j < 8; ++j) {
    const __m128i b =
        _mm_load_si128(reinterpret_cast<const __m128i*>(sc + 64 * (j % 2) + 16 * (j / 2)));
    isc[j] = scale_pair(_mm512_cvtepi8_epi32(b));
  }
}

// The expanded layout, per group and super-block: d (16 f32), the 8 scale vectors, then each
// sub-block's quants as bytes in the Q8_0R16 chunk order.
constexpr size_t kXIsc = 64, kXQs = kXIsc + 8 * 64, kXSb = kXQs + 8 * 512;

size_t iq4_xs_expanded_bytes(size_t k) { return k / 256 * kXSb; }

void iq4_xs_expand(const uint8_t* w, size_t gb, size_t k, int ng, uint8_t* out) {
  const size_t nsb = k / 256;
  for (int g = 0; g < ng; ++g) {
    for (size_t sb = 0; sb < nsb; ++sb) {
      const uint8_t* src = w + g * gb + sb * kIQ4XSR16SbBytes;
      uint8_t* o = out + (g * nsb + sb) * kXSb;
      __m512 dv;
      __m512i isc[8];
      iq4_xs_header(src, dv, isc);
      _mm512_store_ps(o, dv);
      for (int j = 0; j < 8; ++j) _mm512_store_si512(o + kXIsc + 64 * j, isc[j]);
      for (int j = 0; j < 8; ++j) {
        nibbles_to_bytes<true>(src + kIQ4XSR16Qs + 256 * j, o + kXQs + 512 * j);
      }
    }
  }
}

// kX: a.w is the expanded layout (prefill), else the packed IQ4_XSR16 one.
template <bool kX>
struct IQ4XS {
  template <int MR, int NG>
  static void run(const PackedGemm& a) {
    const size_t nsb = a.k / 256, gb = a.w_group_bytes;
    const BlockQ8Act* x[MR];
    for (int i = 0; i < MR; ++i) x[i] = reinterpret_cast<const BlockQ8Act*>(a.x + i * a.x_stride);
    __m512 acc[MR][NG];
    for (int i = 0; i < MR; ++i)
      for (int g = 0; g < NG; ++g) acc[i][g] = _mm512_setzero_ps();
    // Decode (one group, streamed): each line prefetched just before it is read, as Q4_K's.
    constexpr bool kLines = MR == 1 && NG == 1 && !kX;
    const bool lines = kLines && a.stream;
    for (size_t sb = 0; sb < nsb; ++sb) {
      const uint8_t* w = a.w + sb * (kX ? kXSb : kIQ4XSR16SbBytes);
      if (lines) {
        for (size_t o = 0; o < kIQ4XSR16Qs; o += 64) prefetch_line_ahead(w + o);
      }
      __m512 dv[NG];
      __m512i isc[NG][kX ? 1 : 8];
      for (int g = 0; g < NG; ++g) {
        if constexpr (kX) {
          dv[g] = _mm512_load_ps(w + g * gb);
        } else {
          iq4_xs_header(w + g * gb, dv[g], isc[g]);
        }
      }
      __m512i isum[MR][NG];
      for (int i = 0; i < MR; ++i)
        for (int g = 0; g < NG; ++g) isum[i][g] = _mm512_setzero_si512();
      for (int j = 0; j < 8; ++j) {
        if (!kX && a.stream && !kLines) {
          for (int g = 0; g < NG; ++g) prefetch_ahead_part(w + g * gb, kIQ4XSR16SbBytes, j, 8);
        }
        const BlockQ8Act* xb[MR];
        __m512i dot[MR][NG];
        for (int i = 0; i < MR; ++i) {
          xb[i] = x[i] + sb * 8 + j;
          const __m512i start = _mm512_set1_epi32(-128 * xb[i]->sum);
          for (int g = 0; g < NG; ++g) dot[i][g] = start;
        }
        if constexpr (kX) {
          r16_block_dots<8, MR, NG>(w + kXQs + 512 * j, gb, xb, dot);
        } else if (lines) {
          r16_block_dots<4, MR, NG, kLines, true>(w + kIQ4XSR16Qs + 256 * j, gb, xb, dot);
        } else {
          r16_block_dots<4, MR, NG, false, true>(w + kIQ4XSR16Qs + 256 * j, gb, xb, dot);
        }
        for (int g = 0; g < NG; ++g) {
          const __m512i sc =
              kX ? _mm512_load_si512(w + g * gb + kXIsc + 64 * j) : isc[g][kX ? 0 : j];
          for (int i = 0; i < MR; ++i) isum[i][g] = add_scaled(isum[i][g], dot[i][g], sc);
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
};

}  // namespace

void packed_iq4_xs_r16(const PackedGemm& a) {
  if (a.expanded) {
    dispatch_r16_tile<IQ4XS<true>>(a);
  } else {
    dispatch_r16_tile<IQ4XS<false>>(a);
  }
}

void register_matmul_packed_iq4_xs(KernelTable& t) {
  MatmulEntry& e = matmul_entry(t, DType::kIQ4_XSR16);
  e = {nullptr, ActKind::kQ8x256, kR16Mr, 1, packed_iq4_xs_r16, kR16Ng, false};
  e.expand = iq4_xs_expand;
  e.expanded_bytes = iq4_xs_expanded_bytes;
}

}  // namespace runnel::kernels::cpu::avx512
