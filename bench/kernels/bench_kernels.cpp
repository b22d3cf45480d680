// Kernel benchmark: memory bandwidth, decode-shaped GEMV (m = 1) per weight type and ISA as GB/s
// of weight bytes and as a fraction of the measured bandwidth, and a prefill-shaped GEMM (m = 512)
// in GFLOP/s. Weights are spread over enough copies (>= 512 MiB) that every GEMV streams from
// DRAM, as decode does, instead of hitting the 32 MiB L3: a timed sample is one pass over all
// copies, the probe's sample one pass over its 1 GiB buffer, and both report the best pass.
// Also: fused attention (decode over a long context, a prefill prompt). --gemm runs only the
// GEMM part, --attention only the attention part. --hot keeps one copy of two small matrices
// (cache-resident) to show the kernels' compute ceiling. --shape NxK picks the GEMV's shapes, or
// with --gemm the GEMM's. --probe MIB (repeatable) prints only the bandwidth probe over buffers of
// those sizes: on the AMX VM it reads less the larger the buffer (bench/RESULTS.md, session 36).
// Packed types (q8_0_r16, q4_0_r16,
// q4_k_r16, q6_k_r16, f16_r16, ...: kernels/cpu/packed.h) are measured beside their sources,
// mlx8_r16 / mlx4_r16 (packed_mlx.h, from random MLX words) beside q8_0_r16 / q4_0_r16.
//   bench_kernels [--threads N] [--quick] [--hot] [--gemm] [--attention] [--isa
//   scalar|avx2|avxvnni|avx512|amx]
//                 [--type T]
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "base/dtype.h"
#include "base/half.h"
#include "base/mmap.h"
#include "base/thread_pool.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/membw.h"
#include "kernels/cpu/packed.h"
#include "kernels/cpu/packed_mlx.h"
#include "kernels/cpu/quant.h"

using namespace runnel;
using namespace runnel::kernels::cpu;

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// CPU time of the whole process: on a shared machine, work per CPU-second is what the kernel
// achieves when it runs (exact with --threads 1; with more threads, pool spinning counts too).
double cpu_now() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// A copy of a weight matrix on transparent huge pages, as the model loader's packed weights
// (array/allocator.cpp) and the bandwidth probe's buffer are: on 4 KiB pages the GEMV pays a TLB
// miss every 4 KiB that neither decode nor the probe pays.
class HugeCopy {
 public:
  // `copies` back to back in one allocation (64-byte aligned each), as the engine's weight arena
  // lays out a model's matrices: a pass streams them like one decode step streams its layers.
  explicit HugeCopy(const std::vector<uint8_t>& src, size_t copies = 1)
      : stride_((src.size() + 63) / 64 * 64) {
    void* p = alloc_maybe_huge(stride_ * copies);
    if (p == nullptr) {
      std::fprintf(stderr, "bench_kernels: cannot allocate %zu bytes\n", stride_ * copies);
      std::exit(1);
    }
    p_ = static_cast<uint8_t*>(p);
    for (size_t c = 0; c < copies; ++c) std::memcpy(p_ + c * stride_, src.data(), src.size());
  }
  HugeCopy(const HugeCopy&) = delete;
  HugeCopy& operator=(const HugeCopy&) = delete;
  ~HugeCopy() { std::free(p_); }
  const uint8_t* data(size_t copy = 0) const { return p_ + copy * stride_; }

 private:
  uint8_t* p_ = nullptr;
  size_t stride_;
};

