// Template: owns the source and its parsed tree; each render runs a fresh Interpreter.
#include "template/template.h"

#include <nlohmann/json.hpp>

#include "template/parser.h"

namespace runnel::tmpl {

std::shared_ptr<const Template> Template::parse(std::string source) {
  std::shared_ptr<Template> t(new Template());
  t->body_ = parse_template(source);
  t->source_ = std::move(source);
  return t;
}

std::string Template::render(const Value& vars, const RenderOptions& options) const {
  if (!vars.is_dict() && !vars.is_none() && !vars.is_undefined()) {
    fail("template", "template variables must be a JSON object, not ", vars.type_name());
  }
  Interpreter in(options);
  std::string out;
  in.render(body_, vars, out);
  return out;
}

std::string Template::render(const nlohmann::json& vars, const RenderOptions& options) const {
  return render(Value::from_json(vars), options);
}

std::string Template::render(const nlohmann::ordered_json& vars,
                             const RenderOptions& options) const {
  return render(Value::from_json(vars), options);
}

}  // namespace runnel::tmpl
