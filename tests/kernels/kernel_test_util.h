// Helpers shared by the kernel tests: the ISAs to compare, seeded random data, and a guard that
// restores the active ISA.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "base/half.h"
#include "kernels/cpu/dispatch.h"

namespace runnel::kernels::cpu::testing {

// Every SIMD variant this machine can run (the scalar reference is what they are compared to),
// AMX emulated where the CPU has AVX-512 but no AMX (dispatch.h).
inline std::vector<Isa> simd_isas() {
  enable_amx_emulation();
  std::vector<Isa> out;
  for (Isa isa : {Isa::kAvx2, Isa::kAvxVnni, Isa::kAvx512, Isa::kAmx}) {
    if (isa_runnable(isa)) out.push_back(isa);
  }
  return out;
}

// Switches the active ISA for a scope.
class IsaScope {
 public:
  explicit IsaScope(Isa isa) : saved_(active_isa()) { ok_ = set_active_isa(isa); }
  ~IsaScope() { set_active_isa(saved_); }
  bool ok() const { return ok_; }

 private:
  Isa saved_;
  bool ok_;
};

inline std::vector<float> random_floats(std::mt19937& rng, size_t n, float lo = -1, float hi = 1) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

constexpr float kEps = 1.1920929e-07f;  // f32 machine epsilon

}  // namespace runnel::kernels::cpu::testing
