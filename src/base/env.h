// Reading settings from the environment in one place.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace runnel {

std::optional<std::string> env_string(const char* name);
// Throws Error("env", ...) when set but not a number.
std::optional<int64_t> env_int(const char* name);
// Parses "512MiB", "2GiB", "1.5G", "1000000" into bytes; throws Error("config", ...) when bad.
int64_t parse_byte_size(const std::string& text);

}  // namespace runnel
