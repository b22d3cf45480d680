// GGML's IQ4_NL and IQ4_XS: per 32 elements a scale times kIQ4Values[q], a fixed non-uniform grid
// of 16 int8 values, denser near zero. Dequantization follows GGML's arithmetic (the scale, or
// IQ4_XS's d * (ls - 32), times the grid value, in f32). The quantizers are our own: per 32
// elements a search over candidate scales for the least squared error, then the indices picked
// again with the scale as stored, so that what decodes is the nearest grid point to each element.
#include "kernels/cpu/quant_iq4.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "base/half.h"

namespace runnel::kernels::cpu {
namespace {

constexpr int kGrid = 16;
constexpr int kSubBlocks = kQKK / kQK;  // 32-element sub-blocks of an IQ4_XS super-block
// Index of the grid value nearest zero (1): what elements of a zero-scale block store.
constexpr uint8_t kZeroIndex = 8;

// Candidate scales per 32 elements, in terms of the element of largest magnitude, max: those that
// map it onto an end of the grid (-127 or 113) times 1 + kStep * k for |k| <= kSteps (smaller
// scales clip it but may serve the rest better; larger ones, the reverse), then those that map it
// onto each other grid value. On Gaussian data this finds what a dense sweep of scales finds to
// within 0.2% of the error. The second kind matter little for that but make a requantized block
// find its own scale again, wherever its largest element sits on the grid (IQ4_XS's scales, as
// multiples of d, can put it anywhere). The 32 candidates make IQ4 quantization ~40x slower than
// Q4_0's rounding: ~9 M elements/s on one core of the dev machine (a 7B model in ~13 minutes).
constexpr int kSteps = 4;
constexpr float kStep = 0.05f;

// Index of the grid value nearest t, by table: every midpoint between neighbouring grid values
// is a multiple of 0.5, so all t in [h / 2, h / 2 + 0.5) share their nearest value (a t exactly
// on a midpoint takes the upper one). kNearest[h + 256] holds it for h = floor(2 t) in -256..256;
// t beyond the grid's ends clamps. Branch-free: the quantizers ran 3.5x faster than with a
// binary search.
struct NearestTable {
  uint8_t at[513];
  constexpr NearestTable() : at() {
    for (int h = -256; h <= 256; ++h) {
      const float t = 0.5f * h + 0.25f;
      int i = 0;
      while (i < kGrid - 1 && t > 0.5f * (kIQ4Values[i] + kIQ4Values[i + 1])) ++i;
      at[h + 256] = static_cast<uint8_t>(i);
    }
  }
};
constexpr NearestTable kNearest;

int nearest_index(float t) {
  const float u = std::fmin(std::fmax(2 * t + 256, 0.0f), 512.0f);  // NaN: 0
  return kNearest.at[static_cast<int>(u)];
}

// The nearest grid index of each x[j] / scale (kZeroIndex for every element when scale is 0).
void pick_indices(const float* x, float scale, uint8_t* idx) {
  if (scale == 0) {
    std::memset(idx, kZeroIndex, kQK);
    return;
  }
  const float inv = 1.0f / scale;
  for (int j = 0; j < kQK; ++j) idx[j] = static_cast<uint8_t>(nearest_index(x[j] * inv));
}

// Sum of (x[j] - scale * kIQ4Values[idx[j]])^2 over 32 elements.
float squared_error(const float* x, float scale, const uint8_t* idx) {
  float e = 0;
  for (int j = 0; j < kQK; ++j) {
    const float r = x[j] - scale * kIQ4Values[idx[j]];
    e += r * r;
  }
  return e;
}

// The signed scale that (nearly) minimizes sum (x[j] - s * kIQ4Values[q_j])^2 over 32 elements,
// each q_j the nearest index of x[j] / s, once s is rounded as it will be stored (`store`: f16
// for IQ4_NL, none for IQ4_XS's sub-blocks); 0 when every x[j] is 0. Each candidate scale fixes
// the indices; for those the least-squares scale is sum(x v) / sum(v v), and its error after the
// rounding decides. A later candidate must win by more than f32 rounding (relative to sum(x x),
// the scale of the errors), so that exact ties (a constant block maps onto -127 and onto 113
// alike) go to the first candidate whatever the rounding says: the same choice again when the
// block is requantized.
template <class Store>
float best_scale(const float* x, Store store) {
  float amax = 0, max = 0;
  for (int j = 0; j < kQK; ++j) {
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  if (amax == 0) return 0;
  float sxx = 0;
  for (int j = 0; j < kQK; ++j) sxx += x[j] * x[j];
  const float noise = sxx * 0x1p-20f;
  float best = 0, best_err = std::numeric_limits<float>::infinity();
  auto try_scale = [&](float candidate) {
    const float inv = 1.0f / candidate;
    float v[kQK], sxv = 0, svv = 0;  // svv >= 32: no grid value is 0
    for (int j = 0; j < kQK; ++j) {
      v[j] = kIQ4Values[nearest_index(x[j] * inv)];
      sxv += x[j] * v[j];
      svv += v[j] * v[j];
    }
    const float s = store(sxv / svv);
    // Summed residual by residual: sxx - 2 s sxv + s^2 svv would cancel to noise of ~2^-20 sxx,
    // as large as the differences `noise` is there to ignore.
    float err = 0;
    for (int j = 0; j < kQK; ++j) err += (x[j] - s * v[j]) * (x[j] - s * v[j]);
    if (err < best_err - noise) {
      best_err = err;
      best = s;
    }
  };
  for (const int end : {kIQ4Values[0], kIQ4Values[kGrid - 1]}) {
    for (int k = -kSteps; k <= kSteps; ++k) try_scale(max / end * (1 + kStep * k));
  }
  for (int i = 1; i < kGrid - 1; ++i) try_scale(max / kIQ4Values[i]);
  return best;
}

// The indices of 32 elements as nibbles: element j low in qs[j], element j + 16 high.
void pack_nibbles(const uint8_t* idx, uint8_t* qs) {
  for (int j = 0; j < kQK / 2; ++j) qs[j] = static_cast<uint8_t>(idx[j] | idx[j + kQK / 2] << 4);
}

// The integer l in -32..31 whose scale d * l decodes the 32 elements x best, from the nearest to
// scale / d and its neighbours, and the same with the other sign: the grid is not symmetric, so
// for a scale of a few d the other sign can fit better. (A requantized sub-block then finds its
// exact l again even when its own best scale, the search's start, is of the other sign.)
int best_multiple(const float* x, float d, float scale) {
  // |scale / d| <= 32 but for f16's rounding of a subnormal d; NaN (from NaN inputs) -> -32.
  const float r = scale / d;
  const int n = !(r > -32) ? -32 : r >= 31 ? 31 : static_cast<int>(std::lrintf(r));
  uint8_t idx[kQK];
  pick_indices(x, 0, idx);  // l = 0: every element decodes to 0
  int best = 0;
  float best_err = squared_error(x, 0, idx);
  for (const int c : {n, -n}) {
    for (int l = std::max(-32, c - 1); l <= std::min(31, c + 1); ++l) {
      const float dl = d * static_cast<float>(l);  // as dequant_iq4_xs computes it
      pick_indices(x, dl, idx);
      const float err = squared_error(x, dl, idx);
      if (err < best_err) {
        best_err = err;
        best = l;
      }
    }
  }
  return best;
}

}  // namespace

void dequant_iq4_nl(const BlockIQ4_NL* x, float* y, size_t nb) {
  for (size_t i = 0; i < nb; ++i, y += kQK) {
    const float d = f16_to_f32(x[i].d);
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = d * kIQ4Values[x[i].qs[j] & 0x0F];
      y[j + kQK / 2] = d * kIQ4Values[x[i].qs[j] >> 4];
    }
  }
}

void dequant_iq4_xs(const BlockIQ4_XS* x, float* y, size_t nb) {
  for (size_t i = 0; i < nb; ++i) {
    const float d = f16_to_f32(x[i].d);
    for (int ib = 0; ib < kSubBlocks; ++ib, y += kQK) {
      const float dl = d * iq4_xs_scale(x[i], ib);
      const uint8_t* qs = x[i].qs + ib * kQK / 2;
      for (int j = 0; j < kQK / 2; ++j) {
        y[j] = dl * kIQ4Values[qs[j] & 0x0F];
        y[j + kQK / 2] = dl * kIQ4Values[qs[j] >> 4];
      }
    }
  }
}

void quant_iq4_nl(const float* x, BlockIQ4_NL* y, size_t nb) {
  for (size_t i = 0; i < nb; ++i, x += kQK) {
    y[i].d = f32_to_f16(best_scale(x, [](float s) { return f16_to_f32(f32_to_f16(s)); }));
    uint8_t idx[kQK];
    pick_indices(x, f16_to_f32(y[i].d), idx);
    pack_nibbles(idx, y[i].qs);
  }
}

// Each sub-block's best scale first; then d such that the one of largest magnitude is d * -32
// (ls - 32 spans -32..31: that end holds it best), and every other sub-block's scale a multiple
// of d (best_multiple). The largest keeps l = -32 even where -31 would fit it a little better:
// d is defined by it, and so a requantized block finds the same d again.
void quant_iq4_xs(const float* x, BlockIQ4_XS* y, size_t nb) {
  for (size_t i = 0; i < nb; ++i, x += kQKK) {
    float scale[kSubBlocks];
    int largest = 0;
    for (int ib = 0; ib < kSubBlocks; ++ib) {
      scale[ib] = best_scale(x + ib * kQK, [](float s) { return s; });
      if (std::fabs(scale[ib]) > std::fabs(scale[largest])) largest = ib;
    }
    y[i].d = scale[largest] != 0 ? f32_to_f16(scale[largest] / -32) : 0;
    const float d = f16_to_f32(y[i].d);
    y[i].scales_h = 0;
    std::memset(y[i].scales_l, 0, sizeof(y[i].scales_l));
    for (int ib = 0; ib < kSubBlocks; ++ib) {
      const float* xb = x + ib * kQK;
      int l = 0;
      if (d != 0) l = ib == largest ? -32 : best_multiple(xb, d, scale[ib]);
      const int ls = l + 32;
      y[i].scales_l[ib / 2] |= static_cast<uint8_t>((ls & 0x0F) << 4 * (ib % 2));
      y[i].scales_h |= static_cast<uint16_t>((ls >> 4) << 2 * ib);
      uint8_t idx[kQK];
      pick_indices(xb, d * static_cast<float>(l), idx);
      pack_nibbles(idx, y[i].qs + ib * kQK / 2);
    }
  }
}

}  // namespace runnel::kernels::cpu
