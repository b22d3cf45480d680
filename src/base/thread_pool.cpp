#include "base/thread_pool.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <exception>
#include <memory>
#include <utility>

#include "base/assert.h"
#include "base/log.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace runnel {
namespace {

thread_local bool t_inside_pool = false;

inline void cpu_relax() {
#if defined(__x86_64__)
  _mm_pause();
#endif
}

// RUNNEL_THREADS: a count in [1, 1024] (the range of `runnel bench -t`); anything else is ignored
// with a warning, not an error, because the pool is made lazily on whichever thread first needs
// it. Thousands of spinning workers on a few cores made every job crawl (RUNNEL_THREADS=5000 on 2
// cores: no token of stories260K within a minute).
int default_threads() {
  const unsigned hw = std::thread::hardware_concurrency();
  const int fallback = hw == 0 ? 1 : static_cast<int>(hw);
  const char* env = std::getenv("RUNNEL_THREADS");
  if (env == nullptr || *env == '\0') return fallback;
  char* end = nullptr;
  errno = 0;
  const long n = std::strtol(env, &end, 10);
  if (*end == '\0' && errno == 0 && n >= 1 && n <= 1024) return static_cast<int>(n);
  RUNNEL_WARN("threads", "RUNNEL_THREADS=", env, " is not a thread count in [1, 1024]; using ",
              fallback);
  return fallback;
}

std::unique_ptr<ThreadPool>& global_slot() {
  static std::unique_ptr<ThreadPool> pool;
  return pool;
}

}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)) {
  workers_.reserve(n_threads_ - 1);
  for (int t = 1; t < n_threads_; ++t) workers_.emplace_back([this, t] { worker_main(t); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(mu_);
    stop_.store(true);
    job_.generation.fetch_add(1);
  }
  cv_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::run_task(const FunctionRef<void(int, int)>& fn, int task, int thread) {
  try {
    fn(task, thread);
  } catch (...) {
    std::lock_guard lock(error_mu_);
    if (!job_error_) job_error_ = std::current_exception();
  }
  done_.fetch_add(1, std::memory_order_release);
}

void ThreadPool::work_on_job(int thread, uint32_t generation) {
  const bool was_inside = t_inside_pool;
  t_inside_pool = true;
  const FunctionRef<void(int, int)>* fn = job_.fn.load(std::memory_order_acquire);
  const uint64_t tasks = static_cast<uint64_t>(job_.tasks.load(std::memory_order_acquire));
  const uint64_t mine = uint64_t{generation} << 32;
  uint64_t cur = claim_.load(std::memory_order_relaxed);
  // fn and tasks may already be the next job's when this thread is late. run() stores the next
  // job's claim_ before its fn and tasks (release), so a thread that read either of them (acquire)
  // finds claim_ in the next generation and claims nothing. Until session 32 claim_ was stored
  // after them: a late thread could read the next job's larger task count while claim_ still held
  // this exhausted job's, claim past its end, run a task of the next job twice and count it into
  // the next job's done_, which then never equalled its task count (a hang, seen once in the test
  // suite on 2 cores, every time in ThreadPool.JobsOfChangingSizeRunEveryTaskOnce).
  while ((cur & ~uint64_t{0xffffffff}) == mine && (cur & 0xffffffff) < tasks) {
    if (!claim_.compare_exchange_weak(cur, cur + 1, std::memory_order_relaxed)) continue;
    run_task(*fn, static_cast<int>(cur & 0xffffffff), thread);
    cur = claim_.load(std::memory_order_relaxed);
  }
  t_inside_pool = was_inside;
}

void ThreadPool::worker_main(int thread) {
  uint32_t seen = 0;
  while (true) {
    // Spin a little: decode issues jobs microseconds apart.
    uint32_t gen = job_.generation.load(std::memory_order_acquire);
    for (int spin = 0; gen == seen && spin < 20000; ++spin) {
      cpu_relax();
      gen = job_.generation.load(std::memory_order_acquire);
    }
    if (gen == seen) {
      // Sleep. The caller reads sleepers_ after posting a generation: either it sees this
      // thread counted and notifies under mu_, or this thread's check below sees the generation.
      std::unique_lock lock(mu_);
      sleepers_.fetch_add(1);
      cv_.wait(lock, [&] { return job_.generation.load() != seen; });
      sleepers_.fetch_sub(1);
      gen = job_.generation.load(std::memory_order_acquire);
    }
    seen = gen;
    if (stop_.load()) return;
    work_on_job(thread, gen);
  }
}

void ThreadPool::run(int n_tasks, FunctionRef<void(int task, int thread)> fn) {
  if (n_tasks <= 0) return;
  if (n_threads_ == 1 || n_tasks == 1 || t_inside_pool) {
    for (int t = 0; t < n_tasks; ++t) fn(t, 0);
    return;
  }
  std::lock_guard run_lock(run_mu_);
  const uint32_t gen = job_.generation.load(std::memory_order_relaxed) + 1;
  // claim_ first: see work_on_job.
  claim_.store(uint64_t{gen} << 32 | 1, std::memory_order_relaxed);  // task 0 is the caller's
  job_.fn.store(&fn, std::memory_order_release);
  job_.tasks.store(n_tasks, std::memory_order_release);
  done_.store(0, std::memory_order_relaxed);
  job_.generation.store(gen);  // seq_cst: ordered before the load of sleepers_
  if (sleepers_.load() > 0) {
    { std::lock_guard lock(mu_); }
    cv_.notify_all();
  }
  jobs_run_.fetch_add(1, std::memory_order_relaxed);
  t_inside_pool = true;
  run_task(fn, 0, 0);
  t_inside_pool = false;
  work_on_job(0, gen);
  while (done_.load(std::memory_order_acquire) != n_tasks) cpu_relax();
  // A task's exception reaches the caller once every task has finished (none still reads fn).
  if (std::exception_ptr e = std::exchange(job_error_, nullptr)) std::rethrow_exception(e);
}

void ThreadPool::parallel_for(size_t n, size_t grain,
                              FunctionRef<void(size_t begin, size_t end)> fn) {
  if (n == 0) return;
  grain = std::max<size_t>(grain, 1);
  size_t max_chunks = static_cast<size_t>(n_threads_) * 4;
  size_t n_chunks = std::min(max_chunks, (n + grain - 1) / grain);
  if (n_chunks <= 1) {
    fn(0, n);
    return;
  }
  size_t chunk = (n + n_chunks - 1) / n_chunks;
  n_chunks = (n + chunk - 1) / chunk;
  run(static_cast<int>(n_chunks), [&](int task, int) {
    size_t begin = static_cast<size_t>(task) * chunk;
    fn(begin, std::min(n, begin + chunk));
  });
}

namespace {

// A range of chunks [lo, hi) in one word, so its owner (taking from the front) and thieves
// (taking the back half) claim with one compare-exchange each; one per cache line.
struct alignas(64) ChunkRange {
  std::atomic<uint64_t> v{0};
};

uint64_t pack_range(uint64_t lo, uint64_t hi) { return lo | (hi << 32); }

// Claims the next chunk from the front (the owner); false once the range is empty.
bool claim_front(ChunkRange& r, uint64_t* chunk) {
  uint64_t cur = r.v.load(std::memory_order_relaxed);
  while (true) {
    const uint64_t lo = cur & 0xffffffffu, hi = cur >> 32;
    if (lo >= hi) return false;
    if (r.v.compare_exchange_weak(cur, pack_range(lo + 1, hi), std::memory_order_relaxed)) {
      *chunk = lo;
      return true;
    }
  }
}

// Takes the back half of r's chunks (the last one when one is left) as [*lo, *hi) (a thief).
bool steal_half(ChunkRange& r, uint64_t* lo_out, uint64_t* hi_out) {
  uint64_t cur = r.v.load(std::memory_order_relaxed);
  while (true) {
    const uint64_t lo = cur & 0xffffffffu, hi = cur >> 32;
    if (lo >= hi) return false;
    const uint64_t mid = lo + (hi - lo) / 2;
    if (r.v.compare_exchange_weak(cur, pack_range(lo, mid), std::memory_order_relaxed)) {
      *lo_out = mid;
      *hi_out = hi;
      return true;
    }
  }
}

}  // namespace

void ThreadPool::run_ranges(size_t n, size_t chunk,
                            FunctionRef<void(size_t begin, size_t end)> fn) {
  if (n == 0) return;
  chunk = std::max<size_t>(chunk, 1);
  const size_t n_chunks = (n + chunk - 1) / chunk;
  RUNNEL_ASSERT(n_chunks < (uint64_t{1} << 32));
  const size_t n_ranges = std::min(n_chunks, static_cast<size_t>(n_threads_));
  if (n_ranges <= 1 || t_inside_pool) {
    fn(0, n);
    return;
  }
  // Per calling thread, grown once: concurrent callers (each waits for run_mu_) never share it.
  // (The tasks below run on other threads: they must see this thread's vector, not theirs.)
  thread_local std::vector<ChunkRange> ranges_of_caller;
  if (ranges_of_caller.size() < n_ranges) ranges_of_caller = std::vector<ChunkRange>(n_ranges);
  ChunkRange* ranges = ranges_of_caller.data();
  for (size_t r = 0; r < n_ranges; ++r) {
    ranges[r].v.store(pack_range(n_chunks * r / n_ranges, n_chunks * (r + 1) / n_ranges),
                      std::memory_order_relaxed);
  }
  auto run_chunk = [&](uint64_t c) {
    const size_t begin = static_cast<size_t>(c) * chunk;
    fn(begin, std::min(n, begin + chunk));
  };
  run(static_cast<int>(n_ranges), [&](int task, int) {
    uint64_t c = 0;
    while (true) {
      while (claim_front(ranges[task], &c)) run_chunk(c);
      // This range is empty: the back half of the next unfinished one becomes this task's range.
      // Only its owner makes a range non-empty, so the plain store races with no other write.
      uint64_t lo = 0, hi = 0;
      size_t i = 1;
      while (i < n_ranges &&
             !steal_half(ranges[(static_cast<size_t>(task) + i) % n_ranges], &lo, &hi))
        ++i;
      if (i == n_ranges) return;
      ranges[task].v.store(pack_range(lo, hi), std::memory_order_relaxed);
    }
  });
}

ThreadPool& ThreadPool::global() {
  auto& slot = global_slot();
  if (!slot) slot = std::make_unique<ThreadPool>(default_threads());
  return *slot;
}

void ThreadPool::set_global_threads(int n_threads) {
  global_slot() = std::make_unique<ThreadPool>(n_threads);
}

}  // namespace runnel
