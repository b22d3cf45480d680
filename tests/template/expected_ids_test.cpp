// The rendered prompts of the golden cases, tokenized (add_special: false) by the family's real
// tokenizer, give the expected ids: the template and tokenizer layers agree end to end.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "base/mmap.h"
#include "testing/testing.h"
#include "tokenizer/tokenizer.h"

namespace runnel {
namespace {
namespace fs = std::filesystem;

TEST(ExpectedIds, EveryCaseWithIdsTokenizesToThem) {
  const fs::path root = fs::path(testing::shared_dir()) / "testdata";
  std::map<std::string, std::unique_ptr<tokenizer::Tokenizer>> toks;
  int checked = 0;
  for (const auto& family : fs::directory_iterator(root / "chat_templates")) {
    for (const std::string& line : testing::read_lines((family.path() / "cases.jsonl").string())) {
      auto c = nlohmann::json::parse(line);
      if (!c.contains("expected_ids") || c["expected"].is_null()) continue;
      const std::string tok_dir = (root / c["tokenizer"].get<std::string>()).string();
      auto& tok = toks[tok_dir];
      if (!tok) tok = tokenizer::Tokenizer::load(tok_dir);
      auto ids = tok->encode(c["expected"].get<std::string>(), false);
      EXPECT_EQ(ids, c["expected_ids"].get<std::vector<int32_t>>())
          << family.path().filename() << " " << c["id"];
      ++checked;
    }
  }
  EXPECT_GT(checked, 20);
}

}  // namespace
}  // namespace runnel
