// The JSON grammar and schema compiler byte by byte, and the token masks over a small vocabulary.
#include <gtest/gtest.h>

#include "base/error.h"
#include "sample/json_schema.h"
#include "sample/matcher.h"
#include "synthetic_vocab.h"

namespace runnel::sample {
namespace {

std::shared_ptr<const Vocabulary> tiny_vocab() {
  // 0..5 text, 6 EOS, 7 special (empty).
  return std::make_shared<Vocabulary>(
      std::vector<std::string>{"{", "}", "{}", " ", "\"a\"", "x", "<eos>", ""},
      std::vector<int32_t>{6});
}

std::shared_ptr<const Vocabulary> json_vocab() {
  int32_t eos = 0;
  auto v = testing::small_json_vocab(eos);
  return std::make_shared<Vocabulary>(std::move(v), std::vector<int32_t>{eos});
}

// Accepts `text` from the start; returns whether all of it was accepted and, then, whether the
// value is complete.
std::pair<bool, bool> run(const std::shared_ptr<const Grammar>& g, const std::string& text) {
  GrammarMatcher m(g, tiny_vocab());
  if (!m.accept_bytes(text)) return {false, false};
  return {true, m.is_complete()};
}

bool complete(const std::shared_ptr<const Grammar>& g, const std::string& text) {
  const auto [ok, done] = run(g, text);
  return ok && done;
}
bool prefix_ok(const std::shared_ptr<const Grammar>& g, const std::string& text) {
  return run(g, text).first;
}

TEST(JsonGrammar, AcceptsJsonObjects) {
  const auto g = compile_json_object_grammar();
  for (const char* doc : {"{}", "{\"a\":1}", "{\"a\": [1, 2.5e-3, -0, true, false, null, \"x\"]}",
                          "{\n  \"nested\": {\"deep\": [[], {}]},\n  \"s\": "
                          "\"\\u00e9\\n\\\"\xc3\xa9\xe6\x97\xa5\"\n}",
                          "{\"k\":\"\xf0\x9f\x98\x80\"}"}) {
    EXPECT_TRUE(complete(g, doc)) << doc;
  }
}

TEST(JsonGrammar, RejectsInvalidJsonAndNonObjects) {
  const auto g = compile_json_object_grammar();
  for (const char* doc : {"[1]", "\"s\"", " {}", "{} ", "{,}", "{\"a\" 1}", "{\"a\":01}",
                          "{\"a\":1,}", "{\"a\":tru}", "{\"a\":\"\x01\"}", "{\"a\":\"\xc0\x80\"}",
                          "{\"a\":\"\xed\xa0\x80\"}", "{\"a\":\"\\ud800\"}", "{\"a\":\"\\q\"}",
                          "{\"a\":1.}", "{\"a\":.5}", "{\"a\":1e}", "{}}"}) {
    EXPECT_FALSE(complete(g, doc)) << doc;
  }
  EXPECT_TRUE(prefix_ok(g, "{\"a\":[1,"));
  EXPECT_FALSE(complete(g, "{\"a\":[1,"));
}

TEST(JsonGrammar, WhitespaceRunsAreBounded) {
  const auto g = compile_json_object_grammar();
  EXPECT_TRUE(complete(g, "{" + std::string(kMaxWhitespace, ' ') + "}"));
  EXPECT_FALSE(prefix_ok(g, "{" + std::string(kMaxWhitespace + 1, ' ')));
  // Numbers are bounded too.
  EXPECT_TRUE(prefix_ok(g, "{\"a\":" + std::string(kMaxIntDigits, '7')));
  EXPECT_FALSE(prefix_ok(g, "{\"a\":" + std::string(kMaxIntDigits + 1, '7')));
}

TEST(JsonSchema, ObjectPropertiesInOrderWithOptionalOnes) {
  const auto g = compile_json_schema(R"({"type":"object","properties":{
      "b":{"type":"integer"},"a":{"type":"string"},"c":{"type":"boolean"}},
      "required":["a"]})");
  EXPECT_TRUE(complete(g, R"({"b":1,"a":"x","c":true})"));
  EXPECT_TRUE(complete(g, R"({"a":"x"})"));
  EXPECT_TRUE(complete(g, R"({ "b" : 1 , "a" : "" })"));
  EXPECT_FALSE(prefix_ok(g, R"({"a":"x","b")"));  // declaration order
  EXPECT_FALSE(complete(g, R"({"b":1})"));        // a is required
  EXPECT_FALSE(prefix_ok(g, R"({"d")"));          // no extra properties
  EXPECT_FALSE(prefix_ok(g, R"({"b":1.5)"));
}

