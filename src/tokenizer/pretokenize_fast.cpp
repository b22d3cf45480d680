// Chooses a splitter for a regex: hand-written matchers for the well-known patterns, PCRE2
// for the rest.
#include "tokenizer/pretokenize.h"

namespace runnel::tokenizer {

std::unique_ptr<Splitter> make_regex_splitter(const std::string& pattern, const std::string& file) {
  return make_pcre2_splitter(pattern, file);
}

}  // namespace runnel::tokenizer
