#include "runner/prompt.h"

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "template/chat.h"
#include "tokenizer/tokenizer.h"

namespace runnel::runner {

struct PromptBuilder::Compiled {
  tmpl::ChatTemplate chat;
};

PromptBuilder::PromptBuilder(const tokenizer::Tokenizer& tok, std::string chat_template)
    : tok_(tok), source_(std::move(chat_template)) {
  if (source_.empty()) return;
  nlohmann::ordered_json special = nlohmann::ordered_json::object();
  const tokenizer::TokenizerConfig& c = tok.config();
  if (!c.bos_token.empty()) special["bos_token"] = c.bos_token;
  if (!c.eos_token.empty()) special["eos_token"] = c.eos_token;
  if (!c.pad_token.empty()) special["pad_token"] = c.pad_token;
  if (!c.unk_token.empty()) special["unk_token"] = c.unk_token;
  compiled_ = std::make_unique<Compiled>();
  compiled_->chat = tmpl::make_chat_template(source_, special);
}

PromptBuilder::~PromptBuilder() = default;

int PromptBuilder::tool_format() const {
  return compiled_ ? static_cast<int>(compiled_->chat.tool_format) : 0;
}

namespace {

nlohmann::ordered_json parse_json(const std::string& text, const char* what) {
  try {
    return nlohmann::ordered_json::parse(text);
  } catch (const nlohmann::json::exception&) {
    fail("request", what, " is not valid JSON");
  }
}

nlohmann::ordered_json message_json(const ChatMessage& m) {
  nlohmann::ordered_json j;
  j["role"] = m.role;
  j["content"] = m.content;
  if (!m.thinking.empty()) {
    j["thinking"] = m.thinking;
    j["reasoning_content"] = m.thinking;
  }
  if (!m.name.empty()) j["name"] = m.name;
  if (!m.tool_call_id.empty()) j["tool_call_id"] = m.tool_call_id;
  if (!m.tool_calls_json.empty()) j["tool_calls"] = parse_json(m.tool_calls_json, "tool_calls");
  return j;
}

}  // namespace

std::string PromptBuilder::render(const GenerateRequest& r) const {
  std::vector<ChatMessage> messages;
  if (r.chat) {
    messages = r.messages;
    if (!r.system.empty() && (messages.empty() || messages[0].role != "system"))
      messages.insert(messages.begin(), ChatMessage{"system", r.system, "", "", "", "", 0});
  } else {
    if (r.raw || !compiled_) {
      return r.system.empty() || r.raw ? r.prompt : r.system + "\n\n" + r.prompt;
    }
    if (!r.system.empty()) messages.push_back(ChatMessage{"system", r.system, "", "", "", "", 0});
    messages.push_back(ChatMessage{"user", r.prompt, "", "", "", "", 0});
  }
  if (!compiled_) {
    // No template: the conversation's text, one message per paragraph.
    std::string text;
    for (const ChatMessage& m : messages) {
      if (!text.empty()) text += "\n\n";
      text += m.content;
    }
    return text;
  }
  nlohmann::ordered_json vars = nlohmann::ordered_json::object();
  if (!r.template_kwargs_json.empty()) {
    vars = parse_json(r.template_kwargs_json, "template arguments");
    check(vars.is_object(), "request", "template arguments must be a JSON object");
  }
  if (r.think.has_value() && !vars.contains("enable_thinking")) vars["enable_thinking"] = *r.think;
  nlohmann::ordered_json msgs = nlohmann::ordered_json::array();
  for (const ChatMessage& m : messages) msgs.push_back(message_json(m));
  vars["messages"] = msgs;
  if (!r.tools_json.empty()) vars["tools"] = parse_json(r.tools_json, "tools");
  vars["add_generation_prompt"] = true;
  return tmpl::render_chat(compiled_->chat, vars);
}

std::vector<int32_t> PromptBuilder::tokens(const GenerateRequest& r) const {
  const std::string text = render(r);
  const std::string& bos = tok_.config().bos_token;
  const bool has_bos = !bos.empty() && text.rfind(bos, 0) == 0;
  return tok_.encode(text, !has_bos);
}

}  // namespace runnel::runner
