// Ollama options / format and OpenAI request mapping: defaults, every key, and the errors.
#include "sample/options.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "base/error.h"

namespace runnel::sample {
namespace {

using nlohmann::json;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Options, OllamaDefaults) {
  const SamplingOptions o = parse_ollama_options(json::object());
  EXPECT_FLOAT_EQ(o.temperature, 0.8f);
  EXPECT_EQ(o.top_k, 40);
  EXPECT_FLOAT_EQ(o.top_p, 0.9f);
  EXPECT_FLOAT_EQ(o.min_p, 0.0f);
  EXPECT_FLOAT_EQ(o.typical_p, 1.0f);
  EXPECT_FLOAT_EQ(o.repeat_penalty, 1.1f);
  EXPECT_EQ(o.repeat_last_n, 64);
  EXPECT_EQ(o.presence_penalty, 0.0f);
  EXPECT_EQ(o.frequency_penalty, 0.0f);
  EXPECT_FALSE(o.seed.has_value());
  EXPECT_EQ(o.num_predict, -1);
  EXPECT_EQ(o.num_ctx, 4096);
  EXPECT_TRUE(o.stop.empty());
  EXPECT_EQ(o.format, FormatKind::kNone);
}

TEST(Options, OllamaEveryKey) {
  const json j = json::parse(R"({
    "temperature": 0.2, "top_k": 5, "top_p": 0.5, "min_p": 0.1, "typical_p": 0.7,
    "repeat_penalty": 1.3, "repeat_last_n": -1, "presence_penalty": 0.4,
    "frequency_penalty": 0.6, "seed": 42, "num_predict": 100, "num_ctx": 8192,
    "stop": ["\n\n", "User:"], "logit_bias": {"7": -5},
    "num_keep": 4, "mirostat": 0, "mirostat_tau": 5.0, "mirostat_eta": 0.1, "tfs_z": 1.0,
    "penalize_newline": true, "numa": false, "num_batch": 256, "num_gpu": 0, "main_gpu": 0,
    "low_vram": false, "f16_kv": true, "logits_all": false, "vocab_only": false,
    "use_mmap": true, "use_mlock": false, "num_thread": 2, "top_k_unused": null
  })");
  json k = j;
  k.erase("top_k_unused");
  const SamplingOptions o = parse_ollama_options(k);
  EXPECT_FLOAT_EQ(o.temperature, 0.2f);
  EXPECT_EQ(o.top_k, 5);
  EXPECT_FLOAT_EQ(o.top_p, 0.5f);
  EXPECT_FLOAT_EQ(o.min_p, 0.1f);
  EXPECT_FLOAT_EQ(o.typical_p, 0.7f);
  EXPECT_FLOAT_EQ(o.repeat_penalty, 1.3f);
  EXPECT_EQ(o.repeat_last_n, -1);
  EXPECT_EQ(o.penalty_window(), 8192);
  EXPECT_FLOAT_EQ(o.presence_penalty, 0.4f);
  EXPECT_FLOAT_EQ(o.frequency_penalty, 0.6f);
  EXPECT_EQ(o.seed, 42u);
  EXPECT_EQ(o.num_predict, 100);
  EXPECT_EQ(o.num_ctx, 8192);
  EXPECT_EQ(o.stop, (std::vector<std::string>{"\n\n", "User:"}));
  ASSERT_EQ(o.logit_bias.size(), 1u);
  EXPECT_EQ(o.logit_bias[0].first, 7);
  EXPECT_EQ(o.num_thread, 2);
  EXPECT_EQ(o.num_batch, 256);
  EXPECT_EQ(o.num_keep, 4);
  // Integral floats are fine for integer options; null keeps the default.
  EXPECT_EQ(parse_ollama_options(json::parse(R"({"top_k": 12.0, "top_p": null})")).top_k, 12);
  EXPECT_FALSE(parse_ollama_options(json::parse(R"({"seed": -1})")).seed.has_value());
}

