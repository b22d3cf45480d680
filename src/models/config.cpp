#include "models/config.h"

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/mmap.h"
#include "formats/gguf.h"

namespace runnel::models {
namespace {

void validate(const ModelConfig& c, const std::string& where) {
  auto positive = [&](int64_t v, const char* field) {
    check(v > 0, "model", where, ": ", field, " must be positive, got ", v);
  };
  positive(c.hidden, "hidden_size");
  positive(c.n_layers, "num_hidden_layers");
  positive(c.n_heads, "num_attention_heads");
  positive(c.n_kv_heads, "num_key_value_heads");
  positive(c.head_dim, "head_dim");
  positive(c.ffn, "intermediate_size");
  positive(c.vocab, "vocab_size");
  positive(c.context_length, "max_position_embeddings");
  check(c.n_heads % c.n_kv_heads == 0, "model", where, ": ", c.n_heads,
        " attention heads are not a multiple of ", c.n_kv_heads, " key/value heads");
  check(c.head_dim % 2 == 0, "model", where, ": head_dim ", c.head_dim, " must be even");
  check(c.norm_eps > 0 && std::isfinite(c.norm_eps), "model", where, ": bad rms_norm_eps");
  check(c.rope.theta > 0, "model", where, ": bad rope theta");
}

int64_t json_int(const nlohmann::json& j, const char* key, const std::string& where) {
  auto it = j.find(key);
  check(it != j.end(), "model", where, ": missing ", key);
  check(it->is_number_integer(), "model", where, ": ", key, " must be an integer");
  return it->get<int64_t>();
}

}  // namespace

std::vector<float> llama3_freq_factors(const ModelConfig& c) {
  const int64_t n = c.rope.n_dims == 0 ? c.head_dim : c.rope.n_dims;
  std::vector<float> f(static_cast<size_t>(n / 2), 1.0f);
  const double low_wavelen =
      static_cast<double>(c.rope_scaling.original_context) / c.rope_scaling.low_freq_factor;
  const double high_wavelen =
      static_cast<double>(c.rope_scaling.original_context) / c.rope_scaling.high_freq_factor;
  for (int64_t i = 0; i < n / 2; ++i) {
    const double freq = std::pow(static_cast<double>(c.rope.theta),
                                 -2.0 * static_cast<double>(i) / static_cast<double>(n));
    const double wavelen = 2 * M_PI / freq;
    double factor = 1.0;
    if (wavelen > low_wavelen) {
      factor = c.rope_scaling.factor;
    } else if (wavelen >= high_wavelen) {
      const double smooth = (static_cast<double>(c.rope_scaling.original_context) / wavelen -
                             c.rope_scaling.low_freq_factor) /
                            (c.rope_scaling.high_freq_factor - c.rope_scaling.low_freq_factor);
      const double new_freq = (1 - smooth) * freq / c.rope_scaling.factor + smooth * freq;
      factor = freq / new_freq;
    }
    f[static_cast<size_t>(i)] = static_cast<float>(factor);
  }
  return f;
}

ModelConfig config_from_gguf(const formats::GgufFile& f, const std::string& hf_architecture) {
  const std::string arch = f.architecture();
  const std::string& where = f.path();
  auto need_int = [&](const std::string& key) {
    auto v = f.get_int(arch + "." + key);
    check(v.has_value(), "model", where, ": missing metadata ", arch, ".", key);
    return *v;
  };
  ModelConfig c;
  c.architecture = hf_architecture;
  c.source = "gguf";
  c.hidden = need_int("embedding_length");
  c.n_layers = need_int("block_count");
  c.n_heads = need_int("attention.head_count");
  c.n_kv_heads = f.get_int(arch + ".attention.head_count_kv").value_or(c.n_heads);
  c.ffn = need_int("feed_forward_length");
  c.context_length = need_int("context_length");
  c.head_dim =
      f.get_int(arch + ".attention.key_length").value_or(c.n_heads > 0 ? c.hidden / c.n_heads : 0);
  c.norm_eps =
      static_cast<float>(f.get_float(arch + ".attention.layer_norm_rms_epsilon").value_or(1e-5));
  c.rope.theta = static_cast<float>(f.get_float(arch + ".rope.freq_base").value_or(10000.0));
  c.rope.n_dims = static_cast<int>(f.get_int(arch + ".rope.dimension_count").value_or(0));
  if (c.rope.n_dims == c.head_dim) c.rope.n_dims = 0;
  if (auto scale = f.get_float(arch + ".rope.scale_linear"))
    c.rope.freq_scale = static_cast<float>(1.0 / *scale);
  const formats::GgufTensor* emb = f.find_tensor("token_embd.weight");
  check(emb != nullptr && emb->shape.size() == 2, "model", where,
        ": missing token_embd.weight (2-D)");
  c.vocab = emb->shape[0];
  c.tied_embeddings = f.find_tensor("output.weight") == nullptr;
  if (auto bos = f.get_int("tokenizer.ggml.bos_token_id")) c.bos_id = static_cast<int32_t>(*bos);
  if (auto eos = f.get_int("tokenizer.ggml.eos_token_id"))
    c.eos_ids.push_back(static_cast<int32_t>(*eos));
  validate(c, where);
  return c;
}

ModelConfig config_from_hf(const std::string& dir) {
  const std::string path = (std::filesystem::path(dir) / "config.json").string();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    fail("model", path, ": not valid JSON: ", e.what());
  }
  check(j.is_object(), "model", path, ": not a JSON object");
  ModelConfig c;
  c.source = "safetensors";
  auto archs = j.find("architectures");
  check(archs != j.end() && archs->is_array() && !archs->empty() && (*archs)[0].is_string(),
        "model", path, ": missing architectures");
  c.architecture = (*archs)[0].get<std::string>();
  c.hidden = json_int(j, "hidden_size", path);
  c.n_layers = json_int(j, "num_hidden_layers", path);
  c.n_heads = json_int(j, "num_attention_heads", path);
  c.n_kv_heads = j.contains("num_key_value_heads") && !j["num_key_value_heads"].is_null()
                     ? json_int(j, "num_key_value_heads", path)
                     : c.n_heads;
  c.head_dim = j.contains("head_dim") && !j["head_dim"].is_null()
                   ? json_int(j, "head_dim", path)
                   : (c.n_heads > 0 ? c.hidden / c.n_heads : 0);
  c.ffn = json_int(j, "intermediate_size", path);
  c.vocab = json_int(j, "vocab_size", path);
  c.context_length =
      j.contains("max_position_embeddings") ? json_int(j, "max_position_embeddings", path) : 2048;
  c.norm_eps = j.value("rms_norm_eps", 1e-6f);
  c.rope.theta = j.value("rope_theta", 10000.0f);
  c.rope.neox = true;  // HF checkpoints keep Q/K in rotate-half layout
  c.tied_embeddings = j.value("tie_word_embeddings", false);
  c.qkv_bias = j.value("attention_bias", false);
  if (auto rs = j.find("rope_scaling"); rs != j.end() && rs->is_object()) {
    std::string type = rs->value("rope_type", rs->value("type", std::string()));
    if (type == "llama3") {
      c.rope_scaling.llama3 = true;
      c.rope_scaling.factor = rs->value("factor", 8.0f);
      c.rope_scaling.low_freq_factor = rs->value("low_freq_factor", 1.0f);
      c.rope_scaling.high_freq_factor = rs->value("high_freq_factor", 4.0f);
      c.rope_scaling.original_context =
          rs->value("original_max_position_embeddings", int64_t{8192});
    } else if (type == "linear") {
      c.rope.freq_scale = 1.0f / rs->value("factor", 1.0f);
    } else if (!type.empty() && type != "default") {
      fail("model", path, ": rope_scaling type '", type, "' is not supported");
    }
  }
  auto read_eos = [&](const nlohmann::json& src) {
    if (auto e = src.find("eos_token_id"); e != src.end()) {
      if (e->is_number_integer()) c.eos_ids = {e->get<int32_t>()};
      if (e->is_array()) {
        c.eos_ids.clear();
        for (const auto& v : *e)
          if (v.is_number_integer()) c.eos_ids.push_back(v.get<int32_t>());
      }
    }
    if (auto b = src.find("bos_token_id"); b != src.end() && b->is_number_integer())
      c.bos_id = b->get<int32_t>();
  };
  read_eos(j);
  const auto gen = std::filesystem::path(dir) / "generation_config.json";
  if (std::filesystem::exists(gen)) {
    try {
      read_eos(nlohmann::json::parse(read_file(gen.string())));
    } catch (const nlohmann::json::exception& e) {
      fail("model", gen.string(), ": not valid JSON: ", e.what());
    }
  }
  validate(c, path);
  c.quantization = quantization_from_hf(dir);
  return c;
}

