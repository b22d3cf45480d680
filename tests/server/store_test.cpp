// The model store: name validation, content-addressed blobs shared between names, resolution of
// MODEL references, removal with garbage collection.
#include "server/store.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "testing/testing.h"

namespace runnel::server {
namespace {
namespace fs = std::filesystem;

void write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

TEST(StoreNames, Validation) {
  EXPECT_EQ(normalize_model_name("qwen3"), "qwen3:latest");
  EXPECT_EQ(normalize_model_name("qwen3:0.6b"), "qwen3:0.6b");
  EXPECT_EQ(normalize_model_name("library/llama-3.2_x:Q4"), "library/llama-3.2_x:Q4");
  for (const std::string& bad :
       std::vector<std::string>{"", "../x", "/abs", "a/../b", "a/b/c", ".hidden", "a:", ":t",
                                "a:b:c", "a b", "a\\b", "x:..", "a/", std::string("a\0b", 3)}) {
    EXPECT_FALSE(is_valid_model_name(bad)) << bad;
    EXPECT_THROW(normalize_model_name(bad), Error) << bad;
  }
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::make_temp_dir("store");
    gguf_ = fs::path(dir_) / "src" / "tiny.gguf";
    write(gguf_, std::string("GGUF") + std::string(1000, 'x'));
    folder_ = fs::path(dir_) / "src" / "hf";
    write(folder_ / "config.json", R"({"architectures":["LlamaForCausalLM"]})");
    write(folder_ / "model.safetensors", std::string(500, 'w'));
    write(folder_ / "tokenizer.json", "{}");
    write(folder_ / ".hidden", "skip me");
  }
  std::string dir_;
  fs::path gguf_, folder_;
};

TEST_F(StoreTest, CreateSharesBlobsAndResolves) {
  ModelStore store(dir_ + "/models");
  int64_t last_done = -1, last_total = -1;
  Manifest a = store.create("a", gguf_.string(), [&](int64_t d, int64_t t) {
    last_done = d;
    last_total = t;
  });
  EXPECT_EQ(a.name, "a:latest");
  EXPECT_EQ(a.format, "gguf");
  EXPECT_EQ(a.total_size(), 1004);
  EXPECT_EQ(last_done, 1004);
  EXPECT_EQ(last_total, 1004);
  store.create("b:v2", gguf_.string());
  int n_blobs = 0;
  for (auto& e : fs::directory_iterator(dir_ + "/models/blobs")) n_blobs += e.is_regular_file();
  EXPECT_EQ(n_blobs, 1);  // same bytes, one blob

  ResolvedModel r = store.resolve("a");
  EXPECT_EQ(r.name, "a:latest");
  EXPECT_EQ(fs::path(r.path).filename(), "tiny.gguf");
  EXPECT_EQ(fs::canonical(r.path), fs::canonical(store.blob_path(a.files[0].digest)));
  EXPECT_EQ(r.size_bytes, 1004);
  std::ifstream in(r.path);
  std::string head(4, ' ');
  in.read(head.data(), 4);
  EXPECT_EQ(head, "GGUF");

  auto names = store.list();
  ASSERT_EQ(names.size(), 2u);
  EXPECT_EQ(names[0].name, "a:latest");
  EXPECT_EQ(names[1].name, "b:v2");

  // Removing one name keeps the shared blob; removing the last drops it.
  store.remove("a");
  EXPECT_TRUE(fs::exists(store.blob_path(a.files[0].digest)));
  EXPECT_THROW(store.remove("a"), NotFoundError);
  std::string blob = store.blob_path(a.files[0].digest);
  store.remove("b:v2");
  EXPECT_FALSE(fs::exists(blob));
  EXPECT_TRUE(store.list().empty());
}

TEST_F(StoreTest, FolderModelsBecomeLinkedTrees) {
  ModelStore store(dir_ + "/models");
  Manifest m = store.create("hf", folder_.string());
  EXPECT_EQ(m.format, "safetensors");
  EXPECT_EQ(m.files.size(), 3u);  // hidden files skipped
  ResolvedModel r = store.resolve("hf:latest");
  EXPECT_TRUE(fs::is_directory(r.path));
  std::ifstream cfg(fs::path(r.path) / "config.json");
  std::string text((std::istreambuf_iterator<char>(cfg)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("LlamaForCausalLM"), std::string::npos);
}

TEST_F(StoreTest, CopyAndPaths) {
  ModelStore store(dir_ + "/models");
  store.create("a", gguf_.string());
  store.copy("a", "ns/c:tag");
  EXPECT_TRUE(store.find("ns/c:tag").has_value());
  EXPECT_THROW(store.copy("missing", "d"), NotFoundError);
  EXPECT_THROW(store.copy("a", "../evil"), Error);
  EXPECT_THROW(store.create("/abs", gguf_.string()), Error);
  EXPECT_FALSE(fs::exists(dir_ + "/evil"));

  // Paths resolve without the store.
  EXPECT_EQ(store.resolve(gguf_.string()).format, "gguf");
  EXPECT_EQ(store.resolve(folder_.string()).format, "safetensors");
  EXPECT_THROW(store.resolve("nothere"), NotFoundError);
  EXPECT_THROW(store.resolve(dir_ + "/nothere.gguf"), NotFoundError);
  EXPECT_THROW(store.resolve(std::string("a\0b", 3)), Error);
}

TEST_F(StoreTest, CreateRejectsBadSources) {
  ModelStore store(dir_ + "/models");
  write(fs::path(dir_) / "src" / "notes.txt", "hello");
  EXPECT_THROW(store.create("x", dir_ + "/src/notes.txt"), Error);
  EXPECT_THROW(store.create("x", dir_ + "/src/missing.gguf"), Error);
  fs::create_directories(fs::path(dir_) / "empty");
  EXPECT_THROW(store.create("x", dir_ + "/empty"), Error);
  EXPECT_TRUE(store.list().empty());
}

}  // namespace
}  // namespace runnel::server
