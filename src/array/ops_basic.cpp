// Elementwise, reduction and layout primitives. Simple loops over contiguous f32 data; the rows
// of large arrays are spread over the thread pool.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "array/internal.h"
#include "array/ops.h"
#include "base/assert.h"
#include "base/error.h"
#include "base/half.h"
#include "base/thread_pool.h"
#include "kernels/cpu/quant.h"
#include "kernels/cpu/vec.h"

namespace runnel::array {

void for_rows(size_t n_rows, size_t row_len, FunctionRef<void(size_t begin, size_t end)> fn) {
  if (n_rows * row_len < (1u << 15)) {
    fn(size_t{0}, n_rows);
    return;
  }
  size_t grain = std::max<size_t>(1, (1u << 14) / std::max<size_t>(row_len, 1));
  ThreadPool::global().parallel_for(n_rows, grain, fn);
}

namespace {

void require_f32(const char* op, const Array& a) {
  check(a.valid(), "array", "[", op, "] empty array handle");
  if (a.dtype() != DType::kF32)
    fail("array", "[", op, "] expects f32, got ", dtype_name(a.dtype()), " ", shape_str(a.shape()));
}

int norm_axis(const char* op, int axis, int ndim) {
  int a = axis < 0 ? axis + ndim : axis;
  check(a >= 0 && a < ndim, "array", "[", op, "] axis ", axis, " out of range for ", ndim,
        " dimensions");
  return a;
}

// ---- unary ------------------------------------------------------------------------------------

enum class UnaryOp { kExp, kSqrt, kRsqrt, kSquare, kNeg, kSilu, kGelu, kGeluTanh, kSigmoid };

float apply_unary(UnaryOp op, float x) {
  switch (op) {
    case UnaryOp::kExp:
      return std::exp(x);
    case UnaryOp::kSqrt:
      return std::sqrt(x);
    case UnaryOp::kRsqrt:
      return 1.0f / std::sqrt(x);
    case UnaryOp::kSquare:
      return x * x;
    case UnaryOp::kNeg:
      return -x;
    case UnaryOp::kSilu:
      return x / (1.0f + std::exp(-x));
    case UnaryOp::kGelu:
      return 0.5f * x * (1.0f + std::erf(x * 0.70710678118654752f));
    case UnaryOp::kGeluTanh: {
      const float c = 0.7978845608028654f;  // sqrt(2/pi)
      return 0.5f * x * (1.0f + std::tanh(c * (x + 0.044715f * x * x * x)));
    }
    case UnaryOp::kSigmoid:
      return 1.0f / (1.0f + std::exp(-x));
  }
  return x;
}

class Unary : public Primitive {
 public:
  explicit Unary(UnaryOp op) : op_(op) {}
  const char* name() const override { return "unary"; }
  void eval_cpu(const std::vector<Array>& in, ArrayDesc& out) override {
    const float* x = in[0].data<float>();
    float* y = static_cast<float*>(out.data());
    size_t n = static_cast<size_t>(out.numel());
    for_rows(n, 1, [&](size_t b, size_t e) {
      for (size_t i = b; i < e; ++i) y[i] = apply_unary(op_, x[i]);
    });
  }

