// Bad templates and bad data: clear errors with line:column, limits that stop runaway templates,
// and no crash on arbitrary input (a small fuzz over mutated real templates).
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "template/template.h"
#include "testing/testing.h"

namespace runnel::tmpl {
namespace {

// The error of parsing (and rendering, when parse succeeds) `source`.
std::string error_of(const std::string& source, const char* vars = "{}",
                     const RenderOptions& options = {}) {
  try {
    Template::parse(source)->render(nlohmann::ordered_json::parse(vars), options);
  } catch (const TemplateError& e) {
    return e.message();
  }
  return "(no error)";
}

TEST(Errors, SyntaxErrorsCarryLineAndColumn) {
  EXPECT_EQ(error_of("a\n{{ x | nosuchfilter }}"), "2:8: unknown filter 'nosuchfilter'");
  EXPECT_EQ(error_of("{% if x is nosuchtest %}{% endif %}"), "1:12: unknown test 'nosuchtest'");
  EXPECT_EQ(error_of("line1\n  {% if true %}\nno end"),
            "2:6: unexpected end of template, expected 'endif'");
  EXPECT_EQ(error_of("{{ 'abc }}"), "1:4: unterminated string literal");
  EXPECT_EQ(error_of("x {{ 1 + }}"), "1:10: unexpected '}}'");
  EXPECT_EQ(error_of("{% for x in y %}{% endif %}"), "1:20: unknown or unexpected tag 'endif'");
  EXPECT_EQ(error_of("{# never closed"), "1:1: unterminated comment");
  EXPECT_EQ(error_of("\n\n   {{ x"), "3:4: unexpected end of template, expected '}}'");
  EXPECT_EQ(error_of("{% break %}"), "1:4: 'break' outside of a loop");
  EXPECT_EQ(error_of("{% include 'x' %}"), "1:4: unknown or unexpected tag 'include'");
  EXPECT_EQ(error_of("{{ a ]"), "1:6: unexpected ']'");
}

TEST(Errors, RuntimeErrorsCarryTheExpressionPosition) {
  EXPECT_EQ(error_of("ok\n  {{ x.y }}"), "2:7: 'x' is undefined");
  EXPECT_EQ(error_of("{{ 'a' + 1 }}"), "1:8: unsupported operand type(s) for +: 'str' and 'int'");
  EXPECT_EQ(error_of("{{ m.content + 'x' }}", R"({"m": {}})"),
            "1:14: 'dict object' has no attribute 'content'");
  EXPECT_EQ(error_of("{{ 1 // 0 }}"), "1:6: integer division or modulo by zero");
  EXPECT_EQ(error_of("{% for x in none %}{% endfor %}"), "1:4: 'NoneType' object is not iterable");
  EXPECT_EQ(error_of("{% set ns = 1 %}{% set ns.a = 2 %}"),
            "1:20: cannot assign attribute on non-namespace object");
  EXPECT_EQ(error_of("{{ x|tojson }}"), "1:6: Object of type Undefined is not JSON serializable");
}

TEST(Errors, RaiseExceptionGivesTheTemplatesOwnMessage) {
  try {
    Template::parse("\n{{ raise_exception('Roles must alternate!') }}")
        ->render(nlohmann::json::object());
    FAIL() << "no error";
  } catch (const TemplateError& e) {
    EXPECT_TRUE(e.raised());
    EXPECT_EQ(e.message(), "Roles must alternate!");
    EXPECT_EQ(e.line(), 2);
  }
}

TEST(Errors, InfiniteRecursionIsStopped) {
  std::string msg = error_of("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}");
  EXPECT_EQ(msg, "1:4: maximum recursion depth exceeded in macro 'f'");
}

TEST(Errors, StepLimitStopsRunawayLoops) {
  RenderOptions o;
  o.limits.max_steps = 10000;
  std::string msg = error_of(
      "{% for a in range(1000) %}{% for b in range(1000) %}{{ '' }}{% endfor %}{% endfor %}", "{}",
      o);
  EXPECT_NE(msg.find("step limit exceeded"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("1:"), 0u) << msg;
}

TEST(Errors, HugeStringsAreRefused) {
  RenderOptions o;
  o.limits.max_output_bytes = 1 << 20;
  std::string msg = error_of(
      "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
      "{% endfor %}{{ ns.s|length }}",
      "{}", o);
  EXPECT_NE(msg.find("string too large"), std::string::npos) << msg;
}

TEST(Errors, DeepNestingIsAnErrorNotACrash) {
  std::string deep = "{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}";
  EXPECT_NE(error_of(deep).find("nested too deeply"), std::string::npos);
  std::string ifs;
  for (int i = 0; i < 1000; ++i) ifs += "{% if true %}";
  EXPECT_NE(error_of(ifs).find("nested too deeply"), std::string::npos);
}

TEST(Errors, CyclicValuesDoNotCrash) {
  std::string msg = error_of("{% set ns = namespace() %}{% set ns.self = ns %}{{ ns }}");
  EXPECT_NE(msg.find("too deep"), std::string::npos) << msg;
  msg = error_of("{% set a = [] %}{% set _ = a.append(a) %}{{ a == a }}{{ a|tojson }}");
  EXPECT_NE(msg.find("too deep"), std::string::npos) << msg;
}

// Mutated real templates must parse+render or throw runnel::Error, never crash or hang.
TEST(Errors, FuzzedTemplatesNeverCrash) {
  std::vector<std::string> sources;
  for (const char* f : {"qwen3", "llama3_1", "gpt_oss", "mistral_nemo", "gemma3"}) {
    std::ifstream in(runnel::testing::shared_dir() + "/testdata/chat_templates/" + f +
                     "/template.jinja");
    std::stringstream ss;
    ss << in.rdbuf();
    sources.push_back(ss.str());
  }
  auto vars = nlohmann::ordered_json::parse(R"({
    "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"},
                 {"role": "assistant", "content": null,
                  "tool_calls": [{"function": {"name": "f", "arguments": {"a": 1}}}]},
                 {"role": "tool", "content": "r"}],
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
    "add_generation_prompt": true})");
  const std::string alphabet = "{}%#-+()[]|.,:'\"~ \nifforsetendxyz0123456789";
  std::mt19937 rng(1234);
  RenderOptions o;
  o.limits.max_steps = 20000;
  int rendered = 0, errors = 0;
  for (int iter = 0; iter < 1500; ++iter) {
    std::string s = sources[size_t(iter) % sources.size()];
    int n_mut = 1 + int(rng() % 4);
    for (int m = 0; m < n_mut && !s.empty(); ++m) {
      size_t pos = rng() % s.size();
      switch (rng() % 3) {
        case 0:
          s[pos] = alphabet[rng() % alphabet.size()];
          break;
        case 1:
          s.erase(pos, 1 + rng() % 8);
          break;
        default:
          s.insert(pos, 1, alphabet[rng() % alphabet.size()]);
      }
    }
    try {
      Template::parse(s)->render(vars, o);
      ++rendered;
    } catch (const runnel::Error&) {
      ++errors;
    }
  }
  EXPECT_GT(rendered, 0);
  EXPECT_GT(errors, 0);
}

}  // namespace
}  // namespace runnel::tmpl
