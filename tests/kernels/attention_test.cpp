// attention: every ISA (and the scalar reference) against a naive double-precision attention that
// materializes the scores; GQA/MQA, several queries at an offset, blocks that do not divide n_kv,
// f16 and q8_0 KV, long contexts spanning many chunks, queries past position 1024 with head_dim >=
// 128 (scores by rows) with a ragged tail and tiles straddling that position; bit-identical across
// thread counts, and each query's output the same bits whether computed alone (decode, split by
// KV heads or, past 2048 positions (1024 with head_dim >= 128), by positions), in one big prefill
// call or in chunks.
#include "kernels/cpu/attention.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "base/error.h"
#include "base/thread_pool.h"
#include "kernel_test_util.h"
#include "kernels/cpu/quant.h"

namespace runnel::kernels::cpu {
namespace {

using testing::IsaScope;
using testing::kEps;
using testing::random_floats;

struct Case {
  int n_q, n_heads, n_kv_heads, head_dim, block_tokens, n_kv, q_pos0;
  DType kv;
};

// Owns K/V blocks (with a misaligned start) and the args pointing into them.
struct KvSetup {
  std::vector<std::vector<uint8_t>> kb, vb;
  std::vector<const void*> kp, vp;
  std::vector<float> q;
  AttentionArgs a{};
  // Element e of position p, kv head g, as f32 (what every implementation must read).
  float k_at(int p, int g, int e) const { return at(kp, p, g, e); }
  float v_at(int p, int g, int e) const { return at(vp, p, g, e); }
  float at(const std::vector<const void*>& blocks, int p, int g, int e) const {
    const size_t idx =
        (static_cast<size_t>(p % a.block_tokens) * a.n_kv_heads + g) * a.head_dim + e;
    const void* b = blocks[p / a.block_tokens];
    if (a.kv_dtype == DType::kF16) return f16_to_f32(static_cast<const uint16_t*>(b)[idx]);
    if (a.kv_dtype == DType::kQ8_0) {
      const BlockQ8_0& blk = static_cast<const BlockQ8_0*>(b)[idx / kQK];
      return static_cast<float>(blk.qs[idx % kQK]) * f16_to_f32(blk.d);
    }
    return static_cast<const float*>(b)[idx];
  }
};

void make(KvSetup& s, const Case& c, std::mt19937& rng) {
  const int n_blocks = c.n_kv == 0 ? 0 : (c.n_kv + c.block_tokens - 1) / c.block_tokens;
  const size_t elems = static_cast<size_t>(c.block_tokens) * c.n_kv_heads * c.head_dim;
  const size_t bytes = row_bytes(c.kv, elems);
  for (auto* blocks : {&s.kb, &s.vb}) {
    blocks->resize(n_blocks);
    for (auto& b : *blocks) {
      b.resize(4 + bytes);
      std::vector<float> f = random_floats(rng, elems, -2, 2);
      if (c.kv == DType::kQ8_0) {  // whole blocks at an odd address
        ASSERT_TRUE(quantize_row(DType::kQ8_0, f.data(), b.data() + 3, elems));
        continue;
      }
      for (size_t i = 0; i < elems; ++i) {
        if (c.kv == DType::kF16) {
          uint16_t h = f32_to_f16(f[i]);
          std::memcpy(b.data() + 4 + 2 * i, &h, 2);
        } else {
          std::memcpy(b.data() + 4 + 4 * i, &f[i], 4);
        }
      }
    }
  }
  s.kp.clear();
  s.vp.clear();
  const int skew = c.kv == DType::kQ8_0 ? 3 : 4;
  for (auto& b : s.kb) s.kp.push_back(b.data() + skew);
  for (auto& b : s.vb) s.vp.push_back(b.data() + skew);
  s.q = random_floats(rng, static_cast<size_t>(c.n_q) * c.n_heads * c.head_dim + 3, -2, 2);
  s.a = AttentionArgs{s.q.data() + 3,
                      nullptr,
                      c.n_q,
                      c.n_heads,
                      c.n_kv_heads,
                      c.head_dim,
                      s.kp.data(),
                      s.vp.data(),
                      c.kv,
                      c.block_tokens,
                      c.n_kv,
                      c.q_pos0,
                      1.0f / std::sqrt(static_cast<float>(c.head_dim))};
}

float bf16_round(float v) {  // nearest even (the test's values are normal and finite)
  uint32_t u;
  std::memcpy(&u, &v, 4);
  u = (u + 0x7fff + ((u >> 16) & 1)) & 0xffff0000u;
  std::memcpy(&v, &u, 4);
  return v;
}

// Naive attention in double; also returns per-output tolerances derived from the data: score
// errors (head_dim rounding steps on Σ|q k|·scale) move softmax weights relatively, plus the
// rounding of the n_valid-term weighted sum, both times the magnitude of V. bf16: on what the amx
// variant's attention tiles round to bf16 (q · scale, K, V), within what is left: P's bf16
// rounding (2^-9 of each weight) and the f32 sums and exp, vmax · (2^-8 + a few f32 roundings per
// term).
void naive(const KvSetup& s, std::vector<double>& out, std::vector<double>& tol,
           bool bf16 = false) {
  const AttentionArgs& a = s.a;
  const size_t total = static_cast<size_t>(a.n_q) * a.n_heads * a.head_dim;
  out.assign(total, 0);
  tol.assign(total, 0);
  const int group = a.n_heads / a.n_kv_heads;
  for (int i = 0; i < a.n_q; ++i) {
    for (int h = 0; h < a.n_heads; ++h) {
      const int g = h / group;
      const int n_valid = std::min(a.n_kv, a.q_pos0 + i + 1);
      const float* q = a.q + (static_cast<size_t>(i) * a.n_heads + h) * a.head_dim;
      std::vector<double> sc(n_valid);
      double mx = -1e300, max_abs_dot = 0, vmax = 0;
      for (int p = 0; p < n_valid; ++p) {
        double d = 0, ad = 0;
        for (int e = 0; e < a.head_dim; ++e) {
          const double t = bf16 ? double(bf16_round(q[e] * a.scale)) * bf16_round(s.k_at(p, g, e))
                                : static_cast<double>(q[e]) * s.k_at(p, g, e);
          d += t;
          ad += std::fabs(t);
        }
        sc[p] = bf16 ? d : d * a.scale;
        max_abs_dot = std::max(max_abs_dot, bf16 ? ad : ad * a.scale);
        mx = std::max(mx, sc[p]);
        for (int e = 0; e < a.head_dim; ++e)
          vmax = std::max(vmax, std::fabs(double(s.v_at(p, g, e))));
      }
      double sum = 0;
      for (double& v : sc) sum += (v = std::exp(v - mx));
      double* o = out.data() + (static_cast<size_t>(i) * a.n_heads + h) * a.head_dim;
      double* t = tol.data() + (static_cast<size_t>(i) * a.n_heads + h) * a.head_dim;
      for (int p = 0; p < n_valid; ++p) {
        for (int e = 0; e < a.head_dim; ++e) {
          const float v = s.v_at(p, g, e);
          o[e] += sc[p] / sum * (bf16 ? bf16_round(v) : v);
        }
      }
      const double rel =
          bf16 ? 0x1p-8 + 8 * (a.head_dim + n_valid + 16) * kEps * (1 + max_abs_dot)
               : 4 * (a.head_dim + 8) * kEps * max_abs_dot + 8 * (n_valid + 16) * kEps;
      for (int e = 0; e < a.head_dim; ++e) t[e] = rel * vmax + 1e-30;
    }
  }
}

std::vector<float> run(KvSetup& s, ThreadPool& pool) {
  std::vector<float> out(static_cast<size_t>(s.a.n_q) * s.a.n_heads * s.a.head_dim + 1, 9.0f);
  s.a.out = out.data() + 1;  // misaligned by one float
  attention(s.a, pool);
  EXPECT_EQ(out[0], 9.0f);
  return std::vector<float>(out.begin() + 1, out.end());
}

const Case kCases[] = {
    // n_q, heads, kv_heads, head_dim, block_tokens, n_kv, q_pos0, kv
    {1, 4, 4, 16, 16, 1, 0, DType::kF32},          // first token
    {1, 8, 2, 64, 16, 37, 36, DType::kF32},        // decode, GQA, ragged last block
    {5, 8, 2, 33, 7, 45, 40, DType::kF32},         // prefill chunk at an offset, odd head_dim
    {6, 6, 1, 17, 3, 6, 0, DType::kF16},           // MQA prompt, f16
    {3, 4, 2, 128, 16, 300, 297, DType::kF16},     // long context, many chunks
    {7, 6, 2, 136, 16, 1030, 1023, DType::kF32},   // queries past 1024 with head_dim >= 128:
                                                   // scores by rows, ragged head tail
    {4, 2, 1, 1, 5, 10, 3, DType::kF32},           // head_dim 1; n_kv < q_pos0 + n_q: clipped
    {2, 4, 4, 35, 64, 130, 128, DType::kF32},      // block larger than a chunk
    {3, 16, 1, 8, 4, 3, 0, DType::kF16},           // group of 16 (> heads per task)
    {40, 8, 2, 64, 16, 90, 50, DType::kF16},       // prefill tiles across a KV chunk boundary
    {19, 6, 2, 24, 5, 75, 56, DType::kF32},        // group 3, ragged row blocks and tiles
    {2, 64, 1, 16, 8, 2, 0, DType::kF32},          // group of 64 (> rows per tile)
    {1, 16, 8, 128, 16, 77, 76, DType::kQ8_0},     // q8_0 KV: decode, Qwen3's heads
    {9, 8, 2, 64, 5, 40, 31, DType::kQ8_0},        // q8_0 prefill, ragged blocks
    {5, 4, 1, 32, 16, 1030, 1025, DType::kQ8_0},   // q8_0, head_dim 32, past 1024
    {3, 8, 2, 128, 16, 1100, 1097, DType::kQ8_0},  // q8_0, scores by rows
};

TEST(Attention, MatchesNaiveForEveryIsa) {
  ThreadPool pool(2);
  std::mt19937 rng(42);
  for (const Case& c : kCases) {
    KvSetup s;
    make(s, c, rng);
    std::vector<double> ref, tol;
    naive(s, ref, tol);
    for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
      IsaScope scope(isa);
      if (!scope.ok()) continue;
      std::vector<float> got = run(s, pool);
      for (size_t i = 0; i < ref.size(); ++i) {
        ASSERT_NEAR(got[i], ref[i], tol[i])
            << isa_name(isa) << " case n_q=" << c.n_q << " heads=" << c.n_heads << "/"
            << c.n_kv_heads << " d=" << c.head_dim << " n_kv=" << c.n_kv << " at " << i;
      }
    }
  }
}

TEST(Attention, BitIdenticalAcrossThreadCounts) {
  std::mt19937 rng(3);
  for (const Case& c : {kCases[2], kCases[4], kCases[7]}) {
    KvSetup s;
    make(s, c, rng);
    for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
      IsaScope scope(isa);
      if (!scope.ok()) continue;
      std::vector<float> first;
      for (int threads : {1, 2, 3}) {
        ThreadPool pool(threads);
        std::vector<float> got = run(s, pool);
        if (first.empty()) {
          first = got;
        } else {
          ASSERT_EQ(0, std::memcmp(first.data(), got.data(), got.size() * 4))
              << isa_name(isa) << " threads=" << threads;
        }
      }
    }
  }
}

