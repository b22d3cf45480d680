// Errors that user input can cause: an exception carrying "[component] what is wrong".
// Broken internal invariants use RUNNEL_ASSERT (base/assert.h) instead; never abort on user input.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

#include "base/strings.h"

namespace runnel {

class Error : public std::runtime_error {
 public:
  Error(std::string_view component, std::string_view message);
  // "tokenizer", "gguf", ... (without brackets).
  const std::string& component() const { return component_; }
  // The message without the "[component] " prefix.
  const std::string& message() const { return message_; }

 private:
  std::string component_;
  std::string message_;
};

// Throws Error(component, str_cat(parts...)).
template <class... Parts>
[[noreturn]] void fail(std::string_view component, const Parts&... parts) {
  throw Error(component, str_cat(parts...));
}

// Throws when `cond` is false; for validating user data in one line.
template <class... Parts>
void check(bool cond, std::string_view component, const Parts&... parts) {
  if (!cond) throw Error(component, str_cat(parts...));
}

}  // namespace runnel
