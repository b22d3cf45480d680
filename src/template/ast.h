// The syntax tree of a parsed template. Built once by the parser, then only read: rendering never
// mutates it, so one Template can render on many threads at once. Filters and tests are resolved
// to function pointers at parse time (an unknown name is a syntax error).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "template/value.h"

namespace runnel::tmpl {

struct Expr;
struct Stmt;
using ExprPtr = std::unique_ptr<Expr>;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

// Filter: input value, call arguments; returns the filtered value.
using FilterFn = Value (*)(Interpreter&, const Value& input, CallArgs& args);
// Test: value, call arguments.
using TestFn = bool (*)(Interpreter&, const Value& value, CallArgs& args);

enum class ExprKind : uint8_t {
  kLiteral,    // literal
  kName,       // name
  kList,       // kids
  kTuple,      // kids
  kDict,       // kids: key, value, key, value...
  kAttr,       // kids[0].name
  kSubscript,  // kids[0][kids[1]]
  kSlice,      // kids[0][kids[1]:kids[2]:kids[3]] (null kids are omitted bounds)
  kCall,       // kids[0](kids[1..], kwargs)
  kFilter,     // kids[0] | name(kids[1..], kwargs); kids[0] null inside {% filter %}
  kTest,       // kids[0] is name(kids[1..], kwargs)
  kNot,        // not kids[0]
  kNeg,        // -kids[0]
  kPos,        // +kids[0]
  kBinary,     // kids[0] op kids[1]
  kAnd,        // kids[0] and kids[1]
  kOr,         // kids[0] or kids[1]
  kCompare,    // kids[0] ops[0] kids[1] ops[1] kids[2] ... (chained)
  kCond,       // kids[1] if kids[0] else kids[2] (kids[2] may be null)
};

enum class BinOp : uint8_t { kAdd, kSub, kMul, kDiv, kFloorDiv, kMod, kPow, kConcat };
enum class CmpOp : uint8_t { kEq, kNe, kLt, kLe, kGt, kGe, kIn, kNotIn };

struct Expr {
  ExprKind kind;
  int line = 0;
  int col = 0;
  BinOp op = BinOp::kAdd;
  std::vector<CmpOp> cmp_ops;
  Value literal;
  std::string name;  // kName, kAttr, kFilter, kTest, and the kwarg names' owner
  std::vector<ExprPtr> kids;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  FilterFn filter = nullptr;
  TestFn test = nullptr;
};

enum class StmtKind : uint8_t {
  kText,         // text
  kOutput,       // {{ expr }}
  kIf,           // conds[i] -> bodies[i]; else_body
  kFor,          // for targets in expr [if cond]: body; else_body
  kSet,          // set targets = expr   (targets.size() > 1: unpacking)
  kSetAttr,      // set targets[0].attr = expr
  kSetBlock,     // set targets[0] %}body{% endset  (expr: optional filter chain, input null)
  kMacro,        // macro name(params) body
  kCallBlock,    // call(params) expr %}body{% endcall
  kFilterBlock,  // filter expr %}body{% endfilter
  kWith,         // with targets = values: body
  kBreak,
  kContinue,
  kScope,  // a plain block with no scope of its own ({% generation %})
};

struct MacroParam {
  std::string name;
  ExprPtr default_value;  // may be null
};

struct Stmt {
  StmtKind kind;
  int line = 0;
  int col = 0;
  std::string text;  // kText; attribute name for kSetAttr; macro name
  ExprPtr expr;      // value / iterable / callee / filter chain
  ExprPtr cond;      // for-loop filter
  std::vector<std::string> targets;
  std::vector<ExprPtr> values;  // kWith values; kIf conditions
  std::vector<Body> bodies;     // kIf branch bodies
  Body body;
  Body else_body;
  std::vector<MacroParam> params;
  bool caller_used = false;  // macro body references `caller`
};

}  // namespace runnel::tmpl