TEST(JsonSchema, ArraysEnumsConstsStrings) {
  const auto arr = compile_json_schema(
      R"({"type":"array","items":{"enum":["red","green",3,null]},"minItems":1,"maxItems":2})");
  EXPECT_TRUE(complete(arr, R"(["red"])"));
  EXPECT_TRUE(complete(arr, R"([3, null])"));
  EXPECT_FALSE(complete(arr, "[]"));
  EXPECT_FALSE(prefix_ok(arr, R"(["red","red",)"));
  EXPECT_FALSE(prefix_ok(arr, R"(["blue")"));
  const auto str = compile_json_schema(R"({"type":"string","minLength":2,"maxLength":3})");
  EXPECT_FALSE(complete(str, "\"a\""));
  EXPECT_TRUE(complete(str, "\"ab\""));
  EXPECT_TRUE(complete(str, "\"\xc3\xa9\xc3\xa9\xc3\xa9\""));  // 3 code points, 6 bytes
  EXPECT_TRUE(complete(str, "\"\\n\\u0041b\""));
  EXPECT_FALSE(prefix_ok(str, "\"abcd"));
  const auto c = compile_json_schema(R"({"const":{"k":[1,"x"]}})");
  EXPECT_TRUE(complete(c, R"({"k":[1,"x"]})"));
  EXPECT_FALSE(prefix_ok(c, R"({"k":[2)"));
}

TEST(JsonSchema, UnionsRefsAndNullable) {
  const auto g = compile_json_schema(R"({
    "$defs": {"node": {"type": "object", "properties": {
        "v": {"type": ["integer", "null"]},
        "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}}, "required": ["v"]}},
    "$ref": "#/$defs/node"})");
  EXPECT_TRUE(complete(g, R"({"v":1,"kids":[{"v":null},{"v":2,"kids":[]}]})"));
  EXPECT_FALSE(prefix_ok(g, R"({"v":"s")"));
  const auto any = compile_json_schema(R"({"anyOf":[{"type":"string"},{"type":"array"}]})");
  EXPECT_TRUE(complete(any, R"("s")"));
  EXPECT_TRUE(complete(any, R"([1,{"a":null}])"));
  EXPECT_FALSE(prefix_ok(any, "1"));
  const auto n = compile_json_schema(R"({"type":"number","nullable":true})");
  EXPECT_TRUE(complete(n, "null"));
  EXPECT_TRUE(complete(n, "-1.5E+10"));
  const auto map =
      compile_json_schema(R"({"type":"object","additionalProperties":{"type":"integer"}})");
  EXPECT_TRUE(complete(map, R"({"x":1,"y":2})"));
  EXPECT_FALSE(prefix_ok(map, R"({"x":"s")"));
}

// Alternatives that start alike (objects in an anyOf, a discriminated union, overlapping enums)
// are determinized: each branch stays possible until the bytes tell them apart.
TEST(JsonSchema, OverlappingAlternatives) {
  const auto u = compile_json_schema(R"({"anyOf":[
      {"type":"object","properties":{"kind":{"const":"circle"},"r":{"type":"number"}},
       "required":["kind","r"]},
      {"type":"object","properties":{"kind":{"const":"rect"},"w":{"type":"number"},
       "h":{"type":"number"}},"required":["kind","w","h"]},
      {"type":"object","properties":{"kind":{"const":"circle"},"label":{"type":"string"}},
       "required":["kind","label"]}]})");
  EXPECT_TRUE(complete(u, R"({"kind":"circle","r":1.5})"));
  EXPECT_TRUE(complete(u, R"({"kind": "rect", "w": 2, "h": 3})"));
  EXPECT_TRUE(complete(u, R"({"kind":"circle","label":"c"})"));
  EXPECT_FALSE(prefix_ok(u, R"({"kind":"rect","r")"));
  EXPECT_FALSE(prefix_ok(u, R"({"kind":"square")"));
  EXPECT_FALSE(complete(u, R"({"kind":"rect","w":2})"));
  const auto nums = compile_json_schema(R"({"anyOf":[{"type":"integer"},{"enum":[1.5,"x"]}]})");
  EXPECT_TRUE(complete(nums, "1.5"));
  EXPECT_TRUE(complete(nums, "15"));
  EXPECT_TRUE(complete(nums, "\"x\""));
  EXPECT_FALSE(complete(nums, "1.25"));
  const auto strs =
      compile_json_schema(R"({"anyOf":[{"type":"string","maxLength":2},{"enum":["long one"]}]})");
  EXPECT_TRUE(complete(strs, "\"ab\""));
  EXPECT_TRUE(complete(strs, "\"long one\""));
  EXPECT_FALSE(complete(strs, "\"lon\""));
}

