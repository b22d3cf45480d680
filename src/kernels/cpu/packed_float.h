// The r16 layouts of plain float weights (f16_r16, bf16_r16, f32_r16; packed.h): within a group of
// 16 rows, element c of row r sits at (16 c + r) * elem_bytes, so one 32-byte (64 for f32) load is
// element c of all 16 rows. Any k works (no blocks). Internal to kernels/cpu; packed.cpp forwards
// pack/unpack of these types here, dispatch.cpp registers their kernels.
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/dtype.h"

namespace runnel::kernels::cpu {

struct KernelTable;

// Whether `t` is one of the packed float types, or a source that has one.
bool is_packed_float(DType t);
// One group: 16 rows of src (row r at rows + r * w_stride) into out (16 * k elements).
void pack_group_float(DType src, const uint8_t* rows, size_t w_stride, size_t k, uint8_t* out);
void unpack_float_f32(DType packed, const void* w, size_t n, size_t k, float* out);

namespace scalar {
void register_matmul_packed_float(KernelTable& t);
}
namespace avx2 {
void register_matmul_packed_float(KernelTable& t);
}
namespace avx512 {
void register_matmul_packed_float(KernelTable& t);
}

}  // namespace runnel::kernels::cpu
