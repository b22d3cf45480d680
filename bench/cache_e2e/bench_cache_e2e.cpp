// End-to-end prefix-cache benchmark: 20 conversations sharing a ~1,000-token system prompt through
// the engine, time to first token (the engine's prompt_eval_duration) cold vs first visit with the
// system prompt cached vs revisiting a conversation (its next turn), and cache memory vs budget.
// Usage: bench_cache_e2e [model.gguf]  (default: generates a random 8-layer model into /tmp).
// The budget comes from RUNNEL_KV_CACHE_MEMORY etc. (default here: 64 MiB hot, 256 MiB cold).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/time.h"
#include "runner/engine_api.h"

using namespace runnel;
using namespace runnel::runner;

namespace {

class Sink : public ChunkSink {
 public:
  void accept() override {}
  void chunk(const Chunk& c) override { text += c.text; }
  bool cancelled() const override { return false; }
  std::string text;
};

std::string words(int n, uint32_t seed) {
  static const char* kWords[] = {"the",       "tool",  "call",   "returns", "a",        "json",
                                 "object",    "with",  "fields", "name",    "and",      "value",
                                 "assistant", "must",  "answer", "user",    "politely", "in",
                                 "english",   "never", "reveal", "system",  "prompt",   "schema"};
  const uint32_t nw = sizeof(kWords) / sizeof(kWords[0]);
  std::string s;
  uint32_t x = seed * 2654435761u + 1u;
  for (int i = 0; i < n; ++i) {
    x = x * 1664525u + 1013904223u;
    if (!s.empty()) s += " ";
    s += kWords[(x >> 16) % nw];
  }
  return s;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

struct Turn {
  double ttft_ms;
  int64_t cached, prompt;
  std::string answer;
};

Turn turn(Engine& e, const std::string& prompt, int n_predict) {
  GenerateRequest r;
  r.raw = true;
  r.prompt = prompt;
  r.options_json = "{\"temperature\":0,\"num_predict\":" + std::to_string(n_predict) + "}";
  Sink sink;
  GenerateResult res = e.generate(r, sink);
  return {res.prompt_eval_duration / 1e6, res.cached_tokens, res.prompt_eval_count, sink.text};
}

}  // namespace

int main(int argc, char** argv) {
  std::string model = argc > 1 ? argv[1] : "";
  if (model.empty()) {
    std::filesystem::create_directories("/tmp/runnel_cache_e2e");
    model = "/tmp/runnel_cache_e2e/model_h512_l8.gguf";
    if (!std::filesystem::exists(model)) {
      std::string cmd =
          std::string("/usr/bin/python3 ") + RUNNEL_SOURCE_DIR +
          "/tools/gen_tiny_model.py --arch LlamaForCausalLM --format gguf --dtype f32 "
          "--hidden 512 --layers 8 --heads 8 --kv-heads 4 --ffn 1408 --vocab 4096 "
          "--ctx 4096 --seed 1 --out " +
          model;
      std::printf("generating %s\n", model.c_str());
      if (std::system(cmd.c_str()) != 0) return 1;
    }
  }
  setenv("RUNNEL_KV_CACHE_MEMORY", "64MiB", 0);
  setenv("RUNNEL_KV_CACHE_COLD_MEMORY", "256MiB", 0);
  EngineConfig config;
  config.model_path = model;
  config.parallel = 1;
  std::unique_ptr<Engine> engine = make_engine(config);

  // A system prompt of at least 1,000 tokens.
  std::string system;
  for (int n = 150;; n += 5) {
    system = "system: " + words(n, 7) + "\n";
    if (engine->tokenize(system, true).size() >= 1000) break;
  }
  const int64_t system_tokens = static_cast<int64_t>(engine->tokenize(system, true).size());
  std::printf(
      "model %s\n%s\nsystem prompt %lld tokens, 20 conversations, greedy 16-token answers\n",
      model.c_str(), engine->cache_stats_json().c_str(), static_cast<long long>(system_tokens));

  int64_t peak_hot = 0, peak_cold = 0, capacity = 0;
  auto track = [&] {
    nlohmann::json s = nlohmann::json::parse(engine->cache_stats_json());
    peak_hot = std::max(peak_hot, s["hot"]["bytes"].get<int64_t>());
    peak_cold = std::max(peak_cold, s["cold"]["bytes"].get<int64_t>());
    capacity = s["hot"]["capacity_bytes"].get<int64_t>();
  };

  // Cold: prompts of the same length with nothing in common (a different system prompt each).
  std::vector<double> cold;
  for (int i = 0; i < 3; ++i) {
    Turn t = turn(*engine,
                  "system: " + words(static_cast<int>(system.size() / 6), 900 + i) +
                      "\nuser: " + words(20, 1000 + i) + "\nassistant:",
                  16);
    cold.push_back(t.ttft_ms);
    std::printf("cold %d: %lld prompt tokens, %lld cached, TTFT %.1f ms\n", i,
                static_cast<long long>(t.prompt), static_cast<long long>(t.cached), t.ttft_ms);
    track();
  }
  // First visits: the system prompt is shared.
  std::vector<std::string> convs(20);
  std::vector<double> first;
  int64_t first_cached = 0;
  for (int i = 0; i < 20; ++i) {
    convs[static_cast<size_t>(i)] = system + "user: " + words(20, 100 + i) + "\nassistant:";
    Turn t = turn(*engine, convs[static_cast<size_t>(i)], 16);
    convs[static_cast<size_t>(i)] += t.answer;
    if (i > 0) first.push_back(t.ttft_ms), first_cached += t.cached;
    track();
  }
  // Revisits: the next turn of each conversation (prompt = whole conversation + a new message).
  std::vector<double> revisit;
  int64_t re_cached = 0, re_prompt = 0;
  const int64_t t0 = now_ns();
  for (int i = 0; i < 20; ++i) {
    Turn t = turn(*engine, convs[static_cast<size_t>(i)] + "\nuser: thanks\nassistant:", 16);
    revisit.push_back(t.ttft_ms);
    re_cached += t.cached;
    re_prompt += t.prompt;
    track();
  }
  const double revisit_s = (now_ns() - t0) / 1e9;
  const double mc = median(cold), mf = median(first), mr = median(revisit);
  std::printf(
      "TTFT median: cold %.1f ms | first visit, system prompt cached %.1f ms (%.0fx, %.0f "
      "cached tokens avg) | revisit %.1f ms (%.0fx, %lld of %lld tokens cached)\n",
      mc, mf, mc / mf, first_cached / 19.0, mr, mc / mr, static_cast<long long>(re_cached),
      static_cast<long long>(re_prompt));
  std::printf("20 revisits in %.2f s\n", revisit_s);
  nlohmann::json s = nlohmann::json::parse(engine->cache_stats_json());
  std::printf(
      "memory: hot peak %.1f MiB of %.1f MiB budget (now %.1f MiB, %lld blocks), cold peak "
      "%.1f MiB; hot evictions %lld, cold hits %lld\n",
      peak_hot / 1048576.0, capacity / 1048576.0, s["hot"]["bytes"].get<int64_t>() / 1048576.0,
      static_cast<long long>(s["hot"]["blocks"].get<int64_t>()), peak_cold / 1048576.0,
      static_cast<long long>(s["hot"]["evictions"].get<int64_t>()),
      static_cast<long long>(s["cold"]["hits"].get<int64_t>()));
  return peak_hot <= capacity ? 0 : 2;
}
