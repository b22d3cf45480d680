// Shared route helpers (see routes_common.h).
#include "server/routes_common.h"

#include <httplib.h>

#include <nlohmann/json.hpp>

#include "base/log.h"

namespace runnel::server {
using nlohmann::json;

Handler guarded(ServerContext& ctx, Handler handler) {
  return [&ctx, handler = std::move(handler)](const httplib::Request& req, httplib::Response& res) {
    ++ctx.metrics.http_requests;
    try {
      handler(req, res);
    } catch (const std::exception& e) {
      int status = status_for(e);
      std::string message = e.what();
      if (auto* err = dynamic_cast<const Error*>(&e); err && status != 500)
        message = err->message();
      if (status >= 500) RUNNEL_WARN("server", req.method, " ", req.path, ": ", e.what());
      error_response(res, status, message);
    }
  };
}

json parse_json_body(const std::string& body) {
  json j;
  try {
    j = json::parse(body);
  } catch (const json::exception& e) {
    fail("api", "invalid JSON in request body: ", e.what());
  }
  check(j.is_object(), "api", "request body must be a JSON object");
  return j;
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

json details_json(const ResolvedModel& m, const std::string& family, int64_t parameter_count,
                  const std::string& quantization) {
  std::string size;
  if (parameter_count >= 1000000000) {
    char buf[32];
    snprintf(buf, sizeof(buf), "%.1fB", static_cast<double>(parameter_count) / 1e9);
    size = buf;
  } else if (parameter_count > 0) {
    size = str_cat(parameter_count / 1000000, ".", (parameter_count / 100000) % 10, "M");
  }
  json families = family.empty() ? json(nullptr) : json::array({family});
  return json{{"parent_model", ""},     {"format", m.format},
              {"family", family},       {"families", families},
              {"parameter_size", size}, {"quantization_level", quantization}};
}

}  // namespace runnel::server
