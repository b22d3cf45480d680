// The AMX BF16 kernels for the F16R16 / BF16R16 layouts on the tile unit (matmul_amx_bf16_impl.h
// has the loops; this file its tile instructions). They override the AVX-512 table's entries for
// those types in the amx variant, for prefill of more than 32 rows of x; everything else stays with
// the AVX-512 kernels.
//
// The tile instructions are inline asm with a "memory" clobber on the loads and stores (the
// kernels keep nothing in vector registers, so it costs nothing), not GCC 12's intrinsics, which
// declare no memory read for _tile_loadd and only 8 of LDTILECFG's 64 bytes: the compiler could
// move the stores that fill a tile's source, or the configuration, past the instruction that reads
// them.
#include "kernels/cpu/attention_amx_impl.h"
#include "kernels/cpu/matmul_amx_bf16_impl.h"

namespace runnel::kernels::cpu::amx {
namespace {

struct TileOps {
  // The tile shape is per thread state; LDTILECFG only when this thread's shape changes.
  static void configure_bf16(int rows0, int rows1) {
    thread_local int shape = -1;
    const int want = rows0 << 8 | rows1;
    if (shape == want) return;
    const AmxTileConfig cfg = amx_bf16_config(rows0, rows1);
    __asm__ volatile("ldtilecfg %0" ::"m"(cfg));
    shape = want;
  }
  template <int T>
  static void zero() {
    __asm__ volatile("tilezero %%tmm%c0" ::"i"(T));
  }
  template <int T>
  static void load(const void* p, size_t stride) {
    __asm__ volatile("tileloadd (%0,%1,1), %%tmm%c2" ::"r"(p), "r"(stride), "i"(T) : "memory");
  }
  template <int T>
  static void store(void* p, size_t stride) {
    __asm__ volatile("tilestored %%tmm%c2, (%0,%1,1)" ::"r"(p), "r"(stride), "i"(T) : "memory");
  }
  // C += A . B (AT&T operand order: B, A, C).
  template <int C, int A, int B>
  static void dpbf16() {
    __asm__ volatile("tdpbf16ps %%tmm%c0, %%tmm%c1, %%tmm%c2" ::"i"(B), "i"(A), "i"(C));
  }
};

}  // namespace

void register_kernels(KernelTable& t) {
  amx_bf16_register<TileOps>(t);
  amx_attention_register<TileOps>(t);
}

bool self_test() { return amx_bf16_self_test<TileOps>(); }

}  // namespace runnel::kernels::cpu::amx
