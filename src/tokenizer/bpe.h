// BPE over one pre-tokenized piece. Two flavours:
//  - kRank: merges by rank (HF tokenizer.json, GGUF "gpt2"): lowest rank first, leftmost on ties;
//  - kScore: SentencePiece BPE (tokenizer.model, GGUF "llama"): the adjacent pair whose
//    concatenation is a vocabulary piece with the highest score first, leftmost on ties.
// Both use a binary heap over reused thread-local buffers: no allocation per token once warm.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace runnel::tokenizer {

// string -> id over an external key table (keys[id]): one flat array of (hash, id) slots, no
// per-entry allocation. Used for vocabularies of up to a few hundred thousand pieces.
class IdMap {
 public:
  void reset(const std::vector<std::string>* keys, size_t expected);
  void insert(int32_t id);  // key (*keys)[id]; the first id inserted for a key wins
  int32_t find(std::string_view s) const {
    if (mask_ == 0) return -1;
    const uint32_t h = hash(s);
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& sl = slots_[i];
      if (sl.id < 0) return -1;
      if (sl.hash == h && (*keys_)[static_cast<size_t>(sl.id)] == s) return sl.id;
    }
  }
  static uint32_t hash(std::string_view s);

 private:
  struct Slot {
    uint32_t hash = 0;
    int32_t id = -1;
  };
  const std::vector<std::string>* keys_ = nullptr;
  std::vector<Slot> slots_;
  size_t mask_ = 0, n_ = 0;
};

// (left id, right id) -> (rank, merged id), open addressing.
class PairMap {
 public:
  void reserve(size_t n);
  void insert(int32_t a, int32_t b, int32_t rank, int32_t merged);  // keeps the first insert
  // Returns false when the pair has no merge.
  bool find(int32_t a, int32_t b, int32_t* rank, int32_t* merged) const {
    if (mask_ == 0) return false;
    const uint64_t key = pair_key(a, b);
    for (size_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.key == key) {
        *rank = s.rank;
        *merged = s.merged;
        return true;
      }
      if (s.key == kEmpty) return false;
    }
  }
  size_t size() const { return n_; }

 private:
  static constexpr uint64_t kEmpty = ~0ull;
  static uint64_t pair_key(int32_t a, int32_t b) {
    return static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32 | static_cast<uint32_t>(b);
  }
  static size_t hash(uint64_t k) { return static_cast<size_t>((k * 0x9E3779B97F4A7C15ull) >> 20); }
  struct Slot {
    uint64_t key = kEmpty;
    int32_t rank = 0, merged = 0;
  };
  std::vector<Slot> slots_;
  size_t mask_ = 0, n_ = 0;
};

struct BpeModel {
  enum class Kind { kRank, kScore } kind = Kind::kRank;
  bool byte_level = false;     // initial symbols are single raw bytes (byte_ids)
  bool byte_fallback = false;  // unknown chars become <0xNN> tokens (byte_ids)
  bool ignore_merges = false;  // a piece that is itself in the vocabulary is one token
  bool fuse_unk = false;
  int32_t unk_id = -1;
  int32_t byte_ids[256];      // byte-level: the token of each raw byte; fallback: <0xNN>; -1 none
  PairMap merges;             // kRank
  std::vector<float> scores;  // kScore, by id
  std::vector<uint8_t> mergeable;  // kScore: piece may result from a merge (NORMAL/USER types)
  IdMap pieces;  // model pieces by their model-space bytes (keys live in TokenizerImpl)

  // A merge can cross the spot before a "▁" only when some piece holds the character before it
  // followed by "▁". encode() splits at every other such spot first (exact, and fast on
  // SentencePiece texts with no pre-tokenizer). Set by enable_metaspace_split().
  std::string split_before;
  std::vector<std::string> no_split_after;  // chars that some piece holds right before a "▁"

  BpeModel();
  void enable_metaspace_split(const std::vector<std::string>& texts);
  void encode(std::string_view piece, std::vector<int32_t>& out) const;

 private:
  void encode_cached(std::string_view piece, std::vector<int32_t>& out) const;
  void encode_uncached(std::string_view piece, std::vector<int32_t>& out) const;
  uint64_t instance_;  // tags this model's entries in the per-thread word cache
  void encode_rank(std::string_view piece, std::vector<int32_t>& out) const;
  void encode_score(std::string_view piece, std::vector<int32_t>& out) const;
  void emit_unknown(std::string_view ch, std::vector<int32_t>& out, bool* last_unk) const;
};

}  // namespace runnel::tokenizer
