// Statement execution and expression evaluation. Runtime errors from value helpers (ValueError)
// are converted to TemplateError at the innermost expression, so they carry its line and column.
#include "template/interpreter.h"

#include <ctime>

#include "base/env.h"
#include "base/strings.h"
#include "template/error.h"

namespace runnel::tmpl {

struct Interpreter::Frame {
  std::vector<std::pair<std::string, Value>> vars;
  FramePtr parent;

  Value* find_local(const std::string& name) {
    for (auto& [k, v] : vars) {
      if (k == name) return &v;
    }
    return nullptr;
  }
  void set(const std::string& name, Value v) {
    if (Value* slot = find_local(name)) {
      *slot = std::move(v);
    } else {
      vars.emplace_back(name, std::move(v));
    }
  }
};

namespace {

[[noreturn]] void raise(const std::string& what) { throw ValueError(what); }

const std::string& arg_string(const CallArgs& args, size_t i, std::string_view name,
                              const char* fn) {
  const Value* v = args.get(i, name);
  if (v == nullptr || !v->is_string()) raise(str_cat(fn, "() expects a string argument"));
  return v->str();
}

// The global functions every template sees.
Value builtin_globals() {
  Value g = Value::dict();
  Dict& d = g.dict_ref();
  d.set("raise_exception",
        Value::callable("raise_exception", [](Interpreter&, CallArgs& a) -> Value {
          const Value* m = a.get(0, "message");
          throw TemplateError(0, 0, m ? m->to_str() : std::string(), true);
        }));
  d.set("strftime_now", Value::callable("strftime_now", [](Interpreter& in, CallArgs& a) {
          return Value(in.strftime_now(arg_string(a, 0, "format", "strftime_now")));
        }));
  auto make_ns = [](bool is_ns) {
    return [is_ns](Interpreter&, CallArgs& a) {
      Value v = is_ns ? Value::name_space() : Value::dict();
      Dict& d = v.dict_ref();
      for (const Value& p : a.args) {
        if (!p.is_dict()) raise("namespace()/dict() expects keyword arguments or a dict");
        for (const auto& [k, val] : p.dict_ref().items) d.set(k, val);
      }
      for (const auto& [k, val] : a.kwargs) d.set(Value(k), val);
      return v;
    };
  };
  d.set("namespace", Value::callable("namespace", make_ns(true)));
  d.set("dict", Value::callable("dict", make_ns(false)));
  d.set("range", Value::callable("range", [](Interpreter&, CallArgs& a) {
          int64_t start = 0, stop = 0, step = 1;
          for (const Value& v : a.args) {
            if (!v.is_int() && !v.is_bool()) raise("range() expects integers");
          }
          if (a.args.size() == 1) {
            stop = a.args[0].as_int();
          } else if (a.args.size() >= 2) {
            start = a.args[0].as_int();
            stop = a.args[1].as_int();
            if (a.args.size() >= 3) step = a.args[2].as_int();
          } else {
            raise("range() expects 1 to 3 arguments");
          }
          if (step == 0) raise("range() arg 3 must not be zero");
          std::vector<Value> items;
          for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
            if (items.size() >= 1'000'000) raise("range() too large");
            items.emplace_back(i);
          }
          return Value::list(std::move(items));
        }));
  d.set("joiner", Value::callable("joiner", [](Interpreter&, CallArgs& a) {
          const Value* sep = a.get(0, "sep");
          auto used = std::make_shared<bool>(false);
          std::string s = sep ? sep->to_str() : ", ";
          return Value::callable("joiner", [used, s](Interpreter&, CallArgs&) {
            if (!*used) {
              *used = true;
              return Value(std::string());
            }
            return Value(s);
          });
        }));
  return g;
}

}  // namespace

Interpreter::Interpreter(const RenderOptions& options) : options_(options) {}
Interpreter::~Interpreter() = default;

