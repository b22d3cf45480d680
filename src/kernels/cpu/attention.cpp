// The attention entry point (argument validation, dispatch) and the scalar reference variant.
#include "kernels/cpu/attention.h"

#include <cmath>

#include "base/error.h"
#include "base/half.h"
#include "kernels/cpu/attention_impl.h"
#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/kernel_time.h"
#include "kernels/cpu/quant.h"

namespace runnel::kernels::cpu {

void attention(const AttentionArgs& a, ThreadPool& pool) {
  const KernelTimer timer(KernelTimer::kAttention);
  check(a.n_q >= 0 && a.n_heads > 0 && a.n_kv_heads > 0 && a.head_dim > 0, "attention",
        "bad sizes: n_q=", a.n_q, " n_heads=", a.n_heads, " n_kv_heads=", a.n_kv_heads,
        " head_dim=", a.head_dim);
  check(a.n_heads % a.n_kv_heads == 0, "attention", "n_heads=", a.n_heads,
        " is not a multiple of n_kv_heads=", a.n_kv_heads);
  check(a.head_dim <= kMaxHeadDim, "attention", "head_dim=", a.head_dim, " > ", kMaxHeadDim);
  check(a.kv_dtype == DType::kF32 || a.kv_dtype == DType::kF16 || a.kv_dtype == DType::kQ8_0,
        "attention", "KV type ", dtype_name(a.kv_dtype), " is not supported (f32, f16, q8_0)");
  check(a.kv_dtype != DType::kQ8_0 || a.head_dim % kQK == 0, "attention", "a q8_0 KV cache needs ",
        "head_dim a multiple of ", kQK, ", got ", a.head_dim);
  check(a.n_kv >= 0 && a.q_pos0 >= 0, "attention", "bad positions: n_kv=", a.n_kv,
        " q_pos0=", a.q_pos0);
  check(a.n_kv == 0 || a.block_tokens > 0, "attention", "block_tokens=", a.block_tokens);
  if (a.n_q == 0) return;
  kernel_table().attention(a, pool);
}

namespace scalar {
namespace {

// Element e of a q8_0 row: exact in f32 (an int8 times an f16).
float q8_at(const BlockQ8_0* row, int e) {
  const BlockQ8_0& b = row[e / kQK];
  return static_cast<float>(b.qs[e % kQK]) * f16_to_f32(b.d);
}

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
  static float dot(const float* q, const BlockQ8_0* k, int d) {
    float s = 0;
    for (int i = 0; i < d; ++i) s += q[i] * q8_at(k, i);
    return s;
  }
  static void axpy(float* acc, float p, const float* v, int d) {
    for (int i = 0; i < d; ++i) acc[i] += p * v[i];
  }
  static void axpy(float* acc, float p, const uint16_t* v, int d) {
    for (int i = 0; i < d; ++i) acc[i] += p * f16_to_f32(v[i]);
  }
  static void axpy(float* acc, float p, const BlockQ8_0* v, int d) {
    for (int i = 0; i < d; ++i) acc[i] += p * q8_at(v, i);
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