 private:
  UnaryOp op_;
};

Array unary(const char* name, UnaryOp op, const Array& a) {
  require_f32(name, a);
  return make_array(a.shape(), DType::kF32, std::make_shared<Unary>(op), {a});
}

// ---- binary with broadcasting -----------------------------------------------------------------

enum class BinaryOp { kAdd, kSub, kMul, kDiv, kMax };

inline float apply_binary(BinaryOp op, float a, float b) {
  switch (op) {
    case BinaryOp::kAdd:
      return a + b;
    case BinaryOp::kSub:
      return a - b;
    case BinaryOp::kMul:
      return a * b;
    case BinaryOp::kDiv:
      return a / b;
    case BinaryOp::kMax:
      return a > b ? a : b;
  }
  return a;
}

// Strides (in elements) of `s` seen through the broadcast shape `out` (0 on broadcast axes).
std::vector<int64_t> broadcast_strides(const Shape& s, const Shape& out) {
  std::vector<int64_t> st(out.size(), 0);
  int64_t stride = 1;
  for (int i = static_cast<int>(s.size()) - 1; i >= 0; --i) {
    size_t o = out.size() - s.size() + static_cast<size_t>(i);
    st[o] = s[static_cast<size_t>(i)] == 1 ? 0 : stride;
    stride *= s[static_cast<size_t>(i)];
  }
  return st;
}

class Binary : public Primitive {
 public:
  explicit Binary(BinaryOp op) : op_(op) {}
  const char* name() const override { return "binary"; }
  void eval_cpu(const std::vector<Array>& in, ArrayDesc& out) override {
    const float* a = in[0].data<float>();
    const float* b = in[1].data<float>();
    float* y = static_cast<float*>(out.data());
    const Shape& os = out.shape;
    if (out.numel() == 0) return;
    // Same shapes (the residual adds of every layer): the vector kernels, no index arithmetic.
    if ((op_ == BinaryOp::kAdd || op_ == BinaryOp::kMul) && in[0].shape() == os &&
        in[1].shape() == os) {
      const size_t n = static_cast<size_t>(out.numel());
      for_rows(n, 1, [&](size_t i0, size_t i1) {
        if (op_ == BinaryOp::kAdd) {
          kernels::cpu::add(a + i0, b + i0, y + i0, i1 - i0);
        } else {
          kernels::cpu::mul(a + i0, b + i0, y + i0, i1 - i0);
        }
      });
      return;
    }
    auto sa = broadcast_strides(in[0].shape(), os);
    auto sb = broadcast_strides(in[1].shape(), os);
    const size_t nd = os.size();
    if (nd == 0) {
      y[0] = apply_binary(op_, a[0], b[0]);
      return;
    }
    const int64_t inner = os[nd - 1];
    const int64_t ia = sa[nd - 1], ib = sb[nd - 1];
    const size_t n_rows = static_cast<size_t>(out.numel() / inner);
    for_rows(n_rows, static_cast<size_t>(inner), [&](size_t r0, size_t r1) {
      for (size_t r = r0; r < r1; ++r) {
        // Offsets of row r in a and b from its multi-index.
        int64_t oa = 0, ob = 0, rem = static_cast<int64_t>(r);
        for (int d = static_cast<int>(nd) - 2; d >= 0; --d) {
          int64_t idx = rem % os[static_cast<size_t>(d)];
          rem /= os[static_cast<size_t>(d)];
          oa += idx * sa[static_cast<size_t>(d)];
          ob += idx * sb[static_cast<size_t>(d)];
        }
        float* yr = y + static_cast<int64_t>(r) * inner;
        const float* ar = a + oa;
        const float* br = b + ob;
        for (int64_t i = 0; i < inner; ++i) yr[i] = apply_binary(op_, ar[i * ia], br[i * ib]);
      }
    });
  }

 private:
  BinaryOp op_;
};

Array binary(const char* name, BinaryOp op, const Array& a, const Array& b) {
  require_f32(name, a);
  require_f32(name, b);
  const Shape& x = a.shape();
  const Shape& z = b.shape();
  Shape out(std::max(x.size(), z.size()));
  for (size_t i = 0; i < out.size(); ++i) {
    int64_t dx = i < out.size() - x.size() ? 1 : x[i - (out.size() - x.size())];
    int64_t dz = i < out.size() - z.size() ? 1 : z[i - (out.size() - z.size())];
    if (!(dx == dz || dx == 1 || dz == 1))
      fail("array", "[", name, "] shapes ", shape_str(x), " and ", shape_str(z),
           " do not broadcast");
    out[i] = dx == 1 ? dz : dx;
  }
  return make_array(out, DType::kF32, std::make_shared<Binary>(op), {a, b});
}

// ---- reductions -------------------------------------------------------------------------------

enum class ReduceOp { kSum, kMean, kMax };

class Reduce : public Primitive {
 public:
  explicit Reduce(ReduceOp op) : op_(op) {}
  const char* name() const override { return "reduce"; }
  void eval_cpu(const std::vector<Array>& in, ArrayDesc& out) override {
    const float* x = in[0].data<float>();
    float* y = static_cast<float*>(out.data());
    const int64_t n = in[0].shape().empty() ? 1 : in[0].shape().back();
    const size_t rows = static_cast<size_t>(out.numel());
    for_rows(rows, static_cast<size_t>(n), [&](size_t r0, size_t r1) {
      for (size_t r = r0; r < r1; ++r) {
        const float* xr = x + static_cast<int64_t>(r) * n;
        if (op_ == ReduceOp::kMax) {
          float m = -INFINITY;
          for (int64_t i = 0; i < n; ++i) m = std::max(m, xr[i]);
          y[r] = m;
        } else {
          double s = 0;
          for (int64_t i = 0; i < n; ++i) s += xr[i];
          y[r] =
              static_cast<float>(op_ == ReduceOp::kMean && n > 0 ? s / static_cast<double>(n) : s);
        }
      }
    });
  }

