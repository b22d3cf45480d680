// The backend functions: matmul, attention and rms_norm run the dispatched kernels (kernels/cpu,
// the best ISA variant for this CPU); weight types without a kernel fall back to dequantizing
// rows here. RoPE stays scalar (it is a tiny share of a step), its sin/cos table shared by the
// rope calls of one forward.
#include "array/backend.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "array/internal.h"
#include "base/half.h"
#include "base/thread_pool.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/quant.h"
#include "kernels/cpu/vec.h"

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
    case DType::kIQ4_NL:
    case DType::kIQ4_XS:
    case DType::kQ8_0R16:
    case DType::kQ4_0R16:
    case DType::kQ8AR16:
    case DType::kQ4AR16:
    case DType::kQ8AR16G64:
    case DType::kQ4AR16G64:
    case DType::kF16R16:
    case DType::kBF16R16:
    case DType::kF32R16:
    case DType::kQ4_KR16:
    case DType::kQ6_KR16:
    case DType::kQ5_KR16:
    case DType::kQ5_0R16:
    case DType::kQ3_KR16:
    case DType::kQ2_KR16:
    case DType::kQ5_1R16:
    case DType::kQ4_1R16:
    case DType::kIQ4_NLR16:
    case DType::kIQ4_XSR16:
      return true;
    default:
      return false;
  }
}

void linear(const float* x, int64_t m, int64_t k, const void* w, DType wtype, int64_t n, float* y) {
  const size_t rb = row_bytes(wtype, static_cast<size_t>(k));
  ThreadPool& pool = ThreadPool::global();
  if (kernels::cpu::matmul_supports(wtype)) {
    kernels::cpu::matmul(x, static_cast<size_t>(k), static_cast<size_t>(m), static_cast<size_t>(k),
                         w, wtype, rb, static_cast<size_t>(n), y, static_cast<size_t>(n), pool);
    return;
  }
  const char* wb = static_cast<const char*>(w);
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
  auto norm = [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; ++r) {
      kernels::cpu::rms_norm(x + r * d, w, y + r * d, static_cast<size_t>(d), eps);
    }
  };
  for_rows(static_cast<size_t>(rows), static_cast<size_t>(d), norm);  // a prompt's: both threads
}

namespace {

// cos/sin of every (token, pair) of one rope call. q and k of every layer rotate by the same
// positions with the same config, so the last table is kept (per thread) and reused when both
// match: the values are those a fresh computation gives.
struct RopeTable {
  std::vector<int32_t> positions;
  int64_t n = 0;
  float theta = 0, freq_scale = 0;
  std::vector<float> freq_factors;
  std::vector<float> cos, sin;  // [token][pair]
};

const RopeTable& rope_table(const int32_t* positions, int64_t n_tokens, int64_t n,
                            const RopeConfig& cfg) {
  thread_local RopeTable cached;
  RopeTable& t = cached;  // a lambda naming `cached` would reach each pool thread's own copy
  const auto tokens = static_cast<size_t>(n_tokens);
  if (t.n == n && t.theta == cfg.theta && t.freq_scale == cfg.freq_scale &&
      t.freq_factors == cfg.freq_factors && t.positions.size() == tokens &&
      std::equal(positions, positions + tokens, t.positions.begin())) {
    return t;
  }
  const auto half = static_cast<size_t>(n / 2);
  std::vector<double> freq(half);
  for (size_t i = 0; i < half; ++i) {
    freq[i] = std::pow(static_cast<double>(cfg.theta),
                       -2.0 * static_cast<double>(i) / static_cast<double>(n));
    if (!cfg.freq_factors.empty()) freq[i] /= cfg.freq_factors[i];
  }
  t.positions.assign(positions, positions + tokens);
  t.n = n;
  t.theta = cfg.theta;
  t.freq_scale = cfg.freq_scale;
  t.freq_factors = cfg.freq_factors;
  t.cos.resize(tokens * half);
  t.sin.resize(tokens * half);
  // Tokens are independent, so a prompt's are split over the pool.
  auto fill = [&](size_t t0, size_t t1) {
    for (size_t tok = t0; tok < t1; ++tok) {
      const double p = static_cast<double>(positions[tok]) * cfg.freq_scale;
      for (size_t i = 0; i < half; ++i) {
        t.cos[tok * half + i] = static_cast<float>(std::cos(p * freq[i]));
        t.sin[tok * half + i] = static_cast<float>(std::sin(p * freq[i]));
      }
    }
  };
  if (tokens >= 16) {
    ThreadPool::global().parallel_for(tokens, 4, fill);
  } else {
    fill(0, tokens);
  }
  return t;
}

}  // namespace

