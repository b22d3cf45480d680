// Broken model files are clear errors that name the file and the problem, never crashes.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/mmap.h"
#include "model_testing.h"
#include "testing/testing.h"

namespace runnel::models {
namespace {
namespace fs = std::filesystem;

std::string error_of(const std::string& path) {
  try {
    load_model(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

void expect_error(const std::string& path, const std::string& needle) {
  std::string e = error_of(path);
  EXPECT_NE(e.find(needle), std::string::npos) << "error: '" << e << "' lacks '" << needle << "'";
}

class BadFiles : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(runnel::testing::make_temp_dir("bad"));
    testing::gen_tiny_model(
        "--arch LlamaForCausalLM --hidden 32 --layers 1 --heads 2 --kv-heads 1 "
        "--ffn 64 --vocab 300 --format gguf --dtype f32",
        *dir_ + "/good.gguf");
    testing::gen_tiny_model(
        "--arch LlamaForCausalLM --hidden 32 --layers 1 --heads 2 --kv-heads 1 "
        "--ffn 64 --vocab 300 --format safetensors --dtype f32",
        *dir_ + "/good_hf");
  }
  static std::string* dir_;
};
std::string* BadFiles::dir_ = nullptr;

TEST_F(BadFiles, GoodFilesLoad) {
  EXPECT_EQ(error_of(*dir_ + "/good.gguf"), "");
  EXPECT_EQ(error_of(*dir_ + "/good_hf"), "");
}

TEST_F(BadFiles, TruncatedGguf) {
  std::string bytes = read_file(*dir_ + "/good.gguf");
  for (size_t cut : {size_t{3}, size_t{20}, bytes.size() / 3, bytes.size() - 1}) {
    std::string p = *dir_ + "/cut.gguf";
    write_file_atomic(p, bytes.substr(0, cut));
    std::string e = error_of(p);
    EXPECT_NE(e.find("cut.gguf"), std::string::npos) << "cut " << cut << ": " << e;
  }
}

TEST_F(BadFiles, MissingPathAndNotAModel) {
  expect_error(*dir_ + "/nothing-here.gguf", "no such file");
  fs::create_directories(*dir_ + "/empty");
  expect_error(*dir_ + "/empty", "no config.json");
}

TEST_F(BadFiles, ConfigMissingHiddenSize) {
  std::string d = *dir_ + "/nohidden";
  fs::copy(*dir_ + "/good_hf", d,
           fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  auto j = nlohmann::json::parse(read_file(d + "/config.json"));
  j.erase("hidden_size");
  write_file_atomic(d + "/config.json", j.dump());
  expect_error(d, "hidden_size");
}

TEST_F(BadFiles, UnsupportedArchitecture) {
  std::string d = *dir_ + "/arch";
  fs::copy(*dir_ + "/good_hf", d,
           fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  auto j = nlohmann::json::parse(read_file(d + "/config.json"));
  j["architectures"] = {"FancyNewForCausalLM"};
  write_file_atomic(d + "/config.json", j.dump());
  expect_error(d, "FancyNewForCausalLM is not supported");
}

TEST_F(BadFiles, SafetensorsHeaderThatLiesAboutSizes) {
  std::string d = *dir_ + "/lying";
  fs::copy(*dir_ + "/good_hf", d,
           fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  std::string bytes = read_file(d + "/model.safetensors");
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  auto header = nlohmann::json::parse(bytes.substr(8, n));
  header["model.norm.weight"]["shape"] = {64};  // twice the bytes its offsets cover
  std::string h = header.dump();
  h.resize(n, ' ');
  std::string out = bytes.substr(0, 8) + h + bytes.substr(8 + n);
  write_file_atomic(d + "/model.safetensors", out);
  expect_error(d, "model.norm.weight");
}

TEST_F(BadFiles, WrongTensorShapeNamesLayerAndTensor) {
  std::string d = *dir_ + "/shape";
  fs::copy(*dir_ + "/good_hf", d,
           fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  auto j = nlohmann::json::parse(read_file(d + "/config.json"));
  j["intermediate_size"] = 65;
  write_file_atomic(d + "/config.json", j.dump());
  expect_error(d,
               "layer 0: model.layers.0.mlp.gate_proj.weight has shape (64,32), expected (65,32)");
}

}  // namespace
}  // namespace runnel::models
