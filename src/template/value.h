// The value type of the template interpreter: Python-like none/bool/int/float/str/list/tuple/dict,
// plus Jinja's Undefined, namespace() objects and callables. Strings are immutable and shared;
// lists and dicts are shared by reference like Python objects; dicts keep insertion order.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace runnel::tmpl {

class Value;
class Interpreter;

// A type or value error without a source position; the interpreter adds line and column.
class ValueError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct CallArgs {
  std::vector<Value> args;
  std::vector<std::pair<std::string, Value>> kwargs;
  // The keyword argument `name`, or nullptr.
  const Value* kwarg(std::string_view name) const;
  // Positional argument `i`, else keyword `name`, else nullptr.
  const Value* get(size_t i, std::string_view name) const;
};

using NativeFn = std::function<Value(Interpreter&, CallArgs&)>;

struct Callable {
  std::string name;
  NativeFn fn;
};

struct List {
  std::vector<Value> items;
  bool is_tuple = false;
};

struct Dict {
  std::vector<std::pair<Value, Value>> items;  // insertion order
  const Value* find(const Value& key) const;
  const Value* find(std::string_view key) const;
  Value* find(std::string_view key);
  void set(Value key, Value value);
};

class Value {
 public:
  enum class Kind : uint8_t {
    kUndefined,
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,
    kList,  // also tuples (List::is_tuple)
    kDict,
    kNamespace,  // namespace(): a Dict whose attributes can be set
    kCallable,
  };

  Value() : kind_(Kind::kUndefined), i_(0) {}
  static Value none() { return Value(Kind::kNone); }
  // An undefined value; `hint` explains why ("'x' is undefined") when it is used.
  static Value undefined(std::string hint);
  Value(bool b) : kind_(Kind::kBool), b_(b) {}
  Value(int v) : kind_(Kind::kInt), i_(v) {}
  Value(int64_t v) : kind_(Kind::kInt), i_(v) {}
  Value(double v) : kind_(Kind::kFloat), f_(v) {}
  Value(std::string s);
  Value(const char* s) : Value(std::string(s)) {}
  Value(std::shared_ptr<const std::string> s);
  static Value list(std::vector<Value> items = {});
  static Value tuple(std::vector<Value> items);
  static Value dict();
  static Value name_space();
  static Value callable(std::string name, NativeFn fn);
  // JSON objects become dicts in the JSON's key order (use ordered_json to keep the source order).
  static Value from_json(const nlohmann::json& j);
  static Value from_json(const nlohmann::ordered_json& j);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_bool() const { return kind_ == Kind::kBool; }
  bool is_int() const { return kind_ == Kind::kInt; }
  bool is_float() const { return kind_ == Kind::kFloat; }
  bool is_number() const { return kind_ == Kind::kInt || kind_ == Kind::kFloat || is_bool(); }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_list() const { return kind_ == Kind::kList; }
  bool is_dict() const { return kind_ == Kind::kDict; }
  bool is_namespace() const { return kind_ == Kind::kNamespace; }
  bool is_callable() const { return kind_ == Kind::kCallable; }

  bool as_bool() const { return b_; }
  int64_t as_int() const { return kind_ == Kind::kBool ? int64_t(b_) : i_; }
  // Numeric value of a bool/int/float.
  double as_double() const;
  const std::string& str() const;  // only for kString
  List& list_ref() const;          // kList
  Dict& dict_ref() const;          // kDict or kNamespace
  Callable& callable_ref() const;
  const std::string& undefined_hint() const;

  // Python truthiness.
  bool truthy() const;
  // Python str(): None, True, 1.5, 'a', [1, 'a'], {'k': 'v'}; "" for undefined.
  std::string to_str() const;
  void append_str(std::string& out) const;
  // Python repr() (strings quoted).
  void append_repr(std::string& out) const;
  // json.dumps(ensure_ascii=False, indent, separators, sort_keys); throws ValueError when the
  // value is not serializable (undefined, callables).
  void append_json(std::string& out, int indent, std::string_view item_sep,
                   std::string_view key_sep, bool sort_keys, int depth = 0) const;
  nlohmann::ordered_json to_json() const;
  // Python type name, for messages ("str", "NoneType", ...).
  const char* type_name() const;

  // Python ==.
  bool equals(const Value& other) const;
  // Python <; throws ValueError when the types are not ordered.
  bool less(const Value& other) const;

 private:
  explicit Value(Kind k) : kind_(k), i_(0) {}
  Kind kind_;
  union {
    bool b_;
    int64_t i_;
    double f_;
  };
  std::shared_ptr<void> ptr_;
};

// Python's repr() of a float: shortest round-trip digits, "1.0", "1e+16", "inf", "nan".
std::string python_float_repr(double v);

}  // namespace runnel::tmpl
