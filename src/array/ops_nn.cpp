// Linear algebra and the fused neural-network primitives (linear, embedding, rms_norm, rope,
// attention, cache_write). The heavy loops run in kernels/ through array/backend.h.
#include <cmath>
#include <cstring>

#include "array/backend.h"
#include "array/internal.h"
#include "array/ops.h"
#include "base/error.h"
#include "base/half.h"
#include "base/thread_pool.h"
#include "kernels/cpu/packed.h"
#include "kernels/cpu/quant.h"
#include "kernels/cpu/vec.h"

namespace runnel::array {
namespace {

void require(const char* op, const Array& a, DType dt) {
  check(a.valid(), "array", "[", op, "] empty array handle");
  if (a.dtype() != dt)
    fail("array", "[", op, "] expects ", dtype_name(dt), ", got ", dtype_name(a.dtype()), " ",
         shape_str(a.shape()));
}

class MatMul : public Primitive {
 public:
  const char* name() const override { return "matmul"; }
  void eval_cpu(const std::vector<Array>& in, ArrayDesc& out) override {
    const Shape& as = in[0].shape();
    const Shape& bs = in[1].shape();
    const int64_t m = as[as.size() - 2], k = as.back(), n = bs.back();
    const int64_t batch = out.numel() / (m * n == 0 ? 1 : m * n);
    if (out.numel() == 0) return;
    // Batch strides with broadcasting (0 where an operand has extent 1).
    Shape ob(out.shape.begin(), out.shape.end() - 2);
    auto bstrides = [&](const Shape& s, int64_t mat) {
      Shape sb(s.begin(), s.end() - 2);
      std::vector<int64_t> st(ob.size(), 0);
      int64_t stride = mat;
      for (int i = static_cast<int>(sb.size()) - 1; i >= 0; --i) {
        size_t o = ob.size() - sb.size() + static_cast<size_t>(i);
        st[o] = sb[static_cast<size_t>(i)] == 1 ? 0 : stride;
        stride *= sb[static_cast<size_t>(i)];
      }
      return st;
    };
    auto sa = bstrides(as, m * k);
    auto sb = bstrides(bs, k * n);
    const float* a = in[0].data<float>();
    const float* b = in[1].data<float>();
    float* y = static_cast<float*>(out.data());
    ThreadPool::global().parallel_for(static_cast<size_t>(batch * m), 1, [&](size_t r0, size_t r1) {
      for (size_t r = r0; r < r1; ++r) {
        int64_t bi = static_cast<int64_t>(r) / m, i = static_cast<int64_t>(r) % m;
        int64_t oa = 0, obb = 0, rem = bi;
        for (int d = static_cast<int>(ob.size()) - 1; d >= 0; --d) {
          int64_t idx = rem % ob[static_cast<size_t>(d)];
          rem /= ob[static_cast<size_t>(d)];
          oa += idx * sa[static_cast<size_t>(d)];
          obb += idx * sb[static_cast<size_t>(d)];
        }
        const float* ar = a + oa + i * k;
        const float* bm = b + obb;
        float* yr = y + bi * m * n + i * n;
        std::fill_n(yr, n, 0.0f);
        for (int64_t p = 0; p < k; ++p) {
          const float av = ar[p];
          const float* br = bm + p * n;
          for (int64_t j = 0; j < n; ++j) yr[j] += av * br[j];
        }
      }
    });
  }
};

class Linear : public Primitive {
 public:
  const char* name() const override { return "linear"; }
  void eval_cpu(const std::vector<Array>& in, ArrayDesc& out) override {
    const Array& x = in[0];
    const Array& w = in[1];
    const int64_t k = x.shape().back();
    const int64_t m = x.numel() / (k == 0 ? 1 : k);
    const int64_t n = w.shape()[0];
    float* y = static_cast<float*>(out.data());
    backend::linear(x.data<float>(), m, k, w.raw(), w.dtype(), n, y);
    if (in.size() > 2) {  // linear_add: y = r + y, as add's kernel does it
      const float* r = in[2].data<float>();
      for_rows(static_cast<size_t>(m * n), 1,
               [&](size_t i0, size_t i1) { kernels::cpu::add(r + i0, y + i0, y + i0, i1 - i0); });
    }
  }
};

// linear(rms_norm(x, norm_w), w): the normalized rows go to a scratch buffer that lives for the
// call, then the same kernels as the two ops.
class NormLinear : public Primitive {
 public:
  explicit NormLinear(float eps) : eps_(eps) {}
  const char* name() const override { return "norm_linear"; }
  void eval_cpu(const std::vector<Array>& in, ArrayDesc& out) override {
    const Array& x = in[0];
    const Array& w = in[2];
    const int64_t k = x.shape().back();
    const int64_t m = x.numel() / (k == 0 ? 1 : k);
    Buffer normed(static_cast<size_t>(m * k) * sizeof(float), MemoryKind::kScratch);
    auto* h = static_cast<float*>(normed.data());
    backend::rms_norm(x.data<float>(), in[1].data<float>(), m, k, eps_, h);
    backend::linear(h, m, k, w.raw(), w.dtype(), w.shape()[0], static_cast<float*>(out.data()));
  }

