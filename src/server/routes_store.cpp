// Model store routes: GET /api/tags, POST /api/create, DELETE /api/delete, POST /api/copy.
// Names are validated by the store (400 for a bad name, 404 for an unknown one).
#include <httplib.h>

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "models/quantize.h"
#include "server/routes_common.h"

namespace runnel::server {
using nlohmann::json;

namespace {

std::string name_field(const json& body) {
  for (const char* key : {"model", "name"}) {
    if (auto it = body.find(key); it != body.end() && !it->is_null()) {
      check(it->is_string(), "api", "'", key, "' must be a string");
      return it->get<std::string>();
    }
  }
  fail("api", "'model' is required");
}

void tags_route(ServerContext& ctx, httplib::Response& res) {
  json models = json::array();
  for (const Manifest& m : ctx.store.list()) {
    ResolvedModel r;
    r.format = m.format;
    models.push_back({{"name", m.name},
                      {"model", m.name},
                      {"modified_at", iso_time(m.modified_unix)},
                      {"size", m.total_size()},
                      {"digest", m.digest.substr(7)},
                      {"details", details_json(r, "", 0, "")}});
  }
  res.set_content(dump(json{{"models", models}}), "application/json");
}

// The source of a create: "from" (a path or a store name), or the FROM line of a legacy modelfile.
std::string create_source(const json& body) {
  if (auto it = body.find("from"); it != body.end() && !it->is_null()) {
    check(it->is_string() && !it->get<std::string>().empty(), "api",
          "'from' must be a path or a model name");
    return it->get<std::string>();
  }
  if (auto it = body.find("modelfile"); it != body.end() && it->is_string()) {
    for (const std::string& line : split(it->get<std::string>(), '\n')) {
      if (line.size() > 5 && (starts_with(line, "FROM ") || starts_with(line, "from "))) {
        std::string from = line.substr(5);
        while (!from.empty() && (from.back() == '\r' || from.back() == ' ')) from.pop_back();
        return from;
      }
    }
    fail("api", "'modelfile' has no FROM line");
  }
  check(!body.contains("files"), "api",
        "'files' (uploaded blobs) is not supported; give 'from' with a local path");
  fail("api", "'from' is required (a .gguf file, a model folder, or a model name)");
}

void create_route(ServerContext& ctx, const httplib::Request& req, httplib::Response& res) {
  json body = parse_json_body(req.body);
  std::string name = normalize_model_name(name_field(body));
  std::string from = create_source(body);
  std::string quantize;
  if (auto q = body.find("quantize"); q != body.end() && !q->is_null()) {
    check(q->is_string(), "api", "'quantize' must be a string (q8_0, q4_k, int4, ...)");
    quantize = q->get<std::string>();
  }
  bool stream = body.value("stream", true);
  std::vector<std::string> statuses = {"parsing model"};
  if (!quantize.empty()) {
    // A path, else a stored model's file or folder.
    const std::string src = std::filesystem::exists(from) ? from : ctx.store.resolve(from).path;
    std::unique_ptr<models::QuantizedCopy> q;
    try {
      q = std::make_unique<models::QuantizedCopy>(src, quantize, ctx.store.root() + "/tmp");
    } catch (const Error& e) {
      // An unsupported type or a model that is not valid is the request's fault.
      const std::string& c = e.component();
      if (c != "quantize" && c != "gguf" && c != "safetensors" && c != "model") throw;
      throw HttpError(400, e.what());
    }
    statuses.push_back(str_cat("quantizing model to ", quantize));
    ctx.store.create(name, q->path());
    statuses.push_back("copying files into blobs");
    statuses.push_back("writing manifest");
  } else if (is_valid_model_name(from) && ctx.store.find(from)) {
    ctx.store.copy(from, name);
    statuses.push_back(str_cat("copying model ", from));
  } else {
    ctx.store.create(name, from);
    statuses.push_back("copying files into blobs");
    statuses.push_back("writing manifest");
  }
  statuses.push_back("success");
  if (!stream) {
    res.set_content(json{{"status", "success"}}.dump(), "application/json");
    return;
  }
  std::string out;
  for (const auto& s : statuses) out += json{{"status", s}}.dump() + "\n";
  res.set_content(out, "application/x-ndjson");
}

void delete_route(ServerContext& ctx, const httplib::Request& req, httplib::Response& res) {
  json body = parse_json_body(req.body);
  std::string name = name_field(body);
  std::optional<Manifest> m = ctx.store.find(name);
  if (!m) throw NotFoundError(str_cat("model '", name, "' not found"));
  ctx.store.remove(name);
  res.status = 200;
}

void copy_route(ServerContext& ctx, const httplib::Request& req, httplib::Response& res) {
  json body = parse_json_body(req.body);
  check(body.contains("source") && body["source"].is_string(), "api", "'source' is required");
  check(body.contains("destination") && body["destination"].is_string(), "api",
        "'destination' is required");
  ctx.store.copy(body["source"].get<std::string>(), body["destination"].get<std::string>());
  res.status = 200;
}

}  // namespace

void register_store_routes(httplib::Server& http, ServerContext& ctx) {
  http.Get("/api/tags", guarded(ctx, [&ctx](const httplib::Request&, httplib::Response& r) {
             tags_route(ctx, r);
           }));
  http.Post("/api/create", guarded(ctx, [&ctx](const httplib::Request& q, httplib::Response& r) {
              create_route(ctx, q, r);
            }));
  http.Delete("/api/delete", guarded(ctx, [&ctx](const httplib::Request& q, httplib::Response& r) {
                delete_route(ctx, q, r);
              }));
  http.Post("/api/copy", guarded(ctx, [&ctx](const httplib::Request& q, httplib::Response& r) {
              copy_route(ctx, q, r);
            }));
}

}  // namespace runnel::server
