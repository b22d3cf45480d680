// BlockPool: slabs of up to kSlabBytes, each an aligned allocation holding whole block slots; the
// last slab is trimmed so the total never exceeds the budget.
#include "cache/block_pool.h"

#include <algorithm>
#include <cstdlib>
#include <new>

#include "base/assert.h"
#include "base/error.h"
#include "base/mmap.h"

namespace runnel::cache {
namespace {
constexpr size_t kSlabBytes = size_t{64}
                              << 20;  // big enough to amortize, small enough to stay lazy
}

BlockPool::BlockPool(const KvLayout& layout, int64_t capacity_bytes)
    : layout_(layout), slot_bytes_(layout.slot_bytes()), capacity_bytes_(capacity_bytes) {
  validate_layout(layout);
  check(capacity_bytes >= 0, "cache", "KV cache memory must not be negative");
  int64_t n = capacity_bytes / static_cast<int64_t>(slot_bytes_);
  max_blocks_ = static_cast<int>(std::min<int64_t>(n, 1 << 30));
}

BlockPool::~BlockPool() {
  for (void* s : slabs_) std::free(s);
}

BlockPool::Meta& BlockPool::meta(BlockId b) {
  RUNNEL_ASSERT(b >= 0 && static_cast<size_t>(b) < blocks_.size());
  return blocks_[static_cast<size_t>(b)];
}
const BlockPool::Meta& BlockPool::meta(BlockId b) const {
  RUNNEL_ASSERT(b >= 0 && static_cast<size_t>(b) < blocks_.size());
  return blocks_[static_cast<size_t>(b)];
}

bool BlockPool::grow() {
  int created = static_cast<int>(blocks_.size());
  if (created >= max_blocks_) return false;
  size_t per_slab = std::max<size_t>(1, kSlabBytes / slot_bytes_);
  size_t n = std::min<size_t>(per_slab, static_cast<size_t>(max_blocks_ - created));
  size_t bytes = n * slot_bytes_;
  // On huge pages: a decode step reads each KV head's rows in pieces of a few hundred bytes,
  // spread over every block of the context; on 4 KiB pages nearly each piece cost a TLB miss.
  void* slab = alloc_maybe_huge(bytes);
  if (slab == nullptr)
    fail("cache", "out of host memory allocating ", bytes, " bytes of KV blocks");
  slabs_.push_back(slab);
  allocated_bytes_ += static_cast<int64_t>(bytes);
  // Push in reverse so blocks are handed out in address order.
  for (size_t i = 0; i < n; ++i) {
    Meta m;
    m.data = static_cast<uint8_t*>(slab) + i * slot_bytes_;
    blocks_.push_back(m);
  }
  for (size_t i = n; i-- > 0;) free_.push_back(static_cast<BlockId>(created + static_cast<int>(i)));
  return true;
}

BlockId BlockPool::allocate() {
  if (free_.empty() && !grow()) return kNoBlock;
  BlockId b = free_.back();
  free_.pop_back();
  Meta& m = meta(b);
  RUNNEL_ASSERT(!m.allocated && m.refs == 0 && m.owner == 0);
  m.allocated = true;
  m.state_tokens = 0;
  ++used_blocks_;
  return b;
}

void BlockPool::free(BlockId b) {
  Meta& m = meta(b);
  RUNNEL_ASSERT(m.allocated && m.refs == 0 && m.owner == 0);
  m.allocated = false;
  --used_blocks_;
  free_.push_back(b);
}

int BlockPool::unref(BlockId b) {
  Meta& m = meta(b);
  RUNNEL_ASSERT(m.refs > 0);
  if (--m.refs == 0) --referenced_blocks_;
  return m.refs;
}

}  // namespace runnel::cache
