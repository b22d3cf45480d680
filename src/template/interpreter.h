// The tree-walking interpreter: one per render call (cheap to make), never shared between threads.
// Scoping follows Jinja2: `for` bodies, macro calls and `with` blocks get their own frame; `set`
// writes to the innermost frame; namespace() objects carry state out of loops. Every statement,
// loop iteration and macro call counts against a step limit, and macro calls against a depth limit.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "template/ast.h"

namespace runnel::tmpl {

struct RenderLimits {
  int64_t max_steps = 5'000'000;        // statements + loop iterations + calls
  int max_call_depth = 100;             // nested macro calls
  size_t max_output_bytes = 256 << 20;  // any single string, and the output
};

struct RenderOptions {
  RenderLimits limits;
  // The clock of strftime_now(), seconds since the epoch, read as UTC. Unset: SOURCE_DATE_EPOCH
  // when that is set, else the local wall clock.
  std::optional<int64_t> now_unix_seconds;
};

class Interpreter {
 public:
  explicit Interpreter(const RenderOptions& options);
  ~Interpreter();

  // Renders `body` with `vars` (a dict) as the template's global variables.
  void render(const Body& body, const Value& vars, std::string& out);

  // Calls a callable value (macro, builtin function, bound method).
  Value call_value(const Value& callee, CallArgs& args);
  // Applies a test / filter by name (used by select/map and friends); throws when unknown.
  bool apply_test(std::string_view name, const Value& v, CallArgs& args);
  Value apply_filter(std::string_view name, const Value& v, CallArgs& args);
  void check_size(size_t bytes) const;
  // strftime_now(format).
  std::string strftime_now(const std::string& format) const;

 private:
  struct Frame;
  using FramePtr = std::shared_ptr<Frame>;
  enum class Flow { kNormal, kBreak, kContinue };

  Flow exec_body(const Body& body, std::string& out);
  Flow exec(const Stmt& s, std::string& out);
  Flow exec_inner(const Stmt& s, std::string& out);
  void exec_for(const Stmt& s, std::string& out);
  void define_macro(const Stmt& s);
  void exec_call_block(const Stmt& s, std::string& out);
  Value call_macro(const Stmt& m, const std::weak_ptr<Frame>& defined_in, CallArgs& args);

  Value eval(const Expr& e);
  Value eval_inner(const Expr& e);
  Value eval_call(const Expr& e);
  Value eval_add_chain(const Expr& e);
  Value eval_compare(const Expr& e);
  void eval_args(const Expr& e, size_t first, CallArgs& args);
  Value lookup(const std::string& name) const;
  void assign(const std::string& name, Value v);
  void step();
  [[noreturn]] void fail_at(const Stmt& s, const std::string& what) const;

  RenderOptions options_;
  FramePtr frame_;
  FramePtr globals_;
  int64_t steps_ = 0;
  int call_depth_ = 0;
  const Stmt* current_ = nullptr;
  Value filter_input_;  // the body text inside {% filter %}
};

// Python-style helpers shared by the interpreter and the builtins (builtins.cpp).
// The items a `for` loop visits: list items, dict keys, string characters; undefined is empty.
std::vector<Value> iterate(const Value& v);
// obj.name / obj[key] with Jinja's lookup order; undefined results carry a hint.
Value get_attr(const Value& obj, const std::string& name);
Value get_item(const Value& obj, const Value& key);
Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step);
Value binary_op(BinOp op, const Value& a, const Value& b);
bool contains(const Value& container, const Value& item);
bool has_method(const Value& obj, std::string_view name);
Value call_method(Interpreter& in, const Value& obj, std::string_view name, CallArgs& args);

}  // namespace runnel::tmpl
