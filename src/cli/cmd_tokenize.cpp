// `runnel tokenize MODEL [TEXT]` and `runnel detokenize MODEL [IDS]` (see shared/INTERFACES.md).
// MODEL is a path: a folder with tokenizer.json / tokenizer.model / a .gguf, or such a file.
// tokenize prints a JSON array of ids; TEXT absent: all of stdin, byte for byte. detokenize prints
// the text and a newline. --batch: one JSON value per stdin line in, one JSON value per line out.
#include <CLI/CLI.hpp>
#include <iostream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "base/error.h"
#include "cli/command.h"
#include "tokenizer/tokenizer.h"

namespace runnel::cli {
namespace {

using nlohmann::json;

struct TokenizeOptions {
  std::string model;
  std::string text;
  bool no_special = false;
  bool batch = false;
};

struct DetokenizeOptions {
  std::string model;
  std::string ids;
  bool skip_special = false;
  bool batch = false;
};

std::string read_stdin() {
  return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
}

std::string ids_json(const std::vector<int32_t>& ids) {
  std::string s = "[";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(ids[i]);
  }
  return s + "]";
}

std::string string_json(const std::string& s) {
  return json(s).dump(-1, ' ', false, json::error_handler_t::replace);
}

std::vector<int32_t> parse_ids(const std::string& text, size_t line) {
  json v;
  try {
    v = json::parse(text);
  } catch (const json::exception& e) {
    fail("detokenize", line ? str_cat("line ", line, ": ") : std::string(),
         "not a JSON array of ids: ", e.what());
  }
  if (!v.is_array())
    fail("detokenize", line ? str_cat("line ", line, ": ") : std::string(),
         "expected a JSON array of ids");
  std::vector<int32_t> ids;
  for (const json& x : v) {
    if (!x.is_number_integer() || x.get<int64_t>() < INT32_MIN || x.get<int64_t>() > INT32_MAX)
      fail("detokenize", line ? str_cat("line ", line, ": ") : std::string(), "id ", x.dump(),
           " is not an integer");
    ids.push_back(static_cast<int32_t>(x.get<int64_t>()));
  }
  return ids;
}

int run_tokenize(const TokenizeOptions& o, bool text_given) {
  auto tok = tokenizer::Tokenizer::load(o.model);
  if (o.batch) {
    std::string line;
    size_t n = 0;
    while (std::getline(std::cin, line)) {
      ++n;
      if (line.empty() || line == "\r") continue;
      json v;
      try {
        v = json::parse(line);
      } catch (const json::exception& e) {
        fail("tokenize", "line ", n, ": not a JSON string: ", e.what());
      }
      if (!v.is_string()) fail("tokenize", "line ", n, ": expected a JSON string");
      std::cout << ids_json(tok->encode(v.get<std::string>(), !o.no_special)) << '\n';
    }
    std::cout.flush();
    return 0;
  }
  std::string text = text_given ? o.text : read_stdin();
  std::cout << ids_json(tok->encode(text, !o.no_special)) << '\n';
  return 0;
}

int run_detokenize(const DetokenizeOptions& o, bool ids_given) {
  auto tok = tokenizer::Tokenizer::load(o.model);
  if (o.batch) {
    std::string line;
    size_t n = 0;
    while (std::getline(std::cin, line)) {
      ++n;
      if (line.empty() || line == "\r") continue;
      std::cout << string_json(tok->decode(parse_ids(line, n), o.skip_special)) << '\n';
    }
    std::cout.flush();
    return 0;
  }
  std::string text = ids_given ? o.ids : read_stdin();
  std::cout << tok->decode(parse_ids(text, 0), o.skip_special) << '\n';
  return 0;
}

std::function<int()> setup_tokenize(CLI::App& app) {
  auto o = std::make_shared<TokenizeOptions>();
  app.add_option("model", o->model, "tokenizer folder, tokenizer.json, tokenizer.model or .gguf")
      ->required();
  CLI::Option* text = app.add_option("text", o->text, "text to tokenize (default: all of stdin)");
  app.add_flag("--no-special", o->no_special,
               "add no BOS/EOS (special-token text is still recognised)");
  app.add_flag("--batch", o->batch,
               "stdin: one JSON string per line; stdout: one JSON array per line");
  return [o, text] { return run_tokenize(*o, text->count() > 0); };
}

std::function<int()> setup_detokenize(CLI::App& app) {
  auto o = std::make_shared<DetokenizeOptions>();
  app.add_option("model", o->model, "tokenizer folder, tokenizer.json, tokenizer.model or .gguf")
      ->required();
  CLI::Option* ids = app.add_option("ids", o->ids, "JSON array of ids (default: stdin)");
  app.add_flag("--skip-special", o->skip_special, "leave out special tokens");
  app.add_flag("--batch", o->batch,
               "stdin: one JSON array per line; stdout: one JSON string per line");
  return [o, ids] { return run_detokenize(*o, ids->count() > 0); };
}

}  // namespace

RUNNEL_COMMAND_ORDERED(tokenize, "Print the token ids of a text as a JSON array", setup_tokenize,
                       80);
RUNNEL_COMMAND_ORDERED(detokenize, "Print the text of a JSON array of token ids", setup_detokenize,
                       81);

}  // namespace runnel::cli
