// Turns a request into prompt tokens: the model's chat template for chat (and for generate without
// `raw`), the prompt as is otherwise, then the tokenizer.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "runner/protocol.h"

namespace runnel::tokenizer {
class Tokenizer;
}

namespace runnel::runner {

class PromptBuilder {
 public:
  // chat_template: the model's Jinja2 template ("" when it has none).
  PromptBuilder(const tokenizer::Tokenizer& tok, std::string chat_template);
  ~PromptBuilder();

  // The text that goes to the tokenizer. Throws Error for a template error or bad messages.
  std::string render(const GenerateRequest& r) const;
  // Tokens of render(r); BOS is added unless the rendered text already starts with it.
  std::vector<int32_t> tokens(const GenerateRequest& r) const;
  bool has_template() const { return !source_.empty(); }
  // The tool-call syntax the template teaches (0 = none), as tmpl::ToolCallFormat.
  int tool_format() const;
  const std::string& template_source() const { return source_; }

 private:
  const tokenizer::Tokenizer& tok_;
  std::string source_;
  struct Compiled;
  std::unique_ptr<Compiled> compiled_;
};

}  // namespace runnel::runner
