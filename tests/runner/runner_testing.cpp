// Helpers for the engine-level tests (see runner_testing.h).
#include "runner_testing.h"

#include <cstdio>
#include <cstdlib>

#include "base/error.h"
#include "testing/testing.h"

namespace runnel::runner::testing {

GenerateRequest greedy_request(const std::string& prompt, int n_predict) {
  GenerateRequest r;
  r.raw = true;
  r.prompt = prompt;
  r.options_json = "{\"temperature\":0,\"num_predict\":" + std::to_string(n_predict) + "}";
  r.top_logprobs = 3;
  return r;
}

Output run(Engine& engine, const std::string& prompt, int n_predict, int cancel_after_polls) {
  CollectSink sink(cancel_after_polls);
  GenerateRequest req = greedy_request(prompt, n_predict);
  Output o;
  o.result = engine.generate(req, sink);
  o.text = sink.text;
  o.logprobs = sink.logprobs;
  return o;
}

ScopedEnv::ScopedEnv(const char* name, std::optional<std::string> value) : name_(name) {
  if (const char* v = std::getenv(name)) old_ = v;
  if (value) {
    setenv(name, value->c_str(), 1);
  } else {
    unsetenv(name);
  }
}

ScopedEnv::~ScopedEnv() {
  if (old_) {
    setenv(name_.c_str(), old_->c_str(), 1);
  } else {
    unsetenv(name_.c_str());
  }
}

std::unique_ptr<Engine> make_cache_engine(const std::string& model, const CacheEnv& env) {
  ScopedEnv a("RUNNEL_KV_CACHE_MEMORY", env.memory);
  ScopedEnv b("RUNNEL_KV_CACHE_COLD_MEMORY", env.cold_memory);
  ScopedEnv c("RUNNEL_KV_CACHE_DIR", env.dir);
  ScopedEnv d("RUNNEL_KV_CACHE_COMPRESS", std::nullopt);
  EngineConfig config;
  config.model_path = model;
  return make_engine(config);
}

std::string stories_model() { return runnel::testing::shared_dir() + "/models/stories260K.gguf"; }

namespace {
std::string gen_tiny(const std::string& tag, const std::string& shape) {
  std::string out = runnel::testing::make_temp_dir(tag) + "/tiny.gguf";
  std::string cmd = "/usr/bin/python3 " + runnel::testing::source_dir() +
                    "/tools/gen_tiny_model.py --arch LlamaForCausalLM --format gguf --dtype f32 " +
                    shape + " --layers 2 --kv-heads 2 --vocab 320 --ctx 2048 --seed 7 --out " +
                    out + " > /dev/null";
  check(std::system(cmd.c_str()) == 0, "test", "gen_tiny_model.py failed: ", cmd);
  return out;
}
}  // namespace

std::string tiny_model() {
  static std::string path = gen_tiny("runner_tiny", "--hidden 64 --heads 4 --ffn 128");
  return path;
}

std::string tiny_wide_heads_model() {
  static std::string path = gen_tiny("runner_tiny32", "--hidden 128 --heads 4 --ffn 256");
  return path;
}

std::string words(int n, int seed) {
  static const char* kWords[] = {"the",    "little", "cat",  "saw",  "a",    "big",  "red",
                                 "ball",   "and",    "ran",  "to",   "play", "with", "her",
                                 "friend", "in",     "park", "one",  "day",  "sun",  "was",
                                 "happy",  "tree",   "bird", "sang", "song", "dog",  "jumped"};
  const int nw = static_cast<int>(sizeof(kWords) / sizeof(kWords[0]));
  std::string s;
  uint32_t x = static_cast<uint32_t>(seed) * 2654435761u + 12345u;
  for (int i = 0; i < n; ++i) {
    x = x * 1664525u + 1013904223u;
    if (!s.empty()) s += (i % 11 == 10) ? ". " : " ";
    s += kWords[(x >> 16) % static_cast<uint32_t>(nw)];
  }
  return s;
}

}  // namespace runnel::runner::testing
