// Public API of the template layer: parse a Jinja2 chat template once, render it many times.
//
//   auto t = Template::parse(source);           // throws TemplateError with line:column
//   std::string prompt = t->render(vars);       // vars: a JSON object of template variables
//
// Rendering follows transformers' apply_chat_template(tokenize=False): Jinja2 with trim_blocks,
// lstrip_blocks and loop controls; Python value printing (None, True, ['a']); tojson like
// json.dumps(ensure_ascii=False); raise_exception(msg) throws a TemplateError whose message() is
// msg. A Template is immutable after parse and may render on many threads at once.
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "template/error.h"
#include "template/interpreter.h"

namespace runnel::tmpl {

class Template {
 public:
  static std::shared_ptr<const Template> parse(std::string source);

  // vars must be a JSON object (or null). Use ordered_json to keep the key order of objects
  // (dict iteration and tojson follow it, as in Python).
  std::string render(const nlohmann::json& vars, const RenderOptions& options = {}) const;
  std::string render(const nlohmann::ordered_json& vars, const RenderOptions& options = {}) const;
  std::string render(const Value& vars, const RenderOptions& options = {}) const;

  const std::string& source() const { return source_; }

 private:
  Template() = default;
  std::string source_;
  Body body_;
};

}  // namespace runnel::tmpl
