// TemplateError: "[template] LINE:COL: what", or the template's own text for raise_exception.
#include "template/error.h"

namespace runnel::tmpl {

static std::string located(int line, int column, const std::string& what, bool raised) {
  if (raised) return what;
  return str_cat(line, ":", column, ": ", what);
}

TemplateError::TemplateError(int line, int column, const std::string& what, bool raised)
    : Error("template", located(line, column, what, raised)),
      line_(line),
      column_(column),
      raised_(raised) {}

void throw_at(int line, int column, const std::string& what) {
  throw TemplateError(line, column, what);
}

}  // namespace runnel::tmpl
