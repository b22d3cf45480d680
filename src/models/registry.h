// The architectures runnel runs: one table (registry.cpp), a line per architecture, keyed by the
// Hugging Face `architectures[0]` name and its GGUF `general.architecture` alias.
#pragma once

#include <memory>
#include <string>

#include "models/config.h"
#include "models/model.h"

namespace runnel::models {

class WeightSource;

using ModelFactory = std::unique_ptr<Model> (*)(const ModelConfig&, const WeightSource&);
using ConfigTraits = void (*)(ModelConfig&);  // architecture facts the files do not state

struct ArchEntry {
  const char* hf_name;    // "Qwen3ForCausalLM"
  const char* gguf_name;  // "qwen3"; "" when GGUF files use another entry's name
  ModelFactory make;
  ConfigTraits traits;
};

const ArchEntry* find_arch_hf(const std::string& hf_name);      // nullptr when unknown
const ArchEntry* find_arch_gguf(const std::string& gguf_name);  // nullptr when unknown
std::string supported_architectures();                          // "LlamaForCausalLM, ..."

// Families (one file each).
std::unique_ptr<Model> make_llama(const ModelConfig& c, const WeightSource& w);
void llama_traits(ModelConfig& c);
void qwen2_traits(ModelConfig& c);
void qwen3_traits(ModelConfig& c);

}  // namespace runnel::models