namespace {

// One token's heads: y[h] = x[h] rotated by the token's cos/sin (pairs of the first n elements;
// the rest copied), by the kernel every ISA computes with the same bits (vec.h: rope_rows).
void rotate_heads(const float* x, const float* cos_t, const float* sin_t, int64_t n_heads,
                  int64_t head_dim, int64_t n, bool neox, float* y) {
  kernels::cpu::rope_rows(x, y, static_cast<size_t>(n_heads), static_cast<size_t>(head_dim),
                          static_cast<size_t>(n), cos_t, sin_t,
                          neox ? kernels::cpu::RopeStyle::kNeox : kernels::cpu::RopeStyle::kNormal);
}

// fn(t0, t1) over the tokens: a prompt's split over the pool.
void for_tokens(int64_t n_tokens, FunctionRef<void(size_t, size_t)> fn) {
  if (n_tokens >= 16) {
    ThreadPool::global().parallel_for(static_cast<size_t>(n_tokens), 4, fn);
  } else {
    fn(0, static_cast<size_t>(n_tokens));
  }
}

}  // namespace

void rope(const float* x, const int32_t* positions, int64_t n_tokens, int64_t n_heads,
          int64_t head_dim, const RopeConfig& cfg, float* y) {
  const int64_t n = cfg.n_dims == 0 ? head_dim : cfg.n_dims;
  const int64_t half = n / 2;
  const RopeTable& table = rope_table(positions, n_tokens, n, cfg);
  for_tokens(n_tokens, [&](size_t t0, size_t t1) {
    for (auto t = static_cast<int64_t>(t0); t < static_cast<int64_t>(t1); ++t) {
      const int64_t row = t * n_heads * head_dim;
      rotate_heads(x + row, table.cos.data() + t * half, table.sin.data() + t * half, n_heads,
                   head_dim, n, cfg.neox, y + row);
    }
  });
}

void head_norm_rope(const float* x, int64_t x_stride, int64_t col0, const int32_t* positions,
                    int64_t n_tokens, int64_t n_heads, int64_t head_dim, const float* w, float eps,
                    const RopeConfig& cfg, float* y) {
  const int64_t n = cfg.n_dims == 0 ? head_dim : cfg.n_dims;
  const int64_t half = n / 2;
  const RopeTable& table = rope_table(positions, n_tokens, n, cfg);
  for_tokens(n_tokens, [&](size_t t0, size_t t1) {
    for (auto t = static_cast<int64_t>(t0); t < static_cast<int64_t>(t1); ++t) {
      const float* xt = x + t * x_stride + col0;
      float* yt = y + t * n_heads * head_dim;
      if (w != nullptr) {
        // Each head rms_norm'd on its own (as rms_norm over [tokens, heads, head_dim] does), then
        // rotated: one kernel, the bits of the two.
        kernels::cpu::head_norm_rope(
            xt, w, eps, yt, static_cast<size_t>(n_heads), static_cast<size_t>(head_dim),
            static_cast<size_t>(n), table.cos.data() + t * half, table.sin.data() + t * half,
            cfg.neox ? kernels::cpu::RopeStyle::kNeox : kernels::cpu::RopeStyle::kNormal);
      } else {
        rotate_heads(xt, table.cos.data() + t * half, table.sin.data() + t * half, n_heads,
                     head_dim, n, cfg.neox, yt);
      }
    }
  });
}

void attention(const AttentionProblem& p) {
  // One contiguous block holding every position.
  const void* k_block = p.k;
  const void* v_block = p.v;
  kernels::cpu::AttentionArgs a{};
  a.q = p.q;
  a.out = p.out;
  a.n_q = static_cast<int>(p.n_q);
  a.n_heads = static_cast<int>(p.n_heads);
  a.n_kv_heads = static_cast<int>(p.n_kv_heads);
  a.head_dim = static_cast<int>(p.head_dim);
  a.k_blocks = &k_block;
  a.v_blocks = &v_block;
  a.kv_dtype = p.kv_dtype;
  a.block_tokens = static_cast<int>(std::max<int64_t>(p.n_kv, 1));
  a.n_kv = static_cast<int>(p.n_kv);
  a.q_pos0 = static_cast<int>(p.q_pos0);
  a.scale = p.scale;
  kernels::cpu::attention(a, ThreadPool::global());
}

}  // namespace runnel::array::backend
