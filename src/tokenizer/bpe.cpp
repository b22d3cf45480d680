// BPE merge loops; see bpe.h. Symbols form a doubly linked list inside a reused vector; heap
// entries are validated lazily when popped (a merged-away neighbour makes them stale).
#include "tokenizer/bpe.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>

#include "tokenizer/unicode.h"

namespace runnel::tokenizer {

uint32_t IdMap::hash(std::string_view s) {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ s.size();
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    h = (h ^ w) * 0xff51afd7ed558ccdull;
    h ^= h >> 32;
  }
  uint64_t w = 0;
  std::memcpy(&w, s.data() + i, s.size() - i);
  h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 29;
  return static_cast<uint32_t>(h);
}

void IdMap::reset(const std::vector<std::string>* keys, size_t expected) {
  keys_ = keys;
  size_t cap = 16;
  while (cap < expected * 2) cap <<= 1;
  slots_.assign(cap, Slot{});
  mask_ = cap - 1;
  n_ = 0;
}

void IdMap::insert(int32_t id) {
  if ((n_ + 1) * 2 > slots_.size()) {
    std::vector<Slot> old = std::move(slots_);
    size_t cap = std::max<size_t>(16, old.size() * 2);
    slots_.assign(cap, Slot{});
    mask_ = cap - 1;
    for (const Slot& o : old) {
      if (o.id < 0) continue;
      size_t i = o.hash & mask_;
      while (slots_[i].id >= 0) i = (i + 1) & mask_;
      slots_[i] = o;
    }
  }
  const std::string& key = (*keys_)[static_cast<size_t>(id)];
  const uint32_t h = hash(key);
  for (size_t i = h & mask_;; i = (i + 1) & mask_) {
    Slot& sl = slots_[i];
    if (sl.id < 0) {
      sl = Slot{h, id};
      ++n_;
      return;
    }
    if (sl.hash == h && (*keys_)[static_cast<size_t>(sl.id)] == key) return;
  }
}

void PairMap::reserve(size_t n) {
  size_t cap = 16;
  while (cap < n * 2) cap <<= 1;
  slots_.assign(cap, Slot{});
  mask_ = cap - 1;
  n_ = 0;
}

void PairMap::insert(int32_t a, int32_t b, int32_t rank, int32_t merged) {
  if ((n_ + 1) * 2 > slots_.size()) {
    std::vector<Slot> old = std::move(slots_);
    reserve(std::max<size_t>(16, n_ * 2 + 2));
    for (const Slot& s : old)
      if (s.key != kEmpty)
        insert(static_cast<int32_t>(s.key >> 32), static_cast<int32_t>(s.key & 0xffffffffu), s.rank,
               s.merged);
  }
  const uint64_t key = pair_key(a, b);
  for (size_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
    Slot& s = slots_[i];
    if (s.key == key) return;
    if (s.key == kEmpty) {
      s = Slot{key, rank, merged};
      ++n_;
      return;
    }
  }
}

namespace {

struct Symbol {
  int32_t id;
  int32_t prev, next;
  uint32_t start, len;  // bytes of the piece; len 0 = merged away
};

struct Candidate {
  float score;  // kRank: the rank; kScore: minus the score (lower pops first)
  int32_t left, right;
  int32_t merged;  // kRank: merged id; kScore: total byte length
};

struct CandidateAfter {
  bool operator()(const Candidate& a, const Candidate& b) const {
    if (a.score != b.score) return a.score > b.score;
    return a.left > b.left;
  }
};

struct Scratch {
  std::vector<Symbol> symbols;
  std::vector<Candidate> heap;
};

Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

}  // namespace

BpeModel::BpeModel() {
  static std::atomic<uint64_t> next{1};
  instance_ = next.fetch_add(1);
  for (int32_t& b : byte_ids) b = -1;
}

void BpeModel::enable_metaspace_split(const std::vector<std::string>& texts) {
  const std::string_view m = "\xE2\x96\x81";
  if (byte_level || ignore_merges) return;
  for (const std::string& t : texts) {
    for (size_t pos = t.find(m, 1); pos != std::string::npos; pos = t.find(m, pos + 1)) {
      size_t k = pos - 1;
      while (k > 0 && (static_cast<unsigned char>(t[k]) & 0xC0) == 0x80) --k;
      std::string before = t.substr(k, pos - k);
      if (before == m) continue;
      if (std::find(no_split_after.begin(), no_split_after.end(), before) == no_split_after.end())
        no_split_after.push_back(before);
      if (no_split_after.size() > 64) return;  // too many: not worth it
    }
  }
  split_before = std::string(m);
}