// Valid values of `t` (finite scales, weights in [-1, 1]) for n rows of k.
std::vector<uint8_t> make_weights(DType t, size_t n, size_t k, std::mt19937& rng) {
  if (is_mlx_packed(t)) {  // random MLX words, bf16 scales/biases in groups of 32 or 64, packed
    const int bits = t == DType::kQ8AR16 || t == DType::kQ8AR16G64 ? 8 : 4;
    const int group = t == DType::kQ8AR16 || t == DType::kQ4AR16 ? 32 : 64;
    std::vector<uint32_t> words(n * k * static_cast<size_t>(bits) / 32);
    for (uint32_t& w : words) w = static_cast<uint32_t>(rng());
    std::vector<uint16_t> sc(n * k / static_cast<size_t>(group)), bi(sc.size());
    for (size_t i = 0; i < sc.size(); ++i) {
      sc[i] = f32_to_bf16(0.01f + 0.001f * static_cast<float>(i % 7));
      bi[i] = f32_to_bf16(-0.04f);
    }
    std::vector<uint8_t> out(row_bytes(t, k) * n);
    ThreadPool one(1);
    pack_mlx_affine(words.data(), sc.data(), bi.data(), DType::kBF16, n, k, bits, group, out.data(),
                    one);
    return out;
  }
  if (is_packed(t)) {  // random rows of the source type, packed (as a model load does)
    const DType src = packed_source(t);
    const std::vector<uint8_t> rows = make_weights(src, n, k, rng);
    std::vector<uint8_t> out(row_bytes(t, k) * n);  // Q3_KR16 is larger than Q3_K
    ThreadPool one(1);
    pack_weights(src, rows.data(), row_bytes(src, k), n, k, out.data(), one);
    return out;
  }
  std::vector<uint8_t> w(row_bytes(t, k) * n);
  std::uniform_real_distribution<float> val(-1, 1);
  if (t == DType::kF32) {
    for (size_t i = 0; i < n * k; ++i) {
      const float f = val(rng);
      std::memcpy(w.data() + 4 * i, &f, 4);
    }
  } else if (t == DType::kF16 || t == DType::kBF16) {
    for (size_t i = 0; i < n * k; ++i) {
      const uint16_t h = t == DType::kF16 ? f32_to_f16(val(rng)) : f32_to_bf16(val(rng));
      std::memcpy(w.data() + 2 * i, &h, 2);
    }
  } else {
    const size_t bb = dtype_info(t).block_bytes;
    for (size_t b = 0; b < w.size() / bb; ++b) {
      const uint16_t d = f32_to_f16(0.01f + 0.001f * static_cast<float>(b % 7));
      std::memcpy(w.data() + b * bb, &d, 2);
      for (size_t c = 2; c < bb; ++c) w[b * bb + c] = static_cast<uint8_t>(rng() % 255 + 1);
    }
  }
  return w;
}

struct Timing {
  double median = 0, best = 0, best_cpu = 0;  // seconds of wall clock, and of CPU time
};

