// Fused causal attention with grouped KV heads, reading K/V from the paged blocks of the KV cache.
// Flash-style: scores are computed a chunk of KV positions at a time with an online softmax, so
// memory stays O(head_dim) per (query, head) however long the context is.
#pragma once

#include "base/dtype.h"

namespace runnel {
class ThreadPool;
}

namespace runnel::kernels::cpu {

struct AttentionArgs {
  const float* q;  // [n_q, n_heads, head_dim] row-major, contiguous
  float* out;      // [n_q, n_heads, head_dim] row-major, contiguous; may not alias q
  int n_q, n_heads, n_kv_heads, head_dim;  // n_heads a multiple of n_kv_heads; head_dim <= 512
  const void* const* k_blocks;  // k_blocks[b]: [block_tokens, n_kv_heads, head_dim] in kv_dtype
  const void* const* v_blocks;  // same for V
  DType kv_dtype;    // F32, F16 or Q8_0 (GGML blocks of 32 along each head; head_dim % 32 == 0)
  int block_tokens;  // block b holds positions [b*block_tokens, (b+1)*block_tokens)
  int n_kv;          // valid kv positions
  int q_pos0;   // position of query 0; query i attends to kv positions <= q_pos0 + i (and < n_kv)
  float scale;  // usually 1/sqrt(head_dim)
};
constexpr int kMaxHeadDim = 512;

// out = softmax(scale · q·Kᵀ + causal mask) · V per (query, head); query head h reads KV head
// h / (n_heads / n_kv_heads). A query that sees no position (n_kv == 0) gets zeros.
// Throws Error("attention", ...) for inconsistent arguments.
void attention(const AttentionArgs& a, ThreadPool& pool);

}  // namespace runnel::kernels::cpu
