// `runnel run` end to end, through the binary: the real model in ../shared and the embedded
// default model, against outputs of reference engines.
#include <gtest/gtest.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "base/mmap.h"
#include "cli_testing.h"
#include "testing/testing.h"

namespace runnel::testing {
namespace {

std::string stories() { return shell_quote(shared_dir() + "/models/stories260K.gguf"); }

TEST(Run, Stories260KContinuesLikeTheReferenceEngine) {
  // The continuation llama.cpp prints for this prompt with greedy decoding.
  CliResult r =
      run_cli("run " + stories() + " 'Once upon a time' --raw --temperature 0 --num-predict 64");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out,
            ", there was a little girl named Lily. She loved to play outside in the park. One day, "
            "she saw a big, red ball. She wanted to play with it, but it was too high.\nLily's mom "
            "said");
}

TEST(Run, EmptyPromptStartsFromBos) {
  CliResult r = run_cli("run " + stories() + " '' --raw --temperature 0 --num-predict 20");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out.rfind("Once upon a time, there was a little girl named Lily.", 0), 0u) << r.out;
}

TEST(Run, DefaultModelMatchesItsTrainingCodesGreedyDecode) {
  auto check = nlohmann::json::parse(read_file(source_dir() + "/models/default/greedy_check.json"));
  int checked = 0;
  for (const auto& sample : check["samples"]) {
    if (sample["chat"].get<bool>()) continue;
    const std::string prompt = sample["prompt"];
    const size_t n = sample["ids"].size();
    CliResult r = run_cli("run " + shell_quote(prompt) + " --raw --temperature 0 --num-predict " +
                          std::to_string(n));
    ASSERT_EQ(r.status, 0) << r.err;
    std::string expected = sample["text"];
    // The reference stops at </s>; we print nothing for it either.
    EXPECT_EQ(r.out, expected) << "prompt: " << prompt;
    ++checked;
  }
  EXPECT_GE(checked, 2);
}

TEST(Run, DefaultModelWritesScripture) {
  CliResult r = run_cli("run 'In the beginning' --num-predict 40 --seed 1");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_GT(r.out.size(), 40u);
  // Words of its corpus, not noise.
  EXPECT_TRUE(r.out.find("the") != std::string::npos || r.out.find("and") != std::string::npos)
      << r.out;
}

// `create --quantize iq4_nl` / `iq4_xs` (stories260K's rows of 64 are IQ4_NL either way) into a
// store of its own, then `run` by name: the quantized model still tells the story.
TEST(Run, CreateQuantizedToIQ4ThenRun) {
  const char* before = std::getenv("RUNNEL_MODELS");
  const std::string saved = before ? before : "";
  ASSERT_EQ(setenv("RUNNEL_MODELS", make_temp_dir("iq4store").c_str(), 1), 0);
  for (const std::string type : {"iq4_nl", "iq4_xs"}) {
    const CliResult c =
        run_cli("create st-" + type + " --from " + stories() + " --quantize " + type);
    EXPECT_EQ(c.status, 0) << c.err;
    const CliResult r = run_cli("run st-" + type + " '' --raw --temperature 0 --num-predict 8");
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out.rfind("Once upon a time", 0), 0u) << type << ": " << r.out;
  }
  if (before) {
    setenv("RUNNEL_MODELS", saved.c_str(), 1);
  } else {
    unsetenv("RUNNEL_MODELS");
  }
}

TEST(Run, SameSeedSameText) {
  auto a = run_cli("run " + stories() + " 'Once upon a time' --raw --seed 42 --num-predict 30");
  auto b = run_cli("run " + stories() + " 'Once upon a time' --raw --seed 42 --num-predict 30");
  ASSERT_EQ(a.status, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
}

TEST(Run, VerbosePrintsStatsToStderr) {
  CliResult r = run_cli("run " + stories() + " 'Once' --raw --num-predict 5 --verbose");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("prompt eval count:    2 token(s)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("eval count:           5 token(s)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("done reason:          length"), std::string::npos) << r.err;
}

TEST(Run, PromptLongerThanTheContextIsAnError) {
  std::string prompt;
  for (int i = 0; i < 200; ++i) prompt += "Once upon a time ";
  CliResult r = run_cli("run " + stories() + " " + shell_quote(prompt) + " --raw");
  EXPECT_EQ(r.status, 1);
  // Both numbers: the context asked for (capped at the trained 128) and the prompt's length.
  EXPECT_NE(r.err.find("does not fit the context of 128 tokens"), std::string::npos) << r.err;
}

TEST(Run, GenerationThatFillsTheContextStopsWithLength) {
  CliResult r = run_cli("run " + stories() + " 'Once upon a time' --raw --num-ctx 16 --verbose");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("done reason:          length"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("eval count:           11 token(s)"), std::string::npos) << r.err;
}

TEST(Run, BadInputIsAClearError) {
  CliResult r = run_cli("run /nonexistent/model.gguf 'hi'");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("/nonexistent/model.gguf"), std::string::npos) << r.err;
  r = run_cli("run " + stories() + " 'hi' --temperature hot");
  EXPECT_NE(r.status, 0);
  std::string dir = make_temp_dir("badgguf");
  write_file_atomic(dir + "/broken.gguf", "GGUF\x03\x00\x00\x00garbage");
  r = run_cli("run " + shell_quote(dir + "/broken.gguf") + " 'hi'");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("broken.gguf"), std::string::npos) << r.err;
}

TEST(Run, InteractiveChatKeepsHistoryAndEnds) {
  CliResult r = run_cli("run --num-predict 8 --temperature 0",
                        "In the beginning\n/clear\nAnd God said\n/bye\n");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_GT(r.out.size(), 10u);
}

TEST(Run, SecondChatTurnReusesTheCachedConversation) {
  CliResult r = run_cli("run --num-predict 8 --temperature 0 --verbose --kv-cache-memory 64MiB",
                        "In the beginning\nAnd God said\n/bye\n");
  ASSERT_EQ(r.status, 0) << r.err;
  const size_t first = r.err.find("cached tokens:        0");
  ASSERT_NE(first, std::string::npos) << r.err;
  const size_t second = r.err.find("cached tokens:", first + 10);
  ASSERT_NE(second, std::string::npos) << r.err;
  EXPECT_GT(std::stoi(r.err.substr(second + 14)), 20) << r.err;
}

TEST(Run, BadCacheFlagIsAClearError) {
  CliResult r = run_cli("run --kv-cache-memory lots 'hi'");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("'lots' is not a byte size"), std::string::npos) << r.err;
}

TEST(Version, NamesTheKernelVariant) {
  CliResult r = run_cli("--version");
  ASSERT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("runnel 0."), std::string::npos);
  EXPECT_NE(r.out.find("kernels: "), std::string::npos);
  r = run_cli("--version", "");
  CliResult forced = run_cli("--version");
  EXPECT_EQ(r.out, forced.out);
}

// A RUNNEL_CPU the binary cannot honour is an error message and status 1, also for --version (which
// names the variant), never an abort.
TEST(Version, BadRunnelCpuIsAnError) {
  ASSERT_EQ(setenv("RUNNEL_CPU", "bogus", 1), 0);
  const CliResult r = run_cli("--version");
  unsetenv("RUNNEL_CPU");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("RUNNEL_CPU=bogus is unknown"), std::string::npos) << r.err;
}

TEST(Help, NoArgumentsPrintsHelp) {
  CliResult r = run_cli("");
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("run"), std::string::npos);
}

}  // namespace
}  // namespace runnel::testing