// Queries [i0, i1) of s's prompt as their own call, seeing positions < q_pos0 + i1 (as a chunked
// prefill or a decode step does), into out (laid out like the full call's output).
void run_part(const KvSetup& s, int i0, int i1, float* out, ThreadPool& pool) {
  AttentionArgs a = s.a;
  const size_t row = static_cast<size_t>(a.n_heads) * a.head_dim;
  a.q = s.a.q + i0 * row;
  a.out = out + i0 * row;
  a.n_q = i1 - i0;
  a.q_pos0 = s.a.q_pos0 + i0;
  a.n_kv = s.a.q_pos0 + i1;
  attention(a, pool);
}

TEST(Attention, QueryBitsDoNotDependOnTheCall) {
  // n_q, heads, kv_heads, head_dim, block_tokens, n_kv (= q_pos0 + n_q), q_pos0, kv: groups of
  // 1..8, head_dim not a multiple of 16, tiles straddling KV chunks and the causal boundary. The
  // single queries ("alone") are decode steps, whose tasks span several KV heads.
  const Case cases[] = {
      {70, 8, 2, 64, 16, 75, 5, DType::kF16},
      {45, 8, 8, 40, 7, 105, 60, DType::kF32},
      {37, 16, 2, 17, 16, 137, 100, DType::kF16},
      {50, 6, 2, 128, 16, 63, 13, DType::kF32},
      {33, 16, 8, 128, 16, 123, 90, DType::kF16},
      {20, 7, 1, 33, 5, 20, 0, DType::kF16},
      {9, 2, 2, 1, 3, 200, 191, DType::kF32},
      // With head_dim >= 128, decode steps past 1024 positions split the positions (below).
      {40, 12, 4, 136, 16, 1040, 1000, DType::kF16},
      {70, 2, 1, 128, 16, 1060, 990, DType::kF32},  // straddles position 1024
      // Decode steps take runs of whole KV heads (more KV heads than a task's 8 here).
      {6, 32, 16, 64, 16, 1100, 1094, DType::kF16},
      // q8_0 KV (34-byte blocks at odd addresses): transposed K, by rows past 1024, decode runs.
      {40, 16, 8, 128, 16, 75, 35, DType::kQ8_0},
      {30, 8, 2, 64, 7, 90, 60, DType::kQ8_0},
      {40, 8, 2, 128, 16, 1050, 1010, DType::kQ8_0},
      // Decode steps past 2048 positions split the positions among threads by 512-position
      // segments (units of a segment's KV head), folded in order: against the prefill's fold.
      {8, 16, 8, 128, 16, 2100, 2092, DType::kF16},
      {4, 32, 8, 64, 16, 2600, 2596, DType::kQ8_0},
      {3, 32, 32, 40, 7, 2050, 2047, DType::kF32},  // 4 tiles of 8 KV heads per segment
  };
  std::mt19937 rng(11);
  ThreadPool pool1(1), pool2(2), pool3(3);
  ThreadPool* alone_pools[] = {&pool2, &pool1, &pool3};  // decode splits differ by thread count
  for (const Case& c : cases) {
    KvSetup s;
    make(s, c, rng);
    const size_t row = static_cast<size_t>(c.n_heads) * c.head_dim;
    for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
      IsaScope scope(isa);
      if (!scope.ok()) continue;
      const std::vector<float> full = run(s, pool2);
      std::vector<float> alone(full.size()), chunked(full.size());
      for (int i = 0; i < c.n_q; ++i) run_part(s, i, i + 1, alone.data(), *alone_pools[i % 3]);
      for (int i0 = 0, n = 1; i0 < c.n_q; i0 += n, n = n % 13 + 3) {
        run_part(s, i0, std::min(c.n_q, i0 + n), chunked.data(), n % 2 ? pool1 : pool2);
      }
      for (int i = 0; i < c.n_q; ++i) {
        ASSERT_EQ(0, std::memcmp(full.data() + i * row, alone.data() + i * row, row * 4))
            << isa_name(isa) << " alone, query " << i << " of n_q=" << c.n_q << " d=" << c.head_dim
            << " heads=" << c.n_heads << "/" << c.n_kv_heads;
        ASSERT_EQ(0, std::memcmp(full.data() + i * row, chunked.data() + i * row, row * 4))
            << isa_name(isa) << " chunked, query " << i << " of n_q=" << c.n_q
            << " d=" << c.head_dim << " heads=" << c.n_heads << "/" << c.n_kv_heads;
      }
    }
  }
}

