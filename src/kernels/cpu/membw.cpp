// measure_memory_bandwidth: each thread owns a contiguous slice of one large buffer (first-touched
// by that thread with distinct words, backed by huge pages where the OS allows) and reads it with
// the active ISA's widest loads, one 64-byte line a step with that line's prefetch just before
// its load (probe_line_ahead), and the figure is the best of a few passes. Until session 31
// each step read 4 lines after a burst of their 8 prefetches, which read 27-28 GB/s on a
// Sapphire Rapids VM where the line-a-step loop reads 33-36 (and 30 with no prefetch at all): the
// f16 decode GEMV had streamed at 120-130% of that probe, so every fraction of it before session
// 31 overstates the share of the bandwidth by about a quarter (bench/RESULTS.md, session 31).
#include "kernels/cpu/membw.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include "base/error.h"
#include "base/mmap.h"
#include "base/thread_pool.h"
#include "kernels/cpu/kernel_table.h"

namespace runnel::kernels::cpu {

double measure_memory_bandwidth(ThreadPool& pool, size_t bytes) {
  const size_t threads = static_cast<size_t>(pool.n_threads());
  const size_t slice = bytes / threads / 4096 * 4096;
  check(slice > 0, "membw", "buffer of ", bytes, " bytes is too small for ", threads, " threads");
  const size_t total = slice * threads;
  void* mem = alloc_maybe_huge(total);  // on huge pages, as the weights the decode streams
  check(mem != nullptr, "membw", "cannot allocate ", total, " bytes");
  uint8_t* buf = static_cast<uint8_t*>(mem);
  const KernelTable& kt = kernel_table();
  std::atomic<uint64_t> sink{0};
  // Distinct words everywhere, like model weights: pages of one repeated byte can be merged or
  // compressed by the host under a VM (KSM), and reading them then measured up to ~1.7x the
  // bandwidth that real data gets, moving from run to run.
  pool.run(static_cast<int>(threads), [&](int task, int) {
    uint64_t* w = reinterpret_cast<uint64_t*>(buf + static_cast<size_t>(task) * slice);
    const uint64_t base = static_cast<uint64_t>(task) * (slice / 8);
    for (size_t i = 0; i < slice / 8; ++i) w[i] = (base + i + 1) * 0x9E3779B97F4A7C15ull;
  });
  double best = 0;
  for (int pass = 0; pass < 4; ++pass) {
    const auto t0 = std::chrono::steady_clock::now();
    pool.run(static_cast<int>(threads), [&](int task, int) {
      sink.fetch_xor(kt.read_sum(buf + static_cast<size_t>(task) * slice, slice),
                     std::memory_order_relaxed);
    });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (pass > 0) best = std::max(best, static_cast<double>(total) / s / 1e9);  // pass 0 warms up
  }
  std::free(mem);
  // The sink keeps the reads alive; it is never zero-checked for meaning.
  if (sink.load() == 0x5a5a5a5a5a5a5a5aull) best += 0;
  return best;
}

}  // namespace runnel::kernels::cpu
