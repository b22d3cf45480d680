// Random operation sequences (seeded) against a cache with tiny budgets in every tier and a
// 4-letter token alphabet, so prefixes collide, branch and get evicted constantly. After every
// operation: all invariants (refcounts = live references, one trie place per block, budgets) hold
// and every live sequence's KV is exactly its own tokens' (what any cache hit restored included).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "base/env.h"
#include "base/error.h"
#include "cache/prefix_cache.h"
#include "fake_kv.h"
#include "testing/testing.h"

namespace runnel::cache {
namespace {

using testing::compute;
using testing::verify;

class Fuzzer {
 public:
  Fuzzer(uint64_t seed, const std::string& dir) : rng_(seed), dir_(dir) {
    layout_ = testing::small_layout(4, (seed % 3 == 0) ? 8 : 0);
    config_.hot_bytes = 24 * static_cast<int64_t>(layout_.slot_bytes());
    config_.cold_bytes = (seed % 2 == 0) ? 3000 : 0;
    config_.cold_zstd_level = static_cast<int>(seed % 3);
    config_.disk_dir = dir;
    config_.disk_bytes = 20000;
    cache_ = std::make_unique<PrefixCache>(layout_, config_, "fuzz");
  }

  void run(int n_ops) {
    for (int op = 0; op < n_ops; ++op) {
      step(op);
      cache_->check_invariants();
      for (size_t i = 0; i < live_.size(); ++i) {
        std::string err = verify(live_[i], layout_);
        ASSERT_EQ(err, "") << "op " << op << " sequence " << i;
      }
      CacheStats s = cache_->stats();
      ASSERT_LE(s.hot.bytes, config_.hot_bytes);
      ASSERT_LE(s.cold.bytes, config_.cold_bytes);
      ASSERT_LE(s.disk.bytes, config_.disk_bytes);
      if (::testing::Test::HasFatalFailure()) return;
    }
    live_.clear();
    cache_->check_invariants();
    add_totals();
    for (BlockId b = 0; b < cache_->pool().n_created(); ++b)
      ASSERT_EQ(cache_->pool().refcount(b), 0);
    EXPECT_GT(n_cached_total_, 0) << "the fuzzer never hit the cache";
  }

 private:
  int uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  std::vector<int32_t> letters(int n) {
    std::vector<int32_t> out(static_cast<size_t>(n));
    for (int32_t& t : out) t = uniform(0, 3);
    return out;
  }
  // Appends and computes `toks`; a hybrid model does it in chunks that end at block boundaries and
  // snapshots its state after each (and at the end), as the model contract asks.
  bool grow(Sequence& s, std::span<const int32_t> toks) {
    const int bt = layout_.block_tokens;
    while (!toks.empty()) {
      const int from = s.n_tokens();
      size_t n = toks.size();
      if (layout_.state_bytes > 0) n = std::min<size_t>(n, static_cast<size_t>(bt - from % bt));
      try {
        s.append(toks.subspan(0, n));
      } catch (const Error&) {
        EXPECT_EQ(s.n_tokens(), from);  // unchanged by a failed append
        return false;
      }
      compute(s, layout_, from);
      if (layout_.state_bytes > 0)
        s.save_state(testing::fake_state(s.tokens(), s.n_tokens(), layout_.state_bytes).data());
      toks = toks.subspan(n);
    }
    return true;
  }