// q8_0 rows are read as their exact values (q · d): the same bits as f32 rows holding those
// values, on every ISA, for decode (one query) and prefill, both ways of computing scores.
TEST(Attention, Q8RowsGiveTheBitsOfF32RowsOfTheirValues) {
  std::mt19937 rng(5);
  ThreadPool pool(2);
  const Case cases[] = {
      {1, 16, 8, 128, 16, 1100, 1099, DType::kQ8_0},
      {1, 32, 8, 64, 16, 300, 299, DType::kQ8_0},
      {24, 8, 2, 128, 16, 1050, 1020, DType::kQ8_0},
      {24, 6, 3, 32, 7, 90, 60, DType::kQ8_0},
  };
  for (const Case& c : cases) {
    KvSetup q8, f32;
    make(q8, c, rng);
    Case cf = c;
    cf.kv = DType::kF32;
    make(f32, cf, rng);
    f32.q = q8.q;
    f32.a.q = f32.q.data() + 3;
    for (int p = 0; p < c.n_kv; ++p) {
      for (int g = 0; g < c.n_kv_heads; ++g) {
        for (int e = 0; e < c.head_dim; ++e) {
          const size_t idx =
              (static_cast<size_t>(p % c.block_tokens) * c.n_kv_heads + g) * c.head_dim + e;
          const auto put = [&](std::vector<std::vector<uint8_t>>& blocks, float v) {
            std::memcpy(blocks[p / c.block_tokens].data() + 4 + 4 * idx, &v, 4);
          };
          put(f32.kb, q8.k_at(p, g, e));
          put(f32.vb, q8.v_at(p, g, e));
        }
      }
    }
    for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
      IsaScope scope(isa);
      if (!scope.ok()) continue;
      const std::vector<float> a = run(q8, pool), b = run(f32, pool);
      ASSERT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * 4))
          << isa_name(isa) << " n_q=" << c.n_q << " d=" << c.head_dim << " n_kv=" << c.n_kv;
    }
  }
}

