// WeightSource::get_linear hands the file's pages under a packed matrix back to the OS, for GGUF,
// safetensors and MLX-quantized files alike: the resident size of the file's mapping
// (/proc/self/smaps) drops by about the tensor's bytes, and the packed copy holds the values.
#include "models/weights.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "base/half.h"
#include "formats/gguf.h"
#include "formats/safetensors.h"
#include "kernels/cpu/packed.h"
#include "testing/testing.h"

namespace runnel::models {
namespace {

constexpr int64_t kRows = 256, kCols = 4096;

// Resident bytes of the mapping that contains p, or 0 when none does.
size_t mapping_rss(const void* p) {
  const std::string rss = runnel::testing::smaps_line(p, "Rss:");
  return rss.empty() ? 0 : std::stoul(rss.substr(4)) * 1024;
}

// Reads every page of [p, p + n) so it is resident in this process.
void touch(const void* p, size_t n) {
  const volatile uint8_t* b = static_cast<const uint8_t*>(p);
  uint8_t sum = 0;
  for (size_t i = 0; i < n; i += 4096) sum = static_cast<uint8_t>(sum + b[i]);
  (void)sum;
}

std::vector<uint8_t> random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> v(n);
  for (uint8_t& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

// get_linear on `canonical` of w: when the active kernels packed it, the mapping under `raw`
// (the file's tensor, n bytes) shrinks by at least half of n.
void expect_pages_released(const WeightSource& w, const std::string& canonical) {
  const array::Array raw = w.find(canonical);
  ASSERT_TRUE(raw.valid());
  touch(raw.raw(), raw.n_bytes());
  const size_t before = mapping_rss(raw.raw());
  ASSERT_GE(before, raw.n_bytes() / 2) << "the file's pages were not resident to begin with";
  const array::Array packed = w.get_linear(canonical, {kRows, kCols});
  if (packed.dtype() == raw.dtype() || packed.dtype() == DType::kF32) {
    GTEST_SKIP() << "the active kernels keep " << dtype_name(raw.dtype()) << " unpacked";
  }
  const size_t after = mapping_rss(raw.raw());
  EXPECT_LE(after + raw.n_bytes() / 2, before)
      << canonical << ": resident " << before << " -> " << after << " bytes";
  // The file is still readable after its pages went (they fault back in from the file), and
  // the packed copy holds exactly its values.
  std::vector<float> got(static_cast<size_t>(kRows * kCols));
  kernels::cpu::unpack_weights_f32(packed.dtype(), packed.raw(), kRows, kCols, got.data());
  EXPECT_EQ(got, w.get(canonical, {kRows, kCols}).to_floats()) << canonical;
}

std::vector<uint16_t> random_f16(size_t n, uint32_t seed, float lo, float hi) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> v(lo, hi);
  std::vector<uint16_t> out(n);
  for (uint16_t& h : out) h = f32_to_f16(v(rng));
  return out;
}

TEST(WeightSource, GgufPagesUnderAPackedMatrixAreReleased) {
  // Q4_0 (packed by both the AVX2 and the AVX-512 kernels) blocks with a valid f16 scale and
  // random quants.
  const size_t blocks = static_cast<size_t>(kRows * kCols / 32);
  std::vector<uint8_t> q = random_bytes(blocks * 18, 1);
  for (size_t b = 0; b < blocks; ++b) {
    const uint16_t d = f32_to_f16(0.01f + 0.001f * static_cast<float>(b % 5));
    std::memcpy(q.data() + 18 * b, &d, 2);
  }
  formats::GgufWriter g;
  g.set_string("general.architecture", "llama");
  g.add_tensor("blk.0.ffn_down.weight", DType::kQ4_0, {kRows, kCols}, q.data(), q.size());
  const std::string path = runnel::testing::make_temp_dir("weights") + "/m.gguf";
  g.write(path, 4096);
  auto w = WeightSource::from_gguf(formats::GgufFile::open(path));
  expect_pages_released(*w, "blk.0.ffn_down.weight");
}

TEST(WeightSource, SafetensorsPagesUnderAPackedMatrixAreReleased) {
  const std::string dir = runnel::testing::make_temp_dir("weights_st");
  const std::vector<uint16_t> h = random_f16(static_cast<size_t>(kRows * kCols), 2, -1, 1);
  formats::write_safetensors(dir + "/model.safetensors", {{"model.layers.0.mlp.down_proj.weight",
                                                           DType::kF16,
                                                           {kRows, kCols},
                                                           h.data(),
                                                           h.size() * 2}});
  auto w = WeightSource::from_hf_dir(dir);
  expect_pages_released(*w, "blk.0.ffn_down.weight");
}

TEST(WeightSource, MlxPagesUnderAPackedMatrixAreReleased) {
  const std::string dir = runnel::testing::make_temp_dir("weights_mlx");
  std::ofstream(dir + "/config.json") << R"({"quantization": {"group_size": 64, "bits": 4}})";
  const std::vector<uint8_t> words = random_bytes(static_cast<size_t>(kRows * kCols / 2), 3);
  const std::vector<uint16_t> scales =
      random_f16(static_cast<size_t>(kRows * kCols / 64), 4, 0.001f, 0.01f);
  const std::vector<uint16_t> biases = random_f16(scales.size(), 5, -0.05f, 0.0f);
  const std::string base = "model.layers.0.mlp.down_proj.";
  formats::write_safetensors(
      dir + "/model.safetensors",
      {{base + "weight", DType::kU32, {kRows, kCols / 8}, words.data(), words.size()},
       {base + "scales", DType::kF16, {kRows, kCols / 64}, scales.data(), scales.size() * 2},
       {base + "biases", DType::kF16, {kRows, kCols / 64}, biases.data(), biases.size() * 2}});
  auto w = WeightSource::from_hf_dir(dir);
  expect_pages_released(*w, "blk.0.ffn_down.weight");
}

}  // namespace
}  // namespace runnel::models
