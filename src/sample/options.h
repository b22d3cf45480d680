// Sampling options as one struct with Ollama's defaults, and the parsers that fill it from an
// Ollama `options` object / `format` field or from an OpenAI request body. Unknown keys and options
// that would change the output but are not implemented are Errors naming the key; hardware and
// runtime hints are accepted (and the few the runner can use are kept).
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace runnel::sample {

enum class FormatKind { kNone, kJson, kJsonSchema };

struct SamplingOptions {
  // Transforms (applied in the order listed in transforms.h).
  float temperature = 0.8f;  // 0 = greedy (argmax, ties to the lowest id)
  int32_t top_k = 40;        // <= 0 disables
  float top_p = 0.9f;        // 1 disables
  float min_p = 0.0f;        // 0 disables
  float typical_p = 1.0f;    // 1 disables
  float repeat_penalty = 1.1f;
  int32_t repeat_last_n = 64;  // history window in tokens; 0 disables penalties, -1 = num_ctx
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  std::vector<std::pair<int32_t, float>> logit_bias;  // token id, added to its logit
  std::optional<uint64_t> seed;                       // absent: a random seed per request

  // Limits. Ollama's default context is 4096 tokens (OLLAMA_CONTEXT_LENGTH, since v0.6.x).
  int32_t num_predict = -1;  // -1 = until EOS/stop/context end, -2 = fill the context
  int32_t num_ctx = 4096;
  std::vector<std::string> stop;

  // Reporting.
  bool logprobs = false;
  int32_t top_logprobs = 0;  // 0..20 alternatives per token

  // Structured output.
  FormatKind format = FormatKind::kNone;
  std::string format_schema;  // JSON text of the schema when format == kJsonSchema

  // Runtime hints that the runner may use (absent = its own choice).
  std::optional<int32_t> num_thread;
  std::optional<int32_t> num_batch;
  std::optional<int32_t> num_keep;

  // The effective penalty window for this num_ctx.
  int32_t penalty_window() const { return repeat_last_n < 0 ? num_ctx : repeat_last_n; }
};

// Ollama `options` object (null or absent keys keep the defaults).
SamplingOptions parse_ollama_options(const nlohmann::json& options);
void apply_ollama_options(const nlohmann::json& options, SamplingOptions& out);
// Ollama `format`: null/"" (none), "json", or a JSON schema object. Pass an ordered_json to keep
// the schema's property order (generation follows it); nlohmann::json sorts keys.
void apply_ollama_format(const nlohmann::json& format, SamplingOptions& out);
void apply_ollama_format(const nlohmann::ordered_json& format, SamplingOptions& out);

// OpenAI request body (chat or legacy completions): reads temperature (default 1), top_p
// (default 1), max_tokens / max_completion_tokens, seed, stop (string or array),
// frequency_penalty, presence_penalty, logprobs (bool, or an int for legacy completions),
// top_logprobs, logit_bias, response_format, n (must be 1), and the common extensions top_k,
// min_p, typical_p, repeat_penalty. Other fields (model, messages, stream, ...) are not read here.
SamplingOptions parse_openai_request(const nlohmann::json& request);
SamplingOptions parse_openai_request(const nlohmann::ordered_json& request);

}  // namespace runnel::sample
