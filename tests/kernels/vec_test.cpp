// Vector ops: each SIMD variant against the scalar reference over sizes 0..35 and longer rows,
// misaligned by 0-3 floats; the references against exact math; RoPE against the rotation formula.
#include "kernels/cpu/vec.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <random>

#include "kernel_test_util.h"
#include "kernels/cpu/quant.h"

namespace runnel::kernels::cpu {
namespace {

using testing::IsaScope;
using testing::kEps;
using testing::random_floats;
using testing::simd_isas;

std::vector<size_t> sizes() {
  std::vector<size_t> s;
  for (size_t n = 0; n <= 2 * 16 + 3; ++n) s.push_back(n);
  for (size_t n : {100, 1000, 4099}) s.push_back(n);
  return s;
}

// Runs `op(a, b, y, n)` under scalar and every SIMD ISA with inputs misaligned by n % 4 floats and
// checks |got - ref| <= tol(i, ref, a, b).
using Op = std::function<void(const float*, const float*, float*, size_t)>;
using Tol = std::function<double(float ref, float a, float b, size_t n)>;
void compare(const char* name, const Op& op, const Tol& tol, float lo, float hi) {
  std::mt19937 rng(11);
  for (size_t n : sizes()) {
    const size_t off = n % 4;
    std::vector<float> a = random_floats(rng, n + off, lo, hi),
                       b = random_floats(rng, n + off, lo, hi);
    std::vector<float> ref(n + off + 1, 1e30f);
    {
      IsaScope s(Isa::kScalar);
      op(a.data() + off, b.data() + off, ref.data() + off, n);
    }
    for (Isa isa : simd_isas()) {
      IsaScope s(isa);
      std::vector<float> got(n + off + 1, 1e30f);
      op(a.data() + off, b.data() + off, got.data() + off, n);
      EXPECT_EQ(got[n + off], 1e30f) << name << " wrote past the end";
      for (size_t i = 0; i < n; ++i) {
        ASSERT_NEAR(got[off + i], ref[off + i], tol(ref[off + i], a[off + i], b[off + i], n))
            << name << " " << isa_name(isa) << " n=" << n << " i=" << i;
      }
    }
  }
}

TEST(Vec, ElementwiseOpsMatchReference) {
  auto exact = [](float, float, float, size_t) { return 0.0; };
  compare(
      "add", [](const float* a, const float* b, float* y, size_t n) { add(a, b, y, n); }, exact,
      -10, 10);
  compare(
      "mul", [](const float* a, const float* b, float* y, size_t n) { mul(a, b, y, n); }, exact,
      -10, 10);
  compare(
      "scale", [](const float* a, const float*, float* y, size_t n) { scale(a, 0.37f, y, n); },
      exact, -10, 10);
  // Polynomial exp (rel. error < 2e-7) plus a few roundings: 8 eps of the result.
  compare(
      "silu_mul", [](const float* a, const float* b, float* y, size_t n) { silu_mul(a, b, y, n); },
      [](float r, float, float, size_t) { return 8 * kEps * std::fabs(r) + 1e-37; }, -20, 20);
  // The reference computes 1 + tanh(u), which cancels for negative x: its own error is about
  // eps·|x|/2, so the bound adds that to 8 eps of the result.
  compare(
      "gelu_tanh", [](const float* a, const float*, float* y, size_t n) { gelu_tanh(a, y, n); },
      [](float r, float a, float, size_t) {
        return 8 * kEps * std::fabs(r) + 2 * kEps * std::fabs(a) + 1e-37;
      },
      -12, 12);
  compare(
      "gelu_erf", [](const float* a, const float*, float* y, size_t n) { gelu_erf(a, y, n); },
      [](float r, float a, float, size_t) { return 8 * kEps * (std::fabs(r) + std::fabs(a)); }, -6,
      6);
  // Sums of n terms in a different order: (n + 8) eps relative.
  compare(
      "rms_norm",
      [](const float* a, const float* b, float* y, size_t n) { rms_norm(a, b, y, n, 1e-5f); },
      [](float r, float, float, size_t n) { return (n + 8) * kEps * std::fabs(r); }, -3, 3);
  compare(
      "rms_norm(no weight)",
      [](const float* a, const float*, float* y, size_t n) { rms_norm(a, nullptr, y, n, 1e-6f); },
      [](float r, float, float, size_t n) { return (n + 8) * kEps * std::fabs(r); }, -3, 3);
  compare(
      "softmax", [](const float* a, const float*, float* y, size_t n) { softmax(a, y, n); },
      [](float r, float, float, size_t n) { return (n + 16) * kEps * std::fabs(r) + 1e-37; }, -30,
      30);
}

TEST(Vec, ReferencesMatchExactMath) {
  IsaScope s(Isa::kScalar);
  std::vector<float> x = {-3.5f, -1, 0, 0.25f, 2, 7}, w = {1, 2, 3, 4, 5, 6}, y(6), b(6, 2.0f);
  double ss = 0;
  for (float v : x) ss += double(v) * v;
  rms_norm(x.data(), w.data(), y.data(), 6, 1e-5f);
  for (int i = 0; i < 6; ++i) {
    const double want = x[i] / std::sqrt(ss / 6 + 1e-5) * w[i];
    EXPECT_NEAR(y[i], want, 8 * kEps * std::fabs(want));
  }
  softmax(x.data(), y.data(), 6);
  double z = 0;
  for (float v : x) z += std::exp(double(v));
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(y[i], std::exp(double(x[i])) / z, 1e-7);
  silu_mul(x.data(), b.data(), y.data(), 6);
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(y[i], 2 * x[i] / (1 + std::exp(-double(x[i]))), 1e-6);
  gelu_erf(x.data(), y.data(), 6);
  for (int i = 0; i < 6; ++i) {
    EXPECT_NEAR(y[i], 0.5 * x[i] * (1 + std::erf(x[i] / std::sqrt(2.0))), 1e-6);
  }
  gelu_tanh(x.data(), y.data(), 6);
  for (int i = 0; i < 6; ++i) {
    const double v = x[i];
    EXPECT_NEAR(y[i], 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v))),
                1e-6);
  }
  // In-place use.
  std::vector<float> inplace = x;
  softmax(inplace.data(), inplace.data(), 6);
  softmax(x.data(), y.data(), 6);
  EXPECT_EQ(inplace, y);
}

