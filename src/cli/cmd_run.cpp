// `runnel run [MODEL] [PROMPT]`: one-shot generation when PROMPT is given, an interactive chat
// otherwise. In-process by default; `--host URL` talks to a running `runnel serve` instead.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "cli/cache_flags.h"
#include "cli/command.h"
#include "cli/default_model.h"
#include "cli/http_client.h"
#include "runner/engine_api.h"
#include "server/store.h"

namespace runnel::cli {
namespace {

struct RunFlags {
  std::vector<std::string> args;  // [MODEL] [PROMPT]
  bool raw = false;
  std::string system;
  std::optional<double> temperature, top_p, min_p, repeat_penalty;
  std::optional<int64_t> top_k, seed, num_predict, num_ctx;
  std::string format;
  bool verbose = false;
  std::string host;
  std::shared_ptr<CacheFlagValues> cache;
};

nlohmann::json options_of(const RunFlags& f) {
  nlohmann::json o = nlohmann::json::object();
  if (f.temperature) o["temperature"] = *f.temperature;
  if (f.top_p) o["top_p"] = *f.top_p;
  if (f.min_p) o["min_p"] = *f.min_p;
  if (f.repeat_penalty) o["repeat_penalty"] = *f.repeat_penalty;
  if (f.top_k) o["top_k"] = *f.top_k;
  if (f.seed) o["seed"] = *f.seed;
  if (f.num_predict) o["num_predict"] = *f.num_predict;
  if (f.num_ctx) o["num_ctx"] = *f.num_ctx;
  return o;
}

// Prints each chunk as it arrives.
class PrintSink : public runner::ChunkSink {
 public:
  void accept() override {}
  void chunk(const runner::Chunk& c) override {
    text += c.text;
    std::fwrite(c.text.data(), 1, c.text.size(), stdout);
    std::fflush(stdout);
  }
  bool cancelled() const override { return false; }
  std::string text;
};

void print_stats(const runner::GenerateResult& r) {
  auto rate = [](int64_t n, int64_t ns) {
    return ns > 0 ? n * 1e9 / static_cast<double>(ns) : 0.0;
  };
  std::fprintf(stderr,
               "\ntotal duration:       %.3fs\nload duration:        %.3fs\n"
               "prompt eval count:    %lld token(s)\nprompt eval duration: %.3fs\n"
               "prompt eval rate:     %.2f tokens/s\neval count:           %lld token(s)\n"
               "eval duration:        %.3fs\neval rate:            %.2f tokens/s\n"
               "cached tokens:        %lld\ndone reason:          %s\n",
               r.total_duration / 1e9, r.load_duration / 1e9,
               static_cast<long long>(r.prompt_eval_count), r.prompt_eval_duration / 1e9,
               rate(r.prompt_eval_count, r.prompt_eval_duration),
               static_cast<long long>(r.eval_count), r.eval_duration / 1e9,
               rate(r.eval_count, r.eval_duration), static_cast<long long>(r.cached_tokens),
               r.done_reason.c_str());
}

// MODEL resolution: a store name, a .gguf file or a model folder.
std::optional<std::string> resolve_model(const std::string& ref) {
  try {
    server::ModelStore store(server::ModelStore::default_root());
    return store.resolve(ref).path;
  } catch (const Error&) {
    return std::nullopt;
  }
}

// A session with the model: in-process engine or a remote server.
class Session {
 public:
  Session(const RunFlags& f, std::string model) : flags_(f), model_(std::move(model)) {
    if (f.host.empty()) {
      runner::EngineConfig cfg;
      cfg.model_path = model_;
      engine_ = runner::make_engine(cfg);
    }
  }

  runner::GenerateResult generate(runner::GenerateRequest& req, std::string* text) {
    req.options_json = options_of(flags_).dump();
    req.format = flags_.format;
    req.raw = flags_.raw;
    if (!flags_.system.empty()) req.system = flags_.system;
    if (engine_) {
      PrintSink sink;
      runner::GenerateResult r = engine_->generate(req, sink);
      if (text) *text = sink.text;
      return r;
    }
    return remote_generate(flags_.host, model_, req, text);
  }

