// A compiled grammar over bytes: a deterministic pushdown automaton. Each state has one action per
// byte (shift to a state, call a sub-rule and come back to a return state, or reject); a state may
// be accepting, meaning its rule is complete and the machine returns to the caller when no action
// matches. Immutable after GrammarBuilder::finish(), so one Grammar serves many concurrent
// matchers.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

namespace runnel::sample {

class Grammar {
 public:
  static constexpr int32_t kReject = -1;
  static constexpr int32_t kInfinite = 1 << 29;

  struct Call {
    int32_t callee;  // start state of the called rule
    int32_t ret;     // where the caller continues once the callee is complete
  };

  int32_t start() const { return start_; }
  int32_t n_states() const { return static_cast<int32_t>(accepting_.size()); }
  // >= 0: shift to that state; kReject; <= -2: call number -(action + 2).
  int32_t action(int32_t state, uint8_t byte) const {
    return table_[static_cast<size_t>(state) * 256 + byte];
  }
  const Call& call(int32_t action) const { return calls_[static_cast<size_t>(-action - 2)]; }
  bool accepting(int32_t state) const { return accepting_[static_cast<size_t>(state)] != 0; }
  // Fewest bytes that complete the rule `state` belongs to (0 when accepting).
  int32_t dist(int32_t state) const { return dist_[static_cast<size_t>(state)]; }
  // Bytes held by the tables, for diagnostics.
  size_t memory_bytes() const;

  // Text states: the inside of a JSON string, where every "text" byte sequence (printable ASCII
  // but '"' and '\\', or one well-formed UTF-8 character; see Vocabulary::text_cp) advances a
  // chain of count states by one. Lets the matcher allow all text tokens at once.
  struct TextChain {
    int32_t first = -1;  // state of count 0; count j is state first + j
    int32_t index = 0;   // this state's count
    int32_t last = 0;    // highest count
    bool loops = false;  // the last state stays put on more text (no maximum)
  };
  // Null when `state` is not a text state.
  const TextChain* text_chain(int32_t state) const {
    const int32_t i = text_of_[static_cast<size_t>(state)];
    return i < 0 ? nullptr : &texts_[static_cast<size_t>(i)];
  }

 private:
  friend class GrammarBuilder;
  int32_t start_ = 0;
  std::vector<int32_t> table_;  // [n_states * 256]
  std::vector<Call> calls_;
  std::vector<uint8_t> accepting_;
  std::vector<int32_t> dist_;
  std::vector<int32_t> text_of_;  // per state: index into texts_, or -1
  std::vector<TextChain> texts_;
};

// Builds a Grammar. Sub-rules are referred to by their start state. Calls and merges are resolved
// in finish(), so rules may be recursive (a call may name a rule that is built later), but not
// left-recursive. Two actions on the same byte of a state (alternatives that start alike, as in an
// anyOf of two objects) are determinized on the fly: two shifts go to a merged state, two calls of
// one rule return to a merged state, and calls of different rules are stepped into (inlined copies
// that continue where the call would have returned) until the alternatives separate. Where one
// alternative is complete and another continues on the same byte, continuing wins (JSON never needs
// the other reading). `what` in error messages names the construct.
class GrammarBuilder {
 public:
  explicit GrammarBuilder(int32_t max_states = 1 << 15);

  int32_t add_state(bool accepting = false);
  void set_accepting(int32_t state) { accepting_[static_cast<size_t>(state)] = 1; }
  bool accepting(int32_t state) const { return accepting_[static_cast<size_t>(state)] != 0; }
  // Shift on bytes lo..hi (inclusive). A shift on a byte that already shifts to the same target is
  // a no-op; to another target it is an error.
  void add_shift(int32_t from, uint8_t lo, uint8_t hi, int32_t to);
  void add_shift(int32_t from, uint8_t byte, int32_t to) { add_shift(from, byte, byte, to); }
  // Existing shift target of `from` on `byte`, or kReject.
  int32_t shift_target(int32_t from, uint8_t byte) const;
  // On every first byte of the rule starting at `callee`: call it, then continue at `ret`.
  void add_call(int32_t from, int32_t callee, int32_t ret);
  // `into` also does everything `from` does (its actions on every byte and its acceptance):
  // used for unions (anyOf) and references.
  void add_merge(int32_t into, int32_t from);
  // Spells `bytes` from `from` through new states (reusing shifts that already exist from states
  // created by this call chain); returns the last state.
  int32_t add_literal(int32_t from, const std::string& bytes);
  // Declares states first .. first + n - 1 a text chain (see Grammar::TextChain); finish() checks
  // that their byte actions agree.
  void mark_text_chain(int32_t first, int32_t n, bool loops);

  // Resolves calls and merges, computes completion distances, validates that every state can
  // complete. `start` is the root rule.
  std::shared_ptr<const Grammar> finish(int32_t start, const std::string& what);

 private:
  void resolve(int32_t state, const std::string& what);
  void copy_row(int32_t into, int32_t from, const std::string& what);
  void set_action(int32_t state, int b, int32_t action, const std::string& what);
  int32_t combine(int32_t a1, int32_t a2, int b, const std::string& what);
  int32_t expand(int32_t action, int b, const std::string& what);
  int32_t new_call(int32_t callee, int32_t ret);
  int32_t merged_state(int32_t a, int32_t b);
  int32_t inline_state(int32_t state, int32_t ret);

  int32_t max_states_;
  std::vector<int32_t> table_;
  std::vector<uint8_t> accepting_;
  std::vector<Grammar::Call> calls_;
  struct Pending {
    int32_t from;
    int32_t target;  // callee (call), source (merge), copied state (inline)
    int32_t ret;     // where a call or an inlined copy continues; -1 for a merge
    enum Kind { kCall, kMerge, kInline } kind;
  };
  std::vector<std::vector<Pending>> pending_;  // per state
  std::vector<uint8_t> resolve_mark_;          // 0 todo, 1 in progress, 2 done
  std::vector<std::tuple<int32_t, int32_t, bool>> text_chains_;
  std::map<std::pair<int32_t, int32_t>, int32_t> call_memo_;    // (callee, ret) -> action
  std::map<std::vector<int32_t>, int32_t> merged_memo_;         // members -> merged state
  std::map<int32_t, std::vector<int32_t>> members_;             // merged state -> members
  std::map<std::pair<int32_t, int32_t>, int32_t> inline_memo_;  // (state, ret) -> copy
};

}  // namespace runnel::sample
