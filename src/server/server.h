// `runnel serve`: the HTTP server (Ollama /api/*, OpenAI /v1/*, /api/cache, /metrics) over the
// model store and the runner scheduler. Settings come from flags and the environment
// (RUNNEL_HOST=host:port, RUNNEL_MODELS, RUNNEL_RUNNER_BIN, RUNNEL_MAX_MEMORY,
// RUNNEL_NUM_PARALLEL).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace runnel::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 11434;        // 0: any free port (see Server::port())
  std::string models_dir;  // empty: ModelStore::default_root()
  std::string runner_bin;  // empty: $RUNNEL_RUNNER_BIN, else this executable
  std::vector<std::string> runner_args;
  int64_t memory_budget = 0;          // bytes; 0: $RUNNEL_MAX_MEMORY, else 75% of RAM
  size_t max_body_bytes = 32u << 20;  // larger request bodies get 413
  int http_threads = 64;              // concurrent connections served
  std::string default_model;          // folder served as "default" (the embedded model), or ""

  // Defaults overridden by the environment variables above.
  static ServerOptions from_env();
};

class Server {
 public:
  explicit Server(ServerOptions options);
  ~Server();  // stops the runners
  // Binds the socket; throws Error("server", ...) when the address is taken.
  void bind();
  int port() const;
  // Serves until stop() (from another thread).
  void listen();
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace runnel::server
