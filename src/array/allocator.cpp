// Buffers come from a pool of free blocks bucketed by rounded size, so a decode loop that
// allocates the same shapes every step reuses memory instead of calling malloc. Bytes are
// accounted by kind; sweep() returns pooled blocks to the OS.

#include <algorithm>
#include <atomic>
#include <cstdint>
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

// Weight and cache buffers under kSlabPiece bytes are carved one after another from slabs of
// kSlabBytes on transparent huge pages (base/mmap.h gives only buffers of 4 MiB and up their own
// huge pages), each kind from its own slabs. Decode streams every weight matrix once per token: a
// model of small matrices (Qwen3-0.6B's are 0.6-1.8 MB) read them on 4 KiB pages, a TLB miss
// every 4 KiB and a hardware-prefetch stream cut at every page (qwen06b decode, ab.sh 8 rounds on
// a noisy host: Q4_0 62 -> 75 tok/s, Q4_K_M 68 -> 75; a 5-round run saw no gain). Matrices land in
// load order, layer by layer, as decode reads them. A contiguous KvCache's per-layer K and V
// arrays (1-4 MB for Qwen3-0.6B at 512-2048 positions) are read every step too, at more positions
// each step: on 4 KiB pages decode attention read them at about half the rate of huge pages
// (qwen06b Q4_0 `runnel bench -p 1 -n 1024`, attention 33-34% -> 28-29% of the step, 50-54 -> 58
// tok/s; session 19). The prefix cache's block pool (cache/block_pool.cpp) was already on huge
// pages. A slab is freed when its last piece is; space freed before that is not reused (weights
// live as long as their model, a KvCache's arrays as long as it).
constexpr size_t kSlabBytes = size_t{32} << 20, kSlabPiece = size_t{4} << 20;

struct Slab {
  size_t used = 0;  // bytes handed out, from the start
  size_t live = 0;  // bytes handed out and not yet freed
};

struct State {
  std::mutex mu;
  std::map<size_t, std::vector<void*>> pool;  // capacity -> free blocks
  std::map<uintptr_t, Slab> slabs;            // by base address
  uintptr_t open_slab[kKinds] = {};           // per kind: where its next piece goes (0: none yet)
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

void* slab_alloc_locked(State& s, size_t cap, MemoryKind kind) {
  uintptr_t& open_slab = s.open_slab[static_cast<int>(kind)];
  auto it = s.slabs.find(open_slab);
  if (it == s.slabs.end() || it->second.used + cap > kSlabBytes) {
    void* base = new_buffer(kSlabBytes);
    if (base == nullptr) {
      release_pool_locked(s);
      base = new_buffer(kSlabBytes);
    }
    if (base == nullptr) {
      fail("memory", "out of memory allocating ", format_bytes(static_cast<double>(kSlabBytes)),
           " for ", memory_kind_name(kind));
    }
    open_slab = reinterpret_cast<uintptr_t>(base);
    it = s.slabs.emplace(open_slab, Slab{}).first;
  }
  void* p = reinterpret_cast<uint8_t*>(it->first) + it->second.used;
  it->second.used += cap;
  it->second.live += cap;
  return p;
}

void slab_free_locked(State& s, void* p, size_t cap) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  auto it = s.slabs.upper_bound(a);
  RUNNEL_ASSERT(it != s.slabs.begin());
  --it;
  RUNNEL_ASSERT(a < it->first + kSlabBytes && it->second.live >= cap);
  it->second.live -= cap;
  if (it->second.live != 0) return;
  for (uintptr_t& open : s.open_slab)
    if (open == it->first) open = 0;
  std::free(reinterpret_cast<void*>(it->first));
  s.slabs.erase(it);
}

}  // namespace

void* allocate_bytes(size_t n_bytes, MemoryKind kind, size_t* capacity, bool* in_slab) {
  State& s = state();
  const int k = static_cast<int>(kind);
  *in_slab = (kind == MemoryKind::kWeights || kind == MemoryKind::kCache) && n_bytes < kSlabPiece;
  size_t cap = *in_slab ? (std::max<size_t>(n_bytes, 1) + kAlign - 1) / kAlign * kAlign
                        : round_capacity(n_bytes == 0 ? 1 : n_bytes);
  std::lock_guard lock(s.mu);
  if (s.limit[k] != 0 && s.active[k] + cap > s.limit[k]) {
    fail("memory", "allocating ", format_bytes(static_cast<double>(cap)), " of ",
         memory_kind_name(kind), " memory would exceed its limit of ",
         format_bytes(static_cast<double>(s.limit[k])), " (",
         format_bytes(static_cast<double>(s.active[k])), " in use)");
  }
  void* p = nullptr;
  auto it = s.pool.find(cap);
  if (*in_slab) {
    p = slab_alloc_locked(s, cap, kind);
  } else if (it != s.pool.end() && !it->second.empty()) {
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

void free_bytes(void* p, size_t capacity, MemoryKind kind, bool in_slab) {
  State& s = state();
  std::lock_guard lock(s.mu);
  const int k = static_cast<int>(kind);
  RUNNEL_ASSERT(s.active[k] >= capacity);
  s.active[k] -= capacity;
  --s.n_buffers;
  if (in_slab) {
    slab_free_locked(s, p, capacity);
    return;
  }
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
  m.slabs = s.slabs.size();
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
  data_ = allocate_bytes(n_bytes, kind, &capacity_, &in_slab_);
}

Buffer::Buffer(const void* external, size_t n_bytes, std::shared_ptr<const void> owner)
    : data_(const_cast<void*>(external)), n_bytes_(n_bytes), owner_(std::move(owner)) {
  account_external(static_cast<ptrdiff_t>(n_bytes));
}

Buffer::~Buffer() {
  if (capacity_ != 0) {
    free_bytes(data_, capacity_, kind_, in_slab_);
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
