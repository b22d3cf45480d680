// Text <-> token ids for every model family runnel runs: byte-level BPE (GPT-2, Llama 3, Qwen,
// DeepSeek, gpt-oss), SentencePiece-style BPE with byte fallback (Llama 2, Mistral, Gemma), added
// and special tokens, and UTF-8-safe streaming decode. Results match Hugging Face `tokenizers`
// (the golden files in shared/testdata). A Tokenizer is immutable after load and safe to use from
// many threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace runnel::tokenizer {

// From tokenizer_config.json, tokenizer.model or GGUF metadata.
struct TokenizerConfig {
  std::string chat_template;                               // "" when none
  std::string bos_token, eos_token, pad_token, unk_token;  // texts, "" when unset
  bool add_bos = false, add_eos = false;  // what encode(text, add_special=true) adds
};

struct TokenizerImpl;

class Tokenizer {
 public:
  // path: a folder (tokenizer.json [+ tokenizer_config.json] [+ generation_config.json], or
  // tokenizer.model), a tokenizer.json file, a tokenizer.model file, or a .gguf file (full
  // model or vocab-only). Throws Error("tokenizer", ...) naming the file on any problem.
  static std::unique_ptr<Tokenizer> load(const std::string& path);
  ~Tokenizer();

  // Special-token strings in `text` are always recognised; add_special adds BOS/EOS as the
  // model's configuration says (HF add_special_tokens=True).
  std::vector<int32_t> encode(std::string_view text, bool add_special) const;
  // Throws Error("tokenizer", "token id N out of range ...") on a bad id. Incomplete or invalid
  // UTF-8 comes out as U+FFFD, exactly like HF decode.
  std::string decode(std::span<const int32_t> ids, bool skip_special) const;

  int32_t n_vocab() const;
  std::optional<int32_t> bos_id() const;
  // Every id that ends generation: the configured EOS, generation_config.json's eos_token_id
  // (when the folder has one), GGUF eot/eom ids, and any of the end-of-turn markers
  // <|eot_id|> <|eom_id|> <|im_end|> <end_of_turn> <|endoftext|> <|end_of_text|> <|return|>
  // <|call|> <｜end▁of▁sentence｜> <eos> that the vocabulary holds as a special token. Sorted,
  // unique.
  std::vector<int32_t> eos_ids() const;
  // Control / added-special tokens (the ones skip_special drops).
  bool is_special(int32_t id) const;
  // Raw bytes the token contributes when decoded alone (may be a partial UTF-8 sequence).
  const std::string& token_bytes(int32_t id) const;
  // The vocabulary string of a token (byte-level "Ġ" form, "▁" form, "<0x0A>" ...).
  const std::string& token_text(int32_t id) const;
  // Id of an exact vocabulary string or added token, if any.
  std::optional<int32_t> token_id(std::string_view text) const;
  const TokenizerConfig& config() const;

  const TokenizerImpl& impl() const { return *impl_; }

 private:
  explicit Tokenizer(std::unique_ptr<TokenizerImpl> impl);
  std::unique_ptr<TokenizerImpl> impl_;
};

// UTF-8-safe incremental decode. push() returns only complete characters; bytes that may still
// become a character are held back. The concatenation of all push() results and flush() equals
// decode(all ids) (for byte-fallback vocabularies: whenever every run of <0xNN> tokens is valid
// UTF-8, which holds for any output of encode; HF turns a whole invalid run into U+FFFDs).
class StreamDecoder {
 public:
  StreamDecoder(const Tokenizer& tok, bool skip_special);
  std::string push(int32_t id);  // text that became complete (may be empty)
  std::string flush();           // whatever is held back (invalid bytes as U+FFFD); then resets

 private:
  std::string emit(bool final);
  const Tokenizer& tok_;
  bool skip_special_;
  bool started_ = false;  // for the decoders that strip one leading space
  std::string pending_;
  size_t pending_byte_tokens_ = 0;  // bytes in pending_ that came from <0xNN> tokens
};

}  // namespace runnel::tokenizer
