// Recursive-descent parser for Jinja2 statements and expressions. Nesting depth is bounded so a
// hostile template ("((((((...") is a clear error instead of a stack overflow.
#include "template/parser.h"

#include <initializer_list>

#include "template/error.h"
#include "template/lexer.h"

namespace runnel::tmpl {
namespace {

constexpr int kMaxDepth = 200;

class Parser {
 public:
  explicit Parser(std::vector<Token> toks) : t_(std::move(toks)) {}

  Body parse_all() {
    std::string end;
    Body body = parse_body({}, &end, 1, 1);
    return body;
  }

 private:
  // ---- token helpers ----
  const Token& cur() const { return t_[p_]; }
  const Token& look(size_t n = 1) const { return t_[std::min(p_ + n, t_.size() - 1)]; }
  void next() {
    if (p_ + 1 < t_.size()) ++p_;
  }
  bool is_op(const char* op) const { return cur().type == Tok::kOp && cur().text == op; }
  bool is_name(const char* n) const { return cur().type == Tok::kName && cur().text == n; }
  bool skip_op(const char* op) {
    if (!is_op(op)) return false;
    next();
    return true;
  }
  bool skip_name(const char* n) {
    if (!is_name(n)) return false;
    next();
    return true;
  }
  [[noreturn]] void error_here(const std::string& what) const {
    throw_at(cur().line, cur().col, what);
  }
  std::string describe(const Token& t) const {
    switch (t.type) {
      case Tok::kText:
        return "text";
      case Tok::kVarBegin:
        return "'{{'";
      case Tok::kVarEnd:
        return "'}}'";
      case Tok::kBlockBegin:
        return "'{%'";
      case Tok::kBlockEnd:
        return "'%}'";
      case Tok::kEof:
        return "end of template";
      case Tok::kString:
        return "string";
      default:
        return "'" + t.text + "'";
    }
  }
  void expect_op(const char* op) {
    if (!skip_op(op)) error_here(str_cat("expected '", op, "', got ", describe(cur())));
  }
  std::string expect_name() {
    if (cur().type != Tok::kName) error_here(str_cat("expected a name, got ", describe(cur())));
    std::string n = cur().text;
    next();
    return n;
  }
  void expect_block_end() {
    if (cur().type != Tok::kBlockEnd) error_here(str_cat("expected '%}', got ", describe(cur())));
    next();
  }
  ExprPtr node(ExprKind k, const Token& at) {
    auto e = std::make_unique<Expr>();
    e->kind = k;
    e->line = at.line;
    e->col = at.col;
    return e;
  }
  struct DepthGuard {
    Parser& p;
    explicit DepthGuard(Parser& parser) : p(parser) {
      if (++p.depth_ > kMaxDepth) p.error_here("template nested too deeply");
    }
    ~DepthGuard() { --p.depth_; }
  };

  // ---- statements ----
  // Parses statements until a block tag whose name is in `ends` (then positioned after that name)
  // or the end of input (an error when `ends` is not empty).
  Body parse_body(std::initializer_list<const char*> ends, std::string* which, int open_line,
                  int open_col) {
    DepthGuard guard(*this);
    Body body;
    while (true) {
      const Token& t = cur();
      if (t.type == Tok::kEof) {
        if (ends.size() == 0) return body;
        throw_at(open_line, open_col,
                 str_cat("unexpected end of template, expected '", *(ends.end() - 1), "'"));
      }
      if (t.type == Tok::kText) {
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::kText;
        s->line = t.line;
        s->col = t.col;
        s->text = t.text;
        body.push_back(std::move(s));
        next();
        continue;
      }
      if (t.type == Tok::kVarBegin) {
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::kOutput;
        s->line = t.line;
        s->col = t.col;
        next();
        s->expr = parse_tuple_expr();
        if (cur().type != Tok::kVarEnd) error_here(str_cat("expected '}}', got ", describe(cur())));
        next();
        body.push_back(std::move(s));
        continue;
      }
      if (t.type != Tok::kBlockBegin) error_here(str_cat("unexpected ", describe(t)));
      next();
      if (cur().type != Tok::kName) error_here("expected a statement name after '{%'");
      for (const char* e : ends) {
        if (cur().text == e) {
          *which = e;
          next();
          return body;
        }
      }
      body.push_back(parse_statement(t));
    }
  }

  StmtPtr make_stmt(StmtKind k, const Token& at) {
    auto s = std::make_unique<Stmt>();
    s->kind = k;
    s->line = at.line;
    s->col = at.col;
    return s;
  }

