// Jinja2's built-in filters and tests (the subset chat templates use), plus transformers' tojson.
// Names resolve once at parse time through find_filter/find_test.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "base/strings.h"
#include "template/interpreter.h"
#include "template/parser.h"
#include "template/text.h"

namespace runnel::tmpl {
namespace {

[[noreturn]] void raise(const std::string& what) { throw ValueError(what); }

const Value* arg(const CallArgs& a, size_t i, std::string_view kw) { return a.get(i, kw); }

bool arg_bool(const CallArgs& a, size_t i, std::string_view kw, bool def) {
  const Value* v = a.get(i, kw);
  return v ? v->truthy() : def;
}

// Dotted attribute path ("a.b" or "0") as Jinja's make_attrgetter.
Value get_path(const Value& v, const Value& path) {
  if (!path.is_string()) return get_item(v, path);
  Value cur = v;
  for (const std::string& part : split(path.str(), '.')) {
    bool digits = !part.empty() && part.find_first_not_of("0123456789") == std::string::npos;
    cur = digits ? get_item(cur, Value(int64_t(std::atoll(part.c_str()))))
                 : get_item(cur, Value(part));
    if (cur.is_undefined()) break;
  }
  return cur;
}

// Sort key with Jinja's case_sensitive=False default: strings compare lower-cased.
Value sort_key(const Value& v, bool case_sensitive) {
  if (!case_sensitive && v.is_string()) return Value(py_lower(v.str()));
  return v;
}

Value f_trim(Interpreter&, const Value& v, CallArgs& a) {
  const Value* chars = arg(a, 0, "chars");
  std::string s = v.to_str();
  if (chars && !chars->is_none()) {
    std::string c = chars->to_str();
    return Value(py_strip(s, &c, true, true));
  }
  return Value(py_strip(s, nullptr, true, true));
}

Value f_tojson(Interpreter& in, const Value& v, CallArgs& a) {
  int indent = -1;
  if (const Value* i = arg(a, 0, "indent"); i && !i->is_none()) {
    if (!i->is_int()) raise("tojson indent must be an integer");
    indent = int(std::clamp<int64_t>(i->as_int(), 0, 64));
  }
  std::string item_sep = indent >= 0 ? "," : ", ", key_sep = ": ";
  if (const Value* s = a.kwarg("separators"); s && !s->is_none()) {
    if (!s->is_list() || s->list_ref().items.size() != 2) raise("separators must be a pair");
    item_sep = s->list_ref().items[0].to_str();
    key_sep = s->list_ref().items[1].to_str();
  }
  bool sort_keys = a.kwarg("sort_keys") ? a.kwarg("sort_keys")->truthy() : false;
  std::string out;
  v.append_json(out, indent, item_sep, key_sep, sort_keys);
  in.check_size(out.size());
  return Value(std::move(out));
}

Value f_length(Interpreter&, const Value& v, CallArgs&) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return Value(int64_t(0));
    case Value::Kind::kString:
      return Value(int64_t(utf8_length(v.str())));
    case Value::Kind::kList:
      return Value(int64_t(v.list_ref().items.size()));
    case Value::Kind::kDict:
    case Value::Kind::kNamespace:
      return Value(int64_t(v.dict_ref().items.size()));
    default:
      raise(str_cat("object of type '", v.type_name(), "' has no len()"));
  }
}

Value f_upper(Interpreter&, const Value& v, CallArgs&) { return Value(py_upper(v.to_str())); }
Value f_lower(Interpreter&, const Value& v, CallArgs&) { return Value(py_lower(v.to_str())); }
Value f_title(Interpreter&, const Value& v, CallArgs&) { return Value(py_title(v.to_str())); }
Value f_capitalize(Interpreter&, const Value& v, CallArgs&) {
  return Value(py_capitalize(v.to_str()));
}

Value f_items(Interpreter& in, const Value& v, CallArgs& a) {
  if (v.is_undefined()) return Value::list();
  if (!v.is_dict()) raise(str_cat("can only get item pairs from a mapping, not ", v.type_name()));
  return call_method(in, v, "items", a);
}

Value f_first(Interpreter&, const Value& v, CallArgs&) {
  std::vector<Value> items = iterate(v);
  if (items.empty()) return Value::undefined("No first item, sequence was empty.");
  return items.front();
}

