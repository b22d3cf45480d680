// Ops against hand-computed values, and every fused op against its composition.
#include "array/ops.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>

#include "base/error.h"
#include "base/half.h"

namespace runnel::array {
namespace {

std::vector<float> seq(size_t n, uint32_t seed) {
  std::vector<float> v(n);
  uint32_t x = seed * 747796405u + 2891336453u;
  for (float& f : v) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    f = static_cast<float>(x % 20001) / 10000.0f - 1.0f;
  }
  return v;
}

Array rand(const Shape& s, uint32_t seed) {
  return Array::from_floats(s, seq(static_cast<size_t>(shape_numel(s)), seed));
}

// |a - b| <= tol * (max|b| + 1) elementwise, tol a few ulps of f32 scaled by the reduction length.
void expect_close(const Array& a, const Array& b, float tol) {
  ASSERT_EQ(a.shape(), b.shape());
  auto x = a.to_floats();
  auto y = b.to_floats();
  float scale = 1.0f;
  for (float v : y) scale = std::max(scale, std::fabs(v));
  for (size_t i = 0; i < x.size(); ++i) {
    ASSERT_NEAR(x[i], y[i], tol * scale) << "at " << i;
  }
}

TEST(Ops, BroadcastingBinary) {
  Array a = Array::from_floats({2, 3}, std::vector<float>{1, 2, 3, 4, 5, 6});
  Array b = Array::from_floats({3}, std::vector<float>{10, 20, 30});
  Array c = Array::from_floats({2, 1}, std::vector<float>{100, 200});
  auto r = add(add(a, b), c).to_floats();
  EXPECT_EQ(r, (std::vector<float>{111, 122, 133, 214, 225, 236}));
  EXPECT_THROW(add(a, Array::from_floats({2}, std::vector<float>{1, 2})), Error);
}

TEST(Ops, LayoutOps) {
  Array a = Array::from_floats({2, 3}, std::vector<float>{1, 2, 3, 4, 5, 6});
  EXPECT_EQ(transpose(a, {1, 0}).to_floats(), (std::vector<float>{1, 4, 2, 5, 3, 6}));
  EXPECT_EQ(slice(a, 1, 1, 3).to_floats(), (std::vector<float>{2, 3, 5, 6}));
  EXPECT_EQ(concat({a, a}, 0).shape(), (Shape{4, 3}));
  EXPECT_EQ(concat({a, slice(a, 1, 0, 1)}, 1).to_floats(),
            (std::vector<float>{1, 2, 3, 1, 4, 5, 6, 4}));
  EXPECT_EQ(reshape(a, {3, -1}).shape(), (Shape{3, 2}));
  EXPECT_THROW(reshape(a, {4, -1}), Error);
  EXPECT_THROW(slice(a, 1, 2, 4), Error);
  EXPECT_THROW(transpose(a, {0, 0}), Error);
  auto h = astype(a, DType::kF16);
  EXPECT_EQ(h.dtype(), DType::kF16);
  EXPECT_EQ(astype(h, DType::kF32).to_floats(), a.to_floats());
}

TEST(Ops, ReductionsAndSoftmax) {
  Array a = Array::from_floats({2, 2}, std::vector<float>{1, 3, -1, 5});
  EXPECT_EQ(sum(a).to_floats(), (std::vector<float>{4, 4}));
  EXPECT_EQ(mean(a, false).to_floats(), (std::vector<float>{2, 2}));
  EXPECT_EQ(max(a).to_floats(), (std::vector<float>{3, 5}));
  auto s = softmax(a).to_floats();
  EXPECT_NEAR(s[0], 1 / (1 + std::exp(2.0f)), 1e-6);
  EXPECT_NEAR(s[0] + s[1], 1.0f, 1e-6);
}

TEST(Ops, MatmulMatchesNaive) {
  Array a = rand({3, 4, 5}, 1);
  Array b = rand({5, 6}, 2);
  auto y = matmul(a, b).to_floats();
  auto x = a.to_floats(), w = b.to_floats();
  for (int bi = 0; bi < 3; ++bi)
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 6; ++j) {
        float s = 0;
        for (int p = 0; p < 5; ++p)
          s += x[static_cast<size_t>(bi * 20 + i * 5 + p)] * w[static_cast<size_t>(p * 6 + j)];
        EXPECT_NEAR(y[static_cast<size_t>(bi * 24 + i * 6 + j)], s, 1e-5);
      }
}

