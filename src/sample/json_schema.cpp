// JSON schema → Grammar. Every value kind is a rule (a start state; completion = reaching an
// accepting state); rules are memoized by their schema text, so a repeated sub-schema or a $ref is
// compiled once and recursion is a call to a rule under construction.
#include "sample/json_schema.h"

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "base/error.h"

namespace runnel::sample {

namespace {

using Json = nlohmann::ordered_json;

const std::set<std::string> kAnnotations = {
    "title",           "description", "default",     "examples",  "$schema",    "$id",
    "$comment",        "format",      "readOnly",    "writeOnly", "deprecated", "contentMediaType",
    "contentEncoding", "$defs",       "definitions", "strict",    "name"};
const std::set<std::string> kHandled = {"type",
                                        "properties",
                                        "required",
                                        "additionalProperties",
                                        "items",
                                        "minItems",
                                        "maxItems",
                                        "enum",
                                        "const",
                                        "anyOf",
                                        "oneOf",
                                        "allOf",
                                        "minLength",
                                        "maxLength",
                                        "$ref",
                                        "nullable",
                                        "minimum",
                                        "maximum",
                                        "exclusiveMinimum",
                                        "exclusiveMaximum"};

class Compiler {
 public:
  explicit Compiler(const Json& root) : root_(root) { end_ = b_.add_state(true); }

  std::shared_ptr<const Grammar> finish(int32_t start) { return b_.finish(start, "JSON schema"); }

  int32_t any_object() { return map_rule(any_value()); }

  int32_t compile(const Json& s, const std::string& path) {
    if (s.is_boolean()) {
      check(s.get<bool>(), "sample", "JSON schema: 'false' at ", path, " can never be satisfied");
      return any_value();
    }
    check(s.is_object(), "sample", "JSON schema at ", path, " must be an object or a boolean");
    const std::string key = s.dump();
    if (const auto it = memo_.find(key); it != memo_.end()) return it->second;
    // A placeholder first, so a recursive $ref to this very schema finds it.
    const int32_t rule = b_.add_state();
    memo_[key] = rule;
    b_.add_merge(rule, compile_uncached(s, path));
    return rule;
  }

 private:
  int32_t compile_uncached(const Json& s, const std::string& path) {
    bool has_combinator = false;
    bool has_other = false;
    for (const auto& [k, v] : s.items()) {
      if (kAnnotations.count(k)) continue;
      if (!kHandled.count(k)) {
        fail("sample", "JSON schema: keyword '", k, "' at ", path, " is not supported");
      }
      if (k == "anyOf" || k == "oneOf" || k == "allOf" || k == "$ref" || k == "enum" ||
          k == "const") {
        has_combinator = true;
      } else if (k != "nullable") {
        has_other = true;
      }
    }
    if (s.value("nullable", false)) {
      Json copy = s;
      copy.erase("nullable");
      return union_of({compile(copy, path), literal_set({"null"})});
    }
    if (has_combinator) {
      check(!has_other, "sample", "JSON schema at ", path,
            ": combining enum/const/anyOf/oneOf/allOf/$ref with other keywords is not supported");
      return combinator(s, path);
    }
    std::vector<std::string> types;
    if (const auto it = s.find("type"); it != s.end()) {
      if (it->is_string()) {
        types.push_back(it->get<std::string>());
      } else if (it->is_array()) {
        for (const auto& t : *it) {
          check(t.is_string(), "sample", "JSON schema: 'type' at ", path, " must hold strings");
          types.push_back(t.get<std::string>());
        }
      } else {
        fail("sample", "JSON schema: 'type' at ", path, " must be a string or an array");
      }
    } else if (s.contains("properties") || s.contains("additionalProperties") ||
               s.contains("required")) {
      types.push_back("object");
    } else if (s.contains("items") || s.contains("minItems") || s.contains("maxItems")) {
      types.push_back("array");
    } else if (s.contains("minLength") || s.contains("maxLength")) {
      types.push_back("string");
    } else if (s.contains("minimum") || s.contains("maximum") || s.contains("exclusiveMinimum") ||
               s.contains("exclusiveMaximum")) {
      types.push_back("number");
    } else {
      return any_value();
    }
    const bool has_number = std::find(types.begin(), types.end(), "number") != types.end();
    std::vector<int32_t> branches;
    for (const std::string& t : types) {
      if (t == "integer" && has_number) continue;  // number already allows every integer
      branches.push_back(typed(s, t, path));
    }
    check(!branches.empty(), "sample", "JSON schema: empty 'type' at ", path);
    return branches.size() == 1 ? branches[0] : union_of(branches);
  }

