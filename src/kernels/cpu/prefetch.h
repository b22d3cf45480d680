// Software prefetch for decode's weight streams, for the SIMD kernel files (internal linkage, as
// simd_avx512.h). A decode matmul reads each weight byte once, from DRAM, in one ascending run per
// thread; the hardware prefetchers alone kept too few lines in flight for some block layouts
// (q4_k_r16 streamed at 36 GB/s where the probe read 47, and at 38 where it read 80), so the
// kernels ask for the lines a fixed distance ahead of their reads, once per block.
#pragma once

#include <cstddef>
#include <cstdint>

namespace runnel::kernels::cpu {
namespace {

// A software prefetch of the line holding p into L1 (kL1) or L2 (kL2). Through GCC 12's
// _mm_prefetch (__builtin_ia32_prefetch) the prefetches of some inlined loops never reached the
// binary: decode attention's K-row prefetches (qk_tile, all types) and every q8_0-row prefetch
// compiled to nothing, pf argument unread. __builtin_prefetch is kept wherever it is written.
enum PrefetchLevel { kL1 = 3, kL2 = 2 };
template <PrefetchLevel kLevel>
inline void prefetch(const void* p) {
  __builtin_prefetch(p, 0, kLevel);
}

// Bytes ahead of the reads. Measured on q4_k_r16 (bench_kernels, 2 threads, noisy): 2304 was
// close to 4608 and 9216 a few percent behind. Lines past the end of a matrix may be asked for:
// a prefetch never faults.
constexpr size_t kStreamAhead = 4608;

// Prefetches the lines holding [p + kStreamAhead, p + kStreamAhead + bytes) into L1, and the same
// lines 3 kStreamAhead ahead into L2. A block that does not fill whole lines leaves its last line
// to the next block's call. The second, farther prefetch: on an Emerald Rapids VM each core ran
// out of L1 fill buffers (perf put the kernels' samples on the prefetcht0s), and lines the L1
// prefetch finds in L2 free their buffer sooner. Decode GEMV from DRAM, bench_kernels --threads 2
// (probe 33 GB/s): q4_0_r16 29 -> 30.5-33 GB/s, q4_k_r16 29 -> 30-33, q6_k_r16 27.5 -> 29.5-32,
// f16_r16 27-31 -> 31-35.5, q8_0_r16 equal; 2 kStreamAhead and 5, and T2, measured the same as 3.
inline void prefetch_ahead(const uint8_t* p, size_t bytes) {
  for (size_t o = 0; o < bytes; o += 64) {
    prefetch<kL1>(p + kStreamAhead + o);
    prefetch<kL2>(p + 3 * kStreamAhead + o);
  }
}

// The line holding p + kStreamAhead into L1 and p + 2 kStreamAhead into L2: one line of a decode
// stream, asked for by the loop that reads the line at p, just before its load (the Q8_0R16 /
// Q4_0R16 / Q5_0R16 decode kernels, packed_dot_avx512.h). Against a burst of prefetch_ahead per
// 544-byte Q8_0 block: llama1b Q8_0 decode 21.0-21.2 -> 22.7-23.0 tok/s (alternating runs; Sapphire
// Rapids VM, session 31); 3 kStreamAhead into L2 was 1-3% behind 2.
inline void prefetch_line_ahead(const uint8_t* p) {
  prefetch<kL1>(p + kStreamAhead);
  prefetch<kL2>(p + 2 * kStreamAhead);
}

// Part `part` (0 .. parts - 1) of the lines prefetch_ahead(p, bytes) asks for, so a kernel can
// spread a large block's prefetches over its steps. On an AVX2-only EPYC VM (QEMU "AMD EPYC"),
// q4_k_r16 decode streamed at 10.5 GB/s with a burst of 36 prefetches per 2304-byte super-block
// and at 18 GB/s with 4-5 per 32-element sub-block, as q4_0_r16's 288-byte blocks issue
// (bench_kernels --threads 2 --isa avx2 --type q4_k_r16, 8192 x 2048, probe 21-23 GB/s).
inline void prefetch_ahead_part(const uint8_t* p, size_t bytes, size_t part, size_t parts) {
  const size_t lines = (bytes + 63) / 64;
  const size_t l0 = lines * part / parts, l1 = lines * (part + 1) / parts;
  for (size_t l = l0; l < l1; ++l) {
    prefetch<kL1>(p + kStreamAhead + 64 * l);
    prefetch<kL2>(p + 3 * kStreamAhead + 64 * l);
  }
}

}  // namespace
}  // namespace runnel::kernels::cpu