TEST(Ops, LinearMatchesMatmulForEveryPlainWeightType) {
  Array x = rand({7, 64}, 3);
  Array w = rand({10, 64}, 4);
  Array expected = matmul(x, transpose(w, {1, 0}));
  expect_close(linear(x, w), expected, 64 * 1e-6f);
  // f16 / bf16 weights: compare with the same rounding applied to the f32 weights.
  for (DType dt : {DType::kF16, DType::kBF16}) {
    Array wq = astype(w, dt);
    Array wr = astype(wq, DType::kF32);
    expect_close(linear(x, wq), matmul(x, transpose(wr, {1, 0})), 64 * 1e-6f);
  }
}

// A fused projection computes exactly what its parts compute, packed (parts of whole 16-row
// groups) or not (a part of 8 rows keeps the plain layout); parts that differ are refused.
TEST(Ops, FusedLinearWeightEqualsItsParts) {
  Array x = rand({3, 64}, 9);
  for (int64_t n1 : {16, 8}) {
    Array a = rand({32, 64}, 1), b = rand({n1, 64}, 2);
    Array fused = prepare_fused_linear_weight({a, b});
    ASSERT_TRUE(fused.valid());
    EXPECT_EQ(fused.shape(), (Shape{32 + n1, 64}));
    const std::vector<float> got = linear(x, fused).to_floats();
    // The parts in the fused matrix's layout (packed parts sum in another order than plain rows).
    const bool packed = fused.dtype() != a.dtype();
    if (n1 == 8) {
      EXPECT_FALSE(packed);  // 8 rows are no whole group: the plain layout for all
    }
    const std::vector<float> ya = linear(x, packed ? prepare_linear_weight(a) : a).to_floats();
    const std::vector<float> yb = linear(x, packed ? prepare_linear_weight(b) : b).to_floats();
    for (int64_t i = 0; i < 3; ++i) {
      for (int64_t j = 0; j < 32 + n1; ++j) {
        const float want =
            j < 32 ? ya[static_cast<size_t>(i * 32 + j)] : yb[static_cast<size_t>(i * n1 + j - 32)];
        ASSERT_EQ(got[static_cast<size_t>(i * (32 + n1) + j)], want) << n1 << " " << i << " " << j;
      }
    }
  }
  EXPECT_FALSE(prepare_fused_linear_weight({rand({16, 64}, 1), rand({16, 32}, 2)}).valid());
}

// linear_add is the residual add fused into linear: the same bits as add(r, linear(x, w)), for a
// decode row and a prompt's rows (threaded add), f32 and (packed) f16 weights.
TEST(Ops, LinearAddEqualsAddOfLinearBitForBit) {
  for (int64_t m : {1, 3, 70}) {
    for (DType wt : {DType::kF32, DType::kF16}) {
      Array x = rand({m, 64}, static_cast<uint32_t>(m));
      Array w = prepare_linear_weight(astype(rand({512, 64}, 5), wt));
      Array r = rand({m, 512}, static_cast<uint32_t>(m + 9));
      const auto got = linear_add(x, w, r).to_floats();
      const auto want = add(r, linear(x, w)).to_floats();
      ASSERT_EQ(got.size(), want.size());
      for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(want[i]))
            << "m " << m << " " << dtype_name(wt) << " at " << i;
      }
    }
  }
  EXPECT_THROW(linear_add(rand({2, 64}, 1), rand({8, 64}, 2), rand({2, 9}, 3)), Error);
}

// norm_linear is linear of rms_norm: the same bits, for a decode row and a prompt's (threaded)
// rows, f32 and packed f16 weights.
TEST(Ops, NormLinearEqualsLinearOfRmsNormBitForBit) {
  for (int64_t m : {1, 3, 600}) {
    for (DType wt : {DType::kF32, DType::kF16}) {
      Array x = rand({m, 64}, static_cast<uint32_t>(m + 1));
      Array g = rand({64}, 17);
      Array w = prepare_linear_weight(astype(rand({128, 64}, 5), wt));
      const auto got = norm_linear(x, g, 1e-5f, w).to_floats();
      const auto want = linear(rms_norm(x, g, 1e-5f), w).to_floats();
      ASSERT_EQ(got.size(), want.size());
      for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(want[i]))
            << "m " << m << " " << dtype_name(wt) << " at " << i;
      }
    }
  }
  EXPECT_THROW(norm_linear(rand({2, 64}, 1), rand({32}, 2), 1e-5f, rand({8, 64}, 3)), Error);
}