  int32_t combinator(const Json& s, const std::string& path) {
    if (const auto it = s.find("const"); it != s.end()) return literal_set({it->dump()});
    if (const auto it = s.find("enum"); it != s.end()) {
      check(it->is_array() && !it->empty(), "sample", "JSON schema: 'enum' at ", path,
            " must be a non-empty array");
      std::vector<std::string> lits;
      for (const auto& v : *it) lits.push_back(v.dump());
      return literal_set(lits);
    }
    if (const auto it = s.find("$ref"); it != s.end()) {
      check(it->is_string(), "sample", "JSON schema: '$ref' at ", path, " must be a string");
      return ref(it->get<std::string>(), path);
    }
    for (const char* kw : {"anyOf", "oneOf", "allOf"}) {
      const auto it = s.find(kw);
      if (it == s.end()) continue;
      check(it->is_array() && !it->empty(), "sample", "JSON schema: '", kw, "' at ", path,
            " must be a non-empty array");
      check(std::string(kw) != "allOf" || it->size() == 1, "sample", "JSON schema: 'allOf' at ",
            path, " with more than one schema is not supported");
      std::vector<int32_t> branches;
      for (size_t i = 0; i < it->size(); ++i) {
        branches.push_back(compile((*it)[i], str_cat(path, "/", kw, "/", i)));
      }
      return branches.size() == 1 ? branches[0] : union_of(branches);
    }
    fail("sample", "JSON schema at ", path, ": nothing to compile");
  }

  int32_t ref(const std::string& target, const std::string& path) {
    check(target.rfind("#", 0) == 0, "sample", "JSON schema: '$ref' at ", path,
          " must point inside the schema (\"#/...\"), got '", target, "'");
    if (const auto it = refs_.find(target); it != refs_.end()) return it->second;
    const Json* node = &root_;
    for (const std::string& raw : split(target.substr(1), '/')) {
      if (raw.empty()) continue;
      std::string part;
      for (size_t i = 0; i < raw.size(); ++i) {
        if (raw[i] == '~' && i + 1 < raw.size()) {
          part += raw[i + 1] == '1' ? '/' : '~';
          ++i;
        } else {
          part += raw[i];
        }
      }
      if (node->is_object() && node->contains(part)) {
        node = &(*node)[part];
      } else if (node->is_array() && !part.empty() &&
                 part.find_first_not_of("0123456789") == std::string::npos &&
                 std::stoul(part) < node->size()) {
        node = &(*node)[std::stoul(part)];
      } else {
        fail("sample", "JSON schema: '$ref' at ", path, ": '", target, "' not found");
      }
    }
    const int32_t rule = b_.add_state();
    refs_[target] = rule;
    b_.add_merge(rule, compile(*node, target));
    return rule;
  }

  int32_t typed(const Json& s, const std::string& t, const std::string& path) {
    if (t == "string") {
      return string_rule(count_of(s, "minLength", 0, path), count_of(s, "maxLength", -1, path));
    }
    if (t == "number") return numeric(s, true, path);
    if (t == "integer") return numeric(s, false, path);
    if (t == "boolean") return literal_set({"true", "false"});
    if (t == "null") return literal_set({"null"});
    if (t == "array") {
      int32_t item = any_value();
      if (const auto it = s.find("items"); it != s.end()) {
        check(it->is_object() || it->is_boolean(), "sample", "JSON schema: 'items' at ", path,
              " must be a schema (tuple 'items' arrays are not supported)");
        item = compile(*it, path + "/items");
      }
      return array_rule(item, count_of(s, "minItems", 0, path), count_of(s, "maxItems", -1, path));
    }
    if (t == "object") return object_rule(s, path);
    fail("sample", "JSON schema: unknown type '", t, "' at ", path);
  }

  int count_of(const Json& s, const char* key, int absent, const std::string& path) {
    const auto it = s.find(key);
    if (it == s.end()) return absent;
    check(it->is_number_unsigned() || (it->is_number_integer() && it->get<int64_t>() >= 0),
          "sample", "JSON schema: '", key, "' at ", path, " must be a non-negative integer");
    const auto v = it->get<int64_t>();
    check(v <= kMaxCounted, "sample", "JSON schema: '", key, "' at ", path, " is ", v,
          "; values above ", kMaxCounted, " are not supported");
    return static_cast<int>(v);
  }