namespace {
// Per-thread direct-mapped cache of short pieces -> ids. Entries carry the model's instance
// number, so a cache never serves ids of another tokenizer.
struct CacheEntry {
  uint64_t owner = 0;
  uint8_t len = 0, n_ids = 0;
  char key[22];
  int32_t ids[6];
};
constexpr size_t kCacheSize = 8192;
CacheEntry* word_cache() {
  thread_local std::unique_ptr<CacheEntry[]> cache(new CacheEntry[kCacheSize]);
  return cache.get();
}
}  // namespace

void BpeModel::encode(std::string_view piece, std::vector<int32_t>& out) const {
  if (piece.empty()) return;
  if (split_before.empty()) {
    encode_cached(piece, out);
    return;
  }
  // Split before each "▁" that follows another character.
  size_t start = 0;
  for (size_t pos = piece.find(split_before, 1); pos != std::string_view::npos;
       pos = piece.find(split_before, pos + split_before.size())) {
    size_t k = pos - 1;
    while (k > start && (static_cast<unsigned char>(piece[k]) & 0xC0) == 0x80) --k;
    const std::string_view before = piece.substr(k, pos - k);
    if (before == split_before) continue;
    if (std::find(no_split_after.begin(), no_split_after.end(), before) != no_split_after.end())
      continue;
    if (pos > start) {
      encode_cached(piece.substr(start, pos - start), out);
      start = pos;
    }
  }
  encode_cached(piece.substr(start), out);
}

void BpeModel::encode_cached(std::string_view piece, std::vector<int32_t>& out) const {
  if (piece.size() > sizeof(CacheEntry::key)) {
    encode_uncached(piece, out);
    return;
  }
  CacheEntry& e = word_cache()[IdMap::hash(piece) & (kCacheSize - 1)];
  if (e.owner == instance_ && e.len == piece.size() &&
      std::memcmp(e.key, piece.data(), piece.size()) == 0) {
    out.insert(out.end(), e.ids, e.ids + e.n_ids);
    return;
  }
  const size_t before = out.size();
  encode_uncached(piece, out);
  const size_t n = out.size() - before;
  if (n <= std::size(e.ids)) {
    e.owner = instance_;
    e.len = static_cast<uint8_t>(piece.size());
    e.n_ids = static_cast<uint8_t>(n);
    std::memcpy(e.key, piece.data(), piece.size());
    std::copy(out.begin() + static_cast<ptrdiff_t>(before), out.end(), e.ids);
  }
}

void BpeModel::encode_uncached(std::string_view piece, std::vector<int32_t>& out) const {
  if (ignore_merges) {
    int32_t id = pieces.find(piece);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }
  if (kind == Kind::kRank) {
    encode_rank(piece, out);
  } else {
    encode_score(piece, out);
  }
}

void BpeModel::emit_unknown(std::string_view ch, std::vector<int32_t>& out, bool* last_unk) const {
  if (byte_fallback) {
    bool all = true;
    for (unsigned char b : ch) all = all && byte_ids[b] >= 0;
    if (all) {
      for (unsigned char b : ch) out.push_back(byte_ids[b]);
      *last_unk = false;
      return;
    }
  }
  if (unk_id < 0) return;  // nothing to stand for it: the char is dropped, as HF does
  if (fuse_unk && *last_unk) return;
  out.push_back(unk_id);
  *last_unk = true;
}

