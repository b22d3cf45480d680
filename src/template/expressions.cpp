// Expression evaluation (Interpreter::eval_inner) and the Python operators it relies on:
// arithmetic, `in`, attribute/item lookup with Jinja's order, slices.
#include <algorithm>
#include <cmath>
#include <optional>

#include "base/strings.h"
#include "template/error.h"
#include "template/interpreter.h"
#include "template/text.h"

namespace runnel::tmpl {
namespace {

[[noreturn]] void raise(const std::string& what) { throw ValueError(what); }

std::string object_name(const Value& v) {
  if (v.is_none()) return "None";
  return std::string(v.type_name()) + " object";
}

Value no_attribute(const Value& obj, const std::string& name) {
  return Value::undefined("'" + object_name(obj) + "' has no attribute '" + name + "'");
}

bool is_ascii(const std::string& s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

}  // namespace

std::vector<Value> iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return {};
    case Value::Kind::kList:
      return v.list_ref().items;
    case Value::Kind::kDict: {
      std::vector<Value> keys;
      keys.reserve(v.dict_ref().items.size());
      for (const auto& kv : v.dict_ref().items) keys.push_back(kv.first);
      return keys;
    }
    case Value::Kind::kString: {
      std::vector<Value> chars;
      const std::string& s = v.str();
      for (size_t i = 0; i < s.size();) {
        size_t b = i;
        utf8_next(s, i);
        chars.emplace_back(s.substr(b, i - b));
      }
      return chars;
    }
    default:
      raise(str_cat("'", v.type_name(), "' object is not iterable"));
  }
}

Value get_attr(const Value& obj, const std::string& name) {
  switch (obj.kind()) {
    case Value::Kind::kUndefined:
      raise(obj.undefined_hint());
    case Value::Kind::kDict:
    case Value::Kind::kNamespace:
      if (obj.is_dict() && has_method(obj, name)) break;
      if (const Value* v = obj.dict_ref().find(std::string_view(name))) return *v;
      return no_attribute(obj, name);
    case Value::Kind::kString:
    case Value::Kind::kList:
      if (has_method(obj, name)) break;
      [[fallthrough]];
    default:
      return no_attribute(obj, name);
  }
  // A bound method.
  Value self = obj;
  return Value::callable(name, [self, name](Interpreter& in, CallArgs& args) {
    return call_method(in, self, name, args);
  });
}

static int64_t normalize_index(int64_t i, size_t n, bool* ok) {
  if (i < 0) i += int64_t(n);
  *ok = i >= 0 && i < int64_t(n);
  return i;
}

Value get_item(const Value& obj, const Value& key) {
  switch (obj.kind()) {
    case Value::Kind::kUndefined:
      raise(obj.undefined_hint());
    case Value::Kind::kDict:
    case Value::Kind::kNamespace:
      if (const Value* v = obj.dict_ref().find(key)) return *v;
      if (key.is_string()) return get_attr(obj, key.str());
      return Value::undefined(
          str_cat("'", object_name(obj), "' has no attribute '", key.to_str(), "'"));
    case Value::Kind::kList: {
      if (key.is_int() || key.is_bool()) {
        const auto& items = obj.list_ref().items;
        bool ok;
        int64_t i = normalize_index(key.as_int(), items.size(), &ok);
        if (ok) return items[size_t(i)];
        return Value::undefined(str_cat("'", object_name(obj), "' has no element ", key.as_int()));
      }
      if (key.is_string()) return get_attr(obj, key.str());
      raise(str_cat("list indices must be integers, not ", key.type_name()));
    }
    case Value::Kind::kString: {
      if (key.is_int() || key.is_bool()) {
        const std::string& s = obj.str();
        bool ok;
        if (is_ascii(s)) {
          int64_t i = normalize_index(key.as_int(), s.size(), &ok);
          if (ok) return Value(std::string(1, s[size_t(i)]));
        } else {
          std::vector<uint32_t> cps = utf8_decode(s);
          int64_t i = normalize_index(key.as_int(), cps.size(), &ok);
          if (ok) return Value(utf8_encode(cps, size_t(i), size_t(i) + 1));
        }
        return Value::undefined(str_cat("'str object' has no element ", key.as_int()));
      }
      if (key.is_string()) return get_attr(obj, key.str());
      raise(str_cat("string indices must be integers, not ", key.type_name()));
    }
    default:
      return Value::undefined(
          str_cat("'", object_name(obj), "' has no attribute '", key.to_str(), "'"));
  }
}