  int32_t union_of(const std::vector<int32_t>& branches) {
    const int32_t u = b_.add_state();
    for (const int32_t br : branches) b_.add_merge(u, br);
    return u;
  }

  int32_t literal_set(const std::vector<std::string>& literals) {
    const int32_t s = b_.add_state();
    for (const std::string& lit : literals) b_.set_accepting(b_.add_literal(s, lit));
    return s;
  }

  // The whitespace rule: 1..kMaxWhitespace bytes of space, tab, newline, carriage return.
  int32_t ws() {
    if (ws_ >= 0) return ws_;
    ws_ = b_.add_state();
    int32_t prev = ws_;
    for (int i = 0; i < kMaxWhitespace; ++i) {
      const int32_t next = b_.add_state(true);
      for (const uint8_t c : {' ', '\t', '\n', '\r'}) b_.add_shift(prev, c, next);
      prev = next;
    }
    return ws_;
  }

  // Applies `add` to `s` and to a twin reached from `s` by one whitespace run.
  template <class F>
  void gap(int32_t s, F&& add) {
    add(s);
    const int32_t twin = b_.add_state();
    b_.add_call(s, ws(), twin);
    add(twin);
  }

  int32_t string_rule(int min, int max) {
    check(max < 0 || min <= max, "sample", "JSON schema: minLength ", min, " > maxLength ", max);
    const auto key = std::make_pair(min, max);
    if (const auto it = strings_.find(key); it != strings_.end()) return it->second;
    const int32_t open = b_.add_state();
    strings_[key] = open;
    const int last = max < 0 ? min : max;  // count states 0..last
    std::vector<int32_t> c(static_cast<size_t>(last) + 1);
    for (auto& st : c) st = b_.add_state();  // consecutive ids: a text chain
    b_.mark_text_chain(c[0], last + 1, max < 0);
    b_.add_shift(open, '"', c[0]);
    for (int i = 0; i <= last; ++i) {
      const int32_t s = c[static_cast<size_t>(i)];
      if (i >= min) b_.add_shift(s, '"', end_);
      int32_t next;
      if (i < last) {
        next = c[static_cast<size_t>(i) + 1];
      } else if (max < 0) {
        next = s;  // unbounded: stay
      } else {
        continue;  // maxLength reached: only the closing quote
      }
      b_.add_shift(s, 0x20, 0x21, next);
      b_.add_shift(s, 0x23, 0x5b, next);
      b_.add_shift(s, 0x5d, 0x7f, next);
      // Escapes, without surrogate code points (a lone one would not parse).
      const int32_t esc = b_.add_state();
      b_.add_shift(s, '\\', esc);
      for (const uint8_t e : {'"', '\\', '/', 'b', 'f', 'n', 'r', 't'}) b_.add_shift(esc, e, next);
      const int32_t h1 = b_.add_state(), h2 = b_.add_state(), h2low = b_.add_state(),
                    h3 = b_.add_state(), h4 = b_.add_state();
      b_.add_shift(esc, 'u', h1);
      b_.add_shift(h1, '0', '9', h2);
      b_.add_shift(h1, 'a', 'c', h2);
      b_.add_shift(h1, 'A', 'C', h2);
      b_.add_shift(h1, 'e', 'f', h2);
      b_.add_shift(h1, 'E', 'F', h2);
      b_.add_shift(h1, 'd', h2low);
      b_.add_shift(h1, 'D', h2low);
      b_.add_shift(h2low, '0', '7', h3);
      for (const int32_t h : {h2, h3, h4}) {
        const int32_t to = h == h2 ? h3 : h == h3 ? h4 : next;
        b_.add_shift(h, '0', '9', to);
        b_.add_shift(h, 'a', 'f', to);
        b_.add_shift(h, 'A', 'F', to);
      }
      // UTF-8, well-formed (no overlongs, no surrogates, at most U+10FFFF).
      const int32_t n1 = b_.add_state(), n2 = b_.add_state(), n3 = b_.add_state(),
                    e0 = b_.add_state(), ed = b_.add_state(), f0 = b_.add_state(),
                    f4 = b_.add_state();
      b_.add_shift(n1, 0x80, 0xbf, next);
      b_.add_shift(n2, 0x80, 0xbf, n1);
      b_.add_shift(n3, 0x80, 0xbf, n2);
      b_.add_shift(e0, 0xa0, 0xbf, n1);
      b_.add_shift(ed, 0x80, 0x9f, n1);
      b_.add_shift(f0, 0x90, 0xbf, n2);
      b_.add_shift(f4, 0x80, 0x8f, n2);
      b_.add_shift(s, 0xc2, 0xdf, n1);
      b_.add_shift(s, 0xe0, e0);
      b_.add_shift(s, 0xe1, 0xec, n2);
      b_.add_shift(s, 0xed, ed);
      b_.add_shift(s, 0xee, 0xef, n2);
      b_.add_shift(s, 0xf0, f0);
      b_.add_shift(s, 0xf1, 0xf3, n3);
      b_.add_shift(s, 0xf4, f4);
    }
    return open;
  }

