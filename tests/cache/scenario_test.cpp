// Scenario timelines against the fake model (fake_kv.h): shared system prompts, branches,
// copy-on-write, cancellation, pool exhaustion, recurrent-state snapshots. Every test checks which
// tokens the cache served (verify() compares every restored row), not only counts.
#include <gtest/gtest.h>

#include <cstring>

#include "base/error.h"
#include "cache/prefix_cache.h"
#include "fake_kv.h"

namespace runnel::cache {
namespace {

using testing::compute;
using testing::concat;
using testing::random_tokens;
using testing::run_turn;
using testing::small_layout;
using testing::verify;

CacheConfig hot_only(int64_t blocks, const KvLayout& l) {
  CacheConfig c;
  c.hot_bytes = blocks * static_cast<int64_t>(l.slot_bytes());
  c.cold_bytes = 0;
  return c;
}

TEST(Layout, SizesAndOffsets) {
  KvLayout l;
  l.n_layers = 28;
  l.block_tokens = 16;
  l.kv_dim = 1024;
  l.dtype = DType::kF16;
  EXPECT_EQ(l.kv_bytes(), size_t{28} * 2 * 16 * 1024 * 2);
  EXPECT_EQ(l.v_offset(3) - l.k_offset(3), size_t{16} * 1024 * 2);
  EXPECT_EQ(l.slot_bytes() % 64, 0u);
  KvLayout q8 = l;  // rows of 32 blocks of 34 bytes
  q8.dtype = DType::kQ8_0;
  validate_layout(q8);
  EXPECT_EQ(q8.row_bytes(), size_t{32} * 34);
  EXPECT_EQ(q8.kv_bytes(), size_t{28} * 2 * 16 * 32 * 34);
  EXPECT_EQ(q8.slot_bytes() % 64, 0u);
  EXPECT_NE(l.fingerprint(), q8.fingerprint());
  KvLayout bad = q8;
  bad.kv_dim = 1000;  // not whole q8_0 blocks
  EXPECT_THROW(validate_layout(bad), Error);
  bad = l;
  bad.dtype = DType::kQ4_0;
  EXPECT_THROW(validate_layout(bad), Error);
}

TEST(PrefixCache, ManyConversationsShareASystemPrompt) {
  const KvLayout l = small_layout();
  PrefixCache cache(l, hot_only(400, l), "model-a");
  const std::vector<int32_t> system = random_tokens(1, 200);  // 12 full blocks + 8 tokens
  std::vector<Sequence> live;
  for (int c = 0; c < 20; ++c) {
    std::vector<int32_t> prompt = concat(system, random_tokens(100 + c, 50));
    Sequence seq = cache.start(prompt);
    ASSERT_EQ(verify(seq, l), "");
    // The first conversation computes everything; the others reuse the system prompt, including
    // the 8 tokens of it that share a block with the first conversation's own text.
    EXPECT_EQ(seq.n_cached(), c == 0 ? 0 : 200) << "conversation " << c;
    seq.append(std::span<const int32_t>(prompt).subspan(static_cast<size_t>(seq.n_cached())));
    compute(seq, l, seq.n_cached());
    seq.commit();
    ASSERT_EQ(verify(seq, l), "");
    live.push_back(std::move(seq));
    cache.check_invariants();
  }
  // Zero copies: every live conversation's first 12 blocks are the same blocks.
  for (const Sequence& s : live)
    for (int b = 0; b < 12; ++b) EXPECT_EQ(s.block_table()[b], live[0].block_table()[b]);
  EXPECT_EQ(cache.pool().refcount(live[0].block_table()[0]), 20);
  // 12 shared + 20 x 4 own blocks (positions 192..249 need blocks 12..15).
  EXPECT_EQ(cache.pool().used_blocks(), 12 + 20 * 4);
  for (Sequence& s : live) s.release();
  cache.check_invariants();
  for (BlockId b = 0; b < cache.pool().n_created(); ++b) EXPECT_EQ(cache.pool().refcount(b), 0);
  CacheStats st = cache.stats();
  EXPECT_EQ(st.cached_tokens, 19 * 200);
  EXPECT_EQ(st.live_sequences, 0);
  EXPECT_EQ(st.hot_blocks_in_use, 0);
}

TEST(PrefixCache, FullyCachedPromptLeavesOneTokenToEvaluate) {
  const KvLayout l = small_layout();
  PrefixCache cache(l, hot_only(64, l), "m");
  const std::vector<int32_t> prompt = random_tokens(2, 64);  // exactly 4 blocks
  EXPECT_EQ(run_turn(cache, prompt).n_cached, 0);
  testing::TurnResult again = run_turn(cache, prompt);
  EXPECT_EQ(again.error, "");
  EXPECT_EQ(again.n_cached, 63);
  EXPECT_EQ(again.computed, 1);
  // Also for a prompt ending mid-block.
  std::vector<int32_t> shorter(prompt.begin(), prompt.begin() + 40);
  EXPECT_EQ(run_turn(cache, shorter).n_cached, 39);
  cache.check_invariants();
}

TEST(PrefixCache, BranchingConversationsShareUpToTheDivergence) {
  const KvLayout l = small_layout();
  PrefixCache cache(l, hot_only(128, l), "m");
  const std::vector<int32_t> trunk = random_tokens(3, 100);  // diverge inside block 6 (96..111)
  const std::vector<int32_t> a = concat(trunk, random_tokens(4, 60));
  const std::vector<int32_t> b = concat(trunk, random_tokens(5, 60));
  EXPECT_EQ(run_turn(cache, a).n_cached, 0);
  testing::TurnResult rb = run_turn(cache, b);
  EXPECT_EQ(rb.error, "");
  EXPECT_EQ(rb.n_cached, 100);  // 6 blocks + 4 tokens of A's block 6
  EXPECT_EQ(rb.computed, 60);
  // Both branches stay cached; each revisit reuses all but its last token.
  testing::TurnResult ra2 = run_turn(cache, a);
  EXPECT_EQ(ra2.n_cached, 159);
  EXPECT_EQ(ra2.error, "");
  testing::TurnResult rb2 = run_turn(cache, b);
  EXPECT_EQ(rb2.n_cached, 159);
  EXPECT_EQ(rb2.error, "");
  // A third branch off the shared part of block 6 of both.
  const std::vector<int32_t> c =
      concat(std::span<const int32_t>(trunk).subspan(0, 98), random_tokens(6, 30));
  testing::TurnResult rc = run_turn(cache, c);
  EXPECT_EQ(rc.n_cached, 98);
  EXPECT_EQ(rc.error, "");
  cache.check_invariants();
}

TEST(PrefixCache, ConversationTurnsReuseThePreviousTurnIncludingItsPartialTail) {
  const KvLayout l = small_layout();
  PrefixCache cache(l, hot_only(128, l), "m");
  std::vector<int32_t> history = random_tokens(7, 37);
  const std::vector<int32_t> reply = random_tokens(8, 11);
  testing::TurnResult t1 = run_turn(cache, history, reply);  // 37 + 11 = 48 tokens committed
  ASSERT_EQ(t1.error, "");
  history = concat(history, reply);
  history = concat(history, random_tokens(9, 21));  // next user message
  testing::TurnResult t2 = run_turn(cache, history, random_tokens(10, 5));
  EXPECT_EQ(t2.error, "");
  EXPECT_EQ(t2.n_cached, 48);
  EXPECT_EQ(t2.computed, 21 + 5);
  // Turn 3 reuses the partial tail committed at the end of turn 2 (69 + 5 = 74 tokens).
  history = concat(history, random_tokens(10, 5));
  history = concat(history, random_tokens(11, 3));
  testing::TurnResult t3 = run_turn(cache, history);
  EXPECT_EQ(t3.n_cached, 74);
  EXPECT_EQ(t3.error, "");
  cache.check_invariants();
}

TEST(PrefixCache, CopyOnWriteKeepsSharedPartialBlocksIntact) {
  const KvLayout l = small_layout();
  PrefixCache cache(l, hot_only(64, l), "m");
  const std::vector<int32_t> base = random_tokens(12, 40);
  ASSERT_EQ(run_turn(cache, base).error, "");
  // Two live sequences resume inside block 2 (tokens 32..39) and extend it differently.
  Sequence x = cache.start(concat(base, random_tokens(13, 5)));
  Sequence y = cache.start(concat(base, random_tokens(14, 5)));
  ASSERT_EQ(x.n_cached(), 40);
  ASSERT_EQ(y.n_cached(), 40);
  const BlockId shared = x.block_table()[2];
  EXPECT_EQ(y.block_table()[2], shared);
  const std::vector<int32_t> tx = random_tokens(15, 9), ty = random_tokens(16, 9);
  x.append(tx);
  compute(x, l, 40);
  y.append(ty);
  compute(y, l, 40);
  EXPECT_NE(x.block_table()[2], shared);
  EXPECT_NE(y.block_table()[2], shared);
  EXPECT_EQ(verify(x, l), "");
  EXPECT_EQ(verify(y, l), "");
  x.release();
  y.release();
  // The original block still holds the base conversation.
  EXPECT_EQ(run_turn(cache, concat(base, random_tokens(17, 3))).n_cached, 40);
  cache.check_invariants();
}

TEST(PrefixCache, CancellationMidPrefillReleasesEverything) {
  const KvLayout l = small_layout();
  PrefixCache cache(l, hot_only(64, l), "m");
  const std::vector<int32_t> system = random_tokens(20, 64);
  ASSERT_EQ(run_turn(cache, system).error, "");
  const int cached_blocks = cache.pool().used_blocks();
  const std::vector<int32_t> prompt = concat(system, random_tokens(21, 300));
  {
    Sequence seq = cache.start(prompt);
    EXPECT_EQ(seq.n_cached(), 64);
    seq.append(std::span<const int32_t>(prompt).subspan(64, 100));
    compute(seq, l, 64);
    seq.commit();  // the first chunk was shared ...
    seq.append(std::span<const int32_t>(prompt).subspan(164, 100));
    // ... the second chunk is cancelled before its forward pass: no commit, then release.
    EXPECT_GT(cache.pool().refcount(seq.block_table()[0]), 0);
    seq.release();
  }
  for (BlockId b = 0; b < cache.pool().n_created(); ++b) EXPECT_EQ(cache.pool().refcount(b), 0);
  cache.check_invariants();
  // Only the committed chunk stayed cached: 64 + 96 tokens in whole blocks (+ none partial).
  EXPECT_EQ(cache.pool().used_blocks(), cached_blocks + 6);
  testing::TurnResult again = run_turn(cache, prompt);
  EXPECT_EQ(again.n_cached, 160);
  EXPECT_EQ(again.error, "");
  // A sequence destroyed without release (client gone, exception) releases too.
  { Sequence dropped = cache.start(prompt); }
  EXPECT_EQ(cache.stats().live_sequences, 0);
  cache.check_invariants();
  // A sequence outliving its cache is detached, not dangling.
  Sequence orphan;
  {
    PrefixCache scoped(l, hot_only(8, l), "m");
    orphan = scoped.start(random_tokens(22, 10));
    orphan.append(random_tokens(23, 10));
    EXPECT_TRUE(orphan.active());
  }
  EXPECT_FALSE(orphan.active());
  EXPECT_EQ(orphan.n_tokens(), 0);
}

TEST(PrefixCache, PoolExhaustionIsAClearErrorAndRecoverable) {
  const KvLayout l = small_layout();
  PrefixCache cache(l, hot_only(10, l), "m");
  Sequence a = cache.start(random_tokens(30, 1));
  a.append(random_tokens(31, 150));  // 10 blocks: the whole pool, all referenced
  compute(a, l, 0);
  Sequence b = cache.start(random_tokens(32, 20));
  try {
    b.append(random_tokens(33, 20));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.component(), "cache");
    EXPECT_NE(e.message().find("KV cache memory is full"), std::string::npos) << e.what();
  }
  EXPECT_EQ(b.n_tokens(), 0);  // unchanged after the failure
  EXPECT_EQ(verify(a, l), "");
  cache.check_invariants();
  a.commit();
  a.release();
  // Now a's blocks are cached but unreferenced: b's growth evicts them (no cold tier: dropped).
  b.append(random_tokens(33, 20));
  compute(b, l, 0);
  EXPECT_EQ(verify(b, l), "");
  EXPECT_GT(cache.stats().hot.evictions, 0);
  b.release();
  cache.check_invariants();
  EXPECT_THROW(PrefixCache(l, hot_only(0, l), "m"), Error);
}

TEST(PrefixCache, EvictionKeepsWidelySharedPrefixesOverOldTails) {
  const KvLayout l = small_layout();
  PrefixCache cache(l, hot_only(100, l), "m");
  const std::vector<int32_t> system = random_tokens(40, 160);  // 10 blocks
  for (int c = 0; c < 5; ++c)
    ASSERT_EQ(run_turn(cache, concat(system, random_tokens(41 + c, 48))).error, "");
  const std::vector<int32_t> oneoff = random_tokens(50, 160);
  ASSERT_EQ(run_turn(cache, oneoff).error, "");
  // Flood with unrelated conversations, more than the pool holds.
  for (int c = 0; c < 20; ++c) ASSERT_EQ(run_turn(cache, random_tokens(60 + c, 96)).error, "");
  cache.check_invariants();
  // The system prompt survived (shared by 5), though it was used before the one-off conversation.
  EXPECT_EQ(run_turn(cache, concat(system, random_tokens(99, 10))).n_cached, 160);
  EXPECT_LT(run_turn(cache, oneoff).n_cached, 159);
}

TEST(PrefixCache, BulkCopiesMatchTheBlockTable) {
  const KvLayout l = small_layout();
  PrefixCache cache(l, hot_only(64, l), "m");
  const std::vector<int32_t> prompt = random_tokens(75, 50);
  ASSERT_EQ(run_turn(cache, prompt).error, "");
  Sequence s = cache.start(concat(prompt, random_tokens(76, 30)));
  ASSERT_EQ(s.n_cached(), 50);
  // Read the cached rows out contiguously, as a model with its own KV buffer would ...
  std::vector<uint8_t> k(l.row_bytes() * 50), v(l.row_bytes() * 50);
  s.read_kv(1, 3, 50, k.data(), v.data());
  for (int p = 3; p < 50; ++p)
    ASSERT_EQ(std::memcmp(k.data() + (p - 3) * l.row_bytes(), s.k_row(1, p), l.row_bytes()), 0);
  // ... and write new rows back in one call per layer: the result is what compute() writes.
  Sequence ref = cache.start(concat(prompt, random_tokens(76, 30)));
  s.append(random_tokens(76, 30));
  ref.append(random_tokens(76, 30));
  compute(ref, l, 50);
  for (int layer = 0; layer < l.n_layers; ++layer) {
    ref.read_kv(layer, 50, 80, k.data(), v.data());
    s.write_kv(layer, 50, 30, k.data(), v.data());
  }
  EXPECT_EQ(verify(s, l), "");
  cache.check_invariants();
}

TEST(PrefixCache, TruncateDropsPositionsAndKeepsTheRest) {
  const KvLayout l = small_layout();
  PrefixCache cache(l, hot_only(64, l), "m");
  Sequence s = cache.start(random_tokens(70, 1));
  s.append(random_tokens(71, 50));
  compute(s, l, 0);
  s.commit(true);
  s.truncate(20);
  EXPECT_EQ(s.n_tokens(), 20);
  EXPECT_EQ(s.n_blocks(), 2);
  s.append(random_tokens(72, 7));  // block 1 is in the trie: copied before writing
  compute(s, l, 20);
  EXPECT_EQ(verify(s, l), "");
  cache.check_invariants();
}

TEST(PrefixCache, RecurrentStateResumesFromTheDeepestSnapshot) {
  const KvLayout l = small_layout(16, 24);
  PrefixCache cache(l, hot_only(64, l), "hybrid");
  const std::vector<int32_t> prompt = random_tokens(80, 70);
  {
    Sequence s = cache.start(prompt);
    for (int at : {16, 32, 48, 64, 70}) {  // block boundaries and the end of the turn
      const int from = s.n_tokens();
      s.append(std::span<const int32_t>(prompt).subspan(static_cast<size_t>(from),
                                                        static_cast<size_t>(at - from)));
      compute(s, l, from);
      s.save_state(testing::fake_state(prompt, at, l.state_bytes).data());
    }
    s.commit(true);
  }
  // A prompt agreeing on 40 tokens resumes at 32, the deepest snapshot it can use.
  std::vector<int32_t> other =
      concat(std::span<const int32_t>(prompt).subspan(0, 40), random_tokens(81, 20));
  Sequence o = cache.start(other);
  EXPECT_EQ(o.n_cached(), 32);
  ASSERT_NE(o.resume_state(), nullptr);
  EXPECT_EQ(std::memcmp(o.resume_state(), testing::fake_state(other, 32, 24).data(), 24), 0);
  EXPECT_EQ(verify(o, l), "");
  // The same conversation continued resumes at the end-of-turn snapshot (70).
  Sequence same = cache.start(concat(prompt, random_tokens(82, 5)));
  EXPECT_EQ(same.n_cached(), 70);
  EXPECT_EQ(std::memcmp(same.resume_state(), testing::fake_state(prompt, 70, 24).data(), 24), 0);
  cache.check_invariants();
}

}  // namespace
}  // namespace runnel::cache
