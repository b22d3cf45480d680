// `runnel runner --model PATH --socket PATH`: the hidden subcommand that `runnel serve` starts, one
// process per loaded model. Loads the engine, then serves it on the Unix socket (runner_process.h).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <memory>

#include "cli/command.h"
#include "runner/engine_api.h"
#include "runner/runner_process.h"

namespace runnel::cli {
namespace {

struct RunnerFlags {
  runner::EngineConfig engine;
  std::string socket;
};

std::function<int()> setup(CLI::App& app) {
  auto flags = std::make_shared<RunnerFlags>();
  app.group("");  // hidden from `runnel --help`
  app.add_option("--model", flags->engine.model_path, "Model file or folder")->required();
  app.add_option("--socket", flags->socket, "Unix socket to serve on")->required();
  app.add_option("--parallel", flags->engine.parallel, "Maximum live sequences");
  app.add_option("--threads", flags->engine.threads, "Compute threads (0: all cores)");
  app.add_option("--num-ctx", flags->engine.num_ctx, "Context length (0: model default)");
  return [flags]() -> int {
    std::unique_ptr<runner::Engine> engine = runner::make_engine(flags->engine);
    int status = runner::run_runner_process(*engine, {flags->socket});
    // Request threads may still hold the engine; the process ends here without unwinding them.
    _exit(status);
  };
}

}  // namespace

RUNNEL_COMMAND_ORDERED(runner, "Serve one model to `runnel serve` (internal)", setup, 1000);

}  // namespace runnel::cli