// y may alias an input: every ISA gives the same bits in place as out of place.
TEST(Vec, InPlaceMatchesOutOfPlace) {
  std::mt19937 rng(4);
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    IsaScope s(isa);
    if (!s.ok()) continue;
    for (size_t n : {size_t{1}, size_t{17}, size_t{100}}) {
      const std::vector<float> a = random_floats(rng, n, -4, 4), b = random_floats(rng, n, -4, 4);
      auto check = [&](const char* name, auto op) {
        std::vector<float> out(n), inplace = a;
        op(a.data(), out.data());
        op(inplace.data(), inplace.data());
        EXPECT_EQ(0, std::memcmp(out.data(), inplace.data(), n * 4))
            << name << " " << isa_name(isa);
      };
      check("rms_norm", [&](const float* x, float* y) { rms_norm(x, b.data(), y, n, 1e-5f); });
      check("softmax", [&](const float* x, float* y) { softmax(x, y, n); });
      check("silu_mul", [&](const float* x, float* y) { silu_mul(x, b.data(), y, n); });
      check("gelu_tanh", [&](const float* x, float* y) { gelu_tanh(x, y, n); });
      check("add", [&](const float* x, float* y) { add(x, b.data(), y, n); });
      check("scale", [&](const float* x, float* y) { scale(x, 3.0f, y, n); });
    }
  }
}

