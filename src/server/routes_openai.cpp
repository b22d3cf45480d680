// OpenAI-compatible routes: /v1/chat/completions, /v1/completions (SSE when "stream": true,
// ending with "data: [DONE]") and /v1/models. Errors use OpenAI's shape
// {"error": {"message", "type", "param", "code"}}; usage carries
// prompt_tokens_details.cached_tokens.
#include <httplib.h>

#include <atomic>
#include <ctime>
#include <nlohmann/json.hpp>

#include "server/routes_common.h"

namespace runnel::server {
using nlohmann::json;

namespace {

std::atomic<uint64_t> g_next_id{1};

std::string new_id(const char* prefix) {
  return str_cat(prefix, std::hex, static_cast<uint64_t>(time(nullptr)), g_next_id++);
}

json usage_json(const runner::GenerateResult& r) {
  return json{{"prompt_tokens", r.prompt_eval_count},
              {"completion_tokens", r.eval_count},
              {"total_tokens", r.prompt_eval_count + r.eval_count},
              {"prompt_tokens_details", {{"cached_tokens", r.cached_tokens}}}};
}

std::string finish_reason(const runner::GenerateResult& r, bool tool_calls) {
  if (tool_calls) return "tool_calls";
  return r.done_reason == "length" ? "length" : "stop";
}

json error_object(const std::string& message, int status) {
  return json{{"error",
               {{"message", message},
                {"type", status < 500 ? "invalid_request_error" : "server_error"},
                {"param", nullptr},
                {"code", status == 404 ? json("model_not_found") : json(nullptr)}}}};
}

// OpenAI error shape instead of Ollama's.
Handler openai_guarded(ServerContext& ctx, Handler handler) {
  return guarded(ctx, [handler](const httplib::Request& req, httplib::Response& res) {
    try {
      handler(req, res);
    } catch (const std::exception& e) {
      int status = status_for(e);
      std::string message = e.what();
      if (auto* err = dynamic_cast<const Error*>(&e); err && status != 500)
        message = err->message();
      res.status = status;
      res.set_content(dump(error_object(message, status)), "application/json");
    }
  });
}

// Tool calls in OpenAI's shape: arguments as a JSON string, an id and "type": "function".
json openai_tool_calls(const std::string& tool_calls_json) {
  json out = json::array();
  if (tool_calls_json.empty()) return out;
  int index = 0;
  for (const json& t : json::parse(tool_calls_json)) {
    json fn = t.value("function", json::object());
    json args = fn.value("arguments", json::object());
    out.push_back({{"index", index++},
                   {"id", t.value("id", new_id("call_"))},
                   {"type", "function"},
                   {"function",
                    {{"name", fn.value("name", "")},
                     {"arguments", args.is_string() ? args.get<std::string>() : args.dump()}}}});
  }
  return out;
}

class SseFormatter : public Formatter {
 public:
  SseFormatter(std::string model, bool chat, bool include_usage)
      : model_(std::move(model)),
        chat_(chat),
        include_usage_(include_usage),
        id_(new_id(chat ? "chatcmpl-" : "cmpl-")),
        created_(time(nullptr)) {}

  std::string chunk(const runner::Chunk& c) override {
    json choice = {{"index", 0}, {"finish_reason", nullptr}, {"logprobs", nullptr}};
    if (chat_) {
      json delta = json::object();
      if (first_) delta["role"] = "assistant";
      delta["content"] = c.text;
      if (!c.thinking.empty()) delta["reasoning"] = c.thinking;
      if (!c.tool_calls_json.empty() && c.tool_calls_json != "[]") {
        delta["tool_calls"] = openai_tool_calls(c.tool_calls_json);
        saw_tool_calls_ = true;
      }
      choice["delta"] = std::move(delta);
      if (!c.logprobs_json.empty())
        choice["logprobs"] = {{"content", json::parse(c.logprobs_json)}};
    } else {
      choice["text"] = c.text;
    }
    first_ = false;
    return event(head(json::array({choice})));
  }
  std::string done(const runner::GenerateResult& r) override {
    json choice = {
        {"index", 0}, {"finish_reason", finish_reason(r, saw_tool_calls_)}, {"logprobs", nullptr}};
    if (chat_) {
      choice["delta"] = json::object();
    } else {
      choice["text"] = "";
    }
    std::string out = event(head(json::array({choice})));
    if (include_usage_) {
      json u = head(json::array());
      u["usage"] = usage_json(r);
      out += event(u);
    }
    return out + "data: [DONE]\n\n";
  }
  std::string error(const std::string& message) override {
    return event(error_object(message, 500));
  }