  StmtPtr parse_statement(const Token& open) {
    const Token& kw = cur();
    std::string name = kw.text;
    int line = kw.line, col = kw.col;
    next();
    std::string end;
    if (name == "if") {
      auto s = make_stmt(StmtKind::kIf, kw);
      s->values.push_back(parse_expr());
      expect_block_end();
      while (true) {
        s->bodies.push_back(parse_body({"elif", "else", "endif"}, &end, line, col));
        if (end == "elif") {
          s->values.push_back(parse_expr());
          expect_block_end();
          continue;
        }
        if (end == "else") {
          expect_block_end();
          s->else_body = parse_body({"endif"}, &end, line, col);
        }
        expect_block_end();
        return s;
      }
    }
    if (name == "for") {
      auto s = make_stmt(StmtKind::kFor, kw);
      s->targets = parse_targets();
      if (!skip_name("in")) error_here(str_cat("expected 'in', got ", describe(cur())));
      s->expr = parse_tuple_expr(/*with_cond=*/false);
      if (skip_name("if")) s->cond = parse_expr();
      if (is_name("recursive")) error_here("recursive loops are not supported");
      expect_block_end();
      ++loop_depth_;
      s->body = parse_body({"else", "endfor"}, &end, line, col);
      --loop_depth_;
      if (end == "else") {
        expect_block_end();
        s->else_body = parse_body({"endfor"}, &end, line, col);
      }
      expect_block_end();
      return s;
    }
    if (name == "set") {
      const Token& target = cur();
      std::string first = expect_name();
      if (skip_op(".")) {
        auto s = make_stmt(StmtKind::kSetAttr, kw);
        s->targets.push_back(first);
        s->text = expect_name();
        expect_op("=");
        s->expr = parse_tuple_expr();
        expect_block_end();
        return s;
      }
      std::vector<std::string> targets{first};
      while (skip_op(",")) targets.push_back(expect_name());
      if (skip_op("=")) {
        auto s = make_stmt(StmtKind::kSet, kw);
        s->targets = std::move(targets);
        s->expr = parse_tuple_expr();
        expect_block_end();
        return s;
      }
      if (targets.size() != 1) throw_at(target.line, target.col, "expected '='");
      auto s = make_stmt(StmtKind::kSetBlock, kw);
      s->targets = std::move(targets);
      if (is_op("|")) s->expr = parse_filter_chain(nullptr);
      expect_block_end();
      s->body = parse_body({"endset"}, &end, line, col);
      expect_block_end();
      return s;
    }
    if (name == "macro") {
      auto s = make_stmt(StmtKind::kMacro, kw);
      s->text = expect_name();
      s->params = parse_params();
      expect_block_end();
      int saved = loop_depth_;
      loop_depth_ = 0;
      s->body = parse_body({"endmacro"}, &end, line, col);
      loop_depth_ = saved;
      if (cur().type == Tok::kName) next();  // {% endmacro name %}
      expect_block_end();
      return s;
    }
    if (name == "call") {
      auto s = make_stmt(StmtKind::kCallBlock, kw);
      if (is_op("(")) s->params = parse_params();
      s->expr = parse_expr();
      if (s->expr->kind != ExprKind::kCall) throw_at(line, col, "expected a call after 'call'");
      expect_block_end();
      s->body = parse_body({"endcall"}, &end, line, col);
      expect_block_end();
      return s;
    }
    if (name == "filter") {
      auto s = make_stmt(StmtKind::kFilterBlock, kw);
      s->expr = parse_filter_chain(nullptr, /*leading_pipe=*/false);
      expect_block_end();
      s->body = parse_body({"endfilter"}, &end, line, col);
      expect_block_end();
      return s;
    }
    if (name == "with") {
      auto s = make_stmt(StmtKind::kWith, kw);
      while (cur().type != Tok::kBlockEnd) {
        if (!s->targets.empty()) expect_op(",");
        s->targets.push_back(expect_name());
        expect_op("=");
        s->values.push_back(parse_expr());
      }
      expect_block_end();
      s->body = parse_body({"endwith"}, &end, line, col);
      expect_block_end();
      return s;
    }
    if (name == "generation") {
      auto s = make_stmt(StmtKind::kScope, kw);
      expect_block_end();
      s->body = parse_body({"endgeneration"}, &end, line, col);
      expect_block_end();
      return s;
    }
    if (name == "break" || name == "continue") {
      if (loop_depth_ == 0) throw_at(line, col, str_cat("'", name, "' outside of a loop"));
      auto s = make_stmt(name == "break" ? StmtKind::kBreak : StmtKind::kContinue, kw);
      expect_block_end();
      return s;
    }
    (void)open;
    throw_at(line, col, str_cat("unknown or unexpected tag '", name, "'"));
  }

