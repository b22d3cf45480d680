// The JSON-lines protocol between `runnel serve` and a `runnel runner` process over a Unix socket.
// One connection per request: the server writes one request line, the runner answers with frame
// lines and closes. Closing the connection early cancels the request (the runner notices at its
// next step). Raw JSON (options, format, tools, ...) travels as JSON text so that this header stays
// free of a JSON library; the runner parses and validates it.
//
//   request:  {"op":"generate"|"tokenize"|"detokenize"|"info"|"cache"|"stats"|"health", ...}
//   generate: {"type":"accepted"} {"type":"chunk",...}* ({"type":"done",...} |
//   {"type":"error",...})
//             an error before "accepted" carries "status" (400: bad request, 500: engine failure)
//   others:   {"type":"result",...} | {"type":"error",...}
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace runnel::runner {

struct ChatMessage {
  std::string role;  // system, user, assistant, tool
  std::string content;
  std::string thinking;
  std::string name;
  std::string tool_call_id;
  std::string tool_calls_json;  // JSON array text, or empty
  int n_images = 0;             // images are not supported yet; the server rejects them
};

struct GenerateRequest {
  std::string id;  // for logs
  bool chat = false;
  std::vector<ChatMessage> messages;  // chat
  std::string prompt;                 // !chat
  std::string suffix;                 // !chat (fill-in-the-middle)
  std::string system;                 // overrides the model's system prompt
  bool raw = false;                   // no template: prompt is tokenized as is
  std::string template_kwargs_json;   // JSON object text or empty ({"enable_thinking": false})
  std::string options_json;           // Ollama "options" JSON object text or empty
  std::string format;                 // "", "json", or a JSON schema text
  std::string tools_json;             // JSON array text or empty
  std::optional<bool> think;          // Ollama "think"
  bool logprobs = false;
  int top_logprobs = 0;
};

struct Chunk {
  std::string text;
  std::string thinking;
  std::string tool_calls_json;  // JSON array text or empty
  std::string logprobs_json;    // JSON array text (one entry per token) or empty
};

// Durations in nanoseconds; counts in tokens.
struct GenerateResult {
  std::string done_reason = "stop";  // stop, length, cancel
  int64_t prompt_eval_count = 0;     // every prompt token, cached or not
  int64_t prompt_eval_duration = 0;
  int64_t eval_count = 0;
  int64_t eval_duration = 0;
  int64_t load_duration = 0;
  int64_t total_duration = 0;
  int64_t cached_tokens = 0;  // prompt tokens served from the prefix cache
};

struct ModelInfo {
  std::string architecture;  // "llama", "qwen3", ...
  std::string family;
  std::string format;  // "gguf", "safetensors"
  int64_t parameter_count = 0;
  std::string quantization;  // "Q8_0", "F16", ...
  int64_t context_length = 0;
  std::string chat_template;
  std::string model_info_json;  // extra key/values as a JSON object text, or empty
};

// Runner-side counters (for /metrics and tests).
struct RunnerStats {
  int64_t requests_total = 0;
  int64_t cancelled_total = 0;  // requests whose connection closed before they finished
  int64_t active = 0;           // generations running now
};

// One decoded line from the runner. `type` says which fields are set.
struct Frame {
  enum class Type { kAccepted, kChunk, kDone, kError, kResult };
  Type type = Type::kError;
  Chunk chunk;              // kChunk
  GenerateResult result;    // kDone
  std::string error;        // kError
  int status = 500;         // kError before kAccepted
  std::string result_json;  // kResult: the whole line (op-specific fields)
};

// --- encoding (one line each, without the trailing newline) ---
std::string encode_generate(const GenerateRequest& request);
std::string encode_simple_op(const std::string& op);  // info, cache, stats, health
std::string encode_tokenize(const std::string& text, bool add_special);
std::string encode_detokenize(const std::vector<int32_t>& ids, bool skip_special);

std::string encode_accepted();
std::string encode_chunk(const Chunk& chunk);
std::string encode_done(const GenerateResult& result);
std::string encode_error(const std::string& message, int status);
std::string encode_info(const ModelInfo& info);
std::string encode_tokens(const std::vector<int32_t>& ids);
std::string encode_text(const std::string& text);
std::string encode_stats(const RunnerStats& stats);
std::string encode_cache(const std::string& cache_json);

// --- decoding; each throws Error("protocol", ...) on a malformed line ---
std::string decode_op(const std::string& line);
GenerateRequest decode_generate(const std::string& line);
std::pair<std::string, bool> decode_tokenize(const std::string& line);
std::pair<std::vector<int32_t>, bool> decode_detokenize(const std::string& line);

Frame decode_frame(const std::string& line);
ModelInfo decode_info(const std::string& result_json);
std::vector<int32_t> decode_tokens(const std::string& result_json);
std::string decode_text(const std::string& result_json);
RunnerStats decode_stats(const std::string& result_json);
std::string decode_cache(const std::string& result_json);  // JSON object text

}  // namespace runnel::runner
