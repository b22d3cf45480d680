// Split behaviours, the PCRE2 fallback splitter, literal and digit splitters; see pretokenize.h.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/pretokenize.h"

#include <pcre2.h>

#include "base/error.h"
#include "tokenizer/unicode.h"

namespace runnel::tokenizer {

const char* const kGpt2Pattern =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

namespace {

class Pcre2Splitter : public Splitter {
 public:
  Pcre2Splitter(const std::string& pattern, const std::string& file) {
    int err = 0;
    PCRE2_SIZE off = 0;
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                          PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &err, &off, nullptr);
    if (code_ == nullptr) {
      PCRE2_UCHAR buf[256];
      pcre2_get_error_message(err, buf, sizeof(buf));
      fail("tokenizer", file, ": cannot compile pre-tokenizer regex at offset ", off, ": ",
           reinterpret_cast<const char*>(buf), " (pattern ", pattern, ")");
    }
    jit_ = pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE) == 0;
  }
  ~Pcre2Splitter() override { pcre2_code_free(code_); }

  void find(std::string_view text, uint32_t begin, uint32_t end,
            std::vector<Span>& matches) const override {
    thread_local pcre2_match_data* md = nullptr;
    if (md == nullptr) md = pcre2_match_data_create(4, nullptr);
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    PCRE2_SIZE pos = begin;
    while (pos < end) {
      int rc = jit_ ? pcre2_jit_match(code_, subject, end, pos, PCRE2_NO_UTF_CHECK, md, nullptr)
                    : pcre2_match(code_, subject, end, pos, PCRE2_NO_UTF_CHECK, md, nullptr);
      if (rc < 0) break;
      PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      if (ov[1] == ov[0]) {  // empty match: step one char
        pos = ov[0] + utf8_len(static_cast<unsigned char>(text[ov[0] < end ? ov[0] : end - 1]));
        continue;
      }
      matches.emplace_back(static_cast<uint32_t>(ov[0]), static_cast<uint32_t>(ov[1]));
      pos = ov[1];
    }
  }

 private:
  pcre2_code* code_ = nullptr;
  bool jit_ = false;
};

class StringSplitter : public Splitter {
 public:
  explicit StringSplitter(std::string s) : s_(std::move(s)) {}
  void find(std::string_view text, uint32_t begin, uint32_t end,
            std::vector<Span>& matches) const override {
    if (s_.empty()) return;
    std::string_view t = text.substr(0, end);
    size_t pos = begin;
    while ((pos = t.find(s_, pos)) != std::string_view::npos) {
      matches.emplace_back(static_cast<uint32_t>(pos), static_cast<uint32_t>(pos + s_.size()));
      pos += s_.size();
    }
  }

 private:
  std::string s_;
};

class DigitsSplitter : public Splitter {
 public:
  explicit DigitsSplitter(bool individual) : individual_(individual) {}
  void find(std::string_view text, uint32_t begin, uint32_t end,
            std::vector<Span>& matches) const override {
    size_t i = begin;
    while (i < end) {
      size_t len;
      uint32_t cp = decode_utf8(text, i, &len);
      if (!is_number(category(cp))) {
        i += len;
        continue;
      }
      size_t j = i + len;
      if (!individual_) {
        while (j < end) {
          size_t l2;
          if (!is_number(category(decode_utf8(text, j, &l2)))) break;
          j += l2;
        }
      }
      matches.emplace_back(static_cast<uint32_t>(i), static_cast<uint32_t>(j));
      i = j;
    }
  }

 private:
  bool individual_;
};

// Splits [begin, end) by `matches` into (span, is_match) parts, then applies the behaviour.
void apply_behavior(uint32_t begin, uint32_t end, const std::vector<Span>& matches,
                    SplitBehavior behavior, bool invert, std::vector<Span>& out) {
  struct Part {
    Span span;
    bool is_match;
  };
  thread_local std::vector<Part> parts;
  parts.clear();
  uint32_t pos = begin;
  for (const Span& m : matches) {
    if (m.first > pos) parts.push_back({{pos, m.first}, invert});
    parts.push_back({m, !invert});
    pos = m.second;
  }
  if (pos < end) parts.push_back({{pos, end}, invert});
  switch (behavior) {
    case SplitBehavior::kIsolated:
      for (const Part& p : parts) out.push_back(p.span);
      break;
    case SplitBehavior::kRemoved:
      for (const Part& p : parts)
        if (!p.is_match) out.push_back(p.span);
      break;
    case SplitBehavior::kMergedWithPrevious: {
      const size_t base = out.size();
      bool prev_match = false;
      for (const Part& p : parts) {
        if (p.is_match && !prev_match && out.size() > base) {
          out.back().second = p.span.second;
        } else {
          out.push_back(p.span);
        }
        prev_match = p.is_match;
      }
      break;
    }
    case SplitBehavior::kMergedWithNext: {
      thread_local std::vector<Span> rev;
      rev.clear();
      bool prev_match = false;
      for (size_t k = parts.size(); k-- > 0;) {
        const Part& p = parts[k];
        if (p.is_match && !prev_match && !rev.empty()) {
          rev.back().first = p.span.first;
        } else {
          rev.push_back(p.span);
        }
        prev_match = p.is_match;
      }
      out.insert(out.end(), rev.rbegin(), rev.rend());
      break;
    }
    case SplitBehavior::kContiguous: {
      bool prev_match = false;
      for (const Part& p : parts) {
        if (p.is_match && prev_match) {
          out.back().second = p.span.second;
        } else {
          out.push_back(p.span);
        }
        prev_match = p.is_match;
      }
      break;
    }
  }
}

}  // namespace

std::unique_ptr<Splitter> make_pcre2_splitter(const std::string& pattern, const std::string& file) {
  return std::make_unique<Pcre2Splitter>(pattern, file);
}
std::unique_ptr<Splitter> make_string_splitter(const std::string& literal) {
  return std::make_unique<StringSplitter>(literal);
}
std::unique_ptr<Splitter> make_digits_splitter(bool individual) {
  return std::make_unique<DigitsSplitter>(individual);
}

void pretokenize(const std::vector<PreStep>& steps, std::string_view text, bool first_segment,
                 std::string& work, std::vector<Span>& pieces) {
  work.assign(text);
  for (const PreStep& s : steps) {
    if (s.kind == PreStep::Kind::kByteLevelPrefix) {
      if (!work.empty() && work[0] != ' ') work.insert(work.begin(), ' ');
    } else if (s.kind == PreStep::Kind::kMetaspace) {
      std::string r;
      r.reserve(work.size() + 3);
      bool prepend = s.prepend_scheme == 0 || (s.prepend_scheme == 1 && first_segment);
      if (prepend && !work.empty() && !starts_with(work, s.replacement)) r = s.replacement;
      for (char c : work) {
        if (c == ' ') {
          r += s.replacement;
        } else {
          r.push_back(c);
        }
      }
      work = std::move(r);
    }
  }
  pieces.clear();
  if (work.empty()) return;
  pieces.emplace_back(0u, static_cast<uint32_t>(work.size()));
  thread_local std::vector<Span> next, matches;
  for (const PreStep& s : steps) {
    if (!s.splitter) continue;
    next.clear();
    for (const Span& p : pieces) {
      matches.clear();
      s.splitter->find(work, p.first, p.second, matches);
      apply_behavior(p.first, p.second, matches, s.behavior, s.invert, next);
    }
    pieces.swap(next);
  }
}

}  // namespace runnel::tokenizer
