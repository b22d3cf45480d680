// The hot tier: a pool of fixed-size, 64-byte-aligned block slots carved from slabs allocated
// lazily, never past the byte budget. Slots never move, so pointers into a block stay valid while
// the block lives. Each block has a reference count (live sequences using it) and an owner tag (the
// trie slot that caches it, 0 = none); a block with neither is free. The pool does not evict; the
// PrefixCache does. Engine-thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "cache/layout.h"

namespace runnel::cache {

using BlockId = int32_t;
constexpr BlockId kNoBlock = -1;

class BlockPool {
 public:
  // capacity_bytes: the most this pool may ever allocate (slabs included, metadata excluded).
  BlockPool(const KvLayout& layout, int64_t capacity_bytes);
  ~BlockPool();
  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;

  const KvLayout& layout() const { return layout_; }
  // Most blocks the budget allows.
  int max_blocks() const { return max_blocks_; }
  // Blocks currently handed out (referenced or cached).
  int used_blocks() const { return used_blocks_; }
  // Bytes of slabs allocated so far (<= capacity).
  int64_t allocated_bytes() const { return allocated_bytes_; }
  int64_t capacity_bytes() const { return capacity_bytes_; }

  // A free block (refcount 0, no owner, contents undefined), or kNoBlock when the budget is used
  // up.
  BlockId allocate();
  // Returns a block to the free list; it must have refcount 0 and no owner.
  void free(BlockId b);

  uint8_t* data(BlockId b) { return blocks_[static_cast<size_t>(b)].data; }
  const uint8_t* data(BlockId b) const { return blocks_[static_cast<size_t>(b)].data; }
  // [block_tokens, kv_dim] K (or V) of one layer.
  uint8_t* k_ptr(BlockId b, int layer) { return data(b) + layout_.k_offset(layer); }
  uint8_t* v_ptr(BlockId b, int layer) { return data(b) + layout_.v_offset(layer); }
  uint8_t* state_ptr(BlockId b) { return data(b) + layout_.state_offset(); }

  int refcount(BlockId b) const { return meta(b).refs; }
  void ref(BlockId b) {
    if (++meta(b).refs == 1) ++referenced_blocks_;
  }
  // Blocks with refcount > 0.
  int referenced_blocks() const { return referenced_blocks_; }
  // Drops one reference; returns the new count.
  int unref(BlockId b);
  uint32_t owner(BlockId b) const { return meta(b).owner; }
  void set_owner(BlockId b, uint32_t slot_id) { meta(b).owner = slot_id; }
  bool is_allocated(BlockId b) const { return meta(b).allocated; }
  // Positions covered by the recurrent-state snapshot stored in the block (0 = none).
  int state_tokens(BlockId b) const { return meta(b).state_tokens; }
  void set_state_tokens(BlockId b, int n) { meta(b).state_tokens = n; }
  // Every block id ever created (allocated or free), for invariant checks and scans.
  int n_created() const { return static_cast<int>(blocks_.size()); }

 private:
  struct Meta {
    uint8_t* data = nullptr;
    int32_t refs = 0;
    uint32_t owner = 0;
    int32_t state_tokens = 0;
    bool allocated = false;
  };
  Meta& meta(BlockId b);
  const Meta& meta(BlockId b) const;
  bool grow();

  KvLayout layout_;
  size_t slot_bytes_;
  int64_t capacity_bytes_;
  int max_blocks_;
  int used_blocks_ = 0;
  int referenced_blocks_ = 0;
  int64_t allocated_bytes_ = 0;
  std::vector<Meta> blocks_;
  std::vector<BlockId> free_;
  std::vector<void*> slabs_;
};

}  // namespace runnel::cache
