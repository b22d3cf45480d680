// Builds the Engine that `runnel runner` serves (and `runnel run` uses in-process).
#include "runner/engine.h"
#include "runner/engine_api.h"

namespace runnel::runner {

std::unique_ptr<Engine> make_engine(const EngineConfig& config) {
  return std::make_unique<LlmEngine>(config);
}

}  // namespace runnel::runner
