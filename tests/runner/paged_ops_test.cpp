// array::paged_cache_write / paged_attention against the contiguous cache_write / attention, and
// their argument checks.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "array/ops.h"
#include "base/error.h"

namespace runnel::array {
namespace {

Array random_array(const Shape& s, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d;
  std::vector<float> v(static_cast<size_t>(shape_numel(s)));
  for (float& x : v) x = d(rng);
  return Array::from_floats(s, v);
}

TEST(PagedOps, MatchContiguousAttentionAcrossBlocks) {
  const int64_t t = 37, h = 4, hkv = 2, d = 8, bt = 16;
  for (DType dt : {DType::kF32, DType::kF16}) {
    Array q = random_array({t, h, d}, 1), k = random_array({t, hkv, d}, 2),
          v = random_array({t, hkv, d}, 3);
    // Contiguous reference, written in two parts.
    Array kc = Array::empty({64, hkv, d}, dt), vc = Array::empty({64, hkv, d}, dt);
    Array k1 = cache_write(kc, slice(k, 0, 0, 20), 0), v1 = cache_write(vc, slice(v, 0, 0, 20), 0);
    eval({k1, v1});
    Array k2 = cache_write(kc, slice(k, 0, 20, t), 20),
          v2 = cache_write(vc, slice(v, 0, 20, t), 20);
    std::vector<float> ref = attention(slice(q, 0, 20, t), k2, v2, t, 20, 0.3f).to_floats();

    std::vector<std::vector<char>> storage(6, std::vector<char>(bt * hkv * d * 4));
    PagedKvBlocks blocks;
    blocks.block_tokens = bt;
    blocks.dtype = dt;
    for (int b = 0; b < 3; ++b) {
      blocks.k.push_back(storage[static_cast<size_t>(b)].data());
      blocks.v.push_back(storage[static_cast<size_t>(b + 3)].data());
    }
    eval(paged_cache_write(slice(k, 0, 0, 20), slice(v, 0, 0, 20), blocks, 0));
    Array w = paged_cache_write(slice(k, 0, 20, t), slice(v, 0, 20, t), blocks, 20);
    std::vector<float> got =
        paged_attention(slice(q, 0, 20, t), blocks, hkv, t, 20, 0.3f, {w}).to_floats();
    ASSERT_EQ(got.size(), ref.size());
    EXPECT_EQ(std::memcmp(got.data(), ref.data(), got.size() * sizeof(float)), 0) << dtype_name(dt);
  }
}

TEST(PagedOps, RejectBadArguments) {
  std::vector<char> a(16 * 2 * 8 * 4), b(a.size());
  PagedKvBlocks blocks{{a.data()}, {b.data()}, 16, DType::kF32};
  Array k = random_array({4, 2, 8}, 4);
  EXPECT_THROW(paged_cache_write(k, k, blocks, 13), Error);  // past the only block
  EXPECT_THROW(paged_cache_write(k, random_array({4, 2, 4}, 5), blocks, 0), Error);
  Array q = random_array({4, 4, 8}, 6);
  EXPECT_THROW(paged_attention(q, blocks, 3, 4, 0, 1.f, {}), Error);    // heads not a multiple
  EXPECT_THROW(paged_attention(q, blocks, 2, 17, 13, 1.f, {}), Error);  // beyond the blocks
  EXPECT_THROW(paged_attention(q, blocks, 2, 3, 0, 1.f, {}), Error);    // queries past n_kv
  PagedKvBlocks bad = blocks;
  bad.dtype = DType::kI32;
  EXPECT_THROW(paged_cache_write(k, k, bad, 0), Error);
}

}  // namespace
}  // namespace runnel::array
