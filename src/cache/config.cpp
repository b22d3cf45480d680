// CacheConfig::from_env.
#include "cache/config.h"

#include "base/env.h"
#include "base/error.h"

namespace runnel::cache {

CacheConfig CacheConfig::from_env(CacheConfig c) {
  if (auto v = env_string("RUNNEL_KV_CACHE_MEMORY")) c.hot_bytes = parse_byte_size(*v);
  if (auto v = env_string("RUNNEL_KV_CACHE_COLD_MEMORY")) c.cold_bytes = parse_byte_size(*v);
  if (auto v = env_int("RUNNEL_KV_CACHE_COMPRESS")) {
    check(*v >= 0 && *v <= 19, "config", "RUNNEL_KV_CACHE_COMPRESS must be a zstd level 0..19");
    c.cold_zstd_level = static_cast<int>(*v);
  }
  if (auto v = env_string("RUNNEL_KV_CACHE_DIR")) c.disk_dir = *v;
  if (auto v = env_string("RUNNEL_KV_CACHE_DISK_SIZE")) c.disk_bytes = parse_byte_size(*v);
  return c;
}

}  // namespace runnel::cache
