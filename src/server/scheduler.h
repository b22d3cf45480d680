// Starts, reuses and stops runner processes (one per loaded model). A model is loaded on demand,
// kept `keep_alive` after its last request (default 5 min; 0: unloaded when idle; negative:
// forever), and the least recently used idle one is unloaded when a new one would not fit in the
// memory budget (estimated from file sizes). A runner that dies is forgotten at once: its in-flight
// requests see their connections close, and the next request starts a new one.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "server/store.h"

namespace runnel::server {

constexpr int64_t kDefaultKeepAliveNs = 5LL * 60 * 1000000000;
constexpr int64_t kForever = INT64_MAX;

struct SchedulerOptions {
  std::string runner_bin;  // the executable; run as `<bin> runner --model P --socket S`
  std::vector<std::string> runner_args;  // extra flags (--parallel N, ...)
  int64_t memory_budget = 0;             // bytes; 0 = 75% of physical memory
  int64_t load_timeout_ms = 10 * 60 * 1000;
};

struct RunnerEntry;

// A model in use by one request. Releasing it (destruction) starts its keep_alive countdown.
class Lease {
 public:
  ~Lease();
  const std::string& socket_path() const;
  const ResolvedModel& model() const;
  int64_t load_duration_ns() const { return load_ns_; }
  pid_t pid() const;

 private:
  friend class Scheduler;
  class Scheduler* scheduler_ = nullptr;
  std::shared_ptr<RunnerEntry> entry_;
  int64_t keep_alive_ns_ = kDefaultKeepAliveNs;
  int64_t load_ns_ = 0;
};

struct LoadedModel {
  ResolvedModel model;
  pid_t pid = 0;
  std::string socket_path;
  int64_t size_bytes = 0;    // estimate
  int64_t expires_unix = 0;  // seconds; 0 = never
  int active = 0;
};

class Scheduler {
 public:
  explicit Scheduler(SchedulerOptions options);
  ~Scheduler();  // stops every runner

  // Loads the model when needed (blocking) and returns a lease on its runner. `keep_alive_ns`
  // (kForever, 0, or a duration) applies when this lease ends. Throws Error when loading fails.
  std::shared_ptr<Lease> acquire(const ResolvedModel& model, int64_t keep_alive_ns);
  // A connection to the lease's runner failed: forget that runner so the next acquire restarts it.
  void report_broken(const Lease& lease);
  // Stops the model's runner now if it is idle (keep_alive 0 with an empty prompt).
  void unload(const ResolvedModel& model);
  std::vector<LoadedModel> loaded() const;
  int64_t memory_budget() const { return options_.memory_budget; }

  std::atomic<int64_t> n_starts{0};
  std::atomic<int64_t> n_crashes{0};

 private:
  friend class Lease;
  void release(RunnerEntry& entry, int64_t keep_alive_ns);
  void spawn(const std::shared_ptr<RunnerEntry>& entry);  // without the lock
  void stop_locked(const std::shared_ptr<RunnerEntry>& entry);
  bool reap_locked(RunnerEntry& entry);  // true when the process has exited
  void evict_for_locked(int64_t bytes);
  void monitor_loop();

  SchedulerOptions options_;
  std::string socket_dir_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::shared_ptr<RunnerEntry>> runners_;  // by name and path
  std::vector<std::pair<pid_t, int64_t>> stopping_;              // pid, SIGKILL deadline (ns)
  int next_id_ = 0;
  bool quit_ = false;
  std::thread monitor_;
};

}  // namespace runnel::server
