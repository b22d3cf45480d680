// Runner process lifecycle (see scheduler.h). One mutex guards the table; loading happens outside
// it (others asking for the same model wait on the condition variable). A monitor thread reaps
// exited runners, expires idle ones and SIGKILLs runners that ignore SIGTERM.
#include "server/scheduler.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "base/log.h"
#include "base/time.h"
#include "runner/protocol.h"
#include "server/runner_client.h"

namespace runnel::server {

struct RunnerEntry {
  enum class State { kLoading, kReady, kGone };
  ResolvedModel model;
  std::string socket_path;
  pid_t pid = 0;
  State state = State::kLoading;
  int refs = 0;
  int64_t est_bytes = 0;
  int64_t last_used_ns = 0;
  int64_t expires_ns = kForever;
  std::mutex stderr_mu;
  std::string last_stderr_line;  // guarded by stderr_mu
};

namespace {

// One runner per (name, files): names that share weights share bytes on disk, not a process,
// so that each name's keep_alive and listing stay its own.
std::string key_of(const ResolvedModel& m) { return m.name + "\n" + m.path; }

int64_t estimate_bytes(const ResolvedModel& m) { return m.size_bytes + m.size_bytes / 10; }

int64_t default_budget() {
  int64_t pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? pages * page / 4 * 3 : (int64_t{8} << 30);
}

int64_t unix_now() { return static_cast<int64_t>(time(nullptr)); }

}  // namespace

Lease::~Lease() {
  if (scheduler_) scheduler_->release(*entry_, keep_alive_ns_);
}
const std::string& Lease::socket_path() const { return entry_->socket_path; }
const ResolvedModel& Lease::model() const { return entry_->model; }
pid_t Lease::pid() const { return entry_->pid; }

Scheduler::Scheduler(SchedulerOptions options) : options_(std::move(options)) {
  if (options_.memory_budget <= 0) options_.memory_budget = default_budget();
  std::string templ = (std::filesystem::temp_directory_path() / "runnel-XXXXXX").string();
  check(mkdtemp(templ.data()) != nullptr, "scheduler", "cannot create ", templ);
  socket_dir_ = templ;
  monitor_ = std::thread([this] { monitor_loop(); });
}

Scheduler::~Scheduler() {
  {
    std::lock_guard lock(mu_);
    quit_ = true;
    for (auto& [path, e] : runners_) {
      if (e->pid > 0) kill(e->pid, SIGTERM);
      if (e->pid > 0) stopping_.push_back({e->pid, now_ns() + 2000000000LL});
    }
    runners_.clear();
  }
  cv_.notify_all();
  monitor_.join();
  for (auto& [pid, deadline] : stopping_) {
    while (waitpid(pid, nullptr, WNOHANG) == 0) {
      if (now_ns() > deadline) {
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
        break;
      }
      usleep(10000);
    }
  }
  std::error_code ec;
  std::filesystem::remove_all(socket_dir_, ec);
}

void Scheduler::spawn(const std::shared_ptr<RunnerEntry>& entry) {
  RunnerEntry& e = *entry;
  std::vector<std::string> args = {options_.runner_bin, "runner",   "--model",
                                   e.model.path,        "--socket", e.socket_path};
  args.insert(args.end(), options_.runner_args.begin(), options_.runner_args.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int err_pipe[2];
  check(pipe2(err_pipe, O_CLOEXEC) == 0, "scheduler", "pipe: ", std::strerror(errno));
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(1);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);  // the server blocks SIGTERM for its signal thread
    dup2(err_pipe[1], 2);
    syscall(SYS_close_range, 3u, ~0u, 0u);  // no HTTP sockets leak into the runner
    execv(argv[0], argv.data());
    const char* msg = "runnel: cannot execute the runner\n";
    (void)!write(2, msg, strlen(msg));
    _exit(127);
  }
  close(err_pipe[1]);
  if (pid < 0) {
    close(err_pipe[0]);
    fail("scheduler", "fork: ", std::strerror(errno));
  }
  e.pid = pid;
  ++n_starts;
  // Forward the runner's stderr to ours, remembering the last line for load errors.
  std::thread([fd = err_pipe[0], entry] {
    std::string pending;
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0) {
      (void)!write(2, buf, static_cast<size_t>(n));
      pending.append(buf, static_cast<size_t>(n));
      size_t nl;
      while ((nl = pending.find('\n')) != std::string::npos) {
        std::string line = pending.substr(0, nl);
        pending.erase(0, nl + 1);
        if (!line.empty()) {
          std::lock_guard lock(entry->stderr_mu);
          entry->last_stderr_line = line;
        }
      }
    }
    close(fd);
  }).detach();
}