Value f_last(Interpreter&, const Value& v, CallArgs&) {
  std::vector<Value> items = iterate(v);
  if (items.empty()) return Value::undefined("No last item, sequence was empty.");
  return items.back();
}

Value f_join(Interpreter& in, const Value& v, CallArgs& a) {
  const Value* sep = arg(a, 0, "d");
  const Value* attr = arg(a, 1, "attribute");
  std::string s = sep ? sep->to_str() : "";
  std::string out;
  bool first = true;
  for (const Value& item : iterate(v)) {
    if (!first) out += s;
    first = false;
    (attr ? get_path(item, *attr) : item).append_str(out);
    in.check_size(out.size());
  }
  return Value(std::move(out));
}

Value f_default(Interpreter&, const Value& v, CallArgs& a) {
  const Value* def = arg(a, 0, "default_value");
  bool boolean = arg_bool(a, 1, "boolean", false);
  if (v.is_undefined() || (boolean && !v.truthy())) return def ? *def : Value(std::string());
  return v;
}

Value f_replace(Interpreter& in, const Value& v, CallArgs& a) {
  const Value* from = arg(a, 0, "old");
  const Value* to = arg(a, 1, "new");
  if (!from || !to) raise("replace() needs two arguments");
  const Value* count = arg(a, 2, "count");
  std::string r = py_replace(v.to_str(), from->to_str(), to->to_str(),
                             count && count->is_int() ? count->as_int() : -1);
  in.check_size(r.size());
  return Value(std::move(r));
}

// select / reject / selectattr / rejectattr.
Value select_common(Interpreter& in, const Value& v, CallArgs& a, bool with_attr, bool keep) {
  size_t next = 0;
  Value attr;
  if (with_attr) {
    if (a.args.empty()) raise("selectattr/rejectattr need an attribute name");
    attr = a.args[next++];
  }
  std::string test;
  if (next < a.args.size()) test = a.args[next++].to_str();
  CallArgs targs;
  targs.args.assign(a.args.begin() + long(next), a.args.end());
  std::vector<Value> out;
  for (const Value& item : iterate(v)) {
    Value x = with_attr ? get_path(item, attr) : item;
    bool ok = test.empty() ? x.truthy() : in.apply_test(test, x, targs);
    if (ok == keep) out.push_back(item);
  }
  return Value::list(std::move(out));
}
Value f_select(Interpreter& in, const Value& v, CallArgs& a) {
  return select_common(in, v, a, false, true);
}
Value f_reject(Interpreter& in, const Value& v, CallArgs& a) {
  return select_common(in, v, a, false, false);
}
Value f_selectattr(Interpreter& in, const Value& v, CallArgs& a) {
  return select_common(in, v, a, true, true);
}
Value f_rejectattr(Interpreter& in, const Value& v, CallArgs& a) {
  return select_common(in, v, a, true, false);
}

Value f_map(Interpreter& in, const Value& v, CallArgs& a) {
  std::vector<Value> out;
  if (const Value* attr = a.kwarg("attribute")) {
    const Value* def = a.kwarg("default");
    for (const Value& item : iterate(v)) {
      Value x = get_path(item, *attr);
      out.push_back(x.is_undefined() && def ? *def : x);
    }
    return Value::list(std::move(out));
  }
  if (a.args.empty()) raise("map() needs a filter name or attribute=");
  std::string name = a.args[0].to_str();
  CallArgs fargs;
  fargs.args.assign(a.args.begin() + 1, a.args.end());
  fargs.kwargs = a.kwargs;
  for (const Value& item : iterate(v)) {
    CallArgs copy = fargs;
    out.push_back(in.apply_filter(name, item, copy));
  }
  return Value::list(std::move(out));
}

Value f_list(Interpreter&, const Value& v, CallArgs&) { return Value::list(iterate(v)); }
Value f_string(Interpreter&, const Value& v, CallArgs&) {
  return v.is_string() ? v : Value(v.to_str());
}
Value f_safe(Interpreter&, const Value& v, CallArgs&) { return v; }