MlxQuantization quantization_from_hf(const std::string& dir) {
  const std::string path = (std::filesystem::path(dir) / "config.json").string();
  if (!std::filesystem::exists(path)) return {};
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    fail("model", path, ": not valid JSON: ", e.what());
  }
  auto q = j.is_object() ? j.find("quantization") : j.end();
  if (q == j.end() || q->is_null()) return {};
  check(q->is_object(), "model", path, ": quantization is not an object");
  if (auto mode = q->find("mode"); mode != q->end())
    check(mode->is_string() && mode->get<std::string>() == "affine", "model", path,
          ": quantization mode ", mode->dump(), " is not supported (only affine)");
  auto read = [&](const nlohmann::json& o, const std::string& where) {
    const int64_t bits = json_int(o, "bits", where);
    const int64_t group = json_int(o, "group_size", where);
    check(bits == 2 || bits == 3 || bits == 4 || bits == 5 || bits == 6 || bits == 8, "model",
          where, ": quantization.bits ", bits, " is not supported (2, 3, 4, 5, 6 or 8)");
    check(group == 32 || group == 64 || group == 128, "model", where, ": quantization.group_size ",
          group, " is not supported (32, 64 or 128)");
    return MlxQuantization::Override{static_cast<int>(bits), static_cast<int>(group)};
  };
  MlxQuantization m;
  const MlxQuantization::Override global = read(*q, path);
  m.bits = global.bits;
  m.group_size = global.group_size;
  for (const auto& [key, value] : q->items())
    if (value.is_object()) m.overrides[key] = read(value, path + ": quantization." + key);
  return m;
}

}  // namespace runnel::models
