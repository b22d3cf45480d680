// A stand-in for `runnel runner` in the server's tests: the real socket side (runner_process.h)
// over a deterministic fake Engine. It echoes the prompt's words (the last user message for chats),
// one word per step with a short sleep, reports as cached the words shared with an earlier prompt,
// and honours options.num_predict and num_ctx. Triggers inside the prompt: "FAIL_EARLY" (an Error
// before accepting: 400), "FAIL_LATE" (an error after two words), "SLOW" (200 ms per word),
// "PREFILL" (a 2 s "prefill" after accepting, in 10 ms steps that check for cancellation).
// Usage: fake_runner runner --model PATH --socket PATH [ignored flags]; env FAKE_RUNNER_DELAY_MS.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "base/error.h"
#include "base/time.h"
#include "runner/engine_api.h"
#include "runner/runner_process.h"

namespace {
using namespace runnel;
using namespace runnel::runner;
using nlohmann::json;

std::vector<std::string> words_of(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> words;
  std::string w;
  while (in >> w) words.push_back(w);
  return words;
}

class FakeEngine : public Engine {
 public:
  explicit FakeEngine(std::string path) : path_(std::move(path)) {
    if (const char* d = std::getenv("FAKE_RUNNER_DELAY_MS")) delay_ms_ = std::atoi(d);
  }

  GenerateResult generate(const GenerateRequest& r, ChunkSink& sink) override {
    int64_t t0 = now_ns();
    json options = r.options_json.empty() ? json::object() : json::parse(r.options_json);
    check(options.is_object(), "runner", "options must be an object");
    for (const char* key : {"temperature", "top_p", "top_k", "num_predict", "num_ctx", "seed"}) {
      if (options.contains(key))
        check(options[key].is_number(), "runner", "option ", key, " must be a number");
    }
    std::string text = r.prompt;
    if (r.chat) {
      text.clear();
      for (const ChatMessage& m : r.messages)
        if (m.role == "user") text = m.content;
    }
    std::vector<std::string> words = words_of(text);
    check(!words.empty(), "runner", "empty prompt");
    int64_t n_ctx = options.value("num_ctx", 64);
    check(static_cast<int64_t>(words.size()) <= n_ctx, "runner", "prompt has ", words.size(),
          " tokens, more than the context of ", n_ctx);
    check(text.find("FAIL_EARLY") == std::string::npos, "runner", "FAIL_EARLY requested");
    int delay = text.find("SLOW") != std::string::npos ? 200 : delay_ms_;
    int64_t n_predict = options.value("num_predict", static_cast<int64_t>(words.size()));

    GenerateResult result;
    result.prompt_eval_count = static_cast<int64_t>(words.size());
    result.cached_tokens = cached_prefix(words);
    sink.accept();
    if (text.find("PREFILL") != std::string::npos) {
      for (int i = 0; i < 200; ++i) {
        if (sink.cancelled()) {
          result.done_reason = "cancel";
          return result;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
    result.prompt_eval_duration = now_ns() - t0;
    int64_t t1 = now_ns();
    for (int64_t i = 0; i < n_predict; ++i) {
      if (sink.cancelled()) {
        result.done_reason = "cancel";
        return result;
      }
      if (static_cast<int64_t>(words.size()) + i >= n_ctx) {
        result.done_reason = "length";
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(delay));
      if (i == 2 && text.find("FAIL_LATE") != std::string::npos)
        fail("runner", "FAIL_LATE requested");
      Chunk c;
      c.text = words[static_cast<size_t>(i) % words.size()] + (i + 1 < n_predict ? " " : "");
      if (r.logprobs) {
        json lp = json::array({{{"token", c.text}, {"logprob", -0.5}}});
        c.logprobs_json = lp.dump();
      }
      sink.chunk(c);
      ++result.eval_count;
      if (i + 1 == n_predict) result.done_reason = "length";
    }
    if (n_predict == static_cast<int64_t>(words.size()) && !options.contains("num_predict"))
      result.done_reason = "stop";
    result.eval_duration = now_ns() - t1;
    result.total_duration = now_ns() - t0;
    return result;
  }

  ModelInfo info() override {
    ModelInfo i;
    i.architecture = "fake";
    i.family = "fake";
    i.format = "gguf";
    i.parameter_count = 260000;
    i.quantization = "F32";
    i.context_length = 64;
    i.chat_template = "{% for m in messages %}{{ m.content }}{% endfor %}";
    i.model_info_json = json{{"fake.path", path_}}.dump();
    return i;
  }
  std::vector<int32_t> tokenize(const std::string& text, bool add_special) override {
    std::vector<int32_t> ids;
    if (add_special) ids.push_back(1);
    for (unsigned char c : text) ids.push_back(c + 3);
    return ids;
  }
  std::string detokenize(const std::vector<int32_t>& ids, bool skip_special) override {
    std::string text;
    for (int32_t id : ids) {
      check(id >= 0 && id < 259, "runner", "token id ", id, " out of range");
      if (id >= 3) text.push_back(static_cast<char>(id - 3));
    }
    return text;
  }
  std::string cache_stats_json() override {
    std::lock_guard lock(mu_);
    return json{{"prompts", seen_.size()}, {"hits", hits_}}.dump();
  }

 private:
  int64_t cached_prefix(const std::vector<std::string>& words) {
    std::lock_guard lock(mu_);
    size_t best = 0;
    for (const auto& prev : seen_) {
      size_t n = 0;
      while (n < prev.size() && n < words.size() && prev[n] == words[n]) ++n;
      best = std::max(best, n);
    }
    if (best > 0) ++hits_;
    seen_.push_back(words);
    return static_cast<int64_t>(best);
  }

  std::string path_;
  int delay_ms_ = 10;
  std::mutex mu_;
  std::vector<std::vector<std::string>> seen_;
  int64_t hits_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  std::string model, socket;
  for (int i = 1; i + 1 < argc; ++i) {
    std::string a = argv[i];
    if (a == "--model")
      model = argv[++i];
    else if (a == "--socket")
      socket = argv[++i];
  }
  try {
    runnel::check(!model.empty() && !socket.empty(), "fake_runner", "need --model and --socket");
    std::ifstream in(model);
    runnel::check(in.good(), "fake_runner", "cannot open model ", model);
    std::string head;
    std::getline(in, head);
    runnel::check(head.find("FAIL_LOAD") == std::string::npos, "fake_runner", "cannot load ", model,
                  ": FAIL_LOAD");
    FakeEngine engine(model);
    int status = runnel::runner::run_runner_process(engine, {socket});
    _exit(status);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fake_runner: %s\n", e.what());
    return 1;
  }
}
