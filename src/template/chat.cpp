// Chat-template loading (tokenizer_config.json) and the variable set apply_chat_template passes.
#include "template/chat.h"

#include <nlohmann/json.hpp>

#include "template/tool_calls.h"

namespace runnel::tmpl {

ChatTemplate make_chat_template(const std::string& source,
                                const nlohmann::ordered_json& special_tokens) {
  ChatTemplate c;
  c.tmpl = Template::parse(source);
  check(special_tokens.is_object() || special_tokens.is_null(), "template",
        "special tokens must be a JSON object");
  c.special_tokens = std::make_shared<const nlohmann::ordered_json>(
      special_tokens.is_null() ? nlohmann::ordered_json::object() : special_tokens);
  c.tool_format = detect_tool_call_format(source);
  return c;
}

ChatTemplate chat_template_from_config(const nlohmann::ordered_json& config) {
  check(config.is_object(), "template", "tokenizer_config.json is not a JSON object");
  auto it = config.find("chat_template");
  check(it != config.end() && !it->is_null(), "template",
        "tokenizer_config.json has no chat_template");
  std::string source;
  if (it->is_string()) {
    source = it->get<std::string>();
  } else if (it->is_array()) {
    const nlohmann::ordered_json* chosen = nullptr;
    for (const auto& entry : *it) {
      check(entry.is_object() && entry.contains("template") && entry["template"].is_string(),
            "template", "chat_template list entries must be {name, template} objects");
      if (chosen == nullptr) chosen = &entry;
      if (entry.contains("name") && entry["name"] == "default") {
        chosen = &entry;
        break;
      }
    }
    check(chosen != nullptr, "template", "chat_template list is empty");
    source = (*chosen)["template"].get<std::string>();
  } else {
    fail("template", "chat_template must be a string or a list of {name, template}");
  }
  nlohmann::ordered_json special = nlohmann::ordered_json::object();
  for (auto kv = config.begin(); kv != config.end(); ++kv) {
    const std::string& key = kv.key();
    bool is_token = key.size() > 6 && key.compare(key.size() - 6, 6, "_token") == 0;
    if (is_token) {
      if (kv->is_string()) {
        special[key] = *kv;
      } else if (kv->is_object() && kv->contains("content") && (*kv)["content"].is_string()) {
        special[key] = (*kv)["content"];
      }
    } else if (key == "additional_special_tokens" && kv->is_array()) {
      nlohmann::ordered_json list = nlohmann::ordered_json::array();
      for (const auto& t : *kv) {
        if (t.is_string()) {
          list.push_back(t);
        } else if (t.is_object() && t.contains("content")) {
          list.push_back(t["content"]);
        }
      }
      special[key] = list;
    }
  }
  return make_chat_template(source, special);
}

static Value chat_vars(const nlohmann::ordered_json* special,
                       const nlohmann::ordered_json& request) {
  check(request.is_object(), "template", "chat request must be a JSON object");
  Value vars = Value::dict();
  Dict& d = vars.dict_ref();
  d.set(Value("messages"), Value::list());
  d.set(Value("tools"), Value::none());
  d.set(Value("documents"), Value::none());
  d.set(Value("add_generation_prompt"), Value(false));
  if (special) {
    for (auto it = special->begin(); it != special->end(); ++it) {
      d.set(Value(it.key()), Value::from_json(*it));
    }
  }
  for (auto it = request.begin(); it != request.end(); ++it) {
    d.set(Value(it.key()), Value::from_json(*it));
  }
  return vars;
}

std::string render_chat(const ChatTemplate& chat, const nlohmann::ordered_json& request,
                        const RenderOptions& options) {
  return chat.tmpl->render(chat_vars(chat.special_tokens.get(), request), options);
}

std::string render_chat(const Template& tmpl, const nlohmann::ordered_json& request,
                        const RenderOptions& options) {
  return tmpl.render(chat_vars(nullptr, request), options);
}

}  // namespace runnel::tmpl
