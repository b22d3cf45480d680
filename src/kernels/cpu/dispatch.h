// Which instruction-set variant of the kernels runs. Chosen once at start-up from the CPU's
// features (base/cpu.h): AMX > AVX-512 (VNNI/BF16) > AVX2 > scalar.
// RUNNEL_CPU=scalar|avx2|avx512|amx forces one; forcing a variant the CPU cannot run is an error,
// never a crash. No AMX kernels are built yet: amx is never chosen, and forcing it is an error that
// says so.
#pragma once

namespace runnel::kernels::cpu {

enum class Isa { kScalar = 0, kAvx2 = 1, kAvx512 = 2, kAmx = 3 };

const char* isa_name(Isa isa);
// True when this CPU (and OS) can run `isa`'s kernels and they are compiled in.
bool isa_supported(Isa isa);
// The variant in use: chosen at first call from RUNNEL_CPU or the best supported.
Isa active_isa();
// The choice active_isa() makes: `forced` is RUNNEL_CPU's value (nullptr: the best supported).
// Throws Error("cpu", ...) for an unknown name or a variant this CPU cannot run.
Isa choose_isa(const char* forced);
// Tests and benchmarks switch variants; returns false (and changes nothing) when unsupported.
bool set_active_isa(Isa isa);

}  // namespace runnel::kernels::cpu
