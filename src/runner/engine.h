// The inference engine of one loaded model: tokenizer, chat template, model and one engine thread
// that advances every live sequence together (continuous batching). Requests arrive from many
// threads through generate(), which validates them, queues them and waits for their end while the
// engine thread streams their output into their sinks. KV lives in the prefix cache's blocks
// (cache::PrefixCache, configured from RUNNEL_KV_CACHE_*): a prompt starts after its longest
// cached prefix, and every sequence commits what it computed so later requests can share it.
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "runner/engine_api.h"

namespace runnel::models {
class Model;
}
namespace runnel::cache {
class PrefixCache;
}
namespace runnel::tokenizer {
class Tokenizer;
}
namespace runnel::sample {
class Vocabulary;
}

namespace runnel::runner {

struct Sequence;
class PromptBuilder;

class LlmEngine : public Engine {
 public:
  explicit LlmEngine(const EngineConfig& config);
  ~LlmEngine() override;

  GenerateResult generate(const GenerateRequest& request, ChunkSink& sink) override;
  ModelInfo info() override;
  std::vector<int32_t> tokenize(const std::string& text, bool add_special) override;
  std::string detokenize(const std::vector<int32_t>& ids, bool skip_special) override;
  std::string cache_stats_json() override;

  // Longest context a request may ask for (the model's trained context).
  int64_t max_context() const;
  // Positions per KV block.
  static constexpr int kBlockTokens = 16;

 private:
  void engine_loop();
  // One step: admit waiting sequences, run one batched forward pass, sample, stream.
  void step(std::vector<Sequence*>& live);
  void finish(Sequence& s, const std::string& reason);
  // Admits a sequence: looks its prompt up in the prefix cache. False (error set) on failure.
  bool admit(Sequence& s);
  const sample::Vocabulary& vocabulary();

  EngineConfig config_;
  std::unique_ptr<models::Model> model_;
  std::unique_ptr<tokenizer::Tokenizer> tokenizer_;
  std::unique_ptr<PromptBuilder> prompts_;
  std::unique_ptr<cache::PrefixCache> cache_;        // used by the engine thread only (stats: any)
  std::shared_ptr<const sample::Vocabulary> vocab_;  // built on first constrained request
  std::mutex vocab_mu_;
  int64_t load_ns_ = 0;
  bool load_reported_ = false;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Sequence*> waiting_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace runnel::runner