// Python slice semantics over n elements; returns the selected indices.
static std::vector<size_t> slice_indices(size_t n, const Value& start, const Value& stop,
                                         const Value& step) {
  auto as_opt = [](const Value& v, const char* what) -> std::optional<int64_t> {
    if (v.is_undefined() || v.is_none()) return std::nullopt;
    if (!v.is_int() && !v.is_bool()) raise(str_cat("slice ", what, " must be an integer or None"));
    return v.as_int();
  };
  int64_t st = as_opt(step, "step").value_or(1);
  if (st == 0) raise("slice step cannot be zero");
  int64_t len = int64_t(n);
  auto clamp = [&](std::optional<int64_t> v, int64_t def) {
    if (!v) return def;
    int64_t x = *v;
    if (x < 0) x += len;
    if (st > 0) return std::clamp<int64_t>(x, 0, len);
    return std::clamp<int64_t>(x, -1, len - 1);
  };
  int64_t b = clamp(as_opt(start, "start"), st > 0 ? 0 : len - 1);
  int64_t e = clamp(as_opt(stop, "stop"), st > 0 ? len : -1);
  std::vector<size_t> idx;
  for (int64_t i = b; st > 0 ? i < e : i > e; i += st) idx.push_back(size_t(i));
  return idx;
}

Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step) {
  if (obj.is_list()) {
    const auto& items = obj.list_ref().items;
    std::vector<Value> out;
    for (size_t i : slice_indices(items.size(), start, stop, step)) out.push_back(items[i]);
    return obj.list_ref().is_tuple ? Value::tuple(std::move(out)) : Value::list(std::move(out));
  }
  if (obj.is_string()) {
    const std::string& s = obj.str();
    std::string out;
    if (is_ascii(s)) {
      for (size_t i : slice_indices(s.size(), start, stop, step)) out += s[i];
    } else {
      std::vector<uint32_t> cps = utf8_decode(s);
      for (size_t i : slice_indices(cps.size(), start, stop, step)) utf8_append(out, cps[i]);
    }
    return Value(std::move(out));
  }
  if (obj.is_undefined()) raise(obj.undefined_hint());
  raise(str_cat("'", obj.type_name(), "' object is not subscriptable"));
}

bool contains(const Value& c, const Value& item) {
  switch (c.kind()) {
    case Value::Kind::kString:
      if (!item.is_string()) {
        raise(str_cat("'in <string>' requires string as left operand, not ", item.type_name()));
      }
      return c.str().find(item.str()) != std::string::npos;
    case Value::Kind::kList:
      for (const Value& v : c.list_ref().items) {
        if (v.equals(item)) return true;
      }
      return false;
    case Value::Kind::kDict:
      return c.dict_ref().find(item) != nullptr;
    case Value::Kind::kUndefined:
      return false;
    default:
      raise(str_cat("argument of type '", c.type_name(), "' is not iterable"));
  }
}

// Overflow-checked int64 arithmetic (Python ints do not overflow; we refuse instead).
template <class Op>
static int64_t checked(Op op, int64_t x, int64_t y) {
  int64_t r = 0;
  if (op(x, y, &r)) raise("integer overflow");
  return r;
}
static bool add_ovf(int64_t x, int64_t y, int64_t* r) { return __builtin_add_overflow(x, y, r); }
static bool sub_ovf(int64_t x, int64_t y, int64_t* r) { return __builtin_sub_overflow(x, y, r); }
static bool mul_ovf(int64_t x, int64_t y, int64_t* r) { return __builtin_mul_overflow(x, y, r); }

