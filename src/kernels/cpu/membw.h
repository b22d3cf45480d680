// Memory bandwidth of this machine, measured the way decode streams weights: a vectorized,
// read-only pass over a buffer far larger than the last-level cache, split across the pool.
#pragma once

#include <cstddef>

namespace runnel {
class ThreadPool;
}

namespace runnel::kernels::cpu {

// Returns the best of several passes in GB/s (1e9 bytes/s). Allocates `bytes` (rounded down to a
// multiple of 4 KiB per thread) for the duration of the call; throws Error("membw", ...) if it
// cannot.
double measure_memory_bandwidth(ThreadPool& pool, size_t bytes = size_t{1} << 30);

}  // namespace runnel::kernels::cpu
