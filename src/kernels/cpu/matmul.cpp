// The matmul entry point: validates, quantizes activations when the weight type needs it, and
// splits y into tiles over the thread pool. The per-ISA tile kernels do the arithmetic.
#include "kernels/cpu/matmul.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "base/cpu.h"
#include "base/error.h"
#include "base/thread_pool.h"
#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/kernel_time.h"
#include "kernels/cpu/packed.h"

namespace runnel::kernels::cpu {

namespace {

// Blocks of 32 whose scale is the amax of each `group` elements (32 or 256) / 127.
void quantize_q8_groups(const float* x, size_t k, size_t group, BlockQ8Act* out) {
  for (size_t g0 = 0; g0 < k; g0 += group) {
    float amax = 0;
    for (size_t j = g0; j < g0 + group; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d > 0 ? 1.0f / d : 0.0f;
    for (size_t b = g0; b < g0 + group; b += 32, ++out) {
      int32_t sum = 0;
      for (int j = 0; j < 32; ++j) {
        // Round to nearest even, like cvtps2dq in the SIMD paths, and clamp in case of rounding
        // up.
        int q = static_cast<int>(std::nearbyint(x[b + j] * id));
        q = std::clamp(q, -127, 127);
        out->qs[j] = static_cast<int8_t>(q);
        sum += q;
      }
      for (int l = 0; l < 8; ++l) {
        out->lsum[l] =
            out->qs[4 * l] + out->qs[4 * l + 1] + out->qs[4 * l + 2] + out->qs[4 * l + 3];
      }
      out->d = d;
      out->sum = sum;
    }
  }
}

}  // namespace

void quantize_act_q8(const float* x, size_t k, BlockQ8Act* out) {
  quantize_q8_groups(x, k, 32, out);
}
void quantize_act_q8_256(const float* x, size_t k, BlockQ8Act* out) {
  quantize_q8_groups(x, k, 256, out);
}

bool matmul_supports(DType wtype) {
  if (wtype >= DType::kCount) return false;
  const MatmulEntry& e = kernel_table().matmul[static_cast<int>(wtype)];
  return e.tile != nullptr || e.packed != nullptr;
}

namespace {

// Quantized activations live here between calls: grows to the largest m*k seen, never shrinks,
// so steady-state decode and prefill allocate nothing.
std::vector<BlockQ8Act>& act_scratch() {
  thread_local std::vector<BlockQ8Act> buf;
  return buf;
}

size_t round_up(size_t v, size_t to) { return (v + to - 1) / to * to; }

// x in bf16 (MatmulEntry::bf16), like act_scratch: 64-byte lines, rows of whole lines.
uint16_t* bf16_scratch(size_t lines) {
  struct alignas(64) Line {
    uint16_t h[32];
  };
  thread_local std::vector<Line> buf;
  if (buf.size() < lines) buf.resize(lines);
  return buf.data()->h;
}

// Each thread's expanded weight slice (MatmulEntry::expand): grows to the largest seen, never
// shrinks; 64-byte lines, so the kernel's vector loads never split one.
uint8_t* expand_scratch(size_t bytes) {
  struct alignas(64) Line {
    uint8_t b[64];
  };
  thread_local std::vector<Line> buf;
  if (buf.size() * sizeof(Line) < bytes) buf.resize((bytes + sizeof(Line) - 1) / sizeof(Line));
  return buf.data()->b;
}

// Packed weights (packed.h): groups of 16 rows, each y[i, 16g..16g+15] one lane of a zmm.
// Decode: ThreadPool::run_ranges gives each thread one contiguous range of groups (one
// sequential stream, which the prefetchers follow), claimed one group at a time; a thread that is
// done takes the back half of another's remaining groups and walks it forward, so a core delayed
// by another process does not hold up the step. Dealing 16 chunks round robin instead restarted
// each thread's stream cold at every chunk: 1024x1024 q4_0_r16 read 66-70% of the probe, now
// 85-91%. Until session 28 a thief took one group at a time from the back (1-2% of a decode
// step's groups, read backwards, away from its prefetches): token by token, steps with halves
// walked forward took 0.983 of the time on the K-quants and 0.995 on the others (means of 12 and
// 15 runs, bench/RESULTS.md session 28). One group (16
// rows) per kernel call: two per call (two interleaved streams per thread, which session 13 had
// chosen for the AVX-512 Q4_0 / Q8_0 / Q4_K / float kernels before ranges existed) made every
// decode step slower on an Emerald Rapids VM, measured token by token in the same runs (qwen06b
// and llama1b, Q4_0 5-9%, Q4_K and Q4_K_M 3-8%, Q8_0 0-2%, F16 1-2.5%), and a Zen 4 core streamed
// one group at 32 GB/s where it read two at 20 (bench/RESULTS.md, sessions 17 and 18).
// Prefill: a task is a panel of groups x a chunk of x rows; the kernel's NG-group slice of the
// panel (NG * 16 rows over all of k) stays in L2 while MR-row tiles of the chunk sweep it, and
// the chunk (a quarter of L2) stays in L2 while the panel's slices go by. Tasks run panel-major
// (a panel's chunks in turn), so a panel comes from memory once and then from the L2s and L3,
// where chunk-major order streamed every weight once per chunk: at n = 8192, k = 2048 that was
// 8-15% slower (bench_kernels --gemm, 2 threads, q4_0_r16 and q4_k_r16, 3 alternating runs).
// An entry with `expand` (Q4_0, Q5_0, Q2_K ... Q6_K, MLX 4-bit on AVX-512) converts each slice once
// per task into its expanded layout, which the chunk's tiles then read instead of unpacking the
// slice again per tile. Its chunks take half of L2 and its panels a quarter (bench_kernels --gemm
// --threads 2 at Llama-3.2-1B's fused shapes 3072 / 16384 x 2048 and 2048 x 8192, 3 alternating
// runs: q4_k_r16 +1-2 / 4-7 / 5%, q6_k_r16 +1-4 / 3 / 5-7%; at k = 8192 a quarter of L2 held only
// 28 rows of x).
// bf16_tiles: e is the AMX BF16 tiles' entry (matmul() builds it from MatmulEntry::bf16), x in
// bf16 rows.
void matmul_packed(const MatmulEntry& e, bool bf16_tiles, const uint8_t* xa, size_t xa_stride,
                   size_t m, size_t k, const uint8_t* w, size_t group_bytes, size_t n, float* y,
                   size_t y_stride, ThreadPool& pool) {
  const size_t groups = n / kPackRows;
  const size_t threads = static_cast<size_t>(pool.n_threads());
  const size_t mr = static_cast<size_t>(e.mr);
  if (m <= mr) {
    pool.run_ranges(groups, 1, [&](size_t g0, size_t g1) {
      PackedGemm a{xa, xa_stride,           nullptr, group_bytes, nullptr, y_stride,
                   k,  static_cast<int>(m), 1,       true};
      for (size_t g = g0; g < g1; ++g) {
        a.w = w + g * group_bytes;
        a.y = y + g * kPackRows;
        // The next group's output line, for writing: the claim of the next group (a locked
        // compare-exchange) waits until this group's store has its line, which was a miss
        // after the weights streamed through the caches (perf: 3.3-3.9% of a qwen06b Q4_0 decode's
        // samples on that claim, 1.6% with this). Token by token, steps 0.98-0.99 (qwen06b
        // Q4_0), 0.98-1.00 (Q6_K, Q4_K_M), 0.995-1.00 (Q8_0, F16, llama1b Q4_0 / Q8_0).
        __builtin_prefetch(a.y + kPackRows, 1, 3);
        e.packed(a);
      }
    });
    return;
  }
  const size_t ng = static_cast<size_t>(e.ng);
  const size_t l2 = std::max<size_t>(cpu_l2_bytes(), 256 * 1024);
  // Expanding entries read the panel once per chunk (to expand it), not once per tile: half of L2
  // goes to the chunk of x instead, so each expansion serves twice the tiles. Below 32 rows of x
  // the weights stream from memory about once, as in decode, and the extra pass costs more than it
  // saves. qwen06b prefill of 12 / 24 / 32 / 48 / 64 tokens, expanded / not (3 alternating runs of
  // 7): Q4_0 0.89 / 0.97 / 0.99 / 1.06 / 1.07; Q4_K_M at 12 / 24 / 40: 1.00 / 1.04 / 1.05; Q6_K at
  // 10 / 16: 0.85 / 0.94.
  constexpr size_t kExpandMinRows = 32;
  const bool expand = e.expand && m >= kExpandMinRows;
  RUNNEL_ASSERT(expand || !bf16_tiles);  // the tiles read expanded slices only
  const size_t panel_share = expand ? 4 : 2, chunk_share = expand ? 2 : 4;
  size_t panel = std::max<size_t>(l2 / panel_share / group_bytes, 1);
  panel = std::min(panel, (groups + threads * 4 - 1) / (threads * 4));
  panel = round_up(std::max<size_t>(panel, 1), ng);
  size_t mb = round_up(std::max<size_t>(l2 / chunk_share / xa_stride, 1), mr);
  // The AMX BF16 tiles (MatmulEntry::bf16) sweep a slice at several times the VNNI kernels'
  // rate, so expanding it costs them more per row of x: their chunks are up to 512 rows, whose bf16
  // rows stream from L3 while the slice stays in L2 (bench_kernels --gemm --threads 1, f16_r16,
  // 2048 / 8192 x 2048 and 2048 x 8192: chunks of half of L2 1000 / 760-780 / 440-450 GFLOP/s,
  // of all of L2 1000 / 905-920 / 530-565, of 512 rows 940-985 / 835-885 / 687-692).
  if (bf16_tiles) mb = round_up(512, mr);
  mb = std::min(mb, m);
  const size_t n_panels = (groups + panel - 1) / panel;
  const size_t n_chunks = (m + mb - 1) / mb;
  pool.run(static_cast<int>(n_panels * n_chunks), [&](int task, int) {
    const size_t g0 = static_cast<size_t>(task) / n_chunks * panel;
    const size_t i0 = static_cast<size_t>(task) % n_chunks * mb;
    const size_t g1 = std::min(groups, g0 + panel), i1 = std::min(m, i0 + mb);
    PackedGemm a{nullptr, xa_stride, nullptr, group_bytes, nullptr, y_stride, k, 1, 1};
    uint8_t* xw = nullptr;
    if (expand) {
      a.expanded = true;
      a.w_group_bytes = e.expanded_bytes(k);
      xw = expand_scratch(ng * a.w_group_bytes);
    }
    for (size_t g = g0; g < g1; g += ng) {
      a.ng = static_cast<int>(std::min(ng, g1 - g));
      a.w = w + g * group_bytes;
      if (xw) {
        e.expand(a.w, group_bytes, k, a.ng, xw);
        a.w = xw;
      }
      for (size_t i = i0; i < i1; i += mr) {
        a.mr = static_cast<int>(std::min(mr, i1 - i));
        a.x = xa + i * xa_stride;
        a.y = y + i * y_stride + g * kPackRows;
        e.packed(a);
      }
    }
  });
}

}  // namespace

void matmul(const float* x, size_t x_stride, size_t m, size_t k, const void* w, DType wtype,
            size_t w_stride, size_t n, float* y, size_t y_stride, ThreadPool& pool) {
  const KernelTimer timer(KernelTimer::kMatmul);
  check(matmul_supports(wtype), "matmul", "weights of type ", dtype_name(wtype),
        " are not supported");
  check(k % block_elems(wtype) == 0, "matmul", "k=", k, " is not a multiple of ",
        block_elems(wtype), " (the block size of ", dtype_name(wtype), ")");
  check(w_stride >= row_bytes(wtype, k), "matmul", "weight row stride ", w_stride, " < ",
        row_bytes(wtype, k), " bytes");
  check(m <= 1 || x_stride >= k, "matmul", "x row stride ", x_stride, " < k=", k);
  check(m <= 1 || y_stride >= n, "matmul", "y row stride ", y_stride, " < n=", n);
  if (m == 0 || n == 0) return;
  if (k == 0) {
    for (size_t i = 0; i < m; ++i) std::fill(y + i * y_stride, y + i * y_stride + n, 0.0f);
    return;
  }
  const MatmulEntry& e = kernel_table().matmul[static_cast<int>(wtype)];

  const uint8_t* xa = reinterpret_cast<const uint8_t*>(x);
  size_t xa_stride = x_stride * sizeof(float);
  auto convert_rows = [&](auto convert_row) {
    if (m * k >= 64 * 1024) {
      pool.parallel_for(m, 1, [&](size_t b, size_t end) {
        for (size_t i = b; i < end; ++i) convert_row(i);
      });
    } else {
      for (size_t i = 0; i < m; ++i) convert_row(i);
    }
  };
  // The amx variant's prefill: the BF16 tiles' entry in place of the AVX-512 kernel's.
  MatmulEntry tiles;
  const bool bf16_tiles = e.bf16.fn && m > static_cast<size_t>(e.bf16.mr);
  if (bf16_tiles) {
    tiles.packed = e.bf16.fn;
    tiles.expand = e.bf16.expand;
    tiles.expanded_bytes = e.bf16.expanded_bytes;
    tiles.mr = e.bf16.mr;
    tiles.ng = e.bf16.ng;
    const size_t lines = (k + 31) / 32;  // 32 bf16 per line
    uint16_t* xb = bf16_scratch(m * lines);
    const auto to_bf16 = kernel_table().f32_to_bf16;
    convert_rows([&](size_t i) { to_bf16(x + i * x_stride, k, xb + i * lines * 32); });
    xa = reinterpret_cast<const uint8_t*>(xb);
    xa_stride = lines * 64;
  } else if (e.act != ActKind::kF32) {
    check(e.act == ActKind::kQ8 || k % 256 == 0, "matmul", "k=", k,
          " is not a multiple of 256 (the activation blocks of ", dtype_name(wtype), ")");
    const size_t nb = k / 32;
    std::vector<BlockQ8Act>& buf = act_scratch();
    if (buf.size() < m * nb) buf.resize(m * nb);
    BlockQ8Act* q = buf.data();
    const auto quantize_row =
        e.act == ActKind::kQ8 ? kernel_table().quantize_q8 : kernel_table().quantize_q8_256;
    convert_rows([&](size_t i) { quantize_row(x + i * x_stride, k, q + i * nb); });
    xa = reinterpret_cast<const uint8_t*>(q);
    xa_stride = nb * sizeof(BlockQ8Act);
  }
  if (e.packed) {
    check(n % kPackRows == 0, "matmul", dtype_name(wtype),
          " weights need a multiple of 16 rows, got ", n);
    matmul_packed(bf16_tiles ? tiles : e, bf16_tiles, xa, xa_stride, m, k,
                  static_cast<const uint8_t*>(w), kPackRows * row_bytes(wtype, k), n, y, y_stride,
                  pool);
    return;
  }

  // Blocking. The tile kernel keeps an mr × nr block of accumulators in registers and streams
  // nr weight rows against mr activation rows over all of k. Around it, a task covers nb_rows
  // weight rows × mb_rows activation rows: the nr weight rows of the current tile are reused
  // from L1/L2 across mb_rows/mr tiles, and the mb_rows activations (sized to a quarter of L2)
  // are reused from L2 across nb_rows/nr tiles, sized to half of L2 so the block stays resident
  // while its tiles sweep it. Decode (m = 1) degenerates to streaming disjoint chunks of weight
  // rows: at least 8 chunks per thread so a core delayed by another process does not hold up
  // the step. There is no blocking over k: each y[i, j] is one dot product summed in a fixed order.
  const size_t l2 = std::max<size_t>(cpu_l2_bytes(), 256 * 1024);
  const size_t w_row = std::max<size_t>(row_bytes(wtype, k), 1);
  const size_t x_row = e.act != ActKind::kF32 ? xa_stride : k * sizeof(float);
  const size_t mr = static_cast<size_t>(e.mr);
  // Decode (all of m fits one register tile): one weight row at a time, so each thread reads
  // one purely sequential stream. Measured on Zen 4 (bench_kernels, weights >> L3): tiles over
  // 4 or 2 adjacent rows streamed at 2-4 GB/s per thread, a single row at 6-8 GB/s (the probe's
  // rate); the x reuse that wider tiles buy is worthless when x sits in L1 anyway.
  const size_t nr = m <= mr ? 1 : static_cast<size_t>(e.nr);
  const size_t threads = static_cast<size_t>(pool.n_threads());
  size_t nb_rows = std::max<size_t>(l2 / 2 / w_row, 1);
  nb_rows = std::min(nb_rows, (n + threads * 8 - 1) / (threads * 8));
  nb_rows = round_up(std::max<size_t>(nb_rows, 1), nr);
  size_t mb_rows = round_up(std::max<size_t>(l2 / 4 / x_row, 1), mr);
  mb_rows = std::min(mb_rows, m);
  const size_t n_nblocks = (n + nb_rows - 1) / nb_rows;
  const size_t n_mblocks = (m + mb_rows - 1) / mb_rows;
  const uint8_t* wb = static_cast<const uint8_t*>(w);

  pool.run(static_cast<int>(n_nblocks * n_mblocks), [&](int task, int) {
    const size_t j0 = static_cast<size_t>(task) % n_nblocks * nb_rows;
    const size_t i0 = static_cast<size_t>(task) / n_nblocks * mb_rows;
    const size_t j1 = std::min(n, j0 + nb_rows), i1 = std::min(m, i0 + mb_rows);
    GemmTile t;
    t.x_stride = xa_stride;
    t.w_stride = w_stride;
    t.y_stride = y_stride;
    t.k = k;
    for (size_t j = j0; j < j1; j += nr) {
      t.nr = static_cast<int>(std::min(nr, j1 - j));
      t.w = wb + j * w_stride;
      for (size_t i = i0; i < i1; i += mr) {
        t.mr = static_cast<int>(std::min(mr, i1 - i));
        t.x = xa + i * xa_stride;
        t.y = y + i * y_stride + j;
        e.tile(t);
      }
    }
  });
}

}  // namespace runnel::kernels::cpu