TEST(Ops, EmbeddingPicksRows) {
  Array w = Array::from_floats({3, 2}, std::vector<float>{0, 1, 10, 11, 20, 21});
  std::vector<int32_t> ids = {2, 0, 2};
  Array e = embedding(w, Array::from_ints({3}, ids));
  EXPECT_EQ(e.shape(), (Shape{3, 2}));
  EXPECT_EQ(e.to_floats(), (std::vector<float>{20, 21, 0, 1, 20, 21}));
}

TEST(Fused, RmsNormMatchesComposition) {
  for (int64_t d : {1, 7, 64, 130}) {
    Array x = rand({5, d}, static_cast<uint32_t>(d));
    Array w = rand({d}, static_cast<uint32_t>(d + 1));
    expect_close(rms_norm(x, w, 1e-6f), composite::rms_norm(x, w, 1e-6f), 1e-5f);
  }
}

TEST(Fused, SwiGluMatchesComposition) {
  const std::vector<float> six = {6.0f};
  for (int64_t f : {1, 7, 64, 130}) {
    Array x = mul(rand({5, 2 * f}, static_cast<uint32_t>(f)), Array::from_floats({1}, six));
    expect_close(swiglu(x), composite::swiglu(x), 1e-5f);
  }
  Array big = mul(rand({300, 2 * 256}, 3), Array::from_floats({1}, six));  // threaded path
  expect_close(swiglu(big), composite::swiglu(big), 1e-5f);
  EXPECT_THROW(swiglu(rand({2, 3}, 1)), Error);
}

TEST(Fused, RopeMatchesComposition) {
  std::vector<int32_t> pos = {0, 1, 5, 17, 300};
  Array positions = Array::from_ints({5}, pos);
  for (bool neox : {false, true}) {
    for (int n_dims : {0, 8}) {
      RopeConfig cfg;
      cfg.neox = neox;
      cfg.n_dims = n_dims;
      cfg.theta = 10000.f;
      Array x = rand({5, 3, 16}, 11);
      expect_close(rope(x, positions, cfg), composite::rope(x, positions, cfg), 1e-5f);
      cfg.freq_scale = 0.5f;
      cfg.freq_factors.assign(static_cast<size_t>((n_dims == 0 ? 16 : n_dims) / 2), 1.0f);
      cfg.freq_factors[0] = 8.0f;
      expect_close(rope(x, positions, cfg), composite::rope(x, positions, cfg), 1e-5f);
    }
  }
}

// head_rope is rope (after rms_norm per head, when given a weight) of the heads sliced out of a
// wider projection: equal bit for bit to the four ops it replaces, for a decode step's single
// token and a prompt's (threaded) rows, neox and normal pairs, partial rotation, any column.
TEST(Fused, HeadRopeAndHeadsEqualTheOpsTheyReplace) {
  for (int64_t tokens : {1, 5, 40}) {
    std::vector<int32_t> pos(static_cast<size_t>(tokens));
    for (int64_t t = 0; t < tokens; ++t)
      pos[static_cast<size_t>(t)] = static_cast<int32_t>(3 * t + 7);
    Array positions = Array::from_ints({tokens}, pos);
    const int64_t heads = 3, d = 16, width = 7 * d + 5;
    Array x = rand({tokens, width}, static_cast<uint32_t>(tokens));
    Array w = rand({d}, 99);
    for (bool neox : {false, true}) {
      for (int n_dims : {0, 8}) {
        RopeConfig cfg;
        cfg.neox = neox;
        cfg.n_dims = n_dims;
        for (int64_t col0 : {int64_t{0}, int64_t{2 * d}, width - heads * d}) {
          Array heads_x = reshape(slice(x, -1, col0, col0 + heads * d), {tokens, heads, d});
          for (bool norm : {false, true}) {
            Array want = rope(norm ? rms_norm(heads_x, w, 1e-6f) : heads_x, positions, cfg);
            Array got = head_rope(x, col0, heads, d, norm ? w : Array(), 1e-6f, positions, cfg);
            ASSERT_EQ(got.shape(), want.shape());
            const auto a = got.to_floats(), b = want.to_floats();
            for (size_t i = 0; i < a.size(); ++i) {
              ASSERT_EQ(std::bit_cast<uint32_t>(a[i]), std::bit_cast<uint32_t>(b[i]))
                  << "tokens " << tokens << " neox " << neox << " n_dims " << n_dims << " col0 "
                  << col0 << " norm " << norm << " at " << i;
            }
          }
        }
      }
    }
  }
  for (int64_t tokens : {1, 600}) {  // heads: the slice and reshape it replaces (600: threaded)
    Array x = rand({tokens, 120}, 4);
    EXPECT_EQ(heads(x, 40, 2, 32).to_floats(),
              reshape(slice(x, -1, 40, 104), {tokens, 2, 32}).to_floats());
  }
  EXPECT_THROW(heads(rand({2, 40}, 1), 30, 1, 16), Error);
  Array x = rand({2, 40}, 1);
  Array p = Array::from_ints({2}, std::vector<int32_t>{0, 1});
  EXPECT_THROW(head_rope(x, 32, 1, 16, Array(), 1e-6f, p, RopeConfig{}), Error);  // past the end
  EXPECT_THROW(head_rope(x, 0, 2, 16, rand({8}, 2), 1e-6f, p, RopeConfig{}), Error);  // norm size
  EXPECT_THROW(head_rope(rand({2, 2, 20}, 3), 0, 1, 16, Array(), 1e-6f, p, RopeConfig{}), Error);
}