 private:
  const RunFlags& flags_;
  std::string model_;
  std::unique_ptr<runner::Engine> engine_;
};

int interactive(Session& session, const RunFlags& f) {
  std::vector<runner::ChatMessage> history;
  const bool tty = isatty(STDIN_FILENO);
  std::string line;
  while (true) {
    if (tty) std::fputs(">>> ", stdout), std::fflush(stdout);
    if (!std::getline(std::cin, line)) break;
    if (line == "/bye") break;
    if (line == "/clear") {
      history.clear();
      if (tty) std::puts("Cleared session context");
      continue;
    }
    if (line == "/?" || line == "/help") {
      std::puts(
          "/bye: exit   /clear: forget the conversation   \"\"\": start or end multi-line input");
      continue;
    }
    if (line.rfind("\"\"\"", 0) == 0) {
      std::string text = line.substr(3), more;
      while (text.find("\"\"\"") == std::string::npos && std::getline(std::cin, more))
        text += "\n" + more;
      if (size_t end = text.find("\"\"\""); end != std::string::npos) text.resize(end);
      line = text;
    }
    if (line.empty()) continue;
    history.push_back({"user", line, "", "", "", "", 0});
    runner::GenerateRequest req;
    req.chat = true;
    req.messages = history;
    std::string reply;
    runner::GenerateResult r = session.generate(req, &reply);
    std::puts("");
    if (f.verbose) print_stats(r);
    history.push_back({"assistant", reply, "", "", "", "", 0});
  }
  return 0;
}

std::function<int()> setup(CLI::App& app) {
  auto f = std::make_shared<RunFlags>();
  app.add_option("args", f->args,
                 "[MODEL] [PROMPT]: a store name, .gguf file or model folder, then the prompt")
      ->expected(0, 2);
  app.add_flag("--raw", f->raw, "Send the prompt as is, without the chat template");
  app.add_option("--system", f->system, "System prompt");
  app.add_option("--temperature", f->temperature, "Sampling temperature (0: greedy)");
  app.add_option("--top-k", f->top_k, "Top-k");
  app.add_option("--top-p", f->top_p, "Top-p");
  app.add_option("--min-p", f->min_p, "Min-p");
  app.add_option("--repeat-penalty", f->repeat_penalty, "Repetition penalty");
  app.add_option("--seed", f->seed, "Random seed");
  app.add_option("--num-predict", f->num_predict, "Tokens to generate at most");
  app.add_option("--num-ctx", f->num_ctx, "Context length");
  app.add_option("--format", f->format, "Output format: json")->check(CLI::IsMember({"json"}));
  app.add_flag("--verbose", f->verbose, "Print token counts and rates to stderr");
  app.add_option("--host", f->host, "Use the runnel server at URL (e.g. http://127.0.0.1:11434)");
  f->cache = add_cache_flags(app);
  return [f]() -> int {
    apply_cache_flags(*f->cache);
    std::string model, prompt;
    bool have_prompt = false;
    if (f->args.size() == 2) {
      model = f->args[0];
      prompt = f->args[1];
      have_prompt = true;
    } else if (f->args.size() == 1) {
      // One argument: a model if it names one, else a prompt for the default model.
      if (!f->host.empty() || resolve_model(f->args[0])) {
        model = f->args[0];
      } else {
        prompt = f->args[0];
        have_prompt = true;
      }
    }
    if (f->host.empty()) {
      if (model.empty()) {
        model = default_model_path();
      } else {
        auto path = resolve_model(model);
        check(path.has_value(), "run", "model '", model,
              "' not found (not in the store, not a .gguf file, not a model folder)");
        model = *path;
      }
    } else if (model.empty()) {
      model = "default";
    }
    Session session(*f, model);
    if (!have_prompt) return interactive(session, *f);
    runner::GenerateRequest req;
    req.prompt = prompt;
    runner::GenerateResult r = session.generate(req, nullptr);
    // A terminal gets a final newline; a pipe gets exactly the generated text.
    if (isatty(STDOUT_FILENO)) std::fputs("\n", stdout);
    if (f->verbose) print_stats(r);
    return 0;
  };
}

}  // namespace

RUNNEL_COMMAND_ORDERED(run, "Run a model: one prompt, or an interactive chat", setup, 10);

}  // namespace runnel::cli
