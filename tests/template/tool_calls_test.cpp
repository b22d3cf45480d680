// Tool-call parsing per format, and format detection from the real templates.
#include "template/tool_calls.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "testing/testing.h"

namespace runnel::tmpl {
namespace {

std::string template_of(const char* family) {
  std::ifstream in(runnel::testing::shared_dir() + "/testdata/chat_templates/" + family +
                   "/template.jinja");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(ToolCalls, DetectsFormatFromTemplateSource) {
  EXPECT_EQ(detect_tool_call_format(template_of("qwen3")), ToolCallFormat::kQwenXml);
  EXPECT_EQ(detect_tool_call_format(template_of("llama3_1")), ToolCallFormat::kLlama3Json);
  EXPECT_EQ(detect_tool_call_format(template_of("gpt_oss")), ToolCallFormat::kHarmony);
  EXPECT_EQ(detect_tool_call_format(template_of("llama3")), ToolCallFormat::kNone);
  EXPECT_EQ(detect_tool_call_format(template_of("gemma3")), ToolCallFormat::kNone);
}

TEST(ToolCalls, QwenXml) {
  ParsedOutput r = parse_tool_calls(ToolCallFormat::kQwenXml,
                                    "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", "
                                    "\"arguments\": {\"city\": \"Paris\", "
                                    "\"days\": 2}}\n</tool_call>\n<tool_call>\n{\"name\": \"now\", "
                                    "\"arguments\": {}}\n</tool_call>");
  EXPECT_EQ(r.content, "Let me check.");
  ASSERT_EQ(r.tool_calls.size(), 2u);
  EXPECT_EQ(r.tool_calls[0].name, "get_weather");
  EXPECT_EQ(r.tool_calls[0].arguments, R"({"city":"Paris","days":2})");
  EXPECT_EQ(r.tool_calls[1].name, "now");
  EXPECT_EQ(r.tool_calls[1].arguments, "{}");
}

TEST(ToolCalls, QwenXmlBrokenJsonStaysContent) {
  std::string text = "<tool_call>\n{\"name\": \"f\", \"arguments\": {\n</tool_call>";
  ParsedOutput r = parse_tool_calls(ToolCallFormat::kQwenXml, text);
  EXPECT_TRUE(r.tool_calls.empty());
  EXPECT_EQ(r.content, text);
  ParsedOutput plain = parse_tool_calls(ToolCallFormat::kQwenXml, "Just text, no calls.");
  EXPECT_TRUE(plain.tool_calls.empty());
  EXPECT_EQ(plain.content, "Just text, no calls.");
}

TEST(ToolCalls, Llama3Json) {
  ParsedOutput r =
      parse_tool_calls(ToolCallFormat::kLlama3Json,
                       "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}");
  EXPECT_EQ(r.content, "");
  ASSERT_EQ(r.tool_calls.size(), 1u);
  EXPECT_EQ(r.tool_calls[0].name, "get_weather");
  EXPECT_EQ(r.tool_calls[0].arguments, R"({"city":"Paris"})");

  ParsedOutput tagged = parse_tool_calls(ToolCallFormat::kLlama3Json,
                                         "<|python_tag|>{\"name\": \"a\", \"parameters\": {}}; "
                                         "{\"name\": \"b\", \"parameters\": {\"x\": 1}}");
  ASSERT_EQ(tagged.tool_calls.size(), 2u);
  EXPECT_EQ(tagged.tool_calls[1].name, "b");
  EXPECT_EQ(tagged.tool_calls[1].arguments, R"({"x":1})");

  ParsedOutput text = parse_tool_calls(ToolCallFormat::kLlama3Json, "The answer is {42}.");
  EXPECT_TRUE(text.tool_calls.empty());
  EXPECT_EQ(text.content, "The answer is {42}.");
}

TEST(ToolCalls, HarmonyCommentaryCall) {
  ParsedOutput r = parse_tool_calls(
      ToolCallFormat::kHarmony,
      "<|channel|>analysis<|message|>Need the weather.<|end|><|start|>assistant<|channel|>"
      "commentary to=functions.get_weather "
      "<|constrain|>json<|message|>{\"city\":\"Paris\"}<|call|>");
  EXPECT_EQ(r.reasoning, "Need the weather.");
  EXPECT_EQ(r.content, "");
  ASSERT_EQ(r.tool_calls.size(), 1u);
  EXPECT_EQ(r.tool_calls[0].name, "get_weather");
  EXPECT_EQ(r.tool_calls[0].arguments, R"({"city":"Paris"})");

  // The recipient may also precede the channel, as the template renders past calls.
  ParsedOutput r2 = parse_tool_calls(
      ToolCallFormat::kHarmony,
      " to=functions.lookup<|channel|>commentary json<|message|>{\"q\": \"x\"}<|call|>");
  ASSERT_EQ(r2.tool_calls.size(), 1u);
  EXPECT_EQ(r2.tool_calls[0].name, "lookup");
  EXPECT_EQ(r2.tool_calls[0].arguments, R"({"q":"x"})");
}

TEST(ToolCalls, HarmonyFinalAnswer) {
  ParsedOutput r = parse_tool_calls(
      ToolCallFormat::kHarmony,
      "<|channel|>analysis<|message|>Think.<|end|><|start|>assistant<|channel|>final<|message|>"
      "Hello there!<|return|>");
  EXPECT_TRUE(r.tool_calls.empty());
  EXPECT_EQ(r.reasoning, "Think.");
  EXPECT_EQ(r.content, "Hello there!");
}

TEST(ToolCalls, NoFormatKeepsText) {
  ParsedOutput r = parse_tool_calls(ToolCallFormat::kNone, "<tool_call>{}</tool_call>");
  EXPECT_TRUE(r.tool_calls.empty());
  EXPECT_EQ(r.content, "<tool_call>{}</tool_call>");
}

}  // namespace
}  // namespace runnel::tmpl
