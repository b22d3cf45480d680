// What every route handler shares: options, store, scheduler and counters. Internal to server/.
#pragma once

#include <atomic>
#include <cstdint>

#include "server/scheduler.h"
#include "server/server.h"
#include "server/store.h"

namespace httplib {
class Server;
}

namespace runnel::server {

struct Metrics {
  std::atomic<int64_t> http_requests{0};
  std::atomic<int64_t> generations{0};
  std::atomic<int64_t> generations_active{0};
  std::atomic<int64_t> client_disconnects{0};  // streams cancelled because the client left
  std::atomic<int64_t> generation_errors{0};
  std::atomic<int64_t> prompt_tokens{0};
  std::atomic<int64_t> cached_tokens{0};
  std::atomic<int64_t> generated_tokens{0};
};

struct ServerContext {
  ServerOptions options;
  ModelStore store;
  Scheduler scheduler;
  Metrics metrics;
};

// One file per concern; each adds its routes.
void register_ollama_routes(httplib::Server& http, ServerContext& ctx);
void register_openai_routes(httplib::Server& http, ServerContext& ctx);
void register_store_routes(httplib::Server& http, ServerContext& ctx);

}  // namespace runnel::server
