// Request parsing and validation at the HTTP edge (server/api.h).
#include "server/api.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "server/scheduler.h"

namespace runnel::server {
namespace {
using nlohmann::json;

TEST(Api, OllamaGenerateDefaults) {
  GenerationParams p = parse_ollama_generate(R"({"model":"m","prompt":"hi there"})");
  EXPECT_EQ(p.model, "m");
  EXPECT_TRUE(p.stream);
  EXPECT_FALSE(p.keep_alive_ns.has_value());
  EXPECT_FALSE(p.request.chat);
  EXPECT_EQ(p.request.prompt, "hi there");
  EXPECT_FALSE(p.empty());
}

TEST(Api, OllamaGenerateFields) {
  GenerationParams p = parse_ollama_generate(
      R"({"model":"m","prompt":"x","stream":false,"raw":true,"system":"sys","keep_alive":"10s",
          "options":{"temperature":0.5,"num_predict":3},"format":{"type":"object"},
          "logprobs":true,"top_logprobs":3})");
  EXPECT_FALSE(p.stream);
  EXPECT_TRUE(p.request.raw);
  EXPECT_EQ(p.request.system, "sys");
  EXPECT_EQ(*p.keep_alive_ns, 10'000'000'000LL);
  EXPECT_EQ(json::parse(p.request.options_json)["num_predict"], 3);
  EXPECT_EQ(json::parse(p.request.format)["type"], "object");
  EXPECT_TRUE(p.request.logprobs);
  EXPECT_EQ(p.request.top_logprobs, 3);
}

TEST(Api, EmptyPromptIsALoadRequest) {
  EXPECT_TRUE(parse_ollama_generate(R"({"model":"m"})").empty());
  EXPECT_TRUE(parse_ollama_chat(R"({"model":"m","messages":[]})").empty());
}

TEST(Api, Errors) {
  EXPECT_THROW(parse_ollama_generate("{not json"), Error);
  EXPECT_THROW(parse_ollama_generate("[1]"), Error);
  EXPECT_THROW(parse_ollama_generate(R"({"prompt":"x"})"), Error);              // no model
  EXPECT_THROW(parse_ollama_generate(R"({"model":1,"prompt":"x"})"), Error);    // model type
  EXPECT_THROW(parse_ollama_generate(R"({"model":"m","options":[]})"), Error);  // options type
  EXPECT_THROW(parse_ollama_generate(R"({"model":"m","format":"xml"})"), Error);
  EXPECT_THROW(parse_ollama_generate(R"({"model":"m","stream":"yes"})"), Error);
  EXPECT_THROW(parse_ollama_generate(R"({"model":"m","top_logprobs":99})"), Error);
  EXPECT_THROW(parse_ollama_chat(R"({"model":"m","messages":[{"role":"robot","content":"x"}]})"),
               Error);
  EXPECT_THROW(parse_ollama_chat(R"({"model":"m","messages":[{"content":"x"}]})"), Error);
  EXPECT_THROW(parse_ollama_chat(
                   R"({"model":"m","messages":[{"role":"user","content":"x","images":["a"]}]})"),
               Error);
  try {
    parse_ollama_generate(R"({"model":"m","options":7})");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.component(), "api");
    EXPECT_NE(std::string(e.what()).find("options"), std::string::npos);
  }
}

TEST(Api, OllamaChatMessages) {
  GenerationParams p = parse_ollama_chat(R"({"model":"m","messages":[
      {"role":"system","content":"be brief"},
      {"role":"user","content":"hello"},
      {"role":"assistant","content":"","tool_calls":[{"function":{"name":"f","arguments":{}}}]},
      {"role":"tool","content":"42","tool_name":"f"}],
      "tools":[{"type":"function","function":{"name":"f"}}],"think":false})");
  ASSERT_EQ(p.request.messages.size(), 4u);
  EXPECT_TRUE(p.request.chat);
  EXPECT_EQ(p.request.messages[1].content, "hello");
  EXPECT_EQ(json::parse(p.request.messages[2].tool_calls_json)[0]["function"]["name"], "f");
  EXPECT_EQ(p.request.messages[3].name, "f");
  EXPECT_EQ(json::parse(p.request.tools_json).size(), 1u);
  EXPECT_EQ(p.request.think, std::optional<bool>(false));
}

TEST(Api, OpenAiChatMapsOptions) {
  GenerationParams p = parse_openai_chat(R"({"model":"m","stream":true,
      "stream_options":{"include_usage":true},
      "messages":[{"role":"developer","content":"sys"},
                  {"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}],
      "temperature":0.2,"max_tokens":7,"stop":"END","seed":3,
      "response_format":{"type":"json_object"}})");
  EXPECT_TRUE(p.stream);
  EXPECT_TRUE(p.include_usage);
  EXPECT_EQ(p.request.messages[0].role, "system");
  EXPECT_EQ(p.request.messages[1].content, "ab");
  json o = json::parse(p.request.options_json);
  EXPECT_EQ(o["num_predict"], 7);
  EXPECT_EQ(o["stop"], json::array({"END"}));
  EXPECT_DOUBLE_EQ(o["temperature"].get<double>(), 0.2);
  EXPECT_EQ(p.request.format, "json");
  EXPECT_FALSE(parse_openai_chat(R"({"model":"m","messages":[{"role":"user","content":"x"}]})")
                   .stream);  // OpenAI default
}

TEST(Api, OpenAiErrors) {
  EXPECT_THROW(parse_openai_chat(R"({"model":"m","messages":[]})"), Error);
  EXPECT_THROW(
      parse_openai_chat(R"({"model":"m","n":2,"messages":[{"role":"user","content":"x"}]})"),
      Error);
  EXPECT_THROW(parse_openai_chat(R"({"model":"m","messages":[{"role":"user","content":
      [{"type":"image_url","image_url":{"url":"data:"}}]}]})"),
               Error);
  EXPECT_THROW(parse_openai_completion(R"({"model":"m"})"), Error);
  EXPECT_THROW(parse_openai_completion(R"({"model":"m","prompt":["a","b"]})"), Error);
  EXPECT_EQ(parse_openai_completion(R"({"model":"m","prompt":["a b"]})").request.prompt, "a b");
}

TEST(Api, Durations) {
  EXPECT_EQ(parse_duration_ns("5m"), 300'000'000'000LL);
  EXPECT_EQ(parse_duration_ns("1h30m"), 5'400'000'000'000LL);
  EXPECT_EQ(parse_duration_ns("250ms"), 250'000'000LL);
  EXPECT_EQ(parse_duration_ns("30"), 30'000'000'000LL);
  EXPECT_EQ(parse_duration_ns("0"), 0);
  EXPECT_EQ(parse_duration_ns("-1"), kForever);
  EXPECT_EQ(parse_duration_ns("-1m"), kForever);
  EXPECT_THROW(parse_duration_ns("5 minutes"), Error);
  EXPECT_THROW(parse_duration_ns("m"), Error);
  EXPECT_THROW(parse_duration_ns("5y"), Error);
  GenerationParams p = parse_ollama_generate(R"({"model":"m","keep_alive":0})");
  EXPECT_EQ(*p.keep_alive_ns, 0);
  p = parse_ollama_generate(R"({"model":"m","keep_alive":-1})");
  EXPECT_EQ(*p.keep_alive_ns, kForever);
}

}  // namespace
}  // namespace runnel::server
