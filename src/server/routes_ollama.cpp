// Ollama's generation and runtime routes: /api/generate, /api/chat (NDJSON streams by default),
// /api/show, /api/ps, /api/version, and runnel's /api/tokenize, /api/detokenize, /api/cache,
// /metrics. Field names as in Ollama's docs/api.md.
#include <httplib.h>

#include <nlohmann/json.hpp>

#include "base/time.h"
#include "server/routes_common.h"

namespace runnel::server {
using nlohmann::json;

namespace {

std::string dump_line(const json& j) { return dump(j) + "\n"; }

void put_stats(json& j, const runner::GenerateResult& r) {
  j["done_reason"] = r.done_reason;
  j["total_duration"] = r.total_duration;
  j["load_duration"] = r.load_duration;
  j["prompt_eval_count"] = r.prompt_eval_count;
  j["prompt_eval_duration"] = r.prompt_eval_duration;
  j["eval_count"] = r.eval_count;
  j["eval_duration"] = r.eval_duration;
  j["cached_tokens"] = r.cached_tokens;
}

class OllamaFormatter : public Formatter {
 public:
  OllamaFormatter(std::string model, bool chat) : model_(std::move(model)), chat_(chat) {}
  std::string chunk(const runner::Chunk& c) override {
    json j = head(false);
    fill(j, c.text, c.thinking, c.tool_calls_json);
    if (!c.logprobs_json.empty()) j["logprobs"] = json::parse(c.logprobs_json);
    return dump_line(j);
  }
  std::string done(const runner::GenerateResult& r) override {
    json j = head(true);
    fill(j, "", "", "");
    put_stats(j, r);
    return dump_line(j);
  }
  std::string error(const std::string& message) override {
    return dump_line(json{{"error", message}});
  }
  json head(bool done) const {
    return json{{"model", model_}, {"created_at", iso_time_now()}, {"done", done}};
  }
  void fill(json& j, const std::string& text, const std::string& thinking,
            const std::string& tool_calls) const {
    if (chat_) {
      json m = {{"role", "assistant"}, {"content", text}};
      if (!thinking.empty()) m["thinking"] = thinking;
      if (!tool_calls.empty() && tool_calls != "[]") m["tool_calls"] = json::parse(tool_calls);
      j["message"] = std::move(m);
    } else {
      j["response"] = text;
      if (!thinking.empty()) j["thinking"] = thinking;
    }
  }