 private:
  ReduceOp op_;
};

Array reduce(const char* name, ReduceOp op, const Array& a, bool keepdims) {
  require_f32(name, a);
  Shape s = a.shape();
  if (!s.empty()) {
    if (keepdims)
      s.back() = 1;
    else
      s.pop_back();
  }
  return make_array(s, DType::kF32, std::make_shared<Reduce>(op), {a});
}

class Softmax : public Primitive {
 public:
  const char* name() const override { return "softmax"; }
  void eval_cpu(const std::vector<Array>& in, ArrayDesc& out) override {
    const float* x = in[0].data<float>();
    float* y = static_cast<float*>(out.data());
    const int64_t n = out.shape.empty() ? 1 : out.shape.back();
    if (n == 0) return;
    const size_t rows = static_cast<size_t>(out.numel() / n);
    for_rows(rows, static_cast<size_t>(n), [&](size_t r0, size_t r1) {
      for (size_t r = r0; r < r1; ++r) {
        const float* xr = x + static_cast<int64_t>(r) * n;
        float* yr = y + static_cast<int64_t>(r) * n;
        float m = -INFINITY;
        for (int64_t i = 0; i < n; ++i) m = std::max(m, xr[i]);
        double s = 0;
        for (int64_t i = 0; i < n; ++i) {
          yr[i] = m == -INFINITY ? 0.f : std::exp(xr[i] - m);
          s += yr[i];
        }
        const float inv = s > 0 ? static_cast<float>(1.0 / s) : 0.f;
        for (int64_t i = 0; i < n; ++i) yr[i] *= inv;
      }
    });
  }
};

// ---- layout -----------------------------------------------------------------------------------

class Reshape : public Primitive {
 public:
  const char* name() const override { return "reshape"; }
  bool is_view() const override { return true; }
  void eval_cpu(const std::vector<Array>& in, ArrayDesc& out) override {
    out.buffer = in[0].desc()->buffer;
    out.offset = in[0].desc()->offset;
  }
};

class Transpose : public Primitive {
 public:
  explicit Transpose(std::vector<int> perm) : perm_(std::move(perm)) {}
  const char* name() const override { return "transpose"; }
  void eval_cpu(const std::vector<Array>& in, ArrayDesc& out) override {
    const Shape& is = in[0].shape();
    const size_t nd = is.size();
    const size_t es = dtype_size(out.dtype);
    std::vector<int64_t> in_strides(nd, 1);
    for (int d = static_cast<int>(nd) - 2; d >= 0; --d)
      in_strides[static_cast<size_t>(d)] =
          in_strides[static_cast<size_t>(d) + 1] * is[static_cast<size_t>(d) + 1];
    std::vector<int64_t> src_stride(nd);  // stride in the input of each output axis
    for (size_t d = 0; d < nd; ++d) src_stride[d] = in_strides[static_cast<size_t>(perm_[d])];
    const char* x = static_cast<const char*>(in[0].raw());
    char* y = static_cast<char*>(out.data());
    const Shape& os = out.shape;
    const int64_t total = out.numel();
    if (total == 0) return;
    const int64_t inner = os[nd - 1];
    const int64_t inner_stride = src_stride[nd - 1];
    const size_t rows = static_cast<size_t>(total / inner);
    for_rows(rows, static_cast<size_t>(inner), [&](size_t r0, size_t r1) {
      for (size_t r = r0; r < r1; ++r) {
        int64_t off = 0, rem = static_cast<int64_t>(r);
        for (int d = static_cast<int>(nd) - 2; d >= 0; --d) {
          off += (rem % os[static_cast<size_t>(d)]) * src_stride[static_cast<size_t>(d)];
          rem /= os[static_cast<size_t>(d)];
        }
        char* yr = y + static_cast<int64_t>(r) * inner * static_cast<int64_t>(es);
        for (int64_t i = 0; i < inner; ++i)
          std::memcpy(yr + i * static_cast<int64_t>(es),
                      x + (off + i * inner_stride) * static_cast<int64_t>(es), es);
      }
    });
  }