 private:
  float eps_;
};

class Embedding : public Primitive {
 public:
  const char* name() const override { return "embedding"; }
  void eval_cpu(const std::vector<Array>& in, ArrayDesc& out) override {
    const Array& w = in[0];
    const int32_t* ids = in[1].data<int32_t>();
    const int64_t vocab = w.shape()[0], d = w.shape()[1];
    const size_t rb = row_bytes(w.dtype(), static_cast<size_t>(d));
    const char* base = static_cast<const char*>(w.raw());
    float* y = static_cast<float*>(out.data());
    const int64_t n = in[1].numel();
    for (int64_t i = 0; i < n; ++i) {
      check(ids[i] >= 0 && ids[i] < vocab, "array", "[embedding] token id ", ids[i],
            " is outside the vocabulary of ", vocab);
      kernels::cpu::dequantize_row(w.dtype(), base + static_cast<size_t>(ids[i]) * rb, y + i * d,
                                   static_cast<size_t>(d));
    }
  }
};

class RmsNorm : public Primitive {
 public:
  explicit RmsNorm(float eps) : eps_(eps) {}
  const char* name() const override { return "rms_norm"; }
  void eval_cpu(const std::vector<Array>& in, ArrayDesc& out) override {
    const int64_t d = out.shape.back();
    const int64_t rows = out.numel() / (d == 0 ? 1 : d);
    backend::rms_norm(in[0].data<float>(), in[1].data<float>(), rows, d, eps_,
                      static_cast<float*>(out.data()));
  }

 private:
  float eps_;
};

class SwiGlu : public Primitive {
 public:
  const char* name() const override { return "swiglu"; }
  void eval_cpu(const std::vector<Array>& in, ArrayDesc& out) override {
    const int64_t f = out.shape.back();
    const size_t rows = static_cast<size_t>(out.numel() / (f == 0 ? 1 : f));
    const float* x = in[0].data<float>();
    float* y = static_cast<float*>(out.data());
    auto run = [&](size_t r0, size_t r1) {
      for (size_t r = r0; r < r1; ++r) {
        const float* g = x + r * 2 * static_cast<size_t>(f);
        kernels::cpu::silu_mul(g, g + f, y + r * static_cast<size_t>(f), static_cast<size_t>(f));
      }
    };
    if (rows * static_cast<size_t>(f) >= 64 * 1024) {
      ThreadPool::global().parallel_for(rows, 1, run);
    } else {
      run(0, rows);
    }
  }
};

class Rope : public Primitive {
 public:
  explicit Rope(RopeConfig cfg) : cfg_(std::move(cfg)) {}
  const char* name() const override { return "rope"; }
  void eval_cpu(const std::vector<Array>& in, ArrayDesc& out) override {
    const Shape& s = out.shape;
    backend::rope(in[0].data<float>(), in[1].data<int32_t>(), s[0], s[1], s[2], cfg_,
                  static_cast<float*>(out.data()));
  }

