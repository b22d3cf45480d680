// Errors of the template layer. Syntax and runtime errors carry the 1-based line and column of
// the offending construct ("3:14: unknown filter 'foo'"); raise_exception(msg) gives an error
// whose message() is exactly msg, as transformers reports it.
#pragma once

#include <string>

#include "base/error.h"

namespace runnel::tmpl {

class TemplateError : public Error {
 public:
  TemplateError(int line, int column, const std::string& what, bool raised = false);
  int line() const { return line_; }
  int column() const { return column_; }
  // True when the template itself raised it (raise_exception); message() is then its text.
  bool raised() const { return raised_; }

 private:
  int line_;
  int column_;
  bool raised_;
};

[[noreturn]] void throw_at(int line, int column, const std::string& what);

}  // namespace runnel::tmpl