  std::vector<std::string> parse_targets() {
    std::vector<std::string> names;
    bool paren = skip_op("(");
    names.push_back(expect_name());
    while (skip_op(",")) {
      if (paren && is_op(")")) break;
      names.push_back(expect_name());
    }
    if (paren) expect_op(")");
    return names;
  }

  std::vector<MacroParam> parse_params() {
    std::vector<MacroParam> params;
    expect_op("(");
    while (!is_op(")")) {
      if (!params.empty()) expect_op(",");
      if (is_op(")")) break;
      MacroParam p;
      p.name = expect_name();
      if (skip_op("=")) p.default_value = parse_expr();
      params.push_back(std::move(p));
    }
    expect_op(")");
    return params;
  }

  // ---- expressions ----
  ExprPtr parse_tuple_expr(bool with_cond = true) {
    const Token& at = cur();
    ExprPtr first = with_cond ? parse_expr() : parse_or();
    if (!is_op(",")) return first;
    auto t = node(ExprKind::kTuple, at);
    t->kids.push_back(std::move(first));
    while (skip_op(",")) {
      if (cur().type == Tok::kVarEnd || cur().type == Tok::kBlockEnd || is_name("if")) break;
      t->kids.push_back(with_cond ? parse_expr() : parse_or());
    }
    return t;
  }

  ExprPtr parse_expr() {
    DepthGuard guard(*this);
    ExprPtr e = parse_or();
    while (is_name("if")) {
      const Token& at = cur();
      next();
      auto c = node(ExprKind::kCond, at);
      c->kids.push_back(parse_or());
      c->kids.push_back(std::move(e));
      c->kids.push_back(skip_name("else") ? parse_expr() : nullptr);
      e = std::move(c);
    }
    return e;
  }

  ExprPtr parse_or() {
    ExprPtr e = parse_and();
    while (is_name("or")) {
      auto n = node(ExprKind::kOr, cur());
      next();
      n->kids.push_back(std::move(e));
      n->kids.push_back(parse_and());
      e = std::move(n);
    }
    return e;
  }

  ExprPtr parse_and() {
    ExprPtr e = parse_not();
    while (is_name("and")) {
      auto n = node(ExprKind::kAnd, cur());
      next();
      n->kids.push_back(std::move(e));
      n->kids.push_back(parse_not());
      e = std::move(n);
    }
    return e;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      DepthGuard guard(*this);
      auto n = node(ExprKind::kNot, cur());
      next();
      n->kids.push_back(parse_not());
      return n;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    const Token& at = cur();
    ExprPtr e = parse_math1();
    ExprPtr cmp;
    while (true) {
      CmpOp op;
      if (is_op("==")) {
        op = CmpOp::kEq;
      } else if (is_op("!=")) {
        op = CmpOp::kNe;
      } else if (is_op("<")) {
        op = CmpOp::kLt;
      } else if (is_op("<=")) {
        op = CmpOp::kLe;
      } else if (is_op(">")) {
        op = CmpOp::kGt;
      } else if (is_op(">=")) {
        op = CmpOp::kGe;
      } else if (is_name("in")) {
        op = CmpOp::kIn;
      } else if (is_name("not") && look().type == Tok::kName && look().text == "in") {
        next();
        op = CmpOp::kNotIn;
      } else {
        break;
      }
      next();
      if (!cmp) {
        cmp = node(ExprKind::kCompare, at);
        cmp->kids.push_back(std::move(e));
      }
      cmp->cmp_ops.push_back(op);
      cmp->kids.push_back(parse_math1());
    }
    return cmp ? std::move(cmp) : std::move(e);
  }

  ExprPtr binary(BinOp op, ExprPtr l, ExprPtr r, const Token& at) {
    auto n = node(ExprKind::kBinary, at);
    n->op = op;
    n->kids.push_back(std::move(l));
    n->kids.push_back(std::move(r));
    return n;
  }

  ExprPtr parse_math1() {
    ExprPtr e = parse_concat();
    while (is_op("+") || is_op("-")) {
      Token at = cur();
      next();
      e = binary(at.text == "+" ? BinOp::kAdd : BinOp::kSub, std::move(e), parse_concat(), at);
    }
    return e;
  }