Value f_int(Interpreter&, const Value& v, CallArgs& a) {
  const Value* def = arg(a, 0, "default");
  Value fallback = def ? *def : Value(int64_t(0));
  if (v.is_int() || v.is_bool()) return Value(v.as_int());
  if (v.is_float()) {
    if (!std::isfinite(v.as_double())) return fallback;
    return Value(int64_t(v.as_double()));
  }
  if (v.is_string()) {
    std::string s = py_strip(v.str(), nullptr, true, true);
    const Value* base_v = arg(a, 1, "base");
    int base = base_v && base_v->is_int() ? int(base_v->as_int()) : 10;
    if (base < 0 || base == 1 || base > 36) return fallback;
    char* end = nullptr;
    errno = 0;
    long long r = std::strtoll(s.c_str(), &end, base);
    if (!s.empty() && end && *end == 0 && errno == 0) return Value(int64_t(r));
    double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && end && *end == 0 && std::isfinite(d)) return Value(int64_t(d));
  }
  return fallback;
}

Value f_float(Interpreter&, const Value& v, CallArgs& a) {
  const Value* def = arg(a, 0, "default");
  Value fallback = def ? *def : Value(0.0);
  if (v.is_number()) return Value(v.as_double());
  if (v.is_string()) {
    std::string s = py_strip(v.str(), nullptr, true, true);
    char* end = nullptr;
    double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && end && *end == 0) return Value(d);
  }
  return fallback;
}

Value f_abs(Interpreter&, const Value& v, CallArgs&) {
  if (v.is_float()) return Value(std::fabs(v.as_double()));
  if (v.is_int() || v.is_bool()) {
    if (v.as_int() == INT64_MIN) raise("integer overflow");
    return Value(v.as_int() < 0 ? -v.as_int() : v.as_int());
  }
  raise(str_cat("bad operand type for abs(): '", v.type_name(), "'"));
}

Value f_round(Interpreter&, const Value& v, CallArgs& a) {
  if (!v.is_number()) raise("round() needs a number");
  const Value* p = arg(a, 0, "precision");
  int64_t prec = p && p->is_int() ? std::clamp<int64_t>(p->as_int(), -20, 20) : 0;
  const Value* m = arg(a, 1, "method");
  std::string method = m ? m->to_str() : "common";
  double scale = std::pow(10.0, double(prec));
  double x = v.as_double() * scale;
  double r;
  if (method == "ceil") {
    r = std::ceil(x);
  } else if (method == "floor") {
    r = std::floor(x);
  } else if (method == "common") {
    r = std::nearbyint(x);  // Python round(): half to even
  } else {
    raise("method must be 'common', 'ceil' or 'floor'");
  }
  return Value(r / scale);
}

Value f_unique(Interpreter&, const Value& v, CallArgs& a) {
  bool cs = arg_bool(a, 0, "case_sensitive", false);
  const Value* attr = arg(a, 1, "attribute");
  std::vector<Value> out, seen;
  for (const Value& item : iterate(v)) {
    Value key = sort_key(attr ? get_path(item, *attr) : item, cs);
    bool dup = false;
    for (const Value& s : seen) dup = dup || s.equals(key);
    if (dup) continue;
    seen.push_back(key);
    out.push_back(item);
  }
  return Value::list(std::move(out));
}

Value f_sort(Interpreter&, const Value& v, CallArgs& a) {
  bool reverse = arg_bool(a, 0, "reverse", false);
  bool cs = arg_bool(a, 1, "case_sensitive", false);
  const Value* attr = arg(a, 2, "attribute");
  std::vector<std::pair<Value, Value>> keyed;
  for (const Value& item : iterate(v)) {
    keyed.emplace_back(sort_key(attr ? get_path(item, *attr) : item, cs), item);
  }
  std::stable_sort(keyed.begin(), keyed.end(), [reverse](const auto& x, const auto& y) {
    return reverse ? y.first.less(x.first) : x.first.less(y.first);
  });
  std::vector<Value> out;
  for (auto& kv : keyed) out.push_back(std::move(kv.second));
  return Value::list(std::move(out));
}