TEST(JsonSchema, NumericBounds) {
  const auto r = compile_json_schema(R"({"type":"integer","minimum":-2,"maximum":12})");
  for (int v = -2; v <= 12; ++v) EXPECT_TRUE(complete(r, std::to_string(v))) << v;
  for (const char* bad : {"-3", "13", "-0", "01", "1.5"}) EXPECT_FALSE(complete(r, bad)) << bad;
  const auto pos = compile_json_schema(R"({"type":"integer","exclusiveMinimum":0})");
  EXPECT_TRUE(complete(pos, "7"));
  EXPECT_TRUE(complete(pos, "1234567"));
  EXPECT_FALSE(complete(pos, "0"));
  EXPECT_FALSE(prefix_ok(pos, "-"));
  const auto nonneg = compile_json_schema(R"({"type":"number","minimum":0})");
  EXPECT_TRUE(complete(nonneg, "0.25"));
  EXPECT_FALSE(prefix_ok(nonneg, "-"));
}

TEST(JsonSchema, UnsupportedOrBadSchemasAreErrors) {
  const auto message = [](const char* schema) {
    try {
      compile_json_schema(schema);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(message(R"({"type":"string","pattern":"^a"})").find("'pattern'"), std::string::npos);
  EXPECT_NE(message(R"({"type":"integer","minimum":3})").find("minimum"), std::string::npos);
  EXPECT_NE(message(R"({"type":"number","maximum":3})").find("maximum"), std::string::npos);
  EXPECT_NE(message(R"({"type":"integer","minimum":3,"maximum":1})").find("no integer"),
            std::string::npos);
  EXPECT_NE(message(R"({"type":"wat"})").find("wat"), std::string::npos);
  EXPECT_NE(message(R"({"$ref":"#/nope"})").find("not found"), std::string::npos);
  EXPECT_NE(message(R"({"properties":{"a":{}},"required":["b"]})").find("'b'"), std::string::npos);
  EXPECT_NE(message("{not json"), "");
  EXPECT_NE(message(R"({"type":"string","maxLength":100000})").find("maxLength"),
            std::string::npos);
  // Annotations are fine.
  EXPECT_EQ(message(R"({"title":"T","description":"d","type":"string","format":"date-time"})"), "");
}

TEST(Mask, TinyVocabularyByHand) {
  GrammarMatcher m(compile_json_schema(R"({"type":"object","properties":{"a":{"const":"x"}}})"),
                   tiny_vocab());
  TokenMask mask;
  m.fill_mask(mask);
  // "{" and "{}" start the object; nothing else.
  EXPECT_TRUE(mask.test(0));
  EXPECT_TRUE(mask.test(2));
  EXPECT_EQ(mask.count(), 2);
  ASSERT_TRUE(m.accept_token(0));
  m.fill_mask(mask);
  EXPECT_TRUE(mask.test(1));  // "}"  (a is optional)
  EXPECT_TRUE(mask.test(3));  // " "
  EXPECT_TRUE(mask.test(4));  // "\"a\""
  EXPECT_EQ(mask.count(), 3);
  EXPECT_FALSE(m.accept_token(6));  // EOS before completion
  ASSERT_TRUE(m.accept_token(1));
  EXPECT_TRUE(m.is_complete());
  EXPECT_TRUE(m.is_finished());
  m.fill_mask(mask);
  EXPECT_TRUE(mask.test(6));  // only EOS now
  EXPECT_EQ(mask.count(), 1);
  EXPECT_TRUE(m.accept_token(6));
}

TEST(Mask, MatchesBruteForceOverEveryToken) {
  const auto vocab = json_vocab();
  const auto g = compile_json_schema(R"({"type":"object","properties":{
      "name":{"type":"string"},"tags":{"type":"array","items":{"type":"string"}},
      "n":{"type":"number"}},"required":["name","n"]})");
  GrammarMatcher m(g, vocab);
  const std::string prefix = R"({"name": "ab\u00e9", "tags": ["x", "y"], "n": 1)";
  TokenMask mask;
  for (size_t cut = 0; cut <= prefix.size(); ++cut) {
    GrammarMatcher at(g, vocab);
    ASSERT_TRUE(at.accept_bytes(prefix.substr(0, cut))) << cut;
    at.fill_mask(mask);
    for (int32_t id = 0; id < vocab->n_vocab(); ++id) {
      GrammarMatcher probe = at;
      const bool expect = vocab->is_eos(id) ? at.is_complete()
                                            : !vocab->token(id).empty() && probe.accept_token(id);
      ASSERT_EQ(mask.test(id), expect)
          << "cut " << cut << " token " << id << " '" << vocab->token(id) << "'";
    }
  }
}

// The same check with a token budget, over schemas with counted strings (the text fast path with
// a chain that ends) and minimum lengths (where the budget trims text tokens by size).
TEST(Mask, MatchesBruteForceUnderBudgets) {
  const auto vocab = json_vocab();
  const auto g = compile_json_schema(R"({"type":"object","properties":{
      "s":{"type":"string","minLength":6,"maxLength":9},"t":{"type":"string"}},
      "required":["s","t"]})");
  const std::string prefix = R"({"s": "abc\u00e9xy", "t": "hello)";
  TokenMask mask;
  for (size_t cut = 0; cut <= prefix.size(); ++cut) {
    GrammarMatcher at(g, vocab);
    ASSERT_TRUE(at.accept_bytes(prefix.substr(0, cut))) << cut;
    const int32_t need = at.completion_bytes();
    for (const int64_t left : {int64_t{-1}, int64_t{need}, int64_t{need + 1}, int64_t{need + 3}}) {
      at.fill_mask(mask, left);
      for (int32_t id = 0; id < vocab->n_vocab(); ++id) {
        GrammarMatcher probe = at;
        bool expect;
        if (vocab->is_eos(id)) {
          expect = at.is_complete();
        } else {
          expect = !vocab->token(id).empty() && probe.accept_token(id) &&
                   (left < 0 || probe.completion_bytes() <= left - 1);
        }
        ASSERT_EQ(mask.test(id), expect) << "cut " << cut << " left " << left << " token " << id
                                         << " '" << vocab->token(id) << "'";
      }
    }
  }
}

TEST(Mask, BudgetKeepsCompletionReachable) {
  const auto vocab = json_vocab();
  const auto g = compile_json_schema(
      R"({"type":"object","properties":{"s":{"type":"string"}},"required":["s"]})");
  GrammarMatcher m(g, vocab);
  EXPECT_EQ(m.completion_bytes(), 8);  // {"s":""}
  TokenMask mask;
  m.fill_mask(mask, 8);
  EXPECT_GT(mask.count(), 0);
  for (int32_t id = 0; id < vocab->n_vocab(); ++id) {
    if (!mask.test(id)) continue;
    GrammarMatcher probe = m;
    ASSERT_TRUE(probe.accept_token(id));
    EXPECT_LE(probe.completion_bytes(), 7) << vocab->token(id);
  }
}

}  // namespace
}  // namespace runnel::sample
