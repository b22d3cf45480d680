// Graph evaluation. eval() runs on the calling thread; async_eval() hands the work to the
// runtime's evaluation thread, so the caller can sample and stream the previous token meanwhile.
// Evaluation visits unevaluated nodes in topological order; after a node is computed its inputs
// and primitive are dropped (the graph is detached), so an intermediate dies with its last
// consumer. Every graph mutation happens on whichever thread evaluates; other threads only build
// new nodes.
#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>

#include "array/internal.h"
#include "base/assert.h"

namespace runnel::array {
namespace {

// Each eval_now marks the nodes it reaches with its own number, so "seen" is one compare, not a
// hash set (a Qwen3-0.6B decode step visits ~340 nodes). Only the evaluating thread touches the
// marks of unevaluated nodes.
std::atomic<uint64_t> g_visits{0};

void eval_now(const std::vector<Array>& outputs) {
  // Iterative post-order DFS over nodes that still need computing.
  const uint64_t visit = g_visits.fetch_add(1, std::memory_order_relaxed) + 1;
  const auto first_visit = [visit](ArrayDesc* d) {
    if (d->visit == visit) return false;
    d->visit = visit;
    return true;
  };
  std::vector<ArrayDesc*> order;
  std::vector<std::pair<ArrayDesc*, size_t>> stack;
  for (const Array& out : outputs) {
    if (!out.valid() || out.desc()->evaluated.load()) continue;
    if (!first_visit(out.desc().get())) continue;
    stack.emplace_back(out.desc().get(), 0);
    while (!stack.empty()) {
      auto& [node, next] = stack.back();
      if (next < node->inputs.size()) {
        ArrayDesc* in = node->inputs[next++].desc().get();
        if (!in->evaluated.load() && first_visit(in)) stack.emplace_back(in, 0);
        continue;
      }
      order.push_back(node);
      stack.pop_back();
    }
  }
  // Nodes in `order` stay alive while needed: each is reachable from an output through consumers
  // that come later in the order and are detached only after they are computed.
  for (ArrayDesc* node : order) {
    RUNNEL_ASSERT(node->prim != nullptr);
    if (!node->prim->is_view()) {
      node->buffer = std::make_shared<Buffer>(node->n_bytes(), MemoryKind::kScratch);
      node->offset = 0;
    }
    node->prim->eval_cpu(node->inputs, *node);
    RUNNEL_ASSERT_MSG(node->buffer != nullptr, node->prim->name());
    node->inputs.clear();
    node->prim.reset();
    node->evaluated.store(true, std::memory_order_release);
  }
}

// The evaluation thread: runs async_eval jobs in order.
class Evaluator {
 public:
  Evaluator() : thread_([this] { loop(); }) {}
  ~Evaluator() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  void submit(std::vector<Array> outputs) {
    {
      std::lock_guard lock(mu_);
      jobs_.push_back(std::move(outputs));
      ++pending_;
    }
    cv_.notify_all();
  }

  void wait() {
    std::unique_lock lock(mu_);
    done_cv_.wait(lock, [&] { return pending_ == 0; });
    if (error_) {
      std::exception_ptr e = std::move(error_);
      error_ = nullptr;
      std::rethrow_exception(e);
    }
  }

  bool busy() {
    std::lock_guard lock(mu_);
    return pending_ != 0 || error_ != nullptr;
  }

 private:
  void loop() {
    while (true) {
      std::vector<Array> job;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return stop_ || !jobs_.empty(); });
        if (jobs_.empty()) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      std::exception_ptr err;
      try {
        eval_now(job);
      } catch (...) {
        err = std::current_exception();
      }
      job.clear();  // release the handles on this thread, before waking waiters
      {
        std::lock_guard lock(mu_);
        if (err && !error_) error_ = err;
        --pending_;
      }
      done_cv_.notify_all();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  std::deque<std::vector<Array>> jobs_;
  int pending_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
  std::thread thread_;
};

Evaluator& evaluator() {
  static Evaluator e;
  return e;
}

}  // namespace

void eval(const std::vector<Array>& outputs) {
  wait();
  eval_now(outputs);
}

void async_eval(const std::vector<Array>& outputs) { evaluator().submit(outputs); }

void wait() {
  Evaluator& e = evaluator();
  if (e.busy()) e.wait();
}

}  // namespace runnel::array
