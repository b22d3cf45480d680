#include "models/registry.h"

#include <filesystem>

#include "base/error.h"
#include "formats/gguf.h"
#include "models/weights.h"

namespace runnel::models {
namespace {

const ArchEntry kArchs[] = {
    {"LlamaForCausalLM", "llama", make_llama, llama_traits},
    {"MistralForCausalLM", "", make_llama, llama_traits},
    {"Qwen2ForCausalLM", "qwen2", make_llama, qwen2_traits},
    {"Qwen3ForCausalLM", "qwen3", make_llama, qwen3_traits},
};

}  // namespace

const ArchEntry* find_arch_hf(const std::string& hf_name) {
  for (const ArchEntry& e : kArchs)
    if (hf_name == e.hf_name) return &e;
  return nullptr;
}

const ArchEntry* find_arch_gguf(const std::string& gguf_name) {
  for (const ArchEntry& e : kArchs)
    if (!gguf_name.empty() && gguf_name == e.gguf_name) return &e;
  return nullptr;
}

std::string supported_architectures() {
  std::string out;
  for (const ArchEntry& e : kArchs) {
    if (!out.empty()) out += ", ";
    out += e.hf_name;
  }
  return out;
}

std::string Model::describe() const {
  return str_cat(config_.architecture, ", ", config_.n_layers, " layers, hidden ", config_.hidden,
                 ", vocab ", config_.vocab, ", ", config_.source);
}

std::string Model::weight_type() const {
  int best = 0;
  for (int t = 1; t < static_cast<int>(DType::kCount); ++t)
    if (bytes_by_type_[t] > bytes_by_type_[best]) best = t;
  return std::string(dtype_name(static_cast<DType>(best)));
}

std::unique_ptr<Model> load_model(const std::string& path) {
  namespace fs = std::filesystem;
  check(fs::exists(path), "model", path, ": no such file or folder");
  if (fs::is_directory(path)) {
    check(fs::exists(fs::path(path) / "config.json"), "model", path,
          ": not a model folder (no config.json)");
    ModelConfig c = config_from_hf(path);
    const ArchEntry* e = find_arch_hf(c.architecture);
    check(e != nullptr, "model", path, ": architecture ", c.architecture,
          " is not supported (supported: ", supported_architectures(), ")");
    e->traits(c);
    auto w = WeightSource::from_hf_dir(path);
    return e->make(c, *w);
  }
  std::shared_ptr<const formats::GgufFile> f = formats::GgufFile::open(path);
  const std::string arch = f->architecture();
  const ArchEntry* e = find_arch_gguf(arch);
  check(e != nullptr, "model", path, ": GGUF architecture '", arch,
        "' is not supported (supported: ", supported_architectures(), ")");
  ModelConfig c = config_from_gguf(*f, e->hf_name);
  e->traits(c);
  auto w = WeightSource::from_gguf(f);
  return e->make(c, *w);
}

}  // namespace runnel::models