 private:
  std::vector<int> perm_;
};

// Slice and concat move whole runs of bytes: [outer][axis][inner] with inner contiguous.
struct AxisSplit {
  int64_t outer = 1, inner_bytes = 0;
};

AxisSplit split_at(const Shape& s, int axis, DType dt) {
  AxisSplit r;
  for (int d = 0; d < axis; ++d) r.outer *= s[static_cast<size_t>(d)];
  int64_t inner = 1;
  for (size_t d = static_cast<size_t>(axis) + 1; d < s.size(); ++d) inner *= s[d];
  r.inner_bytes = inner * static_cast<int64_t>(dtype_size(dt));
  return r;
}

class Slice : public Primitive {
 public:
  Slice(int axis, int64_t start) : axis_(axis), start_(start) {}
  const char* name() const override { return "slice"; }
  void eval_cpu(const std::vector<Array>& in, ArrayDesc& out) override {
    AxisSplit sp = split_at(out.shape, axis_, out.dtype);
    const int64_t in_len = in[0].shape()[static_cast<size_t>(axis_)];
    const int64_t out_len = out.shape[static_cast<size_t>(axis_)];
    const char* x = static_cast<const char*>(in[0].raw());
    char* y = static_cast<char*>(out.data());
    const auto row = static_cast<size_t>(out_len * sp.inner_bytes);
    // A prompt's q, k and v out of the fused projection: megabytes, split over the pool.
    for_rows(static_cast<size_t>(sp.outer), row / sizeof(float), [&](size_t o0, size_t o1) {
      for (auto o = static_cast<int64_t>(o0); o < static_cast<int64_t>(o1); ++o) {
        std::memcpy(y + o * out_len * sp.inner_bytes, x + (o * in_len + start_) * sp.inner_bytes,
                    row);
      }
    });
  }

 private:
  int axis_;
  int64_t start_;
};

class Concat : public Primitive {
 public:
  explicit Concat(int axis) : axis_(axis) {}
  const char* name() const override { return "concat"; }
  void eval_cpu(const std::vector<Array>& in, ArrayDesc& out) override {
    AxisSplit sp = split_at(out.shape, axis_, out.dtype);
    const int64_t out_len = out.shape[static_cast<size_t>(axis_)];
    char* y = static_cast<char*>(out.data());
    int64_t at = 0;
    for (const Array& part : in) {
      const int64_t len = part.shape()[static_cast<size_t>(axis_)];
      const char* x = static_cast<const char*>(part.raw());
      for (int64_t o = 0; o < sp.outer; ++o) {
        std::memcpy(y + (o * out_len + at) * sp.inner_bytes, x + o * len * sp.inner_bytes,
                    static_cast<size_t>(len * sp.inner_bytes));
      }
      at += len;
    }
  }