void Interpreter::render(const Body& body, const Value& vars, std::string& out) {
  static const Value kBuiltins = builtin_globals();
  auto builtins = std::make_shared<Frame>();
  for (const auto& [k, v] : kBuiltins.dict_ref().items) builtins->vars.emplace_back(k.str(), v);
  globals_ = std::make_shared<Frame>();
  globals_->parent = builtins;
  if (vars.is_dict()) {
    for (const auto& [k, v] : vars.dict_ref().items) globals_->set(k.to_str(), v);
  }
  frame_ = globals_;
  exec_body(body, out);
  frame_.reset();
  globals_.reset();
}

void Interpreter::step() {
  if (++steps_ > options_.limits.max_steps) {
    if (current_) fail_at(*current_, "step limit exceeded (infinite loop?)");
    throw TemplateError(0, 0, "step limit exceeded (infinite loop?)");
  }
}

void Interpreter::check_size(size_t bytes) const {
  if (bytes > options_.limits.max_output_bytes) raise("string too large");
}

void Interpreter::fail_at(const Stmt& s, const std::string& what) const {
  throw TemplateError(s.line, s.col, what);
}

std::string Interpreter::strftime_now(const std::string& format) const {
  std::time_t t;
  bool utc = true;
  if (options_.now_unix_seconds) {
    t = std::time_t(*options_.now_unix_seconds);
  } else if (auto epoch = env_int("SOURCE_DATE_EPOCH")) {
    t = std::time_t(*epoch);
  } else {
    t = std::time(nullptr);
    utc = false;
  }
  std::tm tm{};
  if (utc) {
    gmtime_r(&t, &tm);
  } else {
    localtime_r(&t, &tm);
  }
  if (format.empty()) return "";
  std::string buf(format.size() * 8 + 64, '\0');
  size_t n = std::strftime(buf.data(), buf.size(), format.c_str(), &tm);
  buf.resize(n);
  return buf;
}

Value Interpreter::lookup(const std::string& name) const {
  for (Frame* f = frame_.get(); f != nullptr; f = f->parent.get()) {
    if (Value* v = f->find_local(name)) return *v;
  }
  return Value::undefined("'" + name + "' is undefined");
}

void Interpreter::assign(const std::string& name, Value v) { frame_->set(name, std::move(v)); }

Interpreter::Flow Interpreter::exec_body(const Body& body, std::string& out) {
  for (const StmtPtr& s : body) {
    Flow f = exec(*s, out);
    if (f != Flow::kNormal) return f;
  }
  return Flow::kNormal;
}

Interpreter::Flow Interpreter::exec(const Stmt& s, std::string& out) {
  try {
    return exec_inner(s, out);
  } catch (const ValueError& err) {
    fail_at(s, err.what());
  }
}

Interpreter::Flow Interpreter::exec_inner(const Stmt& s, std::string& out) {
  current_ = &s;
  step();
  switch (s.kind) {
    case StmtKind::kText:
      out += s.text;
      break;
    case StmtKind::kOutput: {
      Value v = eval(*s.expr);
      v.append_str(out);
      if (out.size() > options_.limits.max_output_bytes) fail_at(s, "output too large");
      break;
    }
    case StmtKind::kIf:
      for (size_t i = 0; i < s.values.size(); ++i) {
        if (eval(*s.values[i]).truthy()) return exec_body(s.bodies[i], out);
      }
      return exec_body(s.else_body, out);
    case StmtKind::kFor:
      exec_for(s, out);
      break;
    case StmtKind::kSet: {
      Value v = eval(*s.expr);
      if (s.targets.size() == 1) {
        assign(s.targets[0], std::move(v));
        break;
      }
      std::vector<Value> items = iterate(v);
      if (items.size() != s.targets.size()) {
        fail_at(s, str_cat("cannot unpack ", items.size(), " values into ", s.targets.size()));
      }
      for (size_t i = 0; i < items.size(); ++i) assign(s.targets[i], items[i]);
      break;
    }
    case StmtKind::kSetAttr: {
      Value ns = lookup(s.targets[0]);
      if (!ns.is_namespace()) fail_at(s, "cannot assign attribute on non-namespace object");
      ns.dict_ref().set(Value(s.text), eval(*s.expr));
      break;
    }
    case StmtKind::kSetBlock: {
      std::string body;
      Flow f = exec_body(s.body, body);
      (void)f;
      Value v(std::move(body));
      if (s.expr) {
        Value saved = std::move(filter_input_);
        filter_input_ = std::move(v);
        v = eval(*s.expr);
        filter_input_ = std::move(saved);
      }
      assign(s.targets[0], std::move(v));
      break;
    }
    case StmtKind::kMacro:
      define_macro(s);
      break;
    case StmtKind::kCallBlock:
      exec_call_block(s, out);
      break;
    case StmtKind::kFilterBlock: {
      std::string body;
      exec_body(s.body, body);
      Value saved = std::move(filter_input_);
      filter_input_ = Value(std::move(body));
      Value v = eval(*s.expr);
      filter_input_ = std::move(saved);
      v.append_str(out);
      break;
    }
    case StmtKind::kWith: {
      auto f = std::make_shared<Frame>();
      f->parent = frame_;
      for (size_t i = 0; i < s.targets.size(); ++i) f->set(s.targets[i], eval(*s.values[i]));
      FramePtr saved = frame_;
      frame_ = f;
      Flow fl = exec_body(s.body, out);
      frame_ = saved;
      return fl;
    }
    case StmtKind::kBreak:
      return Flow::kBreak;
    case StmtKind::kContinue:
      return Flow::kContinue;
    case StmtKind::kScope:
      return exec_body(s.body, out);
  }
  return Flow::kNormal;
}

