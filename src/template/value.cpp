// Value: construction, Python truthiness/equality/ordering, str()/repr() printing and the
// json.dumps-compatible serializer used by the `tojson` filter.
#include "template/value.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>

#include "template/text.h"

namespace runnel::tmpl {

const Value* CallArgs::kwarg(std::string_view name) const {
  for (const auto& [k, v] : kwargs) {
    if (k == name) return &v;
  }
  return nullptr;
}

const Value* CallArgs::get(size_t i, std::string_view name) const {
  if (i < args.size()) return &args[i];
  return kwarg(name);
}

const Value* Dict::find(const Value& key) const {
  if (key.is_string()) return find(std::string_view(key.str()));
  for (const auto& [k, v] : items) {
    if (k.equals(key)) return &v;
  }
  return nullptr;
}

const Value* Dict::find(std::string_view key) const {
  for (const auto& [k, v] : items) {
    if (k.is_string() && k.str() == key) return &v;
  }
  return nullptr;
}

Value* Dict::find(std::string_view key) {
  for (auto& [k, v] : items) {
    if (k.is_string() && k.str() == key) return &v;
  }
  return nullptr;
}

void Dict::set(Value key, Value value) {
  for (auto& [k, v] : items) {
    if (k.equals(key)) {
      v = std::move(value);
      return;
    }
  }
  items.emplace_back(std::move(key), std::move(value));
}

Value Value::undefined(std::string hint) {
  Value v(Kind::kUndefined);
  v.ptr_ = std::make_shared<std::string>(std::move(hint));
  return v;
}

Value::Value(std::string s) : kind_(Kind::kString), i_(0) {
  ptr_ = std::make_shared<std::string>(std::move(s));
}

Value::Value(std::shared_ptr<const std::string> s) : kind_(Kind::kString), i_(0) {
  ptr_ = std::const_pointer_cast<std::string>(std::move(s));
}

Value Value::list(std::vector<Value> items) {
  Value v(Kind::kList);
  auto l = std::make_shared<List>();
  l->items = std::move(items);
  v.ptr_ = std::move(l);
  return v;
}

Value Value::tuple(std::vector<Value> items) {
  Value v = list(std::move(items));
  v.list_ref().is_tuple = true;
  return v;
}

Value Value::dict() {
  Value v(Kind::kDict);
  v.ptr_ = std::make_shared<Dict>();
  return v;
}

Value Value::name_space() {
  Value v(Kind::kNamespace);
  v.ptr_ = std::make_shared<Dict>();
  return v;
}

Value Value::callable(std::string name, NativeFn fn) {
  Value v(Kind::kCallable);
  v.ptr_ = std::make_shared<Callable>(Callable{std::move(name), std::move(fn)});
  return v;
}

namespace {
template <class Json>
Value value_from_json(const Json& j) {
  using value_t = nlohmann::json::value_t;
  switch (j.type()) {
    case value_t::null:
      return Value::none();
    case value_t::boolean:
      return Value(j.template get<bool>());
    case value_t::number_integer:
      return Value(j.template get<int64_t>());
    case value_t::number_unsigned: {
      uint64_t u = j.template get<uint64_t>();
      if (u > uint64_t(INT64_MAX)) return Value(double(u));
      return Value(int64_t(u));
    }
    case value_t::number_float:
      return Value(j.template get<double>());
    case value_t::string:
      return Value(j.template get<std::string>());
    case value_t::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const auto& e : j) items.push_back(value_from_json(e));
      return Value::list(std::move(items));
    }
    case value_t::object: {
      Value d = Value::dict();
      auto& items = d.dict_ref().items;
      items.reserve(j.size());
      // nlohmann::json sorts object keys; ordered_json keeps them. Both convert here.
      for (auto it = j.begin(); it != j.end(); ++it)
        items.emplace_back(Value(it.key()), value_from_json(*it));
      return d;
    }
    default:
      return Value::none();
  }
}
}  // namespace

Value Value::from_json(const nlohmann::json& j) { return value_from_json(j); }
Value Value::from_json(const nlohmann::ordered_json& j) { return value_from_json(j); }