void BpeModel::encode_rank(std::string_view piece, std::vector<int32_t>& out) const {
  Scratch& sc = scratch();
  auto& syms = sc.symbols;
  syms.clear();
  // Initial symbols: bytes (byte-level) or characters (with byte fallback / unk).
  if (byte_level) {
    for (size_t i = 0; i < piece.size(); ++i) {
      int32_t id = byte_ids[static_cast<unsigned char>(piece[i])];
      if (id < 0) continue;  // vocabulary lacks this byte: HF drops it too
      syms.push_back({id, 0, 0, static_cast<uint32_t>(i), 1});
    }
  } else {
    bool last_unk = false;
    std::vector<int32_t> tmp;
    for (size_t i = 0; i < piece.size();) {
      size_t len = std::min(utf8_len(static_cast<unsigned char>(piece[i])), piece.size() - i);
      std::string_view ch = piece.substr(i, len);
      int32_t id = pieces.find(ch);
      if (id >= 0) {
        syms.push_back({id, 0, 0, static_cast<uint32_t>(i), static_cast<uint32_t>(len)});
        last_unk = false;
      } else {
        tmp.clear();
        bool was_unk = last_unk;
        emit_unknown(ch, tmp, &last_unk);
        if (was_unk && last_unk && tmp.empty() && !syms.empty()) {
          syms.back().len += static_cast<uint32_t>(len);  // fused unknown
        }
        for (size_t k = 0; k < tmp.size(); ++k) {
          uint32_t blen = tmp[k] == unk_id ? static_cast<uint32_t>(len) : 1;
          syms.push_back({tmp[k], 0, 0, static_cast<uint32_t>(i), blen});
        }
      }
      i += len;
    }
  }
  const int32_t n = static_cast<int32_t>(syms.size());
  if (n == 0) return;
  for (int32_t i = 0; i < n; ++i) {
    syms[static_cast<size_t>(i)].prev = i - 1;
    syms[static_cast<size_t>(i)].next = i + 1 < n ? i + 1 : -1;
  }
  if (n > 1) {
    auto& heap = sc.heap;
    heap.clear();
    auto push_pair = [&](int32_t l, int32_t r) {
      int32_t rank, merged;
      if (merges.find(syms[static_cast<size_t>(l)].id, syms[static_cast<size_t>(r)].id, &rank,
                      &merged)) {
        heap.push_back({static_cast<float>(rank), l, r, merged});
        std::push_heap(heap.begin(), heap.end(), CandidateAfter{});
      }
    };
    for (int32_t i = 0; i + 1 < n; ++i) push_pair(i, i + 1);
    while (!heap.empty()) {
      std::pop_heap(heap.begin(), heap.end(), CandidateAfter{});
      Candidate c = heap.back();
      heap.pop_back();
      Symbol& l = syms[static_cast<size_t>(c.left)];
      if (l.len == 0 || l.next != c.right) continue;
      Symbol& r = syms[static_cast<size_t>(c.right)];
      int32_t rank, merged;
      if (!merges.find(l.id, r.id, &rank, &merged) || merged != c.merged) continue;
      l.id = merged;
      l.len += r.len;
      l.next = r.next;
      r.len = 0;
      if (l.next >= 0) syms[static_cast<size_t>(l.next)].prev = c.left;
      if (l.prev >= 0) push_pair(l.prev, c.left);
      if (l.next >= 0) push_pair(c.left, l.next);
    }
  }
  for (int32_t i = 0; i >= 0; i = syms[static_cast<size_t>(i)].next)
    out.push_back(syms[static_cast<size_t>(i)].id);
}

void BpeModel::encode_score(std::string_view piece, std::vector<int32_t>& out) const {
  Scratch& sc = scratch();
  auto& syms = sc.symbols;
  syms.clear();
  for (size_t i = 0; i < piece.size();) {
    size_t len = std::min(utf8_len(static_cast<unsigned char>(piece[i])), piece.size() - i);
    syms.push_back({-1, 0, 0, static_cast<uint32_t>(i), static_cast<uint32_t>(len)});
    i += len;
  }
  const int32_t n = static_cast<int32_t>(syms.size());
  for (int32_t i = 0; i < n; ++i) {
    syms[static_cast<size_t>(i)].prev = i - 1;
    syms[static_cast<size_t>(i)].next = i + 1 < n ? i + 1 : -1;
  }
  auto& heap = sc.heap;
  heap.clear();
  auto push_pair = [&](int32_t li, int32_t ri) {
    const Symbol& l = syms[static_cast<size_t>(li)];
    const Symbol& r = syms[static_cast<size_t>(ri)];
    int32_t id = pieces.find(piece.substr(l.start, l.len + r.len));
    if (id < 0 || !mergeable[static_cast<size_t>(id)]) return;
    heap.push_back({-scores[static_cast<size_t>(id)], li, ri, static_cast<int32_t>(l.len + r.len)});
    std::push_heap(heap.begin(), heap.end(), CandidateAfter{});
  };
  for (int32_t i = 0; i + 1 < n; ++i) push_pair(i, i + 1);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), CandidateAfter{});
    Candidate c = heap.back();
    heap.pop_back();
    Symbol& l = syms[static_cast<size_t>(c.left)];
    if (l.len == 0 || l.next != c.right) continue;
    Symbol& r = syms[static_cast<size_t>(c.right)];
    if (static_cast<int32_t>(l.len + r.len) != c.merged) continue;
    l.len += r.len;
    l.next = r.next;
    r.len = 0;
    if (l.next >= 0) syms[static_cast<size_t>(l.next)].prev = c.left;
    if (l.prev >= 0) push_pair(l.prev, c.left);
    if (l.next >= 0) push_pair(c.left, l.next);
  }
  bool last_unk = false;
  for (int32_t i = 0; i >= 0 && n > 0; i = syms[static_cast<size_t>(i)].next) {
    const Symbol& s = syms[static_cast<size_t>(i)];
    std::string_view text = piece.substr(s.start, s.len);
    int32_t id = pieces.find(text);
    if (id >= 0) {
      out.push_back(id);
      last_unk = false;
    } else {
      emit_unknown(text, out, &last_unk);
    }
  }
}

}  // namespace runnel::tokenizer
