#include "kernels/cpu/dispatch.h"

#include <atomic>
#include <cstring>

#include "base/cpu.h"
#include "base/env.h"
#include "base/error.h"

namespace runnel::kernels::cpu {
namespace {

Isa choose() {
  if (auto forced = env_string("RUNNEL_CPU")) {
    for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAmx}) {
      if (*forced == isa_name(isa)) {
        check(isa_supported(isa), "cpu", "RUNNEL_CPU=", *forced,
              " is not supported by this CPU (it has: ", cpu_features().describe(), ")");
        return isa;
      }
    }
    fail("cpu", "RUNNEL_CPU=", *forced, " is unknown (use scalar, avx2, avx512 or amx)");
  }
  for (Isa isa : {Isa::kAmx, Isa::kAvx512, Isa::kAvx2}) {
    if (isa_supported(isa)) return isa;
  }
  return Isa::kScalar;
}

std::atomic<int>& active_slot() {
  static std::atomic<int> slot{static_cast<int>(choose())};
  return slot;
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return "scalar";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
    case Isa::kAmx: return "amx";
  }
  return "?";
}

bool isa_supported(Isa isa) {
  const CpuFeatures& f = cpu_features();
  switch (isa) {
    case Isa::kScalar: return true;
    case Isa::kAvx2: return f.has_avx2();
    case Isa::kAvx512: return f.has_avx512() && f.has_avx2() && f.avx512_vnni && f.avx512_bf16;
    case Isa::kAmx: return false;  // no AMX kernels are compiled in yet
  }
  return false;
}

Isa active_isa() { return static_cast<Isa>(active_slot().load(std::memory_order_relaxed)); }

bool set_active_isa(Isa isa) {
  if (!isa_supported(isa)) return false;
  active_slot().store(static_cast<int>(isa));
  return true;
}

}  // namespace runnel::kernels::cpu
