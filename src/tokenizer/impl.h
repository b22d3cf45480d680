// The loaded form shared by every loader (tokenizer.json, tokenizer.model, GGUF) and the encode /
// decode pipeline: normalizer steps -> added-token split -> pre-tokenizer steps -> BPE model.
// Byte-level vocabularies are stored by their raw bytes (the GPT-2 "Ġ" alphabet undone at load).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/bpe.h"
#include "tokenizer/pretokenize.h"
#include "tokenizer/tokenizer.h"

namespace runnel::tokenizer {

struct NormStep {
  enum class Kind { kNfc, kPrepend, kReplace, kStripSpaces } kind;
  std::string a, b;  // kPrepend: a; kReplace: a -> b
};

struct AddedToken {
  std::string content;
  int32_t id = 0;
  bool special = false, lstrip = false, rstrip = false, normalized = false, single_word = false;
  bool raw_bytes = false;  // decode as the content's UTF-8 even for byte-level vocabularies (GGUF)
};

// Leftmost-longest matcher over the added tokens (a byte trie).
class AddedMatcher {
 public:
  void add(std::string_view text, int32_t index);
  bool empty() const { return nodes_.size() <= 1; }
  // Longest token starting at text[pos]: returns its index and sets *len, or -1.
  int32_t match_at(std::string_view text, size_t pos, size_t* len) const;
  bool may_start(unsigned char c) const { return first_[c]; }

 private:
  struct Node {
    std::vector<std::pair<unsigned char, int32_t>> next;  // sorted by byte
    int32_t value = -1;
  };
  std::vector<Node> nodes_{Node{}};
  bool first_[256] = {};
};

struct DecoderSpec {
  bool byte_level = false;     // ByteLevel decoder (token bytes already raw)
  bool byte_fallback = false;  // <0xNN> tokens become bytes; an invalid run -> U+FFFD per token
  bool strip_leading_space = false;
  std::vector<std::pair<std::string, std::string>> replace;  // Replace / Metaspace: from -> to
  // A token's text as this decoder renders it (before byte-run and lossy UTF-8 handling).
  std::string render(std::string_view token) const;
};

struct TokenizerImpl {
  std::string source;  // file the tokenizer came from, for messages

  // Vocabulary, indexed by id (model vocab and added tokens together).
  std::vector<std::string> text;   // vocabulary string
  std::vector<std::string> bytes;  // what decode contributes
  std::vector<uint8_t> flags;      // kSpecial | kByteToken | kUnmergeable
  static constexpr uint8_t kSpecial = 1, kByteToken = 2, kUnmergeable = 4;
  // Model pieces by their model-space string (raw bytes for byte-level, "▁" form otherwise).
  std::unordered_map<std::string, int32_t> piece_to_id;
  std::unordered_map<std::string, int32_t> added_ids;  // added-token contents
  // Id of a vocabulary string (as written in the vocabulary) or added token.
  std::optional<int32_t> find_text(std::string_view s) const;

  BpeModel model;
  std::vector<NormStep> normalizers;
  std::vector<PreStep> pretokenizers;
  DecoderSpec decoder;

  std::vector<AddedToken> added;
  AddedMatcher raw_matcher;         // tokens matched on the raw text
  AddedMatcher normalized_matcher;  // tokens with normalized=true, matched after normalization

  std::vector<int32_t> prefix_ids, suffix_ids;  // added around the text when add_special
  std::vector<int32_t> eos;
  std::optional<int32_t> bos;
  TokenizerConfig config;

  int32_t n_vocab() const { return static_cast<int32_t>(text.size()); }
  // Grows the tables to hold `id`.
  void ensure(int32_t id);
  // After the vocabulary, added tokens and flags are set: builds matchers, added_ids, eos list.
  void finish(const std::vector<int32_t>& extra_eos);

  void encode(std::string_view text, bool add_special, std::vector<int32_t>& out) const;
  std::string decode(std::span<const int32_t> ids, bool skip_special) const;

 private:
  void encode_segment(std::string_view raw, bool first_segment, std::vector<int32_t>& out) const;
  void encode_normalized(std::string_view norm, bool first_segment,
                         std::vector<int32_t>& out) const;
};

// Loaders (each throws Error("tokenizer", ...) naming the file).
std::unique_ptr<TokenizerImpl> load_hf_json(const std::string& json_path,
                                            const std::string& config_path,
                                            const std::string& generation_config_path);
std::unique_ptr<TokenizerImpl> load_sentencepiece(const std::string& path);
std::unique_ptr<TokenizerImpl> load_gguf_vocab(const std::string& path);

// GPT-2's byte <-> printable char alphabet for byte-level vocabularies.
const std::string& byte_level_char(uint8_t b);  // UTF-8 of the char standing for byte b
// Raw bytes of a byte-level vocabulary string; chars outside the alphabet keep their UTF-8.
std::string byte_level_decode(std::string_view s);

}  // namespace runnel::tokenizer
