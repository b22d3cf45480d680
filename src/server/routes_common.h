// Helpers shared by the route files: the exception-to-HTTP-error wrapper, JSON body parsing,
// Ollama's "details" object. Internal to server/.
#pragma once

#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "server/streaming.h"

namespace runnel::server {

using Handler = std::function<void(const httplib::Request&, httplib::Response&)>;

// Counts the request and turns exceptions into {"error": ...} with status_for(e).
Handler guarded(ServerContext& ctx, Handler handler);
// Parses a request body that must be a JSON object; Error("api", ...) otherwise.
nlohmann::json parse_json_body(const std::string& body);
// Compact JSON, invalid UTF-8 replaced.
std::string dump(const nlohmann::json& j);
// Ollama's "details": format, family, parameter_size ("7.6B"), quantization_level.
nlohmann::json details_json(const ResolvedModel& m, const std::string& family,
                            int64_t parameter_count, const std::string& quantization);

}  // namespace runnel::server
