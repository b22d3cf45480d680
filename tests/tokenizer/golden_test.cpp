// Every row of shared/testdata/tokenizers/*/{cases,decode_cases}.jsonl, the llama.cpp vocab
// vectors whose tokenizer we can load, and the SentencePiece models against the same texts.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/mmap.h"
#include "testing/testing.h"
#include "tokenizer/tokenizer.h"

namespace runnel::tokenizer {
namespace {

using nlohmann::json;

std::string data(const std::string& rel) { return testing::shared_dir() + "/testdata/" + rel; }

const Tokenizer& family(const std::string& name) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  auto& t = cache[name];
  if (!t) t = Tokenizer::load(data("tokenizers/" + name));
  return *t;
}

std::string show(const std::vector<int32_t>& ids) {
  std::string s = "[";
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? "," : "") + std::to_string(ids[i]);
  return s + "]";
}

class Family : public ::testing::TestWithParam<std::string> {};

TEST_P(Family, EncodeDecodeEveryCase) {
  const Tokenizer& tok = family(GetParam());
  auto lines = testing::read_lines(data("tokenizers/" + GetParam() + "/cases.jsonl"));
  ASSERT_GT(lines.size(), 100u);
  int bad = 0;
  for (const std::string& line : lines) {
    json c = json::parse(line);
    std::string text = c["text"];
    bool add = c["add_special"];
    std::vector<int32_t> want = c["ids"].get<std::vector<int32_t>>();
    std::vector<int32_t> got = tok.encode(text, add);
    if (got != want && ++bad < 15)
      ADD_FAILURE() << GetParam() << " " << c["id"] << " add_special=" << add
                    << " text=" << json(text).dump() << "\n want " << show(want) << "\n got  "
                    << show(got);
    std::string dec = tok.decode(want, false);
    if (dec != c["decoded"].get<std::string>() && ++bad < 15)
      ADD_FAILURE() << GetParam() << " " << c["id"] << " decode " << json(dec).dump() << " want "
                    << c["decoded"].dump();
    std::string dec_skip = tok.decode(want, true);
    if (dec_skip != c["decoded_skip_special"].get<std::string>() && ++bad < 15)
      ADD_FAILURE() << GetParam() << " " << c["id"] << " decode skip " << json(dec_skip).dump()
                    << " want " << c["decoded_skip_special"].dump();
  }
  EXPECT_EQ(bad, 0);
}

TEST_P(Family, DecodeEveryPrefixCase) {
  const Tokenizer& tok = family(GetParam());
  auto lines = testing::read_lines(data("tokenizers/" + GetParam() + "/decode_cases.jsonl"));
  ASSERT_GT(lines.size(), 10u);
  int bad = 0;
  for (const std::string& line : lines) {
    json c = json::parse(line);
    std::vector<int32_t> ids = c["ids"].get<std::vector<int32_t>>();
    std::string dec = tok.decode(ids, false), dec_skip = tok.decode(ids, true);
    if (dec != c["decoded"].get<std::string>() && ++bad < 15)
      ADD_FAILURE() << GetParam() << " " << c["id"] << " " << show(ids) << " got "
                    << json(dec).dump() << " want " << c["decoded"].dump();
    if (dec_skip != c["decoded_skip_special"].get<std::string>() && ++bad < 15)
      ADD_FAILURE() << GetParam() << " " << c["id"] << " skip " << show(ids) << " got "
                    << json(dec_skip).dump() << " want " << c["decoded_skip_special"].dump();
  }
  EXPECT_EQ(bad, 0);
}

