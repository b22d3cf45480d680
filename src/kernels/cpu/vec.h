// Per-token vector operations over one row of f32 (n elements), dispatched to the active ISA.
// Output may alias an input (y == x) unless noted.
#pragma once

#include <cstddef>
#include <cstdint>

namespace runnel::kernels::cpu {

// y = x / sqrt(mean(x²) + eps) * w   (w: n weights; nullptr means all ones)
void rms_norm(const float* x, const float* w, float* y, size_t n, float eps);
// y = exp(x - max x) / sum; n == 0 does nothing.
void softmax(const float* x, float* y, size_t n);
// y = silu(a) * b = a / (1 + exp(-a)) * b   (SwiGLU)
void silu_mul(const float* a, const float* b, float* y, size_t n);
// y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x³)))
void gelu_tanh(const float* x, float* y, size_t n);
// y = 0.5 x (1 + erf(x / sqrt(2)))
void gelu_erf(const float* x, float* y, size_t n);
void add(const float* a, const float* b, float* y, size_t n);
void mul(const float* a, const float* b, float* y, size_t n);
void scale(const float* x, float s, float* y, size_t n);
// The first (lowest) index of the largest of x[0..n), NaN never counting; -1 when nothing is
// larger than -inf (n == 0, or every value -inf or NaN). Greedy sampling over a vocabulary.
int64_t argmax(const float* x, size_t n);
// Σ exp(x[i] - m) for i < n, summed in double (every x[i] <= m; a -inf adds nothing, or at most
// 2e-38 on the SIMD variants, whose exp is exact to 2e-7): the log-sum-exp of logprobs.
double sum_exp(const float* x, size_t n, float m);
// Conversions (exact; f32 -> f16 rounds to nearest even).
void f16_to_f32(const uint16_t* x, float* y, size_t n);
void bf16_to_f32(const uint16_t* x, float* y, size_t n);
void f32_to_f16(const float* x, uint16_t* y, size_t n);
// GGML q8_0 blocks of n values (n % 32 == 0): the bytes of quantize_row(DType::kQ8_0, ...) (d =
// amax / 127 as f16, q = roundf(x · (1 / d))), for the KV cache's writes.
void f32_to_q8_0(const float* x, void* y, size_t n);

// Rotary position embedding.
enum class RopeStyle {
  kNormal,  // GPT-J / GGUF Llama: rotates pairs (x[2i], x[2i+1])
  kNeox,    // GPT-NeoX / HF Llama: rotates pairs (x[i], x[i + n_rot/2])
};
// cos[i], sin[i] for i < n_rot/2 of angle pos * freq_scale * base^(-2i/n_rot) / freq_factors[i]
// (freq_factors may be nullptr: all ones). n_rot even.
void rope_cos_sin(float pos, float base, float freq_scale, const float* freq_factors, size_t n_rot,
                  float* cos, float* sin);
// Rotates the first n_rot dims of each of n_heads heads in place; head h starts at x + h*head_dim.
void rope(float* x, size_t n_heads, size_t head_dim, size_t n_rot, const float* cos,
          const float* sin, RopeStyle style);
// The same rotation from x into y (y may be x; dims n_rot .. head_dim copied). Pair i of a head,
// (a, b), becomes (a·cos[i] − b·sin[i], b·cos[i] + a·sin[i]), each product and the difference or
// sum rounded on its own (no fused multiply-add), so every ISA gives the scalar bits.
void rope_rows(const float* x, float* y, size_t n_heads, size_t head_dim, size_t n_rot,
               const float* cos, const float* sin, RopeStyle style);
// Each head rms_norm'd with w (head_dim weights), then rotated as rope_rows: y[h] = the bits of
// rms_norm(x[h], w) followed by rope_rows, on every ISA (Qwen3's q_norm / k_norm before RoPE).
// x and y must not overlap.
void head_norm_rope(const float* x, const float* w, float eps, float* y, size_t n_heads,
                    size_t head_dim, size_t n_rot, const float* cos, const float* sin,
                    RopeStyle style);

}  // namespace runnel::kernels::cpu
