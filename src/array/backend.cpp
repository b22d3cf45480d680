// Scalar implementations of the backend functions, parallel over rows with the global pool.
#include "array/backend.h"

#include <cmath>
#include <vector>

#include "base/half.h"
#include "base/thread_pool.h"
#include "kernels/cpu/quant.h"

namespace runnel::array::backend {

bool linear_supported(DType wtype) {
  switch (wtype) {
    case DType::kF32:
    case DType::kF16:
    case DType::kBF16:
    case DType::kQ4_0:
    case DType::kQ4_1:
    case DType::kQ5_0:
    case DType::kQ5_1:
    case DType::kQ8_0:
    case DType::kQ2_K:
    case DType::kQ3_K:
    case DType::kQ4_K:
    case DType::kQ5_K:
    case DType::kQ6_K:
      return true;
    default:
      return false;
  }
}

void linear(const float* x, int64_t m, int64_t k, const void* w, DType wtype, int64_t n,
            float* y) {
  const size_t rb = row_bytes(wtype, static_cast<size_t>(k));
  const char* wb = static_cast<const char*>(w);
  ThreadPool& pool = ThreadPool::global();
  pool.parallel_for(static_cast<size_t>(n), 16, [&](size_t j0, size_t j1) {
    std::vector<float> row(static_cast<size_t>(k));
    for (size_t j = j0; j < j1; ++j) {
      const float* wr;
      if (wtype == DType::kF32) {
        wr = reinterpret_cast<const float*>(wb + j * rb);
      } else {
        kernels::cpu::dequantize_row(wtype, wb + j * rb, row.data(), static_cast<size_t>(k));
        wr = row.data();
      }
      for (int64_t i = 0; i < m; ++i) {
        const float* xr = x + i * k;
        float s = 0;
        for (int64_t p = 0; p < k; ++p) s += xr[p] * wr[p];
        y[i * n + static_cast<int64_t>(j)] = s;
      }
    }
  });
}

void rms_norm(const float* x, const float* w, int64_t rows, int64_t d, float eps, float* y) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * d;
    float* yr = y + r * d;
    double ss = 0;
    for (int64_t i = 0; i < d; ++i) ss += static_cast<double>(xr[i]) * xr[i];
    const float inv = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(d) + eps));
    for (int64_t i = 0; i < d; ++i) yr[i] = xr[i] * inv * w[i];
  }
}

void rope(const float* x, const int32_t* positions, int64_t n_tokens, int64_t n_heads,
          int64_t head_dim, const RopeConfig& cfg, float* y) {
  const int64_t n = cfg.n_dims == 0 ? head_dim : cfg.n_dims;
  const int64_t half = n / 2;
  std::vector<float> cos_t(static_cast<size_t>(half)), sin_t(static_cast<size_t>(half));
  for (int64_t t = 0; t < n_tokens; ++t) {
    const double p = static_cast<double>(positions[t]) * cfg.freq_scale;
    for (int64_t i = 0; i < half; ++i) {
      double freq = std::pow(static_cast<double>(cfg.theta), -2.0 * static_cast<double>(i) / static_cast<double>(n));
      if (!cfg.freq_factors.empty()) freq /= cfg.freq_factors[static_cast<size_t>(i)];
      cos_t[static_cast<size_t>(i)] = static_cast<float>(std::cos(p * freq));
      sin_t[static_cast<size_t>(i)] = static_cast<float>(std::sin(p * freq));
    }
    for (int64_t h = 0; h < n_heads; ++h) {
      const float* xr = x + (t * n_heads + h) * head_dim;
      float* yr = y + (t * n_heads + h) * head_dim;
      for (int64_t i = 0; i < half; ++i) {
        const int64_t a = cfg.neox ? i : 2 * i;
        const int64_t b = cfg.neox ? i + half : 2 * i + 1;
        const float c = cos_t[static_cast<size_t>(i)], s = sin_t[static_cast<size_t>(i)];
        const float x0 = xr[a], x1 = xr[b];
        yr[a] = x0 * c - x1 * s;
        yr[b] = x1 * c + x0 * s;
      }
      for (int64_t i = n; i < head_dim; ++i) yr[i] = xr[i];
    }
  }
}

namespace {
inline float kv_at(const void* base, DType dt, int64_t idx) {
  if (dt == DType::kF32) return static_cast<const float*>(base)[idx];
  return f16_to_f32(static_cast<const uint16_t*>(base)[idx]);
}
}  // namespace

void attention(const AttentionProblem& p) {
  const int64_t group = p.n_heads / p.n_kv_heads;
  const int64_t D = p.head_dim;
  const int64_t kv_row = p.n_kv_heads * D;
  ThreadPool::global().parallel_for(
      static_cast<size_t>(p.n_q * p.n_heads), 1, [&](size_t b, size_t e) {
        std::vector<float> acc(static_cast<size_t>(D));
        for (size_t task = b; task < e; ++task) {
          const int64_t t = static_cast<int64_t>(task) / p.n_heads;
          const int64_t h = static_cast<int64_t>(task) % p.n_heads;
          const int64_t kvh = h / group;
          const float* q = p.q + (t * p.n_heads + h) * D;
          const int64_t last = std::min(p.n_kv, p.q_pos0 + t + 1);
          // Online softmax: running max m, running sum s, accumulator acc.
          float m = -INFINITY;
          double s = 0;
          std::fill(acc.begin(), acc.end(), 0.f);
          for (int64_t j = 0; j < last; ++j) {
            float dot = 0;
            const int64_t ko = j * kv_row + kvh * D;
            for (int64_t d = 0; d < D; ++d) dot += q[d] * kv_at(p.k, p.kv_dtype, ko + d);
            dot *= p.scale;
            if (dot > m) {
              const float corr = m == -INFINITY ? 0.f : std::exp(m - dot);
              for (float& a : acc) a *= corr;
              s *= corr;
              m = dot;
            }
            const float w = std::exp(dot - m);
            s += w;
            for (int64_t d = 0; d < D; ++d) acc[static_cast<size_t>(d)] += w * kv_at(p.v, p.kv_dtype, ko + d);
          }
          float* o = p.out + (t * p.n_heads + h) * D;
          const float inv = s > 0 ? static_cast<float>(1.0 / s) : 0.f;
          for (int64_t d = 0; d < D; ++d) o[d] = acc[static_cast<size_t>(d)] * inv;
        }
      });
}

}  // namespace runnel::array::backend
