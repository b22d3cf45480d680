// Chat rendering as transformers' apply_chat_template(tokenize=False) does it: the template sees
// `messages`, `tools` (None when absent), `documents` (None), `add_generation_prompt` (False by
// default), the special tokens of the model (bos_token, eos_token, ...) and every other key of
// the request as a variable, the request's keys overriding the special tokens.
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "template/template.h"

namespace runnel::tmpl {

// Which tool-call syntax a model's template teaches it (see tool_calls.h).
enum class ToolCallFormat { kNone, kQwenXml, kLlama3Json, kHarmony };

struct ChatTemplate {
  std::shared_ptr<const Template> tmpl;
  // Special-token variables as plain strings: {"bos_token": "<s>", ...}.
  std::shared_ptr<const nlohmann::ordered_json> special_tokens;
  ToolCallFormat tool_format = ToolCallFormat::kNone;
};

// Parses `source` and detects its tool-call format; special_tokens must be an object (or null).
ChatTemplate make_chat_template(const std::string& source,
                                const nlohmann::ordered_json& special_tokens);

// From a tokenizer_config.json object: chat_template as a string or a list of {name, template}
// ("default" chosen, else the first); *_token values as strings or {"content": ...} objects.
// Throws Error("template", ...) when the config has no chat template.
ChatTemplate chat_template_from_config(const nlohmann::ordered_json& config);

// request: {"messages": [...], "tools": [...], "add_generation_prompt": true, ...extra vars}.
std::string render_chat(const ChatTemplate& chat, const nlohmann::ordered_json& request,
                        const RenderOptions& options = {});
// The same with a bare Template and no special tokens beyond what the request carries.
std::string render_chat(const Template& tmpl, const nlohmann::ordered_json& request,
                        const RenderOptions& options = {});

}  // namespace runnel::tmpl
