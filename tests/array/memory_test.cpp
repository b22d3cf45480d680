// The runtime's memory contract: flat memory over a long decode-shaped loop, pins, sweeps,
// async outputs, and a graph error that leaves nothing behind.
#include <gtest/gtest.h>

#include <numeric>

#include "array/ops.h"
#include "base/error.h"

namespace runnel::array {
namespace {

size_t scratch() { return memory_stats().active[static_cast<int>(MemoryKind::kScratch)]; }

Array random_array(const Shape& s, uint32_t seed) {
  std::vector<float> v(static_cast<size_t>(shape_numel(s)));
  uint32_t x = seed * 2654435761u + 1;
  for (float& f : v) {
    x = x * 1664525u + 1013904223u;
    f = static_cast<float>((x >> 8) & 0xffff) / 65536.0f - 0.5f;
  }
  return Array::from_floats(s, v);
}

TEST(Memory, DecodeLoopHoldsFlatMemory) {
  constexpr int64_t kDim = 32, kCtx = 10000;
  Array w1 = random_array({kDim, kDim}, 1);
  Array w2 = random_array({kDim, kDim}, 2);
  Array norm = full({kDim}, 1.0f);
  Array cache = zeros({kCtx, 1, kDim});
  for (const Array& a : {w1, w2, norm}) pin(a, MemoryKind::kWeights);
  pin(cache, MemoryKind::kCache);

  Array x = random_array({1, kDim}, 3);
  eval(x);
  size_t baseline = 0;
  size_t peak_after_warmup = 0;
  for (int64_t step = 0; step < kCtx; ++step) {
    // Fresh intermediates every step; the cache grows by one row.
    Array h = rms_norm(x, norm, 1e-5f);
    Array k = reshape(linear(h, w1), {1, 1, kDim});
    Array c = cache_write(cache, k, step);
    Array q = reshape(linear(h, w2), {1, 1, kDim});
    Array att = attention(q, c, c, step + 1, step, 0.125f);
    Array next = add(x, mul(reshape(att, {1, kDim}), 0.01f));
    if (step % 2 == 0) {
      async_eval({next});
      wait();
    } else {
      eval(next);
    }
    x = next;  // the previous x and the whole step's graph are now unreachable
    if (step == 10) {
      baseline = scratch();
      reset_peak_memory();
    }
    if (step > 10) {
      ASSERT_EQ(scratch(), baseline) << "scratch memory moved at step " << step;
    }
    if (step == 100) peak_after_warmup = memory_stats().peak[0];
  }
  EXPECT_EQ(memory_stats().peak[0], peak_after_warmup) << "peak grew with the step count";
  for (const Array& a : {w1, w2, norm, cache}) unpin(a);
}

TEST(Memory, PinnedSurvivesSweepsUnpinnedIsFreed) {
  sweep();
  const size_t before = memory_stats().total_active();
  Array w = random_array({64, 64}, 7);
  const float first = w.data<float>()[0];
  pin(w, MemoryKind::kWeights);
  EXPECT_EQ(pin_count(w), 1);
  const size_t weights = memory_stats().active[static_cast<int>(MemoryKind::kWeights)];
  EXPECT_GE(weights, 64u * 64 * 4);
  Array* handle = new Array(w);
  w = Array();  // only the runtime (the pin) and `handle` remain
  for (int i = 0; i < 100; ++i) sweep();
  EXPECT_EQ(handle->data<float>()[0], first);
  pin(*handle, MemoryKind::kWeights);  // counted
  unpin(*handle);
  EXPECT_EQ(memory_stats().active[static_cast<int>(MemoryKind::kWeights)], weights);
  unpin(*handle);
  EXPECT_EQ(memory_stats().active[static_cast<int>(MemoryKind::kWeights)], weights - weights);
  delete handle;
  sweep();
  EXPECT_EQ(memory_stats().total_active(), before);
  EXPECT_EQ(memory_stats().pooled, 0u);
}

TEST(Memory, PinnedWithoutHandlesLivesUntilUnpinned) {
  const size_t before = memory_stats().total_active();
  Array w = random_array({16, 16}, 9);
  pin(w, MemoryKind::kWeights);
  std::weak_ptr<ArrayDesc> weak = w.desc();
  w = Array();
  sweep();
  ASSERT_FALSE(weak.expired());
  Array back(weak.lock());
  unpin(back);
  back = Array();
  EXPECT_TRUE(weak.expired());
  EXPECT_EQ(memory_stats().total_active(), before);
}

TEST(Memory, OutputsOfEvalAndAsyncEvalSurvive) {
  Array a = random_array({8, 8}, 4);
  Array b = add(a, a);
  Array c = mul(b, 3.0f);
  async_eval({c});
  Array d = add(c, 1.0f);  // built while c is being computed
  eval(d);
  sweep();
  const float* pa = a.data<float>();
  const float* pc = c.data<float>();
  const float* pd = d.data<float>();
  for (int i = 0; i < 64; ++i) {
    EXPECT_FLOAT_EQ(pc[i], pa[i] * 6.0f);
    EXPECT_FLOAT_EQ(pd[i], pa[i] * 6.0f + 1.0f);
  }
}

TEST(Memory, GraphErrorLeavesRuntimeUsableAndLeaksNothing) {
  sweep();
  const size_t before = memory_stats().total_active();
  {
    Array a = random_array({2, 3}, 5);
    Array b = random_array({4, 5}, 6);
    try {
      Array bad = matmul(a, b);
      FAIL() << "no error";
    } catch (const Error& e) {
      EXPECT_STREQ(e.what(), "[array] [matmul] shapes (2,3) and (4,5) do not match");
    }
    // An error at evaluation time (a token id outside the table) also leaves things consistent.
    std::vector<int32_t> ids = {1, 99};
    Array emb = embedding(b, Array::from_ints({2}, ids));
    EXPECT_THROW(eval(emb), Error);
    Array ok = add(a, a);
    eval(ok);
    EXPECT_FLOAT_EQ(ok.data<float>()[0], 2 * a.data<float>()[0]);
  }
  sweep();
  EXPECT_EQ(memory_stats().total_active(), before);
}

TEST(Memory, AsyncErrorSurfacesAtJoin) {
  Array b = random_array({4, 5}, 6);
  std::vector<int32_t> ids = {-1};
  Array emb = embedding(b, Array::from_ints({1}, ids));
  async_eval({emb});
  EXPECT_THROW(wait(), Error);
  Array ok = add(b, b);
  eval(ok);  // still usable
  EXPECT_TRUE(ok.is_evaluated());
}

// Weight buffers under 4 MiB are carved back to back from huge-page slabs, in allocation order;
// a slab goes back to the OS with its last piece, whatever kind the pieces were by then; larger
// weight buffers and scratch buffers do not use slabs.
TEST(Memory, SmallWeightsShareSlabsInOrder) {
  const size_t slabs0 = memory_stats().slabs;
  const size_t weights0 = memory_stats().active[static_cast<int>(MemoryKind::kWeights)];
  std::vector<Array> ws;
  for (int i = 0; i < 40; ++i)
    ws.push_back(Array::empty({1000 + i, 1000}, DType::kF32, MemoryKind::kWeights));
  EXPECT_GT(memory_stats().slabs, slabs0);
  size_t adjacent = 0;
  for (size_t i = 0; i + 1 < ws.size(); ++i) {
    const auto* a = static_cast<const uint8_t*>(ws[i].raw());
    const auto* b = static_cast<const uint8_t*>(ws[i + 1].raw());
    EXPECT_EQ(reinterpret_cast<uintptr_t>(a) % 64, 0u);
    if (b == a + (ws[i].n_bytes() + 63) / 64 * 64) ++adjacent;
  }
  EXPECT_GE(adjacent, ws.size() - 1 - 5) << "40 x 4 MB pieces span 5-6 slabs of 32 MiB";
  // Pieces keep their slab alive until the last one goes, written to and read back meanwhile.
  pin(ws[3], MemoryKind::kWeights);
  ws[3].mutable_data<float>()[0] = 42.0f;
  Array keep = ws[3];
  ws.clear();
  EXPECT_EQ(keep.data<float>()[0], 42.0f);
  EXPECT_LE(memory_stats().slabs, slabs0 + 1);
  unpin(keep);  // accounted as scratch from here on; still a slab piece
  keep = Array();
  EXPECT_EQ(memory_stats().slabs, slabs0);
  EXPECT_EQ(memory_stats().active[static_cast<int>(MemoryKind::kWeights)], weights0);
  Array big = Array::empty({1100, 1000}, DType::kF32, MemoryKind::kWeights);  // 4.4 MB
  Array small = Array::empty({100, 100}, DType::kF32);                        // scratch
  EXPECT_EQ(memory_stats().slabs, slabs0);
}

// Cache buffers under 4 MiB (a KvCache's per-layer K and V arrays) are carved from slabs too,
// slabs of their own: a weight allocated between two cache arrays does not land between them,
// and the cache's slab goes back to the OS with its last piece.
TEST(Memory, SmallCacheArraysShareSlabsOfTheirOwn) {
  const size_t slabs0 = memory_stats().slabs;
  Array k = Array::empty({1000, 256}, DType::kF16, MemoryKind::kCache);  // 512 000 bytes
  Array w = Array::empty({1000, 100}, DType::kF32, MemoryKind::kWeights);
  Array v = Array::empty({1000, 256}, DType::kF16, MemoryKind::kCache);
  EXPECT_GT(memory_stats().slabs, slabs0);
  EXPECT_EQ(static_cast<const uint8_t*>(v.raw()), static_cast<const uint8_t*>(k.raw()) + 512000);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(k.raw()) % 64, 0u);
  k.mutable_data<uint16_t>()[255999] = 7;
  v.mutable_data<uint16_t>()[0] = 9;
  EXPECT_EQ(k.data<uint16_t>()[255999], 7);
  EXPECT_EQ(v.data<uint16_t>()[0], 9);
  k = Array();
  v = Array();
  w = Array();
  EXPECT_EQ(memory_stats().slabs, slabs0);
  Array big = Array::empty({2100, 1024}, DType::kF16, MemoryKind::kCache);  // 4.3 MB: its own
  EXPECT_EQ(memory_stats().slabs, slabs0);
}

TEST(Memory, LimitIsAClearError) {
  set_memory_limit(MemoryKind::kScratch, 1 << 20);
  try {
    Array big = zeros({1024, 1024});  // 4 MiB
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("limit"), std::string::npos) << e.what();
  }
  set_memory_limit(MemoryKind::kScratch, 0);
  Array fine = zeros({1024, 1024});
  EXPECT_EQ(fine.numel(), 1024 * 1024);
}

}  // namespace
}  // namespace runnel::array
