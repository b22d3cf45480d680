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

// Bytes ahead of the reads: each line into L2 kL2Ahead before its load and into L1 kL1Ahead
// before it, so the L1 prefetch follows the L2 one by 2304 bytes of the stream. Lines past the end
// of a matrix may be asked for: a prefetch never faults. Until session 32 the L1 prefetch ran
// 4608 bytes ahead and the L2 one 9216 (prefetch_line_ahead) or 13824 (the others); with the gap
// between the two cut to 2304, decode streamed more where the loop computes more per line:
// qwen06b tg128, two alternating runs each, Q4_K_M 69.6 / 70.4 -> 76.2 / 77.2 tok/s, Q6_K 52.4 /
// 51.0 -> 56.5 / 56.9, Q5_K_M 59.0 / 58.4 -> 63.5 / 63.0, Q4_K 78.2 / 76.8 -> 82.5 / 81.7; llama1b
// Q6_K 27.5 / 27.4 -> 29.8 / 29.5, Q4_0 41.9 / 41.8 -> 43.6 / 43.1; F16, Q8_0, Q3_K, Q2_K and
// qwen06b Q4_0 equal (Sapphire Rapids VM). What counted was the gap, not the distance: in
// bench_kernels (--threads 2, 4096 x 1024 and 8192 x 2048) q6_k_r16 and q5_k_r16 read 28-29 GB/s
// with gaps of 4608 and 9216 (L1 at 2304 or 4608) and 30-32.5 with gaps of 1152-2304 (L1 at 1152
// to 6912). A loop that only loads reads as much either way, a little more with the old
// distances, which the bandwidth probe keeps (probe_line_ahead).
constexpr size_t kL1Ahead = 2304, kL2Ahead = 4608;
// The distances before session 32, which the Q2_K and Q3_K decode kernels keep (their loops
// compute the most per byte) and the AVX-512 float one (F16 / BF16 / F32: it gained nothing from
// the near ones, llama1b F16 tg128 alternating 13.73 / 13.53 -> 13.56 / 13.60, then 12.29 / 12.70 /
// 13.09 -> 12.22 / 12.27 / 12.56). Q2_K / Q3_K read as much or 2-3% more with these (alternating
// runs: Q2_K 112.7-118.1 tok/s against 110.6-113.8 over five each, Q3_K 82.0 / 84.1 against 81.2 /
// 79.9, RUNNEL_CPU=avx2 equal; bench_kernels --isa avx2 q2_k_r16 4096 x 1024 20.8-21.0 GB/s
// against 19.8-20.1).
constexpr size_t kL1AheadFar = 4608, kL2AheadFar = 13824;

// Prefetches the lines holding [p, p + bytes) kD1 ahead into L1 and kD2 ahead into L2.
// A block that does not fill whole lines leaves its last line to the next block's call. The
// second prefetch, into L2: on an Emerald Rapids VM each core ran out of L1 fill buffers (perf put
// the kernels' samples on the prefetcht0s), and lines the L1 prefetch finds in L2 free their
// buffer sooner. Decode GEMV from DRAM, bench_kernels --threads 2 (probe 33 GB/s): q4_0_r16 29 ->
// 30.5-33 GB/s, q4_k_r16 29 -> 30-33, q6_k_r16 27.5 -> 29.5-32, f16_r16 27-31 -> 31-35.5, q8_0_r16
// equal (session 18, distances then 4608 and 13824).
template <size_t kD1 = kL1Ahead, size_t kD2 = kL2Ahead>
inline void prefetch_ahead(const uint8_t* p, size_t bytes) {
  for (size_t o = 0; o < bytes; o += 64) {
    prefetch<kL1>(p + kD1 + o);
    prefetch<kL2>(p + kD2 + o);
  }
}

// One line of a decode stream, asked for by the loop that reads the line at p, just before its
// load: the line kL1Ahead ahead into L1 and the one kL2Ahead ahead into L2 (the Q8_0R16 / Q4_0R16
// / Q5_0R16 / Q4_KR16 decode kernels, packed_dot_avx512.h; the AVX2 float kernel). Against a
// burst of prefetch_ahead per 544-byte Q8_0 block: llama1b Q8_0 decode 21.0-21.2 -> 22.7-23.0
// tok/s (alternating runs; Sapphire Rapids VM, session 31).
inline void prefetch_line_ahead(const uint8_t* p) {
  prefetch<kL1>(p + kL1Ahead);
  prefetch<kL2>(p + kL2Ahead);
}

// The bandwidth probe's line (membw.cpp): 4608 bytes ahead into L1 and 9216 into L2, the distances
// a loop that only loads reads fastest with (one thread 18.6-18.9 GB/s against 18.3-18.4 with
// kL1Ahead / kL2Ahead, two threads equal; Sapphire Rapids VM), so the probe stays the ceiling.
inline void probe_line_ahead(const uint8_t* p) {
  prefetch<kL1>(p + 4608);
  prefetch<kL2>(p + 9216);
}

// Part `part` (0 .. parts - 1) of the lines prefetch_ahead(p, bytes) asks for, so a kernel can
// spread a large block's prefetches over its steps. On an AVX2-only EPYC VM (QEMU "AMD EPYC"),
// q4_k_r16 decode streamed at 10.5 GB/s with a burst of 36 prefetches per 2304-byte super-block
// and at 18 GB/s with 4-5 per 32-element sub-block, as q4_0_r16's 288-byte blocks issue
// (bench_kernels --threads 2 --isa avx2 --type q4_k_r16, 8192 x 2048, probe 21-23 GB/s).
template <size_t kD1 = kL1Ahead, size_t kD2 = kL2Ahead>
inline void prefetch_ahead_part(const uint8_t* p, size_t bytes, size_t part, size_t parts) {
  const size_t lines = (bytes + 63) / 64;
  const size_t l0 = lines * part / parts, l1 = lines * (part + 1) / parts;
  for (size_t l = l0; l < l1; ++l) {
    prefetch<kL1>(p + kD1 + 64 * l);
    prefetch<kL2>(p + kD2 + 64 * l);
  }
}

}  // namespace
}  // namespace runnel::kernels::cpu
