// Python methods callable on template values: str (strip, split, startswith, replace, ...),
// list (append, index, count, ...) and dict (items, keys, values, get, ...).
#include <algorithm>
#include <cstring>

#include "base/strings.h"
#include "template/interpreter.h"
#include "template/text.h"

namespace runnel::tmpl {
namespace {

[[noreturn]] void raise(const std::string& what) { throw ValueError(what); }

const std::string_view kStrMethods[] = {
    "startswith", "endswith", "split",  "rsplit",     "strip",   "lstrip",  "rstrip",
    "upper",      "lower",    "title",  "capitalize", "replace", "find",    "rfind",
    "count",      "join",     "format", "isdigit",    "isalpha", "isalnum", "isspace",
    "islower",    "isupper",  "index",  "splitlines", "zfill",   "swapcase"};
const std::string_view kListMethods[] = {"append", "index",  "count", "pop",
                                         "extend", "insert", "copy"};
const std::string_view kDictMethods[] = {"items", "keys",       "values", "get",
                                         "copy",  "setdefault", "update", "pop"};

template <size_t N>
bool in_list(const std::string_view (&names)[N], std::string_view name) {
  for (std::string_view n : names) {
    if (name == n) return true;
  }
  return false;
}

const std::string* opt_string(const CallArgs& a, size_t i, std::string_view kw, const char* fn) {
  const Value* v = a.get(i, kw);
  if (v == nullptr || v->is_none()) return nullptr;
  if (!v->is_string()) raise(str_cat(fn, "() argument must be str or None, not ", v->type_name()));
  return &v->str();
}

const std::string& need_string(const CallArgs& a, size_t i, std::string_view kw, const char* fn) {
  const Value* v = a.get(i, kw);
  if (v == nullptr) raise(str_cat(fn, "() missing required argument"));
  if (!v->is_string()) raise(str_cat(fn, "() argument must be str, not ", v->type_name()));
  return v->str();
}

int64_t opt_int(const CallArgs& a, size_t i, std::string_view kw, int64_t def) {
  const Value* v = a.get(i, kw);
  if (v == nullptr || v->is_none()) return def;
  if (!v->is_int() && !v->is_bool()) raise("an integer argument is required");
  return v->as_int();
}

bool prefix_test(const std::string& s, const CallArgs& a, bool suffix) {
  const Value* p = a.get(0, "prefix");
  if (p == nullptr) raise("startswith/endswith needs an argument");
  auto test = [&](const Value& x) {
    if (!x.is_string()) raise("startswith/endswith arg must be str or a tuple of str");
    const std::string& t = x.str();
    if (t.size() > s.size()) return false;
    return suffix ? s.compare(s.size() - t.size(), t.size(), t) == 0
                  : s.compare(0, t.size(), t) == 0;
  };
  if (p->is_list()) {
    for (const Value& x : p->list_ref().items) {
      if (test(x)) return true;
    }
    return false;
  }
  return test(*p);
}

Value string_list(std::vector<std::string> parts) {
  std::vector<Value> items;
  items.reserve(parts.size());
  for (auto& p : parts) items.emplace_back(std::move(p));
  return Value::list(std::move(items));
}

template <class Pred>
bool all_chars(const std::string& s, Pred pred) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size();) {
    if (!pred(utf8_next(s, i))) return false;
  }
  return true;
}

// Python str.format with positional "{}"/"{0}" and keyword "{name}" fields (no format specs).
std::string py_format(const std::string& fmt, const CallArgs& a) {
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < fmt.size(); ++i) {
    char c = fmt[i];
    if (c == '{' && i + 1 < fmt.size() && fmt[i + 1] == '{') {
      out += '{';
      ++i;
    } else if (c == '}' && i + 1 < fmt.size() && fmt[i + 1] == '}') {
      out += '}';
      ++i;
    } else if (c == '{') {
      size_t close = fmt.find('}', i);
      if (close == std::string::npos) raise("Single '{' encountered in format string");
      std::string field = fmt.substr(i + 1, close - i - 1);
      if (field.find(':') != std::string::npos || field.find('!') != std::string::npos) {
        raise("format specs are not supported in str.format");
      }
      const Value* v = nullptr;
      if (field.empty()) {
        v = auto_index < a.args.size() ? &a.args[auto_index++] : nullptr;
      } else if (field.find_first_not_of("0123456789") == std::string::npos) {
        size_t k = std::stoul(field);
        v = k < a.args.size() ? &a.args[k] : nullptr;
      } else {
        v = a.kwarg(field);
      }
      if (v == nullptr) raise(str_cat("format field '", field, "' has no value"));
      v->append_str(out);
      i = close;
    } else {
      out += c;
    }
  }
  return out;
}

