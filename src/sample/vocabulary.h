// The tokenizer's vocabulary as raw bytes, with a byte trie built once per vocabulary and shared by
// every request (GrammarMatcher walks it to compute token masks). Special tokens that are not text
// should be given as empty strings: they never match a grammar. EOS ids are kept apart.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace runnel::sample {

// One bit per token id.
class TokenMask {
 public:
  TokenMask() = default;
  explicit TokenMask(int32_t n_vocab) { resize(n_vocab); }
  void resize(int32_t n_vocab) {
    n_ = n_vocab;
    words_.assign((static_cast<size_t>(n_vocab) + 63) / 64, 0);
  }
  int32_t size() const { return n_; }
  void clear() { std::fill(words_.begin(), words_.end(), 0); }
  void set_all();
  void set(int32_t id) { words_[static_cast<size_t>(id) >> 6] |= uint64_t{1} << (id & 63); }
  bool test(int32_t id) const { return (words_[static_cast<size_t>(id) >> 6] >> (id & 63)) & 1; }
  int32_t count() const;
  std::vector<uint64_t>& words() { return words_; }
  const std::vector<uint64_t>& words() const { return words_; }

 private:
  int32_t n_ = 0;
  std::vector<uint64_t> words_;
};

class Vocabulary {
 public:
  // Trie node, in depth-first preorder: a node's subtree is [index + 1, skip).
  struct Node {
    uint32_t skip;       // index of the first node after this subtree
    uint32_t tok_begin;  // tokens ending here: Trie::ids[tok_begin, tok_begin + n_tok)
    uint16_t depth;      // 1 for a token's first byte
    uint16_t n_tok;
    uint8_t byte;
  };

  // tokens[id] = raw bytes of token id. Tokens may not exceed 65535 bytes.
  Vocabulary(std::vector<std::string> tokens, std::vector<int32_t> eos_ids);

  int32_t n_vocab() const { return static_cast<int32_t>(tokens_.size()); }
  const std::string& token(int32_t id) const { return tokens_[static_cast<size_t>(id)]; }
  bool is_eos(int32_t id) const { return eos_flags_[static_cast<size_t>(id)] != 0; }
  const std::vector<int32_t>& eos_ids() const { return eos_ids_; }
  int32_t max_depth() const { return max_depth_; }

  // A trie over a set of tokens (nodes in preorder; ids[node.tok_begin + k] are its tokens).
  struct Trie {
    std::vector<Node> nodes;
    std::vector<int32_t> ids;
  };
  // Every text token (non-empty, not EOS).
  const Trie& trie() const { return all_; }
  // Only the tokens that are not "text" (see text_cp).
  const Trie& non_text_trie() const { return non_text_; }

  // Code points of a "text" token: one whose bytes are all printable ASCII other than '"' and
  // '\\' (0x20..0x7f) or well-formed UTF-8 characters, i.e. what may sit unescaped inside a JSON
  // string. 0 for other tokens, and for text tokens longer than kMaxTextCp code points.
  static constexpr int32_t kMaxTextCp = 32;
  int32_t text_cp(int32_t id) const { return text_cp_[static_cast<size_t>(id)]; }
  // Text tokens of at most k code points, k in 1..kMaxTextCp.
  const TokenMask& text_upto(int32_t k) const { return text_upto_[static_cast<size_t>(k)]; }

 private:
  void build_trie(std::vector<int32_t> ids, Trie& out);

  std::vector<std::string> tokens_;
  std::vector<int32_t> eos_ids_;
  std::vector<uint8_t> eos_flags_;
  Trie all_;
  Trie non_text_;
  std::vector<uint8_t> text_cp_;
  std::vector<TokenMask> text_upto_;
  int32_t max_depth_ = 0;
};

}  // namespace runnel::sample