 private:
  int axis_;
};

class AsType : public Primitive {
 public:
  const char* name() const override { return "astype"; }
  void eval_cpu(const std::vector<Array>& in, ArrayDesc& out) override {
    const Array& a = in[0];
    const size_t n = static_cast<size_t>(out.numel());
    const DType from = a.dtype(), to = out.dtype;
    if (from == to) {
      std::memcpy(out.data(), a.raw(), out.n_bytes());
      return;
    }
    // Through f32: widen the input, then narrow to the output type.
    std::vector<float> tmp;
    const float* f = nullptr;
    if (from == DType::kF32) {
      f = a.data<float>();
    } else if (from == DType::kI32) {
      tmp.resize(n);
      const int32_t* s = a.data<int32_t>();
      for (size_t i = 0; i < n; ++i) tmp[i] = static_cast<float>(s[i]);
      f = tmp.data();
    } else {
      tmp.resize(n);
      const int64_t k = a.shape().empty() ? 1 : a.shape().back();
      const size_t rb = row_bytes(from, static_cast<size_t>(k));
      const char* src = static_cast<const char*>(a.raw());
      for (size_t r = 0; k > 0 && r < n / static_cast<size_t>(k); ++r)
        kernels::cpu::dequantize_row(from, src + r * rb, tmp.data() + r * static_cast<size_t>(k),
                                     static_cast<size_t>(k));
      f = tmp.data();
    }
    switch (to) {
      case DType::kF32:
        std::memcpy(out.data(), f, n * 4);
        break;
      case DType::kF16: {
        auto* y = static_cast<uint16_t*>(out.data());
        kernels::cpu::f32_to_f16(f, y, n);
        break;
      }
      case DType::kBF16: {
        auto* y = static_cast<uint16_t*>(out.data());
        for (size_t i = 0; i < n; ++i) y[i] = f32_to_bf16(f[i]);
        break;
      }
      case DType::kI32: {
        auto* y = static_cast<int32_t*>(out.data());
        for (size_t i = 0; i < n; ++i) y[i] = static_cast<int32_t>(f[i]);
        break;
      }
      default:
        RUNNEL_ASSERT_MSG(false, "astype to an unsupported type");
    }
  }
};

}  // namespace

Array zeros(const Shape& shape, DType dtype) {
  Array a = Array::empty(shape, dtype);
  std::memset(a.raw_mutable(), 0, a.n_bytes());
  return a;
}

Array full(const Shape& shape, float value) {
  Array a = Array::empty(shape, DType::kF32);
  std::fill_n(a.mutable_data<float>(), a.numel(), value);
  return a;
}

Array arange(int64_t start, int64_t stop) {
  check(stop >= start, "array", "[arange] stop ", stop, " < start ", start);
  Array a = Array::empty({stop - start}, DType::kI32);
  int32_t* p = a.mutable_data<int32_t>();
  for (int64_t i = start; i < stop; ++i) p[i - start] = static_cast<int32_t>(i);
  return a;
}

Array add(const Array& a, const Array& b) { return binary("add", BinaryOp::kAdd, a, b); }
Array sub(const Array& a, const Array& b) { return binary("sub", BinaryOp::kSub, a, b); }
Array mul(const Array& a, const Array& b) { return binary("mul", BinaryOp::kMul, a, b); }
Array div(const Array& a, const Array& b) { return binary("div", BinaryOp::kDiv, a, b); }
Array maximum(const Array& a, const Array& b) { return binary("maximum", BinaryOp::kMax, a, b); }
Array add(const Array& a, float b) { return add(a, full({}, b)); }
Array mul(const Array& a, float b) { return mul(a, full({}, b)); }
Array exp(const Array& a) { return unary("exp", UnaryOp::kExp, a); }
Array sqrt(const Array& a) { return unary("sqrt", UnaryOp::kSqrt, a); }
Array rsqrt(const Array& a) { return unary("rsqrt", UnaryOp::kRsqrt, a); }
Array square(const Array& a) { return unary("square", UnaryOp::kSquare, a); }
Array neg(const Array& a) { return unary("neg", UnaryOp::kNeg, a); }
Array silu(const Array& a) { return unary("silu", UnaryOp::kSilu, a); }
Array gelu(const Array& a) { return unary("gelu", UnaryOp::kGelu, a); }
Array gelu_tanh(const Array& a) { return unary("gelu_tanh", UnaryOp::kGeluTanh, a); }
Array sigmoid(const Array& a) { return unary("sigmoid", UnaryOp::kSigmoid, a); }

Array sum(const Array& a, bool keepdims) { return reduce("sum", ReduceOp::kSum, a, keepdims); }
Array mean(const Array& a, bool keepdims) { return reduce("mean", ReduceOp::kMean, a, keepdims); }
Array max(const Array& a, bool keepdims) { return reduce("max", ReduceOp::kMax, a, keepdims); }

Array softmax(const Array& a) {
  require_f32("softmax", a);
  return make_array(a.shape(), DType::kF32, std::make_shared<Softmax>(), {a});
}

Array reshape(const Array& a, const Shape& shape) {
  check(a.valid(), "array", "[reshape] empty array handle");
  Shape s = shape;
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      if (infer >= 0) fail("array", "[reshape] more than one -1 in ", shape_str(shape));
      infer = static_cast<int>(i);
    } else {
      if (s[i] < 0) fail("array", "[reshape] bad dimension in ", shape_str(shape));
      known *= s[i];
    }
  }
  if (infer >= 0) {
    if (!(known > 0 && a.numel() % known == 0))
      fail("array", "[reshape] cannot reshape ", shape_str(a.shape()), " to ", shape_str(shape));
    s[static_cast<size_t>(infer)] = a.numel() / known;
  }
  if (shape_numel(s) != a.numel())
    fail("array", "[reshape] cannot reshape ", shape_str(a.shape()), " to ", shape_str(shape));
  if (is_quantized(a.dtype())) {
    check(!s.empty() && !a.shape().empty() && s.back() == a.shape().back(), "array",
          "[reshape] a quantized array keeps its rows");
  }
  return make_array(s, a.dtype(), std::make_shared<Reshape>(), {a});
}