Value string_method(Interpreter& in, const std::string& s, std::string_view m, CallArgs& a) {
  if (m == "startswith") return Value(prefix_test(s, a, false));
  if (m == "endswith") return Value(prefix_test(s, a, true));
  if (m == "strip") return Value(py_strip(s, opt_string(a, 0, "chars", "strip"), true, true));
  if (m == "lstrip") return Value(py_strip(s, opt_string(a, 0, "chars", "lstrip"), true, false));
  if (m == "rstrip") return Value(py_strip(s, opt_string(a, 0, "chars", "rstrip"), false, true));
  if (m == "split" || m == "rsplit") {
    return string_list(py_split(s, opt_string(a, 0, "sep", "split"), opt_int(a, 1, "maxsplit", -1),
                                m == "rsplit"));
  }
  if (m == "splitlines") {
    std::vector<std::string> lines;
    size_t b = 0;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '\n' || s[i] == '\r') {
        lines.push_back(s.substr(b, i - b));
        if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
        b = i + 1;
      }
    }
    if (b < s.size()) lines.push_back(s.substr(b));
    return string_list(std::move(lines));
  }
  if (m == "upper") return Value(py_upper(s));
  if (m == "lower") return Value(py_lower(s));
  if (m == "title") return Value(py_title(s));
  if (m == "capitalize") return Value(py_capitalize(s));
  if (m == "swapcase") {
    std::string out;
    for (size_t i = 0; i < s.size();) {
      size_t b = i;
      utf8_next(s, i);
      std::string ch = s.substr(b, i - b);
      std::string up = py_upper(ch);
      out += up == ch ? py_lower(ch) : up;
    }
    return Value(std::move(out));
  }
  if (m == "replace") {
    std::string r = py_replace(s, need_string(a, 0, "old", "replace"),
                               need_string(a, 1, "new", "replace"), opt_int(a, 2, "count", -1));
    in.check_size(r.size());
    return Value(std::move(r));
  }
  if (m == "find" || m == "rfind" || m == "index") {
    const std::string& sub = need_string(a, 0, "sub", "find");
    size_t pos = m == "rfind" ? s.rfind(sub) : s.find(sub);
    if (pos == std::string::npos) {
      if (m == "index") raise("substring not found");
      return Value(int64_t(-1));
    }
    return Value(int64_t(utf8_length(std::string_view(s).substr(0, pos))));
  }
  if (m == "count") return Value(py_count(s, need_string(a, 0, "sub", "count")));
  if (m == "join") {
    const Value* it = a.get(0, "iterable");
    if (it == nullptr) raise("join() takes exactly one argument");
    std::string out;
    bool first = true;
    for (const Value& v : iterate(*it)) {
      if (!v.is_string())
        raise(str_cat("sequence item: expected str instance, ", v.type_name(), " found"));
      if (!first) out += s;
      first = false;
      out += v.str();
      in.check_size(out.size());
    }
    return Value(std::move(out));
  }
  if (m == "format") return Value(py_format(s, a));
  if (m == "zfill") {
    int64_t width = opt_int(a, 0, "width", 0);
    int64_t len = int64_t(utf8_length(s));
    if (width <= len) return Value(s);
    if (width > (64 << 20)) raise("zfill width too large");
    size_t sign = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
    return Value(s.substr(0, sign) + std::string(size_t(width - len), '0') + s.substr(sign));
  }
  if (m == "isdigit") return Value(all_chars(s, [](uint32_t c) { return c >= '0' && c <= '9'; }));
  if (m == "isalpha") {
    return Value(all_chars(s, [](uint32_t c) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= 0xC0 && !python_is_space(c));
    }));
  }
  if (m == "isalnum") {
    return Value(all_chars(s, [](uint32_t c) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             (c >= 0xC0 && !python_is_space(c));
    }));
  }
  if (m == "isspace") return Value(all_chars(s, python_is_space));
  if (m == "islower" || m == "isupper") {
    bool cased = false;
    for (size_t i = 0; i < s.size();) {
      size_t b = i;
      utf8_next(s, i);
      std::string ch = s.substr(b, i - b);
      std::string up = py_upper(ch), low = py_lower(ch);
      if (up == low) continue;
      cased = true;
      if (m == "islower" ? ch != low : ch != up) return Value(false);
    }
    return Value(cased);
  }
  raise(str_cat("'str' object has no attribute '", m, "'"));
}

