// GGUF vocabularies (tokenizer.ggml.*): waits for the GGUF reader in formats/.
#include "base/error.h"
#include "tokenizer/impl.h"

namespace runnel::tokenizer {

std::unique_ptr<TokenizerImpl> load_gguf_vocab(const std::string& path) {
  fail("tokenizer", path, ": loading a vocabulary from GGUF is not supported yet");
}

}  // namespace runnel::tokenizer