// argmax: the first index of the largest value, NaN never counting, -1 when none beats -inf; every
// ISA against the scalar reference and against a plain loop, on values drawn from a handful (ties
// everywhere), with NaN, ±inf and ±0 sprinkled in, the maximum in the first, last and tail lanes.
TEST(Vec, ArgmaxMatchesReferenceForEveryIsa) {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const auto plain = [](const float* x, size_t n) {
    int64_t at = -1;
    for (size_t i = 0; i < n; ++i) {
      if (!std::isnan(x[i]) && x[i] > -kInf && (at < 0 || x[i] > x[at]))
        at = static_cast<int64_t>(i);
    }
    return at;
  };
  std::mt19937 rng(5);
  std::vector<size_t> ns = sizes();
  for (size_t n : {63, 64, 65, 127, 128, 129, 151936}) ns.push_back(n);
  int cases = 0;
  for (size_t n : ns) {
    for (int variant = 0; variant < 8; ++variant) {
      const size_t off = (n + variant) % 4;
      std::vector<float> x(n + off, 7.0f);  // 7 before the row: never read
      for (size_t i = 0; i < n; ++i) {
        const uint32_t r = rng();
        float v = static_cast<float>(static_cast<int>(r % 5) - 2);  // -2..2: many ties
        if (variant >= 4 && r % 7 == 0) v = nan;
        if (variant == 5 && r % 11 == 0) v = -kInf;
        if (variant == 6) v = r % 3 == 0 ? -0.0f : (r % 3 == 1 ? 0.0f : -kInf);
        x[off + i] = v;
      }
      if (variant == 1 && n > 0) x[off + n - 1] = 3.0f;  // the maximum in the last (tail) lane
      if (variant == 2 && n > 0) x[off] = 3.0f;          // in the first
      if (variant == 3 && n > 1) x[off + n / 2] = kInf;  // +inf in the middle
      if (variant == 7) std::fill(x.begin() + off, x.end(), n % 2 ? nan : -kInf);
      const float* row = x.data() + off;
      int64_t want;
      {
        IsaScope s(Isa::kScalar);
        want = argmax(row, n);
      }
      ASSERT_EQ(want, plain(row, n)) << "scalar n=" << n << " variant=" << variant;
      for (Isa isa : simd_isas()) {
        IsaScope s(isa);
        ASSERT_EQ(argmax(row, n), want) << isa_name(isa) << " n=" << n << " variant=" << variant;
        ++cases;
      }
    }
  }
  EXPECT_GT(cases, 0);
}

// sum_exp: Σ exp(x - m) in double; the SIMD variants' float exp is within 2e-7 of each term, the
// -inf terms add (almost) nothing.
TEST(Vec, SumExpMatchesReferenceForEveryIsa) {
  std::mt19937 rng(8);
  std::normal_distribution<float> logit(0.0f, 4.0f);
  std::vector<size_t> ns = sizes();
  ns.push_back(151936);
  for (size_t n : ns) {
    const size_t off = n % 4;
    std::vector<float> x(n + off, 1e30f);  // before the row: never read
    for (size_t i = 0; i < n; ++i) x[off + i] = i % 13 == 5 ? -INFINITY : logit(rng);
    const float* row = x.data() + off;
    float m = -INFINITY;
    for (size_t i = 0; i < n; ++i) m = std::max(m, row[i]);
    if (!(m > -INFINITY)) m = 0;  // every term -inf (or none): the sum is 0
    double want;
    {
      IsaScope s(Isa::kScalar);
      want = sum_exp(row, n, m);
    }
    for (Isa isa : simd_isas()) {
      IsaScope s(isa);
      const double got = sum_exp(row, n, m);
      ASSERT_NEAR(got, want, 1e-6 * want + 1e-30) << isa_name(isa) << " n=" << n;
    }
  }
}

