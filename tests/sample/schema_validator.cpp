// Validator for the schema subset (see schema_validator.h).
#include "schema_validator.h"

#include "base/strings.h"

namespace runnel::sample::testing {

namespace {

using nlohmann::json;

size_t code_points(const std::string& s) {
  size_t n = 0;
  for (const char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

bool has_type(const json& v, const std::string& t) {
  if (t == "object") return v.is_object();
  if (t == "array") return v.is_array();
  if (t == "string") return v.is_string();
  if (t == "number") return v.is_number();
  if (t == "integer") return v.is_number_integer();
  if (t == "boolean") return v.is_boolean();
  if (t == "null") return v.is_null();
  return false;
}

}  // namespace

std::string validate(const json& v, const json& s, const json& root) {
  if (s.is_boolean()) return s.get<bool>() ? "" : "schema false";
  if (s.value("nullable", false) && v.is_null()) return "";
  if (s.contains("$ref")) {
    const std::string ref = s["$ref"];
    return validate(v, root.at(json::json_pointer(ref.substr(1))), root);
  }
  if (s.contains("const") && v != s["const"]) return str_cat(v.dump(), " != const");
  if (s.contains("enum")) {
    bool found = false;
    for (const auto& e : s["enum"]) found = found || e == v;
    if (!found) return str_cat(v.dump(), " not in enum");
  }
  if (s.contains("anyOf")) {
    bool ok = false;
    for (const auto& b : s["anyOf"]) ok = ok || validate(v, b, root).empty();
    if (!ok) return str_cat(v.dump(), " matches no anyOf branch");
  }
  if (s.contains("oneOf")) {
    int n = 0;
    for (const auto& b : s["oneOf"]) n += validate(v, b, root).empty();
    if (n != 1) return str_cat(v.dump(), " matches ", n, " oneOf branches");
  }
  if (s.contains("allOf")) {
    for (const auto& b : s["allOf"]) {
      if (auto why = validate(v, b, root); !why.empty()) return why;
    }
  }
  if (s.contains("type")) {
    bool ok = false;
    if (s["type"].is_string()) {
      ok = has_type(v, s["type"]);
    } else {
      for (const auto& t : s["type"]) ok = ok || has_type(v, t);
    }
    if (!ok) return str_cat(v.dump(), " is not of type ", s["type"].dump());
  }
  if (v.is_string()) {
    const size_t n = code_points(v.get<std::string>());
    if (s.contains("minLength") && n < s["minLength"].get<size_t>()) return "string too short";
    if (s.contains("maxLength") && n > s["maxLength"].get<size_t>()) return "string too long";
  }
  if (v.is_number()) {
    const double x = v.get<double>();
    if (s.contains("minimum") && x < s["minimum"].get<double>()) return "below minimum";
    if (s.contains("maximum") && x > s["maximum"].get<double>()) return "above maximum";
    if (s.contains("exclusiveMinimum") && x <= s["exclusiveMinimum"].get<double>()) {
      return "not above exclusiveMinimum";
    }
    if (s.contains("exclusiveMaximum") && x >= s["exclusiveMaximum"].get<double>()) {
      return "not below exclusiveMaximum";
    }
  }
  if (v.is_array()) {
    if (s.contains("minItems") && v.size() < s["minItems"].get<size_t>()) return "too few items";
    if (s.contains("maxItems") && v.size() > s["maxItems"].get<size_t>()) return "too many items";
    if (s.contains("items")) {
      for (const auto& item : v) {
        if (auto why = validate(item, s["items"], root); !why.empty()) return "item: " + why;
      }
    }
  }
  if (v.is_object()) {
    const json props = s.value("properties", json::object());
    for (const auto& r : s.value("required", json::array())) {
      if (!v.contains(r.get<std::string>())) return str_cat("missing required ", r.dump());
    }
    for (const auto& [k, item] : v.items()) {
      if (props.contains(k)) {
        if (auto why = validate(item, props[k], root); !why.empty()) return k + ": " + why;
      } else if (!props.empty()) {
        return str_cat("undeclared property '", k, "'");
      } else if (s.contains("additionalProperties")) {
        const json& add = s["additionalProperties"];
        if (add.is_boolean() && !add.get<bool>()) return str_cat("extra property '", k, "'");
        if (add.is_object()) {
          if (auto why = validate(item, add, root); !why.empty()) return k + ": " + why;
        }
      }
    }
  }
  return "";
}

}  // namespace runnel::sample::testing
