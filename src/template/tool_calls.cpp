// Tool-call parsers per format. Arguments are re-serialized compactly; a call whose JSON does not
// parse is left in the content as plain text (a model that emits broken JSON made no call).
#include "template/tool_calls.h"

#include <nlohmann/json.hpp>

#include "template/text.h"

namespace runnel::tmpl {
namespace {

using ojson = nlohmann::ordered_json;

std::string trim(std::string_view s) { return py_strip(s, nullptr, true, true); }

std::string dump_arguments(const ojson& args) {
  if (args.is_string()) {
    // Arguments given as a JSON string: keep the object it holds when it is one.
    ojson inner = ojson::parse(args.get<std::string>(), nullptr, false);
    if (!inner.is_discarded() && inner.is_object()) return inner.dump();
  }
  if (args.is_null()) return "{}";
  return args.dump();
}

// {"name": ..., "arguments"|"parameters": ...} -> ToolCall; false when not of that shape.
bool call_from_object(const ojson& j, ToolCall* out) {
  if (!j.is_object() || !j.contains("name") || !j["name"].is_string()) return false;
  out->name = j["name"].get<std::string>();
  if (j.contains("arguments")) {
    out->arguments = dump_arguments(j["arguments"]);
  } else if (j.contains("parameters")) {
    out->arguments = dump_arguments(j["parameters"]);
  } else {
    out->arguments = "{}";
  }
  return true;
}

ParsedOutput parse_qwen(std::string_view text) {
  static constexpr std::string_view kOpen = "<tool_call>", kClose = "</tool_call>";
  ParsedOutput r;
  std::string content;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t open = text.find(kOpen, pos);
    if (open == std::string_view::npos) break;
    size_t close = text.find(kClose, open + kOpen.size());
    if (close == std::string_view::npos) break;
    std::string body = trim(text.substr(open + kOpen.size(), close - open - kOpen.size()));
    ojson j = ojson::parse(body, nullptr, false);
    ToolCall call;
    content.append(text.substr(pos, open - pos));
    if (!j.is_discarded() && call_from_object(j, &call)) {
      r.tool_calls.push_back(std::move(call));
    } else {
      content.append(text.substr(open, close + kClose.size() - open));
    }
    pos = close + kClose.size();
  }
  content.append(text.substr(std::min(pos, text.size())));
  r.content = r.tool_calls.empty() ? std::string(text) : trim(content);
  return r;
}

ParsedOutput parse_llama3(std::string_view text) {
  ParsedOutput r;
  std::string body = trim(text);
  static constexpr std::string_view kTag = "<|python_tag|>";
  if (body.compare(0, kTag.size(), kTag) == 0)
    body = trim(std::string_view(body).substr(kTag.size()));
  // One object, or several separated by ';' as some Llama 3.x outputs do.
  std::vector<std::string> pieces;
  ojson whole = ojson::parse(body, nullptr, false);
  if (!whole.is_discarded()) {
    pieces.push_back(body);
  } else {
    std::string sep = ";";
    for (auto& p : py_split(body, &sep, -1, false)) pieces.push_back(trim(p));
  }
  std::vector<ToolCall> calls;
  for (const std::string& p : pieces) {
    ojson j = ojson::parse(p, nullptr, false);
    ToolCall call;
    if (j.is_discarded() || !call_from_object(j, &call)) {
      r.content = std::string(text);
      return r;
    }
    calls.push_back(std::move(call));
  }
  r.tool_calls = std::move(calls);
  return r;
}

ParsedOutput parse_harmony(std::string_view text) {
  ParsedOutput r;
  static constexpr std::string_view kStart = "<|start|>", kMessage = "<|message|>",
                                    kChannel = "<|channel|>";
  size_t pos = 0;
  while (pos < text.size()) {
    size_t header_end = text.find(kMessage, pos);
    if (header_end == std::string_view::npos) {
      // Trailing text without a header is plain content.
      std::string rest(text.substr(pos));
      if (rest.compare(0, kStart.size(), kStart) != 0) r.content += rest;
      break;
    }
    std::string_view header = text.substr(pos, header_end - pos);
    size_t body_start = header_end + kMessage.size();
    size_t body_end = text.size();
    size_t next = text.size();
    for (std::string_view stop : {"<|end|>", "<|call|>", "<|return|>", "<|start|>"}) {
      size_t f = text.find(stop, body_start);
      if (f != std::string_view::npos && f < body_end) {
        body_end = f;
        next = stop == "<|start|>" ? f : f + stop.size();
      }
    }
    std::string_view body = text.substr(body_start, body_end - body_start);
    std::string channel;
    if (size_t c = header.find(kChannel); c != std::string_view::npos) {
      size_t b = c + kChannel.size(), e = b;
      while (e < header.size() && header[e] != ' ' && header[e] != '<') ++e;
      channel = std::string(header.substr(b, e - b));
    }
    std::string recipient;
    if (size_t t = header.find("to="); t != std::string_view::npos) {
      size_t b = t + 3, e = b;
      while (e < header.size() && header[e] != ' ' && header[e] != '<') ++e;
      recipient = std::string(header.substr(b, e - b));
    }
    if (!recipient.empty()) {
      ToolCall call;
      call.name = recipient.compare(0, 10, "functions.") == 0 ? recipient.substr(10) : recipient;
      ojson j = ojson::parse(body, nullptr, false);
      call.arguments = j.is_discarded() ? ojson(std::string(body)).dump() : dump_arguments(j);
      r.tool_calls.push_back(std::move(call));
    } else if (channel == "analysis") {
      r.reasoning += body;
    } else {
      r.content += body;
    }
    pos = next;
    if (text.compare(pos, kStart.size(), kStart) == 0) pos += kStart.size();
  }
  return r;
}

}  // namespace

ToolCallFormat detect_tool_call_format(std::string_view src) {
  if (src.find("<|channel|>") != std::string_view::npos &&
      (src.find("to=functions") != std::string_view::npos ||
       src.find("<|call|>") != std::string_view::npos)) {
    return ToolCallFormat::kHarmony;
  }
  if (src.find("<tool_call>") != std::string_view::npos) return ToolCallFormat::kQwenXml;
  if (src.find("\"parameters\"") != std::string_view::npos ||
      src.find("<|python_tag|>") != std::string_view::npos) {
    return ToolCallFormat::kLlama3Json;
  }
  return ToolCallFormat::kNone;
}

ParsedOutput parse_tool_calls(ToolCallFormat format, std::string_view output) {
  switch (format) {
    case ToolCallFormat::kQwenXml:
      return parse_qwen(output);
    case ToolCallFormat::kLlama3Json:
      return parse_llama3(output);
    case ToolCallFormat::kHarmony:
      return parse_harmony(output);
    case ToolCallFormat::kNone:
      break;
  }
  ParsedOutput r;
  r.content = std::string(output);
  return r;
}

}  // namespace runnel::tmpl
