// `runnel template` end to end: the built binary renders golden cases exactly from a tokenizer
// folder, a GGUF file and --template, and reports a template's raise_exception text.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "formats/gguf.h"
#include "testing/testing.h"

namespace runnel::tmpl {
namespace {

using ojson = nlohmann::ordered_json;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

struct CliRun {
  int status;
  std::string out;
  std::string err;
};

// Runs `runnel template ARGS` with `stdin_text` on stdin.
CliRun run_template(const std::string& args, const std::string& stdin_text) {
  static const std::string dir = runnel::testing::make_temp_dir("cli-template");
  write_file(dir + "/in", stdin_text);
  std::string cmd = "SOURCE_DATE_EPOCH=1736933400 " + runnel::testing::runnel_binary() +
                    " template " + args + " < " + dir + "/in > " + dir + "/out 2> " + dir + "/err";
  int rc = std::system(cmd.c_str());
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, read_file(dir + "/out"), read_file(dir + "/err")};
}

ojson golden_case(const std::string& family, const std::string& id) {
  for (const std::string& line : runnel::testing::read_lines(
           runnel::testing::shared_dir() + "/testdata/chat_templates/" + family + "/cases.jsonl")) {
    ojson c = ojson::parse(line);
    if (c["id"] == id) return c;
  }
  ADD_FAILURE() << "no case " << id;
  return {};
}

ojson request_of(const ojson& c) {
  ojson r = {{"messages", c["messages"]},
             {"tools", c["tools"]},
             {"add_generation_prompt", c["add_generation_prompt"]}};
  for (auto it = c["extra_kwargs"].begin(); it != c["extra_kwargs"].end(); ++it) r[it.key()] = *it;
  return r;
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

TEST(Cli, RendersFromTokenizerFolderViaStdinAndArgument) {
  std::string folder = runnel::testing::shared_dir() + "/testdata/tokenizers/qwen3";
  ojson c = golden_case("qwen3", "t00_single_user+enable_thinking=False");
  CliRun r = run_template(folder, request_of(c).dump());
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, c["expected"].get<std::string>());
  CliRun arg = run_template(folder + " " + shell_quote(request_of(c).dump()), "");
  EXPECT_EQ(arg.out, c["expected"].get<std::string>());
}

TEST(Cli, RaiseExceptionIsTheErrorMessage) {
  std::string folder = runnel::testing::shared_dir() + "/testdata/tokenizers/gemma3";
  ojson c = golden_case("gemma3", "t12_consecutive_users");
  CliRun r = run_template(folder, request_of(c).dump());
  EXPECT_NE(r.status, 0);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "runnel: " + c["error"].get<std::string>() + "\n");
}

TEST(Cli, TemplateFileOverridesAndUsesTheClock) {
  std::string dir = runnel::testing::shared_dir() + "/testdata/chat_templates/gpt_oss";
  ojson c = golden_case("gpt_oss", "t03_multi_turn");
  std::string folder = runnel::testing::shared_dir() + "/testdata/tokenizers/gpt_oss";
  CliRun r = run_template(folder + " --template " + dir + "/template.jinja", request_of(c).dump());
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, c["expected"].get<std::string>());
}

TEST(Cli, RendersFromGguf) {
  std::string dir = runnel::testing::make_temp_dir("cli-gguf");
  formats::GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_string("tokenizer.ggml.model", "gpt2");
  w.set_strings("tokenizer.ggml.tokens", {"<unk>", "<|begin_of_text|>", "<|eot_id|>", "a"});
  w.set_int("tokenizer.ggml.bos_token_id", formats::GgufType::kU32, 1);
  w.set_int("tokenizer.ggml.eos_token_id", formats::GgufType::kU32, 2);
  w.set_string("tokenizer.chat_template",
               read_file(runnel::testing::shared_dir() +
                         "/testdata/chat_templates/llama3_1/template.jinja"));
  w.write(dir + "/m.gguf");
  ojson c = golden_case("llama3_1", "t09_tool_call_string_args");
  CliRun r = run_template(dir + "/m.gguf", request_of(c).dump());
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, c["expected"].get<std::string>());
}

TEST(Cli, BadInputIsAOneLineError) {
  std::string folder = runnel::testing::shared_dir() + "/testdata/tokenizers/qwen3";
  CliRun bad_json = run_template(folder, "{not json");
  EXPECT_NE(bad_json.status, 0);
  EXPECT_EQ(bad_json.err.rfind("runnel: ", 0), 0u) << bad_json.err;
  std::string dir = runnel::testing::make_temp_dir("cli-bad");
  write_file(dir + "/bad.jinja", "{{ messages | nosuch }}");
  CliRun bad_tmpl = run_template(folder + " --template " + dir + "/bad.jinja", "{}");
  EXPECT_NE(bad_tmpl.status, 0);
  EXPECT_EQ(bad_tmpl.err, "runnel: [template] 1:15: unknown filter 'nosuch'\n");
}

}  // namespace
}  // namespace runnel::tmpl
