// `runnel serve`: runs the HTTP server until SIGINT/SIGTERM. Prints the address it listens on
// ("runnel: listening on http://HOST:PORT") to stdout once bound, so `--port 0` can be used.
#include <httplib.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <thread>

#include "base/error.h"
#include "cli/cache_flags.h"
#include "cli/command.h"
#include "cli/default_model.h"
#include "server/server.h"

namespace runnel::cli {
namespace {

struct ServeFlags {
  std::string host;
  int port = -1;
  std::string models;
  bool no_preload = false;
  std::shared_ptr<CacheFlagValues> cache;
};

int run(const ServeFlags& flags) {
  apply_cache_flags(*flags.cache);
  server::ServerOptions options = server::ServerOptions::from_env();
  if (!flags.host.empty()) options.host = flags.host;
  if (flags.port >= 0) options.port = flags.port;
  if (!flags.models.empty()) options.models_dir = flags.models;
  try {
    options.default_model = default_model_path();
  } catch (const Error&) {
    // Served without the embedded model: every other model still works.
  }

  // Signals go to one thread that stops the server; runners get SIGTERM from the scheduler.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  server::Server srv(options);
  srv.bind();
  std::printf("runnel: listening on http://%s:%d\n", options.host.c_str(), srv.port());
  std::fflush(stdout);
  // Preload the embedded model as "default", as a client's first request would.
  std::thread preload;
  if (!options.default_model.empty() && !flags.no_preload) {
    preload = std::thread([port = srv.port()] {
      httplib::Client client("127.0.0.1", port);
      client.set_read_timeout(120, 0);
      client.Post("/api/generate", R"({"model":"default","prompt":""})", "application/json");
    });
  }
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&set, &sig);
    srv.stop();
  });
  srv.listen();
  pthread_kill(waiter.native_handle(), SIGTERM);  // wakes it if listen ended on its own
  waiter.join();
  if (preload.joinable()) preload.join();
  return 0;
}

std::function<int()> setup(CLI::App& app) {
  auto flags = std::make_shared<ServeFlags>();
  app.add_option("--host", flags->host, "Address to listen on (default 127.0.0.1, RUNNEL_HOST)");
  app.add_option("--port", flags->port, "Port (default 11434; 0 picks a free one)")
      ->check(CLI::Range(0, 65535));
  app.add_option("--models", flags->models, "Model store folder (default $RUNNEL_MODELS)");
  app.add_flag("--no-preload", flags->no_preload,
               "Do not load the embedded model as \"default\" at start");
  flags->cache = add_cache_flags(app);
  return [flags] { return run(*flags); };
}

}  // namespace

RUNNEL_COMMAND_ORDERED(serve, "Start the HTTP server (Ollama and OpenAI APIs)", setup, 20);

}  // namespace runnel::cli
