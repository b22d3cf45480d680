// Tool calls out of a model's output text, for the three syntaxes the supported templates teach:
//   Qwen3 / Hermes:  <tool_call>{"name": ..., "arguments": {...}}</tool_call>
//   Llama 3.1:       {"name": ..., "parameters": {...}}   (optionally after <|python_tag|>)
//   gpt-oss harmony: <|channel|>commentary to=functions.NAME ... <|message|>{...}<|call|>
// Text that is not a well-formed tool call stays in `content`; nothing is dropped silently.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "template/chat.h"

namespace runnel::tmpl {

struct ToolCall {
  std::string name;
  std::string arguments;  // compact JSON text (an object, or a JSON string when not JSON)
};

struct ParsedOutput {
  std::string content;    // visible text without the tool-call markup
  std::string reasoning;  // harmony analysis channel text, if any
  std::vector<ToolCall> tool_calls;
};

// Detects the format from markers in the template source.
ToolCallFormat detect_tool_call_format(std::string_view template_source);

ParsedOutput parse_tool_calls(ToolCallFormat format, std::string_view output);

}  // namespace runnel::tmpl
