// Monotonic time in nanoseconds, for stats and benchmarks.
#pragma once

#include <chrono>
#include <cstdint>

namespace runnel {

inline int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace runnel