Value f_dictsort(Interpreter&, const Value& v, CallArgs& a) {
  if (!v.is_dict()) raise("dictsort expects a dict");
  bool cs = arg_bool(a, 0, "case_sensitive", false);
  const Value* by = arg(a, 1, "by");
  bool by_value = by && by->to_str() == "value";
  bool reverse = arg_bool(a, 2, "reverse", false);
  auto items = v.dict_ref().items;
  std::stable_sort(items.begin(), items.end(), [&](const auto& x, const auto& y) {
    Value kx = sort_key(by_value ? x.second : x.first, cs);
    Value ky = sort_key(by_value ? y.second : y.first, cs);
    return reverse ? ky.less(kx) : kx.less(ky);
  });
  std::vector<Value> out;
  for (auto& [k, val] : items) out.push_back(Value::tuple({k, val}));
  return Value::list(std::move(out));
}

Value f_reverse(Interpreter&, const Value& v, CallArgs&) {
  if (v.is_string()) {
    std::vector<uint32_t> cps = utf8_decode(v.str());
    std::reverse(cps.begin(), cps.end());
    return Value(utf8_encode(cps, 0, cps.size()));
  }
  std::vector<Value> items = iterate(v);
  std::reverse(items.begin(), items.end());
  return Value::list(std::move(items));
}

Value f_escape(Interpreter&, const Value& v, CallArgs&) {
  std::string out;
  for (char c : v.to_str()) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return Value(std::move(out));
}

Value f_indent(Interpreter& in, const Value& v, CallArgs& a) {
  const Value* w = arg(a, 0, "width");
  std::string pad =
      w ? (w->is_string() ? w->str()
                          : std::string(size_t(std::clamp<int64_t>(w->as_int(), 0, 256)), ' '))
        : std::string(4, ' ');
  bool first = arg_bool(a, 1, "first", false);
  bool blank = arg_bool(a, 2, "blank", false);
  std::string s = v.to_str();
  std::vector<std::string> lines = split(s, '\n');
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i) out += '\n';
    bool is_blank = py_strip(lines[i], nullptr, true, true).empty();
    if ((i > 0 || first) && (blank || !is_blank)) out += pad;
    out += lines[i];
    in.check_size(out.size());
  }
  return Value(std::move(out));
}

Value f_wordcount(Interpreter&, const Value& v, CallArgs&) {
  std::string s = v.to_str();
  int64_t n = 0;
  bool in_word = false;
  for (size_t i = 0; i < s.size();) {
    uint32_t c = utf8_next(s, i);
    bool w = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
             c == '_' || (c >= 0xC0 && !python_is_space(c));
    if (w && !in_word) ++n;
    in_word = w;
  }
  return Value(n);
}

Value f_batch(Interpreter&, const Value& v, CallArgs& a) {
  const Value* n = arg(a, 0, "linecount");
  if (!n || !n->is_int() || n->as_int() <= 0) raise("batch() needs a positive count");
  const Value* fill = arg(a, 1, "fill_with");
  std::vector<Value> out, cur;
  for (const Value& item : iterate(v)) {
    cur.push_back(item);
    if (int64_t(cur.size()) == n->as_int()) {
      out.push_back(Value::list(std::move(cur)));
      cur.clear();
    }
  }
  if (!cur.empty()) {
    if (fill && !fill->is_none()) {
      while (int64_t(cur.size()) < n->as_int()) cur.push_back(*fill);
    }
    out.push_back(Value::list(std::move(cur)));
  }
  return Value::list(std::move(out));
}

Value f_sum(Interpreter&, const Value& v, CallArgs& a) {
  const Value* attr = arg(a, 0, "attribute");
  const Value* start = arg(a, 1, "start");
  Value total = start ? *start : Value(int64_t(0));
  for (const Value& item : iterate(v))
    total = binary_op(BinOp::kAdd, total, attr ? get_path(item, *attr) : item);
  return total;
}

Value min_max(const Value& v, CallArgs& a, bool want_max) {
  bool cs = arg_bool(a, 0, "case_sensitive", false);
  const Value* attr = arg(a, 1, "attribute");
  std::vector<Value> items = iterate(v);
  if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  size_t best = 0;
  for (size_t i = 1; i < items.size(); ++i) {
    Value x = sort_key(attr ? get_path(items[i], *attr) : items[i], cs);
    Value b = sort_key(attr ? get_path(items[best], *attr) : items[best], cs);
    if (want_max ? b.less(x) : x.less(b)) best = i;
  }
  return items[best];
}
Value f_min(Interpreter&, const Value& v, CallArgs& a) { return min_max(v, a, false); }
Value f_max(Interpreter&, const Value& v, CallArgs& a) { return min_max(v, a, true); }