void Interpreter::exec_for(const Stmt& s, std::string& out) {
  Value seq = eval(*s.expr);
  if (seq.is_none() || seq.is_int() || seq.is_float() || seq.is_bool() || seq.is_callable()) {
    fail_at(s, str_cat("'", seq.type_name(), "' object is not iterable"));
  }
  std::vector<Value> items = iterate(seq);
  auto f = std::make_shared<Frame>();
  f->parent = frame_;
  FramePtr saved = frame_;
  frame_ = f;
  auto bind = [&](const Value& item) {
    if (s.targets.size() == 1) {
      f->set(s.targets[0], item);
      return;
    }
    std::vector<Value> parts = iterate(item);
    if (parts.size() != s.targets.size()) {
      fail_at(s, str_cat("cannot unpack ", parts.size(), " values into ", s.targets.size(),
                         " loop variables"));
    }
    for (size_t k = 0; k < parts.size(); ++k) f->set(s.targets[k], parts[k]);
  };
  if (s.cond) {
    std::vector<Value> kept;
    for (const Value& item : items) {
      step();
      bind(item);
      if (eval(*s.cond).truthy()) kept.push_back(item);
    }
    items = std::move(kept);
  }
  const int64_t n = int64_t(items.size());
  Value loop = Value::dict();
  auto index0 = std::make_shared<int64_t>(0);
  {
    Dict& d = loop.dict_ref();
    for (const char* k : {"index", "index0", "revindex", "revindex0", "first", "last", "length",
                          "previtem", "nextitem", "depth", "depth0"}) {
      d.items.emplace_back(Value(k), Value());
    }
    d.items.emplace_back(Value("cycle"),
                         Value::callable("cycle", [index0](Interpreter&, CallArgs& a) {
                           if (a.args.empty()) raise("cycle() needs at least one argument");
                           return a.args[size_t(*index0 % int64_t(a.args.size()))];
                         }));
    d.items[6].second = Value(n);
    d.items[9].second = Value(int64_t(1));
    d.items[10].second = Value(int64_t(0));
  }
  f->set("loop", loop);
  Dict& ld = loop.dict_ref();
  for (int64_t i = 0; i < n; ++i) {
    step();
    // Jinja gives each iteration fresh locals: a `set` in one iteration is gone in the next.
    f->vars.clear();
    f->vars.emplace_back("loop", loop);
    bind(items[size_t(i)]);
    *index0 = i;
    ld.items[0].second = Value(i + 1);
    ld.items[1].second = Value(i);
    ld.items[2].second = Value(n - i);
    ld.items[3].second = Value(n - i - 1);
    ld.items[4].second = Value(i == 0);
    ld.items[5].second = Value(i == n - 1);
    ld.items[7].second =
        i > 0 ? items[size_t(i - 1)] : Value::undefined("there is no previous item");
    ld.items[8].second =
        i + 1 < n ? items[size_t(i + 1)] : Value::undefined("there is no next item");
    Flow fl = exec_body(s.body, out);
    if (fl == Flow::kBreak) break;
  }
  if (n == 0) exec_body(s.else_body, out);
  frame_ = saved;
}