  // Bounds: integer ranges of up to kMaxEnumeratedRange values are spelled out as literals;
  // otherwise only "minimum 0" (no sign) and, for integers, "minimum 1" (no sign, no lone 0).
  int32_t numeric(const Json& s, bool fractional, const std::string& path) {
    const auto bound = [&](const char* key) -> std::optional<double> {
      const auto it = s.find(key);
      if (it == s.end()) return std::nullopt;
      check(it->is_number(), "sample", "JSON schema: '", key, "' at ", path, " must be a number");
      return it->get<double>();
    };
    const auto min = bound("minimum"), max = bound("maximum"), xmin = bound("exclusiveMinimum"),
               xmax = bound("exclusiveMaximum");
    if (!min && !max && !xmin && !xmax) return number_rule(fractional, Sign::kAny);
    const auto unsupported = [&]() -> int32_t {
      fail("sample", "JSON schema: the bounds (minimum/maximum/exclusive*) at ", path,
           " are not supported: only integer ranges of up to ", kMaxEnumeratedRange,
           " values, or a lower bound of 0 (or 1 for integers) alone");
    };
    if (!fractional) {
      constexpr double kBig = 1e15;
      double lo = -kBig, hi = kBig;
      if (min) lo = std::max(lo, std::ceil(*min));
      if (xmin) lo = std::max(lo, std::floor(*xmin) + 1);
      if (max) hi = std::min(hi, std::floor(*max));
      if (xmax) hi = std::min(hi, std::ceil(*xmax) - 1);
      check(lo <= hi, "sample", "JSON schema: the bounds at ", path, " admit no integer");
      if (hi - lo < kMaxEnumeratedRange) {
        std::vector<std::string> lits;
        for (auto v = static_cast<int64_t>(lo); v <= static_cast<int64_t>(hi); ++v) {
          lits.push_back(std::to_string(v));
        }
        return literal_set(lits);
      }
      if (hi == kBig && lo == 0) return number_rule(false, Sign::kNonNegative);
      if (hi == kBig && lo == 1) return number_rule(false, Sign::kPositive);
      return unsupported();
    }
    if (min && *min == 0 && !max && !xmin && !xmax) return number_rule(true, Sign::kNonNegative);
    return unsupported();
  }

  enum class Sign { kAny, kNonNegative, kPositive };

  int32_t number_rule(bool fractional, Sign sign) {
    const auto key = std::make_pair(fractional, sign);
    if (const auto it = numbers_.find(key); it != numbers_.end()) return it->second;
    const int32_t start = b_.add_state();
    numbers_[key] = start;
    const int32_t minus = b_.add_state();
    const int32_t zero = b_.add_state(true);
    if (sign == Sign::kAny) b_.add_shift(start, '-', minus);
    std::vector<int32_t> digits(kMaxIntDigits);
    for (auto& d : digits) d = b_.add_state(true);
    for (const int32_t s : {start, minus}) {
      if (sign != Sign::kPositive) b_.add_shift(s, '0', zero);
      b_.add_shift(s, '1', '9', digits[0]);
    }
    for (int i = 0; i + 1 < kMaxIntDigits; ++i) b_.add_shift(digits[i], '0', '9', digits[i + 1]);
    if (!fractional) return start;
    const int32_t dot = b_.add_state();
    const int32_t e = b_.add_state();
    const int32_t e_sign = b_.add_state();
    std::vector<int32_t> frac(kMaxFracDigits), exp(2);  // |exponent| <= 99: stays a finite double
    for (auto& f : frac) f = b_.add_state(true);
    for (auto& x : exp) x = b_.add_state(true);
    std::vector<int32_t> int_ends(digits);
    int_ends.push_back(zero);
    for (const int32_t s : int_ends) {
      b_.add_shift(s, '.', dot);
      b_.add_shift(s, 'e', e);
      b_.add_shift(s, 'E', e);
    }
    b_.add_shift(dot, '0', '9', frac[0]);
    for (int i = 0; i < kMaxFracDigits; ++i) {
      if (i + 1 < kMaxFracDigits) b_.add_shift(frac[i], '0', '9', frac[i + 1]);
      b_.add_shift(frac[i], 'e', e);
      b_.add_shift(frac[i], 'E', e);
    }
    b_.add_shift(e, '+', e_sign);
    b_.add_shift(e, '-', e_sign);
    b_.add_shift(e, '0', '9', exp[0]);
    b_.add_shift(e_sign, '0', '9', exp[0]);
    b_.add_shift(exp[0], '0', '9', exp[1]);
    return start;
  }