TEST(Options, UnknownKeyIsAnErrorNamingIt) {
  const std::string e = error_of([] { parse_ollama_options(json::parse(R"({"temprature": 1})")); });
  EXPECT_NE(e.find("'temprature'"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean 'temperature'"), std::string::npos) << e;
  EXPECT_NE(error_of([] { parse_ollama_options(json::parse(R"({"wibble": 1})")); }), "");
}

TEST(Options, UnimplementedOptionsAreErrors) {
  std::string e = error_of([] { parse_ollama_options(json::parse(R"({"mirostat": 2})")); });
  EXPECT_NE(e.find("mirostat"), std::string::npos) << e;
  e = error_of([] { parse_ollama_options(json::parse(R"({"tfs_z": 0.9})")); });
  EXPECT_NE(e.find("tfs_z"), std::string::npos) << e;
  EXPECT_EQ(error_of([] { parse_ollama_options(json::parse(R"({"mirostat": 0})")); }), "");
}

TEST(Options, BadValuesAreErrorsNamingTheKey) {
  for (const char* text :
       {R"({"temperature": "hot"})", R"({"temperature": -1})", R"({"top_p": 1.5})",
        R"({"top_k": 2.5})", R"({"repeat_last_n": -2})", R"({"num_ctx": 0})", R"({"stop": [1]})",
        R"({"use_mmap": 1})", R"({"logit_bias": {"x": 1}})", R"({"num_predict": -3})"}) {
    const json j = json::parse(text);
    const std::string e = error_of([&] { parse_ollama_options(j); });
    EXPECT_NE(e.find(j.begin().key()), std::string::npos) << text << " -> " << e;
  }
  EXPECT_NE(error_of([] { parse_ollama_options(json::array()); }), "");
}

TEST(Options, OllamaFormat) {
  SamplingOptions o;
  apply_ollama_format(json(nullptr), o);
  EXPECT_EQ(o.format, FormatKind::kNone);
  apply_ollama_format(json(""), o);
  EXPECT_EQ(o.format, FormatKind::kNone);
  apply_ollama_format(json("json"), o);
  EXPECT_EQ(o.format, FormatKind::kJson);
  // ordered_json keeps the schema's property order.
  apply_ollama_format(
      nlohmann::ordered_json::parse(R"({"type":"object","properties":{"z":{},"a":{}}})"), o);
  EXPECT_EQ(o.format, FormatKind::kJsonSchema);
  EXPECT_LT(o.format_schema.find("\"z\""), o.format_schema.find("\"a\""));
  EXPECT_THROW(apply_ollama_format(json("yaml"), o), Error);
  EXPECT_THROW(apply_ollama_format(json(3), o), Error);
}

TEST(Options, OpenAIRequest) {
  const json r = json::parse(R"({
    "model": "m", "messages": [], "temperature": 0.3, "top_p": 0.8, "max_tokens": 50,
    "seed": 7, "stop": "END", "frequency_penalty": 0.5, "presence_penalty": -0.5,
    "logprobs": true, "top_logprobs": 3, "logit_bias": {"10": 100},
    "response_format": {"type": "json_schema",
                        "json_schema": {"name": "x", "schema": {"type": "integer"}}}
  })");
  const SamplingOptions o = parse_openai_request(r);
  EXPECT_FLOAT_EQ(o.temperature, 0.3f);
  EXPECT_FLOAT_EQ(o.top_p, 0.8f);
  EXPECT_EQ(o.num_predict, 50);
  EXPECT_EQ(o.seed, 7u);
  EXPECT_EQ(o.stop, std::vector<std::string>{"END"});
  EXPECT_FLOAT_EQ(o.frequency_penalty, 0.5f);
  EXPECT_FLOAT_EQ(o.presence_penalty, -0.5f);
  EXPECT_TRUE(o.logprobs);
  EXPECT_EQ(o.top_logprobs, 3);
  EXPECT_EQ(o.logit_bias, (std::vector<std::pair<int32_t, float>>{{10, 100.0f}}));
  EXPECT_EQ(o.format, FormatKind::kJsonSchema);
  EXPECT_EQ(json::parse(o.format_schema), json::parse(R"({"type": "integer"})"));

  // OpenAI's defaults where it has its own: temperature 1, top_p 1.
  const SamplingOptions d = parse_openai_request(json::object());
  EXPECT_FLOAT_EQ(d.temperature, 1.0f);
  EXPECT_FLOAT_EQ(d.top_p, 1.0f);
  EXPECT_EQ(d.format, FormatKind::kNone);

  const SamplingOptions c = parse_openai_request(json::parse(
      R"({"max_completion_tokens": 9, "stop": ["a", "b"], "logprobs": 2,
          "response_format": {"type": "json_object"}})"));
  EXPECT_EQ(c.num_predict, 9);
  EXPECT_EQ(c.stop.size(), 2u);
  EXPECT_TRUE(c.logprobs);
  EXPECT_EQ(c.top_logprobs, 2);
  EXPECT_EQ(c.format, FormatKind::kJson);

  EXPECT_THROW(parse_openai_request(json::parse(R"({"temperature": 3})")), Error);
  EXPECT_THROW(parse_openai_request(json::parse(R"({"n": 2})")), Error);
  EXPECT_THROW(parse_openai_request(json::parse(R"({"top_logprobs": 21})")), Error);
  EXPECT_THROW(parse_openai_request(json::parse(R"({"response_format": {"type": "xml"}})")), Error);
  EXPECT_THROW(parse_openai_request(json::parse(R"({"response_format": {"type": "json_schema"}})")),
               Error);
}

}  // namespace
}  // namespace runnel::sample