Value binary_op(BinOp op, const Value& a, const Value& b) {
  if (op == BinOp::kConcat) {
    std::string s = a.to_str();
    b.append_str(s);
    return Value(std::move(s));
  }
  if (a.is_undefined()) raise(a.undefined_hint());
  if (b.is_undefined()) raise(b.undefined_hint());
  const char* sym = "+";
  switch (op) {
    case BinOp::kSub:
      sym = "-";
      break;
    case BinOp::kMul:
      sym = "*";
      break;
    case BinOp::kDiv:
      sym = "/";
      break;
    case BinOp::kFloorDiv:
      sym = "//";
      break;
    case BinOp::kMod:
      sym = "%";
      break;
    case BinOp::kPow:
      sym = "**";
      break;
    default:
      break;
  }
  if (a.is_number() && b.is_number()) {
    bool ints = !a.is_float() && !b.is_float();
    int64_t x = a.as_int(), y = b.as_int();
    double fx = a.as_double(), fy = b.as_double();
    switch (op) {
      case BinOp::kAdd:
        if (ints) return Value(checked(add_ovf, x, y));
        return Value(fx + fy);
      case BinOp::kSub:
        if (ints) return Value(checked(sub_ovf, x, y));
        return Value(fx - fy);
      case BinOp::kMul:
        if (ints) return Value(checked(mul_ovf, x, y));
        return Value(fx * fy);
      case BinOp::kDiv:
        if (fy == 0) raise("division by zero");
        return Value(fx / fy);
      case BinOp::kFloorDiv:
        if (fy == 0) raise("integer division or modulo by zero");
        if (ints) {
          if (x == INT64_MIN && y == -1) raise("integer overflow");
          int64_t q = x / y;
          if ((x % y != 0) && ((x < 0) != (y < 0))) --q;
          return Value(q);
        }
        return Value(std::floor(fx / fy));
      case BinOp::kMod:
        if (fy == 0) raise("integer division or modulo by zero");
        if (ints) {
          if (y == -1) return Value(int64_t(0));
          int64_t m = x % y;
          if (m != 0 && ((m < 0) != (y < 0))) m += y;
          return Value(m);
        } else {
          double m = std::fmod(fx, fy);
          if (m != 0 && ((m < 0) != (fy < 0))) m += fy;
          return Value(m);
        }
      case BinOp::kPow:
        if (ints && y >= 0) {
          int64_t result = 1, base = x;
          for (int64_t e = y; e > 0; e >>= 1) {
            if (e & 1) result = checked(mul_ovf, result, base);
            if (e > 1) base = checked(mul_ovf, base, base);
          }
          return Value(result);
        }
        return Value(std::pow(fx, fy));
      default:
        break;
    }
  }
  if (op == BinOp::kAdd && a.is_string() && b.is_string()) {
    std::string s;
    s.reserve(a.str().size() + b.str().size());
    s += a.str();
    s += b.str();
    return Value(std::move(s));
  }
  if (op == BinOp::kAdd && a.is_list() && b.is_list()) {
    std::vector<Value> items = a.list_ref().items;
    items.insert(items.end(), b.list_ref().items.begin(), b.list_ref().items.end());
    return a.list_ref().is_tuple ? Value::tuple(std::move(items)) : Value::list(std::move(items));
  }
  if (op == BinOp::kMul && (a.is_string() || a.is_list()) && (b.is_int() || b.is_bool())) {
    return binary_op(op, b, a);
  }
  if (op == BinOp::kMul && (a.is_int() || a.is_bool()) && (b.is_string() || b.is_list())) {
    int64_t n = std::max<int64_t>(0, a.as_int());
    size_t unit = b.is_string() ? b.str().size() : b.list_ref().items.size();
    if (unit != 0 && uint64_t(n) > (uint64_t(64) << 20) / unit)
      raise("repeated sequence too large");
    if (b.is_string()) {
      std::string s;
      for (int64_t i = 0; i < n; ++i) s += b.str();
      return Value(std::move(s));
    }
    std::vector<Value> items;
    for (int64_t i = 0; i < n; ++i) {
      items.insert(items.end(), b.list_ref().items.begin(), b.list_ref().items.end());
    }
    return Value::list(std::move(items));
  }
  raise(str_cat("unsupported operand type(s) for ", sym, ": '", a.type_name(), "' and '",
                b.type_name(), "'"));
}

Value Interpreter::eval_compare(const Expr& e) {
  Value left = eval(*e.kids[0]);
  for (size_t i = 0; i < e.cmp_ops.size(); ++i) {
    Value right = eval(*e.kids[i + 1]);
    bool r = false;
    switch (e.cmp_ops[i]) {
      case CmpOp::kEq:
        r = left.equals(right);
        break;
      case CmpOp::kNe:
        r = !left.equals(right);
        break;
      case CmpOp::kLt:
        r = left.less(right);
        break;
      case CmpOp::kLe:
        r = !right.less(left);
        break;
      case CmpOp::kGt:
        r = right.less(left);
        break;
      case CmpOp::kGe:
        r = !left.less(right);
        break;
      case CmpOp::kIn:
        r = contains(right, left);
        break;
      case CmpOp::kNotIn:
        r = !contains(right, left);
        break;
    }
    if (!r) return Value(false);
    left = std::move(right);
  }
  return Value(true);
}

Value Interpreter::eval_call(const Expr& e) {
  const Expr& callee = *e.kids[0];
  CallArgs args;
  if (callee.kind == ExprKind::kAttr) {
    Value obj = eval(*callee.kids[0]);
    if ((obj.is_string() || obj.is_list() || obj.is_dict()) && has_method(obj, callee.name)) {
      eval_args(e, 1, args);
      step();
      return call_method(*this, obj, callee.name, args);
    }
    Value fn = get_attr(obj, callee.name);
    eval_args(e, 1, args);
    step();
    return call_value(fn, args);
  }
  Value fn = eval(callee);
  eval_args(e, 1, args);
  step();
  return call_value(fn, args);
}

