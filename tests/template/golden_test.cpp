// Every case of shared/testdata/chat_templates/*/cases.jsonl renders byte-exactly, or fails with
// exactly the message the template passes to raise_exception.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "template/chat.h"
#include "testing/testing.h"

namespace runnel::tmpl {
namespace {

using ojson = nlohmann::ordered_json;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) ADD_FAILURE() << "cannot open " << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

constexpr int64_t kGoldenClock = 1736933400;  // 2025-01-15T09:30:00Z

class GoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenTest, EveryCaseRendersExactly) {
  std::string dir = runnel::testing::shared_dir() + "/testdata/chat_templates/" + GetParam();
  std::string source = read_file(dir + "/template.jinja");
  ojson vars = ojson::parse(read_file(dir + "/render_vars.json"));
  ASSERT_EQ(vars["strftime_now_fixed_datetime"], "2025-01-15T09:30:00");
  ChatTemplate chat = make_chat_template(source, vars["special_tokens"]);
  RenderOptions options;
  options.now_unix_seconds = kGoldenClock;
  auto lines = runnel::testing::read_lines(dir + "/cases.jsonl");
  ASSERT_FALSE(lines.empty());
  for (const std::string& line : lines) {
    ojson c = ojson::parse(line);
    SCOPED_TRACE(c["id"].get<std::string>());
    ojson request = ojson::object();
    request["messages"] = c["messages"];
    request["tools"] = c["tools"];
    request["add_generation_prompt"] = c["add_generation_prompt"];
    if (c.contains("extra_kwargs") && c["extra_kwargs"].is_object()) {
      for (auto it = c["extra_kwargs"].begin(); it != c["extra_kwargs"].end(); ++it) {
        request[it.key()] = *it;
      }
    }
    if (c["error"].is_null()) {
      std::string got;
      try {
        got = render_chat(chat, request, options);
      } catch (const std::exception& e) {
        ADD_FAILURE() << "unexpected error: " << e.what();
        continue;
      }
      EXPECT_EQ(got, c["expected"].get<std::string>());
    } else {
      try {
        std::string got = render_chat(chat, request, options);
        ADD_FAILURE() << "expected error '" << c["error"] << "', rendered:\n" << got;
      } catch (const TemplateError& e) {
        EXPECT_TRUE(e.raised());
        EXPECT_EQ(e.message(), c["error"].get<std::string>());
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Families, GoldenTest,
                         ::testing::Values("qwen3", "llama3", "llama3_1", "gemma3", "deepseek_v3",
                                           "gpt_oss", "mistral_nemo"));

// Templates shipped in tokenizer_config.json load through chat_template_from_config and give the
// same prompt as the golden file.
TEST(ChatConfig, TokenizerConfigTemplatesMatchGolden) {
  for (const char* family : {"qwen3", "llama3", "gemma3", "deepseek_v3"}) {
    SCOPED_TRACE(family);
    std::string base = runnel::testing::shared_dir() + "/testdata/";
    ojson config =
        ojson::parse(read_file(base + "tokenizers/" + family + "/tokenizer_config.json"));
    ChatTemplate chat = chat_template_from_config(config);
    ASSERT_EQ(chat.tmpl->source(),
              read_file(base + "chat_templates/" + family + "/template.jinja"));
    ojson c = ojson::parse(
        runnel::testing::read_lines(base + "chat_templates/" + family + "/cases.jsonl")[0]);
    ojson request = {{"messages", c["messages"]},
                     {"add_generation_prompt", c["add_generation_prompt"]}};
    EXPECT_EQ(render_chat(chat, request), c["expected"].get<std::string>());
  }
}

}  // namespace
}  // namespace runnel::tmpl
