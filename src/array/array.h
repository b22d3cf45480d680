// Array: a cheap value handle over a shared descriptor (shape, dtype, primitive, inputs, buffer).
// Ops build a graph lazily (array/ops.h); eval/async_eval compute it. Arrays are contiguous and
// row-major; shapes are outermost first.
//
// Memory contract (see ARCHITECTURE.md): evaluation detaches the graph, so an intermediate's buffer
// is released as soon as no live handle and no unevaluated consumer needs it. Weights and cache
// state are pinned (counted, by kind) and are never donated or reused while pinned. Memory is
// accounted by kind against limits; going over one is an Error("memory", ...), never a crash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/dtype.h"

namespace runnel::array {

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);  // "(2,3)"
int64_t shape_numel(const Shape& s);

enum class MemoryKind { kScratch = 0, kWeights = 1, kCache = 2, kCount = 3 };
const char* memory_kind_name(MemoryKind kind);

class Buffer;
class Primitive;
struct ArrayDesc;

class Array {
 public:
  Array() = default;  // an empty handle; valid() is false

  // A new evaluated array holding a copy of `bytes` (row_bytes(dtype, last dim) * rows bytes).
  static Array from_bytes(const Shape& shape, DType dtype, const void* bytes, size_t n_bytes);
  static Array from_floats(const Shape& shape, std::span<const float> values);
  static Array from_ints(const Shape& shape, std::span<const int32_t> values);
  // An evaluated array over memory the caller keeps alive (e.g. an mmapped weight): zero copies.
  // `owner` is held as long as the array lives.
  static Array from_external(const Shape& shape, DType dtype, const void* data,
                             std::shared_ptr<const void> owner);
  // Uninitialized evaluated storage of the given kind (for caches written in place).
  static Array empty(const Shape& shape, DType dtype, MemoryKind kind = MemoryKind::kScratch);

  bool valid() const { return desc_ != nullptr; }
  const Shape& shape() const;
  int64_t dim(int axis) const;  // negative counts from the end
  int ndim() const { return static_cast<int>(shape().size()); }
  int64_t numel() const;
  DType dtype() const;
  size_t n_bytes() const;
  bool is_evaluated() const;

  // Data of an evaluated array (evaluates it first if needed, waiting for async work).
  const void* raw() const;
  void* raw_mutable();
  template <class T>
  const T* data() const {
    return static_cast<const T*>(raw());
  }
  template <class T>
  T* mutable_data() {
    return static_cast<T*>(raw_mutable());
  }
  // Copies the (evaluated) values out as floats, converting f16/bf16/quantized.
  std::vector<float> to_floats() const;
  std::vector<int32_t> to_ints() const;
  float item() const;  // single-element arrays

  // Identity of the descriptor (two handles to the same array compare equal).
  bool same(const Array& other) const { return desc_ == other.desc_; }
  const std::shared_ptr<ArrayDesc>& desc() const { return desc_; }
  explicit Array(std::shared_ptr<ArrayDesc> desc) : desc_(std::move(desc)) {}

 private:
  std::shared_ptr<ArrayDesc> desc_;
};

// Evaluates the outputs (and everything they need), then detaches their graphs.
void eval(const std::vector<Array>& outputs);
inline void eval(const Array& a) { eval(std::vector<Array>{a}); }
// Starts evaluating on the runtime's evaluation thread and returns at once. The next eval(),
// wait() or data access joins it. Errors surface at the join.
void async_eval(const std::vector<Array>& outputs);
// Waits for all async work; rethrows its error, if any.
void wait();

// Pinning: the array (evaluated first) is accounted as `kind` and never donated or released
// while pinned. Counted: pin twice, unpin twice. Unpinning an unpinned array is an assertion.
void pin(const Array& a, MemoryKind kind);
void unpin(const Array& a);
int pin_count(const Array& a);

// Releases memory that nothing can reach: the free-buffer pool. Returns bytes returned to the OS.
size_t sweep();

struct MemoryStats {
  size_t active[static_cast<int>(MemoryKind::kCount)] = {};  // bytes in live buffers, by kind
  size_t peak[static_cast<int>(MemoryKind::kCount)] = {};
  size_t external_bytes = 0;  // bytes of live arrays over external memory (mmapped weights)
  size_t pooled = 0;          // free buffers kept for reuse
  size_t n_buffers = 0;       // live buffers
  size_t slabs = 0;  // slabs holding small weight and cache buffers (allocator.cpp), each 32 MiB
  size_t total_active() const { return active[0] + active[1] + active[2]; }
};
MemoryStats memory_stats();
void reset_peak_memory();
// Limit for one kind (0 = none). An allocation that would exceed it throws Error("memory", ...).
void set_memory_limit(MemoryKind kind, size_t bytes);
size_t memory_limit(MemoryKind kind);

}  // namespace runnel::array
