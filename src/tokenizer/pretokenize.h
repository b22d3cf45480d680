// Pre-tokenizers: split a normalized segment into pieces that BPE encodes independently.
// A Splitter finds the matches of one pattern; the HF split behaviours (Isolated, Removed,
// MergedWithPrevious, MergedWithNext, Contiguous, invert) are applied generically. Known regexes
// (GPT-2, Llama 3, Qwen 2/3, o200k) get hand-written matchers (pretokenize_fast.cpp); any other
// pattern runs on PCRE2 with UTF + UCP.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace runnel::tokenizer {

using Span = std::pair<uint32_t, uint32_t>;  // [begin, end) byte offsets

class Splitter {
 public:
  virtual ~Splitter() = default;
  // Appends the non-overlapping matches in text[begin, end), in order.
  virtual void find(std::string_view text, uint32_t begin, uint32_t end,
                    std::vector<Span>& matches) const = 0;
};

// Hand-written when `pattern` is a known one, PCRE2 otherwise. `file` names errors.
std::unique_ptr<Splitter> make_regex_splitter(const std::string& pattern, const std::string& file);
std::unique_ptr<Splitter> make_pcre2_splitter(const std::string& pattern, const std::string& file);
std::unique_ptr<Splitter> make_string_splitter(const std::string& literal);
// Digits pre-tokenizer: runs of \p{Nd}... as HF's Digits (individual: one digit each).
std::unique_ptr<Splitter> make_digits_splitter(bool individual);

// The GPT-2 pattern used by ByteLevel(use_regex=true).
extern const char* const kGpt2Pattern;

enum class SplitBehavior { kIsolated, kRemoved, kMergedWithPrevious, kMergedWithNext, kContiguous };

struct PreStep {
  enum class Kind { kSplit, kByteLevelPrefix, kMetaspace } kind = Kind::kSplit;
  std::shared_ptr<Splitter> splitter;  // kSplit
  SplitBehavior behavior = SplitBehavior::kIsolated;
  bool invert = false;
  // kMetaspace: spaces -> replacement; prepend_scheme 0 always, 1 first, 2 never.
  std::string replacement;
  int prepend_scheme = 0;
};

// Applies the steps: text-changing steps (ByteLevel add_prefix_space, Metaspace) rewrite `work`
// first; splits refine `pieces` (spans into `work`). `first_segment`: the segment starts the text.
void pretokenize(const std::vector<PreStep>& steps, std::string_view text, bool first_segment,
                 std::string& work, std::vector<Span>& pieces);

}  // namespace runnel::tokenizer