void Interpreter::define_macro(const Stmt& s) {
  std::weak_ptr<Frame> defined_in = frame_;
  const Stmt* m = &s;
  assign(s.text, Value::callable(s.text, [m, defined_in](Interpreter& in, CallArgs& args) {
           return in.call_macro(*m, defined_in, args);
         }));
}

Value Interpreter::call_macro(const Stmt& m, const std::weak_ptr<Frame>& defined_in,
                              CallArgs& args) {
  if (call_depth_ >= options_.limits.max_call_depth) {
    fail_at(m, str_cat("maximum recursion depth exceeded in macro '", m.text, "'"));
  }
  step();
  auto f = std::make_shared<Frame>();
  f->parent = defined_in.lock();
  if (!f->parent) f->parent = globals_;
  std::vector<Value> varargs;
  for (size_t i = 0; i < args.args.size(); ++i) {
    if (i < m.params.size()) {
      f->set(m.params[i].name, args.args[i]);
    } else {
      varargs.push_back(args.args[i]);
    }
  }
  Value kwargs = Value::dict();
  for (auto& [k, v] : args.kwargs) {
    bool is_param = k == "caller";
    for (const auto& p : m.params) is_param = is_param || p.name == k;
    if (is_param) {
      f->set(k, v);
    } else {
      kwargs.dict_ref().set(Value(k), v);
    }
  }
  f->set("varargs", Value::tuple(std::move(varargs)));
  f->set("kwargs", kwargs);
  FramePtr saved = frame_;
  const Stmt* saved_stmt = current_;
  frame_ = f;
  ++call_depth_;
  struct Restore {
    Interpreter& in;
    FramePtr saved;
    const Stmt* stmt;
    ~Restore() {
      in.frame_ = saved;
      in.current_ = stmt;
      --in.call_depth_;
    }
  } restore{*this, saved, saved_stmt};
  for (const auto& p : m.params) {
    if (f->find_local(p.name)) continue;
    if (p.default_value) {
      f->set(p.name, eval(*p.default_value));
    } else {
      f->set(p.name, Value::undefined(str_cat("parameter '", p.name, "' was not provided")));
    }
  }
  std::string out;
  exec_body(m.body, out);
  return Value(std::move(out));
}

void Interpreter::exec_call_block(const Stmt& s, std::string& out) {
  const Expr& call = *s.expr;
  Value callee = eval(*call.kids[0]);
  CallArgs args;
  eval_args(call, 1, args);
  std::weak_ptr<Frame> here = frame_;
  const Stmt* body = &s;
  args.kwargs.emplace_back("caller",
                           Value::callable("caller", [body, here](Interpreter& in, CallArgs& a) {
                             return in.call_macro(*body, here, a);
                           }));
  Value v = call_value(callee, args);
  v.append_str(out);
}

Value Interpreter::call_value(const Value& callee, CallArgs& args) {
  if (callee.is_callable()) return callee.callable_ref().fn(*this, args);
  if (callee.is_undefined()) raise(callee.undefined_hint());
  raise(str_cat("'", callee.type_name(), "' object is not callable"));
}

void Interpreter::eval_args(const Expr& e, size_t first, CallArgs& args) {
  args.args.reserve(e.kids.size() - first);
  for (size_t i = first; i < e.kids.size(); ++i) args.args.push_back(eval(*e.kids[i]));
  for (const auto& [k, v] : e.kwargs) args.kwargs.emplace_back(k, eval(*v));
}

Value Interpreter::eval(const Expr& e) {
  try {
    return eval_inner(e);
  } catch (const ValueError& err) {
    throw TemplateError(e.line, e.col, err.what());
  } catch (const TemplateError& err) {
    if (err.raised() && err.line() == 0) {
      throw TemplateError(e.line, e.col, err.message(), true);
    }
    throw;
  }
}

}  // namespace runnel::tmpl
