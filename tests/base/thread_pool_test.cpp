#include "base/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <numeric>
#include <vector>

namespace runnel {
namespace {

TEST(ThreadPool, RunsEveryTaskOnce) {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    for (int n : {0, 1, 2, 7, 100, 1000}) {
      std::vector<std::atomic<int>> hits(n);
      pool.run(n, [&](int task, int thread) {
        EXPECT_GE(thread, 0);
        EXPECT_LT(thread, threads);
        hits[task].fetch_add(1);
      });
      for (int i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "threads=" << threads;
    }
  }
}

TEST(ThreadPool, ManySmallJobsBackToBack) {
  ThreadPool pool(4);
  std::atomic<long> sum{0};
  for (int step = 0; step < 20000; ++step) {
    pool.run(4, [&](int task, int) { sum.fetch_add(task); });
  }
  EXPECT_EQ(sum.load(), 20000L * 6);
}

TEST(ThreadPool, ParallelForCoversRange) {
  ThreadPool pool(3);
  for (size_t n : {size_t{0}, size_t{1}, size_t{5}, size_t{1001}}) {
    std::vector<int> seen(n, 0);
    pool.parallel_for(n, 16, [&](size_t b, size_t e) {
      for (size_t i = b; i < e; ++i) seen[i]++;
    });
    EXPECT_EQ(std::accumulate(seen.begin(), seen.end(), size_t{0}), n);
  }
}

TEST(ThreadPool, NestedRunExecutesInline) {
  ThreadPool pool(2);
  std::atomic<int> count{0};
  pool.run(2, [&](int, int) { pool.run(3, [&](int, int) { count.fetch_add(1); }); });
  EXPECT_EQ(count.load(), 6);
}

// jobs_run counts the jobs handed to workers (barriers), not the ones that ran inline.
TEST(ThreadPool, CountsJobsHandedToWorkers) {
  ThreadPool pool(2);
  EXPECT_EQ(pool.jobs_run(), 0u);
  pool.run(5, [](int, int) {});
  pool.run(1, [](int, int) {});  // one task: inline
  pool.run(0, [](int, int) {});
  pool.run(2, [&](int, int) { pool.run(3, [](int, int) {}); });  // the nested runs are inline
  EXPECT_EQ(pool.jobs_run(), 2u);
  ThreadPool one(1);
  one.run(8, [](int, int) {});
  EXPECT_EQ(one.jobs_run(), 0u);
}

}  // namespace
}  // namespace runnel
