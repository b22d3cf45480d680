// Settings of the prefix cache, declared once: defaults, the flag and environment names that set
// them, and one-line help. The CLI adds the flags; from_env() applies the environment.
#pragma once

#include <cstdint>
#include <string>

namespace runnel::cache {

struct CacheConfig {
  // --kv-cache-memory / RUNNEL_KV_CACHE_MEMORY: bytes of the hot pool (KV blocks in use or cached).
  int64_t hot_bytes = int64_t{2} << 30;
  // --kv-cache-cold-memory / RUNNEL_KV_CACHE_COLD_MEMORY: bytes of evicted blocks kept in host RAM;
  // 0 disables the cold tier.
  int64_t cold_bytes = int64_t{1} << 30;
  // --kv-cache-compress / RUNNEL_KV_CACHE_COMPRESS: zstd level for the cold tier (0 = store raw).
  // Off by default: on f16 KV it saves ~15-25% of the bytes but restores several times slower.
  int cold_zstd_level = 0;
  // --kv-cache-dir / RUNNEL_KV_CACHE_DIR: directory of the disk tier; empty disables it.
  std::string disk_dir;
  // --kv-cache-disk-size / RUNNEL_KV_CACHE_DISK_SIZE: bytes the disk tier may use.
  int64_t disk_bytes = int64_t{16} << 30;
  // zstd level for disk files (0 = raw).
  int disk_zstd_level = 0;

  // Returns `base` with every RUNNEL_KV_CACHE_* variable that is set applied; sizes go through
  // parse_byte_size ("512MiB", "2GiB"). Throws Error("config", ...) on a bad value.
  static CacheConfig from_env(CacheConfig base);
};

}  // namespace runnel::cache
