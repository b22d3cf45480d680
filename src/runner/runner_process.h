// The socket side of a `runnel runner` process: accepts one Unix-socket connection per request,
// decodes it (protocol.h), calls the Engine from that connection's thread, and writes frames back
// through a per-connection writer thread, so a slow reader never stalls the engine. A connection
// closed by the server cancels its request (ChunkSink::cancelled()).
#pragma once

#include <string>

#include "runner/engine_api.h"

namespace runnel::runner {

struct RunnerProcessOptions {
  std::string socket_path;  // created (an old file there is removed), removed on exit
};

// Serves `engine` until SIGTERM/SIGINT arrives or the parent process dies. Returns the exit status.
int run_runner_process(Engine& engine, const RunnerProcessOptions& options);

}  // namespace runnel::runner
