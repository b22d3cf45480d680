// Parsing and validation of generation requests at the HTTP edge: Ollama /api/generate and
// /api/chat, OpenAI /v1/chat/completions and /v1/completions all become one GenerationParams
// (a runner::GenerateRequest plus what the server itself needs). Every problem is an
// Error("api", ...) naming the field, answered with HTTP 400.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "runner/protocol.h"

namespace runnel::server {

struct GenerationParams {
  std::string model;
  bool stream = true;
  std::optional<int64_t> keep_alive_ns;  // nullopt: default; kForever (INT64_MAX): never unload
  bool include_usage = false;            // OpenAI stream_options.include_usage
  runner::GenerateRequest request;
  bool empty() const;  // nothing to generate (an Ollama load/unload request)
};

GenerationParams parse_ollama_generate(const std::string& body);
GenerationParams parse_ollama_chat(const std::string& body);
GenerationParams parse_openai_chat(const std::string& body);
GenerationParams parse_openai_completion(const std::string& body);

// Ollama durations: "5m", "1h30m", "10s", "250ms", a bare number of seconds; negative = forever.
// Returns nanoseconds, kForever for negative values. Throws Error("api", ...).
int64_t parse_duration_ns(const std::string& text);

}  // namespace runnel::server
