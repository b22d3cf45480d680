// Array handles: construction of leaves, accessors, pinning.
#include "array/array.h"

#include <cstring>
#include <mutex>
#include <unordered_map>

#include "array/internal.h"
#include "base/assert.h"
#include "base/error.h"
#include "kernels/cpu/quant.h"

namespace runnel::array {

std::string shape_str(const Shape& s) {
  std::string out = "(";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) out += ",";
    out += std::to_string(s[i]);
  }
  return out + ")";
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

size_t ArrayDesc::n_bytes() const {
  if (shape.empty()) return row_bytes(dtype, 1);
  int64_t rows = shape_numel(shape) / (shape.back() == 0 ? 1 : shape.back());
  if (shape.back() == 0) return 0;
  return static_cast<size_t>(rows) * row_bytes(dtype, static_cast<size_t>(shape.back()));
}

Array make_array(Shape shape, DType dtype, std::shared_ptr<Primitive> prim,
                 std::vector<Array> inputs) {
  auto d = std::make_shared<ArrayDesc>();
  d->shape = std::move(shape);
  d->dtype = dtype;
  d->prim = std::move(prim);
  d->inputs = std::move(inputs);
  return Array(std::move(d));
}

namespace {

std::shared_ptr<ArrayDesc> new_leaf(const Shape& shape, DType dtype) {
  for (int64_t d : shape) {
    if (d < 0) fail("array", "negative dimension in shape ", shape_str(shape));
  }
  if (is_quantized(dtype) && !shape.empty()) {
    if (shape.back() % block_elems(dtype) != 0)
      fail("array", "last dimension of ", shape_str(shape), " is not a multiple of the ",
           dtype_name(dtype), " block size");
  }
  auto d = std::make_shared<ArrayDesc>();
  d->shape = shape;
  d->dtype = dtype;
  return d;
}

}  // namespace

Array Array::empty(const Shape& shape, DType dtype, MemoryKind kind) {
  auto d = new_leaf(shape, dtype);
  d->buffer = std::make_shared<Buffer>(d->n_bytes(), kind);
  d->evaluated = true;
  return Array(std::move(d));
}

Array Array::from_bytes(const Shape& shape, DType dtype, const void* bytes, size_t n_bytes) {
  Array a = empty(shape, dtype);
  if (n_bytes != a.n_bytes())
    fail("array", "from_bytes: ", n_bytes, " bytes given for ", shape_str(shape), " ",
         dtype_name(dtype), " which needs ", a.n_bytes());
  if (n_bytes) std::memcpy(a.desc_->data(), bytes, n_bytes);
  return a;
}

Array Array::from_floats(const Shape& shape, std::span<const float> values) {
  return from_bytes(shape, DType::kF32, values.data(), values.size() * sizeof(float));
}

Array Array::from_ints(const Shape& shape, std::span<const int32_t> values) {
  return from_bytes(shape, DType::kI32, values.data(), values.size() * sizeof(int32_t));
}

Array Array::from_external(const Shape& shape, DType dtype, const void* data,
                           std::shared_ptr<const void> owner) {
  auto d = new_leaf(shape, dtype);
  d->buffer = std::make_shared<Buffer>(data, d->n_bytes(), std::move(owner));
  d->evaluated = true;
  return Array(std::move(d));
}

const Shape& Array::shape() const {
  RUNNEL_ASSERT(desc_);
  return desc_->shape;
}

int64_t Array::dim(int axis) const {
  const Shape& s = shape();
  int n = static_cast<int>(s.size());
  if (axis < 0) axis += n;
  RUNNEL_ASSERT(axis >= 0 && axis < n);
  return s[static_cast<size_t>(axis)];
}

int64_t Array::numel() const { return shape_numel(shape()); }
DType Array::dtype() const {
  RUNNEL_ASSERT(desc_);
  return desc_->dtype;
}
size_t Array::n_bytes() const {
  RUNNEL_ASSERT(desc_);
  return desc_->n_bytes();
}
bool Array::is_evaluated() const { return desc_ && desc_->evaluated.load(); }

const void* Array::raw() const {
  RUNNEL_ASSERT(desc_);
  if (!desc_->evaluated.load()) eval(*this);
  return desc_->data();
}

void* Array::raw_mutable() { return const_cast<void*>(raw()); }

std::vector<float> Array::to_floats() const {
  const void* p = raw();
  std::vector<float> out(static_cast<size_t>(numel()));
  if (dtype() == DType::kI32) {
    const int32_t* src = static_cast<const int32_t*>(p);
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<float>(src[i]);
  } else {
    kernels::cpu::dequantize_row(dtype(), p, out.data(), out.size());
  }
  return out;
}

std::vector<int32_t> Array::to_ints() const {
  check(dtype() == DType::kI32, "array", "to_ints on a ", dtype_name(dtype()), " array");
  const int32_t* p = data<int32_t>();
  return std::vector<int32_t>(p, p + numel());
}

float Array::item() const {
  if (numel() != 1) fail("array", "item() on an array of shape ", shape_str(shape()));
  return to_floats()[0];
}

namespace {

// Pinned arrays are held here too, so they live until unpinned even when no handle is left.
struct PinRegistry {
  std::mutex mu;
  std::unordered_map<const ArrayDesc*, std::shared_ptr<ArrayDesc>> held;
};
PinRegistry& pins() {
  static PinRegistry* r = new PinRegistry();
  return *r;
}

}  // namespace

void pin(const Array& a, MemoryKind kind) {
  RUNNEL_ASSERT(a.valid());
  if (!a.is_evaluated()) eval(a);
  PinRegistry& r = pins();
  std::lock_guard lock(r.mu);
  ArrayDesc& d = *a.desc();
  if (d.pins++ == 0) {
    d.pin_kind = kind;
    r.held[&d] = a.desc();
  }
  d.buffer->add_pin(d.pin_kind);
}

void unpin(const Array& a) {
  RUNNEL_ASSERT(a.valid());
  std::shared_ptr<ArrayDesc> release;  // destroyed after the lock is dropped
  PinRegistry& r = pins();
  std::lock_guard lock(r.mu);
  ArrayDesc& d = *a.desc();
  RUNNEL_ASSERT_MSG(d.pins > 0, "unpin of an array that is not pinned");
  d.buffer->remove_pin();
  if (--d.pins == 0) {
    auto it = r.held.find(&d);
    release = std::move(it->second);
    r.held.erase(it);
  }
}

int pin_count(const Array& a) { return a.valid() ? a.desc()->pins : 0; }

}  // namespace runnel::array