std::shared_ptr<Lease> Scheduler::acquire(const ResolvedModel& model, int64_t keep_alive_ns) {
  std::unique_lock lock(mu_);
  while (true) {
    check(!quit_, "scheduler", "the server is shutting down");
    auto it = runners_.find(key_of(model));
    if (it != runners_.end()) {
      std::shared_ptr<RunnerEntry> e = it->second;
      if (e->state == RunnerEntry::State::kLoading) {
        cv_.wait(lock);
        continue;
      }
      if (e->state == RunnerEntry::State::kReady && !reap_locked(*e)) {
        ++e->refs;
        e->last_used_ns = now_ns();
        auto lease = std::make_shared<Lease>();
        lease->scheduler_ = this;
        lease->entry_ = e;
        lease->keep_alive_ns_ = keep_alive_ns;
        return lease;
      }
      e->state = RunnerEntry::State::kGone;
      runners_.erase(it);
      continue;
    }
    // Load it.
    auto e = std::make_shared<RunnerEntry>();
    e->model = model;
    e->est_bytes = estimate_bytes(model);
    e->socket_path = str_cat(socket_dir_, "/runner-", next_id_++, ".sock");
    e->refs = 1;
    evict_for_locked(e->est_bytes);
    runners_[key_of(model)] = e;
    int64_t t0 = now_ns();
    lock.unlock();
    std::string error;
    try {
      spawn(e);
      int64_t deadline = t0 + options_.load_timeout_ms * 1000000;
      while (true) {
        int status = 0;
        if (waitpid(e->pid, &status, WNOHANG) == e->pid) {
          usleep(20000);  // let the stderr forwarder catch the last line
          std::lock_guard l2(e->stderr_mu);
          e->pid = 0;
          error = e->last_stderr_line.empty()
                      ? str_cat("the runner exited with status ", WEXITSTATUS(status))
                      : e->last_stderr_line;
          break;
        }
        if (access(e->socket_path.c_str(), F_OK) == 0) {
          try {
            runner_call(e->socket_path, runner::encode_simple_op("health"), 2000);
            break;
          } catch (const Error&) {
          }
        }
        if (now_ns() > deadline) {
          error = "the runner did not become ready in time";
          kill(e->pid, SIGKILL);
          waitpid(e->pid, nullptr, 0);
          e->pid = 0;
          break;
        }
        usleep(10000);
      }
    } catch (const Error& ex) {
      error = ex.what();
    }
    lock.lock();
    if (!error.empty()) {
      e->state = RunnerEntry::State::kGone;
      auto cur = runners_.find(key_of(model));
      if (cur != runners_.end() && cur->second == e) runners_.erase(cur);
      cv_.notify_all();
      fail("scheduler", "cannot load model '", model.name, "': ", error);
    }
    e->state = RunnerEntry::State::kReady;
    e->last_used_ns = now_ns();
    cv_.notify_all();
    RUNNEL_INFO("scheduler", "loaded ", model.name, " (pid ", e->pid, ")");
    auto lease = std::make_shared<Lease>();
    lease->scheduler_ = this;
    lease->entry_ = e;
    lease->keep_alive_ns_ = keep_alive_ns;
    lease->load_ns_ = now_ns() - t0;
    return lease;
  }
}

bool Scheduler::reap_locked(RunnerEntry& e) {
  if (e.pid <= 0) return true;
  int status = 0;
  if (waitpid(e.pid, &status, WNOHANG) != e.pid) return false;
  RUNNEL_WARN("scheduler", "runner for ", e.model.name, " (pid ", e.pid, ") ",
              WIFSIGNALED(status) ? str_cat("was killed by signal ", WTERMSIG(status))
                                  : str_cat("exited with status ", WEXITSTATUS(status)));
  e.pid = 0;
  ++n_crashes;
  return true;
}

