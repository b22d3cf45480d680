// Parser: tokens -> statement tree, following Jinja2's grammar and operator precedence
// (filters and `is` tests bind tighter than arithmetic; `**` is left-associative as in Jinja).
#pragma once

#include <string>
#include <string_view>

#include "template/ast.h"

namespace runnel::tmpl {

// Throws TemplateError with line:column on any syntax error, unknown filter or unknown test.
Body parse_template(const std::string& source);

// Resolved by name at parse time; null when unknown (builtins.cpp).
FilterFn find_filter(std::string_view name);
TestFn find_test(std::string_view name);

}  // namespace runnel::tmpl