double Value::as_double() const {
  switch (kind_) {
    case Kind::kBool:
      return b_ ? 1.0 : 0.0;
    case Kind::kInt:
      return double(i_);
    case Kind::kFloat:
      return f_;
    default:
      return 0.0;
  }
}

const std::string& Value::str() const { return *static_cast<const std::string*>(ptr_.get()); }

List& Value::list_ref() const { return *static_cast<List*>(ptr_.get()); }
Dict& Value::dict_ref() const { return *static_cast<Dict*>(ptr_.get()); }
Callable& Value::callable_ref() const { return *static_cast<Callable*>(ptr_.get()); }

const std::string& Value::undefined_hint() const {
  static const std::string kDefault = "value is undefined";
  return ptr_ ? *static_cast<const std::string*>(ptr_.get()) : kDefault;
}

bool Value::truthy() const {
  switch (kind_) {
    case Kind::kUndefined:
    case Kind::kNone:
      return false;
    case Kind::kBool:
      return b_;
    case Kind::kInt:
      return i_ != 0;
    case Kind::kFloat:
      return f_ != 0.0;
    case Kind::kString:
      return !str().empty();
    case Kind::kList:
      return !list_ref().items.empty();
    case Kind::kDict:
      return !dict_ref().items.empty();
    default:
      return true;
  }
}

const char* Value::type_name() const {
  switch (kind_) {
    case Kind::kUndefined:
      return "Undefined";
    case Kind::kNone:
      return "NoneType";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
      return "int";
    case Kind::kFloat:
      return "float";
    case Kind::kString:
      return "str";
    case Kind::kList:
      return list_ref().is_tuple ? "tuple" : "list";
    case Kind::kDict:
      return "dict";
    case Kind::kNamespace:
      return "Namespace";
    case Kind::kCallable:
      return "function";
  }
  return "object";
}

