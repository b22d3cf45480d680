// One generation from request to response, shared by the Ollama and OpenAI routes: resolve the
// model, lease its runner (restarting a dead one once), send the request, wait for the runner to
// accept it (errors before that become HTTP 4xx/5xx), then either stream frames as NDJSON/SSE
// through a route-specific Formatter or collect them into one object. A client that goes away
// mid-stream closes the runner connection at once, which cancels the request in the runner.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "base/error.h"
#include "runner/protocol.h"
#include "server/api.h"
#include "server/context.h"
#include "server/runner_client.h"

namespace httplib {
struct Response;
struct Request;
}  // namespace httplib

namespace runnel::server {

// An error with the HTTP status to answer.
class HttpError : public Error {
 public:
  HttpError(int status, std::string_view message) : Error("server", message), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

// The status for an exception thrown while handling a request (400 for bad input, 404 for an
// unknown model, 500 otherwise) and its message.
int status_for(const std::exception& e);

struct Generation {
  std::shared_ptr<Lease> lease;
  std::unique_ptr<RunnerConnection> conn;
  std::optional<runner::Frame> pending;  // read ahead while waiting for acceptance
  int64_t start_ns = 0;
  bool finished = false;
  // The HTTP client's socket (owned by httplib, only polled here) and whether it has hung up:
  // watching it lets a disconnect cancel the runner request even while no output flows
  // (a long prefill, a non-streaming request).
  int client_fd = -1;
  bool client_gone = false;
  // The next frame: chunk, done or error; a broken connection becomes an error frame.
  runner::Frame next();
};

// Throws HttpError (or Error) before anything is sent to the client.
std::shared_ptr<Generation> start_generation(ServerContext& ctx, const GenerationParams& params,
                                             const httplib::Request& req);
// Leases the model without generating (Ollama's empty prompt); returns the load time in ns.
int64_t load_only(ServerContext& ctx, const GenerationParams& params);

// Turns frames into the bytes of one route's stream.
class Formatter {
 public:
  virtual ~Formatter() = default;
  virtual std::string chunk(const runner::Chunk& chunk) = 0;
  virtual std::string done(const runner::GenerateResult& result) = 0;
  virtual std::string error(const std::string& message) = 0;
};

// Everything a non-streaming answer needs.
struct Collected {
  std::string text;
  std::string thinking;
  std::string tool_calls_json = "[]";  // concatenated JSON array
  std::string logprobs_json = "[]";
  runner::GenerateResult result;
  std::optional<std::string> error;
};

void stream_response(ServerContext& ctx, httplib::Response& res, std::shared_ptr<Generation> gen,
                     std::shared_ptr<Formatter> formatter, const std::string& content_type);
Collected collect(ServerContext& ctx, Generation& gen);

// Writes {"error": message} with `status` (Ollama style).
void error_response(httplib::Response& res, int status, const std::string& message);
// RFC 3339 UTC with nanoseconds, as Ollama's created_at.
std::string iso_time_now();
std::string iso_time(int64_t unix_seconds);

}  // namespace runnel::server
