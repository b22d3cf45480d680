// Shared by the model tests: running the Python tools, greedy decoding, reading logits.
#pragma once

#include <string>
#include <vector>

#include "models/model.h"

namespace runnel::models::testing {

// Runs a shell command, returns its stdout; fails the test (throws) on a non-zero exit.
std::string run_command(const std::string& cmd);
// tools/gen_tiny_model.py with `args`, output at `out`.
void gen_tiny_model(const std::string& args, const std::string& out);
// tools/reference_forward.py logits [n_tokens][vocab] for an HF folder.
std::vector<std::vector<float>> reference_logits(const std::string& dir,
                                                 const std::vector<int32_t>& tokens);
// All logits of `tokens` evaluated in one forward pass from position 0.
std::vector<std::vector<float>> model_logits(Model& m, const std::vector<int32_t>& tokens);
// Same, one token at a time (incremental decoding).
std::vector<std::vector<float>> model_logits_stepwise(Model& m, const std::vector<int32_t>& tokens);
// ids as text with the SentencePiece vocabulary of the GGUF file at `gguf_path` (▁ is a space,
// <0xNN> a byte), without the tokenizer layer: the model tests check the model alone.
std::string sentencepiece_text(const std::string& gguf_path, const std::vector<int32_t>& ids);
// Greedy continuation of `prompt` for n tokens (stops early at an id in `stop`).
std::vector<int32_t> greedy(Model& m, const std::vector<int32_t>& prompt, int n,
                            const std::vector<int32_t>& stop = {});

}  // namespace runnel::models::testing
