// GrammarBuilder: resolution of calls/merges into the byte table and completion distances.
#include "sample/grammar.h"

#include <algorithm>
#include <map>

#include "base/assert.h"
#include "base/error.h"

namespace runnel::sample {

namespace {

std::string byte_name(int b) {
  if (b >= 0x21 && b < 0x7f) return str_cat("'", static_cast<char>(b), "'");
  return str_cat("0x", "0123456789abcdef"[b >> 4], "0123456789abcdef"[b & 15]);
}

}  // namespace

size_t Grammar::memory_bytes() const {
  return table_.size() * sizeof(int32_t) + calls_.size() * sizeof(Call) + accepting_.size() +
         dist_.size() * sizeof(int32_t) + text_of_.size() * sizeof(int32_t) +
         texts_.size() * sizeof(TextChain);
}

GrammarBuilder::GrammarBuilder(int32_t max_states) : max_states_(max_states) {}

int32_t GrammarBuilder::add_state(bool accepting) {
  const auto id = static_cast<int32_t>(accepting_.size());
  check(id < max_states_, "sample", "grammar: schema too large (more than ", max_states_,
        " automaton states)");
  table_.resize(table_.size() + 256, Grammar::kReject);
  accepting_.push_back(accepting ? 1 : 0);
  pending_.emplace_back();
  resolve_mark_.push_back(0);
  return id;
}

void GrammarBuilder::set_action(int32_t state, int b, int32_t action, const std::string& what) {
  const size_t slot = static_cast<size_t>(state) * 256 + static_cast<size_t>(b);
  const int32_t cur = table_[slot];
  if (cur == action) return;
  // combine() may add states (and so move table_): compute first, then store.
  const int32_t combined = cur == Grammar::kReject ? action : combine(cur, action, b, what);
  table_[slot] = combined;
}

int32_t GrammarBuilder::new_call(int32_t callee, int32_t ret) {
  const auto key = std::make_pair(callee, ret);
  if (const auto it = call_memo_.find(key); it != call_memo_.end()) return it->second;
  const auto action = -(static_cast<int32_t>(calls_.size()) + 2);
  calls_.push_back({callee, ret});
  call_memo_[key] = action;
  return action;
}

int32_t GrammarBuilder::merged_state(int32_t a, int32_t b) {
  std::vector<int32_t> members;
  for (const int32_t s : {a, b}) {
    const auto it = members_.find(s);
    if (it == members_.end()) {
      members.push_back(s);
    } else {
      members.insert(members.end(), it->second.begin(), it->second.end());
    }
  }
  std::sort(members.begin(), members.end());
  members.erase(std::unique(members.begin(), members.end()), members.end());
  if (members.size() == 1) return members[0];
  if (const auto it = merged_memo_.find(members); it != merged_memo_.end()) return it->second;
  const int32_t m = add_state();
  for (const int32_t s : members) add_merge(m, s);
  merged_memo_[members] = m;
  members_[m] = members;
  return m;
}

int32_t GrammarBuilder::inline_state(int32_t state, int32_t ret) {
  const auto key = std::make_pair(state, ret);
  if (const auto it = inline_memo_.find(key); it != inline_memo_.end()) return it->second;
  const int32_t copy = add_state();
  inline_memo_[key] = copy;
  pending_[static_cast<size_t>(copy)].push_back({copy, state, ret, Pending::kInline});
  return copy;
}

int32_t GrammarBuilder::expand(int32_t action, int b, const std::string& what) {
  if (action >= 0) return action;
  const Grammar::Call c = calls_[static_cast<size_t>(-action - 2)];
  resolve(c.callee, what);
  const int32_t inner = table_[static_cast<size_t>(c.callee) * 256 + static_cast<size_t>(b)];
  RUNNEL_ASSERT(inner != Grammar::kReject);
  if (inner >= 0) return inline_state(inner, c.ret);
  const Grammar::Call ci = calls_[static_cast<size_t>(-inner - 2)];
  return new_call(ci.callee, inline_state(ci.ret, c.ret));
}

int32_t GrammarBuilder::combine(int32_t a1, int32_t a2, int b, const std::string& what) {
  for (int depth = 0;; ++depth) {
    check(depth < 64, "sample", what, ": alternatives too deeply ambiguous at byte ", byte_name(b));
    if (a1 == a2) return a1;
    if (a1 >= 0 && a2 >= 0) return merged_state(a1, a2);
    if (a1 < 0 && a2 < 0) {
      const Grammar::Call c1 = calls_[static_cast<size_t>(-a1 - 2)];
      const Grammar::Call c2 = calls_[static_cast<size_t>(-a2 - 2)];
      if (c1.callee == c2.callee) return new_call(c1.callee, merged_state(c1.ret, c2.ret));
    }
    // Different rules start here on the same byte: step into the called ones (their copies
    // continue where the call would have returned) and try again one level down.
    a1 = expand(a1, b, what);
    a2 = expand(a2, b, what);
  }
}

void GrammarBuilder::add_shift(int32_t from, uint8_t lo, uint8_t hi, int32_t to) {
  for (int b = lo; b <= hi; ++b) set_action(from, b, to, "grammar");
}

int32_t GrammarBuilder::shift_target(int32_t from, uint8_t byte) const {
  const int32_t a = table_[static_cast<size_t>(from) * 256 + byte];
  return a >= 0 ? a : Grammar::kReject;
}

void GrammarBuilder::add_call(int32_t from, int32_t callee, int32_t ret) {
  pending_[static_cast<size_t>(from)].push_back({from, callee, ret, Pending::kCall});
}

void GrammarBuilder::add_merge(int32_t into, int32_t from) {
  pending_[static_cast<size_t>(into)].push_back({into, from, -1, Pending::kMerge});
}

int32_t GrammarBuilder::add_literal(int32_t from, const std::string& bytes) {
  int32_t s = from;
  for (const char ch : bytes) {
    const auto b = static_cast<uint8_t>(ch);
    int32_t next = shift_target(s, b);
    if (next == Grammar::kReject) {
      next = add_state();
      add_shift(s, b, next);
    }
    s = next;
  }
  return s;
}

void GrammarBuilder::mark_text_chain(int32_t first, int32_t n, bool loops) {
  text_chains_.emplace_back(first, n, loops);
}

void GrammarBuilder::copy_row(int32_t into, int32_t from, const std::string& what) {
  resolve(from, what);
  for (int b = 0; b < 256; ++b) {
    const int32_t a = table_[static_cast<size_t>(from) * 256 + static_cast<size_t>(b)];
    if (a != Grammar::kReject) set_action(into, b, a, what);
  }
  if (accepting_[static_cast<size_t>(from)]) accepting_[static_cast<size_t>(into)] = 1;
}

void GrammarBuilder::resolve(int32_t state, const std::string& what) {
  if (resolve_mark_[static_cast<size_t>(state)] == 2) return;
  check(resolve_mark_[static_cast<size_t>(state)] == 0, "sample", what,
        ": left-recursive schema (a value that starts with itself)");
  resolve_mark_[static_cast<size_t>(state)] = 1;
  // Copy: resolution may add states (and so grow pending_).
  const std::vector<Pending> pending = pending_[static_cast<size_t>(state)];
  for (const Pending& p : pending) {
    switch (p.kind) {
      case Pending::kMerge:
        copy_row(state, p.target, what);
        break;
      case Pending::kCall: {
        resolve(p.target, what);
        check(!accepting_[static_cast<size_t>(p.target)], "sample", what,
              ": internal error, a called rule may not be empty");
        const int32_t call = new_call(p.target, p.ret);
        for (int b = 0; b < 256; ++b) {
          if (table_[static_cast<size_t>(p.target) * 256 + static_cast<size_t>(b)] !=
              Grammar::kReject) {
            set_action(state, b, call, what);
          }
        }
        break;
      }
      case Pending::kInline: {
        // A copy of p.target that, where p.target's rule would return, continues at p.ret.
        resolve(p.target, what);
        for (int b = 0; b < 256; ++b) {
          const int32_t a = table_[static_cast<size_t>(p.target) * 256 + static_cast<size_t>(b)];
          if (a == Grammar::kReject) continue;
          int32_t copied;
          if (a >= 0) {
            copied = inline_state(a, p.ret);
          } else {
            const Grammar::Call c = calls_[static_cast<size_t>(-a - 2)];
            copied = new_call(c.callee, inline_state(c.ret, p.ret));
          }
          set_action(state, b, copied, what);
        }
        if (accepting_[static_cast<size_t>(p.target)]) {
          resolve(p.ret, what);
          for (int b = 0; b < 256; ++b) {
            const int32_t a = table_[static_cast<size_t>(p.ret) * 256 + static_cast<size_t>(b)];
            if (a != Grammar::kReject) set_action(state, b, a, what);
          }
          if (accepting_[static_cast<size_t>(p.ret)]) accepting_[static_cast<size_t>(state)] = 1;
        }
        break;
      }
    }
  }
  resolve_mark_[static_cast<size_t>(state)] = 2;
}

std::shared_ptr<const Grammar> GrammarBuilder::finish(int32_t start, const std::string& what) {
  // Resolution may add states (merged alternatives, inlined copies): loop to the moving end.
  for (size_t s = 0; s < accepting_.size(); ++s) resolve(static_cast<int32_t>(s), what);
  const auto n = static_cast<size_t>(accepting_.size());

  auto g = std::make_shared<Grammar>();
  g->start_ = start;
  g->table_ = std::move(table_);
  g->calls_ = std::move(calls_);
  g->accepting_ = std::move(accepting_);

  // Distinct actions per state, then relax distances until stable (Bellman-Ford over few edges).
  std::vector<std::vector<int32_t>> actions(n);
  for (size_t s = 0; s < n; ++s) {
    auto& list = actions[s];
    for (int b = 0; b < 256; ++b) {
      const int32_t a = g->table_[s * 256 + static_cast<size_t>(b)];
      if (a != Grammar::kReject) list.push_back(a);
    }
    std::sort(list.begin(), list.end());
    list.erase(std::unique(list.begin(), list.end()), list.end());
  }
  auto& dist = g->dist_;
  dist.assign(n, Grammar::kInfinite);
  for (size_t s = 0; s < n; ++s) {
    if (g->accepting_[s]) dist[s] = 0;
  }
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t s = n; s-- > 0;) {
      int32_t best = dist[s];
      for (const int32_t a : actions[s]) {
        int32_t d;
        if (a >= 0) {
          d = 1 + dist[static_cast<size_t>(a)];
        } else {
          const auto& c = g->calls_[static_cast<size_t>(-a - 2)];
          d = dist[static_cast<size_t>(c.callee)] + dist[static_cast<size_t>(c.ret)];
        }
        best = std::min(best, std::min(d, Grammar::kInfinite));
      }
      if (best < dist[s]) {
        dist[s] = best;
        changed = true;
      }
    }
  }
  // Reachable states (through shifts, callees and return states).
  std::vector<uint8_t> seen(n, 0);
  std::vector<int32_t> todo{start};
  seen[static_cast<size_t>(start)] = 1;
  while (!todo.empty()) {
    const int32_t s = todo.back();
    todo.pop_back();
    for (const int32_t a : actions[static_cast<size_t>(s)]) {
      int32_t next[2] = {a, -1};
      if (a < 0) {
        const auto& c = g->calls_[static_cast<size_t>(-a - 2)];
        next[0] = c.callee;
        next[1] = c.ret;
      }
      for (const int32_t t : next) {
        if (t >= 0 && !seen[static_cast<size_t>(t)]) {
          seen[static_cast<size_t>(t)] = 1;
          todo.push_back(t);
        }
      }
    }
  }
  for (size_t s = 0; s < n; ++s) {
    if (!seen[s]) continue;
    // Every state we build lies on a path to acceptance; a state that cannot complete would let
    // generation get stuck, so it is a bug in the schema compiler, not in user input.
    RUNNEL_ASSERT_MSG(dist[s] < Grammar::kInfinite, str_cat("grammar state ", s, " is a dead end"));
  }
  g->text_of_.assign(n, -1);
  for (const auto& [first, count, loops] : text_chains_) {
    for (int32_t i = 0; i < count; ++i) {
      const int32_t s = first + i;
      const int32_t next = i + 1 < count ? s + 1 : loops ? s : Grammar::kReject;
      // The fast path trusts this: every printable ASCII text byte moves one count up.
      for (int b = 0x20; b < 0x80; ++b) {
        if (b == '"' || b == '\\') continue;
        RUNNEL_ASSERT(g->action(s, static_cast<uint8_t>(b)) == next);
      }
      g->text_of_[static_cast<size_t>(s)] = static_cast<int32_t>(g->texts_.size());
      g->texts_.push_back({first, i, count - 1, loops});
    }
  }
  pending_.clear();
  resolve_mark_.clear();
  return g;
}

}  // namespace runnel::sample
