// What the CPU can do, as cpuid reports it *and* the OS allows (XGETBV for the AVX/AVX-512
// register state; on Linux, AMX tile data must be requested with arch_prctl before use).
#pragma once

#include <string>

namespace runnel {

struct CpuFeatures {
  bool sse42 = false;
  bool avx = false;
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  bool avx_vnni = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512vl = false;
  bool avx512dq = false;
  bool avx512_vnni = false;
  bool avx512_bf16 = false;
  bool amx_tile = false;
  bool amx_int8 = false;
  bool amx_bf16 = false;
  std::string vendor;
  std::string brand;

  // All of F/BW/VL/DQ: the set our AVX-512 kernels are compiled for.
  bool has_avx512() const { return avx512f && avx512bw && avx512vl && avx512dq; }
  bool has_avx2() const { return avx2 && fma && f16c; }
  // AMX usable: tiles present and the OS granted tile data permission.
  bool has_amx() const { return amx_tile && amx_int8 && amx_bf16; }
  // "avx2 fma f16c avx512f ..." for --version and logs.
  std::string describe() const;
};

// Detected once; later calls return the same object.
const CpuFeatures& cpu_features();

// Online CPUs and the cache sizes the OS reports (0 when unknown).
int cpu_count();
size_t cpu_l2_bytes();

}  // namespace runnel
