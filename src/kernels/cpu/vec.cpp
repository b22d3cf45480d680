// Per-token vector ops: the public entry points (dispatched through the kernel table), the scalar
// reference of each, and RoPE (scalar only: it touches head_dim × heads values once per token).
#include "kernels/cpu/vec.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "base/half.h"
#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/quant.h"

namespace runnel::kernels::cpu {

void rms_norm(const float* x, const float* w, float* y, size_t n, float eps) {
  kernel_table().rms_norm(x, w, y, n, eps);
}
void softmax(const float* x, float* y, size_t n) { kernel_table().softmax(x, y, n); }
void silu_mul(const float* a, const float* b, float* y, size_t n) {
  kernel_table().silu_mul(a, b, y, n);
}
void gelu_tanh(const float* x, float* y, size_t n) { kernel_table().gelu_tanh(x, y, n); }
void gelu_erf(const float* x, float* y, size_t n) { kernel_table().gelu_erf(x, y, n); }
void add(const float* a, const float* b, float* y, size_t n) { kernel_table().add(a, b, y, n); }
void mul(const float* a, const float* b, float* y, size_t n) { kernel_table().mul(a, b, y, n); }
void scale(const float* x, float s, float* y, size_t n) { kernel_table().scale(x, s, y, n); }
int64_t argmax(const float* x, size_t n) { return kernel_table().argmax(x, n); }
double sum_exp(const float* x, size_t n, float m) { return kernel_table().sum_exp(x, n, m); }
void f16_to_f32(const uint16_t* x, float* y, size_t n) { kernel_table().f16_to_f32(x, y, n); }
void bf16_to_f32(const uint16_t* x, float* y, size_t n) { kernel_table().bf16_to_f32(x, y, n); }
void f32_to_f16(const float* x, uint16_t* y, size_t n) { kernel_table().f32_to_f16(x, y, n); }
void f32_to_q8_0(const float* x, void* y, size_t n) { kernel_table().f32_to_q8_0(x, y, n); }

void rope_cos_sin(float pos, float base, float freq_scale, const float* freq_factors, size_t n_rot,
                  float* cos, float* sin) {
  for (size_t i = 0; i < n_rot / 2; ++i) {
    double inv_freq = std::pow(static_cast<double>(base), -2.0 * i / static_cast<double>(n_rot));
    if (freq_factors) inv_freq /= freq_factors[i];
    const double angle = static_cast<double>(pos) * freq_scale * inv_freq;
    cos[i] = static_cast<float>(std::cos(angle));
    sin[i] = static_cast<float>(std::sin(angle));
  }
}

void rope(float* x, size_t n_heads, size_t head_dim, size_t n_rot, const float* cos,
          const float* sin, RopeStyle style) {
  kernel_table().rope_rows(x, x, n_heads, head_dim, n_rot, cos, sin, style);
}
void rope_rows(const float* x, float* y, size_t n_heads, size_t head_dim, size_t n_rot,
               const float* cos, const float* sin, RopeStyle style) {
  kernel_table().rope_rows(x, y, n_heads, head_dim, n_rot, cos, sin, style);
}
void head_norm_rope(const float* x, const float* w, float eps, float* y, size_t n_heads,
                    size_t head_dim, size_t n_rot, const float* cos, const float* sin,
                    RopeStyle style) {
  kernel_table().head_norm_rope(x, w, eps, y, n_heads, head_dim, n_rot, cos, sin, style);
}

namespace scalar {
namespace {

// One pass: a strict comparison never takes a NaN, and keeps the first of equal maxima.
int64_t argmax_ref(const float* x, size_t n) {
  float m = -std::numeric_limits<float>::infinity();
  int64_t at = -1;
  for (size_t i = 0; i < n; ++i) {
    if (m < x[i]) {
      m = x[i];
      at = static_cast<int64_t>(i);
    }
  }
  return at;
}

double sum_exp_ref(const float* x, size_t n, float m) {
  double s = 0;
  for (size_t i = 0; i < n; ++i) s += std::exp(static_cast<double>(x[i] - m));
  return s;
}

void rms_norm_ref(const float* x, const float* w, float* y, size_t n, float eps) {
  if (n == 0) return;
  float ss = 0;
  for (size_t i = 0; i < n; ++i) ss += x[i] * x[i];
  const float r = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
  for (size_t i = 0; i < n; ++i) y[i] = x[i] * r * (w ? w[i] : 1.0f);
}
void softmax_ref(const float* x, float* y, size_t n) {
  if (n == 0) return;
  float mx = x[0];
  for (size_t i = 1; i < n; ++i) mx = std::max(mx, x[i]);
  float sum = 0;
  for (size_t i = 0; i < n; ++i) {
    y[i] = std::exp(x[i] - mx);
    sum += y[i];
  }
  const float inv = 1.0f / sum;
  for (size_t i = 0; i < n; ++i) y[i] *= inv;
}
void silu_mul_ref(const float* a, const float* b, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = a[i] / (1.0f + std::exp(-a[i])) * b[i];
}
void gelu_tanh_ref(const float* x, float* y, size_t n) {
  constexpr float kC = 0.7978845608028654f;  // sqrt(2/pi)
  for (size_t i = 0; i < n; ++i) {
    const float v = x[i];
    y[i] = 0.5f * v * (1.0f + std::tanh(kC * (v + 0.044715f * v * v * v)));
  }
}
void gelu_erf_ref(const float* x, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i)
    y[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * 0.70710678118654752f));
}
void add_ref(const float* a, const float* b, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}
void mul_ref(const float* a, const float* b, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = a[i] * b[i];
}
void scale_ref(const float* x, float s, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = x[i] * s;
}
void f16_to_f32_ref(const uint16_t* x, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = runnel::f16_to_f32(x[i]);
}
void bf16_to_f32_ref(const uint16_t* x, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = runnel::bf16_to_f32(x[i]);
}
void f32_to_f16_ref(const float* x, uint16_t* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = runnel::f32_to_f16(x[i]);
}
// f as it is: a product passed through here is never contracted with the sum it feeds into an
// FMA (this file builds for the baseline ISA, which has none, but a -march=native build would).
inline float rounded(float f) {
  __asm__("" : "+x"(f));
  return f;
}

void rope_rows_ref(const float* x, float* y, size_t n_heads, size_t head_dim, size_t n_rot,
                   const float* cos, const float* sin, RopeStyle style) {
  const size_t half = n_rot / 2;
  for (size_t h = 0; h < n_heads; ++h) {
    const float* xr = x + h * head_dim;
    float* yr = y + h * head_dim;
    for (size_t i = 0; i < half; ++i) {
      const size_t i0 = style == RopeStyle::kNormal ? 2 * i : i;
      const size_t i1 = style == RopeStyle::kNormal ? 2 * i + 1 : i + half;
      const float a = xr[i0], b = xr[i1];
      yr[i0] = rounded(a * cos[i]) - rounded(b * sin[i]);
      yr[i1] = rounded(b * cos[i]) + rounded(a * sin[i]);
    }
    if (yr != xr) {
      for (size_t i = n_rot; i < head_dim; ++i) yr[i] = xr[i];
    }
  }
}

// Each head normalized into y, then rotated in place there.
void head_norm_rope_ref(const float* x, const float* w, float eps, float* y, size_t n_heads,
                        size_t head_dim, size_t n_rot, const float* cos, const float* sin,
                        RopeStyle style) {
  for (size_t h = 0; h < n_heads; ++h) {
    rms_norm_ref(x + h * head_dim, w, y + h * head_dim, head_dim, eps);
    rope_rows_ref(y + h * head_dim, y + h * head_dim, 1, head_dim, n_rot, cos, sin, style);
  }
}

void f32_to_q8_0_ref(const float* x, void* y, size_t n) { quantize_row(DType::kQ8_0, x, y, n); }
uint64_t read_sum_ref(const void* p, size_t bytes) {
  // Four independent chains so the loop is not latency-bound.
  const uint64_t* u = static_cast<const uint64_t*>(p);
  uint64_t a = 0, b = 0, c = 0, d = 0;
  for (size_t i = 0; i + 4 <= bytes / 8; i += 4) {
    a ^= u[i];
    b ^= u[i + 1];
    c ^= u[i + 2];
    d ^= u[i + 3];
  }
  return a ^ b ^ c ^ d;
}

}  // namespace

void register_vec(KernelTable& t) {
  t.rms_norm = rms_norm_ref;
  t.softmax = softmax_ref;
  t.silu_mul = silu_mul_ref;
  t.rope_rows = rope_rows_ref;
  t.head_norm_rope = head_norm_rope_ref;
  t.gelu_tanh = gelu_tanh_ref;
  t.gelu_erf = gelu_erf_ref;
  t.add = add_ref;
  t.mul = mul_ref;
  t.scale = scale_ref;
  t.argmax = argmax_ref;
  t.sum_exp = sum_exp_ref;
  t.f16_to_f32 = f16_to_f32_ref;
  t.bf16_to_f32 = bf16_to_f32_ref;
  t.f32_to_f16 = f32_to_f16_ref;
  t.f32_to_q8_0 = f32_to_q8_0_ref;
  t.read_sum = read_sum_ref;
}

}  // namespace scalar
}  // namespace runnel::kernels::cpu
