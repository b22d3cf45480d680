// The CLI's client for a running `runnel serve` (run --host): streams a generation over HTTP.
#pragma once

#include <string>

#include "runner/protocol.h"

namespace runnel::cli {

// POSTs /api/chat (req.chat) or /api/generate to `host` ("http://127.0.0.1:11434" or
// "127.0.0.1:11434") for model `model`, printing the streamed text to stdout as it arrives.
runner::GenerateResult remote_generate(const std::string& host, const std::string& model,
                                       const runner::GenerateRequest& req, std::string* text);

}  // namespace runnel::cli
