// The attention entry point (argument validation, dispatch) and the scalar reference variant.
#include "kernels/cpu/attention.h"

#include <cmath>

#include "base/error.h"
#include "base/half.h"
#include "kernels/cpu/attention_impl.h"
#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/kernel_time.h"

namespace runnel::kernels::cpu {

void attention(const AttentionArgs& a, ThreadPool& pool) {
  const KernelTimer timer(KernelTimer::kAttention);
  check(a.n_q >= 0 && a.n_heads > 0 && a.n_kv_heads > 0 && a.head_dim > 0, "attention",
        "bad sizes: n_q=", a.n_q, " n_heads=", a.n_heads, " n_kv_heads=", a.n_kv_heads,
        " head_dim=", a.head_dim);
  check(a.n_heads % a.n_kv_heads == 0, "attention", "n_heads=", a.n_heads,
        " is not a multiple of n_kv_heads=", a.n_kv_heads);
  check(a.head_dim <= kMaxHeadDim, "attention", "head_dim=", a.head_dim, " > ", kMaxHeadDim);
  check(a.kv_dtype == DType::kF32 || a.kv_dtype == DType::kF16, "attention", "KV type ",
        dtype_name(a.kv_dtype), " is not supported (f32, f16)");
  check(a.n_kv >= 0 && a.q_pos0 >= 0, "attention", "bad positions: n_kv=", a.n_kv,
        " q_pos0=", a.q_pos0);
  check(a.n_kv == 0 || a.block_tokens > 0, "attention", "block_tokens=", a.block_tokens);
  if (a.n_q == 0) return;
  kernel_table().attention(a, pool);
}

namespace scalar {
namespace {

struct Ops {
  static float dot(const float* q, const float* k, int d) {
    float s = 0;
    for (int i = 0; i < d; ++i) s += q[i] * k[i];
    return s;
  }
  static float dot(const float* q, const uint16_t* k, int d) {
    float s = 0;
    for (int i = 0; i < d; ++i) s += q[i] * f16_to_f32(k[i]);
    return s;
  }
  static void axpy(float* acc, float p, const float* v, int d) {
    for (int i = 0; i < d; ++i) acc[i] += p * v[i];
  }
  static void axpy(float* acc, float p, const uint16_t* v, int d) {
    for (int i = 0; i < d; ++i) acc[i] += p * f16_to_f32(v[i]);
  }
  static void scale(float* acc, float s, int d) {
    for (int i = 0; i < d; ++i) acc[i] *= s;
  }
  static float exp_sub_sum(float* s, int n, float m) {
    float sum = 0;
    for (int j = 0; j < n; ++j) sum += (s[j] = std::exp(s[j] - m));
    return sum;
  }
};

void run(const AttentionArgs& a, ThreadPool& pool) { attention_impl<Ops>(a, pool); }

}  // namespace

void register_attention(KernelTable& t) { t.attention = run; }

}  // namespace scalar
}  // namespace runnel::kernels::cpu
