// The fused ops written as compositions of basic ops. Slower, obviously right, and the reference
// the fused primitives are tested against.
#include <cmath>

#include "array/ops.h"
#include "base/error.h"

namespace runnel::array::composite {

Array rms_norm(const Array& x, const Array& w, float eps) {
  return mul(mul(x, rsqrt(add(mean(square(x)), eps))), w);
}

Array swiglu(const Array& x) {
  const int64_t f = x.shape().back() / 2;
  return mul(silu(slice(x, -1, 0, f)), slice(x, -1, f, 2 * f));
}

Array rope(const Array& x, const Array& positions, const RopeConfig& cfg) {
  const int64_t T = x.shape()[0], H = x.shape()[1], D = x.shape()[2];
  const int64_t n = cfg.n_dims == 0 ? D : cfg.n_dims;
  const int64_t half = n / 2;
  // Angle tables from the (evaluated) positions.
  std::vector<int32_t> pos = positions.to_ints();
  std::vector<float> c(static_cast<size_t>(T * half)), s(c.size());
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t i = 0; i < half; ++i) {
      double freq = std::pow(static_cast<double>(cfg.theta),
                             -2.0 * static_cast<double>(i) / static_cast<double>(n));
      if (!cfg.freq_factors.empty()) freq /= cfg.freq_factors[static_cast<size_t>(i)];
      double angle = pos[static_cast<size_t>(t)] * static_cast<double>(cfg.freq_scale) * freq;
      c[static_cast<size_t>(t * half + i)] = static_cast<float>(std::cos(angle));
      s[static_cast<size_t>(t * half + i)] = static_cast<float>(std::sin(angle));
    }
  }
  Array rotated = slice(x, 2, 0, n);
  Array x0, x1, cos_a, sin_a;
  if (cfg.neox) {
    cos_a = Array::from_floats({T, 1, half}, c);
    sin_a = Array::from_floats({T, 1, half}, s);
    x0 = slice(rotated, 2, 0, half);
    x1 = slice(rotated, 2, half, n);
  } else {
    cos_a = Array::from_floats({T, 1, half, 1}, c);
    sin_a = Array::from_floats({T, 1, half, 1}, s);
    Array pairs = reshape(rotated, {T, H, half, 2});
    x0 = slice(pairs, 3, 0, 1);
    x1 = slice(pairs, 3, 1, 2);
  }
  Array y0 = sub(mul(x0, cos_a), mul(x1, sin_a));
  Array y1 = add(mul(x1, cos_a), mul(x0, sin_a));
  Array out = cfg.neox ? concat({y0, y1}, 2) : reshape(concat({y0, y1}, 3), {T, H, n});
  if (n < D) out = concat({out, slice(x, 2, n, D)}, 2);
  return out;
}

Array attention(const Array& q, const Array& k, const Array& v, int64_t n_kv, int64_t q_pos0,
                float scale) {
  const int64_t T = q.shape()[0], H = q.shape()[1], D = q.shape()[2];
  const int64_t Hkv = k.shape()[1];
  const int64_t G = H / Hkv;
  // Heads h = kv * G + g share kv head `kv`: group them as [Hkv, G*T, D].
  Array qh = reshape(transpose(q, {1, 0, 2}), {Hkv, G * T, D});
  Array kh = transpose(astype(slice(k, 0, 0, n_kv), DType::kF32), {1, 2, 0});  // [Hkv, D, S]
  Array vh = transpose(astype(slice(v, 0, 0, n_kv), DType::kF32), {1, 0, 2});  // [Hkv, S, D]
  Array scores = mul(matmul(qh, kh), scale);                                   // [Hkv, G*T, S]
  std::vector<float> mask(static_cast<size_t>(G * T * n_kv), 0.f);
  for (int64_t g = 0; g < G; ++g) {
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t j = q_pos0 + t + 1; j < n_kv; ++j)
        mask[static_cast<size_t>((g * T + t) * n_kv + j)] = -INFINITY;
    }
  }
  scores = add(scores, Array::from_floats({G * T, n_kv}, mask));
  Array out = matmul(softmax(scores), vh);  // [Hkv, G*T, D]
  return transpose(reshape(out, {H, T, D}), {1, 0, 2});
}

}  // namespace runnel::array::composite
