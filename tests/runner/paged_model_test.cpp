// The model's forward over paged KV (the prefix cache's blocks) against the contiguous KvCache:
// bit-identical logits for one chunk, many chunks, and a prefix restored from the cache.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "array/ops.h"
#include "base/error.h"
#include "cache/prefix_cache.h"
#include "models/model.h"
#include "runner_testing.h"

namespace runnel::runner::testing {
namespace {

using array::Array;

struct PagedRun {
  models::Model& model;
  cache::Sequence& seq;
  std::vector<array::PagedKvBlocks> blocks;

  // Feeds `tokens` as one step; returns the logits rows of every token.
  std::vector<float> feed(std::vector<int32_t> tokens) {
    seq.append(tokens);
    const cache::KvLayout& layout = seq_layout;
    blocks.assign(static_cast<size_t>(layout.n_layers), {});
    for (int l = 0; l < layout.n_layers; ++l) {
      auto& b = blocks[static_cast<size_t>(l)];
      for (int i = 0; i < seq.n_blocks(); ++i) {
        b.k.push_back(const_cast<void*>(seq.k_blocks(l)[i]));
        b.v.push_back(const_cast<void*>(seq.v_blocks(l)[i]));
      }
      b.block_tokens = layout.block_tokens;
      b.dtype = layout.dtype;
    }
    models::Model::SeqInput in;
    in.tokens = tokens;
    in.paged = &blocks;
    in.paged_pos = seq.n_tokens() - static_cast<int64_t>(tokens.size());
    in.all_logits = true;
    Array logits = model.forward_batch({in});
    std::vector<float> out = logits.to_floats();
    seq.commit();
    return out;
  }
  cache::KvLayout seq_layout;
};

std::vector<int32_t> prompt_ids(int n, int vocab) {
  std::vector<int32_t> ids;
  for (int i = 0; i < n; ++i) ids.push_back(static_cast<int32_t>((i * 37 + 11) % (vocab - 3) + 3));
  return ids;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

void check_model(const std::string& path, DType dtype) {
  std::unique_ptr<models::Model> model = models::load_model(path);
  const models::ModelConfig& c = model->config();
  const int n = 100;
  const int64_t vocab = c.vocab;
  std::vector<int32_t> ids = prompt_ids(n, static_cast<int>(vocab));

  // Reference: the contiguous cache, one chunk.
  models::KvCache kv(c, 256, dtype);
  std::vector<float> ref = model->forward(ids, 0, kv, true).to_floats();
  ASSERT_EQ(ref.size(), static_cast<size_t>(n * vocab));

  cache::KvLayout layout;
  layout.n_layers = static_cast<int>(c.n_layers);
  layout.block_tokens = 16;
  layout.kv_dim = static_cast<int>(c.n_kv_heads * c.head_dim);
  layout.dtype = dtype;
  cache::PrefixCache pc(layout, cache::CacheConfig{}, "paged-model-test");

  {  // One chunk.
    cache::Sequence seq = pc.start(ids);
    ASSERT_EQ(seq.n_cached(), 0);
    PagedRun r{*model, seq, {}, layout};
    EXPECT_TRUE(same_bits(r.feed(ids), ref)) << "one chunk";
    seq.release();
  }
  pc.clear();
  {  // Many uneven chunks, crossing block boundaries.
    cache::Sequence seq = pc.start(ids);
    ASSERT_EQ(seq.n_cached(), 0);
    PagedRun r{*model, seq, {}, layout};
    std::vector<float> all;
    for (int i = 0; i < n;) {
      const int len = std::min(n - i, 1 + (i * 7) % 23);
      std::vector<float> part = r.feed({ids.begin() + i, ids.begin() + i + len});
      all.insert(all.end(), part.begin(), part.end());
      i += len;
    }
    EXPECT_TRUE(same_bits(all, ref)) << "many chunks";
    seq.commit(true);
    seq.release();
  }
  {  // Restored from the cache: only the last token is evaluated.
    cache::Sequence seq = pc.start(ids);
    ASSERT_EQ(seq.n_cached(), n - 1);
    PagedRun r{*model, seq, {}, layout};
    std::vector<float> last = r.feed({ids.back()});
    EXPECT_TRUE(same_bits(last, std::vector<float>(ref.end() - vocab, ref.end()))) << "cached";
    seq.release();
  }
  pc.check_invariants();
  EXPECT_EQ(pc.stats().hot_blocks_in_use, 0);
}

TEST(PagedModel, StoriesF32BitIdentical) { check_model(stories_model(), DType::kF32); }
TEST(PagedModel, StoriesF16BitIdentical) { check_model(stories_model(), DType::kF16); }
TEST(PagedModel, TinyGqaBitIdentical) { check_model(tiny_model(), DType::kF32); }
TEST(PagedModel, TinyQ8KvBitIdentical) { check_model(tiny_wide_heads_model(), DType::kQ8_0); }

// A q8_0 cache rounds each 32 K/V values to 8 bits of their block's largest: the logits move a
// little, the greedy choices of a 100-token prompt do not.
TEST(PagedModel, Q8KvLogitsStayCloseToF32) {
  std::unique_ptr<models::Model> model = models::load_model(tiny_wide_heads_model());
  const models::ModelConfig& c = model->config();
  const std::vector<int32_t> ids = prompt_ids(100, static_cast<int>(c.vocab));
  models::KvCache f32(c, 128, DType::kF32), q8(c, 128, DType::kQ8_0);
  const std::vector<float> a = model->forward(ids, 0, f32, true).to_floats();
  const std::vector<float> b = model->forward(ids, 0, q8, true).to_floats();
  ASSERT_EQ(a.size(), b.size());
  double max_diff = 0, max_abs = 0;
  int same_argmax = 0;
  for (size_t r = 0; r < ids.size(); ++r) {
    const float* ra = a.data() + r * c.vocab;
    const float* rb = b.data() + r * c.vocab;
    for (int64_t i = 0; i < c.vocab; ++i) {
      max_diff = std::max(max_diff, std::fabs(double(ra[i]) - rb[i]));
      max_abs = std::max(max_abs, std::fabs(double(ra[i])));
    }
    same_argmax +=
        std::max_element(ra, ra + c.vocab) - ra == std::max_element(rb, rb + c.vocab) - rb;
  }
  std::printf("q8_0 vs f32 KV: max |diff| %g of max |logit| %g, same argmax %d/100\n", max_diff,
              max_abs, same_argmax);
  EXPECT_GT(max_diff, 0);  // it is a different cache
  EXPECT_LT(max_diff, 0.02 * max_abs);
  EXPECT_GE(same_argmax, 95);
  // A model whose heads are not whole blocks cannot have one.
  std::unique_ptr<models::Model> narrow = models::load_model(tiny_model());
  EXPECT_THROW({ models::KvCache kv(narrow->config(), 16, DType::kQ8_0); }, runnel::Error);
}

}  // namespace
}  // namespace runnel::runner::testing
