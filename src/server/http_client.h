// A small HTTP client for the CLI (`runnel ps`, `show` through a running server), so that
// cpp-httplib stays inside the server layer.
#pragma once

#include <optional>
#include <string>

namespace runnel::server {

struct HttpResult {
  int status = 0;
  std::string body;
};

// host:port from RUNNEL_HOST (default 127.0.0.1:11434), as "http://host:port".
std::string default_server_url();
// nullopt when nothing answers at `url`.
std::optional<HttpResult> http_get(const std::string& url, const std::string& path);
std::optional<HttpResult> http_post(const std::string& url, const std::string& path,
                                    const std::string& json_body);

}  // namespace runnel::server