TEST(Vec, ConversionsAreExactForEveryIsa) {
  std::mt19937 rng(8);
  std::vector<float> f = random_floats(rng, 1000, -70000, 70000);
  // Values that exercise subnormals, zeros, infinities and rounding ties of f16.
  const float specials[] = {0.0f,           -0.0f,        1e-8f,
                            -3e-6f,         6.1e-5f,      65504.0f,
                            65520.0f,       1e6f,         std::numeric_limits<float>::infinity(),
                            1.00048828125f, 2.0009765625f};
  for (size_t i = 0; i < std::size(specials); ++i) f[i] = specials[i];
  for (size_t i = 50; i < 300; ++i) f[i] *= 1e-4f;
  for (size_t i = 300; i < 500; ++i) f[i] *= 1e-8f;
  for (Isa isa : simd_isas()) {
    IsaScope s(isa);
    for (size_t n : sizes()) {
      if (n > f.size() - 3) continue;
      const size_t off = n % 3;
      std::vector<uint16_t> h(n + 1), h_ref(n + 1);
      f32_to_f16(f.data() + off, h.data() + 1, n);
      for (size_t i = 0; i < n; ++i) h_ref[i + 1] = runnel::f32_to_f16(f[off + i]);
      ASSERT_EQ(h, h_ref) << isa_name(isa) << " f32_to_f16 n=" << n;
      std::vector<float> back(n), back_ref(n);
      f16_to_f32(h.data() + 1, back.data(), n);
      for (size_t i = 0; i < n; ++i) back_ref[i] = runnel::f16_to_f32(h[i + 1]);
      ASSERT_EQ(0, std::memcmp(back.data(), back_ref.data(), n * 4)) << isa_name(isa);
      std::vector<uint16_t> bf(n + 1);
      for (size_t i = 0; i < n; ++i) bf[i + 1] = runnel::f32_to_bf16(f[off + i]);
      bf16_to_f32(bf.data() + 1, back.data(), n);
      for (size_t i = 0; i < n; ++i) back_ref[i] = runnel::bf16_to_f32(bf[i + 1]);
      ASSERT_EQ(0, std::memcmp(back.data(), back_ref.data(), n * 4)) << isa_name(isa);
    }
  }
}

// The KV cache's q8_0 writes: every ISA gives quantize_row's bytes, rounding ties (x · (1 / d)
// exactly k + 0.5) away from zero as roundf does, all-zero blocks included.
TEST(Vec, Q8_0RowsMatchQuantizeRowForEveryIsa) {
  std::mt19937 rng(9);
  std::vector<float> f = random_floats(rng, 32 * 40, -3, 3);
  // Block 0: amax 127, so d = 1 and id = 1: ties at ±0.5, ±2.5, ±126.5.
  const float ties[] = {127, 0.5f, -0.5f, 2.5f, -2.5f, 126.5f, -126.5f, 1.5f, -1.5f, 3.49999f};
  for (size_t i = 0; i < std::size(ties); ++i) f[i] = ties[i];
  for (size_t i = 32; i < 64; ++i) f[i] = 0;       // block 1: all zero (d = 0)
  for (size_t i = 64; i < 96; ++i) f[i] *= 1e-6f;  // block 2: tiny
  for (size_t i = 96; i < 128; ++i) f[i] *= 1e4f;  // block 3: large
  std::vector<uint8_t> ref(f.size() / 32 * 34);
  ASSERT_TRUE(quantize_row(DType::kQ8_0, f.data(), ref.data(), f.size()));
  for (Isa isa : simd_isas()) {
    IsaScope s(isa);
    for (size_t nb : {size_t{1}, size_t{3}, f.size() / 32}) {
      std::vector<uint8_t> got(nb * 34 + 1, 0xee);
      f32_to_q8_0(f.data(), got.data() + 1, nb * 32);  // any alignment
      EXPECT_EQ(got[0], 0xee);
      ASSERT_EQ(0, std::memcmp(got.data() + 1, ref.data(), nb * 34)) << isa_name(isa) << " " << nb;
    }
  }
}

