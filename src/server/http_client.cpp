// CLI-side HTTP calls (see http_client.h).
#include "server/http_client.h"

#include <httplib.h>

#include "base/strings.h"
#include "server/server.h"

namespace runnel::server {

std::string default_server_url() {
  ServerOptions o = ServerOptions::from_env();
  std::string host = o.host == "0.0.0.0" ? "127.0.0.1" : o.host;
  return str_cat("http://", host, ":", o.port);
}

namespace {
std::optional<HttpResult> wrap(const httplib::Result& r) {
  if (!r) return std::nullopt;
  return HttpResult{r->status, r->body};
}
}  // namespace

std::optional<HttpResult> http_get(const std::string& url, const std::string& path) {
  httplib::Client cli(url);
  cli.set_connection_timeout(2, 0);
  return wrap(cli.Get(path));
}

std::optional<HttpResult> http_post(const std::string& url, const std::string& path,
                                    const std::string& json_body) {
  httplib::Client cli(url);
  cli.set_connection_timeout(2, 0);
  cli.set_read_timeout(600, 0);
  return wrap(cli.Post(path, json_body, "application/json"));
}

}  // namespace runnel::server
