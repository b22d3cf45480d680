// Paged KV primitives: paged_cache_write stores a step's K/V rows into externally owned blocks
// (the prefix cache's hot pool) and paged_attention reads them back through the block list, with
// zero copies. Block pointers are captured at graph-build time; their owner keeps them valid until
// the evaluation is joined. Ordering: attention takes the write's token array as an input.
#include <cstring>

#include "array/internal.h"
#include "array/ops.h"
#include "base/error.h"
#include "base/thread_pool.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/quant.h"
#include "kernels/cpu/vec.h"

namespace runnel::array {
namespace {

class PagedCacheWrite : public Primitive {
 public:
  PagedCacheWrite(PagedKvBlocks blocks, int64_t pos) : blocks_(std::move(blocks)), pos_(pos) {}
  const char* name() const override { return "paged_cache_write"; }
  void eval_cpu(const std::vector<Array>& in, ArrayDesc& out) override {
    const int64_t t = in[0].shape()[0];
    const int64_t row = in[0].numel() / (t == 0 ? 1 : t);
    auto write = [&](size_t i0, size_t i1) {
      for (int side = 0; side < 2; ++side) {
        const float* src = in[static_cast<size_t>(side)].data<float>();
        const std::vector<void*>& dst_blocks = side == 0 ? blocks_.k : blocks_.v;
        for (auto i = static_cast<int64_t>(i0); i < static_cast<int64_t>(i1); ++i) {
          const int64_t p = pos_ + i;
          char* dst =
              static_cast<char*>(dst_blocks[static_cast<size_t>(p / blocks_.block_tokens)]) +
              row_bytes(blocks_.dtype, static_cast<size_t>((p % blocks_.block_tokens) * row));
          const float* s = src + i * row;
          if (blocks_.dtype == DType::kF32) {
            std::memcpy(dst, s, static_cast<size_t>(row) * sizeof(float));
          } else if (blocks_.dtype == DType::kQ8_0) {
            kernels::cpu::f32_to_q8_0(s, dst, static_cast<size_t>(row));
          } else {
            auto* h = reinterpret_cast<uint16_t*>(dst);
            kernels::cpu::f32_to_f16(s, h, static_cast<size_t>(row));
          }
        }
      }
    };
    // A prompt's rows (megabytes) on both threads.
    for_rows(static_cast<size_t>(t), static_cast<size_t>(row), write);
    *static_cast<int32_t*>(out.data()) = static_cast<int32_t>(t);
  }

 private:
  PagedKvBlocks blocks_;
  int64_t pos_;
};

class PagedAttention : public Primitive {
 public:
  PagedAttention(PagedKvBlocks blocks, int64_t n_kv_heads, int64_t n_kv, int64_t q_pos0,
                 float scale)
      : blocks_(std::move(blocks)),
        n_kv_heads_(n_kv_heads),
        n_kv_(n_kv),
        q_pos0_(q_pos0),
        scale_(scale) {
    k_.assign(blocks_.k.begin(), blocks_.k.end());
    v_.assign(blocks_.v.begin(), blocks_.v.end());
  }
  const char* name() const override { return "paged_attention"; }
  void eval_cpu(const std::vector<Array>& in, ArrayDesc& out) override {
    const Shape& qs = in[0].shape();
    kernels::cpu::AttentionArgs a{};
    a.q = in[0].data<float>();
    a.out = static_cast<float*>(out.data());
    a.n_q = static_cast<int>(qs[0]);
    a.n_heads = static_cast<int>(qs[1]);
    a.head_dim = static_cast<int>(qs[2]);
    a.n_kv_heads = static_cast<int>(n_kv_heads_);
    a.k_blocks = k_.data();
    a.v_blocks = v_.data();
    a.kv_dtype = blocks_.dtype;
    a.block_tokens = static_cast<int>(blocks_.block_tokens);
    a.n_kv = static_cast<int>(n_kv_);
    a.q_pos0 = static_cast<int>(q_pos0_);
    a.scale = scale_;
    kernels::cpu::attention(a, ThreadPool::global());
  }

 private:
  PagedKvBlocks blocks_;
  std::vector<const void*> k_, v_;
  int64_t n_kv_heads_, n_kv_, q_pos0_;
  float scale_;
};

void check_blocks(const char* op, const PagedKvBlocks& b, int64_t n_positions) {
  check(b.block_tokens > 0, "array", "[", op, "] block_tokens must be positive");
  check(b.dtype == DType::kF32 || b.dtype == DType::kF16 || b.dtype == DType::kQ8_0, "array", "[",
        op, "] blocks must be f32, f16 or q8_0");
  check(b.k.size() == b.v.size(), "array", "[", op, "] ", b.k.size(), " K blocks but ", b.v.size(),
        " V blocks");
  check(n_positions <= static_cast<int64_t>(b.k.size()) * b.block_tokens, "array", "[", op,
        "] position ", n_positions, " beyond ", b.k.size(), " blocks of ", b.block_tokens);
}

}  // namespace

Array paged_cache_write(const Array& k, const Array& v, const PagedKvBlocks& blocks, int64_t pos) {
  check(k.valid() && v.valid() && k.dtype() == DType::kF32 && v.dtype() == DType::kF32, "array",
        "[paged_cache_write] k and v must be f32");
  if (!(k.shape() == v.shape() && k.ndim() == 3))
    fail("array", "[paged_cache_write] k ", shape_str(k.shape()), " and v ", shape_str(v.shape()),
         " must be equal [T, Hkv, D]");
  check(pos >= 0, "array", "[paged_cache_write] negative position ", pos);
  check_blocks("paged_cache_write", blocks, pos + k.shape()[0]);
  check(blocks.dtype != DType::kQ8_0 || k.shape()[2] % 32 == 0, "array",
        "[paged_cache_write] q8_0 blocks need head_dim a multiple of 32, got ", k.shape()[2]);
  return make_array({1}, DType::kI32, std::make_shared<PagedCacheWrite>(blocks, pos), {k, v});
}

Array paged_attention(const Array& q, const PagedKvBlocks& blocks, int64_t n_kv_heads, int64_t n_kv,
                      int64_t q_pos0, float scale, const std::vector<Array>& deps) {
  check(q.valid() && q.dtype() == DType::kF32 && q.ndim() == 3, "array",
        "[paged_attention] expects q [T, H, D] f32");
  check(q.shape()[2] <= kernels::cpu::kMaxHeadDim, "array", "[paged_attention] head_dim ",
        q.shape()[2], " is larger than the kernels' limit");
  check(n_kv_heads > 0 && q.shape()[1] % n_kv_heads == 0, "array", "[paged_attention] ",
        q.shape()[1], " query heads are not a multiple of ", n_kv_heads, " kv heads");
  check(q_pos0 >= 0 && q_pos0 + q.shape()[0] <= n_kv, "array", "[paged_attention] queries at ",
        q_pos0, "..", q_pos0 + q.shape()[0], " reach past n_kv ", n_kv);
  check_blocks("paged_attention", blocks, n_kv);
  check(blocks.dtype != DType::kQ8_0 || q.shape()[2] % 32 == 0, "array",
        "[paged_attention] q8_0 blocks need head_dim a multiple of 32, got ", q.shape()[2]);
  std::vector<Array> inputs{q};
  inputs.insert(inputs.end(), deps.begin(), deps.end());
  return make_array(q.shape(), DType::kF32,
                    std::make_shared<PagedAttention>(blocks, n_kv_heads, n_kv, q_pos0, scale),
                    std::move(inputs));
}

}  // namespace runnel::array
