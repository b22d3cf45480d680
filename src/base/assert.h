// RUNNEL_ASSERT: always-on checks of internal invariants (never of user input, see base/error.h).
// A failure prints the condition, file and line, then aborts.
#pragma once

#include <string>

namespace runnel::detail {
[[noreturn]] void assert_failed(const char* cond, const char* file, int line,
                                const std::string& msg);
}  // namespace runnel::detail

#define RUNNEL_ASSERT(cond)                                                      \
  do {                                                                           \
    if (!(cond)) [[unlikely]]                                                    \
      ::runnel::detail::assert_failed(#cond, __FILE__, __LINE__, std::string()); \
  } while (0)

#define RUNNEL_ASSERT_MSG(cond, msg)                                     \
  do {                                                                   \
    if (!(cond)) [[unlikely]]                                            \
      ::runnel::detail::assert_failed(#cond, __FILE__, __LINE__, (msg)); \
  } while (0)
