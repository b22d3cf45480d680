#include "kernels/cpu/kernel_time.h"

#include <atomic>
#include <chrono>

namespace runnel::kernels::cpu {
namespace {

std::atomic<bool> g_on{false};
std::atomic<uint64_t> g_ns[2], g_calls[2];

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

void set_kernel_timing(bool on) {
  if (on) {
    for (int k = 0; k < 2; ++k) {
      g_ns[k].store(0, std::memory_order_relaxed);
      g_calls[k].store(0, std::memory_order_relaxed);
    }
  }
  g_on.store(on, std::memory_order_release);
}

KernelTime kernel_time() {
  KernelTime t;
  t.matmul_ns = g_ns[KernelTimer::kMatmul].load(std::memory_order_relaxed);
  t.matmul_calls = g_calls[KernelTimer::kMatmul].load(std::memory_order_relaxed);
  t.attention_ns = g_ns[KernelTimer::kAttention].load(std::memory_order_relaxed);
  t.attention_calls = g_calls[KernelTimer::kAttention].load(std::memory_order_relaxed);
  return t;
}

KernelTimer::KernelTimer(Kind kind)
    : kind_(kind), t0_(g_on.load(std::memory_order_relaxed) ? now_ns() : 0) {}

KernelTimer::~KernelTimer() {
  if (t0_ == 0) return;
  g_ns[kind_].fetch_add(static_cast<uint64_t>(now_ns() - t0_), std::memory_order_relaxed);
  g_calls[kind_].fetch_add(1, std::memory_order_relaxed);
}

}  // namespace runnel::kernels::cpu
