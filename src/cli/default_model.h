// Where the embedded default model lives: beside the binary (build/models/default, copied there by
// the build) or, failing that, in the source tree the binary was built from.
#pragma once

#include <string>

namespace runnel::cli {
// The folder of the default model; Error when it cannot be found.
std::string default_model_path();
}  // namespace runnel::cli
