// The array layer's bridge to the compute kernels: each function takes raw pointers to
// contiguous row-major data. Primitives call these; kernels/ decides how the work is done.
#pragma once

#include <cstdint>

#include "array/ops.h"
#include "base/dtype.h"

namespace runnel::array::backend {

bool linear_supported(DType wtype);
// y[m, n] = x[m, k] · w[n, k]^T, w rows in wtype.
void linear(const float* x, int64_t m, int64_t k, const void* w, DType wtype, int64_t n, float* y);
// y[r] = x[r] / sqrt(mean(x[r]^2) + eps) * w, for rows of length d.
void rms_norm(const float* x, const float* w, int64_t rows, int64_t d, float eps, float* y);
// x, y [T, H, D]; positions [T].
void rope(const float* x, const int32_t* positions, int64_t n_tokens, int64_t n_heads,
          int64_t head_dim, const RopeConfig& cfg, float* y);
// The heads of token t start at x + t * x_stride + col0 (n_heads rows of head_dim, contiguous):
// each is rms_norm'd with w (unless w is null), then rotated: y [T, H, D]. The same bits as
// rms_norm and rope applied one after the other to those heads copied out.
void head_norm_rope(const float* x, int64_t x_stride, int64_t col0, const int32_t* positions,
                    int64_t n_tokens, int64_t n_heads, int64_t head_dim, const float* w, float eps,
                    const RopeConfig& cfg, float* y);

struct AttentionProblem {
  const float* q = nullptr;  // [n_q, n_heads, head_dim]
  float* out = nullptr;      // [n_q, n_heads, head_dim]
  const void* k = nullptr;   // [>= n_kv, n_kv_heads, head_dim] in kv_dtype
  const void* v = nullptr;
  DType kv_dtype = DType::kF32;
  int64_t n_q = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0, n_kv = 0, q_pos0 = 0;
  float scale = 1.f;
};
void attention(const AttentionProblem& p);

}  // namespace runnel::array::backend