TEST(Vec, RopeRotatesPairsOfEachStyle) {
  const size_t head_dim = 10, n_rot = 8, n_heads = 3;
  const float ff[] = {1, 2, 4, 8};
  std::vector<float> cs(n_rot / 2), sn(n_rot / 2);
  rope_cos_sin(5.0f, 10000.0f, 0.5f, ff, n_rot, cs.data(), sn.data());
  for (size_t i = 0; i < n_rot / 2; ++i) {
    const double angle = 5.0 * 0.5 * std::pow(10000.0, -2.0 * i / n_rot) / ff[i];
    EXPECT_NEAR(cs[i], std::cos(angle), 1e-7);
    EXPECT_NEAR(sn[i], std::sin(angle), 1e-7);
  }
  std::mt19937 rng(2);
  const std::vector<float> x = random_floats(rng, head_dim * n_heads);
  for (RopeStyle style : {RopeStyle::kNormal, RopeStyle::kNeox}) {
    std::vector<float> y = x;
    rope(y.data(), n_heads, head_dim, n_rot, cs.data(), sn.data(), style);
    for (size_t h = 0; h < n_heads; ++h) {
      const float* a = x.data() + h * head_dim;
      const float* b = y.data() + h * head_dim;
      for (size_t i = 0; i < n_rot / 2; ++i) {
        const size_t i0 = style == RopeStyle::kNormal ? 2 * i : i;
        const size_t i1 = style == RopeStyle::kNormal ? 2 * i + 1 : i + n_rot / 2;
        EXPECT_NEAR(b[i0], a[i0] * cs[i] - a[i1] * sn[i], 1e-6);
        EXPECT_NEAR(b[i1], a[i0] * sn[i] + a[i1] * cs[i], 1e-6);
      }
      for (size_t e = n_rot; e < head_dim; ++e) EXPECT_EQ(b[e], a[e]) << "beyond n_rot";
    }
  }
  // Position 0 is the identity.
  rope_cos_sin(0.0f, 10000.0f, 1.0f, nullptr, n_rot, cs.data(), sn.data());
  std::vector<float> y = x;
  rope(y.data(), n_heads, head_dim, n_rot, cs.data(), sn.data(), RopeStyle::kNeox);
  EXPECT_EQ(y, x);
}

// rope_rows on every ISA: the scalar bits (no fused multiply-add anywhere), out of place and in
// place, both styles, head sizes with ragged vector tails, n_rot below head_dim (the rest copied),
// rows misaligned by 1-3 floats, and nothing written past the last head.
TEST(Vec, RopeRowsMatchScalarBitForBitForEveryIsa) {
  std::mt19937 rng(5);
  struct Shape {
    size_t head_dim, n_rot, n_heads;
  };
  for (const Shape sh : {Shape{128, 128, 16}, Shape{64, 64, 3}, Shape{80, 80, 2}, Shape{10, 8, 3},
                         Shape{96, 32, 2}, Shape{2, 2, 5}, Shape{34, 30, 3}, Shape{6, 0, 2}}) {
    const size_t n = sh.head_dim * sh.n_heads;
    std::vector<float> cs(sh.n_rot / 2 + 1), sn(sh.n_rot / 2 + 1);
    rope_cos_sin(37.0f, 10000.0f, 1.0f, nullptr, sh.n_rot, cs.data(), sn.data());
    for (RopeStyle style : {RopeStyle::kNormal, RopeStyle::kNeox}) {
      const size_t off = 1 + n % 3;
      const std::vector<float> x = random_floats(rng, n + off, -3.0f, 3.0f);
      std::vector<float> ref(n + off + 1, 1e30f);
      {
        IsaScope s(Isa::kScalar);
        rope_rows(x.data() + off, ref.data() + off, sh.n_heads, sh.head_dim, sh.n_rot, cs.data(),
                  sn.data(), style);
      }
      // The scalar result is the rotation formula.
      for (size_t h = 0; h < sh.n_heads; ++h) {
        const float* a = x.data() + off + h * sh.head_dim;
        const float* b = ref.data() + off + h * sh.head_dim;
        for (size_t i = 0; i < sh.n_rot / 2; ++i) {
          const size_t i0 = style == RopeStyle::kNormal ? 2 * i : i;
          const size_t i1 = style == RopeStyle::kNormal ? 2 * i + 1 : i + sh.n_rot / 2;
          const double want0 = double{a[i0]} * cs[i] - double{a[i1]} * sn[i];
          const double want1 = double{a[i1]} * cs[i] + double{a[i0]} * sn[i];
          ASSERT_NEAR(b[i0], want0, 1e-5);
          ASSERT_NEAR(b[i1], want1, 1e-5);
        }
        for (size_t e = sh.n_rot; e < sh.head_dim; ++e) ASSERT_EQ(b[e], a[e]);
      }
      for (Isa isa : simd_isas()) {
        IsaScope s(isa);
        std::vector<float> got(n + off + 1, 1e30f);
        rope_rows(x.data() + off, got.data() + off, sh.n_heads, sh.head_dim, sh.n_rot, cs.data(),
                  sn.data(), style);
        EXPECT_EQ(got[n + off], 1e30f) << isa_name(isa) << " wrote past the end";
        EXPECT_EQ(got[off - 1], 1e30f) << isa_name(isa) << " wrote before the start";
        ASSERT_EQ(0, std::memcmp(got.data() + off, ref.data() + off, n * sizeof(float)))
            << isa_name(isa) << " head_dim " << sh.head_dim << " n_rot " << sh.n_rot << " style "
            << static_cast<int>(style);
        std::vector<float> in_place(x);  // y == x
        rope_rows(in_place.data() + off, in_place.data() + off, sh.n_heads, sh.head_dim, sh.n_rot,
                  cs.data(), sn.data(), style);
        ASSERT_EQ(0, std::memcmp(in_place.data() + off, ref.data() + off, n * sizeof(float)))
            << isa_name(isa) << " in place, head_dim " << sh.head_dim;
      }
    }
  }
}

