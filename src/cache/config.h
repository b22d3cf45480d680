// Settings of the prefix cache, declared once in a table (config.cpp) that gives each its flag,
// environment variable and help text; the CLI registers flags from cache_settings() and forwards
// values to set(), from_env() applies the environment, describe() prints the result.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/dtype.h"

namespace runnel::cache {

struct CacheConfig {
  // --kv-cache-memory / RUNNEL_KV_CACHE_MEMORY: bytes of the hot pool (KV blocks in use or cached).
  int64_t hot_bytes = int64_t{2} << 30;
  // --kv-cache-cold-memory / RUNNEL_KV_CACHE_COLD_MEMORY: bytes of evicted blocks kept in host RAM;
  // 0 disables the cold tier.
  int64_t cold_bytes = int64_t{1} << 30;
  // --kv-cache-compress / RUNNEL_KV_CACHE_COMPRESS: zstd level for the cold tier (0 = store raw).
  // Off by default: on f16 KV it saves ~16% of the bytes but restores several times slower.
  int cold_zstd_level = 0;
  // --kv-cache-dir / RUNNEL_KV_CACHE_DIR: directory of the disk tier; empty disables it.
  std::string disk_dir;
  // --kv-cache-disk-size / RUNNEL_KV_CACHE_DISK_SIZE: bytes the disk tier may use.
  int64_t disk_bytes = int64_t{16} << 30;
  // zstd level for disk files (0 = raw). Not a flag.
  int disk_zstd_level = 0;
  // --kv-cache-type / RUNNEL_KV_CACHE_TYPE: the blocks' element type. f16 as llama.cpp and Ollama;
  // q8_0 (Ollama's OLLAMA_KV_CACHE_TYPE=q8_0) takes 34 bytes per 32 values, about half; f32 keeps
  // full precision. A model whose head_dim is not a multiple of 32 keeps f16 (runner/engine.cpp).
  DType kv_dtype = DType::kF16;

  // Sets one setting by its flag name without dashes ("kv-cache-memory"); sizes go through
  // parse_byte_size ("512MiB", "2GiB"). Throws Error("config", ...) on an unknown name or bad
  // value.
  void set(std::string_view flag, const std::string& value);
  // Returns `base` with every RUNNEL_KV_CACHE_* variable that is set applied.
  static CacheConfig from_env(CacheConfig base);
  // "hot 2 GiB, cold 1 GiB (raw), disk off" for logs and `runnel ps`.
  std::string describe() const;
};

// "f32", "f16" or "q8_0" as a DType; throws Error("config", ...) naming `what` (the flag)
// otherwise.
DType parse_kv_cache_type(const std::string& value, std::string_view what);

struct CacheSetting {
  const char* flag;  // without dashes
  const char* env;
  const char* help;
};
const std::vector<CacheSetting>& cache_settings();

}  // namespace runnel::cache
