// A small JSON-schema validator for the subset json_schema.h compiles, used to check generated
// output. Stricter than the standard in one way, matching what generation promises: when an
// object schema lists properties, no other property may appear.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace runnel::sample::testing {

// Empty when `value` satisfies `schema` ($refs resolved against `root`), else why not.
std::string validate(const nlohmann::json& value, const nlohmann::json& schema,
                     const nlohmann::json& root);

}  // namespace runnel::sample::testing
