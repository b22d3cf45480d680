#include "kernels/cpu/dispatch.h"

#include <atomic>
#include <cstring>
#include <string_view>

#include "base/cpu.h"
#include "base/env.h"
#include "base/error.h"
#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/packed_float.h"

namespace runnel::kernels::cpu {
namespace {

Isa choose() {
  const auto forced = env_string("RUNNEL_CPU");
  return choose_isa(forced ? forced->c_str() : nullptr);
}

std::atomic<int>& active_slot() {
  static std::atomic<int> slot{static_cast<int>(choose())};
  return slot;
}

// Each ISA's table layers its kernels over those of the ISAs below it, down to the scalar
// reference, so every entry is filled and a variant only overrides what it speeds up.
struct Tables {
  KernelTable t[4];
  Tables() {
    for (int i = 0; i < 4; ++i) {
      const Isa isa = static_cast<Isa>(i);
      scalar::register_matmul(t[i]);
      scalar::register_matmul_packed(t[i]);
      scalar::register_matmul_mlx(t[i]);
      scalar::register_matmul_packed_float(t[i]);
      scalar::register_matmul_packed_kquants(t[i]);
      scalar::register_attention(t[i]);
      scalar::register_vec(t[i]);
      if (isa >= Isa::kAvx2) {
        avx2::register_matmul(t[i]);
        avx2::register_matmul_kquants(t[i]);
        avx2::register_matmul_packed(t[i]);
        avx2::register_matmul_packed_kquants(t[i]);
        avx2::register_matmul_mlx(t[i]);
        avx2::register_matmul_packed_float(t[i]);
        avx2::register_attention(t[i]);
        avx2::register_vec(t[i]);
      }
      if (isa >= Isa::kAvx512) {
        avx512::register_matmul(t[i]);
        avx512::register_matmul_kquants(t[i]);
        avx512::register_matmul_packed(t[i]);
        avx512::register_matmul_mlx(t[i]);
        avx512::register_matmul_packed_float(t[i]);
        avx512::register_matmul_packed_kquants(t[i]);
        avx512::register_attention(t[i]);
        avx512::register_vec(t[i]);
      }
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

Isa choose_isa(const char* forced) {
  if (forced) {
    const std::string_view name = forced;
    for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAmx}) {
      if (name == isa_name(isa)) {
        // No AMX kernels are compiled in yet, whatever the CPU has: say so, not that it lacks AMX.
        check(isa != Isa::kAmx, "cpu",
              "RUNNEL_CPU=amx: this build has no AMX kernels yet; use avx512 (the default on "
              "AMX machines)");
        check(isa_supported(isa), "cpu", "RUNNEL_CPU=", name,
              " is not supported by this CPU (it has: ", cpu_features().describe(), ")");
        return isa;
      }
    }
    fail("cpu", "RUNNEL_CPU=", name, " is unknown (use scalar, avx2, avx512 or amx)");
  }
  for (Isa isa : {Isa::kAmx, Isa::kAvx512, Isa::kAvx2}) {
    if (isa_supported(isa)) return isa;
  }
  return Isa::kScalar;
}

const KernelTable& kernel_table(Isa isa) { return tables().t[static_cast<int>(isa)]; }
const KernelTable& kernel_table() { return kernel_table(active_isa()); }

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return "scalar";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512:
      return "avx512";
    case Isa::kAmx:
      return "amx";
  }
  return "?";
}

bool isa_supported(Isa isa) {
  const CpuFeatures& f = cpu_features();
  switch (isa) {
    case Isa::kScalar:
      return true;
    case Isa::kAvx2:
      return f.has_avx2();
    case Isa::kAvx512:
      return f.has_avx512() && f.has_avx2() && f.avx512_vnni && f.avx512_bf16;
    case Isa::kAmx:
      return false;  // no AMX kernels are compiled in yet
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