  ExprPtr parse_concat() {
    ExprPtr e = parse_math2();
    while (is_op("~")) {
      Token at = cur();
      next();
      e = binary(BinOp::kConcat, std::move(e), parse_math2(), at);
    }
    return e;
  }

  ExprPtr parse_math2() {
    ExprPtr e = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      Token at = cur();
      next();
      BinOp op = at.text == "*"    ? BinOp::kMul
                 : at.text == "/"  ? BinOp::kDiv
                 : at.text == "//" ? BinOp::kFloorDiv
                                   : BinOp::kMod;
      e = binary(op, std::move(e), parse_pow(), at);
    }
    return e;
  }

  ExprPtr parse_pow() {
    ExprPtr e = parse_unary(true);
    while (is_op("**")) {
      Token at = cur();
      next();
      e = binary(BinOp::kPow, std::move(e), parse_unary(true), at);
    }
    return e;
  }

  ExprPtr parse_unary(bool with_filter) {
    DepthGuard guard(*this);
    ExprPtr e;
    if (is_op("-") || is_op("+")) {
      e = node(is_op("-") ? ExprKind::kNeg : ExprKind::kPos, cur());
      next();
      e->kids.push_back(parse_unary(false));
    } else {
      e = parse_primary();
    }
    e = parse_postfix(std::move(e));
    if (with_filter) e = parse_filter_expr(std::move(e));
    return e;
  }

  ExprPtr parse_primary() {
    const Token& t = cur();
    switch (t.type) {
      case Tok::kName: {
        auto e = node(ExprKind::kLiteral, t);
        if (t.text == "true" || t.text == "True") {
          e->literal = Value(true);
        } else if (t.text == "false" || t.text == "False") {
          e->literal = Value(false);
        } else if (t.text == "none" || t.text == "None") {
          e->literal = Value::none();
        } else {
          e->kind = ExprKind::kName;
          e->name = t.text;
        }
        next();
        return e;
      }
      case Tok::kString: {
        auto e = node(ExprKind::kLiteral, t);
        std::string s;
        while (cur().type == Tok::kString) {
          s += cur().text;
          next();
        }
        e->literal = Value(std::move(s));
        return e;
      }
      case Tok::kInt: {
        auto e = node(ExprKind::kLiteral, t);
        e->literal = Value(t.ival);
        next();
        return e;
      }
      case Tok::kFloat: {
        auto e = node(ExprKind::kLiteral, t);
        e->literal = Value(t.fval);
        next();
        return e;
      }
      case Tok::kOp:
        if (t.text == "(") {
          next();
          if (skip_op(")")) {
            auto e = node(ExprKind::kTuple, t);
            return e;
          }
          ExprPtr inner = parse_expr();
          if (is_op(",")) {
            auto tup = node(ExprKind::kTuple, t);
            tup->kids.push_back(std::move(inner));
            while (skip_op(",")) {
              if (is_op(")")) break;
              tup->kids.push_back(parse_expr());
            }
            inner = std::move(tup);
          }
          expect_op(")");
          return inner;
        }
        if (t.text == "[") {
          auto e = node(ExprKind::kList, t);
          next();
          while (!is_op("]")) {
            if (!e->kids.empty()) expect_op(",");
            if (is_op("]")) break;
            e->kids.push_back(parse_expr());
          }
          expect_op("]");
          return e;
        }
        if (t.text == "{") {
          auto e = node(ExprKind::kDict, t);
          next();
          while (!is_op("}")) {
            if (!e->kids.empty()) expect_op(",");
            if (is_op("}")) break;
            e->kids.push_back(parse_expr());
            expect_op(":");
            e->kids.push_back(parse_expr());
          }
          expect_op("}");
          return e;
        }
        break;
      default:
        break;
    }
    error_here(str_cat("unexpected ", describe(t)));
  }

