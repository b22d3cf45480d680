// Cross-checks against an independent implementation: tools/gen_tiny_model.py (numpy) writes the
// same tiny model as GGUF f32, q8_0 and q4_0 and as a safetensors folder. Our readers must accept
// them, and our GGML-rule Q8_0/Q4_0 quantizers must reproduce numpy's blocks byte for byte.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "base/strings.h"
#include "formats/gguf.h"
#include "formats/safetensors.h"
#include "kernels/cpu/quant.h"
#include "testing/testing.h"

namespace runnel::formats {
namespace {

// Generates the models once per process; empty when python3/numpy are unavailable.
const std::string& tiny_dir() {
  static const std::string dir = [] {
    std::string d = testing::make_temp_dir("tiny");
    const std::string tool = testing::source_dir() + "/tools/gen_tiny_model.py";
    const std::pair<const char*, const char*> runs[] = {
        {"--format gguf --dtype f32", "f32.gguf"},
        {"--format gguf --dtype q8_0", "q8_0.gguf"},
        {"--format gguf --dtype q4_0", "q4_0.gguf"},
        {"--format safetensors", "st"},
    };
    for (const auto& [args, out] : runs) {
      std::string cmd = str_cat("/usr/bin/python3 ", tool, " ", args, " --out ", d, "/", out,
                                " > /dev/null 2>&1");
      if (std::system(cmd.c_str()) != 0) return std::string();
    }
    return d;
  }();
  return dir;
}

void check_quantized_file(const std::string& name, DType qtype) {
  auto f32 = GgufFile::open(tiny_dir() + "/f32.gguf");
  auto q = GgufFile::open(tiny_dir() + "/" + name);
  EXPECT_EQ(q->architecture(), "llama");
  ASSERT_EQ(q->tensors().size(), f32->tensors().size());
  int n_quantized = 0;
  for (const GgufTensor& t : q->tensors()) {
    const GgufTensor* ref = f32->find_tensor(t.name);
    ASSERT_NE(ref, nullptr) << t.name;
    EXPECT_EQ(t.shape, ref->shape) << t.name;
    ASSERT_EQ(ref->dtype, DType::kF32);
    if (t.dtype != qtype) continue;
    ++n_quantized;
    const size_t n = static_cast<size_t>(t.n_elements());
    std::vector<uint8_t> mine(row_bytes(qtype, n));
    ASSERT_TRUE(kernels::cpu::quantize_row(qtype, reinterpret_cast<const float*>(ref->data),
                                           mine.data(), n));
    ASSERT_EQ(mine.size(), t.n_bytes);
    EXPECT_EQ(std::memcmp(mine.data(), t.data, t.n_bytes), 0) << t.name;
    // And the file's blocks dequantize close to the f32 weights (half a step of amax / 127 or 8).
    std::vector<float> y(n);
    kernels::cpu::dequantize_row(qtype, t.data, y.data(), n);
    const auto* x = reinterpret_cast<const float*>(ref->data);
    for (size_t b = 0; b < n; b += 32) {
      float amax = 0;
      for (size_t i = b; i < b + 32; ++i) amax = std::max(amax, std::fabs(x[i]));
      const float bound = amax * (qtype == DType::kQ8_0 ? 0.5f / 127 + 1e-3f : 1.0f / 8 + 1e-2f);
      for (size_t i = b; i < b + 32; ++i) ASSERT_LE(std::fabs(y[i] - x[i]), bound) << t.name;
    }
  }
  EXPECT_GT(n_quantized, 5);
}

// One test, so that ctest (a process per test) runs the generator once.
TEST(TinyModel, ReadersAndQuantizersMatchNumpy) {
  if (tiny_dir().empty()) GTEST_SKIP() << "python3 with numpy is not available";
  {
    SCOPED_TRACE("q8_0");
    check_quantized_file("q8_0.gguf", DType::kQ8_0);
  }
  {
    SCOPED_TRACE("q4_0");
    check_quantized_file("q4_0.gguf", DType::kQ4_0);
  }
  auto st = SafetensorsModel::open_dir(tiny_dir() + "/st");
  auto gg = GgufFile::open(tiny_dir() + "/f32.gguf");
  const SafeTensor* emb = st->find("model.embed_tokens.weight");
  const GgufTensor* g = gg->find_tensor("token_embd.weight");
  ASSERT_NE(emb, nullptr);
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(emb->shape, g->shape);
  ASSERT_EQ(emb->dtype, DType::kF32);
  ASSERT_EQ(emb->n_bytes, g->n_bytes);
  EXPECT_EQ(std::memcmp(emb->data, g->data, g->n_bytes), 0);
}

}  // namespace
}  // namespace runnel::formats