void Scheduler::report_broken(const Lease& lease) {
  std::lock_guard lock(mu_);
  auto it = runners_.find(key_of(lease.entry_->model));
  if (it != runners_.end() && it->second == lease.entry_) {
    if (!reap_locked(*it->second)) {
      // Unreachable but not yet reaped: a killed runner closes its sockets before it becomes a
      // zombie, so this is usually a crash still in progress. Either way it failed a request:
      // count it, and stop it (the monitor reaps it).
      ++n_crashes;
      stop_locked(it->second);
    } else {
      it->second->state = RunnerEntry::State::kGone;
      runners_.erase(it);
    }
  }
}

void Scheduler::stop_locked(const std::shared_ptr<RunnerEntry>& e) {
  if (e->pid > 0) {
    kill(e->pid, SIGTERM);
    stopping_.push_back({e->pid, now_ns() + 5000000000LL});
    e->pid = 0;
  }
  e->state = RunnerEntry::State::kGone;
  auto it = runners_.find(key_of(e->model));
  if (it != runners_.end() && it->second == e) runners_.erase(it);
  RUNNEL_INFO("scheduler", "unloaded ", e->model.name);
}

void Scheduler::release(RunnerEntry& e, int64_t keep_alive_ns) {
  std::lock_guard lock(mu_);
  --e.refs;
  e.last_used_ns = now_ns();
  if (e.state != RunnerEntry::State::kReady || e.refs > 0) return;
  if (keep_alive_ns == 0) {
    auto it = runners_.find(key_of(e.model));
    if (it != runners_.end() && it->second.get() == &e) stop_locked(it->second);
    return;
  }
  e.expires_ns =
      keep_alive_ns == kForever || keep_alive_ns < 0 ? kForever : e.last_used_ns + keep_alive_ns;
}

void Scheduler::unload(const ResolvedModel& model) {
  std::lock_guard lock(mu_);
  auto it = runners_.find(key_of(model));
  if (it != runners_.end() && it->second->refs == 0) stop_locked(it->second);
}

void Scheduler::evict_for_locked(int64_t bytes) {
  int64_t used = 0;
  for (auto& [p, e] : runners_) used += e->est_bytes;
  while (used + bytes > options_.memory_budget) {
    std::shared_ptr<RunnerEntry> victim;
    for (auto& [p, e] : runners_) {
      if (e->state == RunnerEntry::State::kReady && e->refs == 0 &&
          (!victim || e->last_used_ns < victim->last_used_ns))
        victim = e;
    }
    if (!victim) {
      RUNNEL_WARN("scheduler", "loading beyond the memory budget of ",
                  format_bytes(static_cast<double>(options_.memory_budget)),
                  ": every loaded model is busy");
      return;
    }
    used -= victim->est_bytes;
    stop_locked(victim);
  }
}

std::vector<LoadedModel> Scheduler::loaded() const {
  std::lock_guard lock(mu_);
  std::vector<LoadedModel> out;
  int64_t now = now_ns();
  for (auto& [p, e] : runners_) {
    if (e->state != RunnerEntry::State::kReady) continue;
    LoadedModel m;
    m.model = e->model;
    m.pid = e->pid;
    m.socket_path = e->socket_path;
    m.size_bytes = e->est_bytes;
    m.active = e->refs;
    if (e->refs == 0 && e->expires_ns != kForever)
      m.expires_unix = unix_now() + (e->expires_ns - now) / 1000000000;
    else if (e->refs > 0)
      m.expires_unix = unix_now() + kDefaultKeepAliveNs / 1000000000;
    out.push_back(std::move(m));
  }
  return out;
}

void Scheduler::monitor_loop() {
  std::unique_lock lock(mu_);
  while (!quit_) {
    cv_.wait_for(lock, std::chrono::milliseconds(50));
    int64_t now = now_ns();
    for (auto it = runners_.begin(); it != runners_.end();) {
      std::shared_ptr<RunnerEntry> e = it->second;
      ++it;
      if (e->state != RunnerEntry::State::kReady) continue;
      if (reap_locked(*e)) {
        e->state = RunnerEntry::State::kGone;
        runners_.erase(key_of(e->model));
      } else if (e->refs == 0 && now >= e->expires_ns) {
        stop_locked(e);
      }
    }
    for (auto it = stopping_.begin(); it != stopping_.end();) {
      if (waitpid(it->first, nullptr, WNOHANG) == it->first) {
        it = stopping_.erase(it);
        continue;
      }
      if (now > it->second) kill(it->first, SIGKILL);
      ++it;
    }
  }
}

}  // namespace runnel::server