 private:
  RopeConfig cfg_;
};

class HeadRope : public Primitive {
 public:
  HeadRope(int64_t col0, float eps, RopeConfig cfg)
      : col0_(col0), eps_(eps), cfg_(std::move(cfg)) {}
  const char* name() const override { return "head_rope"; }
  void eval_cpu(const std::vector<Array>& in, ArrayDesc& out) override {
    const Shape& s = out.shape;
    const float* w = in.size() > 2 ? in[2].data<float>() : nullptr;
    backend::head_norm_rope(in[0].data<float>(), in[0].shape().back(), col0_, in[1].data<int32_t>(),
                            s[0], s[1], s[2], w, eps_, cfg_, static_cast<float*>(out.data()));
  }

 private:
  int64_t col0_;
  float eps_;
  RopeConfig cfg_;
};

class Heads : public Primitive {
 public:
  explicit Heads(int64_t col0) : col0_(col0) {}
  const char* name() const override { return "heads"; }
  void eval_cpu(const std::vector<Array>& in, ArrayDesc& out) override {
    const int64_t width = in[0].shape().back();
    const auto row = static_cast<size_t>(out.shape[1] * out.shape[2]);
    const float* x = in[0].data<float>() + col0_;
    auto* y = static_cast<float*>(out.data());
    for_rows(static_cast<size_t>(out.shape[0]), row, [&](size_t t0, size_t t1) {
      for (size_t t = t0; t < t1; ++t) {
        std::memcpy(y + t * row, x + static_cast<int64_t>(t) * width, row * sizeof(float));
      }
    });
  }

 private:
  int64_t col0_;
};

class Attention : public Primitive {
 public:
  Attention(int64_t n_kv, int64_t q_pos0, float scale)
      : n_kv_(n_kv), q_pos0_(q_pos0), scale_(scale) {}
  const char* name() const override { return "attention"; }
  void eval_cpu(const std::vector<Array>& in, ArrayDesc& out) override {
    const Shape& qs = in[0].shape();
    const Shape& ks = in[1].shape();
    backend::AttentionProblem p;
    p.q = in[0].data<float>();
    p.out = static_cast<float*>(out.data());
    p.n_q = qs[0];
    p.n_heads = qs[1];
    p.head_dim = qs[2];
    p.n_kv_heads = ks[1];
    p.k = in[1].raw();
    p.v = in[2].raw();
    p.kv_dtype = in[1].dtype();
    p.n_kv = n_kv_;
    p.q_pos0 = q_pos0_;
    p.scale = scale_;
    backend::attention(p);
  }

