// Levelled logging to stderr. The level comes from RUNNEL_LOG (debug, info, warn, error; default
// warn) once, at first use. Messages are built only when their level is enabled.
#pragma once

#include <string_view>

#include "base/strings.h"

namespace runnel {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kOff = 4 };

LogLevel log_level();
void set_log_level(LogLevel level);
void log_write(LogLevel level, std::string_view component, std::string_view message);

}  // namespace runnel

#define RUNNEL_LOG(level, component, ...)                                                        \
  do {                                                                                           \
    if (::runnel::LogLevel::level >= ::runnel::log_level())                                      \
      ::runnel::log_write(::runnel::LogLevel::level, component, ::runnel::str_cat(__VA_ARGS__)); \
  } while (0)

#define RUNNEL_DEBUG(component, ...) RUNNEL_LOG(kDebug, component, __VA_ARGS__)
#define RUNNEL_INFO(component, ...) RUNNEL_LOG(kInfo, component, __VA_ARGS__)
#define RUNNEL_WARN(component, ...) RUNNEL_LOG(kWarn, component, __VA_ARGS__)
#define RUNNEL_ERROR(component, ...) RUNNEL_LOG(kError, component, __VA_ARGS__)
