// The tiled flash-attention loop shared by the AVX2 and AVX-512 variants (attention_avx2.cpp,
// attention_avx512.cpp), each of which includes it with its own vector primitives (V), so the
// loop is compiled once per ISA with that ISA's flags. Internal linkage: copies compiled for
// different ISAs can never be mixed.
//
// A task is (tile of consecutive queries × run of heads sharing one KV head), or in a decode step
// (one query) a run of whole KV heads, so each K/V row of a chunk is widened once and used by
// every (query, head) row of the tile; the running outputs are
// register-blocked over rows. Scores come one of two ways, chosen per query by its position and
// the shape alone (so a query gets the same arithmetic in a decode step and in any prefill):
//   * vertical FMAs over a transposed K chunk (lanes = KV positions), one fma chain per score over
//     e in order: queries before kRowsMinPos, head_dim < kRowsMinHeadDim, or V without qk_rows;
//   * otherwise (AVX-512; AVX2 since session 10, the same chains on pairs of ymm): q and K rows
//     as they are (lanes along the head), 16 fma chains per score reduced in a fixed tree. No
//     transpose, so decode reads K in place: qwen06b Q4_0 decode after 2048 positions 30.0 -> 42.9
//     tok/s (AVX-512), 12.7 -> 14.0 (AVX2, a slower VM). The reduction makes prefill attention
//     ~18% slower on AVX-512 (qwen06b pp512 after 1536 positions 367 -> 324 tok/s), hence only
//     past position 1024, where decode's attention outweighs prefill's, and not for head_dim 64
//     (reduction ~70% of the FMAs). Except where prefill does not come here: the amx variant's
//     f16 KV prefill goes through the tiles (attention_amx_impl.h), so its calls of this loop
//     for shapes the tiles take (decode steps, calls of fewer than 32 queries) take scores by
//     rows from position 0 (attention_tiled's rows_min_pos; kernel_table.h: attention_rows).
//     Session 33, qwen06b Q4_0 tg64 after 512 positions, alternating: 54.3 / 55.8 / 55.2 ->
//     58.8 / 57.9 / 58.7 tok/s (attention 24-25% -> 21-22% of the step); the transposes, not
//     the reads, bounded it: the same decode from cache (bench_kernels --attention --isa amx,
//     n_kv=1000) 0.113-0.120 -> 0.092 ms.
// V supplies, for kLanes-wide vectors (dp = head_dim rounded up to kLanes); the functions that
// read K/V rows take pf, nullptr or one row per row read: as row j is read, the same lines of
// pf[j] are prefetched into L1 (decode, below):
//   transpose_k<T>(krow, c, d, dp, kt, pf)  kt[e * kChunk + j] = K[j][e], zero for c <= j <
//                                        kLanes·⌈c/kLanes⌉
//   widen_v<T>(rows, c, d, dp, out, pf)  out[j * dp + e] = rows[j][e] as f32, zero for d <= e < dp
//   qk(n, nv, q, kt, d, scale, s)        s[r][l] = scale · Σ_e q[r][e]·kt[e][l] for n rows and nv
//                                        vectors of lanes, one fma per e in order from 0
//   qk_rows<T>(n, q, krow, c, d, scale, s, pf)  (optional) s[r][j] = scale · score(q[r], krow[j])
//                                        for j < c, rows read in place
//   qk_direct<T>(n, q, krow, c, d, scale, s, pf)  (optional) qk over transpose_k's kt of these
//                                        rows, the same fmas, each block of K transposed in
//                                        registers and used at once (no kt): when one register
//                                        block reads the transposed rows (decode)
//   softmax_row(s, c_r, nv_pad, mx, sum) the online-softmax step (below), returns alpha
//   pv<T>(n, acc, dp, p, alpha, vr, c, pf)  acc[r] = acc[r]·alpha[r], then one fma per position
//                                        j < c in order, acc[r] += p[r][j]·vr[j], over all dp lanes
//   store_row(acc, inv, d, out)          out[e] = acc[e] · inv for e < d
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <vector>

