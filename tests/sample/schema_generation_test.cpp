// Generation from random logits under 30 varied, nested JSON schemas with a synthetic vocabulary:
// every output must parse, validate against its schema, and end (EOS) within the token budget.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "sample/json_schema.h"
#include "sample/matcher.h"
#include "sample/rng.h"
#include "sample/sampler.h"
#include "schema_validator.h"
#include "synthetic_vocab.h"

namespace runnel::sample {
namespace {

const char* const kSchemas[] = {
    R"({"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}},"required":["name","age"]})",
    R"({"type":"string"})",
    R"({"type":"integer"})",
    R"({"type":"number"})",
    R"({"type":"boolean"})",
    R"({"type":"null"})",
    R"({"enum":["red","green","blue",1,2.5,null,true]})",
    R"({"const":"fixed"})",
    R"({"type":"array","items":{"type":"integer"}})",
    R"({"type":"array","items":{"type":"string","maxLength":4},"minItems":2,"maxItems":3})",
    R"({"type":"object","properties":{"tags":{"type":"array","items":{"type":"string"},"minItems":1}},"required":["tags"]})",
    R"({"type":"object","properties":{"a":{"type":"object","properties":{"b":{"type":"object","properties":{"c":{"type":"boolean"}},"required":["c"]}},"required":["b"]}},"required":["a"]})",
    R"({"type":"object","properties":{"x":{"type":"number"},"y":{"type":"number"},"z":{"type":"number"}}})",
    R"({"type":"object","properties":{"id":{"type":"integer"},"note":{"type":["string","null"]}},"required":["id","note"]})",
    R"({"anyOf":[{"type":"string"},{"type":"integer"},{"type":"null"}]})",
    R"({"oneOf":[{"type":"object","properties":{"kind":{"const":"a"}},"required":["kind"]},{"type":"array","maxItems":1}]})",
    R"({"type":"object","additionalProperties":{"type":"integer"}})",
    R"({"type":"object"})",
    R"({})",
    R"({"type":"array"})",
    R"({"type":"object","properties":{"matrix":{"type":"array","items":{"type":"array","items":{"type":"number"},"maxItems":3},"maxItems":3}},"required":["matrix"]})",
    R"({"type":"object","properties":{"s":{"type":"string","minLength":3,"maxLength":5}},"required":["s"]})",
    R"({"$defs":{"node":{"type":"object","properties":{"value":{"type":"integer"},"children":{"type":"array","items":{"$ref":"#/$defs/node"},"maxItems":2}},"required":["value"]}},"$ref":"#/$defs/node"})",
    R"({"type":"object","properties":{"status":{"enum":["ok","error"]},"data":{"anyOf":[{"type":"object","properties":{"n":{"type":"integer"}},"required":["n"]},{"type":"null"}]}},"required":["status","data"]})",
    R"({"type":"array","items":{"type":"object","properties":{"k":{"type":"string","maxLength":3},"v":{"type":"boolean"}},"required":["k","v"]},"maxItems":4})",
    R"({"type":"object","properties":{"unicode":{"type":"string","minLength":1}},"required":["unicode"],"additionalProperties":false})",
    R"({"type":"object","properties":{"first":{"type":"string"},"second":{"type":"string"},"third":{"type":"string"},"fourth":{"type":"integer"}},"required":["fourth"]})",
    R"({"title":"Person","description":"pydantic-like","type":"object","properties":{"name":{"title":"Name","type":"string"},"email":{"anyOf":[{"type":"string","format":"email"},{"type":"null"}],"default":null},"scores":{"type":"array","items":{"type":"number"}}},"required":["name","email"]})",
    R"({"type":"array","items":{"enum":[[1,2],{"a":1},"s"]},"minItems":1,"maxItems":2})",
    R"({"type":"object","properties":{"deep":{"type":"array","items":{"type":"array","items":{"type":"array","items":{"type":"object","properties":{"q":{"type":"null"}},"required":["q"]}}}}},"required":["deep"]})",
    R"({"type":"object","properties":{"rating":{"type":"integer","minimum":1,"maximum":5},"pct":{"type":"integer","minimum":-100,"exclusiveMaximum":101},"count":{"type":"integer","minimum":0},"rank":{"type":"integer","exclusiveMinimum":0},"weight":{"type":"number","minimum":0}},"required":["rating","pct","count","rank","weight"]})",
    R"({"type":"array","items":{"type":"integer","minimum":1990,"maximum":2030},"minItems":3,"maxItems":3})",
    R"({"oneOf":[{"type":"object","properties":{"kind":{"const":"circle"},"r":{"type":"number","minimum":0}},"required":["kind","r"]},{"type":"object","properties":{"kind":{"const":"rect"},"w":{"type":"integer"},"h":{"type":"integer"}},"required":["kind","w","h"]}]})",
    R"({"type":"array","items":{"anyOf":[{"type":"object","properties":{"a":{"type":"integer"}},"required":["a"]},{"type":"object","properties":{"b":{"type":"string"}},"required":["b"]},{"type":"object","properties":{"a":{"type":"string"},"c":{"type":"null"}},"required":["a","c"]}]},"maxItems":3})",
};

