// Request parsing for the generation routes (see api.h). Field names follow Ollama's docs/api.md
// and OpenAI's chat completions reference; OpenAI sampling fields map onto Ollama options so the
// runner sees one vocabulary.
#include "server/api.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "server/scheduler.h"

namespace runnel::server {
using nlohmann::json;

namespace {

json parse_body(const std::string& body) {
  json j;
  try {
    j = json::parse(body);
  } catch (const json::exception& e) {
    fail("api", "invalid JSON in request body: ", e.what());
  }
  check(j.is_object(), "api", "request body must be a JSON object");
  return j;
}

std::string opt_string(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return "";
  check(it->is_string(), "api", "'", key, "' must be a string");
  return it->get<std::string>();
}
std::optional<bool> opt_bool(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  check(it->is_boolean(), "api", "'", key, "' must be true or false");
  return it->get<bool>();
}

std::string required_model(const json& j) {
  std::string model = opt_string(j, "model");
  check(!model.empty(), "api", "'model' is required");
  return model;
}

std::optional<int64_t> keep_alive(const json& j) {
  auto it = j.find("keep_alive");
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (it->is_number()) {
    double s = it->get<double>();
    return s < 0 ? kForever : static_cast<int64_t>(s * 1e9);
  }
  check(it->is_string(), "api", "'keep_alive' must be a duration string or a number of seconds");
  return parse_duration_ns(it->get<std::string>());
}

void common_ollama(const json& j, GenerationParams& p) {
  p.model = required_model(j);
  p.stream = opt_bool(j, "stream").value_or(true);
  p.keep_alive_ns = keep_alive(j);
  runner::GenerateRequest& r = p.request;
  if (auto it = j.find("options"); it != j.end() && !it->is_null()) {
    check(it->is_object(), "api", "'options' must be an object");
    r.options_json = it->dump();
  }
  if (auto it = j.find("format"); it != j.end() && !it->is_null()) {
    if (it->is_string()) {
      std::string f = it->get<std::string>();
      check(f == "json" || f.empty(), "api", "'format' must be \"json\" or a JSON schema object");
      r.format = f;
    } else {
      check(it->is_object(), "api", "'format' must be \"json\" or a JSON schema object");
      r.format = it->dump();
    }
  }
  r.system = opt_string(j, "system");
  r.raw = opt_bool(j, "raw").value_or(false);
  r.think = opt_bool(j, "think");
  if (auto it = j.find("think"); it != j.end() && it->is_string()) r.think = true;  // "high"...
  r.logprobs = opt_bool(j, "logprobs").value_or(false);
  if (auto it = j.find("top_logprobs"); it != j.end() && !it->is_null()) {
    check(it->is_number_integer() && *it >= 0 && *it <= 20, "api",
          "'top_logprobs' must be an integer from 0 to 20");
    r.top_logprobs = it->get<int>();
  }
  if (auto it = j.find("tools"); it != j.end() && !it->is_null()) {
    check(it->is_array(), "api", "'tools' must be an array");
    r.tools_json = it->dump();
  }
  if (auto it = j.find("template_kwargs"); it != j.end() && !it->is_null()) {
    check(it->is_object(), "api", "'template_kwargs' must be an object");
    r.template_kwargs_json = it->dump();
  }
}

// Content: a string, or (OpenAI) an array of parts of which only text is supported.
std::string message_content(const json& m, size_t index, int& n_images) {
  auto it = m.find("content");
  if (it == m.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  check(it->is_array(), "api", "messages[", index, "].content must be a string or an array");
  std::string text;
  for (const json& part : *it) {
    check(part.is_object() && part.contains("type"), "api", "messages[", index,
          "].content: each part needs a 'type'");
    std::string type = part["type"].is_string() ? part["type"].get<std::string>() : "";
    if (type == "text") {
      check(part.contains("text") && part["text"].is_string(), "api", "messages[", index,
            "].content: a text part needs a string 'text'");
      text += part["text"].get<std::string>();
    } else if (type == "image_url" || type == "input_image") {
      ++n_images;
    } else {
      fail("api", "messages[", index, "].content: unsupported part type '", type, "'");
    }
  }
  return text;
}

std::vector<runner::ChatMessage> parse_messages(const json& j) {
  std::vector<runner::ChatMessage> out;
  auto it = j.find("messages");
  if (it == j.end() || it->is_null()) return out;
  check(it->is_array(), "api", "'messages' must be an array");
  for (size_t i = 0; i < it->size(); ++i) {
    const json& m = (*it)[i];
    check(m.is_object(), "api", "messages[", i, "] must be an object");
    runner::ChatMessage cm;
    check(m.contains("role") && m["role"].is_string(), "api", "messages[", i, "].role is required");
    cm.role = m["role"].get<std::string>();
    if (cm.role == "developer") cm.role = "system";
    check(cm.role == "system" || cm.role == "user" || cm.role == "assistant" || cm.role == "tool",
          "api", "messages[", i, "].role '", cm.role,
          "' is not one of system, user, assistant, tool");
    cm.content = message_content(m, i, cm.n_images);
    if (auto im = m.find("images"); im != m.end() && !im->is_null()) {
      check(im->is_array(), "api", "messages[", i, "].images must be an array");
      cm.n_images += static_cast<int>(im->size());
    }
    check(cm.n_images == 0, "api", "messages[", i, "]: images are not supported by this server");
    cm.thinking = opt_string(m, "thinking");
    cm.name = opt_string(m, "name");
    if (cm.name.empty()) cm.name = opt_string(m, "tool_name");
    cm.tool_call_id = opt_string(m, "tool_call_id");
    if (auto tc = m.find("tool_calls"); tc != m.end() && !tc->is_null()) {
      check(tc->is_array(), "api", "messages[", i, "].tool_calls must be an array");
      cm.tool_calls_json = tc->dump();
    }
    out.push_back(std::move(cm));
  }
  return out;
}

// OpenAI sampling fields → Ollama options.
void openai_options(const json& j, GenerationParams& p) {
  json options = json::object();
  auto number = [&](const char* from, const char* to) {
    auto it = j.find(from);
    if (it == j.end() || it->is_null()) return;
    check(it->is_number(), "api", "'", from, "' must be a number");
    options[to] = *it;
  };
  number("temperature", "temperature");
  number("top_p", "top_p");
  number("frequency_penalty", "frequency_penalty");
  number("presence_penalty", "presence_penalty");
  number("seed", "seed");
  number("max_tokens", "num_predict");
  number("max_completion_tokens", "num_predict");
  if (auto it = j.find("stop"); it != j.end() && !it->is_null()) {
    if (it->is_string()) {
      options["stop"] = json::array({*it});
    } else {
      check(it->is_array(), "api", "'stop' must be a string or an array of strings");
      for (const json& s : *it) check(s.is_string(), "api", "'stop' entries must be strings");
      options["stop"] = *it;
    }
  }
  if (auto it = j.find("n"); it != j.end() && !it->is_null())
    check(it->is_number_integer() && *it == 1, "api", "'n' other than 1 is not supported");
  if (!options.empty()) p.request.options_json = options.dump();
  p.stream = opt_bool(j, "stream").value_or(false);
  if (auto it = j.find("stream_options"); it != j.end() && it->is_object())
    p.include_usage = opt_bool(*it, "include_usage").value_or(false);
  if (auto it = j.find("response_format"); it != j.end() && !it->is_null()) {
    check(it->is_object(), "api", "'response_format' must be an object");
    std::string type = opt_string(*it, "type");
    if (type == "json_object") {
      p.request.format = "json";
    } else if (type == "json_schema") {
      const json* schema = nullptr;
      if (auto js = it->find("json_schema"); js != it->end() && js->is_object())
        if (auto s = js->find("schema"); s != js->end()) schema = &*s;
      check(schema && schema->is_object(), "api", "response_format.json_schema.schema is required");
      p.request.format = schema->dump();
    } else {
      check(type == "text", "api", "response_format.type '", type, "' is not supported");
    }
  }
}

}  // namespace

bool GenerationParams::empty() const {
  return request.chat ? request.messages.empty() : request.prompt.empty() && request.suffix.empty();
}

int64_t parse_duration_ns(const std::string& text) {
  check(!text.empty(), "api", "empty duration");
  if (text[0] == '-') return kForever;
  size_t i = 0;
  double total = 0;
  bool any = false;
  while (i < text.size()) {
    size_t start = i;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.'))
      ++i;
    check(i > start, "api", "bad duration '", text, "'");
    double value = std::stod(text.substr(start, i - start));
    size_t ustart = i;
    while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
    std::string unit = text.substr(ustart, i - ustart);
    double scale = 0;
    if (unit.empty()) {
      check(!any && i == text.size(), "api", "bad duration '", text, "'");
      scale = 1e9;  // a bare number means seconds
    } else if (unit == "h") {
      scale = 3600e9;
    } else if (unit == "m") {
      scale = 60e9;
    } else if (unit == "s") {
      scale = 1e9;
    } else if (unit == "ms") {
      scale = 1e6;
    } else if (unit == "us" || unit == "µs") {
      scale = 1e3;
    } else if (unit == "ns") {
      scale = 1;
    } else {
      fail("api", "bad duration unit '", unit, "' in '", text, "'");
    }
    total += value * scale;
    any = true;
  }
  return static_cast<int64_t>(total);
}

GenerationParams parse_ollama_generate(const std::string& body) {
  json j = parse_body(body);
  GenerationParams p;
  common_ollama(j, p);
  p.request.chat = false;
  p.request.prompt = opt_string(j, "prompt");
  p.request.suffix = opt_string(j, "suffix");
  if (auto im = j.find("images"); im != j.end() && im->is_array() && !im->empty())
    fail("api", "images are not supported by this server");
  return p;
}

GenerationParams parse_ollama_chat(const std::string& body) {
  json j = parse_body(body);
  GenerationParams p;
  common_ollama(j, p);
  p.request.chat = true;
  p.request.messages = parse_messages(j);
  return p;
}

GenerationParams parse_openai_chat(const std::string& body) {
  json j = parse_body(body);
  GenerationParams p;
  p.model = required_model(j);
  p.request.chat = true;
  p.request.messages = parse_messages(j);
  check(!p.request.messages.empty(), "api", "'messages' must not be empty");
  openai_options(j, p);
  runner::GenerateRequest& r = p.request;
  if (auto it = j.find("tools"); it != j.end() && !it->is_null()) {
    check(it->is_array(), "api", "'tools' must be an array");
    r.tools_json = it->dump();
  }
  r.logprobs = opt_bool(j, "logprobs").value_or(false);
  if (auto it = j.find("top_logprobs"); it != j.end() && !it->is_null()) {
    check(it->is_number_integer() && *it >= 0 && *it <= 20, "api",
          "'top_logprobs' must be an integer from 0 to 20");
    r.top_logprobs = it->get<int>();
  }
  if (auto it = j.find("reasoning_effort"); it != j.end() && it->is_string())
    r.think = it->get<std::string>() != "none";
  return p;
}

GenerationParams parse_openai_completion(const std::string& body) {
  json j = parse_body(body);
  GenerationParams p;
  p.model = required_model(j);
  p.request.chat = false;
  auto it = j.find("prompt");
  check(it != j.end() && !it->is_null(), "api", "'prompt' is required");
  if (it->is_array()) {
    check(it->size() == 1 && (*it)[0].is_string(), "api",
          "'prompt' must be a string (arrays of one string are accepted)");
    p.request.prompt = (*it)[0].get<std::string>();
  } else {
    check(it->is_string(), "api", "'prompt' must be a string");
    p.request.prompt = it->get<std::string>();
  }
  check(!p.request.prompt.empty(), "api", "'prompt' must not be empty");
  p.request.suffix = opt_string(j, "suffix");
  openai_options(j, p);
  if (auto lp = j.find("logprobs"); lp != j.end() && !lp->is_null()) {
    check(lp->is_number_integer() && *lp >= 0 && *lp <= 5, "api",
          "'logprobs' must be an integer from 0 to 5");
    p.request.logprobs = true;
    p.request.top_logprobs = lp->get<int>();
  }
  return p;
}

}  // namespace runnel::server