Value f_center(Interpreter&, const Value& v, CallArgs& a) {
  const Value* w = arg(a, 0, "width");
  int64_t width = w && w->is_int() ? std::min<int64_t>(w->as_int(), 1 << 20) : 80;
  std::string s = v.to_str();
  int64_t len = int64_t(utf8_length(s));
  if (width <= len) return Value(s);
  int64_t total = width - len, left = total / 2 + (total & width & 1);
  return Value(std::string(size_t(left), ' ') + s + std::string(size_t(total - left), ' '));
}

struct NamedFilter {
  const char* name;
  FilterFn fn;
};
const NamedFilter kFilters[] = {
    {"trim", f_trim},
    {"tojson", f_tojson},
    {"length", f_length},
    {"count", f_length},
    {"upper", f_upper},
    {"lower", f_lower},
    {"title", f_title},
    {"capitalize", f_capitalize},
    {"items", f_items},
    {"first", f_first},
    {"last", f_last},
    {"join", f_join},
    {"default", f_default},
    {"d", f_default},
    {"replace", f_replace},
    {"select", f_select},
    {"reject", f_reject},
    {"selectattr", f_selectattr},
    {"rejectattr", f_rejectattr},
    {"map", f_map},
    {"list", f_list},
    {"string", f_string},
    {"int", f_int},
    {"float", f_float},
    {"abs", f_abs},
    {"round", f_round},
    {"unique", f_unique},
    {"sort", f_sort},
    {"reverse", f_reverse},
    {"safe", f_safe},
    {"escape", f_escape},
    {"e", f_escape},
    {"indent", f_indent},
    {"wordcount", f_wordcount},
    {"batch", f_batch},
    {"dictsort", f_dictsort},
    {"sum", f_sum},
    {"min", f_min},
    {"max", f_max},
    {"center", f_center},
};

// ---- tests ----
bool t_defined(Interpreter&, const Value& v, CallArgs&) { return !v.is_undefined(); }
bool t_undefined(Interpreter&, const Value& v, CallArgs&) { return v.is_undefined(); }
bool t_none(Interpreter&, const Value& v, CallArgs&) { return v.is_none(); }
bool t_boolean(Interpreter&, const Value& v, CallArgs&) { return v.is_bool(); }
bool t_true(Interpreter&, const Value& v, CallArgs&) { return v.is_bool() && v.as_bool(); }
bool t_false(Interpreter&, const Value& v, CallArgs&) { return v.is_bool() && !v.as_bool(); }
bool t_integer(Interpreter&, const Value& v, CallArgs&) { return v.is_int(); }
bool t_float(Interpreter&, const Value& v, CallArgs&) { return v.is_float(); }
bool t_number(Interpreter&, const Value& v, CallArgs&) { return v.is_number(); }
bool t_string(Interpreter&, const Value& v, CallArgs&) { return v.is_string(); }
bool t_mapping(Interpreter&, const Value& v, CallArgs&) { return v.is_dict(); }
bool t_iterable(Interpreter&, const Value& v, CallArgs&) {
  return v.is_undefined() || v.is_string() || v.is_list() || v.is_dict();
}
bool t_sequence(Interpreter&, const Value& v, CallArgs&) {
  return v.is_undefined() || v.is_string() || v.is_list() || v.is_dict();
}
bool t_callable(Interpreter&, const Value& v, CallArgs&) { return v.is_callable(); }
const Value& need(const CallArgs& a, const char* test) {
  if (a.args.empty()) raise(str_cat("test '", test, "' needs an argument"));
  return a.args[0];
}
bool t_eq(Interpreter&, const Value& v, CallArgs& a) { return v.equals(need(a, "eq")); }
bool t_ne(Interpreter&, const Value& v, CallArgs& a) { return !v.equals(need(a, "ne")); }
bool t_lt(Interpreter&, const Value& v, CallArgs& a) { return v.less(need(a, "lt")); }
bool t_le(Interpreter&, const Value& v, CallArgs& a) { return !need(a, "le").less(v); }
bool t_gt(Interpreter&, const Value& v, CallArgs& a) { return need(a, "gt").less(v); }
bool t_ge(Interpreter&, const Value& v, CallArgs& a) { return !v.less(need(a, "ge")); }
bool t_in(Interpreter&, const Value& v, CallArgs& a) { return contains(need(a, "in"), v); }
bool t_sameas(Interpreter&, const Value& v, CallArgs& a) {
  const Value& o = need(a, "sameas");
  if (v.kind() != o.kind()) return false;
  if (v.is_none() || v.is_undefined()) return true;
  if (v.is_bool()) return v.as_bool() == o.as_bool();
  if (v.is_list() || v.is_dict() || v.is_namespace() || v.is_callable())
    return v.equals(o) && v.to_str() == o.to_str();
  return v.equals(o);
}
bool t_divisibleby(Interpreter&, const Value& v, CallArgs& a) {
  const Value& d = need(a, "divisibleby");
  if (!v.is_number() || !d.is_number()) raise("divisibleby needs numbers");
  if (d.as_double() == 0) raise("integer division or modulo by zero");
  return binary_op(BinOp::kMod, v, d).as_double() == 0;
}
bool t_even(Interpreter&, const Value& v, CallArgs&) {
  if (!v.is_int() && !v.is_bool()) raise("even needs an integer");
  return v.as_int() % 2 == 0;
}
bool t_odd(Interpreter&, const Value& v, CallArgs&) {
  if (!v.is_int() && !v.is_bool()) raise("odd needs an integer");
  return v.as_int() % 2 != 0;
}
bool t_lower(Interpreter&, const Value& v, CallArgs&) {
  std::string s = v.to_str();
  return py_lower(s) == s;
}
bool t_upper(Interpreter&, const Value& v, CallArgs&) {
  std::string s = v.to_str();
  return py_upper(s) == s;
}