Value list_method(Interpreter& in, const Value& self, std::string_view m, CallArgs& a) {
  auto& items = self.list_ref().items;
  bool tuple = self.list_ref().is_tuple;
  if (m == "index" || m == "count") {
    const Value* x = a.get(0, "value");
    if (x == nullptr) raise(str_cat(m, "() takes exactly one argument"));
    int64_t n = 0;
    for (size_t i = 0; i < items.size(); ++i) {
      if (!items[i].equals(*x)) continue;
      if (m == "index") return Value(int64_t(i));
      ++n;
    }
    if (m == "index") raise("value is not in list");
    return Value(n);
  }
  if (m == "copy") return Value::list(items);
  if (tuple) raise(str_cat("'tuple' object has no attribute '", m, "'"));
  if (m == "append") {
    if (a.args.size() != 1) raise("append() takes exactly one argument");
    in.check_size(items.size() * sizeof(Value));
    items.push_back(a.args[0]);
    return Value::none();
  }
  if (m == "extend") {
    if (a.args.size() != 1) raise("extend() takes exactly one argument");
    for (const Value& v : iterate(a.args[0])) items.push_back(v);
    in.check_size(items.size() * sizeof(Value));
    return Value::none();
  }
  if (m == "insert") {
    if (a.args.size() != 2 || !a.args[0].is_int()) raise("insert() takes an index and a value");
    int64_t i = a.args[0].as_int(), n = int64_t(items.size());
    if (i < 0) i = std::max<int64_t>(0, i + n);
    i = std::min(i, n);
    items.insert(items.begin() + i, a.args[1]);
    return Value::none();
  }
  if (m == "pop") {
    if (items.empty()) raise("pop from empty list");
    int64_t i = opt_int(a, 0, "index", -1), n = int64_t(items.size());
    if (i < 0) i += n;
    if (i < 0 || i >= n) raise("pop index out of range");
    Value v = items[size_t(i)];
    items.erase(items.begin() + i);
    return v;
  }
  raise(str_cat("'list' object has no attribute '", m, "'"));
}

Value dict_method(const Value& self, std::string_view m, CallArgs& a) {
  Dict& d = self.dict_ref();
  if (m == "items") {
    std::vector<Value> out;
    out.reserve(d.items.size());
    for (const auto& [k, v] : d.items) out.push_back(Value::tuple({k, v}));
    return Value::list(std::move(out));
  }
  if (m == "keys" || m == "values") {
    std::vector<Value> out;
    out.reserve(d.items.size());
    for (const auto& [k, v] : d.items) out.push_back(m == "keys" ? k : v);
    return Value::list(std::move(out));
  }
  if (m == "get") {
    if (a.args.empty()) raise("get() expected at least 1 argument");
    if (const Value* v = d.find(a.args[0])) return *v;
    return a.args.size() > 1 ? a.args[1] : Value::none();
  }
  if (m == "copy") {
    Value c = Value::dict();
    c.dict_ref().items = d.items;
    return c;
  }
  if (m == "setdefault") {
    if (a.args.empty()) raise("setdefault() expected at least 1 argument");
    if (const Value* v = d.find(a.args[0])) return *v;
    Value def = a.args.size() > 1 ? a.args[1] : Value::none();
    d.set(a.args[0], def);
    return def;
  }
  if (m == "update") {
    for (const Value& other : a.args) {
      if (!other.is_dict()) raise("update() expects a dict");
      for (const auto& [k, v] : other.dict_ref().items) d.set(k, v);
    }
    for (const auto& [k, v] : a.kwargs) d.set(Value(k), v);
    return Value::none();
  }
  if (m == "pop") {
    if (a.args.empty()) raise("pop() expected at least 1 argument");
    for (size_t i = 0; i < d.items.size(); ++i) {
      if (d.items[i].first.equals(a.args[0])) {
        Value v = d.items[i].second;
        d.items.erase(d.items.begin() + long(i));
        return v;
      }
    }
    if (a.args.size() > 1) return a.args[1];
    raise(str_cat("KeyError: ", a.args[0].to_str()));
  }
  raise(str_cat("'dict' object has no attribute '", m, "'"));
}

}  // namespace

bool has_method(const Value& obj, std::string_view name) {
  switch (obj.kind()) {
    case Value::Kind::kString:
      return in_list(kStrMethods, name);
    case Value::Kind::kList:
      return in_list(kListMethods, name);
    case Value::Kind::kDict:
      return in_list(kDictMethods, name);
    default:
      return false;
  }
}

Value call_method(Interpreter& in, const Value& obj, std::string_view name, CallArgs& args) {
  switch (obj.kind()) {
    case Value::Kind::kString:
      return string_method(in, obj.str(), name, args);
    case Value::Kind::kList:
      return list_method(in, obj, name, args);
    case Value::Kind::kDict:
      return dict_method(obj, name, args);
    default:
      raise(str_cat("'", obj.type_name(), "' object has no attribute '", name, "'"));
  }
}

}  // namespace runnel::tmpl
