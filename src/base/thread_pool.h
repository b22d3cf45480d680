// A persistent pool of worker threads: no thread is created per operation. The calling thread
// takes part in the work, so a pool of N threads has N-1 workers. Workers spin briefly after each
// job (decode issues many small jobs back to back) and then sleep on a condition variable.
// A run() issued from inside a task executes inline on the calling thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "base/function_ref.h"

namespace runnel {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int n_threads() const { return n_threads_; }

  // Jobs handed to the workers so far (each one a fork and a join: a barrier); jobs that ran
  // inline (one task, one thread, or from inside a task) are not counted.
  uint64_t jobs_run() const { return jobs_run_.load(std::memory_order_relaxed); }

  // Calls fn(task, thread) for every task in [0, n_tasks); returns when all are done.
  // `thread` is in [0, n_threads()), unique among concurrently running tasks (for scratch space).
  // A task's exception is rethrown here once the tasks running with it have finished.
  void run(int n_tasks, FunctionRef<void(int task, int thread)> fn);

  // Splits [0, n) into about n_threads() * 4 chunks of at least `grain` items.
  void parallel_for(size_t n, size_t grain, FunctionRef<void(size_t begin, size_t end)> fn);

  // Covers [0, n) with fn(begin, end) calls, each a multiple of `chunk` items (but the last):
  // every thread owns one contiguous range and walks it front to back a chunk at a time; a thread
  // whose range is empty takes the back half of a range whose owner is behind as its own and walks
  // that forward too (a core delayed by another process does not hold up the others). Each
  // thread's reads stay sequential streams, which hardware and software prefetchers follow;
  // dealing chunks round robin breaks the stream at every chunk, and so did stealing one chunk at a
  // time from the back (decode GEMV: see kernels/cpu/matmul.cpp). n / chunk must fit in 32 bits.
  void run_ranges(size_t n, size_t chunk, FunctionRef<void(size_t begin, size_t end)> fn);

  // The process-wide pool, sized by RUNNEL_THREADS or the number of online CPUs.
  static ThreadPool& global();
  // Replaces the global pool (tests and benchmarks compare thread counts). Not thread-safe.
  static void set_global_threads(int n_threads);

 private:
  void worker_main(int thread);
  void work_on_job(int thread, uint32_t generation);
  // Runs one task, keeps its exception (the first of the job's) for the caller, counts it done.
  void run_task(const FunctionRef<void(int, int)>& fn, int task, int thread);

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex run_mu_;  // one job at a time
  std::atomic<uint64_t> jobs_run_{0};

  // The hot path takes no lock: the caller writes the job, then its generation (release); a
  // spinning worker sees the generation (acquire), reads the job and claims tasks from claim_,
  // whose high half is the generation the tasks belong to. A worker that arrives after the job
  // is over (or after the caller has posted the next) fails to claim with its old generation and
  // touches nothing, so the caller never waits for stragglers; it waits only for done_ to count
  // every task. Each field that both sides write has a cache line of its own.
  struct alignas(64) Job {
    std::atomic<uint32_t> generation{0};
    std::atomic<const FunctionRef<void(int, int)>*> fn{nullptr};
    std::atomic<int> tasks{0};
  };
  Job job_;
  alignas(64) std::atomic<uint64_t> claim_{0};  // generation << 32 | next task
  alignas(64) std::atomic<int> done_{0};        // tasks of the current job finished

  // Sleeping workers (after spinning a while without a job).
  alignas(64) std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<int> sleepers_{0};
  std::atomic<bool> stop_{false};

  std::mutex error_mu_;
  std::exception_ptr job_error_;  // the current job's first exception
};

}  // namespace runnel
