// The interface between the runner process's socket side (runner_process.cpp) and the engine that
// owns one loaded model. The socket side decodes requests (protocol.h) and calls an Engine from
// many threads at once (one per request); the engine batches them internally.
// Contract: generate() validates the request and throws runnel::Error for bad input BEFORE calling
// sink.accept(); after accept() every error is reported in-stream (the socket side does that for
// any exception). The engine checks sink.cancelled() at least once per step and returns promptly.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "runner/protocol.h"

namespace runnel::runner {

// Where one request's output goes. Thread-safe: the engine may call it from its own thread.
// Never blocks on the reader: chunks are queued and written by the socket side.
class ChunkSink {
 public:
  virtual ~ChunkSink() = default;
  // The request is valid and will run: the server now commits to a 200 streaming answer.
  // Called at most once; chunk() calls it implicitly when the engine has not.
  virtual void accept() = 0;
  // One piece of output (text, thinking, tool calls, logprobs), in order.
  virtual void chunk(const Chunk& chunk) = 0;
  // True once the client has gone (the request's connection closed); stop at the next step.
  virtual bool cancelled() const = 0;
};

class Engine {
 public:
  virtual ~Engine() = default;
  // Runs one generation to its end (stop, length, cancellation) and returns its stats.
  // Throws runnel::Error for invalid requests (prompt longer than the context, bad options, ...).
  virtual GenerateResult generate(const GenerateRequest& request, ChunkSink& sink) = 0;
  // Model facts for /api/show and `runnel show`.
  virtual ModelInfo info() = 0;
  virtual std::vector<int32_t> tokenize(const std::string& text, bool add_special) = 0;
  virtual std::string detokenize(const std::vector<int32_t>& ids, bool skip_special) = 0;
  // Prefix-cache statistics as a JSON object text (tiers, bytes, blocks, hits); "{}" if none.
  virtual std::string cache_stats_json() = 0;
};

// What `runnel runner` was asked to load (flags of the hidden subcommand).
struct EngineConfig {
  std::string model_path;  // a .gguf file or a model folder
  int parallel = 4;        // bound on live sequences
  int threads = 0;         // 0 = all cores
  int64_t num_ctx = 0;     // 0 = model default
};

// Builds the engine for a model. Defined in engine_factory.cpp (owned by the engine's author).
std::unique_ptr<Engine> make_engine(const EngineConfig& config);

}  // namespace runnel::runner