// The amx variant's prefill attention (calls of 32 queries or more, f16 KV, head_dim a multiple
// of 32, groups of up to 32 heads: attention_amx_impl.h) against naive attention in double on
// what it rounds to bf16 (naive's bf16 mode). Cases: Qwen3's heads at an offset across KV chunks,
// Llama's group of 4 at head_dim 64 from position 0, a group of 3 (padding rows) and ragged
// blocks, n_kv below the last query's position; and through the same entry two calls the AVX-512
// loop takes, against the exact reference: a group of 64 and f32 KV.
TEST(Attention, AmxPrefillWithinBf16Rounding) {
  IsaScope scope(Isa::kAmx);
  if (!scope.ok()) GTEST_SKIP() << "no AMX (nor AVX-512 to emulate it) here";
  ThreadPool pool(2);
  std::mt19937 rng(77);
  const Case cases[] = {
      {40, 16, 8, 128, 16, 300, 260, DType::kF16}, {64, 32, 8, 64, 16, 64, 0, DType::kF16},
      {33, 6, 2, 32, 5, 45, 12, DType::kF16},      {50, 8, 1, 64, 7, 40, 0, DType::kF16},
      {32, 64, 1, 32, 16, 70, 38, DType::kF16},    {48, 8, 2, 64, 16, 60, 12, DType::kF32},
  };
  for (const Case& c : cases) {
    KvSetup s;
    make(s, c, rng);
    std::vector<double> ref, tol;
    const bool tiles = c.kv == DType::kF16 && c.n_heads / c.n_kv_heads <= 32;
    naive(s, ref, tol, tiles);
    const std::vector<float> got = run(s, pool);
    for (size_t i = 0; i < ref.size(); ++i) {
      ASSERT_NEAR(got[i], ref[i], tol[i])
          << "case n_q=" << c.n_q << " heads=" << c.n_heads << "/" << c.n_kv_heads
          << " d=" << c.head_dim << " n_kv=" << c.n_kv << " at " << i;
    }
  }
}