#include "base/thread_pool.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/attention_rows.h"
#include "kernels/cpu/prefetch.h"

namespace runnel::kernels::cpu {
namespace {

constexpr int kTileChunk = 64;          // KV positions per step; steps start at multiples of it
constexpr int kTileMaxRows = 64;        // (query, head) rows per tile
constexpr int kTileMaxKvHeads = 8;      // KV heads per tile (several only for a single query)
constexpr int kTileRb = 4;              // rows per register block
constexpr int kRowsMinHeadDim = 128;    // scores by rows: see attention_tile
constexpr int kRowsMinPos = 1024;       // and for queries from this position on
constexpr int kStreamRows = 32;         // decode prefetches rows this far ahead (below)
constexpr int kSegment = 512;           // positions per softmax segment (fold_segment)
constexpr int kSplitMinPos = 2048;      // decode splits positions among threads from here on,
constexpr int kSplitMinPosRows = 1024;  // from here on when scores go by rows (head_dim >= 128)
static_assert(kSegment % kTileChunk == 0, "segments are whole chunks");
constexpr const float* const* kNoPrefetch = nullptr;  // for rows in scratch

// Scratch per thread: sized for the largest head_dim (too big for every caller's stack).
struct TileScratch {
  alignas(64) float kt[kMaxHeadDim * kTileChunk];
  alignas(64) float kf[kTileChunk * kMaxHeadDim];
  const float* krow[kTileChunk];
  alignas(64) float vf[kTileChunk * kMaxHeadDim];
  alignas(64) float acc[kTileMaxRows * kMaxHeadDim];
  alignas(64) float total[kTileMaxRows * kMaxHeadDim];  // the rows' folded segments
  alignas(64) float s[kTileMaxRows * kTileChunk];
  const float* vrow[kTileChunk];  // vrow[j] = vf + j * dp, set by attention_tile
};

// This thread's scratch, made at its first call. Until session 34 it was a thread_local
// TileScratch itself: 672 KiB in every thread's static TLS block for each variant that includes
// this file (1.3 MiB a thread, zeroed at each thread's start, the server's connection threads
// too), and the placement of every thread's stack moved with the size of unrelated thread_locals:
// a commit that shrank them by 128 bytes made every F16 decode step 5-8% slower (llama1b and
// qwen06b F16, alternating runs; bench/RESULTS.md, session 34).
TileScratch& tile_scratch() {
  thread_local std::unique_ptr<TileScratch> sc;
  if (!sc) sc = std::make_unique<TileScratch>();
  return *sc;
}

// The online softmax of a row restarts at every multiple of kSegment positions; each segment's
// state (its max m, sum s and unnormalized output acc over dp lanes) is folded into the row's
// total in position order, here for every caller: by attention_tile as its chunks cross a segment
// boundary, and by a decode step's split (attention_tiled) after its tasks computed the segments
// apart. The first segment becomes the total as it is, so a row of at most kSegment positions
// gets exactly the arithmetic of a single online softmax.
struct RowTotal {
  float m = 0, s = 0;
  bool any = false;
};
inline void fold_segment(float m, float s, const float* acc, int dp, RowTotal& t, float* total) {
  if (!t.any) {
    t = {m, s, true};
    std::copy(acc, acc + dp, total);
    return;
  }
  // mn is one of the two maxima, whose factor is exp(0) = 1 exactly: one exp per fold.
  const float mn = std::max(t.m, m);
  const float a_total = t.m == mn ? 1.0f : std::exp(t.m - mn);
  const float a_seg = m == mn ? 1.0f : std::exp(m - mn);
  for (int e = 0; e < dp; ++e) total[e] = std::fma(acc[e], a_seg, total[e] * a_total);
  t.s = std::fma(s, a_seg, t.s * a_total);
  t.m = mn;
}

// A decode step's segment task (attention_tiled): positions [pa, pb) only, each row's segment
// state written to part + row * part_stride as m, s (floats 0 and 1) and acc (from float 16).
struct SegmentTask {
  int pa, pb;
  float* part;
  size_t part_stride;
};
constexpr size_t kPartAcc = 16;

// Invariant (bit-identity): for row r = (query, head), chunks start at absolute positions
// 0, kTileChunk, ...; per chunk its scores are one fma chain over e (lanes independent), its
// max/exp/sum only read its own c_r positions (in vectors from the chunk's start), and its output
// lanes get acc·alpha then one fma per position of the chunk in order, where positions past c_r
// (needed by later queries of the tile) have weight exactly 0: fma(0, v, acc) == acc because acc
// is never -0. Rows of queries that see no position of a chunk skip it. So a row's bits depend
// only on its own query, n_kv and the data, not on the tile, the thread or n_q.
template <class V, class T>
void attention_tile(const AttentionArgs& a, int rows_min_pos, int i0, int i1, int h0, int h1,
                    TileScratch& sc, const SegmentTask* seg = nullptr) {
  constexpr int kL = V::kLanes;
  const int d = a.head_dim, dp = (d + kL - 1) / kL * kL;
  const int group = a.n_heads / a.n_kv_heads;
  // KV heads [g0, g1): one, or (a single query: decode) several, whose rows are then contiguous
  // runs of the tile's rows (row r = head h0 + r).
  const int g0 = h0 / group, g1 = (h1 - 1) / group + 1;
  const int nh = h1 - h0, nq = i1 - i0, nr = nq * nh;
  const float* qrow[kTileMaxRows];
  int valid[kTileMaxRows];  // per query of the tile: kv positions it sees (non-decreasing)
  for (int t = 0; t < nq; ++t) {
    valid[t] = std::min(a.n_kv, a.q_pos0 + i0 + t + 1);
    if (seg) valid[t] = std::min(valid[t], seg->pb);
    for (int h = 0; h < nh; ++h) {
      qrow[t * nh + h] = a.q + (static_cast<size_t>(i0 + t) * a.n_heads + h0 + h) * d;
    }
  }
  for (int j = 0; j < kTileChunk; ++j) {
    sc.vrow[j] = sc.vf + j * dp;
    sc.krow[j] = sc.kf + j * dp;
  }
  // Rows [rs, nr) take their scores by rows (V::qk_rows: q and K rows as they are, lanes along
  // the head, a reduction per score): those of queries at positions >= rows_min_pos, when
  // head_dim >= kRowsMinHeadDim and V has qk_rows. The others use a transposed K chunk. The
  // choice depends only on the query's position, the shape and rows_min_pos (fixed for a
  // variant and KV type), so a query gets the same arithmetic in a decode step and in any
  // prefill through this loop.
  constexpr bool kHasRows = requires { &V::template qk_rows<T>; };
  constexpr bool kHasDirect = requires { &V::template qk_direct<T>; };
  int rs = nr;
  if (kHasRows && d >= kRowsMinHeadDim) {
    rs = nh * std::clamp(rows_min_pos - (a.q_pos0 + i0), 0, nq);
  }
  float mx[kTileMaxRows], sum[kTileMaxRows], alpha[kTileMaxRows];
  RowTotal tot[kTileMaxRows];
  for (int r = 0; r < nr; ++r) {
    mx[r] = -std::numeric_limits<float>::infinity();
    sum[r] = 0;
    std::fill(sc.acc + r * dp, sc.acc + (r + 1) * dp, 0.0f);
  }
  const size_t row = static_cast<size_t>(a.n_kv_heads) * d;  // elements per position in a block
  const int n_max = valid[nq - 1];
  const int pa = seg ? seg->pa : 0;  // a multiple of kSegment
  // Rows that saw positions of the segment just read: folded into their totals, then restarted.
  const auto end_segment = [&] {
    for (int r = 0; r < nr; ++r) {
      if (sum[r] == 0) continue;  // saw none (a seen position adds exp(0) = 1)
      fold_segment(mx[r], sum[r], sc.acc + r * dp, dp, tot[r], sc.total + r * dp);
      mx[r] = -std::numeric_limits<float>::infinity();
      sum[r] = 0;
      std::fill(sc.acc + r * dp, sc.acc + (r + 1) * dp, 0.0f);
    }
  };
  // K/V rows of a chunk: one head's d elements every row * sizeof(T) bytes, a strided pattern
  // the hardware prefetchers follow late, so rows are prefetched ahead of use.
  // Prefill: the first chunk's V (and the next chunk's K and V) while this chunk's K is
  // transposed, into L2: with a row stride of 1–4 KiB (8 KV heads) a chunk's rows fall in a few
  // L1 sets, and lines prefetched into L1 were evicted before use (T1 over T0: 10–25% faster in
  // session 7's bench_kernels --attention, whose KV then fit in L3).
  // Decode (one query): as each row is read, the row kStreamRows further on in this task's
  // reading order (this KV head's chunk, then the next head's, then the next chunk's), line by
  // line into L1 (the primitives' pf tables), the way the GEMV kernels stream their weights.
  // Until session 19 decode prefetched the next chunk of every KV head at once, into L1 at the
  // start of a chunk: thousands of lines in one burst, which measured no better than no prefetch
  // (session 18). Step time, burst / as it reads (token by token in one run, Emerald Rapids VM, 2
  // threads): qwen06b Q4_0 decode after 1024 / 2048 / 4096 positions 1.03 / 1.08 / 1.10-1.15,
  // llama1b Q4_0 after 4096 1.11, after 0 1.00. (Rows 32 ahead: the same.) Those figures came
  // from the V rows and the transposed K alone: GCC 12 dropped the K-row prefetches of qk_rows
  // (scores by rows, positions >= kRowsMinPos) from the binary until session 20 (prefetch.h).
  // With them, token by token, qwen06b Q4_0 f16 KV steps after 2048 / 4096 positions are 1.12-1.13
  // / 1.14-1.16 times shorter; and 32 rows ahead instead of 16 then gained 3% (f16) and 3-11%
  // (q8_0) after 4096 positions, 1-2% on llama1b, nothing at 256 / 1024 (48: as 32).
  // Position p is row p % block_tokens of block p / block_tokens: one division per call, then
  // counted (a division per row: qwen06b Q4_0 decode steps after 4096 positions 0.7-2.6% longer,
  // token by token; llama1b within noise).
  const auto rows_of = [&](int p0, int c, int g, const T** kr, const T** vr) {
    int b = p0 / a.block_tokens, in_block = p0 % a.block_tokens;
    for (int j = 0; j < c; ++j) {
      const size_t off =
          (static_cast<size_t>(in_block) * row + static_cast<size_t>(g) * d) / kUnitElems<T>;
      kr[j] = static_cast<const T*>(a.k_blocks[b]) + off;
      vr[j] = static_cast<const T*>(a.v_blocks[b]) + off;
      if (++in_block == a.block_tokens) {
        in_block = 0;
        ++b;
      }
    }
  };
  const bool stream = a.n_q == 1;
  const auto prefetch_rows = [&](const T* const* r, int c) {
    const size_t bytes = head_row_bytes<T>(d);  // q8_0 rows (34-byte blocks) start anywhere
    for (int j = 0; j < c; ++j) {
      const uintptr_t p = reinterpret_cast<uintptr_t>(r[j]);
      for (uintptr_t l = p & ~uintptr_t{63}; l < p + bytes; l += 64) {
        prefetch<kL2>(reinterpret_cast<const void*>(l));
      }
    }
  };
  // Decode: pf[j] = the row kStreamRows after rows[j] in reading order, where `next` (c_next
  // rows) is read after `rows` (c rows); the last rows' own when nothing follows.
  const auto ahead = [](const T* const* rows, int c, const T* const* next, int c_next,
                        const T** pf) {
    for (int j = 0; j < c; ++j) {
      const int i = j + kStreamRows;
      pf[j] = i < c ? rows[i] : i - c < c_next ? next[i - c] : rows[j];
    }
  };
  const T* kpf[kTileChunk];
  const T* vpf[kTileChunk];
  const int ng = g1 - g0;
  // K and V row pointers of the current and the next chunk, kTileChunk per KV head.
  const T* kbuf[2][kTileMaxKvHeads * kTileChunk];
  const T* vbuf[2][kTileMaxKvHeads * kTileChunk];
  const auto krows = [&](int buf, int g) { return kbuf[buf] + (g - g0) * kTileChunk; };
  const auto vrows = [&](int buf, int g) { return vbuf[buf] + (g - g0) * kTileChunk; };
  for (int g = g0; g < g1; ++g)
    rows_of(pa, std::min(kTileChunk, n_max - pa), g, krows(0, g), vrows(0, g));
  if (stream) {  // the rows nothing before prefetches
    prefetch_rows(krows(0, g0), std::min(kStreamRows, n_max - pa));
    prefetch_rows(vrows(0, g0), std::min(kStreamRows, n_max - pa));
  }
  for (int p0 = pa, cur = 0; p0 < n_max; p0 += kTileChunk, cur ^= 1) {
    if (p0 > pa && p0 % kSegment == 0) end_segment();
    const int c = std::min(kTileChunk, n_max - p0);
    const int c_next = std::min(kTileChunk, n_max - p0 - kTileChunk);
    for (int g = g0; g < g1; ++g) {
      if (p0 == pa && !stream) prefetch_rows(vrows(cur, g), c);
      if (c_next > 0) {
        rows_of(p0 + kTileChunk, c_next, g, krows(cur ^ 1, g), vrows(cur ^ 1, g));
        if (!stream) {
          prefetch_rows(krows(cur ^ 1, g), c_next);
          prefetch_rows(vrows(cur ^ 1, g), c_next);
        }
      }
    }
    int t0 = 0;  // first query of the tile that sees a position of this chunk
    while (valid[t0] <= p0) ++t0;
    for (int g = g0; g < g1; ++g) {
      // This KV head's rows: all of them (one KV head), or its run of heads (one query).
      const int ra = ng == 1 ? t0 * nh : std::max(h0, g * group) - h0;
      const int re = ng == 1 ? nr : std::min(h1, (g + 1) * group) - h0;
      const T* const* kr = krows(cur, g);
      const T* const* vr = vrows(cur, g);
      const T* const* kp = nullptr;  // rows to prefetch as kr / vr are read (decode)
      const T* const* vp = nullptr;
      if (stream) {
        const bool last = g + 1 == g1;  // then the next chunk's first KV head follows
        ahead(kr, c, last ? krows(cur ^ 1, g0) : krows(cur, g + 1), last ? c_next : c, kpf);
        ahead(vr, c, last ? vrows(cur ^ 1, g0) : vrows(cur, g + 1), last ? c_next : c, vpf);
        kp = kpf;
        vp = vpf;
      }
      // One register block of transposed rows (decode: a query's heads of this KV head) takes
      // its scores straight from K (V::qk_direct: the same fmas, no kt).
      const bool direct = kHasDirect && std::min(rs, re) - ra <= kTileRb;
      if (ra < std::min(rs, re) && !direct) V::transpose_k(kr, c, d, dp, sc.kt, kp);
      // V rows are widened (and zero-padded to dp) into contiguous scratch, except rows of a
      // whole number of vectors that only one row block reads (decode; f16 rows are then widened
      // as pv loads them): the copy would cost more than it saves. Read in place by several row
      // blocks, rows 1–4 KiB apart share a few L1 sets and keep missing (copying: prefill 10–15%
      // faster in bench_kernels --attention, one thread). Same values either way, so the same
      // bits.
      const bool in_place = d == dp && re - ra <= kTileRb;
      if (!in_place) V::widen_v(vr, c, d, dp, sc.vf, vp);
      // K rows for the by-rows rows: in place when one row block reads them (decode).
      const bool k_in_place = re - std::max(ra, rs) <= kTileRb;
      if (std::max(ra, rs) < re && !k_in_place) V::widen_v(kr, c, d, dp, sc.kf, kp);
      // Register blocks of up to kTileRb rows, none spanning rs.
      for (int rb = ra, n = 0; rb < re; rb += n) {
        const bool by_rows = rb >= rs;
        n = std::min(kTileRb, (by_rows ? re : std::min(rs, re)) - rb);
        // The block's last row belongs to its latest query: the most positions of the block.
        const int c_blk = std::min(c, valid[(rb + n - 1) / nh] - p0);
        const int nv = (c_blk + kL - 1) / kL;
        float* s = sc.s + rb * kTileChunk;
        if constexpr (kHasRows) {
          if (by_rows && k_in_place) V::qk_rows(n, qrow + rb, kr, c_blk, d, a.scale, s, kp);
          if (by_rows && !k_in_place) {
            V::qk_rows(n, qrow + rb, sc.krow, c_blk, d, a.scale, s, kNoPrefetch);
          }
        }
        if constexpr (kHasDirect) {
          if (!by_rows && direct) V::qk_direct(n, qrow + rb, kr, c_blk, d, a.scale, s, kp);
        }
        if (!by_rows && !direct) V::qk(n, nv, qrow + rb, sc.kt, d, a.scale, s);
        for (int r = rb; r < rb + n; ++r) {
          const int c_r = std::min(c, valid[r / nh] - p0);
          alpha[r] = V::softmax_row(sc.s + r * kTileChunk, c_r, nv, mx[r], sum[r]);
        }
        if (in_place) {
          V::pv(n, sc.acc + rb * dp, dp, sc.s + rb * kTileChunk, alpha + rb, vr, c_blk, vp);
        } else {
          V::pv(n, sc.acc + rb * dp, dp, sc.s + rb * kTileChunk, alpha + rb, sc.vrow, c_blk,
                kNoPrefetch);
        }
      }
    }
  }
  if (seg) {
    for (int r = 0; r < nr; ++r) {
      float* p = seg->part + static_cast<size_t>(r) * seg->part_stride;
      p[0] = mx[r];
      p[1] = sum[r];
      std::copy(sc.acc + r * dp, sc.acc + (r + 1) * dp, p + kPartAcc);
    }
    return;
  }
  for (int r = 0; r < nr; ++r) {
    float* out = a.out + (static_cast<size_t>(i0 + r / nh) * a.n_heads + h0 + r % nh) * d;
    float* total = sc.total + r * dp;
    if (sum[r] != 0 && !tot[r].any) {  // one segment: its state is the total
      V::store_row(sc.acc + r * dp, 1.0f / sum[r], d, out);
      continue;
    }
    if (sum[r] != 0) fold_segment(mx[r], sum[r], sc.acc + r * dp, dp, tot[r], total);
    if (tot[r].any) {
      V::store_row(total, 1.0f / tot[r].s, d, out);
    } else {
      std::fill(out, out + d, 0.0f);
    }
  }
}

// rows_min_pos: kRowsMinPos, or 0 where prefill does not take this loop (attention_amx_impl.h).
template <class V>
void attention_tiled(const AttentionArgs& a, ThreadPool& pool, int rows_min_pos = kRowsMinPos) {
  const int group = a.n_heads / a.n_kv_heads;
  const auto tile = [&](int i0, int i1, int h0, int h1, const SegmentTask* seg = nullptr) {
    TileScratch& sc = tile_scratch();  // this thread's
    with_kv_type(a.kv_dtype, [&]<class T>() {
      attention_tile<V, T>(a, rows_min_pos, i0, i1, h0, h1, sc, seg);
    });
  };
  const int threads = pool.n_threads();
  // A decode step after kSplitMinPos positions: the threads split the positions, not the KV
  // heads, so each streams whole rows (every KV head of a position, where a share of the heads is
  // a run of every row, read with gaps); each task leaves its segments' states and the caller
  // folds them per head in position order, the arithmetic of any prefill of the same query.
  // Token by token, against the split by KV heads (Emerald Rapids VM, 2 threads): qwen06b Q4_0
  // decode steps after 2048 / 4096 / 8192 positions 0.958 / 0.946-0.954 / 0.940 of the time, Q8_0
  // after 4096 0.942-0.963; AVX2 (RUNNEL_CPU=avx2) qwen06b Q4_0 after 4096 0.926 / 0.940;
  // llama1b Q4_0 after 4096 0.96-1.04 over 10 runs, median 0.99 (its head_dim-64 attention is bound
  // by the register transposes, not by memory); after 600 positions (two segments) qwen06b steps
  // took 1.01-1.03 times as long, hence the threshold. The fold runs on the caller alone: per layer
  // n_heads x segments folds of head_dim lanes (16 x 8 x 128 for qwen06b after 4096 positions).
  // Session 32 (Sapphire Rapids VM): with head_dim 128 the split pays from 1024 positions, where
  // the scores go by rows: qwen06b Q4_0 tg32 after 1100 / 1500 positions, alternating, 49.97 /
  // 48.44 -> 51.83 / 52.14 and 43.52 / 43.14 -> 45.30 / 45.41 tok/s (after 600, split from
  // 512: 58.9 / 61.0 -> 56.1 / 57.4, slower); llama1b (head_dim 64) 37.1 / 35.6 / 34.5 / 36.0
  // -> 36.3 / 36.4 / 34.5 / 35.0 after 1100 / 1500, no gain, so it keeps 2048.
  const int n_valid = std::min(a.n_kv, a.q_pos0 + 1);
  const int split_min = a.head_dim >= kRowsMinHeadDim ? kSplitMinPosRows : kSplitMinPos;
  if (a.n_q == 1 && threads > 1 && n_valid >= split_min && group <= kTileMaxRows) {
    constexpr int kL = V::kLanes;
    const int d = a.head_dim, dp = (d + kL - 1) / kL * kL;
    const int n_seg = (n_valid + kSegment - 1) / kSegment;
    const int kvpt = std::min(kTileMaxKvHeads, kTileMaxRows / group);
    const size_t stride = kPartAcc + static_cast<size_t>(dp);
    const size_t per_seg = static_cast<size_t>(a.n_heads) * stride;
    thread_local std::vector<float> parts;  // the caller's; the tasks write into it
    if (parts.size() < n_seg * per_seg) parts.resize(n_seg * per_seg);
    float* part = parts.data();
    // Units (segment, KV head) in position order, weighed by the segment's positions; each
    // thread takes the units whose middle falls in its share of the total, so the threads' shares
    // differ by at most one unit, and a thread reads whole rows (every KV head) of all but its
    // first and last segments.
    const int nkv = a.n_kv_heads;
    const auto seg_len = [&](int sg) {
      return std::min(n_valid, (sg + 1) * kSegment) - sg * kSegment;
    };
    const int64_t total_w = static_cast<int64_t>(n_valid) * nkv;
    pool.run(threads, [&](int task, int) {
      int64_t start = 0;
      for (int sg = 0; sg < n_seg; ++sg) {
        const int len = seg_len(sg);
        int ga = nkv, gb = 0;  // this task's KV heads of the segment: [ga, gb)
        for (int g = 0; g < nkv; ++g, start += len) {
          if ((2 * start + len) * threads / (2 * total_w) != task) continue;
          ga = std::min(ga, g);
          gb = g + 1;
        }
        for (int g0 = ga; g0 < gb; g0 += kvpt) {
          const int g1 = std::min(gb, g0 + kvpt);
          const SegmentTask st{sg * kSegment, sg * kSegment + len,
                               part + sg * per_seg + static_cast<size_t>(g0) * group * stride,
                               stride};
          tile(0, 1, g0 * group, g1 * group, &st);
        }
      }
    });
    alignas(64) float total[kMaxHeadDim];
    for (int h = 0; h < a.n_heads; ++h) {
      RowTotal t;
      for (int sg = 0; sg < n_seg; ++sg) {
        const float* p = part + sg * per_seg + static_cast<size_t>(h) * stride;
        if (p[1] != 0) fold_segment(p[0], p[1], p + kPartAcc, dp, t, total);
      }
      float* out = a.out + static_cast<size_t>(h) * d;
      if (!t.any) {
        std::fill(out, out + d, 0.0f);
      } else {
        V::store_row(total, 1.0f / t.s, d, out);
      }
    }
    return;
  }
  // A decode step with more KV heads than threads: each task takes a run of whole KV heads, as
  // few tasks as threads, and reads all its heads' rows chunk by chunk (attention_tile). A
  // position's row then gives each thread one run of kvpt · head_dim elements instead of kvpt
  // runs of head_dim at different times: qwen06b Q4_0 decode after 2048 positions 32.0 -> 33.9
  // tok/s (medians of 7 alternating runs; attention 59% -> 56-57% of the step), llama1b unchanged
  // (Emerald Rapids VM, 2 threads). The rows' arithmetic does not depend on the split.
  if (a.n_q == 1 && a.n_kv_heads > threads && group <= kTileMaxRows) {
    const int kvpt =
        std::min({(a.n_kv_heads + threads - 1) / threads, kTileMaxKvHeads, kTileMaxRows / group});
    const int n_tasks = (a.n_kv_heads + kvpt - 1) / kvpt;
    pool.run(n_tasks, [&](int task, int) {
      const int g0 = task * kvpt, g1 = std::min(a.n_kv_heads, g0 + kvpt);
      tile(0, 1, g0 * group, g1 * group);
    });
    return;
  }
  // Heads per task: the whole group when there is enough parallelism, fewer otherwise; then as
  // many queries per tile as fit kTileMaxRows, fewer when there are too few tasks. Neither choice
  // changes any output bit.
  const int want = 4 * threads;
  int hs = std::min(group, kTileMaxRows);
  while (hs > 1 && static_cast<long>(a.n_q) * a.n_kv_heads * ((group + hs - 1) / hs) < want) {
    hs = (hs + 1) / 2;
  }
  const int runs_per_group = (group + hs - 1) / hs;
  const int runs = a.n_kv_heads * runs_per_group;
  int tq = std::max(1, kTileMaxRows / hs);
  while (tq > 1 && static_cast<long>((a.n_q + tq - 1) / tq) * runs < want) tq = (tq + 1) / 2;
  const int n_tiles = (a.n_q + tq - 1) / tq;
  pool.run(n_tiles * runs, [&](int task, int) {
    // Latest tiles first: they see the most positions, so the causal tail balances out.
    const int t = n_tiles - 1 - task / runs;
    const int r = task % runs;
    const int g = r / runs_per_group;
    const int h0 = g * group + (r % runs_per_group) * hs;
    const int h1 = std::min(h0 + hs, (g + 1) * group);
    const int i0 = t * tq;
    tile(i0, std::min(i0 + tq, a.n_q), h0, h1);
  });
}

}  // namespace
}  // namespace runnel::kernels::cpu
