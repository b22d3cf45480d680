// JSON encoding and decoding of the runner protocol (see protocol.h). Raw-JSON fields are
// re-serialized compactly on the way in and parsed only by the runner.
#include "runner/protocol.h"

#include <nlohmann/json.hpp>

#include "base/error.h"

namespace runnel::runner {
namespace {
using nlohmann::json;

json parse_line(const std::string& line) {
  try {
    json j = json::parse(line);
    check(j.is_object(), "protocol", "message is not a JSON object");
    return j;
  } catch (const json::exception& e) {
    fail("protocol", "bad message: ", e.what());
  }
}

// Embeds raw JSON text as a value; empty text → absent.
void put_raw(json& j, const char* key, const std::string& text) {
  if (text.empty()) return;
  try {
    j[key] = json::parse(text);
  } catch (const json::exception& e) {
    fail("protocol", key, " is not valid JSON: ", e.what());
  }
}
std::string get_raw(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return "";
  return it->dump();
}
std::string get_str(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return "";
  check(it->is_string(), "protocol", key, " must be a string");
  return it->get<std::string>();
}
int64_t get_int(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return 0;
  check(it->is_number_integer(), "protocol", key, " must be an integer");
  return it->get<int64_t>();
}
bool get_bool(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return false;
  check(it->is_boolean(), "protocol", key, " must be a boolean");
  return it->get<bool>();
}
template <class F>
auto guarded(F&& f) {
  try {
    return f();
  } catch (const json::exception& e) {
    fail("protocol", "bad message: ", e.what());
  }
}

}  // namespace

std::string encode_generate(const GenerateRequest& r) {
  json j = {{"op", "generate"}, {"id", r.id}, {"chat", r.chat}, {"raw", r.raw}};
  if (r.chat) {
    json msgs = json::array();
    for (const ChatMessage& m : r.messages) {
      json mj = {{"role", m.role}, {"content", m.content}};
      if (!m.thinking.empty()) mj["thinking"] = m.thinking;
      if (!m.name.empty()) mj["name"] = m.name;
      if (!m.tool_call_id.empty()) mj["tool_call_id"] = m.tool_call_id;
      if (m.n_images) mj["n_images"] = m.n_images;
      put_raw(mj, "tool_calls", m.tool_calls_json);
      msgs.push_back(std::move(mj));
    }
    j["messages"] = std::move(msgs);
  } else {
    j["prompt"] = r.prompt;
    if (!r.suffix.empty()) j["suffix"] = r.suffix;
  }
  if (!r.system.empty()) j["system"] = r.system;
  put_raw(j, "template_kwargs", r.template_kwargs_json);
  put_raw(j, "options", r.options_json);
  if (!r.format.empty()) j["format"] = r.format;
  put_raw(j, "tools", r.tools_json);
  if (r.think) j["think"] = *r.think;
  if (r.logprobs) j["logprobs"] = true;
  if (r.top_logprobs) j["top_logprobs"] = r.top_logprobs;
  return j.dump();
}

std::string encode_simple_op(const std::string& op) { return json{{"op", op}}.dump(); }
std::string encode_tokenize(const std::string& text, bool add_special) {
  return json{{"op", "tokenize"}, {"text", text}, {"add_special", add_special}}.dump();
}
std::string encode_detokenize(const std::vector<int32_t>& ids, bool skip_special) {
  return json{{"op", "detokenize"}, {"ids", ids}, {"skip_special", skip_special}}.dump();
}

std::string encode_accepted() { return R"({"type":"accepted"})"; }
std::string encode_chunk(const Chunk& c) {
  json j = {{"type", "chunk"}, {"text", c.text}};
  if (!c.thinking.empty()) j["thinking"] = c.thinking;
  put_raw(j, "tool_calls", c.tool_calls_json);
  put_raw(j, "logprobs", c.logprobs_json);
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}
std::string encode_done(const GenerateResult& r) {
  return json{{"type", "done"},
              {"done_reason", r.done_reason},
              {"prompt_eval_count", r.prompt_eval_count},
              {"prompt_eval_duration", r.prompt_eval_duration},
              {"eval_count", r.eval_count},
              {"eval_duration", r.eval_duration},
              {"load_duration", r.load_duration},
              {"total_duration", r.total_duration},
              {"cached_tokens", r.cached_tokens}}
      .dump();
}
std::string encode_error(const std::string& message, int status) {
  return json{{"type", "error"}, {"error", message}, {"status", status}}.dump(
      -1, ' ', false, json::error_handler_t::replace);
}
std::string encode_info(const ModelInfo& i) {
  json j = {{"type", "result"},
            {"architecture", i.architecture},
            {"family", i.family},
            {"format", i.format},
            {"parameter_count", i.parameter_count},
            {"quantization", i.quantization},
            {"context_length", i.context_length},
            {"chat_template", i.chat_template}};
  put_raw(j, "model_info", i.model_info_json);
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}
std::string encode_tokens(const std::vector<int32_t>& ids) {
  return json{{"type", "result"}, {"tokens", ids}}.dump();
}
std::string encode_text(const std::string& text) {
  return json{{"type", "result"}, {"text", text}}.dump(-1, ' ', false,
                                                       json::error_handler_t::replace);
}
std::string encode_stats(const RunnerStats& s) {
  return json{{"type", "result"},
              {"requests_total", s.requests_total},
              {"cancelled_total", s.cancelled_total},
              {"active", s.active}}
      .dump();
}
std::string encode_cache(const std::string& cache_json) {
  json j = {{"type", "result"}};
  put_raw(j, "cache", cache_json.empty() ? "{}" : cache_json);
  return j.dump();
}

std::string decode_op(const std::string& line) { return get_str(parse_line(line), "op"); }

GenerateRequest decode_generate(const std::string& line) {
  json j = parse_line(line);
  return guarded([&] {
    GenerateRequest r;
    r.id = get_str(j, "id");
    r.chat = get_bool(j, "chat");
    r.raw = get_bool(j, "raw");
    if (auto it = j.find("messages"); it != j.end()) {
      check(it->is_array(), "protocol", "messages must be an array");
      for (const json& mj : *it) {
        ChatMessage m;
        m.role = get_str(mj, "role");
        m.content = get_str(mj, "content");
        m.thinking = get_str(mj, "thinking");
        m.name = get_str(mj, "name");
        m.tool_call_id = get_str(mj, "tool_call_id");
        m.tool_calls_json = get_raw(mj, "tool_calls");
        m.n_images = static_cast<int>(get_int(mj, "n_images"));
        r.messages.push_back(std::move(m));
      }
    }
    r.prompt = get_str(j, "prompt");
    r.suffix = get_str(j, "suffix");
    r.system = get_str(j, "system");
    r.template_kwargs_json = get_raw(j, "template_kwargs");
    r.options_json = get_raw(j, "options");
    r.format = get_str(j, "format");
    r.tools_json = get_raw(j, "tools");
    if (j.contains("think") && j["think"].is_boolean()) r.think = j["think"].get<bool>();
    r.logprobs = get_bool(j, "logprobs");
    r.top_logprobs = static_cast<int>(get_int(j, "top_logprobs"));
    return r;
  });
}

std::pair<std::string, bool> decode_tokenize(const std::string& line) {
  json j = parse_line(line);
  return {get_str(j, "text"), j.value("add_special", true)};
}
std::pair<std::vector<int32_t>, bool> decode_detokenize(const std::string& line) {
  json j = parse_line(line);
  return guarded([&] {
    check(j.contains("ids") && j["ids"].is_array(), "protocol", "ids must be an array");
    return std::pair{j["ids"].get<std::vector<int32_t>>(), get_bool(j, "skip_special")};
  });
}

Frame decode_frame(const std::string& line) {
  json j = parse_line(line);
  return guarded([&] {
    Frame f;
    std::string type = get_str(j, "type");
    if (type == "accepted") {
      f.type = Frame::Type::kAccepted;
    } else if (type == "chunk") {
      f.type = Frame::Type::kChunk;
      f.chunk.text = get_str(j, "text");
      f.chunk.thinking = get_str(j, "thinking");
      f.chunk.tool_calls_json = get_raw(j, "tool_calls");
      f.chunk.logprobs_json = get_raw(j, "logprobs");
    } else if (type == "done") {
      f.type = Frame::Type::kDone;
      GenerateResult& r = f.result;
      r.done_reason = get_str(j, "done_reason");
      r.prompt_eval_count = get_int(j, "prompt_eval_count");
      r.prompt_eval_duration = get_int(j, "prompt_eval_duration");
      r.eval_count = get_int(j, "eval_count");
      r.eval_duration = get_int(j, "eval_duration");
      r.load_duration = get_int(j, "load_duration");
      r.total_duration = get_int(j, "total_duration");
      r.cached_tokens = get_int(j, "cached_tokens");
    } else if (type == "error") {
      f.type = Frame::Type::kError;
      f.error = get_str(j, "error");
      f.status = j.contains("status") ? static_cast<int>(get_int(j, "status")) : 500;
    } else if (type == "result") {
      f.type = Frame::Type::kResult;
      f.result_json = line;
    } else {
      fail("protocol", "unknown frame type '", type, "'");
    }
    return f;
  });
}

ModelInfo decode_info(const std::string& text) {
  json j = parse_line(text);
  return guarded([&] {
    ModelInfo i;
    i.architecture = get_str(j, "architecture");
    i.family = get_str(j, "family");
    i.format = get_str(j, "format");
    i.parameter_count = get_int(j, "parameter_count");
    i.quantization = get_str(j, "quantization");
    i.context_length = get_int(j, "context_length");
    i.chat_template = get_str(j, "chat_template");
    i.model_info_json = get_raw(j, "model_info");
    return i;
  });
}
std::vector<int32_t> decode_tokens(const std::string& text) {
  json j = parse_line(text);
  return guarded([&] { return j.at("tokens").get<std::vector<int32_t>>(); });
}
std::string decode_text(const std::string& text) { return get_str(parse_line(text), "text"); }
RunnerStats decode_stats(const std::string& text) {
  json j = parse_line(text);
  return guarded([&] {
    RunnerStats s;
    s.requests_total = get_int(j, "requests_total");
    s.cancelled_total = get_int(j, "cancelled_total");
    s.active = get_int(j, "active");
    return s;
  });
}
std::string decode_cache(const std::string& text) {
  std::string raw = get_raw(parse_line(text), "cache");
  return raw.empty() ? "{}" : raw;
}

}  // namespace runnel::runner
