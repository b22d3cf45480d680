// The shape of one KV block: every layer's K and V for `block_tokens` consecutive positions, plus
// an optional recurrent-state snapshot (opaque bytes) for hybrid models. Pure arithmetic, no
// storage. In memory a block is [n_layers][K|V][block_tokens][kv_dim] elements, then the state
// bytes. q8_0 rows are GGML blocks of 32 elements (34 bytes: an f16 scale and 32 int8).
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/dtype.h"

namespace runnel::cache {

struct KvLayout {
  int n_layers = 0;
  int block_tokens = 16;      // positions per block
  int kv_dim = 0;             // n_kv_heads * head_dim, elements per K (or V) row
  DType dtype = DType::kF16;  // kF32, kF16 or kQ8_0 (kv_dim a multiple of 32)
  size_t state_bytes = 0;     // recurrent-state snapshot per block; 0 for attention-only models

  // Bytes of one element, or of one 32-element block for q8_0 (the codec's byte-plane width).
  size_t elem_bytes() const { return dtype_size(dtype); }
  // Bytes of one K (or V) row: one position of one layer.
  size_t row_bytes() const { return ::runnel::row_bytes(dtype, static_cast<size_t>(kv_dim)); }
  // Bytes of one [block_tokens, kv_dim] K (or V) plane.
  size_t plane_bytes() const { return row_bytes() * static_cast<size_t>(block_tokens); }
  // n_layers * 2 * block_tokens * row_bytes.
  size_t kv_bytes() const { return plane_bytes() * 2 * static_cast<size_t>(n_layers); }
  size_t k_offset(int layer) const { return plane_bytes() * 2 * static_cast<size_t>(layer); }
  size_t v_offset(int layer) const { return k_offset(layer) + plane_bytes(); }
  size_t state_offset() const { return kv_bytes(); }
  // Bytes of one pool slot: KV + state, rounded up to 64 so every block starts cache-line aligned.
  size_t slot_bytes() const { return (kv_bytes() + state_bytes + 63) / 64 * 64; }
  // A stable 64-bit fingerprint of the layout; part of every content key, so a block written for
  // another layout can never be read back as this one.
  uint64_t fingerprint() const;
};

// Throws Error("cache", ...) when the layout is unusable (non-positive sizes, dtype not f32, f16
// or q8_0, q8_0 rows not whole blocks).
void validate_layout(const KvLayout& layout);

}  // namespace runnel::cache
