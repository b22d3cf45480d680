// Operations that build the graph. Each validates its arguments when called and throws
// Error("array", "[op] what is wrong") — e.g. "[matmul] shapes (2,3) and (4,5) do not match" —
// so a bad graph is never built. Nothing is computed until eval().
//
// Compute ops take f32 activations (astype() converts); weights of linear/embedding may be any
// dtype a kernel supports (f32, f16, bf16, q8_0, q4_0, ...).
#pragma once

#include <vector>

#include "array/array.h"

namespace runnel::array {

// Creation.
Array zeros(const Shape& shape, DType dtype = DType::kF32);
Array full(const Shape& shape, float value);
Array arange(int64_t start, int64_t stop);  // i32

// Elementwise on f32, with numpy broadcasting for binary ops.
Array add(const Array& a, const Array& b);
Array sub(const Array& a, const Array& b);
Array mul(const Array& a, const Array& b);
Array div(const Array& a, const Array& b);
Array maximum(const Array& a, const Array& b);
Array add(const Array& a, float b);
Array mul(const Array& a, float b);
Array exp(const Array& a);
Array sqrt(const Array& a);
Array rsqrt(const Array& a);
Array square(const Array& a);
Array neg(const Array& a);
Array silu(const Array& a);
Array gelu(const Array& a);       // erf form
Array gelu_tanh(const Array& a);  // tanh approximation
Array sigmoid(const Array& a);

// Reductions over the last axis (keepdims: the last dimension becomes 1).
Array sum(const Array& a, bool keepdims = true);
Array mean(const Array& a, bool keepdims = true);
Array max(const Array& a, bool keepdims = true);
Array softmax(const Array& a);  // over the last axis

// Layout. reshape shares the input's buffer; the others copy.
Array reshape(const Array& a, const Shape& shape);  // one dimension may be -1
Array transpose(const Array& a, const std::vector<int>& perm);
Array slice(const Array& a, int axis, int64_t start, int64_t stop);
Array concat(const std::vector<Array>& parts, int axis);
Array astype(const Array& a, DType dtype);  // between f32, f16, bf16, i32; quantized -> f32

// Linear algebra.
// a [..., m, k] @ b [..., k, n] on f32, batch dimensions broadcast.
Array matmul(const Array& a, const Array& b);
// x [..., k] (f32) times w [n, k]^T (weight dtype) -> [..., n]. The decode/prefill workhorse.
Array linear(const Array& x, const Array& w);
// r + linear(x, w), r of the output's shape (a residual connection): one node, the same bits as
// add(r, linear(x, w)).
Array linear_add(const Array& x, const Array& w, const Array& r);
// linear(rms_norm(x, norm_w, eps), w) as one node (the same bits), for a norm whose only
// consumer is one (fused) projection.
Array norm_linear(const Array& x, const Array& norm_w, float eps, const Array& w);
// w [n, k] in the layout the active ISA's linear streams best: a new evaluated array of
// MemoryKind::kWeights holding the packed copy (kernels/cpu/packed.h), made once at load, or w
// itself when its layout is already the best. Packed weights work only with linear().
Array prepare_linear_weight(const Array& w);
// The rows of weight matrices of one dtype and k as one [Σ n, k] matrix (a fused projection such
// as q|k|v): a new evaluated array of MemoryKind::kWeights, or an invalid Array when the parts
// differ in dtype or k (then use them one by one). Works for packed layouts too.
Array concat_weight_rows(const std::vector<Array>& parts);
// prepare_linear_weight of the concatenated rows of `parts` (one dtype and k), written straight
// into one new buffer (no per-part copy first: fresh memory is the dear part of a load); an
// invalid Array when the parts differ in dtype or k.
Array prepare_fused_linear_weight(const std::vector<Array>& parts);
// Rows of w [vocab, d] (any weight dtype) picked by ids (i32, any shape) -> [ids..., d] f32.
// An id outside [0, vocab) is an Error at evaluation.
Array embedding(const Array& w, const Array& ids);

// Fused neural-network ops; each also exists as a composition (namespace composite) for tests.
// x [..., d] / sqrt(mean(x^2) + eps) * w [d].
Array rms_norm(const Array& x, const Array& w, float eps);
// SwiGLU of a fused gate|up projection: x [..., 2f] -> silu(x[..., :f]) * x[..., f:]  [..., f].
Array swiglu(const Array& x);

struct RopeConfig {
  int n_dims = 0;          // rotated dimensions (<= head_dim); 0 = all
  float theta = 10000.f;   // base
  bool neox = false;       // NeoX (rotate-half: pairs i, i + n/2) vs normal (pairs 2i, 2i+1)
  float freq_scale = 1.f;  // linear position scaling
  std::vector<float> freq_factors;  // per pair, divides the frequency (llama3 scaling); empty = 1
};
// x [T, H, D] f32, positions i32 [T] -> [T, H, D].
Array rope(const Array& x, const Array& positions, const RopeConfig& cfg);
// The heads in columns [col0, col0 + n_heads·head_dim) of x [T, W] f32 (a fused q|k|v
// projection's q or k), each rms_norm'd with norm_w [head_dim] when norm_w is valid, then
// rotated: [T, n_heads, head_dim]. One node, and no copies, for the slice, reshape, rms_norm and
// rope it equals bit for bit.
Array head_rope(const Array& x, int64_t col0, int64_t n_heads, int64_t head_dim,
                const Array& norm_w, float eps, const Array& positions, const RopeConfig& cfg);
// The same heads copied out as they are: reshape(slice(x, -1, col0, ...), [T, n_heads, head_dim])
// in one node (a fused projection's v).
Array heads(const Array& x, int64_t col0, int64_t n_heads, int64_t head_dim);

// Causal scaled-dot-product attention with grouped KV heads.
// q [T, H, D]; k, v [S, Hkv, D] (f32 or f16), of which the first n_kv positions are valid;
// query i sits at position q_pos0 + i and sees kv positions <= q_pos0 + i. -> [T, H, D] f32.
Array attention(const Array& q, const Array& k, const Array& v, int64_t n_kv, int64_t q_pos0,
                float scale);

// Writes update [T, ...] into cache [C, ...] at rows [pos, pos + T) in place (converting to the
// cache's dtype) and returns a handle to the cache that depends on the write, so attention that
// reads the returned handle runs after it. The cache should be pinned.
Array cache_write(const Array& cache, const Array& update, int64_t pos);

namespace composite {
Array rms_norm(const Array& x, const Array& w, float eps);
Array swiglu(const Array& x);
Array rope(const Array& x, const Array& positions, const RopeConfig& cfg);
Array attention(const Array& q, const Array& k, const Array& v, int64_t n_kv, int64_t q_pos0,
                float scale);
}  // namespace composite

// Paged KV (ops_paged.cpp): K/V live in fixed-size blocks owned outside the runtime (the prefix
// cache's pool). Block pointers are captured when the graph is built; the caller keeps the blocks
// alive and unmoved until the evaluation that uses them has been joined.
struct PagedKvBlocks {
  std::vector<void*> k, v;  // block b: [block_tokens, Hkv, D] rows for positions b*block_tokens..
  int64_t block_tokens = 0;
  DType dtype = DType::kF32;  // kF32 or kF16
};
// Writes k, v [T, Hkv, D] (f32) at positions [pos, pos + T) of the blocks (converting to their
// dtype). Returns a tiny i32 [1] token; pass it to paged_attention so the reads run after the
// write.
Array paged_cache_write(const Array& k, const Array& v, const PagedKvBlocks& blocks, int64_t pos);
// Causal attention of q [T, H, D] (query i at position q_pos0 + i) over the first n_kv positions
// of the blocks (Hkv = n_kv_heads). `deps` are evaluated first (the write tokens). -> [T, H, D]
// f32.
Array paged_attention(const Array& q, const PagedKvBlocks& blocks, int64_t n_kv_heads, int64_t n_kv,
                      int64_t q_pos0, float scale, const std::vector<Array>& deps);

}  // namespace runnel::array
