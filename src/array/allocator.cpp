// Buffers come from a pool of free blocks bucketed by rounded size, so a decode loop that
// allocates the same shapes every step reuses memory instead of calling malloc. Bytes are
// accounted by kind; sweep() returns pooled blocks to the OS.

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <vector>

#include "array/internal.h"
#include "base/assert.h"
#include "base/error.h"
#include "base/mmap.h"

namespace runnel::array {
namespace {

constexpr size_t kAlign = 64;
constexpr int kKinds = static_cast<int>(MemoryKind::kCount);

struct State {
  std::mutex mu;
  std::map<size_t, std::vector<void*>> pool;  // capacity -> free blocks
  size_t pooled = 0;
  size_t active[kKinds] = {};
  size_t peak[kKinds] = {};
  size_t limit[kKinds] = {};
  size_t n_buffers = 0;
  std::atomic<ptrdiff_t> external{0};
};

State& state() {
  static State* s = new State();  // never destroyed: buffers may outlive static destruction
  return *s;
}

// Sizes round up to 1/8 of their power of two, so reuse finds a block without wasting > 12.5%.
size_t round_capacity(size_t n) {
  if (n <= 256) return (n + kAlign - 1) / kAlign * kAlign;
  size_t p = 1;
  while (p < n) p <<= 1;
  size_t step = p / 8;
  return (n + step - 1) / step * step;
}

size_t release_pool_locked(State& s) {
  size_t freed = 0;
  for (auto& [cap, blocks] : s.pool) {
    for (void* b : blocks) {
      std::free(b);
      freed += cap;
    }
  }
  s.pool.clear();
  s.pooled = 0;
  return freed;
}

// Large buffers (weights, prefill activations, KvCache arrays of 4 MiB and up) on 2 MiB
// transparent huge pages where the kernel allows it (base/mmap.h): streaming a weight matrix then
// crosses a page every 2 MiB instead of every 4 KiB. The prefix cache's block pool and the memory
// bandwidth probe (kernels/cpu/membw.cpp) do the same.
void* new_buffer(size_t cap) { return alloc_maybe_huge(cap); }

}  // namespace

void* allocate_bytes(size_t n_bytes, MemoryKind kind, size_t* capacity) {
  State& s = state();
  const int k = static_cast<int>(kind);
  size_t cap = round_capacity(n_bytes == 0 ? 1 : n_bytes);
  std::lock_guard lock(s.mu);
  if (s.limit[k] != 0 && s.active[k] + cap > s.limit[k]) {
    fail("memory", "allocating ", format_bytes(static_cast<double>(cap)), " of ",
         memory_kind_name(kind), " memory would exceed its limit of ",
         format_bytes(static_cast<double>(s.limit[k])), " (",
         format_bytes(static_cast<double>(s.active[k])), " in use)");
  }
  void* p = nullptr;
  auto it = s.pool.find(cap);
  if (it != s.pool.end() && !it->second.empty()) {
    p = it->second.back();
    it->second.pop_back();
    s.pooled -= cap;
  } else {
    p = new_buffer(cap);
    if (p == nullptr) {
      release_pool_locked(s);
      p = new_buffer(cap);
    }
    if (p == nullptr) {
      fail("memory", "out of memory allocating ", format_bytes(static_cast<double>(cap)));
    }
  }
  s.active[k] += cap;
  if (s.active[k] > s.peak[k]) s.peak[k] = s.active[k];
  ++s.n_buffers;
  *capacity = cap;
  return p;
}

void free_bytes(void* p, size_t capacity, MemoryKind kind) {
  State& s = state();
  std::lock_guard lock(s.mu);
  const int k = static_cast<int>(kind);
  RUNNEL_ASSERT(s.active[k] >= capacity);
  s.active[k] -= capacity;
  --s.n_buffers;
  s.pool[capacity].push_back(p);
  s.pooled += capacity;
}

void move_accounting(size_t capacity, MemoryKind from, MemoryKind to) {
  if (from == to || capacity == 0) return;
  State& s = state();
  std::lock_guard lock(s.mu);
  const int f = static_cast<int>(from), t = static_cast<int>(to);
  RUNNEL_ASSERT(s.active[f] >= capacity);
  s.active[f] -= capacity;
  s.active[t] += capacity;
  if (s.active[t] > s.peak[t]) s.peak[t] = s.active[t];
}

void account_external(ptrdiff_t delta) { state().external.fetch_add(delta); }

size_t sweep() {
  State& s = state();
  std::lock_guard lock(s.mu);
  return release_pool_locked(s);
}

MemoryStats memory_stats() {
  State& s = state();
  std::lock_guard lock(s.mu);
  MemoryStats m;
  for (int k = 0; k < kKinds; ++k) {
    m.active[k] = s.active[k];
    m.peak[k] = s.peak[k];
  }
  m.external_bytes = static_cast<size_t>(s.external.load());
  m.pooled = s.pooled;
  m.n_buffers = s.n_buffers;
  return m;
}

void reset_peak_memory() {
  State& s = state();
  std::lock_guard lock(s.mu);
  for (int k = 0; k < kKinds; ++k) s.peak[k] = s.active[k];
}

void set_memory_limit(MemoryKind kind, size_t bytes) {
  State& s = state();
  std::lock_guard lock(s.mu);
  s.limit[static_cast<int>(kind)] = bytes;
}

size_t memory_limit(MemoryKind kind) {
  State& s = state();
  std::lock_guard lock(s.mu);
  return s.limit[static_cast<int>(kind)];
}

const char* memory_kind_name(MemoryKind kind) {
  switch (kind) {
    case MemoryKind::kScratch:
      return "scratch";
    case MemoryKind::kWeights:
      return "weights";
    case MemoryKind::kCache:
      return "cache";
    case MemoryKind::kCount:
      break;
  }
  return "?";
}

// Buffer ---------------------------------------------------------------------------------------

Buffer::Buffer(size_t n_bytes, MemoryKind kind) : n_bytes_(n_bytes), kind_(kind) {
  data_ = allocate_bytes(n_bytes, kind, &capacity_);
}

Buffer::Buffer(const void* external, size_t n_bytes, std::shared_ptr<const void> owner)
    : data_(const_cast<void*>(external)), n_bytes_(n_bytes), owner_(std::move(owner)) {
  account_external(static_cast<ptrdiff_t>(n_bytes));
}

Buffer::~Buffer() {
  if (capacity_ != 0) {
    free_bytes(data_, capacity_, kind_);
  } else {
    account_external(-static_cast<ptrdiff_t>(n_bytes_));
  }
}

void Buffer::add_pin(MemoryKind kind) {
  if (pins_++ == 0 && capacity_ != 0) {
    move_accounting(capacity_, kind_, kind);
    kind_ = kind;
  }
}

void Buffer::remove_pin() {
  RUNNEL_ASSERT_MSG(pins_ > 0, "unpin of a buffer that is not pinned");
  if (--pins_ == 0 && capacity_ != 0) {
    move_accounting(capacity_, kind_, MemoryKind::kScratch);
    kind_ = MemoryKind::kScratch;
  }
}

}  // namespace runnel::array