std::string python_float_repr(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (v == 0.0) return std::signbit(v) ? "-0.0" : "0.0";
  char buf[40];
  int prec = 1;
  for (; prec <= 17; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*e", prec - 1, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  // buf = [-]d[.ddd]e[+-]XX
  std::string s(buf);
  bool neg = s[0] == '-';
  if (neg) s.erase(0, 1);
  size_t e = s.find('e');
  int exp = std::atoi(s.c_str() + e + 1);
  std::string digits;
  for (size_t i = 0; i < e; ++i) {
    if (s[i] != '.') digits += s[i];
  }
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  std::string out = neg ? "-" : "";
  if (exp >= -4 && exp < 16) {
    if (exp < 0) {
      out += "0.";
      out.append(size_t(-exp - 1), '0');
      out += digits;
    } else if (size_t(exp) + 1 >= digits.size()) {
      out += digits;
      out.append(size_t(exp) + 1 - digits.size(), '0');
      out += ".0";
    } else {
      out += digits.substr(0, size_t(exp) + 1);
      out += '.';
      out += digits.substr(size_t(exp) + 1);
    }
  } else {
    out += digits[0];
    if (digits.size() > 1) {
      out += '.';
      out += digits.substr(1);
    }
    char eb[24];
    std::snprintf(eb, sizeof eb, "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
    out += eb;
  }
  return out;
}

void Value::append_str(std::string& out) const {
  switch (kind_) {
    case Kind::kUndefined:
      return;
    case Kind::kNone:
      out += "None";
      return;
    case Kind::kBool:
      out += b_ ? "True" : "False";
      return;
    case Kind::kInt:
      out += std::to_string(i_);
      return;
    case Kind::kFloat:
      out += python_float_repr(f_);
      return;
    case Kind::kString:
      out += str();
      return;
    default:
      append_repr(out);
  }
}

std::string Value::to_str() const {
  if (kind_ == Kind::kString) return str();
  std::string out;
  append_str(out);
  return out;
}

// Bounds recursion through nested (possibly cyclic) lists and dicts.
class NestingGuard {
 public:
  NestingGuard() {
    if (++depth_ > 256) {
      --depth_;
      throw ValueError("value nested too deep (or cyclic)");
    }
  }
  ~NestingGuard() { --depth_; }

 private:
  static thread_local int depth_;
};
thread_local int NestingGuard::depth_ = 0;

static void append_python_string_repr(std::string& out, const std::string& s) {
  bool has_single = s.find('\'') != std::string::npos;
  bool has_double = s.find('"') != std::string::npos;
  char quote = (has_single && !has_double) ? '"' : '\'';
  out += quote;
  size_t i = 0;
  while (i < s.size()) {
    size_t start = i;
    uint32_t cp = utf8_next(s, i);
    if (cp == uint32_t(quote) || cp == '\\') {
      out += '\\';
      out += char(cp);
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp == '\t') {
      out += "\\t";
    } else if (!python_is_printable(cp)) {
      char buf[16];
      if (cp < 0x100) {
        std::snprintf(buf, sizeof buf, "\\x%02x", cp);
      } else if (cp < 0x10000) {
        std::snprintf(buf, sizeof buf, "\\u%04x", cp);
      } else {
        std::snprintf(buf, sizeof buf, "\\U%08x", cp);
      }
      out += buf;
    } else {
      out.append(s, start, i - start);
    }
  }
  out += quote;
}

void Value::append_repr(std::string& out) const {
  NestingGuard guard;
  switch (kind_) {
    case Kind::kString:
      append_python_string_repr(out, str());
      return;
    case Kind::kList: {
      const List& l = list_ref();
      out += l.is_tuple ? '(' : '[';
      for (size_t i = 0; i < l.items.size(); ++i) {
        if (i) out += ", ";
        l.items[i].append_repr(out);
      }
      if (l.is_tuple && l.items.size() == 1) out += ',';
      out += l.is_tuple ? ')' : ']';
      return;
    }
    case Kind::kDict:
    case Kind::kNamespace: {
      out += kind_ == Kind::kNamespace ? "<Namespace {" : "{";
      bool first = true;
      for (const auto& [k, v] : dict_ref().items) {
        if (!first) out += ", ";
        first = false;
        k.append_repr(out);
        out += ": ";
        v.append_repr(out);
      }
      out += kind_ == Kind::kNamespace ? "}>" : "}";
      return;
    }
    case Kind::kCallable:
      out += "<function " + callable_ref().name + ">";
      return;
    case Kind::kUndefined:
      return;
    default:
      append_str(out);
  }
}

static void append_json_string(std::string& out, const std::string& s) {
  out += '"';
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += ch;
        }
    }
  }
  out += '"';
}

static void newline_indent(std::string& out, int indent, int depth) {
  out += '\n';
  out.append(size_t(indent) * size_t(depth), ' ');
}

void Value::append_json(std::string& out, int indent, std::string_view item_sep,
                        std::string_view key_sep, bool sort_keys, int depth) const {
  if (depth > 256) throw ValueError("value nested too deep (or cyclic)");
  switch (kind_) {
    case Kind::kNone:
      out += "null";
      return;
    case Kind::kBool:
      out += b_ ? "true" : "false";
      return;
    case Kind::kInt:
      out += std::to_string(i_);
      return;
    case Kind::kFloat:
      if (std::isnan(f_)) {
        out += "NaN";
      } else if (std::isinf(f_)) {
        out += f_ > 0 ? "Infinity" : "-Infinity";
      } else {
        out += python_float_repr(f_);
      }
      return;
    case Kind::kString:
      append_json_string(out, str());
      return;
    case Kind::kList: {
      const auto& items = list_ref().items;
      if (items.empty()) {
        out += "[]";
        return;
      }
      out += '[';
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += item_sep;
        if (indent >= 0) newline_indent(out, indent, depth + 1);
        items[i].append_json(out, indent, item_sep, key_sep, sort_keys, depth + 1);
      }
      if (indent >= 0) newline_indent(out, indent, depth);
      out += ']';
      return;
    }
    case Kind::kDict: {
      const auto& items = dict_ref().items;
      if (items.empty()) {
        out += "{}";
        return;
      }
      std::vector<const std::pair<Value, Value>*> order;
      order.reserve(items.size());
      for (const auto& kv : items) order.push_back(&kv);
      if (sort_keys) {
        std::stable_sort(order.begin(), order.end(),
                         [](auto* a, auto* b) { return a->first.less(b->first); });
      }
      out += '{';
      bool first = true;
      for (const auto* kv : order) {
        if (!first) out += item_sep;
        first = false;
        if (indent >= 0) newline_indent(out, indent, depth + 1);
        const Value& k = kv->first;
        if (k.is_string()) {
          append_json_string(out, k.str());
        } else if (k.is_none()) {
          out += "\"null\"";
        } else if (k.is_bool()) {
          out += k.as_bool() ? "\"true\"" : "\"false\"";
        } else if (k.is_int() || k.is_float()) {
          out += '"' + k.to_str() + '"';
        } else {
          throw ValueError(std::string("keys must be str, int, float, bool or None, not ") +
                           k.type_name());
        }
        out += key_sep;
        kv->second.append_json(out, indent, item_sep, key_sep, sort_keys, depth + 1);
      }
      if (indent >= 0) newline_indent(out, indent, depth);
      out += '}';
      return;
    }
    default:
      throw ValueError(std::string("Object of type ") + type_name() + " is not JSON serializable");
  }
}

