// Sequence: the block table of one live request and its per-layer pointer lists. The work that
// touches the pool or the trie is done by PrefixCache (prefix_cache.cpp).
#include <algorithm>
#include <cstring>

#include "base/assert.h"
#include "base/error.h"
#include "cache/prefix_cache.h"

namespace runnel::cache {

Sequence::~Sequence() { release(); }

Sequence::Sequence(Sequence&& other) noexcept { *this = std::move(other); }

Sequence& Sequence::operator=(Sequence&& other) noexcept {
  if (this == &other) return *this;
  release();
  cache_ = other.cache_;
  tokens_ = std::move(other.tokens_);
  blocks_ = std::move(other.blocks_);
  k_ptrs_ = std::move(other.k_ptrs_);
  v_ptrs_ = std::move(other.v_ptrs_);
  ptr_stride_ = other.ptr_stride_;
  n_cached_ = other.n_cached_;
  n_committed_blocks_ = other.n_committed_blocks_;
  if (cache_ != nullptr) {
    cache_->live_.erase(&other);
    cache_->live_.insert(this);
  }
  other.cache_ = nullptr;
  other.tokens_.clear();
  other.blocks_.clear();
  other.k_ptrs_.clear();
  other.v_ptrs_.clear();
  other.ptr_stride_ = 0;
  other.n_cached_ = 0;
  other.n_committed_blocks_ = 0;
  return *this;
}

void Sequence::refresh_ptrs(size_t from) {
  const KvLayout& l = cache_->layout_;
  const size_t n_layers = static_cast<size_t>(l.n_layers);
  if (blocks_.size() > ptr_stride_) {
    ptr_stride_ = std::max<size_t>(blocks_.size(), ptr_stride_ * 2);
    k_ptrs_.assign(n_layers * ptr_stride_, nullptr);
    v_ptrs_.assign(n_layers * ptr_stride_, nullptr);
    from = 0;
  }
  BlockPool& pool = cache_->pool_;
  for (size_t layer = 0; layer < n_layers; ++layer) {
    for (size_t i = from; i < blocks_.size(); ++i) {
      k_ptrs_[layer * ptr_stride_ + i] = pool.k_ptr(blocks_[i], static_cast<int>(layer));
      v_ptrs_[layer * ptr_stride_ + i] = pool.v_ptr(blocks_[i], static_cast<int>(layer));
    }
  }
}

const void* const* Sequence::k_blocks(int layer) const {
  RUNNEL_ASSERT(active() && layer >= 0 && layer < cache_->layout_.n_layers);
  return k_ptrs_.data() + static_cast<size_t>(layer) * ptr_stride_;
}

const void* const* Sequence::v_blocks(int layer) const {
  RUNNEL_ASSERT(active() && layer >= 0 && layer < cache_->layout_.n_layers);
  return v_ptrs_.data() + static_cast<size_t>(layer) * ptr_stride_;
}

const void* Sequence::k_row(int layer, int pos) const {
  RUNNEL_ASSERT(pos >= 0 && pos < n_tokens());
  const KvLayout& l = cache_->layout_;
  return static_cast<const uint8_t*>(k_blocks(layer)[pos / l.block_tokens]) +
         static_cast<size_t>(pos % l.block_tokens) * l.row_bytes();
}

const void* Sequence::v_row(int layer, int pos) const {
  RUNNEL_ASSERT(pos >= 0 && pos < n_tokens());
  const KvLayout& l = cache_->layout_;
  return static_cast<const uint8_t*>(v_blocks(layer)[pos / l.block_tokens]) +
         static_cast<size_t>(pos % l.block_tokens) * l.row_bytes();
}

void* Sequence::k_row_mut(int layer, int pos) {
  RUNNEL_ASSERT(pos >= 0 && pos < n_tokens());
  BlockId b = blocks_[static_cast<size_t>(pos / cache_->layout_.block_tokens)];
  RUNNEL_ASSERT_MSG(cache_->pool_.owner(b) == 0 && cache_->pool_.refcount(b) == 1,
                    "writing a shared KV block");
  return const_cast<void*>(k_row(layer, pos));
}

void* Sequence::v_row_mut(int layer, int pos) {
  RUNNEL_ASSERT(pos >= 0 && pos < n_tokens());
  BlockId b = blocks_[static_cast<size_t>(pos / cache_->layout_.block_tokens)];
  RUNNEL_ASSERT_MSG(cache_->pool_.owner(b) == 0 && cache_->pool_.refcount(b) == 1,
                    "writing a shared KV block");
  return const_cast<void*>(v_row(layer, pos));
}

void Sequence::read_kv(int layer, int begin, int end, void* k_out, void* v_out) const {
  RUNNEL_ASSERT(active() && begin >= 0 && begin <= end && end <= n_tokens());
  const KvLayout& l = cache_->layout_;
  const size_t row = l.row_bytes();
  uint8_t* k = static_cast<uint8_t*>(k_out);
  uint8_t* v = static_cast<uint8_t*>(v_out);
  for (int p = begin; p < end;) {  // one memcpy per block-contiguous run
    const int n = std::min(end - p, l.block_tokens - p % l.block_tokens);
    std::memcpy(k, k_row(layer, p), row * static_cast<size_t>(n));
    std::memcpy(v, v_row(layer, p), row * static_cast<size_t>(n));
    k += row * static_cast<size_t>(n);
    v += row * static_cast<size_t>(n);
    p += n;
  }
}

void Sequence::write_kv(int layer, int begin, int n_rows, const void* k_in, const void* v_in) {
  RUNNEL_ASSERT(active() && begin >= 0 && n_rows >= 0 && begin + n_rows <= n_tokens());
  const KvLayout& l = cache_->layout_;
  const size_t row = l.row_bytes();
  const uint8_t* k = static_cast<const uint8_t*>(k_in);
  const uint8_t* v = static_cast<const uint8_t*>(v_in);
  for (int p = begin; p < begin + n_rows;) {
    const int n = std::min(begin + n_rows - p, l.block_tokens - p % l.block_tokens);
    std::memcpy(k_row_mut(layer, p), k, row * static_cast<size_t>(n));
    std::memcpy(v_row_mut(layer, p), v, row * static_cast<size_t>(n));
    k += row * static_cast<size_t>(n);
    v += row * static_cast<size_t>(n);
    p += n;
  }
}

void Sequence::append(std::span<const int32_t> tokens) {
  RUNNEL_ASSERT(active());
  cache_->seq_append(*this, tokens);
}

void Sequence::truncate(int n) {
  RUNNEL_ASSERT(active() && n >= 0 && n <= n_tokens());
  const int bt = cache_->layout_.block_tokens;
  const size_t keep = static_cast<size_t>((n + bt - 1) / bt);
  for (size_t i = keep; i < blocks_.size(); ++i) cache_->unref_block(blocks_[i]);
  blocks_.resize(keep);
  tokens_.resize(static_cast<size_t>(n));
  // A private last block's snapshot past the new end no longer describes this sequence.
  if (!blocks_.empty() && cache_->pool_.owner(blocks_.back()) == 0 &&
      cache_->pool_.state_tokens(blocks_.back()) > n - static_cast<int>(keep - 1) * bt)
    cache_->pool_.set_state_tokens(blocks_.back(), 0);
  n_committed_blocks_ = std::min(n_committed_blocks_, n / bt);
  n_cached_ = std::min(n_cached_, n);
}

void Sequence::commit(bool include_partial) {
  RUNNEL_ASSERT(active());
  cache_->seq_commit(*this, include_partial);
}

void Sequence::release() {
  if (cache_ != nullptr) cache_->seq_release(*this);
}

const void* Sequence::resume_state() const {
  if (!active() || n_cached_ == 0 || cache_->layout_.state_bytes == 0) return nullptr;
  const int bt = cache_->layout_.block_tokens;
  const int i = (n_cached_ - 1) / bt;
  BlockId b = blocks_[static_cast<size_t>(i)];
  if (cache_->pool_.state_tokens(b) != n_cached_ - i * bt) return nullptr;
  return cache_->pool_.state_ptr(b);
}

void Sequence::save_state(const void* state) {
  RUNNEL_ASSERT(active());
  check(cache_->layout_.state_bytes > 0, "cache", "save_state: this KV layout has no state bytes");
  check(n_tokens() > 0, "cache", "save_state: the sequence is empty");
  // The snapshot is a function of the prefix alone, so adding it to a block shared through the
  // trie is safe: the K/V rows are untouched and state_tokens says which position it belongs to.
  BlockId b = blocks_.back();
  const int fill = n_tokens() - (n_blocks() - 1) * cache_->layout_.block_tokens;
  std::memcpy(cache_->pool_.state_ptr(b), state, cache_->layout_.state_bytes);
  cache_->pool_.set_state_tokens(b, fill);
  if (TrieSlot* s = cache_->trie_.slot(cache_->pool_.owner(b))) s->state_tokens = fill;
}

}  // namespace runnel::cache
