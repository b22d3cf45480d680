#include "cli/http_client.h"

#include <httplib.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "base/error.h"

namespace runnel::cli {

runner::GenerateResult remote_generate(const std::string& host, const std::string& model,
                                       const runner::GenerateRequest& req, std::string* text) {
  std::string url = host.find("://") == std::string::npos ? "http://" + host : host;
  httplib::Client client(url);
  client.set_read_timeout(3600, 0);
  nlohmann::json body;
  body["model"] = model;
  body["stream"] = true;
  if (!req.options_json.empty()) body["options"] = nlohmann::json::parse(req.options_json);
  if (!req.format.empty()) body["format"] = req.format;
  if (!req.system.empty()) body["system"] = req.system;
  if (req.chat) {
    nlohmann::json msgs = nlohmann::json::array();
    for (const auto& m : req.messages) msgs.push_back({{"role", m.role}, {"content", m.content}});
    body["messages"] = msgs;
  } else {
    body["prompt"] = req.prompt;
    body["raw"] = req.raw;
  }
  runner::GenerateResult result;
  std::string buffer, error, all;
  auto on_line = [&](const std::string& line) {
    if (line.empty()) return;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded()) return;
    if (j.contains("error")) {
      error = j["error"].is_string() ? j["error"].get<std::string>() : j["error"].dump();
      return;
    }
    std::string piece = req.chat ? j.value("/message/content"_json_pointer, std::string())
                                 : j.value("response", std::string());
    all += piece;
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
    if (j.value("done", false)) {
      result.done_reason = j.value("done_reason", std::string("stop"));
      result.prompt_eval_count = j.value("prompt_eval_count", int64_t{0});
      result.prompt_eval_duration = j.value("prompt_eval_duration", int64_t{0});
      result.eval_count = j.value("eval_count", int64_t{0});
      result.eval_duration = j.value("eval_duration", int64_t{0});
      result.load_duration = j.value("load_duration", int64_t{0});
      result.total_duration = j.value("total_duration", int64_t{0});
      result.cached_tokens = j.value("cached_tokens", int64_t{0});
    }
  };
  int status = 0;
  httplib::Request hreq;
  hreq.method = "POST";
  hreq.path = req.chat ? "/api/chat" : "/api/generate";
  hreq.body = body.dump();
  hreq.set_header("Content-Type", "application/json");
  hreq.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    buffer.append(data, n);
    size_t nl;
    while ((nl = buffer.find('\n')) != std::string::npos) {
      on_line(buffer.substr(0, nl));
      buffer.erase(0, nl + 1);
    }
    return true;
  };
  auto res = client.send(hreq);
  if (!res) fail("run", "cannot reach the server at ", url, ": ", httplib::to_string(res.error()));
  status = res->status;
  on_line(buffer);
  if (status >= 400 && error.empty()) {
    nlohmann::json j = nlohmann::json::parse(res->body, nullptr, false);
    error = "HTTP " + std::to_string(status);
  }
  if (!error.empty()) fail("run", error);
  if (text) *text = all;
  return result;
}

}  // namespace runnel::cli
