// Wall time spent inside the matmul and attention entry points, summed while enabled: `runnel
// bench` uses it to split a decode step into matmuls, attention and everything else, and to give
// the rate at which the matmuls stream weights. Off by default; when off it costs one relaxed load
// per call.
#pragma once

#include <cstdint>

namespace runnel::kernels::cpu {

struct KernelTime {
  uint64_t matmul_ns = 0, matmul_calls = 0;
  uint64_t attention_ns = 0, attention_calls = 0;
};

// Starts (on) or stops summing; turning it on clears the totals.
void set_kernel_timing(bool on);
// The totals since timing was last turned on.
KernelTime kernel_time();

// Adds the time from its construction to its destruction to one kernel's total, when timing is on.
class KernelTimer {
 public:
  enum Kind { kMatmul, kAttention };
  explicit KernelTimer(Kind kind);
  ~KernelTimer();
  KernelTimer(const KernelTimer&) = delete;
  KernelTimer& operator=(const KernelTimer&) = delete;

 private:
  Kind kind_;
  int64_t t0_;  // 0 when timing is off
};

}  // namespace runnel::kernels::cpu