  void step(int op) {
    const int choice = uniform(0, 99);
    if (choice < 30 || live_.empty()) {
      std::vector<int32_t> prompt;
      if (!histories_.empty() && uniform(0, 3) != 0) {
        const auto& h =
            histories_[static_cast<size_t>(uniform(0, static_cast<int>(histories_.size()) - 1))];
        prompt.assign(h.begin(), h.begin() + uniform(0, static_cast<int>(h.size())));
      }
      std::vector<int32_t> more = letters(uniform(0, 24));
      prompt.insert(prompt.end(), more.begin(), more.end());
      Sequence s = cache_->start(prompt);
      ASSERT_LE(s.n_cached(), std::max<int>(0, static_cast<int>(prompt.size()) - 1));
      ASSERT_EQ(verify(s, layout_), "") << "op " << op << ": restored KV is wrong";
      if (layout_.state_bytes > 0 && s.n_cached() > 0) {
        ASSERT_NE(s.resume_state(), nullptr);
        ASSERT_EQ(std::memcmp(s.resume_state(),
                              testing::fake_state(prompt, s.n_cached(), layout_.state_bytes).data(),
                              layout_.state_bytes),
                  0);
      }
      n_cached_total_ += s.n_cached();
      if (!grow(s, std::span<const int32_t>(prompt).subspan(static_cast<size_t>(s.n_cached()))))
        return;
      histories_.push_back(prompt);
      if (histories_.size() > 12) histories_.erase(histories_.begin());
      if (uniform(0, 1) == 0) s.commit(uniform(0, 1) == 0);
      if (live_.size() < 4) live_.push_back(std::move(s));
      return;
    }
    Sequence& s = live_[static_cast<size_t>(uniform(0, static_cast<int>(live_.size()) - 1))];
    if (choice < 50) {
      grow(s, letters(uniform(1, 9)));
    } else if (choice < 65) {
      s.commit(uniform(0, 1) == 0);
      histories_.emplace_back(s.tokens().begin(), s.tokens().end());
    } else if (choice < 78) {
      live_.erase(live_.begin() + (&s - live_.data()));
    } else if (choice < 85) {
      s.truncate(uniform(0, s.n_tokens()));
    } else if (choice < 90) {
      cache_->flush_to_disk();
    } else if (choice < 94) {
      damage_a_file();
    } else if (choice < 97) {
      cache_->clear();
    } else {
      live_.clear();  // restart: a new cache object on the same directory
      add_totals();
      cache_.reset();
      cache_ = std::make_unique<PrefixCache>(layout_, config_, "fuzz");
    }
  }

  void add_totals() {
    CacheStats s = cache_->stats();
    totals_.cold.hits += s.cold.hits;
    totals_.disk.hits += s.disk.hits;
    totals_.hot.evictions += s.hot.evictions;
    totals_.corrupt_blocks += s.corrupt_blocks;
  }

 public:
  const CacheStats& totals() const { return totals_; }

 private:
  void damage_a_file() {
    std::vector<std::filesystem::path> files;
    for (const auto& e : std::filesystem::directory_iterator(dir_)) files.push_back(e.path());
    if (files.empty()) return;
    const auto& f = files[static_cast<size_t>(uniform(0, static_cast<int>(files.size()) - 1))];
    const auto size = std::filesystem::file_size(f);
    if (size == 0) return;
    if (uniform(0, 1) == 0) {
      std::filesystem::resize_file(f, size / 2);
    } else {
      std::fstream io(f, std::ios::in | std::ios::out | std::ios::binary);
      const auto at = static_cast<std::streamoff>(uniform(0, static_cast<int>(size) - 1));
      char c;
      io.seekg(at);
      io.read(&c, 1);
      c = static_cast<char>(c ^ 0x40);
      io.seekp(at);
      io.write(&c, 1);
    }
  }

  std::mt19937_64 rng_;
  std::string dir_;
  KvLayout layout_;
  CacheConfig config_;
  std::unique_ptr<PrefixCache> cache_;
  std::vector<Sequence> live_;
  std::vector<std::vector<int32_t>> histories_;
  int64_t n_cached_total_ = 0;
  CacheStats totals_;
};

TEST(PrefixCacheProperty, RandomOperationSequencesKeepInvariants) {
  // RUNNEL_CACHE_FUZZ_SEEDS=N runs more seeds (a soak run); CI runs 12.
  CacheStats all;
  const int64_t n_seeds = env_int("RUNNEL_CACHE_FUZZ_SEEDS").value_or(12);
  for (uint64_t seed = 1; seed <= static_cast<uint64_t>(n_seeds); ++seed) {
    SCOPED_TRACE(str_cat("seed ", seed));
    Fuzzer f(seed, runnel::testing::make_temp_dir("fuzz"));
    f.run(300);
    if (HasFatalFailure()) return;
    all.cold.hits += f.totals().cold.hits;
    all.disk.hits += f.totals().disk.hits;
    all.hot.evictions += f.totals().hot.evictions;
    all.corrupt_blocks += f.totals().corrupt_blocks;
  }
  // The runs went through every path: evictions, restores from both tiers, damaged files.
  EXPECT_GT(all.hot.evictions, 0);
  EXPECT_GT(all.cold.hits, 0);
  EXPECT_GT(all.disk.hits, 0);
  EXPECT_GT(all.corrupt_blocks, 0);
  std::printf("fuzz totals: %lld hot evictions, %lld cold hits, %lld disk hits, %lld corrupt\n",
              static_cast<long long>(all.hot.evictions), static_cast<long long>(all.cold.hits),
              static_cast<long long>(all.disk.hits), static_cast<long long>(all.corrupt_blocks));
}

}  // namespace
}  // namespace runnel::cache
