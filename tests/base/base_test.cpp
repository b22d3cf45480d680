#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "base/cpu.h"
#include "base/dtype.h"
#include "base/env.h"
#include "base/error.h"
#include "base/half.h"
#include "base/mmap.h"
#include "testing/testing.h"

namespace runnel {
namespace {

TEST(Error, CarriesComponentAndMessage) {
  try {
    fail("gguf", "tensor ", "blk.0.attn_q.weight", " is truncated");
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.component(), "gguf");
    EXPECT_EQ(e.message(), "tensor blk.0.attn_q.weight is truncated");
    EXPECT_STREQ(e.what(), "[gguf] tensor blk.0.attn_q.weight is truncated");
  }
}

TEST(Half, F16RoundTripsEveryValue) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    uint16_t v = static_cast<uint16_t>(h);
    float f = f16_to_f32(v);
    if (std::isnan(f)) continue;
    EXPECT_EQ(f32_to_f16(f), v) << "h=" << h;
  }
}

TEST(Half, F16RoundsToNearestEven) {
  // 1 + 2^-11 lies exactly between 1 and the next f16 (1 + 2^-10): ties go to even (1).
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);
  EXPECT_EQ(f32_to_f16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7bff);
  EXPECT_EQ(f32_to_f16(70000.0f), 0x7c00);
  EXPECT_EQ(f32_to_f16(-0.0f), 0x8000);
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));
}

TEST(Half, Bf16) {
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.5f)), 1.5f);
  EXPECT_EQ(f32_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);  // tie to even
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
}

TEST(DType, SizesFollowGgml) {
  EXPECT_EQ(row_bytes(DType::kQ8_0, 64), 68u);
  EXPECT_EQ(row_bytes(DType::kQ4_0, 32), 18u);
  EXPECT_EQ(row_bytes(DType::kQ4_K, 256), 144u);
  EXPECT_EQ(row_bytes(DType::kQ6_K, 512), 420u);
  EXPECT_EQ(row_bytes(DType::kF16, 3), 6u);
  DType t;
  EXPECT_TRUE(parse_dtype("Q8_0", &t));
  EXPECT_EQ(t, DType::kQ8_0);
  EXPECT_FALSE(parse_dtype("q9_0", &t));
}

TEST(Mmap, MapsAndNamesMissingFiles) {
  std::string dir = testing::make_temp_dir("mmap");
  std::string path = dir + "/f.bin";
  write_file_atomic(path, "hello");
  MappedFile f(path);
  EXPECT_EQ(f.view(), "hello");
  try {
    MappedFile missing(dir + "/nope.bin");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("nope.bin"), std::string::npos);
  }
  write_file_atomic(dir + "/empty", "");
  MappedFile empty(dir + "/empty");
  EXPECT_EQ(empty.size(), 0u);
}

TEST(Mmap, LargeAllocationsAskForHugePages) {
  size_t cap = 0;
  void* small = alloc_maybe_huge(1000, &cap);
  ASSERT_NE(small, nullptr);
  EXPECT_EQ(cap, 1024u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(small) % 64, 0u);
  std::free(small);
  constexpr size_t kHuge = size_t{2} << 20;
  void* big = alloc_maybe_huge(5 * kHuge + 1, &cap);
  ASSERT_NE(big, nullptr);
  EXPECT_EQ(cap, 6 * kHuge);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(big) % kHuge, 0u);
  // MADV_HUGEPAGE shows as "hg" (whether the kernel then finds huge pages is its own business).
  const std::string flags = testing::smaps_line(big, "VmFlags:");
  EXPECT_NE(flags.find(" hg"), std::string::npos) << flags;
  std::free(big);
}

TEST(Env, ParsesByteSizes) {
  EXPECT_EQ(parse_byte_size("512MiB"), 512ll << 20);
  EXPECT_EQ(parse_byte_size("2G"), 2ll << 30);
  EXPECT_EQ(parse_byte_size("100"), 100);
  EXPECT_THROW(parse_byte_size("lots"), Error);
  EXPECT_THROW(parse_byte_size("5 parsecs"), Error);
}

TEST(Cpu, DetectsSomething) {
  const CpuFeatures& f = cpu_features();
  // AVX-512 implies AVX2 on every CPU that has shipped; the OS check applies to both.
  if (f.has_avx512()) {
    EXPECT_TRUE(f.avx2);
  }
  EXPECT_FALSE(f.vendor.empty());
}

}  // namespace
}  // namespace runnel