bool t_escaped(Interpreter&, const Value&, CallArgs&) { return false; }

struct NamedTest {
  const char* name;
  TestFn fn;
};
const NamedTest kTests[] = {
    {"defined", t_defined},
    {"undefined", t_undefined},
    {"none", t_none},
    {"boolean", t_boolean},
    {"true", t_true},
    {"false", t_false},
    {"integer", t_integer},
    {"float", t_float},
    {"number", t_number},
    {"string", t_string},
    {"mapping", t_mapping},
    {"iterable", t_iterable},
    {"sequence", t_sequence},
    {"callable", t_callable},
    {"sameas", t_sameas},
    {"equalto", t_eq},
    {"eq", t_eq},
    {"==", t_eq},
    {"ne", t_ne},
    {"!=", t_ne},
    {"lt", t_lt},
    {"lessthan", t_lt},
    {"<", t_lt},
    {"le", t_le},
    {"<=", t_le},
    {"gt", t_gt},
    {"greaterthan", t_gt},
    {">", t_gt},
    {"ge", t_ge},
    {">=", t_ge},
    {"in", t_in},
    {"divisibleby", t_divisibleby},
    {"even", t_even},
    {"odd", t_odd},
    {"lower", t_lower},
    {"upper", t_upper},
    {"escaped", t_escaped},
};

}  // namespace

FilterFn find_filter(std::string_view name) {
  for (const auto& f : kFilters) {
    if (name == f.name) return f.fn;
  }
  return nullptr;
}

TestFn find_test(std::string_view name) {
  for (const auto& t : kTests) {
    if (name == t.name) return t.fn;
  }
  return nullptr;
}

bool Interpreter::apply_test(std::string_view name, const Value& v, CallArgs& args) {
  TestFn fn = find_test(name);
  if (fn == nullptr) raise(str_cat("unknown test '", name, "'"));
  step();
  return fn(*this, v, args);
}

Value Interpreter::apply_filter(std::string_view name, const Value& v, CallArgs& args) {
  FilterFn fn = find_filter(name);
  if (fn == nullptr) raise(str_cat("unknown filter '", name, "'"));
  step();
  return fn(*this, v, args);
}

}  // namespace runnel::tmpl