nlohmann::ordered_json Value::to_json() const {
  NestingGuard guard;
  switch (kind_) {
    case Kind::kNone:
    case Kind::kUndefined:
      return nullptr;
    case Kind::kBool:
      return b_;
    case Kind::kInt:
      return i_;
    case Kind::kFloat:
      return f_;
    case Kind::kString:
      return str();
    case Kind::kList: {
      nlohmann::ordered_json j = nlohmann::ordered_json::array();
      for (const auto& v : list_ref().items) j.push_back(v.to_json());
      return j;
    }
    case Kind::kDict:
    case Kind::kNamespace: {
      nlohmann::ordered_json j = nlohmann::ordered_json::object();
      for (const auto& [k, v] : dict_ref().items) j[k.to_str()] = v.to_json();
      return j;
    }
    default:
      return nullptr;
  }
}

bool Value::equals(const Value& o) const {
  NestingGuard guard;
  if (is_number() && o.is_number()) {
    if (kind_ == Kind::kFloat || o.kind_ == Kind::kFloat) return as_double() == o.as_double();
    return as_int() == o.as_int();
  }
  if (kind_ != o.kind_) return false;
  switch (kind_) {
    case Kind::kUndefined:
    case Kind::kNone:
      return true;
    case Kind::kString:
      return ptr_ == o.ptr_ || str() == o.str();
    case Kind::kList: {
      if (ptr_ == o.ptr_) return true;
      const auto& a = list_ref();
      const auto& b = o.list_ref();
      if (a.is_tuple != b.is_tuple || a.items.size() != b.items.size()) return false;
      for (size_t i = 0; i < a.items.size(); ++i) {
        if (!a.items[i].equals(b.items[i])) return false;
      }
      return true;
    }
    case Kind::kDict: {
      if (ptr_ == o.ptr_) return true;
      const auto& a = dict_ref().items;
      const auto& b = o.dict_ref();
      if (a.size() != b.items.size()) return false;
      for (const auto& [k, v] : a) {
        const Value* other = b.find(k);
        if (other == nullptr || !v.equals(*other)) return false;
      }
      return true;
    }
    default:
      return ptr_ == o.ptr_;
  }
}

bool Value::less(const Value& o) const {
  NestingGuard guard;
  if (is_number() && o.is_number()) {
    if (kind_ == Kind::kFloat || o.kind_ == Kind::kFloat) return as_double() < o.as_double();
    return as_int() < o.as_int();
  }
  if (is_string() && o.is_string()) return str() < o.str();
  if (is_list() && o.is_list()) {
    const auto& a = list_ref().items;
    const auto& b = o.list_ref().items;
    for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
      if (a[i].less(b[i])) return true;
      if (b[i].less(a[i])) return false;
    }
    return a.size() < b.size();
  }
  throw ValueError(std::string("'<' not supported between instances of '") + type_name() +
                   "' and '" + o.type_name() + "'");
}

}  // namespace runnel::tmpl