  int32_t array_rule(int32_t item, int min, int max) {
    check(max < 0 || min <= max, "sample", "JSON schema: minItems ", min, " > maxItems ", max);
    const int32_t open = b_.add_state();
    const int32_t first = b_.add_state();
    b_.add_shift(open, '[', first);
    const int last = max < 0 ? std::max(min, 1) : max;
    // after[i]: i items written (1..last); comma[i]: a comma after i items.
    std::vector<int32_t> after(static_cast<size_t>(last) + 1), comma(static_cast<size_t>(last) + 1);
    for (int i = 1; i <= last; ++i) {
      after[static_cast<size_t>(i)] = b_.add_state();
      comma[static_cast<size_t>(i)] = b_.add_state();
    }
    gap(first, [&](int32_t s) {
      if (min == 0) b_.add_shift(s, ']', end_);
      if (last >= 1) b_.add_call(s, item, after[1]);
    });
    for (int i = 1; i <= last; ++i) {
      const bool more = i < last || max < 0;
      gap(after[static_cast<size_t>(i)], [&](int32_t s) {
        if (i >= min) b_.add_shift(s, ']', end_);
        if (more) b_.add_shift(s, ',', comma[static_cast<size_t>(i)]);
      });
      if (more) {
        const int32_t next = after[static_cast<size_t>(std::min(i + 1, last))];
        gap(comma[static_cast<size_t>(i)], [&](int32_t s) { b_.add_call(s, item, next); });
      }
    }
    return open;
  }

  int32_t map_rule(int32_t value) {
    const int32_t open = b_.add_state(), first = b_.add_state(), key = b_.add_state(),
                  colon = b_.add_state(), after = b_.add_state(), comma = b_.add_state();
    const int32_t str = string_rule(0, -1);
    b_.add_shift(open, '{', first);
    gap(first, [&](int32_t s) {
      b_.add_shift(s, '}', end_);
      b_.add_call(s, str, key);
    });
    gap(key, [&](int32_t s) { b_.add_shift(s, ':', colon); });
    gap(colon, [&](int32_t s) { b_.add_call(s, value, after); });
    gap(after, [&](int32_t s) {
      b_.add_shift(s, ',', comma);
      b_.add_shift(s, '}', end_);
    });
    gap(comma, [&](int32_t s) { b_.add_call(s, str, key); });
    return open;
  }