 private:
  int64_t n_kv_, q_pos0_;
  float scale_;
};

class CacheWrite : public Primitive {
 public:
  explicit CacheWrite(int64_t pos) : pos_(pos) {}
  const char* name() const override { return "cache_write"; }
  bool is_view() const override { return true; }
  void eval_cpu(const std::vector<Array>& in, ArrayDesc& out) override {
    const ArrayDesc& cache = *in[0].desc();
    out.buffer = cache.buffer;
    out.offset = cache.offset;
    const Array& u = in[1];
    const int64_t row = u.numel() / u.shape()[0];
    const size_t n = static_cast<size_t>(u.numel());
    const float* src = u.data<float>();
    char* dst =
        static_cast<char*>(out.data()) + row_bytes(out.dtype, static_cast<size_t>(pos_ * row));
    if (out.dtype == DType::kQ8_0) {  // rows are whole blocks (cache_write checks)
      auto* b = reinterpret_cast<kernels::cpu::BlockQ8_0*>(dst);
      for_rows(n / kernels::cpu::kQK, kernels::cpu::kQK, [&](size_t b0, size_t b1) {
        kernels::cpu::f32_to_q8_0(src + b0 * kernels::cpu::kQK, b + b0,
                                  (b1 - b0) * kernels::cpu::kQK);
      });
      return;
    }
    auto write = [&](size_t i0, size_t i1) {
      if (out.dtype == DType::kF32) {
        std::memcpy(dst + i0 * sizeof(float), src + i0, (i1 - i0) * sizeof(float));
        return;
      }
      auto* h = reinterpret_cast<uint16_t*>(dst);
      if (out.dtype == DType::kF16) {
        // The ISA's F16C path: 1024 values took ~3.5 µs without it.
        kernels::cpu::f32_to_f16(src + i0, h + i0, i1 - i0);
      } else {
        for (size_t i = i0; i < i1; ++i) h[i] = f32_to_bf16(src[i]);
      }
    };
    for_rows(n, 1, write);  // a prompt's rows (megabytes) on both threads
  }