Array transpose(const Array& a, const std::vector<int>& perm) {
  check(a.valid() && !is_quantized(a.dtype()), "array", "[transpose] needs a plain dtype");
  const int nd = a.ndim();
  if (static_cast<int>(perm.size()) != nd)
    fail("array", "[transpose] permutation of ", perm.size(), " axes for ", shape_str(a.shape()));
  std::vector<bool> used(static_cast<size_t>(nd), false);
  Shape s(static_cast<size_t>(nd));
  for (int d = 0; d < nd; ++d) {
    int p = perm[static_cast<size_t>(d)];
    if (!(p >= 0 && p < nd && !used[static_cast<size_t>(p)]))
      fail("array", "[transpose] bad permutation for ", shape_str(a.shape()));
    used[static_cast<size_t>(p)] = true;
    s[static_cast<size_t>(d)] = a.shape()[static_cast<size_t>(p)];
  }
  return make_array(s, a.dtype(), std::make_shared<Transpose>(perm), {a});
}

Array slice(const Array& a, int axis, int64_t start, int64_t stop) {
  check(a.valid() && !is_quantized(a.dtype()), "array", "[slice] needs a plain dtype");
  int ax = norm_axis("slice", axis, a.ndim());
  int64_t len = a.shape()[static_cast<size_t>(ax)];
  if (!(0 <= start && start <= stop && stop <= len))
    fail("array", "[slice] range [", start, ", ", stop, ") outside axis ", ax, " of ",
         shape_str(a.shape()));
  Shape s = a.shape();
  s[static_cast<size_t>(ax)] = stop - start;
  return make_array(s, a.dtype(), std::make_shared<Slice>(ax, start), {a});
}

Array concat(const std::vector<Array>& parts, int axis) {
  check(!parts.empty(), "array", "[concat] nothing to concatenate");
  const Array& first = parts[0];
  check(!is_quantized(first.dtype()), "array", "[concat] needs a plain dtype");
  int ax = norm_axis("concat", axis, first.ndim());
  Shape s = first.shape();
  s[static_cast<size_t>(ax)] = 0;
  for (const Array& p : parts) {
    check(p.dtype() == first.dtype() && p.ndim() == first.ndim(), "array",
          "[concat] parts differ in dtype or rank");
    for (int d = 0; d < first.ndim(); ++d) {
      if (d == ax) continue;
      if (p.shape()[static_cast<size_t>(d)] != first.shape()[static_cast<size_t>(d)])
        fail("array", "[concat] shapes ", shape_str(first.shape()), " and ", shape_str(p.shape()),
             " differ off axis ", ax);
    }
    s[static_cast<size_t>(ax)] += p.shape()[static_cast<size_t>(ax)];
  }
  return make_array(s, first.dtype(), std::make_shared<Concat>(ax), parts);
}

Array astype(const Array& a, DType dtype) {
  check(a.valid(), "array", "[astype] empty array handle");
  check(
      dtype == DType::kF32 || dtype == DType::kF16 || dtype == DType::kBF16 || dtype == DType::kI32,
      "array", "[astype] cannot convert to ", dtype_name(dtype));
  return make_array(a.shape(), dtype, std::make_shared<AsType>(), {a});
}

}  // namespace runnel::array