 private:
  json head(json choices) const {
    return json{{"id", id_},
                {"object", chat_ ? "chat.completion.chunk" : "text_completion"},
                {"created", created_},
                {"model", model_},
                {"system_fingerprint", "fp_runnel"},
                {"choices", std::move(choices)}};
  }
  static std::string event(const json& j) { return "data: " + dump(j) + "\n\n"; }

  std::string model_;
  bool chat_, include_usage_;
  std::string id_;
  int64_t created_;
  bool first_ = true;
  bool saw_tool_calls_ = false;
};

void completion_route(ServerContext& ctx, const httplib::Request& req, httplib::Response& res,
                      bool chat) {
  GenerationParams p = chat ? parse_openai_chat(req.body) : parse_openai_completion(req.body);
  auto gen = start_generation(ctx, p, req);
  if (p.stream) {
    stream_response(ctx, res, gen, std::make_shared<SseFormatter>(p.model, chat, p.include_usage),
                    "text/event-stream");
    return;
  }
  Collected c = collect(ctx, *gen);
  if (c.error) throw HttpError(500, *c.error);
  json choice = {{"index", 0}, {"logprobs", nullptr}};
  json tool_calls = openai_tool_calls(c.tool_calls_json);
  choice["finish_reason"] = finish_reason(c.result, !tool_calls.empty());
  if (chat) {
    json message = {{"role", "assistant"}, {"content", c.text}};
    if (!c.thinking.empty()) message["reasoning"] = c.thinking;
    if (!tool_calls.empty()) message["tool_calls"] = tool_calls;
    choice["message"] = std::move(message);
    if (p.request.logprobs) choice["logprobs"] = {{"content", json::parse(c.logprobs_json)}};
  } else {
    choice["text"] = c.text;
  }
  json j = {{"id", new_id(chat ? "chatcmpl-" : "cmpl-")},
            {"object", chat ? "chat.completion" : "text_completion"},
            {"created", static_cast<int64_t>(time(nullptr))},
            {"model", p.model},
            {"system_fingerprint", "fp_runnel"},
            {"choices", json::array({choice})},
            {"usage", usage_json(c.result)}};
  res.set_content(dump(j), "application/json");
}

void models_route(ServerContext& ctx, httplib::Response& res) {
  json data = json::array();
  for (const Manifest& m : ctx.store.list()) {
    data.push_back({{"id", m.name},
                    {"object", "model"},
                    {"created", m.modified_unix},
                    {"owned_by", "library"}});
  }
  res.set_content(dump(json{{"object", "list"}, {"data", data}}), "application/json");
}

}  // namespace

void register_openai_routes(httplib::Server& http, ServerContext& ctx) {
  http.Post("/v1/chat/completions",
            openai_guarded(ctx, [&ctx](const httplib::Request& q, httplib::Response& r) {
              completion_route(ctx, q, r, true);
            }));
  http.Post("/v1/completions",
            openai_guarded(ctx, [&ctx](const httplib::Request& q, httplib::Response& r) {
              completion_route(ctx, q, r, false);
            }));
  http.Get("/v1/models", openai_guarded(ctx, [&ctx](const httplib::Request&, httplib::Response& r) {
             models_route(ctx, r);
           }));
}

}  // namespace runnel::server