  ExprPtr parse_postfix(ExprPtr e) {
    while (true) {
      if (is_op(".")) {
        const Token& at = cur();
        next();
        if (cur().type == Tok::kInt) {
          auto s = node(ExprKind::kSubscript, at);
          auto idx = node(ExprKind::kLiteral, cur());
          idx->literal = Value(cur().ival);
          next();
          s->kids.push_back(std::move(e));
          s->kids.push_back(std::move(idx));
          e = std::move(s);
          continue;
        }
        auto a = node(ExprKind::kAttr, at);
        a->name = expect_name();
        a->kids.push_back(std::move(e));
        e = std::move(a);
      } else if (is_op("[")) {
        e = parse_subscript(std::move(e));
      } else if (is_op("(")) {
        e = parse_call(std::move(e));
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr target) {
    const Token& at = cur();
    next();  // [
    ExprPtr start, stop, step;
    if (!is_op(":")) start = parse_expr();
    if (skip_op(":")) {
      if (!is_op("]") && !is_op(":")) stop = parse_expr();
      if (skip_op(":")) {
        if (!is_op("]")) step = parse_expr();
      }
      expect_op("]");
      auto s = node(ExprKind::kSlice, at);
      s->kids.push_back(std::move(target));
      s->kids.push_back(std::move(start));
      s->kids.push_back(std::move(stop));
      s->kids.push_back(std::move(step));
      return s;
    }
    expect_op("]");
    auto s = node(ExprKind::kSubscript, at);
    s->kids.push_back(std::move(target));
    s->kids.push_back(std::move(start));
    return s;
  }

  // Arguments "(a, b, k=v)" appended to `e` (kids after kids[0], kwargs).
  void parse_call_args(Expr& e) {
    expect_op("(");
    bool any = false;
    while (!is_op(")")) {
      if (any) expect_op(",");
      if (is_op(")")) break;
      any = true;
      if (cur().type == Tok::kName && look().type == Tok::kOp && look().text == "=") {
        std::string k = cur().text;
        next();
        next();
        e.kwargs.emplace_back(std::move(k), parse_expr());
      } else {
        if (!e.kwargs.empty()) error_here("positional argument follows keyword argument");
        e.kids.push_back(parse_expr());
      }
    }
    expect_op(")");
  }

  ExprPtr parse_call(ExprPtr callee) {
    auto c = node(ExprKind::kCall, cur());
    c->kids.push_back(std::move(callee));
    parse_call_args(*c);
    return c;
  }

  ExprPtr parse_filter_expr(ExprPtr e) {
    while (true) {
      if (is_op("|")) {
        e = parse_filter_chain(std::move(e));
      } else if (is_name("is")) {
        e = parse_test(std::move(e));
      } else if (is_op("(")) {
        e = parse_call(std::move(e));
      } else {
        return e;
      }
    }
  }

  // "| f(args) | g" (or "f(args) | g" inside {% filter %}) applied to `input`.
  ExprPtr parse_filter_chain(ExprPtr input, bool leading_pipe = true) {
    bool first = true;
    while (first ? (!leading_pipe || is_op("|")) : is_op("|")) {
      if (!first || leading_pipe) next();
      first = false;
      const Token& at = cur();
      auto f = node(ExprKind::kFilter, at);
      f->name = expect_name();
      while (skip_op(".")) f->name += "." + expect_name();
      f->filter = find_filter(f->name);
      if (f->filter == nullptr)
        throw_at(at.line, at.col, str_cat("unknown filter '", f->name, "'"));
      f->kids.push_back(std::move(input));
      if (is_op("(")) parse_call_args(*f);
      input = std::move(f);
      if (!leading_pipe && !is_op("|")) break;
    }
    return input;
  }

  ExprPtr parse_test(ExprPtr e) {
    const Token& at = cur();
    next();  // is
    bool negated = skip_name("not");
    const Token& name_tok = cur();
    auto t = node(ExprKind::kTest, at);
    t->name = expect_name();
    t->test = find_test(t->name);
    if (t->test == nullptr) {
      throw_at(name_tok.line, name_tok.col, str_cat("unknown test '", t->name, "'"));
    }
    t->kids.push_back(std::move(e));
    if (is_op("(")) {
      parse_call_args(*t);
    } else if ((cur().type == Tok::kName || cur().type == Tok::kString || cur().type == Tok::kInt ||
                cur().type == Tok::kFloat || is_op("[") || is_op("{")) &&
               !is_name("else") && !is_name("or") && !is_name("and")) {
      if (is_name("is")) error_here("you cannot chain multiple tests with 'is'");
      t->kids.push_back(parse_postfix(parse_primary()));
    }
    if (!negated) return t;
    auto n = node(ExprKind::kNot, at);
    n->kids.push_back(std::move(t));
    return n;
  }

  std::vector<Token> t_;
  size_t p_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
};

}  // namespace

Body parse_template(const std::string& source) { return Parser(lex(source)).parse_all(); }

}  // namespace runnel::tmpl
