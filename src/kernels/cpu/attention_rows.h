// The element types a K/V row of the attention kernels can hold (attention.h: kv_dtype): float
// (f32), uint16_t (f16 bits) and BlockQ8_0 (q8_0: a head's row is head_dim / 32 GGML blocks,
// element e = qs[e % 32] · d of block e / 32, exact in f32). Row pointers are `const T*` to the
// head's first unit; kUnitElems<T> elements per T. Also the rows' decode prefetch, shared by the
// ISA files.
// Internal linkage: included by the scalar reference and by each ISA's tiled loop.
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/dtype.h"
#include "kernels/cpu/prefetch.h"
#include "kernels/cpu/quant.h"

namespace runnel::kernels::cpu {
namespace {

template <class T>
inline constexpr int kUnitElems = 1;
template <>
inline constexpr int kUnitElems<BlockQ8_0> = kQK;

// Bytes of a head's row of d elements (d a multiple of kUnitElems<T>).
template <class T>
constexpr size_t head_row_bytes(int d) {
  return static_cast<size_t>(d / kUnitElems<T>) * sizeof(T);
}

// Calls f.template operator()<T>() with the row type of kv_dtype (f32, f16 or q8_0).
template <class F>
void with_kv_type(DType kv_dtype, F&& f) {
  if (kv_dtype == DType::kF16) {
    f.template operator()<uint16_t>();
  } else if (kv_dtype == DType::kQ8_0) {
    f.template operator()<BlockQ8_0>();
  } else {
    f.template operator()<float>();
  }
}

// Decode's prefetch (attention_tiled.h): while element e of a row is read, the line holding
// element e of the row pf[j] read later (once per 64 bytes).
template <class T>
inline void prefetch_at(const T* row, int e) {
  if (e * sizeof(T) % 64 == 0) prefetch<kL1>(row + e);
}
// q8_0 rows: a block's first and last byte (34-byte blocks start anywhere in a line).
inline void prefetch_at(const BlockQ8_0* row, int e) {
  if (e % kQK != 0) return;
  const char* b = reinterpret_cast<const char*>(row + e / kQK);
  prefetch<kL1>(b);
  prefetch<kL1>(b + sizeof(BlockQ8_0) - 1);
}

}  // namespace
}  // namespace runnel::kernels::cpu