 private:
  std::string model_;
  bool chat_;
};

void generate_route(ServerContext& ctx, const httplib::Request& req, httplib::Response& res,
                    bool chat) {
  GenerationParams p = chat ? parse_ollama_chat(req.body) : parse_ollama_generate(req.body);
  auto formatter = std::make_shared<OllamaFormatter>(p.model, chat);
  if (p.empty()) {
    // Ollama: an empty prompt (or no messages) loads the model, keep_alive 0 unloads it.
    int64_t t0 = now_ns();
    int64_t load = load_only(ctx, p);
    json j = formatter->head(true);
    formatter->fill(j, "", "", "");
    j["done_reason"] = p.keep_alive_ns && *p.keep_alive_ns == 0 ? "unload" : "load";
    j["load_duration"] = load;
    j["total_duration"] = now_ns() - t0;
    res.set_content(j.dump(), "application/json");
    return;
  }
  auto gen = start_generation(ctx, p, req);
  if (p.stream) {
    stream_response(ctx, res, gen, formatter, "application/x-ndjson");
    return;
  }
  Collected c = collect(ctx, *gen);
  if (c.error) throw HttpError(500, *c.error);
  json j = formatter->head(true);
  formatter->fill(j, c.text, c.thinking, c.tool_calls_json);
  put_stats(j, c.result);
  if (p.request.logprobs) j["logprobs"] = json::parse(c.logprobs_json);
  res.set_content(dump(j), "application/json");
}

std::string socket_for(ServerContext& ctx, const std::string& model_ref,
                       std::shared_ptr<Lease>& lease) {
  ResolvedModel m = ctx.store.resolve(model_ref);
  lease = ctx.scheduler.acquire(m, kDefaultKeepAliveNs);
  return lease->socket_path();
}

void show_route(ServerContext& ctx, const httplib::Request& req, httplib::Response& res) {
  json body = parse_json_body(req.body);
  std::string name = body.value("model", body.value("name", ""));
  check(!name.empty(), "api", "'model' is required");
  ResolvedModel m = ctx.store.resolve(name);
  std::shared_ptr<Lease> lease;
  std::string socket = socket_for(ctx, name, lease);
  runner::ModelInfo info =
      runner::decode_info(runner_call(socket, runner::encode_simple_op("info")));
  json model_info =
      info.model_info_json.empty() ? json::object() : json::parse(info.model_info_json);
  model_info["general.architecture"] = info.architecture;
  model_info["general.parameter_count"] = info.parameter_count;
  model_info[info.architecture + ".context_length"] = info.context_length;
  json j = {
      {"modelfile", str_cat("FROM ", m.path, "\n")},
      {"parameters", ""},
      {"template", info.chat_template},
      {"details", details_json(m, info.family.empty() ? info.architecture : info.family,
                               info.parameter_count, info.quantization)},
      {"model_info", model_info},
      {"capabilities", json::array({"completion"})},
      {"modified_at", iso_time(m.modified_unix)},
  };
  res.set_content(dump(j), "application/json");
}

void ps_route(ServerContext& ctx, httplib::Response& res) {
  json models = json::array();
  for (const LoadedModel& l : ctx.scheduler.loaded()) {
    models.push_back({{"name", l.model.name},
                      {"model", l.model.name},
                      {"size", l.size_bytes},
                      {"digest", l.model.digest.empty() ? "" : l.model.digest.substr(7)},
                      {"details", details_json(l.model, "", 0, "")},
                      {"expires_at", l.expires_unix ? iso_time(l.expires_unix)
                                                    : std::string("0001-01-01T00:00:00Z")},
                      {"size_vram", 0}});
    // runnel's addition: the prefix cache's memory (hot tier bytes and blocks) of this model.
    try {
      json cache = json::parse(runner::decode_cache(
          runner_call(l.socket_path, runner::encode_simple_op("cache"), 2000)));
      if (cache.contains("hot")) {
        models.back()["cache_bytes"] = cache["hot"].value("bytes", 0);
        models.back()["cache_blocks"] = cache["hot"].value("blocks", 0);
      }
    } catch (const std::exception&) {
      // A runner busy starting or gone: the listing still works without cache figures.
    }
  }
  res.set_content(dump(json{{"models", models}}), "application/json");
}

void tokenize_route(ServerContext& ctx, const httplib::Request& req, httplib::Response& res) {
  json body = parse_json_body(req.body);
  std::string model = body.value("model", "");
  check(!model.empty(), "api", "'model' is required");
  std::string text;
  for (const char* key : {"content", "text", "prompt"})
    if (body.contains(key) && body[key].is_string()) text = body[key].get<std::string>();
  bool add_special = body.value("add_special", true);
  std::shared_ptr<Lease> lease;
  std::string socket = socket_for(ctx, model, lease);
  auto ids = runner::decode_tokens(runner_call(socket, runner::encode_tokenize(text, add_special)));
  res.set_content(json{{"model", model}, {"tokens", ids}}.dump(), "application/json");
}

void detokenize_route(ServerContext& ctx, const httplib::Request& req, httplib::Response& res) {
  json body = parse_json_body(req.body);
  std::string model = body.value("model", "");
  check(!model.empty(), "api", "'model' is required");
  check(body.contains("tokens") && body["tokens"].is_array(), "api", "'tokens' must be an array");
  std::vector<int32_t> ids;
  for (const json& t : body["tokens"]) {
    check(t.is_number_integer(), "api", "'tokens' must hold integers");
    ids.push_back(t.get<int32_t>());
  }
  std::shared_ptr<Lease> lease;
  std::string socket = socket_for(ctx, model, lease);
  std::string text = runner::decode_text(
      runner_call(socket, runner::encode_detokenize(ids, body.value("skip_special", false))));
  res.set_content(dump(json{{"model", model}, {"content", text}}), "application/json");
}

void cache_route(ServerContext& ctx, httplib::Response& res) {
  json models = json::array();
  for (const LoadedModel& l : ctx.scheduler.loaded()) {
    json entry = {{"model", l.model.name}};
    try {
      entry["cache"] = json::parse(runner::decode_cache(
          runner_call(l.socket_path, runner::encode_simple_op("cache"), 2000)));
    } catch (const Error& e) {
      entry["error"] = e.what();
    }
    models.push_back(std::move(entry));
  }
  res.set_content(dump(json{{"models", models}}), "application/json");
}

std::string label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '"' || c == '\\') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

void metrics_route(ServerContext& ctx, httplib::Response& res) {
  const Metrics& m = ctx.metrics;
  std::string out;
  auto counter = [&](const char* name, const char* help, const char* type, int64_t v) {
    out +=
        str_cat("# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n", name, " ", v, "\n");
  };
  counter("runnel_http_requests_total", "HTTP requests received.", "counter",
          m.http_requests.load());
  counter("runnel_generations_total", "Generations started.", "counter", m.generations.load());
  counter("runnel_generations_active", "Streams being sent now.", "gauge",
          m.generations_active.load());
  counter("runnel_client_disconnects_total", "Streams cancelled because the client left.",
          "counter", m.client_disconnects.load());
  counter("runnel_generation_errors_total", "Generations that ended with an error.", "counter",
          m.generation_errors.load());
  counter("runnel_prompt_tokens_total", "Prompt tokens evaluated (cached or not).", "counter",
          m.prompt_tokens.load());
  counter("runnel_cached_tokens_total", "Prompt tokens served from the prefix cache.", "counter",
          m.cached_tokens.load());
  counter("runnel_generated_tokens_total", "Output chunks streamed.", "counter",
          m.generated_tokens.load());
  counter("runnel_runner_starts_total", "Runner processes started.", "counter",
          ctx.scheduler.n_starts.load());
  counter("runnel_runner_crashes_total",
          "Runner processes that exited unexpectedly or stopped answering.", "counter",
          ctx.scheduler.n_crashes.load());
  auto loaded = ctx.scheduler.loaded();
  counter("runnel_models_loaded", "Models loaded now.", "gauge",
          static_cast<int64_t>(loaded.size()));
  out +=
      "# HELP runnel_runner_pid Process id of each loaded model's runner.\n"
      "# TYPE runnel_runner_pid gauge\n";
  std::string per_runner;
  for (const LoadedModel& l : loaded) {
    std::string lbl = str_cat("{model=\"", label(l.model.name), "\"}");
    out += str_cat("runnel_runner_pid", lbl, " ", l.pid, "\n");
    try {
      runner::RunnerStats s =
          runner::decode_stats(runner_call(l.socket_path, runner::encode_simple_op("stats"), 2000));
      per_runner += str_cat("runnel_runner_requests_total", lbl, " ", s.requests_total, "\n",
                            "runnel_runner_cancelled_total", lbl, " ", s.cancelled_total, "\n",
                            "runnel_runner_active", lbl, " ", s.active, "\n");
    } catch (const Error&) {
      // A runner that is exiting has no stats to give.
    }
  }
  out +=
      "# HELP runnel_runner_cancelled_total Requests the runner saw cancelled.\n"
      "# TYPE runnel_runner_cancelled_total counter\n";
  out += per_runner;
  res.set_content(out, "text/plain; version=0.0.4");
}

}  // namespace

