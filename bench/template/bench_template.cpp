// Chat-template rendering speed: a 50-turn conversation (100 messages + system) rendered with the
// real qwen3 and llama3_1 templates, parse once / render many. Prints µs per render (median of
// 15 batches). Usage: bench_template [SHARED_DIR]   (default: <source>/../shared)
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "base/time.h"
#include "template/chat.h"

using runnel::tmpl::ChatTemplate;
using ojson = nlohmann::ordered_json;

static std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

static ojson conversation(int turns) {
  ojson messages = ojson::array();
  messages.push_back(
      {{"role", "system"}, {"content", "You are a helpful assistant. Answer briefly."}});
  for (int i = 0; i < turns; ++i) {
    messages.push_back({{"role", "user"},
                        {"content", "Question number " + std::to_string(i) +
                                        ": what is the capital of the country we talked about, "
                                        "and how many people live there?"}});
    messages.push_back({{"role", "assistant"},
                        {"content", "Answer " + std::to_string(i) +
                                        ": the capital is Paris, with about 2.1 million people in "
                                        "the city proper and 12 million in the metro area."}});
  }
  return messages;
}

int main(int argc, char** argv) {
  std::string shared = argc > 1 ? argv[1] : std::string(RUNNEL_SOURCE_DIR) + "/../shared";
  ojson request = {{"messages", conversation(50)}, {"add_generation_prompt", true}};
  for (const char* family : {"qwen3", "llama3_1"}) {
    std::string dir = shared + "/testdata/chat_templates/" + family;
    std::string source = read_file(dir + "/template.jinja");
    if (source.empty()) {
      std::fprintf(stderr, "cannot read %s/template.jinja\n", dir.c_str());
      return 1;
    }
    ojson vars = ojson::parse(read_file(dir + "/render_vars.json"));
    int64_t t0 = runnel::now_ns();
    ChatTemplate chat = runnel::tmpl::make_chat_template(source, vars["special_tokens"]);
    double parse_us = double(runnel::now_ns() - t0) / 1e3;
    runnel::tmpl::RenderOptions options;
    options.now_unix_seconds = 1736933400;
    size_t bytes = runnel::tmpl::render_chat(chat, request, options).size();
    const int kBatch = 200;
    std::vector<double> per_render;
    for (int b = 0; b < 15; ++b) {
      int64_t start = runnel::now_ns();
      for (int i = 0; i < kBatch; ++i)
        bytes = runnel::tmpl::render_chat(chat, request, options).size();
      per_render.push_back(double(runnel::now_ns() - start) / 1e3 / kBatch);
    }
    std::sort(per_render.begin(), per_render.end());
    std::printf(
        "%-9s 50-turn render: %7.1f us (median; min %.1f)  parse: %.1f us  prompt: %zu bytes\n",
        family, per_render[per_render.size() / 2], per_render[0], parse_us, bytes);
  }
  return 0;
}
