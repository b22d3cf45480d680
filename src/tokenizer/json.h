// A small, fast JSON reader for tokenizer files. Builds a light DOM (objects keep member order)
// except for members named in `raw_keys` at object depth 1 below the root ("model.vocab",
// "model.merges"), which are kept as raw text spans for the dedicated scanners in bpe_load.cpp:
// nlohmann's DOM of Gemma 3's 33 MB file takes seconds; this takes tens of milliseconds.
// Errors: Error("tokenizer", "<file>: JSON error at line L col C: what").
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace runnel::tokenizer::json {

struct Value {
  enum class Kind : uint8_t { kNull, kBool, kNumber, kString, kArray, kObject, kRaw };
  Kind kind = Kind::kNull;
  bool boolean = false;
  double number = 0;
  std::string str;  // kString: decoded text; kRaw: the raw JSON text of the value
  std::vector<Value> items;
  std::vector<std::pair<std::string, Value>> members;

  bool is_null() const { return kind == Kind::kNull; }
  bool is_string() const { return kind == Kind::kString; }
  bool is_object() const { return kind == Kind::kObject; }
  bool is_array() const { return kind == Kind::kArray; }
  // Member lookup; nullptr when absent or when this is not an object.
  const Value* find(std::string_view key) const;
  // Typed accessors with defaults for absent/null members.
  std::string get_string(std::string_view key, std::string_view def = "") const;
  bool get_bool(std::string_view key, bool def) const;
  int64_t get_int(std::string_view key, int64_t def) const;
};

// Parses `text` (named `file` in errors). Members of the object at "<parent>.<key>" for every
// (parent, key) in raw_paths are stored as Kind::kRaw.
Value parse(std::string_view text, const std::string& file,
            const std::vector<std::pair<std::string, std::string>>& raw_paths = {});

// Streaming cursor over raw JSON text, for the scanners of big members.
class Cursor {
 public:
  Cursor(std::string_view text, const std::string& file) : s_(text), file_(file) {}
  void skip_ws();
  bool at_end() {
    skip_ws();
    return i_ >= s_.size();
  }
  char peek();                         // next non-space char, 0 at end
  void expect(char c);                 // skips spaces, then requires c
  bool consume(char c);                // skips spaces; consumes c when next
  void read_string(std::string& out);  // next value must be a string
  double read_number();
  int64_t read_int();  // a plain integer (fast path for vocabularies)
  Value read_value(const std::vector<std::pair<std::string, std::string>>* raw_paths = nullptr,
                   const std::string& parent = "", int depth = 0);
  std::string_view skip_value();  // returns the raw text of the skipped value
  [[noreturn]] void error(std::string_view what) const;

 private:
  std::string_view s_;
  size_t i_ = 0;
  const std::string& file_;
};

}  // namespace runnel::tokenizer::json
