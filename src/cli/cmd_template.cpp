// `runnel template MODEL [MESSAGES]`: renders a chat as the model's chat template does (see
// shared/INTERFACES.md). MODEL: a folder with tokenizer_config.json (or chat_template.jinja), a
// tokenizer_config.json file, or a .gguf file (tokenizer.chat_template metadata). MESSAGES: a JSON
// object {"messages": [...], "tools": [...], "add_generation_prompt": true, ...}, else stdin.
// Prints the prompt exactly (no newline added); a template's raise_exception(msg) prints
// "runnel: msg" on stderr and exits 1.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "base/error.h"
#include "cli/command.h"
#include "formats/gguf.h"
#include "template/chat.h"

namespace runnel::cli {
namespace {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

struct TemplateOptions {
  std::string model;
  std::string messages;
  std::string template_file;
};

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  check(bool(in), "template", "cannot read ", path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

ojson parse_json(const std::string& text, const std::string& what) {
  try {
    return ojson::parse(text);
  } catch (const ojson::exception& e) {
    fail("template", what, " is not valid JSON: ", e.what());
  }
}

// Source and special tokens of a GGUF file's chat template.
std::pair<std::string, ojson> from_gguf(const std::string& path) {
  auto gguf = formats::GgufFile::open(path);
  std::optional<std::string> source = gguf->get_string("tokenizer.chat_template");
  ojson special = ojson::object();
  if (auto tokens = gguf->get_strings("tokenizer.ggml.tokens")) {
    for (const char* kind : {"bos", "eos", "unk", "pad"}) {
      auto id = gguf->get_int(str_cat("tokenizer.ggml.", kind, "_token_id"));
      if (id && *id >= 0 && size_t(*id) < tokens->size()) {
        special[str_cat(kind, "_token")] = (*tokens)[size_t(*id)];
      }
    }
  }
  return {source.value_or(""), special};
}

tmpl::ChatTemplate load_chat_template(const TemplateOptions& o) {
  std::string source;
  ojson special = ojson::object();
  fs::path model(o.model);
  check(fs::exists(model), "template", "no such model path: ", o.model);
  std::string config_path;
  if (fs::is_directory(model)) {
    if (fs::exists(model / "tokenizer_config.json")) {
      config_path = (model / "tokenizer_config.json").string();
    }
    if (fs::exists(model / "chat_template.jinja")) {
      source = read_text((model / "chat_template.jinja").string());
    }
    if (config_path.empty() && source.empty()) {
      for (const auto& entry : fs::directory_iterator(model)) {
        if (entry.path().extension() == ".gguf") {
          std::tie(source, special) = from_gguf(entry.path().string());
          break;
        }
      }
    }
  } else if (model.extension() == ".gguf") {
    std::tie(source, special) = from_gguf(o.model);
  } else {
    config_path = o.model;
  }
  if (!config_path.empty()) {
    ojson config = parse_json(read_text(config_path), config_path);
    bool has_template = config.is_object() && config.contains("chat_template") &&
                        !config["chat_template"].is_null();
    if (has_template && source.empty() && o.template_file.empty()) {
      return tmpl::chat_template_from_config(config);
    }
    // Only the special tokens are wanted: give the config a placeholder template.
    config["chat_template"] = "";
    special = *tmpl::chat_template_from_config(config).special_tokens;
  }
  if (!o.template_file.empty()) source = read_text(o.template_file);
  check(!source.empty(), "template", o.model, " has no chat template (use --template FILE)");
  return tmpl::make_chat_template(source, special);
}

int run_template(const TemplateOptions& o, bool messages_given) {
  std::string text = messages_given ? o.messages
                                    : std::string(std::istreambuf_iterator<char>(std::cin),
                                                  std::istreambuf_iterator<char>());
  ojson request = parse_json(text, "MESSAGES");
  check(request.is_object(), "template", "MESSAGES must be a JSON object {\"messages\": [...]}");
  tmpl::ChatTemplate chat = load_chat_template(o);
  std::string prompt;
  try {
    prompt = tmpl::render_chat(chat, request);
  } catch (const tmpl::TemplateError& e) {
    if (!e.raised()) throw;
    std::fprintf(stderr, "runnel: %s\n", e.message().c_str());
    return 1;
  }
  std::fwrite(prompt.data(), 1, prompt.size(), stdout);
  std::fflush(stdout);
  return 0;
}

std::function<int()> setup(CLI::App& app) {
  auto o = std::make_shared<TemplateOptions>();
  app.add_option("model", o->model,
                 "Model folder (tokenizer_config.json), tokenizer_config.json or .gguf file")
      ->required();
  CLI::Option* messages = app.add_option(
      "messages", o->messages,
      "JSON object {\"messages\": [...], \"tools\": [...], \"add_generation_prompt\": true, ...}; "
      "stdin when absent");
  app.add_option("--template", o->template_file, "Render this Jinja2 file instead");
  return [o, messages] { return run_template(*o, messages->count() > 0); };
}

}  // namespace

RUNNEL_COMMAND(template, "Render a chat with the model's chat template", setup);

}  // namespace runnel::cli