void register_ollama_routes(httplib::Server& http, ServerContext& ctx) {
  http.Post("/api/generate", guarded(ctx, [&ctx](const httplib::Request& q, httplib::Response& r) {
              generate_route(ctx, q, r, false);
            }));
  http.Post("/api/chat", guarded(ctx, [&ctx](const httplib::Request& q, httplib::Response& r) {
              generate_route(ctx, q, r, true);
            }));
  http.Post("/api/show", guarded(ctx, [&ctx](const httplib::Request& q, httplib::Response& r) {
              show_route(ctx, q, r);
            }));
  http.Get("/api/ps", guarded(ctx, [&ctx](const httplib::Request&, httplib::Response& r) {
             ps_route(ctx, r);
           }));
  http.Get("/api/version", guarded(ctx, [](const httplib::Request&, httplib::Response& r) {
             r.set_content(json{{"version", RUNNEL_SERVER_VERSION}}.dump(), "application/json");
           }));
  http.Post("/api/tokenize", guarded(ctx, [&ctx](const httplib::Request& q, httplib::Response& r) {
              tokenize_route(ctx, q, r);
            }));
  http.Post("/api/detokenize",
            guarded(ctx, [&ctx](const httplib::Request& q, httplib::Response& r) {
              detokenize_route(ctx, q, r);
            }));
  http.Get("/api/cache", guarded(ctx, [&ctx](const httplib::Request&, httplib::Response& r) {
             cache_route(ctx, r);
           }));
  http.Get("/metrics", guarded(ctx, [&ctx](const httplib::Request&, httplib::Response& r) {
             metrics_route(ctx, r);
           }));
}

}  // namespace runnel::server
