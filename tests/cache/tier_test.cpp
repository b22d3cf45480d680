// Tier timelines: conversations evicted to the cold tier and to disk and revisited, a restart
// with the same --kv-cache-dir, corrupted and truncated disk blocks, budgets at every step.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "base/error.h"
#include "cache/prefix_cache.h"
#include "fake_kv.h"
#include "testing/testing.h"

namespace runnel::cache {
namespace {

using testing::random_tokens;
using testing::run_turn;
using testing::small_layout;

int64_t blocks_bytes(const KvLayout& l, int64_t n) {
  return n * static_cast<int64_t>(l.slot_bytes());
}

// Fills a hot pool of `pool_blocks` with conversations unrelated to everything else.
void flood(PrefixCache& cache, int n_conversations, uint64_t seed) {
  for (int c = 0; c < n_conversations; ++c)
    ASSERT_EQ(run_turn(cache, random_tokens(seed + static_cast<uint64_t>(c), 128)).error, "");
}

TEST(Tiers, ConversationRevisitedAfterEvictionToCold) {
  const KvLayout l = small_layout();
  CacheConfig c;
  c.hot_bytes = blocks_bytes(l, 40);
  c.cold_bytes = blocks_bytes(l, 200);
  c.cold_zstd_level = 1;
  PrefixCache cache(l, c, "m");
  const std::vector<int32_t> conv = random_tokens(1, 300);
  ASSERT_EQ(run_turn(cache, conv).error, "");
  flood(cache, 6, 100);  // 6 x 8 blocks: conv's blocks move to cold
  cache.check_invariants();
  CacheStats before = cache.stats();
  EXPECT_GT(before.cold.blocks, 0);
  EXPECT_GT(before.hot.evictions, 0);
  EXPECT_LT(before.cold.bytes, before.cold.blocks * static_cast<int64_t>(l.kv_bytes()))
      << "the fake KV compresses";
  testing::TurnResult again = run_turn(cache, conv);
  EXPECT_EQ(again.error, "");  // every restored row holds conv's token at its position
  EXPECT_EQ(again.n_cached, 299);
  EXPECT_EQ(again.computed, 1);
  CacheStats after = cache.stats();
  EXPECT_GT(after.cold.hits, before.cold.hits);
  EXPECT_GT(after.cold.restored_tokens, 0);
  cache.check_invariants();
}

TEST(Tiers, ConversationRevisitedAfterEvictionToDisk) {
  const KvLayout l = small_layout();
  for (int64_t cold_blocks : {0, 4}) {  // straight to disk, and through a tiny cold tier
    CacheConfig c;
    c.hot_bytes = blocks_bytes(l, 40);
    c.cold_bytes = blocks_bytes(l, cold_blocks);
    c.disk_dir = runnel::testing::make_temp_dir("tiers");
    PrefixCache cache(l, c, "m");
    const std::vector<int32_t> conv = random_tokens(2, 300);
    ASSERT_EQ(run_turn(cache, conv).error, "");
    flood(cache, 8, 200);
    cache.check_invariants();
    EXPECT_GT(cache.stats().disk.blocks, 0);
    testing::TurnResult again = run_turn(cache, conv);
    EXPECT_EQ(again.error, "");
    EXPECT_EQ(again.n_cached, 299) << "cold blocks " << cold_blocks;
    CacheStats st = cache.stats();
    EXPECT_GT(st.disk.hits, 0);
    EXPECT_GT(st.disk.restored_tokens, 0);
    EXPECT_LE(st.cold.bytes, c.cold_bytes);
    EXPECT_LE(st.hot.bytes, c.hot_bytes);
    cache.check_invariants();
  }
}

TEST(Tiers, RestartWithTheSameDirectoryHitsTheDiskTier) {
  const KvLayout l = small_layout();
  CacheConfig c;
  c.hot_bytes = blocks_bytes(l, 64);
  c.cold_bytes = 0;
  c.disk_dir = runnel::testing::make_temp_dir("restart");
  const std::vector<int32_t> system = random_tokens(3, 150);
  const std::vector<int32_t> conv =
      testing::concat(system, random_tokens(4, 45));  // ends mid-block
  {
    PrefixCache cache(l, c, "model-digest");
    ASSERT_EQ(run_turn(cache, conv).error, "");
    EXPECT_EQ(cache.flush_to_disk(), 13);  // 12 full blocks + the partial tail (195 tokens)
    EXPECT_EQ(cache.flush_to_disk(), 0);   // already there
  }
  {
    PrefixCache cache(l, c, "model-digest");  // a new process
    testing::TurnResult again = run_turn(cache, testing::concat(conv, random_tokens(5, 10)));
    EXPECT_EQ(again.error, "");
    EXPECT_EQ(again.n_cached, 195);
    CacheStats st = cache.stats();
    EXPECT_EQ(st.disk.hits, 13);
    EXPECT_EQ(st.disk.restored_tokens, 195);
    // Another conversation with the same system prompt now shares the restored blocks in RAM.
    testing::TurnResult other = run_turn(cache, testing::concat(system, random_tokens(6, 9)));
    EXPECT_EQ(other.n_cached, 150);
    EXPECT_EQ(other.error, "");
    cache.check_invariants();
  }
  {
    PrefixCache cache(l, c, "other-model");  // other weights never see these blocks
    EXPECT_EQ(run_turn(cache, conv).n_cached, 0);
  }
  {
    KvLayout l2 = l;
    l2.kv_dim = 16;
    PrefixCache cache(l2, c, "model-digest");  // nor does another layout
    EXPECT_EQ(run_turn(cache, conv).n_cached, 0);
  }
}

TEST(Tiers, CorruptedDiskBlockIsAMissAndIsRecomputed) {
  const KvLayout l = small_layout();
  CacheConfig c;
  c.hot_bytes = blocks_bytes(l, 64);
  c.cold_bytes = 0;
  c.disk_dir = runnel::testing::make_temp_dir("corrupt");
  const std::vector<int32_t> conv = random_tokens(7, 160);  // 10 blocks
  std::string block3, block6;
  {
    PrefixCache cache(l, c, "m");
    ASSERT_EQ(run_turn(cache, conv).error, "");
    cache.flush_to_disk();
    block3 = cache.disk_path(cache.content_key(std::span<const int32_t>(conv).subspan(0, 64)));
    block6 = cache.disk_path(cache.content_key(std::span<const int32_t>(conv).subspan(0, 112)));
  }
  ASSERT_TRUE(std::filesystem::exists(block3));
  {  // flip one byte in the middle of block 3's K/V payload
    std::fstream f(block3, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(500);
    char ch;
    f.read(&ch, 1);
    ch = static_cast<char>(ch ^ 0x01);
    f.seekp(500);
    f.write(&ch, 1);
  }
  std::filesystem::resize_file(block6, std::filesystem::file_size(block6) / 2);  // torn write
  PrefixCache cache(l, c, "m");
  testing::TurnResult first = run_turn(cache, conv);
  EXPECT_EQ(first.error, "");     // never wrong data
  EXPECT_EQ(first.n_cached, 48);  // blocks 0..2; block 3 failed its checksum
  EXPECT_EQ(first.computed, 160 - 48);
  EXPECT_EQ(cache.stats().corrupt_blocks, 1);
  EXPECT_FALSE(std::filesystem::exists(block3)) << "the corrupt file is deleted";
  // Recomputed and committed: the next visit hits fully (in RAM).
  EXPECT_EQ(run_turn(cache, conv).n_cached, 159);
  // A flush rewrites blocks 3 and 6 correctly; a restart then hits everything.
  cache.flush_to_disk();
  PrefixCache again(l, c, "m");
  testing::TurnResult third = run_turn(again, conv);
  EXPECT_EQ(third.n_cached, 159);
  EXPECT_EQ(third.error, "");
  EXPECT_EQ(again.stats().corrupt_blocks, 0);
}

TEST(Tiers, F16LayoutThroughCompressedColdTier) {
  KvLayout l = small_layout();
  l.dtype = DType::kF16;
  l.kv_dim = 64;
  CacheConfig c;
  c.hot_bytes = blocks_bytes(l, 20);
  c.cold_bytes = blocks_bytes(l, 100);
  c.cold_zstd_level = 3;
  PrefixCache cache(l, c, "m");
  const std::vector<int32_t> conv = random_tokens(9, 200, 3, 2000);
  ASSERT_EQ(run_turn(cache, conv).error, "");
  flood(cache, 3, 300);
  testing::TurnResult again = run_turn(cache, conv);
  EXPECT_EQ(again.error, "");
  EXPECT_EQ(again.n_cached, 199);
  EXPECT_GT(cache.stats().cold.hits, 0);
  cache.check_invariants();
}

TEST(Tiers, StatsSnapshotIsPublishedAndConfigReadsTheEnvironment) {
  const KvLayout l = small_layout();
  ::setenv("RUNNEL_KV_CACHE_MEMORY", "64KiB", 1);
  ::setenv("RUNNEL_KV_CACHE_COLD_MEMORY", "1MiB", 1);
  ::setenv("RUNNEL_KV_CACHE_DIR", "", 1);
  CacheConfig c = CacheConfig::from_env(CacheConfig{});
  ::unsetenv("RUNNEL_KV_CACHE_MEMORY");
  ::unsetenv("RUNNEL_KV_CACHE_COLD_MEMORY");
  ::unsetenv("RUNNEL_KV_CACHE_DIR");
  EXPECT_EQ(c.hot_bytes, 64 * 1024);
  EXPECT_EQ(c.cold_bytes, 1024 * 1024);
  EXPECT_TRUE(c.disk_dir.empty());
  CacheConfig d;
  d.set("kv-cache-memory", "1.5GiB");
  d.set("kv-cache-dir", "/tmp/x");
  EXPECT_EQ(d.hot_bytes, int64_t{3} << 29);
  EXPECT_EQ(d.describe(), "hot 1.5 GiB, cold 1.0 GiB (raw), disk /tmp/x 16.0 GiB");
  EXPECT_THROW(d.set("kv-cache-memory", "lots"), Error);
  EXPECT_THROW(d.set("kv-cache-compress", "99"), Error);
  EXPECT_THROW(d.set("kv-cache-size", "1"), Error);
  EXPECT_THROW(d.set("kv-cache-type", "q4_0"), Error);
  d.set("kv-cache-type", "q8_0");
  EXPECT_EQ(d.kv_dtype, DType::kQ8_0);
  EXPECT_EQ(cache_settings().size(), 6u);
  PrefixCache cache(l, c, "m");
  EXPECT_EQ(cache.pool().max_blocks(), 32);
  ASSERT_EQ(run_turn(cache, random_tokens(10, 100)).error, "");
  ASSERT_EQ(run_turn(cache, random_tokens(10, 100)).n_cached, 99);
  CacheStats s = cache.stats_snapshot();
  EXPECT_EQ(s.lookups, 2);
  EXPECT_EQ(s.prompt_tokens, 200);
  EXPECT_EQ(s.cached_tokens, 99);
  EXPECT_EQ(s.hot.hits, 7);
  EXPECT_EQ(s.hot.blocks, 7);
  EXPECT_EQ(s.hot.capacity_bytes, 64 * 1024);
}

}  // namespace
}  // namespace runnel::cache
