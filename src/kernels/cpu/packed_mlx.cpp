// MLX affine r16 layouts (packed_mlx.h): packing from MLX's U32 words and scales/biases,
// unpacking for tests, and the scalar reference kernel that defines the arithmetic. Per block
// and row: the exact integer dot of the unsigned quants with x's int8 quants, then two fmas in
// this order (every SIMD variant reproduces them bit for bit):
//   acc = fma(float(dot), s · d_x, acc);  acc = fma(b, d_x · float(Σq_x), acc)
// float(dot) and float(Σq_x) are exact (|dot| <= 255 · 127 · 32 < 2^24).
#include "kernels/cpu/packed_mlx.h"

#include <bit>
#include <cmath>
#include <cstring>

#include "base/error.h"
#include "base/half.h"
#include "base/thread_pool.h"
#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/packed.h"

namespace runnel::kernels::cpu {
namespace {

// Elements 32b .. 32b + 31 of one row's little-endian bit stream of `bits`-bit values (4 or 8):
// on a little-endian host the words' bytes are the stream's, so element j is byte j (8 bits) or
// the low (j even) / high nibble of byte j / 2 (4 bits). (A generic shift and mask per element
// made packing a Q5_K model, converted through these words, 20% of its load's samples.)
static_assert(std::endian::native == std::endian::little, "MLX words are read as bytes");
inline void mlx_block_q(const uint32_t* row, size_t b, int bits, uint8_t* q) {
  const uint8_t* bytes = reinterpret_cast<const uint8_t*>(row) + 32 * b * bits / 8;
  if (bits == 8) {
    std::memcpy(q, bytes, 32);
    return;
  }
  for (int j = 0; j < 16; ++j) {
    q[2 * j] = bytes[j] & 15;
    q[2 * j + 1] = bytes[j] >> 4;
  }
}

struct PackArgs {
  const uint32_t* packed;
  const void* scales;
  const void* biases;
  DType sb_dtype;
  size_t cols;
  int bits, group_size;
};

// Group g (rows 16g..16g+15) into `out` (16 * row_bytes(type, cols) bytes).
void pack_group(const PackArgs& a, size_t g, uint8_t* out) {
  const DType type = mlx_packed_type(a.bits, a.group_size);
  const MlxBlockLayout lay = mlx_block_layout(type);
  const size_t nb = a.cols / 32, words = a.cols * static_cast<size_t>(a.bits) / 32;
  const size_t groups_per_row = a.cols / static_cast<size_t>(a.group_size);
  for (size_t b = 0; b < nb; ++b) {
    uint8_t* blk = out + lay.qs(b);
    uint8_t* sbk = out + lay.sb(b);  // written by both blocks of a 64: the same group's values
    for (int r = 0; r < kPackRows; ++r) {
      const size_t row = g * kPackRows + static_cast<size_t>(r);
      const uint32_t* w = a.packed + row * words;
      uint8_t q[32];
      mlx_block_q(w, b, a.bits, q);
      for (int c = 0; c < static_cast<int>(lay.qs_bytes / 64); ++c) {
        for (int j = 0; j < 4; ++j) {
          blk[64 * c + 4 * r + j] =
              a.bits == 8 ? q[4 * c + j]
                          : static_cast<uint8_t>(q[4 * c + j] | q[4 * c + 16 + j] << 4);
        }
      }
      const size_t sb = row * groups_per_row + 32 * b / static_cast<size_t>(a.group_size);
      const float s = float_element(a.scales, a.sb_dtype, static_cast<size_t>(sb)),
                  bias = float_element(a.biases, a.sb_dtype, static_cast<size_t>(sb));
      std::memcpy(sbk + 4 * r, &s, 4);
      std::memcpy(sbk + 64 + 4 * r, &bias, 4);
    }
  }
}

// Scalar reference kernel (the definition; see the file comment).
template <DType kType>
void gemm_reference(const PackedGemm& a) {
  constexpr bool kQ4 = kType == DType::kQ4AR16 || kType == DType::kQ4AR16G64;
  const MlxBlockLayout lay = mlx_block_layout(kType);
  const size_t nb = a.k / 32;
  for (int i = 0; i < a.mr; ++i) {
    const BlockQ8Act* x = reinterpret_cast<const BlockQ8Act*>(a.x + i * a.x_stride);
    for (int g = 0; g < a.ng; ++g) {
      const uint8_t* wg = a.w + static_cast<size_t>(g) * a.w_group_bytes;
      float acc[kPackRows] = {};
      for (size_t b = 0; b < nb; ++b) {
        const uint8_t* blk = wg + lay.qs(b);
        const uint8_t* sbk = wg + lay.sb(b);
        const float bx = x[b].d * static_cast<float>(x[b].sum);
        for (int r = 0; r < kPackRows; ++r) {
          int32_t dot = 0;
          const uint8_t* q = blk + 4 * r;
          for (int c = 0; c < static_cast<int>(lay.qs_bytes / 64); ++c) {
            for (int j = 0; j < 4; ++j) {
              const int v = q[64 * c + j];
              if (kQ4) {
                dot += (v & 15) * x[b].qs[4 * c + j] + (v >> 4) * x[b].qs[16 + 4 * c + j];
              } else {
                dot += v * x[b].qs[4 * c + j];
              }
            }
          }
          float s, bias;
          std::memcpy(&s, sbk + 4 * r, 4);
          std::memcpy(&bias, sbk + 64 + 4 * r, 4);
          acc[r] = std::fma(static_cast<float>(dot), s * x[b].d, acc[r]);
          acc[r] = std::fma(bias, bx, acc[r]);
        }
      }
      std::memcpy(a.y + static_cast<size_t>(i) * a.y_stride + 16 * g, acc, sizeof acc);
    }
  }
}

}  // namespace

DType mlx_packed_type(int bits, int group_size) {
  const bool g64 = group_size % 64 == 0;
  if (bits == 8) return g64 ? DType::kQ8AR16G64 : DType::kQ8AR16;
  if (bits == 4) return g64 ? DType::kQ4AR16G64 : DType::kQ4AR16;
  return DType::kU32;
}

DType preferred_mlx_type(int bits, int group_size, size_t n, size_t k) {
  const DType p = mlx_packed_type(bits, group_size);
  if (p == DType::kU32 || n % kPackRows != 0 || k == 0 || k % 32 != 0 || group_size <= 0 ||
      group_size % 32 != 0 || k % static_cast<size_t>(group_size) != 0) {
    return DType::kF32;
  }
  const MatmulEntry& e = kernel_table().matmul[static_cast<int>(p)];
  return e.packed != nullptr && e.prefer_packed ? p : DType::kF32;
}

void pack_mlx_affine(const uint32_t* packed, const void* scales, const void* biases, DType sb_dtype,
                     size_t rows, size_t cols, int bits, int group_size, void* out,
                     ThreadPool& pool) {
  const DType type = mlx_packed_type(bits, group_size);
  check(type != DType::kU32, "matmul", "no packed layout for MLX ", bits, "-bit weights");
  check(rows % kPackRows == 0, "matmul", "packing needs a multiple of 16 rows, got ", rows);
  check(cols % 32 == 0 && group_size > 0 && group_size % 32 == 0 &&
            cols % static_cast<size_t>(group_size) == 0,
        "matmul", "MLX packing needs group_size a multiple of 32 dividing k, got group_size ",
        group_size, " for k=", cols);
  check(sb_dtype == DType::kF32 || sb_dtype == DType::kF16 || sb_dtype == DType::kBF16, "matmul",
        "MLX scales must be f32, f16 or bf16, got ", dtype_name(sb_dtype));
  const PackArgs a{packed, scales, biases, sb_dtype, cols, bits, group_size};
  const size_t group_bytes = kPackRows * row_bytes(type, cols);
  uint8_t* ob = static_cast<uint8_t*>(out);
  pool.parallel_for(rows / kPackRows, 1, [&](size_t g0, size_t g1) {
    for (size_t g = g0; g < g1; ++g) pack_group(a, g, ob + g * group_bytes);
  });
}

void unpack_mlx_f32(DType packed, const void* w, size_t n, size_t k, float* out) {
  check(is_mlx_packed(packed), "matmul", dtype_name(packed), " is not an MLX packed type");
  const MlxBlockLayout lay = mlx_block_layout(packed);
  const size_t group_bytes = kPackRows * row_bytes(packed, k);
  const uint8_t* wb = static_cast<const uint8_t*>(w);
  for (size_t row = 0; row < n; ++row) {
    const size_t r = row % kPackRows;
    for (size_t b = 0; b < k / 32; ++b) {
      const uint8_t* wg = wb + row / kPackRows * group_bytes;
      const uint8_t* blk = wg + lay.qs(b);
      float s, bias;
      std::memcpy(&s, wg + lay.sb(b) + 4 * r, 4);
      std::memcpy(&bias, wg + lay.sb(b) + 64 + 4 * r, 4);
      float* o = out + row * k + b * 32;
      for (size_t c = 0; c < lay.qs_bytes / 64; ++c) {
        for (size_t j = 0; j < 4; ++j) {
          const int v = blk[64 * c + 4 * r + j];
          if (lay.qs_bytes == 256) {
            o[4 * c + j] = static_cast<float>(v & 15) * s + bias;
            o[16 + 4 * c + j] = static_cast<float>(v >> 4) * s + bias;
          } else {
            o[4 * c + j] = static_cast<float>(v) * s + bias;
          }
        }
      }
    }
  }
}

namespace scalar {
void register_matmul_mlx(KernelTable& t) {
  for (DType d : {DType::kQ8AR16, DType::kQ4AR16, DType::kQ8AR16G64, DType::kQ4AR16G64}) {
    matmul_entry(t, d) = {nullptr, ActKind::kQ8, 4, 1, nullptr, 1, false};
  }
  matmul_entry(t, DType::kQ8AR16).packed = gemm_reference<DType::kQ8AR16>;
  matmul_entry(t, DType::kQ4AR16).packed = gemm_reference<DType::kQ4AR16>;
  matmul_entry(t, DType::kQ8AR16G64).packed = gemm_reference<DType::kQ8AR16G64>;
  matmul_entry(t, DType::kQ4AR16G64).packed = gemm_reference<DType::kQ4AR16G64>;
}
}  // namespace scalar

}  // namespace runnel::kernels::cpu
