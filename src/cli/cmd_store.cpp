// Model store subcommands: `list`, `show`, `ps`, `rm`, `create`, `cp`. They use the store
// directly (no server needed), except `ps` (asks the running server) and `show` (asks the server
// when one runs, else starts the model's runner itself for the model facts).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "cli/command.h"
#include "models/quantize.h"
#include "runner/protocol.h"
#include "server/http_client.h"
#include "server/runner_client.h"
#include "server/scheduler.h"
#include "server/store.h"

namespace runnel::cli {
namespace {
using nlohmann::json;

server::ModelStore open_store() { return server::ModelStore(server::ModelStore::default_root()); }

std::string ago(int64_t unix_seconds) {
  int64_t d = static_cast<int64_t>(time(nullptr)) - unix_seconds;
  if (d < 60) return "Less than a minute ago";
  if (d < 3600) return str_cat(d / 60, d / 60 == 1 ? " minute ago" : " minutes ago");
  if (d < 86400) return str_cat(d / 3600, d / 3600 == 1 ? " hour ago" : " hours ago");
  return str_cat(d / 86400, d / 86400 == 1 ? " day ago" : " days ago");
}

std::string pad(const std::string& s, size_t width) {
  return s.size() >= width ? s + "    " : s + std::string(width - s.size(), ' ');
}

std::string short_count(int64_t n) {
  char buf[32];
  if (n >= 1000000000)
    snprintf(buf, sizeof(buf), "%.1fB", static_cast<double>(n) / 1e9);
  else if (n >= 1000000)
    snprintf(buf, sizeof(buf), "%.1fM", static_cast<double>(n) / 1e6);
  else if (n >= 1000)
    snprintf(buf, sizeof(buf), "%.1fK", static_cast<double>(n) / 1e3);
  else
    snprintf(buf, sizeof(buf), "%lld", static_cast<long long>(n));
  return buf;
}

int cmd_list() {
  auto models = open_store().list();
  std::cout << pad("NAME", 32) << pad("ID", 16) << pad("SIZE", 12) << "MODIFIED\n";
  for (const auto& m : models)
    std::cout << pad(m.name, 32) << pad(m.digest.substr(7, 12), 16)
              << pad(format_bytes(static_cast<double>(m.total_size())), 12) << ago(m.modified_unix)
              << "\n";
  return 0;
}

void print_show(const json& j) {
  const json& d = j.value("details", json::object());
  const json& mi = j.value("model_info", json::object());
  std::string arch = mi.value("general.architecture", "");
  std::cout << "  Model\n";
  std::cout << "    " << pad("architecture", 20) << arch << "\n";
  std::cout << "    " << pad("parameters", 20)
            << short_count(mi.value("general.parameter_count", int64_t{0})) << "\n";
  std::cout << "    " << pad("context length", 20) << mi.value(arch + ".context_length", int64_t{0})
            << "\n";
  std::cout << "    " << pad("quantization", 20) << d.value("quantization_level", "") << "\n";
  std::cout << "    " << pad("format", 20) << d.value("format", "") << "\n";
  std::string tmpl = j.value("template", "");
  if (!tmpl.empty()) {
    std::cout << "\n  Template\n";
    for (const auto& line : split(tmpl, '\n')) std::cout << "    " << line << "\n";
  }
}

int cmd_show(const std::string& model) {
  std::string url = server::default_server_url();
  if (auto r = server::http_post(url, "/api/show", json{{"model", model}}.dump())) {
    json j = json::parse(r->body, nullptr, false);
    if (r->status != 200) fail("show", j.is_object() ? j.value("error", r->body) : r->body);
    print_show(j);
    return 0;
  }
  // No server: start the model's runner here, ask it, and stop it.
  server::ModelStore store = open_store();
  server::ResolvedModel m = store.resolve(model);
  server::SchedulerOptions so;
  if (const char* bin = std::getenv("RUNNEL_RUNNER_BIN")) so.runner_bin = bin;
  if (so.runner_bin.empty()) {
    char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
    check(n > 0, "show", "cannot find the runnel executable");
    so.runner_bin.assign(buf, static_cast<size_t>(n));
  }
  server::Scheduler scheduler(so);
  auto lease = scheduler.acquire(m, 0);
  runner::ModelInfo info = runner::decode_info(
      server::runner_call(lease->socket_path(), runner::encode_simple_op("info")));
  json mi = info.model_info_json.empty() ? json::object() : json::parse(info.model_info_json);
  mi["general.architecture"] = info.architecture;
  mi["general.parameter_count"] = info.parameter_count;
  mi[info.architecture + ".context_length"] = info.context_length;
  print_show(json{{"model_info", mi},
                  {"template", info.chat_template},
                  {"details", {{"format", m.format}, {"quantization_level", info.quantization}}}});
  return 0;
}

int cmd_ps() {
  std::string url = server::default_server_url();
  auto r = server::http_get(url, "/api/ps");
  check(r.has_value(), "ps", "no server is running at ", url, " (start one with `runnel serve`)");
  json j = json::parse(r->body);
  std::cout << pad("NAME", 32) << pad("ID", 16) << pad("SIZE", 12) << pad("KV CACHE", 12)
            << "UNTIL\n";
  for (const json& m : j.value("models", json::array())) {
    std::string digest = m.value("digest", "");
    std::cout << pad(m.value("name", ""), 32) << pad(digest.substr(0, 12), 16)
              << pad(format_bytes(m.value("size", 0.0)), 12)
              << pad(format_bytes(m.value("cache_bytes", 0.0)), 12) << m.value("expires_at", "")
              << "\n";
  }
  return 0;
}

int cmd_rm(const std::vector<std::string>& names) {
  server::ModelStore store = open_store();
  for (const auto& n : names) {
    store.remove(n);
    std::cout << "deleted '" << n << "'\n";
  }
  return 0;
}

int cmd_create(const std::string& name, const std::string& from, const std::string& quantize) {
  server::ModelStore store = open_store();
  // --quantize: quantize into a temporary copy under the store root, then import that copy.
  std::unique_ptr<models::QuantizedCopy> quantized;
  if (!quantize.empty()) {
    std::fprintf(stderr, "quantizing %s to %s\n", from.c_str(), quantize.c_str());
    const std::string src = std::filesystem::exists(from) ? from : store.resolve(from).path;
    quantized = std::make_unique<models::QuantizedCopy>(src, quantize, store.root() + "/tmp");
  }
  bool tty = isatty(2);
  int last_pct = -1;
  auto progress = [&](int64_t done, int64_t total) {
    int pct = total > 0 ? static_cast<int>(done * 100 / total) : 100;
    if (pct == last_pct) return;
    last_pct = pct;
    if (!tty && pct != 100) return;
    int bar = pct / 4;
    std::fprintf(stderr, "\rcopying model %3d%% |%s%s| %s / %s%s", pct,
                 std::string(static_cast<size_t>(bar), '#').c_str(),
                 std::string(static_cast<size_t>(25 - bar), ' ').c_str(),
                 format_bytes(static_cast<double>(done)).c_str(),
                 format_bytes(static_cast<double>(total)).c_str(), pct == 100 ? "\n" : "");
  };
  server::Manifest m = store.create(name, quantized ? quantized->path() : from, progress);
  std::cout << "created " << m.name << " (" << m.format << ", "
            << format_bytes(static_cast<double>(m.total_size())) << ")\n";
  return 0;
}

std::function<int()> setup_list(CLI::App& app) {
  return [] { return cmd_list(); };
}
std::function<int()> setup_show(CLI::App& app) {
  auto model = std::make_shared<std::string>();
  app.add_option("model", *model, "Model name or path")->required();
  return [model] { return cmd_show(*model); };
}
std::function<int()> setup_ps(CLI::App& app) {
  return [] { return cmd_ps(); };
}
std::function<int()> setup_rm(CLI::App& app) {
  auto names = std::make_shared<std::vector<std::string>>();
  app.add_option("name", *names, "Model names")->required();
  return [names] { return cmd_rm(*names); };
}
std::function<int()> setup_create(CLI::App& app) {
  struct Flags {
    std::string name, from, quantize;
  };
  auto f = std::make_shared<Flags>();
  app.add_option("name", f->name, "Name in the store (model[:tag])")->required();
  app.add_option("--from,-f", f->from, "A .gguf file or a safetensors folder")->required();
  app.add_option("--quantize,-q", f->quantize,
                 "Quantize to TYPE: " + models::supported_quantizations(true) + " (GGUF); " +
                     models::supported_quantizations(false) + " (safetensors folder, MLX format)");
  return [f] { return cmd_create(f->name, f->from, f->quantize); };
}
std::function<int()> setup_cp(CLI::App& app) {
  auto names = std::make_shared<std::pair<std::string, std::string>>();
  app.add_option("source", names->first, "Existing model")->required();
  app.add_option("destination", names->second, "New name")->required();
  return [names] {
    open_store().copy(names->first, names->second);
    std::cout << "copied '" << names->first << "' to '" << names->second << "'\n";
    return 0;
  };
}

}  // namespace

RUNNEL_COMMAND_ORDERED(create, "Import a GGUF file or a safetensors folder into the store",
                       setup_create, 30);
RUNNEL_COMMAND_ORDERED(list, "List models in the store", setup_list, 31);
RUNNEL_COMMAND_ORDERED(show, "Show a model's architecture, parameters and template", setup_show,
                       32);
RUNNEL_COMMAND_ORDERED(ps, "List models loaded by the running server", setup_ps, 33);
RUNNEL_COMMAND_ORDERED(cp, "Copy a model under a new name", setup_cp, 34);
RUNNEL_COMMAND_ORDERED(rm, "Remove models from the store", setup_rm, 35);

}  // namespace runnel::cli
