// The `runnel tokenize` / `runnel detokenize` subcommands, run as the built binary.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>

#include "base/mmap.h"
#include "testing/testing.h"

namespace runnel {
namespace {

struct CliRun {
  int status;
  std::string out;
};

// Runs `runnel ARGS < stdin_text`, capturing stdout (stderr to stdout when `merge_err`).
CliRun run(const std::string& args, const std::string& stdin_text = "", bool merge_err = false) {
  static const std::string dir = testing::make_temp_dir("tokcli");
  static int n = 0;
  std::string in = dir + "/in" + std::to_string(n++);
  write_file_atomic(in, stdin_text);
  std::string cmd =
      testing::runnel_binary() + " " + args + " < " + in + (merge_err ? " 2>&1" : " 2>/dev/null");
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return {-1, ""};
  std::string out;
  std::array<char, 4096> buf;
  size_t got;
  while ((got = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), got);
  int st = pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

std::string family(const std::string& name) {
  return testing::shared_dir() + "/testdata/tokenizers/" + name;
}

TEST(Cli, TokenizeText) {
  CliRun r = run("tokenize " + family("llama3") + " 'Hello world'");
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, "[128000,9906,1917]\n");
  r = run("tokenize --no-special " + family("llama3") + " 'Hello world'");
  EXPECT_EQ(r.out, "[9906,1917]\n");
}

TEST(Cli, TokenizeStdinAndBatch) {
  CliRun r = run("tokenize --no-special " + family("gpt2"), "Hello world");
  EXPECT_EQ(r.out, "[15496,995]\n");
  r = run("tokenize --batch --no-special " + family("gpt2"),
          "\"Hello world\"\n\"\\u4f60\\u597d\"\n\"\"\n");
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, "[15496,995]\n[19526,254,25001,121]\n[]\n");
}

TEST(Cli, Detokenize) {
  CliRun r = run("detokenize " + family("mistral") + " '[1,22557,1526]'");
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, "<s> Hello world\n");
  r = run("detokenize --skip-special " + family("mistral"), "[1, 22557, 1526]");
  EXPECT_EQ(r.out, "Hello world\n");
  r = run("detokenize --batch " + family("gpt2"), "[15496,995]\n[19526]\n");
  EXPECT_EQ(r.out, "\"Hello world\"\n\"\xEF\xBF\xBD\"\n");
}

TEST(Cli, ErrorsExitNonZeroWithMessage) {
  CliRun r = run("detokenize " + family("gpt2") + " '[99999999]'", "", true);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("token id 99999999"), std::string::npos) << r.out;
  r = run("tokenize /nonexistent/model 'x'", "", true);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("/nonexistent/model"), std::string::npos) << r.out;
  r = run("detokenize " + family("gpt2") + " 'not json'", "", true);
  EXPECT_NE(r.status, 0);
}

}  // namespace
}  // namespace runnel
