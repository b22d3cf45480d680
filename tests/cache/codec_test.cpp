// The stored block format and the disk tier on their own: round trips (raw and zstd, full and
// partial blocks, with state), and every kind of damage detected as a miss.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "cache/block_codec.h"
#include "cache/disk_tier.h"
#include "cache/hash.h"
#include "fake_kv.h"
#include "testing/testing.h"

namespace runnel::cache {
namespace {

std::vector<uint8_t> pattern_block(const KvLayout& l, uint8_t seed) {
  std::vector<uint8_t> b(l.slot_bytes());
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<uint8_t>(i * 31 + seed);
  return b;
}

TEST(Hash, DependsOnEveryByteAndTheSeed) {
  std::vector<uint8_t> data(1000);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i);
  const uint64_t h = hash64(data.data(), data.size());
  EXPECT_EQ(h, hash64(data.data(), data.size()));
  EXPECT_NE(h, hash64(data.data(), data.size(), 1));
  for (size_t n : {0, 1, 7, 31, 32, 33, 999}) EXPECT_NE(hash64(data.data(), n), h) << n;
  for (size_t i = 0; i < data.size(); i += 97) {
    data[i] ^= 1;
    EXPECT_NE(hash64(data.data(), data.size()), h) << i;
    data[i] ^= 1;
  }
}

void round_trips(const KvLayout& l) {
  SCOPED_TRACE(std::string(dtype_name(l.dtype)));
  for (int level : {0, 1, 3}) {
    for (int n : {16, 5, 1}) {
      std::vector<uint8_t> src = pattern_block(l, static_cast<uint8_t>(n + level));
      std::vector<int32_t> toks = testing::random_tokens(static_cast<uint64_t>(n), n);
      std::string blob = encode_block(l, src.data(), 42, 41, toks, n == 5 ? 5 : 0, level);
      std::vector<uint8_t> dst(l.slot_bytes(), 0xee);
      int st = -1;
      std::string why;
      ASSERT_TRUE(decode_block(l, blob, 42, 41, toks, dst.data(), &st, &why)) << why;
      EXPECT_EQ(st, n == 5 ? 5 : 0);
      const size_t rows = l.row_bytes() * static_cast<size_t>(n);
      for (int layer = 0; layer < l.n_layers; ++layer) {
        EXPECT_EQ(std::memcmp(dst.data() + l.k_offset(layer), src.data() + l.k_offset(layer), rows),
                  0);
        EXPECT_EQ(std::memcmp(dst.data() + l.v_offset(layer), src.data() + l.v_offset(layer), rows),
                  0);
      }
      if (n == 5) {
        EXPECT_EQ(std::memcmp(dst.data() + l.state_offset(), src.data() + l.state_offset(), 12), 0);
      }
    }
  }
}

TEST(BlockCodec, RoundTripsFullAndPartialBlocks) {
  KvLayout q8 = testing::small_layout(16, 12);  // q8_0 rows: 34-byte blocks, odd row sizes
  q8.dtype = DType::kQ8_0;
  q8.kv_dim = 96;
  for (const KvLayout& l : {testing::small_layout(16, 12), q8}) round_trips(l);
}

TEST(BlockCodec, EveryDamageIsDetected) {
  const KvLayout l = testing::small_layout();
  std::vector<uint8_t> src = pattern_block(l, 1);
  std::vector<int32_t> toks = testing::random_tokens(1, 16);
  for (int level : {0, 1}) {
    const std::string blob = encode_block(l, src.data(), 7, 6, toks, 0, level);
    std::vector<uint8_t> dst(l.slot_bytes());
    int st;
    std::string why;
    EXPECT_FALSE(decode_block(l, blob, 8, 6, toks, dst.data(), &st, &why));  // another key
    EXPECT_FALSE(decode_block(l, blob, 7, 5, toks, dst.data(), &st, &why));  // another parent
    std::vector<int32_t> other = toks;
    other[3] += 1;
    EXPECT_FALSE(decode_block(l, blob, 7, 6, other, dst.data(), &st, &why));  // other tokens
    KvLayout l2 = l;
    l2.kv_dim = 16;
    std::vector<uint8_t> dst2(l2.slot_bytes());
    EXPECT_FALSE(decode_block(l2, blob, 7, 6, toks, dst2.data(), &st, &why));  // other layout
    EXPECT_FALSE(
        decode_block(l, blob.substr(0, blob.size() - 1), 7, 6, toks, dst.data(), &st, &why));
    EXPECT_FALSE(decode_block(l, blob + "x", 7, 6, toks, dst.data(), &st, &why));
    for (size_t i = 0; i < blob.size(); i += 13) {  // any flipped bit anywhere
      std::string bad = blob;
      bad[i] = static_cast<char>(bad[i] ^ 0x10);
      EXPECT_FALSE(decode_block(l, bad, 7, 6, toks, dst.data(), &st, &why)) << "byte " << i;
    }
    EXPECT_TRUE(decode_block(l, blob, 7, 6, toks, dst.data(), &st, &why)) << why;
  }
}

TEST(DiskTier, BudgetHoldsAndIndexSurvivesRestart) {
  const std::string dir = runnel::testing::make_temp_dir("disk");
  {
    DiskTier d(dir, 1000);
    EXPECT_TRUE(d.put(1, std::string(400, 'a')));
    EXPECT_TRUE(d.put(2, std::string(400, 'b')));
    EXPECT_TRUE(d.get(1).has_value());             // 1 is now more recent than 2
    EXPECT_TRUE(d.put(3, std::string(400, 'c')));  // trims 2
    EXPECT_FALSE(d.contains(2));
    EXPECT_FALSE(d.put(4, std::string(2000, 'd')));  // larger than the budget
    EXPECT_LE(d.bytes(), 1000);
    EXPECT_EQ(d.n_evictions(), 1);
  }
  std::ofstream(dir + "/00000000000000ff.kvb.tmp.123") << "partial write";
  DiskTier again(dir, 1000);
  EXPECT_TRUE(again.contains(1));
  EXPECT_TRUE(again.contains(3));
  EXPECT_EQ(again.bytes(), 800);
  EXPECT_EQ(*again.get(3), std::string(400, 'c'));
  EXPECT_FALSE(std::filesystem::exists(dir + "/00000000000000ff.kvb.tmp.123"));
  DiskTier smaller(dir, 500);  // a smaller budget trims at start-up
  EXPECT_LE(smaller.bytes(), 500);
}

}  // namespace
}  // namespace runnel::cache
