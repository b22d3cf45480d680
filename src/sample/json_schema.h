// Compiles Ollama's `format` (the string "json", or a JSON schema) into a Grammar over bytes.
//
// Output is compact-ish JSON: between tokens of the JSON syntax one run of at most
// kMaxWhitespace whitespace bytes may appear (so "whitespace forever" cannot happen); none before
// the value or after it. Numbers are bounded (kMaxIntDigits integer digits, kMaxFracDigits
// fraction digits, 2 exponent digits, so every number is a finite double); strings must be valid
// UTF-8 without lone surrogate escapes.
//
// Supported schema subset: type (string or array of types), properties (generated in declaration
// order; optional ones may be skipped), required, additionalProperties (never generated when
// properties exist; an object without properties is a map whose values follow
// additionalProperties), items, minItems, maxItems, enum, const, minLength, maxLength (counted in
// code points, up to kMaxCounted), anyOf/oneOf (branches may overlap, e.g. objects of a
// discriminated union; oneOf is treated as anyOf), allOf of one schema, $ref to
// "#/..." (recursion allowed), nullable, and numeric bounds (minimum, maximum, exclusive*) for
// integer ranges of up to kMaxEnumeratedRange values or a lone lower bound of 0 (1 for
// integers). Annotations (title, description, default, examples,
// format, ...) are ignored. Any other keyword (pattern, minimum, ...) is an Error naming it.
#pragma once

#include <memory>
#include <string_view>

#include "sample/grammar.h"
#include "sample/options.h"

namespace runnel::sample {

inline constexpr int kMaxWhitespace = 16;
inline constexpr int kMaxIntDigits = 15;
inline constexpr int kMaxFracDigits = 15;
inline constexpr int kMaxCounted = 512;
inline constexpr int kMaxEnumeratedRange = 2048;

// format: "json": any JSON object at the top level (as Ollama does), any values inside.
std::shared_ptr<const Grammar> compile_json_object_grammar();
// format: <schema>, given as JSON text so that property order is the one the user wrote.
std::shared_ptr<const Grammar> compile_json_schema(std::string_view schema_json);
// The grammar that options.format asks for, or null when there is none. Compile once per request.
std::shared_ptr<const Grammar> compile_format(const SamplingOptions& options);

}  // namespace runnel::sample
