// Bad input: truncated or malformed files, unsupported types, ids out of range. Each must be an
// Error naming the file or id, never a crash.
#include <gtest/gtest.h>

#include "base/error.h"
#include "base/mmap.h"
#include "testing/testing.h"
#include "tokenizer/tokenizer.h"

namespace runnel::tokenizer {
namespace {

std::string write_temp(const std::string& name, const std::string& contents) {
  static const std::string dir = testing::make_temp_dir("tokenizer");
  std::string path = dir + "/" + name;
  write_file_atomic(path, contents);
  return path;
}

// Expects load(path) to throw an Error whose message contains each of `parts`.
void expect_load_error(const std::string& path, std::initializer_list<std::string> parts) {
  try {
    Tokenizer::load(path);
    ADD_FAILURE() << "no error for " << path;
  } catch (const Error& e) {
    EXPECT_EQ(e.component(), "tokenizer") << e.what();
    for (const std::string& p : parts)
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
  }
}

const char* kMinimal =
    R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]},
 "added_tokens": [], "normalizer": null, "pre_tokenizer": null, "decoder": null, "post_processor": null})";

TEST(Errors, MinimalFileLoads) {
  auto tok = Tokenizer::load(write_temp("ok.json", kMinimal));
  EXPECT_EQ(tok->encode("abab", false), (std::vector<int32_t>{2, 2}));
  EXPECT_EQ(tok->decode(std::vector<int32_t>{2, 0}, false), "aba");
}

TEST(Errors, TruncatedJsonNamesFile) {
  std::string full = read_file(testing::shared_dir() + "/testdata/tokenizers/gpt2/tokenizer.json");
  for (size_t cut : {size_t{0}, size_t{1}, size_t{100}, full.size() / 2, full.size() - 2}) {
    std::string path = write_temp("trunc" + std::to_string(cut) + ".json", full.substr(0, cut));
    expect_load_error(path, {path, "JSON"});
  }
}

TEST(Errors, MalformedJson) {
  std::string path = write_temp("bad.json", R"({"model": {"type": "BPE", "vocab": {"a": 0,, }}})");
  expect_load_error(path, {path, "line 1"});
  path = write_temp("bad2.json", R"({"model": {"type": "BPE", "vocab": {"a": "zero"}}})");
  expect_load_error(path, {path, "integer"});
  path = write_temp("bad3.json",
                    R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a q"]}})");
  expect_load_error(path, {path, "merge 0"});
  path = write_temp("bad4.json", "[1, 2, 3]");
  expect_load_error(path, {path});
}

TEST(Errors, UnknownTypes) {
  std::string path =
      write_temp("unigram.json", R"({"model": {"type": "Unigram", "vocab": [["a", 0.0]]}})");
  expect_load_error(path, {path, "Unigram"});
  std::string s = kMinimal;
  s.replace(s.find("\"normalizer\": null"), 18, R"("normalizer": {"type": "BertNormalizer"})");
  path = write_temp("norm.json", s);
  expect_load_error(path, {path, "BertNormalizer"});
  s = kMinimal;
  s.replace(
      s.find("\"pre_tokenizer\": null"), 21,
      R"("pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(unclosed"}, "behavior": "Isolated"})");
  path = write_temp("regex.json", s);
  expect_load_error(path, {path, "regex"});
}

TEST(Errors, MissingAndBinaryFiles) {
  expect_load_error("/nonexistent/tokenizer.json", {"/nonexistent/tokenizer.json"});
  std::string path = write_temp("junk.model", std::string("\xff\xff\xff\xff\x0f\x01", 6));
  expect_load_error(path, {path, "SentencePiece"});
  path = write_temp("junk.gguf", "GGUF but not really");
  expect_load_error(path, {path});
  std::string dir = testing::make_temp_dir("tokenizer-empty");
  expect_load_error(dir, {dir, "no tokenizer.json"});
}

TEST(Errors, IdOutOfRange) {
  auto tok = Tokenizer::load(write_temp("ok2.json", kMinimal));
  for (int32_t bad : {3, -1, 1 << 30}) {
    try {
      tok->decode(std::vector<int32_t>{0, bad}, false);
      ADD_FAILURE() << "no error for id " << bad;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("token id " + std::to_string(bad)), std::string::npos)
          << e.what();
    }
    StreamDecoder sd(*tok, false);
    EXPECT_THROW(sd.push(bad), Error);
    EXPECT_THROW(tok->token_bytes(bad), Error);
  }
}

}  // namespace
}  // namespace runnel::tokenizer
