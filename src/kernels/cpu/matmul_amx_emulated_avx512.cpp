// The AMX kernels of matmul_amx_bf16_impl.h over a software model of the tile unit, for tests on
// machines without AMX (dispatch.h: enable_amx_emulation). The model follows the instruction set
// reference: a tile has the rows and bytes per row of its LDTILECFG entry, TILELOADD fills rows
// past `rows` (and bytes past `colsb`) with zeros, TDPBF16PS adds to the f32 C[m][n] the products
// of bf16 pairs A[m][2k..2k+1] . B[k][2n..2n+1] one at a time for every k < A's colsb / 4 (each an
// f32 add rounded to nearest even; bf16 and f32 subnormals read and written as zeros), and an
// instruction on tiles whose shapes do not fit (which faults on the hardware) is an assertion
// failure here.
#include "base/assert.h"
#include "kernels/cpu/attention_amx_impl.h"
#include "kernels/cpu/matmul_amx_bf16_impl.h"

namespace runnel::kernels::cpu::amx_emulated {
namespace {

struct EmulatedTiles {
  struct State {
    AmxTileConfig cfg;
    bool configured = false;
    alignas(64) uint8_t t[8][16][64] = {};
  };
  static State& s() {
    thread_local State st;
    return st;
  }
  static int rows(int t) { return s().cfg.rows[t]; }
  static int colsb(int t) { return s().cfg.colsb[t]; }
  static void check(int t) {
    RUNNEL_ASSERT(s().configured && rows(t) >= 1 && rows(t) <= 16 && colsb(t) >= 4 &&
                  colsb(t) <= 64 && colsb(t) % 4 == 0);
  }

  static void zero(int t) {
    check(t);
    std::memset(s().t[t], 0, sizeof(s().t[t]));
  }
  static void load(int t, const void* base, size_t stride) {
    check(t);
    zero(t);
    for (int r = 0; r < rows(t); ++r) {
      std::memcpy(s().t[t][r], static_cast<const uint8_t*>(base) + r * stride,
                  static_cast<size_t>(colsb(t)));
    }
  }
  static void store(int t, void* base, size_t stride) {
    check(t);
    for (int r = 0; r < rows(t); ++r) {
      std::memcpy(static_cast<uint8_t*>(base) + r * stride, s().t[t][r],
                  static_cast<size_t>(colsb(t)));
    }
  }
  static void configure_bf16(int rows0, int rows1) {
    s().cfg = amx_bf16_config(rows0, rows1);
    s().configured = true;
  }
  static float flush(float v) { return std::fpclassify(v) == FP_SUBNORMAL ? 0.0f * v : v; }
  static float bf16_at(const uint8_t* p) {
    uint32_t u = 0;
    std::memcpy(reinterpret_cast<uint8_t*>(&u) + 2, p, 2);
    float v;
    std::memcpy(&v, &u, 4);
    return flush(v);
  }
  static void dpbf16ps(int c, int a, int b) {
    check(c);
    check(a);
    check(b);
    RUNNEL_ASSERT(rows(c) == rows(a) && colsb(c) == colsb(b) && colsb(a) == 4 * rows(b));
    for (int m = 0; m < rows(c); ++m) {
      for (int n = 0; n < colsb(c) / 4; ++n) {
        float acc;
        std::memcpy(&acc, &s().t[c][m][4 * n], 4);
        for (int k = 0; k < colsb(a) / 4; ++k) {
          for (int j = 0; j < 2; ++j) {
            acc = flush(acc + bf16_at(&s().t[a][m][4 * k + 2 * j]) *
                                  bf16_at(&s().t[b][k][4 * n + 2 * j]));
          }
        }
        std::memcpy(&s().t[c][m][4 * n], &acc, 4);
      }
    }
  }
  template <int T>
  static void zero() {
    zero(T);
  }
  template <int T>
  static void load(const void* p, size_t stride) {
    load(T, p, stride);
  }
  template <int T>
  static void store(void* p, size_t stride) {
    store(T, p, stride);
  }
  template <int C, int A, int B>
  static void dpbf16() {
    dpbf16ps(C, A, B);
  }
};

}  // namespace

void register_kernels(KernelTable& t) {
  amx_bf16_register<EmulatedTiles>(t);
  amx_attention_register<EmulatedTiles>(t);
}

bool self_test() { return amx_bf16_self_test<EmulatedTiles>(); }

}  // namespace runnel::kernels::cpu::amx_emulated
