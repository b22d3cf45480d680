// PrefixTrie: compressed edges of whole blocks; split on divergence, extend leaf runs in place.
#include "cache/prefix_trie.h"

#include <algorithm>

#include "base/assert.h"

namespace runnel::cache {
namespace {

int common_prefix(const int32_t* a, const int32_t* b, int n) {
  int i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

}  // namespace

PrefixTrie::PrefixTrie(int block_tokens) : block_tokens_(block_tokens) {}
PrefixTrie::~PrefixTrie() = default;

TrieSlot* PrefixTrie::slot(uint32_t id) const {
  auto it = slots_.find(id);
  return it == slots_.end() ? nullptr : it->second.get();
}

std::span<const int32_t> PrefixTrie::tokens_of(const TrieSlot* s) const {
  return {s->node->tokens.data() + static_cast<size_t>(s->index) * block_tokens_,
          static_cast<size_t>(s->n_filled)};
}

PrefixTrie::Next PrefixTrie::next(TriePos pos, std::span<const int32_t> tokens) const {
  const int want = static_cast<int>(std::min<size_t>(tokens.size(), block_tokens_));
  Next best;
  auto consider = [&](TrieSlot* s) {
    std::span<const int32_t> t = tokens_of(s);
    int lcp = common_prefix(t.data(), tokens.data(), std::min<int>(want, s->n_filled));
    if (lcp > best.lcp) best = {s, lcp};
  };
  const TrieNode* node = pos.node;
  if (pos.j < static_cast<int>(node->slots.size())) {
    consider(node->slots[static_cast<size_t>(pos.j)]);
  } else {
    for (const auto& c : node->children) consider(c->slots.front());
  }
  return best;
}

void PrefixTrie::split(TrieNode* node, int j) {
  RUNNEL_ASSERT(j > 0 && j < static_cast<int>(node->slots.size()));
  auto child = std::make_unique<TrieNode>();
  child->parent = node;
  child->depth_blocks = node->depth_blocks + j;
  const size_t cut = static_cast<size_t>(j) * block_tokens_;
  child->tokens.assign(node->tokens.begin() + static_cast<std::ptrdiff_t>(cut), node->tokens.end());
  child->slots.assign(node->slots.begin() + j, node->slots.end());
  for (size_t i = 0; i < child->slots.size(); ++i) {
    child->slots[i]->node = child.get();
    child->slots[i]->index = static_cast<int>(i);
  }
  child->children = std::move(node->children);
  for (auto& c : child->children) c->parent = child.get();
  node->children.clear();
  node->tokens.resize(cut);
  node->slots.resize(static_cast<size_t>(j));
  node->children.push_back(std::move(child));
}

TrieSlot* PrefixTrie::add(TriePos pos, std::span<const int32_t> tokens, uint64_t key) {
  const int n = static_cast<int>(tokens.size());
  RUNNEL_ASSERT(n >= 1 && n <= block_tokens_);
  TrieNode* node = pos.node;
  if (pos.j < static_cast<int>(node->slots.size())) split(node, pos.j);
  RUNNEL_ASSERT(pos.j == static_cast<int>(node->slots.size()));
  RUNNEL_ASSERT(node->slots.empty() || node->slots.back()->n_filled == block_tokens_);
  auto owned = std::make_unique<TrieSlot>();
  TrieSlot* s = owned.get();
  s->id = next_id_++;
  if (next_id_ == 0) next_id_ = 1;  // 0 means "no slot" in the pool
  s->key = key;
  s->n_filled = n;
  slots_.emplace(s->id, std::move(owned));
  if (node != &root_ && node->children.empty()) {
    s->node = node;
    s->index = static_cast<int>(node->slots.size());
    node->slots.push_back(s);
    node->tokens.insert(node->tokens.end(), tokens.begin(), tokens.end());
    return s;
  }
  auto child = std::make_unique<TrieNode>();
  child->parent = node;
  child->depth_blocks = node->depth_blocks + static_cast<int>(node->slots.size());
  child->tokens.assign(tokens.begin(), tokens.end());
  child->slots.push_back(s);
  s->node = child.get();
  s->index = 0;
  node->children.push_back(std::move(child));
  return s;
}

void PrefixTrie::remove_subtree(TrieSlot* s, FunctionRef<void(TrieSlot&)> on_remove) {
  TrieNode* node = s->node;
  const size_t from = static_cast<size_t>(s->index);
  std::vector<uint32_t> dead;
  std::vector<TrieNode*> stack;
  for (size_t i = from; i < node->slots.size(); ++i) dead.push_back(node->slots[i]->id);
  for (auto& c : node->children) stack.push_back(c.get());
  while (!stack.empty()) {
    TrieNode* n = stack.back();
    stack.pop_back();
    for (TrieSlot* x : n->slots) dead.push_back(x->id);
    for (auto& c : n->children) stack.push_back(c.get());
  }
  for (uint32_t id : dead) on_remove(*slots_.at(id));
  if (from == 0 && node != &root_) {
    TrieNode* parent = node->parent;
    auto it = std::find_if(parent->children.begin(), parent->children.end(),
                           [&](const auto& c) { return c.get() == node; });
    RUNNEL_ASSERT(it != parent->children.end());
    parent->children.erase(it);
  } else {
    node->slots.resize(from);
    node->tokens.resize(from * static_cast<size_t>(block_tokens_));
    node->children.clear();
  }
  for (uint32_t id : dead) slots_.erase(id);
}

void PrefixTrie::for_each(FunctionRef<void(TrieSlot&, int64_t)> fn) {
  // Iterative post-order: a node's subtree size is known once all its children are done.
  struct Frame {
    TrieNode* node;
    size_t next_child;
    int64_t below;  // blocks in finished children
  };
  std::vector<Frame> stack{{&root_, 0, 0}};
  while (!stack.empty()) {
    Frame& f = stack.back();
    if (f.next_child < f.node->children.size()) {
      TrieNode* c = f.node->children[f.next_child++].get();
      stack.push_back({c, 0, 0});
      continue;
    }
    const int64_t n = static_cast<int64_t>(f.node->slots.size());
    for (int64_t i = 0; i < n; ++i) fn(*f.node->slots[static_cast<size_t>(i)], n - i + f.below);
    const int64_t total = n + f.below;
    stack.pop_back();
    if (!stack.empty()) stack.back().below += total;
  }
}

std::vector<TrieSlot*> PrefixTrie::path_to(TrieSlot* s) const {
  std::vector<TrieSlot*> out;
  TrieNode* node = s->node;
  int upto = s->index;
  while (node != nullptr) {
    for (int i = upto; i >= 0; --i) out.push_back(node->slots[static_cast<size_t>(i)]);
    TrieNode* p = node->parent;
    if (p != nullptr) upto = static_cast<int>(p->slots.size()) - 1;
    node = p;
  }
  std::reverse(out.begin(), out.end());
  return out;
}

}  // namespace runnel::cache