// head_norm_rope on every ISA: the bits of that ISA's rms_norm of each head followed by its
// rope_rows (the AVX-512 kernel runs four heads' sums of squares at once), for head counts around
// its groups of four, ragged head sizes, n_rot below head_dim and misaligned rows.
TEST(Vec, HeadNormRopeIsNormThenRopeBitForBitForEveryIsa) {
  std::mt19937 rng(8);
  struct Shape {
    size_t head_dim, n_rot;
  };
  for (const Shape sh : {Shape{128, 128}, Shape{64, 64}, Shape{80, 80}, Shape{10, 8}, Shape{96, 32},
                         Shape{34, 30}}) {
    for (size_t n_heads : {1, 3, 4, 5, 8, 9, 16}) {
      const size_t n = sh.head_dim * n_heads, off = 1 + n % 3;
      std::vector<float> cs(sh.n_rot / 2 + 1), sn(sh.n_rot / 2 + 1);
      rope_cos_sin(11.0f, 1e6f, 1.0f, nullptr, sh.n_rot, cs.data(), sn.data());
      const std::vector<float> x = random_floats(rng, n + off, -2.0f, 2.0f);
      const std::vector<float> w = random_floats(rng, sh.head_dim, 0.5f, 1.5f);
      for (RopeStyle style : {RopeStyle::kNormal, RopeStyle::kNeox}) {
        std::vector<Isa> isas = simd_isas();
        isas.insert(isas.begin(), Isa::kScalar);
        for (Isa isa : isas) {
          IsaScope s(isa);
          std::vector<float> want(n + 1, 1e30f), got(n + 1, 1e30f);
          for (size_t h = 0; h < n_heads; ++h) {
            rms_norm(x.data() + off + h * sh.head_dim, w.data(), want.data() + h * sh.head_dim,
                     sh.head_dim, 1e-6f);
          }
          rope_rows(want.data(), want.data(), n_heads, sh.head_dim, sh.n_rot, cs.data(), sn.data(),
                    style);
          head_norm_rope(x.data() + off, w.data(), 1e-6f, got.data(), n_heads, sh.head_dim,
                         sh.n_rot, cs.data(), sn.data(), style);
          EXPECT_EQ(got[n], 1e30f) << isa_name(isa) << " wrote past the end";
          ASSERT_EQ(0, std::memcmp(got.data(), want.data(), n * sizeof(float)))
              << isa_name(isa) << " heads " << n_heads << " head_dim " << sh.head_dim << " n_rot "
              << sh.n_rot << " style " << static_cast<int>(style);
        }
      }
    }
  }
}

}  // namespace
}  // namespace runnel::kernels::cpu
