// Parsing of Ollama options / format and OpenAI request fields into SamplingOptions. Every key is
// either applied, accepted as a hint, rejected as unimplemented, or rejected as unknown.
#include "sample/options.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>

#include "base/error.h"

namespace runnel::sample {

namespace {

template <class J>
double get_number(const J& v, const std::string& key) {
  check(v.is_number(), "sample", "option '", key, "' must be a number, got ", v.dump());
  const double d = v.template get<double>();
  check(std::isfinite(d), "sample", "option '", key, "' must be finite");
  return d;
}

template <class J>
int64_t get_int(const J& v, const std::string& key) {
  const double d = get_number(v, key);
  check(d == std::floor(d) && std::fabs(d) < 9.2e18, "sample", "option '", key,
        "' must be an integer, got ", v.dump());
  return v.is_number_integer() ? v.template get<int64_t>() : static_cast<int64_t>(d);
}

template <class J>
bool get_bool(const J& v, const std::string& key) {
  check(v.is_boolean(), "sample", "option '", key, "' must be a boolean, got ", v.dump());
  return v.template get<bool>();
}

template <class J>
float get_range(const J& v, const std::string& key, double lo, double hi) {
  const double d = get_number(v, key);
  check(d >= lo && d <= hi, "sample", "option '", key, "' must be in [", lo, ", ", hi, "], got ",
        d);
  return static_cast<float>(d);
}

int32_t to_int32(int64_t v, const std::string& key, int64_t lo) {
  check(v >= lo && v <= INT32_MAX, "sample", "option '", key, "' must be in [", lo, ", ", INT32_MAX,
        "], got ", v);
  return static_cast<int32_t>(v);
}

template <class J>
std::vector<std::string> get_stop(const J& v, const std::string& key) {
  std::vector<std::string> out;
  if (v.is_string()) {
    out.push_back(v.template get<std::string>());
  } else {
    check(v.is_array(), "sample", "option '", key, "' must be a string or an array of strings");
    for (const auto& s : v) {
      check(s.is_string(), "sample", "option '", key, "' must hold strings, got ", s.dump());
      out.push_back(s.template get<std::string>());
    }
  }
  out.erase(std::remove(out.begin(), out.end(), std::string()), out.end());
  return out;
}

template <class J>
std::vector<std::pair<int32_t, float>> get_logit_bias(const J& v, const std::string& key) {
  check(v.is_object(), "sample", "option '", key, "' must be an object {\"token id\": bias}");
  std::vector<std::pair<int32_t, float>> out;
  for (const auto& [id_text, bias] : v.items()) {
    char* end = nullptr;
    const long id = std::strtol(id_text.c_str(), &end, 10);
    check(!id_text.empty() && *end == '\0' && id >= 0 && id <= INT32_MAX, "sample", "option '", key,
          "': '", id_text, "' is not a token id");
    out.emplace_back(static_cast<int32_t>(id), get_range(bias, key, -100.0, 100.0));
  }
  return out;
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

using Handler = std::function<void(const nlohmann::json&, const std::string&, SamplingOptions&)>;

const std::map<std::string, Handler>& ollama_handlers() {
  static const std::map<std::string, Handler> handlers = [] {
    std::map<std::string, Handler> h;
    using J = nlohmann::json;
    using S = SamplingOptions;
    h["temperature"] = [](const J& v, const std::string& k, S& o) {
      o.temperature = get_range(v, k, 0.0, 1e6);
    };
    h["top_k"] = [](const J& v, const std::string& k, S& o) {
      o.top_k = to_int32(get_int(v, k), k, INT32_MIN);
    };
    h["top_p"] = [](const J& v, const std::string& k, S& o) { o.top_p = get_range(v, k, 0, 1); };
    h["min_p"] = [](const J& v, const std::string& k, S& o) { o.min_p = get_range(v, k, 0, 1); };
    h["typical_p"] = [](const J& v, const std::string& k, S& o) {
      o.typical_p = get_range(v, k, 0, 1);
    };
    h["repeat_penalty"] = [](const J& v, const std::string& k, S& o) {
      o.repeat_penalty = get_range(v, k, 1e-6, 1e6);
    };
    h["repeat_last_n"] = [](const J& v, const std::string& k, S& o) {
      o.repeat_last_n = to_int32(get_int(v, k), k, -1);
    };
    h["presence_penalty"] = [](const J& v, const std::string& k, S& o) {
      o.presence_penalty = get_range(v, k, -1e6, 1e6);
    };
    h["frequency_penalty"] = [](const J& v, const std::string& k, S& o) {
      o.frequency_penalty = get_range(v, k, -1e6, 1e6);
    };
    h["seed"] = [](const J& v, const std::string& k, S& o) {
      const int64_t s = get_int(v, k);
      // Ollama's convention: -1 asks for a random seed.
      if (s == -1) {
        o.seed.reset();
      } else {
        o.seed = static_cast<uint64_t>(s);
      }
    };
    h["num_predict"] = [](const J& v, const std::string& k, S& o) {
      o.num_predict = to_int32(get_int(v, k), k, -2);
    };
    h["num_ctx"] = [](const J& v, const std::string& k, S& o) {
      o.num_ctx = to_int32(get_int(v, k), k, 1);
    };
    h["stop"] = [](const J& v, const std::string& k, S& o) { o.stop = get_stop(v, k); };
    h["logit_bias"] = [](const J& v, const std::string& k, S& o) {
      o.logit_bias = get_logit_bias(v, k);
    };
    // Not implemented: accepted only at the value that turns them off.
    h["mirostat"] = [](const J& v, const std::string& k, S&) {
      check(get_int(v, k) == 0, "sample", "option 'mirostat' = ", v.dump(),
            " is not supported (mirostat sampling is not implemented; use 0)");
    };
    h["tfs_z"] = [](const J& v, const std::string& k, S&) {
      const double d = get_number(v, k);
      check(d == 1.0 || d == 0.0, "sample", "option 'tfs_z' = ", v.dump(),
            " is not supported (tail-free sampling is not implemented; use 1)");
    };
    // Parameters of mirostat, which is off.
    for (const char* k : {"mirostat_tau", "mirostat_eta"}) {
      h[k] = [](const J& v, const std::string& key, S&) { get_number(v, key); };
    }
    // Hints the runner may use.
    h["num_thread"] = [](const J& v, const std::string& k, S& o) {
      const int32_t n = to_int32(get_int(v, k), k, 0);
      if (n > 0) o.num_thread = n;
    };
    h["num_batch"] = [](const J& v, const std::string& k, S& o) {
      const int32_t n = to_int32(get_int(v, k), k, 0);
      if (n > 0) o.num_batch = n;
    };
    h["num_keep"] = [](const J& v, const std::string& k, S& o) {
      o.num_keep = to_int32(get_int(v, k), k, -1);
    };
    // Hints that do not apply to a CPU engine (or that it decides itself).
    for (const char* k : {"num_gpu", "main_gpu"}) {
      h[k] = [](const J& v, const std::string& key, S&) { get_int(v, key); };
    }
    // penalize_newline: Ollama's own engine ignores it too; newlines are penalized like any token.
    for (const char* k : {"numa", "low_vram", "f16_kv", "logits_all", "vocab_only", "use_mmap",
                          "use_mlock", "penalize_newline", "embedding_only"}) {
      h[k] = [](const J& v, const std::string& key, S&) { get_bool(v, key); };
    }
    return h;
  }();
  return handlers;
}

template <class J>
void apply_format(const J& format, SamplingOptions& out) {
  if (format.is_null()) return;
  if (format.is_string()) {
    const auto s = format.template get<std::string>();
    if (s.empty()) return;
    check(s == "json", "sample", "format must be \"json\" or a JSON schema object, got \"", s,
          "\"");
    out.format = FormatKind::kJson;
    out.format_schema.clear();
    return;
  }
  check(format.is_object(), "sample", "format must be \"json\" or a JSON schema object");
  out.format = FormatKind::kJsonSchema;
  out.format_schema = format.dump();
}

template <class J>
SamplingOptions parse_openai(const J& r) {
  check(r.is_object(), "sample", "request must be a JSON object");
  SamplingOptions o;
  o.temperature = 1.0f;
  o.top_p = 1.0f;
  const auto present = [&](const char* key) { return r.contains(key) && !r[key].is_null(); };
  if (present("temperature")) o.temperature = get_range(r["temperature"], "temperature", 0, 2);
  if (present("top_p")) o.top_p = get_range(r["top_p"], "top_p", 0, 1);
  for (const char* key : {"max_completion_tokens", "max_tokens"}) {
    if (present(key)) {
      o.num_predict = to_int32(get_int(r[key], key), key, 1);
      break;
    }
  }
  if (present("seed")) o.seed = static_cast<uint64_t>(get_int(r["seed"], "seed"));
  if (present("stop")) o.stop = get_stop(r["stop"], "stop");
  if (present("frequency_penalty")) {
    o.frequency_penalty = get_range(r["frequency_penalty"], "frequency_penalty", -2, 2);
  }
  if (present("presence_penalty")) {
    o.presence_penalty = get_range(r["presence_penalty"], "presence_penalty", -2, 2);
  }
  if (present("logprobs")) {
    const auto& v = r["logprobs"];
    if (v.is_boolean()) {
      o.logprobs = v.template get<bool>();
    } else {  // legacy completions: logprobs = number of alternatives
      o.top_logprobs = to_int32(get_int(v, "logprobs"), "logprobs", 0);
      check(o.top_logprobs <= 20, "sample", "option 'logprobs' must be at most 20");
      o.logprobs = true;
    }
  }
  if (present("top_logprobs")) {
    o.top_logprobs = to_int32(get_int(r["top_logprobs"], "top_logprobs"), "top_logprobs", 0);
    check(o.top_logprobs <= 20, "sample", "option 'top_logprobs' must be at most 20");
  }
  if (present("logit_bias")) o.logit_bias = get_logit_bias(r["logit_bias"], "logit_bias");
  if (present("n")) {
    check(get_int(r["n"], "n") == 1, "sample", "option 'n' must be 1 (one choice per request)");
  }
  if (present("top_k")) o.top_k = to_int32(get_int(r["top_k"], "top_k"), "top_k", INT32_MIN);
  if (present("min_p")) o.min_p = get_range(r["min_p"], "min_p", 0, 1);
  if (present("typical_p")) o.typical_p = get_range(r["typical_p"], "typical_p", 0, 1);
  if (present("repeat_penalty")) {
    o.repeat_penalty = get_range(r["repeat_penalty"], "repeat_penalty", 1e-6, 1e6);
  }
  if (present("response_format")) {
    const auto& f = r["response_format"];
    check(f.is_object() && f.contains("type") && f["type"].is_string(), "sample",
          "'response_format' must be an object with a string 'type'");
    const auto type = f["type"].template get<std::string>();
    if (type == "json_object") {
      o.format = FormatKind::kJson;
    } else if (type == "json_schema") {
      check(f.contains("json_schema") && f["json_schema"].is_object() &&
                f["json_schema"].contains("schema") && f["json_schema"]["schema"].is_object(),
            "sample", "'response_format' of type json_schema needs json_schema.schema (an object)");
      o.format = FormatKind::kJsonSchema;
      o.format_schema = f["json_schema"]["schema"].dump();
    } else {
      check(type == "text", "sample", "'response_format' type '", type,
            "' is not supported (text, json_object, json_schema)");
    }
  }
  return o;
}

}  // namespace

void apply_ollama_options(const nlohmann::json& options, SamplingOptions& out) {
  if (options.is_null()) return;
  check(options.is_object(), "sample", "options must be a JSON object");
  const auto& handlers = ollama_handlers();
  for (const auto& [key, value] : options.items()) {
    const auto it = handlers.find(key);
    if (it == handlers.end()) {
      std::string best;
      size_t best_d = 3;
      for (const auto& [known, unused] : handlers) {
        const size_t d = edit_distance(key, known);
        if (d < best_d) {
          best_d = d;
          best = known;
        }
      }
      fail("sample", "unknown option '", key, "'",
           best.empty() ? std::string() : str_cat(" (did you mean '", best, "'?)"));
    }
    if (value.is_null()) continue;
    it->second(value, key, out);
  }
}

SamplingOptions parse_ollama_options(const nlohmann::json& options) {
  SamplingOptions out;
  apply_ollama_options(options, out);
  return out;
}

void apply_ollama_format(const nlohmann::json& format, SamplingOptions& out) {
  apply_format(format, out);
}
void apply_ollama_format(const nlohmann::ordered_json& format, SamplingOptions& out) {
  apply_format(format, out);
}

SamplingOptions parse_openai_request(const nlohmann::json& request) {
  return parse_openai(request);
}
SamplingOptions parse_openai_request(const nlohmann::ordered_json& request) {
  return parse_openai(request);
}

}  // namespace runnel::sample
