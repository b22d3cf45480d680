#include "cli/cache_flags.h"

#include <CLI/CLI.hpp>
#include <cstdlib>

#include "cache/config.h"

namespace runnel::cli {

std::shared_ptr<CacheFlagValues> add_cache_flags(CLI::App& app) {
  auto values = std::make_shared<CacheFlagValues>();
  for (const cache::CacheSetting& s : cache::cache_settings()) {
    std::string flag = s.flag;
    app.add_option_function<std::string>(
        "--" + flag, [values, flag](const std::string& v) { (*values)[flag] = v; },
        std::string(s.help) + " (" + s.env + ")");
  }
  return values;
}

void apply_cache_flags(const CacheFlagValues& values) {
  cache::CacheConfig check;
  for (const auto& [flag, value] : values) {
    check.set(flag, value);  // throws Error naming the flag when the value is bad
    for (const cache::CacheSetting& s : cache::cache_settings())
      if (flag == s.flag) setenv(s.env, value.c_str(), 1);
  }
}

}  // namespace runnel::cli