 private:
  int64_t pos_;
};

}  // namespace

Array matmul(const Array& a, const Array& b) {
  require("matmul", a, DType::kF32);
  require("matmul", b, DType::kF32);
  const Shape& x = a.shape();
  const Shape& z = b.shape();
  if (!(x.size() >= 2 && z.size() >= 2 && x.back() == z[z.size() - 2]))
    fail("array", "[matmul] shapes ", shape_str(x), " and ", shape_str(z), " do not match");
  Shape xb(x.begin(), x.end() - 2), zb(z.begin(), z.end() - 2);
  Shape out(std::max(xb.size(), zb.size()));
  for (size_t i = 0; i < out.size(); ++i) {
    int64_t dx = i < out.size() - xb.size() ? 1 : xb[i - (out.size() - xb.size())];
    int64_t dz = i < out.size() - zb.size() ? 1 : zb[i - (out.size() - zb.size())];
    if (!(dx == dz || dx == 1 || dz == 1))
      fail("array", "[matmul] batch shapes of ", shape_str(x), " and ", shape_str(z),
           " do not broadcast");
    out[i] = dx == 1 ? dz : dx;
  }
  out.push_back(x[x.size() - 2]);
  out.push_back(z.back());
  return make_array(out, DType::kF32, std::make_shared<MatMul>(), {a, b});
}

namespace {
// linear's checks; returns the output's shape.
Shape linear_shape(const Array& x, const Array& w) {
  require("linear", x, DType::kF32);
  if (!(w.valid() && w.ndim() == 2))
    fail("array", "[linear] weight must be 2-D, got ", w.valid() ? shape_str(w.shape()) : "none");
  if (!(x.ndim() >= 1 && x.shape().back() == w.shape()[1]))
    fail("array", "[linear] shapes ", shape_str(x.shape()), " and weight ", shape_str(w.shape()),
         " do not match");
  check(backend::linear_supported(w.dtype()), "array", "[linear] no kernel for ",
        dtype_name(w.dtype()), " weights");
  Shape out = x.shape();
  out.back() = w.shape()[0];
  return out;
}
void check_rms_norm(const Array& x, const Array& w) {
  require("rms_norm", x, DType::kF32);
  require("rms_norm", w, DType::kF32);
  if (!(w.ndim() == 1 && x.ndim() >= 1 && x.shape().back() == w.shape()[0]))
    fail("array", "[rms_norm] shapes ", shape_str(x.shape()), " and weight ", shape_str(w.shape()),
         " do not match");
}
}  // namespace

Array linear(const Array& x, const Array& w) {
  Shape out = linear_shape(x, w);
  return make_array(std::move(out), DType::kF32, std::make_shared<Linear>(), {x, w});
}

Array linear_add(const Array& x, const Array& w, const Array& r) {
  Shape out = linear_shape(x, w);
  require("linear_add", r, DType::kF32);
  if (r.shape() != out)
    fail("array", "[linear_add] residual ", shape_str(r.shape()), " does not match the output ",
         shape_str(out));
  return make_array(std::move(out), DType::kF32, std::make_shared<Linear>(), {x, w, r});
}

Array norm_linear(const Array& x, const Array& norm_w, float eps, const Array& w) {
  Shape out = linear_shape(x, w);
  check_rms_norm(x, norm_w);
  return make_array(std::move(out), DType::kF32, std::make_shared<NormLinear>(eps), {x, norm_w, w});
}

Array swiglu(const Array& x) {
  require("swiglu", x, DType::kF32);
  if (!(x.ndim() >= 1 && x.shape().back() % 2 == 0))
    fail("array", "[swiglu] last dimension of ", shape_str(x.shape()), " is not even");
  Shape out = x.shape();
  out.back() /= 2;
  return make_array(out, DType::kF32, std::make_shared<SwiGlu>(), {x});
}

Array prepare_linear_weight(const Array& w) {
  check(w.valid() && w.ndim() == 2, "array", "[prepare_linear_weight] weight must be 2-D");
  const size_t n = static_cast<size_t>(w.shape()[0]), k = static_cast<size_t>(w.shape()[1]);
  const DType p = kernels::cpu::preferred_weight_type(w.dtype(), n, k);
  if (p == w.dtype()) return w;
  Array out = Array::empty(w.shape(), p, MemoryKind::kWeights);
  kernels::cpu::pack_weights(w.dtype(), w.raw(), row_bytes(w.dtype(), k), n, k, out.raw_mutable(),
                             ThreadPool::global());
  return out;
}

Array concat_weight_rows(const std::vector<Array>& parts) {
  check(!parts.empty(), "array", "[concat_weight_rows] no parts");
  int64_t n = 0;
  for (const Array& p : parts) {
    check(p.valid() && p.ndim() == 2, "array", "[concat_weight_rows] parts must be 2-D");
    if (p.dtype() != parts[0].dtype() || p.shape()[1] != parts[0].shape()[1]) return {};
    n += p.shape()[0];
  }
  Array out = Array::empty({n, parts[0].shape()[1]}, parts[0].dtype(), MemoryKind::kWeights);
  uint8_t* dst = static_cast<uint8_t*>(out.raw_mutable());
  for (const Array& p : parts) {
    std::memcpy(dst, p.raw(), p.n_bytes());
    dst += p.n_bytes();
  }
  return out;
}

Array prepare_fused_linear_weight(const std::vector<Array>& parts) {
  check(!parts.empty(), "array", "[prepare_fused_linear_weight] no parts");
  const DType src = parts[0].dtype();
  int64_t n = 0;
  for (const Array& p : parts) {
    check(p.valid() && p.ndim() == 2, "array", "[prepare_fused_linear_weight] parts must be 2-D");
    if (p.dtype() != src || p.shape()[1] != parts[0].shape()[1]) return {};
    n += p.shape()[0];
  }
  const size_t k = static_cast<size_t>(parts[0].shape()[1]);
  // Packed only when every part packs on its own (each a whole number of 16-row groups), so the
  // fused matrix holds exactly the parts' packed groups one after another.
  DType dst = kernels::cpu::preferred_weight_type(src, static_cast<size_t>(n), k);
  for (const Array& p : parts) {
    if (kernels::cpu::preferred_weight_type(src, static_cast<size_t>(p.shape()[0]), k) != dst)
      dst = src;
  }
  Array out = Array::empty({n, parts[0].shape()[1]}, dst, MemoryKind::kWeights);
  uint8_t* at = static_cast<uint8_t*>(out.raw_mutable());
  for (const Array& p : parts) {
    if (dst == src) {
      std::memcpy(at, p.raw(), p.n_bytes());
    } else {
      kernels::cpu::pack_weights(src, p.raw(), row_bytes(src, k), static_cast<size_t>(p.shape()[0]),
                                 k, at, ThreadPool::global());
    }
    at += static_cast<size_t>(p.shape()[0]) * row_bytes(dst, k);  // a converted type's differ
  }
  return out;
}

Array embedding(const Array& w, const Array& ids) {
  check(w.valid() && w.ndim() == 2, "array", "[embedding] table must be 2-D");
  check(!kernels::cpu::is_packed(w.dtype()), "array", "[embedding] ", dtype_name(w.dtype()),
        " weights are packed for linear() and cannot be read by row");
  require("embedding", ids, DType::kI32);
  Shape out = ids.shape();
  out.push_back(w.shape()[1]);
  return make_array(out, DType::kF32, std::make_shared<Embedding>(), {w, ids});
}

Array rms_norm(const Array& x, const Array& w, float eps) {
  check_rms_norm(x, w);
  return make_array(x.shape(), DType::kF32, std::make_shared<RmsNorm>(eps), {x, w});
}

namespace {
// x: the shape of rope's input (f32, checked by the caller).
void check_rope(const Shape& x, const Array& positions, const RopeConfig& cfg) {
  require("rope", positions, DType::kI32);
  if (x.size() != 3) fail("array", "[rope] expects [tokens, heads, head_dim], got ", shape_str(x));
  if (!(positions.ndim() == 1 && positions.shape()[0] == x[0]))
    fail("array", "[rope] positions ", shape_str(positions.shape()), " do not match ",
         shape_str(x));
  const int64_t n = cfg.n_dims == 0 ? x[2] : cfg.n_dims;
  check(n > 0 && n % 2 == 0 && n <= x[2], "array", "[rope] rotated dims ", n,
        " must be even and <= head_dim ", x[2]);
  check(cfg.freq_factors.empty() || static_cast<int64_t>(cfg.freq_factors.size()) == n / 2, "array",
        "[rope] ", cfg.freq_factors.size(), " frequency factors for ", n / 2, " pairs");
}
}  // namespace

Array rope(const Array& x, const Array& positions, const RopeConfig& cfg) {
  require("rope", x, DType::kF32);
  check_rope(x.shape(), positions, cfg);
  return make_array(x.shape(), DType::kF32, std::make_shared<Rope>(cfg), {x, positions});
}

namespace {
// The checks of head_rope and heads; returns [T, n_heads, head_dim].
Shape heads_shape(const char* op, const Array& x, int64_t col0, int64_t n_heads, int64_t head_dim) {
  require(op, x, DType::kF32);
  if (x.ndim() != 2)
    fail("array", "[", op, "] expects x [tokens, width], got ", shape_str(x.shape()));
  if (!(n_heads > 0 && head_dim > 0 && col0 >= 0 && col0 + n_heads * head_dim <= x.shape()[1]))
    fail("array", "[", op, "] ", n_heads, " heads of ", head_dim, " from column ", col0,
         " do not fit x ", shape_str(x.shape()));
  return {x.shape()[0], n_heads, head_dim};
}
}  // namespace

Array heads(const Array& x, int64_t col0, int64_t n_heads, int64_t head_dim) {
  Shape out = heads_shape("heads", x, col0, n_heads, head_dim);
  return make_array(std::move(out), DType::kF32, std::make_shared<Heads>(col0), {x});
}

Array head_rope(const Array& x, int64_t col0, int64_t n_heads, int64_t head_dim,
                const Array& norm_w, float eps, const Array& positions, const RopeConfig& cfg) {
  const Shape out = heads_shape("head_rope", x, col0, n_heads, head_dim);
  check_rope(out, positions, cfg);
  std::vector<Array> inputs{x, positions};
  if (norm_w.valid()) {
    require("head_rope", norm_w, DType::kF32);
    if (!(norm_w.ndim() == 1 && norm_w.shape()[0] == head_dim))
      fail("array", "[head_rope] norm weight ", shape_str(norm_w.shape()),
           " does not match head_dim ", head_dim);
    inputs.push_back(norm_w);
  }
  return make_array(out, DType::kF32, std::make_shared<HeadRope>(col0, eps, cfg),
                    std::move(inputs));
}

namespace {
void check_attention(const Array& q, const Array& k, const Array& v, int64_t n_kv, int64_t q_pos0) {
  require("attention", q, DType::kF32);
  check(q.ndim() == 3 && k.valid() && v.valid() && k.ndim() == 3 && v.ndim() == 3, "array",
        "[attention] expects q [T,H,D] and k, v [S,Hkv,D]");
  if (k.shape() != v.shape())
    fail("array", "[attention] k ", shape_str(k.shape()), " and v ", shape_str(v.shape()),
         " differ");
  check(k.dtype() == v.dtype() &&
            (k.dtype() == DType::kF32 || k.dtype() == DType::kF16 || k.dtype() == DType::kQ8_0),
        "array", "[attention] k/v must be f32, f16 or q8_0");
  check(k.dtype() != DType::kQ8_0 || k.shape()[2] % 32 == 0, "array",
        "[attention] a q8_0 cache needs head_dim a multiple of 32, got ", k.shape()[2]);
  check(q.shape()[2] <= 512, "array", "[attention] head_dim ", q.shape()[2],
        " is larger than the kernels' limit of 512");
  if (k.shape()[2] != q.shape()[2])
    fail("array", "[attention] head_dim of q ", shape_str(q.shape()), " and k ",
         shape_str(k.shape()), " differ");
  check(k.shape()[1] > 0 && q.shape()[1] % k.shape()[1] == 0, "array", "[attention] ", q.shape()[1],
        " query heads are not a multiple of ", k.shape()[1], " kv heads");
  check(0 <= n_kv && n_kv <= k.shape()[0], "array", "[attention] n_kv ", n_kv, " outside cache of ",
        k.shape()[0]);
  check(q_pos0 >= 0 && q_pos0 + q.shape()[0] <= n_kv, "array", "[attention] queries at ", q_pos0,
        "..", q_pos0 + q.shape()[0], " reach past n_kv ", n_kv);
}
}  // namespace

Array attention(const Array& q, const Array& k, const Array& v, int64_t n_kv, int64_t q_pos0,
                float scale) {
  check_attention(q, k, v, n_kv, q_pos0);
  return make_array(q.shape(), DType::kF32, std::make_shared<Attention>(n_kv, q_pos0, scale),
                    {q, k, v});
}

Array cache_write(const Array& cache, const Array& update, int64_t pos) {
  require("cache_write", update, DType::kF32);
  check(cache.valid() && (cache.dtype() == DType::kF32 || cache.dtype() == DType::kF16 ||
                          cache.dtype() == DType::kBF16 || cache.dtype() == DType::kQ8_0),
        "array", "[cache_write] cache must be f32, f16, bf16 or q8_0");
  if (cache.dtype() == DType::kQ8_0 && cache.shape().back() % 32 != 0)
    fail("array", "[cache_write] a q8_0 cache's rows must be whole blocks of 32, got ",
         shape_str(cache.shape()));
  const Shape& c = cache.shape();
  const Shape& u = update.shape();
  if (!(c.size() == u.size() && !c.empty() && std::equal(c.begin() + 1, c.end(), u.begin() + 1)))
    fail("array", "[cache_write] update ", shape_str(u), " does not fit cache ", shape_str(c));
  check(pos >= 0 && pos + u[0] <= c[0], "array", "[cache_write] rows ", pos, "..", pos + u[0],
        " outside cache of ", c[0], " rows");
  return make_array(c, cache.dtype(), std::make_shared<CacheWrite>(pos), {cache, update});
}

}  // namespace runnel::array