// The calls the amx variant leaves to the AVX-512 loop with f16 KV (decode steps and calls of
// fewer than 32 queries) take scores by rows from position 0 (kernel_table.h: attention_rows)
// when the tiles take the prefill of their shape (head_dim a multiple of 32, up to 256):
// against the exact reference, and each query's bits the same alone (a decode step, split by KV
// heads or, past 1024 positions, by positions) and in chunks of 3–15 queries.
TEST(Attention, AmxDecodeTakesScoresByRowsFromTheStart) {
  IsaScope scope(Isa::kAmx);
  if (!scope.ok()) GTEST_SKIP() << "no AMX (nor AVX-512 to emulate it) here";
  std::mt19937 rng(21);
  ThreadPool pool1(1), pool2(2), pool3(3);
  ThreadPool* pools[] = {&pool2, &pool1, &pool3};
  const Case cases[] = {
      {30, 16, 8, 128, 16, 90, 60, DType::kF16},      // Qwen3's heads, one chunk and more
      {20, 12, 4, 160, 16, 1040, 1020, DType::kF16},  // head_dim 160, past 1024
      {12, 8, 2, 64, 7, 40, 28, DType::kF16},         // head_dim 64: transposed, as before
      {10, 4, 2, 136, 5, 60, 50, DType::kF16},        // 136: no tiles for its prefill, as before
  };
  for (const Case& c : cases) {
    KvSetup s;
    make(s, c, rng);
    std::vector<double> ref, tol;
    naive(s, ref, tol);
    const size_t row = static_cast<size_t>(c.n_heads) * c.head_dim;
    std::vector<float> alone(ref.size()), chunked(ref.size());
    for (int i = 0; i < c.n_q; ++i) run_part(s, i, i + 1, alone.data(), *pools[i % 3]);
    for (int i0 = 0, n = 3; i0 < c.n_q; i0 += n, n = n % 13 + 3) {
      run_part(s, i0, std::min(c.n_q, i0 + n), chunked.data(), n % 2 ? pool1 : pool2);
    }
    for (size_t i = 0; i < ref.size(); ++i) {
      ASSERT_NEAR(alone[i], ref[i], tol[i]) << "d=" << c.head_dim << " at " << i;
    }
    ASSERT_EQ(0, std::memcmp(alone.data(), chunked.data(), alone.size() * 4))
        << "d=" << c.head_dim << " rows of " << row;
    // The wiring: the avx512 variant's decode of queries before 1024 (transposed K, other fma
    // chains) rounds differently somewhere; where both transpose (head_dim 64, or a shape whose
    // prefill the tiles do not take), bit for bit.
    std::vector<float> avx512(ref.size());
    {
      IsaScope plain(Isa::kAvx512);
      for (int i = 0; i < c.n_q; ++i) run_part(s, i, i + 1, avx512.data(), pool2);
    }
    const bool same = std::memcmp(alone.data(), avx512.data(), alone.size() * 4) == 0;
    const bool by_rows = c.head_dim >= 128 && c.head_dim % 32 == 0;
    EXPECT_EQ(!by_rows, same) << "d=" << c.head_dim;
  }
}

TEST(Attention, NoKvGivesZerosAndBadArgsThrow) {
  ThreadPool pool(2);
  std::vector<float> q(2 * 4 * 8, 1.0f), out(q.size(), 3.0f);
  AttentionArgs a{q.data(), out.data(), 2, 4, 2, 8, nullptr, nullptr, DType::kF32, 16, 0, 0, 1.0f};
  attention(a, pool);
  for (float v : out) EXPECT_EQ(v, 0.0f);
  AttentionArgs bad = a;
  bad.n_kv_heads = 3;
  EXPECT_THROW(attention(bad, pool), Error);
  bad = a;
  bad.kv_dtype = DType::kQ8_0;  // head_dim 8: not a whole q8_0 block
  EXPECT_THROW(attention(bad, pool), Error);
  bad = a;
  bad.kv_dtype = DType::kQ4_0;
  EXPECT_THROW(attention(bad, pool), Error);
  bad = a;
  bad.head_dim = kMaxHeadDim + 1;
  EXPECT_THROW(attention(bad, pool), Error);
}

}  // namespace
}  // namespace runnel::kernels::cpu
