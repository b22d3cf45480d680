// Runtime internals shared by the array layer's translation units (not for other layers):
// descriptors, buffers, primitives and the allocator.
#pragma once

#include <atomic>
#include <memory>
#include <vector>

#include "array/array.h"
#include "base/function_ref.h"

namespace runnel::array {

// A block of memory: owned (from the allocator, accounted) or external (kept alive by `owner`).
class Buffer {
 public:
  Buffer(size_t n_bytes, MemoryKind kind);  // allocates; may throw Error("memory", ...)
  Buffer(const void* external, size_t n_bytes, std::shared_ptr<const void> owner);
  ~Buffer();
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  void* data() const { return data_; }
  size_t n_bytes() const { return n_bytes_; }
  // Pins move the buffer's bytes from scratch to the pinned kind and back.
  void add_pin(MemoryKind kind);
  void remove_pin();
  int pins() const { return pins_; }

 private:
  void* data_ = nullptr;
  size_t n_bytes_ = 0;
  size_t capacity_ = 0;  // bytes taken from the allocator (0 for external)
  MemoryKind kind_ = MemoryKind::kScratch;
  bool in_slab_ = false;  // carved from a weight or cache slab (allocator.cpp)
  int pins_ = 0;
  std::shared_ptr<const void> owner_;
};

// One operation of the graph: its name, and how to compute its output on the CPU.
class Primitive {
 public:
  virtual ~Primitive() = default;
  virtual const char* name() const = 0;
  // `out` has its buffer allocated (unless is_view()); inputs are evaluated.
  virtual void eval_cpu(const std::vector<Array>& inputs, ArrayDesc& out) = 0;
  // A view shares input 0's buffer instead of getting its own (reshape, in-place cache writes).
  virtual bool is_view() const { return false; }
};

struct ArrayDesc {
  Shape shape;
  DType dtype = DType::kF32;
  std::shared_ptr<Primitive> prim;  // null for leaves and after evaluation
  std::vector<Array> inputs;        // cleared after evaluation (detaching the graph)
  std::shared_ptr<Buffer> buffer;   // set once evaluated
  size_t offset = 0;                // byte offset into buffer
  std::atomic<bool> evaluated{false};
  uint64_t visit = 0;  // the last eval_now that reached this node (eval.cpp)
  int pins = 0;
  MemoryKind pin_kind = MemoryKind::kScratch;

  void* data() const { return static_cast<char*>(buffer->data()) + offset; }
  int64_t numel() const { return shape_numel(shape); }
  size_t n_bytes() const;
};

// Makes an unevaluated array computed by `prim` from `inputs`.
Array make_array(Shape shape, DType dtype, std::shared_ptr<Primitive> prim,
                 std::vector<Array> inputs);

// Runs fn(begin, end) over rows [0, n_rows) of row_len values each: split over the thread pool
// when they hold 32 Ki values or more (a prompt's rows), else on the calling thread (a decode
// step's). Defined in ops_basic.cpp.
void for_rows(size_t n_rows, size_t row_len, FunctionRef<void(size_t begin, size_t end)> fn);

// Allocator and accounting (allocator.cpp).
// *in_slab: the bytes came from a slab (small weight and cache buffers, allocator.cpp), which
// free_bytes must be told.
void* allocate_bytes(size_t n_bytes, MemoryKind kind, size_t* capacity, bool* in_slab);
void free_bytes(void* p, size_t capacity, MemoryKind kind, bool in_slab);
void move_accounting(size_t capacity, MemoryKind from, MemoryKind to);
void account_external(ptrdiff_t delta);

}  // namespace runnel::array
