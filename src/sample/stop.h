// Stop sequences over streamed text. Text that might be the start of a stop sequence is held back
// until the next piece decides it; on a match, the stop text and everything after it are dropped.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace runnel::sample {

class StopMatcher {
 public:
  struct Result {
    std::string emit;      // text that may be shown now
    bool stopped = false;  // a stop sequence matched; nothing more will be emitted
  };

  explicit StopMatcher(std::vector<std::string> stops);

  // Feeds the next piece of generated text. After a stop, returns empty results.
  Result push(std::string_view piece);
  // End of generation without a stop: returns the held-back text.
  std::string flush();
  bool stopped() const { return stopped_; }
  // The stop sequence that matched (empty if none).
  const std::string& matched() const { return matched_; }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
  std::string matched_;
};

}  // namespace runnel::sample
