// kernel_time: the matmul and attention entry points add their calls and time while timing is
// on, nothing while it is off, and turning it on starts from zero.
#include "kernels/cpu/kernel_time.h"

#include <gtest/gtest.h>

#include <vector>

#include "base/thread_pool.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/matmul.h"

namespace runnel::kernels::cpu {
namespace {

void one_matmul() {
  std::vector<float> x(64, 0.5f), w(32 * 64, 0.25f), y(32);
  matmul(x.data(), 64, 1, 64, w.data(), DType::kF32, 64 * sizeof(float), 32, y.data(), 32,
         ThreadPool::global());
  EXPECT_FLOAT_EQ(y[0], 64 * 0.5f * 0.25f);
}

void one_attention() {
  std::vector<float> q(2 * 16, 0.1f), out(q.size()), k(4 * 16, 0.2f), v(4 * 16, 0.3f);
  const void* kb = k.data();
  const void* vb = v.data();
  AttentionArgs a{q.data(), out.data(), 1, 2, 1, 16, &kb, &vb, DType::kF32, 4, 4, 3, 0.25f};
  attention(a, ThreadPool::global());
  EXPECT_FLOAT_EQ(out[0], 0.3f);  // equal V rows: any softmax weights give V
}

TEST(KernelTime, CountsOnlyWhileOn) {
  set_kernel_timing(false);
  one_matmul();
  set_kernel_timing(true);
  KernelTime t = kernel_time();
  EXPECT_EQ(t.matmul_calls, 0u);
  EXPECT_EQ(t.attention_calls, 0u);
  one_matmul();
  one_matmul();
  one_attention();
  t = kernel_time();
  EXPECT_EQ(t.matmul_calls, 2u);
  EXPECT_EQ(t.attention_calls, 1u);
  EXPECT_GT(t.matmul_ns, 0u);
  EXPECT_GT(t.attention_ns, 0u);
  set_kernel_timing(false);
  one_matmul();
  one_attention();
  EXPECT_EQ(kernel_time().matmul_calls, 2u);  // kept, not added to, while off
  EXPECT_EQ(kernel_time().attention_calls, 1u);
  set_kernel_timing(true);  // on again: from zero
  EXPECT_EQ(kernel_time().matmul_calls, 0u);
  set_kernel_timing(false);
}

}  // namespace
}  // namespace runnel::kernels::cpu
