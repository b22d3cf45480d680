#include "base/cpu.h"

#include <unistd.h>

#include <cstring>
#include <thread>

#if defined(__x86_64__)
#include <cpuid.h>
#include <sys/syscall.h>
#endif

namespace runnel {
namespace {

#if defined(__x86_64__)
struct Regs {
  unsigned a = 0, b = 0, c = 0, d = 0;
};

Regs cpuid(unsigned leaf, unsigned sub = 0) {
  Regs r;
  __cpuid_count(leaf, sub, r.a, r.b, r.c, r.d);
  return r;
}

unsigned long long xgetbv0() {
  unsigned lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<unsigned long long>(hi) << 32) | lo;
}

bool bit(unsigned v, int n) { return (v >> n) & 1u; }

// Linux: ask for permission to use AMX tile data (XFEATURE 18). Without it, the first tile
// instruction faults even though cpuid reports AMX.
bool request_amx_permission() {
  constexpr long kArchReqXcompPerm = 0x1023;
  constexpr long kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
}

CpuFeatures detect() {
  CpuFeatures f;
  Regs r0 = cpuid(0);
  char vendor[13] = {};
  std::memcpy(vendor + 0, &r0.b, 4);
  std::memcpy(vendor + 4, &r0.d, 4);
  std::memcpy(vendor + 8, &r0.c, 4);
  f.vendor = vendor;
  unsigned max_leaf = r0.a;

  Regs r1 = cpuid(1);
  f.sse42 = bit(r1.c, 20);
  const bool osxsave = bit(r1.c, 27);
  const bool cpu_avx = bit(r1.c, 28);
  f.fma = bit(r1.c, 12);
  f.f16c = bit(r1.c, 29);

  unsigned long long xcr0 = osxsave ? xgetbv0() : 0;
  const bool os_avx = (xcr0 & 0x6) == 0x6;          // XMM and YMM state
  const bool os_avx512 = (xcr0 & 0xe6) == 0xe6;     // + opmask, ZMM_Hi256, Hi16_ZMM
  const bool os_amx = (xcr0 & 0x60000) == 0x60000;  // XTILECFG and XTILEDATA

  f.avx = cpu_avx && os_avx;
  f.fma = f.fma && f.avx;
  f.f16c = f.f16c && f.avx;
  if (max_leaf >= 7) {
    Regs r7 = cpuid(7, 0);
    Regs r71 = cpuid(7, 1);
    f.avx2 = f.avx && bit(r7.b, 5);
    f.avx512f = os_avx512 && bit(r7.b, 16);
    f.avx512dq = f.avx512f && bit(r7.b, 17);
    f.avx512bw = f.avx512f && bit(r7.b, 30);
    f.avx512vl = f.avx512f && bit(r7.b, 31);
    f.avx512_vnni = f.avx512f && bit(r7.c, 11);
    f.avx512_bf16 = f.avx512f && bit(r71.a, 5);
    f.avx_vnni = f.avx && bit(r71.a, 4);
    const bool amx_tile = bit(r7.d, 24);
    if (amx_tile && os_amx && request_amx_permission()) {
      f.amx_tile = true;
      f.amx_bf16 = bit(r7.d, 22);
      f.amx_int8 = bit(r7.d, 25);
    }
  }

  unsigned max_ext = cpuid(0x80000000).a;
  if (max_ext >= 0x80000004) {
    char brand[49] = {};
    for (unsigned i = 0; i < 3; ++i) {
      Regs r = cpuid(0x80000002 + i);
      std::memcpy(brand + 16 * i + 0, &r.a, 4);
      std::memcpy(brand + 16 * i + 4, &r.b, 4);
      std::memcpy(brand + 16 * i + 8, &r.c, 4);
      std::memcpy(brand + 16 * i + 12, &r.d, 4);
    }
    f.brand = brand;
    while (!f.brand.empty() && f.brand.back() == ' ') f.brand.pop_back();
  }
  return f;
}
#else
CpuFeatures detect() { return {}; }
#endif

}  // namespace

std::string CpuFeatures::describe() const {
  std::string out;
  auto add = [&](bool on, const char* name) {
    if (!on) return;
    if (!out.empty()) out += ' ';
    out += name;
  };
  add(sse42, "sse4.2");
  add(avx, "avx");
  add(avx2, "avx2");
  add(fma, "fma");
  add(f16c, "f16c");
  add(avx_vnni, "avx-vnni");
  add(avx512f, "avx512f");
  add(avx512bw, "avx512bw");
  add(avx512vl, "avx512vl");
  add(avx512dq, "avx512dq");
  add(avx512_vnni, "avx512-vnni");
  add(avx512_bf16, "avx512-bf16");
  add(amx_tile, "amx-tile");
  add(amx_int8, "amx-int8");
  add(amx_bf16, "amx-bf16");
  return out;
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

int cpu_count() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

size_t cpu_l2_bytes() {
#ifdef _SC_LEVEL2_CACHE_SIZE
  long v = sysconf(_SC_LEVEL2_CACHE_SIZE);
  return v > 0 ? static_cast<size_t>(v) : 0;
#else
  return 0;
#endif
}

}  // namespace runnel