// README check (2): streaming never emits a U+FFFD the final text lacks, always a prefix of it.
TEST_P(Family, StreamingDecodeOfEveryPrefixCase) {
  const Tokenizer& tok = family(GetParam());
  auto lines = testing::read_lines(data("tokenizers/" + GetParam() + "/decode_cases.jsonl"));
  std::map<std::string, std::vector<int32_t>> longest;
  for (const std::string& line : lines) {
    json c = json::parse(line);
    auto ids = c["ids"].get<std::vector<int32_t>>();
    auto& l = longest[c["id"]];
    if (ids.size() > l.size()) l = ids;
  }
  for (bool skip : {false, true}) {
    for (const auto& [id, ids] : longest) {
      StreamDecoder sd(tok, skip);
      std::string so_far;
      for (int32_t t : ids) {
        so_far += sd.push(t);
        std::string full = tok.decode(ids, skip);
        ASSERT_EQ(full.compare(0, so_far.size(), so_far), 0) << id << " streamed " << so_far;
      }
      so_far += sd.flush();
      EXPECT_EQ(so_far, tok.decode(ids, skip)) << GetParam() << " " << id;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Tokenizers, Family,
                         ::testing::Values("gpt2", "llama3", "qwen3", "mistral", "gemma3",
                                           "deepseek_v3", "gpt_oss"));

// llama.cpp's vectors: .inp strings joined by "\n__ggml_vocab_test__\n", .out one id line each.
struct VocabCase {
  std::string text;
  std::vector<int32_t> ids;
};

std::vector<VocabCase> vocab_cases(const std::string& name) {
  std::string inp = read_file(data("llamacpp-vocab/ggml-vocab-" + name + ".gguf.inp"));
  std::string out = read_file(data("llamacpp-vocab/ggml-vocab-" + name + ".gguf.out"));
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  size_t pos = 0, hit;
  while ((hit = inp.find(sep, pos)) != std::string::npos) {
    texts.push_back(inp.substr(pos, hit - pos));
    pos = hit + sep.size();
  }
  std::vector<VocabCase> cases;
  std::istringstream lines(out);
  std::string line;
  for (const std::string& t : texts) {
    std::getline(lines, line);
    VocabCase c{t, {}};
    std::istringstream ids(line);
    int32_t id;
    while (ids >> id) c.ids.push_back(id);
    cases.push_back(std::move(c));
  }
  return cases;
}

void check_vocab(const Tokenizer& tok, const std::string& name) {
  auto cases = vocab_cases(name);
  ASSERT_GT(cases.size(), 20u) << name;
  for (const VocabCase& c : cases)
    EXPECT_EQ(show(tok.encode(c.text, false)), show(c.ids)) << name << " " << json(c.text).dump();
}

TEST(LlamaCppVocab, HfFamiliesMatch) {
  check_vocab(family("llama3"), "llama-bpe");
  check_vocab(family("qwen3"), "qwen2");
  check_vocab(family("gemma3"), "gemma-4");
}

TEST(LlamaCppVocab, GgufVocabulariesMatch) {
  for (const char* name : {"llama-spm", "phi-3", "gpt-2", "deepseek-llm", "falcon"}) {
    auto tok = Tokenizer::load(data(std::string("llamacpp-vocab/ggml-vocab-") + name + ".gguf"));
    check_vocab(*tok, name);
  }
}

TEST(Gguf, Stories260KTokenizes) {
  auto tok = Tokenizer::load(testing::shared_dir() + "/models/stories260K.gguf");
  EXPECT_EQ(tok->n_vocab(), 512);
  EXPECT_EQ(tok->bos_id(), 1);
  auto eos = tok->eos_ids();
  EXPECT_NE(std::find(eos.begin(), eos.end(), 2), eos.end());
  const std::string text =
      "Once upon a time, there was a little girl named Lily. She loved to play.";
  auto ids = tok->encode(text, true);
  ASSERT_GT(ids.size(), 5u);
  EXPECT_EQ(ids[0], 1);
  for (int32_t id : ids) EXPECT_TRUE(id >= 0 && id < 512);
  EXPECT_LT(ids.size(), text.size() / 2);  // real merges happened, not one token per char
  EXPECT_EQ(tok->decode(ids, true), text);
  // Byte fallback: "你" is not a piece, so it becomes <0xE4><0xBD><0xA0> (ids 3 + byte).
  auto e = tok->encode("\xE4\xBD\xA0", false);
  ASSERT_EQ(e.size(), 4u);  // "▁" then three bytes
  EXPECT_EQ(tok->token_text(e[0]), "\xE2\x96\x81");
  EXPECT_EQ(e[1], 3 + 0xE4);
  EXPECT_EQ(e[2], 3 + 0xBD);
  EXPECT_EQ(e[3], 3 + 0xA0);
  EXPECT_EQ(tok->decode(e, false), "\xE4\xBD\xA0");
  EXPECT_EQ(tok->token_bytes(3 + 0x41), "A");
}

TEST(SentencePiece, ModelsEncodeLikeReference) {
  auto llama2 = Tokenizer::load(data("sentencepiece/llama2.tokenizer.model"));
  check_vocab(*llama2, "llama-spm");
  auto mistral = Tokenizer::load(data("sentencepiece/mistral-7b-v0.1.tokenizer.model"));
  int checked = 0;
  for (const std::string& line : testing::read_lines(data("tokenizers/mistral/cases.jsonl"))) {
    json c = json::parse(line);
    std::string text = c["text"];
    // Plain text only: SentencePiece itself knows no special-token strings.
    if (c["add_special"] || c["category"] == "special_text") continue;
    EXPECT_EQ(show(mistral->encode(text, false)), show(c["ids"].get<std::vector<int32_t>>()))
        << json(text).dump();
    EXPECT_EQ(mistral->decode(c["ids"].get<std::vector<int32_t>>(), true),
              c["decoded_skip_special"].get<std::string>());
    ++checked;
  }
  EXPECT_GT(checked, 50);
  EXPECT_EQ(mistral->bos_id(), 1);
  EXPECT_EQ(mistral->encode("Hello", true).front(), 1);
}

TEST(Tokenizer, SpecialTokensAndConfig) {
  const Tokenizer& llama3 = family("llama3");
  EXPECT_EQ(llama3.bos_id(), 128000);
  EXPECT_TRUE(llama3.config().add_bos);
  auto eos = llama3.eos_ids();
  EXPECT_NE(std::find(eos.begin(), eos.end(), 128009), eos.end());  // <|eot_id|>
  EXPECT_NE(std::find(eos.begin(), eos.end(), 128001), eos.end());  // <|end_of_text|>
  EXPECT_TRUE(llama3.is_special(128000));
  EXPECT_FALSE(llama3.is_special(9906));
  EXPECT_FALSE(llama3.config().chat_template.empty());
  const Tokenizer& qwen = family("qwen3");
  EXPECT_FALSE(qwen.bos_id().has_value());
  auto qeos = qwen.eos_ids();
  EXPECT_NE(std::find(qeos.begin(), qeos.end(), 151645), qeos.end());  // <|im_end|>
  auto geos = family("gemma3").eos_ids();
  EXPECT_EQ(geos, (std::vector<int32_t>{1, 106}));  // <eos>, <end_of_turn>
  EXPECT_EQ(family("gpt2").token_bytes(220), " ");  // "Ġ"
  EXPECT_EQ(family("mistral").token_bytes(*family("mistral").token_id("<0x0A>")), "\n");
  EXPECT_EQ(family("mistral").token_bytes(22557), " Hello");  // "▁Hello"
}

}  // namespace
}  // namespace runnel::tokenizer