// Runs fn repeatedly for about `budget` seconds (at least 3 times); median and best seconds.
template <class F>
Timing time_it(F&& fn, double budget) {
  std::vector<double> t;
  double best_cpu = 1e300;
  const double start = now();
  fn();  // warm-up
  while (t.size() < 3 || (now() - start < budget && t.size() < 1000)) {
    const double t0 = now(), c0 = cpu_now();
    fn();
    t.push_back(now() - t0);
    best_cpu = std::min(best_cpu, cpu_now() - c0);
  }
  std::sort(t.begin(), t.end());
  return {t[t.size() / 2], t[0], best_cpu};
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2;
  bool quick = false, hot = false, gemm_only = false, attention_only = false;
  std::string only, only_type;
  std::vector<std::pair<size_t, size_t>> only_shapes;
  std::vector<size_t> probe_mib;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) {
      threads = std::stoi(argv[++i]);
    } else if (a == "--gemm") {
      gemm_only = true;
    } else if (a == "--attention") {
      attention_only = true;
    } else if (a == "--hot") {
      hot = true;
    } else if (a == "--quick") {
      quick = true;
    } else if (a == "--isa" && i + 1 < argc) {
      only = argv[++i];
    } else if (a == "--type" && i + 1 < argc) {
      only_type = argv[++i];
    } else if (a == "--shape" && i + 1 < argc) {
      size_t n = 0, k = 0;
      if (std::sscanf(argv[++i], "%zux%zu", &n, &k) != 2 || n == 0 || k == 0 || k > 8192 ||
          n > 262144) {
        std::fprintf(stderr, "bench_kernels: --shape wants NxK (k <= 8192), got '%s'\n", argv[i]);
        return 2;
      }
      only_shapes.push_back({n, k});
    } else if (a == "--probe" && i + 1 < argc) {
      const long mib = std::strtol(argv[++i], nullptr, 10);
      if (mib < 1 || mib > (long{1} << 20)) {
        std::fprintf(stderr, "bench_kernels: --probe wants MiB in [1, 2^20], got '%s'\n", argv[i]);
        return 2;
      }
      probe_mib.push_back(static_cast<size_t>(mib));
    } else {
      std::fprintf(stderr,
                   "usage: bench_kernels [--threads N] [--quick] [--hot] [--gemm] [--attention] "
                   "[--isa NAME] [--type NAME] [--shape NxK ...] [--probe MIB ...]\n");
      return 2;
    }
  }
  ThreadPool pool(threads);
  if (!probe_mib.empty()) {
    // Only the bandwidth probe, over buffers of the given sizes (each the best of its passes).
    for (size_t mib : probe_mib) {
      std::printf("threads %d, probe over %zu MiB: %.2f GB/s\n", threads, mib,
                  measure_memory_bandwidth(pool, mib << 20));
    }
    return 0;
  }
  std::vector<Isa> isas;
  for (Isa isa : kAllIsas) {
    if (isa_supported(isa) && (only.empty() || only == isa_name(isa))) isas.push_back(isa);
  }
  const double bw = measure_memory_bandwidth(pool);
  std::printf("threads %d, memory bandwidth (read, %s): %.1f GB/s\n\n", threads,
              isa_name(active_isa()), bw);

  std::vector<DType> types;
  for (DType t :
       {DType::kF32,      DType::kF32R16,    DType::kF16,     DType::kF16R16,  DType::kBF16,
        DType::kBF16R16,  DType::kQ8_0,      DType::kQ8_0R16, DType::kQ8AR16,  DType::kQ8AR16G64,
        DType::kQ4_0,     DType::kQ4_0R16,   DType::kQ5_0R16, DType::kQ4_1R16, DType::kQ5_1R16,
        DType::kQ4AR16,   DType::kQ4AR16G64, DType::kQ4_K,    DType::kQ4_KR16, DType::kQ5_KR16,
        DType::kQ3_KR16,  DType::kQ2_KR16,   DType::kQ6_K,    DType::kQ6_KR16, DType::kIQ4_NLR16,
        DType::kIQ4_XSR16}) {
    if (only_type.empty() || only_type == dtype_name(t)) types.push_back(t);
  }
  std::vector<std::pair<size_t, size_t>> shapes = {{2048, 2048}, {8192, 2048}, {2048, 8192}};
  if (!quick) shapes.push_back({8192, 8192});
  if (hot) shapes = {{256, 2048}, {512, 2048}};
  if (!only_shapes.empty()) shapes = only_shapes;
  if (gemm_only || attention_only) shapes.clear();
  std::mt19937 rng(1);

  std::printf(
      "GEMV m=1 (decode): best time, GB/s of weight bytes, fraction of the bandwidth probed right "
      "after (best of passes, like the probe), GB/s of the median time, probe GB/s\n");
  std::printf("%-6s %-7s %11s %9s %9s %7s %9s %9s\n", "type", "isa", "n x k", "us", "GB/s", "of bw",
              "median", "probe");
  std::vector<float> x(8192), y(262144);
  for (float& v : x) v = std::uniform_real_distribution<float>(-1, 1)(rng);
  for (DType t : types) {
    for (auto [n, k] : shapes) {
      const size_t bytes = row_bytes(t, k) * n;
      const size_t copies = hot ? 1 : std::max<size_t>(1, (size_t{512} << 20) / bytes);
      const std::vector<uint8_t> w0 = make_weights(t, n, k, rng);
      const HugeCopy w(w0, copies);
      for (Isa isa : isas) {
        set_active_isa(isa);
        // One sample is a pass over every copy (>= 512 MiB, like one decode step over a model's
        // layers), so no sample can be served from the L3; best and median over passes.
        const double budget = isa == Isa::kScalar ? 0.3 : 1.0;
        Timing tm = time_it(
            [&] {
              for (size_t c = 0; c < copies; ++c) {
                matmul(x.data(), k, 1, k, w.data(c), t, row_bytes(t, k), n, y.data(), n, pool);
              }
            },
            budget);
        tm.best /= static_cast<double>(copies);
        tm.median /= static_cast<double>(copies);
        const double gbs = static_cast<double>(bytes) / tm.best / 1e9;
        // The machine's bandwidth drifts (shared host): the ratio uses a probe run right after.
        const double bw_now = hot ? bw : measure_memory_bandwidth(pool, size_t{512} << 20);
        std::printf("%-6s %-7s %5zux%-5zu %9.1f %9.2f %6.0f%% %9.2f %9.1f\n",
                    std::string(dtype_name(t)).c_str(), isa_name(isa), n, k, tm.best * 1e6, gbs,
                    100 * gbs / bw_now, static_cast<double>(bytes) / tm.median / 1e9, bw_now);
        std::fflush(stdout);
      }
    }
  }

  if (hot || (!only_shapes.empty() && !gemm_only)) return 0;

  // Attention with Llama-3.2-1B's heads (32 query / 8 KV heads of 64) and Qwen3's (16 / 8 of 128),
  // f32, f16 (the engine's default) and q8_0 KV in 16-token blocks: decode over a 4096-token
  // context (KV bytes read per call / time) and a 512-token prompt (GFLOP/s of the causal QK and PV
  // products: 4·d·heads·Σ n_valid).
  struct Shape {
    int heads, kv_heads, d;
  };
  for (Shape sh : {Shape{32, 8, 64}, Shape{16, 8, 128}}) {
    for (DType kv_type : {DType::kF32, DType::kF16, DType::kQ8_0}) {
      if (gemm_only) break;
      std::printf("\nAttention (%d/%d heads, head_dim %d, %s KV, blocks of 16)\n", sh.heads,
                  sh.kv_heads, sh.d, std::string(dtype_name(kv_type)).c_str());
      std::printf("%-22s %-7s %10s %12s %10s %12s\n", "case", "isa", "ms", "KV GB/s", "GFLOP/s",
                  "per CPU-s");
      // 131072 positions: 256 MiB - 1 GiB of KV, so the longest decode streams from DRAM as a
      // long-context decode step does (a 16384-position case fit in a 260 MiB L3 and favoured
      // prefetching into L2 over L1, the opposite of what the model showed; session 16).
      const int heads = sh.heads, kv_heads = sh.kv_heads, d = sh.d, bt = 16, n_ctx = 131072;
      const size_t n_elems = static_cast<size_t>(n_ctx) * kv_heads * d * 2;
      std::vector<uint8_t> kv(row_bytes(kv_type, n_elems));
      std::vector<float> vals(static_cast<size_t>(kv_heads) * d);
      const size_t vals_bytes = row_bytes(kv_type, vals.size());
      for (size_t i = 0; i < n_elems; i += vals.size()) {  // one position's K or V row at a time
        for (float& v : vals) v = static_cast<float>(rng() & 0xffff) / 32768.0f - 1.0f;  // cheap
        quantize_row(kv_type, vals.data(), kv.data() + i / vals.size() * vals_bytes, vals.size());
      }
      // On huge pages, as the engine's KV block pool and runnel bench's KV arrays are: a decode
      // step reads each head's rows in pieces of 128-512 bytes across the whole context.
      const HugeCopy kvh(kv);
      std::vector<const void*> kb, vb;
      const size_t block_bytes = row_bytes(kv_type, static_cast<size_t>(bt) * kv_heads * d);
      for (int b = 0; b < n_ctx / bt; ++b) {
        kb.push_back(kvh.data() + static_cast<size_t>(b) * block_bytes);
        vb.push_back(kvh.data() + kv.size() / 2 + static_cast<size_t>(b) * block_bytes);
      }
      std::vector<float> q(static_cast<size_t>(512) * heads * d), out(q.size());
      for (float& v : q) v = std::uniform_real_distribution<float>(-1, 1)(rng);
      struct Case {
        const char* name;
        int n_q, n_kv, q_pos0;
        bool cold = false;  // each call reads the next n_kv positions of the context: from DRAM
      };
      // 1000 positions: the last decode before head_dim 128 takes scores by rows (kRowsMinPos;
      // from 0 in the amx variant with f16 KV). "cold": a decode step after 512 positions whose
      // KV comes from DRAM, as in a model (each call the next 512 positions of the 131072; time
      // and rate of the median call, not the best).
      for (Case c :
           {Case{"decode n_kv=128", 1, 128, 127}, Case{"decode n_kv=1000", 1, 1000, 999},
            Case{"decode n_kv=512 cold", 1, 512, 511, true},
            Case{"decode n_kv=4096", 1, 4096, 4095}, Case{"decode n_kv=131072", 1, 131072, 131071},
            Case{"prefill n_q=512", 512, 512, 0}}) {
        for (Isa isa : isas) {
          set_active_isa(isa);
          kernels::cpu::AttentionArgs a{q.data(),
                                        out.data(),
                                        c.n_q,
                                        heads,
                                        kv_heads,
                                        d,
                                        kb.data(),
                                        vb.data(),
                                        kv_type,
                                        bt,
                                        c.n_kv,
                                        c.q_pos0,
                                        1.0f / std::sqrt(float(d))};
          int window = 0;
          const int n_windows = n_ctx / c.n_kv;
          Timing tm = time_it(
              [&] {
                if (c.cold) {
                  const size_t first = static_cast<size_t>(window) * (c.n_kv / bt);
                  a.k_blocks = kb.data() + first;
                  a.v_blocks = vb.data() + first;
                  window = (window + 1) % n_windows;
                }
                attention(a, pool);
              },
              isa == Isa::kScalar ? 0.3 : 0.6);
          const double kv_bytes =
              2.0 * c.n_kv * static_cast<double>(row_bytes(kv_type, size_t(kv_heads) * d));
          double visible = 0;  // Σ over queries of the kv positions each attends to
          for (int i = 0; i < c.n_q; ++i) visible += std::min(c.n_kv, c.q_pos0 + i + 1);
          const double flop = 4.0 * d * heads * visible;
          const double t = c.cold ? tm.median : tm.best;
          std::printf("%-22s %-7s %10.3f %12.2f %10.1f %12.1f\n", c.name, isa_name(isa), t * 1e3,
                      kv_bytes / t / 1e9, flop / t / 1e9, flop / tm.best_cpu / 1e9);
          std::fflush(stdout);
        }
      }
    }
  }
  if (attention_only) return 0;
  std::printf("\nGEMM m=512 (prefill): best time, GFLOP/s (2·m·n·k per call)\n");
  std::printf("%-6s %-7s %11s %9s %9s %12s\n", "type", "isa", "n x k", "ms", "GFLOP/s",
              "per CPU-s");
  const size_t m = 512;
  std::vector<std::pair<size_t, size_t>> gemm_shapes = {{2048, 2048}};
  if (!quick) gemm_shapes.push_back({8192, 2048});
  if (!only_shapes.empty()) gemm_shapes = only_shapes;  // --gemm --shape NxK ...
  size_t max_n = 0;
  for (auto [n, k] : gemm_shapes) max_n = std::max(max_n, n);
  std::vector<float> xm(m * 8192), ym(m * max_n);
  for (float& v : xm) v = std::uniform_real_distribution<float>(-1, 1)(rng);
  for (DType t : types) {
    for (auto [n, k] : gemm_shapes) {
      std::vector<uint8_t> w = make_weights(t, n, k, rng);
      for (Isa isa : isas) {
        if (isa == Isa::kScalar) continue;  // minutes per call; the reference is not for speed
        set_active_isa(isa);
        Timing tm = time_it(
            [&] {
              matmul(xm.data(), k, m, k, w.data(), t, row_bytes(t, k), n, ym.data(), n, pool);
            },
            quick ? 0.5 : 1.5);
        const double flop = 2.0 * static_cast<double>(m * n * k);
        std::printf("%-6s %-7s %5zux%-5zu %9.2f %9.1f %12.1f\n", std::string(dtype_name(t)).c_str(),
                    isa_name(isa), n, k, tm.best * 1e3, flop / tm.best / 1e9,
                    flop / tm.best_cpu / 1e9);
        std::fflush(stdout);
      }
    }
  }
  std::printf("\nmemory bandwidth again: %.1f GB/s\n", measure_memory_bandwidth(pool));
  return 0;
}