TEST(Fused, RopeRotatesPairsAsDocumented) {
  // One head of dim 4 at position 1 with theta 1: every pair rotates by 1 radian.
  RopeConfig cfg;
  cfg.theta = 1.0f;
  std::vector<int32_t> one = {1};
  Array x = Array::from_floats({1, 1, 4}, std::vector<float>{1, 0, 1, 0});
  auto y = rope(x, Array::from_ints({1}, one), cfg).to_floats();
  EXPECT_NEAR(y[0], std::cos(1.0f), 1e-6);
  EXPECT_NEAR(y[1], std::sin(1.0f), 1e-6);
  cfg.neox = true;  // pairs (0,2) and (1,3)
  auto z = rope(x, Array::from_ints({1}, one), cfg).to_floats();
  EXPECT_NEAR(z[0], std::cos(1.0f) - std::sin(1.0f), 1e-6);
  EXPECT_NEAR(z[2], 1.0f * std::cos(1.0f) + 1.0f * std::sin(1.0f), 1e-6);
}

TEST(Fused, AttentionMatchesComposition) {
  struct Case {
    int64_t T, H, Hkv, D, S, n_kv, q_pos0;
  };
  for (Case c : {Case{1, 4, 4, 8, 16, 1, 0}, Case{1, 8, 2, 16, 32, 20, 19},
                 Case{5, 4, 1, 8, 8, 5, 0}, Case{3, 6, 3, 32, 64, 40, 37}}) {
    Array q = rand({c.T, c.H, c.D}, 21);
    Array k = rand({c.S, c.Hkv, c.D}, 22);
    Array v = rand({c.S, c.Hkv, c.D}, 23);
    float scale = 1.0f / std::sqrt(static_cast<float>(c.D));
    expect_close(attention(q, k, v, c.n_kv, c.q_pos0, scale),
                 composite::attention(q, k, v, c.n_kv, c.q_pos0, scale), 1e-5f);
    Array k16 = astype(k, DType::kF16), v16 = astype(v, DType::kF16);
    expect_close(attention(q, k16, v16, c.n_kv, c.q_pos0, scale),
                 composite::attention(q, k16, v16, c.n_kv, c.q_pos0, scale), 1e-5f);
  }
}

TEST(Fused, CacheWriteThenAttentionSeesTheWrite) {
  Array cache = zeros({4, 1, 2});
  pin(cache, MemoryKind::kCache);
  Array upd = Array::from_floats({2, 1, 2}, std::vector<float>{1, 2, 3, 4});
  Array c = cache_write(cache, upd, 1);
  EXPECT_EQ(c.to_floats(), (std::vector<float>{0, 0, 1, 2, 3, 4, 0, 0}));
  EXPECT_EQ(cache.to_floats(), c.to_floats());  // in place
  EXPECT_THROW(cache_write(cache, upd, 3), Error);
  unpin(cache);
}

}  // namespace
}  // namespace runnel::array