  int32_t object_rule(const Json& s, const std::string& path) {
    const auto props_it = s.find("properties");
    const bool has_props = props_it != s.end() && !props_it->empty();
    std::set<std::string> required;
    if (const auto it = s.find("required"); it != s.end()) {
      check(it->is_array(), "sample", "JSON schema: 'required' at ", path, " must be an array");
      for (const auto& r : *it) {
        check(r.is_string(), "sample", "JSON schema: 'required' at ", path, " must hold strings");
        const auto name = r.get<std::string>();
        check(has_props && props_it->contains(name), "sample", "JSON schema: required property '",
              name, "' at ", path, " is not in 'properties'");
        required.insert(name);
      }
    }
    if (!has_props) {
      const auto add = s.find("additionalProperties");
      if (add != s.end() && add->is_boolean() && !add->get<bool>()) {
        return literal_set({"{}"});
      }
      if (add == s.end() || add->is_boolean()) return map_rule(any_value());
      return map_rule(compile(*add, path + "/additionalProperties"));
    }
    check(props_it->is_object(), "sample", "JSON schema: 'properties' at ", path,
          " must be an object");
    std::vector<std::string> names;
    std::vector<bool> optional;
    std::vector<int32_t> values;
    for (const auto& [name, sub] : props_it->items()) {
      names.push_back(name);
      optional.push_back(required.count(name) == 0);
      values.push_back(compile(sub, path + "/properties/" + name));
    }
    const int n = static_cast<int>(names.size());
    // close_ok[i]: every property from i on is optional.
    std::vector<bool> close_ok(static_cast<size_t>(n) + 1, true);
    for (int i = n - 1; i >= 0; --i) {
      close_ok[static_cast<size_t>(i)] = close_ok[static_cast<size_t>(i) + 1] && optional[i];
    }
    const int32_t open = b_.add_state(), first = b_.add_state();
    b_.add_shift(open, '{', first);
    std::vector<int32_t> after(static_cast<size_t>(n) + 1), comma(static_cast<size_t>(n) + 1),
        colon(static_cast<size_t>(n));
    for (int i = 1; i <= n; ++i) {
      after[static_cast<size_t>(i)] = b_.add_state();
      comma[static_cast<size_t>(i)] = b_.add_state();
    }
    for (int j = 0; j < n; ++j) {
      colon[static_cast<size_t>(j)] = b_.add_state();
      gap(colon[static_cast<size_t>(j)], [&](int32_t st) {
        b_.add_call(st, values[static_cast<size_t>(j)], after[static_cast<size_t>(j) + 1]);
      });
    }
    // Keys that may come next when property i is the first not yet considered.
    const auto keys_from = [&](int32_t st, int i) {
      for (int j = i; j < n; ++j) {
        const int32_t k = b_.add_literal(st, Json(names[static_cast<size_t>(j)]).dump());
        gap(k, [&](int32_t g) { b_.add_shift(g, ':', colon[static_cast<size_t>(j)]); });
        if (!optional[static_cast<size_t>(j)]) break;
      }
    };
    gap(first, [&](int32_t st) {
      if (close_ok[0]) b_.add_shift(st, '}', end_);
      keys_from(st, 0);
    });
    for (int i = 1; i <= n; ++i) {
      gap(after[static_cast<size_t>(i)], [&](int32_t st) {
        if (close_ok[static_cast<size_t>(i)]) b_.add_shift(st, '}', end_);
        if (i < n) b_.add_shift(st, ',', comma[static_cast<size_t>(i)]);
      });
      if (i < n) gap(comma[static_cast<size_t>(i)], [&](int32_t st) { keys_from(st, i); });
    }
    return open;
  }

  int32_t any_value() {
    if (any_ >= 0) return any_;
    any_ = b_.add_state();
    b_.add_merge(any_, map_rule(any_));
    b_.add_merge(any_, array_rule(any_, 0, -1));
    b_.add_merge(any_, string_rule(0, -1));
    b_.add_merge(any_, number_rule(true, Sign::kAny));
    b_.add_merge(any_, literal_set({"true", "false", "null"}));
    return any_;
  }

  const Json& root_;
  GrammarBuilder b_;
  int32_t end_ = -1;
  int32_t ws_ = -1;
  int32_t any_ = -1;
  std::map<std::pair<bool, Sign>, int32_t> numbers_;
  std::map<std::string, int32_t> memo_;
  std::map<std::string, int32_t> refs_;
  std::map<std::pair<int, int>, int32_t> strings_;
};

}  // namespace

std::shared_ptr<const Grammar> compile_json_object_grammar() {
  static const std::shared_ptr<const Grammar> grammar = [] {
    const Json root = Json::object();
    Compiler c(root);
    const int32_t start = c.any_object();
    return c.finish(start);
  }();
  return grammar;
}

std::shared_ptr<const Grammar> compile_json_schema(std::string_view schema_json) {
  Json schema;
  try {
    schema = Json::parse(schema_json);
  } catch (const nlohmann::json::exception& e) {
    fail("sample", "JSON schema is not valid JSON: ", e.what());
  }
  try {
    Compiler c(schema);
    const int32_t start = c.compile(schema, "#");
    return c.finish(start);
  } catch (const nlohmann::json::exception& e) {
    fail("sample", "JSON schema: ", e.what());
  }
}

std::shared_ptr<const Grammar> compile_format(const SamplingOptions& options) {
  switch (options.format) {
    case FormatKind::kNone:
      return nullptr;
    case FormatKind::kJson:
      return compile_json_object_grammar();
    case FormatKind::kJsonSchema:
      return compile_json_schema(options.format_schema);
  }
  return nullptr;
}

}  // namespace runnel::sample
