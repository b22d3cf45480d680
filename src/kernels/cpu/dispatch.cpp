#include "kernels/cpu/dispatch.h"

#include <atomic>
#include <cstring>
#include <string_view>

#include "base/cpu.h"
#include "base/env.h"
#include "base/error.h"
#include "base/log.h"
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
// reference, so every entry is filled and a variant only overrides what it speeds up (avxvnni's
// kernels sit in its own table only: avx512 and amx layer over avx2).
struct Tables {
  KernelTable t[kIsaCount];
  Tables() {
    for (int i = 0; i < kIsaCount; ++i) {
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
      if (isa == Isa::kAvxVnni) {
        // Not layered under AVX-512: an AVX-512 CPU need not have AVX-VNNI (Cooper Lake has
        // AVX-512 VNNI and BF16 but not the VEX vpdpbusd).
        avxvnni::register_matmul_packed(t[i]);
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
      if (isa == Isa::kAmx) {
        // Only a CPU with AMX runs the tile unit's kernels; elsewhere the slot holds the
        // emulated ones, which set_active_isa reaches only after enable_amx_emulation.
        if (cpu_features().has_amx()) {
          amx::register_kernels(t[i]);
        } else {
          amx_emulated::register_kernels(t[i]);
        }
      }
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

std::atomic<bool>& amx_emulation() {
  static std::atomic<bool> on{false};
  return on;
}

// The tile kernels against double math on fixed data, once, before AMX can be chosen: a CPU (or
// hypervisor) whose tile unit gives other results runs the AVX-512 variant instead.
bool amx_self_test_passed() {
  static const bool ok = [] {
    const bool pass = amx::self_test();
    if (!pass) {
      RUNNEL_WARN("cpu",
                  "the AMX kernels' self-test fails on this CPU; "
                  "using the avx512 kernels");
    }
    return pass;
  }();
  return ok;
}

}  // namespace

Isa choose_isa(const char* forced) {
  if (forced) {
    const std::string_view name = forced;
    for (Isa isa : kAllIsas) {
      if (name == isa_name(isa)) {
        check(isa_supported(isa), "cpu", "RUNNEL_CPU=", name,
              " is not supported by this CPU (it has: ", cpu_features().describe(), ")");
        return isa;
      }
    }
    fail("cpu", "RUNNEL_CPU=", name, " is unknown (use scalar, avx2, avxvnni, avx512 or amx)");
  }
  for (Isa isa : {Isa::kAmx, Isa::kAvx512, Isa::kAvxVnni, Isa::kAvx2}) {
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
    case Isa::kAvxVnni:
      return "avxvnni";
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
    case Isa::kAvxVnni:
      return f.has_avx2() && f.avx_vnni;
    case Isa::kAvx512:
      return f.has_avx512() && f.has_avx2() && f.avx512_vnni && f.avx512_bf16;
    case Isa::kAmx:
      return f.has_amx() && isa_supported(Isa::kAvx512) && amx_self_test_passed();
  }
  return false;
}

void enable_amx_emulation() { amx_emulation().store(true); }

bool isa_runnable(Isa isa) {
  if (isa_supported(isa)) return true;
  return isa == Isa::kAmx && amx_emulation().load() && !cpu_features().has_amx() &&
         isa_supported(Isa::kAvx512);
}

Isa active_isa() { return static_cast<Isa>(active_slot().load(std::memory_order_relaxed)); }

bool set_active_isa(Isa isa) {
  if (!isa_runnable(isa)) return false;
  active_slot().store(static_cast<int>(isa));
  return true;
}

}  // namespace runnel::kernels::cpu
