// AMX INT8 kernels for the Q8_0R16 / Q4_0R16 / Q5_0R16 / Q3_KR16 / Q4_KR16 / Q5_KR16 / Q6_KR16
// layouts on the tile unit (matmul_amx_impl.h has the loops; this file its tile instructions). They
// override the AVX-512 table's entries for those types in the amx variant; everything else, and
// tiles of fewer than 5 rows of x (decode), stay with the VNNI kernels.
//
// The tile instructions are inline asm whose memory operands name the bytes they read or write
// (a B tile's 512, a C tile's 1 KiB, LDTILECFG's 64). GCC 12's intrinsics do not
// (_tile_loadd declares no memory read, _tile_loadconfig only 8 bytes of its operand), so the
// compiler may sink the stores that fill a B tile's buffer, or the configuration, past the
// instruction that reads them. A "memory" clobber would do too, but it keeps the sixteen f32
// accumulators in memory instead of registers.
#include "kernels/cpu/matmul_amx_bf16_impl.h"

namespace runnel::kernels::cpu::amx {
namespace {

template <size_t N>
struct TileBytes {
  uint8_t b[N];
};

struct TileOps {
  // The tile shape is per thread state; LDTILECFG only when this thread's shape changes.
  static int& shape() {
    thread_local int s = 0;
    return s;
  }
  static void configure(int rows, int kbytes) {
    const int want = rows << 8 | kbytes;
    if (shape() == want) return;
    const AmxTileConfig cfg = amx_config(rows, kbytes);
    __asm__ volatile("ldtilecfg %0" ::"m"(cfg));
    shape() = want;
  }
  static void configure_bf16(int rows0, int rows1) {
    const int want = 1 << 20 | rows0 << 8 | rows1;
    if (shape() == want) return;
    const AmxTileConfig cfg = amx_bf16_config(rows0, rows1);
    __asm__ volatile("ldtilecfg %0" ::"m"(cfg));
    shape() = want;
  }
  // The BF16 kernels' tiles (matmul_amx_bf16_impl.h): they keep nothing in vector registers, so a
  // "memory" clobber on each tile load and store costs nothing and orders them after the stores
  // that fill x's bf16 rows and before the reads of y.
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
  template <int C, int A, int B>
  static void dpbf16() {
    __asm__ volatile("tdpbf16ps %%tmm%c0, %%tmm%c1, %%tmm%c2" ::"i"(B), "i"(A), "i"(C));
  }
  template <int P>
  static void zero_c() {
    if constexpr (P == 0) {
      __asm__ volatile("tilezero %%tmm0" ::);
    } else {
      __asm__ volatile("tilezero %%tmm1" ::);
    }
  }
  // x is only read while the kernel runs, so A's loads need not tell the compiler what they read.
  template <int P>
  static void load_a(const void* p, size_t stride) {
    if constexpr (P == 0) {
      __asm__ volatile("tileloadd (%0,%1,1), %%tmm2" ::"r"(p), "r"(stride));
    } else {
      __asm__ volatile("tileloadd (%0,%1,1), %%tmm3" ::"r"(p), "r"(stride));
    }
  }
  // B's 512 bytes were just written by the kernel: the "m" operand says they are read here.
  template <int P>
  static void load_b(const void* p) {
    const size_t stride = 64;
    const auto& bytes = *static_cast<const TileBytes<512>*>(p);
    if constexpr (P == 0) {
      __asm__ volatile("tileloadd (%1,%2,1), %%tmm4" ::"m"(bytes), "r"(p), "r"(stride));
    } else {
      __asm__ volatile("tileloadd (%1,%2,1), %%tmm5" ::"m"(bytes), "r"(p), "r"(stride));
    }
  }
  // C_P += A_P . B_P (AT&T operand order: B, A, C).
  template <int P>
  static void dot() {
    if constexpr (P == 0) {
      __asm__ volatile("tdpbssd %%tmm4, %%tmm2, %%tmm0" ::);
    } else {
      __asm__ volatile("tdpbssd %%tmm5, %%tmm3, %%tmm1" ::);
    }
  }
  // The 1 KiB the vector step then reads: a "+m" operand (rows past the tile's are left as they
  // were, so the compiler must keep what it stored there before; "=m" would let it drop that).
  template <int P>
  static void store_c(void* p) {
    const size_t stride = 64;
    auto& bytes = *static_cast<TileBytes<1024>*>(p);
    if constexpr (P == 0) {
      __asm__ volatile("tilestored %%tmm0, (%1,%2,1)" : "+m"(bytes) : "r"(p), "r"(stride));
    } else {
      __asm__ volatile("tilestored %%tmm1, (%1,%2,1)" : "+m"(bytes) : "r"(p), "r"(stride));
    }
  }
};

}  // namespace

void register_matmul_packed(KernelTable& t) {
  amx_register<TileOps>(t);
  amx_bf16_register<TileOps>(t);
}

bool self_test() { return amx_self_test<TileOps>() && amx_bf16_self_test<TileOps>(); }

}  // namespace runnel::kernels::cpu::amx
