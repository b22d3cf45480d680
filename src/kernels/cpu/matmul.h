// Matrix multiplication against weight matrices, the bulk of inference time:
//   y[m, n] = x[m, k] · W[n, k]^T
// x and y are f32; W is n rows of k elements in F32, F16, BF16, Q8_0 or Q4_0 (GGML block layouts,
// kernels/cpu/quant.h). For Q8_0/Q4_0, x is quantized on the fly to 8-bit blocks of 32 (f32 scale)
// and the dot products run on integers; the scalar reference (matmul_scalar.cpp) defines that math.
#pragma once

#include <cstddef>

#include "base/dtype.h"

namespace runnel {
class ThreadPool;
}

namespace runnel::kernels::cpu {

// True when matmul() accepts weights of type `wtype`.
bool matmul_supports(DType wtype);

// x: m rows of k f32, row i at x + i * x_stride (stride in floats).
// w: n rows of k elements of wtype, row j at (const char*)w + j * w_stride (stride in bytes,
//    at least row_bytes(wtype, k)); k must be a multiple of block_elems(wtype).
// y: m rows of n f32, row i at y + i * y_stride (stride in floats). y must not overlap x or w.
// Throws Error("matmul", ...) for an unsupported wtype or a k that is not a whole number of blocks.
// Results do not depend on the thread count or on m (each y[i, j] is summed in a fixed order).
void matmul(const float* x, size_t x_stride, size_t m, size_t k, const void* w, DType wtype,
            size_t w_stride, size_t n, float* y, size_t y_stride, ThreadPool& pool);

}  // namespace runnel::kernels::cpu
