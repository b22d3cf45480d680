// The prefix cache's flags (--kv-cache-memory, --kv-cache-dir, ...), declared once in
// cache::cache_settings() and registered on any subcommand that runs models. A flag's value is
// validated, then passed on through its environment variable, so runner processes started by
// `runnel serve` see it as well as an in-process engine.
#pragma once

#include <map>
#include <memory>
#include <string>

namespace CLI {
class App;
}

namespace runnel::cli {

using CacheFlagValues = std::map<std::string, std::string>;  // flag -> value given
std::shared_ptr<CacheFlagValues> add_cache_flags(CLI::App& app);
// Validates the given values (Error naming the flag) and exports them to the environment.
void apply_cache_flags(const CacheFlagValues& values);

}  // namespace runnel::cli