// a + b + c + ...: when every operand is a string, one buffer instead of a temporary per `+`.
// Operands are evaluated left to right as before; mixed types fall back to pairwise adds.
Value Interpreter::eval_add_chain(const Expr& e) {
  std::vector<const Expr*> leaves;
  const Expr* cur = &e;
  while (cur->kind == ExprKind::kBinary && cur->op == BinOp::kAdd) {
    leaves.push_back(cur->kids[1].get());
    cur = cur->kids[0].get();
  }
  leaves.push_back(cur);
  std::reverse(leaves.begin(), leaves.end());
  std::vector<Value> values;
  values.reserve(leaves.size());
  size_t total = 0;
  bool all_strings = true;
  for (const Expr* leaf : leaves) {
    values.push_back(eval(*leaf));
    if (values.back().is_string()) {
      total += values.back().str().size();
    } else {
      all_strings = false;
    }
  }
  if (all_strings) {
    check_size(total);
    std::string out;
    out.reserve(total);
    for (const Value& v : values) out += v.str();
    return Value(std::move(out));
  }
  Value acc = values[0];
  for (size_t i = 1; i < values.size(); ++i) {
    acc = binary_op(BinOp::kAdd, acc, values[i]);
    if (acc.is_string()) check_size(acc.str().size());
  }
  return acc;
}

Value Interpreter::eval_inner(const Expr& e) {
  switch (e.kind) {
    case ExprKind::kLiteral:
      return e.literal;
    case ExprKind::kName:
      return lookup(e.name);
    case ExprKind::kList:
    case ExprKind::kTuple: {
      std::vector<Value> items;
      items.reserve(e.kids.size());
      for (const auto& k : e.kids) items.push_back(eval(*k));
      return e.kind == ExprKind::kList ? Value::list(std::move(items))
                                       : Value::tuple(std::move(items));
    }
    case ExprKind::kDict: {
      Value d = Value::dict();
      for (size_t i = 0; i + 1 < e.kids.size(); i += 2) {
        d.dict_ref().set(eval(*e.kids[i]), eval(*e.kids[i + 1]));
      }
      return d;
    }
    case ExprKind::kAttr:
      return get_attr(eval(*e.kids[0]), e.name);
    case ExprKind::kSubscript:
      return get_item(eval(*e.kids[0]), eval(*e.kids[1]));
    case ExprKind::kSlice: {
      Value obj = eval(*e.kids[0]);
      auto opt = [&](size_t i) { return e.kids[i] ? eval(*e.kids[i]) : Value::none(); };
      return slice(obj, opt(1), opt(2), opt(3));
    }
    case ExprKind::kCall:
      return eval_call(e);
    case ExprKind::kFilter: {
      Value input = e.kids[0] ? eval(*e.kids[0]) : filter_input_;
      CallArgs args;
      eval_args(e, 1, args);
      return e.filter(*this, input, args);
    }
    case ExprKind::kTest: {
      Value v = eval(*e.kids[0]);
      CallArgs args;
      eval_args(e, 1, args);
      return Value(e.test(*this, v, args));
    }
    case ExprKind::kNot:
      return Value(!eval(*e.kids[0]).truthy());
    case ExprKind::kNeg:
    case ExprKind::kPos: {
      Value v = eval(*e.kids[0]);
      if (v.is_float()) return Value(e.kind == ExprKind::kNeg ? -v.as_double() : v.as_double());
      if (v.is_int() || v.is_bool()) {
        if (e.kind == ExprKind::kPos) return Value(v.as_int());
        if (v.as_int() == INT64_MIN) raise("integer overflow");
        return Value(-v.as_int());
      }
      if (v.is_undefined()) raise(v.undefined_hint());
      raise(str_cat("bad operand type for unary ", e.kind == ExprKind::kNeg ? "-" : "+", ": '",
                    v.type_name(), "'"));
    }
    case ExprKind::kBinary: {
      if (e.op == BinOp::kAdd && e.kids[0]->kind == ExprKind::kBinary &&
          e.kids[0]->op == BinOp::kAdd) {
        return eval_add_chain(e);
      }
      Value a = eval(*e.kids[0]);
      Value b = eval(*e.kids[1]);
      Value r = binary_op(e.op, a, b);
      if (r.is_string()) check_size(r.str().size());
      return r;
    }
    case ExprKind::kAnd: {
      Value a = eval(*e.kids[0]);
      if (!a.truthy()) return a;
      return eval(*e.kids[1]);
    }
    case ExprKind::kOr: {
      Value a = eval(*e.kids[0]);
      if (a.truthy()) return a;
      return eval(*e.kids[1]);
    }
    case ExprKind::kCompare:
      return eval_compare(e);
    case ExprKind::kCond:
      if (eval(*e.kids[0]).truthy()) return eval(*e.kids[1]);
      if (e.kids[2]) return eval(*e.kids[2]);
      return Value::undefined(
          "the inline if-expression evaluated to false and no else section was defined");
  }
  return Value();
}

}  // namespace runnel::tmpl
