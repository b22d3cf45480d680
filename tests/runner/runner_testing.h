// Helpers for the engine-level tests: a collecting ChunkSink, greedy requests, scoped environment
// variables for the prefix cache's settings, and tiny generated models.
#pragma once

#include <atomic>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "runner/engine_api.h"

namespace runnel::runner::testing {

// Collects text and logprobs; cancels itself after `cancel_after_polls` calls of cancelled().
class CollectSink : public ChunkSink {
 public:
  explicit CollectSink(int cancel_after_polls = -1) : cancel_after_(cancel_after_polls) {}
  void accept() override {}
  void chunk(const Chunk& c) override {
    std::lock_guard lock(mu_);
    text += c.text;
    logprobs += c.logprobs_json;
  }
  bool cancelled() const override { return cancel_after_ >= 0 && ++polls_ > cancel_after_; }
  std::string text, logprobs;

 private:
  int cancel_after_;
  mutable std::atomic<int> polls_{0};
  std::mutex mu_;
};

struct Output {
  std::string text, logprobs;
  GenerateResult result;
};

// A raw (untemplated) greedy request for n tokens with top-3 logprobs of every sampled token.
GenerateRequest greedy_request(const std::string& prompt, int n_predict);
Output run(Engine& engine, const std::string& prompt, int n_predict, int cancel_after_polls = -1);

// Sets (or, with nullopt, unsets) an environment variable for the scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, std::optional<std::string> value);
  ~ScopedEnv();
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

// A fresh engine with the prefix cache configured by these settings (others unset).
struct CacheEnv {
  std::optional<std::string> memory, cold_memory, dir;
};
std::unique_ptr<Engine> make_cache_engine(const std::string& model, const CacheEnv& env);

std::string stories_model();
// A tiny random Llama GGUF (hidden 64, 2 layers, vocab 320, ctx 2048), generated once per run.
std::string tiny_model();
// The same with head_dim 32 (hidden 128, 4 heads): whole q8_0 blocks per head.
std::string tiny_wide_heads_model();
// Deterministic English-like text of about n words.
std::string words(int n, int seed);

}  // namespace runnel::runner::testing
