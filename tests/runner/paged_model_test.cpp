// The model's forward over paged KV (the prefix cache's blocks) against the contiguous KvCache:
// bit-identical logits for one chunk, many chunks, and a prefix restored from the cache.
#include <gtest/gtest.h>

#include <cstring>

#include "array/ops.h"
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

}  // namespace
}  // namespace runnel::runner::testing
