// The dispatch table: one function pointer per (op, weight type), filled once per ISA by layering
// each variant's register_kernels() over the scalar reference (a variant overrides only what it
// implements). Internal to kernels/; the public entry points (matmul.h, attention.h, vec.h) use it.
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/assert.h"
#include "base/dtype.h"
#include "kernels/cpu/dispatch.h"

namespace runnel {
class ThreadPool;
}

namespace runnel::kernels::cpu {

enum class RopeStyle;  // vec.h

struct AttentionArgs;

// Activations quantized on the fly for the integer paths (Q8_0, Q4_0 weights): one block per 32
// elements of x. Not GGML's block_q8_0: the scale is f32, and lane sums let SIMD kernels correct
// for unsigned-times-signed dot instructions without extra work per weight row.
struct BlockQ8Act {
  int8_t qs[32];    // q = nearbyint(x / d), in [-127, 127]
  int32_t lsum[8];  // lsum[l] = qs[4l] + qs[4l+1] + qs[4l+2] + qs[4l+3]
  float d;          // amax / 127 (0 when the block is all zero)
  int32_t sum;      // sum of qs
};
static_assert(sizeof(BlockQ8Act) == 72);

// The scalar definition; each ISA's KernelTable::quantize_q8 produces the same bytes (tested), so
// all variants see bit-identical activations.
void quantize_act_q8(const float* x, size_t k, BlockQ8Act* out);
// The same blocks, but the 8 of every 256 elements share one d (the amax of all 256 / 127), so a
// K-quant kernel can sum a whole super-block's scaled dots in int32 before one f32 step (k % 256
// == 0). Each ISA's KernelTable::quantize_q8_256 produces the same bytes.
void quantize_act_q8_256(const float* x, size_t k, BlockQ8Act* out);

// How x is presented to a tile kernel.
// kQ8: BlockQ8Act rows from quantize_q8; kQ8x256: from quantize_q8_256 (d shared per 256).
// (MatmulEntry::bf16's tiles take bf16 rows instead.)
enum class ActKind : uint8_t { kF32, kQ8, kQ8x256 };

// One register tile of the matmul: y[i, j] for i < mr rows of x, j < nr rows of W, over all k.
// Strides are in bytes. x points to f32 rows (ActKind::kF32) or BlockQ8Act rows (kQ8).
struct GemmTile {
  const uint8_t* x;
  size_t x_stride;
  const uint8_t* w;
  size_t w_stride;
  float* y;
  size_t y_stride;  // in floats
  size_t k;
  int mr, nr;  // 1..kMaxTile
};
constexpr int kMaxTile = 4;
using TileFn = void (*)(const GemmTile&);

// One call of a packed-layout kernel (packed.h): y[i, 16 g + r] for i < mr rows of x and
// g < ng groups of 16 weight rows, over all of k. Each output lane is summed block by block (for
// float types element by element) in order with one fma per block, so every variant equals the
// scalar reference bit for bit and the result does not depend on mr, ng or the thread count.
struct PackedGemm {
  const uint8_t* x;  // BlockQ8Act rows (the entry's act is kQ8), or f32 rows (kF32)
  size_t x_stride;   // bytes
  const uint8_t* w;  // the first group
  size_t w_group_bytes;
  float* y;
  size_t y_stride;  // floats
  size_t k;
  int mr, ng;  // 1..MatmulEntry::mr, 1..MatmulEntry::ng (decode: mr = ng = 1, matmul.cpp)
  // Decode: the weights stream from DRAM once (consecutive groups, ascending), and the kernel
  // prefetches ahead of its reads (prefetch.h). Prefill's panels are reused from L2: false.
  bool stream = false;
  // Prefill of an entry with `expand`: w holds the ng groups in the kernel's expanded layout
  // (w_group_bytes = expanded_bytes(k) apart), not the packed one.
  bool expanded = false;
};
using PackedFn = void (*)(const PackedGemm&);
// Converts ng groups of packed weights (w, group_bytes apart) to the entry's expanded layout at
// out (64-byte aligned, ng * expanded_bytes(k) bytes).
using ExpandFn = void (*)(const uint8_t* w, size_t group_bytes, size_t k, int ng, uint8_t* out);

struct MatmulEntry {
  TileFn tile = nullptr;
  ActKind act = ActKind::kF32;
  int mr = 1, nr = 1;  // the largest tile this kernel computes per call (prefill); decode uses mr=1
  // Packed types (packed.h) have `packed` instead of `tile`; ng is the most groups per call.
  PackedFn packed = nullptr;
  int ng = 1;
  // Source types: whether this ISA streams packed_type(source) better than the source layout;
  // MLX packed types (packed_mlx.h, which have no source entry): whether to pack them at all.
  bool prefer_packed = false;
  // Optional, prefill only (matmul.cpp): a packed layout whose unpacking costs the kernel work on
  // every call converts each NG-group slice once into this layout, which the MR-row tiles then
  // sweep (PackedGemm::expanded). Bytes per group of 16 rows of k elements.
  ExpandFn expand = nullptr;
  size_t (*expanded_bytes)(size_t k) = nullptr;
  // The amx variant's BF16 tiles (matmul_amx_bf16_impl.h), for prefill only: x of more than
  // bf16.mr rows goes to bf16.fn instead, as bf16 rows from KernelTable::f32_to_bf16 (row stride a
  // multiple of 64 bytes, zeros past k), the weights as bf16.expand's slices of bf16.ng groups.
  // Everything above stays the AVX-512 kernel's, for decode and short prompts.
  struct Bf16Tiles {
    PackedFn fn = nullptr;
    ExpandFn expand = nullptr;
    size_t (*expanded_bytes)(size_t k) = nullptr;
    int mr = 0, ng = 0;
  } bf16 = {};
};

using AttentionFn = void (*)(const AttentionArgs&, ThreadPool&);

struct KernelTable {
  MatmulEntry matmul[static_cast<int>(DType::kCount)];
  AttentionFn attention = nullptr;
  // The AVX-512 loop with scores by rows from position 0 (attention_tiled.h: rows_min_pos), for
  // the amx variant's f16 KV, whose prefill goes through the tiles (attention_amx_impl.h).
  AttentionFn attention_rows = nullptr;
  void (*quantize_q8)(const float* x, size_t k, BlockQ8Act* out) = nullptr;      // k % 32 == 0
  void (*quantize_q8_256)(const float* x, size_t k, BlockQ8Act* out) = nullptr;  // k % 256 == 0
  void (*rms_norm)(const float* x, const float* w, float* y, size_t n, float eps) = nullptr;
  void (*softmax)(const float* x, float* y, size_t n) = nullptr;
  void (*silu_mul)(const float* a, const float* b, float* y, size_t n) = nullptr;
  void (*rope_rows)(const float* x, float* y, size_t n_heads, size_t head_dim, size_t n_rot,
                    const float* cos, const float* sin, RopeStyle style) = nullptr;
  void (*head_norm_rope)(const float* x, const float* w, float eps, float* y, size_t n_heads,
                         size_t head_dim, size_t n_rot, const float* cos, const float* sin,
                         RopeStyle style) = nullptr;
  void (*gelu_tanh)(const float* x, float* y, size_t n) = nullptr;
  void (*gelu_erf)(const float* x, float* y, size_t n) = nullptr;
  void (*add)(const float* a, const float* b, float* y, size_t n) = nullptr;
  void (*mul)(const float* a, const float* b, float* y, size_t n) = nullptr;
  void (*scale)(const float* x, float s, float* y, size_t n) = nullptr;
  int64_t (*argmax)(const float* x, size_t n) = nullptr;
  double (*sum_exp)(const float* x, size_t n, float m) = nullptr;
  void (*f16_to_f32)(const uint16_t* x, float* y, size_t n) = nullptr;
  void (*bf16_to_f32)(const uint16_t* x, float* y, size_t n) = nullptr;
  void (*f32_to_f16)(const float* x, uint16_t* y, size_t n) = nullptr;
  void (*f32_to_q8_0)(const float* x, void* y, size_t n) = nullptr;
  // One row of x to bf16 (nearest even), zeros from k up to the next multiple of 32
  // (MatmulEntry::bf16; only tables with such entries have it).
  void (*f32_to_bf16)(const float* x, size_t k, uint16_t* out) = nullptr;
  // Read-only pass over [p, p + bytes) (bytes a multiple of 256): the xor of all its 64-bit words,
  // so the compiler keeps every load (and tests can check that every byte was read).
  uint64_t (*read_sum)(const void* p, size_t bytes) = nullptr;
};

// The table of the active ISA (dispatch.h), or of a given one (tests and benchmarks).
const KernelTable& kernel_table();
const KernelTable& kernel_table(Isa isa);

// Each ISA's translation units add their kernels (matmul_<isa>.cpp, attention_<isa>.cpp,
// vec_<isa>.cpp). The scalar ones fill every entry.
#define RUNNEL_DECLARE_REGISTER(ISA)                   \
  namespace ISA {                                      \
  void register_matmul(KernelTable& t);                \
  void register_matmul_kquants(KernelTable& t);        \
  void register_matmul_packed(KernelTable& t);         \
  void register_matmul_packed_kquants(KernelTable& t); \
  void register_matmul_mlx(KernelTable& t);            \
  void register_matmul_packed_float(KernelTable& t);   \
  void register_attention(KernelTable& t);             \
  void register_vec(KernelTable& t);                   \
  }
RUNNEL_DECLARE_REGISTER(scalar)
RUNNEL_DECLARE_REGISTER(avx2)
RUNNEL_DECLARE_REGISTER(avx512)
#undef RUNNEL_DECLARE_REGISTER

namespace avxvnni {
// The AVX2 Q8_0R16 / Q4_0R16 / Q4_KR16 / Q5_KR16 / Q6_KR16 / MLX r16 kernels with their block dots
// in AVX-VNNI's vpdpbusd (matmul_packed_avxvnni.cpp); the rest of the avxvnni table is AVX2's.
void register_matmul_packed(KernelTable& t);
}  // namespace avxvnni

namespace avx512 {
// The Q2_KR16 entry (matmul_packed_q2_k_avx512.cpp), set by register_matmul_packed_kquants.
void register_matmul_packed_q2_k(KernelTable& t);
// The IQ4_XSR16 entry (matmul_packed_iq4_xs_avx512.cpp), likewise.
void register_matmul_packed_iq4_xs(KernelTable& t);
}  // namespace avx512
// The AMX variant's additions to the AVX-512 table, its BF16 tile kernels for prefill matmuls and
// attention: on the tile unit (amx), or on a software model of it for tests (amx_emulated;
// dispatch.h). self_test() checks the matmul tiles against double math.
namespace amx {
void register_kernels(KernelTable& t);
bool self_test();
}  // namespace amx
namespace amx_emulated {
void register_kernels(KernelTable& t);
bool self_test();
}  // namespace amx_emulated

inline MatmulEntry& matmul_entry(KernelTable& t, DType d) { return t.matmul[static_cast<int>(d)]; }

// Expands to a switch calling FN<MR, NR>(T) for the tile's runtime (mr, nr), both in 1..4.
#define RUNNEL_TILE_SWITCH(FN, T)             \
  switch ((T).mr * 8 + (T).nr) {              \
    case 9:                                   \
      return FN<1, 1>(T);                     \
    case 10:                                  \
      return FN<1, 2>(T);                     \
    case 11:                                  \
      return FN<1, 3>(T);                     \
    case 12:                                  \
      return FN<1, 4>(T);                     \
    case 17:                                  \
      return FN<2, 1>(T);                     \
    case 18:                                  \
      return FN<2, 2>(T);                     \
    case 19:                                  \
      return FN<2, 3>(T);                     \
    case 20:                                  \
      return FN<2, 4>(T);                     \
    case 25:                                  \
      return FN<3, 1>(T);                     \
    case 26:                                  \
      return FN<3, 2>(T);                     \
    case 27:                                  \
      return FN<3, 3>(T);                     \
    case 28:                                  \
      return FN<3, 4>(T);                     \
    case 33:                                  \
      return FN<4, 1>(T);                     \
    case 34:                                  \
      return FN<4, 2>(T);                     \
    case 35:                                  \
      return FN<4, 3>(T);                     \
    case 36:                                  \
      return FN<4, 4>(T);                     \
    default:                                  \
      RUNNEL_ASSERT(false && "tile too big"); \
  }

}  // namespace runnel::kernels::cpu