TEST(SchemaGeneration, ThirtySchemasAlwaysParseValidateAndTerminate) {
  ASSERT_GE(std::size(kSchemas), 30u);
  int32_t eos = 0;
  auto tokens = testing::small_json_vocab(eos);
  const auto vocab = std::make_shared<Vocabulary>(tokens, std::vector<int32_t>{eos});
  const int32_t n_vocab = vocab->n_vocab();
  int n_runs = 0;
  int n_at_budget = 0;
  for (size_t si = 0; si < std::size(kSchemas); ++si) {
    const auto schema_text = kSchemas[si];
    const nlohmann::json schema = nlohmann::json::parse(schema_text);
    const auto grammar = compile_json_schema(schema_text);
    for (uint64_t seed = 0; seed < 6; ++seed) {
      GrammarMatcher matcher(grammar, vocab);
      const int64_t budget = std::max<int64_t>(96, 2 * matcher.completion_bytes());
      SamplingOptions o;
      o.temperature = 1.0f;
      o.top_k = 0;
      o.top_p = 1.0f;
      o.repeat_penalty = 1.0f;
      o.seed = seed;
      Sampler sampler(o, {});
      Rng logits_rng(seed * 7919 + si);
      std::vector<float> logits(static_cast<size_t>(n_vocab));
      TokenMask mask;
      std::string text;
      bool ended = false;
      int64_t n_tokens = 0;
      for (; n_tokens < budget; ++n_tokens) {
        for (auto& x : logits) x = static_cast<float>(logits_rng.uniform() * 8.0 - 4.0);
        matcher.fill_mask(mask, budget - n_tokens);
        ASSERT_GT(mask.count(), 0) << "schema " << si << " stuck after: " << text;
        const int32_t t = sampler.sample(logits, &mask).token;
        ASSERT_TRUE(matcher.accept_token(t)) << "schema " << si << " token " << t;
        if (vocab->is_eos(t)) {
          ended = true;
          break;
        }
        text += vocab->token(t);
      }
      ++n_runs;
      // Hitting the budget is fine as long as the value is complete then.
      if (!ended) {
        ++n_at_budget;
        ASSERT_TRUE(matcher.is_complete()) << "schema " << si << " incomplete at budget: " << text;
      }
      nlohmann::json value;
      try {
        value = nlohmann::json::parse(text);
      } catch (const std::exception& e) {
        FAIL() << "schema " << si << " seed " << seed << ": does not parse: " << text << "\n"
               << e.what();
      }
      const std::string why = testing::validate(value, schema, schema);
      EXPECT_EQ(why, "") << "schema " << si << " seed " << seed << ": " << text;
    }
  }
  EXPECT_EQ(n_runs, static_cast<int>(6 * std::size(kSchemas)));
  // Most runs end with EOS on their own before the budget.
  EXPECT_LT(n_at_budget, n_runs / 2);
}

// format: "json" gives an object whatever the logits favour.
TEST(SchemaGeneration, JsonModeGivesObjects) {
  int32_t eos = 0;
  const auto vocab =
      std::make_shared<Vocabulary>(testing::small_json_vocab(eos), std::vector<int32_t>{eos});
  for (uint64_t seed = 0; seed < 20; ++seed) {
    GrammarMatcher matcher(compile_json_object_grammar(), vocab);
    SamplingOptions o;
    o.seed = seed;
    Sampler sampler(o, {});
    Rng logits_rng(seed);
    std::vector<float> logits(static_cast<size_t>(vocab->n_vocab()));
    TokenMask mask;
    std::string text;
    const int64_t budget = 200;
    for (int64_t n = 0; n < budget; ++n) {
      for (auto& x : logits) x = static_cast<float>(logits_rng.uniform() * 8.0 - 4.0);
      matcher.fill_mask(mask, budget - n);
      const int32_t t = sampler.sample(logits, &mask).token;
      ASSERT_TRUE(matcher.accept_token(t));
      if (vocab->is_eos(t)) break;
      text += vocab->token(t);
    }
    ASSERT_TRUE(matcher.is_complete()) << text;
    EXPECT_TRUE(nlohmann::json::parse(text).is_object()) << text;
  }
}

}  // namespace
}  // namespace runnel::sample
