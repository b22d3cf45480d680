// CacheConfig: the settings table, set(), from_env(), describe().
#include "cache/config.h"

#include <cstdlib>

#include "base/env.h"
#include "base/error.h"
#include "base/strings.h"

namespace runnel::cache {

const std::vector<CacheSetting>& cache_settings() {
  static const std::vector<CacheSetting> table = {
      {"kv-cache-memory", "RUNNEL_KV_CACHE_MEMORY",
       "Bytes of KV blocks kept in the hot pool, in use or cached (e.g. 4GiB)"},
      {"kv-cache-cold-memory", "RUNNEL_KV_CACHE_COLD_MEMORY",
       "Bytes of evicted KV blocks kept in host RAM (0 disables)"},
      {"kv-cache-compress", "RUNNEL_KV_CACHE_COMPRESS",
       "zstd level for the cold tier, 0 = raw (smaller but slower restores)"},
      {"kv-cache-dir", "RUNNEL_KV_CACHE_DIR",
       "Directory for a disk tier of KV blocks that survives restarts"},
      {"kv-cache-disk-size", "RUNNEL_KV_CACHE_DISK_SIZE", "Bytes the disk tier may use"},
      {"kv-cache-type", "RUNNEL_KV_CACHE_TYPE",
       "KV element type: f16 (default), q8_0 (about half the memory) or f32"},
  };
  return table;
}

DType parse_kv_cache_type(const std::string& value, std::string_view what) {
  if (value == "f32") return DType::kF32;
  if (value == "f16") return DType::kF16;
  if (value == "q8_0") return DType::kQ8_0;
  fail("config", what, " must be f32, f16 or q8_0, got '", value, "'");
}

void CacheConfig::set(std::string_view flag, const std::string& value) {
  if (flag == "kv-cache-memory") {
    hot_bytes = parse_byte_size(value);
  } else if (flag == "kv-cache-cold-memory") {
    cold_bytes = parse_byte_size(value);
  } else if (flag == "kv-cache-compress") {
    char* end = nullptr;
    long v = std::strtol(value.c_str(), &end, 10);
    check(end != value.c_str() && *end == '\0' && v >= 0 && v <= 19, "config",
          "kv-cache-compress must be a zstd level 0..19, got '", value, "'");
    cold_zstd_level = static_cast<int>(v);
  } else if (flag == "kv-cache-dir") {
    disk_dir = value;
  } else if (flag == "kv-cache-disk-size") {
    disk_bytes = parse_byte_size(value);
  } else if (flag == "kv-cache-type") {
    kv_dtype = parse_kv_cache_type(value, flag);
  } else {
    fail("config", "unknown cache setting '", flag, "'");
  }
}

CacheConfig CacheConfig::from_env(CacheConfig c) {
  for (const CacheSetting& s : cache_settings())
    if (auto v = env_string(s.env)) c.set(s.flag, *v);
  return c;
}

std::string CacheConfig::describe() const {
  std::string cold = cold_bytes == 0 ? "off"
                                     : str_cat(format_bytes(static_cast<double>(cold_bytes)),
                                               cold_zstd_level > 0 ? " (zstd)" : " (raw)");
  std::string disk = disk_dir.empty()
                         ? "off"
                         : str_cat(disk_dir, " ", format_bytes(static_cast<double>(disk_bytes)));
  return str_cat("hot ", format_bytes(static_cast<double>(hot_bytes)), ", cold ", cold, ", disk ",
                 disk);
}

}  // namespace runnel::cache
