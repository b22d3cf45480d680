// The HTTP server: builds the shared context, registers the routes of each concern and runs
// cpp-httplib with a thread pool large enough for many concurrent streams.
#include "server/server.h"

#include <httplib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <climits>
#include <nlohmann/json.hpp>

#include "base/env.h"
#include "base/log.h"
#include "server/context.h"
#include "server/streaming.h"

namespace runnel::server {

namespace {

std::string self_exe() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  check(n > 0, "server", "cannot find the runnel executable (/proc/self/exe)");
  return std::string(buf, static_cast<size_t>(n));
}

SchedulerOptions scheduler_options(const ServerOptions& o) {
  SchedulerOptions s;
  s.runner_bin = o.runner_bin.empty() ? self_exe() : o.runner_bin;
  s.runner_args = o.runner_args;
  s.memory_budget = o.memory_budget;
  return s;
}

}  // namespace

ServerOptions ServerOptions::from_env() {
  ServerOptions o;
  if (auto host = env_string("RUNNEL_HOST"); host && !host->empty()) {
    std::string h = *host;
    if (starts_with(h, "http://")) h = h.substr(7);
    size_t colon = h.rfind(':');
    if (colon != std::string::npos) {
      std::string port = h.substr(colon + 1);
      check(!port.empty() && port.find_first_not_of("0123456789") == std::string::npos &&
                port.size() <= 5,
            "config", "RUNNEL_HOST: bad port in '", *host, "'");
      o.port = std::stoi(port);
      h = h.substr(0, colon);
    }
    if (!h.empty()) o.host = h;
  }
  if (auto bin = env_string("RUNNEL_RUNNER_BIN"); bin && !bin->empty()) o.runner_bin = *bin;
  if (auto mem = env_string("RUNNEL_MAX_MEMORY"); mem && !mem->empty())
    o.memory_budget = parse_byte_size(*mem);
  if (auto par = env_int("RUNNEL_NUM_PARALLEL"))
    o.runner_args = {"--parallel", std::to_string(*par)};
  return o;
}

struct Server::Impl {
  explicit Impl(ServerOptions o)
      : ctx{o,
            ModelStore(o.models_dir.empty() ? ModelStore::default_root() : o.models_dir),
            Scheduler(scheduler_options(o)),
            {}} {
    if (!o.default_model.empty()) ctx.store.add_builtin("default", o.default_model);
  }
  ServerContext ctx;
  httplib::Server http;
  int port = 0;
};

Server::Server(ServerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {
  httplib::Server& http = impl_->http;
  ServerContext& ctx = impl_->ctx;
  int threads = ctx.options.http_threads;
  http.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  http.set_payload_max_length(ctx.options.max_body_bytes);
  // httplib's default sets SO_REUSEPORT, which lets a second server bind a port in use; we want
  // "address in use" instead. SO_REUSEADDR alone still allows a quick restart.
  http.set_socket_options([](int sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  http.set_read_timeout(60, 0);
  http.set_write_timeout(60, 0);
  http.set_keep_alive_max_count(1000);
  http.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("Ollama is running", "text/plain");
  });
  http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string message = res.status == 413   ? "request body too large"
                          : res.status == 404 ? str_cat("no route for ", req.method, " ", req.path)
                                              : str_cat("HTTP ", res.status);
    error_response(res, res.status, message);
  });
  register_ollama_routes(http, ctx);
  register_openai_routes(http, ctx);
  register_store_routes(http, ctx);
}

Server::~Server() { stop(); }

void Server::bind() {
  const ServerOptions& o = impl_->ctx.options;
  if (o.port == 0) {
    impl_->port = impl_->http.bind_to_any_port(o.host);
  } else {
    impl_->port = impl_->http.bind_to_port(o.host, o.port) ? o.port : -1;
  }
  check(impl_->port > 0, "server", "cannot listen on ", o.host, ":", o.port,
        " (address in use or not available)");
}

int Server::port() const { return impl_->port; }

void Server::listen() { impl_->http.listen_after_bind(); }

void Server::stop() {
  if (impl_->http.is_running()) impl_->http.stop();
}

}  // namespace runnel::server
