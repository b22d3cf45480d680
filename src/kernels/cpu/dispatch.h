// Which instruction-set variant of the kernels runs. Chosen once at start-up from the CPU's
// features (base/cpu.h): AMX > AVX-512 (VNNI/BF16) > AVX-VNNI > AVX2 > scalar.
// RUNNEL_CPU=scalar|avx2|avxvnni|avx512|amx forces one; forcing a variant the CPU cannot run is an
// error, never a crash. The amx variant is the AVX-512 one with AMX BF16 tiles for the prefill of
// F16 and BF16 weights (matmul_amx_bf16_impl.h); it is chosen only after its kernels pass a
// self-test at start-up.
#pragma once

namespace runnel::kernels::cpu {

// kAvxVnni is AVX2 plus the VEX-encoded vpdpbusd of AVX-VNNI (Intel cores since Alder Lake
// without AVX-512): the AVX2 variant with its integer kernels' (Q8_0, Q4_0, Q4_K, Q6_K, MLX) dots
// in vpdpbusd.
enum class Isa { kScalar = 0, kAvx2 = 1, kAvxVnni = 2, kAvx512 = 3, kAmx = 4 };
constexpr int kIsaCount = 5;
// Every variant, weakest first.
constexpr Isa kAllIsas[kIsaCount] = {Isa::kScalar, Isa::kAvx2, Isa::kAvxVnni, Isa::kAvx512,
                                     Isa::kAmx};

const char* isa_name(Isa isa);
// True when this CPU (and OS) can run `isa`'s kernels and they are compiled in.
bool isa_supported(Isa isa);
// The variant in use: chosen at first call from RUNNEL_CPU or the best supported.
Isa active_isa();
// The choice active_isa() makes: `forced` is RUNNEL_CPU's value (nullptr: the best supported).
// Throws Error("cpu", ...) for an unknown name or a variant this CPU cannot run.
Isa choose_isa(const char* forced);
// Tests and benchmarks switch variants; returns false (and changes nothing) unless
// isa_runnable(isa).
bool set_active_isa(Isa isa);

// Tests only: on a CPU with AVX-512 and no AMX, makes Isa::kAmx runnable by set_active_isa with
// the tile instructions emulated in software (same results, far slower), so the AMX kernels'
// tiling, tile shapes and data flow are checked on every AVX-512 machine. choose_isa never picks
// the emulation, and it changes nothing on a CPU with AMX (the real kernels run there).
void enable_amx_emulation();
// isa_supported(isa), or isa is kAmx and emulated (enable_amx_emulation).
bool isa_runnable(Isa isa);

}  // namespace runnel::kernels::cpu
